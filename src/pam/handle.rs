//! libpam, declared here and called over the handle libpam passed to a
//! hook: the items, the user name, syslog, and the conversation.
//!
//! The hooks receive libpam's `pam_handle_t *` as our own opaque
//! [`PamHandle`] pointer; no other crate's private layout is read. pamsm
//! supplies the values of libpam's constants (return codes, log levels,
//! message styles); the few libpam functions the module calls are
//! declared below, each use with its `SAFETY` comment. The conversation
//! is our own (pamsm's `conv()` neither frees nor wipes the reply): the
//! answer is copied into a zeroizing buffer, the C string is wiped and
//! both allocations are freed.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use pamsm::{LogLvl, PamError, PamMsgStyle};
use zeroize::{Zeroize, Zeroizing};

use crate::login::{Level, PamIo};
use crate::state::fleet::conn::tls::TlsConnector;
use crate::sys::command::{CommandError, CommandOutput, CommandSpec};
use crate::sys::hook::{HookError, HookSpec};

pub(crate) const PAM_SUCCESS: c_int = PamError::SUCCESS as c_int;
pub(crate) const PAM_AUTH_ERR: c_int = PamError::AUTH_ERR as c_int;
pub(crate) const PAM_IGNORE: c_int = PamError::IGNORE as c_int;
// Item types of <security/_pam_types.h>.
const PAM_SERVICE: c_int = 1;
const PAM_RHOST: c_int = 4;
const PAM_CONV: c_int = 5;
const PAM_AUTHTOK: c_int = 6;

/// libpam's `pam_handle_t`, opaque: only ever behind a pointer.
#[repr(C)]
pub struct PamHandle {
    _opaque: [u8; 0],
}

/// `struct pam_message` from <security/pam_appl.h>.
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_response`.
#[repr(C)]
pub(crate) struct PamResponse {
    pub(crate) resp: *mut c_char,
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
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// [`PamIo`] over the live handle of one hook call.
pub(crate) struct LibPam {
    pamh: *mut PamHandle,
}

impl LibPam {
    /// # Safety
    /// `pamh` is the handle libpam passed to the running hook; the value
    /// is used only during that call.
    pub(crate) unsafe fn new(pamh: *mut PamHandle) -> LibPam {
        LibPam { pamh }
    }

    /// A string item (`PAM_SERVICE`, `PAM_RHOST`, `PAM_AUTHTOK`), copied.
    fn item(&self, item_type: c_int) -> Option<Zeroizing<String>> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: the handle is live for the hook call (see `new`), and
        // pam_get_item writes one pointer to `item`.
        let rc = unsafe { pam_get_item(self.pamh, item_type, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return None;
        }
        // SAFETY: the string items are NUL-terminated strings libpam keeps
        // until they are set again or pam_end; we copy at once.
        let s = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
        s.to_str().ok().map(|s| Zeroizing::new(s.to_owned()))
    }

    /// Syslog at a raw priority, through libpam (LOG_AUTHPRIV, prefixed
    /// with the module's name). A message with a NUL is not logged.
    pub(crate) fn syslog(&self, priority: c_int, msg: &str) {
        let Ok(msg) = CString::new(msg) else {
            return;
        };
        // SAFETY: the handle is live; "%s" takes exactly the one
        // NUL-terminated string passed, so the message is never a format.
        unsafe { pam_syslog(self.pamh, priority, c"%s".as_ptr(), msg.as_ptr()) };
    }

    /// One prompt through the application's conversation function.
    fn converse(&self, style: c_int, text: &str) -> Option<Zeroizing<String>> {
        let text = CString::new(text).ok()?;
        let mut item: *const c_void = ptr::null();
        // SAFETY: the handle is live for the duration of the hook, and
        // pam_get_item writes one pointer to `item`.
        let rc = unsafe { pam_get_item(self.pamh, PAM_CONV, &mut item) };
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
pub(crate) unsafe fn take_response(resp: *mut PamResponse) -> Option<Zeroizing<String>> {
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

impl PamIo for LibPam {
    fn user(&mut self) -> Option<String> {
        let mut user: *const c_char = ptr::null();
        // SAFETY: the handle is live; pam_get_user writes one pointer to
        // `user` (prompting through the conversation if PAM_USER is unset);
        // a null prompt means libpam's default.
        let rc = unsafe { pam_get_user(self.pamh, &mut user, ptr::null()) };
        if rc != PAM_SUCCESS || user.is_null() {
            return None;
        }
        // SAFETY: PAM_USER, a NUL-terminated string libpam keeps; copied.
        let name = unsafe { CStr::from_ptr(user) }.to_str().ok()?;
        Some(name.to_owned()).filter(|u| !u.is_empty())
    }

    fn service(&self) -> Option<String> {
        self.item(PAM_SERVICE).map(|s| s.to_string())
    }

    fn rhost(&self) -> Option<String> {
        self.item(PAM_RHOST).map(|s| s.to_string())
    }

    fn authtok(&self) -> Option<Zeroizing<String>> {
        self.item(PAM_AUTHTOK)
    }

    fn set_authtok(&mut self, value: &str) -> bool {
        let Ok(c) = CString::new(value) else {
            return false;
        };
        // SAFETY: the handle is live; libpam copies the string item.
        let rc = unsafe { pam_set_item(self.pamh, PAM_AUTHTOK, c.as_ptr().cast()) };
        // Our copy is wiped right after.
        c.into_bytes().zeroize();
        rc == PAM_SUCCESS
    }

    fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<String>> {
        let style = if echo {
            PamMsgStyle::PROMPT_ECHO_ON
        } else {
            PamMsgStyle::PROMPT_ECHO_OFF
        };
        self.converse(style as c_int, text)
    }

    fn error_message(&mut self, text: &str) {
        // Whether the application showed it or not, the login goes on.
        let _ = self.converse(PamMsgStyle::ERROR_MSG as c_int, text);
    }

    fn info_message(&mut self, text: &str) {
        // Whether the application showed it or not, the login goes on.
        let _ = self.converse(PamMsgStyle::TEXT_INFO as c_int, text);
    }

    // secret_command= (issue 14): the safe runner in sys, with the
    // child-side confinement that needs `unsafe` (confine.rs).
    fn run_secret_command(&self, spec: &CommandSpec) -> Result<CommandOutput, CommandError> {
        crate::sys::command::run(spec, super::confine::confine_command)
    }

    // notify= (issue 16): detached, never waited for (notify.rs).
    fn run_notify(&self, spec: &HookSpec) -> Result<(), HookError> {
        super::notify::spawn_detached(spec)
    }

    fn tls(&self) -> Option<&'static dyn TlsConnector> {
        Some(&super::tls::BESIDE_MODULE)
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
        self.syslog(lvl as c_int, msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
