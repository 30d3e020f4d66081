//! `import-google-authenticator`: the Google file and what it cannot carry.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use pam_totp::secret::enrollment::FormatError;
use pam_totp::secret::google::GoogleError;
use pam_totp::sys::secret_file::ReadError;

use super::{NotGoogle, EXIT_INPUT};

#[derive(Debug)]
pub enum ImportError {
    GooglePath {
        path: PathBuf,
        err: io::Error,
    },
    NothingToImport {
        from: String,
    },
    GoogleUnreadable {
        from: String,
        err: ReadError,
    },
    NotGoogle {
        from: String,
        why: NotGoogle,
    },
    GoogleParse {
        from: String,
        err: GoogleError,
    },
    GoogleHotp {
        from: String,
        file_name: &'static str,
    },
    GoogleTooManyScratch {
        from: String,
        n: usize,
        max: usize,
    },
    GoogleFormat {
        from: String,
        err: FormatError,
    },
    ImportOntoItself {
        path: PathBuf,
    },
}

impl ImportError {
    /// 2: refused before anything was written; 1: the work failed.
    pub fn exit_status(&self) -> u8 {
        use ImportError::*;
        match self {
            GooglePath { .. }
            | NothingToImport { .. }
            | GoogleUnreadable { .. }
            | NotGoogle { .. }
            | GoogleParse { .. }
            | GoogleHotp { .. }
            | GoogleTooManyScratch { .. }
            | GoogleFormat { .. }
            | ImportOntoItself { .. } => EXIT_INPUT,
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ImportError::*;
        match self {
            GooglePath { path, err } => write!(f, "{}: {err}", path.display()),
            NothingToImport { from } => write!(f, "{from}: no such file, nothing to import"),
            GoogleUnreadable { from, err } => write!(f, "{from}: {err}"),
            NotGoogle { from, why } => {
                write!(f, "{from} is not a Google Authenticator file: {why}")
            }
            GoogleParse { from, err } => write!(f, "{from}: {err}"),
            GoogleHotp { from, file_name } => write!(
                f,
                "{from} is counter-based (HOTP_COUNTER), which pam-totp's own format cannot hold; \
                 leave it as it is and point the module's secret= at it (for example \
                 secret=${{HOME}}/{file_name}): it is read in place, the counter kept in \
                 pam-totp's state"
            ),
            GoogleTooManyScratch { from, n, max } => write!(
                f,
                "{from} has {n} scratch codes; pam-totp keeps at most {max}"
            ),
            GoogleFormat { from, err } => write!(f, "{from}: {err}"),
            ImportOntoItself { path } => write!(
                f,
                "{} is the Google Authenticator file itself, which is never rewritten; import it \
                 to another path (the config file's `secret`, by default ~/.pam_totp, or \
                 --secret-file)",
                path.display()
            ),
        }
    }
}
