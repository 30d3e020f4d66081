//! The three keys of every command the module runs — its root-owned
//! path, the account it runs as and its timeout — parsed and cross-checked
//! once, for `secret_command=` (`secret_command.rs`) and `notify=`
//! (`notify.rs`), which only name their keys and limits ([`CommandKeys`]).
//!
//! The path must be absolute and the account named (`root` only when
//! written so); running the command, with the ownership checks, is
//! `sys::command`'s and the login's. Error messages never quote a value.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sys::users::valid_user_name;

/// The names and limits of one command's keys.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandKeys {
    /// The command's path (`secret_command`, `notify`).
    pub path: &'static str,
    /// The account it runs as.
    pub user: &'static str,
    /// Its timeout, in milliseconds.
    pub timeout: &'static str,
    pub default_ms: u64,
    pub max_ms: u64,
    /// What the command is called in messages ("command", "hook").
    pub noun: &'static str,
}

impl CommandKeys {
    /// The three keys, as the key table lists them.
    pub fn all(&self) -> [&'static str; 3] {
        [self.path, self.user, self.timeout]
    }
}

/// One command's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSettings {
    /// `None`: not configured.
    pub path: Option<PathBuf>,
    pub user: Option<String>,
    pub timeout: Duration,
}

impl CommandSettings {
    /// Not configured, with the default timeout.
    pub fn new(keys: &CommandKeys) -> CommandSettings {
        CommandSettings {
            path: None,
            user: None,
            timeout: Duration::from_millis(keys.default_ms),
        }
    }
}

/// Why a value is refused, or the settings do not go together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    NotAbsolute,
    NotAUserName,
    NotMilliseconds,
    TimeoutOutOfRange,
    UnknownKey,
    /// `secret=` and the command together (for `secret_command=`).
    WithSecret,
    /// The command without its user.
    NoUser,
    /// The user without the command.
    UserWithoutCommand,
}

/// A [`Problem`] of one command's keys; the message never quotes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSettingError {
    pub keys: &'static CommandKeys,
    pub problem: Problem,
}

impl CommandSettingError {
    /// The key the error is reported under (for the cross-checks).
    pub fn key(&self) -> &'static str {
        match self.problem {
            Problem::NoUser | Problem::UserWithoutCommand => self.keys.user,
            _ => self.keys.path,
        }
    }
}

impl fmt::Display for CommandSettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.keys;
        match self.problem {
            Problem::NotAbsolute => f.write_str("the value is not an absolute path"),
            Problem::NotAUserName => f.write_str("the value is not a user name"),
            Problem::NotMilliseconds => f.write_str("the value is not a number of milliseconds"),
            Problem::TimeoutOutOfRange => write!(f, "must be 1 to {} (milliseconds)", k.max_ms),
            Problem::UnknownKey => write!(f, "not a {} key", k.path),
            Problem::WithSecret => write!(f, "secret and {} exclude each other", k.path),
            Problem::NoUser => write!(
                f,
                "{} needs {} (the account the {} runs as)",
                k.path, k.user, k.noun
            ),
            Problem::UserWithoutCommand => write!(f, "{} is set without {}", k.user, k.path),
        }
    }
}

impl std::error::Error for CommandSettingError {}

/// Sets `key` (one of `keys`) from `value`.
pub fn apply(
    keys: &'static CommandKeys,
    s: &mut CommandSettings,
    key: &str,
    value: &str,
) -> Result<(), CommandSettingError> {
    let fail = |problem| CommandSettingError { keys, problem };
    if key == keys.path {
        let p = PathBuf::from(value);
        if !p.is_absolute() {
            return Err(fail(Problem::NotAbsolute));
        }
        s.path = Some(p);
    } else if key == keys.user {
        if !valid_user_name(value) {
            return Err(fail(Problem::NotAUserName));
        }
        s.user = Some(value.to_owned());
    } else if key == keys.timeout {
        let ms: u64 = value.parse().map_err(|_| fail(Problem::NotMilliseconds))?;
        if !(1..=keys.max_ms).contains(&ms) {
            return Err(fail(Problem::TimeoutOutOfRange));
        }
        s.timeout = Duration::from_millis(ms);
    } else {
        return Err(fail(Problem::UnknownKey));
    }
    Ok(())
}

/// Cross-checks, once all settings are in: the command and its user go
/// together. `excludes_secret`: `secret=` was set and the command
/// replaces it (`secret_command=`).
pub fn check(
    keys: &'static CommandKeys,
    s: &CommandSettings,
    excludes_secret: bool,
) -> Result<(), CommandSettingError> {
    let fail = |problem| Err(CommandSettingError { keys, problem });
    match (&s.path, &s.user) {
        (Some(_), _) if excludes_secret => fail(Problem::WithSecret),
        (Some(_), None) => fail(Problem::NoUser),
        (None, Some(_)) => fail(Problem::UserWithoutCommand),
        _ => Ok(()),
    }
}
