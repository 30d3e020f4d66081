//! The rollout settings (issue 15): `enroll_at_login` and
//! `enroll_by=YYYY-MM-DD`, the day (UTC) from which a user without a
//! secret is no longer let through.
#![forbid(unsafe_code)]

use std::fmt;

use super::{malformed, ConfigError, Settings};

/// `enroll_by=`: the first day (UTC) on which a user must have a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    year: u32,
    month: u32,
    day: u32,
}

const SECONDS_PER_DAY: u64 = 86_400;

impl Deadline {
    /// Parses exactly `YYYY-MM-DD` (a real day, 1970 or later).
    pub fn parse(v: &str) -> Result<Deadline, ConfigError> {
        let bad = || malformed("enroll_by", "the value is not a date YYYY-MM-DD");
        let b = v.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| v[r].parse::<u32>().map_err(|_| bad());
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in(year, month) {
            return Err(bad());
        }
        Ok(Deadline { year, month, day })
    }

    /// The Unix time at which the day begins (00:00:00 UTC).
    pub fn starts_at(&self) -> u64 {
        let years: u64 = (1970..self.year).map(|y| days_in_year(y) as u64).sum();
        let months: u64 = (1..self.month).map(|m| days_in(self.year, m) as u64).sum();
        (years + months + u64::from(self.day - 1)) * SECONDS_PER_DAY
    }

    /// Whether `now` (Unix time) is before the day.
    pub fn is_ahead(&self, now: u64) -> bool {
        now < self.starts_at()
    }

    /// The one-line notice a user without a secret is shown before the day.
    pub fn notice(&self) -> String {
        format!(
            "A verification code will be required to log in from {self} (UTC). \
             Run `pam-totp enroll` before then to set up your authenticator app."
        )
    }
}

impl Settings {
    /// Whether a user without a secret may pass without a code at `now`:
    /// with `enroll_by=`, before that day (UTC) yes and from it on no,
    /// whatever `nullok` says; without it, `nullok` decides.
    pub fn may_pass_without(&self, now: u64) -> bool {
        match self.enroll_by {
            Some(d) => d.is_ahead(now),
            None => self.nullok,
        }
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_year(y: u32) -> u32 {
    if leap(y) {
        366
    } else {
        365
    }
}

fn days_in(y: u32, m: u32) -> u32 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_begin_at_midnight_utc() {
        let d = |s| Deadline::parse(s).unwrap();
        assert_eq!(d("1970-01-01").starts_at(), 0);
        assert_eq!(d("2030-01-01").starts_at(), 1_893_456_000);
        assert_eq!(d("2024-02-29").starts_at(), 1_709_164_800);
        assert_eq!(d("2000-03-01").starts_at(), 951_868_800);
        assert!(d("2030-01-01").is_ahead(1_893_455_999));
        assert!(!d("2030-01-01").is_ahead(1_893_456_000));
        assert_eq!(d("2030-07-04").to_string(), "2030-07-04");
    }

    #[test]
    fn only_real_days_in_the_one_shape() {
        for bad in [
            "",
            "2030-1-01",
            "2030/01/01",
            "2030-01-01 ",
            "30-01-01",
            "2030-13-01",
            "2030-00-10",
            "2030-02-29",
            "2100-02-29",
            "1969-12-31",
            "2030-04-31",
            "+030-01-01",
            "2030-01-0x",
            "２030-01-01",
        ] {
            assert!(Deadline::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Deadline::parse("2028-02-29").is_ok());
    }
}
