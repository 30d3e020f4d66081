//! A locked-out user is told why, through the real libpam: when the rate
//! limit refuses an attempt the conversation gets one PAM_ERROR_MSG "Too
//! many failed codes; try again in N seconds.", N from the state; a wrong
//! code keeps its generic refusal; `quiet_lockout` (pam.d or config.toml)
//! keeps the lockout silent. The verdict and the audit line are the same
//! either way.
//!
//! Issue 16, "Must work" 5.

mod common;
use common::*;

/// PAM_ERROR_MSG, the message style of <security/_pam_types.h>.
const PAM_ERROR_MSG: i64 = 3;
const WINDOW: u64 = 30;

/// The error messages the conversation was shown.
fn error_messages(r: &PamResult) -> Vec<&str> {
    r.prompts
        .iter()
        .filter(|(style, _)| *style == PAM_ERROR_MSG)
        .map(|(_, text)| text.as_str())
        .collect()
}

/// N of "Too many failed codes; try again in N seconds.", or a failure.
fn seconds_told(msg: &str) -> u64 {
    msg.strip_prefix("Too many failed codes; try again in ")
        .and_then(|rest| rest.strip_suffix(" seconds."))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not the lockout message: {msg:?}"))
}

/// Two wrong codes (each refused with no message) reach `rate_limit=2/30`;
/// then the right code is refused by the limit. Returns that last run.
fn lock_out(fx: &Fixture, svc: &str) -> PamResult {
    avoid_step_edge(30, 5);
    for _ in 0..2 {
        let r = fx.client(svc, "root").answer("000000x").syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
        assert!(error_messages(&r).is_empty(), "a wrong code is told: {r:?}");
    }
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.only_module_line()
            .contains("result=rate-limited rate_limit=2/30"),
        "{r:?}"
    );
    r
}

#[test]
fn a_locked_out_user_is_told_how_long_to_wait() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("lockout", &format!("rate_limit=2/{WINDOW}"));
    let r = lock_out(&fx, &svc);
    let told = error_messages(&r);
    assert_eq!(told.len(), 1, "{r:?}");
    let n = seconds_told(told[0]);
    // The oldest failure was a few seconds ago at most.
    assert!((1..=WINDOW).contains(&n), "N = {n}: {r:?}");
    assert!(n >= WINDOW - 10, "N = {n} for failures just made: {r:?}");
    // After the prompt it answers, never instead of it.
    assert_eq!(r.prompts[0], (1, "Verification code: ".to_owned()), "{r:?}");
    assert_eq!(r.prompts.len(), 2, "{r:?}");
}

#[test]
fn quiet_lockout_keeps_the_lockout_silent() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("lockout", &format!("rate_limit=2/{WINDOW} quiet_lockout"));
    let r = lock_out(&fx, &svc);
    assert!(error_messages(&r).is_empty(), "{r:?}");
    assert_eq!(r.prompts.len(), 1, "{r:?}");
}

#[test]
fn quiet_lockout_in_config_toml() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let conf = fx.config_file(
        "quiet.toml",
        &format!("rate_limit = \"2/{WINDOW}\"\nquiet_lockout = true\n"),
    );
    let svc = fx.module_service("lockout", &format!("config={}", conf.display()));
    let r = lock_out(&fx, &svc);
    assert!(error_messages(&r).is_empty(), "{r:?}");
}
