//! A user without a secret file (and only such a user: an unreadable,
//! unsafe or malformed file keeps failing closed) during a rollout
//! (issue 15): `nullok`, the `enroll_by=` deadline, and the enrollment at
//! login (`enroll_at_login`, in `enroll.rs`).
//!
//! Whether such a user may pass without a code is decided in one place,
//! `Settings::may_pass_without`: with `enroll_by=`, before that day (UTC)
//! yes and from it on no, whatever `nullok` says (a sysadmin who adds a
//! deadline to a line with `nullok` gets the deadline); without it,
//! `nullok` decides. Enrollment at login
//! never lets through anyone who could not have passed without it: an
//! empty answer is a skip only for a user who may pass without a code.
#![forbid(unsafe_code)]

use crate::config::{Deadline, Settings};

use super::audit::Audit;
use super::enroll;
use super::error::{Denial, Skip};
use super::owner::Owner;
use super::{Level, PamIo, Verdict};

/// The deadline, when one is set and still ahead at `now`.
fn ahead(settings: &Settings, now: u64) -> Option<Deadline> {
    settings.enroll_by.filter(|d| d.is_ahead(now))
}

/// The user has no secret file. `Ok(Some(verdict))`: the login ends here
/// (enrolled at login; its audit line is written). `Ok(None)`: the login
/// goes on as for anyone without a secret (the prompt, then a denial).
/// `Err`: it ends with that ending (a skip is PAM_IGNORE).
pub(crate) fn not_enrolled(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    owner: &Owner,
    now: u64,
) -> Result<Option<Verdict>, Denial> {
    if let (Some(d), true) = (settings.enroll_by, settings.nullok) {
        io.log(
            Level::Info,
            &format!("nullok is superseded by enroll_by={d}"),
        );
    }
    if settings.enroll_at_login {
        return enroll::at_login(io, settings, audit, owner, now).map(Some);
    }
    if let Some(d) = ahead(settings, now) {
        io.info_message(&d.notice());
        return Err(Denial::Skipped(Skip::BeforeDeadline(d)));
    }
    if settings.may_pass_without(now) {
        return Err(Denial::Skipped(Skip::NotEnrolledNullok));
    }
    Ok(None)
}
