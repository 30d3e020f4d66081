//! The native secret-file format, TOML, as written on disk. One key (the
//! layout every file had before several devices; read as one key named
//! `default`):
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
//! or one or more named keys, one per device (scratch codes stay the
//! file's):
//!
//! ```toml
//! version = 1
//! scratch_codes = ["pbkdf2-sha256$10000$...$..."]
//!
//! [[keys]]
//! name = "phone"
//! secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
//! algorithm = "SHA1"
//! digits = 6
//! period = 30
//!
//! [[keys]]
//! name = "token"
//! sealed_secret = "v1:..."
//! ```
//!
//! A file with both a top-level key and `[[keys]]` is malformed. Names are
//! 1 to [`MAX_KEY_NAME`](crate::secret::enrollment::MAX_KEY_NAME) of `A-Z a-z 0-9 . _ -`, unique in the file; at
//! most [`MAX_FILE_KEYS`] keys, all with the same number of digits (the
//! prompt and `forward_pass` split the answer by it). A file of one key
//! named `default` is written in the first layout.
//!
//! Pure: bytes in, typed values out. Opening the file safely is
//! `crate::sys::open`'s job.
#![forbid(unsafe_code)]

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::core::decision::{Counter, FileLimits};
use crate::core::logtext;
use crate::core::otp::{
    self, decode_base32, encode_base32, Algorithm, OtpKey, DEFAULT_DIGITS, DEFAULT_PERIOD,
};
use crate::core::scratch::ScratchHash;
use crate::core::toml_doc::{
    push_int_line, push_str_line, push_strings_line, required, Doc, DocError, Table,
};
use crate::secret::enrollment::{
    valid_key_name, Enrollment, Format, FormatError, NamedKey, SerializeError, Unsealer,
    DEFAULT_KEY_NAME, FORMAT_VERSION, MAX_FILE_KEYS, MAX_SCRATCH_CODES,
};
use crate::secret::seal::{self, HostPublicKey, SealError};

/// One key of the file. `secret` is wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyEntry {
    pub name: String,
    pub secret: Option<String>,
    pub sealed_secret: Option<String>,
    pub algorithm: String,
    pub digits: u64,
    pub period: u64,
}

/// The file: its keys (at least one to be usable) and scratch codes.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretFile {
    pub version: u32,
    pub keys: Vec<KeyEntry>,
    pub scratch_codes: Vec<String>,
}

/// The file as written on disk, in either layout.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Raw {
    version: u32,
    secret: Option<String>,
    sealed_secret: Option<String>,
    algorithm: Option<String>,
    digits: Option<u64>,
    period: Option<u64>,
    scratch_codes: Vec<String>,
    keys: Option<Vec<KeyEntry>>,
}

/// The keys of the file's top level, and of each `[[keys]]` table.
const FILE_KEYS: &[&str] = &[
    "version",
    "secret",
    "sealed_secret",
    "algorithm",
    "digits",
    "period",
    "scratch_codes",
    "keys",
];
const ENTRY_KEYS: &[&str] = &[
    "name",
    "secret",
    "sealed_secret",
    "algorithm",
    "digits",
    "period",
];
const ANY: std::ops::RangeInclusive<u64> = 0..=u64::MAX;

/// A secret's text, moved out of its wiped-on-drop copy (the buffer
/// moves, nothing is copied; the struct it lands in wipes it on drop).
fn secret_of(t: Table<'_, '_>, key: &str) -> Result<Option<String>, DocError> {
    Ok(t.secret(key)?.map(|mut s| std::mem::take(&mut *s)))
}

impl Raw {
    fn read(t: Table<'_, '_>) -> Result<Raw, DocError> {
        let t = t.only(FILE_KEYS)?;
        let version = t.int("version", 0..=u64::from(u32::MAX))?;
        let keys = match t.tables("keys")? {
            Some(tables) => Some(
                tables
                    .into_iter()
                    .map(KeyEntry::read)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        Ok(Raw {
            version: u32::try_from(required(version, "version")?).unwrap_or(u32::MAX),
            secret: secret_of(t, "secret")?,
            sealed_secret: t.str("sealed_secret")?.map(str::to_owned),
            algorithm: t.str("algorithm")?.map(str::to_owned),
            digits: t.int("digits", ANY)?,
            period: t.int("period", ANY)?,
            scratch_codes: t.strings("scratch_codes")?.unwrap_or_default(),
            keys,
        })
    }
}

impl KeyEntry {
    fn read(t: Table<'_, '_>) -> Result<KeyEntry, DocError> {
        let t = t.only(ENTRY_KEYS)?;
        Ok(KeyEntry {
            name: required(t.str("name")?, "name")?.to_owned(),
            secret: secret_of(t, "secret")?,
            sealed_secret: t.str("sealed_secret")?.map(str::to_owned),
            algorithm: t
                .str("algorithm")?
                .map_or_else(default_algorithm, str::to_owned),
            digits: t.int("digits", ANY)?.unwrap_or_else(default_digits),
            period: t.int("period", ANY)?.unwrap_or_else(default_period),
        })
    }

    /// Appends the key's parameters (and its secret) as `key = value` lines.
    fn write_params(&self, out: &mut String) {
        if let Some(secret) = &self.secret {
            push_str_line(out, "secret", secret);
        }
        if let Some(sealed) = &self.sealed_secret {
            push_str_line(out, "sealed_secret", sealed);
        }
        push_str_line(out, "algorithm", &self.algorithm);
        push_int_line(out, "digits", self.digits);
        push_int_line(out, "period", self.period);
    }
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

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("sealed", &self.sealed_secret.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("version", &self.version)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl KeyEntry {
    /// A key with a plaintext secret.
    pub fn new(name: &str, secret: &[u8], key: &OtpKey) -> KeyEntry {
        KeyEntry {
            name: name.to_owned(),
            secret: Some(encode_base32(secret).to_string()),
            sealed_secret: None,
            algorithm: key.algorithm().as_str().to_owned(),
            digits: u64::from(key.digits()),
            period: key.period(),
        }
    }

    /// Seals a plaintext `secret` for `user` (see [`SecretFile::seal`]).
    pub fn seal(&mut self, key: &HostPublicKey, user: &str) -> Result<(), SealError> {
        let Some(b32) = self.secret.as_deref() else {
            return Ok(());
        };
        // A key built by `new` holds valid base32; one read from disk was
        // checked by whoever parsed it. Either way, refuse rather than seal junk.
        let secret = decode_base32(b32).ok_or(SealError::Malformed)?;
        self.sealed_secret = Some(seal::seal(key, user, &secret)?);
        self.secret.zeroize();
        Ok(())
    }

    /// Every field but the secret's value checked.
    fn check_params(&self) -> Result<(), FormatError> {
        if self.secret.is_none() == self.sealed_secret.is_none() {
            return Err(FormatError::NoSecret);
        }
        self.algorithm.parse::<Algorithm>()?;
        otp::check_digits(self.digits)?;
        otp::check_period(self.period)?;
        Ok(())
    }

    fn to_key(&self, unseal: Option<Unsealer<'_>>) -> Result<OtpKey, FormatError> {
        let secret = match (&self.secret, &self.sealed_secret, unseal) {
            (Some(s), None, _) => decode_base32(s).ok_or(FormatError::Base32)?,
            (None, Some(sealed), Some(unseal)) => unseal(sealed).map_err(FormatError::Unseal)?,
            (None, Some(_), None) => return Err(FormatError::Sealed),
            _ => return Err(FormatError::NoSecret),
        };
        let algorithm: Algorithm = self.algorithm.parse()?;
        Ok(OtpKey::new(&secret, algorithm, self.digits, self.period)?)
    }
}

impl SecretFile {
    /// The file for a new enrollment: one key, named `default`.
    pub fn new(secret: &[u8], key: &OtpKey, scratch: &[ScratchHash]) -> SecretFile {
        SecretFile {
            version: FORMAT_VERSION,
            keys: vec![KeyEntry::new(DEFAULT_KEY_NAME, secret, key)],
            scratch_codes: scratch.iter().map(ToString::to_string).collect(),
        }
    }

    /// Whether the file is written in the single-key layout.
    fn single(&self) -> bool {
        matches!(&self.keys[..], [k] if k.name == DEFAULT_KEY_NAME)
    }

    /// The key named `name`, if any.
    pub fn key_index(&self, name: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.name == name)
    }

    /// Seals every plaintext secret for `user` to the host key: those keys
    /// then hold `sealed_secret` instead, which only the host's private
    /// key opens, and only for `user`. Everything else is kept; keys
    /// already sealed are left as they are.
    pub fn seal(&mut self, key: &HostPublicKey, user: &str) -> Result<(), SealError> {
        self.keys.iter_mut().try_for_each(|k| k.seal(key, user))
    }

    /// The file's text. An error, never an empty string: a file whose
    /// parameters the module would refuse (the `toml` crate would write a
    /// period of `u64::MAX` without complaint) or whose text would not read
    /// back is not written out, so a good file is never replaced by an
    /// empty or unusable one.
    pub fn to_toml(&self) -> Result<Zeroizing<String>, SerializeError> {
        self.check_params().map_err(SerializeError)?;
        let text = self.write();
        SecretFile::parse(text.as_bytes()).map_err(SerializeError)?;
        if text.trim().is_empty() {
            return Err(SerializeError(FormatError::NoSecret));
        }
        Ok(text)
    }

    /// The text, in the layout the `toml` crate's serializer gave it: the
    /// single-key layout for one key named `default`, else the scratch
    /// codes and then one `[[keys]]` table per key. Written into a buffer
    /// sized for the worst case (every character escaped), so it never
    /// grows and leaves no copy of a secret behind.
    fn write(&self) -> Zeroizing<String> {
        let strings = self.scratch_codes.iter().map(String::len).sum::<usize>()
            + self
                .keys
                .iter()
                .map(|k| {
                    let secret = k.secret.as_ref().map_or(0, String::len);
                    let sealed = k.sealed_secret.as_ref().map_or(0, String::len);
                    k.name.len() + secret + sealed + k.algorithm.len()
                })
                .sum::<usize>();
        let items = self.scratch_codes.len() + 8 * self.keys.len();
        let mut out = Zeroizing::new(String::with_capacity(128 + 6 * strings + 80 * items));
        push_int_line(&mut out, "version", u64::from(self.version));
        match &self.keys[..] {
            [k] if self.single() => {
                k.write_params(&mut out);
                push_strings_line(&mut out, "scratch_codes", &self.scratch_codes);
            }
            keys => {
                push_strings_line(&mut out, "scratch_codes", &self.scratch_codes);
                for k in keys {
                    out.push_str("\n[[keys]]\n");
                    push_str_line(&mut out, "name", &k.name);
                    k.write_params(&mut out);
                }
            }
        }
        out
    }

    /// An error about the key at `i`: as it is for a single-key file (the
    /// caller adds the line), else naming the key.
    fn in_key(&self, i: usize, error: FormatError) -> FormatError {
        // Sealed: nothing to open any key with, not a fault of this one.
        if self.single() || error == FormatError::Sealed {
            return error;
        }
        FormatError::InKey {
            name: self.keys[i].name.clone(),
            error: Box::new(error),
        }
    }

    /// Every field but the secrets' values checked as
    /// [`to_enrollment`](Self::to_enrollment) checks them.
    fn check_params(&self) -> Result<(), FormatError> {
        self.check_names()?;
        for (i, k) in self.keys.iter().enumerate() {
            k.check_params().map_err(|e| self.in_key(i, e))?;
        }
        if self.keys.iter().any(|k| k.digits != self.keys[0].digits) {
            return Err(FormatError::MixedDigits);
        }
        if self.scratch_codes.len() > MAX_SCRATCH_CODES {
            return Err(FormatError::TooManyScratchCodes(self.scratch_codes.len()));
        }
        Ok(())
    }

    /// The version, and the keys' number and names (checked before any
    /// error names a key).
    fn check_names(&self) -> Result<(), FormatError> {
        if self.version != FORMAT_VERSION {
            return Err(FormatError::Version(self.version));
        }
        if self.keys.is_empty() {
            return Err(FormatError::NoSecret);
        }
        if self.keys.len() > MAX_FILE_KEYS {
            return Err(FormatError::TooManyKeys(self.keys.len()));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if !valid_key_name(&k.name) {
                return Err(FormatError::KeyName(i + 1));
            }
            if self.keys[..i].iter().any(|o| o.name == k.name) {
                return Err(FormatError::DuplicateKeyName(k.name.clone()));
            }
        }
        Ok(())
    }

    /// The file's structure: TOML of known keys, in one layout or the other.
    /// The values are checked by [`to_enrollment`](Self::to_enrollment).
    pub fn parse(bytes: &[u8]) -> Result<SecretFile, FormatError> {
        let text = std::str::from_utf8(bytes).map_err(|_| FormatError::NotUtf8)?;
        let doc =
            Doc::parse(text).map_err(|e| FormatError::Toml(logtext::toml_problem(text, &e)))?;
        let mut raw = Raw::read(doc.table())
            .map_err(|e| FormatError::Toml(logtext::toml_problem(text, &e)))?;
        let keys = match raw.keys.take() {
            Some(keys) => {
                let top = raw.secret.is_some()
                    || raw.sealed_secret.is_some()
                    || raw.algorithm.is_some()
                    || raw.digits.is_some()
                    || raw.period.is_some();
                if top {
                    return Err(FormatError::MixedLayout);
                }
                keys
            }
            None => vec![KeyEntry {
                name: DEFAULT_KEY_NAME.to_owned(),
                secret: raw.secret.take(),
                sealed_secret: raw.sealed_secret.take(),
                algorithm: raw.algorithm.take().unwrap_or_else(default_algorithm),
                digits: raw.digits.unwrap_or_else(default_digits),
                period: raw.period.unwrap_or_else(default_period),
            }],
        };
        Ok(SecretFile {
            version: raw.version,
            keys,
            scratch_codes: std::mem::take(&mut raw.scratch_codes),
        })
    }

    /// Checks every field and builds the keys. A sealed secret fails with
    /// [`FormatError::Sealed`]; see [`to_enrollment_with`](Self::to_enrollment_with).
    pub fn to_enrollment(&self) -> Result<Enrollment, FormatError> {
        self.to_enrollment_with(None)
    }

    /// Like [`to_enrollment`](Self::to_enrollment), opening each
    /// `sealed_secret` with `unseal`.
    pub fn to_enrollment_with(
        &self,
        unseal: Option<Unsealer<'_>>,
    ) -> Result<Enrollment, FormatError> {
        self.check_names()?;
        let mut keys = Vec::with_capacity(self.keys.len());
        for (i, k) in self.keys.iter().enumerate() {
            let key = k.to_key(unseal).map_err(|e| self.in_key(i, e))?;
            keys.push(NamedKey {
                name: k.name.clone(),
                key,
                sealed: k.sealed_secret.is_some(),
            });
        }
        self.check_params()?;
        let scratch = self
            .scratch_codes
            .iter()
            .map(|s| ScratchHash::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(FormatError::Scratch)?;
        Ok(Enrollment {
            keys,
            scratch,
            counter: Counter::Time,
            limits: FileLimits::default(),
            format: Format::Native,
        })
    }
}

#[cfg(test)]
mod tests;
