mod common;
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
