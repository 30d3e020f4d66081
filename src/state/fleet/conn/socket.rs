//! The socket side of a connection: the TLS roots and handshake, and the
//! transport (plain or TLS) whose reads and writes are bounded.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use zeroize::Zeroizing;

use super::deadline::{is_timeout, DeadlineSocket};
use super::tls::{TlsConnector, TlsFailure, TlsStartError, TlsState, TlsStream};
use super::*;

/// The roots for `rediss://`: the `state_ca=` file or, by default,
/// [`SYSTEM_CA_BUNDLE`]. Read before connecting: a bad CA file is a
/// configuration error, not something to find out after connecting.
pub(super) fn read_roots(ca: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, ConnError> {
    let path = ca.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    // Public data, but whoever can write it can impersonate the server.
    read_private_file(path, MAX_CA_FILE, Access::NotWritableByOthers).map_err(ConnError::CaFile)
}

/// A TLS session to `host` from `connector`, trusting `roots`; the server's
/// certificate is verified for the URL's host (a DNS name or an IP
/// address).
pub(super) fn start_session(
    connector: &dyn TlsConnector,
    host: &Host,
    roots: &[u8],
) -> Result<TlsState, ConnError> {
    let name = match host {
        Host::Ip(ip) => ip.to_string(),
        Host::Name(n) => n.clone(),
    };
    match connector.start(&name, roots) {
        Ok(session) => Ok(TlsState::new(session)),
        Err(TlsStartError::NoCaCertificates) => Err(ConnError::NoCaCertificates),
        Err(TlsStartError::BadServerName) => Err(ConnError::Tls(
            "the host is not a valid TLS server name".into(),
        )),
        Err(TlsStartError::Unavailable(why)) => Err(ConnError::TlsLibrary(why)),
    }
}

pub(super) fn handshake(
    mut tls: TlsState,
    mut sock: Socket,
    deadline: Instant,
) -> Result<Transport, ConnError> {
    let mut stream = TlsStream {
        tls: &mut tls,
        io: DeadlineSocket {
            sock: &mut sock,
            deadline,
        },
    };
    if let Err(e) = stream.handshake() {
        return Err(classify(&e).unwrap_or_else(|| ConnError::Tls(e.to_string())));
    }
    Ok(Transport::Tls {
        tls: Box::new(tls),
        sock,
    })
}

/// The typed error an I/O error stands for, when it is a timeout, a TLS
/// error or a closed connection.
pub(super) fn classify(e: &io::Error) -> Option<ConnError> {
    if is_timeout(e) {
        return Some(ConnError::TimedOut);
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<TlsFailure>()) {
        return Some(ConnError::Tls(tls.0.clone()));
    }
    if matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        return Some(ConnError::Closed);
    }
    None
}

/// The transport, plain or TLS, bounded by the deadline; remembers the
/// first typed failure (a timeout, a TLS error, a closed connection),
/// which an `io::Error` would otherwise flatten.
pub(super) struct Bounded<'a> {
    transport: &'a mut Transport,
    deadline: Instant,
    pub(super) failed: Option<ConnError>,
}

impl<'a> Bounded<'a> {
    pub(super) fn new(transport: &'a mut Transport, deadline: Instant) -> Bounded<'a> {
        Bounded {
            transport,
            deadline,
            failed: None,
        }
    }

    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if self.failed.is_none() {
                self.failed = Some(
                    classify(e)
                        .unwrap_or_else(|| ConnError::Io(io::Error::new(e.kind(), e.to_string()))),
                );
            }
        }
        r
    }

    pub(super) fn failure(&mut self, e: io::Error) -> ConnError {
        self.failed.take().unwrap_or(ConnError::Io(e))
    }
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(sock) => DeadlineSocket { sock, deadline }.read(buf),
            Transport::Tls { tls, sock } => TlsStream {
                tls,
                io: DeadlineSocket { sock, deadline },
            }
            .read(buf),
        };
        self.note(r)
    }
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(sock) => DeadlineSocket { sock, deadline }.write(buf),
            Transport::Tls { tls, sock } => TlsStream {
                tls,
                io: DeadlineSocket { sock, deadline },
            }
            .write(buf),
        };
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(_) => Ok(()),
            Transport::Tls { tls, sock } => TlsStream {
                tls,
                io: DeadlineSocket { sock, deadline },
            }
            .flush(),
        };
        self.note(r)
    }
}
