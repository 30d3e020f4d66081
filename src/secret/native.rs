//! The native secret-file format, TOML, as written on disk:
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
//! Pure: bytes in, typed values out. Opening the file safely is
//! `crate::sys::open`'s job.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::core::decision::{Counter, FileLimits};
use crate::core::logtext;
use crate::core::otp::{
    self, decode_base32, encode_base32, Algorithm, OtpKey, DEFAULT_DIGITS, DEFAULT_PERIOD,
};
use crate::core::scratch::ScratchHash;
use crate::secret::enrollment::{
    Enrollment, Format, FormatError, SerializeError, Unsealer, FORMAT_VERSION, MAX_SCRATCH_CODES,
};
use crate::secret::seal::{self, HostPublicKey, SealError};

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
