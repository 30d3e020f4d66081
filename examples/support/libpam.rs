//! The libpam application interface the examples use (from
//! <security/pam_appl.h>), and a conversation that answers every prompt
//! with one string. Shared by pam_client, bench and load_bench through
//! `#[path]`; each uses a part of it.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void};

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
