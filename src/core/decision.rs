//! The verification decision: one typed code against a user's key, scratch
//! codes and state, at a given time.
//!
//! Pure: the caller reads the state under its lock, calls [`attempt`], and
//! writes the state back before releasing the lock. Replay protection, the
//! rate limit and single use of scratch codes are all decided here.
#![forbid(unsafe_code)]

use crate::core::code::{without_spaces, Code, ScratchCode};
use crate::core::otp::OtpKey;
use crate::core::policy::{in_window, window_bounds, Policy, RateLimit};
use crate::core::scratch::ScratchHash;
use crate::core::user_state::{Refusal, UserState, MAX_USED_SCRATCH};

/// Time-based (TOTP) or counter-based (HOTP) codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Time,
    /// HOTP, the file's counter being the first one not yet used.
    Event {
        first: u64,
    },
}

/// Settings a secret file may carry. They only ever make the module
/// stricter than its own settings (see [`Credentials::rate_limit`] and
/// [`window_bounds`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileLimits {
    /// Steps (back, ahead) accepted around now; for HOTP, back + ahead + 1
    /// codes are looked ahead.
    pub window: Option<(u64, u64)>,
    pub rate_limit: Option<RateLimit>,
    /// The highest TOTP step already used according to the file.
    pub spent_step: Option<u64>,
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
    /// `retry_after`: seconds until a code is checked again
    /// ([`UserState::retry_after`]), at least 1.
    RateLimited {
        retry_after: u64,
    },
    /// A code that would be right, refused because it could not be
    /// recorded as spent (or, HOTP, because the counter has run out).
    Refused(Method, Refusal),
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

impl Credentials<'_> {
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
        window_bounds(policy, self.limits.window)
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
    let limit = creds.rate_limit(policy);
    state.failures.retain(|&t| in_window(t, now, limit));

    if state.locked(now, limit) {
        let retry_after = state.retry_after(now, limit);
        state.record_failure(now, false);
        return Outcome::RateLimited { retry_after };
    }

    let mut outcome = Outcome::Wrong;
    for typed in candidates {
        let typed = without_spaces(typed);
        match check_code(creds, &typed, now, policy, state) {
            o @ Outcome::Accepted(_) => {
                outcome = o;
                break;
            }
            o @ (Outcome::Replayed(_) | Outcome::Refused(..)) if outcome == Outcome::Wrong => {
                outcome = o
            }
            _ => {}
        }
    }
    if let Outcome::Accepted(method) = &outcome {
        match state.spend(creds.key, method, now) {
            Ok(()) => {
                state.failed_attempts = 0;
                state.last_success = Some(now);
                return outcome;
            }
            Err(why) => outcome = Outcome::Refused(method.clone(), why),
        }
    }
    state.record_failure(now, true);
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
    let code_form = Code::parse(typed, usize::from(key.digits())).is_some();
    let (back, ahead) = creds.window(policy);
    // An HOTP counter whose look-ahead would run past the end of the range.
    let mut exhausted = None;
    let code_match = match (code_form, creds.counter) {
        (false, _) => None,
        (true, Counter::Time) => {
            // Clamping the window to the range of steps only leaves out
            // steps that do not exist; `match_totp` never matches a step
            // whose time is past the end of the range.
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
            let next = state.hotp_next(key).unwrap_or(0).max(first);
            match next.checked_add(back + ahead) {
                Some(last) => key
                    .match_hotp(typed, next, last)
                    .map(|counter| Method::Hotp { counter }),
                None => {
                    exhausted = Some(Method::Hotp { counter: next });
                    None
                }
            }
        }
    };
    // Every scratch hash is derived, so the cost does not tell which matched.
    let scratch_id = if ScratchCode::parse(typed).is_some() {
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
            let spent = state.last_step(key).max(creds.limits.spent_step);
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
        (None, None) => match exhausted {
            Some(method) => Outcome::Refused(method, Refusal::HotpExhausted),
            None => Outcome::Wrong,
        },
    }
}

/// The changes a decision makes to the state; only `attempt_any` makes them.
impl UserState {
    /// Records an accepted code; `Err` if it cannot be recorded as spent
    /// (then it must not be accepted).
    fn spend(&mut self, key: &OtpKey, method: &Method, now: u64) -> Result<(), Refusal> {
        match method {
            Method::Totp { step } => self.spend_step(key, *step, now),
            Method::Hotp { counter } => {
                // A counter at the end of the range cannot be followed:
                // saturating would leave it unspent, to be accepted again.
                let next = counter.checked_add(1).ok_or(Refusal::HotpExhausted)?;
                self.key_entry(key, now)?.hotp_next = Some(next);
                Ok(())
            }
            Method::Scratch { id } => {
                if !self.used_scratch.contains(id) {
                    if self.used_scratch.len() >= MAX_USED_SCRATCH {
                        return Err(Refusal::ScratchTableFull);
                    }
                    self.used_scratch.push(id.clone());
                }
                Ok(())
            }
        }
    }

    fn record_failure(&mut self, now: u64, counted: bool) {
        if counted {
            self.failures.push(now);
        }
        // A count for the administrator; it decides nothing.
        self.failed_attempts = self.failed_attempts.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
