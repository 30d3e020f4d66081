//! The `state=` URL: where the fleet's shared state lives.
//!
//! Accepted forms (and the same with `valkey`, `valkeys`, `valkey+unix`):
//!
//! - `redis://HOST[:PORT][/DB]`: TCP, port 6379 by default, database 0;
//! - `rediss://HOST[:PORT][/DB]`: the same over TLS;
//! - `redis+unix:///PATH[?db=N]`: a Unix socket, by absolute path.
//!
//! HOST is a DNS name, an IPv4 address, or an IPv6 address in brackets
//! (`[::1]`). A URL carrying a user or a password (`redis://u:p@host`) is
//! refused: pam.d files and config.toml are world-readable, so credentials
//! come from `state_credentials=` instead. Parsing is strict (no
//! percent-encoding, no query on TCP URLs, no fragment) and no error ever
//! repeats any part of the URL, in case a password was written into it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Redis' default port.
pub const DEFAULT_PORT: u16 = 6379;
/// The largest database index accepted (Redis' `databases` is an `int`).
pub const MAX_DB: u32 = i32::MAX as u32 - 1;
/// The longest Unix socket path the kernel takes (`sun_path` is 108 bytes,
/// NUL included).
pub const MAX_SOCKET_PATH: usize = 107;
/// The longest URL accepted at all.
const MAX_URL: usize = 4096;

/// A parsed `state=` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateUrl {
    /// Which server the scheme named; both speak the same protocol.
    pub engine: Engine,
    /// How to reach it.
    pub endpoint: Endpoint,
    /// The database index (`SELECT`), 0 by default.
    pub db: u32,
}

/// Redis or Valkey: the same protocol, kept only to print the URL back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Redis,
    Valkey,
}

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP, in clear or (`tls`) over TLS.
    Tcp { host: Host, port: u16, tls: bool },
    /// A Unix stream socket.
    Unix { path: PathBuf },
}

/// A TCP host: an address, or a name the system resolver looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// A DNS name, lower-cased.
    Name(String),
}

/// Why a `state=` URL was refused. The messages never quote the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    Empty,
    TooLong,
    /// Spaces or control characters.
    BadCharacter,
    /// No `scheme://`.
    NoScheme,
    UnknownScheme,
    /// `user@`, `user:password@` or any `@` before the host.
    Credentials,
    MissingHost,
    BadHost,
    BadPort,
    /// The database is not a decimal number.
    BadDb,
    DbOutOfRange,
    /// A query on a TCP URL, or a Unix URL query other than `db=N`.
    BadQuery,
    Fragment,
    /// `redis+unix://host/...`: a Unix URL names no host.
    HostOnUnixUrl,
    /// `redis+unix://` without an absolute socket path.
    MissingPath,
    PathTooLong,
    /// `%` in the URL: percent-encoding is not supported.
    PercentEncoding,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            UrlError::Empty => "is empty",
            UrlError::TooLong => "is too long",
            UrlError::BadCharacter => "contains spaces or control characters",
            UrlError::NoScheme => "has no scheme (expected redis://, rediss://, redis+unix://, or the valkey equivalents)",
            UrlError::UnknownScheme => "has an unknown scheme (expected redis://, rediss://, redis+unix://, or the valkey equivalents)",
            UrlError::Credentials => "carries a user or password: put them in state_credentials=, never in the URL (pam.d files are world-readable)",
            UrlError::MissingHost => "names no host",
            UrlError::BadHost => "has an invalid host",
            UrlError::BadPort => "has an invalid port (expected 1 to 65535)",
            UrlError::BadDb => "has an invalid database (expected /N, a decimal number)",
            UrlError::DbOutOfRange => "has a database number out of range",
            UrlError::BadQuery => "has a query other than ?db=N on a Unix socket URL",
            UrlError::Fragment => "has a #fragment",
            UrlError::HostOnUnixUrl => "names a host in a Unix socket URL (expected redis+unix:///PATH)",
            UrlError::MissingPath => "names no absolute socket path (expected redis+unix:///PATH)",
            UrlError::PathTooLong => "names a socket path longer than 107 bytes",
            UrlError::PercentEncoding => "contains %: percent-encoding is not supported",
        };
        write!(f, "state URL {text}")
    }
}

impl std::error::Error for UrlError {}

impl FromStr for StateUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<StateUrl, UrlError> {
        StateUrl::parse(s)
    }
}

impl StateUrl {
    /// Parses a `state=` URL.
    pub fn parse(s: &str) -> Result<StateUrl, UrlError> {
        if s.is_empty() {
            return Err(UrlError::Empty);
        }
        if s.len() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadCharacter);
        }
        let (scheme, rest) = s.split_once("://").ok_or(UrlError::NoScheme)?;
        let (engine, kind) = scheme_kind(scheme)?;
        // Credentials first: whatever else is wrong, this is the error the
        // admin must see, and nothing after it is looked at.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if rest[..authority_end].contains('@') {
            return Err(UrlError::Credentials);
        }
        if rest.contains('%') {
            return Err(UrlError::PercentEncoding);
        }
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let (endpoint, db) = match kind {
            Kind::Tcp { tls } => parse_tcp(rest, tls)?,
            Kind::Unix => parse_unix(rest)?,
        };
        Ok(StateUrl {
            engine,
            endpoint,
            db,
        })
    }

    /// True for `rediss://` and `valkeys://`.
    pub fn is_tls(&self) -> bool {
        matches!(self.endpoint, Endpoint::Tcp { tls: true, .. })
    }
}

/// The canonical form, safe for logs (a URL never holds credentials).
impl fmt::Display for StateUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.engine {
            Engine::Redis => "redis",
            Engine::Valkey => "valkey",
        };
        match &self.endpoint {
            Endpoint::Tcp { host, port, tls } => {
                let s = if *tls { "s" } else { "" };
                write!(f, "{base}{s}://{host}:{port}/{}", self.db)
            }
            Endpoint::Unix { path } => {
                write!(f, "{base}+unix://{}?db={}", path.display(), self.db)
            }
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

enum Kind {
    Tcp { tls: bool },
    Unix,
}

fn scheme_kind(scheme: &str) -> Result<(Engine, Kind), UrlError> {
    Ok(match scheme {
        "redis" => (Engine::Redis, Kind::Tcp { tls: false }),
        "rediss" => (Engine::Redis, Kind::Tcp { tls: true }),
        "redis+unix" => (Engine::Redis, Kind::Unix),
        "valkey" => (Engine::Valkey, Kind::Tcp { tls: false }),
        "valkeys" => (Engine::Valkey, Kind::Tcp { tls: true }),
        "valkey+unix" => (Engine::Valkey, Kind::Unix),
        _ => return Err(UrlError::UnknownScheme),
    })
}

/// `HOST[:PORT][/DB]`.
fn parse_tcp(rest: &str, tls: bool) -> Result<(Endpoint, u32), UrlError> {
    if rest.contains('?') {
        return Err(UrlError::BadQuery);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (host, port) = split_host_port(authority)?;
    let host = parse_host(host)?;
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => parse_port(p)?,
    };
    let db = match path {
        None | Some("") => 0,
        Some(p) => parse_db(p)?,
    };
    Ok((Endpoint::Tcp { host, port, tls }, db))
}

/// Splits `host:port`, `[v6]:port`, `host`, `[v6]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or(UrlError::BadHost)?;
        return match after {
            "" => Ok((authority_v6(addr)?, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((authority_v6(addr)?, Some(port))),
                None => Err(UrlError::BadHost),
            },
        };
    }
    if authority.matches(':').count() > 1 {
        // A bare IPv6 address, or junk: IPv6 needs brackets.
        return Err(UrlError::BadHost);
    }
    match authority.split_once(':') {
        Some(("", _)) => Err(UrlError::MissingHost),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

/// Marks a bracketed IPv6 literal so `parse_host` knows to read it as one.
fn authority_v6(addr: &str) -> Result<&str, UrlError> {
    if addr.is_empty() {
        return Err(UrlError::MissingHost);
    }
    addr.parse::<Ipv6Addr>().map_err(|_| UrlError::BadHost)?;
    Ok(addr)
}

fn parse_host(host: &str) -> Result<Host, UrlError> {
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        // Only reachable from the bracketed form: a bare `::1:6379` has
        // more than one colon and was refused already.
        return Ok(Host::Ip(IpAddr::V6(v6)));
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    // A name: LDH labels of 1 to 63 bytes, 253 bytes in all. An all-numeric
    // dotted name that is not a valid IPv4 address (`1.2.3.999`) is refused.
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !labels_ok || numeric {
        return Err(UrlError::BadHost);
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::BadPort);
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::BadPort),
        Ok(port) => Ok(port),
    }
}

fn parse_db(d: &str) -> Result<u32, UrlError> {
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::BadDb);
    }
    match d.parse::<u64>() {
        Ok(n) if n <= u64::from(MAX_DB) => Ok(n as u32),
        // Too many digits for u64 is out of range too.
        _ => Err(UrlError::DbOutOfRange),
    }
}

/// `/PATH[?db=N]` after `redis+unix://`.
fn parse_unix(rest: &str) -> Result<(Endpoint, u32), UrlError> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.starts_with('/') {
        // `redis+unix://host/path` or `redis+unix://relative`.
        return Err(match path.find('/') {
            Some(_) => UrlError::HostOnUnixUrl,
            None if path.is_empty() => UrlError::MissingPath,
            None => UrlError::HostOnUnixUrl,
        });
    }
    if path == "/" || path.ends_with('/') {
        return Err(UrlError::MissingPath);
    }
    if path.len() > MAX_SOCKET_PATH {
        return Err(UrlError::PathTooLong);
    }
    let db = match query {
        None => 0,
        Some(q) => match q.strip_prefix("db=") {
            Some(n) if !n.contains(['&', '=', ';']) => parse_db(n)?,
            _ => return Err(UrlError::BadQuery),
        },
    };
    Ok((
        Endpoint::Unix {
            path: Path::new(path).to_owned(),
        },
        db,
    ))
}

#[cfg(test)]
mod tests;
