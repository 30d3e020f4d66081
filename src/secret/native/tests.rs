use super::*;
use crate::secret::file::{parse, parse_with};

const A: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const B: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn two_keys() -> String {
    format!(
        "version = 1\n\n[[keys]]\nname = \"phone\"\nsecret = \"{A}\"\n\n\
         [[keys]]\nname = \"token-2\"\nsecret = \"{B}\"\nalgorithm = \"SHA256\"\nperiod = 60\n"
    )
}

#[test]
fn a_file_holds_several_named_keys() {
    let e = parse(two_keys().as_bytes()).unwrap();
    let names: Vec<_> = e.keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["phone", "token-2"]);
    assert_eq!(e.keys[1].key.algorithm(), Algorithm::Sha256);
    assert_eq!(e.keys[1].key.period(), 60);
    assert_eq!(e.keys[1].key.digits(), 6);
    assert_ne!(e.keys[0].key.fingerprint(), e.keys[1].key.fingerprint());
    // Written back in the same layout, and read back the same.
    let file = SecretFile::parse(two_keys().as_bytes()).unwrap();
    let text = file.to_toml().unwrap();
    assert!(
        text.starts_with("version = 1\nscratch_codes = []\n\n[[keys]]\nname = \"phone\"\n"),
        "{}",
        text.as_str()
    );
    let again = parse(text.as_bytes()).unwrap();
    assert_eq!(again.keys.len(), 2);
    assert_eq!(again.keys[1].name, "token-2");
    assert_eq!(again.keys[1].key.fingerprint(), e.keys[1].key.fingerprint());
}

#[test]
fn a_single_key_file_is_one_key_named_default_and_stays_in_its_layout() {
    let text = format!("version = 1\nsecret = \"{A}\"\nscratch_codes = []\n");
    let e = parse(text.as_bytes()).unwrap();
    assert_eq!(e.keys.len(), 1);
    assert_eq!(e.keys[0].name, DEFAULT_KEY_NAME);
    let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
    let written = SecretFile::new(b"12345678901234567890", &key, &[])
        .to_toml()
        .unwrap();
    assert_eq!(
        written.as_str(),
        format!(
            "version = 1\nsecret = \"{A}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n\
             scratch_codes = []\n"
        )
    );
    // One key named otherwise is written as [[keys]].
    let mut file = SecretFile::parse(written.as_bytes()).unwrap();
    file.keys[0].name = "phone".into();
    assert!(file
        .to_toml()
        .unwrap()
        .contains("[[keys]]\nname = \"phone\""));
}

#[test]
fn malformed_key_lists_are_refused_without_showing_a_secret() {
    let key = |name: &str, extra: &str| {
        format!("\n[[keys]]\nname = \"{name}\"\nsecret = \"{A}\"\n{extra}")
    };
    let cases = [
        (
            format!("version = 1\nsecret = \"{B}\"\n{}", key("a", "")),
            "both a top-level secret",
        ),
        (
            format!("version = 1\ndigits = 8\n{}", key("a", "")),
            "both a top-level secret",
        ),
        (
            format!("version = 1\n{}{}", key("a", ""), key("a", "")),
            "two keys named \"a\"",
        ),
        (
            format!("version = 1\n{}{}", key("a", ""), key("b c", "")),
            "key 2: a name is 1 to 32",
        ),
        (format!("version = 1\n{}", key("", "")), "key 1: a name"),
        (
            format!("version = 1\n{}", key(&"x".repeat(33), "")),
            "key 1: a name",
        ),
        (
            format!("version = 1\n{}{}", key("a", ""), key("b", "digits = 8\n")),
            "different numbers of digits",
        ),
        (
            format!("version = 1\n{}{}", key("a", ""), key("b", "period = 0\n")),
            "key \"b\": period 0",
        ),
        (
            format!("version = 1\n{}{}", key("a", ""), key("b", "colour = 1\n")),
            "malformed TOML",
        ),
        ("version = 1\nkeys = []\n".to_owned(), "no secret"),
        (
            format!(
                "version = 1\n{}",
                (0..=MAX_FILE_KEYS)
                    .map(|i| key(&format!("k{i}"), ""))
                    .collect::<String>()
            ),
            "17 keys (at most 16)",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains(&A[..16]) && !err.contains(&B[..16]), "{err}");
    }
    // Names allowed: letters, digits, dot, underscore, dash.
    assert!(valid_key_name("Phone_2.backup-x"));
    assert!(!valid_key_name("ph\u{e9}ne") && !valid_key_name("a/b") && !valid_key_name("a\"b"));
}

#[test]
fn sealing_seals_every_key() {
    let host = seal::HostSecretKey::generate().unwrap();
    let mut file = SecretFile::parse(two_keys().as_bytes()).unwrap();
    file.seal(&host.public(), "alice").unwrap();
    let text = file.to_toml().unwrap();
    assert_eq!(text.matches("sealed_secret = \"v1:").count(), 2);
    assert!(!text.contains(A) && !text.contains(B));
    assert!(matches!(parse(text.as_bytes()), Err(FormatError::Sealed)));
    let keys = [host];
    let unseal = |s: &str| seal::open(&keys, "alice", s);
    let e = parse_with(text.as_bytes(), Some(&unseal)).unwrap();
    let plain = parse(two_keys().as_bytes()).unwrap();
    for (a, b) in e.keys.iter().zip(&plain.keys) {
        assert_eq!(a.key.fingerprint(), b.key.fingerprint());
        assert!(a.sealed && !b.sealed);
    }
}

#[test]
fn several_keys_keep_the_layout_the_toml_serializer_gave_them() {
    let mut file = SecretFile::parse(two_keys().as_bytes()).unwrap();
    file.scratch_codes = vec!["s1".into(), "s2".into()];
    file.keys[1].sealed_secret = file.keys[1].secret.take();
    // What `toml::to_string` wrote before the module wrote the file itself.
    assert_eq!(
        file.to_toml().unwrap().as_str(),
        format!(
            "version = 1\nscratch_codes = [\"s1\", \"s2\"]\n\
             \n[[keys]]\nname = \"phone\"\nsecret = \"{A}\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n\
             \n[[keys]]\nname = \"token-2\"\nsealed_secret = \"{B}\"\nalgorithm = \"SHA256\"\ndigits = 6\nperiod = 60\n"
        )
    );
}

#[test]
fn awkward_strings_read_back_as_written() {
    for s in [
        "q\"uote",
        "back\\slash",
        "new\nline",
        "\u{0}\u{1f}\u{7f}",
        "漢字🙂",
        "'''",
        "a = 1",
    ] {
        let mut file = SecretFile::parse(two_keys().as_bytes()).unwrap();
        file.scratch_codes = vec![s.to_owned(), "x".into()];
        file.keys[1].secret = None;
        file.keys[1].sealed_secret = Some(s.to_owned());
        let text = file.to_toml().unwrap();
        let again = SecretFile::parse(text.as_bytes()).unwrap();
        assert_eq!(again.scratch_codes, file.scratch_codes, "{}", text.as_str());
        assert_eq!(again.keys[1].sealed_secret.as_deref(), Some(s));
        assert_eq!(again.keys[0].secret.as_deref(), Some(A));
        assert_eq!(again.keys.len(), 2);
    }
}

#[test]
fn fields_of_the_wrong_type_or_unknown_are_refused_by_line_and_key() {
    for (text, want) in [
        (
            format!("version = 1\nsecret = \"{A}\"\ndigits = \"6\"\n"),
            "line 3: wrong type of value (digits)",
        ),
        (
            format!("version = 1\nsecret = \"{A}\"\nperiod = -30\n"),
            "line 3: invalid value (period)",
        ),
        (
            format!("version = 1\nsecret = \"{A}\"\ncolour = 1\n"),
            "line 3: unknown key (colour)",
        ),
        (format!("secret = \"{A}\"\n"), "missing key version"),
        (
            format!("version = 1\n\n[[keys]]\nsecret = \"{A}\"\n"),
            "missing key name",
        ),
        (
            "version = 1\n\n[[keys]]\nname = \"a\"\nsecret = 5\n".to_owned(),
            "line 5: wrong type of value (secret)",
        ),
        (
            format!("version = 1\nsecret = \"{A}\"\nscratch_codes = [1]\n"),
            "line 3: wrong type of value (scratch_codes)",
        ),
        (
            format!("version = 1\nkeys = \"{A}\"\n"),
            "line 2: wrong type of value (keys)",
        ),
    ] {
        let err = SecretFile::parse(text.as_bytes())
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains(want), "{text}: {err}");
        assert!(!err.contains(&A[..16]), "{err}");
    }
}
