//! `pam-totp status`: enrollment, code parameters, scratch codes left,
//! failed attempts and lockout, as far as the caller may see. A problem the
//! module would deny on (an unusable secret file, a corrupt state) is still
//! shown, then reported on standard error with exit status 1.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use pam_totp::config::Settings;
use pam_totp::core::decision;
use pam_totp::core::decision::Counter;
use pam_totp::core::decision::Credentials;
use pam_totp::core::otp::Algorithm;
use pam_totp::secret::enrollment::valid_key_name;
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::state::local::StateDir;
use pam_totp::state::model::UserState;
use pam_totp::state::StateError;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use super::{fleet_state, now};
use crate::access::{self, caller, locate, settings, state_dir, target, Caller};
use crate::args::StatusArgs;
use crate::error::{AccessError, CliError, Result, EXIT_FAILED};
use crate::output::{self, print_out};
use crate::secret_file::{found_in, read_enrollment, read_stdin_text, Found};

/// The user's state as far as this caller can see it.
pub(super) enum StateView {
    Known(UserState),
    /// The module denies until `reset`: the reason.
    Corrupt(String),
    /// Unknown: not readable by this (non-root) caller, or, for `report`,
    /// not read (the account is refused, or the read failed): the reason.
    Hidden(String),
}

fn read_state(caller: &Caller, dir: &Path, user: &str) -> Result<StateView> {
    if !access::exists(dir) {
        return Ok(StateView::Known(UserState::new()));
    }
    let account = users::state_account(user).map_err(AccessError::Account)?;
    let read = StateDir::open(dir, false).and_then(|d| {
        let lock = d.lock(&account)?;
        lock.read()
    });
    match read {
        Ok(s) => Ok(StateView::Known(s)),
        Err(e @ StateError::Corrupt { .. }) => Ok(StateView::Corrupt(e.to_string())),
        Err(e) if !caller.root => Ok(StateView::Hidden(e.to_string())),
        Err(e) => Err(CliError::State(e)),
    }
}

pub(super) fn run(a: StatusArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let mut settings = settings(a.who.config.as_deref())?;
    if let Some(limit) = a.rate_limit {
        settings.policy.rate_limit = limit;
    }
    let (found, shown) = find_enrollment(&caller, &user, &settings, &a)?;
    let dir = state_dir(&settings, &a.state.state_dir);
    let state = user_state(&caller, &settings, &a, &user, &dir)?;

    if let StateView::Hidden(why) = &state {
        eprintln!(
            "pam-totp: note: the state directory {} is root's ({why}); \
             scratch_codes_remaining, failed_attempts and locked are unknown",
            dir.display()
        );
    }
    let judged = judge(&found, &state, &settings, now());
    let keys = key_list(&found, judged.enrollment);
    // The fields of one key stay as they were: the first key's.
    let (algorithm, digits, period) = keys.first().map_or((None, None, None), |k| {
        (k.algorithm.clone(), k.digits, k.period)
    });
    let report = output::Status {
        user: user.name.clone(),
        enrolled: !matches!(found, Found::Missing),
        secret_file: shown,
        algorithm,
        digits,
        period,
        scratch_codes_remaining: judged.scratch_codes_remaining,
        failed_attempts: judged.failed_attempts,
        locked: judged.locked,
        keys,
    };
    show(&report, a.json, judged.problems)
}

/// One account as `status` and `report` judge it, from its secret file and
/// its state; `None` is unknown (or, for scratch codes, not enrolled).
pub(super) struct Judged<'a> {
    pub enrollment: Option<&'a Enrollment>,
    pub scratch_codes_remaining: Option<usize>,
    pub failed_attempts: Option<u64>,
    /// Whether the rate limit refuses a code now (a corrupt state: always).
    pub locked: Option<bool>,
    /// The last successful login (seconds since the epoch).
    pub last_success: Option<u64>,
    /// What makes the module deny every login: the reasons.
    pub problems: Vec<String>,
}

/// Judges one account at `now`, with the rate limit the module would use
/// for it (the settings', made stricter by a Google file's own).
pub(super) fn judge<'a>(
    found: &'a Found,
    state: &StateView,
    settings: &Settings,
    now: u64,
) -> Judged<'a> {
    let mut problems = Vec::new();
    let enrollment = match found {
        Found::Enrolled(e) => Some(e),
        Found::Unusable(why) => {
            problems.push(format!("{why}; the module denies every login"));
            None
        }
        Found::Missing | Found::Sealed(_) => None,
    };
    let limit = enrollment.map_or(settings.policy.rate_limit, |e| {
        Credentials::of(e).rate_limit(&settings.policy)
    });
    let (failed_attempts, locked, remaining, last_success) = match state {
        StateView::Known(s) => (
            Some(s.failed_attempts),
            Some(s.locked(now, limit)),
            enrollment.map(|e| decision::remaining_scratch(&e.scratch, s)),
            s.last_success,
        ),
        StateView::Corrupt(why) => {
            problems.push(format!("{why}; the module denies every login"));
            (None, Some(true), None, None)
        }
        StateView::Hidden(_) => (None, None, None, None),
    };
    Judged {
        enrollment,
        scratch_codes_remaining: remaining,
        failed_attempts,
        locked,
        last_success,
        problems,
    }
}

/// The enrollment, and the secret file as the report shows it.
/// `--secret-file -`: the secret file's text from standard input (what a
/// central store holds), judged as the module judges a file; empty input
/// is no enrollment.
fn find_enrollment(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    a: &StatusArgs,
) -> Result<(Found, String)> {
    if a.file.is_stdio() {
        let bytes = read_stdin_text()?;
        let found = match bytes.is_empty() {
            true => Found::Missing,
            false => found_in(caller, user, settings, &bytes, "standard input"),
        };
        return Ok((found, "-".to_owned()));
    }
    let loc = locate(caller, user, settings, a.file.secret_file.as_deref())?;
    Ok((read_enrollment(caller, user, settings, &loc)?, loc.shown()))
}

/// The user's state: the fleet state (cmd/fleet_state.rs) when configured,
/// else the local one in `dir`; a non-root caller sees the local view
/// (root's, so hidden).
fn user_state(
    caller: &Caller,
    settings: &Settings,
    a: &StatusArgs,
    user: &UserInfo,
    dir: &Path,
) -> Result<StateView> {
    let fleet = match caller.root {
        true => fleet_state::open(caller, settings, &a.state)?,
        false => None,
    };
    Ok(match fleet {
        Some(mut store) => {
            let account = users::state_account(&user.name).map_err(AccessError::Account)?;
            match fleet_state::read(&mut store, &account)? {
                Ok(s) => StateView::Known(s),
                Err(why) => StateView::Corrupt(why),
            }
        }
        None => read_state(caller, dir, &user.name)?,
    })
}

/// The keys and their parameters: the enrollment's, or a sealed file's
/// own word (a name that is not a valid key name is not shown).
fn key_list(found: &Found, enrollment: Option<&Enrollment>) -> Vec<output::KeyStatus> {
    match (found, enrollment) {
        (_, Some(e)) => e
            .keys
            .iter()
            .map(|k| output::KeyStatus {
                name: k.name.clone(),
                algorithm: Some(k.key.algorithm().as_str().to_owned()),
                digits: Some(k.key.digits()),
                period: match e.counter {
                    Counter::Time => Some(k.key.period()),
                    Counter::Event { .. } => None,
                },
                sealed: k.sealed,
            })
            .collect(),
        (Found::Sealed(f), None) => f
            .keys
            .iter()
            .map(|k| output::KeyStatus {
                name: match valid_key_name(&k.name) {
                    true => k.name.clone(),
                    false => "?".to_owned(),
                },
                algorithm: k
                    .algorithm
                    .parse::<Algorithm>()
                    .ok()
                    .map(|a| a.as_str().to_owned()),
                digits: u8::try_from(k.digits).ok(),
                period: Some(k.period),
                sealed: k.sealed_secret.is_some(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Prints the report, then the problems (exit status 1 if any).
fn show(report: &output::Status, json: bool, problems: Vec<String>) -> Result<ExitCode> {
    if json {
        output::print_json(report)?;
    } else {
        print_out(&output::status_text(report))?;
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in problems {
        eprintln!("pam-totp: {p}");
    }
    Ok(ExitCode::from(EXIT_FAILED))
}
