//! The otpauth URI (Google's Key Uri Format) that authenticator apps scan:
//! built for `pam-totp enroll`, and parsed back, so the two are checked
//! against each other (tests and the `otpauth` fuzz target).
//!
//! ```text
//! otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER[&algorithm=..][&digits=..][&period=..]
//! ```
//!
//! The label follows the Key Uri Format's grammar, `accountname / issuer
//! (":" / "%3A") *"%20" accountname`: a literal or encoded colon separates
//! issuer and account, spaces before the account are not part of it, and
//! neither part may hold a colon. So the builder refuses an issuer or
//! account that an app would split differently (one with a colon, an
//! account that starts with a space) rather than encode it: whatever it
//! emits, every conforming app reads back as the same two parts.
//!
//! Pure: strings in, strings out.
#![forbid(unsafe_code)]

use std::fmt::{self, Write as _};

use zeroize::Zeroizing;

use crate::core::otp::{
    self, decode_base32, Algorithm, ParamError, DEFAULT_DIGITS, DEFAULT_PERIOD,
};

const PREFIX: &str = "otpauth://totp/";

/// What goes into an otpauth URI.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UriParts<'a> {
    pub issuer: &'a str,
    pub account: &'a str,
    /// Base32, without padding.
    pub secret: &'a str,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

impl fmt::Debug for UriParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UriParts")
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

/// The otpauth URI: `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`,
/// then `algorithm`, `digits` and `period` only when they are not the
/// defaults (apps that do not know them then still get them right). Issuer
/// and account are percent-encoded (UTF-8, `%20` for a space), so the
/// colon between them is the only one. Refused ([`check_label`]): an
/// issuer or account with a colon, an account that starts with a space.
pub fn uri(p: &UriParts<'_>) -> Result<Zeroizing<String>, UriError> {
    check_label(p.issuer, p.account)?;
    let mut uri = Zeroizing::new(format!(
        "{PREFIX}{}:{}?secret={}&issuer={}",
        percent_encode(p.issuer, b"@"),
        percent_encode(p.account, b"@"),
        percent_encode(p.secret, b""),
        percent_encode(p.issuer, b""),
    ));
    if p.algorithm != Algorithm::Sha1 {
        let _ = write!(uri, "&algorithm={}", p.algorithm.as_str());
    }
    if p.digits != DEFAULT_DIGITS {
        let _ = write!(uri, "&digits={}", p.digits);
    }
    if p.period != DEFAULT_PERIOD {
        let _ = write!(uri, "&period={}", p.period);
    }
    Ok(uri)
}

/// Whether an issuer and an account survive the Key Uri Format's label
/// grammar unchanged: neither holds a colon (the separator, literal or
/// `%3A`), and the account does not start with a space (apps drop spaces
/// after the separator).
pub fn check_label(issuer: &str, account: &str) -> Result<(), UriError> {
    if issuer.contains(':') || account.contains(':') {
        return Err(UriError::Colon);
    }
    if account.starts_with(' ') {
        return Err(UriError::LeadingSpace);
    }
    Ok(())
}

/// Whether algorithm, digits and period are what every app assumes.
pub fn default_params(algorithm: Algorithm, digits: u8, period: u64) -> bool {
    algorithm == Algorithm::Sha1 && digits == DEFAULT_DIGITS && period == DEFAULT_PERIOD
}

/// A parsed otpauth URI. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Otpauth {
    pub issuer: String,
    pub account: String,
    /// Base32, as the URI has it (checked to decode).
    pub secret: Zeroizing<String>,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

impl fmt::Debug for Otpauth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.parts().fmt(f)
    }
}

impl Otpauth {
    pub fn parts(&self) -> UriParts<'_> {
        UriParts {
            issuer: &self.issuer,
            account: &self.account,
            secret: &self.secret,
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }
}

/// Why a URI was refused. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// Not `otpauth://totp/...` (HOTP URIs are not made here).
    NotTotp,
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    Encoding,
    NoQuery,
    /// A parameter given twice (its name).
    Duplicate(String),
    NoSecret,
    Base32,
    Param(ParamError),
    /// A `digits` or `period` value that is not a number (the name).
    NotANumber(String),
    /// The label's issuer prefix and the `issuer` parameter differ.
    IssuerMismatch,
    /// An issuer or account with a colon, which separates the two.
    Colon,
    /// An account that starts with a space, which apps drop.
    LeadingSpace,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriError::NotTotp => f.write_str("not an otpauth://totp/ URI"),
            UriError::Encoding => f.write_str("bad percent-encoding"),
            UriError::NoQuery => f.write_str("no parameters"),
            UriError::Duplicate(name) => write!(f, "{name} given twice"),
            UriError::NoSecret => f.write_str("no secret"),
            UriError::Base32 => f.write_str("secret is not valid base32"),
            UriError::Param(e) => e.fmt(f),
            UriError::NotANumber(name) => write!(f, "{name} is not a number"),
            UriError::IssuerMismatch => {
                f.write_str("the label's issuer and the issuer parameter differ")
            }
            UriError::Colon => {
                f.write_str("an issuer or account may not contain ':' (it separates the two)")
            }
            UriError::LeadingSpace => {
                f.write_str("an account may not start with a space (apps drop it)")
            }
        }
    }
}

impl std::error::Error for UriError {}

impl From<ParamError> for UriError {
    fn from(e: ParamError) -> Self {
        UriError::Param(e)
    }
}

/// Parses what [`uri`] builds, and the Key Uri Format's other spellings:
/// scheme and type in any case, a label without issuer prefix, parameters
/// in any order, unknown parameters (`image`, ...) ignored. As the format
/// has it, the first colon in the label, literal or `%3A` (either case),
/// separates issuer and account, and spaces (` ` or `%20`) after it are
/// dropped; an issuer or account holding another colon is refused. `+` is
/// a plus sign, as RFC 3986 has it, not a space.
pub fn parse(s: &str) -> Result<Otpauth, UriError> {
    let head = s.get(..PREFIX.len()).ok_or(UriError::NotTotp)?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return Err(UriError::NotTotp);
    }
    let rest = &s[PREFIX.len()..];
    let (label, query) = rest.split_once('?').ok_or(UriError::NoQuery)?;
    let (label_issuer, account) = match split_label(label) {
        Some((i, a)) => (Some(percent_decode(i)?), percent_decode(a)?),
        None => (None, percent_decode(label)?),
    };
    // Spaces before the account are not part of it (with or without an
    // issuer prefix, so that what is parsed can be built again).
    let account = account.trim_start_matches(' ').to_owned();
    if account.contains(':') {
        return Err(UriError::Colon);
    }

    let mut secret: Option<Zeroizing<String>> = None;
    let mut issuer: Option<String> = None;
    let mut algorithm: Option<Algorithm> = None;
    let mut digits: Option<u8> = None;
    let mut period: Option<u64> = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Zeroizing::new(percent_decode(value)?);
        let dup = || UriError::Duplicate(name.to_owned());
        let number = |v: &str| -> Result<u64, UriError> {
            v.parse().map_err(|_| UriError::NotANumber(name.to_owned()))
        };
        match name {
            "secret" => {
                decode_base32(&value).ok_or(UriError::Base32)?;
                replace(&mut secret, value).map_err(|_| dup())?;
            }
            "issuer" => replace(&mut issuer, value.to_string()).map_err(|_| dup())?,
            "algorithm" => replace(&mut algorithm, value.parse()?).map_err(|_| dup())?,
            "digits" => {
                let d = otp::check_digits(number(&value)?)?;
                replace(&mut digits, d).map_err(|_| dup())?;
            }
            "period" => {
                let p = otp::check_period(number(&value)?)?;
                replace(&mut period, p).map_err(|_| dup())?;
            }
            _ => {}
        }
    }
    let issuer = match (label_issuer, issuer) {
        (Some(a), Some(b)) if a != b => return Err(UriError::IssuerMismatch),
        (Some(a), _) => a,
        (None, b) => b.unwrap_or_default(),
    };
    if issuer.contains(':') {
        return Err(UriError::Colon);
    }
    Ok(Otpauth {
        issuer,
        account,
        secret: secret.ok_or(UriError::NoSecret)?,
        algorithm: algorithm.unwrap_or_default(),
        digits: digits.unwrap_or(DEFAULT_DIGITS),
        period: period.unwrap_or(DEFAULT_PERIOD),
    })
}

/// The label split at its first colon, literal or percent-encoded:
/// (issuer, account), both still encoded.
fn split_label(label: &str) -> Option<(&str, &str)> {
    let bytes = label.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' {
            return Some((&label[..i], &label[i + 1..]));
        }
        if b == b'%'
            && bytes.get(i + 1) == Some(&b'3')
            && matches!(bytes.get(i + 2), Some(b'A' | b'a'))
        {
            return Some((&label[..i], &label[i + 3..]));
        }
    }
    None
}

/// Fills an empty slot; `Err` if it was already filled.
fn replace<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    match slot {
        Some(_) => Err(()),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters and `keep`.
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, UriError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |b: Option<u8>| -> Result<u8, UriError> {
            char::from(b.ok_or(UriError::Encoding)?)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(UriError::Encoding)
        };
        let high = hex(bytes.next())?;
        let low = hex(bytes.next())?;
        out.push(high << 4 | low);
    }
    String::from_utf8(out).map_err(|_| UriError::Encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(issuer: &'a str, account: &'a str) -> UriParts<'a> {
        UriParts {
            issuer,
            account,
            secret: "JBSWY3DPEHPK3PXP",
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }

    fn built(p: &UriParts<'_>) -> String {
        uri(p).unwrap().to_string()
    }

    #[test]
    fn uri_with_defaults_has_no_parameters() {
        assert_eq!(
            built(&parts("Example", "alice@google.com")),
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
        );
    }

    #[test]
    fn uri_percent_encodes_issuer_and_account() {
        assert_eq!(
            built(&parts("ACME Co & Sons", "jö/x?y#z%+ ")),
            "otpauth://totp/ACME%20Co%20%26%20Sons:j%C3%B6%2Fx%3Fy%23z%25%2B%20\
             ?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co%20%26%20Sons"
        );
    }

    #[test]
    fn uri_refuses_what_apps_would_split_differently() {
        // A colon, literal or %3A, separates issuer and account in every
        // conforming app, and spaces after it are dropped: such parts
        // cannot be encoded so that they come back unchanged.
        for (issuer, account, want) in [
            ("a:b", "c", UriError::Colon),
            ("a", "c:d", UriError::Colon),
            ("", "c:d", UriError::Colon),
            ("a", " c", UriError::LeadingSpace),
            ("a", " ", UriError::LeadingSpace),
        ] {
            assert_eq!(
                uri(&parts(issuer, account)).unwrap_err(),
                want,
                "{issuer:?} {account:?}"
            );
        }
        assert!(check_label("a b ", "c d ").is_ok());
    }

    #[test]
    fn uri_names_non_default_parameters_only() {
        let mut p = parts("h", "a@h");
        p.algorithm = Algorithm::Sha512;
        p.digits = 8;
        assert_eq!(
            built(&p),
            "otpauth://totp/h:a@h?secret=JBSWY3DPEHPK3PXP&issuer=h&algorithm=SHA512&digits=8"
        );
        p = parts("h", "a@h");
        p.period = 60;
        assert!(built(&p).ends_with("&issuer=h&period=60"));
    }

    #[test]
    fn parse_round_trips() {
        for p in [
            parts("Example", "alice@google.com"),
            parts("ACME Co & Sons", "jö/x?y#z%+"),
            parts("a%3Ab", "%3A %20"),
            parts(" a ", "b "),
            parts("", ""),
            UriParts {
                algorithm: Algorithm::Sha256,
                digits: 7,
                period: 86_400,
                ..parts("h", "a")
            },
        ] {
            let built = built(&p);
            assert_eq!(parse(&built).unwrap().parts(), p, "{built}");
        }
    }

    #[test]
    fn parse_accepts_other_spellings() {
        let u = parse("OTPAUTH://TOTP/alice?period=60&image=x&secret=jbswy3dpehpk3pxp").unwrap();
        assert_eq!((u.issuer.as_str(), u.account.as_str()), ("", "alice"));
        assert_eq!(u.period, 60);
        let u = parse("otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP&issuer=Ex").unwrap();
        assert_eq!(u.issuer, "Ex");
    }

    #[test]
    fn parse_follows_the_key_uri_label_grammar() {
        // %3A (either case) separates like ':'; spaces after it, literal or
        // %20, are not part of the account; '+' in the path is a plus.
        for label in [
            "Example:alice",
            "Example%3Aalice",
            "Example%3aalice",
            "Example:%20alice",
            "Example%3A%20%20alice",
            "Example: alice",
        ] {
            let u = parse(&format!("otpauth://totp/{label}?secret=JBSWY3DPEHPK3PXP")).unwrap();
            assert_eq!(
                (u.issuer.as_str(), u.account.as_str()),
                ("Example", "alice"),
                "{label}"
            );
        }
        let u = parse("otpauth://totp/A+B:c+d?secret=JBSWY3DPEHPK3PXP&issuer=A%2BB").unwrap();
        assert_eq!((u.issuer.as_str(), u.account.as_str()), ("A+B", "c+d"));
        // Only the first colon separates; a second one is refused, as is a
        // colon in the issuer parameter.
        for bad in [
            "otpauth://totp/a:b:c?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/a:b%3Ac?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/a%3Ab:c?secret=JBSWY3DPEHPK3PXP",
            "otpauth://totp/b?secret=JBSWY3DPEHPK3PXP&issuer=a%3Ax",
        ] {
            assert_eq!(parse(bad).unwrap_err(), UriError::Colon, "{bad}");
        }
    }

    #[test]
    fn parse_refuses_bad_uris() {
        for (bad, want) in [
            (
                "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP",
                UriError::NotTotp,
            ),
            ("otpauth://totp/a", UriError::NoQuery),
            ("otpauth://totp/a?issuer=x", UriError::NoSecret),
            ("otpauth://totp/a?secret=JBSW!", UriError::Base32),
            (
                "otpauth://totp/a%4?secret=JBSWY3DPEHPK3PXP",
                UriError::Encoding,
            ),
            (
                "otpauth://totp/a%FF?secret=JBSWY3DPEHPK3PXP",
                UriError::Encoding,
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=9",
                UriError::Param(ParamError::Digits(9)),
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=x",
                UriError::NotANumber("period".into()),
            ),
            (
                "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&secret=JBSWY3DPEHPK3PXP",
                UriError::Duplicate("secret".into()),
            ),
            (
                "otpauth://totp/x:a?secret=JBSWY3DPEHPK3PXP&issuer=y",
                UriError::IssuerMismatch,
            ),
        ] {
            assert_eq!(parse(bad).unwrap_err(), want, "{bad}");
        }
    }

    #[test]
    fn debug_leaves_the_secret_out() {
        let u = parse("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(!format!("{u:?}").contains("JBSW"));
    }
}
