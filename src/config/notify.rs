//! The settings of `notify=` (issue 16): a root-owned command run for each
//! event with one JSON object on its standard input (`core::event`).
//! Module arguments and config.toml keys, parsed here for `config.rs`:
//! `notify=PATH`, `notify_user=NAME` (required with it, as
//! `secret_command_user` is with `secret_command`: the account the hook
//! runs as; `root` only when written so) and `notify_timeout=MS` (default
//! 10000, 1 to 600000): the hook is killed with its process group then.
//!
//! The hook is run by `login::notify` (the module) and the tool; error
//! messages never quote a value.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sys::users::valid_user_name;

pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// The keys handled here.
pub const KEYS: &[&str] = &["notify", "notify_user", "notify_timeout"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// `None`: no hook.
    pub path: Option<PathBuf>,
    pub user: Option<String>,
    pub timeout: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            path: None,
            user: None,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        }
    }
}

/// Why a value of one of [`KEYS`] is refused, or the settings do not go
/// together. The message never quotes the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifySettingError {
    NotAbsolute,
    NotAUserName,
    NotMilliseconds,
    TimeoutOutOfRange,
    UnknownKey,
    /// `notify=` without `notify_user=`.
    NoUser,
    /// `notify_user=` without `notify=`.
    UserWithoutCommand,
}

impl NotifySettingError {
    /// The key the error is reported under (for the cross-checks).
    pub fn key(&self) -> &'static str {
        match self {
            Self::NoUser | Self::UserWithoutCommand => "notify_user",
            _ => "notify",
        }
    }
}

impl fmt::Display for NotifySettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("the value is not an absolute path"),
            Self::NotAUserName => f.write_str("the value is not a user name"),
            Self::NotMilliseconds => f.write_str("the value is not a number of milliseconds"),
            Self::TimeoutOutOfRange => write!(f, "must be 1 to {MAX_TIMEOUT_MS} (milliseconds)"),
            Self::UnknownKey => f.write_str("not a notify key"),
            Self::NoUser => f.write_str("notify needs notify_user (the account the hook runs as)"),
            Self::UserWithoutCommand => f.write_str("notify_user is set without notify"),
        }
    }
}

impl std::error::Error for NotifySettingError {}

/// Sets `key` (one of [`KEYS`]) from `value`.
pub fn apply(s: &mut NotifySettings, key: &str, value: &str) -> Result<(), NotifySettingError> {
    use NotifySettingError as E;
    match key {
        "notify" => {
            let p = PathBuf::from(value);
            if !p.is_absolute() {
                return Err(E::NotAbsolute);
            }
            s.path = Some(p);
        }
        "notify_user" => {
            if !valid_user_name(value) {
                return Err(E::NotAUserName);
            }
            s.user = Some(value.to_owned());
        }
        "notify_timeout" => {
            let ms: u64 = value.parse().map_err(|_| E::NotMilliseconds)?;
            if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                return Err(E::TimeoutOutOfRange);
            }
            s.timeout = Duration::from_millis(ms);
        }
        _ => return Err(E::UnknownKey),
    }
    Ok(())
}

/// Cross-checks, once all settings are in.
pub fn check(s: &NotifySettings) -> Result<(), NotifySettingError> {
    match (&s.path, &s.user) {
        (Some(_), None) => Err(NotifySettingError::NoUser),
        (None, Some(_)) => Err(NotifySettingError::UserWithoutCommand),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        let mut s = NotifySettings::default();
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(apply(&mut s, "notify", "rel/x").is_err());
        assert!(apply(&mut s, "notify_timeout", "0").is_err());
        assert!(apply(&mut s, "notify_timeout", "600001").is_err());
        assert!(apply(&mut s, "notify_timeout", "x").is_err());
        assert!(apply(&mut s, "notify_user", "a b").is_err());
        apply(&mut s, "notify", "/usr/lib/x").unwrap();
        assert_eq!(check(&s), Err(NotifySettingError::NoUser));
        apply(&mut s, "notify_user", "nobody").unwrap();
        apply(&mut s, "notify_timeout", "250").unwrap();
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert!(check(&s).is_ok());
        let only_user = NotifySettings { path: None, ..s };
        assert_eq!(
            check(&only_user),
            Err(NotifySettingError::UserWithoutCommand)
        );
    }
}
