//! The clock stepping back, through the real libpam: a client runs under
//! libfaketime (Debian's `faketime`), so the module reads a later time,
//! and the next client runs at an earlier one, as after an NTP correction
//! or a virtual machine restored from a snapshot. Codes come from oathtool
//! at the matching times.
//!
//! Issue 8, "Must work" 2 (the clock stepping back: an already used step
//! stays refused).

mod common;
use common::*;

/// libfaketime itself, preloaded: not through Debian's `faketime` wrapper,
/// which makes a semaphore and a shared memory file named after its
/// process id in /dev/shm and fails ("sem_open: File exists") when one
/// left behind by an earlier process of that id is still there.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// `run` with the clock `secs` seconds off (libfaketime, relative, so the
/// faked clock keeps ticking).
fn at_offset(mut run: ClientRun, secs: i64) -> ClientRun {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "apt-get install faketime"
    );
    run.cmd
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", format!("{secs:+}s"));
    run
}

fn code_at(secs: i64) -> String {
    assert_eq!(secs % 30, 0);
    oathtool_totp(SECRET, "SHA1", 6, 30, secs / 30)
}

#[test]
fn a_used_step_stays_refused_after_the_clock_steps_back() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    let svc = fx.module_service("clock", "rate_limit=100/60");
    let login = |typed: &str, secs: i64| {
        at_offset(fx.client(&svc, "root").answer(typed).syslog(), secs).run()
    };
    avoid_step_edge(30, 10);
    let step_now = (now() / 30) as i64;

    // The clock is a minute ahead: the code of that time is accepted, as
    // the current one (offset 0 proves the module read the faked time).
    let later = code_at(60);
    let r = login(&later, 60);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert!(
        r.only_module_line().contains("method=totp offset=0"),
        "{r:?}"
    );
    assert_eq!(fx.key_field("root", "last_step"), Some(step_now + 2));

    // Stepped back by one step, the used code is still inside the window
    // (the next step): refused as a replay.
    let r = login(&later, 30);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["replayed-code"], "{r:?}");

    // Back at the true time: the used code is two steps ahead, outside the
    // window; every code of the steps before it (never typed, but not newer
    // than the last one accepted) is refused as spent.
    for (what, typed, want) in [
        ("the used code", later.clone(), "wrong-code"),
        ("the step between", code_at(30), "replayed-code"),
        ("the current step", code_at(0), "replayed-code"),
        ("the step before", code_at(-30), "replayed-code"),
    ] {
        let r = login(&typed, 0);
        assert_eq!(r.result, "PAM_AUTH_ERR", "{what}: {r:?}");
        assert_eq!(r.audit_results(), [want], "{what}: {r:?}");
    }
    let st = fx.state("root").unwrap();
    assert_eq!(key_field(&st, "last_step"), Some(step_now + 2), "{st:?}");
    assert_eq!(st["failed_attempts"].as_integer(), Some(5), "{st:?}");

    // When the clock is past the used step again, the next step works.
    let r = login(&code_at(90), 90);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(fx.key_field("root", "last_step"), Some(step_now + 3));
}

#[test]
fn stepping_the_clock_back_does_not_lift_the_rate_limit() {
    let fx = Fixture::new();
    fx.enroll("root", SECRET, "SHA1", 6, 30);
    // The default limit, 3 failures in any 30 seconds.
    let svc = fx.module_service("clocklimit", "");
    let login = |typed: &str, secs: i64| {
        at_offset(fx.client(&svc, "root").answer(typed).syslog(), secs).run()
    };
    avoid_step_edge(30, 8);
    for _ in 0..3 {
        let r = login("000000x", 20);
        assert_eq!(r.audit_results(), ["wrong-code"], "{r:?}");
    }
    // 20 seconds earlier, failures stamped in the future still count: the
    // right code is not even checked.
    let r = login(&code_at(0), 0);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.audit_results(), ["rate-limited"], "{r:?}");
    // Once the clock is a window past them, they have expired.
    let r = login(&code_at(60), 60);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
}
