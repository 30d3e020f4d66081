//! Secret files on disk: what is at a path, writing, reading back, removing.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use pam_totp::secret::enrollment::FormatError;
use pam_totp::secret::enrollment::SerializeError;
use pam_totp::secret::seal::SealError;
use pam_totp::sys::secret_file::ReadError;

use super::{NotSecret, EXIT_FAILED, EXIT_INPUT};

#[derive(Debug)]
pub enum FileError {
    CannotUse {
        path: PathBuf,
        err: io::Error,
    },
    NotReplacing {
        path: PathBuf,
        why: NotSecret,
    },
    NotRemoving {
        path: PathBuf,
        why: NotSecret,
    },
    AlreadyEnrolled {
        user: String,
        path: PathBuf,
    },
    DirNotDir {
        path: PathBuf,
        dir: PathBuf,
    },
    DirUnusable {
        path: PathBuf,
        dir: PathBuf,
        err: io::Error,
    },
    NotWritable {
        path: PathBuf,
        err: io::Error,
    },
    AppearedMeanwhile {
        path: PathBuf,
    },
    OnlyRootCanSee {
        path: PathBuf,
    },
    Write {
        path: PathBuf,
        err: io::Error,
    },
    Remove {
        path: PathBuf,
        err: io::Error,
    },
    ReadSecret {
        path: PathBuf,
        err: ReadError,
    },
    Format {
        path: PathBuf,
        err: FormatError,
    },
    NotNative {
        path: PathBuf,
    },
    Serialize {
        path: PathBuf,
        err: SerializeError,
    },
    ReadBack {
        path: PathBuf,
        err: ReadError,
    },
    ReadBackParse {
        path: PathBuf,
        err: FormatError,
    },
    NotEnrolled {
        user: String,
        path: PathBuf,
    },
    GoogleNotRewritten {
        path: PathBuf,
    },
    Seal(SealError),
    Probe {
        path: PathBuf,
        err: io::Error,
    },
    ReadDir {
        dir: PathBuf,
        err: io::Error,
    },
    /// `--secret-file -`: the text could not be serialized or does not
    /// parse back (nothing was printed).
    TextSerialize(SerializeError),
    TextParse(FormatError),
    /// `status --secret-file -`: standard input could not be read, or holds
    /// more than a secret file may.
    Stdin(io::Error),
    StdinTooLarge {
        max: u64,
    },
}

impl FileError {
    /// 2: refused before anything was written; 1: the work failed.
    pub fn exit_status(&self) -> u8 {
        use FileError::*;
        match self {
            CannotUse { .. }
            | NotReplacing { .. }
            | NotRemoving { .. }
            | AlreadyEnrolled { .. }
            | DirNotDir { .. }
            | DirUnusable { .. }
            | NotWritable { .. }
            | AppearedMeanwhile { .. }
            | OnlyRootCanSee { .. }
            | NotEnrolled { .. }
            | GoogleNotRewritten { .. }
            | StdinTooLarge { .. } => EXIT_INPUT,
            Write { .. }
            | Remove { .. }
            | ReadSecret { .. }
            | Format { .. }
            | NotNative { .. }
            | Serialize { .. }
            | ReadBack { .. }
            | ReadBackParse { .. }
            | Seal(_)
            | Probe { .. }
            | ReadDir { .. }
            | TextSerialize(_)
            | TextParse(_)
            | Stdin(_) => EXIT_FAILED,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileError::*;
        match self {
            CannotUse { .. }
            | NotReplacing { .. }
            | NotRemoving { .. }
            | AlreadyEnrolled { .. }
            | AppearedMeanwhile { .. }
            | OnlyRootCanSee { .. }
            | NotEnrolled { .. }
            | GoogleNotRewritten { .. } => self.fmt_what_is_there(f),
            DirNotDir { .. }
            | DirUnusable { .. }
            | NotWritable { .. }
            | Write { .. }
            | Remove { .. }
            | Serialize { .. }
            | ReadBack { .. }
            | ReadBackParse { .. }
            | Seal(_) => self.fmt_writing(f),
            ReadSecret { .. }
            | Format { .. }
            | NotNative { .. }
            | Probe { .. }
            | ReadDir { .. } => self.fmt_reading(f),
            TextSerialize(_) | TextParse(_) | Stdin(_) | StdinTooLarge { .. } => {
                self.fmt_standard_streams(f)
            }
        }
    }
}

impl FileError {
    /// What is (or is not) at the path, and why the tool leaves it alone.
    fn fmt_what_is_there(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileError::*;
        match self {
            CannotUse { path, err } => write!(f, "cannot use {}: {err}", path.display()),
            NotReplacing { path, why } => write!(
                f,
                "{} exists and {why}; not replacing it (remove it yourself if it should go)",
                path.display()
            ),
            NotRemoving { path, why } => write!(
                f,
                "{} exists but {why}; not removing it (remove it yourself if it should go)",
                path.display()
            ),
            AlreadyEnrolled { user, path } => write!(
                f,
                "{user} is already enrolled ({} exists); use --force to replace it",
                path.display()
            ),
            AppearedMeanwhile { path } => write!(
                f,
                "{} appeared meanwhile; use --force to replace it",
                path.display()
            ),
            OnlyRootCanSee { path } => write!(
                f,
                "cannot read {}: permission denied (only root can see this enrollment)",
                path.display()
            ),
            NotEnrolled { user, path } => write!(
                f,
                "{user} is not enrolled ({} does not exist)",
                path.display()
            ),
            GoogleNotRewritten { path } => write!(
                f,
                "{} is in Google Authenticator's format, which pam-totp does not rewrite; \
                 enroll anew with --force",
                path.display()
            ),
            _ => unreachable!("fmt sends only what-is-there errors here"),
        }
    }

    /// Writing, sealing, reading back and removing a secret file.
    fn fmt_writing(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileError::*;
        match self {
            DirNotDir { path, dir } => write!(
                f,
                "cannot write {}: {} is not a directory",
                path.display(),
                dir.display()
            ),
            DirUnusable { path, dir, err } => write!(
                f,
                "cannot write {}: {}: {err}",
                path.display(),
                dir.display()
            ),
            NotWritable { path, err } | Write { path, err } => {
                write!(f, "cannot write {}: {err}", path.display())
            }
            Remove { path, err } => write!(f, "cannot remove {}: {err}", path.display()),
            Serialize { path, err } => write!(f, "not writing {}: {err}", path.display()),
            ReadBack { path, err } => write!(f, "wrote {} but it {err}", path.display()),
            ReadBackParse { path, err } => {
                write!(f, "wrote {} but it does not parse: {err}", path.display())
            }
            Seal(err) => write!(f, "cannot seal the secret: {err}"),
            _ => unreachable!("fmt sends only writing errors here"),
        }
    }

    /// Reading a secret file or its directory.
    fn fmt_reading(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileError::*;
        match self {
            ReadSecret { path, err } => write!(f, "{}: {err}", path.display()),
            Format { path, err } => write!(f, "{}: {err}", path.display()),
            NotNative { path } => write!(f, "{}: not a native secret file", path.display()),
            ReadDir { dir: path, err } | Probe { path, err } => {
                write!(f, "{}: {err}", path.display())
            }
            _ => unreachable!("fmt sends only reading errors here"),
        }
    }

    /// `--secret-file -`: the secret file on standard input or output.
    fn fmt_standard_streams(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileError::*;
        match self {
            TextSerialize(err) => write!(f, "not printing the secret file: {err}"),
            TextParse(err) => {
                write!(
                    f,
                    "not printing the secret file: it does not parse back: {err}"
                )
            }
            Stdin(err) => write!(f, "--secret-file -: cannot read standard input: {err}"),
            StdinTooLarge { max } => write!(
                f,
                "--secret-file -: standard input holds more than {max} bytes, \
                 more than a secret file may"
            ),
            _ => unreachable!("fmt sends only standard-stream errors here"),
        }
    }
}
