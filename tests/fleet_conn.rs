//! The fleet store's transport against a real redis-server started by each
//! test (tests/redis_support): Unix socket, TCP and TLS, ACL
//! authentication, the compare-and-set under concurrent processes, and the
//! timeout against a frozen server. The library API is called directly;
//! logins through libpam come with the wiring into the state seam.

mod redis_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pam_totp::pam::tls::LibraryAt;
use pam_totp::state::fleet::conn::tls::TlsConnector;
use pam_totp::state::fleet::conn::ConnError;
use pam_totp::state::fleet::{
    Credentials, CredentialsError, StateUrl, Store, StoreConfig, StoreError, UpdateError,
};
use redis_support::{Options, RedisServer, TestCa, TlsConfig, PASSWORD, USER};

/// A generous bound on "within the timeout": never a tight timing check.
const SLACK_BOUND: Duration = Duration::from_secs(5);

/// TLS sessions as the module makes them: the TLS library of this build,
/// loaded with dlopen (`pam::tls`).
fn tls() -> &'static dyn TlsConnector {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    let lib = deps.join(pam_totp::pam::tls::LIBRARY);
    assert!(lib.exists(), "{} not built", lib.display());
    Box::leak(Box::new(LibraryAt::new(&lib)))
}

fn config(url: &str, creds: Option<Credentials>) -> StoreConfig {
    let mut c = StoreConfig::new(StateUrl::parse(url).expect("url"));
    c.credentials = creds;
    c.timeout = Duration::from_secs(5);
    c.tls = Some(tls());
    c
}

fn user() -> Credentials {
    Credentials::new(USER, PASSWORD).expect("credentials")
}

fn set(store: &mut Store, name: &str, value: &[u8]) {
    let updated = store
        .update(name, &mut |_| Ok::<_, String>(Some(value.to_vec())))
        .expect("update");
    assert!(updated.written);
}

/// Writes, reads, deletes and database selection through `url`.
fn round_trip(url: &str, creds_file: &Path) {
    let creds = Credentials::load(creds_file).expect("credentials file");
    let mut store = Store::connect(&config(url, Some(creds.clone()))).expect("connect");
    assert_eq!(store.get("alice").unwrap(), None);
    set(&mut store, "alice", b"state-1");
    assert_eq!(
        store.get("alice").unwrap().as_deref(),
        Some(&b"state-1"[..])
    );
    // update sees the current value and can leave it alone.
    let mut seen = None;
    let updated = store
        .update("alice", &mut |old| {
            seen = old.map(<[u8]>::to_vec);
            Ok::<_, String>(None)
        })
        .unwrap();
    assert!(!updated.written);
    assert_eq!(seen.as_deref(), Some(&b"state-1"[..]));
    // A refusal from the decision writes nothing.
    match store.update("alice", &mut |_| Err::<Option<Vec<u8>>, _>("no")) {
        Err(UpdateError::Decide("no")) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.get("alice").unwrap().as_deref(),
        Some(&b"state-1"[..])
    );
    // Another database is another namespace.
    let db1 = if url.starts_with("redis+unix") {
        format!("{url}?db=1")
    } else {
        format!("{url}/1")
    };
    let mut other = Store::connect(&config(&db1, Some(creds))).expect("connect db 1");
    assert_eq!(other.get("alice").unwrap(), None);
    set(&mut other, "alice", b"db1");
    assert_eq!(
        store.get("alice").unwrap().as_deref(),
        Some(&b"state-1"[..])
    );
    assert!(store.del("alice").unwrap());
    assert!(!store.del("alice").unwrap());
    assert_eq!(store.get("alice").unwrap(), None);
    assert_eq!(other.get("alice").unwrap().as_deref(), Some(&b"db1"[..]));
}

#[test]
fn unix_socket_with_acl_auth() {
    let server = RedisServer::start(Options::default());
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    round_trip(&server.unix_url(), &creds);
}

#[test]
fn tcp_with_acl_auth() {
    let server = RedisServer::start(Options {
        tcp: true,
        ..Options::default()
    });
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    round_trip(&server.tcp_url(), &creds);
}

#[test]
fn wrong_or_missing_credentials_are_refused() {
    let server = RedisServer::start(Options {
        tcp: true,
        ..Options::default()
    });
    let wrong = "Not-The-Passw0rd-zz";
    for url in [server.unix_url(), server.tcp_url()] {
        let bad = Credentials::new(USER, wrong).unwrap();
        match Store::connect(&config(&url, Some(bad))) {
            Err(StoreError::Conn(ConnError::AuthRefused { code })) => assert_eq!(code, "WRONGPASS"),
            other => panic!("{url}: {other:?}"),
        }
        let unknown = Credentials::new("nobody-here", PASSWORD).unwrap();
        let e = Store::connect(&config(&url, Some(unknown))).expect_err("unknown user");
        let text = format!("{e} {e:?}");
        assert!(
            matches!(e, StoreError::Conn(ConnError::AuthRefused { .. })),
            "{text}"
        );
        assert!(!text.contains(PASSWORD) && !text.contains(wrong), "{text}");
        // No credentials: the default user is off, the first command fails.
        let mut anonymous = Store::connect(&config(&url, None)).expect("connect without AUTH");
        match anonymous.get("alice") {
            Err(StoreError::Conn(ConnError::Server { code, .. })) => assert_eq!(code, "NOAUTH"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn keys_outside_the_acl_prefix_fail_closed() {
    let server = RedisServer::start(Options::default());
    let mut c = config(&server.unix_url(), Some(user()));
    c.prefix = "elsewhere:".into();
    let mut store = Store::connect(&c).expect("connect");
    match store.update("alice", &mut |_| Ok::<_, String>(Some(b"x".to_vec()))) {
        Err(UpdateError::Store(StoreError::Conn(ConnError::Server { code, .. }))) => {
            assert_eq!(code, "NOPERM")
        }
        other => panic!("{other:?}"),
    }
}

fn counter_example() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe.parent().and_then(Path::parent).expect("target dir");
    let p = profile.join("examples/fleet_counter");
    assert!(
        p.exists(),
        "{} missing: build it with `cargo build --release --examples` (plain `cargo test` does)",
        p.display()
    );
    p
}

/// 20 processes connect, wait, and are released together; each adds one
/// to a counter with `Store::update`, taking 20 ms to decide, so their
/// read-decide-write steps overlap. Lost updates would leave less than 20.
#[test]
fn update_from_20_concurrent_processes_counts_exactly_20() {
    const N: usize = 20;
    let server = RedisServer::start(Options {
        tcp: true,
        ..Options::default()
    });
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    let exe = counter_example();
    for url in [server.tcp_url(), server.unix_url()] {
        let key = "counter";
        let children: Vec<Child> = (0..N)
            .map(|_| {
                Command::new(&exe)
                    .args([url.as_str(), creds.to_str().unwrap(), key, "20000", "20"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn fleet_counter")
            })
            .collect();
        // Let them all connect, then close every stdin at once.
        std::thread::sleep(Duration::from_millis(300));
        let mut children = children;
        let stdins: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        drop(stdins);
        let mut attempts = 0;
        for child in children {
            let out = child.wait_with_output().expect("wait fleet_counter");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{url}: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            attempts += stdout
                .trim()
                .strip_prefix("attempts=")
                .and_then(|n| n.parse::<u32>().ok())
                .expect("attempts=N");
        }
        let mut store = Store::connect(&config(&url, Some(user()))).unwrap();
        assert_eq!(
            store.get(key).unwrap().as_deref(),
            Some(&b"20"[..]),
            "{url}"
        );
        eprintln!("{url}: {N} increments in {attempts} compare-and-set rounds");
        // They did overlap (else this test proves nothing): some lost a
        // round and retried.
        assert!(
            attempts > N as u32,
            "{url}: no contention in {attempts} rounds"
        );
        assert!(store.del(key).unwrap());
    }
}

/// SIGSTOP: connections still complete (the kernel's backlog) but nothing
/// answers. Every call must give up with a timeout error.
#[test]
fn frozen_server_times_out() {
    let timeout = Duration::from_millis(300);
    let server = RedisServer::start(Options {
        tcp: true,
        ..Options::default()
    });
    for url in [server.tcp_url(), server.unix_url()] {
        let mut c = config(&url, Some(user()));
        c.timeout = timeout;
        let mut store = Store::connect(&c).expect("connect while running");
        set(&mut store, "alice", b"1");
        server.freeze();

        store.renew_deadline();
        let start = Instant::now();
        let e = store.get("alice").expect_err("frozen server answered");
        assert!(
            matches!(e, StoreError::Conn(ConnError::TimedOut)),
            "{url}: {e:?}"
        );
        assert!(
            start.elapsed() < SLACK_BOUND,
            "{url}: {:?}",
            start.elapsed()
        );
        // The connection is unusable after a timeout: a late reply must
        // never be read as the answer to a later command.
        store.renew_deadline();
        assert!(matches!(
            store.get("alice"),
            Err(StoreError::Conn(ConnError::Broken))
        ));

        let start = Instant::now();
        let e = Store::connect(&c).expect_err("connected to a frozen server");
        assert!(
            matches!(e, StoreError::Conn(ConnError::TimedOut)),
            "{url}: {e:?}"
        );
        assert!(
            start.elapsed() < SLACK_BOUND,
            "{url}: {:?}",
            start.elapsed()
        );

        server.thaw();
        let mut store = Store::connect(&c).expect("connect after thaw");
        assert_eq!(store.get("alice").unwrap().as_deref(), Some(&b"1"[..]));
    }
}

/// A stopped server is a connect error at once; restarted with AOF on the
/// same address and data directory, it has kept what was written.
#[test]
fn stopped_server_refuses_and_restart_keeps_aof_data() {
    let mut server = RedisServer::start(Options {
        tcp: true,
        appendonly: true,
        ..Options::default()
    });
    let c = config(&server.tcp_url(), Some(user()));
    set(&mut Store::connect(&c).unwrap(), "alice", b"kept");
    server.stop();
    let start = Instant::now();
    match Store::connect(&c) {
        Err(StoreError::Conn(ConnError::Connect(_))) => {}
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < SLACK_BOUND);
    server.restart();
    let mut store = Store::connect(&c).expect("connect after restart");
    assert_eq!(store.get("alice").unwrap().as_deref(), Some(&b"kept"[..]));
}

#[test]
fn tls_with_the_test_ca_works_and_another_ca_is_refused() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path(), "fleet");
    let other = TestCa::new(pki.path(), "other");
    let server_cert = ca.issue_server("server", "IP:127.0.0.1");
    let server = RedisServer::start(Options {
        tls: Some(TlsConfig {
            server: server_cert,
            ca_cert: ca.files.cert.clone(),
        }),
        ..Options::default()
    });

    let mut c = config(&server.tls_url(), Some(user()));
    c.ca = Some(ca.files.cert.clone());
    let mut store = Store::connect(&c).expect("TLS with state_ca");
    set(&mut store, "alice", b"over tls");
    assert_eq!(
        store.get("alice").unwrap().as_deref(),
        Some(&b"over tls"[..])
    );

    // Trusting another CA: the server's certificate is refused.
    c.ca = Some(other.files.cert.clone());
    match Store::connect(&c) {
        Err(StoreError::Conn(ConnError::Tls(msg))) => {
            assert!(msg.to_lowercase().contains("certificate"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // The right CA but another name than the certificate's.
    let mut by_name = config(
        &format!("rediss://localhost:{}", server.tls_port()),
        Some(user()),
    );
    by_name.ca = Some(ca.files.cert.clone());
    match Store::connect(&by_name) {
        Err(StoreError::Conn(ConnError::Tls(_))) => {}
        other => panic!("{other:?}"),
    }
    // A plain client on the TLS port gets no state either.
    let plain = config(
        &format!("redis://127.0.0.1:{}", server.tls_port()),
        Some(user()),
    );
    let mut short = plain.clone();
    short.timeout = Duration::from_millis(500);
    assert!(Store::connect(&short)
        .and_then(|mut s| s.get("alice"))
        .is_err());
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.pem");
    std::fs::write(&p, "not a certificate\n").unwrap();
    // Nothing listens there: the roots are refused before connecting.
    let mut c = config("rediss://127.0.0.1:9", None);
    c.ca = Some(p);
    match Store::connect(&c) {
        Err(StoreError::Conn(ConnError::NoCaCertificates)) => {}
        other => panic!("{other:?}"),
    }
}

/// The module's TLS library must be root's and writable by nobody else,
/// and must exist: otherwise `rediss://` fails closed, before connecting,
/// and says why.
#[test]
fn an_untrusted_or_missing_tls_library_is_refused() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path(), "fleet");
    let built = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(pam_totp::pam::tls::LIBRARY);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(pam_totp::pam::tls::LIBRARY);
    std::fs::copy(&built, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let try_with = |lib: &Path| {
        let mut c = config("rediss://127.0.0.1:9", None);
        c.ca = Some(ca.files.cert.clone());
        c.tls = Some(Box::leak(Box::new(LibraryAt::new(lib))));
        Store::connect(&c)
    };
    // The same file, trusted: the library loads and the connection is
    // what fails (nothing listens on port 9).
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    match try_with(&copy) {
        Err(StoreError::Conn(ConnError::Connect(_))) => {}
        other => panic!("{other:?}"),
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o775)).unwrap();
    match try_with(&copy) {
        Err(StoreError::Conn(ConnError::TlsLibrary(why))) => {
            assert!(why.contains("writable by group or others"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&copy, Some(65534), None).unwrap();
    match try_with(&copy) {
        Err(StoreError::Conn(ConnError::TlsLibrary(why))) => {
            assert!(why.contains("not owned by root"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    std::os::unix::fs::chown(&copy, Some(0), None).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    match try_with(&copy) {
        Err(StoreError::Conn(ConnError::TlsLibrary(why))) => {
            assert!(why.contains("directory"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    match try_with(&dir.path().join("missing.so")) {
        Err(StoreError::Conn(ConnError::TlsLibrary(_))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_by_default_uses_the_system_roots_and_refuses_the_test_ca() {
    let pki = tempfile::tempdir().unwrap();
    let ca = TestCa::new(pki.path(), "fleet");
    let server = RedisServer::start(Options {
        tls: Some(TlsConfig {
            server: ca.issue_server("server", "IP:127.0.0.1"),
            ca_cert: ca.files.cert.clone(),
        }),
        ..Options::default()
    });
    let c = config(&server.tls_url(), Some(user()));
    assert!(c.ca.is_none());
    match Store::connect(&c) {
        Err(StoreError::Conn(ConnError::Tls(_))) => {}
        // A machine without the system bundle refuses earlier; still no
        // connection.
        Err(StoreError::Conn(ConnError::CaFile(CredentialsError::NotFound))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn credentials_file_with_mode_0644_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("creds.toml");
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, "username = \"{USER}\"\npassword = \"{PASSWORD}\"").unwrap();
    drop(f);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Credentials::load(&p).expect_err("0644 accepted");
    assert!(matches!(e, CredentialsError::BadMode { .. }), "{e:?}");
    assert!(!e.to_string().contains(PASSWORD));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Credentials::load(&p).unwrap().username(), USER);
}

/// Another client changes the key during every decision: no attempt can
/// win. The update must give up with an error (the login is then denied),
/// after the bounded number of attempts, having written nothing of its own.
#[test]
fn endless_contention_gives_up_with_an_error() {
    let server = RedisServer::start(Options::default());
    let c = config(&server.unix_url(), Some(user()));
    let mut store = Store::connect(&c).unwrap();
    let mut rival = Store::connect(&c).unwrap();
    let mut calls = 0u32;
    let result = store.update("alice", &mut |_| {
        calls += 1;
        set(&mut rival, "alice", format!("rival-{calls}").as_bytes());
        Ok::<_, String>(Some(b"mine".to_vec()))
    });
    match result {
        Err(UpdateError::Store(StoreError::Contention { attempts })) => {
            assert_eq!(attempts, pam_totp::state::fleet::store::MAX_ATTEMPTS);
            assert_eq!(calls, attempts);
        }
        other => panic!("{other:?}"),
    }
    let mut check = Store::connect(&c).unwrap();
    let last = format!("rival-{calls}");
    assert_eq!(
        check.get("alice").unwrap().as_deref(),
        Some(last.as_bytes())
    );

    // With a short timeout, the deadline ends the retries first.
    let mut short = c.clone();
    short.timeout = Duration::from_millis(300);
    let mut store = Store::connect(&short).unwrap();
    let start = Instant::now();
    let result = store.update("alice", &mut |_| {
        std::thread::sleep(Duration::from_millis(20));
        set(&mut rival, "alice", b"rival");
        Ok::<_, String>(Some(b"mine".to_vec()))
    });
    assert!(
        matches!(
            result,
            Err(UpdateError::Store(StoreError::Conn(ConnError::TimedOut)))
        ),
        "{result:?}"
    );
    assert!(start.elapsed() < SLACK_BOUND);
    assert_eq!(check.get("alice").unwrap().as_deref(), Some(&b"rival"[..]));
}
