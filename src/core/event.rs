//! The events `notify=` reports (issue 16), as the one JSON object a hook
//! reads on its standard input:
//!
//! `{"event":"lockout","user":"alice","service":"sshd","rhost":"192.0.2.7",
//! "time":"2026-12-01T20:28:21Z","detail":{"retry_after":30}}`
//!
//! Pure: the caller passes the time and every field. An event never holds
//! a code, a scratch code or a secret: [`Detail`] values are numbers, the
//! module's own words, or names and reasons that are already safe for a
//! log line. Every string is JSON-escaped here, whatever it holds.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

/// What happened. The module's events first, then the tool's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The attempt that reached the rate limit.
    Lockout,
    /// A code (or scratch code) already spent was typed: maybe a stolen one.
    Replayed,
    /// A scratch code logged in; `detail.remaining` says how many are left.
    ScratchUsed,
    /// One scratch code left, or none.
    ScratchLow,
    /// The secret file is unsafe, unreadable or malformed.
    SecretProblem,
    /// The fleet's state server could not be reached.
    StateUnavailable,
    /// A user enrolled in the login conversation (`enroll_at_login`).
    EnrolledAtLogin,
    /// `pam-totp enroll`.
    Enrolled,
    /// `pam-totp enroll --add NAME`.
    KeyAdded,
    /// `pam-totp remove-key NAME`.
    KeyRemoved,
    /// `pam-totp reset`.
    Reset,
    /// `pam-totp disable`.
    Disabled,
    /// `pam-totp scratch-codes --regenerate`.
    ScratchRegenerated,
    /// `pam-totp host-key rotate`.
    HostKeyRotated,
}

impl EventKind {
    /// Every kind, for the documentation's list and the tests.
    pub const ALL: [EventKind; 14] = [
        EventKind::Lockout,
        EventKind::Replayed,
        EventKind::ScratchUsed,
        EventKind::ScratchLow,
        EventKind::SecretProblem,
        EventKind::StateUnavailable,
        EventKind::EnrolledAtLogin,
        EventKind::Enrolled,
        EventKind::KeyAdded,
        EventKind::KeyRemoved,
        EventKind::Reset,
        EventKind::Disabled,
        EventKind::ScratchRegenerated,
        EventKind::HostKeyRotated,
    ];

    /// The `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Lockout => "lockout",
            EventKind::Replayed => "replayed",
            EventKind::ScratchUsed => "scratch_used",
            EventKind::ScratchLow => "scratch_low",
            EventKind::SecretProblem => "secret_problem",
            EventKind::StateUnavailable => "state_unavailable",
            EventKind::EnrolledAtLogin => "enrolled_at_login",
            EventKind::Enrolled => "enrolled",
            EventKind::KeyAdded => "key_added",
            EventKind::KeyRemoved => "key_removed",
            EventKind::Reset => "reset",
            EventKind::Disabled => "disabled",
            EventKind::ScratchRegenerated => "scratch_regenerated",
            EventKind::HostKeyRotated => "host_key_rotated",
        }
    }
}

/// One value of `detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetailValue {
    Int(u64),
    Text(String),
}

/// `detail`: fields in the order given.
pub type Detail = Vec<(&'static str, DetailValue)>;

/// One event, before it is written as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub user: String,
    pub service: String,
    pub rhost: String,
    /// Seconds since the epoch (UTC); written in RFC 3339.
    pub time: u64,
    pub detail: Detail,
}

impl Event {
    /// The JSON object, on one line, with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("{\"event\":");
        json_string(&mut s, self.kind.as_str());
        for (key, value) in [
            ("user", &self.user),
            ("service", &self.service),
            ("rhost", &self.rhost),
        ] {
            let _ = write!(s, ",\"{key}\":");
            json_string(&mut s, value);
        }
        s.push_str(",\"time\":");
        json_string(&mut s, &rfc3339(self.time));
        s.push_str(",\"detail\":{");
        for (i, (key, value)) in self.detail.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json_string(&mut s, key);
            s.push(':');
            match value {
                DetailValue::Int(n) => {
                    let _ = write!(s, "{n}");
                }
                DetailValue::Text(t) => json_string(&mut s, t),
            }
        }
        s.push_str("}}\n");
        s
    }
}

/// Appends `v` as a JSON string: `"` and `\` escaped, every control
/// character (and DEL, U+2028, U+2029, which some readers take for line
/// ends) written `\uXXXX`.
pub fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_157_301), "2026-12-01T20:35:01Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn json_escapes_every_string() {
        let e = Event {
            kind: EventKind::ScratchUsed,
            user: "a\"b\\c\nd".into(),
            service: "s\u{1}\u{7f}\u{2028}é".into(),
            rhost: String::new(),
            time: 0,
            detail: vec![
                ("remaining", DetailValue::Int(2)),
                ("why", DetailValue::Text("x\"y".into())),
            ],
        };
        assert_eq!(
            e.to_json(),
            "{\"event\":\"scratch_used\",\"user\":\"a\\\"b\\\\c\\u000ad\",\
             \"service\":\"s\\u0001\\u007f\\u2028é\",\"rhost\":\"\",\
             \"time\":\"1970-01-01T00:00:00Z\",\
             \"detail\":{\"remaining\":2,\"why\":\"x\\\"y\"}}\n"
        );
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }
}
