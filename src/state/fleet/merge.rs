//! The join of two account states: what a host decided on its local state
//! while the state server was unreachable (`state_unavailable=local`),
//! merged into the server's at the next contact.
//!
//! The state is a join-semilattice, so the merge never revives anything
//! and may be repeated (it is idempotent, commutative and associative):
//!
//! - per key fingerprint, the highest spent TOTP step, the highest next
//!   HOTP counter and the latest use (a code spent on either side stays
//!   spent);
//! - the union of used scratch identifiers (a scratch code used on either
//!   side stays used; the union may pass `MAX_USED_SCRATCH`, which only
//!   refuses further scratch codes);
//! - the union of failure times, as a multiset (each time as many times as
//!   the side that has it most often), so failures made during the outage
//!   count against the rate limit;
//! - the larger `failed_attempts` and `last_success` (counts never go
//!   back).
//!
//! Two hosts that each failed once at the same second count as one failure
//! after the join: a join cannot tell one event seen twice from two
//! events, and counting twice would break idempotence.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use crate::state::model::{KeyState, UserState, STATE_VERSION};

/// Joins `local` into `server`.
pub fn join(server: &mut UserState, local: &UserState) {
    server.version = STATE_VERSION;
    server.failed_attempts = server.failed_attempts.max(local.failed_attempts);
    server.last_success = server.last_success.max(local.last_success);

    for id in &local.used_scratch {
        if !server.used_scratch.contains(id) {
            server.used_scratch.push(id.clone());
        }
    }

    let mut counts: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for &t in &server.failures {
        counts.entry(t).or_default().0 += 1;
    }
    for &t in &local.failures {
        counts.entry(t).or_default().1 += 1;
    }
    server.failures = counts
        .into_iter()
        .flat_map(|(t, (a, b))| std::iter::repeat_n(t, a.max(b)))
        .collect();

    for l in &local.keys {
        match server.keys.iter_mut().find(|k| k.id == l.id) {
            Some(k) => join_key(k, l),
            None => server.keys.push(l.clone()),
        }
    }
}

fn join_key(k: &mut KeyState, l: &KeyState) {
    k.last_used = k.last_used.max(l.last_used);
    k.last_step = k.last_step.max(l.last_step);
    k.hotp_next = k.hotp_next.max(l.hotp_next);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, used: u64, step: Option<u64>, hotp: Option<u64>) -> KeyState {
        KeyState {
            id: id.into(),
            last_used: used,
            last_step: step,
            hotp_next: hotp,
        }
    }

    fn a() -> UserState {
        UserState {
            failures: vec![100, 100, 105],
            failed_attempts: 3,
            used_scratch: vec!["s1".into()],
            last_success: Some(90),
            keys: vec![key("k1", 90, Some(3), None), key("h", 50, None, Some(7))],
            ..UserState::new()
        }
    }

    fn b() -> UserState {
        UserState {
            failures: vec![100, 110],
            failed_attempts: 1,
            used_scratch: vec!["s2".into(), "s1".into()],
            last_success: Some(120),
            keys: vec![key("k1", 120, Some(4), None), key("k2", 10, Some(1), None)],
            ..UserState::new()
        }
    }

    fn joined(x: &UserState, y: &UserState) -> UserState {
        let mut s = x.clone();
        join(&mut s, y);
        s
    }

    fn normal(mut s: UserState) -> UserState {
        s.used_scratch.sort();
        s.failures.sort();
        s.keys.sort_by(|p, q| p.id.cmp(&q.id));
        s
    }

    #[test]
    fn join_takes_maxima_and_unions() {
        let s = joined(&a(), &b());
        assert_eq!(s.failures, vec![100, 100, 105, 110]);
        assert_eq!(s.failed_attempts, 3);
        assert_eq!(s.last_success, Some(120));
        assert_eq!(normal(s.clone()).used_scratch, vec!["s1", "s2"]);
        let k1 = s.keys.iter().find(|k| k.id == "k1").unwrap();
        assert_eq!((k1.last_used, k1.last_step), (120, Some(4)));
        assert!(s.keys.iter().any(|k| k.id == "h" && k.hotp_next == Some(7)));
        assert!(s.keys.iter().any(|k| k.id == "k2"));
    }

    #[test]
    fn join_is_idempotent_commutative_and_associative() {
        let c = UserState {
            failures: vec![105, 105],
            failed_attempts: 9,
            keys: vec![key("h", 60, None, Some(9))],
            ..UserState::new()
        };
        let ab = joined(&a(), &b());
        assert_eq!(joined(&ab, &b()), ab);
        assert_eq!(joined(&ab, &ab), ab);
        assert_eq!(normal(ab.clone()), normal(joined(&b(), &a())));
        assert_eq!(
            normal(joined(&ab, &c)),
            normal(joined(&a(), &joined(&b(), &c)))
        );
        // Nothing goes back.
        let abc = joined(&ab, &c);
        assert_eq!(abc.failed_attempts, 9);
        assert!(abc
            .keys
            .iter()
            .any(|k| k.id == "h" && k.hotp_next == Some(9)));
        assert_eq!(joined(&abc, &UserState::new()), abc);
    }

    #[test]
    fn the_joined_state_round_trips() {
        let s = joined(&a(), &b());
        assert_eq!(UserState::from_toml(&s.to_toml().unwrap()).unwrap(), s);
    }
}
