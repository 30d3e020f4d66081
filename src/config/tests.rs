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
        &["enroll_by=2030-02-30"],
        &["enroll_by=tomorrow"],
        &["enroll_by"],
        &["enroll_at_login=yes"],
        &[
            "enroll_at_login",
            "secret_command=/usr/lib/pam-totp/secret-command",
            "secret_command_user=nobody",
        ],
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

/// A valid value for each key of the table, as pam.d text (the TOML value
/// is the same, typed). Every key must have one.
fn sample(key: &keys::Key) -> Option<&'static str> {
    Some(match key.name {
        "secret" => "/s/${USER}",
        "state_dir" => "/st",
        "window" => "2",
        "rate_limit" => "5/60",
        "require_group" => "wheel",
        "exempt_group" => "staff",
        "prompt" => "P: ",
        "host_key" => "/hk",
        "state" => "redis://127.0.0.1:6379/2",
        "state_credentials" => "/c",
        "state_ca" => "/ca",
        "state_prefix" => "p:",
        "state_timeout" => "250",
        "state_unavailable" => "local",
        "secret_command" => "/usr/lib/pam-totp/secret-command",
        "secret_command_user" => "nobody",
        "secret_command_timeout" => "500",
        "enroll_by" => "2030-01-01",
        "notify" => "/usr/lib/pam-totp/pam-totp-mail",
        "notify_user" => "nobody",
        "notify_timeout" => "1500",
        _ => return None,
    })
}

#[test]
fn every_key_means_the_same_in_pam_d_and_config_toml() {
    for key in keys::KEYS {
        let (arg, toml_line) = match key.kind {
            keys::Kind::Flag(_) => (key.name.to_owned(), format!("{} = true\n", key.name)),
            keys::Kind::Text(_) => {
                let v = sample(key).unwrap_or_else(|| panic!("no sample for {}", key.name));
                let mut quoted = String::new();
                crate::core::toml_doc::push_quoted(&mut quoted, v);
                (
                    format!("{}={v}", key.name),
                    format!("{} = {quoted}\n", key.name),
                )
            }
            keys::Kind::Int(..) => {
                let v = sample(key).unwrap_or_else(|| panic!("no sample for {}", key.name));
                (format!("{}={v}", key.name), format!("{} = {v}\n", key.name))
            }
        };
        // The secret_command keys only stand together, and so do the
        // notify keys: add the others.
        let companions: Vec<(&str, &str)> = [
            ("secret_command", "/usr/lib/pam-totp/secret-command"),
            ("secret_command_user", "nobody"),
            ("notify", "/usr/lib/pam-totp/pam-totp-mail"),
            ("notify_user", "nobody"),
        ]
        .into_iter()
        .filter(|(k, _)| {
            let group = |k: &str| k.split('_').next().unwrap_or(k).to_owned();
            (key.name.starts_with("secret_command") || key.name.starts_with("notify"))
                && group(k) == group(key.name)
                && *k != key.name
        })
        .collect();
        let extra_args: Vec<String> = companions.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line2: String = companions
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\"\n"))
            .collect();
        let pam_args: Vec<&str> = std::iter::once(arg.as_str())
            .chain(extra_args.iter().map(String::as_str))
            .collect();
        let toml_line = format!("{toml_line}{line2}");
        let from_arg = from_args(&args(&pam_args), &none).unwrap_or_else(|e| panic!("{arg}: {e}"));
        let read =
            |_: &Path| -> Result<Option<String>, ConfigFileError> { Ok(Some(toml_line.clone())) };
        let from_file = from_args(&[], &read).unwrap_or_else(|e| panic!("{toml_line}: {e}"));
        assert_eq!(from_arg, from_file, "{}", key.name);
        assert_ne!(
            from_arg,
            Settings::default(),
            "{} changes nothing",
            key.name
        );
    }
}

#[test]
fn keys_refuse_the_wrong_shape_in_either_source() {
    for key in keys::KEYS {
        let name = key.name;
        let (bad_arg, bad_toml) = match key.kind {
            keys::Kind::Flag(_) => (format!("{name}=1"), format!("{name} = \"yes\"\n")),
            keys::Kind::Text(_) => (name.to_owned(), format!("{name} = 1\n")),
            keys::Kind::Int(..) => (name.to_owned(), format!("{name} = \"1\"\n")),
        };
        assert!(from_args(&args(&[&bad_arg]), &none).is_err(), "{bad_arg}");
        let read =
            |_: &Path| -> Result<Option<String>, ConfigFileError> { Ok(Some(bad_toml.clone())) };
        let e = from_args(&[], &read).unwrap_err().to_string();
        // Names over 15 characters are not shown (logtext::safe_name).
        let want = match logtext::safe_name(name) {
            Some(n) => format!("line 1: wrong type of value ({n})"),
            None => "line 1: wrong type of value".to_owned(),
        };
        assert!(e.contains(&want), "{bad_toml}: {e}");
    }
}

#[test]
fn config_toml_problems_keep_their_words() {
    for (text, want) in [
        ("window = -1\n", "line 1: invalid value (window)"),
        ("window = 1.5\n", "line 1: wrong type of value (window)"),
        ("nullok = true\ncolour = 1\n", "line 2: unknown key (colour)"),
        ("config = \"/x\"\n", "line 1: unknown key (config)"),
        ("[window]\n", "line 1: wrong type of value (window)"),
        (
            "\nuse_first_pass = true\ntry_first_pass = true\n",
            "line 3: bad value for try_first_pass: try_first_pass and use_first_pass exclude each other",
        ),
        ("debug = true\nwindow = 11\n", "line 2: bad value for window"),
        ("window = 1\nwindow = 2\n", "line 2: duplicate key (window)"),
    ] {
        let read = |_: &Path| -> Result<Option<String>, ConfigFileError> { Ok(Some(text.into())) };
        let e = from_args(&[], &read).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    // One of the two, or false, is fine; pam.d takes the last one given.
    let read = |_: &Path| -> Result<Option<String>, ConfigFileError> {
        Ok(Some(
            "try_first_pass = false\nuse_first_pass = true\n".into(),
        ))
    };
    assert_eq!(from_args(&[], &read).unwrap().first_pass, FirstPass::Use);
    let s = from_args(&args(&["try_first_pass", "use_first_pass"]), &none).unwrap();
    assert_eq!(s.first_pass, FirstPass::Use);
}

#[test]
fn enroll_at_login_refuses_secret_command_in_either_source() {
    let e = from_args(
        &args(&[
            "enroll_at_login",
            "secret_command=/usr/lib/pam-totp/secret-command",
            "secret_command_user=nobody",
        ]),
        &none,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("enroll_at_login"), "{e}");
    let read = |_: &Path| -> Result<Option<String>, ConfigFileError> {
        Ok(Some(
            "enroll_at_login = true\nsecret_command = \"/x\"\nsecret_command_user = \"nobody\"\n"
                .into(),
        ))
    };
    assert!(from_args(&[], &read).is_err());
    let s = from_args(&args(&["enroll_at_login", "enroll_by=2030-01-01"]), &none).unwrap();
    assert!(s.enroll_at_login);
    assert_eq!(s.enroll_by.unwrap().to_string(), "2030-01-01");
    // A malformed date in config.toml names the line, never the value.
    let read = |_: &Path| -> Result<Option<String>, ConfigFileError> {
        Ok(Some("enroll_by = \"2030-13-01\"\n".into()))
    };
    let e = from_args(&[], &read).unwrap_err().to_string();
    assert!(e.contains("line 1: bad value for enroll_by"), "{e}");
    assert!(!e.contains("2030-13-01"), "{e}");
}
