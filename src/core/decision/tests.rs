use super::*;
use crate::core::otp::Algorithm;
use crate::core::policy::{Policy, RateLimit};
use crate::core::user_state::{MAX_KEYS, MAX_USED_SCRATCH, TOTP_REPLAY_HORIZON};

fn key() -> OtpKey {
    OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap()
}

#[test]
fn accepts_then_refuses_replay() {
    let key = key();
    let limits = FileLimits::default();
    let creds = Credentials {
        keys: vec![&key],
        scratch: &[],
        counter: Counter::Time,
        limits: &limits,
    };
    let mut st = UserState::new();
    let now = 1_000_000;
    let code = key.totp_code(key.step_at(now));
    let p = Policy::default();
    assert!(attempt(&creds, &code, now, &p, &mut st).is_success());
    assert!(matches!(
        attempt(&creds, &code, now, &p, &mut st),
        Outcome::Replayed(_)
    ));
    assert_eq!(st.failed_attempts, 1);
}

#[test]
fn rate_limit_blocks_right_code() {
    let key = key();
    let limits = FileLimits::default();
    let creds = Credentials {
        keys: vec![&key],
        scratch: &[],
        counter: Counter::Time,
        limits: &limits,
    };
    let mut st = UserState::new();
    let p = Policy::default();
    let now = 1_000_000;
    for _ in 0..3 {
        assert_eq!(attempt(&creds, "000000x", now, &p, &mut st), Outcome::Wrong);
    }
    let code = key.totp_code(key.step_at(now));
    assert_eq!(
        attempt(&creds, &code, now + 29, &p, &mut st),
        Outcome::RateLimited { retry_after: 1 }
    );
    assert_eq!(st.failures.len(), 3);
    assert_eq!(st.failed_attempts, 4);
    let later = now + 30;
    let code = key.totp_code(key.step_at(later));
    assert!(attempt(&creds, &code, later, &p, &mut st).is_success());
    assert_eq!(st.failed_attempts, 0);
}

#[test]
fn hotp_counters_are_used_once_and_in_order() {
    let key = key();
    let limits = FileLimits::default();
    let creds = Credentials {
        keys: vec![&key],
        scratch: &[],
        counter: Counter::Event { first: 5 },
        limits: &limits,
    };
    let p = Policy::default();
    let mut st = UserState::new();
    // Behind the file's counter: refused.
    assert_eq!(
        attempt(&creds, &key.hotp_code(4), 0, &p, &mut st),
        Outcome::Wrong
    );
    // Two ahead: accepted (look-ahead of three with window 1).
    assert_eq!(
        attempt(&creds, &key.hotp_code(7), 0, &p, &mut st),
        Outcome::Accepted(Method::Hotp { key: 0, counter: 7 })
    );
    assert_eq!(st.hotp_next(&key), Some(8));
    // Skipped and used counters are never accepted again.
    for c in [5, 6, 7] {
        assert_eq!(
            attempt(&creds, &key.hotp_code(c), 100, &p, &mut st),
            Outcome::Wrong
        );
    }
    assert!(attempt(&creds, &key.hotp_code(8), 200, &p, &mut st).is_success());
}

#[test]
fn file_limits_only_tighten() {
    let key = key();
    let limits = FileLimits {
        window: Some((0, 0)),
        rate_limit: Some(RateLimit {
            max_failures: 10,
            seconds: 60,
        }),
        spent_step: Some(40),
    };
    let creds = Credentials {
        keys: vec![&key],
        scratch: &[],
        counter: Counter::Time,
        limits: &limits,
    };
    let p = Policy::default();
    // 3 of ours, over 60 s of the file's.
    assert_eq!(
        creds.rate_limit(&p),
        RateLimit {
            max_failures: 3,
            seconds: 60
        }
    );
    let now = 1_000_000;
    let step = key.step_at(now);
    let mut st = UserState::new();
    // The file's window of one code refuses the previous step.
    assert_eq!(
        attempt(&creds, &key.totp_code(step - 1), now, &p, &mut st),
        Outcome::Wrong
    );
    // A step the file lists as used is a replay.
    let old = Credentials {
        limits: &FileLimits {
            spent_step: Some(step),
            ..FileLimits::default()
        },
        ..creds
    };
    assert!(matches!(
        attempt(&old, &key.totp_code(step), now, &p, &mut st),
        Outcome::Replayed(_)
    ));
}

#[test]
fn a_new_key_starts_with_fresh_steps_and_counters() {
    let old = key();
    let new = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 60).unwrap();
    let limits = FileLimits::default();
    let creds = |k| Credentials {
        keys: vec![k],
        scratch: &[],
        counter: Counter::Time,
        limits: &limits,
    };
    let p = Policy::default();
    let mut st = UserState::new();
    let now = 1_000_000;
    assert!(attempt(
        &creds(&old),
        &old.totp_code(old.step_at(now)),
        now,
        &p,
        &mut st
    )
    .is_success());
    // Same secret, period 60 instead of 30: the 30-second step number
    // is twice any 60-second one, which would refuse every code forever.
    let later = now + 60;
    assert!(attempt(
        &creds(&new),
        &new.totp_code(new.step_at(later)),
        later,
        &p,
        &mut st
    )
    .is_success());
    assert_eq!(st.last_step(&new), Some(new.step_at(later)));
    // The old key's step is still spent.
    assert_eq!(st.last_step(&old), Some(old.step_at(now)));
    // And the new key's steps are protected as usual.
    assert!(matches!(
        attempt(
            &creds(&new),
            &new.totp_code(new.step_at(later)),
            later,
            &p,
            &mut st
        ),
        Outcome::Replayed(_)
    ));
}

fn totp(k: &OtpKey) -> Credentials<'_> {
    static LIMITS: FileLimits = FileLimits {
        window: None,
        rate_limit: None,
        spent_step: None,
    };
    Credentials {
        keys: vec![k],
        scratch: &[],
        counter: Counter::Time,
        limits: &LIMITS,
    }
}

fn other_key(n: u8) -> OtpKey {
    OtpKey::new(&[n; 20], Algorithm::Sha1, 6, 30).unwrap()
}

/// Generous enough that the tests below are never rate limited.
fn lenient() -> Policy {
    Policy {
        window: 1,
        rate_limit: RateLimit {
            max_failures: 1000,
            seconds: 1,
        },
    }
}

#[test]
fn a_step_spent_with_one_key_stays_spent_after_attempts_with_another() {
    let (a, b) = (key(), other_key(7));
    let p = lenient();
    let mut st = UserState::new();
    let now = 1_000_000;
    let code_a = a.totp_code(a.step_at(now));
    assert!(attempt(&totp(&a), &code_a, now, &p, &mut st).is_success());
    for i in 0..3 {
        // A wrong attempt, then a right one, through a service that
        // reads the other key's file.
        assert_eq!(
            attempt(&totp(&b), "x", now + i, &p, &mut st),
            Outcome::Wrong
        );
        let code_b = b.totp_code(b.step_at(now) - 1 + i);
        assert!(attempt(&totp(&b), &code_b, now + i, &p, &mut st).is_success());
        assert!(
            matches!(
                attempt(&totp(&a), &code_a, now + i, &p, &mut st),
                Outcome::Replayed(Method::Totp { .. })
            ),
            "round {i}"
        );
    }
    // And the other way round.
    let code_b = b.totp_code(b.step_at(now) + 1);
    assert!(matches!(
        attempt(&totp(&b), &code_b, now + 3, &p, &mut st),
        Outcome::Replayed(_)
    ));
    assert_eq!(st.keys.len(), 2);
}

#[test]
fn a_used_scratch_code_stays_used_whatever_file_is_read() {
    let (a, b) = (key(), other_key(7));
    let hashes = [ScratchHash::new("12345678", [1; 16])];
    let limits = FileLimits::default();
    let with = |k, scratch| Credentials {
        keys: vec![k],
        scratch,
        counter: Counter::Time,
        limits: &limits,
    };
    let p = lenient();
    let mut st = UserState::new();
    assert!(attempt(&with(&a, &hashes), "12345678", 10, &p, &mut st).is_success());
    // A file without that scratch code (which used to prune it)...
    assert_eq!(
        attempt(&with(&b, &[]), "12345678", 11, &p, &mut st),
        Outcome::Wrong
    );
    assert_eq!(st.used_scratch, vec![hashes[0].id()]);
    // ...and the code is still used when its file is read again.
    assert!(matches!(
        attempt(&with(&a, &hashes), "12345678", 12, &p, &mut st),
        Outcome::Replayed(Method::Scratch { .. })
    ));
    assert_eq!(remaining_scratch(&hashes, &st), 0);
}

#[test]
fn hotp_counters_are_kept_per_key() {
    let (a, b) = (key(), other_key(7));
    let limits = FileLimits::default();
    let hotp = |k| Credentials {
        keys: vec![k],
        scratch: &[],
        counter: Counter::Event { first: 0 },
        limits: &limits,
    };
    let p = lenient();
    let mut st = UserState::new();
    assert!(attempt(&hotp(&a), &a.hotp_code(1), 0, &p, &mut st).is_success());
    assert!(attempt(&hotp(&b), &b.hotp_code(0), 1, &p, &mut st).is_success());
    assert_eq!(
        attempt(&hotp(&a), &a.hotp_code(1), 2, &p, &mut st),
        Outcome::Wrong
    );
    assert_eq!(st.hotp_next(&a), Some(2));
    assert_eq!(st.hotp_next(&b), Some(1));
}

#[test]
fn re_enrolling_starts_the_new_key_fresh_and_keeps_the_old_spent() {
    let (old, new) = (key(), other_key(9));
    let p = lenient();
    let mut st = UserState::new();
    let now = 2_000_000;
    let step = old.step_at(now);
    st.spend_step(&old, step + 1, now).unwrap();
    // The new key's codes of this very step are accepted...
    assert!(attempt(&totp(&new), &new.totp_code(step), now, &p, &mut st).is_success());
    // ...and the old key's spent steps are still spent.
    assert!(matches!(
        attempt(&totp(&old), &old.totp_code(step), now, &p, &mut st),
        Outcome::Replayed(_)
    ));
}

#[test]
fn the_key_table_evicts_only_what_can_no_longer_refuse() {
    let p = lenient();
    let mut st = UserState::new();
    let t0 = 1_000_000_000;
    for n in 0..MAX_KEYS as u8 {
        let k = other_key(n);
        let t = t0 + u64::from(n);
        assert!(attempt(&totp(&k), &k.totp_code(k.step_at(t)), t, &p, &mut st).is_success());
    }
    assert_eq!(st.keys.len(), MAX_KEYS);
    // All 32 still protect spent steps: a 33rd key (one the user can
    // write into their own file) cannot push one of them out.
    let extra = other_key(200);
    let t = t0 + 100;
    let code = extra.totp_code(extra.step_at(t));
    assert_eq!(
        attempt(&totp(&extra), &code, t, &p, &mut st),
        Outcome::Refused(
            Method::Totp {
                key: 0,
                step: extra.step_at(t)
            },
            Refusal::KeyTableFull
        )
    );
    assert_eq!(st.keys.len(), MAX_KEYS);
    // Once their steps are out of every window, the one unused for
    // longest makes room; the others stay.
    let later = t0 + 1 + TOTP_REPLAY_HORIZON;
    let code = extra.totp_code(extra.step_at(later));
    assert!(attempt(&totp(&extra), &code, later, &p, &mut st).is_success());
    assert_eq!(st.keys.len(), MAX_KEYS);
    assert!(st.key_state(&other_key(0)).is_none());
    assert!(st.key_state(&other_key(1)).is_some());
    assert!(st.key_state(&extra).is_some());
    // An HOTP counter is never evicted: it is spent for ever.
    let mut st = UserState::new();
    let limits = FileLimits::default();
    for n in 0..MAX_KEYS as u8 {
        let k = other_key(n);
        let creds = Credentials {
            keys: vec![&k],
            scratch: &[],
            counter: Counter::Event { first: 0 },
            limits: &limits,
        };
        assert!(attempt(&creds, &k.hotp_code(0), 0, &p, &mut st).is_success());
    }
    let far = u64::MAX / 2;
    let code = extra.totp_code(extra.step_at(far));
    assert!(matches!(
        attempt(&totp(&extra), &code, far, &p, &mut st),
        Outcome::Refused(_, Refusal::KeyTableFull)
    ));
}

#[test]
fn used_scratch_codes_are_never_dropped_to_make_room() {
    let hashes = [ScratchHash::new("12345678", [1; 16])];
    let k = key();
    let limits = FileLimits::default();
    let creds = Credentials {
        keys: vec![&k],
        scratch: &hashes,
        counter: Counter::Time,
        limits: &limits,
    };
    let mut st = UserState::new();
    st.used_scratch = (0..MAX_USED_SCRATCH).map(|i| format!("{i:032x}")).collect();
    let before = st.used_scratch.clone();
    assert_eq!(
        attempt(&creds, "12345678", 10, &lenient(), &mut st),
        Outcome::Refused(
            Method::Scratch { id: hashes[0].id() },
            Refusal::ScratchTableFull
        )
    );
    assert_eq!(st.used_scratch, before);
    assert_eq!(st.failed_attempts, 1);
}

#[test]
fn an_hotp_counter_at_the_end_is_refused_not_accepted_again() {
    let k = key();
    let p = lenient();
    let limits = FileLimits {
        window: Some((0, 0)),
        ..FileLimits::default()
    };
    let at = |first| Credentials {
        keys: vec![&k],
        scratch: &[],
        counter: Counter::Event { first },
        limits: &limits,
    };
    // The last counter: accepting it would leave nothing to record as
    // the next one (saturating kept u64::MAX, accepted again and again).
    let mut st = UserState::new();
    let code = k.hotp_code(u64::MAX);
    for _ in 0..2 {
        assert_eq!(
            attempt(&at(u64::MAX), &code, 0, &p, &mut st),
            Outcome::Refused(
                Method::Hotp {
                    key: 0,
                    counter: u64::MAX
                },
                Refusal::HotpExhausted
            )
        );
    }
    assert_eq!(st.hotp_next(&k), None);
    // The one before it is fine, once.
    let code = k.hotp_code(u64::MAX - 1);
    let mut st = UserState::new();
    assert!(attempt(&at(u64::MAX - 1), &code, 0, &p, &mut st).is_success());
    assert_eq!(st.hotp_next(&k), Some(u64::MAX));
    assert_eq!(
        attempt(&at(u64::MAX - 1), &code, 1, &p, &mut st),
        Outcome::Wrong
    );
    // A look-ahead window that would run past the end refuses with a
    // reason, whatever is typed in the form of a code.
    let wide = Credentials {
        limits: &FileLimits::default(),
        ..at(u64::MAX - 1)
    };
    let mut st = UserState::new();
    assert_eq!(
        attempt(&wide, &k.hotp_code(u64::MAX - 1), 0, &p, &mut st),
        Outcome::Refused(
            Method::Hotp {
                key: 0,
                counter: u64::MAX - 1
            },
            Refusal::HotpExhausted
        )
    );
    assert_eq!(st.keys, Vec::new());
}

#[test]
fn failures_near_the_end_of_time_still_count() {
    // Overflowing sums count the failure, never let it out.
    let limit = RateLimit {
        max_failures: 1,
        seconds: 30,
    };
    let mut st = UserState::new();
    st.failures = vec![u64::MAX - 5];
    assert!(st.locked(u64::MAX, limit));
    assert!(st.locked(u64::MAX - 20, limit));
}

/// A code right for two keys (same secret, steps of 30 and 31 seconds: both
/// at step 0 at first) spent for one is a replay, though fresh for the
/// other: which device showed it cannot be told, and a code once accepted
/// never logs in again. The other key's step stays unspent; one failure.
#[test]
fn a_code_spent_on_one_key_and_fresh_on_another_is_a_replay() {
    let a = key();
    let b = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 31).unwrap();
    let both = Credentials {
        keys: vec![&a, &b],
        ..totp(&a)
    };
    let code = a.totp_code(0);
    assert_eq!(code, b.totp_code(0));
    let mut st = UserState::new();
    st.spend_step(&a, 0, 5).unwrap();
    assert_eq!(
        attempt(&both, &code, 10, &lenient(), &mut st),
        Outcome::Replayed(Method::Totp { key: 0, step: 0 })
    );
    assert_eq!(st.last_step(&b), None);
    assert_eq!((st.failures.len(), st.failed_attempts), (1, 1));
}

mod several_keys;
