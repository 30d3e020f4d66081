//! `pam-totp disable`: a user's secret file removed (only a secret file, or
//! a symlink, which is removed, not followed) and, for root, their state.
//! Disabling a user who is not enrolled is not an error.
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use pam_totp::core::event::{DetailValue, EventKind};
use pam_totp::state::local::StateDir;
use pam_totp::sys::atomic;
use pam_totp::sys::users::UserInfo;

use super::fleet_state;
use crate::access::{
    caller, locate, require_writable, settings, state_account, state_dir, target, Caller, Location,
};
use crate::args::DisableArgs;
use crate::error::{CliError, FileError, Result};
use crate::notify;
use crate::secret_file::{existing, Existing};

pub(super) fn run(a: DisableArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let dir = state_dir(&settings, &a.state.state_dir);

    let removed = remove_secret_file(&caller, &user, &loc)?;
    // Fleet state (cmd/fleet_state.rs): removed on the server.
    let fleet = match caller.root {
        true => fleet_state::open(&caller, &settings, &a.state)?,
        false => None,
    };
    let state_note = match fleet {
        Some(mut store) => {
            fleet_state::remove(&mut store, &state_account(&user)?)?;
            "state removed from the state server".to_owned()
        }
        None => remove_state(&caller, &user, &dir)?,
    };
    let detail = vec![("was_enrolled", DetailValue::Int(u64::from(removed)))];
    notify::emit(&settings, &caller, &user.name, EventKind::Disabled, detail);
    if removed {
        eprintln!(
            "pam-totp: disabled {}: removed {}; {state_note}",
            user.name,
            loc.shown()
        );
    } else {
        eprintln!(
            "pam-totp: {} was not enrolled ({} does not exist); {state_note}",
            user.name,
            loc.shown()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the secret file (or a symlink there); `false` if there was none.
fn remove_secret_file(caller: &Caller, user: &UserInfo, loc: &Location) -> Result<bool> {
    let _id = loc.identity(caller, user)?;
    let found = existing(&loc.path).map_err(|err| FileError::CannotUse {
        path: loc.path.clone(),
        err,
    })?;
    match found {
        Existing::Nothing => Ok(false),
        Existing::Other(why) => Err(FileError::NotRemoving {
            path: loc.path.clone(),
            why,
        }
        .into()),
        Existing::Symlink | Existing::SecretFile => {
            fs::remove_file(&loc.path)
                .and_then(|()| atomic::sync_dir(atomic::parent_dir(&loc.path)))
                .map_err(|err| FileError::Remove {
                    path: loc.path.clone(),
                    err,
                })?;
            Ok(true)
        }
    }
}

/// Removes the user's state (root only); what was done, for the last line.
fn remove_state(caller: &Caller, user: &UserInfo, dir: &Path) -> Result<String> {
    if !caller.root {
        return Ok(format!(
            "the state in {} is root's and was left",
            dir.display()
        ));
    }
    if fs::symlink_metadata(dir).is_err() {
        return Ok("no state".to_owned());
    }
    let state_dir = StateDir::open(dir, false).map_err(CliError::State)?;
    let lock = state_dir
        .lock(&state_account(user)?)
        .map_err(CliError::State)?;
    lock.remove().map_err(CliError::State)?;
    Ok("state removed".to_owned())
}
