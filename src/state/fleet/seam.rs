//! The fleet as a [`StateStore`]: an account's read-decide-write through
//! the state server (one connection, one deadline), with the same pure
//! decision the local store runs (the caller's closure).
//!
//! When the server cannot be reached:
//!
//! - `state_unavailable=deny` (default): no decision, the login is denied
//!   (the caller has already prompted, so nothing tells the user apart);
//! - `state_unavailable=local`: the host's state directory decides, a
//!   warning is kept for syslog ([`FleetStateStore::take_warnings`]), and
//!   the account is marked as pending (`.NAME.fleet-pending` beside its
//!   state file). At the next contact the pending local state is joined
//!   into the server's ([`super::merge::join`]) inside the same
//!   compare-and-set as the decision, and the mark is cleared.
//!
//! With `local`, the state directory also keeps a copy of the state the
//! server last returned for this account, so during an outage the host
//! still refuses what the fleet had spent before it (as far as this host
//! saw it). The local lock is held across the server round trips, so a
//! concurrent fallback login on this host cannot slip between them.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::conn::tls::TlsConnector;
use super::merge::join;
use super::settings::{FleetSettings, SetupError, Unavailable};
use super::state_store::{FleetError, FleetStore};
use super::store::StoreConfig;
use crate::state::local::{StateDir, StateLock};
use crate::state::{Account, StateError, StateStore, UserState};
use crate::sys::atomic::{parent_dir, sync_dir};

/// The pending mark of `account` in the state directory `dir`.
pub fn pending_mark(dir: &Path, account: &str) -> PathBuf {
    dir.join(format!(".{account}.fleet-pending"))
}

/// The state server as the account's [`StateStore`], with the host's
/// state directory `state_dir` for the `state_unavailable=local`
/// fallback.
pub struct FleetStateStore<'a> {
    fleet: &'a FleetSettings,
    state_dir: &'a Path,
    tls: Option<&'static dyn TlsConnector>,
    warnings: RefCell<Vec<String>>,
}

impl<'a> FleetStateStore<'a> {
    /// The store for `fleet`'s settings, with TLS sessions (for
    /// `rediss://`) from `tls`.
    pub fn new(
        fleet: &'a FleetSettings,
        state_dir: &'a Path,
        tls: Option<&'static dyn TlsConnector>,
    ) -> FleetStateStore<'a> {
        FleetStateStore {
            fleet,
            state_dir,
            tls,
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// The warnings of the operations so far (a fallback to the local
    /// state, a local copy not kept), for syslog; no code is in them.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.take()
    }

    fn warn(&self, why: String) {
        self.warnings.borrow_mut().push(why);
    }

    fn config(&self) -> Result<StoreConfig, StateError> {
        match self.fleet.store_config(self.tls) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(StateError::FleetSetup(SetupError::NoUrl)),
            Err(e) => Err(StateError::FleetSetup(e)),
        }
    }

    fn connect(&self) -> Result<FleetStore, StateError> {
        FleetStore::connect(&self.config()?).map_err(StateError::Fleet)
    }

    /// The server answered: the local copy and the mark only matter for a
    /// later outage, so failing to keep them is a warning.
    fn keep_local_copy(&self, lock: &StateLock<'_>, state: &UserState, mark: &Path) {
        let kept = lock
            .write(state)
            .and_then(|()| remove_mark(mark).map_err(|e| pending_err(mark, e)));
        if let Err(e) = kept {
            self.warn(format!(
                "the local copy of the fleet state was not kept: {e}"
            ));
        }
    }
}

impl StateStore for FleetStateStore<'_> {
    fn update(
        &self,
        account: &Account,
        decide: &mut dyn FnMut(&mut UserState),
    ) -> Result<(), StateError> {
        let config = self.config()?;
        let mark = pending_mark(self.state_dir, account.as_str());
        let fallback = self.fleet.unavailable == Unavailable::Local;
        let dir = match fallback || exists(&mark) {
            true => Some(StateDir::open(self.state_dir, true)?),
            false => None,
        };
        let lock = match &dir {
            Some(d) => Some(d.lock(account.as_str())?),
            None => None,
        };
        // Under the lock: what this host decided while the server was away.
        let pending = match &lock {
            Some(l) if exists(&mark) => Some(l.read()?),
            _ => None,
        };

        let remote = FleetStore::connect(&config).and_then(|mut store| {
            store.update(account.as_str(), &mut |state| {
                if let Some(p) = &pending {
                    join(state, p);
                }
                decide(state);
                state.clone()
            })
        });
        match (remote, lock) {
            (Ok(state), Some(lock)) => {
                self.keep_local_copy(&lock, &state, &mark);
                Ok(())
            }
            (Ok(_), None) => Ok(()),
            (Err(e @ FleetError::Unreachable(_)), Some(lock)) if fallback => {
                self.warn(format!(
                    "{e}; deciding on this host's local state, as state_unavailable is local"
                ));
                let mut state = lock.read()?;
                // The mark first: a state written without it would never be
                // merged.
                make_mark(&mark).map_err(|e| pending_err(&mark, e))?;
                decide(&mut state);
                lock.write(&state)
            }
            (Err(e @ FleetError::Unreachable(_)), _) => Err(StateError::FleetDenied(e)),
            (Err(e), _) => Err(StateError::Fleet(e)),
        }
    }

    fn read(&self, account: &Account) -> Result<UserState, StateError> {
        let mut store = self.connect()?;
        store.read(account.as_str()).map_err(StateError::Fleet)
    }

    fn remove(&self, account: &Account) -> Result<(), StateError> {
        let mut store = self.connect()?;
        store
            .remove(account.as_str())
            .map(|_| ())
            .map_err(StateError::Fleet)
    }
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn pending_err(mark: &Path, err: io::Error) -> StateError {
    StateError::Io {
        op: "cannot mark or clear the local state as pending for the state server",
        path: mark.to_owned(),
        err,
    }
}

fn make_mark(mark: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(mark)
        .and_then(|_| sync_dir(parent_dir(mark)))
}

fn remove_mark(mark: &Path) -> io::Result<()> {
    match fs::remove_file(mark) {
        Ok(()) => sync_dir(parent_dir(mark)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
