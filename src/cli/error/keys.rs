//! `enroll --add` and `remove-key`: the keys (devices) of one secret file.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

use super::EXIT_INPUT;

/// Every one is bad input (exit status 2): nothing is written. Names were
/// checked as key names (`A-Z a-z 0-9 . _ -`), so they are printed as they are.
#[derive(Debug)]
pub enum KeysError {
    /// `enroll --add` with `--secret-file -`: there is no file to add to.
    AddToStdio,
    /// A Google Authenticator file holds one key.
    GoogleSingleKey {
        path: PathBuf,
    },
    Duplicate {
        user: String,
        name: String,
    },
    Unknown {
        user: String,
        name: String,
    },
    /// The last key: `disable` removes the enrollment.
    LastKey {
        user: String,
        name: String,
    },
    TooMany {
        user: String,
        max: usize,
    },
    /// The keys of one file have the same number of digits.
    Digits {
        have: u64,
        asked: u8,
    },
}

impl KeysError {
    pub fn exit_status(&self) -> u8 {
        EXIT_INPUT
    }
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysError::AddToStdio => f.write_str(
                "--add adds a key to an existing secret file; --secret-file - has none",
            ),
            KeysError::GoogleSingleKey { path } => write!(
                f,
                "{} is in Google Authenticator's format, which holds one key; convert it first \
                 with `pam-totp import-google-authenticator --force`",
                path.display()
            ),
            KeysError::Duplicate { user, name } => {
                write!(f, "{user} already has a key named \"{name}\"")
            }
            KeysError::Unknown { user, name } => write!(f, "{user} has no key named \"{name}\""),
            KeysError::LastKey { user, name } => write!(
                f,
                "\"{name}\" is {user}'s last key; to remove the enrollment, use `pam-totp disable`"
            ),
            KeysError::TooMany { user, max } => {
                write!(f, "{user} already has {max} keys, the most a secret file holds")
            }
            KeysError::Digits { have, asked } => write!(
                f,
                "the keys of a secret file have the same number of digits: {have} here, not {asked} \
                 (see --digits)"
            ),
        }
    }
}
