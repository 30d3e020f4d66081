//! One blocking connection to the state server, every step of it bounded
//! by a deadline.
//!
//! The socket is ours: TCP (each resolved address tried with the time
//! left), a Unix socket (connect bounded with `SO_SNDTIMEO`), or TLS over
//! TCP through a session that does no I/O of its own ([`tls`]). Before
//! every read and every write the socket's timeout is set to the time
//! left until the deadline, so a server that stops
//! answering, or answers one byte at a time, cannot hold the caller past
//! it. The `redis` crate only encodes commands and parses replies (RESP).
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
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{self as nixsock, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use redis::Value;
use zeroize::Zeroizing;

use super::credentials::{read_private_file, Access, Credentials, CredentialsError};
use super::url::{Endpoint, Host, StateUrl};

/// The roots used for `rediss://` when no `state_ca=` is given (Debian's
/// ca-certificates bundle).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The largest CA bundle read.
pub const MAX_CA_FILE: u64 = 4 * 1024 * 1024;
/// The longest server error message kept (they can echo arguments).
const MAX_ERROR_TEXT: usize = 200;
/// The most bytes read for one reply: state values are small, and a
/// misbehaving server must not make the login allocate without bound.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;

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
    parser: redis::Parser,
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
            parser: redis::Parser::new(),
            deadline,
            broken: false,
        };
        if let Some(creds) = opts.credentials {
            conn.auth(creds)?;
        }
        if opts.url.db != 0 {
            let reply = conn.request(redis::cmd("SELECT").arg(opts.url.db))?;
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
    /// returned as `Ok(Value::ServerError)`; see [`expect_ok`].
    pub fn request(&mut self, cmd: &redis::Cmd) -> Result<Value, ConnError> {
        let mut replies = self.pipeline(&[cmd])?;
        replies.pop().ok_or(ConnError::Protocol("no reply".into()))
    }

    /// Sends several commands in one write and reads one reply for each,
    /// in order.
    pub fn pipeline(&mut self, cmds: &[&redis::Cmd]) -> Result<Vec<Value>, ConnError> {
        let mut packed = Vec::new();
        for cmd in cmds {
            packed.extend_from_slice(&cmd.get_packed_command());
        }
        self.send_raw(&packed)?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(self.read_reply()?);
        }
        Ok(replies)
    }

    /// `AUTH username password`, packed by hand into a buffer wiped on
    /// drop (a `redis::Cmd` would keep an unwiped copy of the password).
    fn auth(&mut self, creds: &Credentials) -> Result<(), ConnError> {
        let packed = pack_secret_command(&[
            b"AUTH",
            creds.username().as_bytes(),
            creds.password().as_bytes(),
        ]);
        self.send_raw(&packed)?;
        match self.read_reply()? {
            Value::Okay => Ok(()),
            Value::ServerError(e) => Err(ConnError::AuthRefused {
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
        let mut io = Bounded::new(&mut self.transport, self.deadline);
        match self.parser.parse_value(&mut io) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.broken = true;
                Err(match io.failed.take() {
                    Some(f) => f,
                    None => ConnError::Protocol(printable(&e.to_string())),
                })
            }
        }
    }
}

/// `Ok(())` for a `+OK` reply; the server's error, or a protocol error.
pub fn expect_ok(reply: &Value) -> Result<(), ConnError> {
    match reply {
        Value::Okay => Ok(()),
        Value::SimpleString(s) if s == "OK" => Ok(()),
        other => Err(unexpected(other)),
    }
}

/// The error for a reply of the wrong shape: the server's own error when
/// it is one.
pub fn unexpected(reply: &Value) -> ConnError {
    match reply {
        Value::ServerError(e) => ConnError::Server {
            code: printable(e.code()),
            detail: printable(e.details().unwrap_or("")),
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
        Value::Okay => "OK",
        Value::ServerError(_) => "error",
        _ => "of another type",
    }
}

/// Printable, bounded text from the server.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect()
}

/// RESP array of bulk strings, in a buffer wiped on drop.
fn pack_secret_command(args: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        16 + args.iter().map(|a| a.len() + 16).sum::<usize>(),
    ));
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
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
