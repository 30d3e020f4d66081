//! Google Authenticator files (`~/.google_authenticator`), read in place.
//!
//! - `google::parse` never panics, and its errors never show the secret.
//! - Every file it accepts makes an enrollment, with the file's step size,
//!   counter and scratch codes; the module's own reader
//!   (`file::parse`) accepts it too when it recognises the format.
//! - Round trip: the parsed file written back in Google's format (by the
//!   writer below; pam-totp itself never writes one) parses to the same.
#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use pam_totp::core::decision::Counter;
use pam_totp::core::otp::encode_base32;
use pam_totp::secret::enrollment::{Enrollment, Format};
use pam_totp::secret::file;
use pam_totp::secret::google;
use pam_totp::secret::google::GoogleFile;

fuzz_target!(|data: &[u8]| {
    let file = match google::parse(data) {
        Ok(file) => file,
        Err(err) => {
            if let Some(secret) = lone_first_line(data) {
                assert!(
                    !err.to_string().contains(secret),
                    "the error shows the secret: {err}"
                );
            }
            return;
        }
    };

    let e = Enrollment::from_google(&file)
        .unwrap_or_else(|err| panic!("an accepted file makes no enrollment: {err}"));
    assert_eq!(e.format, Format::GoogleAuthenticator);
    assert_eq!(e.first_key().period(), file.step_size);
    assert_eq!(e.scratch.len(), file.scratch_codes.len());
    match (e.counter, file.hotp_counter) {
        (Counter::Event { first }, Some(c)) => assert_eq!(first, c),
        (Counter::Time, None) => {}
        other => panic!("counter mode changed: {other:?}"),
    }
    if let Some((back, ahead)) = e.limits.window {
        assert!(back + ahead < 100, "window {back}/{ahead}");
    }
    if google::looks_like_google(data) {
        let read = file::parse(data)
            .unwrap_or_else(|err| panic!("the module refuses what google::parse accepts: {err}"));
        assert_eq!(read.first_key().fingerprint(), e.first_key().fingerprint());
    }
    if let Some(secret) = lone_first_line(data) {
        assert!(
            !format!("{file:?} {e:?}").contains(secret),
            "Debug shows the secret"
        );
    }

    let text = write_google(&file);
    let again = google::parse(text.as_bytes())
        .unwrap_or_else(|err| panic!("rewritten file refused: {err}\n{text}"));
    assert_eq!(*again.secret, *file.secret);
    assert_eq!(again.step_size, file.step_size);
    assert_eq!(again.hotp_counter, file.hotp_counter);
    assert_eq!(again.window_size, file.window_size);
    assert_eq!(again.rate_limit, file.rate_limit);
    assert_eq!(again.used_steps, file.used_steps);
    assert_eq!(again.scratch_codes, file.scratch_codes);
});

/// The file in Google's format, options only where they say something.
fn write_google(f: &GoogleFile) -> String {
    let mut s = format!("{}\n", encode_base32(&f.secret).as_str());
    if let Some((n, m)) = f.rate_limit {
        let _ = writeln!(s, "\" RATE_LIMIT {n} {m}");
    }
    if let Some(w) = f.window_size {
        let _ = writeln!(s, "\" WINDOW_SIZE {w}");
    }
    if !f.used_steps.is_empty() {
        s.push_str("\" DISALLOW_REUSE");
        for step in &f.used_steps {
            let _ = write!(s, " {step}");
        }
        s.push('\n');
    }
    if let Some(c) = f.hotp_counter {
        let _ = writeln!(s, "\" HOTP_COUNTER {c}");
    }
    if f.step_size != 30 {
        let _ = writeln!(s, "\" STEP_SIZE {}", f.step_size);
    }
    for code in &f.scratch_codes {
        let _ = writeln!(s, "{}", code.as_str());
    }
    s
}

/// The first line when it is a base32 secret that can be told apart: long
/// enough, with a letter hex cannot have, and nowhere else in the file.
fn lone_first_line(data: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(data).ok()?;
    let first = text.lines().next()?.trim_end_matches('\r');
    let distinct = first.len() >= 16
        && first
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'2'..=b'7'))
        && first
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !b.is_ascii_hexdigit())
        && text.matches(first).count() == 1;
    distinct.then_some(first)
}
