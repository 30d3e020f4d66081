//! `status`, `reset` and `disable` on the fleet's state server: when
//! `--state URL` (or config.toml's `state`) is set, the account's state is
//! the one on the server (src/state/fleet), so one command inspects or unlocks a
//! user fleet-wide. `--state-dir` keeps its meaning: this host's local
//! state (with `state_unavailable=local`, the copy used during an outage).

use pam_totp::config::Settings;
use pam_totp::state::fleet::settings::apply;
use pam_totp::state::fleet::FleetError;
use pam_totp::state::fleet::FleetStore;
use pam_totp::state::model::UserState;

use crate::access::Caller;
use crate::args::StateDirArg;
use crate::error::{FleetCliError, Result};

/// The server's connection when the fleet is configured (command line
/// over config.toml), else `None`. Only root may use it (the credentials
/// file is root's).
pub(super) fn open(
    caller: &Caller,
    settings: &Settings,
    arg: &StateDirArg,
) -> Result<Option<FleetStore>> {
    let mut fleet = settings.fleet.clone();
    if let Some(url) = &arg.state {
        apply(&mut fleet, "state", url).map_err(|why| FleetCliError::BadUrl(why.to_string()))?;
    }
    if let Some(p) = &arg.state_credentials {
        fleet.credentials = Some(p.clone());
    }
    if fleet.url.is_none() {
        if arg.state_credentials.is_some() {
            return Err(FleetCliError::CredentialsWithoutState.into());
        }
        return Ok(None);
    }
    if !caller.root {
        return Err(FleetCliError::RootOnly.into());
    }
    let config = fleet
        .store_config(Some(&crate::tls::LINKED))
        .map_err(|e| FleetCliError::Config(e.to_string()))?;
    let Some(config) = config else {
        return Ok(None);
    };
    FleetStore::connect(&config)
        .map(Some)
        .map_err(|e| FleetCliError::Server(e).into())
}

/// The account's state on the server: `Ok(Err(why))` when it is corrupt.
pub(super) fn read(
    store: &mut FleetStore,
    account: &str,
) -> Result<std::result::Result<UserState, String>> {
    store.renew_deadline();
    match store.read(account) {
        Ok(s) => Ok(Ok(s)),
        Err(e @ FleetError::Corrupt(_)) => Ok(Err(e.to_string())),
        Err(e) => Err(FleetCliError::Server(e).into()),
    }
}

/// Clears the failures on the server (fleet-wide); a corrupt state is
/// removed. Returns the failed attempts cleared, or the corruption.
pub(super) fn reset(
    store: &mut FleetStore,
    account: &str,
) -> Result<std::result::Result<u64, String>> {
    store.renew_deadline();
    let done = store.update(account, &mut |state| {
        let before = state.failed_attempts;
        state.failures.clear();
        state.failed_attempts = 0;
        before
    });
    match done {
        Ok(n) => Ok(Ok(n)),
        Err(e @ FleetError::Corrupt(_)) => {
            store.renew_deadline();
            store.remove(account).map_err(FleetCliError::Server)?;
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(FleetCliError::Server(e).into()),
    }
}

/// Removes the account's state on the server.
pub(super) fn remove(store: &mut FleetStore, account: &str) -> Result<bool> {
    store.renew_deadline();
    store
        .remove(account)
        .map_err(|e| FleetCliError::Server(e).into())
}
