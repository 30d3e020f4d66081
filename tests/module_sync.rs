//! What a login asks of the disk, counted with strace through the real
//! libpam (issue 17, item 1): the syncs and renames of whole
//! `pam_client` runs, per kind of attempt.
//!
//! - making the state file (a user's first login, or the first write
//!   after an upgrade from the earlier layout): two `fsync`s (the new file,
//!   the directory) and one `rename`;
//! - a right code or a scratch code (something spent): exactly one
//!   `fdatasync` of the state file, no `fsync`, no `rename`;
//! - a wrong code, a replayed one, a rate-limited one: no sync and no
//!   rename at all (the failure is written in place, not flushed).
//!
//! Counts, not times: nothing here depends on the disk's speed.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};

const SCRATCH: &str = "31415926";
/// Every call that flushes or replaces a file.
const WATCHED: &str = "fsync,fdatasync,sync,syncfs,sync_file_range,msync,rename,renameat,renameat2";

/// The login, and how many times it made each watched call.
fn traced(fx: &Fixture, svc: &str, typed: &str) -> (PamResult, BTreeMap<String, usize>) {
    let run = fx.client(svc, "root").answer(typed).syslog();
    let log = fx.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e"])
        .arg(format!("trace={WATCHED}"))
        .arg("-o")
        .arg(&log)
        .arg("--")
        .arg(run.cmd.get_program())
        .args(run.cmd.get_args());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (apt-get install strace)");
    let r = PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT));
    let mut calls = BTreeMap::new();
    for line in fs::read_to_string(&log).unwrap().lines() {
        // "PID name(args) = rc" (strace pads the PID with spaces when
        // there are several processes), or "name(args) = rc".
        let call = line.split_once(' ').map_or(line, |(head, rest)| {
            if head.bytes().all(|b| b.is_ascii_digit()) {
                rest.trim_start()
            } else {
                line
            }
        });
        if let Some((name, _)) = call.split_once('(') {
            *calls.entry(name.to_owned()).or_default() += 1;
        }
    }
    (r, calls)
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|&(n, c)| (n.to_owned(), c)).collect()
}

#[test]
fn a_login_syncs_once_when_it_spends_and_never_when_it_fails() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &[SCRATCH]);
    let svc = fx.module_service("sync", "rate_limit=3/600");
    avoid_step_edge(30, 12);
    let made = counts(&[("fsync", 2), ("rename", 1)]);
    let spent = counts(&[("fdatasync", 1)]);
    let none = counts(&[]);

    let first = oathtool_totp(SECRET, "SHA1", 6, 30, -1);
    let right = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let steps: [(&str, &str, &BTreeMap<String, usize>); 7] = [
        ("first login", &first, &made),
        ("wrong code", "000000", &none),
        ("right code", &right, &spent),
        ("replayed code", &right, &none),
        ("scratch code", SCRATCH, &spent),
        ("wrong code", "111111", &none),
        (
            "rate-limited",
            &oathtool_totp(SECRET, "SHA1", 6, 30, 1),
            &none,
        ),
    ];
    let mut results = Vec::new();
    for (case, typed, want) in steps {
        let (r, calls) = traced(&fx, &svc, typed);
        results.extend(r.audit_results());
        assert_eq!(&calls, want, "{case}: {r:?}");
    }
    assert_eq!(
        results,
        [
            "success",
            "wrong-code",
            "success",
            "replayed-code",
            "scratch-code-used",
            "wrong-code",
            "rate-limited"
        ]
    );
}

#[test]
fn a_state_file_of_the_earlier_layout_is_made_anew_once() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("upgrade", "rate_limit=100/60");
    // What the module wrote before issue 17: the TOML text alone.
    fs::write(
        fx.state_path("root"),
        "version = 2\nfailures = []\nfailed_attempts = 4\nused_scratch = []\ncomplete = true\n",
    )
    .unwrap();
    let (r, calls) = traced(&fx, &svc, "000000");
    assert_eq!(r.audit_results(), ["wrong-code"]);
    assert_eq!(calls, counts(&[("fsync", 2), ("rename", 1)]), "{r:?}");
    assert_eq!(
        fx.state("root").unwrap()["failed_attempts"].as_integer(),
        Some(5)
    );
    let (r, calls) = traced(&fx, &svc, "000000");
    assert_eq!(r.audit_results(), ["wrong-code"]);
    assert_eq!(calls, counts(&[]), "{r:?}");
}

#[test]
fn an_hotp_counter_moved_on_is_synced_once() {
    let fx = Fixture::new();
    // A Google Authenticator HOTP file, counter 1.
    fx.secret_file(
        "root",
        &format!("{SECRET}\n\" HOTP_COUNTER 1\n\" WINDOW_SIZE 3\n"),
    );
    let svc = fx.module_service("hotp", "rate_limit=100/60");
    let hotp = |c: u64| {
        let out = Command::new("oathtool")
            .args(["--hotp", "-b", "-c", &c.to_string(), SECRET])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (r, _) = traced(&fx, &svc, &hotp(1));
    assert_eq!(r.audit_results(), ["success"], "{r:?}");
    let (r, calls) = traced(&fx, &svc, &hotp(2));
    assert_eq!(r.audit_results(), ["success"], "{r:?}");
    assert_eq!(calls, counts(&[("fdatasync", 1)]), "{r:?}");
    let (r, calls) = traced(&fx, &svc, &hotp(2));
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    assert_eq!(calls, counts(&[]), "{r:?}");
    assert_eq!(fx.key_field("root", "hotp_next"), Some(3));
}
