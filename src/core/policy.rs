//! The policy codes are checked under: the window of steps accepted around
//! now, and the rate limit. Pure arithmetic, and the one window rule that
//! both a login and the confirmation of an enrollment use.
#![forbid(unsafe_code)]

use std::fmt;

/// The most failures a `rate_limit=` may allow.
pub const MAX_RATE_FAILURES: u32 = 1000;

/// The largest `window=` accepted.
pub const MAX_WINDOW: u64 = 10;

/// At most `max_failures` failed attempts in any `seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_failures: u32,
    pub seconds: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            max_failures: 3,
            seconds: 30,
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max_failures, self.seconds)
    }
}

/// How codes are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Steps accepted before and after the current one.
    pub window: u64,
    pub rate_limit: RateLimit,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: 1,
            rate_limit: RateLimit::default(),
        }
    }
}

/// Steps (back, ahead) accepted around now: the module's `window`, capped
/// at [`MAX_WINDOW`], made narrower (never wider) by a file's own window.
pub fn window_bounds(policy: &Policy, file_window: Option<(u64, u64)>) -> (u64, u64) {
    let w = policy.window.min(MAX_WINDOW);
    match file_window {
        Some((back, ahead)) => (w.min(back), w.min(ahead)),
        None => (w, w),
    }
}

/// Whether a failure at `t` counts against the limit at `now`. Near the
/// end of the time range a sum that overflows counts the failure: the
/// window's end is past every time (a saturated end equal to `now` would
/// let a failure at `now - 5` out of a 30-second window).
pub(crate) fn in_window(t: u64, now: u64, limit: RateLimit) -> bool {
    t.checked_add(limit.seconds).is_none_or(|end| end > now)
        && now
            .checked_add(limit.seconds)
            .is_none_or(|ahead| t <= ahead)
}
