//! Concurrent logins through the real libpam: 20 real processes released at
//! the same instant through a FIFO.
//!
//! Issue 2, "Must work" 2 (exactly one of 20 wins, every time), 3 (every
//! concurrent failure is counted) and 6 (the state lock is not held while
//! the user types).

mod common;
use common::*;

use std::time::Duration;

const RACERS: usize = 20;

fn count(results: &[PamResult], what: &str) -> usize {
    results.iter().filter(|r| r.result == what).count()
}

fn audit_count(results: &[PamResult], what: &str) -> usize {
    results
        .iter()
        .flat_map(|r| r.audit_results())
        .filter(|r| r == what)
        .count()
}

/// Releases RACERS clients of `user` typing `code` at once; checks that
/// exactly one gets in. Returns the results.
fn race(fx: &Fixture, svc: &str, user: &str, code: &str, syslog: bool) -> Vec<PamResult> {
    let runs = (0..RACERS)
        .map(|_| {
            let r = fx.client(svc, user).answer(code);
            if syslog {
                r.syslog()
            } else {
                r
            }
        })
        .collect();
    let results = release_together(fx.path(), runs);
    assert_eq!(results.len(), RACERS);
    assert_eq!(
        count(&results, "PAM_SUCCESS"),
        1,
        "exactly one of {RACERS} must win: {results:?}"
    );
    assert_eq!(count(&results, "PAM_AUTH_ERR"), RACERS - 1, "{results:?}");
    results
}

#[test]
fn twenty_logins_with_one_code_exactly_one_succeeds_every_time() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    // window=4: seven rounds, each with the code of a later step than the
    // round before, all valid for the whole test.
    let svc = fx.module_service("race", "window=4 rate_limit=1000/60");
    avoid_step_edge(30, 3);
    for (round, offset) in (-3..=3).enumerate() {
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, offset);
        let syslog = round == 0;
        let results = race(&fx, &svc, "root", &code, syslog);
        if syslog {
            assert_eq!(audit_count(&results, "success"), 1, "{results:?}");
            assert_eq!(
                audit_count(&results, "replayed-code"),
                RACERS - 1,
                "{results:?}"
            );
            for r in &results {
                r.only_module_line();
            }
        }
    }
    let st = fx.state("root").unwrap();
    // 6 losers per round are failures; the last round's winner reset the count.
    assert_eq!(
        st["failed_attempts"].as_integer(),
        Some(RACERS as i64 - 1),
        "{st:?}"
    );
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
}

#[test]
fn races_of_other_users_are_independent() {
    let a = ensure_user("pamtotp-race-a", &[]);
    let b = ensure_user("pamtotp-race-b", &[]);
    let fx = Fixture::new();
    fx.enroll(&a.name, SECRET, "SHA1", 6, 30);
    fx.enroll(&b.name, SEED2, "SHA256", 8, 30);
    // window=2: three rounds, each with the code of a later step.
    let svc = fx.module_service("race2", "window=2 rate_limit=1000/60");
    avoid_step_edge(30, 3);
    for offset in -1..=1 {
        // Both users race at the same instant, 20 processes each.
        let ca = oathtool_totp(SECRET, "SHA1", 6, 30, offset);
        let cb = oathtool_totp(SEED2, "SHA256", 8, 30, offset);
        let runs = (0..RACERS)
            .flat_map(|_| {
                [
                    fx.client(&svc, &a.name).answer(&ca),
                    fx.client(&svc, &b.name).answer(&cb),
                ]
            })
            .collect();
        let results = release_together(fx.path(), runs);
        let wins = |first: usize| {
            results
                .iter()
                .skip(first)
                .step_by(2)
                .filter(|r| r.result == "PAM_SUCCESS")
                .count()
        };
        assert_eq!(wins(0), 1, "offset {offset}, {}: {results:?}", a.name);
        assert_eq!(wins(1), 1, "offset {offset}, {}: {results:?}", b.name);
    }
}

const SEED2: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";

#[test]
fn twenty_concurrent_failures_are_all_counted() {
    // Default rate limit 3/30: three are checked and fail, seventeen are
    // refused by the limit; every one is counted.
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("fail", "");
    let runs = (0..RACERS)
        .map(|_| fx.client(&svc, "root").answer("000000x").syslog())
        .collect();
    let results = release_together(fx.path(), runs);
    assert_eq!(count(&results, "PAM_AUTH_ERR"), RACERS, "{results:?}");
    assert_eq!(audit_count(&results, "wrong-code"), 3, "{results:?}");
    assert_eq!(
        audit_count(&results, "rate-limited"),
        RACERS - 3,
        "{results:?}"
    );
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(RACERS as i64));
    assert_eq!(st["failures"].as_array().unwrap().len(), 3, "{st:?}");
}

#[test]
fn twenty_concurrent_failures_under_a_high_limit_are_all_recorded() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("fail", "rate_limit=100/600");
    let runs = (0..RACERS)
        .map(|i| {
            fx.client(&svc, "root")
                .answer(&format!("{:06}", 999_000 + i))
        })
        .collect();
    let results = release_together(fx.path(), runs);
    assert_eq!(count(&results, "PAM_AUTH_ERR"), RACERS, "{results:?}");
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(RACERS as i64));
    assert_eq!(st["failures"].as_array().unwrap().len(), RACERS, "{st:?}");
}

#[test]
fn the_state_lock_is_not_held_while_the_user_types() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("typing", "rate_limit=100/60");
    avoid_step_edge(30, 8);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);

    // The first login sits at its prompt...
    let gate = Gate::new(&fx.path().join("typing"));
    let first = KillOnDrop(Some(
        fx.client(&svc, "root")
            .answer(&code)
            .answer_wait(gate.path())
            .syslog()
            .spawn(),
    ));
    gate.wait_opened_by(&[first.id()], GATE_TIMEOUT).unwrap();
    // ...while a second login of the same user runs to the end. Were the
    // lock held during the prompt, this would block (and time out).
    let second = fx.client(&svc, "root").answer(&code).spawn();
    let second = PamResult::from_output(wait_bounded(second, Duration::from_secs(60)));
    let still_waiting = gate.is_open_by(first.id());
    gate.release();
    let first = first.finish();

    assert!(still_waiting, "the first login left its prompt early");
    assert_eq!(second.result, "PAM_SUCCESS", "{second:?}");
    assert_eq!(first.prompts.len(), 1, "{first:?}");
    // The first then checks the same code under the lock: already spent.
    assert_eq!(first.result, "PAM_AUTH_ERR", "{first:?}");
    assert_eq!(first.audit_results(), ["replayed-code"], "{first:?}");
}
