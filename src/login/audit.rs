//! The one audit line a login writes, and its fields.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fmt::Write as _;

use crate::core::event::{Detail, EventKind};
use crate::core::logtext::token;

/// Who is logging in, for the audit line. Every value that comes from
/// outside (user, service, remote host, paths, group names) is a
/// [`token`]; every reason goes through `logtext::reason`. So no value
/// can pose as one of the line's own `key=value` fields.
pub(crate) struct Audit {
    pub(crate) user: String,
    pub(crate) service: String,
    pub(crate) rhost: String,
    /// The `notify=` events of this login, handed to the hook once the
    /// login is over (`login::notify::emit_all`), when the typed code and
    /// the secret have been wiped: the hook's process is a fork of this one.
    pub(crate) events: RefCell<Vec<(EventKind, Detail)>>,
}

impl Audit {
    /// Records an event for the hook (sent when the login is over).
    pub(crate) fn event(&self, kind: EventKind, detail: Detail) {
        self.events.borrow_mut().push((kind, detail));
    }

    pub(crate) fn line(&self, result: &str, detail: &str) -> String {
        let mut s = format!(
            "user={} service={} rhost={} result={result}",
            token(&self.user),
            token(&self.service),
            token(&self.rhost)
        );
        if !detail.is_empty() {
            let _ = write!(s, " {detail}");
        }
        s
    }
}
