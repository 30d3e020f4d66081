mod common;
mod ns_support;
use common::*;

#[test]
fn right_code_then_replay() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("smoke", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.prompts, vec![(1, "Verification code: ".to_owned())]);
    assert!(
        r.module_log().iter().any(|l| l.contains("result=success")),
        "{r:?}"
    );
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_AUTH_ERR");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
