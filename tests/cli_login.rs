//! End to end: what `pam-totp` writes and reports, against real logins
//! through libpam (the `pam_client` example with the built module, see
//! tests/common). Codes come from oathtool, never from the code under test.

mod cli_support;
mod common;
mod ns_support;

use std::fs;

use cli_support::{run, TestUser};
use common::*;

/// Enrolls `user` into the fixture's secrets/ directory, the path its
/// `module_service` reads; returns `enroll --json`'s object.
fn enroll(fx: &Fixture, user: &str, extra: &[&str]) -> serde_json::Value {
    let file = fx.path().join("secrets").join(user);
    let file = file.to_str().unwrap();
    let cfg = fx.config();
    let mut args = vec![
        "enroll",
        "--config",
        cfg.to_str().unwrap(),
        "--user",
        user,
        "--secret-file",
        file,
        "--no-confirm",
        "--json",
    ];
    args.extend_from_slice(extra);
    run(&args, "").json()
}

fn status(fx: &Fixture, user: &str) -> serde_json::Value {
    let file = fx.path().join("secrets").join(user);
    run(
        &[
            "status",
            "--config",
            fx.config().to_str().unwrap(),
            "--user",
            user,
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            fx.state_dir().to_str().unwrap(),
            "--json",
        ],
        "",
    )
    .json()
}

fn admin(fx: &Fixture, sub: &str, user: &str) -> cli_support::Run {
    let file = fx.path().join("secrets").join(user);
    let cfg = fx.config();
    let mut args = vec![sub, "--config", cfg.to_str().unwrap(), "--user", user];
    if sub == "disable" {
        args.extend(["--secret-file", file.to_str().unwrap()]);
    }
    let state = fx.state_dir();
    args.extend(["--state-dir", state.to_str().unwrap()]);
    run(&args, "")
}

/// A six-digit code no step near now has.
fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = (-2..=2)
        .map(|o| oathtool_totp(secret, "SHA1", 6, 30, o))
        .collect();
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .to_owned()
}

#[test]
fn enrolled_secret_logs_in_with_an_oathtool_code() {
    let user = TestUser::get("cli-login");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &[]);
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(v["user"], user.name.as_str());

    avoid_step_edge(30, 3);
    let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // Replaying it fails, and status counts that failure.
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let s = status(&fx, &user.name);
    assert_eq!(s["enrolled"], true);
    assert_eq!(s["failed_attempts"], 1);
    assert_eq!(s["locked"], false);
    assert_eq!(s["scratch_codes_remaining"], 5);
}

#[test]
fn non_default_parameters_log_in() {
    let user = TestUser::get("cli-params");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(
        &fx,
        &user.name,
        &["--algorithm", "SHA512", "--digits", "8", "--period", "60"],
    );
    let secret = v["secret"].as_str().unwrap();
    assert!(v["otpauth_uri"]
        .as_str()
        .unwrap()
        .ends_with("&algorithm=SHA512&digits=8&period=60"));
    avoid_step_edge(60, 3);
    let code = oathtool_totp(secret, "SHA512", 8, 60, 0);
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let s = status(&fx, &user.name);
    assert_eq!(
        (&s["algorithm"], &s["digits"], &s["period"]),
        (&"SHA512".into(), &8.into(), &60.into())
    );
}

#[test]
fn a_scratch_code_works_once_and_regeneration_replaces_them() {
    let user = TestUser::get("cli-scratch");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &["--scratch-codes", "3"]);
    let codes: Vec<&str> = v["scratch_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 3);

    let r = fx.client(&svc, &user.name).answer(codes[0]).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = fx.client(&svc, &user.name).answer(codes[0]).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "used twice: {r:?}");
    assert_eq!(status(&fx, &user.name)["scratch_codes_remaining"], 2);

    // Regenerate: the old unused codes stop working, the new ones work.
    let file = fx.path().join("secrets").join(&user.name);
    let secret_before = fs::read_to_string(&file).unwrap();
    let r = run(
        &[
            "scratch-codes",
            "--regenerate",
            "--user",
            &user.name,
            "--secret-file",
            file.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    let n = r.json();
    assert_eq!(
        n.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["scratch_codes", "secret_file", "user"]
    );
    let new: Vec<&str> = n["scratch_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(new.len(), 5);
    let after = fs::read_to_string(&file).unwrap();
    assert_eq!(
        secret_before.lines().find(|l| l.starts_with("secret =")),
        after.lines().find(|l| l.starts_with("secret =")),
        "the secret is kept"
    );
    assert_eq!(status(&fx, &user.name)["scratch_codes_remaining"], 5);
    let r = fx.client(&svc, &user.name).answer(codes[1]).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "old code: {r:?}");
    let r = fx.client(&svc, &user.name).answer(new[4]).run();
    assert_eq!(r.result, "PAM_SUCCESS", "new code: {r:?}");
    assert_eq!(status(&fx, &user.name)["scratch_codes_remaining"], 4);
}

#[test]
fn thirty_concurrent_failures_are_counted_exactly_and_reset_clears_them() {
    let user = TestUser::get("cli-lockout");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &[]);
    let secret = v["secret"].as_str().unwrap().to_owned();
    let wrong = wrong_code(&secret);

    let runs = (0..30)
        .map(|_| fx.client(&svc, &user.name).answer(&wrong))
        .collect();
    let results = release_together(fx.path(), runs);
    assert!(results.iter().all(|r| r.result == "PAM_AUTH_ERR"));

    let s = status(&fx, &user.name);
    assert_eq!(s["failed_attempts"], 30, "{s}");
    assert_eq!(s["locked"], true, "{s}");
    // The human form says the same.
    let r = run(
        &[
            "status",
            "--config",
            fx.config().to_str().unwrap(),
            "--user",
            &user.name,
            "--secret-file",
            fx.path().join("secrets").join(&user.name).to_str().unwrap(),
            "--state-dir",
            fx.state_dir().to_str().unwrap(),
        ],
        "",
    );
    assert!(r.stdout.contains("failed_attempts:         30\n"), "{r:?}");
    assert!(r.stdout.contains("locked:                  yes\n"), "{r:?}");

    // Locked: even the right code is refused (and counted).
    avoid_step_edge(30, 3);
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(status(&fx, &user.name)["failed_attempts"], 31);

    let r = admin(&fx, "reset", &user.name);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        format!(
            "pam-totp: reset {}: 31 failed attempts cleared, not locked out; the secret file is unchanged\n",
            user.name
        )
    );
    let s = status(&fx, &user.name);
    assert_eq!(
        (&s["failed_attempts"], &s["locked"]),
        (&0.into(), &false.into())
    );
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "after reset: {r:?}");
}

#[test]
fn reset_keeps_replay_protection() {
    let user = TestUser::get("cli-replay");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &["--scratch-codes", "1"]);
    let secret = v["secret"].as_str().unwrap();
    let scratch = v["scratch_codes"][0].as_str().unwrap();
    avoid_step_edge(30, 3);
    let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
    assert_eq!(
        fx.client(&svc, &user.name).answer(&code).run().result,
        "PAM_SUCCESS"
    );
    assert_eq!(
        fx.client(&svc, &user.name).answer(scratch).run().result,
        "PAM_SUCCESS"
    );
    assert_eq!(admin(&fx, "reset", &user.name).code, 0);
    // Neither the used step nor the used scratch code comes back.
    assert_eq!(
        fx.client(&svc, &user.name).answer(&code).run().result,
        "PAM_AUTH_ERR"
    );
    assert_eq!(
        fx.client(&svc, &user.name).answer(scratch).run().result,
        "PAM_AUTH_ERR"
    );
    assert_eq!(status(&fx, &user.name)["scratch_codes_remaining"], 0);
}

#[test]
fn corrupt_state_is_shown_and_cleared_by_reset() {
    let user = TestUser::get("cli-corrupt");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &[]);
    let secret = v["secret"].as_str().unwrap();
    fs::write(fx.state_dir().join(&user.name), "last_step = {{{").unwrap();

    let file = fx.path().join("secrets").join(&user.name);
    let r = run(
        &[
            "status",
            "--config",
            fx.config().to_str().unwrap(),
            "--user",
            &user.name,
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            fx.state_dir().to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 1, "{r:?}");
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["locked"], true);
    assert_eq!(s["failed_attempts"], serde_json::Value::Null);
    assert!(r.stderr.contains("is corrupt"), "{r:?}");

    avoid_step_edge(30, 3);
    let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
    assert_eq!(
        fx.client(&svc, &user.name).answer(&code).run().result,
        "PAM_AUTH_ERR"
    );

    let r = admin(&fx, "reset", &user.name);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("removed the corrupt state"), "{r:?}");
    assert!(r.stderr.contains("scratch-codes --regenerate"), "{r:?}");
    assert_eq!(status(&fx, &user.name)["failed_attempts"], 0);
    assert_eq!(
        fx.client(&svc, &user.name).answer(&code).run().result,
        "PAM_SUCCESS"
    );
}

#[test]
fn disable_ends_the_enrollment_and_its_state() {
    let user = TestUser::get("cli-disable");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let v = enroll(&fx, &user.name, &[]);
    let secret = v["secret"].as_str().unwrap();
    let wrong = wrong_code(secret);
    fx.client(&svc, &user.name).answer(&wrong).run();
    assert!(fx.state_dir().join(&user.name).exists());

    let r = admin(&fx, "disable", &user.name);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("state removed"), "{r:?}");
    assert!(!fx.path().join("secrets").join(&user.name).exists());
    assert!(!fx.state_dir().join(&user.name).exists());
    let s = status(&fx, &user.name);
    assert_eq!(
        (&s["enrolled"], &s["failed_attempts"]),
        (&false.into(), &0.into())
    );

    avoid_step_edge(30, 3);
    let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "no longer enrolled: {r:?}");
}

/// The code typed to confirm an enrollment (as root) is spent: someone who
/// watched it being typed cannot log in with it.
#[test]
fn the_confirmation_code_cannot_log_in() {
    let user = TestUser::get("cli-confirm-spent");
    let fx = Fixture::new();
    let svc = fx.module_service("cli", "");
    let cfg = fx.path().join("confirm.toml");
    fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\nhost_key = \"{}\"\n",
            fx.state_dir().display(),
            fx.path().join("host.key").display()
        ),
    )
    .unwrap();
    let file = fx.path().join("secrets").join(&user.name);
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = run(
        &[
            "enroll",
            "--config",
            cfg.to_str().unwrap(),
            "--user",
            &user.name,
            "--secret-file",
            file.to_str().unwrap(),
            "--secret",
            SECRET,
            "--qr",
            "none",
        ],
        &format!("{code}\n"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = fx.client(&svc, &user.name).answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.module_log()
            .iter()
            .any(|l| l.contains("result=replayed-code")),
        "{r:?}"
    );
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
