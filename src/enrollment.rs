//! The secret file: its native TOML format, parsed into typed values once.
//!
//! ```toml
//! version = 1
//! secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
//! algorithm = "SHA1"
//! digits = 6
//! period = 30
//! scratch_codes = ["pbkdf2-sha256$10000$...$..."]
//! ```
//!
//! Pure: bytes in, an [`Enrollment`] out. Opening the file safely is
//! `files.rs`'s job.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::google::{self, GoogleError, GoogleFile};
use crate::logtext;
use crate::otp::{self, Algorithm, OtpKey, ParamError};
use crate::scratch::{BadScratchHash, ScratchHash};
use crate::seal::{self, HostPublicKey, SealError};
use crate::verify::RateLimit;

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_DIGITS: u8 = 6;
pub const DEFAULT_PERIOD: u64 = 30;
/// Most scratch codes a file may hold.
pub const MAX_SCRATCH_CODES: usize = 100;

/// A parsed secret file, in either format.
#[derive(Debug)]
pub struct Enrollment {
    pub key: OtpKey,
    pub scratch: Vec<ScratchHash>,
    pub counter: Counter,
    /// Limits the file itself sets (Google Authenticator files only).
    pub limits: FileLimits,
    pub format: Format,
}

/// Time-based (TOTP) or counter-based (HOTP) codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Time,
    /// HOTP, the file's counter being the first one not yet used.
    Event {
        first: u64,
    },
}

/// Settings a secret file may carry. They only ever make the module
/// stricter than its own settings (see `verify`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileLimits {
    /// Steps (back, ahead) accepted around now; for HOTP, back + ahead + 1
    /// codes are looked ahead.
    pub window: Option<(u64, u64)>,
    pub rate_limit: Option<RateLimit>,
    /// The highest TOTP step already used according to the file.
    pub spent_step: Option<u64>,
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
    /// The sealed secret did not open (the reason).
    Unseal(String),
    Google(GoogleError),
    /// An error about one key of the file, and the line that sets it.
    AtLine {
        line: usize,
        error: Box<FormatError>,
    },
}

impl FormatError {
    /// The key of the native format this error is about, if one.
    fn key(&self) -> Option<&'static str> {
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
    fn at_line_of(self, text: &str) -> FormatError {
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

/// The file as written on disk. `secret` is wiped on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct SecretFile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<String>,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    #[serde(default = "default_digits")]
    pub digits: u64,
    #[serde(default = "default_period")]
    pub period: u64,
    #[serde(default)]
    pub scratch_codes: Vec<String>,
}

fn default_algorithm() -> String {
    Algorithm::Sha1.as_str().to_owned()
}
fn default_digits() -> u64 {
    u64::from(DEFAULT_DIGITS)
}
fn default_period() -> u64 {
    DEFAULT_PERIOD
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("version", &self.version)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl SecretFile {
    /// The file for a new enrollment.
    pub fn new(secret: &[u8], key: &OtpKey, scratch: &[ScratchHash]) -> SecretFile {
        SecretFile {
            version: FORMAT_VERSION,
            secret: Some(encode_base32(secret).to_string()),
            sealed_secret: None,
            algorithm: key.algorithm().as_str().to_owned(),
            digits: u64::from(key.digits()),
            period: key.period(),
            scratch_codes: scratch.iter().map(ToString::to_string).collect(),
        }
    }

    /// Seals the plaintext `secret` for `user` to the host key: the file
    /// then holds `sealed_secret` instead, which only the host's private
    /// key opens, and only for `user`. Everything else is kept. A file
    /// that has no plaintext secret (already sealed) is left as it is.
    pub fn seal(&mut self, key: &HostPublicKey, user: &str) -> Result<(), SealError> {
        let Some(b32) = self.secret.as_deref() else {
            return Ok(());
        };
        // A file built by `new` holds valid base32; one read from disk was
        // checked by whoever parsed it. Either way, refuse rather than seal junk.
        let secret = decode_base32(b32).ok_or(SealError::Malformed)?;
        self.sealed_secret = Some(seal::seal(key, user, &secret)?);
        self.secret.zeroize();
        Ok(())
    }

    /// The file's text. An error, never an empty string: a file whose
    /// parameters the module would refuse (the `toml` crate would write a
    /// period of `u64::MAX` without complaint) or whose text would not read
    /// back is not written out, so a good file is never replaced by an
    /// empty or unusable one.
    pub fn to_toml(&self) -> Result<Zeroizing<String>, SerializeError> {
        self.check_params().map_err(SerializeError)?;
        let text = Zeroizing::new(
            toml::to_string(self).map_err(|_| SerializeError(FormatError::NoSecret))?,
        );
        SecretFile::parse(text.as_bytes()).map_err(SerializeError)?;
        if text.trim().is_empty() {
            return Err(SerializeError(FormatError::NoSecret));
        }
        Ok(text)
    }

    /// Every field but the secret checked as [`to_enrollment`](Self::to_enrollment) checks it.
    fn check_params(&self) -> Result<(), FormatError> {
        if self.version != FORMAT_VERSION {
            return Err(FormatError::Version(self.version));
        }
        if self.secret.is_none() == self.sealed_secret.is_none() {
            return Err(FormatError::NoSecret);
        }
        self.algorithm.parse::<Algorithm>()?;
        otp::check_digits(self.digits)?;
        otp::check_period(self.period)?;
        if self.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(FormatError::TooManyScratchCodes(self.scratch_codes.len()));
        }
        Ok(())
    }

    pub fn parse(bytes: &[u8]) -> Result<SecretFile, FormatError> {
        let text = std::str::from_utf8(bytes).map_err(|_| FormatError::NotUtf8)?;
        toml::from_str(text).map_err(|e| FormatError::Toml(logtext::toml_problem(text, &e)))
    }

    /// Checks every field and builds the key. A sealed secret fails with
    /// [`FormatError::Sealed`]; see [`to_enrollment_with`](Self::to_enrollment_with).
    pub fn to_enrollment(&self) -> Result<Enrollment, FormatError> {
        self.to_enrollment_with(None)
    }

    /// Like [`to_enrollment`](Self::to_enrollment), opening a
    /// `sealed_secret` with `unseal`.
    pub fn to_enrollment_with(
        &self,
        unseal: Option<Unsealer<'_>>,
    ) -> Result<Enrollment, FormatError> {
        if self.version != FORMAT_VERSION {
            return Err(FormatError::Version(self.version));
        }
        let secret = match (&self.secret, &self.sealed_secret, unseal) {
            (Some(s), None, _) => decode_base32(s).ok_or(FormatError::Base32)?,
            (None, Some(sealed), Some(unseal)) => unseal(sealed).map_err(FormatError::Unseal)?,
            (None, Some(_), None) => return Err(FormatError::Sealed),
            _ => return Err(FormatError::NoSecret),
        };
        let algorithm: Algorithm = self.algorithm.parse()?;
        let key = OtpKey::new(&secret, algorithm, self.digits, self.period)?;
        if self.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(FormatError::TooManyScratchCodes(self.scratch_codes.len()));
        }
        let scratch = self
            .scratch_codes
            .iter()
            .map(|s| ScratchHash::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FormatError::Scratch)?;
        Ok(Enrollment {
            key,
            scratch,
            counter: Counter::Time,
            limits: FileLimits::default(),
            format: Format::Native,
        })
    }
}

impl Enrollment {
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
            key,
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

/// Opens a `sealed_secret` value (the module's opens it with the host key
/// for the user being authenticated); `Err` holds the reason.
pub type Unsealer<'a> = &'a dyn Fn(&str) -> Result<Zeroizing<Vec<u8>>, String>;

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

/// Decodes base32, tolerating lower case, spaces, dashes and `=` padding.
/// Returns `None` for anything else, or for an empty secret.
pub fn decode_base32(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    let clean: Zeroizing<String> = Zeroizing::new(
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    let trimmed = clean.trim_end_matches('=');
    if trimmed.is_empty()
        || !trimmed
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
    {
        return None;
    }
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, trimmed).map(Zeroizing::new)
}

/// Base32 without padding, as authenticator apps expect.
pub fn encode_base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base32::encode(
        base32::Alphabet::Rfc4648 { padding: false },
        secret,
    ))
}

/// Checks the parameters the CLI takes, with the same rules as the file.
pub fn check_params(digits: u64, period: u64) -> Result<(), ParamError> {
    otp::check_digits(digits)?;
    otp::check_period(period)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_file() {
        let e = parse(b"version = 1\nsecret = \"jbsw y3dp ehpk 3pxp====\"\n").unwrap();
        assert_eq!(e.key.digits(), 6);
        assert_eq!(e.key.period(), 30);
        assert_eq!(e.key.algorithm(), Algorithm::Sha1);
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
        let unseal = |s: &str| seal::open(&keys, "alice", s).map_err(|e| e.to_string());
        let e = parse_with(text.as_bytes(), Some(&unseal)).unwrap();
        assert_eq!(e.key.totp_code(1), key.totp_code(1));
        // Sealing again changes nothing.
        let before = file.sealed_secret.clone();
        file.seal(&keys[0].public(), "alice").unwrap();
        assert_eq!(file.sealed_secret, before);
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
        assert_eq!(e.key.algorithm(), Algorithm::Sha256);
        assert_eq!(e.key.digits(), 8);
        assert_eq!(e.key.period(), 60);
        assert!(e.scratch[0].matches("12345678"));
    }

    #[test]
    fn to_toml_fails_rather_than_writing_nothing() {
        // TOML integers are signed 64-bit: a period past i64::MAX cannot be
        // written so that it reads back. That is an error, not an empty or
        // unreadable file.
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
        let mut file = SecretFile::new(b"12345678901234567890", &key, &[]);
        file.period = u64::MAX;
        assert_eq!(
            file.to_toml().map(|t| t.to_string()),
            Err(SerializeError(FormatError::Param(ParamError::Period(
                u64::MAX
            ))))
        );
        file.period = 0;
        assert!(file.to_toml().is_err());
        file.period = 30;
        file.secret = None;
        assert_eq!(
            file.to_toml().map(|t| t.to_string()),
            Err(SerializeError(FormatError::NoSecret))
        );
        file.secret = Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
        assert!(file.to_toml().unwrap().contains("period = 30"));
    }
}
