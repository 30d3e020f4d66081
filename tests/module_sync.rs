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
//! And what a login asks of the rest of the system (issue 17): the passwd
//! database is read twice for a login by the account's own name (the
//! name, then the uid; a third time only for another name of the uid),
//! and the state file is opened once per attempt.
//!
//! Counts, not times: nothing here depends on the disk's speed.

mod common;
mod ns_support;
use common::*;
use ns_support::MountNs;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const SCRATCH: &str = "31415926";
/// Every call that flushes or replaces a file.
const WATCHED: &str = "fsync,fdatasync,sync,syncfs,sync_file_range,msync,rename,renameat,renameat2";

/// Runs `run` under `strace -f`, tracing the calls `trace` names, inside
/// `ns` if given: the result, and strace's log (one line per call).
fn strace(ns: Option<&MountNs>, fx: &Fixture, run: ClientRun, trace: &str) -> (PamResult, String) {
    let log = fx.path().join("strace.log");
    let mut cmd = match ns {
        Some(ns) => ns.command("strace"),
        None => Command::new("strace"),
    };
    cmd.args(["-f", "-qq", "-e"])
        .arg(format!("trace={trace}"))
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
    (r, fs::read_to_string(&log).unwrap())
}

/// The login, and how many times it made each watched call.
fn traced(fx: &Fixture, svc: &str, typed: &str) -> (PamResult, BTreeMap<String, usize>) {
    let run = fx.client(svc, "root").answer(typed).syslog();
    let (r, log) = strace(None, fx, run, WATCHED);
    let mut calls = BTreeMap::new();
    for line in log.lines() {
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

/// The account's name and a second name of its uid, in the namespace's
/// own /etc/passwd (far above any real uid).
const MAIN: &str = "pamtotp-sys-main";
const ALIAS: &str = "pamtotp-sys-alias";
const UID: u32 = 3_910_000;
/// The user `secret_command=` runs as (uid `UID + 1`).
const CMD_USER: &str = "pamtotp-sys-cmd";

/// A private mount namespace where the passwd and group databases are
/// files alone (our own nsswitch.conf, /etc/passwd with [`MAIN`] and
/// [`ALIAS`], /etc/group bind-mounted; nscd's socket hidden), so each
/// lookup reads /etc/passwd once; each name and root enrolled.
struct PasswdWorld {
    fx: Fixture,
    ns: MountNs,
}

impl PasswdWorld {
    fn new() -> PasswdWorld {
        let fx = Fixture::new();
        let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
        for name in [MAIN, ALIAS] {
            passwd.push_str(&format!(
                "{name}:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin\n"
            ));
        }
        let cmd_uid = UID + 1;
        passwd.push_str(&format!(
            "{CMD_USER}:x:{cmd_uid}:{cmd_uid}::/nonexistent:/usr/sbin/nologin\n"
        ));
        for name in [MAIN, ALIAS, "root"] {
            fx.enroll(name, SECRET, "SHA1", 6, 30);
        }
        let mut group = fs::read_to_string("/etc/group").unwrap();
        group.push_str(&format!("{MAIN}:x:{UID}:\n"));
        let etc = fx.path().join("etc");
        fs::create_dir(&etc).unwrap();
        let nsswitch = "passwd: files\ngroup: files\nshadow: files\n";
        for (name, text) in [
            ("passwd", passwd.as_str()),
            ("group", &group),
            ("nsswitch.conf", nsswitch),
        ] {
            fs::write(etc.join(name), text).unwrap();
            fs::set_permissions(etc.join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let ns = MountNs::new(
            r#"for f in passwd group nsswitch.conf; do mount --bind "$1/$f" "/etc/$f"; done
for d in /run/nscd /var/run/nscd; do [ ! -d "$d" ] || mount -t tmpfs none "$d"; done"#,
            &[&etc],
        );
        PasswdWorld { fx, ns }
    }

    /// How many times a login as `user` through `svc`, answering
    /// `answers`, opened /etc/passwd.
    fn opens(&self, svc: &str, user: &str, answers: &[&str]) -> (PamResult, usize) {
        let mut run = self.fx.client(svc, user).syslog();
        for a in answers {
            run = run.answer(a);
        }
        let (r, log) = strace(Some(&self.ns), &self.fx, run, "open,openat,openat2");
        let opens = log
            .lines()
            .filter(|l| l.contains("\"/etc/passwd\""))
            .count();
        (r, opens)
    }
}

#[test]
fn a_login_by_the_accounts_name_reads_the_passwd_database_twice() {
    let w = PasswdWorld::new();
    let svc = w.fx.module_service("passwd", "rate_limit=100/60");
    avoid_step_edge(30, 5);
    // getpwnam(typed), getpwuid(uid): the canonical name is the typed
    // one, whose lookup was the check getpwnam(canonical) would make.
    let right = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    for (typed, result) in [("000000", "wrong-code"), (right.as_str(), "success")] {
        let (r, opens) = w.opens(&svc, MAIN, &[typed]);
        assert_eq!(r.audit_results(), [result], "{r:?}");
        assert_eq!(opens, 2, "{r:?}");
    }
    // Another name of the uid: its canonical name is looked up again, to
    // check that it gives this uid back (module_account_state.rs).
    let (r, opens) = w.opens(&svc, ALIAS, &["000000"]);
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    assert_eq!(opens, 3, "{r:?}");
}

#[test]
fn secret_command_and_the_decision_share_the_accounts_lookups() {
    // getpwnam(typed), getpwnam(secret_command_user), getpwuid(uid): the
    // canonical name is the command's argument and the state's account,
    // settled once.
    let w = PasswdWorld::new();
    let cmds = trusted_command_dir("sync-secret-command.");
    let cmd = cmds.path().join("secret");
    let text = format!("version = 1\nsecret = \"{SECRET}\"\n");
    fs::write(&cmd, format!("#!/bin/sh\nprintf '%s' '{text}'\n")).unwrap();
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o755)).unwrap();
    let line = format!(
        "auth required MODULE state_dir={} secret_command={} secret_command_user={CMD_USER} rate_limit=100/60",
        w.fx.state_dir().display(),
        cmd.display()
    );
    let svc = w.fx.service("cmd", &[&line]);
    let (r, opens) = w.opens(&svc, MAIN, &["000000"]);
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    assert_eq!(opens, 3, "{r:?}");
}

#[test]
fn two_attempts_of_one_login_settle_the_account_once() {
    // try_first_pass behind pam_unix (which looks the user up itself): a
    // code-shaped PAM_AUTHTOK is one attempt and the prompt after it the
    // next; the account is settled for the first and kept for the second,
    // so the login reads /etc/passwd as often as one whose PAM_AUTHTOK is
    // a password (one attempt).
    let w = PasswdWorld::new();
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={} try_first_pass rate_limit=100/60",
        w.fx.path().display(),
        w.fx.state_dir().display()
    );
    let svc =
        w.fx.service("try", &["auth optional pam_unix.so nodelay", &line]);
    avoid_step_edge(30, 5);
    let (one, once) = w.opens(&svc, "root", &["correct horse", "000000"]);
    assert_eq!(one.audit_results(), ["wrong-code"], "{one:?}");
    let (two, twice) = w.opens(&svc, "root", &["111111", "000000"]);
    assert_eq!(two.audit_results(), ["wrong-code", "wrong-code"], "{two:?}");
    assert_eq!(twice, once, "{one:?}\n{two:?}");
}

#[test]
fn an_attempt_opens_the_state_file_once() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &[SCRATCH]);
    let svc = fx.module_service("opens", "rate_limit=100/60");
    let path = fx.state_path("root");
    // The state file by its own name (not the lock, not the new file made
    // under its temporary name), whatever the flags.
    let quoted = format!("\"{}\"", path.display());
    let opens = |typed: &str| {
        let run = fx.client(&svc, "root").answer(typed).syslog();
        let (r, log) = strace(None, &fx, run, "open,openat,openat2");
        let opens: Vec<&str> = log.lines().filter(|l| l.contains(&quoted)).collect();
        assert_eq!(opens.len(), 1, "{r:?}\n{opens:#?}");
        r.audit_results()
    };
    avoid_step_edge(30, 5);
    let right = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    // No file yet; a file of two slots, for a failure and for a spend; a
    // replay; a scratch code.
    assert_eq!(opens("000000"), ["wrong-code"]);
    assert_eq!(opens("111111"), ["wrong-code"]);
    assert_eq!(opens(&right), ["success"]);
    assert_eq!(opens(&right), ["replayed-code"]);
    assert_eq!(opens(SCRATCH), ["scratch-code-used"]);
    // A file of the earlier layout, made anew.
    fs::write(
        &path,
        "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\ncomplete = true\n",
    )
    .unwrap();
    assert_eq!(opens("000000"), ["wrong-code"]);
    assert_eq!(
        fx.state("root").unwrap()["failed_attempts"].as_integer(),
        Some(1)
    );
}
