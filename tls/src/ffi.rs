//! The C interface the module calls after `dlopen` (pam-totp's
//! `src/pam/tls.rs` is the other side; keep the two in step and bump
//! [`crate::ABI`] on any change).
//!
//! Every function takes plain pointers and lengths, returns plain
//! numbers, and catches panics: nothing unwinds into the module (a panic
//! is reported as a failure). `pam_totp_tls_abi` returns a constant. A session handle comes from
//! [`pam_totp_tls_new`] and is freed by [`pam_totp_tls_free`], once.
//!
//! Counts are returned as `isize`: zero or more is a number of bytes;
//! [`ERR`] is a failure whose text [`pam_totp_tls_error`] copies out;
//! [`pam_totp_tls_read_plain`] also returns [`NEED_INPUT`] and
//! [`CLOSED`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::slice;

use crate::{Plain, Session, ABI};

/// [`pam_totp_tls_new`]'s codes: the session was made.
pub const NEW_OK: u32 = 0;
/// The roots held no usable certificate.
pub const NEW_NO_CA: u32 = 1;
/// The server name is neither a DNS name nor an IP address.
pub const NEW_BAD_NAME: u32 = 2;
/// The TLS configuration was refused.
pub const NEW_CONFIG: u32 = 3;
/// A bad argument, or an internal error (a panic, caught).
pub const NEW_INTERNAL: u32 = 4;

/// A failure; the text is kept in the session ([`pam_totp_tls_error`]).
pub const ERR: isize = -1;
/// [`pam_totp_tls_read_plain`]: no plain text yet, more input is needed.
pub const NEED_INPUT: isize = -2;
/// [`pam_totp_tls_read_plain`]: the server closed the session cleanly.
pub const CLOSED: isize = -3;

/// What a handle points to: the session and the text of its last failure.
pub struct Handle {
    session: Session,
    error: String,
}

/// A byte slice from a pointer and a length; empty for a zero length
/// (the pointer is then not read, and may be null).
///
/// # Safety
/// Unless `len` is 0, `ptr` must point to `len` readable bytes that stay
/// valid and unchanged for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller promises `len` readable bytes.
    Some(unsafe { slice::from_raw_parts(ptr, len) })
}

/// A mutable byte slice, as [`bytes`].
///
/// # Safety
/// Unless `len` is 0, `ptr` must point to `len` writable bytes, not used
/// elsewhere for `'a`.
unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller promises `len` writable bytes
    // that nothing else uses meanwhile.
    Some(unsafe { slice::from_raw_parts_mut(ptr, len) })
}

/// The interface version; the module refuses a library of another one.
#[no_mangle]
pub extern "C" fn pam_totp_tls_abi() -> u32 {
    ABI
}

/// A new session to `server` (UTF-8, a DNS name or an IP address), trusting
/// the PEM certificates in `roots`. Returns the handle, or null with the
/// reason in `*code` (one of the `NEW_*` numbers; `*code` is always set).
///
/// # Safety
/// `server` and `roots` point to `server_len` and `roots_len` readable
/// bytes; `code` points to a writable `u32`.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_new(
    server: *const u8,
    server_len: usize,
    roots: *const u8,
    roots_len: usize,
    code: *mut u32,
) -> *mut Handle {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's promise for both buffers.
        let (server, roots) = unsafe { (bytes(server, server_len), bytes(roots, roots_len)) };
        let (Some(server), Some(roots)) = (server, roots) else {
            return Err(NEW_INTERNAL);
        };
        let server = std::str::from_utf8(server).map_err(|_| NEW_BAD_NAME)?;
        #[cfg(feature = "panic-probe")]
        if server == "panic-probe.invalid" {
            panic!("panic_probe");
        }
        Session::new(server, roots).map_err(|e| e.code())
    }));
    let (handle, result) = match made {
        Ok(Ok(session)) => (
            Box::into_raw(Box::new(Handle {
                session,
                error: String::new(),
            })),
            NEW_OK,
        ),
        Ok(Err(c)) => (std::ptr::null_mut(), c),
        Err(_) => (std::ptr::null_mut(), NEW_INTERNAL),
    };
    if !code.is_null() {
        // SAFETY: the caller passes a writable u32.
        unsafe { *code = result };
    }
    handle
}

/// Frees a session. Null is ignored.
///
/// # Safety
/// `h` is null or a handle from [`pam_totp_tls_new`] not freed before;
/// it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_free(h: *mut Handle) {
    if h.is_null() {
        return;
    }
    // SAFETY: a live handle from Box::into_raw, given back once.
    let handle = unsafe { Box::from_raw(h) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(handle)));
}

/// Runs `f` on the session behind `h`; a null handle or a panic is
/// [`ERR`], an `Err` is [`ERR`] with its text kept.
///
/// # Safety
/// `h` is a live handle from [`pam_totp_tls_new`], used by no other call
/// at the same time.
unsafe fn with(h: *mut Handle, f: impl FnOnce(&mut Session) -> Result<isize, String>) -> isize {
    if h.is_null() {
        return ERR;
    }
    // SAFETY: a live handle, not used elsewhere during this call.
    let handle = unsafe { &mut *h };
    match catch_unwind(AssertUnwindSafe(|| f(&mut handle.session))) {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            handle.error = e;
            ERR
        }
        Err(_) => {
            handle.error = "internal error (panic) in the TLS library".to_owned();
            ERR
        }
    }
}

fn count(n: usize) -> Result<isize, String> {
    isize::try_from(n).map_err(|_| "count out of range".to_owned())
}

/// 1 while the handshake goes on, 0 after it; [`ERR`] for a null handle.
///
/// # Safety
/// As [`with`].
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_is_handshaking(h: *mut Handle) -> isize {
    // SAFETY: the caller's promise for `h`.
    unsafe { with(h, |s| Ok(isize::from(s.is_handshaking()))) }
}

/// 1 when records wait to be sent, else 0.
///
/// # Safety
/// As [`with`].
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_wants_write(h: *mut Handle) -> isize {
    // SAFETY: the caller's promise for `h`.
    unsafe { with(h, |s| Ok(isize::from(s.wants_write()))) }
}

/// Moves records to send into `out` (at most `cap` bytes); the count.
///
/// # Safety
/// As [`with`]; `out` points to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_take_output(
    h: *mut Handle,
    out: *mut u8,
    cap: usize,
) -> isize {
    // SAFETY: the caller's promises for `h` and `out`.
    unsafe {
        with(h, |s| {
            let out = bytes_mut(out, cap).ok_or("null output buffer")?;
            count(s.take_output(out)?)
        })
    }
}

/// Gives bytes read from the socket; the count taken.
///
/// # Safety
/// As [`with`]; `input` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_give_input(
    h: *mut Handle,
    input: *const u8,
    len: usize,
) -> isize {
    // SAFETY: the caller's promises for `h` and `input`.
    unsafe {
        with(h, |s| {
            let input = bytes(input, len).ok_or("null input buffer")?;
            count(s.give_input(input)?)
        })
    }
}

/// Queues plain text to send; the count queued.
///
/// # Safety
/// As [`with`]; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_write_plain(
    h: *mut Handle,
    data: *const u8,
    len: usize,
) -> isize {
    // SAFETY: the caller's promises for `h` and `data`.
    unsafe {
        with(h, |s| {
            let data = bytes(data, len).ok_or("null data buffer")?;
            count(s.write_plain(data)?)
        })
    }
}

/// Reads plain text into `buf`: the count, [`NEED_INPUT`] or [`CLOSED`].
///
/// # Safety
/// As [`with`]; `buf` points to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_read_plain(
    h: *mut Handle,
    buf: *mut u8,
    cap: usize,
) -> isize {
    // SAFETY: the caller's promises for `h` and `buf`.
    unsafe {
        with(h, |s| {
            let buf = bytes_mut(buf, cap).ok_or("null read buffer")?;
            match s.read_plain(buf)? {
                Plain::Data(n) => count(n),
                Plain::NeedInput => Ok(NEED_INPUT),
                Plain::Closed => Ok(CLOSED),
            }
        })
    }
}

/// Copies the text of the session's last failure into `buf` (at most
/// `cap` bytes, cut at a character boundary); the count copied.
///
/// # Safety
/// As [`with`]; `buf` points to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn pam_totp_tls_error(h: *mut Handle, buf: *mut u8, cap: usize) -> usize {
    if h.is_null() {
        return 0;
    }
    // SAFETY: a live handle, not used elsewhere during this call.
    let handle = unsafe { &*h };
    // SAFETY: the caller's promise for `buf`.
    let Some(buf) = (unsafe { bytes_mut(buf, cap) }) else {
        return 0;
    };
    catch_unwind(AssertUnwindSafe(|| {
        let text = handle.error.as_bytes();
        let mut n = text.len().min(buf.len());
        while n > 0 && !handle.error.is_char_boundary(n) {
            n -= 1;
        }
        buf[..n].copy_from_slice(&text[..n]);
        n
    }))
    .unwrap_or(0)
}
