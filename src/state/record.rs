//! The local state file's layout: two fixed-size slots, each holding one
//! checksummed record of the state, rewritten in place. Pure: bytes in,
//! bytes out; `local` does the reading, writing and syncing.
//!
//! ```text
//! offset 0      slot A (S bytes)     offset S      slot B (S bytes)
//! record: magic "\0ptstate" | crc32 | length | sequence | S | layout 1 | payload
//!         8 bytes             4       4        8          4   4          length
//! ```
//!
//! All numbers little-endian. The payload is the state's TOML text
//! ([`UserState::to_toml`], ending in `complete = true`); the CRC-32
//! (IEEE) covers everything after itself up to the end of the payload.
//! The slot size S is a multiple of [`PAGE`] fixed when the file is made,
//! so the file is always exactly 2 S bytes and a write never grows it;
//! the slots start on page boundaries, so writing one never rewrites a
//! block of the other. The bytes of a slot after its record are ignored.
//!
//! A reader takes the valid record with the highest sequence number; a
//! slot whose record is torn (cut, half old and half new) fails its
//! checksum and is skipped, so the other slot's record is read instead.
//! Neither slot valid is corruption: the login is refused until `pam-totp
//! reset`. The newest valid record's payload must parse: a record that
//! passes its checksum but does not parse was written so (a bug, a
//! future format), and is corruption too rather than a reason to fall
//! back to an older state that may have spent less. Sequence numbers are
//! 64 bits and never wrap: a write that would need the next number after
//! `u64::MAX` fails instead (at a million writes a second that is half a
//! million years away).
//!
//! Which slot a write goes to is [`Slots::target`]; why that keeps every
//! spent code across a crash is explained there. A file that does not
//! start with the magic in either slot is a state file of the earlier
//! layout (the TOML text alone, version 1 or 2), read as it is and
//! replaced by this layout at the next write.
#![forbid(unsafe_code)]

use crate::state::{Corruption, UserState};

/// Slots start on page boundaries and are a whole number of pages long.
pub const PAGE: usize = 4096;
/// What every record starts with. The NUL makes it no TOML text.
pub const MAGIC: [u8; 8] = *b"\0ptstate";
/// The layout version in every record.
pub const LAYOUT: u32 = 1;
/// Bytes of a record before its payload.
pub const HEADER: usize = 32;
/// Largest payload: the largest state text the module reads (the caps of
/// [`UserState`] keep every state it writes below it).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest slot: the largest payload with its header, in pages.
pub const MAX_SLOT: usize = round_up(HEADER + MAX_PAYLOAD);
/// Largest state file of this layout.
pub const MAX_FILE: usize = 2 * MAX_SLOT;

const fn round_up(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

/// One valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub payload: &'a [u8],
}

/// A state file of this layout, as read: its slot size and the record
/// each slot holds, if valid.
#[derive(Debug)]
pub struct Slots<'a> {
    pub slot_size: usize,
    pub slots: [Option<Record<'a>>; 2],
}

/// What a state file's bytes are.
#[derive(Debug)]
pub enum Layout<'a> {
    Slots(Slots<'a>),
    /// The earlier layout: the TOML text alone.
    Text(&'a [u8]),
}

impl Layout<'_> {
    /// Tells the two layouts apart. A file of two slots is exactly 2 S
    /// bytes with a record magic at the start of either slot (a torn
    /// write never damages the magic: every record starts with the same
    /// bytes). A file that starts with the magic but has another size was
    /// cut or extended: corruption.
    pub fn of(bytes: &[u8]) -> Result<Layout<'_>, Corruption> {
        let len = bytes.len();
        let s = len / 2;
        let shaped = len.is_multiple_of(2 * PAGE) && (PAGE..=MAX_SLOT).contains(&s);
        if shaped && (bytes.starts_with(&MAGIC) || bytes[s..].starts_with(&MAGIC)) {
            let slots = [0, 1].map(|i| decode(&bytes[i * s..(i + 1) * s]));
            return Ok(Layout::Slots(Slots {
                slot_size: s,
                slots,
            }));
        }
        if bytes.starts_with(&MAGIC) {
            return Err(Corruption::Shape(len as u64));
        }
        Ok(Layout::Text(bytes))
    }
}

impl<'a> Slots<'a> {
    /// The valid record with the highest sequence number, and its slot.
    pub fn newest(&self) -> Option<(usize, Record<'a>)> {
        let [a, b] = self.slots;
        match (a, b) {
            (Some(a), Some(b)) if b.seq > a.seq => Some((1, b)),
            (Some(a), _) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        }
    }

    /// The slot the next write goes to: the invalid one if there is one,
    /// else the one holding the newest record. Never the other one, which
    /// holds the last record known to be on disk. The writer keeps it so:
    ///
    /// - a write that need not survive a crash goes to the target and is
    ///   not flushed: a crash leaves the target old, new or torn, and the
    ///   other slot's record, on disk all along, is still there;
    /// - a write that must survive goes to the target and is flushed
    ///   (`fdatasync`), then a copy of it with the next sequence number is
    ///   written, unflushed, into the other slot. Until the flush returns,
    ///   the other slot still holds the previous record on disk; once it
    ///   has returned the new record is on disk, and the copy makes its
    ///   slot the "other" one for every later write, so nothing touches
    ///   it until the next record that must survive is on disk. If the
    ///   process dies before the copy, the next write overwrites the
    ///   flushed record (nothing told its login it succeeded) and the
    ///   slot before it is still the one on disk.
    pub fn target(&self) -> usize {
        match self.slots {
            [None, _] => 0,
            [_, None] => 1,
            _ => self.newest().map_or(0, |(i, _)| i),
        }
    }
}

/// The slot size for a new file holding `payload_len` bytes: room for
/// twice that, so the state can grow for a while before the file must be
/// made again, in whole pages, within [`MAX_SLOT`].
pub fn slot_size_for(payload_len: usize) -> usize {
    round_up(2 * (HEADER + payload_len)).clamp(round_up(HEADER + payload_len), MAX_SLOT)
}

/// Whether a record of `payload_len` bytes fits a slot of `slot_size`.
pub fn fits(payload_len: usize, slot_size: usize) -> bool {
    payload_len <= MAX_PAYLOAD && HEADER + payload_len <= slot_size
}

/// The bytes of one record (header and payload; the rest of the slot is
/// left as it is).
pub fn encode(seq: u64, payload: &[u8], slot_size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(slot_size as u32).to_le_bytes());
    out.extend_from_slice(&LAYOUT.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&out[12..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A whole new file: the record in slot A, slot B empty (zeros, which no
/// record is), so the next write goes to B.
pub fn new_file(seq: u64, payload: &[u8], slot_size: usize) -> Vec<u8> {
    let mut out = encode(seq, payload, slot_size);
    out.resize(2 * slot_size, 0);
    out
}

/// The record in `slot`, if it is whole: magic, checksum, length within
/// the slot, the slot size and layout it was written for.
fn decode(slot: &[u8]) -> Option<Record<'_>> {
    let word = |at: usize| u32::from_le_bytes(slot[at..at + 4].try_into().unwrap_or_default());
    if !slot.starts_with(&MAGIC) || slot.len() < HEADER {
        return None;
    }
    let len = word(12) as usize;
    let end = HEADER.checked_add(len).filter(|&e| e <= slot.len())?;
    if word(24) as usize != slot.len() || word(28) != LAYOUT || crc32(&slot[12..end]) != word(8) {
        return None;
    }
    let seq = u64::from_le_bytes(slot[16..24].try_into().ok()?);
    Some(Record {
        seq,
        payload: &slot[HEADER..end],
    })
}

/// Reads a state file's bytes, of either layout (see the module's doc).
pub fn parse_state_file(bytes: &[u8]) -> Result<UserState, Corruption> {
    parse_layout(&Layout::of(bytes)?)
}

/// The state a file of either layout holds (see [`parse_state_file`]).
pub fn parse_layout(layout: &Layout<'_>) -> Result<UserState, Corruption> {
    match *layout {
        Layout::Slots(ref slots) => {
            let (_, newest) = slots.newest().ok_or(Corruption::NoValidRecord)?;
            parse_text(newest.payload)
        }
        Layout::Text(text) if text.len() > MAX_PAYLOAD => {
            Err(Corruption::TooLarge(text.len() as u64))
        }
        Layout::Text(text) => parse_text(text),
    }
}

fn parse_text(bytes: &[u8]) -> Result<UserState, Corruption> {
    let text = std::str::from_utf8(bytes).map_err(|_| Corruption::NotUtf8)?;
    UserState::from_toml(text).map_err(Corruption::Model)
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and gzip compute it): enough to
/// tell a torn write from a whole one; the file is root's, so nobody
/// forges one.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u64) -> UserState {
        UserState {
            failures: vec![n],
            failed_attempts: n,
            ..UserState::new()
        }
    }

    fn text(n: u64) -> String {
        state(n).to_toml().unwrap()
    }

    /// A file of two records, `a` in slot A and `b` in slot B.
    fn file(a: Option<u64>, b: Option<u64>) -> Vec<u8> {
        let s = PAGE;
        let mut out = vec![0u8; 2 * s];
        for (i, seq) in [a, b].into_iter().enumerate() {
            if let Some(seq) = seq {
                let r = encode(seq, text(seq).as_bytes(), s);
                out[i * s..i * s + r.len()].copy_from_slice(&r);
            }
        }
        out
    }

    fn slots(bytes: &[u8]) -> Slots<'_> {
        match Layout::of(bytes).unwrap() {
            Layout::Slots(s) => s,
            Layout::Text(_) => panic!("not slots"),
        }
    }

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let payload = text(7);
        let f = new_file(7, payload.as_bytes(), slot_size_for(payload.len()));
        assert_eq!(f.len(), 2 * PAGE);
        let s = slots(&f);
        assert_eq!(s.slot_size, PAGE);
        assert_eq!(
            s.slots[0],
            Some(Record {
                seq: 7,
                payload: payload.as_bytes()
            })
        );
        assert_eq!(s.slots[1], None, "an empty slot is no record");
        assert_eq!(parse_state_file(&f).unwrap(), state(7));
        // Slot B empty: the next write goes there.
        assert_eq!(s.target(), 1);
    }

    #[test]
    fn the_highest_sequence_wins_and_the_next_write_overwrites_it() {
        for (a, b, newest, target) in [(1, 2, 1, 1), (2, 1, 0, 0), (9, 10, 1, 1)] {
            let f = file(Some(a), Some(b));
            let s = slots(&f);
            assert_eq!(s.newest().unwrap().0, newest, "{a} {b}");
            assert_eq!(s.target(), target, "{a} {b}");
            assert_eq!(parse_state_file(&f).unwrap(), state(a.max(b)));
        }
        // No wraparound: u64::MAX is simply the highest.
        let f = file(Some(u64::MAX), Some(3));
        assert_eq!(parse_state_file(&f).unwrap(), state(u64::MAX));
    }

    #[test]
    fn a_torn_record_falls_back_to_the_other_slot() {
        // Any byte of slot A's record changed (a torn write), or the record
        // cut short by zeros: slot B's older record is read, and the next
        // write goes to slot A, never over B.
        let good = file(Some(6), Some(5));
        let len = encode(6, text(6).as_bytes(), PAGE).len();
        for at in 8..len {
            let mut f = good.clone();
            f[at] ^= 0x20;
            assert_eq!(parse_state_file(&f).unwrap(), state(5), "byte {at}");
            assert_eq!(slots(&f).target(), 0, "byte {at}");
        }
        for cut in [HEADER, len / 2, len - 1] {
            let mut f = good.clone();
            f[cut..PAGE].fill(0);
            assert_eq!(parse_state_file(&f).unwrap(), state(5), "cut at {cut}");
        }
        // The same for slot B.
        let good = file(Some(5), Some(6));
        let mut f = good.clone();
        f[PAGE + len - 1] ^= 1;
        assert_eq!(parse_state_file(&f).unwrap(), state(5));
        assert_eq!(slots(&f).target(), 1);
    }

    #[test]
    fn both_slots_broken_is_corruption() {
        let mut f = file(Some(1), Some(2));
        f[40] ^= 1;
        f[PAGE + 40] ^= 1;
        assert!(matches!(
            parse_state_file(&f),
            Err(Corruption::NoValidRecord)
        ));
        // Cut or grown: not the shape of a state file.
        let f = file(Some(1), Some(2));
        for len in [PAGE, PAGE + 100, 2 * PAGE - 1] {
            assert!(
                matches!(parse_state_file(&f[..len]), Err(Corruption::Shape(n)) if n == len as u64),
                "{len}"
            );
        }
        let mut grown = f.clone();
        grown.extend_from_slice(&[0; PAGE]);
        assert!(matches!(
            parse_state_file(&grown),
            Err(Corruption::Shape(_))
        ));
    }

    #[test]
    fn a_whole_record_that_does_not_parse_is_corruption_not_a_fallback() {
        let mut f = file(Some(1), None);
        let r = encode(2, b"version = 99\ncomplete = true\n", PAGE);
        f[PAGE..PAGE + r.len()].copy_from_slice(&r);
        assert!(matches!(parse_state_file(&f), Err(Corruption::Model(_))));
    }

    #[test]
    fn a_record_is_only_valid_in_the_slot_size_it_was_written_for() {
        // A record moved to a file of another slot size (damage) is no
        // record there.
        let payload = text(1);
        let mut f = vec![0u8; 4 * PAGE];
        let r = encode(1, payload.as_bytes(), PAGE);
        f[..r.len()].copy_from_slice(&r);
        assert!(matches!(
            parse_state_file(&f),
            Err(Corruption::NoValidRecord)
        ));
    }

    #[test]
    fn text_files_of_the_earlier_layout_are_read() {
        let t = text(3);
        assert_eq!(parse_state_file(t.as_bytes()).unwrap(), state(3));
        let v1 = b"version = 1\nlast_step = 5\ncomplete = true\n";
        assert!(parse_state_file(v1).is_ok());
        assert!(matches!(
            parse_state_file(b"version = 2\n"),
            Err(Corruption::Model(_))
        ));
        assert!(matches!(
            parse_state_file(b"\xff\xfe"),
            Err(Corruption::NotUtf8)
        ));
        // Text beyond the cap, even if it would fit the largest file of
        // slots, is too large.
        let big = vec![b' '; MAX_PAYLOAD + 1];
        assert!(matches!(
            parse_state_file(&big),
            Err(Corruption::TooLarge(_))
        ));
    }

    #[test]
    fn slot_sizes() {
        assert_eq!(slot_size_for(300), PAGE);
        assert_eq!(slot_size_for(3000), 2 * PAGE);
        assert_eq!(slot_size_for(MAX_PAYLOAD), MAX_SLOT);
        assert!(fits(MAX_PAYLOAD, MAX_SLOT));
        assert!(!fits(MAX_PAYLOAD + 1, MAX_SLOT + PAGE));
        assert!(fits(PAGE - HEADER, PAGE) && !fits(PAGE - HEADER + 1, PAGE));
    }
}
