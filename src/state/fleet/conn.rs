//! One blocking connection to the state server, every step of it bounded
//! by a deadline.
//!
//! The socket is ours: TCP (each resolved address tried with the time
//! left), a Unix socket (connect bounded with `SO_SNDTIMEO`), or TLS over
//! TCP through a session that does no I/O of its own ([`tls`]). Before
//! every read and every write the socket's timeout is set to the time
//! left until the deadline, so a server that stops
//! answering, or answers one byte at a time, cannot hold the caller past
//! it. Commands and replies (RESP) are encoded and parsed by our own
//! codec, [`super::resp`], from the bytes read so far.
//!
//! TLS: the session comes from the [`TlsConnector`] in the options (the
//! module's loads the TLS library installed beside it, `crate::pam::tls`;
//! without one, `rediss://` is refused). The server's certificate is
//! always verified against the roots in `state_ca=` or, by default,
//! [`SYSTEM_CA_BUNDLE`], for the URL's host (a DNS name or an IP address).
//!
//! Not bounded by the deadline: resolving a host *name* (the system
//! resolver's own timeouts apply); use an IP address or /etc/hosts where
//! that matters.
//!
//! After any failure the connection is marked broken and refuses further
//! use: a reply that arrives late must never be read as the answer to the
//! next command.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{self as nixsock, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use zeroize::Zeroizing;

use super::credentials::{read_private_file, Access, Credentials, CredentialsError};
pub use super::resp::MAX_REPLY_BYTES;
use super::resp::{self, Command, Value};
use super::url::{Endpoint, Host, StateUrl};

/// The roots used for `rediss://` when no `state_ca=` is given (Debian's
/// ca-certificates bundle).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The largest CA bundle read.
pub const MAX_CA_FILE: u64 = 4 * 1024 * 1024;
/// The longest server error message kept (they can echo arguments).
const MAX_ERROR_TEXT: usize = 200;
/// The most bytes asked of the socket in one read.
const READ_CHUNK: usize = 16 * 1024;

/// What is needed to open a connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnectOptions<'a> {
    pub url: &'a StateUrl,
    /// `AUTH username password` after connecting, when given.
    pub credentials: Option<&'a Credentials>,
    /// The CA bundle for TLS; [`SYSTEM_CA_BUNDLE`] when `None`.
    pub ca: Option<&'a Path>,
    /// Where TLS sessions come from; `rediss://` needs one.
    pub tls: Option<&'a dyn TlsConnector>,
}

/// Why talking to the state server failed. No variant holds or prints a
/// password or the content of a credentials file.
#[derive(Debug)]
pub enum ConnError {
    /// Refused, unreachable, no such socket, or the name did not resolve.
    Connect(io::Error),
    /// The deadline passed while connecting, reading or writing.
    TimedOut,
    /// The TLS handshake failed (for instance an unknown CA or a name
    /// mismatch), or a TLS record was bad.
    Tls(String),
    /// TLS is not available: no connector, or its library could not be
    /// loaded (missing, not root's, another version).
    TlsLibrary(String),
    /// The `state_ca=` file (or the system bundle) was refused or held no
    /// usable certificate.
    CaFile(CredentialsError),
    NoCaCertificates,
    /// `AUTH` was refused; `code` is the server's error code (`WRONGPASS`).
    AuthRefused {
        code: String,
    },
    /// The server closed the connection.
    Closed,
    Io(io::Error),
    /// A reply that does not parse, or not of the shape the command expects.
    Protocol(String),
    /// The server answered with an error (`NOPERM`, `ERR`, ...).
    Server {
        code: String,
        detail: String,
    },
    /// An earlier failure left the connection unusable.
    Broken,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Connect(e) => write!(f, "cannot connect to the state server: {e}"),
            ConnError::TimedOut => write!(f, "the state server did not answer in time"),
            ConnError::Tls(e) => write!(f, "TLS with the state server failed: {e}"),
            ConnError::TlsLibrary(e) => write!(f, "TLS is not available: {e}"),
            ConnError::CaFile(e) => write!(f, "the state CA bundle {e}"),
            ConnError::NoCaCertificates => {
                write!(f, "the state CA bundle holds no usable certificate")
            }
            ConnError::AuthRefused { code } => {
                write!(f, "the state server refused the credentials ({code})")
            }
            ConnError::Closed => write!(f, "the state server closed the connection"),
            ConnError::Io(e) => write!(f, "state server connection: {e}"),
            ConnError::Protocol(e) => write!(f, "unexpected reply from the state server: {e}"),
            ConnError::Server { code, detail } => {
                write!(f, "the state server answered {code} {detail}")
            }
            ConnError::Broken => write!(f, "the state server connection failed earlier"),
        }
    }
}

impl std::error::Error for ConnError {}

/// An open, authenticated connection with the right database selected.
pub struct Conn {
    transport: Transport,
    /// Bytes read and not yet parsed: the start of the next reply.
    pending: Vec<u8>,
    deadline: Instant,
    broken: bool,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

enum Transport {
    Plain(Socket),
    Tls { tls: Box<TlsState>, sock: Socket },
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.transport {
            Transport::Plain(Socket::Tcp(_)) => "tcp",
            Transport::Plain(Socket::Unix(_)) => "unix",
            Transport::Tls { .. } => "tls",
        };
        f.debug_struct("Conn")
            .field("transport", &kind)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Conn {
    /// Connects, then authenticates and selects the database, all before
    /// `deadline`.
    pub fn connect(opts: &ConnectOptions<'_>, deadline: Instant) -> Result<Conn, ConnError> {
        let transport = match &opts.url.endpoint {
            Endpoint::Unix { path } => {
                Transport::Plain(Socket::Unix(connect_unix(path, deadline)?))
            }
            Endpoint::Tcp {
                host,
                port,
                tls: false,
            } => Transport::Plain(Socket::Tcp(connect_tcp(host, *port, deadline)?)),
            Endpoint::Tcp {
                host,
                port,
                tls: true,
            } => {
                // Roots and session first: a bad CA file or a missing TLS
                // library is a configuration error, not something to find
                // out after connecting.
                let connector = opts.tls.ok_or_else(|| {
                    ConnError::TlsLibrary("this program was built without TLS".into())
                })?;
                let roots = read_roots(opts.ca)?;
                let session = start_session(connector, host, &roots)?;
                let sock = Socket::Tcp(connect_tcp(host, *port, deadline)?);
                handshake(session, sock, deadline)?
            }
        };
        let mut conn = Conn {
            transport,
            pending: Vec::new(),
            deadline,
            broken: false,
        };
        if let Some(creds) = opts.credentials {
            conn.auth(creds)?;
        }
        if opts.url.db != 0 {
            let reply = conn.request(&Command::new("SELECT").arg(opts.url.db))?;
            expect_ok(&reply)?;
        }
        Ok(conn)
    }

    /// Sets the instant every later read and write must finish by.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends one command and reads its reply. A server error reply is
    /// returned as `Ok(Value::Error)`; see [`expect_ok`].
    pub fn request(&mut self, cmd: &Command) -> Result<Value, ConnError> {
        let mut replies = self.pipeline(&[cmd])?;
        replies.pop().ok_or(ConnError::Protocol("no reply".into()))
    }

    /// Sends several commands in one write and reads one reply for each,
    /// in order. Bytes beyond the last reply are a protocol error: they
    /// answer nothing that was asked.
    pub fn pipeline(&mut self, cmds: &[&Command]) -> Result<Vec<Value>, ConnError> {
        let mut packed = Zeroizing::new(Vec::new());
        for cmd in cmds {
            cmd.encode_into(&mut packed);
        }
        self.send_raw(&packed)?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(self.read_reply()?);
        }
        if !self.pending.is_empty() {
            self.broken = true;
            return Err(ConnError::Protocol("bytes after the last reply".into()));
        }
        Ok(replies)
    }

    /// `AUTH username password`; the command's buffers are wiped on drop
    /// ([`Command`]).
    fn auth(&mut self, creds: &Credentials) -> Result<(), ConnError> {
        let auth = Command::new("AUTH")
            .arg(creds.username())
            .arg(creds.password());
        match self.request(&auth)? {
            Value::SimpleString(s) if s == "OK" => Ok(()),
            Value::Error(e) => Err(ConnError::AuthRefused {
                code: printable(e.code()),
            }),
            // Anything else is not an answer to AUTH: not a password echo
            // either way, but say nothing about it.
            _ => Err(ConnError::Protocol("unexpected reply to AUTH".into())),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        if self.broken {
            return Err(ConnError::Broken);
        }
        let mut io = Bounded::new(&mut self.transport, self.deadline);
        let result = io.write_all(bytes).and_then(|()| io.flush());
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.broken = true;
                Err(io.failure(e))
            }
        }
    }

    fn read_reply(&mut self) -> Result<Value, ConnError> {
        if self.broken {
            return Err(ConnError::Broken);
        }
        let reply = self.parse_reply();
        if reply.is_err() {
            self.broken = true;
        }
        reply
    }

    /// Reads until [`resp::parse`] finds a whole reply in the pending
    /// bytes, which never grow past [`MAX_REPLY_BYTES`].
    fn parse_reply(&mut self) -> Result<Value, ConnError> {
        let mut io = Bounded::new(&mut self.transport, self.deadline);
        loop {
            match resp::parse(&self.pending) {
                Ok(Some((reply, used))) => {
                    self.pending.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnError::Protocol(e.to_string())),
            }
            let have = self.pending.len();
            let room = MAX_REPLY_BYTES.saturating_sub(have).min(READ_CHUNK);
            if room == 0 {
                return Err(ConnError::Protocol(format!(
                    "reply over {MAX_REPLY_BYTES} bytes"
                )));
            }
            self.pending.resize(have + room, 0);
            let n = io
                .read(&mut self.pending[have..])
                .map_err(|e| io.failure(e))?;
            self.pending.truncate(have + n);
            if n == 0 {
                return Err(ConnError::Closed);
            }
        }
    }
}

/// `Ok(())` for a `+OK` reply; the server's error, or a protocol error.
pub fn expect_ok(reply: &Value) -> Result<(), ConnError> {
    match reply {
        Value::SimpleString(s) if s == "OK" => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// The error for a reply of the wrong shape: the server's own error when
/// it is one.
pub fn unexpected(reply: &Value) -> ConnError {
    match reply {
        Value::Error(e) => ConnError::Server {
            code: printable(e.code()),
            detail: printable(e.detail()),
        },
        other => ConnError::Protocol(format!("unexpected reply {}", kind_of(other))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::BulkString(_) => "bulk string",
        Value::Array(_) => "array",
        Value::SimpleString(_) => "status",
        Value::Error(_) => "error",
    }
}

/// Printable, bounded text from the server.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect()
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn connect_tcp(host: &Host, port: u16, deadline: Instant) -> Result<TcpStream, ConnError> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()
            .map_err(ConnError::Connect)?
            .collect(),
    };
    let mut last = None;
    for addr in addrs {
        let Some(left) = remaining(deadline) else {
            return Err(ConnError::TimedOut);
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                // Commands go out in one write each; no need to wait for
                // Nagle's algorithm.
                s.set_nodelay(true).map_err(ConnError::Io)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if is_timeout(&e) => ConnError::TimedOut,
        Some(e) => ConnError::Connect(e),
        None => ConnError::Connect(io::Error::new(
            io::ErrorKind::NotFound,
            "the host name has no address",
        )),
    })
}

/// A Unix connect waits (when the server's backlog is full) for at most
/// `SO_SNDTIMEO`: set to the time left, it bounds the connect too.
fn connect_unix(path: &Path, deadline: Instant) -> Result<UnixStream, ConnError> {
    let left = remaining(deadline).ok_or(ConnError::TimedOut)?;
    let fd: OwnedFd = nixsock::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ConnError::Io(e.into()))?;
    nixsock::setsockopt(&fd, sockopt::SendTimeout, &timeval(left))
        .map_err(|e| ConnError::Io(e.into()))?;
    let addr = UnixAddr::new(path).map_err(|e| ConnError::Connect(e.into()))?;
    match nixsock::connect(fd.as_raw_fd(), &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(nix::errno::Errno::EAGAIN) => Err(ConnError::TimedOut),
        Err(e) => Err(ConnError::Connect(e.into())),
    }
}

mod deadline;
mod socket;
pub mod tls;
use deadline::{is_timeout, timeval};
use socket::{handshake, read_roots, start_session, Bounded};
use tls::{TlsConnector, TlsState};

#[cfg(test)]
mod tests;
