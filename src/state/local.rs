//! Per-account state files: replay, rate limit, used scratch codes.
//!
//! Layout of the state directory (root-owned, 0700), where `NAME` is the
//! account's canonical name (`crate::sys::users::state_account`), whatever spelling
//! of it was typed:
//!
//! - `NAME`: the account's state, two checksummed slots rewritten in place
//!   ([`crate::state::record`]); a file of the earlier layout (the TOML
//!   text alone) is read, and replaced by the new layout at the next write;
//! - `.NAME.lock`: an empty file that is only ever locked (flock), never
//!   replaced, so every process locks the same inode;
//! - `.NAME.tmp`: a new state file while it is being made (the first write
//!   of an account, the first write after an upgrade, a state outgrowing
//!   its slots). Only the lock holder writes it, so a fixed name is safe;
//!   one left by a killed process is simply overwritten by the next one.
//!
//! A login takes the lock after the user has typed the code, reads, decides,
//! writes, and releases: concurrent logins of one user are serialised, and
//! no decision is made on a stale read. The state file is opened once for
//! all of it ([`StateLock::update`]): read and parsed once, written back
//! through the same descriptor.
//!
//! What a write costs ([`StateLock::update`], [`StateLock::write`]):
//!
//! - a change that must survive a crash (a spent step, an HOTP counter, a
//!   used scratch code: [`UserState::must_survive_a_crash`]): one record
//!   written in place, one `fdatasync` of the state file, one more record
//!   written unflushed. No rename, no directory sync;
//! - any other change (a failure, its count, `last_success`): one record
//!   written in place, no sync. It is in the page cache at once, so a
//!   concurrent login, or the next one after this process is killed, sees
//!   it; a crash of the host within the kernel's writeback delay (about
//!   30 s) may lose it, which the doc of `must_survive_a_crash` argues
//!   weakens no promise;
//! - making a new file (above): written whole under `.NAME.tmp`, `fsync`,
//!   renamed over `NAME`, the directory `fsync`ed: two syncs, once per
//!   account (and once more after an upgrade, or when the state outgrows
//!   its slots, by doubling them).
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::state::record::{self, Layout, Slots, MAX_FILE};
use crate::state::{Account, Corruption, StateError, StateStore, UserState};
use crate::sys::atomic::sync_dir;
use crate::sys::open::{open_checked, open_checked_rw, Broken, OpenError, Owner, Rules};
use crate::sys::users::valid_user_name;

const READ: &str = "cannot read the state";
const WRITE: &str = "cannot write the new state";
/// How a state file is opened (`open_checked`): the directory's owner and
/// mode are checked (`StateDir::open`); the files in it are the module's
/// own.
const RULES: Rules = Rules {
    owner: Owner::Any,
    forbidden_mode: 0,
    max_size: MAX_FILE as u64,
};

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
    /// a valid state file is [`StateError::Corrupt`]. Of the two slots, the
    /// valid record with the highest sequence number is read: a torn write
    /// of either slot gives the state before it, never a fresh one.
    pub fn read(&self) -> Result<UserState, StateError> {
        match self.checked(open_checked(&self.path(), &RULES))? {
            Some(bytes) => record::parse_state_file(&bytes).map_err(|why| self.corrupt(why)),
            None => Ok(UserState::new()),
        }
    }

    /// One login's read, decision and write, through one descriptor: the
    /// state file opened once, for reading and writing, with the checks of
    /// [`read`](Self::read) ([`open_checked_rw`]); read and parsed once;
    /// `decide` run on it; the result written back in place through the
    /// same descriptor, flushed only when it must survive a crash, judged
    /// against the state as read (see the module's doc). A missing file, a
    /// file of the earlier layout, or a state outgrown its slots: a new
    /// file, as [`write`](Self::write) makes it. A file the open refuses
    /// for writing (a directory, a read-only filesystem) is read as
    /// [`read`](Self::read) reads it, and any write made anew.
    pub fn update(&self, decide: &mut dyn FnMut(&mut UserState)) -> Result<(), StateError> {
        let path = self.path();
        let opened = match open_checked_rw(&path, &RULES) {
            Err(OpenError::Io(_)) => open_checked(&path, &RULES).map(|bytes| (None, bytes)),
            opened => opened.map(|(file, bytes)| (Some(file), bytes)),
        };
        let Some((file, bytes)) = self.checked(opened)? else {
            let mut state = UserState::new();
            decide(&mut state);
            let text = self.text(&state)?;
            return self.write_new(&text, record::slot_size_for(text.len()));
        };
        let layout = Layout::of(&bytes).map_err(|why| self.corrupt(why))?;
        let before = record::parse_layout(&layout).map_err(|why| self.corrupt(why))?;
        let mut state = before.clone();
        decide(&mut state);
        let text = self.text(&state)?;
        match (file, layout) {
            (Some(file), Layout::Slots(slots)) => {
                let durable = state.must_survive_a_crash(&before);
                self.write_slots(&file, &slots, durable, &text)
            }
            _ => self.write_new(&text, record::slot_size_for(text.len())),
        }
    }

    /// `Ok(None)`: no file. A symlink or anything but a regular file within
    /// the size cap is corruption.
    fn checked<T>(&self, opened: Result<T, OpenError>) -> Result<Option<T>, StateError> {
        match opened {
            Ok(t) => Ok(Some(t)),
            Err(OpenError::NotFound) => Ok(None),
            Err(OpenError::Symlink) => Err(self.corrupt(Corruption::Symlink)),
            Err(OpenError::Rule(Broken::TooLarge, f)) => {
                Err(self.corrupt(Corruption::TooLarge(f.size)))
            }
            Err(OpenError::Rule(..)) => Err(self.corrupt(Corruption::NotRegular)),
            Err(OpenError::Io(e)) => Err(io_err(READ, &self.path())(e)),
        }
    }

    fn corrupt(&self, why: Corruption) -> StateError {
        StateError::Corrupt {
            path: self.path(),
            why,
        }
    }

    /// The state's text, within the largest payload.
    fn text(&self, state: &UserState) -> Result<Vec<u8>, StateError> {
        let err = |e: io::Error| io_err(WRITE, &self.path())(e);
        let text = state
            .to_toml()
            .map_err(|e| err(io::Error::other(e.to_string())))?;
        if text.len() > record::MAX_PAYLOAD {
            let why = format!("{} bytes of state: too large", text.len());
            return Err(err(io::Error::other(why)));
        }
        Ok(text.into_bytes())
    }

    /// Writes the state, whatever the file holds (the fleet store's local
    /// copy): in place into the state file when it is of the two-slot
    /// layout and the state fits its slots, flushed only when the change
    /// must survive a crash (see the module's doc); otherwise a new file
    /// replaces it atomically and durably. A login's own write is
    /// [`update`](Self::update)'s.
    pub fn write(&self, state: &UserState) -> Result<(), StateError> {
        let text = self.text(state)?;
        match self.open_in_place()? {
            Some((file, bytes)) => match Layout::of(&bytes) {
                Ok(Layout::Slots(slots)) => {
                    let before = slots
                        .newest()
                        .and_then(|(_, newest)| std::str::from_utf8(newest.payload).ok())
                        .and_then(|t| UserState::from_toml(t).ok());
                    let durable = before.is_none_or(|b| state.must_survive_a_crash(&b));
                    self.write_slots(&file, &slots, durable, &text)
                }
                _ => self.write_new(&text, record::slot_size_for(text.len())),
            },
            None => self.write_new(&text, record::slot_size_for(text.len())),
        }
    }

    /// The state file opened for writing in place, and its bytes; `None`
    /// when there is none to write in (missing, a symlink, not a regular
    /// file, too large): then a new one replaces whatever is there.
    fn open_in_place(&self) -> Result<Option<(File, Vec<u8>)>, StateError> {
        let path = self.path();
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(_) => return Ok(None),
        };
        let meta = file.metadata().map_err(io_err(WRITE, &path))?;
        if !meta.file_type().is_file() || meta.len() > MAX_FILE as u64 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; meta.len() as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(io_err(WRITE, &path))?;
        Ok(Some((file, bytes)))
    }

    /// `text` into a file of two slots: one record into the target slot;
    /// if `durable` (the change must survive a crash), `fdatasync`, then a
    /// copy into the other slot (why this order keeps every spent code:
    /// [`Slots::target`]). A state that outgrew the slots, or a file with
    /// no valid record, is made anew.
    fn write_slots(
        &self,
        file: &File,
        slots: &Slots<'_>,
        durable: bool,
        text: &[u8],
    ) -> Result<(), StateError> {
        let path = self.path();
        let size = slots.slot_size;
        if !record::fits(text.len(), size) {
            return self.write_new(text, record::slot_size_for(text.len()).max(size));
        }
        let Some((_, newest)) = slots.newest() else {
            // Neither slot valid: nothing to keep, a new file.
            return self.write_new(text, size);
        };
        let target = slots.target();
        let next = |seq: u64| {
            seq.checked_add(1).ok_or_else(|| StateError::Io {
                op: WRITE,
                path: path.clone(),
                err: io::Error::other("the sequence numbers of the state are used up"),
            })
        };
        let seq = next(newest.seq)?;
        let at = |slot: usize| (slot * size) as u64;
        file.write_all_at(&record::encode(seq, text, size), at(target))
            .map_err(io_err(WRITE, &path))?;
        if durable {
            file.sync_data().map_err(io_err(WRITE, &path))?;
            file.write_all_at(&record::encode(next(seq)?, text, size), at(1 - target))
                .map_err(io_err(WRITE, &path))?;
        }
        Ok(())
    }

    /// A new state file with `text` in slot A, made under the temporary
    /// name, flushed, renamed over the old one, the directory flushed.
    fn write_new(&self, text: &[u8], slot_size: usize) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.path.join(format!(".{}.tmp", self.user));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io_err(WRITE, &tmp))?;
        file.write_all(&record::new_file(1, text, slot_size))
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
/// (flock), the state file written under it (in place, in one of its two
/// slots; see the module's doc for what is flushed). Today's module
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
        self.dir.lock(account.as_str())?.update(decide)
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
        assert!(text.len() < record::MAX_PAYLOAD, "{} bytes", text.len());
        assert_eq!(UserState::from_toml(&text).unwrap(), st);
        // And its record fits the largest slot.
        assert!(record::fits(text.len(), record::MAX_SLOT));
        assert_eq!(record::slot_size_for(text.len()), record::MAX_SLOT);
    }
}
