//! `pam-totp reset`: a user's failed attempts and lockout cleared (root
//! only: the state directory is root's). What keeps codes from being used
//! twice is kept; a corrupt state, which makes the module deny every
//! login, is removed.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use pam_totp::core::event::{DetailValue, EventKind};
use pam_totp::state::local::StateDir;
use pam_totp::state::model::UserState;
use pam_totp::state::StateError;

use super::fleet_state;
use crate::access::{self, caller, settings, state_account, state_dir, target};
use crate::args::ResetArgs;
use crate::error::{AccessError, CliError, Result};
use crate::notify;

pub(super) fn run(a: ResetArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    let dir = state_dir(&settings, &a.state.state_dir);
    if !caller.root {
        return Err(AccessError::ResetRootOnly { dir }.into());
    }
    // Fleet state (cmd/fleet_state.rs): reset on the server, fleet-wide.
    if let Some(mut store) = fleet_state::open(&caller, &settings, &a.state)? {
        match fleet_state::reset(&mut store, &state_account(&user)?)? {
            Ok(n) => eprintln!(
                "pam-totp: reset {} on the state server (fleet-wide): {n} failed attempts \
                 cleared, not locked out; the secret file is unchanged",
                user.name
            ),
            Err(why) => eprintln!(
                "pam-totp: reset {}: removed the corrupt state from the state server ({why}); \
                 scratch codes used before may work once more: consider \
                 `pam-totp scratch-codes --regenerate --user {}`",
                user.name, user.name
            ),
        }
        let detail = vec![("state", DetailValue::Text("fleet".into()))];
        notify::emit(&settings, &caller, &user.name, EventKind::Reset, detail);
        return Ok(ExitCode::SUCCESS);
    }
    if !access::exists(&dir) {
        eprintln!(
            "pam-totp: no state directory {}: {} has nothing to reset",
            dir.display(),
            user.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let state_dir = StateDir::open(&dir, false).map_err(CliError::State)?;
    let lock = state_dir
        .lock(&state_account(&user)?)
        .map_err(CliError::State)?;
    match lock.read() {
        Ok(state) => {
            let cleared = UserState {
                failures: Vec::new(),
                failed_attempts: 0,
                ..state.clone()
            };
            if cleared != state {
                lock.write(&cleared).map_err(CliError::State)?;
            }
            eprintln!(
                "pam-totp: reset {}: {} failed attempts cleared, not locked out; \
                 the secret file is unchanged",
                user.name, state.failed_attempts
            );
        }
        Err(e @ StateError::Corrupt { .. }) => {
            lock.remove().map_err(CliError::State)?;
            eprintln!(
                "pam-totp: reset {}: removed the corrupt state ({e}); scratch codes used before \
                 may work once more: consider `pam-totp scratch-codes --regenerate --user {}`",
                user.name, user.name
            );
        }
        Err(e) => return Err(CliError::State(e)),
    }
    let detail = vec![("state", DetailValue::Text("local".into()))];
    notify::emit(&settings, &caller, &user.name, EventKind::Reset, detail);
    Ok(ExitCode::SUCCESS)
}
