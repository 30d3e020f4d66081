//! The verification decision: one typed code against a user's key, scratch
//! codes and state, at a given time.
//!
//! Pure: the caller reads the state under its lock, calls [`attempt`], and
//! writes the state back before releasing the lock. Replay protection, the
//! rate limit and single use of scratch codes are all decided here.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::enrollment::{Counter, Enrollment, FileLimits};
use crate::otp::OtpKey;
use crate::scratch::{looks_like_scratch_code, ScratchHash};

/// The largest `window=` accepted.
pub const MAX_WINDOW: u64 = 10;

/// At most `max_failures` failed attempts in any `seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_failures: u32,
    pub seconds: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            max_failures: 3,
            seconds: 30,
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max_failures, self.seconds)
    }
}

/// How codes are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Steps accepted before and after the current one.
    pub window: u64,
    pub rate_limit: RateLimit,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: 1,
            rate_limit: RateLimit::default(),
        }
    }
}

/// What changes from one login to the next, kept in the state file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserState {
    /// Format version, 1.
    pub version: u32,
    /// The highest TOTP step accepted; it and every earlier step are spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    /// Unix times of failed attempts still inside the rate-limit window.
    #[serde(default)]
    pub failures: Vec<u64>,
    /// Failed attempts since the last success (rate-limited ones included).
    #[serde(default)]
    pub failed_attempts: u64,
    /// Identifiers of scratch codes already used.
    #[serde(default)]
    pub used_scratch: Vec<String>,
    /// Unix time of the last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    /// HOTP: the next counter that may be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotp_next: Option<u64>,
    /// Fingerprint of the key `last_step` and `hotp_next` belong to (see
    /// `OtpKey::fingerprint`). When the user is given a new key or new
    /// parameters, the steps and counters of the old one mean nothing:
    /// they are forgotten instead of refusing every code of the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

pub const STATE_VERSION: u32 = 1;
/// The last line of every state file (see [`UserState::from_toml`]).
pub const STATE_TRAILER: &str = "complete = true\n";

impl UserState {
    pub fn new() -> UserState {
        UserState {
            version: STATE_VERSION,
            ..UserState::default()
        }
    }

    /// Parses a state file's text. Anything but a version-1 state with
    /// known, well-typed keys, ending in the line [`STATE_TRAILER`], is an
    /// error (the reason, for the log). The trailer makes a file that was
    /// cut short (at any byte, even at a line end, where the rest would
    /// still be valid TOML with a smaller `last_step`) fail to parse.
    pub fn from_toml(text: &str) -> Result<UserState, String> {
        let body = text
            .strip_suffix(STATE_TRAILER)
            .filter(|b| b.is_empty() || b.ends_with('\n'))
            .ok_or_else(|| format!("cut short: it does not end with {:?}", STATE_TRAILER.trim()))?;
        let state: UserState =
            toml::from_str(body).map_err(|e| crate::logtext::toml_problem(body, &e))?;
        if state.version != STATE_VERSION {
            return Err(format!("version {}", state.version));
        }
        Ok(state)
    }

    /// The state file's text, which [`from_toml`](Self::from_toml) reads back.
    pub fn to_toml(&self) -> Result<String, String> {
        let body = toml::to_string(self).map_err(|e| e.to_string())?;
        Ok(format!("{body}{STATE_TRAILER}"))
    }

    /// Failures that still count against the rate limit at `now`. Times in
    /// the future (the clock stepped back) count too, up to one window ahead.
    pub fn recent_failures(&self, now: u64, limit: RateLimit) -> usize {
        self.failures
            .iter()
            .filter(|&&t| in_window(t, now, limit))
            .count()
    }

    /// Whether the rate limit refuses every code at `now`.
    pub fn locked(&self, now: u64, limit: RateLimit) -> bool {
        self.recent_failures(now, limit) >= limit.max_failures as usize
    }

    /// Makes `key` the one the steps and counters belong to; those of a
    /// previous key are forgotten (they cannot match the new key's codes).
    pub fn adopt_key(&mut self, key: &OtpKey) {
        let key_id = key.fingerprint();
        if self.key_id.as_ref().is_some_and(|old| *old != key_id) {
            self.last_step = None;
            self.hotp_next = None;
        }
        self.key_id = Some(key_id);
    }

    /// Marks a TOTP step of `key` as spent, as a login would: the code typed
    /// to confirm an enrollment cannot then be used to log in.
    pub fn spend_step(&mut self, key: &OtpKey, step: u64) {
        self.adopt_key(key);
        self.last_step = Some(self.last_step.map_or(step, |last| last.max(step)));
    }

    fn record_failure(&mut self, now: u64, counted: bool) {
        if counted {
            self.failures.push(now);
        }
        self.failed_attempts = self.failed_attempts.saturating_add(1);
    }
}

fn in_window(t: u64, now: u64, limit: RateLimit) -> bool {
    t.saturating_add(limit.seconds) > now && t <= now.saturating_add(limit.seconds)
}

/// How a code was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Totp { step: u64 },
    Hotp { counter: u64 },
    Scratch { id: String },
}

/// The verdict on one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(Method),
    /// Not a valid code.
    Wrong,
    /// A valid code whose step, or scratch code, was already used.
    Replayed(Method),
    /// Too many recent failures; the code was not even checked.
    RateLimited,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Accepted(_))
    }
}

/// A user's credentials: their key, the hashes of their scratch codes, and
/// what their file says about counters and limits.
pub struct Credentials<'a> {
    pub key: &'a OtpKey,
    pub scratch: &'a [ScratchHash],
    pub counter: Counter,
    pub limits: &'a FileLimits,
}

impl<'a> Credentials<'a> {
    pub fn of(e: &'a Enrollment) -> Credentials<'a> {
        Credentials {
            key: &e.key,
            scratch: &e.scratch,
            counter: e.counter,
            limits: &e.limits,
        }
    }

    /// The rate limit in force: the module's, made stricter by the file's
    /// (fewer failures, over a longer time) where it has one.
    pub fn rate_limit(&self, policy: &Policy) -> RateLimit {
        let ours = policy.rate_limit;
        match self.limits.rate_limit {
            Some(f) => RateLimit {
                max_failures: ours.max_failures.min(f.max_failures),
                seconds: ours.seconds.max(f.seconds),
            },
            None => ours,
        }
    }

    /// Steps (back, ahead) accepted around now.
    fn window(&self, policy: &Policy) -> (u64, u64) {
        let w = policy.window.min(MAX_WINDOW);
        match self.limits.window {
            Some((back, ahead)) => (w.min(back), w.min(ahead)),
            None => (w, w),
        }
    }
}

/// Decides one attempt and updates `state` accordingly.
///
/// `typed` is what the user typed; spaces are ignored. Every failure is
/// recorded; failures while rate limited count in `failed_attempts` but do
/// not extend the lockout, so the limit is exactly N per window.
pub fn attempt(
    creds: &Credentials<'_>,
    typed: &str,
    now: u64,
    policy: &Policy,
    state: &mut UserState,
) -> Outcome {
    attempt_any(creds, &[typed], now, policy, state)
}

/// Like [`attempt`], for input that can be read more than one way (a
/// password followed by either a code or a scratch code). Still one attempt:
/// at most one failure is recorded.
pub fn attempt_any(
    creds: &Credentials<'_>,
    candidates: &[&str],
    now: u64,
    policy: &Policy,
    state: &mut UserState,
) -> Outcome {
    state.adopt_key(creds.key);
    let limit = creds.rate_limit(policy);
    state.failures.retain(|&t| in_window(t, now, limit));
    state
        .used_scratch
        .retain(|id| creds.scratch.iter().any(|h| &h.id() == id));

    if state.locked(now, limit) {
        state.record_failure(now, false);
        return Outcome::RateLimited;
    }

    let mut outcome = Outcome::Wrong;
    for typed in candidates {
        let typed: Zeroizing<String> =
            Zeroizing::new(typed.chars().filter(|c| !c.is_whitespace()).collect());
        match check_code(creds, &typed, now, policy, state) {
            o @ Outcome::Accepted(_) => {
                outcome = o;
                break;
            }
            o @ Outcome::Replayed(_) if outcome == Outcome::Wrong => outcome = o,
            _ => {}
        }
    }
    match &outcome {
        Outcome::Accepted(method) => {
            match method {
                Method::Totp { step } => state.last_step = Some(*step),
                Method::Hotp { counter } => state.hotp_next = Some(counter.saturating_add(1)),
                Method::Scratch { id } => state.used_scratch.push(id.clone()),
            }
            state.failed_attempts = 0;
            state.last_success = Some(now);
        }
        _ => state.record_failure(now, true),
    }
    outcome
}

/// Scratch codes not yet used.
pub fn remaining_scratch(scratch: &[ScratchHash], state: &UserState) -> usize {
    scratch
        .iter()
        .filter(|h| !state.used_scratch.contains(&h.id()))
        .count()
}

fn check_code(
    creds: &Credentials<'_>,
    typed: &str,
    now: u64,
    policy: &Policy,
    state: &UserState,
) -> Outcome {
    let key = creds.key;
    let code_form =
        typed.len() == usize::from(key.digits()) && typed.bytes().all(|b| b.is_ascii_digit());
    let (back, ahead) = creds.window(policy);
    let code_match = match (code_form, creds.counter) {
        (false, _) => None,
        (true, Counter::Time) => {
            let now_step = key.step_at(now);
            key.match_totp(
                typed,
                now_step.saturating_sub(back),
                now_step.saturating_add(ahead),
            )
            .map(|step| Method::Totp { step })
        }
        (true, Counter::Event { first }) => {
            // Look ahead from the first unused counter; never behind it.
            let next = state.hotp_next.unwrap_or(0).max(first);
            key.match_hotp(typed, next, next.saturating_add(back + ahead))
                .map(|counter| Method::Hotp { counter })
        }
    };
    // Every scratch hash is derived, so the cost does not tell which matched.
    let scratch_id = if looks_like_scratch_code(typed) {
        creds.scratch.iter().fold(None, |found, h| {
            if h.matches(typed) {
                Some(h.id())
            } else {
                found
            }
        })
    } else {
        None
    };

    match (code_match, scratch_id) {
        (Some(method @ Method::Totp { step }), _) => {
            let spent = state.last_step.max(creds.limits.spent_step);
            if spent.is_some_and(|last| step <= last) {
                Outcome::Replayed(method)
            } else {
                Outcome::Accepted(method)
            }
        }
        (Some(method), _) => Outcome::Accepted(method),
        (None, Some(id)) => {
            let used = state.used_scratch.contains(&id);
            let method = Method::Scratch { id };
            if used {
                Outcome::Replayed(method)
            } else {
                Outcome::Accepted(method)
            }
        }
        (None, None) => Outcome::Wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Algorithm;

    fn key() -> OtpKey {
        OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap()
    }

    #[test]
    fn accepts_then_refuses_replay() {
        let key = key();
        let limits = FileLimits::default();
        let creds = Credentials {
            key: &key,
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
            key: &key,
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
            Outcome::RateLimited
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
            key: &key,
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
            Outcome::Accepted(Method::Hotp { counter: 7 })
        );
        assert_eq!(st.hotp_next, Some(8));
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
            key: &key,
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
            key: k,
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
        assert_eq!(st.last_step, Some(new.step_at(later)));
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

    #[test]
    fn a_state_file_cut_anywhere_is_refused() {
        let mut st = UserState::new();
        st.last_step = Some(59_844_926);
        st.failures = vec![1_795_347_788];
        st.used_scratch = vec!["0707".into()];
        let text = st.to_toml().unwrap();
        assert_eq!(UserState::from_toml(&text).unwrap(), st);
        for cut in 0..text.len() {
            assert!(
                UserState::from_toml(&text[..cut]).is_err(),
                "cut at {cut}: {:?}",
                &text[..cut]
            );
        }
        // The trailer only counts as the last line.
        assert!(UserState::from_toml("complete = true\nversion = 1\ncomplete = true\n").is_err());
    }
}
