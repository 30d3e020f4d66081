//! The module's TLS for a `rediss://` state server: the TLS library
//! installed beside the module ([`LIBRARY`], built from `tls/`), loaded
//! with `dlopen` when the first TLS session is started.
//!
//! Most hosts never use `rediss://`, and TLS (rustls and its crypto
//! provider) is about half of what a module with it built in weighs. So
//! the module carries none: a host without `rediss://` never maps the
//! library, and one with it pays for the load only at a TLS login.
//!
//! Before loading, the library file and its directory must be root's and
//! writable by nobody else (the same trust as the module itself: whoever
//! can replace either runs code inside sshd). The library is loaded with
//! `RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE` (resolved at once, its symbols
//! kept to itself, never unloaded: code that ran inside the process is not
//! taken away under it), and refused unless it answers the interface
//! version this build expects ([`ABI`]). Its C interface is sans-I/O
//! (`tls/src/ffi.rs`): it never touches a socket; the module keeps the
//! socket and its deadlines (`state::fleet::conn::tls`).

use std::ffi::{c_char, c_void, CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::state::fleet::conn::tls::{PlainRead, TlsConnector, TlsSession, TlsStartError};

/// The file name of the TLS library, looked for in the module's directory.
pub const LIBRARY: &str = "libpam_totp_tls.so";
/// The interface version of `tls/src/ffi.rs` this build speaks.
pub const ABI: u32 = 1;

// The numbers of tls/src/ffi.rs.
const NEW_OK: u32 = 0;
const NEW_NO_CA: u32 = 1;
const NEW_BAD_NAME: u32 = 2;
const ERR: isize = -1;
const NEED_INPUT: isize = -2;
const CLOSED: isize = -3;
/// The longest error text taken from the library.
const MAX_ERROR: usize = 512;

type Handle = *mut c_void;

// The types of tls/src/ffi.rs's functions.
type NewFn = unsafe extern "C" fn(*const u8, usize, *const u8, usize, *mut u32) -> Handle;
type FreeFn = unsafe extern "C" fn(Handle);
type FlagFn = unsafe extern "C" fn(Handle) -> isize;
type OutFn = unsafe extern "C" fn(Handle, *mut u8, usize) -> isize;
type InFn = unsafe extern "C" fn(Handle, *const u8, usize) -> isize;
type ErrorFn = unsafe extern "C" fn(Handle, *mut u8, usize) -> usize;

/// The library's functions.
#[derive(Clone, Copy)]
struct Library {
    new: NewFn,
    free: FreeFn,
    is_handshaking: FlagFn,
    wants_write: FlagFn,
    take_output: OutFn,
    give_input: InFn,
    write_plain: InFn,
    read_plain: OutFn,
    error: ErrorFn,
}

/// The text of `dlerror()`, or `fallback`.
fn dl_error(fallback: &str) -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string that stays
    // valid until the next dl* call on this thread; it is copied at once.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        return fallback.to_owned();
    }
    // SAFETY: non-null, NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Refuses a file or directory that is not root's or that others may
/// write.
fn check_trusted(path: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if meta.uid() != 0 {
        return Err(format!("{what} {} is not owned by root", path.display()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{what} {} is writable by group or others",
            path.display()
        ));
    }
    Ok(())
}

impl Library {
    /// Checks, loads and binds the library at `path`.
    fn load(path: &Path) -> Result<Library, String> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        check_trusted(dir, "the TLS library's directory")?;
        check_trusted(path, "the TLS library")?;
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Err(format!("{} is not a regular file", path.display()));
        }
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| "the TLS library's path holds a NUL byte".to_owned())?;
        // SAFETY: a NUL-terminated path. Loading runs the library's
        // initialisers: the file was checked above to be root's and not
        // writable by others, the same trust as the module's own file.
        let handle = unsafe {
            libc::dlopen(
                c_path.as_ptr(),
                libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
            )
        };
        if handle.is_null() {
            return Err(dl_error("dlopen failed"));
        }
        let sym = |name: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: a live handle from dlopen (never closed) and a
            // NUL-terminated name.
            let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
            if p.is_null() {
                Err(format!("the TLS library lacks {}", name.to_string_lossy()))
            } else {
                Ok(p)
            }
        };
        let abi = sym(c"pam_totp_tls_abi")?;
        // SAFETY: every version of tls/src/ffi.rs defines pam_totp_tls_abi
        // as `extern "C" fn() -> u32`; a library without it failed above.
        let abi = unsafe { std::mem::transmute::<*mut c_void, extern "C" fn() -> u32>(abi) };
        let version = abi();
        if version != ABI {
            return Err(format!(
                "the TLS library speaks interface {version}, this module {ABI}"
            ));
        }
        // Binds one symbol to its function type.
        macro_rules! bind {
            ($name:literal, $ty:ty) => {{
                let p = sym($name)?;
                // SAFETY: the symbol's type is the one tls/src/ffi.rs gives
                // it for interface ABI (checked above), and `$ty` is that
                // type; a non-null function of a library that is never
                // unloaded (RTLD_NODELETE, no dlclose).
                unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
            }};
        }
        Ok(Library {
            new: bind!(c"pam_totp_tls_new", NewFn),
            free: bind!(c"pam_totp_tls_free", FreeFn),
            is_handshaking: bind!(c"pam_totp_tls_is_handshaking", FlagFn),
            wants_write: bind!(c"pam_totp_tls_wants_write", FlagFn),
            take_output: bind!(c"pam_totp_tls_take_output", OutFn),
            give_input: bind!(c"pam_totp_tls_give_input", InFn),
            write_plain: bind!(c"pam_totp_tls_write_plain", InFn),
            read_plain: bind!(c"pam_totp_tls_read_plain", OutFn),
            error: bind!(c"pam_totp_tls_error", ErrorFn),
        })
    }

    fn start(self, server: &str, roots: &[u8]) -> Result<Box<dyn TlsSession>, TlsStartError> {
        let mut code = u32::MAX;
        // SAFETY: both buffers are valid for their lengths during the
        // call, `code` is a writable u32; the library copies what it keeps.
        let handle = unsafe {
            (self.new)(
                server.as_ptr(),
                server.len(),
                roots.as_ptr(),
                roots.len(),
                &mut code,
            )
        };
        if !handle.is_null() && code == NEW_OK {
            return Ok(Box::new(Session { lib: self, handle }));
        }
        if !handle.is_null() {
            // SAFETY: a handle from `new`, freed once, never used again.
            unsafe { (self.free)(handle) };
        }
        Err(match code {
            NEW_NO_CA => TlsStartError::NoCaCertificates,
            NEW_BAD_NAME => TlsStartError::BadServerName,
            other => TlsStartError::Unavailable(format!(
                "the TLS library refused to start a session (code {other})"
            )),
        })
    }
}

/// One session of the library; freed on drop.
struct Session {
    lib: Library,
    handle: Handle,
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the handle came from `new` and is freed only here.
        unsafe { (self.lib.free)(self.handle) };
    }
}

impl Session {
    /// A count from the library, or its error text.
    fn count(&self, n: isize) -> Result<usize, String> {
        usize::try_from(n).map_err(|_| self.error_text(n))
    }

    fn error_text(&self, n: isize) -> String {
        if n != ERR {
            return format!("the TLS library returned {n}");
        }
        let mut buf = vec![0u8; MAX_ERROR];
        // SAFETY: a live handle; `buf` is writable for its length.
        let len = unsafe { (self.lib.error)(self.handle, buf.as_mut_ptr(), buf.len()) };
        buf.truncate(len.min(MAX_ERROR));
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl TlsSession for Session {
    fn is_handshaking(&self) -> bool {
        // SAFETY: a live handle, used by this thread only.
        let n = unsafe { (self.lib.is_handshaking)(self.handle) };
        n == 1
    }

    fn wants_write(&self) -> bool {
        // SAFETY: a live handle, used by this thread only.
        let n = unsafe { (self.lib.wants_write)(self.handle) };
        n == 1
    }

    fn take_output(&mut self, out: &mut [u8]) -> Result<usize, String> {
        // SAFETY: a live handle; `out` is writable for its length.
        let n = unsafe { (self.lib.take_output)(self.handle, out.as_mut_ptr(), out.len()) };
        self.count(n).map(|n| n.min(out.len()))
    }

    fn give_input(&mut self, input: &[u8]) -> Result<usize, String> {
        // SAFETY: a live handle; `input` is readable for its length.
        let n = unsafe { (self.lib.give_input)(self.handle, input.as_ptr(), input.len()) };
        self.count(n).map(|n| n.min(input.len()))
    }

    fn write_plain(&mut self, data: &[u8]) -> Result<usize, String> {
        // SAFETY: a live handle; `data` is readable for its length.
        let n = unsafe { (self.lib.write_plain)(self.handle, data.as_ptr(), data.len()) };
        self.count(n).map(|n| n.min(data.len()))
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> Result<PlainRead, String> {
        // SAFETY: a live handle; `buf` is writable for its length.
        let n = unsafe { (self.lib.read_plain)(self.handle, buf.as_mut_ptr(), buf.len()) };
        match n {
            NEED_INPUT => Ok(PlainRead::NeedInput),
            CLOSED => Ok(PlainRead::Closed),
            n => self.count(n).map(|n| PlainRead::Data(n.min(buf.len()))),
        }
    }
}

/// The path of the module's own file, as the dynamic loader knows it.
fn module_path() -> Result<PathBuf, String> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let here = module_path as *const c_void;
    // SAFETY: `here` is an address inside this module; `info` is writable.
    let found = unsafe { libc::dladdr(here, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err("cannot tell where the module was loaded from".to_owned());
    }
    // SAFETY: dladdr filled in a NUL-terminated name owned by the loader,
    // valid while the module is loaded; it is copied at once.
    let name = unsafe { CStr::from_ptr(info.dli_fname as *const c_char) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    if !path.is_absolute() {
        return Err(format!(
            "the module was loaded by a relative path ({})",
            path.display()
        ));
    }
    Ok(path)
}

/// The TLS library beside the module: what the module's logins use.
#[derive(Debug)]
pub struct BesideModule;

/// The one [`BesideModule`] connector.
pub static BESIDE_MODULE: BesideModule = BesideModule;

static LOADED: OnceLock<Library> = OnceLock::new();

impl TlsConnector for BesideModule {
    fn start(&self, server: &str, roots: &[u8]) -> Result<Box<dyn TlsSession>, TlsStartError> {
        let lib = match LOADED.get() {
            Some(lib) => *lib,
            None => {
                let module = module_path().map_err(TlsStartError::Unavailable)?;
                let path = module.with_file_name(LIBRARY);
                let lib = Library::load(&path).map_err(TlsStartError::Unavailable)?;
                *LOADED.get_or_init(|| lib)
            }
        };
        lib.start(server, roots)
    }
}

/// The TLS library at a given path (the tests and benchmarks, which load
/// the library of their own build).
pub struct LibraryAt {
    path: PathBuf,
}

impl LibraryAt {
    pub fn new(path: &Path) -> LibraryAt {
        LibraryAt {
            path: path.to_owned(),
        }
    }
}

impl fmt::Debug for LibraryAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibraryAt")
            .field("path", &self.path)
            .finish()
    }
}

impl TlsConnector for LibraryAt {
    fn start(&self, server: &str, roots: &[u8]) -> Result<Box<dyn TlsSession>, TlsStartError> {
        let lib = Library::load(&self.path).map_err(TlsStartError::Unavailable)?;
        lib.start(server, roots)
    }
}
