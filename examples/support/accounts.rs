//! The benchmarks' private account database: a mount namespace of their
//! own in which a generated /etc/passwd and /etc/group stand over the
//! machine's, which are never written (examples/load_bench.rs,
//! examples/fleet_bench.rs).

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::ptr;

/// Enters a private mount namespace and bind-mounts `etc`/passwd and
/// `etc`/group over the machine's (after keeping a copy of the machine's,
/// *.orig, to build on). The machine's files are never written; the
/// mounts end with this process.
pub fn private_accounts(etc: &Path) -> Result<(), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("a NUL byte in {s:?}"));
    // SAFETY: unshare has no memory-safety preconditions; the process is
    // still single-threaded, as CLONE_NEWNS requires.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err("unshare(CLONE_NEWNS) failed (run as root)".into());
    }
    let root = c("/")?;
    // SAFETY: valid NUL-terminated strings or null where mount(2) allows.
    let rc = unsafe {
        libc::mount(
            ptr::null(),
            root.as_ptr(),
            ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            ptr::null(),
        )
    };
    if rc != 0 {
        return Err("mount --make-rprivate / failed".into());
    }
    for name in ["passwd", "group"] {
        let ours = etc.join(name);
        let orig = etc.join(format!("{name}.orig"));
        fs::copy(format!("/etc/{name}"), &orig).map_err(|e| format!("copy /etc/{name}: {e}"))?;
        fs::copy(format!("/etc/{name}"), &ours).map_err(|e| format!("copy /etc/{name}: {e}"))?;
        fs::set_permissions(&ours, fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("chmod {}: {e}", ours.display()))?;
        let (s, d) = (c(&ours.to_string_lossy())?, c(&format!("/etc/{name}"))?);
        // SAFETY: valid NUL-terminated paths; null where mount(2) allows.
        let rc = unsafe {
            libc::mount(
                s.as_ptr(),
                d.as_ptr(),
                ptr::null(),
                libc::MS_BIND,
                ptr::null(),
            )
        };
        if rc != 0 {
            return Err(format!("bind {} over /etc/{name}", ours.display()));
        }
    }
    Ok(())
}
