//! Every way a login ends, typed, and the ONE place each is mapped to its
//! PAM verdict, its syslog level and its audit line. Fail closed: only an
//! accepted code (or an enrollment at login confirmed by one, `enroll.rs`)
//! is [`Verdict::Success`]; only the group rules, `nullok` and the time
//! before `enroll_by` give [`Verdict::Ignore`]; everything else denies.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use crate::config::{ConfigError, Deadline, SecretPathError};
use crate::core::decision::{Method, Outcome};
use crate::core::event::{Detail, DetailValue, EventKind};
use crate::core::logtext::{prose, reason, token};
use crate::core::policy::RateLimit;
use crate::state::StateError;

use super::secret_command::SecretCommandError;
use super::{Level, Verdict};

/// Why this module has no say for the user (PAM_IGNORE).
#[derive(Debug)]
pub(crate) enum Skip {
    ExemptGroup(String),
    NotInRequiredGroup(String),
    NotEnrolledNullok,
    /// No secret, and the `enroll_by=` day is still ahead.
    BeforeDeadline(Deadline),
    /// Offered enrollment at login, the user left the code empty (only
    /// when they may pass without a code: nullok, or before `enroll_by=`).
    EnrollmentSkipped(Option<Deadline>),
}

/// How an enrollment at login ended without a saved secret.
#[derive(Debug)]
pub(crate) enum EnrollEnd {
    /// An empty answer (or none) where enrolling is required.
    NoCode,
    WrongCode,
    RateLimited,
    /// It could not be offered or saved: why (no secret in it).
    Failed(String),
}

/// Why the group rules could not be applied.
#[derive(Debug)]
pub(crate) enum GroupError {
    Lookup(io::Error),
    /// `require_group` names a group that does not exist.
    NoSuchGroup(String),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Lookup(e) => write!(f, "group lookup failed: {e}"),
            GroupError::NoSuchGroup(g) => {
                write!(f, "require_group names {}, which does not exist", token(g))
            }
        }
    }
}

/// A login that ended before a code was decided.
#[derive(Debug)]
pub(crate) enum Denial {
    /// The module's arguments or config.toml (before the user is known).
    Config(ConfigError),
    NoUserName,
    UserLookup(io::Error),
    Skipped(Skip),
    Groups(GroupError),
    SecretPath(SecretPathError),
    /// `secret_command=` cannot be run (its file, its user).
    SecretCommand(SecretCommandError),
    /// The conversation failed or gave nothing.
    NoCode,
    NotEnrolled,
    UnknownUser,
    /// The secret file exists but cannot be used (the reason).
    FileProblem(String),
    State(StateError),
    SetAuthtok,
    /// Enrollment at login (`enroll_at_login`) saved nothing.
    Enroll(EnrollEnd),
}

/// What a login's end produces: the verdict and one log line.
pub(crate) struct Ending {
    pub(crate) verdict: Verdict,
    pub(crate) level: Level,
    /// `result=` of the audit line, or `None` for a line without one
    /// (before the user is known).
    pub(crate) result: Option<&'static str>,
    pub(crate) detail: String,
}

fn ending(verdict: Verdict, level: Level, result: &'static str, detail: String) -> Ending {
    Ending {
        verdict,
        level,
        result: Some(result),
        detail,
    }
}

impl Denial {
    pub(crate) fn ending(&self) -> Ending {
        use Level::*;
        use Verdict::*;
        match self {
            Denial::Config(e) => Ending {
                verdict: AuthErr,
                level: Err,
                result: None,
                detail: format!("configuration error: {}; denying", prose(&e.to_string())),
            },
            Denial::NoUserName => Ending {
                verdict: AuthErr,
                level: Err,
                result: None,
                detail: "could not get the user name; denying".into(),
            },
            Denial::UserLookup(e) => ending(
                AuthErr,
                Err,
                "error",
                reason(&format!("user lookup failed: {e}")),
            ),
            Denial::Skipped(why) => {
                let why = match why {
                    Skip::ExemptGroup(g) => format!("reason=exempt_group={}", token(g)),
                    Skip::NotInRequiredGroup(g) => format!("reason=require_group={}", token(g)),
                    Skip::NotEnrolledNullok => "reason=not-enrolled,nullok".into(),
                    Skip::BeforeDeadline(d) => format!("reason=not-enrolled,enroll_by={d}"),
                    Skip::EnrollmentSkipped(Some(d)) => {
                        format!("reason=enrollment-skipped,enroll_by={d}")
                    }
                    Skip::EnrollmentSkipped(None) => "reason=enrollment-skipped,nullok".into(),
                };
                ending(Ignore, Info, "skipped", why)
            }
            Denial::Groups(e) => ending(AuthErr, Err, "config-error", reason(&e.to_string())),
            Denial::SecretPath(e) => ending(AuthErr, Err, "config-error", reason(&e.to_string())),
            Denial::SecretCommand(e) => {
                ending(AuthErr, Err, "config-error", reason(&e.to_string()))
            }
            Denial::NoCode => ending(
                AuthErr,
                Notice,
                "no-code",
                reason("conversation failed or no code given"),
            ),
            Denial::NotEnrolled => {
                ending(AuthErr, Notice, "not-enrolled", reason("no secret file"))
            }
            Denial::UnknownUser => ending(AuthErr, Notice, "unknown-user", String::new()),
            Denial::FileProblem(why) => ending(AuthErr, Err, "file-problem", reason(why)),
            Denial::State(e) => ending(AuthErr, Err, "state-error", reason(&e.to_string())),
            Denial::SetAuthtok => {
                ending(AuthErr, Err, "error", reason("could not set PAM_AUTHTOK"))
            }
            Denial::Enroll(end) => match end {
                EnrollEnd::NoCode => ending(
                    AuthErr,
                    Notice,
                    "not-enrolled",
                    reason("enrollment at login declined"),
                ),
                EnrollEnd::WrongCode => {
                    ending(AuthErr, Warning, "enroll-wrong-code", String::new())
                }
                EnrollEnd::RateLimited => ending(AuthErr, Warning, "rate-limited", String::new()),
                EnrollEnd::Failed(why) => ending(AuthErr, Err, "enroll-error", reason(why)),
            },
        }
    }
}

/// The log line of a decided attempt (the verdict is the caller's: a
/// try_first_pass attempt that fails is followed by the prompt).
/// `offset`: the accepted TOTP step minus the current one.
pub(crate) fn decided(
    outcome: &Outcome,
    offset: i128,
    remaining: usize,
    rate_limit: RateLimit,
) -> (Level, &'static str, String) {
    match outcome {
        Outcome::Accepted(Method::Totp { .. }) => (
            Level::Notice,
            "success",
            format!("method=totp offset={offset}"),
        ),
        Outcome::Accepted(Method::Scratch { .. }) => (
            Level::Notice,
            "scratch-code-used",
            format!("method=scratch remaining={remaining}"),
        ),
        Outcome::Wrong => (Level::Warning, "wrong-code", String::new()),
        Outcome::Accepted(Method::Hotp { counter, .. }) => (
            Level::Notice,
            "success",
            format!("method=hotp counter={counter}"),
        ),
        Outcome::Replayed(Method::Totp { .. } | Method::Hotp { .. }) => {
            (Level::Warning, "replayed-code", "method=totp".into())
        }
        Outcome::Replayed(Method::Scratch { .. }) => {
            (Level::Warning, "replayed-code", "method=scratch".into())
        }
        Outcome::Refused(_, why) => (Level::Err, "refused", format!("reason={}", why.as_str())),
        Outcome::RateLimited { .. } => (
            Level::Warning,
            "rate-limited",
            format!("rate_limit={rate_limit}"),
        ),
    }
}

/// The `notify=` event of a login that ended before a code was decided.
pub(crate) fn denial_event(denial: &Denial) -> Option<(EventKind, Detail)> {
    let text = |why: String| vec![("reason", DetailValue::Text(why))];
    match denial {
        Denial::FileProblem(why) => Some((EventKind::SecretProblem, text(why.clone()))),
        Denial::State(StateError::FleetDenied(e)) => {
            let mut d = text(e.to_string());
            d.push(("fallback", DetailValue::Text("deny".into())));
            Some((EventKind::StateUnavailable, d))
        }
        _ => None,
    }
}

/// The `notify=` events of a decided attempt. `locked_by_it`: the seconds
/// of the lockout this attempt started (it reached the rate limit).
pub(crate) fn decided_events(
    outcome: &Outcome,
    remaining: usize,
    locked_by_it: Option<u64>,
    rate_limit: RateLimit,
) -> Vec<(EventKind, Detail)> {
    let left = || vec![("remaining", DetailValue::Int(remaining as u64))];
    let mut events = Vec::new();
    match outcome {
        Outcome::Accepted(Method::Scratch { .. }) => {
            events.push((EventKind::ScratchUsed, left()));
            if remaining <= 1 {
                events.push((EventKind::ScratchLow, left()));
            }
        }
        Outcome::Replayed(m) => {
            let method = match m {
                Method::Scratch { .. } => "scratch",
                _ => "totp",
            };
            events.push((
                EventKind::Replayed,
                vec![("method", DetailValue::Text(method.into()))],
            ));
        }
        _ => {}
    }
    if let Some(retry_after) = locked_by_it {
        events.push((
            EventKind::Lockout,
            vec![
                ("retry_after", DetailValue::Int(retry_after)),
                ("rate_limit", DetailValue::Text(rate_limit.to_string())),
            ],
        ));
    }
    events
}

/// The `notify=` event of a fallback to the local state
/// (`state_unavailable=local`): the first warning is its reason.
pub(crate) fn fallback_event(warnings: &[String]) -> Option<(EventKind, Detail)> {
    let first = warnings.first()?;
    Some((
        EventKind::StateUnavailable,
        vec![
            ("reason", DetailValue::Text(first.clone())),
            ("fallback", DetailValue::Text("local".into())),
        ],
    ))
}
