//! Per-account state files: replay, rate limit, used scratch codes.
//!
//! Layout of the state directory (root-owned, 0700), where `NAME` is the
//! account's canonical name (`crate::sys::users::state_account`), whatever spelling
//! of it was typed:
//!
//! - `NAME`: the account's state, TOML ([`UserState`]), replaced atomically;
//! - `.NAME.lock`: an empty file that is only ever locked (flock), never
//!   replaced, so every process locks the same inode;
//! - `.NAME.tmp`: the next state while it is being written. Only the lock
//!   holder writes it, so a fixed name is safe; one left by a killed process
//!   is simply overwritten by the next login.
//!
//! A login takes the lock after the user has typed the code, reads, decides,
//! writes, and releases: concurrent logins of one user are serialised, and
//! no decision is made on a stale read.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::state::{Account, Corruption, StateError, StateStore, UserState};
use crate::sys::atomic::sync_dir;
use crate::sys::open::{open_checked, Broken, OpenError, Owner, Rules};
use crate::sys::users::valid_user_name;

/// Largest state file read; real ones are well under a kilobyte. The caps
/// of [`UserState`] (`MAX_KEYS`, `MAX_USED_SCRATCH`, the largest rate
/// limit) keep the largest state the module can write below it.
pub(crate) const MAX_STATE_FILE: u64 = 64 * 1024;
const READ: &str = "cannot read the state";
const WRITE: &str = "cannot write the new state";

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |err| StateError::Io {
        op,
        path: path.to_owned(),
        err,
    }
}

/// A checked state directory.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Opens the directory, creating it (0700, with missing parents 0755)
    /// when `create` is set. It must be a real directory owned by this
    /// process's user (root, in a login) that nobody else may write to.
    pub fn open(path: &Path, create: bool) -> Result<StateDir, StateError> {
        let dir_err = |why: String| StateError::Dir {
            path: path.to_owned(),
            why,
        };
        if !path.is_absolute() {
            return Err(dir_err("not an absolute path".into()));
        }
        if create && !path.exists() {
            if let Some(parent) = path.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| dir_err(format!("cannot create: {e}")))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(dir_err(format!("cannot create: {e}"))),
            }
        }
        let meta = fs::symlink_metadata(path).map_err(|e| dir_err(e.to_string()))?;
        if !meta.is_dir() {
            return Err(dir_err("not a directory".into()));
        }
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != euid {
            return Err(dir_err(format!("owned by uid {}, not {euid}", meta.uid())));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(dir_err(format!(
                "mode {:04o} lets others write to it",
                meta.mode() & 0o7777
            )));
        }
        Ok(StateDir {
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the user's exclusive lock, waiting for other logins of the same
    /// user to finish (they hold it only for a read, a check and a write).
    pub fn lock(&self, user: &str) -> Result<StateLock<'_>, StateError> {
        if !valid_user_name(user) {
            return Err(StateError::BadUser(user.to_owned()));
        }
        let lock_path = self.path.join(format!(".{user}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(io_err("cannot open the state lock", &lock_path))?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StateError::Io {
                op: "cannot lock the state",
                path: lock_path.clone(),
                err: errno.into(),
            })?;
        Ok(StateLock {
            dir: self,
            user: user.to_owned(),
            _lock: lock,
        })
    }

    /// The path of a user's state file.
    pub fn state_path(&self, user: &str) -> PathBuf {
        self.path.join(user)
    }

    /// The accounts that have a state here (for `pam-totp report`), in no
    /// particular order: the names of the entries that are state files by
    /// their name (lock and temporary files are not). Nothing is locked or
    /// read; an entry that is not a valid state file is still listed, so
    /// reading it reports the corruption.
    pub fn accounts(&self) -> Result<Vec<String>, StateError> {
        let listing = |e| io_err("cannot list the state directory", &self.path)(e);
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path).map_err(listing)? {
            let name = entry.map_err(listing)?.file_name();
            match name.to_str() {
                Some(n) if valid_user_name(n) => names.push(n.to_owned()),
                _ => {}
            }
        }
        Ok(names)
    }
}

/// A held lock on one user's state; released on drop.
pub struct StateLock<'a> {
    dir: &'a StateDir,
    user: String,
    _lock: Flock<File>,
}

impl StateLock<'_> {
    fn path(&self) -> PathBuf {
        self.dir.state_path(&self.user)
    }

    /// Reads the state. A missing file is a fresh user; anything that is not
    /// a valid state file is [`StateError::Corrupt`].
    pub fn read(&self) -> Result<UserState, StateError> {
        let path = self.path();
        let corrupt = |why| StateError::Corrupt {
            path: path.clone(),
            why,
        };
        // The directory's owner and mode are checked (StateDir::open); the
        // files in it are the module's own.
        let rules = Rules {
            owner: Owner::Any,
            forbidden_mode: 0,
            max_size: MAX_STATE_FILE,
        };
        let bytes = match open_checked(&path, &rules) {
            Ok(b) => b,
            Err(OpenError::NotFound) => return Ok(UserState::new()),
            Err(OpenError::Symlink) => return Err(corrupt(Corruption::Symlink)),
            Err(OpenError::Rule(Broken::TooLarge, f)) => {
                return Err(corrupt(Corruption::TooLarge(f.size)))
            }
            Err(OpenError::Rule(..)) => return Err(corrupt(Corruption::NotRegular)),
            Err(OpenError::Io(e)) => return Err(io_err(READ, &path)(e)),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| corrupt(Corruption::NotUtf8))?;
        UserState::from_toml(text).map_err(|e| corrupt(Corruption::Model(e)))
    }

    /// Replaces the state file atomically and durably.
    pub fn write(&self, state: &UserState) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.path.join(format!(".{}.tmp", self.user));
        let text = state.to_toml().map_err(|e| StateError::Io {
            op: WRITE,
            path: path.clone(),
            err: io::Error::other(e.to_string()),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io_err(WRITE, &tmp))?;
        file.write_all(text.as_bytes())
            .map_err(io_err(WRITE, &tmp))?;
        file.sync_all().map_err(io_err(WRITE, &tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err(WRITE, &path))?;
        sync_dir(&self.dir.path).map_err(io_err(WRITE, &self.dir.path))
    }

    /// Deletes the state (and any stray temporary file): the user starts
    /// fresh. The secret file is not touched.
    pub fn remove(&self) -> Result<(), StateError> {
        let path = self.path();
        for p in [&path, &self.dir.path.join(format!(".{}.tmp", self.user))] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot remove the state", p)(e)),
            }
        }
        sync_dir(&self.dir.path).map_err(io_err("cannot remove the state", &self.dir.path))
    }
}

/// The local state directory as a [`StateStore`]: a lock file per account
/// (flock), the state file replaced atomically under it. Today's module
/// and tool use it; the fleet store is the second implementation.
#[derive(Debug)]
pub struct LocalStore {
    dir: StateDir,
}

impl LocalStore {
    /// The store in `path` (see [`StateDir::open`]).
    pub fn open(path: &Path, create: bool) -> Result<LocalStore, StateError> {
        Ok(LocalStore {
            dir: StateDir::open(path, create)?,
        })
    }

    pub fn dir(&self) -> &StateDir {
        &self.dir
    }
}

impl StateStore for LocalStore {
    fn update(
        &self,
        account: &Account,
        decide: &mut dyn FnMut(&mut UserState),
    ) -> Result<(), StateError> {
        let lock = self.dir.lock(account.as_str())?;
        let mut state = lock.read()?;
        decide(&mut state);
        lock.write(&state)
    }

    fn read(&self, account: &Account) -> Result<UserState, StateError> {
        self.dir.lock(account.as_str())?.read()
    }

    fn remove(&self, account: &Account) -> Result<(), StateError> {
        self.dir.lock(account.as_str())?.remove()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::{KeyState, MAX_KEYS, MAX_USED_SCRATCH};

    /// The caps of the state (keys, used scratch codes, failures of the
    /// largest rate limit) keep the largest possible state file readable:
    /// a state the module writes never becomes "corrupt" by its size.
    #[test]
    fn the_largest_state_fits_under_the_read_cap() {
        let mut st = UserState::new();
        st.failures = vec![u64::MAX; crate::core::policy::MAX_RATE_FAILURES as usize];
        st.failed_attempts = u64::MAX;
        st.last_success = Some(u64::MAX);
        // A scratch identifier is a salt of at most 64 bytes, in hex.
        st.used_scratch = (0..MAX_USED_SCRATCH)
            .map(|i| format!("{i:0128x}"))
            .collect();
        st.keys = (0..MAX_KEYS)
            .map(|i| KeyState {
                id: format!("{i:016x}"),
                last_used: u64::MAX,
                last_step: Some(u64::MAX),
                hotp_next: Some(u64::MAX),
            })
            .collect();
        let text = st.to_toml().unwrap();
        assert!((text.len() as u64) < MAX_STATE_FILE, "{} bytes", text.len());
        assert_eq!(UserState::from_toml(&text).unwrap(), st);
    }
}
