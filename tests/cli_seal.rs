//! Sealed secrets made by the tool, opened by the module through the real
//! libpam: `pam-totp host-key init`, `enroll` sealing to host.pub (also for
//! a user who is not root), logins, and what must not open (another user's
//! file, an altered file, a missing host key), and `host-key rotate`
//! keeping every user able to log in.
//!
//! Every test has its own key pair (`--host-key` or config.toml's
//! `host_key` in a sandbox), so nothing here touches /etc/pam-totp. Codes
//! come from oathtool, with the secret the tool printed at enrollment.

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use cli_support::*;
use common::{
    avoid_step_edge, fingerprint, hold_as_a_host_key_command, locked_by_another, nobody_holds,
    oathtool_totp, Fixture, PamResult,
};
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostSecretKey;

/// A sandbox with a host key pair in keys/ and a config.toml naming it
/// (`host_key`) and, if given, a `secret` template; a PAM fixture whose
/// secrets/ directory holds system-wide secret files.
struct World {
    sb: Sandbox,
    fx: Fixture,
    key: PathBuf,
}

impl World {
    fn new(secret_template: Option<&str>) -> World {
        let w = World::without_key(secret_template);
        let r = run(&["host-key", "init", "--host-key", w.key_arg()], "");
        assert_eq!(r.code, 0, "{r:?}");
        w
    }

    /// As `new`, but keys/ is empty: no host key pair yet.
    fn without_key(secret_template: Option<&str>) -> World {
        let sb = Sandbox::new("");
        let keys = sb.join("keys");
        fs::create_dir(&keys).unwrap();
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o755)).unwrap();
        let key = keys.join("host.key");
        let mut config = format!("host_key = \"{}\"\n", key.display());
        if let Some(t) = secret_template {
            config.push_str(&format!("secret = \"{t}\"\n"));
        }
        sb.set_config(&config);
        World {
            sb,
            fx: Fixture::new(),
            key,
        }
    }

    fn key_arg(&self) -> &str {
        self.key.to_str().unwrap()
    }

    fn pub_path(&self) -> PathBuf {
        seal::public_path(&self.key)
    }

    fn key_id(&self) -> String {
        seal::load_public_key(&self.key).unwrap().id()
    }

    fn cfg(&self) -> String {
        self.sb.config()
    }

    /// fx/secrets/USER, the system-wide file of `user`.
    fn system_file(&self, user: &str) -> PathBuf {
        self.fx.path().join("secrets").join(user)
    }

    /// Root enrolls `user` into fx/secrets/USER; `extra` are more flags.
    /// Returns the secret the tool printed.
    fn enroll_system(&self, user: &str, extra: &[&str]) -> String {
        self.enroll_system_with(user, extra, "")
    }

    fn enroll_system_with(&self, user: &str, extra: &[&str], stdin: &str) -> String {
        let file = self.system_file(user);
        let cfg = self.cfg();
        let mut args = vec![
            "enroll",
            "--config",
            &cfg,
            "--user",
            user,
            "--secret-file",
            file.to_str().unwrap(),
            "--no-confirm",
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = run(&args, stdin);
        let v = r.json();
        assert_eq!(v["secret_file"], file.to_str().unwrap());
        v["secret"].as_str().unwrap().to_owned()
    }

    /// A service reading fx/secrets/${USER} with this host key.
    fn system_service(&self) -> String {
        self.fx
            .module_service("sealed-system", &format!("host_key={}", self.key_arg()))
    }

    /// A service that takes `secret` and `host_key` from the config file.
    fn config_service(&self) -> String {
        self.fx.service(
            "sealed-config",
            &[&format!(
                "auth required MODULE config={} state_dir={}",
                self.cfg(),
                self.fx.state_dir().display()
            )],
        )
    }

    /// `host-key rotate` with this world's config, the fixture's secrets/
    /// and its own (empty unless a test writes one) pam.d directory, so
    /// the machine's /etc/pam.d never decides; then `extra`.
    fn rotate_args(&self, extra: &[&str]) -> Vec<String> {
        let pam_dir = self.sb.join("pam.d");
        let _ = fs::create_dir(&pam_dir);
        let mut args: Vec<String> = [
            "host-key",
            "rotate",
            "--config",
            &self.cfg(),
            "--secret-dir",
            self.fx.path().join("secrets").to_str().unwrap(),
            "--pam-dir",
            pam_dir.to_str().unwrap(),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    }

    fn rotate(&self, extra: &[&str]) -> Run {
        let args = self.rotate_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, "")
    }

    /// One login of `user` through libpam with the current code of `secret`.
    fn login(&self, service: &str, user: &str, secret: &str) -> PamResult {
        avoid_step_edge(30, 3);
        let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
        self.fx.client(service, user).answer(&code).syslog().run()
    }
}

/// The file holds a sealed secret (to key `id`), not the secret.
fn assert_sealed(path: &Path, secret: &str, id: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.contains(&format!("sealed_secret = \"v1:{id}:")),
        "not sealed to {id}: {text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("secret ")), "{text}");
    assert!(!text.contains(secret), "the secret is in the file: {text}");
    assert!(text.contains("scratch_codes = [\"pbkdf2-sha256$"), "{text}");
}

fn assert_plain(path: &Path, secret: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(&format!("secret = \"{secret}\"")), "{text}");
    assert!(!text.contains("sealed_secret"), "{text}");
}

fn assert_success(r: &PamResult) {
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}

/// Denied, with a syslog line that says why.
fn assert_refused(r: &PamResult, reason: &str) {
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.module_log()
            .iter()
            .any(|l| l.contains("result=file-problem") && l.contains(reason)),
        "no file-problem line with {reason:?}: {:?}",
        r.module_log()
    );
}

// ---------------------------------------------------------------------------
// host-key init

#[test]
fn host_key_init_creates_the_pair_once() {
    let sb = Sandbox::new("");
    let key = sb.join("etc/host.key");
    let k = key.to_str().unwrap();
    // The directory is created (root's, 0755).
    let r = run(&["host-key", "init", "--host-key", k], "");
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    assert_eq!(owner_mode(&key), (0, 0o600));
    assert_eq!(owner_mode(&seal::public_path(&key)), (0, 0o644));
    assert_eq!(owner_mode(&sb.join("etc")), (0, 0o755));
    let keys = seal::load_secret_keys(&key).unwrap();
    let id = keys[0].public().id();
    assert_eq!(seal::load_public_key(&key).unwrap(), keys[0].public());
    assert!(r.stderr.contains(&id), "{r:?}");
    // And the pair's lock, which only root can open.
    assert_eq!(sb.listing("etc"), ["host.key", "host.key.lock", "host.pub"]);
    assert_eq!(owner_mode(&sb.join("etc/host.key.lock")), (0, 0o600));

    // Not again, unless told.
    let before = fingerprint(&key);
    run(&["host-key", "init", "--host-key", k], "").bad_input("exists; --force replaces");
    let r = run(&["host-key", "init", "--host-key", k, "--if-missing"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fingerprint(&key), before);

    // --if-missing writes a lost host.pub from host.key.
    fs::remove_file(seal::public_path(&key)).unwrap();
    let r = run(&["host-key", "init", "--host-key", k, "--if-missing"], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fingerprint(&key), before);
    assert_eq!(seal::load_public_key(&key).unwrap().id(), id);

    // A host.pub that is not host.key's is an error, not silently kept.
    let other = HostSecretKey::generate().unwrap();
    fs::write(seal::public_path(&key), other.public().to_text()).unwrap();
    let r = run(&["host-key", "init", "--host-key", k, "--if-missing"], "");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not match"), "{r:?}");

    // --force makes a new pair.
    let r = run(&["host-key", "init", "--host-key", k, "--force"], "");
    assert_eq!(r.code, 0, "{r:?}");
    let new = seal::load_secret_keys(&key).unwrap();
    assert_ne!(new[0].public().id(), id);
    assert_eq!(seal::load_public_key(&key).unwrap(), new[0].public());
    assert!(r.stderr.contains("no longer open"), "{r:?}");

    // A host.pub alone (its key lost) is not quietly replaced.
    fs::remove_file(&key).unwrap();
    run(&["host-key", "init", "--host-key", k, "--if-missing"], "").bad_input("exists without");
    assert!(!key.exists());
    assert_eq!(sb.listing("etc"), ["host.key.lock", "host.pub"]);
}

#[test]
fn host_key_init_refuses_unsafe_places_and_other_users() {
    let sb = Sandbox::new("");
    let open_dir = sb.join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let key = open_dir.join("host.key");
    run(
        &["host-key", "init", "--host-key", key.to_str().unwrap()],
        "",
    )
    .bad_input("only root can write to");
    assert_eq!(sb.listing("open"), Vec::<String>::new());
    fs::remove_dir(&open_dir).unwrap();

    let user = TestUser::get("seal-notroot");
    let key = sb.join("host.key");
    let k = key.to_str().unwrap();
    run_as(&user, &["host-key", "init", "--host-key", k], "")
        .bad_input("only root can create the host key");
    run_as(&user, &["host-key", "rotate", "--host-key", k], "")
        .bad_input("only root can rotate the host key");
    run(&["host-key", "rotate", "--host-key", k], "").bad_input("no host key to rotate");
    // Only the (empty) lock the refusal was decided under.
    assert_eq!(sb.listing(""), ["config.toml", "host.key.lock"]);
}

// ---------------------------------------------------------------------------
// enroll seals; the module opens

#[test]
fn enroll_seals_and_the_module_opens_it() {
    let w = World::new(None);
    let id = w.key_id();
    let secret = w.enroll_system("root", &[]);
    let file = w.system_file("root");
    assert_sealed(&file, &secret, &id);
    assert_eq!(owner_mode(&file), (0, 0o600));
    assert_success(&w.login(&w.system_service(), "root", &secret));

    // status shows the parameters, never the secret.
    let r = run(
        &[
            "status",
            "--config",
            &w.cfg(),
            "--user",
            "root",
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            w.fx.state_dir().to_str().unwrap(),
            "--json",
        ],
        "",
    );
    let v = r.json();
    assert_eq!((&v["enrolled"], &v["digits"]), (&true.into(), &6.into()));
    assert_eq!(v["scratch_codes_remaining"], 5);
    assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret));

    // enroll --secret seals too (here read from standard input).
    let given = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let shown = w.enroll_system_with("root", &["--secret", "-", "--force"], given);
    assert_eq!(shown, given);
    assert_sealed(&file, given, &id);
    // A new secret, the same user: start from a fresh state (no replay).
    fs::remove_file(w.fx.state_path("root")).unwrap();
    assert_success(&w.login(&w.system_service(), "root", given));
}

#[test]
fn without_host_pub_or_with_no_seal_the_secret_is_plain() {
    let w = World::new(None);
    let secret = w.enroll_system("root", &["--no-seal"]);
    assert_plain(&w.system_file("root"), &secret);
    assert_success(&w.login(&w.system_service(), "root", &secret));

    // No host.pub: plain, as before sealing existed.
    fs::remove_file(w.pub_path()).unwrap();
    let secret = w.enroll_system("root", &["--force"]);
    assert_plain(&w.system_file("root"), &secret);

    // host.pub without its private key: root is told, nothing is written.
    let before = fingerprint(&w.system_file("root"));
    fs::write(
        w.pub_path(),
        HostSecretKey::generate().unwrap().public().to_text(),
    )
    .unwrap();
    let file = w.system_file("root");
    let f = file.to_str().unwrap();
    let cfg = w.cfg();
    let base = [
        "enroll",
        "--config",
        &cfg,
        "--secret-file",
        f,
        "--no-confirm",
        "--force",
    ];
    run(&base, "").bad_input("does not match");
    fs::remove_file(&w.key).unwrap();
    run(&base, "").bad_input("does not exist, so the module could not open");
    assert_eq!(fingerprint(&file), before);
}

#[test]
fn a_sealed_file_copied_to_another_user_does_not_open() {
    let w = World::new(None);
    let a = TestUser::get("seal-owner");
    let b = TestUser::get("seal-thief");
    let secret = w.enroll_system(&a.name, &[]);
    fs::copy(w.system_file(&a.name), w.system_file(&b.name)).unwrap();
    fs::set_permissions(w.system_file(&b.name), fs::Permissions::from_mode(0o600)).unwrap();
    let svc = w.system_service();
    assert_refused(
        &w.login(&svc, &b.name, &secret),
        "sealed secret belongs to another user",
    );
    assert_success(&w.login(&svc, &a.name, &secret));
}

#[test]
fn an_altered_sealed_file_does_not_open() {
    let w = World::new(None);
    let secret = w.enroll_system("root", &[]);
    let path = w.system_file("root");
    let text = fs::read_to_string(&path).unwrap();
    // One hex digit in the middle of the sealed box.
    let start = text.find("sealed_secret = \"").unwrap() + 17;
    let end = start + text[start..].find('"').unwrap();
    let at = (start + end) / 2;
    let mut bytes = text.clone().into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    fs::write(&path, &bytes).unwrap();
    assert_refused(
        &w.login(&w.system_service(), "root", &secret),
        "altered or sealed for another key",
    );
    // The same file unaltered opens.
    fs::write(&path, text).unwrap();
    assert_success(&w.login(&w.system_service(), "root", &secret));
}

#[test]
fn a_missing_host_key_denies_with_a_reason() {
    let w = World::new(None);
    let secret = w.enroll_system("root", &[]);
    fs::remove_file(&w.key).unwrap();
    let r = w.login(&w.system_service(), "root", &secret);
    assert_refused(&r, &format!("host key {}: does not exist", w.key.display()));
    assert!(!r.all_log_text().contains(&secret));
}

// ---------------------------------------------------------------------------
// A user who is not root

#[test]
fn a_user_enrolls_sealed_without_privileges_and_root_opens_it_at_login() {
    let w = World::new(None);
    let user = TestUser::get("seal-self");
    let r = run_as(
        &user,
        &["enroll", "--config", &w.cfg(), "--no-confirm", "--json"],
        "",
    );
    let v = r.json();
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(r.stderr.contains("sealed to host key"), "{r:?}");
    // host.pub is all the user needed; the file is theirs, and sealed.
    assert_eq!(owner_mode(&w.pub_path()), (0, 0o644));
    assert_eq!(owner_mode(&user.secret_path()), (user.uid, 0o600));
    assert_sealed(&user.secret_path(), &secret, &w.key_id());

    // The user can see the parameters but nothing opens it for them.
    let r = run_as(
        &user,
        &[
            "status",
            "--config",
            &w.cfg(),
            "--state-dir",
            w.fx.state_dir().to_str().unwrap(),
            "--json",
        ],
        "",
    );
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((&s["enrolled"], &s["digits"]), (&true.into(), &6.into()));
    assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret));
    // host.key is root's: the user cannot read it.
    let r = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--init-groups",
            "cat",
            w.key_arg(),
        ])
        .output()
        .unwrap();
    assert!(!r.status.success());

    // The module, running as root (as in sshd, sudo, su), opens it.
    let r = w.login(&w.config_service(), &user.name, &secret);
    assert_success(&r);
    assert!(!r.all_log_text().contains(&secret));
}

// ---------------------------------------------------------------------------
// host-key rotate

/// Users with sealed and plain files, in homes (the config file's
/// template) and in the system-wide directory.
struct Population {
    w: World,
    /// (user, secret, file, sealed, in the system-wide directory)
    users: Vec<(String, String, PathBuf, bool, bool)>,
}

/// Each test its own file name in the homes, since `rotate` looks in every
/// account's home and tests run in parallel.
fn population(prefix: &str) -> Population {
    let home_file = format!(".pamtotp-{prefix}");
    let w = World::new(Some(&format!("~/{home_file}")));
    let cfg = w.cfg();
    let mut users = Vec::new();
    // In homes: one enrolls themself (sealed), root enrolls one sealed and
    // one plain.
    for (suffix, sealed, by_root) in [("a", true, false), ("b", true, true), ("c", false, true)] {
        let u = TestUser::get(&format!("{prefix}-{suffix}"));
        let file = u.home.join(&home_file);
        let _ = fs::remove_file(&file);
        let mut args = vec!["enroll", "--config", &cfg, "--no-confirm", "--json"];
        if !sealed {
            args.push("--no-seal");
        }
        let r = if by_root {
            args.extend(["--user", &u.name]);
            run(&args, "")
        } else {
            run_as(&u, &args, "")
        };
        let secret = r.json()["secret"].as_str().unwrap().to_owned();
        assert_eq!(owner_mode(&file), (u.uid, 0o600));
        users.push((u.name.clone(), secret, file, sealed, false));
    }
    // System-wide: one sealed, one plain.
    for (suffix, sealed) in [("d", true), ("e", false)] {
        let u = TestUser::get(&format!("{prefix}-{suffix}"));
        let extra: &[&str] = if sealed { &[] } else { &["--no-seal"] };
        let secret = w.enroll_system(&u.name, extra);
        users.push((u.name.clone(), secret, w.system_file(&u.name), sealed, true));
    }
    Population { w, users }
}

impl Population {
    fn rotate(&self) -> Run {
        self.rotate_with(&[])
    }

    fn rotate_with(&self, extra: &[&str]) -> Run {
        self.w.rotate(extra)
    }

    fn check(&self, id: &str) {
        for (_, secret, file, sealed, _) in &self.users {
            if *sealed {
                assert_sealed(file, secret, id);
            } else {
                assert_plain(file, secret);
            }
        }
    }

    fn everyone_logs_in(&self) {
        let home = self.w.config_service();
        let system = self.w.system_service();
        for (user, secret, _, _, in_system) in &self.users {
            let svc = if *in_system { &system } else { &home };
            let r = self.w.login(svc, user, secret);
            assert_success(&r);
        }
    }
}

#[test]
fn rotate_keeps_every_user_able_to_log_in() {
    let p = population("rot");
    let old_id = p.w.key_id();
    p.check(&old_id);
    let plain: Vec<_> = p
        .users
        .iter()
        .filter(|u| !u.3)
        .map(|u| (u.2.clone(), fingerprint(&u.2)))
        .collect();
    let owners: Vec<_> = p.users.iter().map(|u| owner_mode(&u.2)).collect();

    let r = p.rotate();
    assert_eq!(r.code, 0, "{r:?}");
    let new_id = p.w.key_id();
    assert_ne!(new_id, old_id);
    assert!(
        r.stderr
            .contains("3 re-sealed, 0 already sealed to the new key, 2 plain"),
        "{r:?}"
    );
    // It says what it could not look at.
    assert!(
        r.stderr.contains(
            "accounts NSS does not list (SSSD or LDAP without enumeration) were not checked"
        ),
        "{r:?}"
    );
    // Without --drop-old-key the old key stays (issue 11, item 10), beside
    // the new pair in place.
    assert!(r.stderr.contains("--drop-old-key"), "{r:?}");
    let keys = seal::load_secret_keys(&p.w.key).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].public().id(), old_id);
    assert_eq!(owner_mode(&p.w.key), (0, 0o600));
    assert_eq!(owner_mode(&seal::old_path(&p.w.key)), (0, 0o600));
    assert_eq!(owner_mode(&p.w.pub_path()), (0, 0o644));
    // Sealed files now to the new key, owners kept; plain files untouched.
    p.check(&new_id);
    let after: Vec<_> = p.users.iter().map(|u| owner_mode(&u.2)).collect();
    assert_eq!(after, owners);
    for (path, before) in &plain {
        assert_eq!(fingerprint(path), *before, "{}", path.display());
    }
    p.everyone_logs_in();

    // Again, with --drop-old-key: it finishes this rotation (no new key),
    // finds everything sealed to the new key, and removes the old one.
    let r = p.rotate_with(&["--drop-old-key"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("finishing the rotation"), "{r:?}");
    assert!(
        r.stderr
            .contains("0 re-sealed, 3 already sealed to the new key, 2 plain"),
        "{r:?}"
    );
    assert_eq!(p.w.key_id(), new_id);
    assert!(!seal::old_path(&p.w.key).exists());
    assert_eq!(seal::load_secret_keys(&p.w.key).unwrap().len(), 1);
    p.check(&new_id);
    for (path, before) in plain {
        assert_eq!(fingerprint(&path), before, "{}", path.display());
    }

    // A whole new rotation, dropping the old key at once.
    let r = p.rotate_with(&["--drop-old-key"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("3 re-sealed"), "{r:?}");
    assert_ne!(p.w.key_id(), new_id);
    assert!(!seal::old_path(&p.w.key).exists());
    p.check(&p.w.key_id());
}

#[test]
fn rotate_keeps_the_old_key_until_every_file_is_resealed() {
    let p = population("rotk");
    let old_id = p.w.key_id();
    // A file sealed to a key this host never had cannot be re-sealed.
    let stranger = HostSecretKey::generate().unwrap();
    let foreign = seal::seal(&stranger.public(), "nobody", b"12345678901234567890").unwrap();
    let bad = p.w.system_file("nobody");
    fs::write(
        &bad,
        format!("version = 1\nsealed_secret = \"{foreign}\"\n"),
    )
    .unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).unwrap();
    // Nor one whose sealed value was altered (to this host's key).
    let (user_d, _, file_d, _, _) = &p.users[3];
    let good_d = fs::read_to_string(file_d).unwrap();
    let corrupt = p.w.system_file("daemon");
    let start = good_d.find("sealed_secret = \"").unwrap() + 17;
    let end = start + good_d[start..].find('"').unwrap();
    let at = (start + end) / 2;
    let mut bytes = good_d.clone().into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    fs::write(&corrupt, &bytes).unwrap();
    fs::set_permissions(&corrupt, fs::Permissions::from_mode(0o600)).unwrap();
    assert_ne!(user_d, "daemon");

    // Even with --drop-old-key: both reported, the old key kept.
    let r = p.rotate_with(&["--drop-old-key"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("cannot re-seal {}", bad.display()))
            && r.stderr.contains("which this host does not have"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains(&format!("cannot re-seal {}", corrupt.display())),
        "{r:?}"
    );
    assert!(r.stderr.contains("3 re-sealed"), "{r:?}");
    assert!(r.stderr.contains("2 could not be re-sealed"), "{r:?}");
    // The old key stays, beside the new one; the module uses both.
    let keys = seal::load_secret_keys(&p.w.key).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].public().id(), old_id);
    let new_id = keys[0].public().id();
    p.check(&new_id);
    p.everyone_logs_in();

    // Once the files are gone, rotate finishes this rotation (no new key).
    fs::remove_file(&bad).unwrap();
    fs::remove_file(&corrupt).unwrap();
    let r = p.rotate_with(&["--drop-old-key"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("finishing the rotation"), "{r:?}");
    assert_eq!(p.w.key_id(), new_id);
    assert!(!seal::old_path(&p.w.key).exists());
}

#[test]
fn rotate_reseals_what_pam_d_names_and_says_what_it_could_not_read() {
    let p = population("rotp");
    // A service whose pam_totp.so line names its own directory of secrets
    // (not the config file's template, not --secret-dir).
    let dir = p.w.sb.join("by-pam-d");
    fs::create_dir(&dir).unwrap();
    let pam_dir = p.w.sb.join("pam.d");
    fs::create_dir_all(&pam_dir).unwrap();
    fs::write(
        pam_dir.join("svc"),
        format!(
            "auth [success=1 default=ignore] pam_totp.so secret={}/${{USER}} host_key={}\n",
            dir.display(),
            p.w.key_arg()
        ),
    )
    .unwrap();
    // One it cannot read.
    std::os::unix::fs::symlink("/nonexistent-pam-totp/other", pam_dir.join("broken")).unwrap();
    let (user, _, _, _, _) = &p.users[0];
    let file = dir.join(user);
    let cfg = p.w.cfg();
    let secret = run(
        &[
            "enroll",
            "--config",
            &cfg,
            "--user",
            user,
            "--secret-file",
            file.to_str().unwrap(),
            "--no-confirm",
            "--json",
        ],
        "",
    )
    .json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_id = p.w.key_id();
    assert_sealed(&file, &secret, &old_id);

    let r = p.rotate();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("4 re-sealed"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("re-sealed {} ({user})", file.display())),
        "{r:?}"
    );
    assert_sealed(&file, &secret, &p.w.key_id());
    assert!(
        r.stderr
            .contains(&format!("cannot read {}", pam_dir.join("broken").display()))
            && r.stderr.contains("1 pam.d file(s) that could not be read"),
        "{r:?}"
    );
    assert!(seal::old_path(&p.w.key).exists());
}

#[test]
fn rotate_runs_no_getent_found_on_path() {
    let p = population("rotg");
    // A getent first on PATH that would record being run.
    let bin_dir = p.w.sb.join("bin");
    fs::create_dir(&bin_dir).unwrap();
    let marker = p.w.sb.join("getent-ran");
    let fake = bin_dir.join("getent");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(bin())
        .args(p.w.rotate_args(&[]))
        .env(
            "PATH",
            format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir.display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!marker.exists(), "getent was run: {stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The files in homes were found all the same (getpwent).
    assert!(stderr.contains("3 re-sealed"), "{stderr}");
    p.check(&p.w.key_id());
}

/// While a `host-key` command holds the key's directory, an enrollment
/// that seals (a new file, or a key added to one) writes nothing and says
/// so: a rotation at work would not reseal a file written meanwhile.
#[test]
fn enroll_and_add_key_wait_for_a_host_key_command_at_work() {
    let w = World::new(None);
    let file = w.system_file("root");
    let (cfg, path) = (w.cfg(), file.to_str().unwrap().to_owned());
    let enroll = |extra: &[&str]| {
        let mut args = vec![
            "enroll",
            "--config",
            &cfg,
            "--user",
            "root",
            "--secret-file",
            &path,
            "--no-confirm",
        ];
        args.extend_from_slice(extra);
        run(&args, "")
    };
    let hold = || hold_as_a_host_key_command(&w.key);
    let refused = |r: &Run| {
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains("another `pam-totp host-key` command is changing the host key")
                && r.stderr.lines().count() == 1,
            "{r:?}"
        );
    };

    let held = hold();
    refused(&enroll(&[]));
    assert!(!file.exists());
    drop(held);
    let r = enroll(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    let before = fs::read_to_string(&file).unwrap();

    let held = hold();
    refused(&enroll(&["--add", "phone"]));
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    drop(held);
    let r = enroll(&["--add", "phone"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(fs::read_to_string(&file).unwrap().contains("phone"));
}

/// Another user cannot keep root from sealing: a lock that user takes
/// on the key's directory (which anyone may open) does not stop root's
/// enrollment (the module's enrollment at login seals the same way), and
/// the key's lock file, which root holds to seal, is root's, 0600, so
/// that user cannot open it to lock it. When the directory was the only
/// lock, such a user kept every enrollment that seals, at login too, from
/// saving. The directory still keeps `host-key` commands from working
/// (other users seal under it), and they say so.
#[test]
fn another_user_cannot_keep_root_from_sealing() {
    let w = World::new(None);
    let dir = w.key.parent().unwrap().to_owned();
    let lock = pam_totp::secret::store::lock_path(&w.key);
    assert_eq!(owner_mode(&lock), (0, 0o600), "made by host-key init");
    let holder = nobody_holds(&dir);
    assert!(locked_by_another(&dir), "nobody does not hold it");
    // nobody holds the key's directory, and cannot even open the lock file.
    let r = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["flock", "-n", "-s"])
        .arg(&lock)
        .arg("true")
        .output()
        .unwrap();
    assert!(!r.status.success(), "nobody locked {lock:?}: {r:?}");

    w.enroll_system("root", &[]);
    assert!(fs::read_to_string(w.system_file("root"))
        .unwrap()
        .contains("sealed_secret"));
    // A host-key command (one that changes nothing here) waits, and says so.
    let init = || {
        run(
            &[
                "host-key",
                "init",
                "--host-key",
                w.key_arg(),
                "--if-missing",
            ],
            "",
        )
    };
    let r = init();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("is locked by another process") && r.stderr.lines().count() == 1,
        "{r:?}"
    );
    // It names the process, so root need not search /proc/locks for it.
    let named = format!("held by pid {} (flock, uid 65534)", holder.pid());
    assert!(r.stderr.contains(&named), "{named}: {r:?}");

    drop(holder);
    let r = init();
    assert_eq!(r.code, 0, "{r:?}");
}

/// Rewrites of a file as it is (new scratch codes, a key removed) wait for
/// a `host-key` command at work only when the file holds a sealed secret,
/// the one kind a rotation reseals.
#[test]
fn rewrites_of_a_sealed_file_wait_for_a_host_key_command_at_work() {
    let w = World::new(None);
    let sealed = w.system_file("root");
    let plain = w.fx.path().join("secrets").join("root-plain");
    let cfg = w.cfg();
    let tool = |args: &[&str], file: &Path| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--config", &cfg, "--user", "root"]);
        all.extend_from_slice(&["--secret-file", file.to_str().unwrap()]);
        run(&all, "")
    };
    for (file, extra) in [(&sealed, None), (&plain, Some("--no-seal"))] {
        let mut args = vec!["enroll", "--no-confirm"];
        args.extend(extra);
        assert_eq!(tool(&args, file).code, 0);
        let mut args = vec!["enroll", "--add", "phone", "--no-confirm"];
        args.extend(extra);
        let r = tool(&args, file);
        assert_eq!(r.code, 0, "{r:?}");
    }
    assert!(fs::read_to_string(&sealed)
        .unwrap()
        .contains("sealed_secret"));
    assert!(!fs::read_to_string(&plain)
        .unwrap()
        .contains("sealed_secret"));

    let held = hold_as_a_host_key_command(&w.key);
    let before = fs::read_to_string(&sealed).unwrap();
    for args in [
        &["scratch-codes", "--regenerate"][..],
        &["remove-key", "phone"],
    ] {
        let r = tool(args, &sealed);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr
                .contains("another `pam-totp host-key` command is changing the host key"),
            "{r:?}"
        );
        assert_eq!(fs::read_to_string(&sealed).unwrap(), before, "{args:?}");
        let r = tool(args, &plain);
        assert_eq!(r.code, 0, "plain file, {args:?}: {r:?}");
    }
    drop(held);
    for args in [
        &["scratch-codes", "--regenerate"][..],
        &["remove-key", "phone"],
    ] {
        let r = tool(args, &sealed);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
    }
}

#[test]
fn two_rotations_at_once_do_not_interleave() {
    let p = population("rotc");
    for round in 0..4 {
        let args = p.w.rotate_args(&["--drop-old-key"]);
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(bin())
                    .args(&args)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut done = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => done += 1,
                // The only other outcome: refused, nothing done.
                Some(1) => assert!(
                    stderr.contains("another `pam-totp host-key` command is changing")
                        && stderr.lines().count() == 1,
                    "round {round}: {stderr}"
                ),
                other => panic!("round {round}: {other:?}: {stderr}"),
            }
        }
        assert!(done >= 1, "round {round}");
        // One consistent pair, no old key, every sealed file to it.
        let keys = seal::load_secret_keys(&p.w.key).unwrap();
        assert_eq!(keys.len(), 1, "round {round}");
        assert_eq!(seal::load_public_key(&p.w.key).unwrap(), keys[0].public());
        p.check(&keys[0].public().id());
    }
    p.everyone_logs_in();
}

#[test]
fn rotate_finishes_what_an_interrupted_rotation_left() {
    // A secret file name no account has in its home: rotate looks there.
    let w = World::new(Some("~/.pamtotp-interrupted"));
    let secret = w.enroll_system("root", &[]);
    let old = seal::load_secret_keys(&w.key).unwrap().swap_remove(0);
    // Interrupted after the new host.key was written, before host.pub.
    fs::copy(&w.key, seal::old_path(&w.key)).unwrap();
    let new = HostSecretKey::generate().unwrap();
    fs::write(&w.key, new.to_text().as_bytes()).unwrap();
    assert_eq!(seal::load_public_key(&w.key).unwrap(), old.public());
    // Logins work meanwhile.
    assert_success(&w.login(&w.system_service(), "root", &secret));

    let r = w.rotate(&["--drop-old-key"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(w.key_id(), new.public().id());
    assert_sealed(&w.system_file("root"), &secret, &new.public().id());
    assert!(!seal::old_path(&w.key).exists());
    // The next step's code: this step's was used above.
    avoid_step_edge(30, 3);
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 1);
    let r = w.fx.client(&w.system_service(), "root").answer(&code).run();
    assert_success(&r);

    // Stopped right after host.key.old was written: a whole new rotation.
    fs::copy(&w.key, seal::old_path(&w.key)).unwrap();
    let before = w.key_id();
    let r = w.rotate(&["--drop-old-key"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("1 re-sealed"), "{r:?}");
    assert_ne!(w.key_id(), before);
    assert_sealed(&w.system_file("root"), &secret, &w.key_id());
    assert!(!seal::old_path(&w.key).exists());
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}

// ---------------------------------------------------------------------------
// host-key export | import: one key pair for a fleet

/// Writes `text` in the sandbox of `w` with `mode`; its path.
fn put_pair(w: &World, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = w.sb.join(name);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn import(w: &World, file: &str, extra: &[&str], stdin: &str) -> Run {
    let mut args = vec!["host-key", "import", "--host-key", w.key_arg(), file];
    args.extend_from_slice(extra);
    run(&args, stdin)
}

#[test]
fn a_secret_sealed_on_one_host_opens_on_another_that_imported_the_key() {
    let a = World::new(None);
    let secret = a.enroll_system("root", &[]);
    let sealed = fs::read_to_string(a.system_file("root")).unwrap();
    assert_sealed(&a.system_file("root"), &secret, &a.key_id());

    let r = run(&["host-key", "export", "--host-key", a.key_arg()], "");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("private"),
        "{r:?}"
    );
    let key_line = fs::read_to_string(&a.key).unwrap();
    let pub_line = fs::read_to_string(a.pub_path()).unwrap();
    assert!(r.stdout.starts_with("# "), "{r:?}");
    assert_eq!(
        r.stdout.lines().skip(1).collect::<Vec<_>>(),
        [key_line.trim_end(), pub_line.trim_end()]
    );

    // Host B: no key yet; it imports A's pair from a 0600 file.
    let b = World::without_key(None);
    let file = put_pair(&b, "pair", &r.stdout, 0o600);
    let i = import(&b, file.to_str().unwrap(), &[], "");
    assert_eq!(i.code, 0, "{i:?}");
    assert_eq!(fs::read_to_string(&b.key).unwrap(), key_line);
    assert_eq!(fs::read_to_string(b.pub_path()).unwrap(), pub_line);
    assert_eq!(owner_mode(&b.key), (0, 0o600));
    assert_eq!(owner_mode(&b.pub_path()), (0, 0o644));
    assert_eq!(b.key_id(), a.key_id());

    // The file sealed on A, carried to B (as a central store would), opens.
    fs::write(b.system_file("root"), &sealed).unwrap();
    fs::set_permissions(b.system_file("root"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_success(&b.login(&b.system_service(), "root", &secret));

    // The same pair again, from standard input: nothing changes.
    let again = import(&b, "-", &[], &r.stdout);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("already"), "{again:?}");
    assert!(!seal::old_path(&b.key).exists());

    // Export is root's.
    let user = TestUser::get("seal-notroot");
    let denied = run_as(
        &user,
        &["host-key", "export", "--host-key", a.key_arg()],
        "",
    );
    assert_eq!(denied.code, 2, "{denied:?}");
    assert_eq!(denied.stdout, "");
}

#[test]
fn import_refuses_readable_symlinked_mismatched_and_replacing_files() {
    let a = World::new(None);
    let pair = run(&["host-key", "export", "--host-key", a.key_arg()], "").stdout;
    // Its `secret` template names no file, so the rotation below looks only
    // at the fixture's secrets/ (never at other tests' home directories).
    let b = World::without_key(Some("/nonexistent/pam-totp-test/${USER}"));

    let open = put_pair(&b, "open", &pair, 0o644);
    import(&b, open.to_str().unwrap(), &[], "").bad_input("0644");
    let group = put_pair(&b, "group", &pair, 0o640);
    import(&b, group.to_str().unwrap(), &[], "").bad_input("group or others");
    let target = put_pair(&b, "target", &pair, 0o600);
    let link = b.sb.join("link");
    symlink(&target, &link).unwrap();
    import(&b, link.to_str().unwrap(), &[], "").bad_input("symlink");
    let other = HostSecretKey::generate().unwrap();
    let mixed = format!(
        "{}{}",
        fs::read_to_string(&a.key).unwrap(),
        other.public().to_text()
    );
    let mixed = put_pair(&b, "mixed", &mixed, 0o600);
    import(&b, mixed.to_str().unwrap(), &[], "").bad_input("not the private key's");
    let garbage = put_pair(&b, "garbage", "hello\n", 0o600);
    import(&b, garbage.to_str().unwrap(), &[], "").bad_input("not a key pair");
    assert!(!b.key.exists() && !b.pub_path().exists());

    // B has a key of its own, and a secret sealed to it.
    let r = run(&["host-key", "init", "--host-key", b.key_arg()], "");
    assert_eq!(r.code, 0, "{r:?}");
    let own_id = b.key_id();
    let secret = b.enroll_system("root", &[]);
    import(&b, target.to_str().unwrap(), &[], "").bad_input("--force");
    assert_eq!(b.key_id(), own_id);

    // --force: A's pair installed, B's kept as host.key.old, so the file
    // sealed to it still opens.
    let forced = import(&b, target.to_str().unwrap(), &["--force"], "");
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(b.key_id(), a.key_id());
    let old = seal::old_path(&b.key);
    assert_eq!(owner_mode(&old), (0, 0o600));
    assert_success(&b.login(&b.system_service(), "root", &secret));
    // While host.key.old exists, another replacement waits for the rotation.
    let third = HostSecretKey::generate().unwrap();
    let third = format!("{}{}", third.to_text().as_str(), third.public().to_text());
    let third = put_pair(&b, "third", &third, 0o600);
    import(&b, third.to_str().unwrap(), &["--force"], "").bad_input("rotation");
    // rotate --drop-old-key re-seals to the imported key and drops the old.
    let rot = b.rotate(&["--drop-old-key"]);
    assert_eq!(rot.code, 0, "{rot:?}");
    assert!(!old.exists());
    assert_eq!(b.key_id(), a.key_id());
    assert_sealed(&b.system_file("root"), &secret, &a.key_id());
}
