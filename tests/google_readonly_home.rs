//! A Google Authenticator file in a read-only home directory: a real user
//! (`pamtotp-*`, made with useradd) whose ~/.google_authenticator was
//! written by Google's tool running as that user; each login runs inside
//! `unshare -m` with the home bind-mounted read-only over itself, so the
//! machine's mounts are untouched.
//!
//! Issue 6, "Must work" 2: the file is never written, so a read-only (or
//! encrypted, not yet unlocked for writing) home works, where Google's own
//! module, which rewrites its file at every login, refuses.

mod common;
mod google_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use google_support::*;

/// `run` inside a private mount namespace in which `home` is read-only.
/// The wrapper checks that it is before the client starts (root cannot
/// write there either: EROFS), and fails otherwise.
fn read_only_home(run: ClientRun, home: &Path) -> ClientRun {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            r#"mount --bind -o ro "$1" "$1" || exit 1
if touch "$1/.pam-totp-rw-probe" 2>/dev/null; then
    echo "$1 is still writable" >&2; exit 1
fi
shift; exec "$@""#,
        )
        .arg("sh")
        .arg(home)
        .arg(run.cmd.get_program())
        .args(run.cmd.get_args());
    ClientRun { cmd: c }
}

#[test]
fn a_login_works_with_the_home_directory_read_only() {
    let user = ensure_user("pamtotp-ga-rohome", &[]);
    let file = user.home.join(".google_authenticator");
    let _ = fs::remove_file(&file);
    let text = google_authenticator(
        &file,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "3"],
        Some((user.uid, user.gid)),
    );
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), user.uid);
    let before = fingerprint(&file);
    let secret = secret_of(&text);
    let scratch = scratch_of(&text);

    let fx = Fixture::new();
    let ours = fx.service(
        "ga-ro",
        &[&format!(
            "auth required MODULE secret=${{HOME}}/.google_authenticator state_dir={} rate_limit=100/60",
            fx.state_dir().display()
        )],
    );
    let login = |svc: &str, code: &str| {
        read_only_home(fx.client(svc, &user.name).answer(code).syslog(), &user.home).run()
    };

    avoid_step_edge(30, 5);
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    let r = login(&ours, &code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("result=success method=totp"));
    // Replay protection and used scratch codes live in the state directory.
    let r = login(&ours, &code);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    let r = login(&ours, &scratch[1]);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.audit_results(), ["scratch-code-used"]);
    let r = login(&ours, &scratch[1]);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");

    // Google's module, on the same file in the same read-only home, must
    // rewrite the file (DISALLOW_REUSE, RATE_LIMIT) and so refuses a code
    // it would accept.
    let google = fx.service(
        "ga-ro-google",
        &[&format!("auth required {GOOGLE_MODULE} noskewadj")],
    );
    let next = oathtool_totp(&secret, "SHA1", 6, 30, 1);
    let r = login(&google, &next);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.prompts
            .iter()
            .any(|(_, p)| p.contains("Read-only file system")),
        "{r:?}"
    );

    assert_eq!(fingerprint(&file), before, "the file was touched");
    assert!(!user.home.join(".pam-totp-rw-probe").exists());
}
