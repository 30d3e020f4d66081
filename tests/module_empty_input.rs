//! An empty second factor is never accepted, through the real libpam:
//! nothing typed at the prompt, only whitespace (which is otherwise
//! ignored inside a code), an empty or blank PAM_AUTHTOK from the module
//! before (try_first_pass, use_first_pass), and a forward_pass answer with
//! no code after the password. Each is refused and counted as a failed
//! attempt, and the right code still works afterwards.
//!
//! docs/peer-bugs.md ("Empty second factor accepted").

mod common;
mod ns_support;
use common::*;

const BLANKS: [&str; 6] = ["", " ", "\t", "  \t  ", "\u{a0}", "\u{3000}"];

fn right_code() -> String {
    oathtool_totp(SECRET, "SHA1", 6, 30, 0)
}

#[test]
fn nothing_or_only_whitespace_at_the_prompt_is_refused_and_counted() {
    let fx = Fixture::new();
    // Scratch codes too: an empty answer must not match one either.
    fx.enroll_with_scratch("root", SECRET, &["12345678", "00000000"]);
    let svc = fx.module_service("blank", "rate_limit=100/60");
    for blank in BLANKS {
        let r = fx.client(&svc, "root").answer(blank).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{blank:?}: {r:?}");
        assert_eq!(r.audit_results(), ["wrong-code"], "{blank:?}: {r:?}");
    }
    let st = fx.state("root").expect("the failures were recorded");
    assert_eq!(
        st["failed_attempts"].as_integer(),
        Some(BLANKS.len() as i64),
        "{st:?}"
    );
    avoid_step_edge(30, 3);
    let r = fx.client(&svc, "root").answer(&right_code()).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// pam_unix first (it puts what was typed at "Password: " in
/// PAM_AUTHTOK), then this module with `args`.
fn after_pam_unix(fx: &Fixture, name: &str, args: &str) -> String {
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={} rate_limit=100/60 {args}",
        fx.path().display(),
        fx.state_dir().display()
    );
    fx.service(name, &["auth optional pam_unix.so nodelay", &line])
}

#[test]
fn an_empty_or_blank_authtok_is_not_a_code() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let use_svc = after_pam_unix(&fx, "use", "use_first_pass");
    let try_svc = after_pam_unix(&fx, "try", "try_first_pass");
    for blank in BLANKS {
        // use_first_pass: refused, and no prompt of ours.
        let r = fx.client(&use_svc, "root").answer(blank).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{blank:?}: {r:?}");
        assert_eq!(r.prompts.len(), 1, "only pam_unix's prompt: {r:?}");
        assert!(
            matches!(
                r.audit_results().as_slice(),
                [s] if s == "no-code" || s == "wrong-code"
            ),
            "{blank:?}: {r:?}"
        );
        // try_first_pass: a blank authtok is no code, so ours is asked for,
        // and a blank answer there is refused too.
        let r = fx
            .client(&try_svc, "root")
            .answer(blank)
            .answer(blank)
            .run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{blank:?}: {r:?}");
        assert_eq!(
            r.prompts.last(),
            Some(&(1, "Verification code: ".to_owned())),
            "{r:?}"
        );
    }
    avoid_step_edge(30, 3);
    let r = fx
        .client(&try_svc, "root")
        .answer(" ")
        .answer(&right_code())
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn forward_pass_without_a_code_after_the_password_is_refused() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &["12345678"]);
    let svc = fx.module_service("forward", "forward_pass rate_limit=100/60");
    let mut answers: Vec<String> = BLANKS.iter().map(|s| s.to_string()).collect();
    // A password alone, of a code's length, or ending in spaces.
    answers.extend(["hunter2", "hunter", "correct horse      "].map(String::from));
    for answer in &answers {
        let r = fx.client(&svc, "root").answer(answer).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{answer:?}: {r:?}");
        assert_eq!(r.audit_results(), ["wrong-code"], "{answer:?}: {r:?}");
    }
    avoid_step_edge(30, 3);
    let r = fx
        .client(&svc, "root")
        .answer(&format!("hunter2{}", right_code()))
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
