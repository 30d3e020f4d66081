//! The settings of `secret_command=` (issue 14): the user's secret file
//! comes from a command, as sshd's AuthorizedKeysCommand gives authorized
//! keys. Module arguments and config.toml keys, parsed here for
//! `config.rs`: `secret_command=PATH`, `secret_command_user=NAME`
//! (required with it: the account the command runs as; `root` only when
//! written so) and `secret_command_timeout=MS` (default 2000, 1 to 60000).
//! `secret=` and `secret_command=` together are a configuration error.
//!
//! The login runs the command (`login::secret_command`); error messages
//! never quote a value.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sys::users::valid_user_name;

pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The keys handled here.
pub const KEYS: &[&str] = &[
    "secret_command",
    "secret_command_user",
    "secret_command_timeout",
];

pub fn is_key(key: &str) -> bool {
    KEYS.contains(&key)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretCommandSettings {
    /// `None`: secrets come from files (`secret=`).
    pub path: Option<PathBuf>,
    pub user: Option<String>,
    pub timeout: Duration,
}

impl Default for SecretCommandSettings {
    fn default() -> Self {
        SecretCommandSettings {
            path: None,
            user: None,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        }
    }
}

/// Why a value of one of [`KEYS`] is refused, or the settings do not go
/// together. The message never quotes the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretCommandSettingError {
    NotAbsolute,
    NotAUserName,
    NotMilliseconds,
    TimeoutOutOfRange,
    UnknownKey,
    /// `secret=` and `secret_command=` together.
    WithSecret,
    /// `secret_command=` without `secret_command_user=`.
    NoUser,
    /// `secret_command_user=` without `secret_command=`.
    UserWithoutCommand,
}

impl SecretCommandSettingError {
    /// The key the error is reported under (for the cross-checks).
    pub fn key(&self) -> &'static str {
        match self {
            Self::WithSecret => "secret_command",
            Self::NoUser | Self::UserWithoutCommand => "secret_command_user",
            _ => "secret_command",
        }
    }
}

impl fmt::Display for SecretCommandSettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("the value is not an absolute path"),
            Self::NotAUserName => f.write_str("the value is not a user name"),
            Self::NotMilliseconds => f.write_str("the value is not a number of milliseconds"),
            Self::TimeoutOutOfRange => write!(f, "must be 1 to {MAX_TIMEOUT_MS} (milliseconds)"),
            Self::UnknownKey => f.write_str("not a secret_command key"),
            Self::WithSecret => f.write_str("secret and secret_command exclude each other"),
            Self::NoUser => f.write_str(
                "secret_command needs secret_command_user (the account the command runs as)",
            ),
            Self::UserWithoutCommand => {
                f.write_str("secret_command_user is set without secret_command")
            }
        }
    }
}

impl std::error::Error for SecretCommandSettingError {}

/// Sets `key` (one of [`KEYS`]) from `value`.
pub fn apply(
    s: &mut SecretCommandSettings,
    key: &str,
    value: &str,
) -> Result<(), SecretCommandSettingError> {
    use SecretCommandSettingError as E;
    match key {
        "secret_command" => {
            let p = PathBuf::from(value);
            if !p.is_absolute() {
                return Err(E::NotAbsolute);
            }
            s.path = Some(p);
        }
        "secret_command_user" => {
            if !valid_user_name(value) {
                return Err(E::NotAUserName);
            }
            s.user = Some(value.to_owned());
        }
        "secret_command_timeout" => {
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

/// Cross-checks, once all settings are in. `secret_given`: `secret=` was
/// set (argument or config file).
pub fn check(
    s: &SecretCommandSettings,
    secret_given: bool,
) -> Result<(), SecretCommandSettingError> {
    match (&s.path, &s.user) {
        (Some(_), _) if secret_given => Err(SecretCommandSettingError::WithSecret),
        (Some(_), None) => Err(SecretCommandSettingError::NoUser),
        (None, Some(_)) => Err(SecretCommandSettingError::UserWithoutCommand),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        let mut s = SecretCommandSettings::default();
        assert!(apply(&mut s, "secret_command", "rel/x").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "0").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "60001").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "x").is_err());
        assert!(apply(&mut s, "secret_command_user", "a b").is_err());
        apply(&mut s, "secret_command", "/usr/lib/x").unwrap();
        assert_eq!(check(&s, false), Err(SecretCommandSettingError::NoUser));
        apply(&mut s, "secret_command_user", "nobody").unwrap();
        apply(&mut s, "secret_command_timeout", "60000").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(check(&s, false).is_ok());
        assert_eq!(check(&s, true), Err(SecretCommandSettingError::WithSecret));
        let only_user = SecretCommandSettings { path: None, ..s };
        assert_eq!(
            check(&only_user, false),
            Err(SecretCommandSettingError::UserWithoutCommand)
        );
    }
}
