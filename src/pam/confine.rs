//! `secret_command=` (issue 14): the child side of
//! `crate::sys::command::run`, between fork and exec. It needs `unsafe`
//! (`pre_exec`), so it lives at the edge; the safe runner takes it as its
//! `confine` hook, and the login reaches it through `PamIo`.

use std::ffi::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::ptr;

/// [`crate::sys::command::Confine`]: between fork and exec, the command
/// takes the identity `uid`/`gid` with no supplementary groups, and every
/// descriptor above 2 that it inherited (sshd and other PAM applications
/// may hold some without close-on-exec) is marked close-on-exec.
///
/// Done here rather than with `Command::uid()`/`gid()`: std clears the
/// supplementary groups only when the real uid is 0 and ignores a failure
/// of `setgroups`; here every step is checked, and a failure is reported
/// to the parent as a spawn error (the login is denied).
pub(crate) fn confine_command(cmd: &mut Command, uid: u32, gid: u32) {
    let check = |rc: c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed. It makes only raw system
    // calls (setgroups, setresgid, setresuid, close_range, getrlimit,
    // fcntl) and reads errno (`last_os_error`, which does not allocate);
    // it allocates nothing, takes no lock and touches no shared state.
    unsafe {
        cmd.pre_exec(move || {
            // Groups first, then the gid, then the uid: once the uid is
            // dropped, the others can no longer be changed.
            check(libc::setgroups(0, ptr::null()))?;
            check(libc::setresgid(gid, gid, gid))?;
            check(libc::setresuid(uid, uid, uid))?;
            // Close-on-exec rather than closed: std's own descriptor that
            // reports an exec failure to the parent must stay open until
            // exec.
            let rc = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                // Kernels before 5.11: one fcntl per possible descriptor.
                let mut lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
                // A limit too high to walk: refuse rather than leak.
                let max = c_int::try_from(lim.rlim_cur)
                    .ok()
                    .filter(|&n| n <= 1 << 20)
                    .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EMFILE))?;
                for fd in 3..max {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        check(libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
                    }
                }
            }
            Ok(())
        });
    }
}
