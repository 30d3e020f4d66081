//! What a secret file describes, whatever its format: the [`Enrollment`]
//! (keys, scratch hashes, counter, the file's own limits), the rules its
//! keys follow (names, how many), and the errors of a file that does not
//! describe one. Reading a file of either format into it is
//! `crate::secret::file`'s (native, see `native`; Google Authenticator's,
//! see `google`).
//!
//! Pure: no I/O.
#![forbid(unsafe_code)]

use std::fmt;

use zeroize::Zeroizing;

use crate::core::decision::{Counter, Credentials, FileLimits};
use crate::core::logtext;
use crate::core::otp::{Algorithm, OtpKey, ParamError, DEFAULT_DIGITS};
use crate::core::policy::RateLimit;
use crate::core::scratch::{BadScratchHash, ScratchHash};
use crate::secret::google::{GoogleError, GoogleFile};
use crate::secret::seal::SealError;

pub const FORMAT_VERSION: u32 = 1;
/// Most scratch codes a file may hold.
pub const MAX_SCRATCH_CODES: usize = 100;
/// The name of the one key of a file in the single-key layout.
pub const DEFAULT_KEY_NAME: &str = "default";
/// Most keys one file holds: well under the keys one account's state
/// keeps (`core::user_state::MAX_KEYS`), which also counts replaced ones.
pub const MAX_FILE_KEYS: usize = 16;
/// Longest key name.
pub const MAX_KEY_NAME: usize = 32;

/// Whether `name` may name a key: 1 to [`MAX_KEY_NAME`] characters of
/// `A-Z a-z 0-9 . _ -`, so it can be shown and logged as it is.
pub fn valid_key_name(name: &str) -> bool {
    (1..=MAX_KEY_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A parsed secret file, in either format.
#[derive(Debug)]
pub struct Enrollment {
    /// The keys, one per device: at least one, at most
    /// [`MAX_FILE_KEYS`], all with
    /// the same number of digits. A Google Authenticator file, and a native
    /// file in the single-key layout, have one, named `default`.
    pub keys: Vec<NamedKey>,
    pub scratch: Vec<ScratchHash>,
    pub counter: Counter,
    /// Limits the file itself sets (Google Authenticator files only).
    pub limits: FileLimits,
    pub format: Format,
}

/// One key of an enrollment and its name (1 to 32 of `A-Z a-z 0-9 . _ -`,
/// so it may be shown and logged as it is).
#[derive(Debug)]
pub struct NamedKey {
    pub name: String,
    pub key: OtpKey,
    /// Whether the file holds it sealed to the host key.
    pub sealed: bool,
}

/// Which format a secret file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Native,
    GoogleAuthenticator,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::GoogleAuthenticator => "google-authenticator",
        }
    }
}

/// Why a secret file could not be used. Never includes the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    NotUtf8,
    /// The TOML did not parse or had unknown or mistyped keys: where and
    /// what, in the module's own words (`logtext::toml_problem`), never the
    /// value (which may be the secret, typed into the wrong key).
    Toml(String),
    Version(u32),
    NoSecret,
    Base32,
    Param(ParamError),
    Scratch(BadScratchHash),
    TooManyScratchCodes(usize),
    /// The file holds a sealed secret and nothing to open it with.
    Sealed,
    /// The sealed secret did not open.
    Unseal(SealError),
    Google(GoogleError),
    /// Both a top-level secret (or key parameter) and `[[keys]]`.
    MixedLayout,
    TooManyKeys(usize),
    /// The name of the n-th key (from 1) is not a valid name.
    KeyName(usize),
    DuplicateKeyName(String),
    /// Keys with different numbers of digits.
    MixedDigits,
    /// An error about one key of a `[[keys]]` file (its name was checked).
    InKey {
        name: String,
        error: Box<FormatError>,
    },
    /// An error about one key of the file, and the line that sets it.
    AtLine {
        line: usize,
        error: Box<FormatError>,
    },
}

impl FormatError {
    /// The key of the native format this error is about, if one.
    pub(crate) fn key(&self) -> Option<&'static str> {
        Some(match self {
            FormatError::Version(_) => "version",
            FormatError::Base32 | FormatError::Param(ParamError::SecretLength(_)) => "secret",
            FormatError::Param(ParamError::Algorithm) => "algorithm",
            FormatError::Param(ParamError::Digits(_)) => "digits",
            FormatError::Param(ParamError::Period(_)) => "period",
            FormatError::Scratch(_) | FormatError::TooManyScratchCodes(_) => "scratch_codes",
            FormatError::Unseal(_) => "sealed_secret",
            _ => return None,
        })
    }

    /// The error with the line of `text` that sets its key, when found.
    pub(crate) fn at_line_of(self, text: &str) -> FormatError {
        match self.key().and_then(|k| logtext::line_of_key(text, k)) {
            Some(line) => FormatError::AtLine {
                line,
                error: Box::new(self),
            },
            None => self,
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::NotUtf8 => f.write_str("not UTF-8 text"),
            FormatError::Toml(m) => write!(f, "malformed TOML: {m}"),
            FormatError::Version(v) => write!(f, "unsupported version {v} (expected 1)"),
            FormatError::NoSecret => f.write_str("no secret"),
            FormatError::Base32 => f.write_str("secret is not valid base32"),
            FormatError::Param(e) => e.fmt(f),
            FormatError::Scratch(e) => e.fmt(f),
            FormatError::TooManyScratchCodes(n) => {
                write!(f, "{n} scratch codes (at most {MAX_SCRATCH_CODES})")
            }
            FormatError::Sealed => f.write_str("the secret is sealed and cannot be opened here"),
            FormatError::Unseal(why) => write!(f, "cannot open the sealed secret: {why}"),
            FormatError::Google(e) => e.fmt(f),
            FormatError::MixedLayout => {
                f.write_str("both a top-level secret (or its parameters) and [[keys]]")
            }
            FormatError::TooManyKeys(n) => write!(f, "{n} keys (at most {MAX_FILE_KEYS})"),
            FormatError::KeyName(n) => write!(
                f,
                "key {n}: a name is 1 to {MAX_KEY_NAME} of A-Z a-z 0-9 . _ -"
            ),
            FormatError::DuplicateKeyName(name) => write!(f, "two keys named \"{name}\""),
            FormatError::MixedDigits => {
                f.write_str("keys with different numbers of digits (all must have the same)")
            }
            FormatError::InKey { name, error } => write!(f, "key \"{name}\": {error}"),
            FormatError::AtLine { line, error } => write!(f, "line {line}: {error}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// A secret file that is not written out: what the module would refuse
/// in it. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializeError(pub FormatError);

impl fmt::Display for SerializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the secret file would be unusable: {}", self.0)
    }
}

impl std::error::Error for SerializeError {}

impl From<ParamError> for FormatError {
    fn from(e: ParamError) -> Self {
        FormatError::Param(e)
    }
}

impl<'a> Credentials<'a> {
    /// What the decision needs of an enrollment.
    pub fn of(e: &'a Enrollment) -> Credentials<'a> {
        Credentials {
            keys: e.keys.iter().map(|k| &k.key).collect(),
            scratch: &e.scratch,
            counter: e.counter,
            limits: &e.limits,
        }
    }
}

impl Enrollment {
    /// The first key (the only one of a single-key file).
    pub fn first_key(&self) -> &OtpKey {
        &self.keys[0].key
    }

    /// The number of digits of its codes (the same for every key).
    pub fn digits(&self) -> u8 {
        self.first_key().digits()
    }

    /// The enrollment a Google Authenticator file describes: SHA1, six
    /// digits, its step size, counter, window, rate limit, spent steps and
    /// plain-text scratch codes.
    pub fn from_google(g: &GoogleFile) -> Result<Enrollment, FormatError> {
        let key = OtpKey::new(
            &g.secret,
            Algorithm::Sha1,
            u64::from(DEFAULT_DIGITS),
            g.step_size,
        )?;
        let scratch = g
            .scratch_codes
            .iter()
            .map(|c| ScratchHash::from_plain(c, &g.secret))
            .collect();
        Ok(Enrollment {
            keys: vec![NamedKey {
                name: DEFAULT_KEY_NAME.to_owned(),
                key,
                sealed: false,
            }],
            scratch,
            counter: match g.hotp_counter {
                Some(first) => Counter::Event { first },
                None => Counter::Time,
            },
            limits: FileLimits {
                window: g.window_bounds(),
                rate_limit: g.rate_limit.map(|(max_failures, seconds)| RateLimit {
                    max_failures,
                    seconds,
                }),
                spent_step: g.used_steps.iter().copied().max(),
            },
            format: Format::GoogleAuthenticator,
        })
    }
}

/// Opens a `sealed_secret` value (the module and the tool pass
/// [`seal::unseal`](crate::secret::seal::unseal) with the host key and the
/// user being authenticated).
pub type Unsealer<'a> = &'a dyn Fn(&str) -> Result<Zeroizing<Vec<u8>>, SealError>;
