//! The per-user state through the real libpam: the rate limit, the state
//! directory (created 0700 when missing), atomic replacement, corrupt or
//! unsafe state (denies, fail closed), and the secret file that logins
//! never write.
//!
//! Issue 2, "Must work" 3 (rate limit; the concurrent half is in
//! module_concurrency.rs) and 6.

mod common;
mod ns_support;
use common::*;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn after_n_failures_even_the_right_code_waits_for_the_window() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("limit", "rate_limit=2/3");
    // The right code must stay current for the whole test (about 5 s).
    avoid_step_edge(30, 12);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    for _ in 0..2 {
        let r = fx.client(&svc, "root").answer("000000x").syslog().run();
        assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    }
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.only_module_line()
            .contains("result=rate-limited rate_limit=2/3"),
        "{r:?}"
    );
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(3), "{st:?}");

    // Once the window has passed (failures are stamped in whole seconds,
    // so 3 s + 1), the same code works: it was never spent.
    std::thread::sleep(Duration::from_secs(4));
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let st = fx.state("root").unwrap();
    assert_eq!(st["failed_attempts"].as_integer(), Some(0), "{st:?}");
}

#[test]
fn the_default_limit_is_three_per_thirty_seconds() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("limit", "");
    avoid_step_edge(30, 5);
    // Two failures do not lock...
    for _ in 0..2 {
        let r = fx.client(&svc, "root").answer("000000x").run();
        assert_eq!(r.result, "PAM_AUTH_ERR");
    }
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // ...three do; a success does not clear the failures' times.
    let r = fx.client(&svc, "root").answer("000000x").run();
    assert_eq!(r.result, "PAM_AUTH_ERR");
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 1);
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.only_module_line().contains("rate_limit=3/30"), "{r:?}");
}

#[test]
fn an_explicit_state_dir_is_created_0700_when_missing() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let dir = fx.path().join("new/deeper/state");
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={}",
        fx.path().display(),
        dir.display()
    );
    let svc = fx.service("mkstate", &[&line]);
    let r = fx.client(&svc, "root").answer("000000").run();
    assert_eq!(r.result, "PAM_AUTH_ERR");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(fs::metadata(&dir).unwrap().uid(), 0);
    assert_eq!(mode(&fx.path().join("new/deeper")), 0o755);
    assert!(dir.join("root").is_file(), "the failure was recorded");
}

#[test]
fn the_default_state_dir_is_created_0700_when_missing() {
    // /var/lib of a private mount namespace is a directory of the fixture,
    // so /var/lib/pam-totp/state is created there, not on the machine.
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let varlib = fx.path().join("varlib");
    fs::create_dir(&varlib).unwrap();
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}}",
        fx.path().display()
    );
    let svc = fx.service("defstate", &[&line]);
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx
        .client(&svc, "root")
        .answer(&code)
        .bind_mounted(&varlib, Path::new("/var/lib"))
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let dir = varlib.join("pam-totp/state");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(fs::metadata(&dir).unwrap().uid(), 0);
    assert!(dir.join("root").is_file());
}

#[test]
fn the_state_file_is_made_once_then_rewritten_in_place() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("atomic", "rate_limit=100/60");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS");
    let path = fx.state_path("root");
    let first = fs::metadata(&path).unwrap();
    assert_eq!(first.mode() & 0o7777, 0o600);
    assert_eq!(first.uid(), 0);
    // Only the state and its lock file; no temporary file left behind.
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
    let st = fx.state("root").unwrap();
    assert_eq!(st["version"].as_integer(), Some(2));
    assert_eq!(key_field(&st, "last_step"), Some((now() / 30) as i64));

    // The next attempts write into the same file, in place (issue 17:
    // two slots, no rename): the same inode, the same length.
    for typed in ["000000x", code.as_str()] {
        let r = fx.client(&svc, "root").answer(typed).run();
        assert_eq!(r.result, "PAM_AUTH_ERR");
        let now = fs::metadata(&path).unwrap();
        assert_eq!((now.ino(), now.len()), (first.ino(), first.len()));
    }
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
    assert_eq!(
        fx.state("root").unwrap()["failed_attempts"].as_integer(),
        Some(2)
    );
}

#[test]
fn a_stale_temporary_file_is_harmless() {
    // What a login killed between write and rename leaves behind.
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    fs::write(fx.state_dir().join(".root.tmp"), "half a sta").unwrap();
    let svc = fx.module_service("stale", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(fx.state_dir_names(), [".root.lock", "root"]);
}

#[test]
fn a_corrupt_state_file_denies_and_is_kept_for_the_admin() {
    for (case, body) in [
        ("garbage", &b"last_step = {{{"[..]),
        ("binary", b"\xff\xfe\x00\x01"),
        (
            "unknown key",
            b"version = 1\nlast_step = 5\nbackdoor = true\n",
        ),
        ("wrong version", b"version = 7\n"),
        ("wrong type", b"version = 1\nlast_step = \"soon\"\n"),
        ("empty", b""),
    ] {
        let fx = Fixture::new();
        fx.enroll("root", SECRET, "SHA1", 6, 30);
        fs::write(fx.state_path("root"), body).unwrap();
        let svc = fx.module_service("corrupt", "");
        avoid_step_edge(30, 3);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        let r = fx.client(&svc, "root").answer(&code).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{case}: {r:?}");
        let line = r.only_module_line();
        assert!(line.contains("result=state-error"), "{case}: {line}");
        assert!(line.contains("corrupt"), "{case}: {line}");
        assert!(line.contains("pam-totp reset"), "{case}: {line}");
        assert_eq!(fs::read(fx.state_path("root")).unwrap(), body, "{case}");
    }
}

#[test]
fn a_symlinked_state_file_is_neither_followed_nor_written() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let victim = fx.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, fx.state_path("root")).unwrap();
    let svc = fx.module_service("symstate", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.only_module_line().contains("result=state-error"), "{r:?}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn an_unsafe_or_unusable_state_dir_denies() {
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil); 3] = [
        ("world-writable", |d| {
            fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap()
        }),
        ("another owner", |d| {
            std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap()
        }),
        ("not a directory", |d| {
            fs::remove_dir(d).unwrap();
            fs::write(d, "").unwrap();
        }),
    ];
    for (case, spoil) in cases {
        let fx = Fixture::new();
        fx.enroll("root", SECRET, "SHA1", 6, 30);
        spoil(&fx.state_dir());
        let svc = fx.module_service("baddir", "");
        avoid_step_edge(30, 3);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        let r = fx.client(&svc, "root").answer(&code).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{case}: {r:?}");
        let line = r.only_module_line();
        assert!(line.contains("result=state-error"), "{case}: {line}");
        assert!(line.contains("state directory"), "{case}: {line}");
    }
}

#[test]
fn logins_never_write_the_secret_file() {
    let fx = Fixture::new();
    let file = fx.enroll_with_scratch("root", SECRET, &["12345678"]);
    let before = fingerprint(&file);
    let svc = fx.module_service("readonly", "rate_limit=3/600");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let attempts: [(&str, &str); 7] = [
        (&code, "PAM_SUCCESS"),
        (&code, "PAM_AUTH_ERR"),
        ("12345678", "PAM_SUCCESS"),
        ("12345678", "PAM_AUTH_ERR"),
        ("000000x", "PAM_AUTH_ERR"),
        ("000000x", "PAM_AUTH_ERR"),
        ("000000x", "PAM_AUTH_ERR"),
    ];
    for (typed, want) in attempts {
        let r = fx.client(&svc, "root").answer(typed).run();
        assert_eq!(r.result, want, "{typed}: {r:?}");
    }
    // Rate-limited by now.
    let r = fx
        .client(&svc, "root")
        .answer(&oathtool_totp(SECRET, "SHA1", 6, 30, 1))
        .syslog()
        .run();
    assert_eq!(r.audit_results(), ["rate-limited"], "{r:?}");
    assert_eq!(fingerprint(&file), before, "the secret file was touched");
    // Nothing else appeared beside it either.
    let names: Vec<_> = fs::read_dir(fx.path().join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["root"]);
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
