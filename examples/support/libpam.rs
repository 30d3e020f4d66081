//! The libpam application interface the examples use (from
//! <security/pam_appl.h>), and a conversation that answers every prompt
//! with one string. Shared by pam_client, bench and load_bench through
//! `#[path]`; each uses a part of it.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::{Duration, Instant};

#[repr(C)]
pub struct PamMessage {
    pub msg_style: c_int,
    pub msg: *const c_char,
}

#[repr(C)]
pub struct PamResponse {
    pub resp: *mut c_char,
    pub resp_retcode: c_int,
}

pub type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
pub struct PamConv {
    pub conv: ConvFn,
    pub appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    pub fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    pub fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    pub fn pam_setcred(pamh: *mut c_void, flags: c_int) -> c_int;
    pub fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    pub fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    pub fn pam_get_item(pamh: *mut c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

pub const PAM_SUCCESS: c_int = 0;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_CONV_ERR: c_int = 19;
pub const PAM_RHOST: c_int = 4;
pub const PAM_AUTHTOK: c_int = 6;
pub const PAM_ESTABLISH_CRED: c_int = 0x2;
pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
pub const PAM_PROMPT_ECHO_ON: c_int = 2;

/// A conversation that answers every message with the NUL-terminated
/// string `appdata` points to.
///
/// # Safety
/// Called by libpam; `appdata` must be a NUL-terminated string that lives
/// for the whole pam_authenticate.
pub unsafe extern "C" fn answer(
    num_msg: c_int,
    _msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let n = num_msg.max(1) as usize;
    // SAFETY: calloc of n zeroed responses; libpam's caller frees them.
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_CONV_ERR;
    }
    for i in 0..n {
        // SAFETY: i < n, inside the array; appdata is the NUL-terminated
        // answer the caller keeps alive for the whole pam_authenticate.
        unsafe { (*replies.add(i)).resp = libc::strdup(appdata as *const c_char) };
    }
    // SAFETY: resp is the caller's out pointer.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// One login of `user` through `service` in `confdir`, answering with
/// `code`: (time of pam_authenticate, time of pam_start..pam_end, its
/// result). `Err` if the arguments hold a NUL or pam_start fails.
pub fn timed_login(
    confdir: &Path,
    service: &str,
    user: &str,
    code: &str,
) -> Result<(Duration, Duration, c_int), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("NUL in {s:?}"));
    let (service, user, code) = (c(service)?, c(user)?, c(code)?);
    let confdir = c(&confdir.to_string_lossy())?;
    let conv = PamConv {
        conv: answer,
        appdata_ptr: code.as_ptr() as *mut c_void,
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    let whole = Instant::now();
    // SAFETY: NUL-terminated strings and a conversation that outlive the
    // handle, which pam_end closes below.
    let rc = unsafe {
        pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        )
    };
    if rc != PAM_SUCCESS {
        return Err(format!("pam_start_confdir: {rc}"));
    }
    let auth = Instant::now();
    // SAFETY: a live handle.
    let rc = unsafe { pam_authenticate(pamh, 0) };
    let auth = auth.elapsed();
    // SAFETY: ends the handle once.
    unsafe { pam_end(pamh, rc) };
    Ok((auth, whole.elapsed(), rc))
}

/// The module cargo built next to this example (target/<profile>/examples/X
/// → target/<profile>/libpam_totp.so, or deps/ after `cargo test`).
pub fn built_module() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    [
        profile.join("libpam_totp.so"),
        profile.join("deps/libpam_totp.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| "libpam_totp.so not found; build it or pass --module PATH".to_owned())
}
