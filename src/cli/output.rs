//! What the tool shows: the otpauth URI (built by `pam_totp::otpauth`), the
//! QR code drawn in the terminal, the secret in groups of four, scratch
//! codes, status, the report's table (`report`), and the JSON objects of
//! the contract: formatting, strings in, strings out; and the two ways
//! data reaches standard output ([`print_out`], [`print_json`]). Messages
//! go to standard error.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Write as _};

use serde::Serialize;
use zeroize::Zeroizing;

use pam_totp::core::otp::Algorithm;
use pam_totp::secret::qr::Matrix;

use crate::args::QrStyle;
use crate::error::{EnrollError, Result};

mod report;

pub use report::{report_table, utc_iso8601, ReportRow, ENROLLED, ENROLLED_ERROR, NOT_ENROLLED};

// The otpauth URI is built in the library, which also parses it back
// (tests and the `otpauth` fuzz target check one against the other).
pub use pam_totp::secret::otpauth::{default_params, uri as otpauth_uri, UriParts};

/// The QR code of `text` for the terminal, or `None` for `--qr none`.
pub fn qr(text: &str, style: QrStyle) -> Result<Option<String>> {
    let matrix = match style {
        QrStyle::None => return Ok(None),
        _ => Matrix::new(text).map_err(EnrollError::Qr)?,
    };
    Ok(Some(match style {
        QrStyle::Utf8 => matrix.utf8(),
        _ => matrix.ansi(),
    }))
}

// The QR code and the grouped secret are drawn in the library, which the
// module's enrollment at login shares.
pub use pam_totp::secret::qr::grouped;

/// The human-readable enrollment: QR code, URI, secret, scratch codes.
pub struct EnrollView<'a> {
    pub qr: Option<&'a str>,
    pub uri: &'a str,
    pub issuer: &'a str,
    pub account: &'a str,
    pub secret: &'a str,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub scratch_codes: &'a [Zeroizing<String>],
}

pub fn enroll_text(v: &EnrollView<'_>) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::new());
    if let Some(qr) = v.qr {
        s.push_str("Scan this QR code with the authenticator app:\n\n");
        s.push_str(qr);
        s.push('\n');
    }
    let _ = writeln!(s, "Or add the account by hand:");
    let _ = writeln!(s, "  issuer:   {}", v.issuer);
    let _ = writeln!(s, "  account:  {}", v.account);
    let _ = writeln!(s, "  secret:   {}", grouped(v.secret).as_str());
    let _ = writeln!(
        s,
        "  type:     time-based, {}, {} digits, every {} seconds",
        v.algorithm, v.digits, v.period
    );
    let _ = writeln!(s, "  URI:      {}", v.uri);
    if !v.scratch_codes.is_empty() {
        let _ = writeln!(
            s,
            "\nScratch codes: each logs in once if the phone is lost. Keep them\n\
             somewhere safe; they are not shown again."
        );
        for c in v.scratch_codes {
            let _ = writeln!(s, "  {}", c.as_str());
        }
    }
    s
}

pub fn scratch_text(codes: &[Zeroizing<String>]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::from(
        "New scratch codes (the old ones no longer work). Each logs in once;\n\
         keep them somewhere safe, they are not shown again.\n",
    ));
    for c in codes {
        let _ = writeln!(s, "  {}", c.as_str());
    }
    s
}

/// `enroll --json`.
#[derive(Serialize)]
pub struct EnrollJson<'a> {
    pub user: &'a str,
    pub secret_file: &'a str,
    pub secret: &'a str,
    pub otpauth_uri: &'a str,
    pub scratch_codes: Vec<&'a str>,
    /// With `--secret-file -` only: the secret file's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file_text: Option<&'a str>,
}

/// `import-google-authenticator --json`: `enroll --json`'s object and the
/// file it came from.
#[derive(Serialize)]
pub struct ImportJson<'a> {
    pub user: &'a str,
    pub secret_file: &'a str,
    pub secret: &'a str,
    pub otpauth_uri: &'a str,
    pub scratch_codes: Vec<&'a str>,
    pub imported_from: &'a str,
    /// With `--secret-file -` only: the secret file's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file_text: Option<&'a str>,
}

/// `scratch-codes --regenerate --json`.
#[derive(Serialize)]
pub struct ScratchJson<'a> {
    pub user: &'a str,
    pub secret_file: &'a str,
    pub scratch_codes: Vec<&'a str>,
}

/// `status --json`; `None` is null (unknown, or not enrolled).
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Status {
    pub user: String,
    pub enrolled: bool,
    pub secret_file: String,
    pub algorithm: Option<String>,
    pub digits: Option<u8>,
    pub period: Option<u64>,
    pub scratch_codes_remaining: Option<usize>,
    pub failed_attempts: Option<u64>,
    pub locked: Option<bool>,
    /// The keys (devices) of the enrollment; never a secret.
    pub keys: Vec<KeyStatus>,
}

/// One key of `status`: its name and parameters, and whether it is sealed.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    pub name: String,
    pub algorithm: Option<String>,
    pub digits: Option<u8>,
    pub period: Option<u64>,
    pub sealed: bool,
}

/// Serializes one JSON object. A failure is an error, never an empty
/// string (the objects here are plain strings and numbers, but the caller
/// still reports rather than prints nothing).
pub fn json<T: Serialize>(value: &T) -> Result<Zeroizing<String>> {
    serde_json::to_string(value)
        .map(Zeroizing::new)
        .map_err(|e| EnrollError::Json(e).into())
}

/// Writes data to standard output, flushed; a failure is an error (a full
/// disk or a closed pipe must not look like success).
pub fn print_out(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| EnrollError::Stdout(e).into())
}

/// Writes one JSON object and a newline to standard output.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    print_out(&json(value)?)?;
    println!();
    Ok(())
}

/// `status` for people: one `key: value` line per JSON key.
pub fn status_text(s: &Status) -> String {
    fn opt<T: ToString>(v: &Option<T>, none: &str) -> String {
        v.as_ref().map_or_else(|| none.to_owned(), T::to_string)
    }
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let absent = if s.enrolled { "unknown" } else { "-" };
    let rows = [
        ("user", s.user.clone()),
        ("enrolled", yes(s.enrolled)),
        ("secret_file", s.secret_file.clone()),
        ("algorithm", opt(&s.algorithm, absent)),
        ("digits", opt(&s.digits, absent)),
        ("period", opt(&s.period, absent)),
        (
            "scratch_codes_remaining",
            opt(&s.scratch_codes_remaining, absent),
        ),
        ("failed_attempts", opt(&s.failed_attempts, "unknown")),
        ("locked", s.locked.map_or_else(|| "unknown".into(), yes)),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{:<24} {v}", format!("{k}:"));
    }
    for k in &s.keys {
        let _ = writeln!(
            out,
            "{:<24} {}, {} digits, {}, {}",
            format!("key {}:", k.name),
            opt(&k.algorithm, "unknown"),
            opt(&k.digits, "unknown"),
            k.period
                .map_or_else(|| "counter".to_owned(), |p| format!("period {p}")),
            if k.sealed { "sealed" } else { "not sealed" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_styles() {
        let text = qr("x", QrStyle::Ansi).unwrap().unwrap();
        assert!(text.starts_with("\x1b[97;107m▀"));
        let utf8 = qr("x", QrStyle::Utf8).unwrap().unwrap();
        assert_eq!(utf8, Matrix::new("x").unwrap().utf8());
        assert_eq!(qr("x", QrStyle::None).unwrap(), None);
    }

    #[test]
    fn status_text_lines() {
        let s = Status {
            user: "alice".into(),
            enrolled: false,
            secret_file: "/home/alice/.pam_totp".into(),
            algorithm: None,
            digits: None,
            period: None,
            scratch_codes_remaining: None,
            failed_attempts: Some(0),
            locked: Some(false),
            keys: vec![],
        };
        let t = status_text(&s);
        assert!(t.contains("enrolled:                no\n"), "{t}");
        assert!(t.contains("algorithm:               -\n"));
        assert!(t.contains("locked:                  no\n"));
    }

    #[test]
    fn json_failure_is_an_error_not_an_empty_string() {
        struct Unwritable;
        impl Serialize for Unwritable {
            fn serialize<S: serde::Serializer>(
                &self,
                _: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(json(&Unwritable).is_err());
        assert_eq!(
            json(&ScratchJson {
                user: "a",
                secret_file: "/f",
                scratch_codes: vec![]
            })
            .unwrap()
            .as_str(),
            r#"{"user":"a","secret_file":"/f","scratch_codes":[]}"#
        );
    }
}
