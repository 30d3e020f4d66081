//! `notify=` (issue 16): an event of the login handed to the hook.
//!
//! Which ending makes which event is decided with the verdicts, in
//! `error.rs`; the steps record them in the login's `Audit`, and once the
//! login is over (the typed code and the secret wiped: the hook's process
//! is a fork of this one) each is written as JSON (`core::event`) and the
//! hook started through [`PamIo::run_notify`], which returns at once. The
//! hook never changes a verdict: a hook that cannot be started is one
//! syslog line, nothing else. The tool uses [`hook_spec`] too.
#![forbid(unsafe_code)]

use crate::config::{NotifySettings, Settings};
use crate::core::event::{Detail, Event, EventKind};
use crate::core::logtext::{reason, token};
use crate::sys::hook::{self, HookError, HookSpec};

use super::audit::Audit;
use super::{Level, PamIo};

/// The hook run for `event`, or `None` when `notify=` is not set.
pub fn hook_spec(s: &NotifySettings, event: &Event) -> Result<Option<HookSpec>, HookError> {
    let (Some(path), Some(user)) = (&s.path, &s.user) else {
        return Ok(None);
    };
    let (program, uid, gid) = hook::resolve(path, user)?;
    let log_prefix = format!(
        "notify event={} user={} service={} hook={}",
        event.kind.as_str(),
        token(&event.user),
        token(&event.service),
        token(&program.to_string_lossy())
    );
    Ok(Some(HookSpec {
        program,
        uid,
        gid,
        timeout: s.timeout,
        input: event.to_json().into_bytes(),
        log_prefix,
    }))
}

/// Hands the events the login recorded in `audit` to the hook, if there
/// is one; called once the login is over.
pub(crate) fn emit_all(io: &dyn PamIo, settings: &Settings, audit: &Audit, now: u64) {
    let events = audit.events.take();
    if settings.notify.path.is_none() {
        return;
    }
    for (kind, detail) in events {
        emit(io, settings, audit, kind, detail, now);
    }
}

/// Reports `kind` for the login of `audit` to the hook.
fn emit(
    io: &dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    kind: EventKind,
    detail: Detail,
    now: u64,
) {
    let event = Event {
        kind,
        user: audit.user.clone(),
        service: audit.service.clone(),
        rhost: audit.rhost.clone(),
        time: now,
        detail,
    };
    let started = match hook_spec(&settings.notify, &event) {
        Ok(Some(spec)) => io.run_notify(&spec),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        let why = match &e {
            HookError::NoSuchUser(u) | HookError::RootAlias(u) => {
                format!("notify_user {}: {e}", token(u))
            }
            _ => format!("notify hook: {e}"),
        };
        let detail = format!("event={} {}", kind.as_str(), reason(&why));
        io.log(Level::Warning, &audit.line("notify-error", &detail));
    }
}

/// `enrolled_at_login`: a user enrolled in the login conversation. Called
/// by the enrollment at login once it has saved the secret; the hook runs
/// when the login is over.
pub(crate) fn enrolled_at_login(audit: &Audit) {
    audit.event(EventKind::EnrolledAtLogin, Detail::new());
}
