//! `secret_command=` (issue 14) at login: the user's secret file comes
//! from a command, as sshd's AuthorizedKeysCommand gives authorized keys
//! (settings: `config::secret_command`).
//!
//! [`fetch`] checks the command file (root-owned, as every directory above
//! it, none writable by group or others), resolves the command's user, and
//! runs the command through [`PamIo`] (`sys::command::run` with the edge's
//! confinement) with the user's canonical name as its only argument. Its
//! standard output is a secret file's text, parsed by the caller exactly
//! as a file is; exit 0 with nothing printed means "not enrolled".
#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use zeroize::Zeroizing;

use crate::config::SecretCommandSettings;
use crate::core::logtext::token;
use crate::sys::command::{check_owned_by_root, CommandPathError, CommandSpec, Ended};
use crate::sys::users;

use super::owner::Owner;
use super::{Level, PamIo};

/// What the command gave.
pub(crate) enum Fetched {
    /// A secret file's bytes, to be parsed as a file's are.
    Text(Zeroizing<Vec<u8>>),
    /// Exit 0, nothing printed: not enrolled.
    Nothing,
    /// The command failed: the reason for syslog (the cause and its first
    /// line of standard error, escaped; never its output).
    Problem(String),
}

/// Why the command cannot be run at all: a configuration error.
#[derive(Debug)]
pub(crate) enum SecretCommandError {
    /// `secret_command=` or `secret_command_user=` is missing (the
    /// configuration's cross-check refuses that before a login).
    Incomplete,
    /// The command file cannot be trusted; the path as given (escaped).
    Path(String, CommandPathError),
    UserLookup(io::Error),
    NoSuchUser(String),
    /// The command's user has uid 0 but was not written `root`.
    RootAlias(String),
}

impl fmt::Display for SecretCommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("secret_command needs secret_command_user"),
            Self::Path(shown, e) => match e.path() {
                Some(p) => write!(
                    f,
                    "secret_command {shown}: {} {e}",
                    token(&p.to_string_lossy())
                ),
                None => write!(f, "secret_command {shown}: {e}"),
            },
            Self::UserLookup(e) => write!(f, "secret_command_user lookup failed: {e}"),
            Self::NoSuchUser(u) => {
                write!(f, "secret_command_user {} does not exist", token(u))
            }
            Self::RootAlias(u) => write!(
                f,
                "secret_command_user {} is root; only secret_command_user root (written so) runs the command as root",
                token(u)
            ),
        }
    }
}

impl std::error::Error for SecretCommandError {}

/// Runs the secret command for the login's user (its canonical name
/// settled through `owner`, and kept for the decision).
pub(crate) fn fetch(
    s: &SecretCommandSettings,
    owner: &Owner,
    io: &dyn PamIo,
    debug: bool,
) -> Result<Fetched, SecretCommandError> {
    let (Some(path), Some(run_as)) = (&s.path, &s.user) else {
        return Err(SecretCommandError::Incomplete);
    };
    let shown = token(&path.to_string_lossy());
    let program =
        check_owned_by_root(path).map_err(|e| SecretCommandError::Path(shown.clone(), e))?;
    let account = users::lookup_user(run_as)
        .map_err(SecretCommandError::UserLookup)?
        .ok_or_else(|| SecretCommandError::NoSuchUser(run_as.clone()))?;
    if account.uid == 0 && run_as != "root" {
        return Err(SecretCommandError::RootAlias(run_as.clone()));
    }
    let name = match owner.account() {
        Ok(account) => account.as_str().to_owned(),
        Err(why) => return Ok(Fetched::Problem(why.to_string())),
    };
    let spec = CommandSpec {
        program,
        arg: name,
        uid: account.uid,
        gid: account.gid,
        timeout: s.timeout,
    };
    if debug {
        let what = format!(
            "running secret_command {shown} for {} as {}",
            token(&spec.arg),
            token(run_as)
        );
        io.log(Level::Debug, &what);
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
