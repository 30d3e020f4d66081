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
///
/// The state belongs to an account (see `files::state_account`), and
/// inside it the spent steps and counters belong to each key: one entry
/// of [`keys`](Self::keys) per key fingerprint. A service that reads
/// another secret file (sshd reading `~/.pam_totp`, sudo a system-wide
/// file) leaves the other key's entry as it is, so a code spent with one
/// key stays spent whatever is read in between. Used scratch codes are
/// kept whatever file is read; nothing is ever forgotten because the file
/// read this time does not mention it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserState {
    /// Format version, [`STATE_VERSION`] (version 1 is read and migrated).
    pub version: u32,
    /// Unix times of failed attempts still inside the rate-limit window.
    #[serde(default)]
    pub failures: Vec<u64>,
    /// Failed attempts since the last success (rate-limited ones included).
    #[serde(default)]
    pub failed_attempts: u64,
    /// Identifiers of scratch codes already used, whatever file they were
    /// in. At most [`MAX_USED_SCRATCH`]; never pruned.
    #[serde(default)]
    pub used_scratch: Vec<String>,
    /// Unix time of the last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    /// Spent steps and counters, one entry per key that has had a code
    /// accepted. At most [`MAX_KEYS`] (see there for the eviction rule).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyState>,
}

/// What one key has spent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyState {
    /// The key's fingerprint (`OtpKey::fingerprint`). Empty only for the
    /// record of a version-1 file that did not say which key it was for:
    /// the first key that logs in claims it, as version 1 did.
    pub id: String,
    /// Unix time a code of this key was last accepted (or spent by enroll).
    pub last_used: u64,
    /// The highest TOTP step accepted; it and every earlier step are spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
    /// HOTP: the next counter that may be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotp_next: Option<u64>,
}

impl KeyState {
    /// Whether forgetting this entry could let a spent code in again. An
    /// HOTP counter is spent for ever. A TOTP step is spent only while it
    /// can be inside a window: a step accepted at `last_used` is at most
    /// `MAX_WINDOW` steps ahead of that time, and is inside a window at
    /// most `MAX_WINDOW` steps later, so after `2 * MAX_WINDOW + 2`
    /// periods of the longest period it is out of every window for good
    /// (unless the clock is set back by more than that). A time in the
    /// future (the clock was set back) keeps the entry.
    fn still_refuses(&self, now: u64) -> bool {
        self.hotp_next.is_some()
            || now
                .checked_sub(self.last_used)
                .is_none_or(|age| age < TOTP_REPLAY_HORIZON)
    }
}

/// The state file format of version 1: one `last_step`/`hotp_next` for the
/// key `key_id`. Read and turned into the current format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateV1 {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    last_step: Option<u64>,
    #[serde(default)]
    failures: Vec<u64>,
    #[serde(default)]
    failed_attempts: u64,
    #[serde(default)]
    used_scratch: Vec<String>,
    #[serde(default)]
    last_success: Option<u64>,
    #[serde(default)]
    hotp_next: Option<u64>,
    #[serde(default)]
    key_id: Option<String>,
}

impl From<StateV1> for UserState {
    fn from(v1: StateV1) -> UserState {
        let mut keys = Vec::new();
        if v1.last_step.is_some() || v1.hotp_next.is_some() {
            keys.push(KeyState {
                id: v1.key_id.unwrap_or_default(),
                last_used: v1.last_success.unwrap_or(0),
                last_step: v1.last_step,
                hotp_next: v1.hotp_next,
            });
        }
        UserState {
            version: STATE_VERSION,
            failures: v1.failures,
            failed_attempts: v1.failed_attempts,
            used_scratch: v1.used_scratch,
            last_success: v1.last_success,
            keys,
        }
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

pub const STATE_VERSION: u32 = 2;
/// The last line of every state file (see [`UserState::from_toml`]).
pub const STATE_TRAILER: &str = "complete = true\n";

/// Most keys whose spent steps and counters one account's state keeps.
///
/// An entry is made only when a code of that key is accepted, and one
/// account has a handful of keys over its life (a phone, a replacement,
/// a hardware token), far fewer than 32. Past the cap, the entry unused
/// for longest is evicted, but only one whose records can no longer
/// refuse anything ([`KeyState::still_refuses`]: a TOTP key unused for
/// [`TOTP_REPLAY_HORIZON`]; never an HOTP counter). The user can write a
/// key of their own into `~/.pam_totp` and log in with it, so "only keys
/// the administrator enrolled" does not hold; if evicting any entry could
/// un-spend a code, the new key's code is refused instead
/// ([`Refusal::KeyTableFull`]) until time frees one, or the administrator
/// removes the state file.
pub const MAX_KEYS: usize = 32;

/// How long after its last use a TOTP key's spent steps may still be
/// inside some window: `2 * MAX_WINDOW + 2` periods of the longest period.
pub const TOTP_REPLAY_HORIZON: u64 = (2 * MAX_WINDOW + 2) * crate::otp::MAX_PERIOD;

/// Most used scratch codes one account's state keeps: with identifiers of
/// at most 128 hex digits (a 64-byte salt, the most a file may hold) that
/// is under 34 KiB, which leaves room in the 64 KiB the state file may
/// have for [`MAX_KEYS`] keys and the failures of the largest rate limit.
/// A secret file holds at most 100 scratch codes; this many used ones
/// means many sets used up. A used identifier is never dropped (that would
/// let its code in again): past the cap, a further scratch code is refused
/// ([`Refusal::ScratchTableFull`]) until an administrator removes the state
/// file (and, wisely, regenerates the scratch codes).
pub const MAX_USED_SCRATCH: usize = 256;

/// Why a right, unspent code was refused anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The HOTP counter has reached the end of its range (with the
    /// look-ahead window): nothing after it can be recorded as spent.
    HotpExhausted,
    /// [`MAX_KEYS`] keys whose records still refuse codes: a new key's
    /// code cannot be recorded without un-spending another's.
    KeyTableFull,
    /// [`MAX_USED_SCRATCH`] scratch codes used: one more cannot be
    /// recorded without un-spending another.
    ScratchTableFull,
}

impl Refusal {
    /// A short token for the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::HotpExhausted => "hotp-counter-exhausted",
            Refusal::KeyTableFull => "key-table-full",
            Refusal::ScratchTableFull => "scratch-table-full",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::HotpExhausted => {
                "the HOTP counter is at the end of its range; enroll a new token"
            }
            Refusal::KeyTableFull => {
                "the state holds spent codes of the most keys it keeps; a TOTP key's record \
                 frees itself once its steps are out of every window, or remove the state file"
            }
            Refusal::ScratchTableFull => {
                "the state holds the most used scratch codes it keeps; remove the state file \
                 and regenerate the scratch codes"
            }
        })
    }
}

impl UserState {
    pub fn new() -> UserState {
        UserState {
            version: STATE_VERSION,
            ..UserState::default()
        }
    }

    /// Parses a state file's text. Anything but a version-1 or version-2
    /// state with known, well-typed keys, ending in the line
    /// [`STATE_TRAILER`], is an error (the reason, for the log). The
    /// trailer makes a file that was cut short (at any byte, even at a line
    /// end, where the rest would still be valid TOML with a smaller
    /// `last_step`) fail to parse. A version-1 state comes back in the
    /// current form: its steps and counters belong to its `key_id`.
    pub fn from_toml(text: &str) -> Result<UserState, String> {
        let body = text
            .strip_suffix(STATE_TRAILER)
            .filter(|b| b.is_empty() || b.ends_with('\n'))
            .ok_or_else(|| format!("cut short: it does not end with {:?}", STATE_TRAILER.trim()))?;
        let msg = |e: toml::de::Error| crate::logtext::toml_problem(body, &e);
        let VersionOnly { version } = toml::from_str(body).map_err(msg)?;
        match version {
            1 => Ok(toml::from_str::<StateV1>(body).map_err(msg)?.into()),
            STATE_VERSION => toml::from_str(body).map_err(msg),
            v => Err(format!("version {v}")),
        }
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

    /// What `key` has spent: its own entry, or the unclaimed record of a
    /// version-1 file.
    pub fn key_state(&self, key: &OtpKey) -> Option<&KeyState> {
        let id = key.fingerprint();
        self.keys
            .iter()
            .find(|k| k.id == id)
            .or_else(|| self.keys.iter().find(|k| k.id.is_empty()))
    }

    /// The highest TOTP step of `key` accepted.
    pub fn last_step(&self, key: &OtpKey) -> Option<u64> {
        self.key_state(key).and_then(|k| k.last_step)
    }

    /// The next HOTP counter of `key` that may be accepted.
    pub fn hotp_next(&self, key: &OtpKey) -> Option<u64> {
        self.key_state(key).and_then(|k| k.hotp_next)
    }

    /// The entry of `key`, made if need be (evicting one that no longer
    /// refuses anything past [`MAX_KEYS`]), marked as used at `now`.
    fn key_entry(&mut self, key: &OtpKey, now: u64) -> Result<&mut KeyState, Refusal> {
        let id = key.fingerprint();
        let found = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .or_else(|| self.keys.iter().position(|k| k.id.is_empty()));
        let i = match found {
            Some(i) => i,
            None if self.keys.len() < MAX_KEYS => {
                self.keys.push(KeyState::default());
                self.keys.len() - 1
            }
            None => {
                let i = self
                    .keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| !k.still_refuses(now))
                    .min_by_key(|(_, k)| k.last_used)
                    .map(|(i, _)| i)
                    .ok_or(Refusal::KeyTableFull)?;
                self.keys[i] = KeyState::default();
                i
            }
        };
        let entry = &mut self.keys[i];
        entry.id = id;
        entry.last_used = entry.last_used.max(now);
        Ok(entry)
    }

    /// Marks a TOTP step of `key` as spent, as a login would: the code typed
    /// to confirm an enrollment cannot then be used to log in.
    pub fn spend_step(&mut self, key: &OtpKey, step: u64, now: u64) -> Result<(), Refusal> {
        let entry = self.key_entry(key, now)?;
        entry.last_step = Some(entry.last_step.map_or(step, |last| last.max(step)));
        Ok(())
    }

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

/// Whether a failure at `t` counts against the limit at `now`. Near the
/// end of the time range a sum that overflows counts the failure: the
/// window's end is past every time (a saturated end equal to `now` would
/// let a failure at `now - 5` out of a 30-second window).
fn in_window(t: u64, now: u64, limit: RateLimit) -> bool {
    t.checked_add(limit.seconds).is_none_or(|end| end > now)
        && now
            .checked_add(limit.seconds)
            .is_none_or(|ahead| t <= ahead)
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
    let limit = creds.rate_limit(policy);
    state.failures.retain(|&t| in_window(t, now, limit));

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
    let code_form =
        typed.len() == usize::from(key.digits()) && typed.bytes().all(|b| b.is_ascii_digit());
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

    #[test]
    fn a_state_file_cut_anywhere_is_refused() {
        let mut st = UserState::new();
        st.spend_step(&key(), 59_844_926, 1_795_347_788).unwrap();
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

    fn totp(k: &OtpKey) -> Credentials<'_> {
        static LIMITS: FileLimits = FileLimits {
            window: None,
            rate_limit: None,
            spent_step: None,
        };
        Credentials {
            key: k,
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
            key: k,
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
            key: k,
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
                key: &k,
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
            key: &k,
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
            key: &k,
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
                Outcome::Refused(Method::Hotp { counter: u64::MAX }, Refusal::HotpExhausted)
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
                    counter: u64::MAX - 1
                },
                Refusal::HotpExhausted
            )
        );
        assert_eq!(st.keys, Vec::new());
    }

    #[test]
    fn a_stored_counter_at_the_end_is_not_accepted_again() {
        // A version-1 state that recorded a saturated counter.
        let text = format!(
            "version = 1\nhotp_next = {}\nkey_id = \"{}\"\n{STATE_TRAILER}",
            u64::MAX,
            key().fingerprint()
        );
        let mut st = UserState::from_toml(&text).unwrap();
        let k = key();
        let limits = FileLimits {
            window: Some((0, 0)),
            ..FileLimits::default()
        };
        let creds = Credentials {
            key: &k,
            scratch: &[],
            counter: Counter::Event { first: 0 },
            limits: &limits,
        };
        assert!(matches!(
            attempt(&creds, &k.hotp_code(u64::MAX), 0, &lenient(), &mut st),
            Outcome::Refused(_, Refusal::HotpExhausted)
        ));
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

    #[test]
    fn version_1_state_is_migrated_to_its_key() {
        let a = key();
        let text = format!(
            "version = 1\nlast_step = 33333\nfailures = [5]\nfailed_attempts = 2\n\
             used_scratch = [\"0707\"]\nlast_success = 999990\nkey_id = \"{}\"\n{STATE_TRAILER}",
            a.fingerprint()
        );
        let st = UserState::from_toml(&text).unwrap();
        assert_eq!(st.version, STATE_VERSION);
        assert_eq!(st.last_step(&a), Some(33_333));
        assert_eq!(st.last_step(&other_key(3)), None);
        assert_eq!(st.keys[0].last_used, 999_990);
        assert_eq!((st.failures.clone(), st.failed_attempts), (vec![5], 2));
        assert_eq!(st.used_scratch, vec!["0707".to_owned()]);
        // Written back as version 2, read back the same.
        let again = st.to_toml().unwrap();
        assert!(again.starts_with("version = 2\n"), "{again}");
        assert_eq!(UserState::from_toml(&again).unwrap(), st);
        // Version 1 keys are not accepted in version 2, nor unknown ones in 1.
        assert!(UserState::from_toml("version = 2\nlast_step = 1\ncomplete = true\n").is_err());
        assert!(UserState::from_toml("version = 1\nkeys = []\ncomplete = true\n").is_err());
        assert!(UserState::from_toml("version = 3\ncomplete = true\n").is_err());
        // A version-1 record without a key is claimed by the first key
        // that logs in, as version 1 did; other keys start fresh.
        let mut st =
            UserState::from_toml("version = 1\nlast_step = 33333\ncomplete = true\n").unwrap();
        assert_eq!(st.last_step(&a), Some(33_333));
        let p = lenient();
        let now = 33_333 * 30;
        assert!(matches!(
            attempt(&totp(&a), &a.totp_code(33_333), now, &p, &mut st),
            Outcome::Replayed(_)
        ));
        assert!(attempt(&totp(&a), &a.totp_code(33_334), now, &p, &mut st).is_success());
        let b = other_key(3);
        assert_eq!(st.last_step(&b), None);
        assert!(attempt(&totp(&b), &b.totp_code(33_333), now, &p, &mut st).is_success());
        assert_eq!(st.keys.len(), 2);
    }
}
