//! The fleet's RESP2 codec (src/state/fleet/resp.rs), fed what a hostile
//! or broken state server could send.
//!
//! Input: two bytes choosing where to cut, then the bytes from the server.
//!
//! - `parse` never panics, and what it reports taking lies within the
//!   input.
//! - Cut in two, as bytes arrive from a socket, the parse gives what it
//!   gives in one piece: the first piece is either incomplete (`Ok(None)`,
//!   and the whole reply, if any, ends after the cut) or it already gives
//!   the same reply, or the same error.
//! - The two pieces as arguments of a command encode to bytes that parse
//!   back into exactly those arguments.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_totp::state::fleet::resp::{parse, Command, Value};

fuzz_target!(|input: &[u8]| {
    let Some((cut, data)) = input.split_first_chunk::<2>() else {
        return;
    };
    let cut = usize::from(u16::from_le_bytes(*cut)) % (data.len() + 1);

    let whole = parse(data);
    if let Ok(Some((_, used))) = &whole {
        assert!(
            *used > 0 && *used <= data.len(),
            "took {used} of {}",
            data.len()
        );
        // What follows is the next reply's: it does not change this one.
        assert_eq!(parse(&data[..*used]), whole);
    }
    let first = parse(&data[..cut]);
    match &first {
        Ok(None) => {
            if let Ok(Some((_, used))) = &whole {
                assert!(
                    *used > cut,
                    "a whole reply of {used} bytes, incomplete at {cut}"
                );
            }
        }
        _ => assert_eq!(first, whole, "cut at {cut}"),
    }

    let (a, b) = data.split_at(cut);
    let packed = Command::new("SET").arg(a).arg(b).encode();
    let want = Value::Array(vec![
        Value::BulkString(b"SET".to_vec()),
        Value::BulkString(a.to_vec()),
        Value::BulkString(b.to_vec()),
    ]);
    assert_eq!(parse(&packed), Ok(Some((want, packed.len()))));
});
