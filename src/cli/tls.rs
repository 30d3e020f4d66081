//! The tool's TLS for a `rediss://` state server: the TLS library's
//! session code linked in (the module loads the same library with
//! `dlopen`, `pam_totp::pam::tls`).

use pam_totp::state::fleet::conn::tls::{PlainRead, TlsConnector, TlsSession, TlsStartError};
use pam_totp_tls::{NewError, Plain, Session};

/// TLS sessions from the linked-in library.
#[derive(Debug)]
pub struct Linked;

/// The one [`Linked`] connector.
pub static LINKED: Linked = Linked;

struct LinkedSession(Session);

impl TlsConnector for Linked {
    fn start(&self, server: &str, roots: &[u8]) -> Result<Box<dyn TlsSession>, TlsStartError> {
        match Session::new(server, roots) {
            Ok(s) => Ok(Box::new(LinkedSession(s))),
            Err(NewError::NoCaCertificates) => Err(TlsStartError::NoCaCertificates),
            Err(NewError::BadServerName) => Err(TlsStartError::BadServerName),
            Err(NewError::Config(e)) => Err(TlsStartError::Unavailable(e)),
        }
    }
}

impl TlsSession for LinkedSession {
    fn is_handshaking(&self) -> bool {
        self.0.is_handshaking()
    }

    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }

    fn take_output(&mut self, out: &mut [u8]) -> Result<usize, String> {
        self.0.take_output(out)
    }

    fn give_input(&mut self, input: &[u8]) -> Result<usize, String> {
        self.0.give_input(input)
    }

    fn write_plain(&mut self, data: &[u8]) -> Result<usize, String> {
        self.0.write_plain(data)
    }

    fn read_plain(&mut self, buf: &mut [u8]) -> Result<PlainRead, String> {
        Ok(match self.0.read_plain(buf)? {
            Plain::Data(n) => PlainRead::Data(n),
            Plain::NeedInput => PlainRead::NeedInput,
            Plain::Closed => PlainRead::Closed,
        })
    }
}
