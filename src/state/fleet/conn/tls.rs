//! TLS to the state server through a session that does no I/O.
//!
//! The module carries no TLS of its own (it would double its size for a
//! feature most hosts never use): a [`TlsConnector`] makes sessions, and
//! `TlsStream` drives one over our socket, so every byte still goes
//! through `DeadlineSocket` and its deadline. The module's connector
//! loads the TLS library beside it on first use (`crate::pam::tls`); the
//! tool links the same library in.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read, Write};

use super::deadline::DeadlineSocket;

/// The most bytes of TLS records moved at once between the socket and the
/// session (a record is at most 16 KiB plus its header and padding).
const CHUNK: usize = 17 * 1024;

/// Why a session could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsStartError {
    /// The CA bundle held no usable certificate.
    NoCaCertificates,
    /// The TLS library could not be loaded or is not the one this build
    /// expects, or refused to start a session (the text says which).
    Unavailable(String),
    /// The host is not a valid TLS server name.
    BadServerName,
}

impl fmt::Display for TlsStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsStartError::NoCaCertificates => {
                write!(f, "the CA bundle holds no usable certificate")
            }
            TlsStartError::Unavailable(why) => write!(f, "{why}"),
            TlsStartError::BadServerName => write!(f, "the host is not a valid TLS server name"),
        }
    }
}

/// What a read of plain text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainRead {
    Data(usize),
    /// Nothing yet: the session needs more bytes from the socket.
    NeedInput,
    /// The server ended the session (close_notify).
    Closed,
}

/// One TLS client session without I/O; the server's certificate is
/// verified by it. Errors are the library's text; after one, the session
/// is not used again.
pub trait TlsSession {
    fn is_handshaking(&self) -> bool;
    /// Whether records wait to be sent.
    fn wants_write(&self) -> bool;
    /// Moves records to send into `out`; how many bytes.
    fn take_output(&mut self, out: &mut [u8]) -> Result<usize, String>;
    /// Takes bytes read from the socket; how many (the rest is given again).
    fn give_input(&mut self, input: &[u8]) -> Result<usize, String>;
    /// Queues plain text; how many bytes were queued.
    fn write_plain(&mut self, data: &[u8]) -> Result<usize, String>;
    fn read_plain(&mut self, buf: &mut [u8]) -> Result<PlainRead, String>;
}

/// Makes TLS sessions: to `server` (a DNS name or an IP address as text),
/// trusting the PEM certificates in `roots_pem`.
pub trait TlsConnector: fmt::Debug + Sync {
    fn start(&self, server: &str, roots_pem: &[u8]) -> Result<Box<dyn TlsSession>, TlsStartError>;
}

/// A TLS failure inside an `io::Error`, so the caller can tell it from a
/// socket error.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

fn failure(text: String) -> io::Error {
    io::Error::other(TlsFailure(text))
}

/// A session and the bytes read from the socket that it has not taken
/// yet. Kept with the connection between reads.
pub struct TlsState {
    pub session: Box<dyn TlsSession>,
    pending: Vec<u8>,
}

impl TlsState {
    pub fn new(session: Box<dyn TlsSession>) -> TlsState {
        TlsState {
            session,
            pending: Vec::new(),
        }
    }
}

/// A session driven over a socket held to its deadline.
pub(super) struct TlsStream<'a, 'b> {
    pub(super) tls: &'a mut TlsState,
    pub(super) io: DeadlineSocket<'b>,
}

impl TlsStream<'_, '_> {
    /// Sends every record the session has to send.
    fn send_pending(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        while self.tls.session.wants_write() {
            let n = self.tls.session.take_output(&mut buf).map_err(failure)?;
            if n == 0 {
                return Err(failure("the TLS session had records but gave none".into()));
            }
            self.io.write_all(&buf[..n])?;
        }
        Ok(())
    }

    /// Reads from the socket (unless bytes are still pending) and gives
    /// the session what it takes. End of file is `UnexpectedEof`.
    fn receive(&mut self) -> io::Result<()> {
        if self.tls.pending.is_empty() {
            let mut buf = vec![0u8; CHUNK];
            let n = self.io.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.truncate(n);
            self.tls.pending = buf;
        }
        let taken = self
            .tls
            .session
            .give_input(&self.tls.pending)
            .map_err(failure)?;
        if taken == 0 {
            return Err(failure("the TLS session took no input".into()));
        }
        self.tls.pending.drain(..taken);
        Ok(())
    }

    /// Runs the handshake to its end.
    pub(super) fn handshake(&mut self) -> io::Result<()> {
        while self.tls.session.is_handshaking() {
            self.send_pending()?;
            if !self.tls.session.is_handshaking() {
                break;
            }
            self.receive()?;
        }
        self.send_pending()
    }
}

impl Read for TlsStream<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.session.read_plain(buf).map_err(failure)? {
                PlainRead::Data(n) => return Ok(n),
                PlainRead::Closed => return Ok(0),
                PlainRead::NeedInput => {
                    self.receive()?;
                    // Whatever the session must answer (a key update).
                    self.send_pending()?;
                }
            }
        }
    }
}

impl Write for TlsStream<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tls.session.write_plain(buf).map_err(failure)?;
        self.send_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

#[cfg(test)]
mod tests;
