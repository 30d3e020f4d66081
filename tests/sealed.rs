//! Sealed secrets through the real libpam: the module opens a secret sealed
//! to the host key, and refuses (with a syslog reason) a sealed value that
//! was altered, copied from another user, or whose host key is missing or
//! unsafe. Sealing here uses the library; the CLI's sealing is tested with
//! the CLI.

mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::*;
use pam_totp::core::otp::decode_base32;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostSecretKey;

struct Sealed {
    fx: Fixture,
    host_key: PathBuf,
    key: HostSecretKey,
}

fn setup() -> Sealed {
    let fx = Fixture::new();
    let host_key = fx.path().join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(seal::public_path(&host_key), key.public().to_text()).unwrap();
    Sealed { fx, host_key, key }
}

impl Sealed {
    fn sealed_file(&self, file_user: &str, sealed_for: &str) {
        let secret = decode_base32(SECRET).unwrap();
        let sealed = seal::seal(&self.key.public(), sealed_for, &secret).unwrap();
        self.fx.secret_file(
            file_user,
            &format!("version = 1\nsealed_secret = \"{sealed}\"\n"),
        );
    }

    fn service(&self) -> String {
        self.fx
            .module_service("sealed", &format!("host_key={}", self.host_key.display()))
    }

    fn login(&self, user: &str) -> PamResult {
        avoid_step_edge(30, 3);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        self.fx
            .client(&self.service(), user)
            .answer(&code)
            .syslog()
            .run()
    }
}

fn assert_refused(r: &PamResult, reason: &str) {
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let log = r.module_log();
    assert!(
        log.iter()
            .any(|l| l.contains("result=file-problem") && l.contains(reason)),
        "no file-problem line with {reason:?}: {log:?}"
    );
}

#[test]
fn sealed_secret_opens_for_its_user() {
    let s = setup();
    s.sealed_file("root", "root");
    let r = s.login("root");
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // The secret never reaches the log.
    assert!(r.syslog.iter().all(|l| !l.contains(SECRET)));
}

#[test]
fn sealed_for_another_user_does_not_open() {
    let s = setup();
    s.sealed_file("root", "alice");
    assert_refused(&s.login("root"), "belongs to another user");
}

#[test]
fn altered_sealed_secret_does_not_open() {
    let s = setup();
    s.sealed_file("root", "root");
    let path = s.fx.path().join("secrets/root");
    let text = fs::read_to_string(&path).unwrap();
    // Change one hex digit of the sealed box.
    let at = text.rfind('"').unwrap() - 5;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    fs::write(&path, bytes).unwrap();
    assert_refused(&s.login("root"), "altered");
}

#[test]
fn missing_host_key_denies_with_reason() {
    let s = setup();
    s.sealed_file("root", "root");
    fs::remove_file(&s.host_key).unwrap();
    assert_refused(&s.login("root"), "does not exist");
}

#[test]
fn unsafe_host_key_denies_with_reason() {
    let s = setup();
    s.sealed_file("root", "root");
    fs::set_permissions(&s.host_key, fs::Permissions::from_mode(0o644)).unwrap();
    assert_refused(&s.login("root"), "mode 0600");
}

#[test]
fn old_key_still_opens_during_rotation() {
    let s = setup();
    s.sealed_file("root", "root");
    // A rotation moves the key aside and writes a new one.
    fs::rename(&s.host_key, seal::old_path(&s.host_key)).unwrap();
    let new = HostSecretKey::generate().unwrap();
    fs::write(&s.host_key, new.to_text().as_bytes()).unwrap();
    fs::set_permissions(&s.host_key, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.login("root").result, "PAM_SUCCESS");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
