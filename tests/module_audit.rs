//! The audit trail through the real libpam: one LOG_AUTHPRIV line per
//! attempt with user, service, remote host and outcome; never the code,
//! the password or the secret; fields that a remote client controls cannot
//! forge other fields; and the module works with no /dev/log at all.
//!
//! Issue 2, "Must work" 9.

mod common;
mod ns_support;
use common::*;

const RHOST: &str = "192.0.2.7";

/// The module's part of a syslog line: what follows "pam_totp(svc:auth): ".
fn body(line: &str) -> &str {
    let at = line.find("): ").expect("pam_syslog prefix");
    &line[at + 3..]
}

/// The syslog priority of a line: `<PRI>` = facility * 8 + severity.
fn priority(line: &str) -> (u32, u32) {
    let end = line.find('>').unwrap();
    let pri: u32 = line[1..end].parse().unwrap();
    (pri / 8, pri % 8)
}

const LOG_AUTHPRIV: u32 = 10;

/// The keys of a line's `key=value` tokens, in order.
fn keys(line: &str) -> Vec<&str> {
    body(line)
        .split(' ')
        .map(|t| t.split_once('=').map_or(t, |(k, _)| k))
        .collect()
}

/// Checks the one module line of `r`: AUTHPRIV, the four fields first, in
/// order, each once, with the outcome `result`.
fn check_audit(r: &PamResult, user: &str, service: &str, result: &str) {
    let line = r.only_module_line();
    assert_eq!(priority(line).0, LOG_AUTHPRIV, "{line}");
    let k = keys(line);
    assert_eq!(k[..4], ["user", "service", "rhost", "result"], "{line}");
    for f in ["user", "service", "rhost", "result"] {
        assert_eq!(k.iter().filter(|x| **x == f).count(), 1, "{f}: {line}");
    }
    let b = body(line);
    assert!(
        b.starts_with(&format!(
            "user={user} service={service} rhost={RHOST} result={result}"
        )),
        "{line}"
    );
}

#[test]
fn one_line_per_attempt_for_every_outcome() {
    let fx = Fixture::new();
    fx.enroll_with_scratch("root", SECRET, &["12345678"]);
    let svc = fx.module_service("audit", "rate_limit=3/600");
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let login = |typed: &str| {
        fx.client(&svc, "root")
            .answer(typed)
            .rhost(RHOST)
            .syslog()
            .run()
    };
    let mut all = String::new();
    for (typed, result) in [
        (code.as_str(), "success"),
        (code.as_str(), "replayed-code"),
        ("12345678", "scratch-code-used"),
        ("000000", "wrong-code"),
        ("999999", "wrong-code"),
        (code.as_str(), "rate-limited"),
    ] {
        let r = login(typed);
        check_audit(&r, "root", "audit", result);
        let want_rc = if result == "success" || result == "scratch-code-used" {
            "PAM_SUCCESS"
        } else {
            "PAM_AUTH_ERR"
        };
        assert_eq!(r.result, want_rc, "{result}: {r:?}");
        all.push_str(&r.all_log_text());
    }
    for secret in [SECRET, &SECRET.to_lowercase(), "Hello!"] {
        assert!(!all.contains(secret), "secret in the log: {all}");
    }
    for typed in [code.as_str(), "12345678", "000000", "999999"] {
        for line in all.lines().filter(|l| l.contains("pam_totp(")) {
            assert!(!body(line).contains(typed), "{typed} logged: {line}");
        }
    }

    // A file problem, on its own line too.
    let fx = Fixture::new();
    fx.secret_file(
        "root",
        &format!("version = 1\nsecret = \"{SECRET}\"\ndigits = 12\n"),
    );
    let svc = fx.module_service("audit", "");
    let r = fx
        .client(&svc, "root")
        .answer(&code)
        .rhost(RHOST)
        .syslog()
        .run();
    check_audit(&r, "root", "audit", "file-problem");
    assert!(!r.all_log_text().contains(SECRET), "{r:?}");
}

#[test]
fn severities_follow_the_outcome() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("sev", "");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).syslog().run();
    assert_eq!(priority(r.only_module_line()), (LOG_AUTHPRIV, 5), "notice");
    let r = fx.client(&svc, "root").answer("000000").syslog().run();
    assert_eq!(priority(r.only_module_line()), (LOG_AUTHPRIV, 4), "warning");
    let svc = fx.module_service("sev", "bogus");
    let r = fx.client(&svc, "root").answer("000000").syslog().run();
    assert_eq!(priority(r.only_module_line()), (LOG_AUTHPRIV, 3), "err");
}

#[test]
fn remote_input_cannot_forge_fields() {
    // sshd passes the user name the client typed, and the remote host may
    // come from reverse DNS: both are the attacker's. A log watcher that
    // bans `rhost=X result=wrong-code` must not be steerable.
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("forge", "");
    let forged_users = [
        "x rhost=10.9.8.7 result=wrong-code",
        "x\trhost=10.9.8.7\tresult=success",
        "x\nuser=root service=sshd rhost=10.9.8.7 result=wrong-code",
        "rhost=10.9.8.7",
        "x\"rhost=10.9.8.7",
    ];
    for user in forged_users {
        let r = fx
            .client(&svc, user)
            .answer("000000")
            .rhost(RHOST)
            .syslog()
            .run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        let line = r.only_module_line();
        assert!(!line.contains('\n'), "{line:?}");
        let k = keys(line);
        assert_eq!(k, ["user", "service", "rhost", "result"], "{line:?}");
        assert!(!body(line).contains("rhost=10.9.8.7"), "{line:?}");
        assert!(!line.contains("result=wrong-code"), "{line:?}");
    }
    for rhost in [
        "evil.example result=success",
        "evil.example\nresult=success",
    ] {
        let r = fx
            .client(&svc, "root")
            .answer("000000")
            .rhost(rhost)
            .syslog()
            .run();
        let line = r.only_module_line();
        let k = keys(line);
        assert_eq!(k, ["user", "service", "rhost", "result"], "{line:?}");
        assert!(!line.contains("result=success"), "{line:?}");
        assert_eq!(r.audit_results(), ["wrong-code"], "{line:?}");
    }
}

#[test]
fn an_ordinary_odd_name_stays_readable() {
    // Names with a backslash or dot are common (DOMAIN\user, first.last).
    let fx = Fixture::new();
    let svc = fx.module_service("names", "");
    for (user, shown) in [
        ("first.last", "user=first.last "),
        ("pamtotp-nobody", "user=pamtotp-nobody "),
    ] {
        let r = fx.client(&svc, user).answer("000000").syslog().run();
        assert!(body(r.only_module_line()).starts_with(shown), "{r:?}");
    }
}

#[test]
fn without_dev_log_the_module_still_works() {
    // In a private /dev with no /dev/log, every log call goes nowhere.
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("nolog", "debug");
    avoid_step_edge(30, 3);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let r = fx.client(&svc, "root").answer(&code).no_log_socket().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = fx.client(&svc, "root").answer(&code).no_log_socket().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let svc = fx.module_service("nolog", "nullok bogus");
    let r = fx.client(&svc, "root").answer(&code).no_log_socket().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
}

/// A value that, unescaped, reads as two more fields of the line.
const FORGED: &str = "x rhost=203.0.113.9 result=wrong-code";

/// Checks every module line of `r`: at most one `rhost=` and one
/// `result=` token (exactly one in an audit line), none of them forged,
/// and no `secret` text anywhere.
fn check_unforged(r: &PamResult, secret: &str, case: &str) {
    let lines = r.module_log();
    assert!(!lines.is_empty(), "{case}: {r:?}");
    for line in lines {
        let b = body(line);
        let count = |key: &str| b.split(' ').filter(|t| t.starts_with(key)).count();
        let audit = b.starts_with("user=");
        let want = usize::from(audit);
        assert_eq!(count("rhost="), want, "{case}: {line}");
        assert_eq!(count("result="), want, "{case}: {line}");
        assert!(!b.contains("rhost=203.0.113.9"), "{case}: {line}");
        assert!(!b.contains("result=wrong-code"), "{case}: {line}");
        if audit {
            assert!(b.starts_with(&format!("user=root service=forge rhost={RHOST} result=")));
        }
    }
    assert!(
        !r.all_log_text().contains(secret),
        "{case}: secret logged: {r:?}"
    );
}

#[test]
fn values_from_files_and_arguments_cannot_forge_fields_or_leak_secrets() {
    // Issue 11, "Must work" 5: a path, a group, a key or an argument holding
    // ` rhost=... result=...` stays one token; a secret typed into the wrong
    // key of a file is never echoed.
    let fx = Fixture::new();
    let login = |svc: &str| {
        fx.client(svc, "root")
            .answer("000000")
            .rhost(RHOST)
            .syslog()
            .run()
    };
    let forged_dir = fx.path().join("secrets").join(FORGED);
    std::fs::create_dir(&forged_dir).unwrap();
    let state = fx.state_dir();
    // A secret file path (from config.toml) with the fields in it, to a
    // file the module refuses, with debug lines naming the path too.
    let file = forged_dir.join("root");
    std::fs::write(
        &file,
        format!("version = 1\nsecret = \"{SECRET}\"\ndigits = 12\n"),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = fx.config_file(
        "forged.toml",
        &format!(
            "secret = \"{}/${{USER}}\"\nstate_dir = \"{}\"\ndebug = true\n",
            forged_dir.display(),
            state.display()
        ),
    );
    let svc = fx.service(
        "forge",
        &[&format!("auth required MODULE config={}", cfg.display())],
    );
    let r = login(&svc);
    assert_eq!(r.audit_results(), ["start", "file-problem"], "{r:?}");
    assert!(r.all_log_text().contains("line 3: digits 12"), "{r:?}");
    check_unforged(&r, SECRET, "secret path");

    let base = format!(
        "auth required MODULE secret={}/secrets/${{USER}} state_dir={}",
        fx.path().display(),
        state.display()
    );
    // A group name, an unknown argument (libpam splits at spaces), and a
    // secret given as an argument.
    for (case, args) in [
        (
            "group",
            "require_group=pamtotp-none=rhost=203.0.113.9=result=wrong-code",
        ),
        ("argument", "x rhost=203.0.113.9 result=wrong-code"),
        ("bare secret", SECRET),
        ("secret as a key", &format!("{SECRET}=1") as &str),
    ] {
        let svc = fx.service("forge", &[&format!("{base} {args}")]);
        check_unforged(&login(&svc), SECRET, case);
    }

    // config.toml: the fields as a key, a secret as the value of the wrong
    // key, a secret cut short (malformed TOML on its line).
    for (case, body) in [
        ("config key", format!("\"{FORGED}\" = 1\n")),
        ("config value", format!("window = \"{SECRET}\"\n")),
        ("config group", format!("exempt_group = \"{FORGED}\"\n")),
        ("config syntax", format!("prompt = \"{SECRET}\n")),
    ] {
        let cfg = fx.config_file("c.toml", &body);
        let svc = fx.service("forge", &[&format!("{base} config={}", cfg.display())]);
        check_unforged(&login(&svc), SECRET, case);
    }

    // The secret file: a secret in the wrong key, a key made of the fields,
    // a Google Authenticator option named by a secret.
    for (case, body) in [
        (
            "algorithm",
            format!("version = 1\nsecret = \"{SECRET}\"\nalgorithm = \"{SECRET}\"\n"),
        ),
        (
            "digits",
            format!("version = 1\nsecret = \"{SECRET}\"\ndigits = \"{SECRET}\"\n"),
        ),
        (
            "file key",
            format!("version = 1\nsecret = \"{SECRET}\"\n\"{FORGED}\" = 1\n"),
        ),
        (
            "scratch",
            format!("version = 1\nsecret = \"{SECRET}\"\nscratch_codes = [\"{FORGED}\"]\n"),
        ),
        (
            "google option",
            format!("JBSWY3DPEHPK3PXPJBSW\n\" TOTP_AUTH\n\" {SECRET} 1\n"),
        ),
    ] {
        fx.secret_file("root", &body);
        let svc = fx.module_service("forge", "");
        let r = login(&svc);
        assert_eq!(r.audit_results(), ["file-problem"], "{case}: {r:?}");
        check_unforged(&r, SECRET, case);
        assert!(r.only_module_line().contains("line "), "{case}: {r:?}");
    }
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
