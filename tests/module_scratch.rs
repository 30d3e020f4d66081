//! Scratch codes through the real libpam. The secret file holds only
//! salted hashes (made here with the crate's `ScratchHash`); each code
//! works once, also when 20 processes try it at the same instant; its use
//! is recorded in the state and the secret file is never rewritten.
//!
//! Issue 2, "Must work" 4 (and 6: logins never write the secret file).

mod common;
mod ns_support;
use common::*;

const CODES: [&str; 3] = ["12345678", "87654321", "55501234"];

/// The state-file identifier of the n-th code (its salt, hex).
fn id(n: u8) -> String {
    format!("{n:02x}").repeat(16)
}

#[test]
fn each_scratch_code_is_accepted_once() {
    let fx = Fixture::new();
    let file = fx.enroll_with_scratch("root", SECRET, &CODES);
    assert!(!std::fs::read_to_string(&file).unwrap().contains(CODES[0]));
    let svc = fx.module_service("scratch", "rate_limit=100/60");
    let before = fingerprint(&file);

    let r = fx.client(&svc, "root").answer(CODES[1]).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(
        r.only_module_line()
            .contains("result=scratch-code-used method=scratch remaining=2"),
        "{r:?}"
    );
    let r = fx.client(&svc, "root").answer(CODES[1]).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.only_module_line()
            .contains("result=replayed-code method=scratch"),
        "{r:?}"
    );
    let r = fx.client(&svc, "root").answer("11112222").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["wrong-code"]);
    // Typed with a space, as printed in groups.
    let r = fx.client(&svc, "root").answer("1234 5678").syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("remaining=1"), "{r:?}");

    let st = fx.state("root").unwrap();
    let used: Vec<&str> = st["used_scratch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(used, [id(2), id(1)], "{st:?}");
    // The state records identifiers, never codes.
    let text = String::from_utf8_lossy(&std::fs::read(fx.state_path("root")).unwrap()).into_owned();
    for c in CODES {
        assert!(!text.contains(c), "{text}");
    }
    assert_eq!(fingerprint(&file), before, "the secret file was touched");
}

#[test]
fn one_scratch_code_tried_by_twenty_processes_at_once_wins_once() {
    let fx = Fixture::new();
    let file = fx.enroll_with_scratch("root", SECRET, &CODES);
    let before = fingerprint(&file);
    let svc = fx.module_service("scratch-race", "rate_limit=1000/60");
    for code in [CODES[0], CODES[2]] {
        let runs = (0..20)
            .map(|_| fx.client(&svc, "root").answer(code).syslog())
            .collect();
        let results = release_together(fx.path(), runs);
        let wins = results.iter().filter(|r| r.result == "PAM_SUCCESS").count();
        assert_eq!(wins, 1, "{code}: {results:?}");
        let replayed = results
            .iter()
            .filter(|r| r.result == "PAM_AUTH_ERR")
            .filter(|r| r.only_module_line().contains("result=replayed-code"))
            .count();
        assert_eq!(replayed, 19, "{results:?}");
    }
    let st = fx.state("root").unwrap();
    assert_eq!(st["used_scratch"].as_array().unwrap().len(), 2, "{st:?}");
    assert_eq!(fingerprint(&file), before, "the secret file was touched");
}

#[test]
fn scratch_codes_beside_eight_digit_totp_codes() {
    // An 8-digit TOTP code and a scratch code have the same form.
    let fx = Fixture::new();
    let body = format!(
        "version = 1\nsecret = \"{SECRET}\"\ndigits = 8\nscratch_codes = [\"{}\"]\n",
        scratch_hash(CODES[0], 9)
    );
    let file = fx.secret_file("root", &body);
    let svc = fx.module_service("scratch8", "rate_limit=100/60");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 8, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("method=totp"), "{r:?}");
    let r = fx.client(&svc, "root").answer(CODES[0]).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("method=scratch"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), body);
}

#[test]
fn a_rate_limited_user_cannot_use_a_scratch_code() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &CODES);
    let svc = fx.module_service("scratch-limit", "rate_limit=2/600");
    for _ in 0..2 {
        let r = fx.client(&svc, "root").answer("00000000").run();
        assert_eq!(r.result, "PAM_AUTH_ERR");
    }
    let r = fx.client(&svc, "root").answer(CODES[0]).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["rate-limited"]);
    // The code was not spent.
    let st = fx.state("root").unwrap();
    assert!(
        st.get("used_scratch")
            .and_then(|u| u.as_array())
            .is_none_or(|a| a.is_empty()),
        "{st:?}"
    );
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
