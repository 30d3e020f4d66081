//! `pam-totp report` (issue 16, item 4) through the built tool, against
//! accounts put into each state by the tool itself and by real logins
//! through libpam (pam_client with the built module): not enrolled,
//! enrolled plain, sealed (a host key of the test's own), locked by wrong
//! codes, one scratch code left, an unsafe secret file, a secret file with
//! no account, and a state whose account was deleted; with the local state
//! directory and with the fleet's state on a real redis-server.
//!
//! `keys` counts the named keys of a file: an account with a second key
//! (`enroll --add`) shows 2.
//!
//! Every path (secrets, state, host key, config.toml, pam.d) is the test's
//! own fixture; the machine's other accounts are listed too (report lists
//! every account) but none of them can be enrolled or locked here, so the
//! filters' results are checked exactly for the test's accounts.

mod cli_support;
mod common;
mod redis_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use cli_support::{run, run_as, Run, TestUser};
use common::{avoid_step_edge, now, oathtool_totp, Fixture, SECRET};
use redis_support::{Options, RedisServer, ADMIN_PASSWORD, ADMIN_USER, PASSWORD, USER};
use serde_json::Value;

/// The fixture, its config.toml (`secret` in secrets/, `state_dir`, a host
/// key of its own, a rate limit that keeps a lockout for the whole test,
/// `extra`) and a service reading only that config.
struct World {
    fx: Fixture,
    svc: String,
}

impl World {
    fn new(extra: &str) -> World {
        let fx = Fixture::new();
        fs::set_permissions(fx.path().join("secrets"), fs::Permissions::from_mode(0o700)).unwrap();
        fx.config_file(
            "config.toml",
            &format!(
                "secret = \"{dir}/secrets/${{USER}}\"\nstate_dir = \"{dir}/state\"\n\
                 host_key = \"{dir}/host.key\"\nrate_limit = \"3/3600\"\n{extra}",
                dir = fx.path().display()
            ),
        );
        let svc = fx.service(
            "report",
            &[&format!(
                "auth required MODULE config={}",
                fx.config().display()
            )],
        );
        World { fx, svc }
    }

    fn cfg(&self) -> String {
        self.fx.config().to_str().unwrap().to_owned()
    }

    fn secret_path(&self, user: &str) -> PathBuf {
        self.fx.path().join("secrets").join(user)
    }

    /// Root enrolls `user` with the test secret and `n` scratch codes;
    /// `extra` flags (--no-seal). Returns the scratch codes.
    fn enroll(&self, user: &TestUser, n: usize, extra: &[&str]) -> Vec<String> {
        let cfg = self.cfg();
        let count = n.to_string();
        let mut args = vec![
            "enroll",
            "--config",
            &cfg,
            "--user",
            &user.name,
            "--secret",
            SECRET,
            "--scratch-codes",
            &count,
            "--no-confirm",
            "--json",
        ];
        args.extend_from_slice(extra);
        let v = run(&args, "").json();
        v["scratch_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect()
    }

    fn login(&self, user: &str, answer: &str) -> String {
        self.fx.client(&self.svc, user).answer(answer).run().result
    }

    /// `report --config CFG ARGS`.
    fn report(&self, args: &[&str]) -> Run {
        let cfg = self.cfg();
        let mut all = vec!["report", "--config", &cfg];
        all.extend_from_slice(args);
        run(&all, "")
    }
}

/// A code oathtool says is wrong now (none of the window's three).
fn wrong_code() -> String {
    let near: Vec<String> = (-1..=1)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// Three wrong codes through libpam: the rate limit (3/3600) locks.
fn lock_out(w: &World, user: &str) {
    let wrong = wrong_code();
    for _ in 0..3 {
        assert_eq!(w.login(user, &wrong), "PAM_AUTH_ERR");
    }
}

/// An account that exists only until its state is written: one wrong code
/// through libpam, then userdel (its home is the fixture's concern only).
fn deleted_account(w: &World, suffix: &str) -> String {
    let user = TestUser::get(suffix);
    w.enroll(&user, 0, &["--no-seal"]);
    assert_eq!(w.login(&user.name, &wrong_code()), "PAM_AUTH_ERR");
    fs::remove_file(w.secret_path(&user.name)).unwrap();
    let out = Command::new("userdel").arg(&user.name).output().unwrap();
    assert!(out.status.success(), "userdel: {out:?}");
    user.name
}

/// The JSON lines of a report, by user.
fn rows(r: &Run) -> BTreeMap<String, Value> {
    r.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["user"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// The test's own accounts among a report's rows.
fn ours(r: &Run, prefix: &str) -> Vec<String> {
    rows(r)
        .into_keys()
        .filter(|u| u.starts_with(prefix))
        .collect()
}

fn names(prefix: &str, suffixes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = suffixes.iter().map(|s| format!("{prefix}{s}")).collect();
    v.sort();
    v
}

#[test]
fn report_shows_every_state_of_the_local_store_and_filters_them() {
    let w = World::new("");
    let r = run(&["host-key", "init", "--config", &w.cfg()], "");
    assert_eq!(r.code, 0, "{r:?}");
    let none = TestUser::get("rp-none");
    let plain = TestUser::get("rp-plain");
    let sealed = TestUser::get("rp-sealed");
    let locked = TestUser::get("rp-locked");
    let scratch = TestUser::get("rp-scratch");
    let bad = TestUser::get("rp-bad");
    let two = TestUser::get("rp-two");
    w.enroll(&plain, 3, &["--no-seal"]);
    w.enroll(&two, 2, &[]);
    let cfg = w.cfg();
    let r = run(
        &[
            "enroll",
            "--config",
            &cfg,
            "--user",
            &two.name,
            "--add",
            "tablet",
            "--secret",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "--no-confirm",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    w.enroll(&sealed, 5, &[]);
    w.enroll(&locked, 5, &[]);
    let codes = w.enroll(&scratch, 2, &["--no-seal"]);
    w.enroll(&bad, 1, &["--no-seal"]);
    fs::set_permissions(w.secret_path(&bad.name), fs::Permissions::from_mode(0o644)).unwrap();
    // A file in the secrets directory for an account that does not exist.
    let ghost = "pamtotp-rp-ghost";
    let _ = Command::new("userdel").arg(ghost).output();
    fs::copy(w.secret_path(&plain.name), w.secret_path(ghost)).unwrap();
    let gone = deleted_account(&w, "rp-gone");

    lock_out(&w, &locked.name);
    let before = now();
    assert_eq!(w.login(&scratch.name, &codes[0]), "PAM_SUCCESS");

    let r = w.report(&["--json"]);
    assert_eq!(r.code, 1, "the unsafe file is an error: {r:?}");
    let all = rows(&r);
    let row = |u: &str| {
        all.get(u)
            .unwrap_or_else(|| panic!("no row for {u}: {:?} {:?}", all.keys(), r.stderr))
    };

    let n = row(&none.name);
    assert_eq!(n["enrolled"], "no", "{n}");
    assert_eq!(n["account"], true);
    assert_eq!(
        n["secret_file"],
        w.secret_path(&none.name).to_str().unwrap()
    );
    assert!(n["sealed"].is_null() && n["keys"].is_null(), "{n}");
    assert_eq!(
        (n["failed_attempts"].as_u64(), n["locked"].as_bool()),
        (Some(0), Some(false))
    );
    assert!(n["error"].is_null() && n["last_login"].is_null(), "{n}");

    let p = row(&plain.name);
    assert_eq!(p["enrolled"], "yes", "{p}");
    assert_eq!(p["sealed"], false);
    assert_eq!(p["keys"], 1);
    assert_eq!(p["scratch_codes_remaining"], 3);
    assert_eq!(p["error"], Value::Null);

    let s = row(&sealed.name);
    assert_eq!(
        (s["enrolled"].as_str(), s["sealed"].as_bool()),
        (Some("yes"), Some(true)),
        "{s}"
    );
    assert_eq!(
        (s["keys"].as_u64(), s["scratch_codes_remaining"].as_u64()),
        (Some(1), Some(5))
    );

    let t = row(&two.name);
    assert_eq!(
        (
            t["enrolled"].as_str(),
            t["keys"].as_u64(),
            t["sealed"].as_bool()
        ),
        (Some("yes"), Some(2), Some(true)),
        "{t}"
    );

    let l = row(&locked.name);
    assert_eq!(
        (l["failed_attempts"].as_u64(), l["locked"].as_bool()),
        (Some(3), Some(true)),
        "{l}"
    );
    assert_eq!(l["last_login"], Value::Null);

    let c = row(&scratch.name);
    assert_eq!(c["scratch_codes_remaining"], 1, "{c}");
    assert_eq!(
        (c["failed_attempts"].as_u64(), c["locked"].as_bool()),
        (Some(0), Some(false))
    );
    let last = c["last_login"].as_str().unwrap_or_else(|| panic!("{c}"));
    assert!(
        last.len() == 20 && last.ends_with('Z') && last.as_bytes()[10] == b'T',
        "{last}"
    );
    let stamp = |t: u64| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert!((before..=now()).any(|t| stamp(t) == last), "{last}");

    let b = row(&bad.name);
    assert_eq!(
        b["enrolled"], "error",
        "unsafe is never 'not enrolled': {b}"
    );
    let why = b["error"].as_str().unwrap();
    assert!(why.contains("mode 0644"), "{why}");
    assert!(
        r.stderr.contains(&format!("pam-totp: {}: ", bad.name)),
        "{r:?}"
    );

    let g = row(ghost);
    assert_eq!(
        (g["account"].as_bool(), g["enrolled"].as_str()),
        (Some(false), Some("yes")),
        "{g}"
    );
    let d = row(&gone);
    assert_eq!(
        (d["account"].as_bool(), d["enrolled"].as_str()),
        (Some(false), Some("no")),
        "{d}"
    );
    assert_eq!(
        d["failed_attempts"], 1,
        "the state store's own account: {d}"
    );

    // Reading every account's state created nothing for the accounts
    // that have none.
    let names_now = w.fx.state_dir_names();
    assert!(
        !names_now.iter().any(|n| n.contains("root")),
        "{names_now:?}"
    );

    // The filters (one at a time); the machine's own accounts can be
    // neither enrolled nor locked here.
    let enrolled = w.report(&["--json", "--enrolled"]);
    let mine = |r: &Run| -> Vec<String> {
        let mut v = ours(r, "pamtotp-rp-");
        v.sort();
        v
    };
    assert_eq!(
        rows(&enrolled).into_keys().collect::<Vec<_>>(),
        names(
            "pamtotp-rp-",
            &["bad", "ghost", "locked", "plain", "scratch", "sealed", "two"]
        ),
        "{enrolled:?}"
    );
    let not_enrolled = w.report(&["--json", "--not-enrolled"]);
    assert_eq!(mine(&not_enrolled), names("pamtotp-rp-", &["gone", "none"]));
    let lock = w.report(&["--json", "--locked"]);
    assert_eq!(
        rows(&lock).into_keys().collect::<Vec<_>>(),
        vec![locked.name.clone()]
    );
    for f in [&enrolled, &not_enrolled, &lock] {
        assert_eq!(f.code, 1, "a filter hides no error: {f:?}");
    }
    run(&["report", "--enrolled", "--locked"], "").bad_input("cannot be used with");

    // The table: aligned columns, the same values.
    let t = w.report(&[]);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(lines[0].starts_with("USER "), "{t:?}");
    for h in [
        "ENROLLED",
        "WHERE",
        "SEALED",
        "KEYS",
        "SCRATCH",
        "FAILURES",
        "LOCKED",
        "LAST LOGIN",
    ] {
        assert!(lines[0].contains(h), "{h}: {t:?}");
    }
    let line = |u: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("{u} ")))
            .unwrap()
    };
    let words: Vec<&str> = line(&sealed.name).split_whitespace().collect();
    let file = w.secret_path(&sealed.name);
    assert_eq!(
        words,
        [
            &sealed.name,
            "yes",
            file.to_str().unwrap(),
            "yes",
            "1",
            "5",
            "0",
            "no",
            "-"
        ]
    );
    let col = lines[0].find("LOCKED").unwrap();
    assert_eq!(&line(&locked.name)[col..col + 3], "yes", "{t:?}");

    // Sorted by account name.
    let order: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);

    // Root only.
    run_as(&none, &["report", "--config", &w.cfg()], "").bad_input("only root");
}

#[test]
fn report_reads_the_fleet_state_on_the_server() {
    let server = RedisServer::start(Options::default());
    let module_creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    let w = World::new(&format!(
        "state = \"{}\"\nstate_credentials = \"{}\"\n",
        server.unix_url(),
        module_creds.display()
    ));
    let plain = TestUser::get("rf-plain");
    let locked = TestUser::get("rf-locked");
    let none = TestUser::get("rf-none");
    w.enroll(&plain, 2, &["--no-seal"]);
    w.enroll(&locked, 2, &["--no-seal"]);
    let gone = deleted_account(&w, "rf-gone");
    lock_out(&w, &locked.name);
    avoid_step_edge(30, 5);
    assert_eq!(
        w.login(&plain.name, &oathtool_totp(SECRET, "SHA1", 6, 30, 0)),
        "PAM_SUCCESS"
    );
    // The module's own state directory holds nothing: all of it is on
    // the server.
    assert!(
        w.fx.state_dir_names().iter().all(|n| n.starts_with('.')),
        "{:?}",
        w.fx.state_dir_names()
    );

    // The tool lists the server's keys (SCAN) as the administrator's ACL
    // user the README recommends, set up with its line.
    let admin = server.credentials_file("admin.toml", "pamtotp-admin", ADMIN_PASSWORD, 0o600);
    readme_admin_acl(&server);
    let url = server.unix_url();
    let fleet = [
        "--state",
        &url,
        "--state-credentials",
        admin.to_str().unwrap(),
    ];
    let mut args = vec!["--json"];
    args.extend(fleet);
    let r = w.report(&args);
    assert_eq!(r.code, 0, "{r:?}");
    let all = rows(&r);
    let row = |u: &str| {
        all.get(u)
            .unwrap_or_else(|| panic!("no row for {u}: {:?} {:?}", all.keys(), r.stderr))
    };
    let p = row(&plain.name);
    assert_eq!(
        (p["enrolled"].as_str(), p["failed_attempts"].as_u64()),
        (Some("yes"), Some(0)),
        "{p}"
    );
    assert!(p["last_login"].is_string(), "{p}");

    let l = row(&locked.name);
    assert_eq!(
        (l["failed_attempts"].as_u64(), l["locked"].as_bool()),
        (Some(3), Some(true)),
        "{l}"
    );
    assert_eq!(row(&none.name)["enrolled"], "no");
    let d = row(&gone);
    assert_eq!(
        (d["account"].as_bool(), d["failed_attempts"].as_u64()),
        (Some(false), Some(1)),
        "{d}"
    );

    args.push("--locked");
    assert_eq!(
        rows(&w.report(&args)).into_keys().collect::<Vec<_>>(),
        vec![locked.name.clone()]
    );

    // The module's ACL user may not list keys (no SCAN): the report
    // fails as a whole, in one line, rather than showing fresh states.
    let r = w.report(&["--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "", "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("NOPERM"), "{r:?}");
}

/// The README's `user pamtotp-admin ...` line, as ACL SETUSER on the
/// server (with [`ADMIN_PASSWORD`]), run by the server's own admin user.
fn readme_admin_acl(server: &RedisServer) {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("user pamtotp-admin "))
        .expect("the README's pamtotp-admin ACL line");
    let rules: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|w| match w.starts_with('>') {
            true => format!(">{ADMIN_PASSWORD}"),
            false => w.to_owned(),
        })
        .collect();
    let out = Command::new("redis-cli")
        .args(["-s", server.socket().to_str().unwrap()])
        .args([
            "--user",
            ADMIN_USER,
            "--pass",
            ADMIN_PASSWORD,
            "--no-auth-warning",
        ])
        .args(["ACL", "SETUSER"])
        .args(&rules)
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success() && out.stdout.starts_with(b"OK"),
        "{out:?}"
    );
}
