//! The PAM edge: the exported `pam_sm_*` hooks and every `unsafe` block of
//! the crate.
//!
//! Each hook runs its body under `catch_unwind`: a panic is logged and
//! becomes PAM_AUTH_ERR, it never unwinds into sshd or sudo. The
//! conversation is our own small wrapper (pamsm's `conv()` neither frees nor
//! wipes the reply): the answer is copied into a zeroizing buffer, the C
//! string is wiped and both allocations are freed.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::{SystemTime, UNIX_EPOCH};

use pamsm::{LogLvl, Pam, PamLibExt};
use zeroize::{Zeroize, Zeroizing};

use crate::auth::{self, Level, PamIo, Verdict};

const PAM_SUCCESS: c_int = 0;
const PAM_AUTH_ERR: c_int = 7;
const PAM_IGNORE: c_int = 25;
const PAM_CONV: c_int = 5;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

/// `struct pam_message` from <security/pam_appl.h>.
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`.
#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv`.
#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

/// Runs a hook body; a panic is logged through `log` and denies.
fn guarded(hook: &str, log: impl Fn(&str), body: impl FnOnce() -> c_int) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(_) => {
            let msg = format!("internal error (panic) in {hook}; denying");
            // Logging must not be able to unwind either.
            let _ = catch_unwind(AssertUnwindSafe(|| log(&msg)));
            PAM_AUTH_ERR
        }
    }
}

fn log_crit(pamh: &Pam) -> impl Fn(&str) + '_ {
    move |msg| {
        let _ = pamh.syslog(LogLvl::CRIT, msg);
    }
}

/// Copies the module arguments. `None` if one is not UTF-8.
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings (libpam's
/// contract for every `pam_sm_*` hook).
unsafe fn collect_args(argc: c_int, argv: *const *const c_char) -> Option<Vec<String>> {
    let n = usize::try_from(argc).ok()?;
    if n == 0 {
        return Some(Vec::new());
    }
    if argv.is_null() {
        return None;
    }
    // SAFETY: libpam passes an array of `argc` pointers (see above).
    let ptrs = unsafe { std::slice::from_raw_parts(argv, n) };
    ptrs.iter()
        .map(|&p| {
            if p.is_null() {
                return None;
            }
            // SAFETY: each entry is a NUL-terminated string owned by libpam
            // for the duration of the call.
            let s = unsafe { CStr::from_ptr(p) };
            s.to_str().ok().map(str::to_owned)
        })
        .collect()
}

/// Called by libpam for `auth` lines.
///
/// # Safety
/// Called by libpam with a live handle and `argc` valid argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: Pam,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guarded("pam_sm_authenticate", log_crit(&pamh), || {
        // SAFETY: forwarded from libpam's call of this hook.
        let Some(args) = (unsafe { collect_args(argc, argv) }) else {
            let _ = pamh.syslog(
                LogLvl::ERR,
                "configuration error: a module argument is not UTF-8; denying",
            );
            return PAM_AUTH_ERR;
        };
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            let _ = pamh.syslog(LogLvl::ERR, "the system clock is before 1970; denying");
            return PAM_AUTH_ERR;
        };
        let mut io = LibPam { pamh: &pamh };
        match auth::authenticate(&mut io, &args, now.as_secs()) {
            Verdict::Success => PAM_SUCCESS,
            Verdict::AuthErr => PAM_AUTH_ERR,
            Verdict::Ignore => PAM_IGNORE,
        }
    })
}

/// Credentials are not this module's business, but sshd aborts the login
/// if setcred fails, so it succeeds.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: Pam,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// The module has no say in account management.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    _pamh: Pam,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// Nor in sessions.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_open_session(
    _pamh: Pam,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_close_session(
    _pamh: Pam,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// Nor in password changes: enrolling is `pam-totp enroll`.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_chauthtok(
    _pamh: Pam,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// [`PamIo`] over a live libpam handle.
struct LibPam<'a> {
    pamh: &'a Pam,
}

impl LibPam<'_> {
    fn raw(&self) -> *const c_void {
        // SAFETY: `Pam` is `#[repr(transparent)]` over the `pam_handle_t *`
        // libpam passed in, so reading it as that pointer is reading its
        // only field.
        unsafe { *(self.pamh as *const Pam as *const *const c_void) }
    }

    /// One prompt through the application's conversation function.
    fn converse(&self, style: c_int, text: &str) -> Option<Zeroizing<String>> {
        let text = CString::new(text).ok()?;
        let mut item: *const c_void = ptr::null();
        // SAFETY: the handle is live for the duration of the hook, and
        // pam_get_item writes one pointer to `item`.
        let rc = unsafe { pam_get_item(self.raw(), PAM_CONV, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return None;
        }
        // SAFETY: the PAM_CONV item is the application's `struct pam_conv`,
        // which libpam keeps alive until pam_end.
        let conv = unsafe { &*(item as *const PamConv) };
        let conv_fn = conv.conv?;
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut messages: *const PamMessage = &message;
        let mut resp: *mut PamResponse = ptr::null_mut();
        // SAFETY: a conversation call with one message that outlives it; the
        // application stores a malloc'd response array (or nothing) in `resp`.
        let rc = unsafe { conv_fn(1, &mut messages, &mut resp, conv.appdata_ptr) };
        // Take and free whatever came back, even when the call failed.
        // SAFETY: `resp` is null or what the conversation function allocated
        // for our one message.
        let answer = unsafe { take_response(resp) };
        if rc != PAM_SUCCESS {
            return None;
        }
        answer
    }
}

/// Copies the answer of a one-message conversation into a zeroizing
/// buffer, wipes the C string, and frees both allocations.
///
/// # Safety
/// `resp` is null, or a malloc'd `struct pam_response` whose `resp` is null
/// or a malloc'd NUL-terminated string, and nothing else refers to them.
unsafe fn take_response(resp: *mut PamResponse) -> Option<Zeroizing<String>> {
    if resp.is_null() {
        return None;
    }
    // SAFETY: non-null and owned by us per the contract above.
    let r = unsafe { &mut *resp };
    let mut answer = None;
    if !r.resp.is_null() {
        // SAFETY: a NUL-terminated string per the contract.
        let len = unsafe { CStr::from_ptr(r.resp) }.to_bytes().len();
        // SAFETY: `len` bytes before the NUL belong to the allocation.
        let bytes = unsafe { std::slice::from_raw_parts_mut(r.resp.cast::<u8>(), len) };
        answer = std::str::from_utf8(bytes)
            .ok()
            .map(|s| Zeroizing::new(s.to_owned()));
        bytes.zeroize();
        // SAFETY: malloc'd by the application, freed once, not used after.
        unsafe { libc::free(r.resp.cast::<c_void>()) };
        r.resp = ptr::null_mut();
    }
    // SAFETY: malloc'd by the application, freed once, not used after.
    unsafe { libc::free(resp.cast::<c_void>()) };
    answer
}

fn cstr_item(item: pamsm::PamResult<Option<&CStr>>) -> Option<String> {
    item.ok()
        .flatten()
        .and_then(|c| c.to_str().ok())
        .map(str::to_owned)
}

impl PamIo for LibPam<'_> {
    fn user(&mut self) -> Option<String> {
        cstr_item(self.pamh.get_user(None)).filter(|u| !u.is_empty())
    }

    fn service(&self) -> Option<String> {
        cstr_item(self.pamh.get_service())
    }

    fn rhost(&self) -> Option<String> {
        cstr_item(self.pamh.get_rhost())
    }

    fn authtok(&self) -> Option<Zeroizing<String>> {
        let tok = self.pamh.get_cached_authtok().ok().flatten()?;
        tok.to_str().ok().map(|s| Zeroizing::new(s.to_owned()))
    }

    fn set_authtok(&mut self, value: &str) -> bool {
        let Ok(c) = CString::new(value) else {
            return false;
        };
        // libpam copies the item; our copy is wiped right after.
        let ok = self.pamh.set_authtok(&c).is_ok();
        c.into_bytes().zeroize();
        ok
    }

    fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<String>> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.converse(style, text)
    }

    // secret_command= (issue 14): forwards to src/command.rs with the
    // child-side primitive above.
    fn run_secret_command(
        &self,
        spec: &crate::command::CommandSpec,
    ) -> Result<crate::command::CommandOutput, crate::command::CommandError> {
        crate::command::run(spec, confine_command)
    }

    fn log(&self, level: Level, msg: &str) {
        let lvl = match level {
            Level::Err => LogLvl::ERR,
            Level::Warning => LogLvl::WARNING,
            Level::Notice => LogLvl::NOTICE,
            Level::Info => LogLvl::INFO,
            Level::Debug => LogLvl::DEBUG,
        };
        // pam_syslog logs to LOG_AUTHPRIV; with no /dev/log it logs nowhere.
        let _ = self.pamh.syslog(lvl, msg);
    }
}

// --- secret_command= (issue 14): the child side of src/command.rs ---

/// [`crate::command::Confine`]: between fork and exec, the command takes
/// the identity `uid`/`gid` with no supplementary groups, and every
/// descriptor above 2 that it inherited (sshd and other PAM applications
/// may hold some without close-on-exec) is marked close-on-exec.
///
/// Done here rather than with `Command::uid()`/`gid()`: std clears the
/// supplementary groups only when the real uid is 0 and ignores a failure
/// of `setgroups`; here every step is checked, and a failure is reported
/// to the parent as a spawn error (the login is denied).
pub(crate) fn confine_command(cmd: &mut std::process::Command, uid: u32, gid: u32) {
    use std::os::unix::process::CommandExt;
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

/// Every account the passwd database enumerates (local files and NSS
/// modules that enumerate), with setpwent/getpwent_r/endpwent: for
/// `pam-totp host-key rotate`, which must not run a `getent` found on PATH.
/// The enumeration position is process-wide state of libc: call this from
/// one thread at a time (the tool is single-threaded; the module never
/// calls it). It lives here because it needs `unsafe` (nix has no
/// enumeration), and this file is the crate's one FFI edge.
pub(crate) fn enumerate_users() -> std::io::Result<Vec<nix::unistd::User>> {
    const MAX_BUF: usize = 1 << 20;
    let mut users = Vec::new();
    let mut buf: Vec<c_char> = vec![0; 4096];
    // SAFETY: setpwent takes no arguments; it (re)starts this process's
    // enumeration of the passwd database.
    unsafe { libc::setpwent() };
    let result = loop {
        let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut found: *mut libc::passwd = ptr::null_mut();
        // SAFETY: `pwd` and `found` are valid for writes and `buf` for
        // `buf.len()` bytes for the whole call; getpwent_r writes the entry
        // into `pwd` (its strings into `buf`) and sets `found` to it, or to
        // null with an error number returned.
        let rc =
            unsafe { libc::getpwent_r(pwd.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            // glibc gives the same entry again with a larger buffer.
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == libc::ENOENT || (rc == 0 && found.is_null()) {
            break Ok(());
        }
        if rc != 0 {
            break Err(std::io::Error::from_raw_os_error(rc));
        }
        // SAFETY: rc 0 and `found` non-null: it points to `pwd`, fully
        // initialised, whose strings point into `buf`; both outlive this
        // borrow, and `User::from` copies what it needs.
        users.push(nix::unistd::User::from(unsafe { &*found }));
    };
    // SAFETY: endpwent takes no arguments; it ends the enumeration.
    unsafe { libc::endpwent() };
    result.map(|()| users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_panic_is_logged_and_denies() {
        let logged = RefCell::new(Vec::new());
        let rc = guarded(
            "pam_sm_authenticate",
            |m| logged.borrow_mut().push(m.to_owned()),
            || panic!("boom"),
        );
        assert_eq!(rc, PAM_AUTH_ERR);
        assert_eq!(
            logged.into_inner(),
            ["internal error (panic) in pam_sm_authenticate; denying"]
        );
    }

    #[test]
    fn a_normal_result_passes_through() {
        assert_eq!(guarded("h", |_| {}, || PAM_IGNORE), PAM_IGNORE);
    }

    #[test]
    fn a_response_is_wiped_and_freed() {
        // SAFETY: builds a malloc'd response exactly as a PAM application
        // would, then hands it to take_response, which frees it.
        let answer = unsafe {
            let resp = libc::calloc(1, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
            (*resp).resp = libc::strdup(c"123456".as_ptr());
            take_response(resp)
        };
        assert_eq!(answer.as_deref().map(String::as_str), Some("123456"));
        // SAFETY: a null response is allowed.
        assert!(unsafe { take_response(ptr::null_mut()) }.is_none());
    }
}
