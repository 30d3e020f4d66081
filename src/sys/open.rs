//! The one way a file the module trusts is opened and read.
//!
//! `O_NOFOLLOW` (a symlink at the path is refused, not followed),
//! `O_NONBLOCK` (a FIFO planted there cannot hang a login), then every
//! check on the opened descriptor (fstat), never on a path that could
//! change in between: a regular file, its owner, its mode, its size; then
//! a read bounded by the size cap (one byte past it, in case the file grew
//! since the fstat). Secret files, state files, the host key, config.toml
//! and the fleet credentials file all go through [`open_checked`]; a
//! state file a login writes back in place, through [`open_checked_rw`]
//! (the same, opened for writing too).
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use zeroize::Zeroizing;

/// Who may own a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Anyone (the state directory's files: the directory is checked).
    Any,
    Root,
    /// Root or this uid (a user's own secret file in their home).
    RootOr(u32),
    /// Root or this process's effective uid.
    RootOrEuid,
}

/// What a file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    pub owner: Owner,
    /// Mode bits that must all be clear (`0o077`: no group or other
    /// access; `0o022`: nobody else may write).
    pub forbidden_mode: u32,
    /// The largest size read.
    pub max_size: u64,
}

/// What the descriptor's fstat said, for the messages of the callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub uid: u32,
    pub mode: u32,
    pub size: u64,
}

/// Which rule the file broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    NotRegular,
    Owner,
    Mode,
    TooLarge,
}

/// Why a file was not read.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing at that path.
    NotFound,
    /// A symbolic link at that path.
    Symlink,
    /// The file is there but broke a rule.
    Rule(Broken, Found),
    /// Opening or reading failed otherwise.
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("does not exist"),
            OpenError::Symlink => f.write_str("is a symbolic link"),
            OpenError::Rule(Broken::NotRegular, _) => f.write_str("is not a regular file"),
            OpenError::Rule(Broken::Owner, found) => write!(f, "owned by uid {}", found.uid),
            OpenError::Rule(Broken::Mode, found) => {
                write!(f, "mode {:04o} is too open", found.mode & 0o7777)
            }
            OpenError::Rule(Broken::TooLarge, found) => {
                write!(f, "is {} bytes, over the limit", found.size)
            }
            OpenError::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

impl std::error::Error for OpenError {}

const FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC);

fn open_error(e: Errno) -> OpenError {
    match e {
        Errno::ENOENT => OpenError::NotFound,
        Errno::ELOOP => OpenError::Symlink,
        e => OpenError::Io(io::Error::from(e)),
    }
}

/// Opens `path` and reads it whole, under `rules`.
pub fn open_checked(path: &Path, rules: &Rules) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let file = open(path, false)?;
    read_checked(&file, rules)
}

/// Like [`open_checked`], with the file opened for writing too (`O_RDWR`,
/// the same flags, the same checks on the descriptor): the descriptor is
/// returned with the bytes, for a caller that writes back in place
/// through it (the state file). An existing file only: nothing is
/// created. A path the open itself refuses for writing (a directory, a
/// read-only filesystem) is [`OpenError::Io`].
pub fn open_checked_rw(
    path: &Path,
    rules: &Rules,
) -> Result<(File, Zeroizing<Vec<u8>>), OpenError> {
    let file = open(path, true)?;
    let bytes = read_checked(&file, rules)?;
    Ok((file, bytes))
}

fn open(path: &Path, write: bool) -> Result<File, OpenError> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(FLAGS.bits() & !libc::O_RDONLY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(n) => open_error(Errno::from_raw(n)),
            None => OpenError::Io(e),
        })
}

/// Like [`open_checked`], for the entry `name` of the directory `dir`
/// (already open, so the directory cannot be swapped in between).
pub fn open_checked_at(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    rules: &Rules,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let fd = fcntl::openat(dir, name, FLAGS, Mode::empty()).map_err(open_error)?;
    read_checked(&File::from(fd), rules)
}

fn read_checked(file: &File, rules: &Rules) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let meta = file.metadata().map_err(OpenError::Io)?;
    let found = Found {
        uid: meta.uid(),
        mode: meta.mode(),
        size: meta.len(),
    };
    let broken = |b| Err(OpenError::Rule(b, found));
    if !meta.file_type().is_file() {
        return broken(Broken::NotRegular);
    }
    let owner_ok = match rules.owner {
        Owner::Any => true,
        Owner::Root => found.uid == 0,
        Owner::RootOr(uid) => found.uid == 0 || found.uid == uid,
        Owner::RootOrEuid => found.uid == 0 || found.uid == nix::unistd::geteuid().as_raw(),
    };
    if !owner_ok {
        return broken(Broken::Owner);
    }
    if found.mode & rules.forbidden_mode != 0 {
        return broken(Broken::Mode);
    }
    if found.size > rules.max_size {
        return broken(Broken::TooLarge);
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(found.size as usize));
    file.take(rules.max_size + 1)
        .read_to_end(&mut bytes)
        .map_err(OpenError::Io)?;
    if bytes.len() as u64 > rules.max_size {
        let size = bytes.len() as u64;
        return Err(OpenError::Rule(Broken::TooLarge, Found { size, ..found }));
    }
    Ok(bytes)
}
