//! Several keys (devices) per user, issue 15 item 3: `enroll --add`,
//! `remove-key` and `status` through the built tool, logins through the
//! real libpam (the `pam_client` example and the built module, see
//! tests/common), codes from oathtool. Files written before `[[keys]]`
//! existed (tests/data/keys) are still read.

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use cli_support::{run, Run, TestUser};
use common::*;

const A: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const B: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn secret_file(fx: &Fixture, user: &str) -> PathBuf {
    fx.path().join("secrets").join(user)
}

/// The tool with the fixture's config and `user`'s secret file in it.
fn tool(fx: &Fixture, user: &str, args: &[&str], stdin: &str) -> Run {
    let file = secret_file(fx, user);
    let cfg = fx.config();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--config",
        cfg.to_str().unwrap(),
        "--user",
        user,
        "--secret-file",
        file.to_str().unwrap(),
    ]);
    run(&all, stdin)
}

/// `enroll` with secret A, then `enroll --add phone` with secret B.
fn two_keys(fx: &Fixture, user: &str) {
    let r = tool(fx, user, &["enroll", "--no-confirm", "--secret", A], "");
    assert_eq!(r.code, 0, "{r:?}");
    let r = tool(
        fx,
        user,
        &["enroll", "--add", "phone", "--no-confirm", "--secret", B],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("added key \"phone\""), "{r:?}");
}

fn status(fx: &Fixture, user: &str) -> serde_json::Value {
    let state = fx.state_dir();
    tool(
        fx,
        user,
        &["status", "--json", "--state-dir", state.to_str().unwrap()],
        "",
    )
    .json()
}

fn login(fx: &Fixture, svc: &str, user: &str, code: &str) -> PamResult {
    fx.client(svc, user).answer(code).syslog().run()
}

#[test]
fn a_code_of_each_key_logs_in_and_each_key_spends_its_own_steps() {
    let user = TestUser::get("keys-two");
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    two_keys(&fx, &user.name);
    let text = fs::read_to_string(secret_file(&fx, &user.name)).unwrap();
    assert!(text.contains("[[keys]]\nname = \"default\""), "{text}");
    assert!(text.contains("[[keys]]\nname = \"phone\""), "{text}");

    avoid_step_edge(30, 4);
    let (code_a, code_b) = (
        oathtool_totp(A, "SHA1", 6, 30, 0),
        oathtool_totp(B, "SHA1", 6, 30, 0),
    );
    assert_ne!(code_a, code_b);
    // The same step of both keys: spending A's does not spend B's.
    let r = login(&fx, &svc, &user.name, &code_a);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains(" key=default"), "{r:?}");
    let r = login(&fx, &svc, &user.name, &code_b);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains(" key=phone"), "{r:?}");
    // Each is spent now, separately.
    for code in [&code_a, &code_b] {
        let r = login(&fx, &svc, &user.name, code);
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        assert!(
            r.only_module_line().contains("result=replayed-code"),
            "{r:?}"
        );
        assert!(!r.all_log_text().contains(A) && !r.all_log_text().contains(B));
    }
    let st = fx.state(&user.name).unwrap();
    assert_eq!(st["keys"].as_array().unwrap().len(), 2, "{st:?}");
    assert_eq!(status(&fx, &user.name)["failed_attempts"], 2);
    // And the other way round: B's next step first, then A's.
    let (next_a, next_b) = (
        oathtool_totp(A, "SHA1", 6, 30, 1),
        oathtool_totp(B, "SHA1", 6, 30, 1),
    );
    assert_eq!(login(&fx, &svc, &user.name, &next_b).result, "PAM_SUCCESS");
    assert_eq!(login(&fx, &svc, &user.name, &next_a).result, "PAM_SUCCESS");
}

#[test]
fn the_same_code_on_two_keys_is_accepted_once() {
    // The same device added twice: its code matches both keys.
    let user = TestUser::get("keys-same");
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    let r = tool(
        &fx,
        &user.name,
        &["enroll", "--no-confirm", "--secret", A],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = tool(
        &fx,
        &user.name,
        &["enroll", "--add", "again", "--no-confirm", "--secret", A],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    avoid_step_edge(30, 4);
    let code = oathtool_totp(A, "SHA1", 6, 30, 0);
    assert_eq!(login(&fx, &svc, &user.name, &code).result, "PAM_SUCCESS");
    let r = login(&fx, &svc, &user.name, &code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(status(&fx, &user.name)["failed_attempts"], 1);
}

#[test]
fn after_remove_key_its_codes_fail_and_the_last_key_stays() {
    let user = TestUser::get("keys-remove");
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    two_keys(&fx, &user.name);
    let file = secret_file(&fx, &user.name);

    let before = fs::read(&file).unwrap();
    tool(&fx, &user.name, &["remove-key", "tablet"], "").bad_input("has no key named \"tablet\"");
    tool(&fx, &user.name, &["remove-key", "bad/name"], "").bad_input("a key name is 1 to 32");
    assert_eq!(fs::read(&file).unwrap(), before, "nothing written");

    let r = tool(&fx, &user.name, &["remove-key", "phone"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("removed key \"phone\""), "{r:?}");
    assert_eq!(owner_mode(&file), (0, 0o600));
    // One key named default is written as today's single-key layout.
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with(&format!("version = 1\nsecret = \"{A}\"\n")),
        "{text}"
    );

    avoid_step_edge(30, 4);
    let r = login(&fx, &svc, &user.name, &oathtool_totp(B, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_AUTH_ERR", "the removed key: {r:?}");
    assert!(r.only_module_line().contains("result=wrong-code"), "{r:?}");
    let r = login(&fx, &svc, &user.name, &oathtool_totp(A, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    let before = fs::read(&file).unwrap();
    tool(&fx, &user.name, &["remove-key", "default"], "")
        .bad_input("\"default\" is pamtotp-keys-remove's last key; to remove the enrollment, use `pam-totp disable`");
    assert_eq!(fs::read(&file).unwrap(), before, "nothing written");
}

#[test]
fn enroll_add_refuses_a_duplicate_a_google_file_and_no_enrollment() {
    let user = TestUser::get("keys-refuse");
    let fx = Fixture::new();
    let file = secret_file(&fx, &user.name);
    let add = |name: &str| {
        tool(
            &fx,
            &user.name,
            &["enroll", "--add", name, "--no-confirm", "--secret", B],
            "",
        )
    };
    add("phone").bad_input("is not enrolled");
    assert!(!file.exists());

    two_keys(&fx, &user.name);
    let before = fs::read(&file).unwrap();
    add("phone").bad_input("already has a key named \"phone\"");
    add("default").bad_input("already has a key named \"default\"");
    add("a b").bad_input("a key name is 1 to 32");
    tool(
        &fx,
        &user.name,
        &["enroll", "--add", "t", "--no-confirm", "--digits", "8"],
        "",
    )
    .bad_input("the keys of a secret file have the same number of digits: 6 here, not 8");
    assert_eq!(fs::read(&file).unwrap(), before, "nothing written");

    fs::write(&file, format!("{A}\n\" TOTP_AUTH\n")).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&file).unwrap();
    add("phone").bad_input("Google Authenticator's format, which holds one key");
    tool(&fx, &user.name, &["remove-key", "default"], "")
        .bad_input("Google Authenticator's format, which holds one key");
    assert_eq!(fs::read(&file).unwrap(), before, "nothing written");
}

#[test]
fn enroll_add_asks_for_a_code_of_the_new_device_and_spends_it() {
    let user = TestUser::get("keys-confirm");
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    let r = tool(
        &fx,
        &user.name,
        &["enroll", "--no-confirm", "--secret", A],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let file = secret_file(&fx, &user.name);
    // The tool spends the confirmed step in the config file's state_dir.
    let state = fx.state_dir();
    let cfg = fs::read_to_string(fx.config()).unwrap();
    fs::write(
        fx.config(),
        format!("{cfg}state_dir = \"{}\"\n", state.display()),
    )
    .unwrap();
    let add = |stdin: &str| {
        tool(
            &fx,
            &user.name,
            &["enroll", "--add", "phone", "--secret", B, "--qr", "none"],
            stdin,
        )
    };
    avoid_step_edge(30, 6);
    // A code of the other key is no confirmation: nothing is written.
    let before = fs::read(&file).unwrap();
    let r = add(&format!("{}\n", oathtool_totp(A, "SHA1", 6, 30, 0)));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(fs::read(&file).unwrap(), before, "nothing written");

    let code = oathtool_totp(B, "SHA1", 6, 30, 0);
    let r = add(&format!("{code}\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Code accepted."), "{r:?}");
    assert!(state.join(&user.name).exists());
    // The confirmation code cannot also log in; the next one does.
    let r = login(&fx, &svc, &user.name, &code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.only_module_line().contains("result=replayed-code"),
        "{r:?}"
    );
    let r = login(&fx, &svc, &user.name, &oathtool_totp(B, "SHA1", 6, 30, 1));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn status_lists_the_keys_and_never_a_secret() {
    let user = TestUser::get("keys-status");
    let fx = Fixture::new();
    two_keys(&fx, &user.name);
    let r = tool(
        &fx,
        &user.name,
        &[
            "enroll",
            "--add",
            "token",
            "--no-confirm",
            "--algorithm",
            "SHA256",
            "--period",
            "60",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let s = status(&fx, &user.name);
    assert_eq!(
        s["keys"],
        serde_json::json!([
            {"name": "default", "algorithm": "SHA1", "digits": 6, "period": 30, "sealed": false},
            {"name": "phone", "algorithm": "SHA1", "digits": 6, "period": 30, "sealed": false},
            {"name": "token", "algorithm": "SHA256", "digits": 6, "period": 60, "sealed": false},
        ])
    );
    // The fields of one key are the first key's, as before.
    assert_eq!(
        (&s["algorithm"], &s["period"]),
        (&"SHA1".into(), &30.into())
    );
    let state = fx.state_dir();
    let r = tool(
        &fx,
        &user.name,
        &["status", "--state-dir", state.to_str().unwrap()],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("key phone:               SHA1, 6 digits, period 30, not sealed\n"),
        "{r:?}"
    );
    assert!(r
        .stdout
        .contains("key token:               SHA256, 6 digits, period 60"));
    let json = serde_json::to_string(&s).unwrap();
    for secret in [A, B] {
        assert!(!r.stdout.contains(secret) && !json.contains(secret));
    }
}

/// The fixture's host key pair: the test pair of tests/data/keys.
fn install_test_host_key(fx: &Fixture) {
    for (name, mode) in [("host.key", 0o600), ("host.pub", 0o644)] {
        let to = fx.path().join(name);
        fs::copy(data(name), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keys")
        .join(name)
}

#[test]
fn files_in_todays_single_key_layout_are_still_read() {
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    let text = fs::read_to_string(data("single-key.toml")).unwrap();
    fx.secret_file("root", &text);
    avoid_step_edge(30, 4);
    let r = login(&fx, &svc, "root", &oathtool_totp(A, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // A single-key file's audit line is as it was: no key name.
    assert!(!r.only_module_line().contains("key="), "{r:?}");
    let r = login(&fx, &svc, "root", "60370847");
    assert_eq!(r.result, "PAM_SUCCESS", "scratch code: {r:?}");
    let s = status(&fx, "root");
    assert_eq!(
        s["keys"],
        serde_json::json!([{"name": "default", "algorithm": "SHA1", "digits": 6, "period": 30, "sealed": false}])
    );

    // Sealed: opened with the host key, and a key added to it.
    install_test_host_key(&fx);
    let text = fs::read_to_string(data("single-key-sealed.toml")).unwrap();
    fx.secret_file("root", &text);
    let r = login(&fx, &svc, "root", &oathtool_totp(B, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = tool(
        &fx,
        "root",
        &["enroll", "--add", "phone", "--no-confirm", "--secret", A],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let written = fs::read_to_string(secret_file(&fx, "root")).unwrap();
    assert_eq!(
        written
            .matches("sealed_secret = \"v1:fc53fef7c88ef984:")
            .count(),
        2,
        "{written}"
    );
    assert!(!written.contains(A) && !written.contains(B), "{written}");
    assert_eq!(
        status(&fx, "root")["keys"],
        serde_json::json!([
            {"name": "default", "algorithm": "SHA1", "digits": 6, "period": 30, "sealed": true},
            {"name": "phone", "algorithm": "SHA1", "digits": 6, "period": 30, "sealed": true},
        ])
    );
    let r = login(&fx, &svc, "root", &oathtool_totp(A, "SHA1", 6, 30, 1));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = login(&fx, &svc, "root", &oathtool_totp(B, "SHA1", 6, 30, 1));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

fn owner_mode(p: &std::path::Path) -> (u32, u32) {
    cli_support::owner_mode(p)
}

#[test]
fn host_key_rotate_reseals_every_key_of_a_file() {
    let fx = Fixture::new();
    let svc = fx.module_service("keys", "rate_limit=100/60");
    install_test_host_key(&fx);
    // No home holds a file of this template: rotate looks at secrets/ only.
    let cfg = fs::read_to_string(fx.config()).unwrap();
    let nowhere = fx.path().join("nowhere");
    fs::write(
        fx.config(),
        format!("{cfg}secret = \"{}/${{USER}}\"\n", nowhere.display()),
    )
    .unwrap();
    let text = fs::read_to_string(data("single-key-sealed.toml")).unwrap();
    fx.secret_file("root", &text);
    let r = tool(
        &fx,
        "root",
        &["enroll", "--add", "phone", "--no-confirm", "--secret", A],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");

    let pam_dir = fx.path().join("no-pam.d");
    fs::create_dir(&pam_dir).unwrap();
    let secrets = fx.path().join("secrets");
    let cfg = fx.config();
    let r = run(
        &[
            "host-key",
            "rotate",
            "--config",
            cfg.to_str().unwrap(),
            "--secret-dir",
            secrets.to_str().unwrap(),
            "--pam-dir",
            pam_dir.to_str().unwrap(),
            "--drop-old-key",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let id = pam_totp::secret::seal::load_public_key(&fx.path().join("host.key"))
        .unwrap()
        .id();
    assert_ne!(id, "fc53fef7c88ef984");
    let written = fs::read_to_string(secret_file(&fx, "root")).unwrap();
    assert_eq!(
        written
            .matches(&format!("sealed_secret = \"v1:{id}:"))
            .count(),
        2,
        "{written}"
    );
    avoid_step_edge(30, 4);
    for secret in [A, B] {
        let r = login(&fx, &svc, "root", &oathtool_totp(secret, "SHA1", 6, 30, 0));
        assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    }
}

#[test]
fn a_user_adds_and_removes_keys_of_their_own_file_only() {
    let user = TestUser::get("keys-self");
    let sb = cli_support::Sandbox::new("");
    let cfg = sb.config();
    let as_user = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", &cfg]);
        cli_support::run_as(&user, &all, "")
    };
    let r = as_user(&["enroll", "--no-confirm", "--secret", A]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = as_user(&["enroll", "--add", "phone", "--no-confirm", "--secret", B]);
    assert_eq!(r.code, 0, "{r:?}");
    let file = user.secret_path();
    assert_eq!(cli_support::owner_mode(&file), (user.uid, 0o600));
    assert!(fs::read_to_string(&file)
        .unwrap()
        .contains("name = \"phone\""));
    // Only root may name another user.
    as_user(&["remove-key", "phone", "--user", "root"])
        .bad_input("only root may name another user");
    as_user(&["enroll", "--add", "x", "--no-confirm", "--user", "root"])
        .bad_input("only root may name another user");
    let r = as_user(&["remove-key", "phone"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(cli_support::owner_mode(&file), (user.uid, 0o600));
    assert!(!fs::read_to_string(&file).unwrap().contains("phone"));
}
