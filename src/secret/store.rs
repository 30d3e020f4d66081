//! A new secret file saved where the module looks for it, for the tool's
//! `enroll` (and friends) and the module's enrollment at login alike: the
//! host key it is sealed to, when there is one, and the write itself
//! (atomic, mode 0600, with the owner's filesystem identity under their
//! home, read back as the module will read it), and the locks that keep
//! sealing and `pam-totp host-key` commands apart (`host.key.lock`, the
//! key's directory).
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use nix::unistd::geteuid;

use crate::secret::enrollment::{FormatError, SerializeError};
use crate::secret::native::SecretFile;
use crate::secret::seal::{self, HostPublicKey, SealError};
use crate::sys::atomic;
use crate::sys::identity::FsIdentity;
use crate::sys::secret_file::{self, ReadError};
use crate::sys::users::UserInfo;

/// Mode of every secret file written.
pub const SECRET_MODE: u32 = 0o600;

/// Why the host key a new secret would be sealed to cannot be used.
#[derive(Debug)]
pub enum SealingError {
    /// host.pub exists but cannot be read.
    Public(SealError),
    /// host.key cannot be read.
    Private(SealError),
    /// host.pub is not host.key's public half.
    Mismatch,
}

impl fmt::Display for SealingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealingError::Public(e) | SealingError::Private(e) => e.fmt(f),
            SealingError::Mismatch => f.write_str("host.pub is not the public half of host.key"),
        }
    }
}

impl std::error::Error for SealingError {}

/// The host key a new secret is sealed to, as it was found when the
/// enrollment began (before anything was shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingKey {
    public: HostPublicKey,
    host_key: PathBuf,
    check_private: bool,
}

impl SealingKey {
    /// host.pub's key.
    pub fn public(&self) -> &HostPublicKey {
        &self.public
    }

    /// Keeps `pam-totp host-key` commands from changing the key while a
    /// secret is sealed to it and written: a shared lock ([`hold_key`]:
    /// of the key's lock file as root, of its directory as another user),
    /// which their exclusive locks exclude (not waited for: a command at
    /// work is [`HoldError::Busy`]). Under it the key is looked up again,
    /// and one that changed since the enrollment began (a rotation in
    /// between) is [`HoldError::Changed`]: a secret sealed to a key that a
    /// rotation has already passed would never be resealed, and would stop
    /// opening once the old key is dropped.
    pub fn hold(&self) -> Result<KeyHold, HoldError> {
        let hold = hold_key(&self.host_key)?;
        match sealing_key(&self.host_key, self.check_private) {
            Ok(Some(now)) if now == *self => Ok(hold),
            _ => Err(HoldError::Changed(self.host_key.clone())),
        }
    }
}

/// Holds `host_key` as [`SealingKey::hold`] does, without looking at the
/// key: for rewriting a file that holds sealed secrets as they are (new
/// scratch codes, a key removed), which a rotation at work would
/// otherwise miss.
///
/// Root holds the key's lock file ([`open_lock`]), which only root can
/// open, so no other user can keep root (the module's enrollment at
/// login, `pam-totp` run by root) from sealing. Another user, enrolling
/// themselves, cannot open that file and holds the key's directory
/// instead; `pam-totp host-key` commands lock both, exclusively, so they
/// exclude either.
pub fn hold_key(host_key: &Path) -> Result<KeyHold, HoldError> {
    let dir = atomic::parent_dir(host_key);
    let (file, locked) = if geteuid().is_root() {
        let path = lock_path(host_key);
        let file = open_lock(host_key).map_err(|e| HoldError::Lock(path.clone(), e))?;
        (file, path)
    } else {
        let file = File::open(dir).map_err(|e| HoldError::Lock(dir.to_owned(), e))?;
        (file, dir.to_owned())
    };
    let lock = Flock::lock(file, FlockArg::LockSharedNonblock).map_err(|(_, errno)| {
        if errno == Errno::EWOULDBLOCK {
            HoldError::Busy(dir.to_owned())
        } else {
            HoldError::Lock(locked, errno.into())
        }
    })?;
    Ok(KeyHold { _lock: lock })
}

/// The lock file of `host_key`: its path with `.lock` added
/// (`/etc/pam-totp/host.key.lock`).
pub fn lock_path(host_key: &Path) -> PathBuf {
    let mut name = host_key.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The lock file of `host_key` ([`lock_path`]), opened for locking, and
/// made the first time (empty, root's, mode 0600): `pam-totp host-key`
/// commands lock it exclusively, and root seals and writes a secret under
/// a shared lock of it ([`hold_key`]). Only root can open it, so only
/// root can hold it; the key's directory, which any user may open and
/// lock, is what other users hold. A lock file that is not a regular file
/// of root's, closed to group and others, is an error.
pub fn open_lock(host_key: &Path) -> io::Result<File> {
    let path = lock_path(host_key);
    let open = |create: bool| {
        let mut options = OpenOptions::new();
        // Not through a symlink; never waiting on a FIFO put there.
        options
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        if create {
            options.write(true).create(true).mode(0o600);
        }
        options.open(&path)
    };
    let file = match open(false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => open(true)?,
        opened => opened?,
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(
            "not a regular file of root's that only root can open",
        ));
    }
    Ok(file)
}

/// While it lives, no `pam-totp host-key` command changes the host key.
pub struct KeyHold {
    _lock: Flock<File>,
}

/// Why the host key could not be held for sealing.
#[derive(Debug)]
pub enum HoldError {
    /// A `pam-totp host-key` command holds the key (its directory, for
    /// the message).
    Busy(PathBuf),
    /// What [`hold_key`] locks could not be opened, made or locked.
    Lock(PathBuf, io::Error),
    /// The key is not the one the enrollment began with (or is gone).
    Changed(PathBuf),
}

impl fmt::Display for HoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldError::Busy(dir) => write!(
                f,
                "a `pam-totp host-key` command is changing the host key in {}",
                dir.display()
            ),
            HoldError::Lock(dir, e) => write!(f, "cannot lock {}: {e}", dir.display()),
            HoldError::Changed(key) => write!(
                f,
                "the host key {} changed while the secret was made",
                key.display()
            ),
        }
    }
}

impl std::error::Error for HoldError {}

/// The host key a new secret is sealed to: host.pub beside `host_key`
/// when it exists, else none (a plain secret). With `check_private`
/// (root), host.key must be there and match, so that no secret is sealed
/// to a key the module cannot open.
pub fn sealing_key(
    host_key: &Path,
    check_private: bool,
) -> Result<Option<SealingKey>, SealingError> {
    let public_path = seal::public_path(host_key);
    // Anything at the path (even a dangling symlink) is taken as meant.
    if matches!(std::fs::symlink_metadata(&public_path), Err(e) if e.kind() == io::ErrorKind::NotFound)
    {
        return Ok(None);
    }
    let public = seal::load_public_key(host_key).map_err(SealingError::Public)?;
    if check_private {
        let keys = seal::load_secret_keys(host_key).map_err(SealingError::Private)?;
        if keys[0].public() != public {
            return Err(SealingError::Mismatch);
        }
    }
    Ok(Some(SealingKey {
        public,
        host_key: host_key.to_owned(),
        check_private,
    }))
}

/// Why a secret file was not written (or not as the module would read it).
/// Never holds the secret.
#[derive(Debug)]
pub enum WriteError {
    /// The host key could not be held while sealing ([`SealingKey::hold`]).
    Key(HoldError),
    Seal(SealError),
    Serialize(SerializeError),
    /// The owner's filesystem identity could not be taken.
    Identity(io::Error),
    /// Without `replace`: something is at the path now.
    AppearedMeanwhile,
    Write(io::Error),
    ReadBack(ReadError),
    ReadBackParse(FormatError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Key(e) => write!(f, "not written: {e}; try again"),
            WriteError::Seal(e) => write!(f, "cannot seal the secret: {e}"),
            WriteError::Serialize(e) => write!(f, "not written: {e}"),
            WriteError::Identity(e) => write!(f, "cannot take the owner's identity: {e}"),
            WriteError::AppearedMeanwhile => f.write_str("a file appeared there meanwhile"),
            WriteError::Write(e) => write!(f, "cannot write: {e}"),
            WriteError::ReadBack(e) => write!(f, "written, but it {e}"),
            WriteError::ReadBackParse(e) => write!(f, "written, but it does not parse: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Writes `user`'s secret file at `path` atomically, mode 0600. With
/// `as_owner` (a path under the user's home, written by root) the file is
/// created with the user's filesystem identity, so it is theirs and root
/// can do nothing there the user could not; otherwise with the process's
/// own. With `seal_to`, a plaintext secret is sealed first, so the file
/// holds only `sealed_secret`, under a [`SealingKey::hold`] that lasts
/// until the file is written. Without `replace`, the file is created
/// exclusively: an entry that appeared meanwhile is left alone
/// ([`WriteError::AppearedMeanwhile`]). The file is then read back the way
/// the module will read it, so one it would refuse is reported now.
pub fn write_secret_file(
    user: &UserInfo,
    path: &Path,
    as_owner: bool,
    file: &mut SecretFile,
    seal_to: Option<&SealingKey>,
    replace: bool,
) -> Result<(), WriteError> {
    let _hold = match seal_to {
        Some(key) => {
            let hold = key.hold().map_err(WriteError::Key)?;
            file.seal(key.public(), &user.name)
                .map_err(WriteError::Seal)?;
            Some(hold)
        }
        None => None,
    };
    let text = file.to_toml().map_err(WriteError::Serialize)?;
    let written = {
        let _id = as_owner
            .then(|| FsIdentity::assume(user.uid, user.gid))
            .transpose()
            .map_err(WriteError::Identity)?;
        if replace {
            atomic::write_atomic(path, text.as_bytes(), SECRET_MODE)
        } else {
            atomic::write_atomic_new(path, text.as_bytes(), SECRET_MODE)
        }
    };
    written.map_err(|err| match err.kind() {
        io::ErrorKind::AlreadyExists => WriteError::AppearedMeanwhile,
        _ => WriteError::Write(err),
    })?;
    let bytes =
        secret_file::read_secret_file(path, user, as_owner).map_err(WriteError::ReadBack)?;
    SecretFile::parse(&bytes).map_err(WriteError::ReadBackParse)?;
    Ok(())
}
