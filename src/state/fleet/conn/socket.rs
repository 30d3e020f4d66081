//! The socket side of a connection: the TLS client configuration and
//! handshake, and every read and write held to the deadline.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::time::TimeVal;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::*;

/// A timeval of at least one microsecond (zero would mean "no timeout").
pub(super) fn timeval(d: Duration) -> TimeVal {
    let d = d.max(Duration::from_micros(1));
    TimeVal::new(
        d.as_secs().min(i64::MAX as u64) as _,
        d.subsec_micros() as _,
    )
}

/// The client configuration: the one built-in provider, TLS 1.2 and 1.3,
/// verified server certificates, no client certificate.
pub(super) fn tls_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, ConnError> {
    let path = ca.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    // Public data, but whoever can write it can impersonate the server.
    let pem = read_private_file(path, MAX_CA_FILE, Access::NotWritableByOthers)
        .map_err(ConnError::CaFile)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots
        .add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
    if added == 0 {
        return Err(ConnError::NoCaCertificates);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub(super) fn handshake(
    config: Arc<ClientConfig>,
    host: &Host,
    mut sock: Socket,
    deadline: Instant,
) -> Result<Transport, ConnError> {
    let name = match host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name(n) => ServerName::try_from(n.clone())
            .map_err(|_| ConnError::Tls("the host is not a valid TLS server name".into()))?,
    };
    let mut tls = ClientConnection::new(config, name).map_err(|e| ConnError::Tls(e.to_string()))?;
    let mut io = DeadlineSocket {
        sock: &mut sock,
        deadline,
    };
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut io) {
            return Err(classify(&e).unwrap_or_else(|| ConnError::Tls(e.to_string())));
        }
    }
    Ok(Transport::Tls {
        tls: Box::new(tls),
        sock,
    })
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// The typed error an I/O error stands for, when it is a timeout, a TLS
/// error or a closed connection.
pub(super) fn classify(e: &io::Error) -> Option<ConnError> {
    if is_timeout(e) {
        return Some(ConnError::TimedOut);
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return Some(ConnError::Tls(tls.to_string()));
    }
    if matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        return Some(ConnError::Closed);
    }
    None
}

/// A socket whose every read and write gets the time left until the
/// deadline as its timeout.
pub(super) struct DeadlineSocket<'a> {
    sock: &'a mut Socket,
    deadline: Instant,
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
pub(super) fn timed<T>(r: io::Result<T>) -> io::Result<T> {
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

/// The transport, plain or TLS, bounded by the deadline; remembers the
/// first typed failure, which the RESP parser would otherwise flatten into
/// its own error.
pub(super) struct Bounded<'a> {
    transport: &'a mut Transport,
    deadline: Instant,
    pub(super) failed: Option<ConnError>,
    /// Bytes still allowed to be read (see [`MAX_REPLY_BYTES`]).
    budget: usize,
}

impl<'a> Bounded<'a> {
    pub(super) fn new(transport: &'a mut Transport, deadline: Instant) -> Bounded<'a> {
        Bounded {
            transport,
            deadline,
            failed: None,
            budget: MAX_REPLY_BYTES,
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
        if self.budget == 0 {
            self.failed = Some(ConnError::Protocol(format!(
                "reply over {MAX_REPLY_BYTES} bytes"
            )));
            return Err(io::Error::other("reply too large"));
        }
        let limit = buf.len().min(self.budget);
        let buf = &mut buf[..limit];
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(sock) => DeadlineSocket { sock, deadline }.read(buf),
            Transport::Tls { tls, sock } => {
                let mut io = DeadlineSocket { sock, deadline };
                rustls::Stream::new(tls.as_mut(), &mut io).read(buf)
            }
        };
        match r {
            Ok(0) if !buf.is_empty() && self.failed.is_none() => {
                self.failed = Some(ConnError::Closed);
            }
            Ok(n) => self.budget -= n,
            Err(_) => {}
        }
        self.note(r)
    }
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(sock) => DeadlineSocket { sock, deadline }.write(buf),
            Transport::Tls { tls, sock } => {
                let mut io = DeadlineSocket { sock, deadline };
                rustls::Stream::new(tls.as_mut(), &mut io).write(buf)
            }
        };
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.deadline;
        let r = match &mut *self.transport {
            Transport::Plain(_) => Ok(()),
            Transport::Tls { tls, sock } => {
                let mut io = DeadlineSocket { sock, deadline };
                rustls::Stream::new(tls.as_mut(), &mut io).flush()
            }
        };
        self.note(r)
    }
}
