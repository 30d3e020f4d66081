//! The secret file as the module reads it: any bytes, either format.
//!
//! - `file::parse` never panics; neither its error nor the parsed
//!   enrollment's `Debug` shows the secret.
//! - Native files (one key or several `[[keys]]`) round-trip: parse →
//!   `SecretFile::to_toml` → parse gives the same fields, and both copies give the same enrollment (or error);
//!   `to_toml` refuses (never writes an empty text) only files the module
//!   would refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::secret::file;
use pam_totp::secret::native::SecretFile;

fuzz_target!(|data: &[u8]| {
    let parsed = file::parse(data);
    if let Some(secret) = lone_secret(data) {
        match &parsed {
            Ok(e) => assert!(!format!("{e:?}").contains(secret), "Debug shows the secret"),
            Err(err) => assert!(
                !err.to_string().contains(secret) && !format!("{err:?}").contains(secret),
                "the error shows the secret: {err}"
            ),
        }
    }

    let Ok(file) = SecretFile::parse(data) else {
        return;
    };
    // to_toml refuses only what the module would refuse too.
    let Ok(text) = file.to_toml() else {
        assert!(
            file.to_enrollment().is_err(),
            "a usable file does not write out"
        );
        return;
    };
    let again = SecretFile::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("to_toml wrote what parse refuses: {e}"));
    assert_eq!(again.version, file.version);
    assert_eq!(again.keys.len(), file.keys.len());
    for (a, b) in again.keys.iter().zip(&file.keys) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.secret, b.secret);
        assert_eq!(a.sealed_secret, b.sealed_secret);
        assert_eq!(a.algorithm, b.algorithm);
        assert_eq!(a.digits, b.digits);
        assert_eq!(a.period, b.period);
    }
    assert_eq!(again.scratch_codes, file.scratch_codes);
    assert_eq!(again.to_toml().ok(), Some(text), "to_toml is stable");

    match (file.to_enrollment(), again.to_enrollment()) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.keys.len(), b.keys.len());
            for (a, b) in a.keys.iter().zip(&b.keys) {
                assert_eq!(a.name, b.name);
                assert_eq!(a.key.algorithm(), b.key.algorithm());
                assert_eq!(a.key.digits(), b.key.digits());
                assert_eq!(a.key.period(), b.key.period());
                assert_eq!(a.key.fingerprint(), b.key.fingerprint());
                assert_eq!(a.key.totp_code(1), b.key.totp_code(1));
            }
            assert_eq!(a.scratch, b.scratch);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("verdicts differ: {a:?} / {b:?}"),
    }
});

/// The value of a top-level `secret = "..."` (or the first key's) when it is base32 that can be
/// told apart: long enough, with a letter hex cannot have (so no hash or
/// identifier printed in hex matches it by chance), and once in the input
/// (so a message quoting some other field does not count).
fn lone_secret(data: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(data).ok()?;
    let doc = toml::de::DeTable::parse(text).ok()?;
    let table = doc.get_ref();
    let first_key = || {
        let keys = table.get("keys")?.get_ref().as_array()?;
        keys.first()?.get_ref().get("secret")
    };
    let secret = table.get("secret").or_else(first_key)?.get_ref().as_str()?;
    let start = text.find(secret)?;
    let distinct = secret.len() >= 16
        && secret
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'2'..=b'7'))
        && secret
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && !b.is_ascii_hexdigit())
        && text.matches(secret).count() == 1;
    distinct.then(|| &text[start..start + secret.len()])
}
