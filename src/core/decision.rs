//! The verification decision: one typed code against a user's keys,
//! scratch codes and state, at a given time.
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

/// How a code was accepted. `key`: the index of the key in
/// [`Credentials::keys`] whose code it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Totp { key: usize, step: u64 },
    Hotp { key: usize, counter: u64 },
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

/// A user's credentials: their keys (one per device, at least one), the
/// hashes of their scratch codes, and what their file says about counters
/// and limits.
///
/// A code of any key is accepted, and each key's steps and counters are
/// spent separately (in the key's own entry of [`UserState::keys`]). A
/// code that is right for more than one key is one attempt: it is
/// refused as a replay if it is spent for any key it matches (which
/// device showed it cannot be told, and a code once accepted must not
/// log in again), and otherwise spends the step of every key it matches.
pub struct Credentials<'a> {
    pub keys: Vec<&'a OtpKey>,
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
    let mut also = Vec::new();
    for typed in candidates {
        let typed = without_spaces(typed);
        let checked = check_code(creds, &typed, now, policy, state);
        match checked.outcome {
            o @ Outcome::Accepted(_) => {
                outcome = o;
                also = checked.also;
                break;
            }
            o @ (Outcome::Replayed(_) | Outcome::Refused(..)) if outcome == Outcome::Wrong => {
                outcome = o
            }
            _ => {}
        }
    }
    if let Outcome::Accepted(method) = &outcome {
        let spent = std::iter::once(method)
            .chain(&also)
            .try_for_each(|m| state.spend(creds, m, now));
        match spent {
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

/// What one reading of the input is: the verdict, and (accepted) every
/// other key's step or counter it matches, spent with it.
struct Checked {
    outcome: Outcome,
    also: Vec<Method>,
}

fn check_code(
    creds: &Credentials<'_>,
    typed: &str,
    now: u64,
    policy: &Policy,
    state: &UserState,
) -> Checked {
    // Every key is checked, whatever matched before it.
    let mut fresh = Vec::new();
    let mut replayed = None;
    let mut exhausted = None;
    for (i, key) in creds.keys.iter().enumerate() {
        match check_key(creds, i, key, typed, now, policy, state) {
            KeyMatch::Fresh(m) => fresh.push(m),
            KeyMatch::Spent(m) => {
                replayed.get_or_insert(m);
            }
            KeyMatch::Exhausted(m) => {
                exhausted.get_or_insert(m);
            }
            KeyMatch::No => {}
        }
    }
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

    let outcome = if let Some(method) = replayed {
        fresh.clear();
        Outcome::Replayed(method)
    } else if !fresh.is_empty() {
        Outcome::Accepted(fresh.remove(0))
    } else if let Some(id) = scratch_id {
        let used = state.used_scratch.contains(&id);
        let method = Method::Scratch { id };
        if used {
            Outcome::Replayed(method)
        } else {
            Outcome::Accepted(method)
        }
    } else {
        match exhausted {
            Some(method) => Outcome::Refused(method, Refusal::HotpExhausted),
            None => Outcome::Wrong,
        }
    };
    Checked {
        outcome,
        also: fresh,
    }
}

/// What a typed code is for one key.
enum KeyMatch {
    No,
    Fresh(Method),
    /// Right, but its step is already spent.
    Spent(Method),
    /// HOTP: the look-ahead would run past the end of the range.
    Exhausted(Method),
}

fn check_key(
    creds: &Credentials<'_>,
    index: usize,
    key: &OtpKey,
    typed: &str,
    now: u64,
    policy: &Policy,
    state: &UserState,
) -> KeyMatch {
    if Code::parse(typed, usize::from(key.digits())).is_none() {
        return KeyMatch::No;
    }
    let (back, ahead) = creds.window(policy);
    match creds.counter {
        Counter::Time => {
            // Clamping the window to the range of steps only leaves out
            // steps that do not exist; `match_totp` never matches a step
            // whose time is past the end of the range.
            let now_step = key.step_at(now);
            let Some(step) = key.match_totp(
                typed,
                now_step.saturating_sub(back),
                now_step.saturating_add(ahead),
            ) else {
                return KeyMatch::No;
            };
            let method = Method::Totp { key: index, step };
            let spent = state.last_step(key).max(creds.limits.spent_step);
            if spent.is_some_and(|last| step <= last) {
                KeyMatch::Spent(method)
            } else {
                KeyMatch::Fresh(method)
            }
        }
        Counter::Event { first } => {
            // Look ahead from the first unused counter; never behind it.
            let next = state.hotp_next(key).unwrap_or(0).max(first);
            match next.checked_add(back + ahead) {
                Some(last) => match key.match_hotp(typed, next, last) {
                    Some(counter) => KeyMatch::Fresh(Method::Hotp {
                        key: index,
                        counter,
                    }),
                    None => KeyMatch::No,
                },
                None => KeyMatch::Exhausted(Method::Hotp {
                    key: index,
                    counter: next,
                }),
            }
        }
    }
}

/// The changes a decision makes to the state; only `attempt_any` makes them.
impl UserState {
    /// Records an accepted code; `Err` if it cannot be recorded as spent
    /// (then it must not be accepted).
    fn spend(&mut self, creds: &Credentials<'_>, method: &Method, now: u64) -> Result<(), Refusal> {
        match method {
            Method::Totp { key, step } => self.spend_step(creds.keys[*key], *step, now),
            Method::Hotp { key, counter } => {
                let key = creds.keys[*key];
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
