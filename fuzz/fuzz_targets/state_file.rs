//! The per-user state file (replay, rate limit, used scratch codes).
//!
//! - `UserState::from_toml` never panics and accepts only versions 1
//!   (migrated) and 2; its shortcut for the writer's layout reads every
//!   text as the TOML parser does (`from_toml_by_parser`), error or state.
//! - Round trip: from_toml → to_toml → from_toml gives the same state, and
//!   so does a state file of two slots made of it.
//! - The two-slot layout's reader (`record::parse_state_file`) never
//!   panics, on the bytes as a file and as the start of a two-slot file.
//! - Whatever a parsable state holds, a login attempt with it does not
//!   panic, a spent step stays refused, and a wrong code is never accepted;
//!   a refusal leaves every key's record as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::core::decision;
use pam_totp::core::decision::{Counter, FileLimits};
use pam_totp::core::decision::{Credentials, Outcome};
use pam_totp::core::otp::{Algorithm, OtpKey};
use pam_totp::core::policy::Policy;
use pam_totp::state::model::{UserState, STATE_VERSION};
use pam_totp::state::record;

/// A fixed time: 2023-11-14, step 56666666 of 30 s.
const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = record::parse_state_file(data);
    let mut file = vec![0u8; 2 * record::PAGE];
    let n = data.len().min(file.len());
    file[..n].copy_from_slice(&data[..n]);
    let _ = record::parse_state_file(&file);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = UserState::from_toml(text);
    assert_eq!(read, UserState::from_toml_by_parser(text));
    let Ok(state) = read else {
        return;
    };
    assert_eq!(state.version, STATE_VERSION);
    let written = state
        .to_toml()
        .unwrap_or_else(|e| panic!("a parsed state does not serialize: {e}"));
    let again = UserState::from_toml(&written)
        .unwrap_or_else(|e| panic!("to_toml wrote what from_toml refuses: {e}\n{written}"));
    assert_eq!(again, state);
    assert_eq!(UserState::from_toml_by_parser(&written), Ok(state.clone()));
    let made = record::new_file(1, written.as_bytes(), record::slot_size_for(written.len()));
    let read = record::parse_state_file(&made)
        .unwrap_or_else(|e| panic!("a state file of two slots does not read back: {e}"));
    assert_eq!(read, state);

    let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
    let limits = FileLimits::default();
    let policy = Policy::default();
    for counter in [Counter::Time, Counter::Event { first: 0 }] {
        let creds = Credentials {
            keys: vec![&key],
            scratch: &[],
            counter,
            limits: &limits,
        };
        let code = match counter {
            Counter::Time => key.totp_code(key.step_at(NOW)),
            Counter::Event { .. } => key.hotp_code(state.hotp_next(&key).unwrap_or(0)),
        };
        let mut s = state.clone();
        match decision::attempt(&creds, &code, NOW, &policy, &mut s) {
            Outcome::Accepted(decision::Method::Totp { step, .. }) => {
                let spent = state.last_step(&key);
                assert!(
                    spent.is_none_or(|last| step > last),
                    "spent step {step} accepted"
                );
            }
            Outcome::Accepted(decision::Method::Scratch { .. }) => panic!("no scratch codes here"),
            _ => {}
        }
        let mut s = state.clone();
        let wrong = if code.as_str() == "000000" {
            "000001"
        } else {
            "000000"
        };
        let outcome = decision::attempt(&creds, wrong, NOW, &policy, &mut s);
        // "000000" may still be a code of a neighbouring step or counter.
        if outcome.is_success() {
            let ok = match counter {
                Counter::Time => (key.step_at(NOW) - 1..=key.step_at(NOW) + 1)
                    .any(|st| key.totp_code(st).as_str() == wrong),
                Counter::Event { .. } => {
                    let next = state.hotp_next(&key).unwrap_or(0);
                    (next..=next.saturating_add(2)).any(|c| key.hotp_code(c).as_str() == wrong)
                }
            };
            assert!(ok, "a wrong code was accepted");
        }
        if !outcome.is_success() {
            assert_eq!(s.failed_attempts, state.failed_attempts.saturating_add(1));
            assert_eq!(s.keys, state.keys);
            assert_eq!(s.used_scratch, state.used_scratch);
        }
    }
});
