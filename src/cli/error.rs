//! Why a command stopped: one enum for the whole tool, [`CliError`], its
//! variants grouped by what they are about (one file each under error/).
//! Each variant says, in one place, which exit status it ends with (2: bad
//! input, nothing written; 1: the work itself failed) and which one line
//! goes to standard error after "pam-totp: ". No secret or code is ever a
//! field.
#![forbid(unsafe_code)]

mod access;
mod enroll;
mod file;
mod fleet;
mod host_key;
mod import;
mod keys;

use std::fmt;
use std::process::ExitCode;

use pam_totp::state::StateError;

pub use access::AccessError;
pub use enroll::EnrollError;
pub use file::FileError;
pub use fleet::FleetCliError;
pub use host_key::KeyError;
pub use import::ImportError;
pub use keys::KeysError;

/// Exit status for bad input: usage, values, users, paths, permissions.
pub const EXIT_INPUT: u8 = 2;
/// Exit status when the work itself failed (I/O, no confirmation, a problem
/// found by `status` or `report`).
pub const EXIT_FAILED: u8 = 1;

pub type Result<T> = std::result::Result<T, CliError>;

/// Why a path is not taken for a secret file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotSecret {
    NotRegular,
    NotOurs,
}

/// Why a file given to `import-google-authenticator` is not Google's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotGoogle {
    AlreadyNative,
    NoSecretLine,
}

#[derive(Debug)]
pub enum CliError {
    Access(AccessError),
    File(FileError),
    Enroll(EnrollError),
    HostKey(KeyError),
    Import(ImportError),
    /// The keys of a secret file (`enroll --add`, `remove-key`).
    Keys(KeysError),
    /// The fleet's state server (`--state`, config.toml's `state`).
    Fleet(FleetCliError),
    /// The login state could not be read, written or removed.
    State(StateError),
}

impl CliError {
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Access(e) => e.exit_status(),
            CliError::File(e) => e.exit_status(),
            CliError::Enroll(e) => e.exit_status(),
            CliError::HostKey(e) => e.exit_status(),
            CliError::Import(e) => e.exit_status(),
            CliError::Keys(e) => e.exit_status(),
            CliError::Fleet(e) => e.exit_status(),
            CliError::State(_) => EXIT_FAILED,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }
}

/// The one line each variant prints (after "pam-totp: ").
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Access(e) => write!(f, "{e}"),
            CliError::File(e) => write!(f, "{e}"),
            CliError::Enroll(e) => write!(f, "{e}"),
            CliError::HostKey(e) => write!(f, "{e}"),
            CliError::Import(e) => write!(f, "{e}"),
            CliError::Keys(e) => write!(f, "{e}"),
            CliError::Fleet(e) => write!(f, "{e}"),
            CliError::State(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<AccessError> for CliError {
    fn from(e: AccessError) -> Self {
        CliError::Access(e)
    }
}

impl From<FileError> for CliError {
    fn from(e: FileError) -> Self {
        CliError::File(e)
    }
}

impl From<EnrollError> for CliError {
    fn from(e: EnrollError) -> Self {
        CliError::Enroll(e)
    }
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        CliError::HostKey(e)
    }
}

impl From<FleetCliError> for CliError {
    fn from(e: FleetCliError) -> Self {
        CliError::Fleet(e)
    }
}

impl From<ImportError> for CliError {
    fn from(e: ImportError) -> Self {
        CliError::Import(e)
    }
}

impl From<KeysError> for CliError {
    fn from(e: KeysError) -> Self {
        CliError::Keys(e)
    }
}

impl fmt::Display for NotSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSecret::NotRegular => "it is not a regular file",
            NotSecret::NotOurs => "it is not a pam-totp or Google Authenticator secret file",
        })
    }
}

impl fmt::Display for NotGoogle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotGoogle::AlreadyNative => "it is already in pam-totp's own format",
            NotGoogle::NoSecretLine => "its first line is not a base32 secret",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_2_and_failure_is_1() {
        assert_eq!(
            CliError::from(EnrollError::NeedRegenerate).exit_status(),
            EXIT_INPUT
        );
        assert_eq!(
            CliError::from(EnrollError::NotConfirmed).exit_status(),
            EXIT_FAILED
        );
        let e = CliError::from(FileError::AlreadyEnrolled {
            user: "alice".into(),
            path: "/home/alice/.pam_totp".into(),
        });
        assert_eq!(e.exit_status(), EXIT_INPUT);
        assert_eq!(
            e.to_string(),
            "alice is already enrolled (/home/alice/.pam_totp exists); use --force to replace it"
        );
    }
}
