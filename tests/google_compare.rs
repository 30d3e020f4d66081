//! Our module and Google's own, `pam_google_authenticator.so`, give the same
//! verdict on the same codes: both through the real libpam, from one
//! private configuration directory, on files written by Google's tool, with
//! codes from oathtool. Google's module rewrites its file at each login, so
//! it gets a copy of its own; ours reads the original.
//!
//! Equivalent settings: `noskewadj` for Google's module (no learned clock
//! skew), `no_increment_hotp` (a wrong code does not move its HOTP counter;
//! ours never moves on a failure); for ours, `window=10`, so the file's
//! WINDOW_SIZE decides (or `window=1`, the equivalent of Google's default
//! of 3 when the file has none).
//!
//! Issue 6, "Must work" 3. Where the two differ by design (ours refuses
//! every replay, and any step older than the last one accepted, even
//! where the file allows reuse), the test says so explicitly.

mod common;
mod google_support;

use common::*;
use google_support::*;

const USER: &str = "root";

/// One file and both modules' services for it.
struct Pair {
    fx: Fixture,
    text: String,
    secret: String,
    ours: String,
    google: String,
}

impl Pair {
    /// A file from Google's tool with `mode`, changed by `edit`; our
    /// module with `ours` as arguments, Google's with `google`.
    fn new(mode: &[&str], edit: impl Fn(&str) -> String, ours: &str, google: &str) -> Pair {
        let fx = Fixture::new();
        let made = fx.path().join("made");
        let text = edit(&google_authenticator(&made, mode, None));
        fx.secret_file(USER, &text);
        let ours = fx.module_service("ours", &format!("{ours} rate_limit=100/60"));
        let google = fx.google_service("google", google);
        Pair {
            secret: secret_of(&text),
            fx,
            text,
            ours,
            google,
        }
    }

    /// Both verdicts on `code`, each module starting afresh (no state,
    /// a new copy of the file).
    fn fresh(&self, code: &str) -> (String, String) {
        self.fx.forget(USER);
        self.fx.google_copy(USER, &self.text);
        self.next(code)
    }

    /// Both verdicts on `code`, each module remembering what came before.
    fn next(&self, code: &str) -> (String, String) {
        let ours = self.fx.client(&self.ours, USER).answer(code).run();
        let google = self.fx.client(&self.google, USER).answer(code).run();
        (ours.result, google.result)
    }

    /// Starts a sequence: no state, a new copy of the file.
    fn restart(&self) {
        self.fx.forget(USER);
        self.fx.google_copy(USER, &self.text);
    }
}

fn verdict(accept: bool) -> String {
    if accept {
        "PAM_SUCCESS"
    } else {
        "PAM_AUTH_ERR"
    }
    .to_owned()
}

/// Both modules agree, and say `accept`.
fn agree(got: (String, String), accept: bool, case: &str) {
    let want = verdict(accept);
    assert_eq!(got, (want.clone(), want), "{case}: (ours, Google's)");
}

/// Compares the verdicts on codes `back + 1` steps back to `ahead + 1`
/// steps ahead (the window's edges and just beyond), a wrong code, eight
/// digits that are no scratch code, and a scratch code: each from a fresh
/// start, both modules within one step.
fn compare_totp(p: &Pair, step: u64, back: u64, ahead: u64, case: &str) {
    let mut offsets = vec![
        -(back as i64) - 1,
        -(back as i64),
        -1,
        0,
        1,
        ahead as i64,
        ahead as i64 + 1,
    ];
    offsets.sort_unstable();
    offsets.dedup();
    for offset in offsets {
        let accept = -(back as i64) <= offset && offset <= ahead as i64;
        let got = in_one_step(step, |now| {
            let s = (now as i64 + offset) as u64;
            p.fresh(&oathtool_at_step(&p.secret, step, s))
        });
        agree(got, accept, &format!("{case}, offset {offset}"));
    }
    let wrong = in_one_step(step, |now| {
        let code = wrong_code(&p.secret, step, now, back.max(ahead) + 2);
        p.fresh(&code)
    });
    agree(wrong, false, &format!("{case}, a wrong code"));
    let scratch = scratch_of(&p.text);
    let not_scratch = ["12345678", "87654321"]
        .into_iter()
        .find(|c| !scratch.iter().any(|s| s == c))
        .unwrap();
    agree(
        p.fresh(not_scratch),
        false,
        &format!("{case}, not a scratch code"),
    );
    if let Some(code) = scratch.first() {
        agree(p.fresh(code), true, &format!("{case}, a scratch code"));
    }
}

#[test]
fn totp_verdicts_agree_on_right_previous_step_and_wrong_codes() {
    // (options for Google's tool, STEP_SIZE, steps back and ahead).
    let cases: [(&[&str], u64, u64, u64); 4] = [
        (
            &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "3"],
            30,
            1,
            1,
        ),
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
        (
            &["-t", "-D", "-S", "20", "-w", "1", "-u", "-e", "2"],
            20,
            0,
            0,
        ),
    ];
    for (mode, step, back, ahead) in cases {
        let p = Pair::new(mode, str::to_owned, "window=10", "");
        compare_totp(&p, step, back, ahead, &format!("{mode:?}"));
    }
}

#[test]
fn verdicts_agree_without_window_size_and_on_legacy_secrets() {
    // No WINDOW_SIZE line: Google's default is 3 codes, ours window=1.
    let mode = ["-t", "-d", "-w", "3", "-u", "-e", "2"];
    let p = Pair::new(
        &mode,
        |t| without_options(t, &["WINDOW_SIZE"]),
        "window=1",
        "",
    );
    assert!(!p.text.contains("WINDOW_SIZE"));
    compare_totp(&p, 30, 1, 1, "no WINDOW_SIZE");

    // A legacy 80-bit secret (16 base32 characters), WINDOW_SIZE 5.
    let mode = ["-t", "-d", "-w", "5", "-u", "-e", "2"];
    let p = Pair::new(
        &mode,
        |t| with_secret(t, &secret_of(t)[..16]),
        "window=10",
        "",
    );
    assert_eq!(p.secret.len(), 16);
    compare_totp(&p, 30, 2, 2, "legacy 80-bit secret");
}

#[test]
fn hotp_verdicts_agree() {
    for legacy in [false, true] {
        let p = Pair::new(
            &["-c", "-w", "5", "-u", "-e", "2"],
            |t| {
                if legacy {
                    with_secret(t, &secret_of(t)[..16])
                } else {
                    t.to_owned()
                }
            },
            "window=10",
            "no_increment_hotp",
        );
        let case = if legacy { "HOTP, 80-bit" } else { "HOTP" };
        // HOTP_COUNTER 1, WINDOW_SIZE 5: counters 1 to 5.
        for counter in 0..=6 {
            let got = p.fresh(&oathtool_hotp(&p.secret, counter));
            agree(
                got,
                (1..=5).contains(&counter),
                &format!("{case}, counter {counter}"),
            );
        }
        let codes: Vec<String> = (0..=20).map(|c| oathtool_hotp(&p.secret, c)).collect();
        let wrong = ["000000", "111111", "222222"]
            .into_iter()
            .find(|w| !codes.iter().any(|c| c == w))
            .unwrap();
        agree(p.fresh(wrong), false, &format!("{case}, a wrong code"));
        agree(
            p.fresh(&scratch_of(&p.text)[1]),
            true,
            &format!("{case}, scratch"),
        );

        // In sequence: a counter once, never one behind, the look-ahead
        // moving with the last one accepted.
        p.restart();
        for (counter, accept) in [
            (3, true),
            (3, false),
            (2, false),
            (8, true),
            (8, false),
            (14, false),
            (13, true),
        ] {
            let got = p.next(&oathtool_hotp(&p.secret, counter));
            agree(
                got,
                accept,
                &format!("{case}, in sequence, counter {counter}"),
            );
        }
    }
}

#[test]
fn replays_and_scratch_codes_in_sequence_agree() {
    let p = Pair::new(
        &["-t", "-d", "-w", "3", "-r", "10", "-R", "30", "-e", "3"],
        str::to_owned,
        "window=10",
        "",
    );
    let scratch = scratch_of(&p.text);
    let got: Vec<((String, String), bool, &str)> = in_one_step(30, |now| {
        p.restart();
        let code = |s| oathtool_at_step(&p.secret, 30, s);
        vec![
            (p.next(&code(now)), true, "right code"),
            (p.next(&code(now)), false, "the same code again"),
            (p.next(&scratch[0]), true, "a scratch code"),
            (p.next(&scratch[0]), false, "the same scratch code again"),
            (p.next(&scratch[2]), true, "another scratch code"),
            (p.next(&code(now + 1)), true, "the next step's code"),
            (p.next(&code(now + 1)), false, "that code again"),
        ]
    });
    for (verdicts, accept, case) in got {
        agree(verdicts, accept, case);
    }
}

#[test]
fn where_the_modules_differ_ours_is_stricter() {
    // 1. A file that allows reuse (-D, no DISALLOW_REUSE): Google's module
    //    accepts a code twice; ours never does.
    let p = Pair::new(
        &["-t", "-D", "-w", "3", "-u", "-e", "1"],
        str::to_owned,
        "window=10",
        "",
    );
    assert!(!p.text.contains("DISALLOW_REUSE"));
    let got = in_one_step(30, |now| {
        p.restart();
        let code = oathtool_at_step(&p.secret, 30, now);
        (p.next(&code), p.next(&code))
    });
    assert_eq!(got.0, (verdict(true), verdict(true)), "first use");
    assert_eq!(
        got.1,
        (verdict(false), verdict(true)),
        "reuse: (ours, Google's)"
    );

    // 2. With DISALLOW_REUSE, after the current step's code, the previous
    //    step's code (unused, inside the window): Google's module accepts
    //    it, ours does not go back in time.
    let p = Pair::new(
        &["-t", "-d", "-w", "3", "-u", "-e", "1"],
        str::to_owned,
        "window=10",
        "",
    );
    let got = in_one_step(30, |now| {
        p.restart();
        let first = p.next(&oathtool_at_step(&p.secret, 30, now));
        let earlier = p.next(&oathtool_at_step(&p.secret, 30, now - 1));
        (first, earlier)
    });
    assert_eq!(got.0, (verdict(true), verdict(true)), "current step");
    assert_eq!(
        got.1,
        (verdict(false), verdict(true)),
        "older step: (ours, Google's)"
    );
}
