//! What the tool shows: the otpauth URI (built by `pam_totp::otpauth`), the
//! QR code drawn in the terminal, the secret in groups of four, scratch
//! codes, status, and the JSON objects of the contract: formatting,
//! strings in, strings out; and the two ways data reaches standard output
//! ([`print_out`], [`print_json`]). Messages go to standard error.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Write as _};

use qrcode::{Color, QrCode};
use serde::Serialize;
use zeroize::Zeroizing;

use pam_totp::core::otp::Algorithm;

use crate::args::QrStyle;
use crate::error::{EnrollError, Result};

/// Light modules around the code. The standard asks for four; the terminal
/// around it is dark, so the light border drawn here is what scanners need.
const QUIET_ZONE: usize = 4;

// The otpauth URI is built in the library, which also parses it back
// (tests and the `otpauth` fuzz target check one against the other).
pub use pam_totp::secret::otpauth::{default_params, uri as otpauth_uri, UriParts};

/// The QR code of `text` for the terminal, or `None` for `--qr none`.
pub fn qr(text: &str, style: QrStyle) -> Result<Option<String>> {
    let matrix = match style {
        QrStyle::None => return Ok(None),
        _ => Matrix::new(text)?,
    };
    Ok(Some(match style {
        QrStyle::Utf8 => matrix.utf8(),
        _ => matrix.ansi(),
    }))
}

/// The QR modules with the quiet zone: `true` is dark.
struct Matrix {
    size: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn new(text: &str) -> Result<Matrix> {
        let code = QrCode::new(text.as_bytes()).map_err(EnrollError::Qr)?;
        let width = code.width();
        let colors = code.to_colors();
        let size = width + 2 * QUIET_ZONE;
        let mut dark = vec![false; size * size];
        for y in 0..width {
            for x in 0..width {
                dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] =
                    colors[y * width + x] == Color::Dark;
            }
        }
        Ok(Matrix { size, dark })
    }

    /// Module (x, y); rows past the bottom (the odd half row) are light.
    fn is_dark(&self, x: usize, y: usize) -> bool {
        y < self.size && self.dark[y * self.size + x]
    }

    /// Two module rows per text row; the light modules are drawn, the dark
    /// ones left to the terminal's (dark) background.
    fn utf8(&self) -> String {
        let mut out = String::new();
        for y in (0..self.size).step_by(2) {
            for x in 0..self.size {
                let top = !self.is_dark(x, y);
                let bottom = !self.is_dark(x, y + 1) && y + 1 < self.size;
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// Every cell an upper half block with explicit colours: foreground the
    /// top module, background the bottom one (black or bright white).
    fn ansi(&self) -> String {
        let mut out = String::new();
        for y in (0..self.size).step_by(2) {
            let mut last = None;
            for x in 0..self.size {
                // The odd half row below the code takes the quiet zone's colour.
                let cell = (
                    self.is_dark(x, y),
                    y + 1 < self.size && self.is_dark(x, y + 1),
                );
                if last != Some(cell) {
                    let fg = if cell.0 { 30 } else { 97 };
                    let bg = if cell.1 { 40 } else { 107 };
                    let _ = write!(out, "\x1b[{fg};{bg}m");
                    last = Some(cell);
                }
                out.push('▀');
            }
            out.push_str("\x1b[0m\n");
        }
        out
    }
}

/// A base32 secret in groups of four, for typing by hand.
pub fn grouped(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() * 5 / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

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
    fn secret_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(grouped("ABCD").as_str(), "ABCD");
    }

    #[test]
    fn utf8_rendering_has_the_quiet_zone_and_half_rows() {
        let m = Matrix::new("otpauth://totp/h:a?secret=JBSWY3DPEHPK3PXP&issuer=h").unwrap();
        let text = m.utf8();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), m.size.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == m.size));
        // The top quiet zone is light: full blocks.
        assert!(lines[0].chars().all(|c| c == '█'));
        // A finder pattern's dark top edge starts right after the border.
        assert_eq!(lines[2].chars().nth(QUIET_ZONE), Some(' '));
    }

    #[test]
    fn ansi_rendering_sets_colours_and_resets() {
        let text = qr("x", QrStyle::Ansi).unwrap().unwrap();
        assert!(text.starts_with("\x1b[97;107m▀"));
        assert!(text.lines().all(|l| l.ends_with("\x1b[0m")));
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
