//! What a login remembers about an account, as values: spent steps and
//! counters per key, used scratch codes, recent failures. Pure; the state
//! room (`crate::state`) stores it, `decision` changes it.
#![forbid(unsafe_code)]

use std::fmt;

use crate::core::otp::{OtpKey, MAX_PERIOD};
use crate::core::policy::{in_window, RateLimit, MAX_WINDOW};

/// What changes from one login to the next, kept in the state file.
///
/// The state belongs to an account (see `crate::state::Account`), and
/// inside it the spent steps and counters belong to each key: one entry
/// of [`keys`](Self::keys) per key fingerprint. A service that reads
/// another secret file (sshd reading `~/.pam_totp`, sudo a system-wide
/// file) leaves the other key's entry as it is, so a code spent with one
/// key stays spent whatever is read in between. Used scratch codes are
/// kept whatever file is read; nothing is ever forgotten because the file
/// read this time does not mention it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// Format version, [`STATE_VERSION`] (version 1 is read and migrated).
    pub version: u32,
    /// Unix times of failed attempts still inside the rate-limit window.
    pub failures: Vec<u64>,
    /// Failed attempts since the last success (rate-limited ones included).
    pub failed_attempts: u64,
    /// Identifiers of scratch codes already used, whatever file they were
    /// in. At most [`MAX_USED_SCRATCH`]; never pruned.
    pub used_scratch: Vec<String>,
    /// Unix time of the last successful login.
    pub last_success: Option<u64>,
    /// Spent steps and counters, one entry per key that has had a code
    /// accepted. At most [`MAX_KEYS`] (see there for the eviction rule).
    pub keys: Vec<KeyState>,
}

/// What one key has spent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// The key's fingerprint (`OtpKey::fingerprint`). Empty only for the
    /// record of a version-1 file that did not say which key it was for:
    /// the first key that logs in claims it, as version 1 did.
    pub id: String,
    /// Unix time a code of this key was last accepted (or spent by enroll).
    pub last_used: u64,
    /// The highest TOTP step accepted; it and every earlier step are spent.
    pub last_step: Option<u64>,
    /// HOTP: the next counter that may be accepted.
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

pub const STATE_VERSION: u32 = 2;

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
pub const TOTP_REPLAY_HORIZON: u64 = (2 * MAX_WINDOW + 2) * MAX_PERIOD;

/// Most used scratch codes one account's state keeps: with identifiers of
/// at most 128 hex digits (a 64-byte salt, the most a file may hold) that
/// is under 34 KiB, which leaves room in the 64 KiB a state's text may
/// have (a record's payload, `crate::state::record::MAX_PAYLOAD`) for
/// [`MAX_KEYS`] keys and the failures of the largest rate limit.
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

    /// Seconds from `now` until the rate limit lets a code be checked
    /// again: until enough of the failures that still count have left the
    /// window for fewer than `max_failures` to remain (with the limit just
    /// reached, the oldest of them). At least 1. A failure in the future
    /// (the clock stepped back) leaves the window a window after its time;
    /// a limit that refuses with no failure at all gives the window.
    pub fn retry_after(&self, now: u64, limit: RateLimit) -> u64 {
        let mut ends: Vec<u64> = self
            .failures
            .iter()
            .filter(|&&t| in_window(t, now, limit))
            .map(|&t| t.saturating_add(limit.seconds))
            .collect();
        ends.sort_unstable();
        // count - max + 1 failures must leave; the last of them to leave
        // is the one at index count - max.
        let last_to_leave = ends.len().saturating_sub(limit.max_failures as usize);
        ends.get(last_to_leave)
            .map_or(limit.seconds, |end| end.saturating_sub(now))
            .max(1)
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
    pub(crate) fn key_entry(&mut self, key: &OtpKey, now: u64) -> Result<&mut KeyState, Refusal> {
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

    /// Whether going from `before` to `self` must be on disk before the
    /// login is answered: whether losing it in a crash (power loss, a
    /// kernel crash; a killed process loses nothing written) could let a
    /// code in that was already spent.
    ///
    /// - **Must survive**: a spent TOTP step, an HOTP counter moved on, a
    ///   used scratch code, and so any change to a key's record or to the
    ///   used scratch codes (eviction and `last_used` come with a spend).
    ///   Lost, the code that was accepted would be accepted again.
    /// - **May be lost**: the rate limit's failure times, the count of
    ///   failed attempts, `last_success` and their clearing by a success
    ///   or `pam-totp reset` without a spend. Lost, they give an attacker
    ///   who can crash the host at most the guesses the rate limit allowed
    ///   in the seconds before the crash, once per crash: they are written
    ///   (so a killed process or a concurrent login sees each one) but not
    ///   flushed, and the kernel writes them out within about 30 s anyway.
    ///   A crash and reboot costs more time than the default window (30 s)
    ///   gives guesses, and each guess wins with odds of about 1 in
    ///   300,000; docs/benchmarks.md ("Durability") weighs it in full.
    pub fn must_survive_a_crash(&self, before: &UserState) -> bool {
        self.keys != before.keys || self.used_scratch != before.used_scratch
    }

    /// Marks a TOTP step of `key` as spent, as a login would: the code typed
    /// to confirm an enrollment cannot then be used to log in.
    pub fn spend_step(&mut self, key: &OtpKey, step: u64, now: u64) -> Result<(), Refusal> {
        let entry = self.key_entry(key, now)?;
        entry.last_step = Some(entry.last_step.map_or(step, |last| last.max(step)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        max_failures: 3,
        seconds: 30,
    };

    fn with_failures(times: &[u64]) -> UserState {
        UserState {
            failures: times.to_vec(),
            ..UserState::new()
        }
    }

    #[test]
    fn only_spent_codes_must_survive_a_crash() {
        let key = OtpKey::new(&[7; 20], crate::core::otp::Algorithm::Sha1, 6, 30).unwrap();
        let before = with_failures(&[1000]);
        // Failures, their count, their clearing, last_success: may be lost.
        let mut after = before.clone();
        after.failures.push(1010);
        after.failed_attempts += 1;
        assert!(!after.must_survive_a_crash(&before));
        after.failures.clear();
        after.failed_attempts = 0;
        after.last_success = Some(1020);
        assert!(!after.must_survive_a_crash(&before));
        assert!(!before.must_survive_a_crash(&before));
        // A spent step, a moved HOTP counter, a used scratch code: must not.
        let mut spent = before.clone();
        spent.spend_step(&key, 33, 1000).unwrap();
        assert!(spent.must_survive_a_crash(&before));
        let mut again = spent.clone();
        again.spend_step(&key, 34, 1030).unwrap();
        assert!(again.must_survive_a_crash(&spent));
        let mut hotp = spent.clone();
        hotp.keys[0].hotp_next = Some(5);
        assert!(hotp.must_survive_a_crash(&spent));
        let mut scratch = before.clone();
        scratch.used_scratch.push("0707".into());
        assert!(scratch.must_survive_a_crash(&before));
    }

    #[test]
    fn retry_after_is_when_the_oldest_counted_failure_leaves_the_window() {
        let st = with_failures(&[1000, 1010, 1020]);
        assert!(st.locked(1020, LIMIT));
        // The failure at 1000 leaves the window at 1030.
        assert_eq!(st.retry_after(1020, LIMIT), 10);
        assert_eq!(st.retry_after(1000, LIMIT), 30);
        // The last second of the lockout still says 1, never 0.
        assert_eq!(st.retry_after(1029, LIMIT), 1);
        assert!(!st.locked(1030, LIMIT));
        // Order in the file does not matter.
        assert_eq!(
            with_failures(&[1020, 1000, 1010]).retry_after(1020, LIMIT),
            10
        );
    }

    #[test]
    fn retry_after_skips_failures_that_no_longer_count() {
        // 900 is out of the window at 1025; 1000 is the oldest that counts.
        let st = with_failures(&[900, 1000, 1010, 1020]);
        assert_eq!(st.retry_after(1025, LIMIT), 5);
    }

    #[test]
    fn retry_after_waits_until_fewer_than_the_limit_remain() {
        // Four counted failures against a limit of three (the limit was
        // lowered): two must leave, the second at 1040.
        let st = with_failures(&[1000, 1010, 1020, 1025]);
        assert!(st.locked(1025, LIMIT));
        assert_eq!(st.retry_after(1025, LIMIT), 15);
        assert!(st.locked(1039, LIMIT));
        assert!(!st.locked(1040, LIMIT));
    }

    #[test]
    fn retry_after_with_the_clock_stepped_back() {
        // Failures stamped ahead of now count until a window after them.
        let st = with_failures(&[1100, 1101, 1102]);
        assert!(st.locked(1090, LIMIT));
        assert_eq!(st.retry_after(1090, LIMIT), 40);
        // No failure at all: the window.
        assert_eq!(UserState::new().retry_after(5, LIMIT), 30);
    }
}
