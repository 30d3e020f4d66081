//! A login's read-decide-write when `state=` is set: through the state
//! server, with the same pure decision code as the local store
//! ([`verify::attempt_any`]), over one connection with one deadline.
//!
//! When the server cannot be reached:
//!
//! - `state_unavailable=deny` (default): no decision, the login is denied
//!   (the caller has already prompted, so nothing tells the user apart);
//! - `state_unavailable=local`: the host's state directory decides, a
//!   warning goes to syslog, and the account is marked as pending
//!   (`.NAME.fleet-pending` beside its state file). At the next contact
//!   the pending local state is joined into the server's
//!   ([`super::merge::join`]) inside the same compare-and-set as the
//!   decision, and the mark is cleared.
//!
//! With `local`, the state directory also keeps a copy of the state the
//! server last returned for this account, so during an outage the host
//! still refuses what the fleet had spent before it (as far as this host
//! saw it). The local lock is held across the server round trips, so a
//! concurrent fallback login on this host cannot slip between them.
#![forbid(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::merge::join;
use super::settings::Unavailable;
use super::state_store::{FleetError, FleetStore};
use crate::config::Settings;
use crate::enrollment::Enrollment;
use crate::files;
use crate::state::StateDir;
use crate::verify::{self, Credentials, Outcome, UserState};

/// The pending mark of `account` in the state directory `dir`.
pub fn pending_mark(dir: &Path, account: &str) -> PathBuf {
    dir.join(format!(".{account}.fleet-pending"))
}

/// Read, decide and write on the state server; see the module
/// documentation. `warn` gets the fallback warning (no code in it).
pub fn decide(
    settings: &Settings,
    user: &str,
    enrollment: &Enrollment,
    candidates: &[&str],
    now: u64,
    warn: &mut dyn FnMut(&str),
) -> Result<(Outcome, usize), String> {
    let account = files::state_account(user)?;
    let fleet = &settings.fleet;
    let config = fleet
        .store_config()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "state= is not set".to_owned())?;
    let creds = Credentials::of(enrollment);
    let run = |state: &mut UserState| {
        let outcome = verify::attempt_any(&creds, candidates, now, &settings.policy, state);
        (
            outcome,
            verify::remaining_scratch(&enrollment.scratch, state),
        )
    };

    let mark = pending_mark(&settings.state_dir, &account);
    let local = fleet.unavailable == Unavailable::Local || exists(&mark);
    let dir = match local {
        true => Some(StateDir::open(&settings.state_dir, true).map_err(|e| e.to_string())?),
        false => None,
    };
    let lock = match &dir {
        Some(d) => Some(d.lock(&account).map_err(|e| e.to_string())?),
        None => None,
    };
    // Under the lock: what this host decided while the server was away.
    let pending = match &lock {
        Some(l) if exists(&mark) => Some(l.read().map_err(|e| e.to_string())?),
        _ => None,
    };

    let remote = FleetStore::connect(&config).and_then(|mut store| {
        store.update(&account, &mut |state| {
            if let Some(p) = &pending {
                join(state, p);
            }
            let (outcome, remaining) = run(state);
            (outcome, remaining, state.clone())
        })
    });
    match (remote, &lock) {
        (Ok((outcome, remaining, state)), lock) => {
            if let Some(lock) = lock {
                // The server holds the decision; the local copy and the
                // mark only matter for a later outage.
                let kept = lock
                    .write(&state)
                    .map_err(|e| e.to_string())
                    .and_then(|()| remove_mark(&mark));
                if let Err(e) = kept {
                    warn(&format!(
                        "the local copy of the fleet state was not kept: {e}"
                    ));
                }
            }
            Ok((outcome, remaining))
        }
        (Err(e @ FleetError::Unreachable(_)), Some(lock))
            if fleet.unavailable == Unavailable::Local =>
        {
            warn(&format!(
                "{e}; deciding on this host's local state, as state_unavailable is local"
            ));
            let mut state = lock.read().map_err(|e| e.to_string())?;
            // The mark first: a state written without it would never be
            // merged.
            make_mark(&mark)?;
            let decided = run(&mut state);
            lock.write(&state).map_err(|e| e.to_string())?;
            Ok(decided)
        }
        (Err(e @ FleetError::Unreachable(_)), _) => {
            Err(format!("{e}; denying, as state_unavailable is deny"))
        }
        (Err(e), _) => Err(e.to_string()),
    }
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn make_mark(mark: &Path) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(mark)
        .and_then(|_| files::sync_dir(files::parent_dir(mark)))
        .map_err(|e| format!("cannot mark the local state as pending: {e}"))
}

fn remove_mark(mark: &Path) -> Result<(), String> {
    match fs::remove_file(mark) {
        Ok(()) => files::sync_dir(files::parent_dir(mark))
            .map_err(|e| format!("cannot clear the pending mark: {e}")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot clear the pending mark: {e}")),
    }
}
