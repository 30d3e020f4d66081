//! The driver of a session over a socket, with a scripted session: what
//! the session hands out is sent, what arrives is given to it (and kept
//! when it takes only part), end of file is an error.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::super::deadline::DeadlineSocket;
use super::super::Socket;
use super::*;

/// A "session" that says HELLO, waits for WORLD to end its handshake,
/// then passes plain text through in upper case. It takes at most two
/// bytes per `give_input`, so the driver must keep the rest.
struct Scripted {
    out: Vec<u8>,
    heard: Vec<u8>,
    plain: Vec<u8>,
}

impl Scripted {
    fn new() -> Scripted {
        Scripted {
            out: b"HELLO".to_vec(),
            heard: Vec::new(),
            plain: Vec::new(),
        }
    }
}

impl TlsSession for Scripted {
    fn is_handshaking(&self) -> bool {
        !self.heard.starts_with(b"WORLD")
    }
    fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }
    fn take_output(&mut self, out: &mut [u8]) -> Result<usize, String> {
        let n = self.out.len().min(out.len());
        out[..n].copy_from_slice(&self.out[..n]);
        self.out.drain(..n);
        Ok(n)
    }
    fn give_input(&mut self, input: &[u8]) -> Result<usize, String> {
        let n = input.len().min(2);
        if input.starts_with(b"!") {
            return Err("bad record".into());
        }
        if self.is_handshaking() {
            self.heard.extend_from_slice(&input[..n]);
            // What came after WORLD in the same two bytes is plain text.
            if self.heard.len() > 5 {
                let extra = self.heard.split_off(5);
                self.plain.extend(extra);
            }
        } else {
            self.plain.extend_from_slice(&input[..n]);
        }
        Ok(n)
    }
    fn write_plain(&mut self, data: &[u8]) -> Result<usize, String> {
        self.out.extend(data.to_ascii_uppercase());
        Ok(data.len())
    }
    fn read_plain(&mut self, buf: &mut [u8]) -> Result<PlainRead, String> {
        if self.plain.is_empty() {
            return Ok(PlainRead::NeedInput);
        }
        let n = self.plain.len().min(buf.len());
        buf[..n].copy_from_slice(&self.plain[..n]);
        self.plain.drain(..n);
        Ok(PlainRead::Data(n))
    }
}

fn stream<'a, 'b>(tls: &'a mut TlsState, sock: &'b mut Socket) -> TlsStream<'a, 'b> {
    TlsStream {
        tls,
        io: DeadlineSocket {
            sock,
            deadline: Instant::now() + Duration::from_secs(5),
        },
    }
}

#[test]
fn the_handshake_and_the_plain_text_go_through_the_socket() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || {
        let mut hello = [0u8; 5];
        peer.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"HELLO");
        // The end of the handshake and the first plain text in one write.
        peer.write_all(b"WORLDpong").unwrap();
        let mut ping = [0u8; 4];
        peer.read_exact(&mut ping).unwrap();
        ping
    });
    let mut sock = Socket::Unix(ours);
    let mut tls = TlsState::new(Box::new(Scripted::new()));
    stream(&mut tls, &mut sock).handshake().unwrap();
    assert!(!tls.session.is_handshaking());
    stream(&mut tls, &mut sock).write_all(b"ping").unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let mut buf = [0u8; 16];
        let n = stream(&mut tls, &mut sock).read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    // The session took two bytes at a time: the rest was kept, in order.
    assert_eq!(got, b"pong");
    assert_eq!(&server.join().unwrap(), b"PING");
    // The peer is gone: end of file, not "no data".
    let err = stream(&mut tls, &mut sock).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_session_error_is_a_tls_failure() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    peer.write_all(b"!garbage").unwrap();
    let mut sock = Socket::Unix(ours);
    let mut tls = TlsState::new(Box::new(Scripted::new()));
    let err = stream(&mut tls, &mut sock).handshake().unwrap_err();
    let failure = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<TlsFailure>())
        .expect("a TLS failure");
    assert_eq!(failure.0, "bad record");
}

#[test]
fn a_silent_peer_runs_into_the_deadline() {
    let (ours, _peer) = UnixStream::pair().unwrap();
    let mut sock = Socket::Unix(ours);
    let mut tls = TlsState::new(Box::new(Scripted::new()));
    let mut s = TlsStream {
        tls: &mut tls,
        io: DeadlineSocket {
            sock: &mut sock,
            deadline: Instant::now() + Duration::from_millis(200),
        },
    };
    let started = Instant::now();
    let err = s.handshake().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5));
}
