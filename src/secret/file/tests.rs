use super::*;
use crate::core::otp::{Algorithm, OtpKey, ParamError};
use crate::core::scratch::ScratchHash;
use crate::secret::enrollment::SerializeError;
use crate::secret::seal;

#[test]
fn parses_minimal_file() {
    let e = parse(b"version = 1\nsecret = \"jbsw y3dp ehpk 3pxp====\"\n").unwrap();
    assert_eq!(e.first_key().digits(), 6);
    assert_eq!(e.first_key().period(), 30);
    assert_eq!(e.first_key().algorithm(), Algorithm::Sha1);
    assert!(e.scratch.is_empty());
}

#[test]
fn rejects_bad_files() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "malformed TOML"),
        (b"\xff\xfe", "not UTF-8"),
        (
            b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\ndigits = 12\n",
            "digits 12",
        ),
        (
            b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\nperiod = 0\n",
            "period 0",
        ),
        (
            b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\nalgorithm = \"MD5\"\n",
            "unknown algorithm",
        ),
        (b"version = 1\nsecret = \"JBSWY3DP!!\"\n", "base32"),
        (b"version = 1\nsecret = \"JBSW", "malformed TOML"),
        (b"version = 2\nsecret = \"JBSWY3DPEHPK3PXP\"\n", "version 2"),
        (b"version = 1\n", "no secret"),
        (
            b"version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\ncolour = 1\n",
            "malformed TOML",
        ),
        (b"version = 1\nsecret = \"JBSWY3DP\"\n", "secret is 5 bytes"),
    ];
    for (bytes, want) in cases {
        let err = parse(bytes).unwrap_err().to_string();
        assert!(
            err.contains(want),
            "{:?}: {err}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn errors_name_the_line_and_key_never_the_value() {
    // A secret pasted into the wrong key, or a malformed line around it.
    const S: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    for (text, want) in [
        (
            format!("version = 1\nsecret = \"{S}\"\nalgorithm = \"{S}\"\n"),
            "line 3: unknown algorithm",
        ),
        (
            format!("version = 1\nsecret = \"{S}\"\ndigits = \"{S}\"\n"),
            "malformed TOML: line 3: wrong type of value (digits)",
        ),
        (
            format!("version = 1\nsecret = \"{S}\"\n{S} = 1\n"),
            "malformed TOML: line 3: unknown key",
        ),
        (
            format!("version = 1\nsecret = \"{S}\"\nperiod = 0\n"),
            "line 3: period 0 is out of range",
        ),
        (
            format!("version = 1\nalgorithm = \"SHA1\"\nsecret = \"{S}!\"\n"),
            "line 3: secret is not valid base32",
        ),
        (
            format!("version = 1\nsecret = \"{S}\nperiod = 30\n"),
            "malformed TOML: line 2: not valid TOML (secret)",
        ),
    ] {
        let err = parse(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains(&S[..16]), "the value in {err}");
    }
}

#[test]
fn sealing_replaces_the_secret() {
    let secret = b"12345678901234567890";
    let key = OtpKey::new(secret, Algorithm::Sha1, 6, 30).unwrap();
    let host = seal::HostSecretKey::generate().unwrap();
    let mut file = SecretFile::new(secret, &key, &[ScratchHash::new("12345678", [1; 16])]);
    file.seal(&host.public(), "alice").unwrap();
    let text = file.to_toml().unwrap();
    assert!(!text.contains("\nsecret = "), "{}", text.as_str());
    assert!(text.contains("sealed_secret = \"v1:"));
    assert!(text.contains("scratch_codes = [\"pbkdf2"));
    assert!(matches!(parse(text.as_bytes()), Err(FormatError::Sealed)));
    let keys = [host];
    let unseal = |s: &str| seal::open(&keys, "alice", s);
    let e = parse_with(text.as_bytes(), Some(&unseal)).unwrap();
    assert_eq!(e.first_key().totp_code(1), key.totp_code(1));
    // Sealing again changes nothing.
    let before = file.keys[0].sealed_secret.clone();
    file.seal(&keys[0].public(), "alice").unwrap();
    assert_eq!(file.keys[0].sealed_secret, before);
}

#[test]
fn round_trip() {
    let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha256, 8, 60).unwrap();
    let file = SecretFile::new(
        b"12345678901234567890",
        &key,
        &[ScratchHash::new("12345678", [1; 16])],
    );
    let e = parse(file.to_toml().unwrap().as_bytes()).unwrap();
    assert_eq!(e.first_key().algorithm(), Algorithm::Sha256);
    assert_eq!(e.first_key().digits(), 8);
    assert_eq!(e.first_key().period(), 60);
    assert!(e.scratch[0].matches("12345678"));
}

#[test]
fn to_toml_fails_rather_than_writing_nothing() {
    // TOML integers are signed 64-bit: a period past i64::MAX cannot be
    // written so that it reads back. That is an error, not an empty or
    // unreadable file.
    let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
    let mut file = SecretFile::new(b"12345678901234567890", &key, &[]);
    file.keys[0].period = u64::MAX;
    assert_eq!(
        file.to_toml().map(|t| t.to_string()),
        Err(SerializeError(FormatError::Param(ParamError::Period(
            u64::MAX
        ))))
    );
    file.keys[0].period = 0;
    assert!(file.to_toml().is_err());
    file.keys[0].period = 30;
    file.keys[0].secret = None;
    assert_eq!(
        file.to_toml().map(|t| t.to_string()),
        Err(SerializeError(FormatError::NoSecret))
    );
    file.keys[0].secret = Some("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
    assert!(file.to_toml().unwrap().contains("period = 30"));
}
