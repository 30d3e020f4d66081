//! Google Authenticator files read in place, through the real libpam: files
//! written by Google's own `google-authenticator` tool, codes from oathtool
//! (`--totp`, `--hotp -c N`), our module pointed at them with `secret=`.
//!
//! Issue 6, "Must work" 1 (TOTP with its STEP_SIZE and WINDOW_SIZE, HOTP
//! with a look-ahead and no counter twice, scratch codes once, also
//! concurrently, legacy 80-bit secrets, WINDOW_SIZE and RATE_LIMIT only
//! where stricter, replays always refused) and 2 (the file is never
//! written: byte for byte, inode, mtime and ctime unchanged).

mod common;
mod google_support;

use common::*;
use google_support::*;

use std::path::PathBuf;

const USER: &str = "root";

/// Google's tool writes `root`'s file in the fixture's secrets/, where
/// `module_service` points `secret=`. Returns (path, text).
fn tool_file(fx: &Fixture, mode: &[&str]) -> (PathBuf, String) {
    let path = fx.path().join("secrets").join(USER);
    let text = google_authenticator(&path, mode, None);
    (path, text)
}

/// Logs in as root with `code`; returns (PAM result, audit result, the
/// module's line).
fn login(fx: &Fixture, svc: &str, code: &str) -> (String, String, String) {
    let r = fx.client(svc, USER).answer(code).syslog().run();
    let line = r.only_module_line().to_owned();
    let audit = r.audit_results().join(",");
    (r.result, audit, line)
}

fn assert_login(fx: &Fixture, svc: &str, code: &str, want: &str, detail: &str, case: &str) {
    let (result, audit, line) = login(fx, svc, code);
    let pam = if want == "success" || want == "scratch-code-used" {
        "PAM_SUCCESS"
    } else {
        "PAM_AUTH_ERR"
    };
    assert_eq!(
        (result.as_str(), audit.as_str()),
        (pam, want),
        "{case}: {line}"
    );
    assert!(line.contains(detail), "{case}: want {detail:?} in {line}");
}

#[test]
fn totp_files_log_in_with_their_step_size_and_window_size() {
    // (options for Google's tool, STEP_SIZE, steps back and ahead its
    // WINDOW_SIZE allows: 3 is one either side, 4 one back and two ahead).
    let cases: [(&[&str], u64, u64, u64); 4] = [
        (&["-t", "-d", "-w", "3", "-u", "-e", "2"], 30, 1, 1),
        (
            &["-t", "-d", "-S", "60", "-w", "17", "-u", "-e", "2"],
            60,
            8,
            8,
        ),
        (
            &["-t", "-d", "-S", "10", "-w", "4", "-u", "-e", "2"],
            10,
            1,
            2,
        ),
        // Reuse allowed by the file (-D): replays are refused all the same.
        (
            &["-t", "-D", "-S", "15", "-w", "1", "-u", "-e", "2"],
            15,
            0,
            0,
        ),
    ];
    for (mode, step, back, ahead) in cases {
        let fx = Fixture::new();
        let (file, text) = tool_file(&fx, mode);
        let secret = secret_of(&text);
        let before = fingerprint(&file);
        // window=10: the module would allow more, so the file's window decides.
        let svc = fx.module_service("ga-totp", "window=10 rate_limit=100/60");
        let case = format!("{mode:?}");
        in_one_step(step, |now| {
            fx.forget(USER);
            let code = |s: u64| oathtool_at_step(&secret, step, s);
            // Just outside the file's window, either side.
            assert_login(&fx, &svc, &code(now - back - 1), "wrong-code", "", &case);
            assert_login(&fx, &svc, &code(now + ahead + 1), "wrong-code", "", &case);
            // Its edges and now, in increasing order: each step once.
            let mut accepted = vec![now - back, now, now + ahead];
            accepted.dedup();
            for s in &accepted {
                let offset = *s as i64 - now as i64;
                assert_login(
                    &fx,
                    &svc,
                    &code(*s),
                    "success",
                    &format!("method=totp offset={offset}"),
                    &case,
                );
            }
            // Every accepted code, and the steps before the last, are spent.
            for s in accepted {
                assert_login(&fx, &svc, &code(s), "replayed-code", "method=totp", &case);
            }
        });
        assert_eq!(fingerprint(&file), before, "{case}: the file was touched");
    }
}

#[test]
fn hotp_counter_files_look_ahead_and_never_take_a_counter_twice() {
    let fx = Fixture::new();
    let (file, text) = tool_file(&fx, &["-c", "-w", "5", "-u", "-e", "2"]);
    assert!(text.contains("\" HOTP_COUNTER 1\n"), "{text}");
    let secret = secret_of(&text);
    let before = fingerprint(&file);
    let svc = fx.module_service("ga-hotp", "window=10 rate_limit=100/60");
    let code = |c: u64| oathtool_hotp(&secret, c);
    let case = "HOTP_COUNTER 1, WINDOW_SIZE 5";

    // The file's counter is 1 and WINDOW_SIZE 5: counters 1 to 5.
    assert_login(&fx, &svc, &code(0), "wrong-code", "", case);
    assert_login(&fx, &svc, &code(6), "wrong-code", "", case);
    assert_login(
        &fx,
        &svc,
        &code(1),
        "success",
        "method=hotp counter=1",
        case,
    );
    assert_login(&fx, &svc, &code(1), "wrong-code", "", case);
    // Now 2 to 6: the far edge, which skips 2 to 5 for good.
    assert_login(
        &fx,
        &svc,
        &code(6),
        "success",
        "method=hotp counter=6",
        case,
    );
    for c in [4, 5, 6, 13] {
        assert_login(&fx, &svc, &code(c), "wrong-code", "", case);
    }
    assert_login(
        &fx,
        &svc,
        &code(11),
        "success",
        "method=hotp counter=11",
        case,
    );
    assert_eq!(
        fx.key_field(USER, "hotp_next"),
        Some(12),
        "the counter lives in our state"
    );
    // A scratch code of an HOTP file works too.
    let scratch = scratch_of(&text);
    assert_login(&fx, &svc, &scratch[0], "scratch-code-used", "", case);

    // The module's own window=1 is stricter (three codes): it applies.
    fx.forget(USER);
    let strict = fx.module_service("ga-hotp-w1", "window=1 rate_limit=100/60");
    assert_login(&fx, &strict, &code(4), "wrong-code", "", "window=1");
    assert_login(&fx, &strict, &code(3), "success", "counter=3", "window=1");

    assert_eq!(fingerprint(&file), before, "the file was touched");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("\" HOTP_COUNTER 1\n"));
}

#[test]
fn legacy_80_bit_secrets_log_in() {
    // Old versions of the tool wrote 16-character (80-bit) secrets.
    for mode in [
        &["-t", "-d", "-w", "3", "-u", "-e", "3"][..],
        &["-c", "-w", "3", "-u", "-e", "3"][..],
    ] {
        let fx = Fixture::new();
        let (file, text) = tool_file(&fx, mode);
        let legacy = secret_of(&text)[..16].to_owned();
        put(&file, &with_secret(&text, &legacy), 0o400);
        let before = fingerprint(&file);
        let svc = fx.module_service("ga-legacy", "rate_limit=100/60");
        let case = format!("{mode:?} with {legacy}");
        if mode[0] == "-c" {
            let code = oathtool_hotp(&legacy, 1);
            assert_login(&fx, &svc, &code, "success", "counter=1", &case);
        } else {
            in_one_step(30, |now| {
                fx.forget(USER);
                let code = oathtool_at_step(&legacy, 30, now);
                assert_login(&fx, &svc, &code, "success", "offset=0", &case);
            });
        }
        let scratch = scratch_of(&text);
        assert_login(&fx, &svc, &scratch[2], "scratch-code-used", "", &case);
        assert_eq!(fingerprint(&file), before, "{case}: the file was touched");
    }
}

#[test]
fn each_scratch_code_is_accepted_once_and_the_file_keeps_them() {
    let fx = Fixture::new();
    let (file, text) = tool_file(
        &fx,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5"],
    );
    let codes = scratch_of(&text);
    assert_eq!(codes.len(), 5, "{text}");
    let before = fingerprint(&file);
    let svc = fx.module_service("ga-scratch", "rate_limit=100/60");

    assert_login(
        &fx,
        &svc,
        &codes[0],
        "scratch-code-used",
        "remaining=4",
        "first",
    );
    assert_login(
        &fx,
        &svc,
        &codes[0],
        "replayed-code",
        "method=scratch",
        "again",
    );
    assert_login(
        &fx,
        &svc,
        &codes[3],
        "scratch-code-used",
        "remaining=3",
        "another",
    );
    // Eight digits that are not one of its codes.
    let wrong = ["12345678", "87654321"]
        .into_iter()
        .find(|c| !codes.iter().any(|s| s == c))
        .unwrap();
    assert_login(&fx, &svc, wrong, "wrong-code", "", "not a scratch code");

    // The file still lists every code; our state records the used ones,
    // by identifier, never the code.
    assert_eq!(fingerprint(&file), before, "the file was touched");
    let state = String::from_utf8_lossy(&std::fs::read(fx.state_path(USER)).unwrap()).into_owned();
    for c in &codes {
        assert!(!state.contains(c.as_str()), "{state}");
    }
    let used = fx.state(USER).unwrap()["used_scratch"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(used, 2);
}

#[test]
fn one_code_tried_by_twenty_processes_at_once_wins_once() {
    let fx = Fixture::new();
    let (file, text) = tool_file(&fx, &["-t", "-d", "-w", "3", "-u", "-e", "3"]);
    let before = fingerprint(&file);
    let svc = fx.module_service("ga-race", "rate_limit=1000/60");
    let secret = secret_of(&text);
    let codes = scratch_of(&text);
    avoid_step_edge(30, 10);
    let totp = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    for code in [&codes[1], &codes[2], &totp] {
        let runs = (0..20)
            .map(|_| fx.client(&svc, USER).answer(code).syslog())
            .collect();
        let results = release_together(fx.path(), runs);
        let wins = results.iter().filter(|r| r.result == "PAM_SUCCESS").count();
        assert_eq!(wins, 1, "exactly one of 20 must win: {results:?}");
        let replayed = results
            .iter()
            .filter(|r| r.audit_results() == ["replayed-code"])
            .count();
        assert_eq!(replayed, 19, "{results:?}");
    }
    assert_eq!(fingerprint(&file), before, "the file was touched");
}

#[test]
fn window_size_applies_only_where_stricter() {
    // WINDOW_SIZE 3 (one step either side) under window=3: the file's is
    // stricter and applies.
    let fx = Fixture::new();
    let (file, text) = tool_file(&fx, &["-t", "-d", "-w", "3", "-u", "-e", "1"]);
    let before = fingerprint(&file);
    let secret = secret_of(&text);
    let svc = fx.module_service("ga-w3", "window=3 rate_limit=100/60");
    in_one_step(30, |now| {
        fx.forget(USER);
        let code = |s| oathtool_at_step(&secret, 30, s);
        assert_login(&fx, &svc, &code(now - 2), "wrong-code", "", "file stricter");
        assert_login(&fx, &svc, &code(now + 2), "wrong-code", "", "file stricter");
        assert_login(&fx, &svc, &code(now - 1), "success", "offset=-1", "file");
    });
    assert_eq!(fingerprint(&file), before);

    // WINDOW_SIZE 17 (eight either side) under window=1: the module's own
    // window is stricter and applies; the file does not widen it.
    let fx = Fixture::new();
    let (file, text) = tool_file(&fx, &["-t", "-d", "-w", "17", "-u", "-e", "1"]);
    let before = fingerprint(&file);
    let secret = secret_of(&text);
    let svc = fx.module_service("ga-w17", "window=1 rate_limit=100/60");
    in_one_step(30, |now| {
        fx.forget(USER);
        let code = |s| oathtool_at_step(&secret, 30, s);
        assert_login(
            &fx,
            &svc,
            &code(now - 2),
            "wrong-code",
            "",
            "module stricter",
        );
        assert_login(
            &fx,
            &svc,
            &code(now + 2),
            "wrong-code",
            "",
            "module stricter",
        );
        assert_login(&fx, &svc, &code(now + 1), "success", "offset=1", "module");
    });
    assert_eq!(fingerprint(&file), before);
}

#[test]
fn rate_limit_applies_only_where_stricter() {
    // (RATE_LIMIT n m in the file, the module's rate_limit=, the limit in
    // force): fewer failures from either, over the longer time of either.
    let cases = [
        (("2", "60"), "5/30", "2/60", 2),
        (("10", "15"), "2/30", "2/30", 2),
        (("10", "600"), "3/30", "3/600", 3),
    ];
    for ((n, m), ours, want, failures) in cases {
        let fx = Fixture::new();
        let (file, text) = tool_file(&fx, &["-t", "-d", "-w", "3", "-r", n, "-R", m, "-e", "1"]);
        assert!(text.contains(&format!("\" RATE_LIMIT {n} {m}")), "{text}");
        let before = fingerprint(&file);
        let secret = secret_of(&text);
        let svc = fx.module_service("ga-rate", &format!("rate_limit={ours}"));
        let case = format!("RATE_LIMIT {n} {m} with rate_limit={ours}");
        in_one_step(30, |now| {
            fx.forget(USER);
            let wrong = wrong_code(&secret, 30, now, 2);
            for _ in 0..failures {
                assert_login(&fx, &svc, &wrong, "wrong-code", "", &case);
            }
            let right = oathtool_at_step(&secret, 30, now);
            let detail = format!("rate_limit={want}");
            assert_login(&fx, &svc, &right, "rate-limited", &detail, &case);
            // A scratch code is refused as well while the limit holds.
            assert_login(&fx, &svc, &scratch_of(&text)[0], "rate-limited", "", &case);
        });
        assert_eq!(fingerprint(&file), before, "{case}: the file was touched");
    }
}

#[test]
fn a_file_the_tool_made_unreadable_for_others_is_read_with_its_mode() {
    // The tool writes 0400, which the module accepts; the same file made
    // readable by the group is refused like any unsafe secret file.
    let fx = Fixture::new();
    let (file, text) = tool_file(&fx, &["-t", "-d", "-w", "3", "-u", "-e", "1"]);
    let svc = fx.module_service("ga-mode", "rate_limit=100/60");
    assert_login(
        &fx,
        &svc,
        &scratch_of(&text)[0],
        "scratch-code-used",
        "",
        "0400",
    );
    put(&file, &text, 0o440);
    let (result, audit, line) = login(&fx, &svc, &scratch_of(&text)[0]);
    assert_eq!(
        (result.as_str(), audit.as_str()),
        ("PAM_AUTH_ERR", "file-problem")
    );
    assert!(line.contains("mode 0440"), "{line}");
}

#[test]
fn a_file_googles_module_has_rewritten_is_still_read() {
    // Before the switch, Google's module adds its own bookkeeping to the
    // file: grace_period= records (`LAST0 host time`), the clock skew it is
    // learning (`RESETTING_TIME_SKEW step-skew ...`), the steps used.
    let fx = Fixture::new();
    let text = google_authenticator(
        &fx.path().join("made"),
        &["-t", "-d", "-w", "3", "-u", "-e", "2"],
        None,
    );
    let secret = secret_of(&text);
    let copy = fx.google_copy(USER, &text);
    let google = fx.service(
        "google-own",
        &[&format!(
            "auth required {GOOGLE_MODULE} secret={} user=root grace_period=3600",
            copy.display()
        )],
    );
    avoid_step_edge(30, 10);
    let used = step_now(30);
    let r = fx
        .client(&google, USER)
        .answer(&oathtool_at_step(&secret, 30, used))
        .rhost("192.0.2.7")
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // A phone ten steps behind: refused, and Google's module starts
    // learning the skew.
    let r = fx
        .client(&google, USER)
        .answer(&oathtool_at_step(&secret, 30, used - 10))
        // Another host: from 192.0.2.7 the grace period would skip the code.
        .rhost("198.51.100.9")
        .run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let rewritten = std::fs::read_to_string(&copy).unwrap();
    for want in [
        "\" LAST0 192.0.2.7 ",
        "\" RESETTING_TIME_SKEW ",
        "\" DISALLOW_REUSE ",
    ] {
        assert!(rewritten.contains(want), "no {want:?} in {rewritten}");
    }

    // Our module reads that file as it is, honouring the steps it lists.
    let file = fx.secret_file(USER, &rewritten);
    let before = fingerprint(&file);
    let svc = fx.module_service("ga-rewritten", "rate_limit=100/60");
    let code = |s| oathtool_at_step(&secret, 30, s);
    let case = "rewritten by Google's module";
    assert_login(&fx, &svc, &code(used), "replayed-code", "method=totp", case);
    assert_login(&fx, &svc, &code(used + 1), "success", "method=totp", case);
    assert_login(
        &fx,
        &svc,
        &scratch_of(&text)[1],
        "scratch-code-used",
        "",
        case,
    );
    assert_eq!(fingerprint(&file), before, "the file was touched");
}
