use super::*;

fn tcp(host: Host, port: u16, tls: bool) -> Endpoint {
    Endpoint::Tcp { host, port, tls }
}

fn ok(s: &str) -> StateUrl {
    StateUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> UrlError {
    match StateUrl::parse(s) {
        Ok(u) => panic!("{s} accepted as {u:?}"),
        Err(e) => e,
    }
}

#[test]
fn tcp_forms() {
    let u = ok("redis://127.0.0.1:6380/2");
    assert_eq!(u.engine, Engine::Redis);
    assert_eq!(
        u.endpoint,
        tcp(Host::Ip("127.0.0.1".parse().unwrap()), 6380, false)
    );
    assert_eq!(u.db, 2);
    assert!(!u.is_tls());

    let u = ok("rediss://Redis.Example.ORG:6390");
    assert_eq!(
        u.endpoint,
        tcp(Host::Name("redis.example.org".into()), 6390, true)
    );
    assert_eq!(u.db, 0);
    assert!(u.is_tls());

    let u = ok("redis://state");
    assert_eq!(
        u.endpoint,
        tcp(Host::Name("state".into()), DEFAULT_PORT, false)
    );
    assert_eq!(ok("redis://state/").db, 0);
    assert_eq!(ok("redis://state:1/0").db, 0);
    assert_eq!(
        ok("redis://state.example./5").endpoint,
        tcp(Host::Name("state.example".into()), DEFAULT_PORT, false)
    );

    let u = ok("valkey://10.0.0.1:7000/15");
    assert_eq!(u.engine, Engine::Valkey);
    assert_eq!(u.db, 15);
    let u = ok("valkeys://10.0.0.1:7000");
    assert_eq!(u.engine, Engine::Valkey);
    assert!(u.is_tls());
    assert_eq!(
        ok("redis://h:65535").endpoint,
        tcp(Host::Name("h".into()), 65535, false)
    );
    assert_eq!(ok(&format!("redis://h/{MAX_DB}")).db, MAX_DB);
}

#[test]
fn ipv6_literals() {
    let v6: IpAddr = "::1".parse().unwrap();
    assert_eq!(
        ok("redis://[::1]:6379").endpoint,
        tcp(Host::Ip(v6), 6379, false)
    );
    assert_eq!(
        ok("rediss://[::1]/3").endpoint,
        tcp(Host::Ip(v6), DEFAULT_PORT, true)
    );
    assert_eq!(ok("rediss://[::1]/3").db, 3);
    let full: IpAddr = "fd00::1:2".parse().unwrap();
    assert_eq!(
        ok("valkey://[fd00::1:2]:7001/1").endpoint,
        tcp(Host::Ip(full), 7001, false)
    );
    assert_eq!(err("redis://::1:6379"), UrlError::BadHost);
    assert_eq!(err("redis://[::1"), UrlError::BadHost);
    assert_eq!(err("redis://[::1]6379"), UrlError::BadHost);
    assert_eq!(err("redis://[nothex]:6379"), UrlError::BadHost);
    assert_eq!(err("redis://[127.0.0.1]:6379"), UrlError::BadHost);
    assert_eq!(err("redis://[]:6379"), UrlError::MissingHost);
    assert_eq!(err("redis://[::1]:0"), UrlError::BadPort);
}

#[test]
fn unix_forms() {
    let u = ok("redis+unix:///run/redis/redis.sock");
    assert_eq!(
        u.endpoint,
        Endpoint::Unix {
            path: "/run/redis/redis.sock".into()
        }
    );
    assert_eq!(u.db, 0);
    let u = ok("valkey+unix:///run/valkey.sock?db=4");
    assert_eq!(u.engine, Engine::Valkey);
    assert_eq!(u.db, 4);
    assert!(!u.is_tls());
    let long = format!("redis+unix:///{}", "a".repeat(MAX_SOCKET_PATH - 1));
    assert!(matches!(ok(&long).endpoint, Endpoint::Unix { .. }));
}

#[test]
fn display_is_canonical_and_reparses() {
    for s in [
        "redis://127.0.0.1:6379/0",
        "rediss://[::1]:6380/2",
        "valkey://state.example:7000/1",
        "redis+unix:///run/r.sock?db=3",
        "valkey+unix:///run/v.sock?db=0",
    ] {
        assert_eq!(ok(s).to_string(), s);
        assert_eq!(ok(&ok(s).to_string()), ok(s));
    }
    assert_eq!(ok("redis://H").to_string(), "redis://h:6379/0");
}

#[test]
fn credentials_refused_without_echo() {
    for s in [
        "redis://alice:hunter2@host:6379",
        "redis://:hunter2@host",
        "redis://alice@host",
        "rediss://alice:hunter2@[::1]:6379/1",
        "valkey://u:hunter2@host/0",
        "redis+unix://alice:hunter2@/run/r.sock",
        "redis://alice:hunter2@",
        // Even otherwise malformed, the credential is what is reported.
        "redis://alice:hunter2@host:notaport/x?y#z",
    ] {
        let e = err(s);
        assert_eq!(e, UrlError::Credentials, "{s}");
        assert!(!e.to_string().contains("hunter2"));
        assert!(!e.to_string().contains("alice"));
    }
}

#[test]
fn no_error_message_quotes_the_url() {
    for s in [
        "http://hunter2",
        "redis://hunter2:notaport",
        "redis://hunter2!/0",
        "redis://host/hunter2",
        "redis+unix:///x?hunter2",
        "redis+unix://hunter2/x",
        "hunter2",
    ] {
        assert!(!err(s).to_string().contains("hunter2"), "{s}");
    }
}

#[test]
fn refusals() {
    let cases: &[(&str, UrlError)] = &[
        ("", UrlError::Empty),
        ("redis://h :6379", UrlError::BadCharacter),
        ("redis://h:6379\n", UrlError::BadCharacter),
        ("redis://h\t", UrlError::BadCharacter),
        ("127.0.0.1:6379", UrlError::NoScheme),
        ("redis:/h", UrlError::NoScheme),
        ("http://h:6379", UrlError::UnknownScheme),
        ("REDIS://h:6379", UrlError::UnknownScheme),
        ("unix:///run/r.sock", UrlError::UnknownScheme),
        ("redis+tls://h", UrlError::UnknownScheme),
        ("://h", UrlError::UnknownScheme),
        ("redis://", UrlError::MissingHost),
        ("redis://:6379", UrlError::MissingHost),
        ("redis:///0", UrlError::MissingHost),
        ("rediss://", UrlError::MissingHost),
        ("redis://h:", UrlError::BadPort),
        ("redis://h:0", UrlError::BadPort),
        ("redis://h:65536", UrlError::BadPort),
        ("redis://h:123456", UrlError::BadPort),
        ("redis://h:-1", UrlError::BadPort),
        ("redis://h:+80", UrlError::BadPort),
        ("redis://h:port", UrlError::BadPort),
        ("redis://h:1:2", UrlError::BadHost),
        ("redis://h:6379/x", UrlError::BadDb),
        ("redis://h:6379/-1", UrlError::BadDb),
        ("redis://h:6379/+1", UrlError::BadDb),
        ("redis://h:6379/1/2", UrlError::BadDb),
        ("redis://h:6379/2147483647", UrlError::DbOutOfRange),
        (
            "redis://h:6379/99999999999999999999999",
            UrlError::DbOutOfRange,
        ),
        ("redis://h:6379/0?db=1", UrlError::BadQuery),
        ("redis://h:6379?timeout=1", UrlError::BadQuery),
        ("redis://h:6379/0#frag", UrlError::Fragment),
        ("redis://h%41:6379", UrlError::PercentEncoding),
        ("redis://-h", UrlError::BadHost),
        ("redis://h-", UrlError::BadHost),
        ("redis://a..b", UrlError::BadHost),
        ("redis://under_score", UrlError::BadHost),
        ("redis://1.2.3.999", UrlError::BadHost),
        ("redis://1.2.3", UrlError::BadHost),
        ("redis://caf\u{e9}", UrlError::BadHost),
        ("redis+unix://", UrlError::MissingPath),
        ("redis+unix:///", UrlError::MissingPath),
        ("redis+unix:///run/", UrlError::MissingPath),
        ("redis+unix://?db=1", UrlError::MissingPath),
        ("redis+unix://host/run/r.sock", UrlError::HostOnUnixUrl),
        ("redis+unix://r.sock", UrlError::HostOnUnixUrl),
        ("redis+unix:///r.sock?db=x", UrlError::BadDb),
        ("redis+unix:///r.sock?db=", UrlError::BadDb),
        ("redis+unix:///r.sock?db=2147483647", UrlError::DbOutOfRange),
        ("redis+unix:///r.sock?db=1&db=2", UrlError::BadQuery),
        ("redis+unix:///r.sock?timeout=1", UrlError::BadQuery),
        ("redis+unix:///r.sock?", UrlError::BadQuery),
        ("redis+unix:///r.sock#x", UrlError::Fragment),
        ("redis+unix:///r%20.sock", UrlError::PercentEncoding),
    ];
    for (s, want) in cases {
        assert_eq!(&err(s), want, "{s:?}");
    }
    let long = format!("redis+unix:///{}", "a".repeat(MAX_SOCKET_PATH));
    assert_eq!(err(&long), UrlError::PathTooLong);
    let huge = format!("redis://{}", "a".repeat(MAX_URL));
    assert_eq!(err(&huge), UrlError::TooLong);
    let long_name = format!("redis://{}", vec!["a".repeat(63); 5].join("."));
    assert_eq!(err(&long_name), UrlError::BadHost);
    let long_label = format!("redis://{}.b", "a".repeat(64));
    assert_eq!(err(&long_label), UrlError::BadHost);
}
