//! The tool's command line pinned: arguments, standard input, exit status,
//! standard output and standard error, and what is (not) written.

mod cli_support;
mod common;
mod ns_support;
use cli_support::*;

use std::fs;
use std::os::unix::fs::symlink;

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn enroll_args<'a>(sb: &'a str, file: &'a str) -> Vec<&'a str> {
    vec![
        "enroll",
        "--config",
        sb,
        "--secret-file",
        file,
        "--no-confirm",
    ]
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["enroll", "status", "scratch-codes", "reset", "disable"] {
        let r = run(&[sub, "--help"], "");
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains(&format!("Usage: pam-totp {sub}")),
            "{r:?}"
        );
        assert!(r.stdout.contains("--user <USER>"), "{sub}: {r:?}");
        assert!(r.stdout.contains("Exit status:"), "{sub}");
        assert_eq!(r.stderr, "");
    }
    let r = run(&["--help"], "");
    assert_eq!(r.code, 0);
    for sub in ["enroll", "status", "scratch-codes", "reset", "disable"] {
        assert!(r.stdout.contains(sub), "{r:?}");
    }
    // No subcommand: the overview on stderr, exit 2.
    let r = run(&[], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Usage: pam-totp <COMMAND>"), "{r:?}");
    assert_eq!(r.stdout, "");
}

#[test]
fn contract_flags_are_accepted() {
    // Each flag of the contract parses (the run then stops at the user).
    let r = run(
        &[
            "enroll",
            "--user",
            "pamtotp-nobody-here",
            "--secret-file",
            "/x",
            "--issuer",
            "I",
            "--label",
            "L",
            "--algorithm",
            "SHA256",
            "--digits",
            "8",
            "--period",
            "60",
            "--secret",
            SECRET,
            "--scratch-codes",
            "3",
            "--qr",
            "ansi",
            "--no-confirm",
            "--force",
            "--json",
        ],
        "",
    );
    r.bad_input("no such user: \"pamtotp-nobody-here\"");
    for args in [
        &[
            "status",
            "--user",
            "pamtotp-nobody-here",
            "--json",
            "--state-dir",
            "/x",
        ][..],
        &[
            "scratch-codes",
            "--regenerate",
            "--user",
            "pamtotp-nobody-here",
            "--json",
        ],
        &[
            "reset",
            "--user",
            "pamtotp-nobody-here",
            "--state-dir",
            "/x",
        ],
        &["disable", "--user", "pamtotp-nobody-here"],
    ] {
        run(args, "").bad_input("no such user");
    }
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let file = sb.join("s");
    let file = file.to_str().unwrap();
    let before = sb.listing("");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--digits", "9"],
            "invalid value '9' for '--digits <6..8>': digits 9 is out of range (6 to 8)",
        ),
        (
            &["--digits", "six"],
            "invalid value 'six' for '--digits <6..8>': \"six\" is not a number",
        ),
        (&["--period", "0"], "period 0 is out of range (1 to 86400)"),
        (&["--period", "86401"], "period 86401 is out of range"),
        (
            &["--algorithm", "MD5"],
            "invalid value 'MD5' for '--algorithm <SHA1|SHA256|SHA512>': unknown algorithm (SHA1, SHA256 or SHA512)",
        ),
        (
            &["--secret", "NOT*BASE32"],
            "--secret is not base32 (letters A-Z and digits 2-7",
        ),
        (&["--secret", "JBSWY3DP"], "--secret: secret is 5 bytes"),
        (&["--scratch-codes", "101"], "at most 100 scratch codes"),
        (&["--qr", "png"], "invalid value 'png' for '--qr <STYLE>'"),
        (&["--issuer", "a:b"], "must not contain ':'"),
        (&["--label", ""], "must not be empty"),
        (&["--user", "pamtotp-nobody-here"], "no such user"),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
    ];
    for (extra, want) in cases {
        let mut args = enroll_args(&cfg, file);
        args.extend_from_slice(extra);
        run(&args, "").bad_input(want);
    }
    // The secret itself never appears in an error.
    let r = run(
        &[
            &enroll_args(&cfg, file)[..],
            &["--secret", "SEKRET*1234567"],
        ]
        .concat(),
        "",
    );
    r.bad_input("not base32");
    assert!(!r.stderr.contains("SEKRET"));
    // Unwritable paths.
    run(&enroll_args(&cfg, "/nonexistent-dir/s"), "")
        .bad_input("cannot write /nonexistent-dir/s: /nonexistent-dir: No such file or directory");
    run(&enroll_args(&cfg, "/proc/s"), "").bad_input("cannot write /proc/s");
    let dir = sb.join("a-directory");
    fs::create_dir(&dir).unwrap();
    run(&enroll_args(&cfg, dir.to_str().unwrap()), "")
        .bad_input("exists and it is not a regular file; not replacing it");
    fs::remove_dir(&dir).unwrap();
    // A broken config file.
    sb.set_config("window = \"wide\"\n");
    run(&enroll_args(&cfg, file), "").bad_input("config file");
    sb.set_config("");
    run(
        &enroll_args(&sb.join("missing.toml").to_string_lossy(), file),
        "",
    )
    .bad_input("does not exist");
    assert_eq!(sb.listing(""), before, "nothing written");
    // Other subcommands.
    run(&["scratch-codes", "--config", &cfg], "").bad_input("--regenerate");
    run(&["status", "--state-dir", "state"], "").bad_input("not an absolute path");
    run(&["status", "--rate-limit", "3"], "").bad_input("is not N/SECONDS");
    run(&["reset", "--json"], "").bad_input("unexpected argument '--json'");
}

#[test]
fn a_secret_under_128_bits_is_refused_unless_allowed() {
    // RFC 4226 R6: at least 128 bits. 80-bit hardware tokens need the flag.
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let file = sb.join("s");
    let file = file.to_str().unwrap();
    let before = sb.listing("");
    for (short, bits) in [("JBSWY3DPEHPK3PXP", 80), ("JBSWY3DPEHPK3PXPJBSWY3DP", 120)] {
        let r = run(
            &[&enroll_args(&cfg, file)[..], &["--secret", short]].concat(),
            "",
        );
        r.bad_input(&format!(
            "--secret is {bits} bits; a new secret must have at least 128"
        ));
        assert!(r.stderr.contains("--allow-short-secret"), "{r:?}");
        assert!(!r.stderr.contains(short), "{r:?}");
        // Read from standard input, the same.
        run(
            &[&enroll_args(&cfg, file)[..], &["--secret", "-"]].concat(),
            short,
        )
        .bad_input(&format!("--secret is {bits} bits"));
    }
    assert_eq!(sb.listing(""), before, "nothing written");
    // The flag only goes with --secret.
    run(
        &[&enroll_args(&cfg, file)[..], &["--allow-short-secret"]].concat(),
        "",
    )
    .bad_input("required arguments were not provided");
    // 128 bits is enough; 80 with the flag.
    let r = run(
        &[
            &enroll_args(&cfg, file)[..],
            &["--secret", "JBSWY3DPEHPK3PXPJBSWY3DPEE", "--qr", "none"],
        ]
        .concat(),
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(
        &[
            &enroll_args(&cfg, file)[..],
            &[
                "--secret",
                "JBSWY3DPEHPK3PXP",
                "--allow-short-secret",
                "--force",
                "--qr",
                "none",
            ],
        ]
        .concat(),
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let t: toml::Table = fs::read_to_string(file).unwrap().parse().unwrap();
    assert_eq!(t["secret"].as_str(), Some("JBSWY3DPEHPK3PXP"));
}

#[test]
fn enroll_writes_a_private_file_with_hashed_scratch_codes() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let r = run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &["--secret", SECRET, "--scratch-codes", "7", "--qr", "none"],
        ]
        .concat(),
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        format!("pam-totp: enrolled root: {}\n", file.display())
    );
    assert_eq!(
        field(&r.stdout, "secret"),
        "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"
    );
    let codes = scratch_codes(&r.stdout);
    assert_eq!(codes.len(), 7, "{r:?}");
    // root-owned outside any home, 0600, no scratch code in plain text.
    assert_eq!(owner_mode(&file), (0, 0o600));
    let text = fs::read_to_string(&file).unwrap();
    let parsed: toml::Table = text.parse().unwrap();
    assert_eq!(parsed["secret"].as_str(), Some(SECRET));
    assert_eq!(parsed["algorithm"].as_str(), Some("SHA1"));
    assert_eq!(parsed["digits"].as_integer(), Some(6));
    assert_eq!(parsed["period"].as_integer(), Some(30));
    let hashes = parsed["scratch_codes"].as_array().unwrap();
    assert_eq!(hashes.len(), 7);
    for c in &codes {
        assert!(
            !text.contains(c.as_str()),
            "scratch code stored in plain text"
        );
    }
    assert!(hashes
        .iter()
        .all(|h| h.as_str().unwrap().starts_with("pbkdf2-sha256$")));
    // No temporary or probe file left behind.
    assert_eq!(sb.listing(""), ["config.toml", "s"]);
}

#[test]
fn enroll_json_has_exactly_the_contract_keys() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let r = run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &["--json", "--scratch-codes", "3"],
        ]
        .concat(),
        "",
    );
    let v = r.json();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "otpauth_uri",
            "scratch_codes",
            "secret",
            "secret_file",
            "user"
        ]
    );
    assert_eq!(v["user"], "root");
    assert_eq!(v["secret_file"], file.to_str().unwrap());
    let secret = v["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert!(v["otpauth_uri"]
        .as_str()
        .unwrap()
        .contains(&format!("?secret={secret}&issuer=")));
    assert_eq!(v["scratch_codes"].as_array().unwrap().len(), 3);
    // stdout is the JSON alone, one line; no QR code anywhere.
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(!r.stderr.contains('█'));
    // Two enrollments never share a secret.
    let other = sb.join("t");
    let v2 = run(
        &[&enroll_args(&cfg, other.to_str().unwrap())[..], &["--json"]].concat(),
        "",
    )
    .json();
    assert_ne!(v2["secret"], v["secret"]);
}

#[test]
fn secret_from_standard_input() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let r = run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &["--secret", "-", "--json"],
        ]
        .concat(),
        "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp\n",
    );
    assert_eq!(r.json()["secret"], SECRET);
}

#[test]
fn default_issuer_and_account_and_parameter_warning() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let host = std::process::Command::new("hostname")
        .output()
        .unwrap()
        .stdout;
    let host = String::from_utf8(host).unwrap().trim().to_owned();
    let r = run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &["--secret", SECRET, "--json"],
        ]
        .concat(),
        "",
    );
    assert_eq!(
        r.json()["otpauth_uri"],
        format!("otpauth://totp/{host}:root@{host}?secret={SECRET}&issuer={host}")
    );
    assert!(!r.stderr.contains("warning"), "{r:?}");
    fs::remove_file(&file).unwrap();
    let r = run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &["--digits", "8", "--json"],
        ]
        .concat(),
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "warning: SHA1, 8 digits, 30 seconds: many apps (Google Authenticator among them) ignore these"
        ),
        "{r:?}"
    );
}

#[test]
fn refuses_to_replace_without_force() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let args = enroll_args(&cfg, file.to_str().unwrap());
    let first = run(&[&args[..], &["--json"]].concat(), "").json();
    let before = fs::read(&file).unwrap();
    run(&args, "").bad_input(&format!(
        "root is already enrolled ({} exists); use --force to replace it",
        file.display()
    ));
    assert_eq!(fs::read(&file).unwrap(), before, "untouched");
    let second = run(&[&args[..], &["--json", "--force"]].concat(), "").json();
    assert_ne!(first["secret"], second["secret"]);
    assert_ne!(fs::read(&file).unwrap(), before, "replaced");
}

#[test]
fn force_replaces_a_symlink_without_following_it() {
    let sb = Sandbox::new("");
    let target = sb.join("target");
    fs::write(&target, "precious\n").unwrap();
    let link = sb.join("s");
    symlink(&target, &link).unwrap();
    let cfg = sb.config();
    let args = enroll_args(&cfg, link.to_str().unwrap());
    run(&args, "").bad_input("already enrolled");
    let r = run(&[&args[..], &["--force"]].concat(), "");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(fs::symlink_metadata(&link).unwrap().is_file());
    // Something that is not a secret file is never replaced, even with --force.
    let other = sb.join("notes");
    fs::write(&other, "not a secret file\n").unwrap();
    run(
        &[
            &enroll_args(&cfg, other.to_str().unwrap())[..],
            &["--force"],
        ]
        .concat(),
        "",
    )
    .bad_input("is not a pam-totp or Google Authenticator secret file; not replacing it");
    assert_eq!(fs::read_to_string(&other).unwrap(), "not a secret file\n");
}

#[test]
fn the_config_template_decides_where_the_secret_goes() {
    let sb = Sandbox::new("");
    fs::create_dir(sb.join("secrets")).unwrap();
    sb.set_config(&format!(
        "secret = \"{}/secrets/${{USER}}\"\n",
        sb.path().display()
    ));
    let r = run(
        &["enroll", "--config", &sb.config(), "--no-confirm", "--json"],
        "",
    );
    let expected = sb.join("secrets/root");
    assert_eq!(r.json()["secret_file"], expected.to_str().unwrap());
    assert_eq!(owner_mode(&expected), (0, 0o600));
    // --secret-file overrides the template.
    let other = sb.join("elsewhere");
    let r = run(
        &[
            &enroll_args(&sb.config(), other.to_str().unwrap())[..],
            &["--json"],
        ]
        .concat(),
        "",
    );
    assert_eq!(r.json()["secret_file"], other.to_str().unwrap());
    // status and disable follow the same template.
    let r = run(
        &[
            "status",
            "--config",
            &sb.config(),
            "--json",
            "--state-dir",
            &sb.join("state").to_string_lossy(),
        ],
        "",
    );
    assert_eq!(r.json()["secret_file"], expected.to_str().unwrap());
    assert_eq!(r.json()["enrolled"], true);
}

#[test]
fn confirmation_reads_codes_from_standard_input() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let args = [
        "enroll",
        "--config",
        &cfg,
        "--secret-file",
        file.to_str().unwrap(),
        "--secret",
        SECRET,
        "--qr",
        "none",
    ];
    // Only wrong codes, then the end of input: exit 1, nothing saved.
    let r = run(&args, "000000\n99\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("That is not the right code"), "{r:?}");
    assert!(r.stderr.contains("That code has 2 digits"), "{r:?}");
    assert!(
        r.stderr.ends_with(
            "pam-totp: no right code was typed; nothing was saved (scripts: use --no-confirm)\n"
        ),
        "{r:?}"
    );
    assert!(!file.exists());
    // A right code (from oathtool) after a wrong one: saved.
    let right = common::oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = run(&args, &format!("{wrong}\n{right}\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Code accepted."), "{r:?}");
    assert!(file.exists());
    // The human output went to stdout, prompts to stderr.
    assert!(r.stdout.contains("JBSW Y3DP"), "{r:?}");
    assert!(!r.stdout.contains("Code from the app"));
    assert_eq!(r.stderr.matches("Code from the app: ").count(), 2);
}

#[test]
fn json_with_confirmation_shows_the_enrollment_on_stderr() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    let right = common::oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = run(
        &[
            "enroll",
            "--config",
            &cfg,
            "--secret-file",
            file.to_str().unwrap(),
            "--secret",
            SECRET,
            "--json",
        ],
        &format!("{right}\n"),
    );
    assert_eq!(r.json()["secret"], SECRET);
    assert!(r.stderr.contains("Scan this QR code"), "{r:?}");
    assert!(r.stderr.contains('█'));
}

#[test]
fn status_of_someone_not_enrolled() {
    let sb = Sandbox::new("");
    let file = sb.join("none");
    let r = run(
        &[
            "status",
            "--config",
            &sb.config(),
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            &sb.join("no-state-dir").to_string_lossy(),
            "--json",
        ],
        "",
    );
    assert_eq!(
        r.json(),
        serde_json::json!({
            "user": "root", "enrolled": false, "secret_file": file.to_str().unwrap(),
            "algorithm": null, "digits": null, "period": null,
            "scratch_codes_remaining": null, "failed_attempts": 0, "locked": false,
            "keys": []
        })
    );
    assert_eq!(r.stderr, "");
    assert!(!sb.join("no-state-dir").exists(), "status creates nothing");
}

#[test]
fn status_reports_an_unusable_secret_file_with_exit_1() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    run(&enroll_args(&cfg, file.to_str().unwrap()), "");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(
        &[
            "status",
            "--config",
            &cfg,
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            &sb.join("state").to_string_lossy(),
            "--json",
        ],
        "",
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["algorithm"], serde_json::Value::Null);
    assert!(
        r.stderr
            .contains("mode 0644 gives access to group or others (chmod 600)")
            && r.stderr.contains("the module denies every login"),
        "{r:?}"
    );
}

#[test]
fn status_text_output() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let cfg = sb.config();
    run(
        &[
            &enroll_args(&cfg, file.to_str().unwrap())[..],
            &[
                "--algorithm",
                "SHA256",
                "--digits",
                "8",
                "--period",
                "60",
                "--scratch-codes",
                "2",
            ],
        ]
        .concat(),
        "",
    );
    let r = run(
        &[
            "status",
            "--config",
            &cfg,
            "--secret-file",
            file.to_str().unwrap(),
            "--state-dir",
            &sb.join("state").to_string_lossy(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout,
        format!(
            "user:                    root\n\
             enrolled:                yes\n\
             secret_file:             {}\n\
             algorithm:               SHA256\n\
             digits:                  8\n\
             period:                  60\n\
             scratch_codes_remaining: 2\n\
             failed_attempts:         0\n\
             locked:                  no\n\
             key default:             SHA256, 8 digits, period 60, not sealed\n",
            file.display()
        )
    );
}

#[test]
fn disable_removes_only_secret_files() {
    let sb = Sandbox::new("");
    let cfg = sb.config();
    let state = sb.join("state");
    let state = state.to_str().unwrap();
    let file = sb.join("s");
    run(&enroll_args(&cfg, file.to_str().unwrap()), "");
    let disable = |f: &str| {
        run(
            &[
                "disable",
                "--config",
                &cfg,
                "--secret-file",
                f,
                "--state-dir",
                state,
            ],
            "",
        )
    };
    let r = disable(file.to_str().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        format!(
            "pam-totp: disabled root: removed {}; no state\n",
            file.display()
        )
    );
    assert!(!file.exists());
    // Again: not an error.
    let r = disable(file.to_str().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("root was not enrolled"), "{r:?}");
    // Not a secret file: left alone.
    let notes = sb.join("notes");
    fs::write(&notes, "keep me\n").unwrap();
    disable(notes.to_str().unwrap()).bad_input("not removing it");
    assert!(notes.exists());
    // A symlink is removed, its target kept.
    let link = sb.join("link");
    symlink(&notes, &link).unwrap();
    assert_eq!(disable(link.to_str().unwrap()).code, 0);
    assert!(fs::symlink_metadata(&link).is_err());
    assert_eq!(fs::read_to_string(&notes).unwrap(), "keep me\n");
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
