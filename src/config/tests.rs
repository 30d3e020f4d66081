use super::*;

fn none(_: &Path) -> Result<Option<String>, ConfigFileError> {
    Ok(None)
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn defaults() {
    let s = from_args(&[], &none).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.prompt(), DEFAULT_PROMPT);
}

#[test]
fn arguments_override_file() {
    let read = |_: &Path| -> Result<Option<String>, ConfigFileError> {
        Ok(Some(
            "window = 2\nnullok = true\nrate_limit = \"5/60\"\n".into(),
        ))
    };
    let s = from_args(&args(&["window=3", "config=/x.toml"]), &read).unwrap();
    assert_eq!(s.policy.window, 3);
    assert!(s.nullok);
    assert_eq!(
        s.policy.rate_limit,
        RateLimit {
            max_failures: 5,
            seconds: 60
        }
    );
}

#[test]
fn errors() {
    for bad in [
        &["frobnicate"][..],
        &["window=x"],
        &["window=11"],
        &["rate_limit=3"],
        &["rate_limit=0/30"],
        &["rate_limit=3/0"],
        &["nullok=yes"],
        &["secret="],
        &["secret=relative/path"],
        &["secret=/x/${SHELL}"],
        &["state_dir=state"],
        &["config"],
        &["config=/missing.toml"],
        &["forward_pass", "use_first_pass"],
        &["require_group="],
    ] {
        assert!(from_args(&args(bad), &none).is_err(), "{bad:?}");
    }
}

#[test]
fn errors_never_show_a_value() {
    const S: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    for (bad, want) in [
        (vec![S.to_owned()], "unknown argument 1 (not shown)"),
        (
            vec!["debug".into(), format!("{S}=1")],
            "unknown argument 2 (not shown)",
        ),
        (vec!["nulok".into()], "unknown argument nulok (argument 1)"),
        (
            vec![format!("window={S}")],
            "bad value for window: the value is not a number",
        ),
        (
            vec![format!("rate_limit={S}")],
            "bad value for rate_limit: the value is not N/SECONDS",
        ),
        (
            vec![format!("require_group=a {S}")],
            "the value is not a group name",
        ),
        (
            vec![format!("secret={S}")],
            "the secret path is not absolute",
        ),
        (
            vec![format!("secret=/x/${{{S}}}")],
            "may use only ${USER} and ${HOME}",
        ),
    ] {
        let e = from_args(&bad, &none).unwrap_err().to_string();
        assert!(e.contains(want), "{bad:?}: {e}");
        assert!(!e.contains(S), "{bad:?}: {e}");
    }
    for (text, want) in [
        (
            format!("window = \"{S}\"\n"),
            "line 1: wrong type of value (window)",
        ),
        (format!("nullok = true\n{S} = 1\n"), "line 2: unknown key"),
        (
            format!("nullok = true\nrate_limit = \"{S}\"\n"),
            "line 2: bad value for rate_limit",
        ),
        (
            format!("prompt = \"{S}\n"),
            "line 1: not valid TOML (prompt)",
        ),
    ] {
        let read = |_: &Path| -> Result<Option<String>, ConfigFileError> { Ok(Some(text.clone())) };
        let e = from_args(&[], &read).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
        assert!(!e.contains(S), "{text}: {e}");
    }
}

#[test]
fn expansion() {
    let u = UserInfo {
        name: "alice".into(),
        uid: 1,
        gid: 1,
        home: "/home/alice".into(),
    };
    assert_eq!(
        expand_secret("~/.pam_totp", &u).unwrap(),
        Path::new("/home/alice/.pam_totp")
    );
    assert_eq!(
        expand_secret("/var/lib/pam-totp/secrets/${USER}", &u).unwrap(),
        Path::new("/var/lib/pam-totp/secrets/alice")
    );
    assert_eq!(
        expand_secret("${HOME}/.t", &u).unwrap(),
        Path::new("/home/alice/.t")
    );
}
