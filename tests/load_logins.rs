//! Load through the real libpam, with exact accounting:
//!
//! - 200 processes of one user released at the same instant with one right
//!   code: exactly one success, 199 replays, 199 failures counted;
//! - 200 processes with wrong codes: 200 failures counted, none lost;
//! - attempts spread over 1,000 users (generated accounts in a private
//!   mount namespace, tests/ns_support), up to 250 processes at once, each
//!   user's attempts together: per user, exactly the successes, replays and
//!   failures its attempts must give.
//!
//! The tests of this file run one at a time (each starts hundreds of
//! processes); timings are in docs/benchmarks.md, not asserted here.
//!
//! Issue 8, "Must work" 3.

mod common;
mod ns_support;

use common::*;
use ns_support::UserWorld;

use std::sync::Mutex;

/// One load test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const CROWD: usize = 200;

/// Each client holds two pipes of ours: allow more than the usual 1,024
/// open files (up to the hard limit).
fn allow_many_open_files() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn count<'a>(of: impl IntoIterator<Item = &'a String>, what: &str) -> usize {
    of.into_iter().filter(|r| *r == what).count()
}

#[test]
fn two_hundred_logins_with_one_code_exactly_one_succeeds() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    allow_many_open_files();
    let fx = Fixture::new();
    let secret = fx.enroll("root", SECRET, "SHA1", 6, 30);
    let before = fingerprint(&secret);
    let svc = fx.module_service("crowd", "rate_limit=1000/60");
    // The release takes a second or two; the step must not turn meanwhile.
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let runs = (0..CROWD)
        .map(|_| fx.client(&svc, "root").answer(&code).syslog())
        .collect();
    let results = release_together(fx.path(), runs);
    assert_eq!(results.len(), CROWD);
    let verdicts: Vec<String> = results.iter().map(|r| r.result.clone()).collect();
    assert_eq!(count(&verdicts, "PAM_SUCCESS"), 1, "{results:?}");
    assert_eq!(count(&verdicts, "PAM_AUTH_ERR"), CROWD - 1, "{results:?}");
    let audit: Vec<String> = results.iter().flat_map(|r| r.audit_results()).collect();
    assert_eq!(audit.len(), CROWD, "one audit line each: {results:?}");
    assert_eq!(count(&audit, "success"), 1);
    assert_eq!(count(&audit, "replayed-code"), CROWD - 1);
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(CROWD as i64 - 1));
    assert_eq!(st["failures"].as_array().unwrap().len(), CROWD - 1);
    assert_eq!(
        key_field(&st, "last_step"),
        Some((now() / 30) as i64),
        "{st:?}"
    );
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
    assert_eq!(fingerprint(&secret), before);
}

#[test]
fn two_hundred_concurrent_wrong_codes_are_all_counted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    allow_many_open_files();
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("crowd", "rate_limit=1000/60");
    // Six-digit codes, none of them a code of the steps around now (two
    // steps either way, so they stay wrong if a step turns meanwhile).
    let near: Vec<String> = (-2..=2)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect();
    let wrong: Vec<String> = (0..)
        .map(|i| format!("{:06}", 100_000 + i * 4_999))
        .filter(|c| !near.contains(c))
        .take(CROWD)
        .collect();
    let runs = wrong
        .iter()
        .map(|c| fx.client(&svc, "root").answer(c).syslog())
        .collect();
    let results = release_together(fx.path(), runs);
    let audit: Vec<String> = results.iter().flat_map(|r| r.audit_results()).collect();
    assert_eq!(audit.len(), CROWD, "{results:?}");
    assert_eq!(count(&audit, "wrong-code"), CROWD, "{results:?}");
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(CROWD as i64));
    assert_eq!(st["failures"].as_array().unwrap().len(), CROWD);
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
}

/// What user `i` of the thousand tries: wrong codes first (all users at
/// once, in batches), then copies of its right code.
fn plan(i: usize) -> (usize, usize) {
    (i % 3, (i / 3) % 3)
}

/// The users, in batches of at most `max` attempts, each user's attempts
/// in one batch.
fn batches(users: usize, attempts: impl Fn(usize) -> usize, max: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    for i in 0..users {
        let n = attempts(i);
        if n == 0 {
            continue;
        }
        if size + n > max {
            out.push(Vec::new());
            size = 0;
        }
        out.last_mut().unwrap().push(i);
        size += n;
    }
    out
}

const USERS: usize = 1000;
const AT_ONCE: usize = 250;

#[test]
fn attempts_spread_over_a_thousand_users_are_accounted_exactly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    allow_many_open_files();
    let w = UserWorld::new("load", USERS);
    let svc = w.fx.module_service("thousand", "rate_limit=1000/600");
    let name = |i: usize| w.users[i].name.as_str();

    // Phase 1: wrong codes (not even of a code's form, so no user's right
    // code can be among them).
    let mut results: Vec<Vec<String>> = vec![Vec::new(); USERS];
    for batch in batches(USERS, |i| plan(i).0, AT_ONCE) {
        let who: Vec<usize> = batch
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, plan(i).0))
            .collect();
        let runs = who
            .iter()
            .map(|&i| w.client(&svc, name(i)).answer("000000x"))
            .collect();
        for (&i, r) in who.iter().zip(release_together(w.fx.path(), runs)) {
            results[i].push(r.result);
        }
    }

    // Phase 2: right codes, from oathtool (16 at a time).
    avoid_step_edge(30, 8);
    let step = (now() / 30) as i64;
    let with_code: Vec<usize> = (0..USERS).filter(|&i| plan(i).1 > 0).collect();
    let mut codes: Vec<Option<String>> = vec![None; USERS];
    std::thread::scope(|s| {
        let handles: Vec<_> = with_code
            .chunks(with_code.len().div_ceil(16))
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter()
                        .map(|&i| (i, oathtool_totp(&w.users[i].secret, "SHA1", 6, 30, 0)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, c) in h.join().unwrap() {
                codes[i] = Some(c);
            }
        }
    });
    for batch in batches(USERS, |i| plan(i).1, AT_ONCE) {
        let who: Vec<usize> = batch
            .iter()
            .flat_map(|&i| std::iter::repeat_n(i, plan(i).1))
            .collect();
        let runs = who
            .iter()
            .map(|&i| w.client(&svc, name(i)).answer(codes[i].as_ref().unwrap()))
            .collect();
        for (&i, r) in who.iter().zip(release_together(w.fx.path(), runs)) {
            results[i].push(r.result);
        }
    }

    for (i, got) in results.iter().enumerate() {
        let (wrong, right) = plan(i);
        let user = name(i);
        assert_eq!(got.len(), wrong + right, "{user}");
        let successes = count(got, "PAM_SUCCESS");
        assert_eq!(successes, right.min(1), "{user}: {got:?}");
        assert_eq!(count(got, "PAM_AUTH_ERR"), got.len() - successes);
        let Some(st) = w.fx.state(user) else {
            assert_eq!(wrong + right, 0, "{user}: no state file");
            continue;
        };
        // A success clears the count; the replays after it are counted.
        let failed = if right > 0 { right - 1 } else { wrong };
        assert_eq!(
            st["failed_attempts"].as_integer(),
            Some(failed as i64),
            "{user}: {st:?}"
        );
        let failures = wrong + right.saturating_sub(1);
        assert_eq!(
            st["failures"].as_array().unwrap().len(),
            failures,
            "{user}: {st:?}"
        );
        let last = key_field(&st, "last_step");
        assert_eq!(last, (right > 0).then_some(step), "{user}: {st:?}");
    }
}
