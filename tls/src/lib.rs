//! TLS sessions for pam-totp's fleet state server (`rediss://`).
//!
//! A [`Session`] is a TLS client connection without I/O: the caller
//! feeds it the bytes read from the socket ([`Session::give_input`]),
//! sends what it hands out ([`Session::take_output`]), and reads and
//! writes the plain text through it. The caller (pam-totp's
//! `state::fleet::conn`) keeps the socket and holds every read and write
//! to its deadline; nothing here blocks or touches a file descriptor.
//!
//! The server's certificate is always verified, against the roots given
//! (PEM), for the server name given (a DNS name or an IP address). One
//! crypto provider, `ring`, is chosen here at build time; no process-wide
//! default provider is installed.
//!
//! The module loads this crate's cdylib with `dlopen` and calls the C
//! interface in [`ffi`]; the `pam-totp` tool links the rlib and calls
//! [`Session`] directly. Both run the same code.

pub mod ffi;

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The version of the C interface in [`ffi`]. The module refuses a
/// library whose `pam_totp_tls_abi()` returns another number.
pub const ABI: u32 = 1;

/// Why a session could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewError {
    /// The roots held no certificate that could be used.
    NoCaCertificates,
    /// The server's name is neither a DNS name nor an IP address.
    BadServerName,
    /// The TLS configuration was refused (the text says why).
    Config(String),
}

impl NewError {
    /// The number the C interface returns for this error.
    pub fn code(&self) -> u32 {
        match self {
            NewError::NoCaCertificates => ffi::NEW_NO_CA,
            NewError::BadServerName => ffi::NEW_BAD_NAME,
            NewError::Config(_) => ffi::NEW_CONFIG,
        }
    }
}

impl std::fmt::Display for NewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewError::NoCaCertificates => write!(f, "the CA bundle holds no usable certificate"),
            NewError::BadServerName => write!(f, "the host is not a valid TLS server name"),
            NewError::Config(e) => write!(f, "{e}"),
        }
    }
}

/// What a read of plain text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// This many bytes were read.
    Data(usize),
    /// Nothing yet: more input from the socket is needed.
    NeedInput,
    /// The server closed the TLS session cleanly (close_notify).
    Closed,
}

/// One TLS client session, without I/O.
pub struct Session {
    conn: ClientConnection,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl Session {
    /// A session to `server` (a DNS name or an IP address), trusting the
    /// certificates in `roots_pem`; TLS 1.2 and 1.3, no client
    /// certificate.
    pub fn new(server: &str, roots_pem: &[u8]) -> Result<Session, NewError> {
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(
            CertificateDer::pem_slice_iter(roots_pem).filter_map(Result::ok),
        );
        if added == 0 {
            return Err(NewError::NoCaCertificates);
        }
        let name = ServerName::try_from(server.to_owned()).map_err(|_| NewError::BadServerName)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NewError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn = ClientConnection::new(Arc::new(config), name)
            .map_err(|e| NewError::Config(e.to_string()))?;
        Ok(Session { conn })
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether TLS records wait to be sent ([`Session::take_output`]).
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Moves TLS records to send into `out`; the number of bytes moved.
    pub fn take_output(&mut self, mut out: &mut [u8]) -> Result<usize, String> {
        if out.is_empty() {
            return Ok(0);
        }
        self.conn.write_tls(&mut out).map_err(|e| e.to_string())
    }

    /// Takes bytes read from the socket and processes the records they
    /// complete; the number of bytes taken (the rest must be given again).
    /// An error is a TLS failure (a bad certificate, a bad record, an
    /// alert from the server): the session is then unusable.
    pub fn give_input(&mut self, mut input: &[u8]) -> Result<usize, String> {
        if input.is_empty() {
            return Ok(0);
        }
        let taken = self.conn.read_tls(&mut input).map_err(|e| e.to_string())?;
        self.conn.process_new_packets().map_err(|e| e.to_string())?;
        Ok(taken)
    }

    /// Queues plain text to send (as records, through
    /// [`Session::take_output`]); the number of bytes queued.
    pub fn write_plain(&mut self, data: &[u8]) -> Result<usize, String> {
        self.conn.writer().write(data).map_err(|e| e.to_string())
    }

    /// Reads plain text that arrived.
    pub fn read_plain(&mut self, buf: &mut [u8]) -> Result<Plain, String> {
        if buf.is_empty() {
            return Ok(Plain::Data(0));
        }
        match self.conn.reader().read(buf) {
            Ok(0) => Ok(Plain::Closed),
            Ok(n) => Ok(Plain::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plain::NeedInput),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_without_a_certificate_are_refused() {
        assert_eq!(
            Session::new("localhost", b"not a pem file").unwrap_err(),
            NewError::NoCaCertificates
        );
        assert_eq!(
            Session::new("localhost", b"").unwrap_err(),
            NewError::NoCaCertificates
        );
    }

    #[test]
    fn a_new_session_starts_with_a_client_hello() {
        let pem = include_bytes!("testdata/ca.pem");
        for server in ["127.0.0.1", "::1", "redis.example.org"] {
            let mut s = Session::new(server, pem).unwrap();
            assert!(s.is_handshaking());
            assert!(s.wants_write());
            let mut out = vec![0u8; 64 * 1024];
            let n = s.take_output(&mut out).unwrap();
            // A TLS handshake record (22) carrying a ClientHello (1).
            assert!(n > 5);
            assert_eq!(out[0], 22);
            assert_eq!(out[5], 1);
            assert!(!s.wants_write());
            assert_eq!(s.read_plain(&mut [0u8; 16]).unwrap(), Plain::NeedInput);
        }
        assert_eq!(
            Session::new("not a name!", pem).unwrap_err(),
            NewError::BadServerName
        );
    }
}
