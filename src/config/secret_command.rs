//! The settings of `secret_command=` (issue 14): the user's secret file
//! comes from a command, as sshd's AuthorizedKeysCommand gives authorized
//! keys. Module arguments and config.toml keys: `secret_command=PATH`,
//! `secret_command_user=NAME` (required with it: the account the command
//! runs as; `root` only when written so) and `secret_command_timeout=MS`
//! (default 2000, 1 to 60000), parsed by `config::command` as every
//! command's keys are. `secret=` and `secret_command=` together are a
//! configuration error.
//!
//! The login runs the command (`login::secret_command`).
#![forbid(unsafe_code)]

use super::command::{self, CommandKeys, CommandSettingError, CommandSettings};

pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The keys of `secret_command=`.
pub static COMMAND: CommandKeys = CommandKeys {
    path: "secret_command",
    user: "secret_command_user",
    timeout: "secret_command_timeout",
    default_ms: DEFAULT_TIMEOUT_MS,
    max_ms: MAX_TIMEOUT_MS,
    noun: "command",
};

/// `secret_command=` and its user and timeout.
pub type SecretCommandSettings = CommandSettings;

/// Not configured: secrets come from files (`secret=`).
pub fn unset() -> SecretCommandSettings {
    CommandSettings::new(&COMMAND)
}

/// Sets `key` (one of [`COMMAND`]'s) from `value`.
pub fn apply(
    s: &mut SecretCommandSettings,
    key: &str,
    value: &str,
) -> Result<(), CommandSettingError> {
    command::apply(&COMMAND, s, key, value)
}

/// Cross-checks, once all settings are in. `secret_given`: `secret=` was
/// set (argument or config file).
pub fn check(s: &SecretCommandSettings, secret_given: bool) -> Result<(), CommandSettingError> {
    command::check(&COMMAND, s, secret_given)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::command::Problem;

    fn problem(r: Result<(), CommandSettingError>) -> Option<Problem> {
        r.err().map(|e| e.problem)
    }

    #[test]
    fn settings() {
        let mut s = unset();
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert!(apply(&mut s, "secret_command", "rel/x").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "0").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "60001").is_err());
        assert!(apply(&mut s, "secret_command_timeout", "x").is_err());
        assert!(apply(&mut s, "secret_command_user", "a b").is_err());
        apply(&mut s, "secret_command", "/usr/lib/x").unwrap();
        assert_eq!(problem(check(&s, false)), Some(Problem::NoUser));
        apply(&mut s, "secret_command_user", "nobody").unwrap();
        apply(&mut s, "secret_command_timeout", "60000").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(check(&s, false).is_ok());
        assert_eq!(problem(check(&s, true)), Some(Problem::WithSecret));
        let only_user = SecretCommandSettings { path: None, ..s };
        let e = check(&only_user, false).unwrap_err();
        assert_eq!(e.problem, Problem::UserWithoutCommand);
        assert_eq!(e.key(), "secret_command_user");
        assert_eq!(
            e.to_string(),
            "secret_command_user is set without secret_command"
        );
    }
}
