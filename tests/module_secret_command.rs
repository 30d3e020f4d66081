//! `secret_command=` through the real libpam (issue 14, items 1 and 2):
//! the secret file's text comes from a command the module runs as
//! `secret_command_user`, with the user's name as its only argument.
//!
//! The commands are small shell scripts the test writes into a root-owned
//! 0755 directory of its own under target/ (whose parents are root-owned
//! and not group or world-writable: a command under /tmp would be
//! refused). Codes come from oathtool.

mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use ns_support::MountNs;
use pam_totp::core::otp::decode_base32;
use pam_totp::secret::seal::{self, HostSecretKey};

/// The account the commands run as; a member of [`EXTRA_GROUP`], which the
/// command must not have.
const CMD_USER: &str = "pamtotp-sccmd";
const EXTRA_GROUP: &str = "pamtotp-scgrp";

struct World {
    fx: Fixture,
    /// Root-owned, 0755 (see `common::trusted_command_dir`).
    cmds: tempfile::TempDir,
    /// Where the commands leave what the test reads (owned by CMD_USER).
    out: PathBuf,
    user: TestUser,
}

impl World {
    fn new() -> World {
        let user = ensure_user(CMD_USER, &[EXTRA_GROUP]);
        let fx = Fixture::new();
        // Root-owned, 0755, with no directory above it that others can
        // write to (the module refuses a command anywhere else).
        let cmds = trusted_command_dir("secret-command.");
        let out = fx.path().join("out");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(user.uid), Some(user.gid)).unwrap();
        World {
            fx,
            cmds,
            out,
            user,
        }
    }

    /// Writes the command `name` (a /bin/sh script, root-owned, 0755).
    /// `OUT` in `body` stands for the output directory.
    fn command(&self, name: &str, body: &str) -> PathBuf {
        let p = self.cmds.path().join(name);
        let body = body.replace("OUT", &self.out.to_string_lossy());
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A service whose module line takes its secrets from `cmd` (no
    /// `secret=`), with `extra` arguments.
    fn service(&self, name: &str, cmd: &Path, extra: &str) -> String {
        self.fx.service(
            name,
            &[&format!(
                "auth required MODULE state_dir={} secret_command={} {extra}",
                self.fx.state_dir().display(),
                cmd.display()
            )],
        )
    }

    fn login(&self, service: &str, answer: &str) -> PamResult {
        self.fx
            .client(service, "root")
            .answer(answer)
            .syslog()
            .run()
    }

    fn read_out(&self, name: &str) -> String {
        fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("out/{name}: {e}"))
    }
}

fn plain_text() -> String {
    format!("version = 1\nsecret = \"{SECRET}\"\n")
}

/// A script that prints `text` exactly.
fn print_text(text: &str) -> String {
    format!("cat <<'EOF'\n{}EOF", text)
}

fn code() -> String {
    avoid_step_edge(30, 3);
    oathtool_totp(SECRET, "SHA1", 6, 30, 0)
}

fn log_has(r: &PamResult, parts: &[&str]) {
    let log = r.module_log();
    assert!(
        log.iter().any(|l| parts.iter().all(|p| l.contains(p))),
        "no module line with all of {parts:?}: {log:?}"
    );
}

fn denied_with(r: &PamResult, parts: &[&str]) {
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    log_has(r, parts);
}

#[test]
fn a_plain_secret_from_the_command_logs_in_and_a_replay_is_refused() {
    let w = World::new();
    let cmd = w.command("plain", &print_text(&plain_text()));
    let svc = w.service("plain", &cmd, &format!("secret_command_user={CMD_USER}"));
    let c = code();
    let r = w.login(&svc, &c);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.syslog.iter().all(|l| !l.contains(SECRET)), "{r:?}");
    let r = w.login(&svc, &c);
    denied_with(&r, &["result=replayed-code"]);
    // A wrong code is refused too.
    let wrong = format!("{:06}", (c.parse::<u32>().unwrap() + 1) % 1_000_000);
    denied_with(&w.login(&svc, &wrong), &["result=wrong-code"]);
}

#[test]
fn the_command_runs_as_its_user_with_its_argument_and_no_inherited_descriptor() {
    let w = World::new();
    let cmd = w.command(
        "whoami",
        &format!(
            "printf '%s\\n' \"$#:$1\" > OUT/args\n\
             id -u > OUT/uid\n\
             id -G > OUT/groups\n\
             env > OUT/env\n\
             pwd > OUT/pwd\n\
             for f in /proc/$$/fd/*; do readlink \"$f\"; done > OUT/fds\n\
             {}",
            print_text(&plain_text())
        ),
    );
    let svc = w.service("whoami", &cmd, &format!("secret_command_user={CMD_USER}"));
    let marker = w.fx.path().join("leaked-descriptor-marker");
    fs::write(&marker, "x").unwrap();
    // The client holds a supplementary group (setpriv) and a descriptor
    // without close-on-exec (--leak-fd): the command must get neither.
    let inner = w.fx.client(&svc, "root").answer(&code()).syslog();
    let mut wrapped = std::process::Command::new("setpriv");
    wrapped
        .args(["--groups", "4242", "--"])
        .arg(inner.cmd.get_program())
        .args(inner.cmd.get_args())
        .arg("--leak-fd")
        .arg(&marker);
    let r = ClientRun { cmd: wrapped }.run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(w.read_out("args"), "1:root\n");
    assert_eq!(w.read_out("uid").trim(), w.user.uid.to_string());
    // Only its own gid: root's groups and its supplementary group dropped.
    assert_eq!(w.read_out("groups").trim(), w.user.gid.to_string());
    let mut env: Vec<String> = w
        .read_out("env")
        .lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .map(str::to_owned)
        .collect();
    env.sort();
    assert_eq!(env, ["LANG=C", "PATH=/usr/bin:/bin"]);
    assert_eq!(w.read_out("pwd").trim(), "/");
    let fds = w.read_out("fds");
    assert!(fds.lines().count() >= 3, "{fds}");
    assert!(
        !fds.contains("leaked-descriptor-marker"),
        "the command inherited the client's descriptor: {fds}"
    );
}

#[test]
fn a_sealed_secret_from_the_command_opens_with_the_host_key() {
    let w = World::new();
    let host_key = w.fx.path().join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(seal::public_path(&host_key), key.public().to_text()).unwrap();
    let sealed = seal::seal(&key.public(), "root", &decode_base32(SECRET).unwrap()).unwrap();
    let cmd = w.command(
        "sealed",
        &print_text(&format!("version = 1\nsealed_secret = \"{sealed}\"\n")),
    );
    // The fixture's config.toml names host.key as the host key.
    let svc = w.service("sealed", &cmd, &format!("secret_command_user={CMD_USER}"));
    let r = w.login(&svc, &code());
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // Another host's key does not open it.
    let other = HostSecretKey::generate().unwrap();
    fs::write(&host_key, other.to_text().as_bytes()).unwrap();
    fs::write(seal::public_path(&host_key), other.public().to_text()).unwrap();
    denied_with(&w.login(&svc, &code()), &["result=file-problem"]);
}

#[test]
fn nothing_printed_is_not_enrolled() {
    let w = World::new();
    let cmd = w.command("nothing", "exit 0");
    let svc = w.service(
        "nothing-nullok",
        &cmd,
        &format!("secret_command_user={CMD_USER} nullok"),
    );
    // PAM_IGNORE: alone in the stack libpam makes it PAM_PERM_DENIED;
    // behind pam_permit the stack succeeds.
    let r = w.login(&svc, "123456");
    assert_eq!(r.result, "PAM_PERM_DENIED", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    log_has(&r, &["result=skipped", "not-enrolled,nullok"]);
    let stacked = w.fx.service(
        "nothing-stacked",
        &[
            "auth required pam_permit.so",
            &format!(
                "auth required MODULE state_dir={} secret_command={} secret_command_user={CMD_USER} nullok",
                w.fx.state_dir().display(),
                cmd.display()
            ),
        ],
    );
    let r = w.login(&stacked, "123456");
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");

    let svc = w.service("nothing", &cmd, &format!("secret_command_user={CMD_USER}"));
    let r = w.login(&svc, "123456");
    assert_eq!(r.prompts.len(), 1, "prompted like anyone: {r:?}");
    denied_with(&r, &["result=not-enrolled"]);
}

#[test]
fn a_failing_command_denies_naming_its_exit_status_and_first_stderr_line() {
    let w = World::new();
    let cmd = w.command(
        "fails",
        &format!(
            "echo ldap-server-unreachable >&2\necho second-line >&2\n{}\nexit 1",
            print_text(&plain_text())
        ),
    );
    for nullok in ["", "nullok"] {
        let svc = w.service(
            "fails",
            &cmd,
            &format!("secret_command_user={CMD_USER} {nullok}"),
        );
        let r = w.login(&svc, &code());
        denied_with(
            &r,
            &[
                "result=file-problem",
                "exit status 1",
                "stderr: ldap-server-unreachable",
            ],
        );
        assert!(r.syslog.iter().all(|l| !l.contains("second-line")), "{r:?}");
        // Never the output.
        assert!(r.syslog.iter().all(|l| !l.contains(SECRET)), "{r:?}");
    }
    // Killed by a signal.
    let cmd = w.command("signal", "kill -TERM $$");
    let svc = w.service("signal", &cmd, &format!("secret_command_user={CMD_USER}"));
    denied_with(
        &w.login(&svc, &code()),
        &["result=file-problem", "killed by signal 15"],
    );
}

#[test]
fn stderr_alone_does_not_deny() {
    let w = World::new();
    let cmd = w.command(
        "chatty",
        &format!("echo just-a-note >&2\n{}", print_text(&plain_text())),
    );
    let svc = w.service("chatty", &cmd, &format!("secret_command_user={CMD_USER}"));
    let r = w.login(&svc, &code());
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn a_hanging_command_and_its_process_group_are_killed_at_the_timeout() {
    let w = World::new();
    let cmd = w.command(
        "hangs",
        "sleep 1000 &\necho $! > OUT/bgpid\necho $$ > OUT/pid\nsleep 1000",
    );
    let svc = w.service(
        "hangs",
        &cmd,
        &format!("secret_command_user={CMD_USER} secret_command_timeout=500"),
    );
    let t0 = Instant::now();
    let r = w.login(&svc, &code());
    let took = t0.elapsed();
    denied_with(&r, &["result=file-problem", "timed out after 500 ms"]);
    // Generous: the point is that the login is not held for 1000 s.
    assert!(took < Duration::from_secs(30), "{took:?}");
    for f in ["pid", "bgpid"] {
        let pid = w.read_out(f).trim().to_owned();
        let t = Instant::now();
        loop {
            // Gone, or a zombie waiting for init to reap it: not running.
            let state = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_owned()));
            match state {
                None => break,
                Some(s) if s.starts_with('Z') => break,
                Some(s) => assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "{f} {pid} still running: {s}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn too_much_or_malformed_output_denies() {
    let w = World::new();
    let cmd = w.command("big", "head -c 1048576 /dev/zero | tr '\\0' a");
    let svc = w.service("big", &cmd, &format!("secret_command_user={CMD_USER}"));
    denied_with(
        &w.login(&svc, &code()),
        &["result=file-problem", "more than 65536 bytes"],
    );
    let cmd = w.command("garbage", "echo 'this is not a secret file'");
    let svc = w.service("garbage", &cmd, &format!("secret_command_user={CMD_USER}"));
    let r = w.login(&svc, &code());
    denied_with(&r, &["result=file-problem", "secret_command output"]);
    assert!(
        r.syslog.iter().all(|l| !l.contains("not a secret")),
        "{r:?}"
    );
}

#[test]
fn a_command_others_could_change_is_a_configuration_error() {
    let w = World::new();
    let good = print_text(&plain_text());
    let cmd = w.command("group-writable", &good);
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o775)).unwrap();
    let svc = w.service("gw", &cmd, &format!("secret_command_user={CMD_USER}"));
    let r = w.login(&svc, &code());
    denied_with(&r, &["result=config-error", "writable by group or others"]);
    assert!(r.prompts.is_empty(), "{r:?}");

    let open = w.cmds.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    let cmd = open.join("cmd");
    fs::write(&cmd, format!("#!/bin/sh\n{good}\n")).unwrap();
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o755)).unwrap();
    let svc = w.service("ww", &cmd, &format!("secret_command_user={CMD_USER}"));
    denied_with(
        &w.login(&svc, &code()),
        &["result=config-error", "open is writable by group or others"],
    );

    // Not root's.
    let cmd = w.command("not-roots", &good);
    std::os::unix::fs::chown(&cmd, Some(w.user.uid), None).unwrap();
    let svc = w.service("nr", &cmd, &format!("secret_command_user={CMD_USER}"));
    denied_with(
        &w.login(&svc, &code()),
        &["result=config-error", "not owned by root"],
    );

    // Under /tmp (world-writable, sticky).
    let tmp = tempfile::Builder::new()
        .prefix("pam-totp-cmd.")
        .tempdir()
        .unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = tmp.path().join("cmd");
    fs::write(&cmd, format!("#!/bin/sh\n{good}\n")).unwrap();
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o755)).unwrap();
    let svc = w.service("tmp", &cmd, &format!("secret_command_user={CMD_USER}"));
    denied_with(
        &w.login(&svc, &code()),
        &["result=config-error", "/tmp is writable by group or others"],
    );
}

#[test]
fn bad_settings_are_configuration_errors() {
    let w = World::new();
    let cmd = w.command("plain", &print_text(&plain_text()));
    for (name, extra, why) in [
        (
            "no-user",
            String::new(),
            "secret_command needs secret_command_user",
        ),
        (
            "with-secret",
            format!(
                "secret_command_user={CMD_USER} secret={}/secrets/${{USER}}",
                w.fx.path().display()
            ),
            "secret and secret_command exclude each other",
        ),
        (
            "timeout",
            format!("secret_command_user={CMD_USER} secret_command_timeout=0"),
            "secret_command_timeout",
        ),
        (
            "unknown-user",
            "secret_command_user=pamtotp-nosuchuser".to_owned(),
            "does not exist",
        ),
    ] {
        let svc = w.service(name, &cmd, &extra);
        let r = w.login(&svc, &code());
        assert_eq!(r.result, "PAM_AUTH_ERR", "{name}: {r:?}");
        assert!(r.prompts.is_empty(), "{name}: {r:?}");
        assert!(
            r.module_log().iter().any(|l| l.contains(why)),
            "{name}: {r:?}"
        );
    }
}

/// An account with uid 0 under another name is root: refused unless the
/// admin wrote `secret_command_user=root`. The alias exists only in a
/// private mount namespace (a copy of /etc/passwd bind-mounted over it).
#[test]
fn root_only_when_written_root() {
    let w = World::new();
    let etc = w.fx.path().join("etc");
    fs::create_dir(&etc).unwrap();
    let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
    passwd.push_str("pamtotp-toor:x:0:0::/root:/usr/sbin/nologin\n");
    fs::write(etc.join("passwd"), passwd).unwrap();
    fs::set_permissions(etc.join("passwd"), fs::Permissions::from_mode(0o644)).unwrap();
    let ns = MountNs::new(r#"mount --bind "$1/passwd" /etc/passwd"#, &[&etc]);
    let cmd = w.command(
        "as-root",
        &format!("id -u > OUT/root-uid\n{}", print_text(&plain_text())),
    );
    let alias = w.service("alias", &cmd, "secret_command_user=pamtotp-toor");
    let r = ns
        .enter(w.fx.client(&alias, "root").answer(&code()).syslog())
        .run();
    denied_with(
        &r,
        &[
            "result=config-error",
            "is root; only secret_command_user root",
        ],
    );
    assert!(!w.out.join("root-uid").exists());

    let root = w.service("root", &cmd, "secret_command_user=root");
    let r = ns
        .enter(w.fx.client(&root, "root").answer(&code()).syslog())
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(w.read_out("root-uid").trim(), "0");
}
