//! Return codes through the real libpam: PAM_IGNORE without a prompt for
//! nullok and the group rules; a prompt, then PAM_AUTH_ERR, for unknown or
//! unenrolled users; PAM_SUCCESS from pam_setcred.
//!
//! Issue 2, "Must work" 8 (and 7: nullok, require_group=, exempt_group=).
//!
//! libpam does not hand a module's return code to the application; it
//! shows through the stack. With the module alone, PAM_IGNORE leaves no
//! module with a say and libpam answers PAM_PERM_DENIED; after pam_permit,
//! PAM_IGNORE lets pam_permit's success stand, where PAM_AUTH_ERR (or any
//! other failure of a `required` module) would not. Only PAM_IGNORE gives
//! both, and the module's audit line says `result=skipped`.

mod common;
mod ns_support;
use common::*;

fn module_line(fx: &Fixture, args: &str) -> String {
    format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={} {args}",
        fx.path().display(),
        fx.state_dir().display()
    )
}

/// Asserts that the module returns PAM_IGNORE for `user` under `args`,
/// without prompting; `why` is the reason in the audit line.
fn assert_ignored(fx: &Fixture, user: &str, args: &str, why: &str) {
    let alone = fx.service("alone", &[&module_line(fx, args)]);
    let r = fx.client(&alone, user).answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_PERM_DENIED", "{user} [{args}]: {r:?}");
    assert!(r.prompts.is_empty(), "{user} [{args}] prompted: {r:?}");
    let line = r.only_module_line();
    assert!(line.contains("result=skipped"), "{line}");
    assert!(line.contains(why), "want {why:?} in {line}");

    let stacked = fx.service(
        "stacked",
        &["auth required pam_permit.so", &module_line(fx, args)],
    );
    let r = fx.client(&stacked, user).answer("123456").run();
    assert_eq!(r.result, "PAM_SUCCESS", "{user} [{args}]: {r:?}");
    assert!(r.prompts.is_empty(), "{user} [{args}] prompted: {r:?}");
}

/// Asserts that the module enforces the code for `user` (enrolled with
/// SECRET): prompted, a wrong code refused, the right one accepted.
fn assert_enforced(fx: &Fixture, user: &str, args: &str) {
    let svc = fx.service("enforced", &[&module_line(fx, args)]);
    let r = fx.client(&svc, user).answer("000000x").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{user} [{args}]: {r:?}");
    assert_eq!(r.prompts.len(), 1, "{user} [{args}]: {r:?}");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, user).answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{user} [{args}]: {r:?}");
}

#[test]
fn nullok_without_a_secret_file_is_ignored_without_a_prompt() {
    let fx = Fixture::new();
    assert_ignored(&fx, "root", "nullok", "not-enrolled,nullok");
}

#[test]
fn nullok_does_not_excuse_an_enrolled_user() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    assert_enforced(&fx, "root", "nullok");
}

#[test]
fn without_nullok_a_missing_file_is_prompted_then_refused() {
    let fx = Fixture::new();
    let svc = fx.module_service("nofile", "");
    let r = fx.client(&svc, "root").answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts, vec![(1, "Verification code: ".to_owned())]);
    assert_eq!(r.audit_results(), ["not-enrolled"]);
}

#[test]
fn an_unknown_user_is_prompted_like_anyone_then_refused() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("unknown", "");
    let enrolled = fx.client(&svc, "root").answer("000000").run();
    for args in ["", "nullok"] {
        let svc = fx.module_service("unknown", args);
        for user in [
            "pamtotp-no-such-user",
            "../../etc/passwd",
            "-rf",
            "a b",
            ".hidden",
            "user\nresult=success",
        ] {
            let r = fx.client(&svc, user).answer("123456").syslog().run();
            assert_eq!(r.result, "PAM_AUTH_ERR", "{user:?} [{args}]: {r:?}");
            // The same prompt as an enrolled user gets: nothing tells them apart.
            assert_eq!(r.prompts, enrolled.prompts, "{user:?}");
            r.only_module_line();
            assert_eq!(r.audit_results(), ["unknown-user"], "{user:?}");
        }
    }
    // No state file was made for any of them (root's is from `enrolled`).
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
}

#[test]
fn require_group_enforces_only_for_members() {
    let member = ensure_user("pamtotp-member", &["pamtotp-otp"]);
    let outsider = ensure_user("pamtotp-outsider", &[]);
    let fx = Fixture::new();
    fx.enroll(&member.name, SECRET, "SHA1", 6, 30);
    fx.enroll(&outsider.name, SECRET, "SHA1", 6, 30);
    let args = "require_group=pamtotp-otp";
    assert_enforced(&fx, &member.name, args);
    assert_ignored(&fx, &outsider.name, args, "require_group=pamtotp-otp");
    // A primary group counts.
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    assert_enforced(&fx, "root", "require_group=root");
}

/// A typo in require_group must not switch the second factor off for
/// everybody: a group that does not exist is a configuration error.
#[test]
fn require_group_naming_no_group_denies() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let stacked = fx.service(
        "nogroup",
        &[
            "auth required pam_permit.so",
            &module_line(&fx, "require_group=pamtotp-no-such-group"),
        ],
    );
    let r = fx.client(&stacked, "root").answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    let line = r.only_module_line();
    assert!(line.contains("result=config-error"), "{line}");
    assert!(line.contains("does not exist"), "{line}");
}

#[test]
fn exempt_group_members_are_ignored() {
    let exempted = ensure_user("pamtotp-exempted", &["pamtotp-otp", "pamtotp-exempt"]);
    let member = ensure_user("pamtotp-member", &["pamtotp-otp"]);
    let fx = Fixture::new();
    // Even with a secret file, an exempted user is not asked.
    fx.enroll(&exempted.name, SECRET, "SHA1", 6, 30);
    fx.enroll(&member.name, SECRET, "SHA1", 6, 30);
    let args = "exempt_group=pamtotp-exempt";
    assert_ignored(&fx, &exempted.name, args, "exempt_group=pamtotp-exempt");
    assert_enforced(&fx, &member.name, args);
    // Both rules: exemption wins.
    let both = "require_group=pamtotp-otp exempt_group=pamtotp-exempt";
    assert_ignored(&fx, &exempted.name, both, "exempt_group");
}

/// Issue 11, "Must work" 3: a user the module cannot look up is in no
/// group, so neither rule may skip it. It is asked for a code like anyone
/// and refused, also when pam_permit follows (PAM_IGNORE would let
/// pam_permit's success stand).
#[test]
fn group_rules_never_skip_an_unknown_user() {
    ensure_group("pamtotp-otp");
    ensure_group("pamtotp-exempt");
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let enrolled = fx
        .client(&fx.service("enrolled", &[&module_line(&fx, "")]), "root")
        .answer("000000")
        .run();
    for args in [
        "require_group=pamtotp-otp",
        "require_group=pamtotp-otp nullok",
        "exempt_group=pamtotp-exempt",
        "require_group=pamtotp-otp exempt_group=pamtotp-exempt",
    ] {
        let stacked = fx.service(
            "then-permit",
            &[&module_line(&fx, args), "auth required pam_permit.so"],
        );
        for user in ["pamtotp-no-such-user", "a b"] {
            let r = fx.client(&stacked, user).answer("123456").syslog().run();
            assert_eq!(r.result, "PAM_AUTH_ERR", "{user:?} [{args}]: {r:?}");
            assert_eq!(r.prompts, enrolled.prompts, "{user:?} [{args}]");
            assert_eq!(r.audit_results(), ["unknown-user"], "{user:?} [{args}]");
        }
    }
}

/// After a failed pam_authenticate, libpam replays the frozen auth chain
/// and fails pam_setcred whatever the modules say (and sshd does not call
/// it); the module's own answer is tested directly in module_abi.rs.
#[test]
fn setcred_succeeds_after_a_login() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("setcred", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).setcred().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.setcred, Some(0), "{r:?}");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
