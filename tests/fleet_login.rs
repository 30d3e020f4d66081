//! Fleet state (issue 13) through the real libpam: "hosts" are PAM
//! services of fixtures with their own local state directories sharing
//! one real redis-server (tests/redis_support) by `state=`; the admin tool
//! reads and resets the same state with `--state`.

mod cli_support;
mod common;
mod redis_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use redis_support::{
    Options, RedisServer, TestCa, TlsConfig, ADMIN_PASSWORD, ADMIN_USER, PASSWORD, USER,
};

const SCRATCH: [&str; 3] = ["12345678", "87654321", "55501234"];

/// One host: its own fixture (pam.d, local state directory, secrets) and
/// a service using the shared state server.
struct Host {
    fx: Fixture,
    svc: String,
}

impl Host {
    fn new(state_args: &str, args: &str) -> Host {
        let fx = Fixture::new();
        fx.enroll_with_scratch("root", SECRET, &SCRATCH);
        let svc = fx.module_service("fleet", &format!("{state_args} {args}"));
        Host { fx, svc }
    }

    fn login(&self, answer: &str) -> PamResult {
        self.fx
            .client(&self.svc, "root")
            .answer(answer)
            .syslog()
            .run()
    }

    fn run(&self, answer: &str) -> ClientRun {
        self.fx.client(&self.svc, "root").answer(answer)
    }
}

fn hosts(n: usize, state_args: &str, args: &str) -> Vec<Host> {
    (0..n).map(|_| Host::new(state_args, args)).collect()
}

fn creds(server: &RedisServer) -> PathBuf {
    server.credentials_file("creds.toml", USER, PASSWORD, 0o600)
}

fn state_args(server: &RedisServer) -> String {
    format!(
        "state={} state_credentials={}",
        server.unix_url(),
        creds(server).display()
    )
}

fn count(results: &[PamResult], what: &str) -> usize {
    results.iter().filter(|r| r.result == what).count()
}

/// `pam-totp ARGS --state URL --state-credentials PATH` as root.
fn tool(server: &RedisServer, host: &Host, args: &[&str]) -> cli_support::Run {
    let url = server.unix_url();
    let creds = creds(server);
    let file = host.fx.path().join("secrets/root");
    let cfg = host.fx.config();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--config",
        cfg.to_str().unwrap(),
        "--user",
        "root",
        "--state",
        &url,
        "--state-credentials",
        creds.to_str().unwrap(),
    ]);
    if args[0] != "reset" {
        all.extend(["--secret-file", file.to_str().unwrap()]);
    }
    cli_support::run(&all, "")
}

fn failed_attempts(server: &RedisServer, host: &Host) -> i64 {
    let v = tool(server, host, &["status", "--json"]).json();
    v["failed_attempts"]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"))
}

/// redis-cli as the unrestricted admin user; its standard output.
fn admin_cli(server: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-s", server.socket().to_str().unwrap()])
        .args([
            "--user",
            ADMIN_USER,
            "--pass",
            ADMIN_PASSWORD,
            "--no-auth-warning",
        ])
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn unix_server() -> RedisServer {
    RedisServer::start(Options::default())
}

#[test]
fn twenty_logins_with_one_code_over_four_hosts_exactly_one_succeeds_every_round() {
    let server = unix_server();
    let hs = hosts(4, &state_args(&server), "window=2 rate_limit=1000/60");
    avoid_step_edge(30, 3);
    for offset in -2..=2 {
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, offset);
        let runs = (0..20).map(|i| hs[i % 4].run(&code)).collect();
        let results = release_together(hs[0].fx.path(), runs);
        assert_eq!(
            count(&results, "PAM_SUCCESS"),
            1,
            "offset {offset}: {results:?}"
        );
        assert_eq!(count(&results, "PAM_AUTH_ERR"), 19, "{results:?}");
    }
    // Nothing was kept locally (state_unavailable=deny): the server decided.
    for h in &hs {
        assert!(
            h.fx.state_dir_names().is_empty(),
            "{:?}",
            h.fx.state_dir_names()
        );
    }
}

#[test]
fn thirty_concurrent_failures_over_three_hosts_are_all_counted_by_the_tool() {
    let server = unix_server();
    let hs = hosts(3, &state_args(&server), "rate_limit=1000/60");
    avoid_step_edge(30, 3);
    let wrong = wrong_code();
    let runs = (0..30).map(|i| hs[i % 3].run(&wrong)).collect();
    let results = release_together(hs[0].fx.path(), runs);
    assert_eq!(count(&results, "PAM_AUTH_ERR"), 30, "{results:?}");
    assert_eq!(failed_attempts(&server, &hs[1]), 30);
}

/// A six-digit code that is none of the window's.
fn wrong_code() -> String {
    let near: Vec<String> = (-3..=3)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect();
    (0..)
        .map(|i| format!("{:06}", 100_000 + i * 7))
        .find(|c| !near.contains(c))
        .unwrap()
}

#[test]
fn the_rate_limit_holds_across_hosts_and_reset_from_the_tool_unlocks_fleet_wide() {
    let server = unix_server();
    let hs = hosts(4, &state_args(&server), "rate_limit=3/60");
    avoid_step_edge(30, 5);
    let wrong = wrong_code();
    for h in &hs[..3] {
        assert_eq!(h.login(&wrong).result, "PAM_AUTH_ERR");
    }
    // A fourth host that has seen no failure refuses even the right code.
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = hs[3].login(&code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["rate-limited"], "{r:?}");
    let locked = tool(&server, &hs[0], &["status", "--json"]).json();
    assert_eq!(locked["locked"], true, "{locked}");
    // One reset, on any host, unlocks every host.
    let out = tool(&server, &hs[0], &["reset"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("state server"), "{out:?}");
    let r = hs[2].login(&code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn a_scratch_code_works_once_across_hosts() {
    let server = unix_server();
    let hs = hosts(3, &state_args(&server), "");
    let r = hs[0].login(SCRATCH[1]);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    for h in &hs {
        let r = h.login(SCRATCH[1]);
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    }
    let v = tool(&server, &hs[2], &["status", "--json"]).json();
    assert_eq!(v["scratch_codes_remaining"], 2, "{v}");
    // disable removes the state on the server too.
    let out = tool(&server, &hs[2], &["disable"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("state server"), "{out:?}");
}

#[test]
fn a_stopped_server_denies_after_the_prompt_by_default() {
    let mut server = unix_server();
    let h = Host::new(&state_args(&server), "");
    server.stop();
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = h.login(&code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts.len(), 1, "still asked: {r:?}");
    let log = r.all_log_text();
    assert!(log.contains("result=state-error"), "{log}");
    assert!(log.contains("state server unavailable"), "{log}");
    assert!(log.contains("state_unavailable is deny"), "{log}");
    assert!(h.fx.state_dir_names().is_empty());
}

#[test]
fn local_fallback_refuses_replays_and_the_outage_merges_at_the_next_contact() {
    let mut server = unix_server();
    let args = format!("{} state_unavailable=local", state_args(&server));
    let a = Host::new(&args, "window=1 rate_limit=100/60");
    let b = Host::new(&args, "window=1 rate_limit=100/60");
    avoid_step_edge(30, 8);
    // Before the outage: a code used through the server on A.
    let before = oathtool_totp(SECRET, "SHA1", 6, 30, -1);
    assert_eq!(a.login(&before).result, "PAM_SUCCESS");

    server.stop();
    // A's local copy still refuses what A saw spent before the outage.
    let r = a.login(&before);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.audit_results().contains(&"state-fallback".to_owned()),
        "{r:?}"
    );
    // A code and a scratch code used on A during the outage ...
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = a.login(&code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.audit_results(), ["state-fallback", "success"], "{r:?}");
    assert!(
        r.all_log_text().contains("state_unavailable is local"),
        "{r:?}"
    );
    // ... are refused on A again (a replay on that host).
    let r = a.login(&code);
    assert_eq!(
        r.audit_results(),
        ["state-fallback", "replayed-code"],
        "{r:?}"
    );
    assert_eq!(a.login(SCRATCH[0]).result, "PAM_SUCCESS");
    assert!(a
        .fx
        .state_dir_names()
        .contains(&".root.fleet-pending".to_owned()));

    server.restart();
    // A's next contact joins what it decided alone into the server's state.
    let r = a.login(&wrong_code());
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    assert!(!a
        .fx
        .state_dir_names()
        .contains(&".root.fleet-pending".to_owned()));
    // B never saw any of it, and refuses all of it now.
    let r = b.login(SCRATCH[0]);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    let r = b.login(&code);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    // Failures made during the outage count against the rate limit: 2
    // replays on A during it, then 1 wrong on A and 2 replays on B.
    let stored = admin_cli(&server, &["get", "pam-totp:state:root"]);
    let st: toml::Table = stored.parse().expect("the stored state is TOML");
    assert_eq!(st["failures"].as_array().unwrap().len(), 5, "{st:?}");
    // failed_attempts counts since the last success (the scratch code).
    assert_eq!(failed_attempts(&server, &b), 3);
}

#[test]
fn a_frozen_server_denies_within_a_bounded_time() {
    let server = unix_server();
    let h = Host::new(&format!("{} state_timeout=500", state_args(&server)), "");
    server.freeze();
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let t = Instant::now();
    let r = h.login(&code);
    let took = t.elapsed();
    server.thaw();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.all_log_text().contains("state server unavailable"),
        "{r:?}"
    );
    // Generous: a bound against hanging, not a timing measurement.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn with_appendonly_a_spent_code_stays_spent_across_a_restart() {
    let mut server = RedisServer::start(Options {
        appendonly: true,
        ..Options::default()
    });
    let hs = hosts(2, &state_args(&server), "");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    assert_eq!(hs[0].login(&code).result, "PAM_SUCCESS");
    server.restart();
    let r = hs[1].login(&code);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
}

#[test]
fn a_credentials_file_open_to_others_is_refused_and_the_login_denied() {
    let server = unix_server();
    let loose = server.credentials_file("loose.toml", USER, PASSWORD, 0o644);
    let args = format!(
        "state={} state_credentials={} state_unavailable=local",
        server.unix_url(),
        loose.display()
    );
    let h = Host::new(&args, "");
    let r = h.login(&oathtool_totp(SECRET, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let log = r.all_log_text();
    assert!(log.contains("state_credentials"), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    // A configuration problem: not a fallback to the local state.
    assert!(h.fx.state_dir_names().is_empty());
}

#[test]
fn tls_with_the_test_ca_works_and_another_ca_is_refused() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path(), "fleet");
    let other = TestCa::new(pki.path(), "other");
    let server = RedisServer::start(Options {
        tls: Some(TlsConfig {
            server: ca.issue_server("server", "IP:127.0.0.1"),
            ca_cert: ca.files.cert.clone(),
        }),
        ..Options::default()
    });
    let with_ca = |ca: &Path| {
        format!(
            "state={} state_credentials={} state_ca={}",
            server.tls_url(),
            creds(&server).display(),
            ca.display()
        )
    };
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let good = Host::new(&with_ca(&ca.files.cert), "");
    let r = good.login(&code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // Without the TLS library beside the module: denied after the prompt,
    // and the log says why (no fallback to the local state either).
    std::fs::remove_file(good.fx.path().join(pam_totp::pam::tls::LIBRARY)).unwrap();
    let r = good.login(&oathtool_totp(SECRET, "SHA1", 6, 30, 1));
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["state-error"], "{r:?}");
    assert!(
        r.syslog.iter().any(|l| l.contains("TLS is not available")),
        "{r:?}"
    );
    assert!(good.fx.state_dir_names().is_empty());
    let bad = Host::new(&with_ca(&other.files.cert), "");
    let r = bad.login(&oathtool_totp(SECRET, "SHA1", 6, 30, 1));
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["state-error"], "{r:?}");
}

#[test]
fn the_server_never_sees_a_code_a_scratch_code_or_the_secret() {
    let server = unix_server();
    let mut monitor = Command::new("redis-cli")
        .args(["-s", server.socket().to_str().unwrap()])
        .args([
            "--user",
            ADMIN_USER,
            "--pass",
            ADMIN_PASSWORD,
            "--no-auth-warning",
        ])
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    // Wait until MONITOR is on: a command from another client shows up.
    let admin = |args: &[&str]| {
        Command::new("redis-cli")
            .args(["-s", server.socket().to_str().unwrap()])
            .args([
                "--user",
                ADMIN_USER,
                "--pass",
                ADMIN_PASSWORD,
                "--no-auth-warning",
            ])
            .args(args)
            .output()
            .expect("redis-cli")
    };
    std::thread::sleep(Duration::from_millis(300));
    admin(&["ping"]);

    let hs = hosts(2, &state_args(&server), "window=1");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let wrong = wrong_code();
    assert_eq!(hs[0].login(&code).result, "PAM_SUCCESS");
    assert_eq!(hs[1].login(&code).result, "PAM_AUTH_ERR");
    assert_eq!(hs[1].login(&wrong).result, "PAM_AUTH_ERR");
    assert_eq!(hs[1].login(SCRATCH[2]).result, "PAM_SUCCESS");
    admin(&["ping"]);
    std::thread::sleep(Duration::from_millis(300));
    let _ = monitor.kill();
    let mut text = String::new();
    monitor
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = monitor.wait();

    // The logins' commands were seen: the test watched the right stream.
    assert!(
        text.contains("\"WATCH\"") && text.contains("\"SET\""),
        "{text}"
    );
    assert!(text.contains("pam-totp:state:root"), "{text}");
    // What each line carries after the timestamp and client, split into
    // words: no word is a code, and the secret is nowhere.
    let words: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    for secret in [code.as_str(), wrong.as_str(), SCRATCH[2]] {
        assert!(!words.contains(&secret), "{secret} in {text}");
    }
    for s in SCRATCH {
        assert!(!text.contains(s), "{s} in {text}");
    }
    assert!(!text.to_uppercase().contains(SECRET), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[test]
fn state_settings_from_config_toml_share_one_code_once_across_two_services() {
    let server = unix_server();
    // The fleet keys live in each host's config.toml, named by `config=`;
    // the pam.d lines carry no state_* argument. A prefix other than the
    // default shows that every key was read from the file.
    let hs: Vec<Host> = (0..2)
        .map(|_| {
            let fx = Fixture::new();
            fx.enroll_with_scratch("root", SECRET, &SCRATCH);
            let own = std::fs::read_to_string(fx.config()).unwrap();
            let cfg = fx.config_file(
                "fleet-config.toml",
                &format!(
                    "{own}state = \"{}\"\nstate_credentials = \"{}\"\n\
                     state_prefix = \"pam-totp:cfg:\"\nstate_timeout = 2000\n\
                     state_unavailable = \"deny\"\n",
                    server.unix_url(),
                    creds(&server).display()
                ),
            );
            let svc = fx.module_service(
                "fleet",
                &format!("config={} window=1 rate_limit=1000/60", cfg.display()),
            );
            let line = std::fs::read_to_string(fx.path().join("pam.d").join(&svc)).unwrap();
            assert!(!line.contains("state="), "{line}");
            Host { fx, svc }
        })
        .collect();
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let runs = (0..10).map(|i| hs[i % 2].run(&code)).collect();
    let results = release_together(hs[0].fx.path(), runs);
    assert_eq!(count(&results, "PAM_SUCCESS"), 1, "{results:?}");
    assert_eq!(count(&results, "PAM_AUTH_ERR"), 9, "{results:?}");
    // Once more, one after the other: refused on both hosts.
    for h in &hs {
        let r = h.login(&code);
        assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    }
    // The server decided, under the prefix from the file; no host kept a
    // local state.
    let stored = admin_cli(&server, &["get", "pam-totp:cfg:state:root"]);
    assert!(
        !stored.trim().is_empty(),
        "nothing under the config's prefix"
    );
    let default = admin_cli(&server, &["get", "pam-totp:state:root"]);
    assert!(default.trim().is_empty(), "{default}");
    for h in &hs {
        assert!(
            h.fx.state_dir_names().is_empty(),
            "{:?}",
            h.fx.state_dir_names()
        );
    }
}
