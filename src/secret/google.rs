//! Google Authenticator's `~/.google_authenticator` file, read as it is.
//!
//! ```text
//! JBSWY3DPEHPK3PXP          the base32 secret (80 bits in old files)
//! " RATE_LIMIT 3 30 ...     at most 3 logins in 30 s (then timestamps)
//! " WINDOW_SIZE 17          codes accepted around now (or ahead, for HOTP)
//! " DISALLOW_REUSE 5873 ... replay protection (then the steps used)
//! " TOTP_AUTH               time-based; or " HOTP_COUNTER 1 for counters
//! " STEP_SIZE 30            period in seconds
//! 12345678                  scratch codes, eight digits, one per line
//! ```
//!
//! Pure parsing. This module never produces the format: pam-totp never
//! writes a Google Authenticator file, so switching back stays possible.
#![forbid(unsafe_code)]

use std::fmt;

use zeroize::Zeroizing;

use crate::core::code::looks_like_scratch_code;
use crate::core::otp::{decode_base32, MAX_PERIOD};

/// Most lines a file may have (Google's tool writes at most ~20).
const MAX_LINES: usize = 200;
const MAX_WINDOW_SIZE: u64 = 100;

/// A parsed Google Authenticator file.
pub struct GoogleFile {
    pub secret: Zeroizing<Vec<u8>>,
    /// Seconds per step (`STEP_SIZE`, default 30).
    pub step_size: u64,
    /// `HOTP_COUNTER`: counter-based codes, starting at this counter.
    pub hotp_counter: Option<u64>,
    /// `WINDOW_SIZE`: how many codes are valid at once.
    pub window_size: Option<u64>,
    /// `RATE_LIMIT n m`: at most n logins every m seconds.
    pub rate_limit: Option<(u32, u64)>,
    /// Steps listed after `DISALLOW_REUSE`: already spent.
    pub used_steps: Vec<u64>,
    /// The scratch codes, in plain text as the file has them.
    pub scratch_codes: Vec<Zeroizing<String>>,
}

impl fmt::Debug for GoogleFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleFile")
            .field("step_size", &self.step_size)
            .field("hotp_counter", &self.hotp_counter)
            .field("window_size", &self.window_size)
            .field("rate_limit", &self.rate_limit)
            .field("scratch_codes", &self.scratch_codes.len())
            .finish_non_exhaustive()
    }
}

/// Why a Google Authenticator file was refused. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleError {
    NotText,
    TooManyLines,
    Base32,
    SecretLength(usize),
    /// A line that is neither an option nor a scratch code (its number).
    BadLine(usize),
    BadOption {
        line: usize,
        why: String,
    },
    BothModes,
}

impl fmt::Display for GoogleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoogleError::NotText => f.write_str("Google Authenticator file is not text"),
            GoogleError::TooManyLines => f.write_str("Google Authenticator file is too long"),
            GoogleError::Base32 => f.write_str("Google Authenticator secret is not valid base32"),
            GoogleError::SecretLength(n) => write!(
                f,
                "Google Authenticator secret is {n} bytes (10 to 128 accepted)"
            ),
            GoogleError::BadLine(n) => write!(
                f,
                "Google Authenticator file line {n} is neither an option nor a scratch code"
            ),
            GoogleError::BadOption { line, why } => {
                write!(f, "Google Authenticator file line {line}: {why}")
            }
            GoogleError::BothModes => {
                f.write_str("Google Authenticator file has both TOTP_AUTH and HOTP_COUNTER")
            }
        }
    }
}

impl std::error::Error for GoogleError {}

/// Whether a secret file is in Google Authenticator's format: its first
/// line is a bare base32 secret. (A native file starts with TOML.)
pub fn looks_like_google(bytes: &[u8]) -> bool {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    first.len() >= 16
        && first
            .iter()
            .all(|b| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'2'..=b'7' | b'='))
}

pub fn parse(bytes: &[u8]) -> Result<GoogleFile, GoogleError> {
    let text = std::str::from_utf8(bytes).map_err(|_| GoogleError::NotText)?;
    if text.contains('\0') {
        return Err(GoogleError::NotText);
    }
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let secret = decode_base32(lines.next().unwrap_or_default()).ok_or(GoogleError::Base32)?;
    if !(crate::core::otp::MIN_SECRET_BYTES..=crate::core::otp::MAX_SECRET_BYTES)
        .contains(&secret.len())
    {
        return Err(GoogleError::SecretLength(secret.len()));
    }
    let mut file = GoogleFile {
        secret,
        step_size: 30,
        hotp_counter: None,
        window_size: None,
        rate_limit: None,
        used_steps: Vec::new(),
        scratch_codes: Vec::new(),
    };
    let mut totp_auth = false;
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if number > MAX_LINES {
            return Err(GoogleError::TooManyLines);
        }
        if let Some(option) = line.strip_prefix("\" ") {
            let bad = |why: &str| GoogleError::BadOption {
                line: number,
                why: why.to_owned(),
            };
            let mut words = option.split_whitespace();
            let name = words.next().unwrap_or_default();
            if bookkeeping_option(name) {
                continue;
            }
            let values: Vec<u64> = words
                .map(|w| w.parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("option values must be numbers"))?;
            match (name, values.as_slice()) {
                ("TOTP_AUTH", []) => totp_auth = true,
                ("HOTP_COUNTER", [c]) => file.hotp_counter = Some(*c),
                ("STEP_SIZE", [s]) if (1..=MAX_PERIOD).contains(s) => file.step_size = *s,
                ("WINDOW_SIZE", [w]) if (1..=MAX_WINDOW_SIZE).contains(w) => {
                    file.window_size = Some(*w)
                }
                ("RATE_LIMIT", [n, m, ..]) if (1..=100).contains(n) && (1..=86_400).contains(m) => {
                    file.rate_limit = Some((*n as u32, *m))
                }
                ("DISALLOW_REUSE", steps) => file.used_steps = steps.to_vec(),
                ("STEP_SIZE" | "WINDOW_SIZE" | "RATE_LIMIT" | "HOTP_COUNTER", _) => {
                    return Err(bad(&format!("bad values for {name}")))
                }
                // The name only if it cannot be a secret (see `safe_name`).
                _ => {
                    return Err(bad(&match crate::core::logtext::safe_name(name) {
                        Some(n) => format!("unknown option {n}"),
                        None => "unknown option".to_owned(),
                    }))
                }
            }
        } else if looks_like_scratch_code(line) {
            file.scratch_codes.push(Zeroizing::new(line.to_owned()));
        } else if line.trim().is_empty() {
            continue;
        } else {
            return Err(GoogleError::BadLine(number));
        }
    }
    if totp_auth && file.hotp_counter.is_some() {
        return Err(GoogleError::BothModes);
    }
    Ok(file)
}

/// Options Google's module writes for its own bookkeeping, which pam-totp
/// does not use and whose values are not plain numbers: the clock skew it
/// learns (`TIME_SKEW -1`, `RESETTING_TIME_SKEW 59844988-10 ...`) and the
/// records of `grace_period=` (`LAST0 192.0.2.7 1795349634`).
fn bookkeeping_option(name: &str) -> bool {
    matches!(name, "TIME_SKEW" | "RESETTING_TIME_SKEW")
        || name
            .strip_prefix("LAST")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl GoogleFile {
    /// Steps (back, ahead) that `WINDOW_SIZE` allows around now, the way
    /// Google's module counts them: 3 means one either side, 4 one back and
    /// two ahead.
    pub fn window_bounds(&self) -> Option<(u64, u64)> {
        self.window_size.map(|w| ((w - 1) / 2, w / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOTP_FILE: &str = "TRDFSP5QGTQPTCYK3RZNCHYJGA\n\" RATE_LIMIT 3 30 1795347788\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE 59844926\n\" TOTP_AUTH\n17750001\n93755919\n";

    #[test]
    fn recognises_both_formats() {
        assert!(looks_like_google(TOTP_FILE.as_bytes()));
        assert!(!looks_like_google(
            b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\n"
        ));
        assert!(!looks_like_google(b"# comment\nversion = 1\n"));
    }

    #[test]
    fn parses_totp_file() {
        let f = parse(TOTP_FILE.as_bytes()).unwrap();
        assert_eq!(f.secret.len(), 16);
        assert_eq!(f.step_size, 30);
        assert_eq!(f.hotp_counter, None);
        assert_eq!(f.window_size, Some(3));
        assert_eq!(f.window_bounds(), Some((1, 1)));
        assert_eq!(f.rate_limit, Some((3, 30)));
        assert_eq!(f.used_steps, vec![59844926]);
        assert_eq!(f.scratch_codes.len(), 2);
        assert_eq!(f.scratch_codes[1].as_str(), "93755919");
    }

    #[test]
    fn parses_hotp_and_legacy_secret() {
        let f = parse(b"JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 7\n\" WINDOW_SIZE 4\n").unwrap();
        assert_eq!(f.secret.len(), 10);
        assert_eq!(f.hotp_counter, Some(7));
        assert_eq!(f.window_bounds(), Some((1, 2)));
    }

    #[test]
    fn skips_what_googles_module_writes_for_itself() {
        // As Google's module rewrites a file: grace_period= records, and
        // the clock skew it learns (which pam-totp does not apply).
        let text = "JBSWY3DPEHPK3PXP\n\" LAST0 192.0.2.7 1795349634\n\" LAST1 ::1 1795349600\n\
                    \" RESETTING_TIME_SKEW 59844988-10 59844988-9\n\" TIME_SKEW -10\n\
                    \" WINDOW_SIZE 3\n\" TOTP_AUTH\n12345678\n";
        let f = parse(text.as_bytes()).unwrap();
        assert_eq!(f.window_size, Some(3));
        assert_eq!(f.scratch_codes.len(), 1);
        let err = parse(b"JBSWY3DPEHPK3PXP\n\" LASTX 1\n").unwrap_err();
        assert!(err.to_string().contains("unknown option"), "{err}");
    }

    #[test]
    fn rejects_bad_files() {
        for (bad, want) in [
            (
                "JBSWY3DPEHPK3PXP\n\" FROB 1\n",
                "line 2: unknown option FROB",
            ),
            (
                "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" JBSWY3DPEHPK3PXPJBSW 1\n",
                "line 3: unknown option",
            ),
            ("JBSWY3DPEHPK3PXP\n\" WINDOW_SIZE 0\n", "bad values"),
            ("JBSWY3DPEHPK3PXP\n\" STEP_SIZE x\n", "numbers"),
            ("JBSWY3DPEHPK3PXP\nhello\n", "line 2"),
            (
                "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" HOTP_COUNTER 1\n",
                "both",
            ),
            ("JBSWY3DP\n", "5 bytes"),
            ("JBSWY3DPEHPK3PX1\n", "base32"),
        ] {
            let err = parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{bad:?}: {err}");
            assert!(!err.contains("JBSWY3DP"), "a value in {err}");
        }
    }
}
