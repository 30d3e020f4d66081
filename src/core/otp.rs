//! One-time codes: HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! Pure computation: no clock, no files. Time and counters are passed in.
//! Code generation is delegated to `totp-rs`; this module adds the parameter
//! checks the secret-file format promises and a constant-time comparison of
//! a typed code against a computed one.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Smallest secret accepted: 80 bits, the length older enrollments use.
pub const MIN_SECRET_BYTES: usize = 10;
/// Largest secret accepted: one SHA-512 block.
pub const MAX_SECRET_BYTES: usize = 128;
/// Longest period accepted, one day; longer makes no sense for a login code.
pub const MAX_PERIOD: u64 = 86_400;
/// Digits and step size of a new enrollment (and what apps assume).
pub const DEFAULT_DIGITS: u8 = 6;
pub const DEFAULT_PERIOD: u64 = 30;

/// The HMAC hash of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ParamError;

    /// Accepts `SHA1`, `SHA256`, `SHA512` in any case, with or without a dash.
    fn from_str(s: &str) -> Result<Self, ParamError> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(ParamError::Algorithm),
        }
    }
}

/// A parameter outside what the format allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// An algorithm name that is none of the three; the text is not kept,
    /// as it may be a secret typed into the wrong key.
    Algorithm,
    Digits(u64),
    Period(u64),
    SecretLength(usize),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Algorithm => f.write_str("unknown algorithm (SHA1, SHA256 or SHA512)"),
            ParamError::Digits(d) => write!(f, "digits {d} is out of range (6 to 8)"),
            ParamError::Period(p) => write!(f, "period {p} is out of range (1 to {MAX_PERIOD})"),
            ParamError::SecretLength(n) => write!(
                f,
                "secret is {n} bytes; it must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}"
            ),
        }
    }
}

impl std::error::Error for ParamError {}

/// Number of digits of a code, 6 to 8.
pub fn check_digits(digits: u64) -> Result<u8, ParamError> {
    match digits {
        6..=8 => Ok(digits as u8),
        _ => Err(ParamError::Digits(digits)),
    }
}

/// Length of a TOTP step in seconds, 1 to one day.
pub fn check_period(period: u64) -> Result<u64, ParamError> {
    match period {
        1..=MAX_PERIOD => Ok(period),
        _ => Err(ParamError::Period(period)),
    }
}

/// A user's key with its parameters. The secret is wiped when this is dropped
/// (totp-rs's `zeroize` feature), and `Debug` never shows it.
pub struct OtpKey {
    algorithm: Algorithm,
    digits: u8,
    period: u64,
    /// Generator for the TOTP steps.
    totp: totp_rs::Totp,
    /// Generator with a period of one second, so that `generate(counter)` is HOTP.
    hotp: totp_rs::Totp,
}

impl fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpKey")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl OtpKey {
    pub fn new(
        secret: &[u8],
        algorithm: Algorithm,
        digits: u64,
        period: u64,
    ) -> Result<OtpKey, ParamError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
            return Err(ParamError::SecretLength(secret.len()));
        }
        let digits = check_digits(digits)?;
        let period = check_period(period)?;
        // build_noncompliant: totp-rs's build() refuses the 80-bit secrets that
        // older enrollments have; the lengths and ranges were checked above.
        let make = |step: u64| {
            totp_rs::Builder::new()
                .with_algorithm(algorithm.to_totp_rs())
                .with_digits(digits)
                .with_step_duration(step)
                .with_skew(0)
                .with_secret(secret)
                .build_noncompliant()
        };
        Ok(OtpKey {
            algorithm,
            digits,
            period,
            totp: make(period),
            hotp: make(1),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn digits(&self) -> u8 {
        self.digits
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    /// A short identifier of this key and its parameters (16 hex digits of
    /// an HMAC keyed with the secret), so the state can tell when a user
    /// has been given a new key. It reveals nothing about the secret.
    pub fn fingerprint(&self) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.totp.secret().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"pam-totp key fingerprint\0");
        mac.update(self.algorithm.as_str().as_bytes());
        mac.update(&[self.digits]);
        mac.update(&self.period.to_be_bytes());
        crate::core::hex::hex_encode(&mac.finalize().into_bytes()[..8])
    }

    /// The TOTP step a Unix time falls in.
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.period
    }

    /// The code of a TOTP step, zero-padded to `digits`. A step that starts
    /// past the end of the time range (`step * period` overflows) has no
    /// code: the empty string, which equals no typed code. (Saturating the
    /// time would give every such step the code of the last one, and a
    /// code accepted for one step would be accepted again for the next.)
    pub fn totp_code(&self, step: u64) -> Zeroizing<String> {
        Zeroizing::new(match step.checked_mul(self.period) {
            Some(time) => self.totp.generate(time).to_string(),
            None => String::new(),
        })
    }

    /// The HOTP code of a counter value.
    pub fn hotp_code(&self, counter: u64) -> Zeroizing<String> {
        Zeroizing::new(self.hotp.generate(counter).to_string())
    }

    /// Every step from `first` to `last` whose code equals `typed`, the
    /// highest one. Each step's code is computed and compared in constant
    /// time, so a wrong code costs exactly what a right one does.
    pub fn match_totp(&self, typed: &str, first: u64, last: u64) -> Option<u64> {
        let mut found = None;
        for step in first..=last {
            if ct_eq_str(&self.totp_code(step), typed) {
                found = Some(step);
            }
        }
        found
    }

    /// Like [`match_totp`](Self::match_totp), for HOTP counters.
    pub fn match_hotp(&self, typed: &str, first: u64, last: u64) -> Option<u64> {
        let mut found = None;
        for counter in first..=last {
            if ct_eq_str(&self.hotp_code(counter), typed) {
                found = Some(counter);
            }
        }
        found
    }
}

/// Constant-time equality of two strings of the same length; strings of
/// different lengths are unequal (a length is not a secret here).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
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
    check_digits(digits)?;
    check_period(period)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc4226_first_values() {
        let key = OtpKey::new(SEED20, Algorithm::Sha1, 6, 30).unwrap();
        assert_eq!(key.hotp_code(0).as_str(), "755224");
        assert_eq!(key.hotp_code(9).as_str(), "520489");
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            OtpKey::new(SEED20, Algorithm::Sha1, 9, 30).unwrap_err(),
            ParamError::Digits(9)
        );
        assert_eq!(
            OtpKey::new(SEED20, Algorithm::Sha1, 6, 0).unwrap_err(),
            ParamError::Period(0)
        );
        assert_eq!(
            OtpKey::new(b"short", Algorithm::Sha1, 6, 30).unwrap_err(),
            ParamError::SecretLength(5)
        );
        assert!("md5".parse::<Algorithm>().is_err());
        assert_eq!("sha-256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
    }

    #[test]
    fn legacy_80_bit_secret_works() {
        let key = OtpKey::new(&SEED20[..10], Algorithm::Sha1, 6, 30).unwrap();
        assert_eq!(key.totp_code(1).len(), 6);
    }

    #[test]
    fn fingerprints_differ_by_secret_and_parameters() {
        let a = OtpKey::new(SEED20, Algorithm::Sha1, 6, 30).unwrap();
        assert_eq!(
            a.fingerprint(),
            OtpKey::new(SEED20, Algorithm::Sha1, 6, 30)
                .unwrap()
                .fingerprint()
        );
        for other in [
            OtpKey::new(&SEED20[..19], Algorithm::Sha1, 6, 30).unwrap(),
            OtpKey::new(SEED20, Algorithm::Sha256, 6, 30).unwrap(),
            OtpKey::new(SEED20, Algorithm::Sha1, 8, 30).unwrap(),
            OtpKey::new(SEED20, Algorithm::Sha1, 6, 60).unwrap(),
        ] {
            assert_ne!(a.fingerprint(), other.fingerprint());
        }
    }

    #[test]
    fn steps_past_the_end_of_time_have_no_code() {
        let key = OtpKey::new(SEED20, Algorithm::Sha1, 6, 30).unwrap();
        let last = u64::MAX / 30;
        let code = key.totp_code(last);
        assert_eq!(code.len(), 6);
        // With a saturating multiplication these steps all had the code of
        // time u64::MAX, so the last step's code matched the ones after it.
        assert_eq!(key.totp_code(last + 1).as_str(), "");
        assert_eq!(key.match_totp(&code, last - 1, last + 3), Some(last));
        assert_eq!(key.match_totp(&code, last + 1, last + 3), None);
    }

    #[test]
    fn match_returns_highest_matching_step() {
        let key = OtpKey::new(SEED20, Algorithm::Sha1, 6, 30).unwrap();
        let code = key.totp_code(100);
        assert_eq!(key.match_totp(&code, 99, 101), Some(100));
        assert_eq!(key.match_totp(&code, 101, 103), None);
        assert_eq!(key.match_totp("12345", 99, 101), None);
    }
}
