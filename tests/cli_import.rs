//! `pam-totp import-google-authenticator`: files written by Google's own
//! tool, converted, then logins through the real libpam with oathtool
//! codes and the file's scratch codes; the original never changes; bad
//! input is one line and exit status 2, with nothing written.
//!
//! Issue 6, "Must work" 4.

mod cli_support;
mod common;
mod google_support;
mod ns_support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use cli_support::{owner_mode, run, run_as, Run, Sandbox, TestUser};
use common::{avoid_step_edge, fingerprint, oathtool_totp, Fixture, PamResult};
use google_support::{google_authenticator, put, scratch_of, secret_of, with_secret};

const IMPORT: &str = "import-google-authenticator";
const MODE: [&str; 10] = ["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5"];

/// A config file with the defaults, and a host key that does not exist (so
/// nothing is sealed, whatever /etc/pam-totp holds).
fn plain_config() -> Sandbox {
    let sb = Sandbox::new("");
    sb.set_config(&format!(
        "host_key = \"{}\"\n",
        sb.join("no-key/host.key").display()
    ));
    sb
}

/// `user`'s ~/.google_authenticator, written by Google's tool running as
/// the user; returns its text.
fn users_google_file(user: &TestUser, mode: &[&str]) -> String {
    let path = user.home.join(".google_authenticator");
    let _ = fs::remove_file(&path);
    google_authenticator(&path, mode, Some((user.uid, user.gid)))
}

/// A service reading ~/.pam_totp, as the module does by default.
fn home_service(fx: &Fixture) -> String {
    fx.service(
        "imported",
        &[&format!(
            "auth required MODULE secret=${{HOME}}/.pam_totp state_dir={} rate_limit=100/60",
            fx.state_dir().display()
        )],
    )
}

fn login(fx: &Fixture, svc: &str, user: &str, code: &str) -> PamResult {
    fx.client(svc, user).answer(code).syslog().run()
}

fn totp_login(fx: &Fixture, svc: &str, user: &str, secret: &str, period: u64) -> PamResult {
    avoid_step_edge(period, 3);
    let code = oathtool_totp(secret, "SHA1", 6, period, 0);
    login(fx, svc, user, &code)
}

#[test]
fn an_imported_file_logs_in_with_an_oathtool_code_and_its_scratch_codes() {
    let user = TestUser::get("imp-login");
    let text = users_google_file(&user, &MODE);
    let google = user.home.join(".google_authenticator");
    let before = fingerprint(&google);
    let (secret, scratch) = (secret_of(&text), scratch_of(&text));
    let sb = plain_config();

    let r = run(
        &[
            IMPORT,
            "--config",
            &sb.config(),
            "--user",
            &user.name,
            "--json",
        ],
        "",
    );
    let v = r.json();
    let dest = user.secret_path();
    assert_eq!(v["user"], user.name.as_str());
    assert_eq!(v["secret_file"], dest.to_str().unwrap());
    assert_eq!(v["secret"], secret.as_str());
    assert_eq!(v["imported_from"], google.to_str().unwrap());
    assert_eq!(v["scratch_codes"], serde_json::json!(scratch));
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("?secret={secret}&")), "{uri}");
    assert!(r.stderr.contains("is unchanged"), "{r:?}");

    // The native file: the user's, 0600, the secret, hashed scratch codes.
    assert_eq!(owner_mode(&dest), (user.uid, 0o600));
    let native = fs::read_to_string(&dest).unwrap();
    let t: toml::Table = native.parse().unwrap();
    assert_eq!(t["secret"].as_str(), Some(secret.as_str()));
    assert_eq!(t["period"].as_integer(), Some(30));
    let hashes = t["scratch_codes"].as_array().unwrap();
    assert_eq!(hashes.len(), 5);
    assert!(hashes
        .iter()
        .all(|h| h.as_str().unwrap().starts_with("pbkdf2-sha256$10000$")));
    for c in &scratch {
        assert!(
            !native.contains(c.as_str()),
            "plain scratch code in {native}"
        );
    }

    let fx = Fixture::new();
    let svc = home_service(&fx);
    let r = totp_login(&fx, &svc, &user.name, &secret, 30);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = login(&fx, &svc, &user.name, &scratch[2]);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("remaining=4"), "{r:?}");
    let r = login(&fx, &svc, &user.name, &scratch[2]);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");

    assert_eq!(fingerprint(&google), before, "the Google file was touched");
}

#[test]
fn a_user_imports_their_own_file_with_its_step_size_and_a_legacy_secret_when_allowed() {
    let user = TestUser::get("imp-self");
    let text = users_google_file(&user, &["-t", "-d", "-S", "60", "-w", "3", "-u", "-e", "2"]);
    // An 80-bit secret, as older versions of the tool wrote.
    let legacy = secret_of(&text)[..16].to_owned();
    let google = user.home.join(".google_authenticator");
    put(&google, &with_secret(&text, &legacy), 0o400);
    std::os::unix::fs::chown(&google, Some(user.uid), Some(user.gid)).unwrap();
    let before = fingerprint(&google);
    let sb = plain_config();

    // Under 128 bits (RFC 4226 R6): refused, nothing written, unless the
    // user says so.
    let r = run_as(&user, &[IMPORT, "--config", &sb.config(), "--json"], "");
    r.bad_input("is 80 bits; a new secret must have at least 128");
    assert!(r.stderr.contains("--allow-short-secret"), "{r:?}");
    assert!(!r.stderr.contains(&legacy), "{r:?}");
    assert!(!user.secret_path().exists(), "written anyway");

    let v = run_as(
        &user,
        &[
            IMPORT,
            "--config",
            &sb.config(),
            "--json",
            "--allow-short-secret",
        ],
        "",
    )
    .json();
    assert_eq!(v["secret"], legacy.as_str());
    assert!(v["otpauth_uri"].as_str().unwrap().ends_with("&period=60"));
    let dest = user.secret_path();
    assert_eq!(owner_mode(&dest), (user.uid, 0o600));
    let t: toml::Table = fs::read_to_string(&dest).unwrap().parse().unwrap();
    assert_eq!(t["period"].as_integer(), Some(60));

    let fx = Fixture::new();
    let svc = home_service(&fx);
    let r = totp_login(&fx, &svc, &user.name, &legacy, 60);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(fingerprint(&google), before, "the Google file was touched");

    // Only for themself, and only where their secret file goes.
    let cfg = sb.config();
    run_as(&user, &[IMPORT, "--config", &cfg, "--user", "root"], "")
        .bad_input("only root may name another user");
    run_as(
        &user,
        &[IMPORT, "--config", &cfg, "--secret-file", "/tmp/x"],
        "",
    )
    .bad_input("only root may choose --secret-file");
}

#[test]
fn an_enrollment_is_replaced_only_with_force() {
    let user = TestUser::get("imp-force");
    users_google_file(&user, &MODE);
    let sb = plain_config();
    let cfg = sb.config();
    let first = run(&[IMPORT, "--config", &cfg, "--user", &user.name], "");
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(
        first.stdout, "",
        "without --json, nothing on standard output"
    );
    let dest = user.secret_path();
    let imported = fingerprint(&dest);
    run(&[IMPORT, "--config", &cfg, "--user", &user.name], "").bad_input("already enrolled");
    assert_eq!(fingerprint(&dest), imported);
    let r = run(
        &[IMPORT, "--config", &cfg, "--user", &user.name, "--force"],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
}

/// Root imports `file` into `dest` with the sandbox's config; returns the run.
fn import_to(sb: &Sandbox, file: &Path, dest: &Path, extra: &[&str]) -> Run {
    let cfg = sb.config();
    let mut args = vec![
        IMPORT,
        "--config",
        &cfg,
        "--secret-file",
        dest.to_str().unwrap(),
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args, "")
}

#[test]
fn bad_input_is_one_line_exit_2_and_nothing_is_written() {
    let sb = plain_config();
    let src = sb.join("src");
    fs::create_dir(&src).unwrap();
    fs::create_dir(sb.join("out")).unwrap();
    let dest = sb.join("out/root");
    let made = |name: &str, mode: &[&str]| -> (PathBuf, String) {
        let p = src.join(name);
        let text = google_authenticator(&p, mode, None);
        (p, text)
    };

    let (hotp, _) = made("hotp", &["-c", "-w", "5", "-u", "-e", "2"]);
    let (totp, text) = made("totp", &MODE);
    let native = src.join("native");
    put(
        &native,
        "version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\n",
        0o600,
    );
    let unknown = src.join("unknown-option");
    put(&unknown, &format!("{text}\" FROB 1\n"), 0o400);
    let junk = src.join("junk");
    put(&junk, "hello\n", 0o600);
    let readable = src.join("group-readable");
    put(&readable, &text, 0o440);
    let link = src.join("link");
    symlink(&totp, &link).unwrap();
    let before: Vec<_> = [&hotp, &totp, &native, &unknown, &junk, &readable]
        .iter()
        .map(|p| fingerprint(p))
        .collect();

    let cases: [(&Path, &Path, &str); 9] = [
        (&hotp, &dest, "is counter-based (HOTP_COUNTER)"),
        (&native, &dest, "already in pam-totp's own format"),
        (&unknown, &dest, "unknown option FROB"),
        (&junk, &dest, "is not a Google Authenticator file"),
        (&src.join("missing"), &dest, "no such file"),
        (&readable, &dest, "mode 0440"),
        (&link, &dest, "is a symbolic link"),
        (&totp, &totp, "is the Google Authenticator file itself"),
        (&totp, &src.join("no-dir/root"), "cannot write"),
    ];
    for (file, to, want) in cases {
        import_to(&sb, file, to, &[]).bad_input(want);
    }
    // The HOTP refusal says what to do instead.
    import_to(&sb, &hotp, &dest, &[]).bad_input("point the module's secret= at it");
    run(
        &[
            IMPORT,
            "--user",
            "pamtotp-no-such-user",
            totp.to_str().unwrap(),
        ],
        "",
    )
    .bad_input("no such user");
    run(&[IMPORT, "--bogus"], "").bad_input("--bogus");

    assert!(sb.listing("out").is_empty(), "{:?}", sb.listing("out"));
    let after: Vec<_> = [&hotp, &totp, &native, &unknown, &junk, &readable]
        .iter()
        .map(|p| fingerprint(p))
        .collect();
    assert_eq!(before, after, "an input file was touched");
}

#[test]
fn a_scratch_code_used_while_read_in_place_stays_used_after_import() {
    // Step one of a migration: the module reads the Google file in place.
    let fx = Fixture::new();
    let google = fx.path().join("google-root");
    let text = google_authenticator(&google, &MODE, None);
    let (secret, scratch) = (secret_of(&text), scratch_of(&text));
    let state = fx.state_dir();
    let in_place = fx.service(
        "in-place",
        &[&format!(
            "auth required MODULE secret={} state_dir={} rate_limit=100/60",
            google.display(),
            state.display()
        )],
    );
    let r = login(&fx, &in_place, "root", &scratch[0]);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    let r = login(&fx, &in_place, "root", &code);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // Step two: import; the native file takes over with the same state.
    let sb = plain_config();
    let dest = fx.path().join("secrets/root");
    let r = import_to(&sb, &google, &dest, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let native = fx.module_service("native", "rate_limit=100/60");
    let r = login(&fx, &native, "root", &scratch[0]);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    let r = login(&fx, &native, "root", &code);
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");
    let r = login(&fx, &native, "root", &scratch[1]);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(r.only_module_line().contains("remaining=3"), "{r:?}");
}

#[test]
fn import_seals_when_the_host_key_exists() {
    let sb = Sandbox::new("");
    let keys = sb.join("keys");
    fs::create_dir(&keys).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o755)).unwrap();
    let key = keys.join("host.key");
    sb.set_config(&format!("host_key = \"{}\"\n", key.display()));
    let r = run(
        &["host-key", "init", "--host-key", key.to_str().unwrap()],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");

    let fx = Fixture::new();
    let google = fx.path().join("google-root");
    let text = google_authenticator(&google, &MODE, None);
    let secret = secret_of(&text);
    let dest = fx.path().join("secrets/root");
    let r = import_to(&sb, &google, &dest, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("sealed to host key"), "{r:?}");
    let native = fs::read_to_string(&dest).unwrap();
    assert!(native.contains("sealed_secret = \"v1:"), "{native}");
    assert!(
        !native.contains(&secret),
        "the secret is in the file: {native}"
    );

    let svc = fx.module_service("sealed", &format!("host_key={}", key.display()));
    let r = totp_login(&fx, &svc, "root", &secret, 30);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // --no-seal keeps it plain.
    let r = import_to(&sb, &google, &dest, &["--force", "--no-seal"]);
    assert_eq!(r.code, 0, "{r:?}");
    let native = fs::read_to_string(&dest).unwrap();
    assert!(
        native.contains(&format!("secret = \"{secret}\"")),
        "{native}"
    );
}

#[test]
fn stricter_limits_of_the_file_are_named_in_a_note() {
    let sb = plain_config();
    let fx = Fixture::new();
    let google = fx.path().join("google-root");
    google_authenticator(
        &google,
        &["-t", "-d", "-w", "1", "-r", "2", "-R", "60", "-e", "1"],
        None,
    );
    let r = import_to(&sb, &google, &fx.path().join("secrets/root"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("WINDOW_SIZE 1 was narrower than window=1"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("RATE_LIMIT 2 60 was stricter than rate_limit=3/30"),
        "{r:?}"
    );
    // The tool's defaults (WINDOW_SIZE 3, RATE_LIMIT 3 30) are ours: no note.
    let plain = fx.path().join("google-2");
    google_authenticator(&plain, &MODE, None);
    let r = import_to(&sb, &plain, &fx.path().join("secrets/two"), &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("note:"), "{r:?}");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
