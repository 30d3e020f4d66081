//! `pam-totp report`: every account at once (root only), the rollout's
//! dashboard: enrolled or not (and where, sealed, how many keys), scratch
//! codes left, failed attempts, locked now, last successful login.
//!
//! Each account is judged as `status` judges one (`status::judge`). One
//! account that cannot be read gets its reason in `error` and the others
//! are still reported; a secret file that is there but unusable is
//! `enrolled: error`, never "no". Any error, shown or filtered out, is
//! also a line on standard error and makes the exit status 1.
#![forbid(unsafe_code)]

mod accounts;

use std::process::ExitCode;

use pam_totp::config::Settings;
use pam_totp::secret::enrollment::Enrollment;

use super::now;
use super::status::{judge, StateView};
use crate::access::{caller, locate, settings, Caller, Location};
use crate::args::{ReportArgs, ReportFilter};
use crate::error::{AccessError, Result, EXIT_FAILED};
use crate::output::{self, print_out, ReportRow};
use crate::secret_file::{read_enrollment_sealed, Found};
use accounts::{gather, no_account, Account, States};

pub(super) fn run(a: ReportArgs) -> Result<ExitCode> {
    let caller = caller()?;
    if !caller.root {
        return Err(AccessError::ReportRootOnly.into());
    }
    let mut settings = settings(a.config.as_deref())?;
    if let Some(limit) = a.rate_limit {
        settings.policy.rate_limit = limit;
    }
    let mut states = States::open(&caller, &settings, &a.state)?;
    let accounts = gather(&settings, &states)?;
    let now = now();
    let rows: Vec<ReportRow> = accounts
        .iter()
        .map(|acc| row(&caller, &settings, &mut states, acc, now))
        .collect();
    let shown: Vec<&ReportRow> = rows.iter().filter(|r| keep(&a.filter, r)).collect();
    if a.json {
        for r in &shown {
            output::print_json(r)?;
        }
    } else {
        print_out(&output::report_table(&shown))?;
    }
    let mut failed = false;
    for r in &rows {
        if let Some(why) = &r.error {
            eprintln!("pam-totp: {}: {why}", r.user);
            failed = true;
        }
    }
    Ok(match failed {
        true => ExitCode::from(EXIT_FAILED),
        false => ExitCode::SUCCESS,
    })
}

/// How many keys an enrollment holds: one, in today's formats (the one
/// place `report` counts them).
fn key_count(enrollment: &Enrollment) -> usize {
    enrollment.keys.len()
}

/// Whether a row passes the filter: `--enrolled` keeps the accounts with
/// a secret file, usable or not (an unusable one is still a problem to
/// see); `--not-enrolled` only those known to have none; `--locked` those
/// the rate limit (or a corrupt state) refuses now.
fn keep(filter: &ReportFilter, r: &ReportRow) -> bool {
    if filter.enrolled {
        return r.enrolled != output::NOT_ENROLLED;
    }
    if filter.not_enrolled {
        return r.enrolled == output::NOT_ENROLLED;
    }
    if filter.locked {
        return r.locked == Some(true);
    }
    true
}

/// One account's row: its secret file and its state, judged as `status`
/// judges them.
fn row(
    caller: &Caller,
    settings: &Settings,
    states: &mut States,
    acc: &Account,
    now: u64,
) -> ReportRow {
    let mut errors: Vec<String> = acc.problem.iter().cloned().collect();
    let (found, sealed, secret_file) = match secret(caller, settings, acc) {
        Ok(Some((found, sealed, loc))) => (found, sealed, Some(loc.shown())),
        Ok(None) => (Found::Missing, false, None),
        Err(why) => (Found::Unusable(why), false, None),
    };
    let state = match &acc.problem {
        // The module refuses such an account before its state is read.
        Some(why) => StateView::Hidden(why.clone()),
        None => states.read(&acc.name).unwrap_or_else(|why| {
            errors.push(format!("state: {why}"));
            StateView::Hidden(why)
        }),
    };
    let judged = judge(&found, &state, settings, now);
    errors.extend(judged.problems.iter().cloned());
    let enrolled = match &found {
        Found::Missing => output::NOT_ENROLLED,
        Found::Enrolled(_) | Found::Sealed(_) => output::ENROLLED,
        Found::Unusable(_) => output::ENROLLED_ERROR,
    };
    let usable = matches!(found, Found::Enrolled(_) | Found::Sealed(_));
    ReportRow {
        user: acc.name.clone(),
        account: acc.user.is_some(),
        enrolled,
        secret_file,
        sealed: usable.then_some(sealed),
        keys: judged.enrollment.map(key_count),
        scratch_codes_remaining: judged.scratch_codes_remaining,
        failed_attempts: judged.failed_attempts,
        locked: judged.locked,
        last_login: judged.last_success.map(output::utc_iso8601),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    }
}

/// The account's secret file, read as the module reads it: what it holds,
/// whether it is sealed, and where it is. `Ok(None)`: the account has no
/// passwd entry and the template needs its home. `Err`: why it could not
/// be looked at.
fn secret(
    caller: &Caller,
    settings: &Settings,
    acc: &Account,
) -> std::result::Result<Option<(Found, bool, Location)>, String> {
    let orphan;
    let user = match &acc.user {
        Some(u) => u,
        None if accounts::template_dir(&settings.secret).is_some() => {
            orphan = no_account(&acc.name);
            &orphan
        }
        None => return Ok(None),
    };
    let loc = locate(caller, user, settings, None).map_err(|e| e.to_string())?;
    let (found, sealed) =
        read_enrollment_sealed(caller, user, settings, &loc).map_err(|e| e.to_string())?;
    Ok(Some((found, sealed, loc)))
}
