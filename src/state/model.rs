//! The state's text: [`UserState`] as TOML, versioned, ending in a trailer
//! line so a text cut short never parses. It is the payload of each record
//! of a local state file (`crate::state::record`), the whole of a local
//! state file of the earlier layout, and the value on the fleet's server.
//! Version 1 (one record for one key) is read and migrated.
#![forbid(unsafe_code)]

use std::fmt;

use serde::Deserialize;

use crate::core::logtext;

pub use crate::core::user_state::{
    KeyState, Refusal, UserState, MAX_KEYS, MAX_USED_SCRATCH, STATE_VERSION, TOTP_REPLAY_HORIZON,
};

/// Why a state file's text is not a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// It does not end with [`STATE_TRAILER`]: cut short.
    CutShort,
    /// Not TOML, or unknown or mistyped keys: where and what, never a value.
    Toml(String),
    Version(u32),
    /// The state could not be written as TOML (the reason).
    Serialize(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::CutShort => write!(
                f,
                "cut short: it does not end with {:?}",
                STATE_TRAILER.trim()
            ),
            ModelError::Toml(m) | ModelError::Serialize(m) => f.write_str(m),
            ModelError::Version(v) => write!(f, "version {v}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// The last line of every state file (see [`UserState::from_toml`]).
pub const STATE_TRAILER: &str = "complete = true\n";

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

impl UserState {
    /// Parses a state file's text. Anything but a version-1 or version-2
    /// state with known, well-typed keys, ending in the line
    /// [`STATE_TRAILER`], is an error (the reason, for the log). The
    /// trailer makes a file that was cut short (at any byte, even at a line
    /// end, where the rest would still be valid TOML with a smaller
    /// `last_step`) fail to parse. A version-1 state comes back in the
    /// current form: its steps and counters belong to its `key_id`.
    pub fn from_toml(text: &str) -> Result<UserState, ModelError> {
        let body = text
            .strip_suffix(STATE_TRAILER)
            .filter(|b| b.is_empty() || b.ends_with('\n'))
            .ok_or(ModelError::CutShort)?;
        let msg = |e: toml::de::Error| ModelError::Toml(logtext::toml_problem(body, &e));
        let VersionOnly { version } = toml::from_str(body).map_err(msg)?;
        match version {
            1 => Ok(toml::from_str::<StateV1>(body).map_err(msg)?.into()),
            STATE_VERSION => toml::from_str(body).map_err(msg),
            v => Err(ModelError::Version(v)),
        }
    }

    /// The state file's text, which [`from_toml`](Self::from_toml) reads back.
    pub fn to_toml(&self) -> Result<String, ModelError> {
        let body = toml::to_string(self).map_err(|e| ModelError::Serialize(e.to_string()))?;
        Ok(format!("{body}{STATE_TRAILER}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::decision::{attempt, Counter, Credentials, FileLimits, Outcome};
    use crate::core::otp::{Algorithm, OtpKey};
    use crate::core::policy::{Policy, RateLimit};

    fn key() -> OtpKey {
        OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap()
    }

    fn other_key(n: u8) -> OtpKey {
        OtpKey::new(&[n; 20], Algorithm::Sha1, 6, 30).unwrap()
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
            keys: vec![&k],
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
