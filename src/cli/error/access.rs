//! Who may act on whom, and where the files are: refusals and lookups of `access`.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use pam_totp::config::{ConfigError, SecretPathError};
use pam_totp::sys::users::AccountError;

use super::{EXIT_FAILED, EXIT_INPUT};

#[derive(Debug)]
pub enum AccessError {
    CallerLookup {
        uid: u32,
        err: io::Error,
    },
    CallerUnknown {
        uid: u32,
    },
    /// `--user` names another account, and the caller is not root.
    AnotherUser {
        name: String,
    },
    NoSuchUser {
        name: String,
    },
    UserLookup {
        name: String,
        err: io::Error,
    },
    /// The account's canonical name did not resolve (the library's reason).
    Account(AccountError),
    ListAccounts(io::Error),
    /// Root only: what the caller tried, and why only root may.
    ResetRootOnly {
        dir: PathBuf,
    },
    HostKeyRootOnly {
        verb: &'static str,
    },
    ReportRootOnly,
    Config(ConfigError),
    SecretFileRootOnly,
    SecretFilePath {
        path: PathBuf,
        err: io::Error,
    },
    /// The config file's `secret` template (the library's reason).
    SecretTemplate(SecretPathError),
    NotAFilePath {
        path: PathBuf,
    },
    OutsideHome {
        path: PathBuf,
    },
    Identity {
        path: PathBuf,
        err: io::Error,
    },
}

impl AccessError {
    /// 2: refused before anything was written; 1: the work failed.
    pub fn exit_status(&self) -> u8 {
        use AccessError::*;
        match self {
            AnotherUser { .. }
            | NoSuchUser { .. }
            | ResetRootOnly { .. }
            | HostKeyRootOnly { .. }
            | ReportRootOnly
            | Config(_)
            | SecretFileRootOnly
            | SecretFilePath { .. }
            | SecretTemplate(_)
            | NotAFilePath { .. }
            | OutsideHome { .. } => EXIT_INPUT,
            CallerLookup { .. }
            | CallerUnknown { .. }
            | UserLookup { .. }
            | Account(_)
            | ListAccounts(_)
            | Identity { .. } => EXIT_FAILED,
        }
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AccessError::*;
        match self {
            CallerLookup { uid, err } => write!(f, "cannot look up uid {uid}: {err}"),
            CallerUnknown { uid } => write!(f, "uid {uid} has no account (passwd entry)"),
            AnotherUser { name } => {
                write!(f, "only root may name another user (--user {name:?})")
            }
            NoSuchUser { name } => write!(f, "no such user: {name:?}"),
            UserLookup { name, err } => write!(f, "cannot look up user {name:?}: {err}"),
            Account(why) => why.fmt(f),
            ListAccounts(err) => write!(f, "cannot list the accounts (getpwent): {err}"),
            ResetRootOnly { dir } => write!(
                f,
                "only root can reset: the state directory {} is root's",
                dir.display()
            ),
            HostKeyRootOnly { verb } => write!(
                f,
                "only root can {verb} the host key: the private key is root's"
            ),
            ReportRootOnly => f.write_str(
                "only root can report on every account: the secret files and the state are root's",
            ),
            Config(err) => write!(f, "{err}"),
            SecretFileRootOnly => f.write_str(
                "only root may choose --secret-file (yours follows the config file, by default ~/.pam_totp)",
            ),
            SecretFilePath { path, err } => write!(f, "--secret-file {}: {err}", path.display()),
            SecretTemplate(why) => write!(f, "config `secret`: {why}"),
            NotAFilePath { path } => write!(f, "{} is not a file path", path.display()),
            OutsideHome { path } => write!(
                f,
                "{} is outside your home directory; only root can change it (ask an administrator)",
                path.display()
            ),
            Identity { path, err } => {
                write!(f, "{}: {err}", path.display())
            }
        }
    }
}
