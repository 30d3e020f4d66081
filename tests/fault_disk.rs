//! The state directory when the disk says no, through the real libpam:
//! a full filesystem (no block, or no inode, left) and a read-only one.
//! A state file, once made, is written in place (issue 17), so on a full
//! filesystem logins go on and are recorded; a login that must make the
//! state file, and every login on a read-only one, is refused with a log
//! line that names the cause, the secret file and the state stay as they
//! were, and once the fault is gone the same code works: a refused login
//! spends nothing.
//!
//! The faults live in private mount namespaces (tests/ns_support): a small
//! tmpfs, or a read-only bind mount, that only the test's clients see.
//!
//! Issue 8, "Must work" 2 (full tmpfs, read-only state directory).

mod common;
mod ns_support;

use common::*;
use ns_support::MountNs;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// How to use up a filesystem.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Data until no block is left.
    Blocks,
    /// Empty files until no inode is left.
    Inodes,
}

/// Uses up the filesystem of `dir`, in files under `dir`, until the
/// kernel answers ENOSPC.
fn fill_up(dir: &Path, how: Fill) {
    match how {
        Fill::Blocks => {
            let mut f = fs::File::create(dir.join("filler")).unwrap();
            let chunk = [0xa5u8; 4096];
            loop {
                match f.write_all(&chunk) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling {}: {e}", dir.display()),
                }
            }
            // A full tmpfs has no partial page left either.
            assert!(f.write_all(&[1]).is_err(), "not full yet");
        }
        Fill::Inodes => {
            fs::create_dir(dir.join("filler")).unwrap();
            for i in 0.. {
                match fs::File::create(dir.join(format!("filler/{i}"))) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling {}: {e}", dir.display()),
                }
            }
        }
    }
}

fn free_up(dir: &Path, how: Fill) {
    match how {
        Fill::Blocks => fs::remove_file(dir.join("filler")).unwrap(),
        Fill::Inodes => fs::remove_dir_all(dir.join("filler")).unwrap(),
    }
}

#[test]
fn a_full_state_filesystem_refuses_and_the_next_login_after_freeing_space_works() {
    for (how, options) in [
        (Fill::Blocks, "size=256k"),
        (Fill::Inodes, "size=4m,nr_inodes=32"),
    ] {
        let fx = Fixture::new();
        // The secrets and the state share one small tmpfs, mounted over
        // vol/ in a private namespace: the secret file sits on the full
        // filesystem too.
        let vol = fx.path().join("vol");
        fs::create_dir(&vol).unwrap();
        let ns = MountNs::new(
            &format!(
                r#"mount -t tmpfs -o {options},mode=0755 pam-totp-test "$1"
                   mkdir -m 0700 "$1/state"; mkdir -m 0755 "$1/secrets""#
            ),
            &[&vol],
        );
        let seen = ns.path(&vol);
        let secret = seen.join("secrets/root");
        fs::write(&secret, format!("version = 1\nsecret = \"{SECRET}\"\n")).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let line = format!(
            "auth required MODULE secret={0}/secrets/${{USER}} state_dir={0}/state rate_limit=100/60",
            vol.display()
        );
        let svc = fx.service("full", &[&line]);
        let login = |typed: &str| {
            ns.enter(fx.client(&svc, "root").answer(typed).syslog())
                .run()
        };

        // The whole test must stay inside one step (and the one after).
        avoid_step_edge(30, 12);
        let r = login(&oathtool_totp(SECRET, "SHA1", 6, 30, -1));
        assert_eq!(r.result, "PAM_SUCCESS", "{how:?}, before: {r:?}");
        let state_file = seen.join("state/root");
        let secret_before = fingerprint(&secret);
        let made = fs::metadata(&state_file).unwrap();

        // A state file once made is written in place (issue 17): logins go
        // on, and are recorded, on the full filesystem. A code used there
        // stays spent.
        fill_up(&seen, how);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
        let r = login(&code);
        assert_eq!(r.result, "PAM_SUCCESS", "{how:?}, full: {r:?}");
        let r = login(&code);
        assert_eq!(r.audit_results(), ["replayed-code"], "{how:?}, full: {r:?}");
        let now = fs::metadata(&state_file).unwrap();
        assert_eq!((now.ino(), now.len()), (made.ino(), made.len()), "{how:?}");
        let st = state_toml(&fs::read(&state_file).unwrap());
        assert_eq!(key_field(&st, "last_step"), Some(code_step(&code, SECRET)));
        assert_eq!(st["failed_attempts"].as_integer(), Some(1), "{how:?}");

        // Making a state file needs room: without its state file, a login
        // on the full filesystem is refused, with the cause in the log.
        free_up(&seen, how);
        fs::remove_file(&state_file).unwrap();
        fill_up(&seen, how);
        let code = oathtool_totp(SECRET, "SHA1", 6, 30, 1);
        for typed in [code.as_str(), "000000x"] {
            let r = login(typed);
            assert_eq!(r.result, "PAM_AUTH_ERR", "{how:?}: {r:?}");
            let line = r.only_module_line();
            assert!(line.contains("result=state-error"), "{how:?}: {line}");
            assert!(
                line.contains("cannot write the new state: ")
                    && line.contains("No space left on device"),
                "{how:?}: {line}"
            );
            assert!(!state_file.exists(), "{how:?}");
        }
        assert_eq!(fingerprint(&secret), secret_before, "{how:?}: secret file");

        free_up(&seen, how);
        // The code refused on the full disk was never spent.
        let r = login(&code);
        assert_eq!(r.result, "PAM_SUCCESS", "{how:?}, after: {r:?}");
        assert_eq!(r.audit_results(), ["success"], "{how:?}: {r:?}");
        assert_eq!(fingerprint(&secret), secret_before, "{how:?}: secret file");
        let mut names: Vec<String> = fs::read_dir(seen.join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".root.lock", "root"], "{how:?}");
        let st = state_toml(&fs::read(&state_file).unwrap());
        assert_eq!(
            key_field(&st, "last_step"),
            Some(code_step(&code, SECRET)),
            "{how:?}: {st:?}"
        );
        assert_eq!(st["failed_attempts"].as_integer(), Some(0), "{how:?}");
        drop(ns);
        // Gone with the namespace: vol/ is the fixture's empty directory.
        assert_eq!(fs::read_dir(&vol).unwrap().count(), 0);
    }
}

/// The step of `code` around now (window 1), by asking oathtool.
fn code_step(code: &str, secret: &str) -> i64 {
    (-1..=1)
        .find(|&o| oathtool_totp(secret, "SHA1", 6, 30, o) == code)
        .map(|o| (now() as i64 + o * 30) / 30)
        .expect("code of a step around now")
}

#[test]
fn a_read_only_state_directory_refuses_with_a_clear_log_line() {
    let fx = Fixture::new();
    let secret = fx.enroll("root", SECRET, "SHA1", 6, 30);
    let secret_before = fingerprint(&secret);
    let svc = fx.module_service("ro", "");
    avoid_step_edge(30, 10);
    // A login while the directory is writable: state and lock exist.
    let r = fx
        .client(&svc, "root")
        .answer(&oathtool_totp(SECRET, "SHA1", 6, 30, -1))
        .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let state_before = fs::read(fx.state_path("root")).unwrap();

    let ns = MountNs::new(
        r#"mount --bind "$1" "$1"; mount -o remount,bind,ro "$1""#,
        &[fx.state_dir()],
    );
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let login = || {
        ns.enter(fx.client(&svc, "root").answer(&code).syslog())
            .run()
    };
    let check = |r: &PamResult, case: &str| {
        assert_eq!(r.result, "PAM_AUTH_ERR", "{case}: {r:?}");
        let line = r.only_module_line();
        assert!(line.contains("result=state-error"), "{case}: {line}");
        assert!(
            line.contains("cannot open the state lock: ") && line.contains("Read-only file system"),
            "{case}: {line}"
        );
        assert!(
            line.contains(&fx.state_dir().display().to_string()),
            "{case}: {line}"
        );
    };
    check(&login(), "existing state");
    assert_eq!(fs::read(fx.state_path("root")).unwrap(), state_before);

    // No lock file yet (removed from outside, where the directory is
    // writable): it cannot be created either.
    fs::remove_file(fx.state_dir().join(".root.lock")).unwrap();
    fs::remove_file(fx.state_path("root")).unwrap();
    check(&login(), "fresh user");
    assert!(fx.state_dir_names().is_empty());
    drop(ns);

    // Outside the namespace the directory is writable: the refused code
    // was not spent.
    let r = fx.client(&svc, "root").answer(&code).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(fingerprint(&secret), secret_before, "the secret file");
}

/// Issue 17: a write of either slot torn by a crash (its start new, the
/// rest old, so its checksum fails) gives the state in the other slot,
/// never a fresh user: the code that state spent is still refused, and
/// the next login writes a whole record again. The torn record is the
/// most dangerous one there is: a fresh state with no spent step.
#[test]
fn a_torn_write_of_either_slot_keeps_a_spent_code_spent() {
    use pam_totp::state::record::{self, Layout};
    for torn in [0, 1] {
        let fx = Fixture::new();
        fx.enroll("root", SECRET, "SHA1", 6, 30);
        let svc = fx.module_service("torn", "rate_limit=100/60");
        let path = fx.state_path("root");
        avoid_step_edge(30, 8);
        let spent = oathtool_totp(SECRET, "SHA1", 6, 30, -1);
        let login = |typed: &str| fx.client(&svc, "root").answer(typed).syslog().run();
        // Made with slot A; a failure goes to slot B. With torn = 1 the
        // newest record (B) is torn, with torn = 0 a success first puts a
        // flushed record in B and its copy in A, and A is torn.
        assert_eq!(login(&spent).result, "PAM_SUCCESS");
        assert_eq!(login("000000x").result, "PAM_AUTH_ERR");
        let mut last_spent = spent.clone();
        if torn == 0 {
            last_spent = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
            assert_eq!(login(&last_spent).result, "PAM_SUCCESS");
        }
        let mut bytes = fs::read(&path).unwrap();
        let size = bytes.len() / 2;
        let newest = match Layout::of(&bytes).unwrap() {
            Layout::Slots(s) => s.newest().unwrap(),
            Layout::Text(_) => panic!("not slots"),
        };
        assert_eq!(newest.0, torn, "the slot the next write would go to");
        let fresh = pam_totp::state::UserState::new().to_toml().unwrap();
        let rec = record::encode(newest.1.seq + 1, fresh.as_bytes(), size);
        // Its header and the first half of its payload written, the rest
        // of the slot as it was.
        let cut = rec.len() - fresh.len() / 2;
        bytes[torn * size..torn * size + cut].copy_from_slice(&rec[..cut]);
        fs::write(&path, &bytes).unwrap();

        for code in [&spent, &last_spent] {
            let r = login(code);
            assert_eq!(
                r.audit_results(),
                ["replayed-code"],
                "slot {torn} torn: {r:?}"
            );
        }
        let next = oathtool_totp(SECRET, "SHA1", 6, 30, 1);
        let r = login(&next);
        assert_eq!(r.result, "PAM_SUCCESS", "slot {torn} torn: {r:?}");
        assert_eq!(login(&next).audit_results(), ["replayed-code"]);
        let st = fx.state("root").unwrap();
        assert_eq!(key_field(&st, "last_step"), Some(code_step(&next, SECRET)));
    }
}
