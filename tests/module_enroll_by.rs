//! The enrollment deadline (`enroll_by=YYYY-MM-DD`, issue 15 item 2)
//! through the real libpam, with the clock of the PAM client (and so of
//! the module inside it) moved by libfaketime (Debian's `faketime`),
//! preloaded into that one process only.

mod common;

use std::path::Path;

use common::*;

const TEXT_INFO: i64 = 4;
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const DEADLINE: &str = "2030-01-02";
/// The day before the deadline, and the deadline's first second (UTC).
const BEFORE: &str = "@2030-01-01 23:59:00";
const ON_THE_DAY: &str = "@2030-01-02 00:00:00";

/// pam_permit, then the module: PAM_SUCCESS shows the module returned
/// PAM_IGNORE, PAM_AUTH_ERR that it denied.
fn service(fx: &Fixture, args: &str) -> String {
    fx.service(
        "enroll-by",
        &[
            "auth required pam_permit.so",
            &format!(
                "auth required MODULE secret={}/secrets/${{USER}} state_dir={} enroll_by={DEADLINE} {args}",
                fx.path().display(),
                fx.state_dir().display()
            ),
        ],
    )
}

/// A client whose clock starts at `at` (libfaketime's `@` syntax, UTC).
fn at(fx: &Fixture, svc: &str, user: &str, at: &str) -> ClientRun {
    assert!(Path::new(LIBFAKETIME).exists(), "apt-get install faketime");
    let mut run = fx.client(svc, user).syslog();
    run.cmd
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", at)
        .env("TZ", "UTC");
    run
}

fn infos(r: &PamResult) -> Vec<&str> {
    r.prompts
        .iter()
        .filter(|(s, _)| *s == TEXT_INFO)
        .map(|(_, t)| t.as_str())
        .collect()
}

#[test]
fn before_the_day_a_user_without_a_secret_passes_with_a_notice() {
    let fx = Fixture::new();
    let svc = service(&fx, "");
    let r = at(&fx, &svc, "root", BEFORE).run();
    assert_eq!(r.result, "PAM_SUCCESS", "ignored: {r:?}");
    // One line, no prompt: the deadline and how to enroll.
    assert_eq!(r.prompts.len(), 1, "{r:?}");
    let notice = infos(&r)[0];
    assert!(!notice.contains('\n'), "{notice}");
    assert!(notice.contains(DEADLINE), "{notice}");
    assert!(notice.contains("pam-totp enroll"), "{notice}");
    assert_eq!(r.audit_results(), ["skipped"]);
    assert!(r
        .all_log_text()
        .contains(&format!("reason=not-enrolled,enroll_by={DEADLINE}")));
}

#[test]
fn from_the_day_on_a_user_without_a_secret_is_denied() {
    let fx = Fixture::new();
    let svc = service(&fx, "");
    let r = at(&fx, &svc, "root", ON_THE_DAY).answer("123456").run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts, [(1, "Verification code: ".to_owned())]);
    assert_eq!(r.audit_results(), ["not-enrolled"]);
}

/// A sysadmin who adds enroll_by to a line with nullok gets the deadline:
/// nullok no longer lets anyone through from that day, and the log says so.
#[test]
fn enroll_by_supersedes_nullok() {
    let fx = Fixture::new();
    let svc = service(&fx, "nullok");
    let before = at(&fx, &svc, "root", BEFORE).run();
    assert_eq!(before.result, "PAM_SUCCESS", "{before:?}");
    let after = at(&fx, &svc, "root", ON_THE_DAY).answer("123456").run();
    assert_eq!(after.result, "PAM_AUTH_ERR", "{after:?}");
    assert!(
        after
            .all_log_text()
            .contains(&format!("nullok is superseded by enroll_by={DEADLINE}")),
        "{:?}",
        after.syslog
    );
}

/// With enroll_at_login: before the day, enrollment is offered and an
/// empty answer skips it (PAM_IGNORE); from the day on it must be done
/// (an empty answer denies).
#[test]
fn with_enroll_at_login_skipping_is_allowed_only_before_the_day() {
    let fx = Fixture::new();
    let svc = service(&fx, "enroll_at_login");
    let user = ensure_user("pamtotp-eby-eal", &[]);
    let file = fx.path().join("secrets").join(&user.name);
    let before = at(&fx, &svc, &user.name, BEFORE).answer("").run();
    assert_eq!(before.result, "PAM_SUCCESS", "ignored: {before:?}");
    assert!(infos(&before)[0].contains(DEADLINE), "{before:?}");
    assert!(infos(&before).iter().any(|t| t.contains('█')));
    assert!(before
        .all_log_text()
        .contains(&format!("reason=enrollment-skipped,enroll_by={DEADLINE}")));
    assert!(!file.exists());

    let after = at(&fx, &svc, &user.name, ON_THE_DAY).answer("").run();
    assert_eq!(after.result, "PAM_AUTH_ERR", "{after:?}");
    let prompt = &after.prompts.last().unwrap().1;
    assert!(!prompt.contains("skip"), "{prompt}");
    assert!(infos(&after).iter().any(|t| t.contains('█')));
    assert!(!file.exists());
}
