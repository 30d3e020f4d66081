//! Enrollment at login (`enroll_at_login`, issue 15 item 1) through the
//! real libpam: the test answers the conversation from what the module
//! showed. The QR code in the PAM_TEXT_INFO messages is decoded by a real
//! decoder (zbarimg), and the code typed is oathtool's for the decoded URI.

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cli_support::{modules_utf8, zbar_decode};
use common::*;
use pam_totp::secret::seal::{self, HostSecretKey};

const TEXT_INFO: i64 = 4;
const PROMPT_ECHO_ON: i64 = 2;

/// The QR code among the messages shown, decoded: the otpauth URI.
fn decoded_uri(shown: &[(i64, String)], work: &Path) -> String {
    let qr = shown
        .iter()
        .find(|(style, text)| *style == TEXT_INFO && text.contains('█'))
        .map(|(_, t)| t.as_str())
        .expect("a QR code among the messages");
    let lines: Vec<&str> = qr.lines().collect();
    zbar_decode(&modules_utf8(&lines), work)
}

/// The base32 secret of an otpauth URI.
fn uri_secret(uri: &str) -> String {
    let q = uri.split_once("?secret=").expect("secret in the URI").1;
    q.split('&').next().unwrap().to_owned()
}

/// The secret as the module showed it for typing by hand, spaces removed;
/// and whether it was in groups of four.
fn shown_secret(shown: &[(i64, String)]) -> String {
    let line = shown
        .iter()
        .find_map(|(_, t)| t.lines().find_map(|l| l.strip_prefix("Secret: ")))
        .expect("a Secret: line");
    let groups: Vec<&str> = line.split(' ').collect();
    let (last, full) = groups.split_last().unwrap();
    assert!(
        full.iter().all(|g| g.len() == 4) && last.len() <= 4,
        "{line}"
    );
    groups.concat()
}

fn at_login_service(fx: &Fixture, name: &str, secret: &str, extra: &str) -> String {
    fx.service(
        name,
        &[&format!(
            "auth required MODULE secret={secret} state_dir={} enroll_at_login {extra}",
            fx.state_dir().display()
        )],
    )
}

/// [`at_login_service`] with the secret files in the fixture's
/// root-owned secrets directory.
fn secrets_service(fx: &Fixture, name: &str, extra: &str) -> String {
    let secret = format!("{}/secrets/${{USER}}", fx.path().display());
    at_login_service(fx, name, &secret, extra)
}

/// The same after pam_permit: PAM_SUCCESS shows that the module returned
/// PAM_IGNORE (PAM_AUTH_ERR would deny).
fn after_permit(fx: &Fixture, name: &str, extra: &str) -> String {
    fx.service(
        name,
        &[
            "auth required pam_permit.so",
            &format!(
                "auth required MODULE secret={}/secrets/${{USER}} state_dir={} enroll_at_login {extra}",
                fx.path().display(),
                fx.state_dir().display()
            ),
        ],
    )
}

/// A user with no secret: a right code from the app saves the secret in
/// their home, as theirs, 0600, and logs in; the scratch codes are shown
/// once (only hashes kept); the code cannot be replayed, and the next login
/// asks for a code.
#[test]
fn enrolls_with_a_code_for_the_decoded_qr_code() {
    let user = ensure_user("pamtotp-eal-home", &[]);
    let file = user.home.join(".pam_totp");
    let _ = fs::remove_file(&file);
    let fx = Fixture::new();
    let svc = at_login_service(&fx, "eal", "~/.pam_totp", "");
    let work = fx.path().to_owned();
    avoid_step_edge(30, 8);
    let mut typed = String::new();
    let mut uri = String::new();
    let r = fx.client(&svc, &user.name).syslog().interactive(|shown| {
        uri = decoded_uri(shown, &work);
        assert_eq!(shown_secret(shown), uri_secret(&uri));
        typed = oathtool_totp(&uri_secret(&uri), "sha1", 6, 30, 0);
        typed.clone()
    });
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!(":{}@", user.name)), "{uri}");
    // The prompt echoes; every other message is PAM_TEXT_INFO.
    let prompts: Vec<_> = r.prompts.iter().filter(|(s, _)| *s != TEXT_INFO).collect();
    assert_eq!(prompts.len(), 1, "{r:?}");
    assert_eq!(prompts[0].0, PROMPT_ECHO_ON);

    let meta = fs::metadata(&file).expect("the secret file is saved");
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let text = fs::read_to_string(&file).unwrap();
    let saved: toml::Table = text.parse().unwrap();
    assert_eq!(saved["secret"].as_str(), Some(uri_secret(&uri).as_str()));
    // The scratch codes come after the code, shown once; the file has
    // their hashes only.
    let last = &r.prompts.last().unwrap().1;
    let codes: Vec<&str> = last
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(codes.len(), 5, "{last}");
    assert_eq!(saved["scratch_codes"].as_array().unwrap().len(), 5);
    for c in &codes {
        assert!(!text.contains(c));
    }
    // One audit line says so, and nothing logged holds the secret or code.
    assert_eq!(r.audit_results(), ["enrolled-at-login"], "{:?}", r.syslog);
    let log = r.all_log_text();
    assert!(
        !log.contains(&uri_secret(&uri)) && !log.contains(&typed),
        "{log}"
    );

    // The enrollment code was spent: replayed, it is refused, and the
    // login now asks for a code (no second enrollment).
    let again = fx.client(&svc, &user.name).answer(&typed).run();
    assert_eq!(again.result, "PAM_AUTH_ERR", "{again:?}");
    assert_eq!(again.prompts.len(), 1, "{again:?}");
    assert_eq!(again.prompts[0].1, "Verification code: ");
    assert_eq!(fs::read_to_string(&file).unwrap(), text, "not replaced");
    // A scratch code shown at enrollment logs in.
    let scratch = fx.client(&svc, &user.name).answer(codes[0]).run();
    assert_eq!(scratch.result, "PAM_SUCCESS", "{scratch:?}");
    let _ = fs::remove_file(&file);
}

/// A wrong code, or an empty one, saves nothing and denies (no nullok, no
/// deadline: the user may not pass without a code).
#[test]
fn a_wrong_or_empty_code_saves_nothing() {
    let fx = Fixture::new();
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-wrong", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let work = fx.path().to_owned();
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).syslog().interactive(|shown| {
        let secret = uri_secret(&decoded_uri(shown, &work));
        let right: u32 = oathtool_totp(&secret, "sha1", 6, 30, 0).parse().unwrap();
        format!("{:06}", (right + 500_000) % 1_000_000)
    });
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["enroll-wrong-code"], "{:?}", r.syslog);
    assert!(!file.exists());
    let r = fx.client(&svc, &user.name).answer("").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(!file.exists());
}

/// The root-owned path of a `secret=` template, sealed to the host key when
/// the host has one.
#[test]
fn saves_a_sealed_root_owned_file_when_the_host_has_a_key() {
    let fx = Fixture::new();
    let host_key = fx.path().join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(seal::public_path(&host_key), key.public().to_text()).unwrap();
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-seal", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let work = fx.path().to_owned();
    avoid_step_edge(30, 8);
    let mut secret = String::new();
    let r = fx.client(&svc, &user.name).interactive(|shown| {
        secret = uri_secret(&decoded_uri(shown, &work));
        oathtool_totp(&secret, "sha1", 6, 30, 0)
    });
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let meta = fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o600));
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("sealed_secret"), "{text}");
    assert!(!text.contains(&secret), "{text}");
    // The module opens it: the next step's code logs in.
    let next = oathtool_totp(&secret, "sha1", 6, 30, 1);
    let r = fx.client(&svc, &user.name).answer(&next).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// Only a missing file is enrolled: an unusable one keeps failing closed
/// and is never replaced.
#[test]
fn an_unusable_file_is_never_enrolled_over() {
    let fx = Fixture::new();
    let svc = secrets_service(&fx, "eal", "nullok");
    let user = ensure_user("pamtotp-eal-bad", &[]);
    let file = fx.secret_file(&user.name, "version = 1\nsecret = \"not base32!\"\n");
    let before = fingerprint(&file);
    let r = fx.client(&svc, &user.name).answer("123456").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts, [(1, "Verification code: ".to_owned())]);
    let after = fingerprint(&file);
    assert_eq!((before.bytes, before.ino), (after.bytes, after.ino));
}

/// With nullok (and no deadline) the user may pass without a code anyway,
/// so an empty answer skips the enrollment: PAM_IGNORE, nothing saved.
#[test]
fn nullok_lets_an_empty_answer_skip() {
    let fx = Fixture::new();
    let svc = after_permit(&fx, "eal", "nullok");
    let user = ensure_user("pamtotp-eal-skip", &[]);
    let r = fx.client(&svc, &user.name).answer("").syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(r.audit_results(), ["skipped"], "{:?}", r.syslog);
    assert!(r
        .all_log_text()
        .contains("reason=enrollment-skipped,nullok"));
    assert!(!fx.path().join("secrets").join(&user.name).exists());
}

/// enroll_at_login saves a file; secret_command= fetches one: together
/// they are a configuration error, and the login is denied.
#[test]
fn enroll_at_login_with_secret_command_is_a_configuration_error() {
    let fx = Fixture::new();
    let svc = fx.service(
        "eal",
        &["auth required MODULE enroll_at_login secret_command=/usr/bin/true secret_command_user=nobody"],
    );
    let user = ensure_user("pamtotp-eal-cfg", &[]);
    let r = fx.client(&svc, &user.name).answer("123456").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let log = r.all_log_text();
    assert!(
        log.contains("configuration error: bad value for enroll_at_login"),
        "{log}"
    );
}

/// A file that appears while the user types is never overwritten: the new
/// secret is created exclusively, and the login is denied.
#[test]
fn a_file_that_appeared_meanwhile_is_kept() {
    let fx = Fixture::new();
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-race", &[]);
    let work = fx.path().to_owned();
    let mut planted = None;
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).syslog().interactive(|shown| {
        let secret = uri_secret(&decoded_uri(shown, &work));
        planted = Some(fx.enroll(&user.name, SECRET, "SHA1", 6, 30));
        oathtool_totp(&secret, "sha1", 6, 30, 0)
    });
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["enroll-error"], "{:?}", r.syslog);
    let text = fs::read_to_string(planted.unwrap()).unwrap();
    assert!(text.contains(SECRET), "replaced: {text}");
}

/// A host key pair that does not match: nothing is shown or saved (a
/// secret must never be sealed to a key the module cannot open).
#[test]
fn a_mismatched_host_key_pair_enrolls_nothing() {
    let fx = Fixture::new();
    let host_key = fx.path().join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    let other = HostSecretKey::generate().unwrap();
    fs::write(seal::public_path(&host_key), other.public().to_text()).unwrap();
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-keys", &[]);
    let r = fx.client(&svc, &user.name).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(r.prompts.is_empty(), "{r:?}");
    assert_eq!(r.audit_results(), ["enroll-error"], "{:?}", r.syslog);
    assert!(!fx.path().join("secrets").join(&user.name).exists());
}

/// An enrollment at login is an `enrolled_at_login` event for the
/// `notify=` hook (issue 16), with neither the secret nor the code in it.
#[test]
fn an_enrollment_at_login_reaches_the_notify_hook() {
    let hook_user = ensure_user("pamtotp-eal-hook", &[]);
    let fx = Fixture::new();
    let out = fx.path().join("out");
    fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(hook_user.uid), Some(hook_user.gid)).unwrap();
    let hooks = trusted_command_dir("eal-hook.");
    let hook = hooks.path().join("record");
    fs::write(
        &hook,
        format!("#!/bin/sh\ncat >> {}/events\n", out.display()),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let svc = secrets_service(
        &fx,
        "ealn",
        &format!("notify={} notify_user={}", hook.display(), hook_user.name),
    );
    let work = fx.path().to_owned();
    avoid_step_edge(30, 8);
    let (mut secret, mut typed) = (String::new(), String::new());
    let r = fx.client(&svc, "root").interactive(|shown| {
        secret = uri_secret(&decoded_uri(shown, &work));
        typed = oathtool_totp(&secret, "sha1", 6, 30, 0);
        typed.clone()
    });
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = fs::read_to_string(out.join("events")).unwrap_or_default();
        if !text.is_empty() || std::time::Instant::now() > until {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["event"], "enrolled_at_login", "{text}");
    assert_eq!(events[0]["user"], "root", "{text}");
    assert_eq!(events[0]["service"], "ealn", "{text}");
    assert!(!text.contains(&secret) && !text.contains(&typed), "{text}");
}

/// A host key pair at `fx`'s `host.key`, as `pam-totp host-key init` makes it.
fn put_host_key(fx: &Fixture) -> HostSecretKey {
    let host_key = fx.path().join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(seal::public_path(&host_key), key.public().to_text()).unwrap();
    key
}

/// While a `pam-totp host-key` command holds the key (an exclusive flock
/// of its lock file), an enrollment that would seal saves nothing: a
/// rotation at work might never reseal a file written meanwhile. Once the
/// command is done, the next login enrolls.
#[test]
fn a_host_key_command_at_work_keeps_a_sealed_enrollment_from_saving() {
    let fx = Fixture::new();
    put_host_key(&fx);
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-busy", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let work = fx.path().to_owned();
    let held = hold_as_a_host_key_command(&fx.path().join("host.key"));
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).syslog().interactive(|shown| {
        oathtool_totp(&uri_secret(&decoded_uri(shown, &work)), "sha1", 6, 30, 0)
    });
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["enroll-error"], "{:?}", r.syslog);
    assert!(
        r.all_log_text()
            .contains("`pam-totp host-key` command is changing the host key"),
        "{:?}",
        r.syslog
    );
    assert!(!file.exists());

    drop(held);
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).interactive(|shown| {
        oathtool_totp(&uri_secret(&decoded_uri(shown, &work)), "sha1", 6, 30, 0)
    });
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(fs::read_to_string(&file).unwrap().contains("sealed_secret"));
}

/// Another user holding the key's directory (which any user may open and
/// lock) does not keep a login's enrollment from saving: the module, as
/// root, seals under the key's lock file, which only root can open. When
/// the directory was the lock, such a user made every enrollment at
/// login that seals fail.
#[test]
fn another_user_holding_the_key_directory_does_not_stop_an_enrollment() {
    let fx = Fixture::new();
    put_host_key(&fx);
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-dirlock", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let work = fx.path().to_owned();
    fs::set_permissions(fx.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let holder = nobody_holds(fx.path());
    assert!(locked_by_another(fx.path()), "nobody does not hold it");
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).interactive(|shown| {
        oathtool_totp(&uri_secret(&decoded_uri(shown, &work)), "sha1", 6, 30, 0)
    });
    drop(holder);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(fs::read_to_string(&file).unwrap().contains("sealed_secret"));
}

/// A host key replaced while the user reads the QR code (a rotation
/// between the start of the enrollment and its save): nothing is saved,
/// rather than a secret sealed to the key the rotation has just passed.
#[test]
fn a_host_key_replaced_during_the_enrollment_saves_nothing() {
    let fx = Fixture::new();
    put_host_key(&fx);
    let svc = secrets_service(&fx, "eal", "");
    let user = ensure_user("pamtotp-eal-rot", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let work = fx.path().to_owned();
    avoid_step_edge(30, 8);
    let r = fx.client(&svc, &user.name).syslog().interactive(|shown| {
        let code = oathtool_totp(&uri_secret(&decoded_uri(shown, &work)), "sha1", 6, 30, 0);
        put_host_key(&fx);
        code
    });
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["enroll-error"], "{:?}", r.syslog);
    assert!(
        r.all_log_text()
            .contains("changed while the secret was made"),
        "{:?}",
        r.syslog
    );
    assert!(!file.exists());
}
