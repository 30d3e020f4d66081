//! A corrupt state file is refused until `pam-totp reset`, through the real
//! libpam and the real tool: the damage a crash, a bad disk or a careless
//! edit leaves (zeroed, cut short, garbage, too large, not a regular
//! file). Every login is refused, the right code and a scratch code as
//! much as a wrong one, and the file is left as it was for the
//! administrator; `status` shows it; `reset` removes it and the next login
//! works. Something `reset` will not remove (a directory) keeps denying.
//!
//! module_state.rs checks the refusal and its log line for one attempt per
//! kind of syntax error, cli_login.rs one garbage file cleared by reset;
//! this is the whole cycle for each kind of damage.
//!
//! Issue 8, "Must work" 2 (a corrupt state file: refused until reset).

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;

const SCRATCH: &str = "31415926";

fn tool(fx: &Fixture, args: &[&str]) -> (i32, String, String) {
    let cfg = fx.config_file("empty.toml", "");
    let out = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
        .args(args)
        .args(["--user", "root", "--config"])
        .arg(cfg)
        .arg("--state-dir")
        .arg(fx.state_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

type Damage = fn(&Path, &[u8]);

/// Ways a state file is found damaged; each gets the path and the good
/// state that was there.
const DAMAGE: [(&str, Damage); 10] = [
    ("zeroed", |p, good| {
        fs::write(p, vec![0u8; good.len()]).unwrap()
    }),
    ("cut short", |p, good| {
        // Inside the list of failures of a slot: no longer two slots.
        let at = good.windows(12).position(|w| w == b"failures = [").unwrap();
        fs::write(p, &good[..at + 14]).unwrap()
    }),
    ("both slots torn", |p, good| {
        // A byte of each slot's record changed: neither checksum holds,
        // so neither slot can stand in for the other (issue 17).
        let mut bad = good.to_vec();
        let half = bad.len() / 2;
        bad[40] ^= 0x01;
        bad[half + 40] ^= 0x01;
        fs::write(p, bad).unwrap()
    }),
    ("cut mid-slot", |p, good| {
        fs::write(p, &good[..good.len() / 2 + 100]).unwrap()
    }),
    ("cut at a line end", |p, good| {
        // A state file of the earlier layout (the text alone) with the
        // same state, cut at its last line: what is left is valid TOML, a
        // shorter state; only the missing last line (`complete = true`)
        // tells it from the real thing.
        let st = pam_totp::state::record::parse_state_file(good).unwrap();
        let text = st.to_toml().unwrap();
        let body = text.len() - b"complete = true\n".len();
        assert!(text.ends_with("complete = true\n"));
        fs::write(p, &text.as_bytes()[..body]).unwrap()
    }),
    ("garbage", |p, _| {
        fs::write(p, b"\x89PNG\r\n\x1a\n\xff\xfe").unwrap()
    }),
    ("empty", |p, _| fs::write(p, b"").unwrap()),
    ("too large", |p, _| {
        let failures = vec!["1700000000"; 10_000].join(", ");
        fs::write(p, format!("version = 1\nfailures = [{failures}]\n")).unwrap()
    }),
    ("a FIFO", |p, _| {
        fs::remove_file(p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }),
    ("a directory", |p, _| {
        fs::remove_file(p).unwrap();
        fs::create_dir(p).unwrap();
    }),
];

/// What is at `p`, to show it was not touched.
fn snapshot(p: &Path) -> (Option<Vec<u8>>, bool, bool) {
    let m = fs::symlink_metadata(p).unwrap();
    let bytes = m.is_file().then(|| fs::read(p).unwrap());
    (bytes, m.is_dir(), m.file_type().is_fifo())
}

#[test]
fn a_damaged_state_file_is_refused_until_reset() {
    for (case, damage) in DAMAGE {
        let fx = Fixture::new();
        let secret = fx.enroll_with_scratch("root", SECRET, &[SCRATCH]);
        let secret_before = fingerprint(&secret);
        let svc = fx.module_service("corrupt", "rate_limit=100/60");
        let login = |typed: &str| fx.client(&svc, "root").answer(typed).syslog().run();
        avoid_step_edge(30, 12);

        // A good state with some content: a used step and two failures.
        assert_eq!(login("000000x").result, "PAM_AUTH_ERR");
        assert_eq!(login("000000y").result, "PAM_AUTH_ERR");
        let r = login(&oathtool_totp(SECRET, "SHA1", 6, 30, -1));
        assert_eq!(r.result, "PAM_SUCCESS", "{case}: {r:?}");
        let path = fx.state_path("root");
        let good = fs::read(&path).unwrap();
        damage(&path, &good);
        let damaged = snapshot(&path);

        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        for typed in [code.as_str(), SCRATCH, "000000x", code.as_str(), SCRATCH] {
            let r = login(typed);
            assert_eq!(r.result, "PAM_AUTH_ERR", "{case}: {r:?}");
            let line = r.only_module_line();
            assert!(line.contains("result=state-error"), "{case}: {line}");
            assert!(line.contains("is corrupt"), "{case}: {line}");
            assert!(line.contains("pam-totp reset"), "{case}: {line}");
        }
        assert_eq!(snapshot(&path), damaged, "{case}: kept for the admin");

        let (rc, out, err) = tool(&fx, &["status", "--json"]);
        assert_eq!(rc, 1, "{case}: {out} {err}");
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(s["locked"], true, "{case}: {s}");
        assert!(err.contains("is corrupt"), "{case}: {err}");

        let (rc, _, err) = tool(&fx, &["reset"]);
        if case == "a directory" {
            // Not something the module ever writes: reset does not delete
            // a directory tree, says why, and logins stay refused.
            assert_eq!(rc, 1, "{case}: {err}");
            assert!(err.contains("Is a directory"), "{case}: {err}");
            assert_eq!(login(&code).audit_results(), ["state-error"], "{case}");
            assert_eq!(snapshot(&path), damaged, "{case}");
            continue;
        }
        assert_eq!(rc, 0, "{case}: {err}");
        assert!(err.contains("removed the corrupt state"), "{case}: {err}");
        // The first login after the reset, with the code refused all along.
        let r = login(&code);
        assert_eq!(r.result, "PAM_SUCCESS", "{case}: {r:?}");
        let st = fx.state("root").unwrap();
        assert_eq!(st["failed_attempts"].as_integer(), Some(0), "{case}");
        assert_eq!(login(SCRATCH).result, "PAM_SUCCESS", "{case}");
        assert_eq!(login(SCRATCH).result, "PAM_AUTH_ERR", "{case}");
        assert_eq!(fx.state_dir_names(), [".root.lock", "root"], "{case}");
        assert_eq!(fingerprint(&secret), secret_before, "{case}: secret file");
    }
}
