//! Support for the Google Authenticator tests (tests/google_*.rs and
//! tests/cli_import.rs): files written by Google's own `google-authenticator`
//! tool (Debian package libpam-google-authenticator), HOTP codes from
//! `oathtool`, and a PAM service running Google's own module,
//! `pam_google_authenticator.so`, from the same private configuration
//! directory as ours (never /etc/pam.d).
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{now, Fixture};

/// Google's tool, as Debian installs it.
pub const TOOL: &str = "/usr/bin/google-authenticator";
/// Google's module: its name, found by libpam in the system's module
/// directory, like any `pam.d` line would name it.
pub const GOOGLE_MODULE: &str = "pam_google_authenticator.so";

/// Runs Google's tool non-interactively to write a new file at `path`
/// (`-f -q -Q NONE -s path` plus `mode`, for example
/// `["-t", "-d", "-w", "3", "-u", "-e", "5"]`), as root, or as `user`
/// (uid, gid) when given. Returns the file's text.
pub fn google_authenticator(path: &Path, mode: &[&str], user: Option<(u32, u32)>) -> String {
    let mut cmd = match user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--init-groups",
                "--",
                TOOL,
            ]);
            c
        }
        None => Command::new(TOOL),
    };
    let out = cmd
        .args(mode)
        .args(["-f", "-q", "-Q", "NONE", "-s"])
        .arg(path)
        // A question the options did not answer would wait for input.
        .stdin(Stdio::null())
        .output()
        .expect("google-authenticator (apt-get install libpam-google-authenticator)");
    assert!(
        out.status.success(),
        "google-authenticator {mode:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(path).expect("google-authenticator wrote the file")
}

/// The base32 secret: the file's first line.
pub fn secret_of(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// The eight-digit scratch codes of a Google Authenticator file.
pub fn scratch_of(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

/// The file with its first line replaced by `secret` (a legacy 80-bit,
/// 16-character secret, which today's tool no longer writes).
pub fn with_secret(text: &str, secret: &str) -> String {
    let rest = text.split_once('\n').map_or("", |(_, r)| r);
    format!("{secret}\n{rest}")
}

/// The file without the option lines named in `options`.
pub fn without_options(text: &str, options: &[&str]) -> String {
    text.lines()
        .filter(|l| {
            !options
                .iter()
                .any(|o| l.strip_prefix("\" ").is_some_and(|r| r.starts_with(o)))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes `text` at `path`, root-owned, with `mode` (the tool writes 0400).
pub fn put(path: &Path, text: &str, mode: u32) {
    let _ = fs::remove_file(path);
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// An HOTP code from oathtool for a base32 secret and a counter.
pub fn oathtool_hotp(secret: &str, counter: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--hotp", "-b", "-c", &counter.to_string(), secret])
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A TOTP code from oathtool for `step` (a step number, not a time).
pub fn oathtool_at_step(secret: &str, period: u64, step: u64) -> String {
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "-s",
            &format!("{period}s"),
            "-N",
            &format!("@{}", step * period),
            secret,
        ])
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(out.status.success(), "oathtool: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The current step of `period`.
pub fn step_now(period: u64) -> u64 {
    now() / period
}

/// Runs `trial` until it starts and ends in the same step of `period`
/// (each trial must set up afresh whatever it uses), so codes computed for
/// "now" in a trial are still "now" when the modules check them. A bound
/// against step edges, not a timing assertion: trials take milliseconds.
pub fn in_one_step<T>(period: u64, mut trial: impl FnMut(u64) -> T) -> T {
    for _ in 0..10 {
        // A quick trial cannot straddle a step unless it starts near its end.
        crate::common::avoid_step_edge(period, (period / 3).clamp(1, 5));
        let step = step_now(period);
        let result = trial(step);
        if step_now(period) == step {
            return result;
        }
    }
    panic!("ten trials in a row crossed a {period}-second step edge");
}

/// A six-digit code that no step within `reach` of `step` has.
pub fn wrong_code(secret: &str, period: u64, step: u64, reach: u64) -> String {
    let near: Vec<String> = (step - reach..=step + reach)
        .map(|s| oathtool_at_step(secret, period, s))
        .collect();
    ["000000", "111111", "222222", "333333", "444444"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .to_owned()
}

impl Fixture {
    /// The directory of the copies Google's module reads (and rewrites).
    pub fn google_dir(&self) -> PathBuf {
        let d = self.path().join("google");
        if !d.exists() {
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        }
        d
    }

    /// A service running Google's module on google/${USER} as root (the
    /// owner of the copies), with `args`. `noskewadj`: it learns no clock
    /// skew, so its window stays what the file says.
    pub fn google_service(&self, name: &str, args: &str) -> String {
        let line = format!(
            "auth required {GOOGLE_MODULE} secret={}/${{USER}} user=root noskewadj {args}",
            self.google_dir().display()
        );
        self.service(name, &[&line])
    }

    /// Gives Google's module a fresh copy of `text` as `user`'s file.
    pub fn google_copy(&self, user: &str, text: &str) -> PathBuf {
        let p = self.google_dir().join(user);
        put(&p, text, 0o400);
        p
    }

    /// Forgets what our module recorded about `user` (a fresh state).
    pub fn forget(&self, user: &str) {
        let _ = fs::remove_file(self.state_path(user));
    }
}
