//! Real logins through the real OpenSSH server and client.
//!
//! Each test starts /usr/sbin/sshd on 127.0.0.1 (a free high port, its own
//! host key and sshd_config made of the lines from conf/sshd_config.d/) in
//! private mount and PID namespaces, where the shipped conf/pam.d file
//! (with the test's module path and state directory) is bind-mounted over
//! /etc/pam.d/sshd. The real `ssh` client logs in; its askpass program
//! answers the keyboard-interactive prompts. Codes come from oathtool;
//! one test enrolls and unlocks its user with the real `pam-totp` tool.
//!
//! Runs as root (useradd, unshare, sshd). Test users are `pamtotp-ssh*`.

mod common;
mod e2e_support;

use common::{avoid_step_edge, oathtool_totp, SECRET};
use e2e_support::*;

/// The codes accepted around now (window=1): previous, current, next step.
fn window() -> Vec<String> {
    (-1..=1)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect()
}

fn has_line(lines: &[String], parts: &[&str]) -> bool {
    lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// conf/pam.d/sshd-publickey with conf/sshd_config.d/pam-totp-publickey.conf.
fn publickey_server(dir: &std::path::Path, extra_args: &str) -> Sshd {
    let so = install_module(dir);
    let pam = localize_pam_conf(&read_conf("pam.d/sshd-publickey"), &so, dir, extra_args);
    Sshd::start(
        dir,
        &pam,
        &read_conf("sshd_config.d/pam-totp-publickey.conf"),
    )
}

#[test]
fn publickey_and_code() {
    let machine_pam = snapshot("/etc/pam.d/sshd");
    let dir = work_dir("ssh-key");
    let user = TestUser::create("ssh-key");
    let key = dir.path().join("id_user");
    user.authorize_key(&ssh_keygen(&key));
    user.enroll_in_home(SECRET);
    let sshd = publickey_server(dir.path(), "");
    assert_eq!(
        snapshot("/etc/pam.d/sshd"),
        machine_pam,
        "the machine's /etc/pam.d/sshd must not change, even while the test server runs"
    );

    avoid_step_edge(30, 8);
    let codes = window();

    // A wrong code: asked once, refused, the command never runs.
    let r = sshd.ssh(&user.name, Some(&key), &wrong_code(&codes), "");
    assert!(!r.ran, "wrong code let in: {r:?}");
    assert_eq!((r.code_prompts(), r.password_prompts()), (1, 0), "{r:?}");
    assert!(r.run.stderr.contains("Permission denied"), "{r:?}");
    let log = sshd.syslog.module_lines();
    assert!(
        has_line(
            &log,
            &["service=sshd", "rhost=127.0.0.1", "result=wrong-code"]
        ),
        "{log:?}"
    );

    // The right code: the remote command runs, as the user.
    let r = sshd.ssh(&user.name, Some(&key), &codes[1], "");
    assert!(
        r.ran,
        "right code refused: {r:?}\nsshd log:\n{}",
        sshd.server_log()
    );
    assert_eq!(r.code_prompts(), 1, "{r:?}");
    let log = sshd.syslog.module_lines();
    assert!(
        has_line(
            &log,
            &[
                &format!("user={}", user.name),
                "service=sshd",
                "result=success"
            ]
        ),
        "{log:?}"
    );
    assert!(sshd
        .server_log()
        .contains("Accepted keyboard-interactive/pam for pamtotp-ssh-key"));

    // The same code again: a replay, refused.
    let r = sshd.ssh(&user.name, Some(&key), &codes[1], "");
    assert!(!r.ran, "replayed code let in: {r:?}");
    let log = sshd.syslog.module_lines();
    assert!(has_line(&log, &["result=replayed-code"]), "{log:?}");

    // The code alone is not enough: a key that is not authorized is
    // refused before any code is asked.
    let stranger = dir.path().join("id_stranger");
    ssh_keygen(&stranger);
    let r = sshd.ssh(&user.name, Some(&stranger), &codes[2], "");
    assert!(!r.ran, "unauthorized key let in: {r:?}");
    assert_eq!(r.code_prompts(), 0, "{r:?}");

    drop(sshd);
    assert_eq!(snapshot("/etc/pam.d/sshd"), machine_pam);
}

#[test]
fn nullok_lets_an_unenrolled_user_in_with_the_key_alone() {
    let dir = work_dir("ssh-nullok");
    let fresh = TestUser::create("ssh-nullok");
    let enrolled = TestUser::create("ssh-nullok-e");
    let key = dir.path().join("id_user");
    let pubkey = ssh_keygen(&key);
    fresh.authorize_key(&pubkey);
    enrolled.authorize_key(&pubkey);
    enrolled.enroll_in_home(SECRET);
    let sshd = publickey_server(dir.path(), "nullok");

    // Not enrolled: in with the key, and no code prompt at all.
    let r = sshd.ssh(&fresh.name, Some(&key), "", "");
    assert!(
        r.ran,
        "unenrolled user refused under nullok: {r:?}\nsshd log:\n{}",
        sshd.server_log()
    );
    assert!(r.prompts.is_empty(), "{r:?}");
    let log = sshd.syslog.module_lines();
    assert!(
        has_line(&log, &["result=skipped", "reason=not-enrolled,nullok"]),
        "{log:?}"
    );

    // nullok changes nothing for an enrolled user: the code is still needed.
    avoid_step_edge(30, 5);
    let codes = window();
    let r = sshd.ssh(&enrolled.name, Some(&key), &wrong_code(&codes), "");
    assert!(!r.ran, "enrolled user let in without the code: {r:?}");
    assert_eq!(r.code_prompts(), 1, "{r:?}");
    let r = sshd.ssh(&enrolled.name, Some(&key), &codes[1], "");
    assert!(r.ran, "right code refused: {r:?}");
}

#[test]
fn password_and_code_both_needed() {
    const PASSWORD: &str = "correct horse 42";
    let dir = work_dir("ssh-pw");
    let user = TestUser::create("ssh-pw");
    user.set_password(PASSWORD);
    user.enroll_in_home(SECRET);
    let so = install_module(dir.path());
    let pam = localize_pam_conf(&read_conf("pam.d/sshd-password"), &so, dir.path(), "");
    let sshd = Sshd::start(
        dir.path(),
        &pam,
        &read_conf("sshd_config.d/pam-totp-password.conf"),
    );

    avoid_step_edge(30, 12);
    let codes = window();

    // A wrong password with the right code: refused at the password, before
    // the code is asked (so the code is not spent).
    let r = sshd.ssh(&user.name, None, &codes[1], "wrong password");
    assert!(!r.ran, "wrong password let in: {r:?}");
    assert_eq!((r.password_prompts(), r.code_prompts()), (1, 0), "{r:?}");

    // The right password with a wrong code: refused.
    let r = sshd.ssh(&user.name, None, &wrong_code(&codes), PASSWORD);
    assert!(!r.ran, "wrong code let in: {r:?}");
    assert_eq!((r.password_prompts(), r.code_prompts()), (1, 1), "{r:?}");
    let log = sshd.syslog.module_lines();
    assert!(has_line(&log, &["result=wrong-code"]), "{log:?}");

    // Both right: in. The password is asked first, then the code.
    let r = sshd.ssh(&user.name, None, &codes[1], PASSWORD);
    assert!(
        r.ran,
        "password and code refused: {r:?}\nsshd log:\n{}",
        sshd.server_log()
    );
    assert_eq!(r.prompts.len(), 2, "{r:?}");
    assert!(r.prompts[0].contains("Password"), "{r:?}");
    assert!(r.prompts[1].contains("Verification code"), "{r:?}");

    // The public key method is not a way around it: with no password and
    // no code, nothing gets in.
    let r = sshd.ssh(&user.name, None, "", "");
    assert!(!r.ran, "{r:?}");
}

/// Enrolls `user` with the real tool (their ~/.pam_totp, the known test
/// secret); returns the scratch codes it printed.
fn enroll_with_tool(user: &str) -> Vec<String> {
    let r = run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_pam-totp")).args([
            "enroll",
            "--user",
            user,
            "--secret",
            "-",
            "--no-confirm",
            "--json",
        ]),
        &format!("{SECRET}\n"),
        COMMAND_TIMEOUT,
    );
    assert!(r.success(), "pam-totp enroll: {r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("enroll --json");
    v["scratch_codes"]
        .as_array()
        .expect("scratch_codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn locked_out_user_is_unlocked_by_reset_and_a_scratch_code_works_once() {
    let dir = work_dir("ssh-lock");
    let user = TestUser::create("ssh-lock");
    let key = dir.path().join("id_user");
    user.authorize_key(&ssh_keygen(&key));
    let scratch = enroll_with_tool(&user.name);
    assert!(!scratch.is_empty());
    let sshd = publickey_server(dir.path(), "");

    avoid_step_edge(30, 12);
    let codes = window();
    // Three wrong codes (the default rate_limit=3/30), then the right one
    // is refused too.
    for _ in 0..3 {
        let r = sshd.ssh(&user.name, Some(&key), &wrong_code(&codes), "");
        assert!(!r.ran, "{r:?}");
    }
    let r = sshd.ssh(&user.name, Some(&key), &codes[1], "");
    assert!(!r.ran, "a locked-out user got in: {r:?}");
    let log = sshd.syslog.module_lines();
    assert!(has_line(&log, &["result=rate-limited"]), "{log:?}");

    // The administrator unlocks the user; the right code works again.
    let state_dir = dir.path().join("var-lib-pam-totp/state");
    let r = run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_pam-totp"))
            .args(["reset", "--user", &user.name, "--state-dir"])
            .arg(&state_dir),
        "",
        COMMAND_TIMEOUT,
    );
    assert!(r.success(), "pam-totp reset: {r:?}");
    let r = sshd.ssh(&user.name, Some(&key), &codes[2], "");
    assert!(r.ran, "right code refused after reset: {r:?}");

    // Lost phone: a scratch code, typed at the same prompt, works once.
    let r = sshd.ssh(&user.name, Some(&key), &scratch[0], "");
    assert!(r.ran, "scratch code refused: {r:?}");
    let log = sshd.syslog.module_lines();
    assert!(has_line(&log, &["result=scratch-code-used"]), "{log:?}");
    let r = sshd.ssh(&user.name, Some(&key), &scratch[0], "");
    assert!(!r.ran, "a scratch code worked twice: {r:?}");
    let log = sshd.syslog.module_lines();
    assert!(has_line(&log, &["result=replayed-code"]), "{log:?}");
}
