//! Text for syslog lines and error messages that nothing from outside the
//! module can forge or fill with a secret.
//!
//! An audit line is space-separated `key=value` tokens, read by log
//! watchers (fail2ban, a SIEM) that ban on `rhost=X result=wrong-code`.
//! Every value that comes from a file, the user or the remote side (a user
//! name, a remote host, a path, a group name, a key of a file) goes through
//! [`token`], which makes it one token with no space, no `=` and no quote,
//! so it can never pose as a field of the module's own. A reason (module
//! prose, with such tokens in it) goes through [`reason`], which escapes any
//! `=`, `"` or control byte left, so the prose cannot hold a `key=value`
//! either. Parsers never put a value in an error: [`toml_problem`] says
//! where (the line) and which key, and [`safe_name`] lets only a name that
//! cannot be a secret through.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use crate::core::toml_doc::{DocError, Problem};

/// One value from outside the module, as one token of a log line: as it is
/// if it is printable ASCII without `'`, `"` or `=` (so `first.last` and
/// `DOMAIN\bob` stay readable), otherwise in single quotes with every byte
/// outside printable ASCII, space, `'`, `"`, `\` and `=` written `\xHH`.
/// The empty string is `-`. Either way: no space, no `=`, no `"`.
pub fn token(s: &str) -> String {
    let plain = |b: u8| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'=');
    if s.is_empty() {
        return "-".to_owned();
    }
    if s.bytes().all(plain) {
        return s.to_owned();
    }
    let mut out = String::from("'");
    for b in s.bytes() {
        if plain(b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('\'');
    out
}

/// Module-made text that holds outside values only as [`token`]s, made
/// safe to stand in double quotes in a log line: spaces stay, and every
/// `"`, `=`, control or non-ASCII byte is written `\xHH` (so even a value
/// that reached the text unescaped cannot make a `key=value` or end the
/// quotes).
pub fn prose(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The `reason="..."` field of an audit line: [`prose`] in double quotes.
pub fn reason(s: &str) -> String {
    format!("reason=\"{}\"", prose(s))
}

/// A name read from a file or an argument (a key, an option), shown in an
/// error only if it cannot be a secret: 1 to 15 ASCII letters, digits,
/// `_` or `-`. A base32 secret has 16 characters at least (80 bits), so a
/// secret typed where a name belongs is never shown.
pub fn safe_name(s: &str) -> Option<&str> {
    let ok = (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(s)
}

/// A TOML error in the module's own words: the line, what is wrong and the
/// key (when [`safe_name`] lets it through), never the value. The `toml`
/// crate's own messages quote the offending value, which may be a secret
/// typed into the wrong key; [`DocError`] carries only a kind and a span.
pub fn toml_problem(text: &str, e: &DocError) -> String {
    if let Problem::Missing(name) = e.problem {
        return match safe_name(name) {
            Some(n) => format!("missing key {n}"),
            None => "a key is missing".to_owned(),
        };
    }
    let what = e.problem.what();
    let Some(span) = &e.span else {
        return what.to_owned();
    };
    let line = line_at(text, span.start);
    let this_line = text.lines().nth(line - 1).unwrap_or_default();
    let key = this_line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
        .and_then(safe_name);
    match key {
        Some(k) => format!("line {line}: {what} ({k})"),
        None => format!("line {line}: {what}"),
    }
}

/// The line (1-based) of the byte at `offset` in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() + 1
}

/// A problem found after parsing, in [`toml_problem`]'s words: the line,
/// what is wrong and the key when [`safe_name`] lets it through.
pub fn problem_at_line(line: usize, what: &str, key: &str) -> String {
    match safe_name(key) {
        Some(k) => format!("line {line}: {what} ({k})"),
        None => format!("line {line}: {what}"),
    }
}

/// The line of `text` (1-based) where `key = ...` is set, for errors found
/// after parsing (a value out of range).
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::toml_doc::{required, Doc};

    #[test]
    fn tokens_are_single_and_cannot_pose_as_fields() {
        assert_eq!(token(""), "-");
        assert_eq!(token("alice"), "alice");
        assert_eq!(token("DOMAIN\\bob"), "DOMAIN\\bob");
        assert_eq!(token("/var/lib/pam-totp/x"), "/var/lib/pam-totp/x");
        assert_eq!(token("x rhost=1.2.3.4"), "'x\\x20rhost\\x3d1.2.3.4'");
        assert_eq!(token("a\"b\\c\n"), "'a\\x22b\\x5cc\\x0a'");
        assert_eq!(token("O'Brien"), "'O\\x27Brien'");
        assert_eq!(token("jos\u{e9}"), "'jos\\xc3\\xa9'");
        for nasty in [
            "x rhost=203.0.113.9 result=wrong-code",
            "x\trhost=1\tresult=success",
            "a=b",
            "\"",
            "' rhost='",
        ] {
            let t = token(nasty);
            assert!(
                !t.contains([' ', '=', '"']) && t.bytes().all(|b| b.is_ascii_graphic()),
                "{nasty:?} -> {t}"
            );
        }
    }

    #[test]
    fn prose_keeps_spaces_and_loses_every_equals_sign() {
        assert_eq!(reason("no secret file"), "reason=\"no secret file\"");
        let r = prose("/x: \" rhost=1.2.3.4 result=success\n");
        assert_eq!(r, "/x: \\x22 rhost\\x3d1.2.3.4 result\\x3dsuccess\\x0a");
        // A token stays as it is inside prose.
        let t = token("x y=z");
        assert_eq!(
            prose(&format!("cannot read {t}")),
            format!("cannot read {t}")
        );
    }

    #[test]
    fn only_short_names_are_shown() {
        assert_eq!(safe_name("frobnicate"), Some("frobnicate"));
        assert_eq!(safe_name("try_first_pass"), Some("try_first_pass"));
        assert_eq!(safe_name("JBSWY3DPEHPK3PXP"), None);
        assert_eq!(safe_name("a b"), None);
        assert_eq!(safe_name(""), None);
    }

    /// What serde's derive with `deny_unknown_fields` read for a struct of
    /// `version: u32, algorithm: Option<String>, digits: Option<u64>`.
    fn problem(text: &str) -> String {
        let read = || -> Result<(), DocError> {
            let doc = Doc::parse(text)?;
            let t = doc.table().only(&["version", "algorithm", "digits"])?;
            required(t.int("version", 0..=u64::from(u32::MAX))?, "version")?;
            t.str("algorithm")?;
            t.int("digits", 0..=u64::MAX)?;
            Ok(())
        };
        toml_problem(text, &read().unwrap_err())
    }

    #[test]
    fn toml_problems_name_line_and_key_never_the_value() {
        const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        for (text, want) in [
            (
                format!("version = 1\ndigits = \"{SECRET}\"\n"),
                "line 2: wrong type of value (digits)",
            ),
            (
                format!("version = 1\nalgorithm = [\"{SECRET}\"]\n"),
                "line 2: wrong type of value (algorithm)",
            ),
            (
                format!("version = 1\n{SECRET} = 1\n"),
                "line 2: unknown key",
            ),
            (
                "version = 1\ncolour = 1\n".to_owned(),
                "line 2: unknown key (colour)",
            ),
            (
                format!("version = 1\nalgorithm = \"{SECRET}\n"),
                "line 2: not valid TOML (algorithm)",
            ),
            (
                format!("version = 1\n\"{SECRET}\n"),
                "line 2: not valid TOML",
            ),
            ("digits = 6\n".to_owned(), "missing key version"),
            (
                format!("version = 1\nversion = 2\n# {SECRET}\n"),
                "line 2: duplicate key (version)",
            ),
        ] {
            let got = problem(&text);
            assert_eq!(got, want, "{text}");
            assert!(!got.contains(SECRET), "{got}");
        }
    }

    #[test]
    fn keys_are_found_by_line() {
        let text = "version = 1\n  digits=12\nperiod = 3\n";
        assert_eq!(line_of_key(text, "digits"), Some(2));
        assert_eq!(line_of_key(text, "period"), Some(3));
        assert_eq!(line_of_key(text, "algorithm"), None);
    }
}
