//! State per account, not per spelling: two passwd names with one uid
//! share one record of spent codes and one failure budget, and the tool
//! finds that state by either name. The names exist only inside a private
//! mount namespace with its own /etc/passwd (tests/ns_support); the
//! module is driven through the real libpam, codes from oathtool.
//!
//! Issue 11, "Must work" 2.

mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use ns_support::MountNs;

/// The account's name (first in /etc/passwd, so getpwuid's answer).
const MAIN: &str = "pamtotp-acct-main";
/// A second name for the same uid, as `toor` is for `root`.
const ALIAS: &str = "pamtotp-acct-alias";
/// Far above any real account, and apart from ns_support's generated ones.
const UID: u32 = 3_900_000;

/// A namespace whose /etc/passwd has [`MAIN`] and [`ALIAS`] with one uid,
/// each with a secret file (the same key) in the fixture's secrets/, and a
/// service with `rate_limit`.
struct Aliased {
    fx: Fixture,
    ns: MountNs,
    service: String,
}

impl Aliased {
    fn new(rate_limit: &str) -> Aliased {
        Aliased::with(rate_limit, &[(MAIN, UID), (ALIAS, UID)])
    }

    /// Like [`new`](Self::new), with these passwd lines, in this order.
    fn with(rate_limit: &str, entries: &[(&str, u32)]) -> Aliased {
        let fx = Fixture::new();
        let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
        let mut group = fs::read_to_string("/etc/group").unwrap();
        for (name, uid) in entries {
            passwd.push_str(&format!(
                "{name}:x:{uid}:{UID}::/nonexistent:/usr/sbin/nologin\n"
            ));
            fx.enroll(name, SECRET, "SHA1", 6, 30);
        }
        group.push_str(&format!("{MAIN}:x:{UID}:\n"));
        let etc = fx.path().join("etc");
        fs::create_dir(&etc).unwrap();
        for (name, text) in [("passwd", &passwd), ("group", &group)] {
            fs::write(etc.join(name), text).unwrap();
            fs::set_permissions(etc.join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let ns = MountNs::new(
            r#"mount --bind "$1/passwd" /etc/passwd; mount --bind "$1/group" /etc/group"#,
            &[&etc],
        );
        let service = fx.module_service("acct", &format!("rate_limit={rate_limit}"));
        Aliased { fx, ns, service }
    }

    fn login(&self, user: &str, code: &str) -> PamResult {
        self.ns
            .enter(self.fx.client(&self.service, user))
            .answer(code)
            .syslog()
            .run()
    }

    /// The tool, inside the namespace, with the fixture's config, state
    /// directory and `user`'s secret file.
    fn tool(&self, sub: &str, user: &str) -> (i32, String, String) {
        let cfg = self.fx.config_file("config.toml", "");
        let mut cmd: Command = self.ns.command(env!("CARGO_BIN_EXE_pam-totp"));
        cmd.args([sub, "--user", user, "--config"])
            .arg(&cfg)
            .arg("--state-dir")
            .arg(self.fx.state_dir());
        if sub == "status" {
            cmd.arg("--secret-file")
                .arg(self.fx.path().join("secrets").join(user))
                .args(["--rate-limit", "3/600", "--json"]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn status(&self, user: &str) -> serde_json::Value {
        let (code, out, err) = self.tool("status", user);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str(&out).unwrap()
    }
}

#[test]
fn a_code_used_as_one_name_is_refused_as_the_other() {
    let w = Aliased::new("100/60");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = w.login(ALIAS, &code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = w.login(MAIN, &code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    // One state, under the account's name; none under the alias.
    assert!(w.fx.state(MAIN).is_some());
    assert!(w.fx.state(ALIAS).is_none());
    // The audit line still names the login name that was typed.
    let r = w.login(ALIAS, &code);
    assert!(
        r.only_module_line().contains(&format!("user={ALIAS} ")),
        "{r:?}"
    );
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
}

#[test]
fn failures_as_either_name_count_against_one_budget() {
    let w = Aliased::new("3/600");
    avoid_step_edge(30, 5);
    for user in [MAIN, ALIAS, MAIN] {
        let r = w.login(user, "000000x");
        assert_eq!(r.audit_results(), ["wrong-code"], "{user}: {r:?}");
    }
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = w.login(ALIAS, &code);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["rate-limited"], "{r:?}");
}

#[test]
fn the_tool_finds_the_accounts_state_by_either_name() {
    let w = Aliased::new("3/600");
    for _ in 0..3 {
        let r = w.login(MAIN, "000000x");
        assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    }
    let st = w.status(ALIAS);
    assert_eq!(st["failed_attempts"], 3, "{st}");
    assert_eq!(st["locked"], true, "{st}");

    let (code, out, err) = w.tool("reset", ALIAS);
    assert_eq!(code, 0, "{out}{err}");
    let st = w.status(MAIN);
    assert_eq!(st["failed_attempts"], 0, "{st}");
    assert_eq!(st["locked"], false, "{st}");
    avoid_step_edge(30, 5);
    let r = w.login(MAIN, &oathtool_totp(SECRET, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(
        w.fx.state_dir_names(),
        [format!(".{MAIN}.lock"), MAIN.to_owned()]
    );
}

#[test]
fn names_that_do_not_resolve_back_to_the_uid_are_refused_with_a_reason() {
    // getpwnam(ALIAS) gives UID + 1, whose name (getpwuid) is MAIN; but
    // getpwnam(MAIN) gives UID: the databases disagree about the account.
    let w = Aliased::with("100/60", &[(MAIN, UID), (MAIN, UID + 1), (ALIAS, UID + 1)]);
    avoid_step_edge(30, 5);
    let r = w.login(ALIAS, &oathtool_totp(SECRET, "SHA1", 6, 30, 0));
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["state-error"], "{r:?}");
    assert!(
        r.only_module_line()
            .contains(&format!("which resolves to uid {UID}")),
        "{r:?}"
    );
    assert!(
        w.fx.state_dir_names().is_empty(),
        "{:?}",
        w.fx.state_dir_names()
    );
}
