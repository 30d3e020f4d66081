//! One code, once, on the whole host: two services that read different
//! secret files for one account (sshd reading `~/.pam_totp`, sudo reading
//! a root-owned system-wide file) share one state directory, and a code
//! or scratch code spent through one stays spent whatever happens through
//! the other. Through the real libpam, codes from oathtool.
//!
//! Issue 11, "Must work" 1.

mod common;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

/// The key in the user's own `~/.pam_totp` (RFC 4226's test secret).
const HOME_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SCRATCH: &str = "24681357";

/// An account with both files: `~/.pam_totp` (its own key, owned by the
/// user) and `secrets/NAME` in the fixture (root's, [`SECRET`] and one
/// scratch code). Returns the fixture, the user name, and the services
/// "home" (reads `~/.pam_totp`) and "system" (reads `secrets/${USER}`),
/// both with the fixture's state directory.
fn two_files(name: &str) -> (Fixture, String, String, String) {
    let u = ensure_user(name, &[]);
    let fx = Fixture::new();
    let home_file = u.home.join(".pam_totp");
    let _ = fs::remove_file(&home_file);
    fs::write(
        &home_file,
        format!("version = 1\nsecret = \"{HOME_SECRET}\"\n"),
    )
    .unwrap();
    std::os::unix::fs::chown(&home_file, Some(u.uid), Some(u.gid)).unwrap();
    fs::set_permissions(&home_file, fs::Permissions::from_mode(0o600)).unwrap();
    fx.secret_file(
        &u.name,
        &format!(
            "version = 1\nsecret = \"{SECRET}\"\nscratch_codes = [\"{}\"]\n",
            scratch_hash(SCRATCH, 1)
        ),
    );
    let home = fx.service(
        "home",
        &[&format!(
            "auth required MODULE state_dir={} rate_limit=100/60",
            fx.state_dir().display()
        )],
    );
    let system = fx.module_service("system", "rate_limit=100/60");
    (fx, u.name, home, system)
}

#[test]
fn a_code_spent_through_one_secret_file_is_refused_after_attempts_through_another() {
    let (fx, user, home, system) = two_files("pamtotp-shared-a");
    avoid_step_edge(30, 8);
    let sys_code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let home_code = oathtool_totp(HOME_SECRET, "SHA1", 6, 30, 0);

    let r = fx.client(&system, &user).answer(&sys_code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // One wrong attempt through the service that reads the other file
    // (before the fix, this forgot the step just spent)...
    let r = fx.client(&home, &user).answer("000000x").syslog().run();
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    // ...and the spent code is still refused.
    let r = fx.client(&system, &user).answer(&sys_code).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");

    // A right code through the other file does not free it either, and
    // that code is then spent in turn, whatever the first file does.
    let r = fx.client(&home, &user).answer(&home_code).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = fx.client(&system, &user).answer(&sys_code).syslog().run();
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    let r = fx.client(&home, &user).answer(&home_code).syslog().run();
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");

    // Both keys' records are in the one state file of the account.
    let st = fx.state(&user).unwrap();
    assert_eq!(st["keys"].as_array().unwrap().len(), 2, "{st:?}");
}

#[test]
fn a_scratch_code_used_through_one_secret_file_stays_used() {
    let (fx, user, home, system) = two_files("pamtotp-shared-b");
    let r = fx.client(&system, &user).answer(SCRATCH).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // The other file has no such code: refused there, and (before the
    // fix) that attempt pruned the used code from the state.
    let r = fx.client(&home, &user).answer(SCRATCH).syslog().run();
    assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    let r = fx.client(&system, &user).answer(SCRATCH).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
}
