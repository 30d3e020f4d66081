//! The tool run by users who are not root (setpriv to a test account), and
//! root working in a user's home: who may do what, ownership, and that a
//! user's symlink never redirects root's writes.

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use cli_support::*;
use common::{avoid_step_edge, oathtool_totp, Fixture};

#[test]
fn a_user_enrolls_themself_and_logs_in_with_the_default_file() {
    let user = TestUser::get("u-self");
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let v = run_as(
        &user,
        &["enroll", "--config", &cfg, "--no-confirm", "--json"],
        "",
    )
    .json();
    assert_eq!(v["user"], user.name.as_str());
    assert_eq!(v["secret_file"], user.secret_path().to_str().unwrap());
    assert_eq!(owner_mode(&user.secret_path()), (user.uid, 0o600));

    // The module, with its default secret path, reads it as the user.
    let fx = Fixture::new();
    let svc = fx.service(
        "cli-home",
        &[&format!(
            "auth required MODULE config={cfg} state_dir={}",
            fx.state_dir().display()
        )],
    );
    avoid_step_edge(30, 3);
    let code = oathtool_totp(v["secret"].as_str().unwrap(), "SHA1", 6, 30, 0);
    let r = fx.client(&svc, &user.name).answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // status: the secret is theirs to read, the state directory is root's.
    let state = fx.state_dir();
    let r = run_as(
        &user,
        &[
            "status",
            "--config",
            &cfg,
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap(),
        serde_json::json!({
            "user": user.name, "enrolled": true,
            "secret_file": user.secret_path().to_str().unwrap(),
            "algorithm": "SHA1", "digits": 6, "period": 30,
            "scratch_codes_remaining": null, "failed_attempts": null, "locked": null,
            "keys": [{"name": "default", "algorithm": "SHA1", "digits": 6, "period": 30,
                      "sealed": false}]
        })
    );
    assert!(
        r.stderr.starts_with(&format!(
            "pam-totp: note: the state directory {} is root's",
            state.display()
        )) && r.stderr.contains("are unknown"),
        "{r:?}"
    );
    // Root sees it all.
    let s = run(
        &[
            "status",
            "--config",
            &cfg,
            "--user",
            &user.name,
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
        ],
        "",
    )
    .json();
    assert_eq!(
        (&s["failed_attempts"], &s["locked"]),
        (&0.into(), &false.into())
    );
    assert_eq!(s["scratch_codes_remaining"], 5);

    // The user regenerates their scratch codes; the file stays theirs.
    let r = run_as(
        &user,
        &["scratch-codes", "--config", &cfg, "--regenerate"],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(scratch_codes(&r.stdout).len(), 5);
    assert_eq!(owner_mode(&user.secret_path()), (user.uid, 0o600));

    // Refusing to replace works for users too.
    run_as(&user, &["enroll", "--config", &cfg, "--no-confirm"], "").bad_input("already enrolled");

    // The user disables themself: the file goes, root's state stays.
    let r = run_as(
        &user,
        &[
            "disable",
            "--config",
            &cfg,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("is root's and was left"), "{r:?}");
    assert!(!user.secret_path().exists());
    assert!(state.join(&user.name).exists());
}

#[test]
fn a_user_may_not_act_on_anyone_else_or_choose_paths() {
    let user = TestUser::get("u-limited");
    let other = TestUser::get("u-victim");
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let elsewhere = sb.join("x");
    let elsewhere = elsewhere.to_str().unwrap();
    for args in [
        &["enroll", "--no-confirm", "--user", &other.name][..],
        &["status", "--user", &other.name],
        &["scratch-codes", "--regenerate", "--user", &other.name],
        &["reset", "--user", &other.name],
        &["disable", "--user", &other.name],
        &["enroll", "--no-confirm", "--user", "root"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--config", &cfg]);
        run_as(&user, &a, "").bad_input(&format!(
            "only root may name another user (--user {:?})",
            args[args.len() - 1]
        ));
    }
    for sub in [&["enroll", "--no-confirm"][..], &["status"], &["disable"]] {
        let mut a = sub.to_vec();
        a.extend(["--config", &cfg, "--secret-file", elsewhere]);
        run_as(&user, &a, "").bad_input("only root may choose --secret-file");
    }
    run_as(&user, &["reset", "--config", &cfg], "").bad_input("only root can reset");
    // Naming themself is fine.
    let r = run_as(
        &user,
        &[
            "enroll",
            "--config",
            &cfg,
            "--no-confirm",
            "--user",
            &user.name,
            "--qr",
            "none",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!other.secret_path().exists());
    assert_eq!(sb.listing(""), ["config.toml"]);
}

#[test]
fn a_user_cannot_write_system_wide_secrets() {
    let user = TestUser::get("u-system");
    let sb = Sandbox::new("");
    fs::create_dir(sb.join("secrets")).unwrap();
    sb.set_config(&format!(
        "secret = \"{}/secrets/${{USER}}\"\n",
        sb.path().display()
    ));
    let cfg = sb.config();
    run_as(&user, &["enroll", "--config", &cfg, "--no-confirm"], "")
        .bad_input("is outside your home directory; only root can change it");
    // Root can, and the file is root's.
    let r = run(
        &[
            "enroll",
            "--config",
            &cfg,
            "--no-confirm",
            "--user",
            &user.name,
            "--json",
        ],
        "",
    );
    let path = sb.join("secrets").join(&user.name);
    assert_eq!(r.json()["secret_file"], path.to_str().unwrap());
    assert_eq!(owner_mode(&path), (0, 0o600));
    // The user cannot read it: status says so, exit 2.
    fs::set_permissions(sb.join("secrets"), fs::Permissions::from_mode(0o700)).unwrap();
    run_as(&user, &["status", "--config", &cfg], "")
        .bad_input("permission denied (only root can see this enrollment)");
}

#[test]
fn root_writes_in_a_home_as_its_owner() {
    let user = TestUser::get("u-home");
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let enroll = |extra: &[&str]| {
        let mut a = vec![
            "enroll",
            "--config",
            &cfg,
            "--no-confirm",
            "--user",
            &user.name,
        ];
        a.extend_from_slice(extra);
        run(&a, "")
    };
    let r = enroll(&["--json"]);
    assert_eq!(
        r.json()["secret_file"],
        user.secret_path().to_str().unwrap()
    );
    assert_eq!(owner_mode(&user.secret_path()), (user.uid, 0o600));
    fs::remove_file(user.secret_path()).unwrap();

    // A home the user cannot write to: root, acting as the user, cannot either.
    fs::set_permissions(&user.home, fs::Permissions::from_mode(0o550)).unwrap();
    enroll(&[]).bad_input(&format!(
        "cannot write {}: Permission denied",
        user.secret_path().display()
    ));
    fs::set_permissions(&user.home, fs::Permissions::from_mode(0o750)).unwrap();
    assert!(!user.secret_path().exists());
}

#[test]
fn a_users_symlink_never_redirects_root() {
    let user = TestUser::get("u-symlink");
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let victim = sb.join("victim");
    fs::write(&victim, "root's file\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    symlink(&victim, user.secret_path()).unwrap();
    std::os::unix::fs::lchown(user.secret_path(), Some(user.uid), Some(user.gid)).unwrap();

    let enroll = |extra: &[&str]| {
        let mut a = vec![
            "enroll",
            "--config",
            &cfg,
            "--no-confirm",
            "--user",
            &user.name,
        ];
        a.extend_from_slice(extra);
        run(&a, "")
    };
    enroll(&[]).bad_input("already enrolled");
    let r = enroll(&["--force"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
    assert_eq!(owner_mode(&victim), (0, 0o600));
    assert!(fs::symlink_metadata(user.secret_path()).unwrap().is_file());
    assert_eq!(owner_mode(&user.secret_path()), (user.uid, 0o600));

    // disable removes a symlink without following it.
    fs::remove_file(user.secret_path()).unwrap();
    symlink(&victim, user.secret_path()).unwrap();
    let state = sb.join("state");
    let r = run(
        &[
            "disable",
            "--config",
            &cfg,
            "--user",
            &user.name,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(fs::symlink_metadata(user.secret_path()).is_err());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
}

#[test]
fn status_of_a_sealed_secret_for_its_user_and_for_root() {
    use pam_totp::secret::seal;
    use pam_totp::secret::seal::HostSecretKey;
    let user = TestUser::get("u-sealed");
    let sb = Sandbox::new("");
    let host_key = sb.join("host.key");
    let key = HostSecretKey::generate().unwrap();
    fs::write(&host_key, key.to_text().as_bytes()).unwrap();
    fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600)).unwrap();
    sb.set_config(&format!("host_key = \"{}\"\n", host_key.display()));
    let cfg = sb.config();
    let sealed = seal::seal(&key.public(), &user.name, b"12345678901234567890").unwrap();
    fs::write(
        user.secret_path(),
        format!("version = 1\nsealed_secret = \"{sealed}\"\ndigits = 8\n"),
    )
    .unwrap();
    fs::set_permissions(user.secret_path(), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(user.secret_path(), Some(user.uid), Some(user.gid)).unwrap();
    let state = sb.join("state");
    let state = state.to_str().unwrap();

    // The user cannot open it, but it is theirs and enrolled: no problem.
    let r = run_as(
        &user,
        &["status", "--config", &cfg, "--state-dir", state, "--json"],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        (&v["enrolled"], &v["algorithm"], &v["digits"], &v["period"]),
        (&true.into(), &"SHA1".into(), &8.into(), &30.into())
    );
    // Root opens it with the host key, as the module does.
    let v = run(
        &[
            "status",
            "--config",
            &cfg,
            "--user",
            &user.name,
            "--state-dir",
            state,
            "--json",
        ],
        "",
    )
    .json();
    assert_eq!(
        (&v["enrolled"], &v["digits"], &v["failed_attempts"]),
        (&true.into(), &8.into(), &0.into())
    );
    // With another host's key, root reports that the module would deny.
    let other = HostSecretKey::generate().unwrap();
    fs::write(&host_key, other.to_text().as_bytes()).unwrap();
    let r = run(
        &[
            "status",
            "--config",
            &cfg,
            "--user",
            &user.name,
            "--state-dir",
            state,
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot open the sealed secret"), "{r:?}");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
