//! Every module argument through the real libpam, and config.toml with the
//! same keys (pam.d wins). An unknown or malformed argument logs and denies.
//!
//! Issue 2, "Must work" 7. (`window=` edges are in module_codes.rs,
//! `rate_limit=` in module_state.rs, `state_dir=` in module_state.rs,
//! `nullok`, `require_group=`, `exempt_group=` in module_returns.rs.)

mod common;
mod ns_support;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn code(offset: i64) -> String {
    oathtool_totp(SECRET, "SHA1", 6, 30, offset)
}

fn enrolled() -> Fixture {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    fx
}

#[test]
fn secret_expands_user_and_home() {
    let u = ensure_user("pamtotp-args-home", &[]);
    let fx = Fixture::new();
    // ${USER} in a system-wide directory (read as root)...
    fx.enroll(&u.name, SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("user", "");
    avoid_step_edge(30, 5);
    let r = fx.client(&svc, &u.name).answer(&code(0)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // ...${HOME} and ~ in the home (read as the user).
    let dir = u.home.join(".config");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    let p = dir.join("pam-totp");
    fs::write(&p, format!("version = 1\nsecret = \"{SECRET}\"\n")).unwrap();
    std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    for (i, template) in ["${HOME}/.config/pam-totp", "~/.config/pam-totp"]
        .iter()
        .enumerate()
    {
        let line = format!(
            "auth required MODULE secret={template} state_dir={} window=2",
            fx.state_dir().display()
        );
        let svc = fx.service(&format!("home{i}"), &[&line]);
        let r = fx.client(&svc, &u.name).answer(&code(i as i64 + 1)).run();
        assert_eq!(r.result, "PAM_SUCCESS", "{template}: {r:?}");
    }
}

#[test]
fn prompt_sets_the_prompt_text() {
    let fx = enrolled();
    for (arg, want) in [
        ("prompt=Code:", "Code:"),
        ("[prompt=Your code, please: ]", "Your code, please: "),
        ("", "Verification code: "),
    ] {
        let svc = fx.module_service("prompt", arg);
        let r = fx.client(&svc, "root").answer("000000").run();
        assert_eq!(r.prompts, vec![(1, want.to_owned())], "{arg}");
    }
}

#[test]
fn echo_code_shows_the_code_while_typed() {
    let fx = enrolled();
    avoid_step_edge(30, 3);
    let svc = fx.module_service("echo", "echo_code");
    let r = fx.client(&svc, "root").answer(&code(0)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // 2 = PAM_PROMPT_ECHO_ON; without echo_code it is 1, ECHO_OFF.
    assert_eq!(r.prompts, vec![(2, "Verification code: ".to_owned())]);
}

/// A stack with pam_unix in front: it prompts "Password: " and leaves what
/// was typed in PAM_AUTHTOK (an application cannot set that item). It
/// fails (no such password) but is only `optional`.
fn first_pass_service(fx: &Fixture, name: &str, args: &str) -> String {
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={} {args}",
        fx.path().display(),
        fx.state_dir().display()
    );
    fx.service(name, &["auth optional pam_unix.so nodelay", &line])
}

fn password_prompt() -> (i64, String) {
    (1, "Password: ".to_owned())
}

#[test]
fn try_first_pass_takes_a_code_from_authtok_or_prompts() {
    let fx = enrolled();
    let svc = first_pass_service(&fx, "try", "try_first_pass window=2 rate_limit=100/60");
    avoid_step_edge(30, 5);
    // A code in PAM_AUTHTOK: no prompt of our own.
    let r = fx.client(&svc, "root").answer(&code(-1)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec![password_prompt()], "{r:?}");
    // A password in PAM_AUTHTOK: the code is asked for.
    let r = fx
        .client(&svc, "root")
        .answer("correct horse")
        .answer(&code(0))
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(
        r.prompts,
        vec![password_prompt(), (1, "Verification code: ".to_owned())]
    );
    // Nothing in PAM_AUTHTOK (module alone): the code is asked for.
    let svc = fx.module_service("try-alone", "try_first_pass window=2 rate_limit=100/60");
    let r = fx.client(&svc, "root").answer(&code(1)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts.len(), 1, "{r:?}");
}

#[test]
fn use_first_pass_never_prompts() {
    let fx = enrolled();
    let svc = first_pass_service(&fx, "use", "use_first_pass rate_limit=100/60");
    avoid_step_edge(30, 3);
    let r = fx.client(&svc, "root").answer(&code(0)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec![password_prompt()], "{r:?}");
    // A password, not a code: refused, and the code is not asked for.
    let r = fx
        .client(&svc, "root")
        .answer("correct horse")
        .answer(&code(0))
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts, vec![password_prompt()], "{r:?}");
    assert!(r
        .module_log()
        .iter()
        .any(|l| l.contains("result=wrong-code")));
    // Nothing in PAM_AUTHTOK: refused, still without a prompt.
    let svc = fx.module_service("use-alone", "use_first_pass");
    let r = fx.client(&svc, "root").answer(&code(0)).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    assert_eq!(r.audit_results(), ["no-code"]);
}

/// Six digits that are none of the codes a window of 2 accepts now.
fn wrong_code() -> String {
    let near: Vec<String> = (-3..=3).map(code).collect();
    (0..)
        .map(|i: u32| format!("{:06}", 100_000 + i * 7919))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// Issue 11, "Must work" 7: under try_first_pass, a PAM_AUTHTOK that is a
/// code but not the right one is one attempt, and the prompt that follows
/// is the next; both are recorded (an audit line each, a failure each).
#[test]
fn try_first_pass_asks_again_after_a_wrong_code_in_authtok() {
    let fx = enrolled();
    let svc = first_pass_service(&fx, "try-wrong", "try_first_pass window=2 rate_limit=3/600");
    avoid_step_edge(30, 5);
    let r = fx
        .client(&svc, "root")
        .answer(&wrong_code())
        .answer(&code(0))
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(
        r.prompts,
        vec![password_prompt(), (1, "Verification code: ".to_owned())]
    );
    assert_eq!(r.audit_results(), ["wrong-code", "success"], "{r:?}");
    assert!(
        r.module_log()[0].contains("source=authtok"),
        "{:?}",
        r.module_log()
    );
    // The wrong authtok counted against the rate limit (one failure in
    // the window; the success only clears the since-last-success count).
    let state = fx.state("root").expect("state written");
    let failures = state["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{state:?}");

    // Two wrong codes: one attempt each, so with the first failure
    // rate_limit=3 is now reached.
    let r = fx
        .client(&svc, "root")
        .answer(&wrong_code())
        .answer(&wrong_code())
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["wrong-code", "wrong-code"], "{r:?}");
    let r = fx
        .client(&svc, "root")
        .answer("correct horse")
        .answer(&code(1))
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["rate-limited"], "{r:?}");
}

/// A spent code in PAM_AUTHTOK is no better than a wrong one: the prompt
/// follows. A password is no attempt at all: only the prompt is one.
#[test]
fn try_first_pass_asks_after_a_spent_code_or_a_password() {
    let fx = enrolled();
    let svc = first_pass_service(
        &fx,
        "try-spent",
        "try_first_pass window=2 rate_limit=100/60",
    );
    avoid_step_edge(30, 5);
    let r = fx.client(&svc, "root").answer(&code(0)).syslog().run();
    assert_eq!(r.audit_results(), ["success"], "{r:?}");
    let r = fx
        .client(&svc, "root")
        .answer(&code(0))
        .answer(&code(1))
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.audit_results(), ["replayed-code", "success"], "{r:?}");
    let r = fx
        .client(&svc, "root")
        .answer("correct horse")
        .answer(&wrong_code())
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts.len(), 2, "{r:?}");
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
}

/// use_first_pass: a wrong code in PAM_AUTHTOK is the only attempt.
#[test]
fn use_first_pass_never_prompts_after_a_wrong_code() {
    let fx = enrolled();
    let svc = first_pass_service(&fx, "use-wrong", "use_first_pass rate_limit=100/60");
    avoid_step_edge(30, 3);
    let r = fx
        .client(&svc, "root")
        .answer(&wrong_code())
        .answer(&code(0))
        .syslog()
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts, vec![password_prompt()], "{r:?}");
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
}

/// A stack where pam_exec writes the PAM_AUTHTOK it sees after this
/// module to `out`: what the next module (pam_unix) would check.
fn forward_service(fx: &Fixture, args: &str) -> (String, PathBuf) {
    let script = fx.path().join("dump-authtok");
    fs::write(&script, "#!/bin/sh\ncat > \"$1\"\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let out = fx.path().join("authtok.out");
    let first = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={} forward_pass {args}",
        fx.path().display(),
        fx.state_dir().display()
    );
    let second = format!(
        "auth required pam_exec.so expose_authtok quiet {} {}",
        script.display(),
        out.display()
    );
    (fx.service("forward", &[&first, &second]), out)
}

#[test]
fn forward_pass_splits_password_and_code() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &["12345678"]);
    let (svc, out) = forward_service(&fx, "rate_limit=100/60 window=2");
    avoid_step_edge(30, 5);
    let cases = [
        ("hunter2", code(-1)),
        ("pässwörd with spaces 123", code(0)),
        ("pw", "12345678".to_owned()),
    ];
    for (password, code) in &cases {
        let _ = fs::remove_file(&out);
        let r = fx
            .client(&svc, "root")
            .answer(&format!("{password}{code}"))
            .syslog()
            .run();
        assert_eq!(r.result, "PAM_SUCCESS", "{password}: {r:?}");
        assert_eq!(
            r.prompts,
            vec![(1, "Password & verification code: ".to_owned())]
        );
        let seen = fs::read(&out).expect("pam_exec ran");
        let seen = String::from_utf8(seen).unwrap();
        assert_eq!(seen.trim_end_matches('\0'), *password);
        // Neither the password nor the code is logged.
        let log = r.all_log_text();
        assert!(
            !log.contains(*password) && !log.contains(code.as_str()),
            "{log}"
        );
    }
    // A wrong code stops the stack at this module.
    let _ = fs::remove_file(&out);
    let r = fx.client(&svc, "root").answer("hunter2000000").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
}

#[test]
fn debug_logs_more_but_never_the_code_or_the_secret() {
    let fx = enrolled();
    let svc = fx.module_service("debug", "debug");
    avoid_step_edge(30, 3);
    let c = code(0);
    let r = fx.client(&svc, "root").answer(&c).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let lines = r.module_log();
    assert!(lines.len() > 1, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("result=start")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("as root")), "{lines:?}");
    assert_eq!(
        r.audit_results().last().map(String::as_str),
        Some("success")
    );
    let log = r.all_log_text();
    assert!(!log.contains(&c) && !log.contains(SECRET), "{log}");
    // Without debug: only the audit line.
    let svc = fx.module_service("quiet", "");
    let r = fx.client(&svc, "root").answer("000000").syslog().run();
    r.only_module_line();
}

#[test]
fn unknown_or_malformed_arguments_log_and_deny() {
    let fx = enrolled();
    let bad = [
        "frobnicate",
        "Window=1",
        "secert=TOPSECRETVALUE",
        "window=x",
        "window=-1",
        "window=11",
        "window=",
        "window",
        "rate_limit=3",
        "rate_limit=0/30",
        "rate_limit=3/0",
        "rate_limit=a/b",
        "rate_limit=",
        "nullok=yes",
        "echo_code=1",
        "debug=true",
        "try_first_pass=1",
        "secret=",
        "secret=relative/path",
        "secret=/x/${SHELL}",
        "state_dir=state",
        "state_dir",
        "config",
        "config=",
        "prompt",
        "require_group=",
        "exempt_group=a/b",
        "forward_pass use_first_pass",
        "forward_pass try_first_pass",
    ];
    avoid_step_edge(30, 5);
    for arg in bad {
        let svc = fx.module_service("bad", arg);
        let r = fx.client(&svc, "root").answer(&code(0)).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{arg}: {r:?}");
        let line = r.only_module_line();
        assert!(line.contains("configuration error"), "{arg}: {line}");
        assert!(line.contains("denying"), "{arg}: {line}");
        assert!(!line.contains("TOPSECRETVALUE"), "{arg}: {line}");
    }
    // The code was never checked, so it is still good.
    let svc = fx.module_service("good", "");
    let r = fx.client(&svc, "root").answer(&code(0)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn an_argument_that_is_not_utf8_denies() {
    let fx = enrolled();
    let line = format!(
        "auth required {}/pam_totp.so secret={}/secrets/${{USER}} prompt=\u{1}",
        fx.path().display(),
        fx.path().display()
    );
    let mut bytes = line.into_bytes();
    *bytes.last_mut().unwrap() = 0xff;
    bytes.push(b'\n');
    fs::write(fx.path().join("pam.d/latin1"), bytes).unwrap();
    let r = fx.client("latin1", "root").answer("000000").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.only_module_line().contains("not UTF-8"), "{r:?}");
}

// --- config= ---

/// A service with `config=PATH` plus `args`.
fn config_service(fx: &Fixture, config: &std::path::Path, args: &str) -> String {
    fx.module_service("conf", &format!("config={} {args}", config.display()))
}

#[test]
fn config_file_keys_apply_and_pam_d_wins() {
    let fx = enrolled();
    let conf = fx.config_file(
        "config.toml",
        "window = 0\nprompt = \"Code from config: \"\necho_code = true\nrate_limit = \"100/60\"\n",
    );
    avoid_step_edge(30, 5);
    // From the file: window 0, its prompt, echo.
    let svc = config_service(&fx, &conf, "");
    let r = fx.client(&svc, "root").answer(&code(-1)).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["wrong-code"]);
    assert_eq!(r.prompts, vec![(2, "Code from config: ".to_owned())]);
    // pam.d wins: window=1 accepts the previous step.
    let svc = config_service(&fx, &conf, "window=1 [prompt=From pam.d: ]");
    let r = fx.client(&svc, "root").answer(&code(-1)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec![(2, "From pam.d: ".to_owned())]);
}

#[test]
fn config_file_sets_every_key() {
    // Each key of the contract is accepted in the file (booleans as booleans).
    let fx = enrolled();
    let conf = fx.config_file(
        "all.toml",
        &format!(
            "secret = \"{dir}/secrets/${{USER}}\"\nstate_dir = \"{dir}/state\"\nwindow = 1\n\
             rate_limit = \"5/60\"\nnullok = false\nprompt = \"C: \"\necho_code = false\n\
             try_first_pass = true\nuse_first_pass = false\nforward_pass = false\ndebug = false\n\
             exempt_group = \"pamtotp-nobody-is-in-this\"\n",
            dir = fx.path().display()
        ),
    );
    let line = format!("auth required MODULE config={}", conf.display());
    let svc = fx.service("allkeys", &["auth optional pam_unix.so nodelay", &line]);
    avoid_step_edge(30, 3);
    let r = fx.client(&svc, "root").answer(&code(0)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec![password_prompt()], "try_first_pass: {r:?}");
    assert!(
        fx.state("root").is_some(),
        "state_dir and secret from the file"
    );
}

#[test]
fn config_file_nullok() {
    let fx = Fixture::new();
    let conf = fx.config_file("nullok.toml", "nullok = true\n");
    let svc = config_service(&fx, &conf, "");
    let r = fx.client(&svc, "root").syslog().run();
    assert_eq!(r.result, "PAM_PERM_DENIED", "ignored: {r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    assert_eq!(r.audit_results(), ["skipped"]);
}

#[test]
fn a_bad_config_file_logs_and_denies() {
    let fx = enrolled();
    let unknown = fx.config_file("unknown.toml", "windw = 1\n");
    let badval = fx.config_file("badval.toml", "window = \"one\"\n");
    let flagstr = fx.config_file("flagstr.toml", "nullok = \"yes\"\n");
    let toml = fx.config_file("broken.toml", "window = \n");
    let writable = fx.config_file("writable.toml", "window = 1\n");
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o664)).unwrap();
    let foreign = fx.config_file("foreign.toml", "window = 1\n");
    std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
    let link = fx.path().join("link.toml");
    std::os::unix::fs::symlink(fx.config_file("target.toml", ""), &link).unwrap();
    let missing = fx.path().join("missing.toml");
    avoid_step_edge(30, 5);
    for (conf, want) in [
        (&unknown, "windw"),
        (&badval, "config file"),
        (&flagstr, "config file"),
        (&toml, "config file"),
        (&writable, "lets others write"),
        (&foreign, "not root"),
        (&link, "symbolic link"),
        (&missing, "does not exist"),
    ] {
        let svc = config_service(&fx, conf, "");
        let r = fx.client(&svc, "root").answer(&code(0)).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{}: {r:?}", conf.display());
        let line = r.only_module_line();
        assert!(line.contains("configuration error"), "{line}");
        assert!(
            line.contains(want),
            "{}: want {want:?} in {line}",
            conf.display()
        );
    }
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
