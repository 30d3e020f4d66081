//! The state's text: [`UserState`] as TOML, versioned, ending in a trailer
//! line so a text cut short never parses. It is the payload of each record
//! of a local state file (`crate::state::record`), the whole of a local
//! state file of the earlier layout, and the value on the fleet's server.
//! Version 1 (one record for one key) is read and migrated.
#![forbid(unsafe_code)]

use std::fmt;

use std::ops::RangeInclusive;

mod canonical;

use crate::core::logtext;
use crate::core::toml_doc::{
    push_int_line, push_ints_line, push_str_line, push_strings_line, required, Doc, DocError, Table,
};

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

/// The keys of a version-1 state: one `last_step`/`hotp_next` for the key
/// `key_id`. Read and turned into the current format.
const V1_KEYS: &[&str] = &[
    "version",
    "last_step",
    "failures",
    "failed_attempts",
    "used_scratch",
    "last_success",
    "hotp_next",
    "key_id",
];
/// The keys of the current state, and of each of its `[[keys]]`.
const V2_KEYS: &[&str] = &[
    "version",
    "failures",
    "failed_attempts",
    "used_scratch",
    "last_success",
    "keys",
];
const KEY_STATE_KEYS: &[&str] = &["id", "last_used", "last_step", "hotp_next"];

const ANY: RangeInclusive<u64> = 0..=u64::MAX;

/// A version-1 state, in the current form: its steps and counters belong
/// to its `key_id` (or to the first key that logs in, without one).
fn read_v1(t: Table<'_, '_>) -> Result<UserState, DocError> {
    let t = t.only(V1_KEYS)?;
    let last_step = t.int("last_step", ANY)?;
    let failures = t.ints("failures", ANY)?.unwrap_or_default();
    let failed_attempts = t.int("failed_attempts", ANY)?.unwrap_or(0);
    let used_scratch = t.strings("used_scratch")?.unwrap_or_default();
    let last_success = t.int("last_success", ANY)?;
    let hotp_next = t.int("hotp_next", ANY)?;
    let key_id = t.str("key_id")?;
    let mut keys = Vec::new();
    if last_step.is_some() || hotp_next.is_some() {
        keys.push(KeyState {
            id: key_id.unwrap_or_default().to_owned(),
            last_used: last_success.unwrap_or(0),
            last_step,
            hotp_next,
        });
    }
    Ok(UserState {
        version: STATE_VERSION,
        failures,
        failed_attempts,
        used_scratch,
        last_success,
        keys,
    })
}

fn read_v2(t: Table<'_, '_>) -> Result<UserState, DocError> {
    let t = t.only(V2_KEYS)?;
    let failures = t.ints("failures", ANY)?.unwrap_or_default();
    let failed_attempts = t.int("failed_attempts", ANY)?.unwrap_or(0);
    let used_scratch = t.strings("used_scratch")?.unwrap_or_default();
    let last_success = t.int("last_success", ANY)?;
    let keys = t
        .tables("keys")?
        .unwrap_or_default()
        .into_iter()
        .map(read_key_state)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserState {
        version: STATE_VERSION,
        failures,
        failed_attempts,
        used_scratch,
        last_success,
        keys,
    })
}

fn read_key_state(t: Table<'_, '_>) -> Result<KeyState, DocError> {
    let t = t.only(KEY_STATE_KEYS)?;
    Ok(KeyState {
        id: required(t.str("id")?, "id")?.to_owned(),
        last_used: required(t.int("last_used", ANY)?, "last_used")?,
        last_step: t.int("last_step", ANY)?,
        hotp_next: t.int("hotp_next", ANY)?,
    })
}

/// The text without its trailer: [`ModelError::CutShort`] when it does
/// not end with the trailer as a line of its own.
fn body_of(text: &str) -> Result<&str, ModelError> {
    text.strip_suffix(STATE_TRAILER)
        .filter(|b| b.is_empty() || b.ends_with('\n'))
        .ok_or(ModelError::CutShort)
}

/// The body read by the TOML parser, version 1 or 2.
fn parse_body(body: &str) -> Result<UserState, ModelError> {
    let msg = |e: DocError| ModelError::Toml(logtext::toml_problem(body, &e));
    let doc = Doc::parse(body).map_err(msg)?;
    let t = doc.table();
    let version = t.int("version", 0..=u64::from(u32::MAX)).map_err(msg)?;
    match required(version, "version").map_err(msg)? {
        1 => read_v1(t).map_err(msg),
        2 => read_v2(t).map_err(msg),
        v => Err(ModelError::Version(u32::try_from(v).unwrap_or(u32::MAX))),
    }
}

impl UserState {
    /// Parses a state file's text. Anything but a version-1 or version-2
    /// state with known, well-typed keys, ending in the line
    /// [`STATE_TRAILER`], is an error (the reason, for the log). The
    /// trailer makes a file that was cut short (at any byte, even at a line
    /// end, where the rest would still be valid TOML with a smaller
    /// `last_step`) fail to parse. A version-1 state comes back in the
    /// current form: its steps and counters belong to its `key_id`.
    ///
    /// A text in the layout [`to_toml`](Self::to_toml) writes is read by a
    /// shortcut (`canonical`), anything else by the TOML parser; both read
    /// it alike.
    pub fn from_toml(text: &str) -> Result<UserState, ModelError> {
        let body = body_of(text)?;
        match canonical::read(body) {
            Some(state) => Ok(state),
            None => parse_body(body),
        }
    }

    /// [`from_toml`](Self::from_toml) without the shortcut: always the TOML
    /// parser (for the fuzz target and tests, which compare the two).
    pub fn from_toml_by_parser(text: &str) -> Result<UserState, ModelError> {
        parse_body(body_of(text)?)
    }

    /// The state file's text, which [`from_toml`](Self::from_toml) reads
    /// back: the layout the `toml` crate's serializer gave it (top-level
    /// values, then one `[[keys]]` table per key), then [`STATE_TRAILER`].
    /// Never fails; the `Result` is kept for the callers.
    pub fn to_toml(&self) -> Result<String, ModelError> {
        let strings: usize = self.used_scratch.iter().map(|s| s.len() + 4).sum();
        let mut out =
            String::with_capacity(160 + strings + 24 * self.failures.len() + 120 * self.keys.len());
        push_int_line(&mut out, "version", u64::from(self.version));
        push_ints_line(&mut out, "failures", &self.failures);
        push_int_line(&mut out, "failed_attempts", self.failed_attempts);
        push_strings_line(&mut out, "used_scratch", &self.used_scratch);
        if let Some(t) = self.last_success {
            push_int_line(&mut out, "last_success", t);
        }
        for k in &self.keys {
            out.push_str("\n[[keys]]\n");
            push_str_line(&mut out, "id", &k.id);
            push_int_line(&mut out, "last_used", k.last_used);
            if let Some(step) = k.last_step {
                push_int_line(&mut out, "last_step", step);
            }
            if let Some(next) = k.hotp_next {
                push_int_line(&mut out, "hotp_next", next);
            }
        }
        out.push_str(STATE_TRAILER);
        Ok(out)
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

    fn full() -> UserState {
        UserState {
            version: STATE_VERSION,
            failures: vec![1, 2],
            failed_attempts: 3,
            used_scratch: vec!["ab".into(), "cd".into()],
            last_success: Some(u64::MAX),
            keys: vec![
                KeyState {
                    id: "f1".into(),
                    last_used: 5,
                    last_step: Some(7),
                    hotp_next: None,
                },
                KeyState {
                    id: String::new(),
                    last_used: 0,
                    last_step: None,
                    hotp_next: Some(u64::MAX),
                },
            ],
        }
    }

    #[test]
    fn the_text_keeps_the_layout_the_toml_serializer_gave_it() {
        // What `toml::to_string` wrote for these values before the module
        // wrote the text itself.
        let text = "version = 2\nfailures = [1, 2]\nfailed_attempts = 3\n\
            used_scratch = [\"ab\", \"cd\"]\nlast_success = 18446744073709551615\n\
            \n[[keys]]\nid = \"f1\"\nlast_used = 5\nlast_step = 7\n\
            \n[[keys]]\nid = \"\"\nlast_used = 0\nhotp_next = 18446744073709551615\n\
            complete = true\n";
        assert_eq!(full().to_toml().unwrap(), text);
        assert_eq!(UserState::from_toml(text).unwrap(), full());
        assert_eq!(
            UserState::new().to_toml().unwrap(),
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\ncomplete = true\n"
        );
    }

    #[test]
    fn any_string_reads_back_as_written() {
        for s in [
            "q\"uote",
            "back\\slash",
            "new\nline",
            "\u{0}\u{7f}",
            "漢字🙂",
            "\"\"\"",
            "x = 1",
        ] {
            let mut st = full();
            st.used_scratch = vec![s.to_owned(), "ab".into()];
            st.keys[0].id = s.to_owned();
            let text = st.to_toml().unwrap();
            assert_eq!(UserState::from_toml(&text).unwrap(), st, "{text}");
        }
    }

    #[test]
    fn malformed_states_are_refused_in_the_module_s_words() {
        for (body, want) in [
            (
                "version = 2\nfailures = [\"x\"]\n",
                "line 2: wrong type of value (failures)",
            ),
            (
                "version = 2\nfailed_attempts = -1\n",
                "line 2: invalid value (failed_attempts)",
            ),
            ("version = 2\ncolour = 1\n", "line 2: unknown key (colour)"),
            ("failures = []\n", "missing key version"),
            ("version = \"2\"\n", "line 1: wrong type of value (version)"),
            ("version = 4294967296\n", "line 1: invalid value (version)"),
            (
                "version = 2\nversion = 2\n",
                "line 2: duplicate key (version)",
            ),
            (
                "version = 2\n\n[[keys]]\nid = \"a\"\n",
                "missing key last_used",
            ),
            (
                "version = 2\n\n[[keys]]\nid = \"a\"\nlast_used = 1\nkey_id = \"a\"\n",
                "line 6: unknown key (key_id)",
            ),
            (
                "version = 2\nkeys = [1]\n",
                "line 2: wrong type of value (keys)",
            ),
            (
                "version = 1\nkey_id = 7\n",
                "line 2: wrong type of value (key_id)",
            ),
            (
                "version = 2\nlast_success = 1.0\n",
                "line 2: wrong type of value (last_success)",
            ),
        ] {
            let text = format!("{body}{STATE_TRAILER}");
            match UserState::from_toml(&text) {
                Err(ModelError::Toml(m)) => assert_eq!(m, want, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert_eq!(
            UserState::from_toml("version = 3\ncomplete = true\n"),
            Err(ModelError::Version(3))
        );
    }
}
