//! Account state on the state server: the value under
//! `PREFIX + "state:" + account` is the state file's text
//! ([`UserState::to_toml`]), so the server holds exactly what a local
//! state file holds (spent steps and counters per key fingerprint, failure
//! times, used scratch identifiers) and never a secret or a code.
//!
//! [`FleetStore::update`] is the one operation a login needs: read the
//! account's state, let the pure decision change it, write it back, all
//! atomically across hosts ([`Store::update`]).
#![forbid(unsafe_code)]

use std::fmt;

use super::settings::is_unreachable;
use super::store::{Store, StoreConfig, StoreError, UpdateError};
use crate::state::{Corruption, UserState};

/// The key name (after the prefix) of an account's state.
pub fn state_key(account: &str) -> String {
    format!("state:{account}")
}

#[derive(Debug)]
pub enum FleetError {
    /// The server could not be reached or did not answer in time.
    Unreachable(StoreError),
    /// The server answered but refused (authentication, ACL, TLS, a
    /// contention that did not end).
    Refused(StoreError),
    /// The stored value is not a valid state: denied until `pam-totp
    /// reset`, as a corrupt state file.
    Corrupt(Corruption),
    /// The store wrote nothing and never called the decision (it calls it
    /// on every read, so this does not happen); no decision, denied.
    NoDecision,
}

impl FleetError {
    fn of(e: StoreError) -> FleetError {
        if is_unreachable(&e) {
            FleetError::Unreachable(e)
        } else {
            FleetError::Refused(e)
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Unreachable(e) => write!(f, "state server unavailable: {e}"),
            FleetError::Refused(e) => write!(f, "state server: {e}"),
            FleetError::Corrupt(why) => write!(
                f,
                "the state on the state server is corrupt ({why}); run `pam-totp reset` for this user"
            ),
            FleetError::NoDecision => f.write_str("state server: no decision was made"),
        }
    }
}

impl std::error::Error for FleetError {}

/// One connection to the state server with one deadline (a login), or a
/// long-lived one (the tool, which renews the deadline per operation).
pub struct FleetStore {
    store: Store,
}

impl FleetStore {
    pub fn connect(config: &StoreConfig) -> Result<FleetStore, FleetError> {
        Ok(FleetStore {
            store: Store::connect(config).map_err(FleetError::of)?,
        })
    }

    /// Gives the next operation a fresh timeout (for the tool).
    pub fn renew_deadline(&mut self) {
        self.store.renew_deadline();
    }

    /// Under the account's compare-and-set: reads the state, runs `decide`
    /// on it, writes it back if it changed. `decide` may run once per
    /// attempt, each time on a freshly read state; the verdict of the last
    /// run is returned, and the state it left is the one written.
    pub fn update<R>(
        &mut self,
        account: &str,
        decide: &mut dyn FnMut(&mut UserState) -> R,
    ) -> Result<R, FleetError> {
        let mut verdict = None;
        let result = self
            .store
            .update::<Corruption>(&state_key(account), &mut |current| {
                let mut state = parse(current)?;
                let before = state.clone();
                verdict = Some(decide(&mut state));
                if state == before {
                    return Ok(None);
                }
                let text = state.to_toml().map_err(Corruption::Model)?;
                Ok(Some(text.into_bytes()))
            });
        match result {
            // `decide` ran at least once: the store calls it on every read.
            Ok(_) => verdict.ok_or(FleetError::NoDecision),
            Err(UpdateError::Decide(why)) => Err(FleetError::Corrupt(why)),
            Err(UpdateError::Store(e)) => Err(FleetError::of(e)),
        }
    }

    /// The account's state (a fresh one if the server has none).
    pub fn read(&mut self, account: &str) -> Result<UserState, FleetError> {
        let value = self
            .store
            .get(&state_key(account))
            .map_err(FleetError::of)?;
        parse(value.as_deref()).map_err(FleetError::Corrupt)
    }

    /// The accounts that have a state on the server (for `pam-totp
    /// report`), in no particular order; a key whose name is not UTF-8 is
    /// no account's. Each page of the walk is bounded by the timeout.
    pub fn accounts(&mut self) -> Result<Vec<String>, FleetError> {
        let names = self.store.scan(&state_key("")).map_err(FleetError::of)?;
        Ok(names
            .into_iter()
            .filter_map(|n| String::from_utf8(n).ok())
            .filter_map(|n| n.strip_prefix(&state_key("")).map(str::to_owned))
            .filter(|n| !n.is_empty())
            .collect())
    }

    /// Deletes the account's state; true if there was one.
    pub fn remove(&mut self, account: &str) -> Result<bool, FleetError> {
        self.store.del(&state_key(account)).map_err(FleetError::of)
    }
}

fn parse(value: Option<&[u8]>) -> Result<UserState, Corruption> {
    match value {
        None => Ok(UserState::new()),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| Corruption::NotUtf8)?;
            UserState::from_toml(text).map_err(Corruption::Model)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(state_key("alice"), "state:alice");
        assert_eq!(parse(None).unwrap(), UserState::new());
        assert!(parse(Some(b"\xff")).is_err());
        assert!(parse(Some(b"version = 2\n")).is_err());
        let s = UserState::new();
        assert_eq!(parse(Some(s.to_toml().unwrap().as_bytes())).unwrap(), s);
    }
}
