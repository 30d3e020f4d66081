//! A socket whose every read and write is held to a deadline: before each
//! call, the socket's timeout is set to the time left.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use nix::sys::time::TimeVal;

use super::{remaining, Socket};

/// A timeval of at least one microsecond (zero would mean "no timeout").
pub(super) fn timeval(d: Duration) -> TimeVal {
    let d = d.max(Duration::from_micros(1));
    TimeVal::new(
        d.as_secs().min(i64::MAX as u64) as _,
        d.subsec_micros() as _,
    )
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// A socket whose every read and write gets the time left until the
/// deadline as its timeout.
pub(super) struct DeadlineSocket<'a> {
    pub(super) sock: &'a mut Socket,
    pub(super) deadline: Instant,
}

impl DeadlineSocket<'_> {
    fn arm(&mut self, read: bool) -> io::Result<()> {
        let left =
            remaining(self.deadline).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))?;
        match (&*self.sock, read) {
            (Socket::Tcp(s), true) => s.set_read_timeout(Some(left)),
            (Socket::Tcp(s), false) => s.set_write_timeout(Some(left)),
            (Socket::Unix(s), true) => s.set_read_timeout(Some(left)),
            (Socket::Unix(s), false) => s.set_write_timeout(Some(left)),
        }
    }
}

/// EAGAIN from a socket timeout becomes `TimedOut`, so nothing above
/// mistakes it for a non-blocking "try again".
fn timed<T>(r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| {
        if is_timeout(&e) {
            io::Error::from(io::ErrorKind::TimedOut)
        } else {
            e
        }
    })
}

impl Read for DeadlineSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(true)?;
        timed(match self.sock {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        })
    }
}

impl Write for DeadlineSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(false)?;
        timed(match self.sock {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
