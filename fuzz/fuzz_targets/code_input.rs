//! What a user types at the prompt, through `decision::attempt_any`, over a
//! sequence of logins with the state carried from one to the next.
//!
//! Any key parameters, module and file limits, clock jumps (back too), and
//! typed strings: arbitrary text, right codes (with spaces), codes of other
//! steps, scratch codes, right codes with something added or one digit
//! changed. Checked against a reference HOTP (RFC 4226 on the `hmac`
//! crate, not totp-rs):
//!
//! - never panics;
//! - accepts only a candidate equal to the code of a step (counter) inside
//!   the window and not yet spent, or an unused scratch code, and never
//!   while the rate limit is reached;
//! - records what it accepted (the step, the counter, the scratch code), so
//!   none is accepted twice; a refusal changes nothing but the failures;
//! - does accept such a candidate when not rate limited.
#![no_main]

use arbitrary::Arbitrary;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use pam_totp::core::decision;
use pam_totp::core::decision::{Counter, FileLimits};
use pam_totp::core::decision::{Credentials, Method, Outcome};
use pam_totp::core::otp::{Algorithm, OtpKey};
use pam_totp::core::policy::{Policy, RateLimit, MAX_WINDOW};
use pam_totp::core::scratch::ScratchHash;
use pam_totp::state::model::UserState;

const SCRATCH: [&str; 4] = ["12345678", "00000000", "99999999", "31415926"];

#[derive(Arbitrary, Debug)]
struct Input {
    secret: Vec<u8>,
    algorithm: u8,
    digits: u8,
    period: u16,
    window: u8,
    hotp_first: Option<u16>,
    max_failures: u8,
    rate_seconds: u8,
    file_window: Option<(u8, u8)>,
    file_rate: Option<(u8, u8)>,
    file_spent: Option<i8>,
    start: u32,
    attempts: Vec<Attempt>,
}

#[derive(Arbitrary, Debug)]
struct Attempt {
    /// Seconds since the previous attempt; negative when the clock steps back.
    advance: i16,
    typed: Vec<Typed>,
}

#[derive(Arbitrary, Debug)]
enum Typed {
    Text(String),
    /// The code `offset` steps (or counters) from now, with whitespace.
    Code {
        offset: i8,
        spaces: u8,
    },
    Scratch {
        index: u8,
        spaces: u8,
    },
    /// A right code with something before or after it.
    Mangled {
        offset: i8,
        extra: String,
        before: bool,
    },
    /// A right code with one digit changed.
    OneOff {
        offset: i8,
        position: u8,
        add: u8,
    },
}

fuzz_target!(|input: Input| run(input));

fn run(input: Input) {
    let mut secret = input.secret;
    secret.resize(secret.len().clamp(10, 64), 0x5a);
    let algorithm =
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][usize::from(input.algorithm % 3)];
    let digits = 6 + input.digits % 3;
    let period = u64::from(input.period % 300) + 1;
    let key = OtpKey::new(&secret, algorithm, u64::from(digits), period).unwrap();
    let reference = |counter: u64| hotp(algorithm, &secret, counter, digits);
    let scratch: Vec<ScratchHash> = SCRATCH
        .iter()
        .map(|c| ScratchHash::from_plain(c, &secret))
        .collect();

    let mut now: u64 = 1_600_000_000 + u64::from(input.start);
    let policy = Policy {
        window: u64::from(input.window % (MAX_WINDOW as u8 + 3)),
        rate_limit: RateLimit {
            max_failures: u32::from(input.max_failures % 5) + 1,
            seconds: u64::from(input.rate_seconds % 90) + 1,
        },
    };
    let limits = FileLimits {
        window: input
            .file_window
            .map(|(b, a)| (u64::from(b % 4), u64::from(a % 4))),
        rate_limit: input.file_rate.map(|(n, s)| RateLimit {
            max_failures: u32::from(n % 10) + 1,
            seconds: u64::from(s % 120) + 1,
        }),
        spent_step: input
            .file_spent
            .map(|d| key.step_at(now).saturating_add_signed(i64::from(d))),
    };
    let counter = match input.hotp_first {
        Some(first) => Counter::Event {
            first: u64::from(first),
        },
        None => Counter::Time,
    };
    let creds = Credentials {
        keys: vec![&key],
        scratch: &scratch,
        counter,
        limits: &limits,
    };

    // The rules, written out independently of verify.rs.
    let w = policy.window.min(MAX_WINDOW);
    let (back, ahead) = match limits.window {
        Some((b, a)) => (w.min(b), w.min(a)),
        None => (w, w),
    };
    let limit = match limits.rate_limit {
        Some(f) => RateLimit {
            max_failures: policy.rate_limit.max_failures.min(f.max_failures),
            seconds: policy.rate_limit.seconds.max(f.seconds),
        },
        None => policy.rate_limit,
    };

    let mut state = UserState::new();
    for attempt in input.attempts.iter().take(24) {
        now = now.saturating_add_signed(i64::from(attempt.advance));
        let before = state.clone();
        // The counters in reach, and the first not yet spent.
        let (reach, unspent_from) = match counter {
            Counter::Time => {
                let step = key.step_at(now);
                let spent = before.last_step(&key).max(limits.spent_step);
                (
                    step.saturating_sub(back)..=step.saturating_add(ahead),
                    spent.map_or(0, |s| s.saturating_add(1)),
                )
            }
            Counter::Event { first } => {
                let next = before.hotp_next(&key).unwrap_or(0).max(first);
                (next..=next + back + ahead, next)
            }
        };
        let base = match counter {
            Counter::Time => key.step_at(now),
            Counter::Event { first } => before.hotp_next(&key).unwrap_or(0).max(first),
        };
        let at = |offset: i8| reference(base.saturating_add_signed(i64::from(offset)));

        let typed: Vec<String> = attempt
            .typed
            .iter()
            .take(3)
            .map(|t| match t {
                Typed::Text(s) => s.clone(),
                Typed::Code { offset, spaces } => spaced(&at(*offset), *spaces),
                Typed::Scratch { index, spaces } => {
                    let code = SCRATCH.get(usize::from(index % 5)).unwrap_or(&"11111111");
                    spaced(code, *spaces)
                }
                Typed::Mangled {
                    offset,
                    extra,
                    before,
                } => {
                    if *before {
                        format!("{extra}{}", at(*offset))
                    } else {
                        format!("{}{extra}", at(*offset))
                    }
                }
                Typed::OneOff {
                    offset,
                    position,
                    add,
                } => {
                    let mut code = at(*offset).into_bytes();
                    let i = usize::from(*position) % code.len();
                    code[i] = b'0' + (code[i] - b'0' + 1 + add % 9) % 10;
                    String::from_utf8(code).unwrap()
                }
            })
            .collect();
        let candidates: Vec<String> = typed
            .iter()
            .map(|t| t.chars().filter(|c| !c.is_whitespace()).collect())
            .collect();

        let recent = before
            .failures
            .iter()
            .filter(|&&t| t.saturating_add(limit.seconds) > now && t <= now + limit.seconds)
            .count();
        let locked = recent >= limit.max_failures as usize;
        let code_in_reach = |c: &str| reach.clone().find(|&n| reference(n) == c);
        let scratch_index = |c: &str| SCRATCH.iter().position(|s| *s == c);
        let acceptable = |c: &str| match code_in_reach(c) {
            Some(_) => reach
                .clone()
                .any(|n| n >= unspent_from && reference(n) == c),
            None => {
                scratch_index(c).is_some_and(|i| !before.used_scratch.contains(&scratch[i].id()))
            }
        };
        let wrong = |c: &str| code_in_reach(c).is_none() && scratch_index(c).is_none();

        let refs: Vec<&str> = typed.iter().map(String::as_str).collect();
        let outcome = decision::attempt_any(&creds, &refs, now, &policy, &mut state);

        match &outcome {
            Outcome::Accepted(method) => {
                assert!(!locked, "accepted while rate limited");
                assert_eq!(state.failed_attempts, 0);
                assert_eq!(state.last_success, Some(now));
                match method {
                    Method::Totp { step, .. } => {
                        assert_eq!(counter, Counter::Time);
                        assert!(reach.contains(step) && *step >= unspent_from, "step {step}");
                        assert!(
                            candidates.contains(&reference(*step)),
                            "wrong code accepted"
                        );
                        assert_eq!(state.last_step(&key), Some(*step));
                    }
                    Method::Hotp { counter: c, .. } => {
                        assert!(matches!(counter, Counter::Event { .. }));
                        assert!(reach.contains(c), "counter {c}");
                        assert!(candidates.contains(&reference(*c)), "wrong code accepted");
                        assert_eq!(state.hotp_next(&key), Some(c + 1));
                    }
                    Method::Scratch { id } => {
                        let i = scratch.iter().position(|h| h.id() == *id).unwrap();
                        assert!(candidates.iter().any(|c| c == SCRATCH[i]));
                        assert!(!before.used_scratch.contains(id), "scratch code reused");
                        assert!(state.used_scratch.contains(id));
                    }
                }
            }
            refused => {
                if let Outcome::RateLimited { retry_after } = refused {
                    assert!(locked, "rate limited below the limit");
                    // The wait told is exact: still locked a second before
                    // it ends, unlocked when it does (times here are far
                    // from the end of the range).
                    let counted_at = |at: u64| {
                        before
                            .failures
                            .iter()
                            .filter(|&&t| t + limit.seconds > at && t <= at + limit.seconds)
                            .filter(|&&t| t + limit.seconds > now && t <= now + limit.seconds)
                            .count()
                    };
                    let max = limit.max_failures as usize;
                    assert!(*retry_after >= 1, "retry_after 0");
                    assert!(counted_at(now + retry_after - 1) >= max, "{retry_after}");
                    assert!(counted_at(now + retry_after) < max, "{retry_after}");
                } else {
                    assert!(!locked, "checked while rate limited");
                }
                if let Outcome::Replayed(_) = refused {
                    assert!(!candidates.iter().all(|c| wrong(c)), "{candidates:?}");
                }
                if *refused == Outcome::Wrong {
                    assert!(candidates.iter().all(|c| wrong(c)), "{candidates:?}");
                }
                assert!(
                    locked || !candidates.iter().any(|c| acceptable(c)),
                    "a right code refused: {refused:?} {candidates:?}"
                );
                assert_eq!(state.failed_attempts, before.failed_attempts + 1);
                // No refusal for a full table or an exhausted counter here:
                // one key, four scratch codes, counters far from the end.
                assert!(!matches!(refused, Outcome::Refused(..)), "{refused:?}");
                assert_eq!(state.keys, before.keys);
                assert_eq!(state.used_scratch, before.used_scratch);
                assert_eq!(state.last_success, before.last_success);
            }
        }
    }
}

/// `code` with whitespace put in according to `spaces`.
fn spaced(code: &str, spaces: u8) -> String {
    let ws = [' ', '\t', '\u{a0}', '\u{2003}'][usize::from(spaces >> 6)];
    let every = usize::from(spaces & 7);
    let mut out = String::new();
    for (i, c) in code.chars().enumerate() {
        if every > 0 && i > 0 && i % every == 0 {
            out.push(ws);
        }
        out.push(c);
    }
    if spaces & 8 != 0 {
        out.insert(0, ws);
        out.push(ws);
    }
    out
}

/// RFC 4226 HOTP, on the `hmac` crate: the reference the module is held to.
fn hotp(algorithm: Algorithm, secret: &[u8], counter: u64, digits: u8) -> String {
    let msg = counter.to_be_bytes();
    macro_rules! mac {
        ($hash:ty) => {{
            let mut m = <Hmac<$hash> as KeyInit>::new_from_slice(secret).unwrap();
            m.update(&msg);
            m.finalize().into_bytes().to_vec()
        }};
    }
    let h = match algorithm {
        Algorithm::Sha1 => mac!(sha1::Sha1),
        Algorithm::Sha256 => mac!(sha2::Sha256),
        Algorithm::Sha512 => mac!(sha2::Sha512),
    };
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    let width = usize::from(digits);
    format!("{:0width$}", bin % 10u32.pow(u32::from(digits)))
}
