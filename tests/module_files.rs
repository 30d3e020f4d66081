//! Secret files through the real libpam: every unsafe or malformed file is
//! refused with PAM_AUTH_ERR and one syslog line naming the problem (never
//! PAM_SUCCESS, never a crash, with or without nullok), and files in a
//! user's home are read with that user's filesystem identity.
//!
//! Issue 2, "Must work" 5 (and 8: unreadable is never "not enrolled").

mod common;
mod ns_support;
use common::*;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// What a good file for `root` looks like.
fn good_body() -> String {
    format!("version = 1\nsecret = \"{SECRET}\"\n")
}

/// Logs in as root with the right code for SECRET, with and without
/// nullok; both must be refused with one file-problem line containing
/// `want`, after the usual prompt.
fn refused(fx: &Fixture, case: &str, want: &str) {
    for args in ["", "nullok"] {
        let svc = fx.module_service("files", &format!("{args} rate_limit=1000/60"));
        avoid_step_edge(30, 3);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        let r = fx.client(&svc, "root").answer(&code).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{case} [{args}]: {r:?}");
        assert_eq!(r.prompts.len(), 1, "{case} [{args}]: prompted as usual");
        let line = r.only_module_line();
        assert!(line.contains("result=file-problem"), "{case}: {line}");
        assert!(line.contains(want), "{case}: want {want:?} in {line}");
        assert!(line.contains("/secrets/root"), "{case}: names the file");
        assert!(!line.contains(SECRET), "{case}: secret logged: {line}");
        assert!(!line.contains(&code), "{case}: code logged: {line}");
    }
}

fn secret_path(fx: &Fixture) -> std::path::PathBuf {
    fx.path().join("secrets/root")
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_good_file_works() {
    // The control for every case below.
    let fx = Fixture::new();
    fx.secret_file("root", &good_body());
    let svc = fx.module_service("files", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

#[test]
fn a_symlink_is_refused() {
    let fx = Fixture::new();
    let target = fx.path().join("real-secret");
    fs::write(&target, good_body()).unwrap();
    chmod(&target, 0o600);
    symlink(&target, secret_path(&fx)).unwrap();
    refused(&fx, "symlink", "is a symbolic link");
}

#[test]
fn a_file_of_another_owner_is_refused() {
    let fx = Fixture::new();
    let p = fx.secret_file("root", &good_body());
    std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    refused(&fx, "wrong owner", "owned by uid 65534");
}

#[test]
fn group_or_world_access_is_refused() {
    for mode in [0o644, 0o620, 0o604, 0o640, 0o602, 0o610, 0o601, 0o666] {
        let fx = Fixture::new();
        let p = fx.secret_file("root", &good_body());
        chmod(&p, mode);
        refused(&fx, &format!("{mode:o}"), &format!("mode {mode:04o}"));
    }
}

#[test]
fn a_directory_or_fifo_is_refused() {
    let fx = Fixture::new();
    fs::create_dir(secret_path(&fx)).unwrap();
    chmod(&secret_path(&fx), 0o700);
    refused(&fx, "directory", "is not a regular file");

    // A FIFO must not hang the login either (the client run is bounded).
    let fx = Fixture::new();
    let gate = Gate::new(&secret_path(&fx));
    refused(&fx, "fifo", "is not a regular file");
    gate.release();
}

#[test]
fn an_empty_file_is_refused() {
    let fx = Fixture::new();
    fx.secret_file("root", "");
    refused(&fx, "empty", "is empty");
}

#[test]
fn a_zeroed_file_is_refused_never_not_enrolled() {
    // What a crash can leave of a file some filesystems had not yet
    // written back: its length, all NUL bytes. (Logins never write the
    // secret file; see module_state.rs.)
    let fx = Fixture::new();
    let p = secret_path(&fx);
    fs::write(&p, vec![0u8; good_body().len()]).unwrap();
    chmod(&p, 0o600);
    refused(&fx, "zeroed", "malformed TOML");
}

#[test]
fn binary_garbage_is_refused() {
    let fx = Fixture::new();
    let p = secret_path(&fx);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&p, garbage).unwrap();
    chmod(&p, 0o600);
    refused(&fx, "garbage", "not UTF-8");
}

#[test]
fn nul_bytes_are_refused() {
    let fx = Fixture::new();
    let p = secret_path(&fx);
    fs::write(&p, format!("version = 1\nsecret = \"{SECRET}\0\0\0\"\n")).unwrap();
    chmod(&p, 0o600);
    refused(&fx, "NUL in a string", "malformed TOML");
    fs::write(&p, format!("version = 1\0\nsecret = \"{SECRET}\"\n")).unwrap();
    refused(&fx, "NUL after a value", "malformed TOML");
}

#[test]
fn a_five_megabyte_file_is_refused() {
    let fx = Fixture::new();
    let mut body = good_body();
    body.push_str(&"# padding padding padding padding\n".repeat(5 * 1024 * 1024 / 34));
    assert!(body.len() >= 5 * 1000 * 1000);
    fx.secret_file("root", &body);
    refused(&fx, "5 MB", "over the 65536-byte limit");
}

#[test]
fn malformed_contents_are_refused() {
    let cases: &[(&str, String, &str)] = &[
        (
            "invalid base32",
            "version = 1\nsecret = \"JBSWY3DP!!!!0189\"\n".into(),
            "secret is not valid base32",
        ),
        (
            "digits 12",
            format!("version = 1\nsecret = \"{SECRET}\"\ndigits = 12\n"),
            "digits 12 is out of range",
        ),
        (
            "period 0",
            format!("version = 1\nsecret = \"{SECRET}\"\nperiod = 0\n"),
            "period 0 is out of range",
        ),
        (
            "unknown algorithm",
            format!("version = 1\nsecret = \"{SECRET}\"\nalgorithm = \"MD5\"\n"),
            "unknown algorithm",
        ),
        (
            "truncated TOML",
            format!("version = 1\nsecret = \"{}", &SECRET[..10]),
            "malformed TOML",
        ),
        (
            "unknown key",
            format!("version = 1\nsecret = \"{SECRET}\"\ncolour = \"red\"\n"),
            "malformed TOML",
        ),
        (
            "future version",
            format!("version = 2\nsecret = \"{SECRET}\"\n"),
            "unsupported version 2",
        ),
        ("no secret", "version = 1\n".into(), "no secret"),
        (
            "short secret",
            "version = 1\nsecret = \"JBSWY3DP\"\n".into(),
            "secret is 5 bytes",
        ),
        (
            "bad scratch hash",
            format!("version = 1\nsecret = \"{SECRET}\"\nscratch_codes = [\"12345678\"]\n"),
            "scratch code is not of the form",
        ),
    ];
    for (case, body, want) in cases {
        let fx = Fixture::new();
        fx.secret_file("root", body);
        refused(&fx, case, want);
    }
}

#[test]
fn a_missing_file_without_nullok_is_prompted_then_refused() {
    let fx = Fixture::new();
    let svc = fx.module_service("files", "");
    let r = fx.client(&svc, "root").answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts.len(), 1, "{r:?}");
    assert_eq!(r.audit_results(), ["not-enrolled"]);
}

// --- Files in a user's home: read with the user's identity. ---

/// A service reading the default secret file, `~/.pam_totp`.
fn home_service(fx: &Fixture, args: &str) -> String {
    let line = format!(
        "auth required MODULE state_dir={} {args}",
        fx.state_dir().display()
    );
    fx.service("home", &[&line])
}

fn write_owned(p: &Path, body: &str, uid: u32, gid: u32, mode: u32) {
    let _ = fs::remove_file(p);
    fs::write(p, body).unwrap();
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    chmod(p, mode);
}

#[test]
fn a_users_own_file_in_their_home_works() {
    let u = ensure_user("pamtotp-home-ok", &[]);
    let fx = Fixture::new();
    let p = u.home.join(".pam_totp");
    write_owned(&p, &good_body(), u.uid, u.gid, 0o600);
    let svc = home_service(&fx, "debug");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &u.name).answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(
        r.module_log().iter().any(|l| l.contains("as the user")),
        "{r:?}"
    );
    // The identity was restored: root wrote the state (0600, root's dir).
    assert!(fx.state(&u.name).is_some());
}

#[test]
fn a_root_only_file_in_a_home_is_unreadable_never_not_enrolled() {
    // Root could read this file; the user cannot. Read with the user's
    // identity, it is unreadable, which is an error even with nullok.
    let u = ensure_user("pamtotp-home-root", &[]);
    let fx = Fixture::new();
    let p = u.home.join(".pam_totp");
    write_owned(&p, &good_body(), 0, 0, 0o600);
    for args in ["", "nullok"] {
        let svc = home_service(&fx, args);
        avoid_step_edge(30, 3);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        let r = fx.client(&svc, &u.name).answer(&code).syslog().run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "[{args}] {r:?}");
        assert_eq!(r.prompts.len(), 1, "[{args}] {r:?}");
        let line = r.only_module_line();
        assert!(line.contains("result=file-problem"), "{line}");
        assert!(line.contains("cannot be read"), "{line}");
        assert!(line.contains("Permission denied"), "{line}");
    }
    // Nor through a directory the user cannot enter.
    let dir = u.home.join(".locked");
    let _ = fs::create_dir(&dir);
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    chmod(&dir, 0o700);
    write_owned(&dir.join("totp"), &good_body(), u.uid, u.gid, 0o600);
    let line = format!(
        "auth required MODULE secret=${{HOME}}/.locked/totp state_dir={} nullok",
        fx.state_dir().display()
    );
    let svc = fx.service("locked", &[&line]);
    let r = fx.client(&svc, &u.name).answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.only_module_line().contains("cannot be read"), "{r:?}");
}

#[test]
fn a_symlink_in_a_home_is_refused() {
    let u = ensure_user("pamtotp-home-link", &[]);
    let fx = Fixture::new();
    let target = fx.path().join("elsewhere");
    write_owned(&target, &good_body(), u.uid, u.gid, 0o600);
    let p = u.home.join(".pam_totp");
    let _ = fs::remove_file(&p);
    symlink(&target, &p).unwrap();
    let svc = home_service(&fx, "nullok");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &u.name).answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.only_module_line().contains("is a symbolic link"), "{r:?}");
}

#[test]
fn another_users_file_in_a_home_is_refused() {
    let u = ensure_user("pamtotp-home-other", &[]);
    let other = ensure_user("pamtotp-home-ok", &[]);
    let fx = Fixture::new();
    let p = u.home.join(".pam_totp");
    // Mode 0644 so that the user can open it; the owner check refuses it.
    write_owned(&p, &good_body(), other.uid, other.gid, 0o644);
    let svc = home_service(&fx, "");
    let r = fx.client(&svc, &u.name).answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let line = r.only_module_line();
    assert!(
        line.contains(&format!("owned by uid {}", other.uid)),
        "{line}"
    );
}

// --- Issue 11, "Must work" 4: a missing home is not "not enrolled". ---

/// Logs `user` in through `svc` (nullok) and asserts the module denied,
/// after the usual prompt, with one file-problem line containing `want`.
fn denied_with_nullok(fx: &Fixture, svc: &str, user: &str, want: &str) {
    let r = fx.client(svc, user).answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{user}: {r:?}");
    assert_eq!(r.prompts.len(), 1, "{user}: prompted as usual: {r:?}");
    let line = r.only_module_line();
    assert!(line.contains("result=file-problem"), "{line}");
    assert!(line.contains(want), "want {want:?} in {line}");
    // Not even a stack that lets PAM_IGNORE through lets the user in.
    let module = fs::read_to_string(fx.path().join("pam.d").join(svc)).unwrap();
    let stacked = fx.service(
        "stacked",
        &[module.trim_end(), "auth required pam_permit.so"],
    );
    let r = fx.client(&stacked, user).answer("123456").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{user}: {r:?}");
}

#[test]
fn nullok_with_a_missing_home_denies() {
    let u = ensure_user("pamtotp-home-gone", &[]);
    fs::remove_dir_all(&u.home).unwrap();
    let fx = Fixture::new();
    let svc = home_service(&fx, "nullok");
    denied_with_nullok(&fx, &svc, &u.name, "does not exist");
    let r = fx.client(&svc, &u.name).answer("1").syslog().run();
    let home = u.home.to_string_lossy().into_owned();
    assert!(
        r.only_module_line().contains(&home),
        "names the home directory: {r:?}"
    );
}

#[test]
fn nullok_with_a_home_the_user_cannot_search_denies() {
    let u = ensure_user("pamtotp-home-shut", &[]);
    chmod(&u.home, 0o000);
    let fx = Fixture::new();
    let svc = home_service(&fx, "nullok");
    denied_with_nullok(&fx, &svc, &u.name, "Permission denied");
    chmod(&u.home, 0o700);
}

#[test]
fn nullok_with_a_path_through_a_regular_file_denies() {
    // ENOTDIR: secrets/root is a file where a directory should be.
    let fx = Fixture::new();
    fx.secret_file("root", &good_body());
    let line = format!(
        "auth required MODULE secret={}/secrets/${{USER}}/totp state_dir={} nullok",
        fx.path().display(),
        fx.state_dir().display()
    );
    let svc = fx.service("notdir", &[&line]);
    denied_with_nullok(&fx, &svc, "root", "is not a directory");
    // A system-wide directory that is not there is no better.
    let line = format!(
        "auth required MODULE secret={}/no-such-dir/${{USER}} state_dir={} nullok",
        fx.path().display(),
        fx.state_dir().display()
    );
    let svc = fx.service("nodir", &[&line]);
    denied_with_nullok(&fx, &svc, "root", "does not exist");
}

#[test]
fn nullok_with_a_home_but_no_file_is_ignored() {
    // The control: the home is there and searchable, the file is not.
    let u = ensure_user("pamtotp-home-none", &[]);
    let _ = fs::remove_file(u.home.join(".pam_totp"));
    let fx = Fixture::new();
    let svc = home_service(&fx, "nullok");
    let r = fx.client(&svc, &u.name).answer("123456").syslog().run();
    // PAM_IGNORE from the only module: libpam answers PAM_PERM_DENIED.
    assert_eq!(r.result, "PAM_PERM_DENIED", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    assert!(r.only_module_line().contains("result=skipped"), "{r:?}");
}

// --- Issue 11, "Must work" 9: a system-wide secret file is root's. ---

#[test]
fn a_system_wide_file_owned_by_the_user_is_refused() {
    let u = ensure_user("pamtotp-sys-owner", &[]);
    let fx = Fixture::new();
    let p = fx.enroll(&u.name, SECRET, "SHA1", 6, 30);
    std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
    chmod(&p, 0o600);
    let svc = fx.module_service("sys", "nullok rate_limit=1000/60");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &u.name).answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let line = r.only_module_line();
    assert!(line.contains("result=file-problem"), "{line}");
    assert!(
        line.contains(&format!("owned by uid {}, not by root", u.uid)),
        "{line}"
    );
    // The same file, root's: it works.
    std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
    let r = fx.client(&svc, &u.name).answer(&code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// Issue 11, "Must work" 9: setfsuid reports no failure. A process that
/// may not change its identity (here root without CAP_SETUID/CAP_SETGID)
/// would silently read the user's file with root's rights; the module
/// reads its identity back and refuses instead.
#[test]
fn a_file_is_not_read_when_the_users_identity_cannot_be_taken() {
    let u = ensure_user("pamtotp-home-nocap", &[]);
    let fx = Fixture::new();
    // Root's rights read this file; the user's do not.
    write_owned(&u.home.join(".pam_totp"), &good_body(), 0, 0, 0o600);
    let svc = home_service(&fx, "nullok");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let run = fx.client(&svc, &u.name).answer(&code).syslog();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--bounding-set=-setuid,-setgid", "--"])
        .arg(run.cmd.get_program())
        .args(run.cmd.get_args());
    let r = ClientRun { cmd }.run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let line = r.only_module_line();
    assert!(line.contains("result=file-problem"), "{line}");
    assert!(
        line.contains("could not take the filesystem identity"),
        "{line}"
    );
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
