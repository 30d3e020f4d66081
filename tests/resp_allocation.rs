//! The fleet's RESP parser allocates for the bytes a server has sent, never
//! for the lengths it claims: a bulk string or an array announced large
//! and not (yet) sent costs nothing while the parser waits for it. Its own
//! test binary, so a counting allocator can watch every allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pam_totp::state::fleet::resp::{parse, RespError, Value, MAX_REPLY_BYTES};

/// The system allocator, noting the largest allocation this thread asks
/// for while `WATCHING`.
struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the thread-locals may be gone while a thread exits.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is passed on unchanged to the system allocator; the
// bookkeeping only reads and writes this thread's own cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout (see alloc).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Parsed = Result<Option<(Value, usize)>, RespError>;

/// What `parse(input)` gives, and the largest allocation it made.
fn largest_allocation(input: &[u8]) -> (Parsed, usize) {
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let result = parse(input);
    WATCHING.with(|w| w.set(false));
    (result, LARGEST.with(Cell::get))
}

#[test]
fn an_announced_array_allocates_only_for_the_elements_sent() {
    // The most elements a reply within the cap can hold, announced, and
    // three sent: waiting for the rest costs a few bytes, not room for a
    // third of a million replies.
    let most = MAX_REPLY_BYTES / 3;
    let input = format!("*{most}\r\n:1\r\n:2\r\n:3\r\n");
    let (result, largest) = largest_allocation(input.as_bytes());
    assert_eq!(result, Ok(None));
    assert!(largest < 1024, "{largest} bytes allocated");

    // Arrays nested in it announced large too.
    let input = format!("*{most}\r\n*{most}\r\n*{most}\r\n:1\r\n");
    let (result, largest) = largest_allocation(input.as_bytes());
    assert_eq!(result, Ok(None));
    assert!(largest < 1024, "{largest} bytes allocated");
}

#[test]
fn an_announced_bulk_string_allocates_nothing_until_it_is_all_there() {
    let mut input = format!("${MAX_REPLY_BYTES}\r\n").into_bytes();
    input.resize(input.len() + 1000, b'x');
    let (result, largest) = largest_allocation(&input);
    assert_eq!(result, Ok(None));
    assert_eq!(largest, 0);

    // Once it has arrived, it is copied, once.
    input.resize(input.len() + MAX_REPLY_BYTES - 1000, b'x');
    input.extend_from_slice(b"\r\n");
    let (result, largest) = largest_allocation(&input);
    let Ok(Some((Value::BulkString(bytes), used))) = result else {
        panic!("not a bulk string");
    };
    assert_eq!((bytes.len(), used), (MAX_REPLY_BYTES, input.len()));
    assert!(largest >= MAX_REPLY_BYTES, "{largest}");
}
