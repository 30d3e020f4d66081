//! A user's secret file, found and read the way the module and the tool
//! both do: with the owner's identity in their home, as root elsewhere,
//! through [`open_checked_at`].
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::sys::atomic::parent_dir;
use crate::sys::identity::FsIdentity;
use crate::sys::open::{open_checked_at, Broken, OpenError, Owner, Rules};
use crate::sys::users::UserInfo;

/// Largest secret file read. Real ones are a few hundred bytes.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Whether `user`'s secret file at `path` is accessed with the user's own
/// filesystem identity: files under the home directory are; system-wide
/// ones (root-owned) are accessed as root. The module and the tool use the
/// same rule, so the tool writes a file the way the module will read it.
pub fn accessed_as_owner(user: &UserInfo, path: &Path) -> bool {
    user.home != Path::new("/") && path.starts_with(&user.home)
}

/// Why a secret file was refused.
#[derive(Debug)]
pub enum ReadError {
    /// No file at that path, in a directory that is there and searchable:
    /// the user is not enrolled.
    NotFound,
    /// The directory that should hold the file cannot be used: missing (a
    /// home directory not created or not mounted), not a directory, or not
    /// searchable. Never "not enrolled": the file may well exist.
    NoDirectory {
        dir: PathBuf,
        err: io::Error,
    },
    /// The filesystem identity of the file's owner could not be taken.
    Identity(io::Error),
    Symlink,
    NotRegular,
    BadOwner {
        uid: u32,
        /// Outside the user's home, where only root may own the file.
        system_wide: bool,
    },
    BadMode {
        mode: u32,
    },
    Empty,
    TooLarge {
        size: u64,
    },
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("no such file"),
            ReadError::NoDirectory { dir, err } => {
                let why = match err.raw_os_error() {
                    Some(libc::ENOENT) => {
                        "does not exist (a home directory missing or not mounted?)".to_owned()
                    }
                    Some(libc::ENOTDIR) => "is not a directory".to_owned(),
                    Some(libc::EACCES) => "cannot be searched (permission denied)".to_owned(),
                    _ => format!("cannot be opened: {err}"),
                };
                write!(
                    f,
                    "cannot be looked for: the directory {} {why}",
                    dir.display()
                )
            }
            ReadError::Identity(e) => write!(f, "cannot be read: {e}"),
            ReadError::Symlink => f.write_str("is a symbolic link"),
            ReadError::NotRegular => f.write_str("is not a regular file"),
            ReadError::BadOwner {
                uid,
                system_wide: false,
            } => {
                write!(f, "owned by uid {uid}, not by the user or root")
            }
            ReadError::BadOwner {
                uid,
                system_wide: true,
            } => write!(
                f,
                "owned by uid {uid}, not by root (a secret file outside the user's \
                 home directory must be root's)"
            ),
            ReadError::BadMode { mode } => write!(
                f,
                "mode {:04o} gives access to group or others (chmod 600)",
                mode & 0o7777
            ),
            ReadError::Empty => f.write_str("is empty"),
            ReadError::TooLarge { size } => {
                write!(f, "is {size} bytes, over the {MAX_SECRET_FILE}-byte limit")
            }
            ReadError::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Opens and reads a secret file that belongs to `owner`.
///
/// The file must be a regular file (the last component is not followed if it
/// is a symlink), non-empty and at most [`MAX_SECRET_FILE`] bytes, with no
/// group or other permission bits. In the owner's home directory it must be
/// owned by the owner or by root; anywhere else (a system-wide file, see
/// [`accessed_as_owner`]) by root, since only root may decide what a
/// system-wide file says. When `as_owner` is set, the file is opened with
/// the owner's filesystem identity.
///
/// [`ReadError::NotFound`] ("not enrolled") only when the directory that
/// should hold the file is there and searchable with that same identity
/// and the file is not in it: the directory is opened first, then the file
/// in it, so a missing or unmounted home, a path through a regular file or
/// a directory that cannot be searched is [`ReadError::NoDirectory`] or
/// [`ReadError::Io`], never "not enrolled".
pub fn read_secret_file(
    path: &Path,
    owner: &UserInfo,
    as_owner: bool,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| ReadError::Io(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let system_wide = !accessed_as_owner(owner, path);
    let rules = Rules {
        owner: if system_wide {
            Owner::Root
        } else {
            Owner::RootOr(owner.uid)
        },
        forbidden_mode: 0o077,
        max_size: MAX_SECRET_FILE,
    };
    let _identity = match as_owner {
        true => Some(FsIdentity::assume(owner.uid, owner.gid).map_err(ReadError::Identity)?),
        false => None,
    };
    // O_PATH: the directory need not be readable, only reachable; its
    // own search permission is checked when the file is opened in it.
    let dir_fd: OwnedFd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|err| ReadError::NoDirectory {
            dir: dir.to_owned(),
            err,
        })?
        .into();
    let bytes = open_checked_at(&dir_fd, name, &rules).map_err(|e| match e {
        OpenError::NotFound => ReadError::NotFound,
        OpenError::Symlink => ReadError::Symlink,
        OpenError::Rule(Broken::NotRegular, _) => ReadError::NotRegular,
        OpenError::Rule(Broken::Owner, f) => ReadError::BadOwner {
            uid: f.uid,
            system_wide,
        },
        OpenError::Rule(Broken::Mode, f) => ReadError::BadMode { mode: f.mode },
        OpenError::Rule(Broken::TooLarge, f) => ReadError::TooLarge { size: f.size },
        OpenError::Io(e) => ReadError::Io(e),
    })?;
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(bytes)
}
