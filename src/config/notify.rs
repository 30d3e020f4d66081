//! The settings of `notify=` (issue 16): a root-owned command run for each
//! event with one JSON object on its standard input (`core::event`).
//! Module arguments and config.toml keys, parsed by `config::command` as
//! every command's keys are:
//! `notify=PATH`, `notify_user=NAME` (required with it, as
//! `secret_command_user` is with `secret_command`: the account the hook
//! runs as; `root` only when written so) and `notify_timeout=MS` (default
//! 10000, 1 to 600000): the hook is killed with its process group then.
//!
//! The hook is run by `login::notify` (the module) and the tool.
#![forbid(unsafe_code)]

use super::command::{self, CommandKeys, CommandSettingError, CommandSettings};

pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// The keys of `notify=`.
pub static COMMAND: CommandKeys = CommandKeys {
    path: "notify",
    user: "notify_user",
    timeout: "notify_timeout",
    default_ms: DEFAULT_TIMEOUT_MS,
    max_ms: MAX_TIMEOUT_MS,
    noun: "hook",
};

/// `notify=` and its user and timeout.
pub type NotifySettings = CommandSettings;

/// No hook.
pub fn unset() -> NotifySettings {
    CommandSettings::new(&COMMAND)
}

/// Sets `key` (one of [`COMMAND`]'s) from `value`.
pub fn apply(s: &mut NotifySettings, key: &str, value: &str) -> Result<(), CommandSettingError> {
    command::apply(&COMMAND, s, key, value)
}

/// Cross-checks, once all settings are in.
pub fn check(s: &NotifySettings) -> Result<(), CommandSettingError> {
    command::check(&COMMAND, s, false)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::command::Problem;

    #[test]
    fn settings() {
        let mut s = unset();
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert!(apply(&mut s, "notify", "rel/x").is_err());
        assert!(apply(&mut s, "notify_timeout", "0").is_err());
        assert!(apply(&mut s, "notify_timeout", "600001").is_err());
        assert!(apply(&mut s, "notify_timeout", "x").is_err());
        assert!(apply(&mut s, "notify_user", "a b").is_err());
        apply(&mut s, "notify", "/usr/lib/x").unwrap();
        let e = check(&s).unwrap_err();
        assert_eq!((e.problem, e.key()), (Problem::NoUser, "notify_user"));
        assert_eq!(
            e.to_string(),
            "notify needs notify_user (the account the hook runs as)"
        );
        apply(&mut s, "notify_user", "nobody").unwrap();
        apply(&mut s, "notify_timeout", "250").unwrap();
        assert_eq!(s.timeout, Duration::from_millis(250));
        assert!(check(&s).is_ok());
        let only_user = NotifySettings { path: None, ..s };
        assert_eq!(
            check(&only_user).map_err(|e| e.problem),
            Err(Problem::UserWithoutCommand)
        );
    }
}
