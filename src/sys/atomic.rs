//! Atomic, durable replacement of files: a temporary file beside the
//! target, flushed, renamed over it, and the directory flushed.
#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory (created exclusively, so never through a symlink), written,
/// given `mode`, flushed to disk, renamed over `path`, and the directory
/// flushed. A symlink at `path` is replaced, not followed. Readers see the
/// old file or the new one, never a mix; a crash leaves at most a stray
/// temporary file, which no login ever looks at.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, contents, mode)?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent_dir(path))
}

/// Like [`write_atomic`], but never replaces anything: if `path` exists
/// (a file, a symlink, anything), it fails with `AlreadyExists` and leaves
/// both it and the directory as they were. The check and the creation are
/// one step (link or `renameat2(RENAME_NOREPLACE)`), so no race can slip a
/// file in between.
pub fn write_atomic_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp(path, contents, mode)?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(parent_dir(path))
}

/// A temporary file beside `path` holding `contents` with `mode`, on disk.
fn write_temp(path: &Path, contents: &[u8], mode: u32) -> io::Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.as_file_mut().write_all(contents)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// The directory a path is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a directory's entries (after a rename or unlink in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
