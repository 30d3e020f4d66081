//! Files and identities: looking users up, opening secret files safely,
//! switching the filesystem identity, writing files atomically.
//!
//! Every check is made on the opened descriptor (fstat), never on a path
//! that could change between the check and the use.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{self, Gid, Uid};
use zeroize::Zeroizing;

/// Largest secret file read. Real ones are a few hundred bytes.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// What the module needs to know about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Whether `user`'s secret file at `path` is accessed with the user's own
/// filesystem identity: files under the home directory are; system-wide
/// ones (root-owned) are accessed as root. The module and the tool use the
/// same rule, so the tool writes a file the way the module will read it.
pub fn accessed_as_owner(user: &UserInfo, path: &Path) -> bool {
    user.home != Path::new("/") && path.starts_with(&user.home)
}

/// Whether a user name is one this module will handle: it becomes a file
/// name in the state directory, so it must be a plain, short name.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| !c.is_control() && c != '/' && !c.is_whitespace())
}

/// Looks an account up in the passwd database. `Ok(None)`: no such user.
pub fn lookup_user(name: &str) -> io::Result<Option<UserInfo>> {
    if !valid_user_name(name) {
        return Ok(None);
    }
    let user = unistd::User::from_name(name).map_err(io::Error::from)?;
    Ok(user.map(|u| UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    }))
}

/// Looks an account up by uid.
pub fn lookup_uid(uid: u32) -> io::Result<Option<UserInfo>> {
    let user = unistd::User::from_uid(Uid::from_raw(uid)).map_err(io::Error::from)?;
    Ok(user.map(|u| UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    }))
}

/// Every account the passwd database lists (getpwent: local files and the
/// NSS modules that enumerate; SSSD or LDAP set not to enumerate list
/// nothing), each name once, in the database's order. Names this module
/// would not handle ([`valid_user_name`]) are left out.
pub fn all_users() -> io::Result<Vec<UserInfo>> {
    let mut seen = std::collections::HashSet::new();
    Ok(crate::pam::enumerate_users()?
        .into_iter()
        .filter(|u| valid_user_name(&u.name) && seen.insert(u.name.clone()))
        .map(|u| UserInfo {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })
        .collect())
}

/// The name of the account whose replay state and rate limit a login as
/// `name` uses: the canonical name of the account the name resolves to.
///
/// Several names can resolve to one account: two passwd lines with one
/// uid (`root` and `toor`), or NSS modules that answer to other spellings
/// (SSSD's case-insensitive and fully-qualified names, `Alice` and
/// `alice@example.com` for `alice`). Keyed by the typed name, each
/// spelling would have its own record of spent codes and its own failure
/// budget. So: `getpwnam(name)` gives the uid; the canonical name is
/// `getpwuid(uid)`'s `pw_name`; and `getpwnam(canonical)` must give the
/// same uid back, or the databases disagree and the login is refused
/// (`Err`, the reason for the log).
pub fn state_account(name: &str) -> Result<String, String> {
    let user = lookup_user(name)
        .map_err(|e| format!("user lookup failed: {e}"))?
        .ok_or_else(|| format!("no account named {name:?}"))?;
    canonical_name(&user)
}

/// The canonical name of `user`'s account (see [`state_account`]).
pub fn canonical_name(user: &UserInfo) -> Result<String, String> {
    let uid = user.uid;
    let by_uid = lookup_uid(uid)
        .map_err(|e| format!("lookup of uid {uid} failed: {e}"))?
        .ok_or_else(|| format!("uid {uid} of {:?} has no passwd entry", user.name))?;
    let back = lookup_user(&by_uid.name)
        .map_err(|e| format!("user lookup failed: {e}"))?
        .ok_or_else(|| {
            format!(
                "uid {uid} is named {:?}, which does not resolve as a user name",
                by_uid.name
            )
        })?;
    if back.uid != uid {
        return Err(format!(
            "uid {uid} is named {:?}, which resolves to uid {}",
            by_uid.name, back.uid
        ));
    }
    Ok(by_uid.name)
}

/// Whether a group of that name exists.
pub fn group_exists(group: &str) -> io::Result<bool> {
    Ok(unistd::Group::from_name(group)
        .map_err(io::Error::from)?
        .is_some())
}

/// Whether `user` belongs to the group `group` (primary or supplementary).
/// A group that does not exist has no members.
pub fn in_group(user: &UserInfo, group: &str) -> io::Result<bool> {
    let Some(g) = unistd::Group::from_name(group).map_err(io::Error::from)? else {
        return Ok(false);
    };
    if g.gid.as_raw() == user.gid || g.mem.iter().any(|m| m == &user.name) {
        return Ok(true);
    }
    let name = std::ffi::CString::new(user.name.as_str())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let groups = unistd::getgrouplist(&name, Gid::from_raw(user.gid)).map_err(io::Error::from)?;
    Ok(groups.contains(&g.gid))
}

/// While alive, file accesses of this process are checked as another user
/// (setfsuid/setfsgid); dropping it restores the previous identity. So root
/// reads a file in a home directory with exactly the rights of its owner,
/// which also works on root-squashed NFS homes.
///
/// Both changes are read back. setfsuid/setfsgid report no error: a
/// process without CAP_SETUID/CAP_SETGID is silently left with its own
/// identity, so [`FsIdentity::assume`] checks that the new identity took
/// effect and fails (with the old one restored) if it did not.
///
/// Restoring is checked too. A process that cannot get its own filesystem
/// identity back would go on (in sshd, sudo, login) creating and opening
/// files as the user, so it must not go on at all: it aborts. The kernel
/// always lets a process return to the fsuid it had (it is its effective
/// uid), so this is a guard against the impossible, never a way to deny.
pub struct FsIdentity {
    uid: Uid,
    gid: Gid,
}

/// setfsuid/setfsgid with an id that is never valid change nothing and
/// return the current one: the only way to read the filesystem identity.
const NO_ID: u32 = u32::MAX;

fn current_fsuid() -> Uid {
    unistd::setfsuid(Uid::from_raw(NO_ID))
}

fn current_fsgid() -> Gid {
    unistd::setfsgid(Gid::from_raw(NO_ID))
}

impl FsIdentity {
    /// Takes the filesystem identity `uid`/`gid`, or fails (changing
    /// nothing) if the kernel did not let it take effect.
    pub fn assume(uid: u32, gid: u32) -> io::Result<FsIdentity> {
        // Group first: once the uid is dropped the group may not be changeable.
        let old_gid = unistd::setfsgid(Gid::from_raw(gid));
        let old_uid = unistd::setfsuid(Uid::from_raw(uid));
        let identity = FsIdentity {
            uid: old_uid,
            gid: old_gid,
        };
        let (now_uid, now_gid) = (current_fsuid().as_raw(), current_fsgid().as_raw());
        if now_uid != uid || now_gid != gid {
            // Dropping `identity` puts the old ids back.
            drop(identity);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "could not take the filesystem identity uid {uid} gid {gid}                      (still uid {now_uid} gid {now_gid})"
                ),
            ));
        }
        Ok(identity)
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        unistd::setfsuid(self.uid);
        unistd::setfsgid(self.gid);
        if current_fsuid() != self.uid || current_fsgid() != self.gid {
            // See the type's documentation: never go on with the user's
            // identity. abort() does not unwind, so nothing crosses FFI.
            std::process::abort();
        }
    }
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
    let opened = {
        let _identity = match as_owner {
            true => Some(FsIdentity::assume(owner.uid, owner.gid).map_err(ReadError::Identity)?),
            false => None,
        };
        // O_PATH: the directory need not be readable, only reachable; its
        // own search permission is checked when the file is opened in it.
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(dir)
            .map_err(|err| ReadError::NoDirectory {
                dir: dir.to_owned(),
                err,
            })
            .and_then(|d| {
                fcntl::openat(
                    &d,
                    name,
                    // O_NONBLOCK: a FIFO planted at the path must not hang the login.
                    OFlag::O_RDONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_NOCTTY
                        | OFlag::O_NONBLOCK
                        | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    Errno::ENOENT => ReadError::NotFound,
                    Errno::ELOOP => ReadError::Symlink,
                    e => ReadError::Io(io::Error::from(e)),
                })
            })
    };
    let mut file = File::from(opened?);
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular);
    }
    let system_wide = !accessed_as_owner(owner, path);
    if meta.uid() != 0 && (system_wide || meta.uid() != owner.uid) {
        return Err(ReadError::BadOwner {
            uid: meta.uid(),
            system_wide,
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(ReadError::BadMode { mode: meta.mode() });
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(ReadError::TooLarge { size: meta.len() });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    // Read one byte past the limit in case the file grew since fstat.
    (&mut file)
        .take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    if bytes.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(bytes)
}

/// Reads a system configuration file. `Ok(None)`: it does not exist. It
/// must be a regular file owned by root that only root may write, because
/// it decides who needs a second factor.
pub fn read_config_file(path: &Path) -> Result<Option<String>, String> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("is a symbolic link".into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.uid() != 0 {
        return Err(format!("owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:04o} lets others write to it",
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(format!("is {} bytes, over the limit", meta.len()));
    }
    let mut text = String::new();
    (&mut file)
        .take(MAX_SECRET_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok(Some(text))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_users_lists_root_once() {
        let users = all_users().unwrap();
        let roots: Vec<_> = users.iter().filter(|u| u.name == "root").collect();
        assert_eq!(roots.len(), 1, "{users:?}");
        assert_eq!((roots[0].uid, roots[0].gid), (0, 0));
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("svc.backup"));
        assert!(valid_user_name("DOMAIN\\bob"));
        for bad in ["", ".", "..", ".x", "-x", "a/b", "a b", "a\nb", "a\0b"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
