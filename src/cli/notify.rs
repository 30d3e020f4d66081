//! `notify=` from the tool (issue 16): the hook of config.toml is told
//! what the tool changed (`enrolled`, `key_added`, `key_removed`,
//! `reset`, `disabled`, `scratch_regenerated`, `host_key_rotated`), with
//! the same JSON and the same detached runner as the module's events
//! (`login::notify::hook_spec`, `pam::notify::spawn_detached`). The
//! `service` is `pam-totp`, `rhost` is empty, and `detail.by` names the
//! account that ran the tool. The tool never waits for the hook, and a
//! hook that cannot be started is one line on stderr: what was done is
//! done, and the exit status stays.
//!
//! Run by root, the hook runs as `notify_user`; run by anyone else (a
//! user enrolling themselves), it can only run as that user.
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use pam_totp::config::Settings;
use pam_totp::core::event::{Detail, DetailValue, Event, EventKind};
use pam_totp::core::logtext::token;
use pam_totp::login::notify::hook_spec;
use pam_totp::pam::notify::spawn_detached;

use crate::access::Caller;

/// The `service` of the tool's events.
pub const SERVICE: &str = "pam-totp";

/// Tells the hook (if config.toml names one) that `kind` happened to
/// `user` (empty for the host itself).
pub fn emit(settings: &Settings, caller: &Caller, user: &str, kind: EventKind, detail: Detail) {
    if settings.notify.path.is_none() {
        return;
    }
    let mut all = vec![("by", DetailValue::Text(caller.me.name.clone()))];
    all.extend(detail);
    let event = Event {
        kind,
        user: user.to_owned(),
        service: SERVICE.to_owned(),
        rhost: String::new(),
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        detail: all,
    };
    let started = hook_spec(&settings.notify, &event).and_then(|spec| match spec {
        Some(mut spec) => {
            if !caller.root {
                spec.uid = caller.me.uid;
                spec.gid = caller.me.gid;
            }
            spawn_detached(&spec)
        }
        None => Ok(()),
    });
    if let Err(e) = started {
        eprintln!(
            "pam-totp: warning: the notify hook was not run for {} ({e})",
            token(kind.as_str())
        );
    }
}

/// The `source` of an enrollment imported from Google Authenticator.
pub const GOOGLE: &str = "google-authenticator";

/// `enrolled`: a secret file was written (or printed, `-`) for `user` by
/// `source` (`enroll`, `google-authenticator`).
pub fn enrolled(settings: &Settings, caller: &Caller, user: &str, secret_file: &str, source: &str) {
    let detail = vec![
        ("secret_file", DetailValue::Text(secret_file.to_owned())),
        ("source", DetailValue::Text(source.to_owned())),
    ];
    emit(settings, caller, user, EventKind::Enrolled, detail);
}

/// `key_added`: `enroll --add NAME` saved the key `name` for `user`.
pub fn key_added(settings: &Settings, caller: &Caller, user: &str, name: &str) {
    let detail = vec![("key", DetailValue::Text(name.to_owned()))];
    emit(settings, caller, user, EventKind::KeyAdded, detail);
}

/// `key_removed`: `remove-key NAME` removed the key `name` of `user`.
pub fn key_removed(settings: &Settings, caller: &Caller, user: &str, name: &str) {
    let detail = vec![("key", DetailValue::Text(name.to_owned()))];
    emit(settings, caller, user, EventKind::KeyRemoved, detail);
}
