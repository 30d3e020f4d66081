//! Several keys (devices) in one enrollment.
use super::*;

fn both<'a>(a: &'a OtpKey, b: &'a OtpKey) -> Credentials<'a> {
    Credentials {
        keys: vec![a, b],
        ..totp(a)
    }
}

#[test]
fn a_code_of_either_key_logs_in_and_each_key_spends_its_own_steps() {
    let (a, b) = (key(), other_key(7));
    let creds = both(&a, &b);
    let p = lenient();
    let mut st = UserState::new();
    let now = 1_000_000;
    let step = a.step_at(now);
    let (code_a, code_b) = (a.totp_code(step), b.totp_code(step));
    assert_ne!(code_a, code_b);
    assert_eq!(
        attempt(&creds, &code_a, now, &p, &mut st),
        Outcome::Accepted(Method::Totp { key: 0, step })
    );
    // The same step of the other key is not spent by it...
    assert_eq!(st.last_step(&b), None);
    assert_eq!(
        attempt(&creds, &code_b, now, &p, &mut st),
        Outcome::Accepted(Method::Totp { key: 1, step })
    );
    // ...and each is spent once used.
    for code in [&code_a, &code_b] {
        assert!(matches!(
            attempt(&creds, code, now, &p, &mut st),
            Outcome::Replayed(Method::Totp { .. })
        ));
    }
    assert_eq!(st.last_step(&a), Some(step));
    assert_eq!(st.last_step(&b), Some(step));
    assert_eq!(st.failed_attempts, 2);
}

#[test]
fn a_code_right_for_two_keys_is_one_attempt_and_accepted_once() {
    // Same secret, steps of 30 and 31 seconds: step 0 of each has the
    // same code, and the keys are different keys (fingerprints).
    let a = key();
    let b = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 31).unwrap();
    assert_ne!(a.fingerprint(), b.fingerprint());
    let creds = both(&a, &b);
    let p = lenient();
    let mut st = UserState::new();
    let code = a.totp_code(0);
    assert_eq!(
        attempt(&creds, &code, 10, &p, &mut st),
        Outcome::Accepted(Method::Totp { key: 0, step: 0 })
    );
    // Both keys' steps are spent: the code is never accepted again.
    assert_eq!(st.last_step(&a), Some(0));
    assert_eq!(st.last_step(&b), Some(0));
    assert!(matches!(
        attempt(&creds, &code, 11, &p, &mut st),
        Outcome::Replayed(_)
    ));
    assert_eq!((st.failures.len(), st.failed_attempts), (1, 1));
}

#[test]
fn a_wrong_code_with_several_keys_is_one_failure() {
    let (a, b) = (key(), other_key(7));
    let creds = both(&a, &b);
    let policy = Policy::default();
    let mut st = UserState::new();
    let now = 1_000_000;
    let step = a.step_at(now);
    let near: Vec<_> = (step - 1..=step + 1)
        .flat_map(|s| [a.totp_code(s), b.totp_code(s)])
        .collect();
    let wrong = (0..1000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.iter().any(|k| k.as_str() == c))
        .unwrap();
    assert_eq!(
        attempt(&creds, &wrong, now, &policy, &mut st),
        Outcome::Wrong
    );
    assert_eq!((st.failures.len(), st.failed_attempts), (1, 1));
    // Password + code readings of one answer are still one attempt.
    assert_eq!(
        attempt_any(&creds, &[&wrong, "x"], now, &policy, &mut st),
        Outcome::Wrong
    );
    assert_eq!(st.failures.len(), 2);
}
