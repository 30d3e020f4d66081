//! `report`'s row (its JSON object), the table of rows for people, and
//! the time of a login as UTC ISO 8601.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use serde::Serialize;

/// `report`'s `enrolled`: a usable secret file, none, or one the module
/// cannot use (the reason in `error`).
pub const ENROLLED: &str = "yes";
pub const NOT_ENROLLED: &str = "no";
pub const ENROLLED_ERROR: &str = "error";

/// One account of `report`, one JSON object per line with `--json`;
/// `None` is null (unknown, or not enrolled).
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct ReportRow {
    pub user: String,
    /// Whether the passwd database knows the account (false: found only in
    /// the secrets directory or the state store).
    pub account: bool,
    pub enrolled: &'static str,
    pub secret_file: Option<String>,
    pub sealed: Option<bool>,
    pub keys: Option<usize>,
    pub scratch_codes_remaining: Option<usize>,
    pub failed_attempts: Option<u64>,
    pub locked: Option<bool>,
    /// The last successful login, UTC, ISO 8601.
    pub last_login: Option<String>,
    pub error: Option<String>,
}

/// `report` for people: a header and one aligned line per account; an
/// unknown or absent value is "-".
pub fn report_table(rows: &[&ReportRow]) -> String {
    fn opt<T: ToString>(v: &Option<T>) -> String {
        v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
    }
    let yes = |b: &Option<bool>| b.map_or("-", |b| if b { "yes" } else { "no" }).to_owned();
    let header = [
        "USER",
        "ENROLLED",
        "WHERE",
        "SEALED",
        "KEYS",
        "SCRATCH",
        "FAILURES",
        "LOCKED",
        "LAST LOGIN",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        lines.push(vec![
            r.user.clone(),
            r.enrolled.to_owned(),
            opt(&r.secret_file),
            yes(&r.sealed),
            opt(&r.keys),
            opt(&r.scratch_codes_remaining),
            opt(&r.failed_attempts),
            yes(&r.locked),
            opt(&r.last_login),
        ]);
    }
    let mut widths = vec![0; header.len()];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = write!(text, "{cell:<w$}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC), as events
/// write their time.
pub fn utc_iso8601(secs: u64) -> String {
    pam_totp::core::event::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc_iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_iso8601(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(utc_iso8601(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn report_table_is_aligned() {
        let row = |user: &str, file: Option<&str>| ReportRow {
            user: user.into(),
            account: true,
            enrolled: if file.is_some() {
                ENROLLED
            } else {
                NOT_ENROLLED
            },
            secret_file: file.map(str::to_owned),
            sealed: file.map(|_| true),
            keys: file.map(|_| 1),
            scratch_codes_remaining: file.map(|_| 5),
            failed_attempts: Some(0),
            locked: Some(false),
            last_login: None,
            error: None,
        };
        let (a, b) = (row("al", Some("/s/al")), row("bartholomew", None));
        let t = report_table(&[&a, &b]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[0].starts_with("USER         ENROLLED  WHERE  SEALED"),
            "{t}"
        );
        assert!(
            lines[1].starts_with("al           yes       /s/al  yes"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("bartholomew  no        -      -"),
            "{t}"
        );
        let col = |l: &str| l.find("LAST LOGIN").or(l.rfind('-'));
        assert_eq!(col(lines[0]), col(lines[1]));
    }
}
