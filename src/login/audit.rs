//! The one audit line a login writes, and its fields.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use crate::core::logtext::token;

/// Who is logging in, for the audit line. Every value that comes from
/// outside (user, service, remote host, paths, group names) is a
/// [`token`]; every reason goes through `logtext::reason`. So no value
/// can pose as one of the line's own `key=value` fields.
pub(crate) struct Audit {
    pub(crate) user: String,
    pub(crate) service: String,
    pub(crate) rhost: String,
}

impl Audit {
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
