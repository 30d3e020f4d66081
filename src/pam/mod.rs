//! The PAM edge: the exported `pam_sm_*` hooks and every `unsafe` block of
//! the crate (here and in [`handle`], [`passwd`], `confine`, the child
//! side of `secret_command=`, and [`notify`] with `supervisor`, the
//! detached run of a `notify=` hook).
//!
//! Each hook runs its body under `catch_unwind`: a panic is logged and
//! becomes PAM_AUTH_ERR, it never unwinds into sshd or sudo. The login
//! itself is [`crate::login::authenticate`], safe code over the
//! [`PamIo`](crate::login::PamIo) trait that [`handle::LibPam`] implements.

mod confine;
pub(crate) mod handle;
pub mod notify;
pub mod passwd;
mod supervisor;
pub mod tls;

use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use pamsm::LogLvl;

use crate::login::{self, Level, PamIo, Verdict};
use handle::{LibPam, PamHandle, PAM_AUTH_ERR, PAM_IGNORE, PAM_SUCCESS};

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
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: `pamh` is the handle of this very call.
    let edge = unsafe { LibPam::new(pamh) };
    guarded(
        "pam_sm_authenticate",
        |m| edge.syslog(LogLvl::CRIT as c_int, m),
        || {
            // SAFETY: `pamh` is the handle of this very call.
            let mut io = unsafe { LibPam::new(pamh) };
            // SAFETY: forwarded from libpam's call of this hook.
            let Some(args) = (unsafe { collect_args(argc, argv) }) else {
                io.log(
                    Level::Err,
                    "configuration error: a module argument is not UTF-8; denying",
                );
                return PAM_AUTH_ERR;
            };
            #[cfg(feature = "panic-probe")]
            if args.iter().any(|a| a == "panic_probe") {
                panic!("panic_probe");
            }
            let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
                io.log(Level::Err, "the system clock is before 1970; denying");
                return PAM_AUTH_ERR;
            };
            match login::authenticate(&mut io, &args, now.as_secs()) {
                Verdict::Success => PAM_SUCCESS,
                Verdict::AuthErr => PAM_AUTH_ERR,
                Verdict::Ignore => PAM_IGNORE,
            }
        },
    )
}

/// Credentials are not this module's business, but sshd aborts the login
/// if setcred fails, so it succeeds.
///
/// # Safety
/// Called by libpam.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
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
    _pamh: *mut PamHandle,
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
    _pamh: *mut PamHandle,
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
    _pamh: *mut PamHandle,
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
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
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
}
