//! What a secret file describes, whatever its format: the [`Enrollment`]
//! (key, scratch hashes, counter, the file's own limits). [`parse_with`]
//! recognises the format (native, see `native`; Google Authenticator's,
//! see `google`) and opens a sealed secret with the one unseal step.
//!
//! Pure: bytes in, an [`Enrollment`] out. Opening the file safely is
//! `crate::sys::secret_file`'s job.
#![forbid(unsafe_code)]

use std::fmt;

use zeroize::Zeroizing;

use crate::core::decision::{Counter, Credentials, FileLimits};
use crate::core::logtext;
use crate::core::otp::{Algorithm, OtpKey, ParamError, DEFAULT_DIGITS};
use crate::core::policy::RateLimit;
use crate::core::scratch::{BadScratchHash, ScratchHash};
use crate::secret::google::{self, GoogleError, GoogleFile};
use crate::secret::native::{SecretFile, DEFAULT_KEY_NAME, MAX_FILE_KEYS, MAX_KEY_NAME};
use crate::secret::seal::SealError;

pub const FORMAT_VERSION: u32 = 1;
/// Most scratch codes a file may hold.
pub const MAX_SCRATCH_CODES: usize = 100;

/// A parsed secret file, in either format.
#[derive(Debug)]
pub struct Enrollment {
    /// The keys, one per device: at least one, at most
    /// [`MAX_FILE_KEYS`](crate::secret::native::MAX_FILE_KEYS), all with
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

/// Parses a secret file's bytes, native or Google Authenticator format
/// (recognised by content). A sealed secret is an error.
pub fn parse(bytes: &[u8]) -> Result<Enrollment, FormatError> {
    parse_with(bytes, None)
}

/// Like [`parse`], opening a sealed secret with `unseal`.
pub fn parse_with(bytes: &[u8], unseal: Option<Unsealer<'_>>) -> Result<Enrollment, FormatError> {
    if google::looks_like_google(bytes) {
        let g = google::parse(bytes).map_err(FormatError::Google)?;
        return Enrollment::from_google(&g);
    }
    let file = SecretFile::parse(bytes)?;
    file.to_enrollment_with(unseal).map_err(|e| {
        // `parse` checked that the bytes are UTF-8.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        e.at_line_of(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::seal;

    #[test]
    fn parses_minimal_file() {
        let e = parse(b"version = 1\nsecret = \"jbsw y3dp ehpk 3pxp====\"\n").unwrap();
        assert_eq!(e.first_key().digits(), 6);
        assert_eq!(e.first_key().period(), 30);
        assert_eq!(e.first_key().algorithm(), Algorithm::Sha1);
        assert!(e.scratch.is_empty());
    }

    #[test]
    fn rejects_bad_files() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "malformed TOML"),
            (b"\xff\xfe", "not UTF-8"),
            (
                b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\ndigits = 12\n",
                "digits 12",
            ),
            (
                b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\nperiod = 0\n",
                "period 0",
            ),
            (
                b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\nalgorithm = \"MD5\"\n",
                "unknown algorithm",
            ),
            (b"version = 1\nsecret = \"JBSWY3DP!!\"\n", "base32"),
            (b"version = 1\nsecret = \"JBSW", "malformed TOML"),
            (b"version = 2\nsecret = \"JBSWY3DPEHPK3PXP\"\n", "version 2"),
            (b"version = 1\n", "no secret"),
            (
                b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\ncolour = 1\n",
                "malformed TOML",
            ),
            (b"version = 1\nsecret = \"JBSWY3DP\"\n", "secret is 5 bytes"),
        ];
        for (bytes, want) in cases {
            let err = parse(bytes).unwrap_err().to_string();
            assert!(
                err.contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn errors_name_the_line_and_key_never_the_value() {
        // A secret pasted into the wrong key, or a malformed line around it.
        const S: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for (text, want) in [
            (
                format!("version = 1\nsecret = \"{S}\"\nalgorithm = \"{S}\"\n"),
                "line 3: unknown algorithm",
            ),
            (
                format!("version = 1\nsecret = \"{S}\"\ndigits = \"{S}\"\n"),
                "malformed TOML: line 3: wrong type of value (digits)",
            ),
            (
                format!("version = 1\nsecret = \"{S}\"\n{S} = 1\n"),
                "malformed TOML: line 3: unknown key",
            ),
            (
                format!("version = 1\nsecret = \"{S}\"\nperiod = 0\n"),
                "line 3: period 0 is out of range",
            ),
            (
                format!("version = 1\nalgorithm = \"SHA1\"\nsecret = \"{S}!\"\n"),
                "line 3: secret is not valid base32",
            ),
            (
                format!("version = 1\nsecret = \"{S}\nperiod = 30\n"),
                "malformed TOML: line 2: not valid TOML (secret)",
            ),
        ] {
            let err = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains(&S[..16]), "the value in {err}");
        }
    }

    #[test]
    fn sealing_replaces_the_secret() {
        let secret = b"12345678901234567890";
        let key = OtpKey::new(secret, Algorithm::Sha1, 6, 30).unwrap();
        let host = seal::HostSecretKey::generate().unwrap();
        let mut file = SecretFile::new(secret, &key, &[ScratchHash::new("12345678", [1; 16])]);
        file.seal(&host.public(), "alice").unwrap();
        let text = file.to_toml().unwrap();
        assert!(!text.contains("\nsecret = "), "{}", text.as_str());
        assert!(text.contains("sealed_secret = \"v1:"));
        assert!(text.contains("scratch_codes = [\"pbkdf2"));
        assert!(matches!(parse(text.as_bytes()), Err(FormatError::Sealed)));
        let keys = [host];
        let unseal = |s: &str| seal::open(&keys, "alice", s);
        let e = parse_with(text.as_bytes(), Some(&unseal)).unwrap();
        assert_eq!(e.first_key().totp_code(1), key.totp_code(1));
        // Sealing again changes nothing.
        let before = file.keys[0].sealed_secret.clone();
        file.seal(&keys[0].public(), "alice").unwrap();
        assert_eq!(file.keys[0].sealed_secret, before);
    }

    #[test]
    fn round_trip() {
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha256, 8, 60).unwrap();
        let file = SecretFile::new(
            b"12345678901234567890",
            &key,
            &[ScratchHash::new("12345678", [1; 16])],
        );
        let e = parse(file.to_toml().unwrap().as_bytes()).unwrap();
        assert_eq!(e.first_key().algorithm(), Algorithm::Sha256);
        assert_eq!(e.first_key().digits(), 8);
        assert_eq!(e.first_key().period(), 60);
        assert!(e.scratch[0].matches("12345678"));
    }

    #[test]
    fn to_toml_fails_rather_than_writing_nothing() {
        // TOML integers are signed 64-bit: a period past i64::MAX cannot be
        // written so that it reads back. That is an error, not an empty or
        // unreadable file.
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
        let mut file = SecretFile::new(b"12345678901234567890", &key, &[]);
        file.keys[0].period = u64::MAX;
        assert_eq!(
            file.to_toml().map(|t| t.to_string()),
            Err(SerializeError(FormatError::Param(ParamError::Period(
                u64::MAX
            ))))
        );
        file.keys[0].period = 0;
        assert!(file.to_toml().is_err());
        file.keys[0].period = 30;
        file.keys[0].secret = None;
        assert_eq!(
            file.to_toml().map(|t| t.to_string()),
            Err(SerializeError(FormatError::NoSecret))
        );
        file.keys[0].secret = Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
        assert!(file.to_toml().unwrap().contains("period = 30"));
    }
}
