//! `--secret-file -`: provisioning into a central store (issue 14, item 4).
//! `enroll` and `import-google-authenticator` print the secret file's text
//! on standard output (sealed when the host key pair exists) and write
//! nothing; the QR code, the secret, the scratch codes and the prompt go to
//! standard error. `status` reads such a text from standard input.
//!
//! The printed text is checked the way it will be used: written to a file
//! by the test and opened by the module through the real libpam, with
//! oathtool codes.

mod cli_support;
mod common;
mod google_support;
mod ns_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use cli_support::{field, run, scratch_codes, Run, Sandbox};
use common::{avoid_step_edge, oathtool_totp, Fixture, PamResult};
use google_support::{google_authenticator, secret_of};
use pam_totp::secret::native::SecretFile;

const MODE: [&str; 10] = ["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5"];

/// A sandbox whose config file sends secret files to sb/secrets/${USER}
/// (an empty directory, to show nothing is written there), keeps state in
/// the fixture's state directory, and names a host key in sb/keys/, created
/// when `sealed`.
struct World {
    sb: Sandbox,
    fx: Fixture,
    key: PathBuf,
}

impl World {
    fn new(sealed: bool) -> World {
        let sb = Sandbox::new("");
        let fx = Fixture::new();
        let keys = sb.join("keys");
        fs::create_dir(&keys).unwrap();
        fs::create_dir(sb.join("secrets")).unwrap();
        let key = keys.join("host.key");
        sb.set_config(&format!(
            "host_key = \"{}\"\nsecret = \"{}/${{USER}}\"\nstate_dir = \"{}\"\n",
            key.display(),
            sb.join("secrets").display(),
            fx.state_dir().display()
        ));
        if sealed {
            let r = run(
                &["host-key", "init", "--host-key", key.to_str().unwrap()],
                "",
            );
            assert_eq!(r.code, 0, "{r:?}");
        }
        World { sb, fx, key }
    }

    fn cfg(&self) -> String {
        self.sb.config()
    }

    /// Nothing was written where secret files go, nor in the sandbox.
    fn assert_nothing_written(&self) {
        assert!(
            self.sb.listing("secrets").is_empty(),
            "{:?}",
            self.sb.listing("secrets")
        );
        assert!(self
            .fx
            .path()
            .join("secrets")
            .read_dir()
            .unwrap()
            .next()
            .is_none());
    }

    /// Writes `text` as root's file in fx/secrets (as a store's command
    /// or an administrator would) and logs in through libpam with the
    /// current code of `secret`.
    fn login_with(&self, text: &str, secret: &str) -> PamResult {
        let p = self.fx.secret_file("root", text);
        assert_eq!(fs::read_to_string(&p).unwrap(), text);
        let service = self
            .fx
            .module_service("central", &format!("host_key={}", self.key.display()));
        avoid_step_edge(30, 3);
        let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
        self.fx
            .client(&service, "root")
            .answer(&code)
            .syslog()
            .run()
    }
}

fn enroll_stdout(w: &World, extra: &[&str], stdin: &str) -> Run {
    let cfg = w.cfg();
    let mut args = vec![
        "enroll",
        "--config",
        &cfg,
        "--user",
        "root",
        "--secret-file",
        "-",
    ];
    args.extend_from_slice(extra);
    run(&args, stdin)
}

fn secret_in(stderr: &str) -> String {
    field(stderr, "secret").replace(' ', "")
}

#[test]
fn enroll_prints_exactly_the_file_text_and_writes_nothing() {
    let w = World::new(false);
    let r = enroll_stdout(&w, &["--no-confirm"], "");
    assert_eq!(r.code, 0, "{r:?}");
    // Standard output is the file's text and nothing else: it parses as a
    // secret file, whole, and holds none of what is shown to people.
    let file = SecretFile::parse(r.stdout.as_bytes()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(file.keys[0].sealed_secret.is_none());
    assert!(
        r.stdout
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '#'),
        "{r:?}"
    );
    for shown in [
        "QR code",
        "otpauth://",
        "Scratch codes",
        "issuer:",
        "enrolled",
    ] {
        assert!(!r.stdout.contains(shown), "{shown} on stdout: {r:?}");
    }
    // Standard error has the QR code, the secret and the scratch codes.
    assert!(r.stderr.contains("Scan this QR code"), "{r:?}");
    assert!(r.stderr.contains("otpauth://totp/"), "{r:?}");
    assert_eq!(scratch_codes(&r.stderr).len(), 5, "{r:?}");
    assert!(r.stderr.contains("standard output"), "{r:?}");
    let secret = secret_in(&r.stderr);
    assert!(
        r.stdout.contains(&format!("secret = \"{secret}\"")),
        "{r:?}"
    );
    w.assert_nothing_written();

    // The text, written to a file, logs in through libpam.
    let ok = w.login_with(&r.stdout, &secret);
    assert_eq!(ok.result, "PAM_SUCCESS", "{ok:?}");
}

#[test]
fn enroll_confirms_on_stderr_and_spends_the_confirmation_code() {
    let w = World::new(false);
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    avoid_step_edge(30, 4);
    let code = oathtool_totp(secret, "SHA1", 6, 30, 0);
    let r = enroll_stdout(&w, &["--secret", "-"], &format!("{secret}\n{code}\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Code from the app:"), "{r:?}");
    assert!(r.stderr.contains("Code accepted."), "{r:?}");
    SecretFile::parse(r.stdout.as_bytes()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(!r.stdout.contains("Code"), "{r:?}");
    w.assert_nothing_written();
    // The code typed at enrollment is spent in the state: it cannot log in.
    let p = w.fx.secret_file("root", &r.stdout);
    assert!(p.exists());
    let service =
        w.fx.module_service("central-replay", &format!("host_key={}", w.key.display()));
    let replay = w.fx.client(&service, "root").answer(&code).syslog().run();
    assert_eq!(replay.result, "PAM_AUTH_ERR", "{replay:?}");

    // No right code: nothing at all on standard output.
    let r = enroll_stdout(&w, &["--secret", "-"], &format!("{secret}\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "", "{r:?}");
}

#[test]
fn enroll_prints_sealed_text_when_the_host_key_exists() {
    let w = World::new(true);
    let id = pam_totp::secret::seal::load_public_key(&w.key)
        .unwrap()
        .id();
    let r = enroll_stdout(&w, &["--no-confirm", "--qr", "none"], "");
    assert_eq!(r.code, 0, "{r:?}");
    let secret = secret_in(&r.stderr);
    assert!(
        r.stdout.contains(&format!("sealed_secret = \"v1:{id}:")),
        "not sealed: {r:?}"
    );
    assert!(
        !r.stdout.contains(&secret),
        "the secret is on stdout: {r:?}"
    );
    assert!(
        r.stderr.contains(&format!("sealed to host key {id}")),
        "{r:?}"
    );
    w.assert_nothing_written();
    // Opened by the module with the host key.
    let ok = w.login_with(&r.stdout, &secret);
    assert_eq!(ok.result, "PAM_SUCCESS", "{ok:?}");

    // status reads the text from standard input and opens it (root).
    let cfg = w.cfg();
    let st = [
        "status",
        "--config",
        &cfg,
        "--user",
        "root",
        "--secret-file",
        "-",
        "--json",
    ];
    let v = run(&st, &r.stdout).json();
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["secret_file"], "-");
    assert_eq!(v["digits"], 6);
    assert_eq!(v["scratch_codes_remaining"], 5);
    // Empty input: not enrolled. Text that is no secret file: a problem.
    let v = run(&st, "").json();
    assert_eq!(v["enrolled"], false);
    let bad = run(&st, "this is not a secret file\n");
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("standard input"), "{bad:?}");
    let huge = "#".repeat(70 * 1024);
    let big = run(&st, &huge);
    assert_eq!(big.code, 2, "{big:?}");
}

#[test]
fn enroll_json_holds_the_text_and_is_alone_on_stdout() {
    let w = World::new(true);
    let r = enroll_stdout(&w, &["--no-confirm", "--json"], "");
    let v = r.json();
    assert_eq!(v["secret_file"], "-");
    let text = v["secret_file_text"].as_str().unwrap();
    SecretFile::parse(text.as_bytes()).unwrap();
    assert!(text.contains("sealed_secret = \"v1:"), "{text}");
    let secret = v["secret"].as_str().unwrap();
    w.assert_nothing_written();
    let ok = w.login_with(text, secret);
    assert_eq!(ok.result, "PAM_SUCCESS", "{ok:?}");

    // Without `-`, no such field.
    let cfg = w.cfg();
    let r = run(
        &[
            "enroll",
            "--config",
            &cfg,
            "--user",
            "root",
            "--no-confirm",
            "--json",
        ],
        "",
    );
    assert!(r.json().get("secret_file_text").is_none(), "{r:?}");
}

#[test]
fn import_google_prints_the_converted_text() {
    let w = World::new(false);
    let google = w.sb.join("google");
    let gtext = google_authenticator(&google, &MODE, None);
    let secret = secret_of(&gtext);
    let cfg = w.cfg();
    let args = [
        "import-google-authenticator",
        "--config",
        &cfg,
        "--user",
        "root",
        "--secret-file",
        "-",
        google.to_str().unwrap(),
    ];
    let r = run(&args, "");
    assert_eq!(r.code, 0, "{r:?}");
    SecretFile::parse(r.stdout.as_bytes()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert!(
        r.stdout.contains(&format!("secret = \"{secret}\"")),
        "{r:?}"
    );
    assert!(!r.stdout.contains("imported"), "{r:?}");
    assert!(r.stderr.contains("imported root"), "{r:?}");
    w.assert_nothing_written();
    assert_eq!(fs::read_to_string(&google).unwrap(), gtext);
    let ok = w.login_with(&r.stdout, &secret);
    assert_eq!(ok.result, "PAM_SUCCESS", "{ok:?}");

    let mut json = args.to_vec();
    json.push("--json");
    let v = run(&json, "").json();
    assert_eq!(v["secret_file"], "-");
    assert!(v["secret_file_text"].as_str().unwrap().contains(&secret));
}

#[test]
fn stdio_is_not_a_file_named_dash() {
    let w = World::new(false);
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = w.cfg();
    let out = std::process::Command::new(cli_support::bin())
        .current_dir(dir.path())
        .args([
            "enroll",
            "--config",
            &cfg,
            "--user",
            "root",
            "--secret-file",
            "-",
            "--no-confirm",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!dir.path().join("-").exists());
}
