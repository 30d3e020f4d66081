//! The local state file of two slots, through the library's `StateDir`
//! on a real directory: which slot each write goes to, that a write in
//! place keeps the file (same inode, same length), that the slot holding
//! the last flushed record is never written until a newer flushed record
//! exists, the fallback from a torn slot, the migration of a file of the
//! earlier layout, and a state outgrowing its slots.
//!
//! Issue 17, item 1. `module_sync.rs` counts the syncs of whole logins.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pam_totp::core::otp::{Algorithm, OtpKey};
use pam_totp::state::local::{StateDir, StateLock};
use pam_totp::state::record::{Layout, PAGE};
use pam_totp::state::{StateError, UserState};

fn key() -> OtpKey {
    OtpKey::new(&[7; 20], Algorithm::Sha1, 6, 30).unwrap()
}

/// The sequence number of the whole record in each slot.
fn seqs(path: &Path) -> [Option<u64>; 2] {
    let bytes = fs::read(path).unwrap();
    match Layout::of(&bytes).unwrap() {
        Layout::Slots(s) => s.slots.map(|r| r.map(|r| r.seq)),
        Layout::Text(_) => panic!("not a file of slots"),
    }
}

fn slot(path: &Path, i: usize) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    let s = bytes.len() / 2;
    bytes[i * s..(i + 1) * s].to_vec()
}

fn fail(lock: &StateLock<'_>, at: u64) -> UserState {
    let mut st = lock.read().unwrap();
    st.failures.push(at);
    st.failed_attempts += 1;
    lock.write(&st).unwrap();
    st
}

fn spend(lock: &StateLock<'_>, step: u64) -> UserState {
    let mut st = lock.read().unwrap();
    st.spend_step(&key(), step, step * 30).unwrap();
    st.failed_attempts = 0;
    lock.write(&st).unwrap();
    st
}

fn setup() -> (tempfile::TempDir, StateDir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = StateDir::open(&tmp.path().join("state"), true).unwrap();
    (tmp, dir)
}

#[test]
fn writes_go_in_place_and_never_over_the_last_flushed_record() {
    let (_tmp, dir) = setup();
    let path = dir.state_path("alice");
    let lock = dir.lock("alice").unwrap();
    assert_eq!(lock.read().unwrap(), UserState::new());

    // The first write makes the file: slot A, slot B empty.
    let st = spend(&lock, 100);
    let made = fs::metadata(&path).unwrap();
    assert_eq!(made.len(), 2 * PAGE as u64);
    assert_eq!(made.mode() & 0o7777, 0o600);
    assert_eq!(seqs(&path), [Some(1), None]);
    assert_eq!(lock.read().unwrap(), st);

    // Failures: written into slot B, again and again; slot A (flushed)
    // is never touched.
    let a = slot(&path, 0);
    fail(&lock, 3001);
    assert_eq!(seqs(&path), [Some(1), Some(2)]);
    let st = fail(&lock, 3002);
    assert_eq!(seqs(&path), [Some(1), Some(3)]);
    assert_eq!(slot(&path, 0), a, "the flushed record was rewritten");
    assert_eq!(lock.read().unwrap(), st);

    // A spent step: into the target (B), flushed, then its copy into A.
    // Both slots now hold the new state.
    let st = spend(&lock, 101);
    assert_eq!(seqs(&path), [Some(5), Some(4)]);
    assert_eq!(lock.read().unwrap(), st);
    // The next failure goes to A (the copy), never over B (flushed).
    let b = slot(&path, 1);
    fail(&lock, 3033);
    fail(&lock, 3034);
    assert_eq!(seqs(&path), [Some(7), Some(4)]);
    assert_eq!(slot(&path, 1), b, "the flushed record was rewritten");

    // All of it in the file made first: same inode, same length, and no
    // other file in the directory.
    let now = fs::metadata(&path).unwrap();
    assert_eq!((now.ino(), now.len()), (made.ino(), made.len()));
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".alice.lock", "alice"]);
}

#[test]
fn a_torn_slot_gives_the_state_before_it_and_is_written_next() {
    for torn in [0, 1] {
        let (_tmp, dir) = setup();
        let path = dir.state_path("bob");
        let lock = dir.lock("bob").unwrap();
        spend(&lock, 200);
        let spent = spend(&lock, 201);
        // Slot A: copy (seq 3), slot B: flushed (seq 2), same state.
        let failed = fail(&lock, 6040);
        assert_eq!(seqs(&path), [Some(4), Some(2)]);
        assert_eq!(lock.read().unwrap(), failed);

        // Tear one slot: a byte of its record's payload changed.
        let mut bytes = fs::read(&path).unwrap();
        bytes[torn * PAGE + 100] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let other = 1 - torn;
        let want = if torn == 0 { &spent } else { &failed };
        assert_eq!(&lock.read().unwrap(), want, "slot {torn} torn");
        assert_eq!(lock.read().unwrap().last_step(&key()), Some(201));

        // The next write goes into the torn slot; the whole one stays.
        let kept = slot(&path, other);
        let st = fail(&lock, 6041);
        assert_eq!(slot(&path, other), kept, "slot {torn} torn");
        assert!(seqs(&path)[torn].is_some());
        assert_eq!(lock.read().unwrap(), st);
    }
}

#[test]
fn both_slots_torn_is_corrupt_and_nothing_is_written_over_it() {
    let (_tmp, dir) = setup();
    let path = dir.state_path("carol");
    let lock = dir.lock("carol").unwrap();
    spend(&lock, 300);
    fail(&lock, 9001);
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 1;
    bytes[PAGE + 40] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = lock.read().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("neither slot"), "{err}");
    assert!(err.to_string().contains("pam-totp reset"), "{err}");
    // Cut mid-slot: corrupt too, never a fresh user.
    fs::write(&path, &bytes[..PAGE + 100]).unwrap();
    let err = lock.read().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
}

#[test]
fn a_state_file_of_the_earlier_layout_is_read_and_replaced_at_the_next_write() {
    let (_tmp, dir) = setup();
    let path = dir.state_path("dave");
    let old = format!(
        "version = 1\nlast_step = 33333\nfailures = [5]\nfailed_attempts = 2\nkey_id = \"{}\"\n\
         complete = true\n",
        key().fingerprint()
    );
    fs::write(&path, &old).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    let lock = dir.lock("dave").unwrap();
    let st = lock.read().unwrap();
    assert_eq!(st.last_step(&key()), Some(33_333));
    assert_eq!(st.failed_attempts, 2);
    // Even a failure (which is not flushed in place) makes the new file,
    // whole and flushed: the text cannot be rewritten in place.
    let st = fail(&lock, 999_999);
    assert_ne!(fs::metadata(&path).unwrap().ino(), ino);
    assert_eq!(seqs(&path), [Some(1), None]);
    assert_eq!(lock.read().unwrap(), st);
    assert_eq!(st.last_step(&key()), Some(33_333));
}

#[test]
fn a_state_outgrowing_its_slots_is_made_again_with_larger_ones() {
    let (_tmp, dir) = setup();
    let path = dir.state_path("erin");
    let lock = dir.lock("erin").unwrap();
    spend(&lock, 400);
    assert_eq!(fs::metadata(&path).unwrap().len(), 2 * PAGE as u64);
    let mut st = lock.read().unwrap();
    st.used_scratch = (0..60).map(|i| format!("{i:064x}")).collect();
    lock.write(&st).unwrap();
    let len = fs::metadata(&path).unwrap().len();
    assert!(
        len > 2 * PAGE as u64 && len % (2 * PAGE as u64) == 0,
        "{len}"
    );
    assert_eq!(lock.read().unwrap(), st);
    // And then in place again.
    let ino = fs::metadata(&path).unwrap().ino();
    let st = fail(&lock, 12_345);
    assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    assert_eq!(lock.read().unwrap(), st);
}
