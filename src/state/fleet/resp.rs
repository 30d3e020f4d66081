//! RESP2, the Redis/Valkey wire protocol, as far as the fleet state needs
//! it: commands encoded as arrays of bulk strings, and the five reply
//! types parsed from bytes. Pure: bytes in, bytes out; the socket and its
//! deadlines are [`super::conn`]'s.
//!
//! Encoding: a [`Command`] and every buffer it is packed into are wiped on
//! drop and never grown in place (a grown `Vec` would leave an unwiped copy
//! behind), so `AUTH`'s password leaves no copy in freed memory.
//!
//! Parsing: [`parse`] reads one reply from the start of what has arrived
//! so far: `Ok(None)` until it is complete, then the value and how many
//! bytes it took. A server that lies about lengths cannot make it
//! allocate ahead of the bytes it actually sent: a bulk string is copied
//! only once all of it is there, an array's storage grows with the
//! elements parsed, and lengths and counts beyond [`MAX_REPLY_BYTES`] are
//! refused outright. Nesting is bounded by [`MAX_DEPTH`]; no input panics.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use zeroize::Zeroizing;

/// The most bytes one reply may take: state values are small, and a
/// misbehaving server must not make the login allocate without bound.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// The most arrays nested in one another accepted (the replies to our
/// commands nest two deep: `EXEC`'s and `SCAN`'s).
pub const MAX_DEPTH: usize = 8;
/// The fewest bytes one element of an array takes (`+\r\n`): an array
/// within [`MAX_REPLY_BYTES`] has at most a third that many elements.
const MIN_ELEMENT: usize = 3;
/// The longest length or integer line (`-9223372036854775808`).
const MAX_NUMBER_DIGITS: usize = 20;

/// One command: its name and arguments, encoded as bulk strings into a
/// buffer wiped on drop.
pub struct Command {
    args: usize,
    body: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Command {
    /// The argument count only: an argument may be a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command").field("args", &self.args).finish()
    }
}

/// What a command argument can be made of: bytes, text or an integer.
pub trait Arg {
    fn bytes(&self) -> Cow<'_, [u8]>;
}

impl<T: AsRef<[u8]> + ?Sized> Arg for &T {
    fn bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed((*self).as_ref())
    }
}

macro_rules! integer_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_string().into_bytes())
            }
        }
    )*};
}
integer_arg!(u16, u32, u64, usize, i64);

impl Command {
    /// A command with no arguments yet.
    pub fn new(name: &str) -> Command {
        Command {
            args: 0,
            body: Zeroizing::new(Vec::new()),
        }
        .arg(name)
    }

    /// The command with one more argument.
    pub fn arg(mut self, arg: impl Arg) -> Command {
        let arg = arg.bytes();
        append(&mut self.body, format!("${}\r\n", arg.len()).as_bytes());
        append(&mut self.body, &arg);
        append(&mut self.body, b"\r\n");
        self.args += 1;
        self
    }

    /// Appends the command, as a RESP array of bulk strings, to `out`.
    pub fn encode_into(&self, out: &mut Zeroizing<Vec<u8>>) {
        append(out, format!("*{}\r\n", self.args).as_bytes());
        append(out, &self.body);
    }

    /// The command as a RESP array of bulk strings.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        self.encode_into(&mut out);
        out
    }
}

/// `buf` followed by `bytes`. When `buf` is full it is moved into a new,
/// larger buffer and the old one is wiped as it is dropped, rather than
/// grown in place (which could leave an unwiped copy in freed memory).
fn append(buf: &mut Zeroizing<Vec<u8>>, bytes: &[u8]) {
    let needed = buf.len().saturating_add(bytes.len());
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.saturating_mul(2).max(64)));
        bigger.extend_from_slice(buf);
        *buf = bigger;
    }
    buf.extend_from_slice(bytes);
}

/// A reply: only the RESP2 types a server sends to our commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`, `+QUEUED`: a status line (bytes that are not UTF-8 replaced).
    SimpleString(String),
    /// `-ERR ...`: the server refused the command.
    Error(ServerError),
    /// `:n`
    Int(i64),
    /// `$n`: a bulk string.
    BulkString(Vec<u8>),
    /// `*n`: an array of replies.
    Array(Vec<Value>),
    /// `$-1` (no such key) or `*-1` (a transaction that did not run).
    Nil,
}

/// An error reply: `-CODE detail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError(String);

impl ServerError {
    /// The error code: the first word (`ERR`, `NOPERM`, `WRONGPASS` ...).
    pub fn code(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }

    /// What follows the code.
    pub fn detail(&self) -> &str {
        self.0.split_once(' ').map_or("", |(_, d)| d)
    }
}

/// Why bytes are not a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespError {
    /// The first byte of a reply is not one of `+ - : $ *`.
    BadType(u8),
    /// A line ends in a lone `\r` or `\n`, or a bulk string is not
    /// followed by `\r\n` where its length says it ends.
    BadTerminator,
    /// A length, count or integer that is not a decimal number, or a
    /// negative length other than -1.
    BadNumber,
    /// A bulk string or array said to be larger than a reply may be.
    TooLarge(usize),
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::BadType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            RespError::BadTerminator => f.write_str("a line or bulk string not ended by CRLF"),
            RespError::BadNumber => f.write_str("a bad length or integer"),
            RespError::TooLarge(n) => {
                write!(
                    f,
                    "a reply of {n} bytes or elements, over {MAX_REPLY_BYTES} bytes"
                )
            }
            RespError::TooDeep => write!(f, "arrays nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for RespError {}

/// What a parsing step gives: an error, not enough bytes yet (`None`), or
/// something and the position after it.
type Step<T> = Result<Option<(T, usize)>, RespError>;

/// The reply at the start of `input`: `Ok(None)` while incomplete, else
/// the reply and the number of bytes it took (what follows is the next
/// reply's).
pub fn parse(input: &[u8]) -> Step<Value> {
    value(input, 0, 1)
}

/// The reply starting at `pos`, itself at nesting `depth` (1: the top).
/// Recursion stops at [`MAX_DEPTH`] arrays.
fn value(input: &[u8], pos: usize, depth: usize) -> Step<Value> {
    let Some(&kind) = input.get(pos) else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b':' | b'$' => {}
        b'*' if depth <= MAX_DEPTH => {}
        b'*' => return Err(RespError::TooDeep),
        other => return Err(RespError::BadType(other)),
    }
    let Some((line, next)) = line(input, pos + 1)? else {
        return Ok(None);
    };
    let reply = match (kind, line) {
        (b'+', text) => Value::SimpleString(lossy(text)),
        (b'-', text) => Value::Error(ServerError(lossy(text))),
        (b':', number) => Value::Int(integer(number)?),
        (b'$', len) => match length(len)? {
            None => Value::Nil,
            Some(len) => return bulk(input, next, len),
        },
        (_, count) => match length(count)? {
            None => Value::Nil,
            Some(count) => return array(input, next, count, depth),
        },
    };
    Ok(Some((reply, next)))
}

/// The bytes from `pos` to the next `\r\n`, and the position after it. A
/// `\r` or `\n` not part of `\r\n` is an error.
fn line(input: &[u8], pos: usize) -> Step<&[u8]> {
    let rest = input.get(pos..).unwrap_or_default();
    let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return Ok(None);
    };
    match (rest.get(end), rest.get(end + 1)) {
        (Some(b'\r'), Some(b'\n')) => {
            Ok(Some((rest.get(..end).unwrap_or_default(), pos + end + 2)))
        }
        (Some(b'\r'), None) => Ok(None),
        _ => Err(RespError::BadTerminator),
    }
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// A decimal integer: an optional `-`, then 1 to 19 digits, no overflow.
fn integer(line: &[u8]) -> Result<i64, RespError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() >= MAX_NUMBER_DIGITS {
        return Err(RespError::BadNumber);
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(RespError::BadNumber);
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10).ok_or(RespError::BadNumber)?;
        n = if negative {
            n.checked_sub(d)
        } else {
            n.checked_add(d)
        }
        .ok_or(RespError::BadNumber)?;
    }
    Ok(n)
}

/// A bulk string's length or an array's count: `None` for -1 (nil);
/// any other negative number is an error, and so is one over
/// [`MAX_REPLY_BYTES`].
fn length(line: &[u8]) -> Result<Option<usize>, RespError> {
    match integer(line)? {
        -1 => Ok(None),
        n => match usize::try_from(n) {
            Ok(n) if n <= MAX_REPLY_BYTES => Ok(Some(n)),
            Ok(n) => Err(RespError::TooLarge(n)),
            Err(_) => Err(RespError::BadNumber),
        },
    }
}

/// `len` bytes from `pos`, then `\r\n`; nothing is copied before all of
/// them have arrived.
fn bulk(input: &[u8], pos: usize, len: usize) -> Step<Value> {
    let end = pos.checked_add(len).ok_or(RespError::TooLarge(len))?;
    let Some(after) = input.get(end..) else {
        return Ok(None);
    };
    match after {
        [b'\r', b'\n', ..] => {}
        [] | [b'\r'] => return Ok(None),
        _ => return Err(RespError::BadTerminator),
    }
    let bytes = input.get(pos..end).ok_or(RespError::BadTerminator)?;
    Ok(Some((Value::BulkString(bytes.to_vec()), end + 2)))
}

/// `count` replies from `pos`, one nesting level below `depth`.
fn array(input: &[u8], mut pos: usize, count: usize, depth: usize) -> Step<Value> {
    if count > MAX_REPLY_BYTES / MIN_ELEMENT {
        return Err(RespError::TooLarge(count));
    }
    // Room for the elements the bytes at hand can hold, never more.
    let room = input.len().saturating_sub(pos) / MIN_ELEMENT;
    let mut items = Vec::with_capacity(count.min(room));
    for _ in 0..count {
        let Some((item, next)) = value(input, pos, depth + 1)? else {
            return Ok(None);
        };
        items.push(item);
        pos = next;
    }
    Ok(Some((Value::Array(items), pos)))
}

#[cfg(test)]
mod tests;
