//! `secret_command=` (issue 14): the user's secret file comes from a
//! command, as sshd's AuthorizedKeysCommand gives authorized keys.
//!
//! Settings (module arguments and config.toml keys, parsed here for
//! `config.rs`): `secret_command=PATH`, `secret_command_user=NAME`
//! (required with it: the account the command runs as; `root` only when
//! written so) and `secret_command_timeout=MS` (default 2000, 1 to 60000).
//! `secret=` and `secret_command=` together are a configuration error.
//!
//! At login, [`fetch`] checks the command file (root-owned, as every
//! directory above it, none writable by group or others), resolves the
//! command's user, and runs the command through [`PamIo`] with the user's
//! canonical name as its only argument (src/command.rs). Its standard
//! output is a secret file's text, parsed by the caller exactly as a file
//! is; exit 0 with nothing printed means "not enrolled".
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::auth::{Level, PamIo};
use crate::command::{CommandSpec, Ended};
use crate::files::{self, UserInfo};
use crate::logtext::token;

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

/// Sets `key` (one of [`KEYS`]) from `value`; the error is the reason,
/// without the value.
pub fn apply(s: &mut SecretCommandSettings, key: &str, value: &str) -> Result<(), String> {
    match key {
        "secret_command" => {
            let p = PathBuf::from(value);
            if !p.is_absolute() {
                return Err("the value is not an absolute path".into());
            }
            s.path = Some(p);
        }
        "secret_command_user" => {
            if !files::valid_user_name(value) {
                return Err("the value is not a user name".into());
            }
            s.user = Some(value.to_owned());
        }
        "secret_command_timeout" => {
            let ms: u64 = value
                .parse()
                .map_err(|_| "the value is not a number of milliseconds".to_owned())?;
            if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                return Err(format!("must be 1 to {MAX_TIMEOUT_MS} (milliseconds)"));
            }
            s.timeout = Duration::from_millis(ms);
        }
        _ => return Err("not a secret_command key".into()),
    }
    Ok(())
}

/// Cross-checks, once all settings are in: `(key, reason)` on error.
/// `secret_given`: `secret=` was set (argument or config file).
pub fn check(s: &SecretCommandSettings, secret_given: bool) -> Result<(), (&'static str, String)> {
    match (&s.path, &s.user) {
        (Some(_), _) if secret_given => Err((
            "secret_command",
            "secret and secret_command exclude each other".into(),
        )),
        (Some(_), None) => Err((
            "secret_command_user",
            "secret_command needs secret_command_user (the account the command runs as)".into(),
        )),
        (None, Some(_)) => Err((
            "secret_command_user",
            "secret_command_user is set without secret_command".into(),
        )),
        _ => Ok(()),
    }
}

/// What the command gave.
pub enum Fetched {
    /// A secret file's bytes, to be parsed as a file's are.
    Text(Zeroizing<Vec<u8>>),
    /// Exit 0, nothing printed: not enrolled.
    Nothing,
    /// The command failed: the reason for syslog (the cause and its first
    /// line of standard error, escaped; never its output).
    Problem(String),
}

/// Runs the secret command for `user`. `Err`: a configuration error (the
/// command file or the command's user cannot be used), logged by the
/// caller as such.
pub fn fetch(
    s: &SecretCommandSettings,
    user: &UserInfo,
    io: &dyn PamIo,
    debug: bool,
) -> Result<Fetched, String> {
    let (Some(path), Some(run_as)) = (&s.path, &s.user) else {
        return Err("secret_command needs secret_command_user".into());
    };
    let shown = token(&path.to_string_lossy());
    let program = crate::command::check_owned_by_root(path)
        .map_err(|why| format!("secret_command {shown}: {why}"))?;
    let account = files::lookup_user(run_as)
        .map_err(|e| format!("secret_command_user lookup failed: {e}"))?
        .ok_or_else(|| format!("secret_command_user {} does not exist", token(run_as)))?;
    if account.uid == 0 && run_as != "root" {
        return Err(format!(
            "secret_command_user {} is root; only secret_command_user root (written so) runs the command as root",
            token(run_as)
        ));
    }
    let name = match files::canonical_name(user) {
        Ok(n) => n,
        Err(why) => return Ok(Fetched::Problem(why)),
    };
    let spec = CommandSpec {
        program,
        arg: name,
        uid: account.uid,
        gid: account.gid,
        timeout: s.timeout,
    };
    if debug {
        io.log(
            Level::Debug,
            &format!(
                "running secret_command {shown} for {} as {}",
                token(&spec.arg),
                token(run_as)
            ),
        );
    }
    let with_stderr = |cause: String, line: &str| {
        if line.is_empty() {
            format!("secret_command {shown}: {cause}")
        } else {
            format!("secret_command {shown}: {cause}; stderr: {}", token(line))
        }
    };
    Ok(match io.run_secret_command(&spec) {
        Ok(out) if out.ended == Ended::Exit(0) => {
            if out.stdout.is_empty() {
                Fetched::Nothing
            } else {
                Fetched::Text(out.stdout)
            }
        }
        Ok(out) => Fetched::Problem(with_stderr(out.ended.to_string(), &out.stderr_line)),
        Err(e) => Fetched::Problem(with_stderr(e.kind.to_string(), &e.stderr_line)),
    })
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
        assert!(check(&s, false).is_err(), "user missing");
        apply(&mut s, "secret_command_user", "nobody").unwrap();
        apply(&mut s, "secret_command_timeout", "60000").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert!(check(&s, false).is_ok());
        assert!(check(&s, true).is_err(), "secret= with secret_command=");
        let only_user = SecretCommandSettings { path: None, ..s };
        assert!(check(&only_user, false).is_err());
    }
}
