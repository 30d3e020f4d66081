//! Fleet state (issue 13) through two real OpenSSH servers: a code used
//! to log in through one is refused on the other.
//!
//! Two `/usr/sbin/sshd` on two free loopback ports, each in its own
//! private mount and PID namespaces with its own copy of the module, its
//! own local state directory and its own pam.d file (the shipped
//! conf/pam.d/sshd-publickey), bind-mounted over /etc/pam.d/sshd as in
//! tests/e2e_sshd.rs. Both name one real redis-server (tests/redis_support,
//! started and stopped by the test) with `state=` and
//! `state_credentials=`: host A over its Unix socket, host B over
//! 127.0.0.1 TCP, the two ways a module reaches a server. The real `ssh`
//! client logs in with a key and answers the keyboard-interactive code
//! prompt; codes come from oathtool.
//!
//! Without the shared store each host would keep its own state, and the
//! code spent on A would still be fresh on B: the second login below would
//! succeed. Runs as root. Test user: `pamtotp-fleet-ssh`.

mod common;
mod e2e_support;
mod redis_support;

use std::path::Path;
use std::process::Command;

use common::{avoid_step_edge, oathtool_totp, SECRET};
use e2e_support::*;
use redis_support::{Options, RedisServer, ADMIN_PASSWORD, ADMIN_USER, PASSWORD, USER};

/// The codes accepted around now (window=1): previous, current, next step.
fn window() -> Vec<String> {
    (-1..=1)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect()
}

fn has_line(lines: &[String], parts: &[&str]) -> bool {
    lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// One host: conf/pam.d/sshd-publickey with the test's module, its own
/// state directory, and `state_args`.
fn host(dir: &Path, state_args: &str) -> Sshd {
    let so = install_module(dir);
    let pam = localize_pam_conf(&read_conf("pam.d/sshd-publickey"), &so, dir, state_args);
    Sshd::start(
        dir,
        &pam,
        &read_conf("sshd_config.d/pam-totp-publickey.conf"),
    )
}

/// The state the server holds for `user`, as redis-cli's admin sees it
/// (empty when there is none).
fn stored_state(server: &RedisServer, user: &str) -> String {
    let out = Command::new("redis-cli")
        .args(["-s", server.socket().to_str().unwrap()])
        .args([
            "--user",
            ADMIN_USER,
            "--pass",
            ADMIN_PASSWORD,
            "--no-auth-warning",
            "get",
            &format!("pam-totp:state:{user}"),
        ])
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_code_used_through_one_sshd_is_refused_by_the_other() {
    let machine_pam = snapshot("/etc/pam.d/sshd");
    let server = RedisServer::start(Options {
        tcp: true,
        ..Options::default()
    });
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    let args = |url: String| format!("state={url} state_credentials={}", creds.display());

    let user = TestUser::create("fleet-ssh");
    let dir_a = work_dir("fleet-ssh-a");
    let dir_b = work_dir("fleet-ssh-b");
    let key = dir_a.path().join("id_user");
    user.authorize_key(&ssh_keygen(&key));
    user.enroll_in_home(SECRET);
    let a = host(dir_a.path(), &args(server.unix_url()));
    let b = host(dir_b.path(), &args(server.tcp_url()));
    assert_ne!(a.port, b.port);

    avoid_step_edge(30, 12);
    let codes = window();

    // The current code through A: in.
    let r = a.ssh(&user.name, Some(&key), &codes[1], "");
    assert!(
        r.ran,
        "right code refused on A: {r:?}\nsshd log:\n{}",
        a.server_log()
    );
    assert_eq!(r.code_prompts(), 1, "{r:?}");
    let log = a.syslog.module_lines();
    assert!(
        has_line(
            &log,
            &[
                &format!("user={}", user.name),
                "service=sshd",
                "result=success"
            ]
        ),
        "{log:?}"
    );
    assert!(
        !stored_state(&server, &user.name).is_empty(),
        "A's login left no state on the server"
    );

    // The same code through B, which has never seen it: refused as a
    // replay, after the prompt; the remote command never runs.
    let r = b.ssh(&user.name, Some(&key), &codes[1], "");
    assert!(!r.ran, "a code spent on A let in on B: {r:?}");
    assert_eq!(r.code_prompts(), 1, "{r:?}");
    assert!(r.run.stderr.contains("Permission denied"), "{r:?}");
    let log = b.syslog.module_lines();
    assert!(
        has_line(
            &log,
            &[&format!("user={}", user.name), "result=replayed-code"]
        ),
        "{log:?}"
    );

    // B itself works: the next step's code lets in through B ...
    let r = b.ssh(&user.name, Some(&key), &codes[2], "");
    assert!(
        r.ran,
        "right code refused on B: {r:?}\nsshd log:\n{}",
        b.server_log()
    );
    assert!(has_line(&b.syslog.module_lines(), &["result=success"]));
    // ... and is then refused through A, the other way round.
    let r = a.ssh(&user.name, Some(&key), &codes[2], "");
    assert!(!r.ran, "a code spent on B let in on A: {r:?}");
    let log = a.syslog.module_lines();
    assert!(has_line(&log, &["result=replayed-code"]), "{log:?}");

    // The server decided every login: neither host kept a local state.
    for dir in [dir_a.path(), dir_b.path()] {
        assert!(
            module_state(dir, &user.name).is_none(),
            "local state in {}",
            dir.display()
        );
    }

    drop(a);
    drop(b);
    assert_eq!(snapshot("/etc/pam.d/sshd"), machine_pam);
}
