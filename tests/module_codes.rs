//! Codes through the real libpam: every algorithm, digit count and period
//! from the user's secret file, the `window=` edges, and replay protection.
//! Codes come from oathtool, an independent implementation.
//!
//! Issue 2, "Must work" 1 and 2 (the sequential half; the concurrent half
//! is in module_concurrency.rs).

mod common;
mod ns_support;
use common::*;

/// RFC 6238's seeds (20, 32 and 64 bytes), base32.
const SEED_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SEED_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
const SEED_SHA512: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";

fn seed(alg: &str) -> &'static str {
    match alg {
        "SHA1" => SEED_SHA1,
        "SHA256" => SEED_SHA256,
        _ => SEED_SHA512,
    }
}

/// A code that is certainly not `code`: its last digit changed.
fn altered(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    let last = b.last_mut().unwrap();
    *last = if *last == b'9' { b'0' } else { *last + 1 };
    String::from_utf8(b).unwrap()
}

#[test]
fn every_algorithm_digit_count_and_period() {
    for alg in ["SHA1", "SHA256", "SHA512"] {
        for digits in [6u8, 7, 8] {
            for period in [30u64, 60, 45] {
                let case = format!("{alg}/{digits}/{period}");
                let fx = Fixture::new();
                fx.enroll("root", seed(alg), alg, digits, period);
                let svc = fx.module_service("codes", "rate_limit=100/60");
                avoid_step_edge(period, 4);
                let code = oathtool_totp(seed(alg), alg, digits, period, 0);
                assert_eq!(code.len(), usize::from(digits), "{case}");

                let r = fx.client(&svc, "root").answer(&altered(&code)).run();
                assert_eq!(r.result, "PAM_AUTH_ERR", "{case} wrong code: {r:?}");

                let r = fx.client(&svc, "root").answer(&code).run();
                assert_eq!(r.result, "PAM_SUCCESS", "{case}: {r:?}");
                assert_eq!(r.prompts, vec![(1, "Verification code: ".to_owned())]);
            }
        }
    }
}

#[test]
fn parameters_come_from_the_users_file() {
    // The same secret under another algorithm, digit count or period
    // yields other codes, and those are refused.
    let fx = Fixture::new();
    fx.enroll("root", SEED_SHA1, "SHA256", 8, 60);
    let svc = fx.module_service("params", "rate_limit=100/60");
    avoid_step_edge(60, 4);
    for (alg, digits, period) in [("SHA1", 8, 60), ("SHA256", 6, 60), ("SHA256", 8, 30)] {
        let other = oathtool_totp(SEED_SHA1, alg, digits, period, 0);
        let right = oathtool_totp(SEED_SHA1, "SHA256", 8, 60, 0);
        if other == right {
            continue; // a coincidence of one in a million
        }
        let r = fx.client(&svc, "root").answer(&other).run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{alg}/{digits}/{period}: {r:?}");
    }
    let r = fx
        .client(&svc, "root")
        .answer(&oathtool_totp(SEED_SHA1, "SHA256", 8, 60, 0))
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// Checks `window=N` (or the default when `arg` is empty): codes N steps
/// away on either side are accepted, N+1 steps away refused as wrong.
fn window_edges(arg: &str, n: i64) {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("window", &format!("{arg} rate_limit=100/60"));
    // The whole sequence runs inside one step.
    avoid_step_edge(30, 10);
    let login = |offset: i64| {
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, offset);
        fx.client(&svc, "root").answer(&code).syslog().run()
    };
    for offset in [-(n + 1), n + 1] {
        let r = login(offset);
        assert_eq!(r.result, "PAM_AUTH_ERR", "{arg} offset {offset}: {r:?}");
        assert_eq!(r.audit_results(), ["wrong-code"], "{arg} {offset}: {r:?}");
    }
    // Oldest first: accepting a step spends it and every earlier one.
    let mut accepted = vec![-n, n];
    accepted.dedup();
    for offset in accepted {
        let r = login(offset);
        assert_eq!(r.result, "PAM_SUCCESS", "{arg} offset {offset}: {r:?}");
        assert!(
            r.only_module_line()
                .contains(&format!("result=success method=totp offset={offset}")),
            "{r:?}"
        );
    }
}

#[test]
fn window_zero_accepts_only_the_current_step() {
    window_edges("window=0", 0);
}

#[test]
fn default_window_is_one_step() {
    window_edges("", 1);
}

#[test]
fn window_one() {
    window_edges("window=1", 1);
}

#[test]
fn window_three() {
    window_edges("window=3", 3);
}

#[test]
fn window_ten_is_the_maximum() {
    window_edges("window=10", 10);
}

#[test]
fn a_spent_step_is_never_accepted_again() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("replay", "window=2 rate_limit=100/60");
    avoid_step_edge(30, 10);
    let code = |offset| oathtool_totp(SECRET, "SHA1", 6, 30, offset);

    let r = fx.client(&svc, "root").answer(&code(0)).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // The same code again, and codes of earlier steps still in the window.
    for offset in [0, -1, -2] {
        let r = fx.client(&svc, "root").answer(&code(offset)).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "offset {offset}: {r:?}");
        assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    }
    // A later step is still fine, once.
    let r = fx.client(&svc, "root").answer(&code(1)).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = fx.client(&svc, "root").answer(&code(1)).run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");

    let st = fx.state("root").expect("state file");
    let step = (now() / 30) as i64 + 1;
    assert_eq!(key_field(&st, "last_step"), Some(step), "{st:?}");
}

#[test]
fn typed_spaces_are_ignored_and_garbage_is_refused() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("typing", "rate_limit=100/60");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    for junk in [
        "",
        "abcdef",
        "12345",
        "1234567",
        &format!("{code}0"),
        "💥💥💥",
    ] {
        let r = fx.client(&svc, "root").answer(junk).run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{junk:?}: {r:?}");
    }
    let spaced = format!(" {} {} ", &code[..3], &code[3..]);
    let r = fx.client(&svc, "root").answer(&spaced).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn a_cancelled_conversation_is_refused() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("cancel", "");
    // No --answer: the client's conversation fails at the prompt.
    let r = fx.client(&svc, "root").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["no-code"], "{r:?}");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
