//! Option values clap checks, with the library's own rules where it has
//! them (digits, period, algorithm, rate limit), so a bad value is refused
//! as a usage error before anything else runs.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

use pam_totp::config;
use pam_totp::config::ConfigError;
use pam_totp::core::otp;
use pam_totp::core::otp::Algorithm;
use pam_totp::core::otp::ParamError;
use pam_totp::core::policy::RateLimit;
use pam_totp::secret::enrollment::MAX_SCRATCH_CODES;
use pam_totp::secret::enrollment::{valid_key_name, MAX_KEY_NAME};

/// Why clap refuses a value; clap shows it after "invalid value ...".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    NotANumber(String),
    Param(ParamError),
    RateLimit(ConfigError),
    TooManyScratchCodes,
    NotAbsolute,
    EmptyLabel,
    LabelColon,
    LabelLeadingSpace,
    LabelControl,
    LabelTooLong,
    KeyName,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::NotANumber(s) => write!(f, "{s:?} is not a number"),
            BadValue::Param(e) => write!(f, "{e}"),
            BadValue::RateLimit(e) => write!(f, "{e}"),
            BadValue::TooManyScratchCodes => {
                write!(f, "at most {MAX_SCRATCH_CODES} scratch codes")
            }
            BadValue::NotAbsolute => f.write_str("not an absolute path"),
            BadValue::EmptyLabel => f.write_str("must not be empty"),
            BadValue::LabelColon => {
                f.write_str("must not contain ':' (it separates issuer and account)")
            }
            BadValue::LabelLeadingSpace => {
                f.write_str("must not start with a space (apps drop it)")
            }
            BadValue::LabelControl => f.write_str("must not contain control characters"),
            BadValue::LabelTooLong => f.write_str("longer than 200 bytes"),
            BadValue::KeyName => {
                write!(f, "a key name is 1 to {MAX_KEY_NAME} of A-Z a-z 0-9 . _ -")
            }
        }
    }
}

impl std::error::Error for BadValue {}

type Result<T> = std::result::Result<T, BadValue>;

pub fn algorithm(s: &str) -> Result<Algorithm> {
    s.parse().map_err(BadValue::Param)
}

fn number(s: &str) -> Result<u64> {
    s.parse().map_err(|_| BadValue::NotANumber(s.to_owned()))
}

pub fn digits(s: &str) -> Result<u8> {
    otp::check_digits(number(s)?).map_err(BadValue::Param)
}

pub fn period(s: &str) -> Result<u64> {
    otp::check_period(number(s)?).map_err(BadValue::Param)
}

pub fn scratch_count(s: &str) -> Result<usize> {
    let n = number(s)?;
    match usize::try_from(n) {
        Ok(n) if n <= MAX_SCRATCH_CODES => Ok(n),
        _ => Err(BadValue::TooManyScratchCodes),
    }
}

pub fn rate_limit(s: &str) -> Result<RateLimit> {
    config::parse_rate_limit(s).map_err(BadValue::RateLimit)
}

pub fn absolute_path(s: &str) -> Result<PathBuf> {
    let p = PathBuf::from(s);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(BadValue::NotAbsolute)
    }
}

/// An issuer or account name: Google's Key Uri Format puts them on either
/// side of a colon, so neither may hold one, and apps drop spaces after
/// it, so neither may start with one (see `otpauth::check_label`).
pub fn label_part(s: &str) -> Result<String> {
    if s.trim().is_empty() {
        return Err(BadValue::EmptyLabel);
    }
    if s.contains(':') {
        return Err(BadValue::LabelColon);
    }
    if s.starts_with(' ') {
        return Err(BadValue::LabelLeadingSpace);
    }
    if s.chars().any(char::is_control) {
        return Err(BadValue::LabelControl);
    }
    if s.len() > 200 {
        return Err(BadValue::LabelTooLong);
    }
    Ok(s.to_owned())
}

/// The name of a key (a device) in a secret file.
pub fn key_name(s: &str) -> Result<String> {
    match valid_key_name(s) {
        true => Ok(s.to_owned()),
        false => Err(BadValue::KeyName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_with_the_library_rules() {
        assert_eq!(digits("8"), Ok(8));
        assert!(digits("9")
            .unwrap_err()
            .to_string()
            .contains("digits 9 is out of range"));
        assert!(period("0")
            .unwrap_err()
            .to_string()
            .contains("period 0 is out of range"));
        assert!(algorithm("MD5")
            .unwrap_err()
            .to_string()
            .contains("unknown algorithm"));
        assert_eq!(algorithm("sha256"), Ok(Algorithm::Sha256));
        assert!(scratch_count("101").is_err());
        assert!(label_part("a:b").is_err());
        assert!(label_part(" ").is_err());
        assert!(label_part(" alice").is_err());
        assert_eq!(label_part("ACME Corp"), Ok("ACME Corp".into()));
        assert!(rate_limit("3").is_err());
    }
}
