//! The otpauth URI that enroll prints and draws as a QR code.
//!
//! - Build → parse gives back every part, for any issuer and account text
//!   (UTF-8, `%`, `&`, `?`, `#`, `+`...) and any valid parameters; the URI
//!   is printable ASCII without spaces. The builder refuses only what the
//!   Key Uri Format's label cannot hold (a colon, an account starting with
//!   a space).
//! - Parsing any text never panics; what it accepts is valid and survives
//!   build → parse unchanged.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use pam_totp::core::otp;
use pam_totp::core::otp::Algorithm;
use pam_totp::core::otp::{decode_base32, encode_base32};
use pam_totp::secret::otpauth;
use pam_totp::secret::otpauth::UriParts;

#[derive(Arbitrary, Debug)]
struct Parts {
    issuer: String,
    account: String,
    secret: Vec<u8>,
    algorithm: u8,
    digits: u8,
    period: u32,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        parse_any(text);
    }
    if let Ok(parts) = Parts::arbitrary_take_rest(Unstructured::new(data)) {
        build_then_parse(&parts);
    }
});

fn parse_any(text: &str) {
    let parsed = match otpauth::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(decode_base32(&parsed.secret).is_some());
    assert!(otp::check_digits(u64::from(parsed.digits)).is_ok());
    assert!(otp::check_period(parsed.period).is_ok());
    let built = otpauth::uri(&parsed.parts())
        .unwrap_or_else(|e| panic!("parsed, but does not build again: {e}"));
    let again = otpauth::parse(&built).unwrap_or_else(|e| panic!("{e}: {}", built.as_str()));
    assert_eq!(again, parsed);
}

fn build_then_parse(p: &Parts) {
    let mut secret = p.secret.clone();
    if secret.is_empty() {
        secret.push(0);
    }
    let secret = encode_base32(&secret);
    let parts = UriParts {
        issuer: &p.issuer,
        account: &p.account,
        secret: &secret,
        algorithm: [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
            [usize::from(p.algorithm % 3)],
        digits: 6 + p.digits % 3,
        period: u64::from(p.period % 86_400) + 1,
    };
    let uri = match otpauth::uri(&parts) {
        Ok(u) => u,
        Err(e) => {
            assert!(
                otpauth::check_label(&p.issuer, &p.account).is_err(),
                "refused a label it can hold: {e}"
            );
            assert!(
                p.issuer.contains(':') || p.account.contains(':') || p.account.starts_with(' ')
            );
            return;
        }
    };
    assert!(
        uri.bytes().all(|b| b.is_ascii_graphic()),
        "{}",
        uri.as_str()
    );
    let parsed = otpauth::parse(&uri).unwrap_or_else(|e| panic!("{e}: {}", uri.as_str()));
    assert_eq!(parsed.parts(), parts);
}
