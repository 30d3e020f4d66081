//! `notify=` (issue 16): a hook run detached, so that it can never delay a
//! login nor change its verdict. Used by the module (through
//! [`PamIo::run_notify`](crate::login::PamIo::run_notify)) and by the tool.
//!
//! The module lives in a host process (sshd, sudo) that may have threads:
//! after `fork()` only async-signal-safe calls are made until `exec`. So
//! everything is prepared before the fork (the program and environment as
//! C strings, the argument vectors, the syslog address and the start of
//! each log line), the event is written into a pipe that becomes the
//! hook's standard input, and the children make raw system calls only,
//! into buffers on their stack — no allocation, no lock, no shared state.
//!
//! ```text
//! host ──fork──▶ S: default signals, setsid, 0=event 1,2=/dev/null,
//!   │               every other descriptor closed
//!   │            S ──fork──▶ T (the supervisor) ; S exits at once
//!   └─ waitpid(S): S is already gone; no zombie is left in the host
//! T ──fork──▶ H: own process group, stdout/stderr to pipes, groups, gid,
//!                 uid dropped, execve(hook) with no argument
//! T: reads the first line of H's stdout and of its stderr, waits for H
//!    until the deadline, then kills H's process group; sends up to three
//!    datagrams to /dev/log (ignored when there is none) and exits.
//! ```
//!
//! T is a session leader's child, so neither it nor the hook can ever
//! acquire a controlling terminal. The supervisor's side is in
//! [`supervisor`](super::supervisor).

use std::ffi::{c_char, c_int, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::ptr;

use crate::sys::hook::{HookError, HookSpec, HookSpec as Spec, HOOK_ENVIRONMENT, MAX_INPUT};

use super::supervisor::{self, Prepared};

fn nul_free(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn prepare(spec: &Spec) -> io::Result<Prepared> {
    let program = nul_free(spec.program.as_os_str().as_bytes())?;
    let env = HOOK_ENVIRONMENT
        .iter()
        .map(|(k, v)| nul_free(format!("{k}={v}").as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let mut envp: Vec<*const c_char> = env.iter().map(|c| c.as_ptr()).collect();
    envp.push(ptr::null());
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut log_addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    log_addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in log_addr.sun_path.iter_mut().zip(b"/dev/log") {
        *dst = *src as c_char;
    }
    let timeout_ms = i64::try_from(spec.timeout.as_millis()).unwrap_or(i64::MAX);
    let argv = [program.as_ptr(), ptr::null()];
    Ok(Prepared {
        argv,
        program,
        _env: env,
        envp,
        root_dir: nul_free(b"/")?,
        dev_null: nul_free(b"/dev/null")?,
        uid: spec.uid,
        gid: spec.gid,
        timeout_ms,
        log_prefix: spec.log_prefix.as_bytes().to_vec(),
        log_addr,
    })
}

/// Starts `spec`'s hook detached and returns at once (after reaping the
/// intermediate process, which exits right after forking the
/// supervisor). `Err` only when nothing could be started; how the hook
/// itself ends is logged by the supervisor.
pub fn spawn_detached(spec: &HookSpec) -> Result<(), HookError> {
    if spec.input.len() > MAX_INPUT {
        return Err(HookError::TooLarge);
    }
    let p = prepare(spec).map_err(HookError::Spawn)?;
    let input = event_pipe(&spec.input).map_err(HookError::Spawn)?;
    // SAFETY: fork has no memory-safety preconditions. The child runs only
    // `session` (async-signal-safe calls on data prepared above) and
    // never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        session(&p, input);
    }
    let forked = io::Error::last_os_error();
    // SAFETY: `input` is our descriptor; the child has its own copy.
    unsafe { libc::close(input) };
    if pid < 0 {
        return Err(HookError::Spawn(forked));
    }
    let mut status: c_int = 0;
    loop {
        // SAFETY: waits for our own child, which exits right after one
        // fork; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // ECHILD: the host reaped it (a SIGCHLD handler); nothing to do.
            break;
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0 {
        return Err(HookError::Spawn(io::Error::other(
            "the supervisor could not be started",
        )));
    }
    Ok(())
}

/// A pipe holding `input`, its write end closed: the read end.
fn event_pipe(input: &[u8]) -> io::Result<c_int> {
    let mut fds: [c_int; 2] = [-1; 2];
    // SAFETY: `fds` is a valid array of two descriptors to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut left = input;
    let mut result = Ok(fds[0]);
    while !left.is_empty() {
        // SAFETY: writes from a live slice of `left.len()` bytes. The pipe
        // holds 64 KiB and the input is at most MAX_INPUT: it never blocks.
        let n = unsafe { libc::write(fds[1], left.as_ptr().cast(), left.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            result = Err(e);
            break;
        }
        left = left.get(n.unsigned_abs()..).unwrap_or_default();
    }
    // SAFETY: our own write end, closed once.
    unsafe { libc::close(fds[1]) };
    if result.is_err() {
        // SAFETY: our own read end, closed once.
        unsafe { libc::close(fds[0]) };
    }
    result
}

/// The intermediate process S: signals back to their defaults, a session
/// of its own, standard input the event, standard output and error
/// /dev/null, nothing else open; then it forks the supervisor and exits.
fn session(p: &Prepared, input: c_int) -> ! {
    // SAFETY: between fork and exec (and in the supervisor, which never
    // execs): only async-signal-safe system calls (sigaction,
    // sigprocmask, setsid, fcntl, open, dup2, close, close_range, fork,
    // _exit) on data prepared before the fork; nothing allocates.
    unsafe {
        // The host's handlers must not run here (a SIGCHLD handler would
        // reap the hook); and the hook must not inherit ignored signals or
        // a blocked mask.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, ptr::null_mut());
        if libc::setsid() < 0 {
            libc::_exit(1);
        }
        // Above 2 first, so no dup2 below overwrites the other.
        let ev = libc::fcntl(input, libc::F_DUPFD_CLOEXEC, 3);
        let null = libc::open(p.dev_null.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        let null = if null >= 0 {
            libc::fcntl(null, libc::F_DUPFD_CLOEXEC, 3)
        } else {
            -1
        };
        if ev < 0
            || null < 0
            || libc::dup2(ev, 0) < 0
            || libc::dup2(null, 1) < 0
            || libc::dup2(null, 2) < 0
        {
            libc::_exit(1);
        }
        close_from_3();
        match libc::fork() {
            0 => supervisor::supervise(p),
            pid if pid < 0 => libc::_exit(1),
            _ => libc::_exit(0),
        }
    }
}

/// Closes every descriptor above 2 (the host's sockets must not be held
/// open by the hook: sshd's connection would outlive the session).
///
/// # Safety
/// Async-signal-safe; for a child of the host only.
unsafe fn close_from_3() {
    // SAFETY: a raw system call with plain integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: one close per possible descriptor.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        c_int::try_from(lim.rlim_cur)
            .unwrap_or(1 << 20)
            .min(1 << 20)
    } else {
        1024
    };
    for fd in 3..max {
        // SAFETY: closing a descriptor number, open or not.
        unsafe { libc::close(fd) };
    }
}
