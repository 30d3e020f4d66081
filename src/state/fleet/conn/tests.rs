use super::*;
use std::io::Read;

/// The one whole reply `bytes` hold.
fn reply(bytes: &[u8]) -> Value {
    let (value, used) = resp::parse(bytes).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    value
}

#[test]
fn server_errors_are_bounded_and_printable() {
    let v = reply(b"-NOPERM no\x07 way\r\n");
    match unexpected(&v) {
        ConnError::Server { code, detail } => {
            assert_eq!(code, "NOPERM");
            assert_eq!(detail, "no way");
        }
        e => panic!("{e:?}"),
    }
    let long = format!("-ERR {}\r\n", "x".repeat(1000));
    match unexpected(&reply(long.as_bytes())) {
        ConnError::Server { detail, .. } => assert_eq!(detail.len(), MAX_ERROR_TEXT),
        e => panic!("{e:?}"),
    }
    assert!(expect_ok(&reply(b"+OK\r\n")).is_ok());
    assert!(matches!(
        expect_ok(&Value::Nil),
        Err(ConnError::Protocol(_))
    ));
}

/// Options without credentials, CA file or TLS connector.
fn bare(url: &StateUrl) -> ConnectOptions<'_> {
    ConnectOptions {
        url,
        credentials: None,
        ca: None,
        tls: None,
    }
}

#[test]
fn a_past_deadline_times_out_before_connecting() {
    let url = StateUrl::parse("redis://127.0.0.1:9/0").unwrap();
    let opts = bare(&url);
    let past = Instant::now() - Duration::from_millis(1);
    assert!(matches!(
        Conn::connect(&opts, past),
        Err(ConnError::TimedOut)
    ));
    let url = StateUrl::parse("redis+unix:///nonexistent/x.sock").unwrap();
    let opts = ConnectOptions { url: &url, ..opts };
    assert!(matches!(
        Conn::connect(&opts, past),
        Err(ConnError::TimedOut)
    ));
}

#[test]
fn rediss_without_a_tls_connector_is_refused_before_connecting() {
    // Port 9 (discard) on loopback: nothing must even be tried.
    let url = StateUrl::parse("rediss://127.0.0.1:9/0").unwrap();
    let opts = bare(&url);
    let later = Instant::now() + Duration::from_secs(1);
    match Conn::connect(&opts, later) {
        Err(ConnError::TlsLibrary(why)) => assert!(why.contains("without TLS"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_socket_is_a_connect_error() {
    let url = StateUrl::parse("redis+unix:///nonexistent/x.sock").unwrap();
    let opts = bare(&url);
    let later = Instant::now() + Duration::from_secs(1);
    assert!(matches!(
        Conn::connect(&opts, later),
        Err(ConnError::Connect(_))
    ));
}

/// A one-connection fake server: reads the request, then runs `reply`.
fn fake_server(reply: impl FnOnce(&mut TcpStream) + Send + 'static) -> StateUrl {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        reply(&mut s);
    });
    StateUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap()
}

fn connect_plain(url: &StateUrl, timeout: Duration) -> Conn {
    let opts = bare(url);
    Conn::connect(&opts, Instant::now() + timeout).unwrap()
}

#[test]
fn a_reply_over_the_size_cap_is_refused() {
    let url = fake_server(|s| {
        let _ = s.write_all(format!("${}\r\n", 2 * MAX_REPLY_BYTES).as_bytes());
        let _ = s.write_all(&vec![b'x'; 2 * MAX_REPLY_BYTES]);
    });
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    match conn.request(&Command::new("GET").arg("k")) {
        Err(ConnError::Protocol(m)) => assert!(m.contains("bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        conn.request(&Command::new("PING")),
        Err(ConnError::Broken)
    ));
}

/// A reply that arrives in pieces is read whole, however it is cut.
#[test]
fn a_reply_in_pieces_is_read_whole() {
    let url = fake_server(|s| {
        for piece in [&b"$5\r"[..], b"\nab", b"cde\r", b"\n"] {
            let _ = s.write_all(piece);
            std::thread::sleep(Duration::from_millis(30));
        }
    });
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    match conn.request(&Command::new("GET").arg("k")) {
        Ok(Value::BulkString(b)) => assert_eq!(b, b"abcde"),
        other => panic!("{other:?}"),
    }
}

/// Bytes after the reply answer nothing that was asked: they must not be
/// read as the reply to the next command.
#[test]
fn bytes_after_the_reply_break_the_connection() {
    let url = fake_server(|s| {
        let _ = s.write_all(b"$1\r\nx\r\n+OK\r\n");
        std::thread::sleep(Duration::from_millis(500));
    });
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    match conn.request(&Command::new("GET").arg("k")) {
        Err(ConnError::Protocol(m)) => assert!(m.contains("after the last reply"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        conn.request(&Command::new("PING")),
        Err(ConnError::Broken)
    ));
}

/// A reply that does not parse breaks the connection with the codec's
/// reason.
#[test]
fn a_malformed_reply_is_a_protocol_error() {
    let url = fake_server(|s| {
        let _ = s.write_all(b"$-2\r\n");
        std::thread::sleep(Duration::from_millis(500));
    });
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    match conn.request(&Command::new("GET").arg("k")) {
        Err(ConnError::Protocol(m)) => assert!(m.contains("bad length"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Each part within the cap, the whole over it: refused all the same,
/// before reading past the cap.
#[test]
fn a_reply_of_parts_over_the_size_cap_is_refused() {
    let part = MAX_REPLY_BYTES * 3 / 5;
    let url = fake_server(move |s| {
        let _ = s.write_all(b"*2\r\n");
        for _ in 0..2 {
            let _ = s.write_all(format!("${part}\r\n").as_bytes());
            let _ = s.write_all(&vec![b'x'; part]);
            let _ = s.write_all(b"\r\n");
        }
    });
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    match conn.request(&Command::new("GET").arg("k")) {
        Err(ConnError::Protocol(m)) => {
            assert_eq!(m, format!("reply over {MAX_REPLY_BYTES} bytes"));
        }
        other => panic!("{other:?}"),
    }
}

/// One byte every 50 ms never lets a single read time out; the
/// deadline covers the whole reply all the same.
#[test]
fn a_slow_drip_reply_hits_the_deadline() {
    let url = fake_server(|s| {
        for _ in 0..200 {
            if s.write_all(b"$").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut conn = connect_plain(&url, Duration::from_millis(300));
    let start = Instant::now();
    assert!(matches!(
        conn.request(&Command::new("GET").arg("k")),
        Err(ConnError::TimedOut)
    ));
    // Generous: the bound is 300 ms; no tight timing assertion.
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_closed_connection_is_typed() {
    let url = fake_server(|_| {});
    let mut conn = connect_plain(&url, Duration::from_secs(10));
    assert!(matches!(
        conn.request(&Command::new("GET").arg("k")),
        Err(ConnError::Closed)
    ));
}

/// A connector that must not be reached.
#[derive(Debug)]
struct Unreachable;

impl super::tls::TlsConnector for Unreachable {
    fn start(
        &self,
        _: &str,
        _: &[u8],
    ) -> Result<Box<dyn super::tls::TlsSession>, super::tls::TlsStartError> {
        panic!("a session was started before the CA file was read");
    }
}

#[test]
fn a_missing_ca_file_is_refused_before_any_session() {
    let dir = tempfile::tempdir().unwrap();
    let url = StateUrl::parse("rediss://127.0.0.1:9/0").unwrap();
    let ca = dir.path().join("none");
    let opts = ConnectOptions {
        url: &url,
        credentials: None,
        ca: Some(&ca),
        tls: Some(&Unreachable),
    };
    assert!(matches!(
        Conn::connect(&opts, Instant::now() + Duration::from_secs(1)),
        Err(ConnError::CaFile(CredentialsError::NotFound))
    ));
}
