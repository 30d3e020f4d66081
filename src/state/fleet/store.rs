//! The atomic primitive the fleet's state rests on: read a key, decide its
//! new value from the old one, write it, all or nothing across hosts.
//!
//! [`Store::update`] is an optimistic compare-and-set:
//!
//! 1. `WATCH key` and `GET key`, in one round trip;
//! 2. the caller's decision function computes the new value from the old
//!    one (it must be pure: it may run several times);
//! 3. `MULTI`, `SET key value`, `EXEC`, in one round trip. A nil `EXEC`
//!    reply means another client changed the key after step 1: nothing
//!    was written, so start again from step 1.
//!
//! Retries are bounded by [`MAX_ATTEMPTS`] and by the store's deadline.
//! When either runs out the update fails with [`StoreError::Contention`]
//! or [`StoreError::Conn`]`(TimedOut)`: nothing was written, and the
//! caller must deny the login (fail closed).
//!
//! A [`Store`] carries one deadline, set by [`Store::connect`] to now plus
//! the timeout: connecting, authenticating and every operation after that
//! share it, so a login with a dead or hung server is held at most one
//! timeout. A long-lived caller (the admin tool walking many accounts)
//! calls [`Store::renew_deadline`] before each operation.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::conn::tls::TlsConnector;
use super::conn::{expect_ok, unexpected, Conn, ConnError, ConnectOptions};
use super::credentials::Credentials;
use super::resp::{Command, Value};
use super::url::StateUrl;

/// `state_prefix=` default.
pub const DEFAULT_PREFIX: &str = "pam-totp:";
/// `state_timeout=` default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Compare-and-set attempts before [`StoreError::Contention`].
pub const MAX_ATTEMPTS: u32 = 64;

/// Everything needed to reach the fleet's state: the module's `state=`,
/// `state_credentials=`, `state_ca=`, `state_prefix=` and `state_timeout=`.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub url: StateUrl,
    /// Loaded from `state_credentials=` ([`Credentials::load`]).
    pub credentials: Option<Credentials>,
    /// `state_ca=`; the system bundle when `None`.
    pub ca: Option<PathBuf>,
    /// Prepended to every key name.
    pub prefix: String,
    /// The bound on connecting and on each operation's reads and writes
    /// together; see the module documentation.
    pub timeout: Duration,
    /// Where TLS sessions come from (`rediss://` needs one): the module's
    /// loads the TLS library on demand, the tool's is linked in.
    pub tls: Option<&'static dyn TlsConnector>,
}

impl StoreConfig {
    /// A configuration with the default prefix and timeout, no
    /// credentials, and the system CA bundle.
    pub fn new(url: StateUrl) -> StoreConfig {
        StoreConfig {
            url,
            credentials: None,
            ca: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            tls: None,
        }
    }
}

/// Why a store operation failed. Every one of them means "no decision":
/// the caller denies (or falls back to local state, if so configured).
#[derive(Debug)]
pub enum StoreError {
    Conn(ConnError),
    /// Every compare-and-set attempt lost to another writer.
    Contention {
        attempts: u32,
    },
    /// An empty key name.
    EmptyName,
    /// [`Store::scan`] found more keys than it holds.
    TooManyKeys {
        max: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conn(e) => e.fmt(f),
            StoreError::Contention { attempts } => write!(
                f,
                "state update abandoned after {attempts} attempts: other hosts kept changing it"
            ),
            StoreError::EmptyName => write!(f, "empty state key name"),
            StoreError::TooManyKeys { max } => {
                write!(f, "more than {max} keys to list on the state server")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<ConnError> for StoreError {
    fn from(e: ConnError) -> StoreError {
        StoreError::Conn(e)
    }
}

/// [`Store::update`]'s failure: the decision function's own error, or the
/// store's.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The decision function returned this; nothing was written.
    Decide(E),
    Store(StoreError),
}

impl<E: fmt::Display> fmt::Display for UpdateError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Decide(e) => e.fmt(f),
            UpdateError::Store(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for UpdateError<E> {}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> UpdateError<E> {
        UpdateError::Store(e)
    }
}

impl<E> From<ConnError> for UpdateError<E> {
    fn from(e: ConnError) -> UpdateError<E> {
        UpdateError::Store(StoreError::Conn(e))
    }
}

/// What a decision function returns for the current value: the new value
/// to write, `None` to leave it as it is, or an error (nothing written).
pub type Decision<E> = Result<Option<Vec<u8>>, E>;

/// What a successful [`Store::update`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Updated {
    /// False when the decision function returned `None` (no change).
    pub written: bool,
    /// Compare-and-set rounds used, 1 without contention.
    pub attempts: u32,
}

/// A connection to the state server, with its key prefix and deadline.
#[derive(Debug)]
pub struct Store {
    conn: Conn,
    prefix: String,
    timeout: Duration,
}

impl Store {
    /// Connects, authenticates and selects the database. Starts the
    /// deadline (now + `config.timeout`) that later operations share.
    pub fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let deadline = Instant::now() + config.timeout;
        let opts = ConnectOptions {
            url: &config.url,
            credentials: config.credentials.as_ref(),
            ca: config.ca.as_deref(),
            tls: config.tls,
        };
        Ok(Store {
            conn: Conn::connect(&opts, deadline)?,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
        })
    }

    /// Gives the next operations a fresh timeout from now.
    pub fn renew_deadline(&mut self) {
        self.conn.set_deadline(Instant::now() + self.timeout);
    }

    /// The full key for a name: the prefix, then the name.
    pub fn key(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        if name.is_empty() {
            return Err(StoreError::EmptyName);
        }
        Ok([self.prefix.as_bytes(), name.as_bytes()].concat())
    }

    /// The value under `name`, if any.
    pub fn get(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(name)?;
        let reply = self.conn.request(&Command::new("GET").arg(&key))?;
        Ok(bulk(reply)?)
    }

    /// Deletes `name`; true if it existed.
    pub fn del(&mut self, name: &str) -> Result<bool, StoreError> {
        let key = self.key(name)?;
        match self.conn.request(&Command::new("DEL").arg(&key))? {
            Value::Int(n) => Ok(n > 0),
            other => Err(unexpected(&other).into()),
        }
    }

    /// The names (after the prefix) of every key whose name starts with
    /// `start`, each once, in no particular order: `SCAN` with `MATCH`, a
    /// page at a time. Each page gets a fresh timeout (as
    /// [`renew_deadline`](Self::renew_deadline)), so a dead server stops
    /// the walk within one; a keyspace holding more than [`MAX_SCAN_NAMES`]
    /// such keys is refused rather than held in memory.
    pub fn scan(&mut self, start: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let pattern = [
            glob_escape(self.prefix.as_bytes()),
            glob_escape(start.as_bytes()),
        ]
        .concat();
        let pattern = [pattern.as_slice(), b"*"].concat();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = b"0".to_vec();
        loop {
            self.renew_deadline();
            let scan = Command::new("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_PAGE);
            let (next, keys) = scan_page(self.conn.request(&scan)?)?;
            for key in keys {
                if let Some(name) = key.strip_prefix(self.prefix.as_bytes()) {
                    seen.insert(name.to_vec());
                }
            }
            if seen.len() > MAX_SCAN_NAMES {
                return Err(StoreError::TooManyKeys {
                    max: MAX_SCAN_NAMES,
                });
            }
            if next == b"0" {
                return Ok(seen.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// Atomically replaces the value under `name` with what `decide`
    /// returns for the current one (`None`: absent). `decide` returning
    /// `Ok(None)` leaves the value as it is; `Err(e)` stops with
    /// [`UpdateError::Decide`] and writes nothing. `decide` may be called
    /// several times (once per attempt), each time with the then-current
    /// value: it must not act on the outside world, only decide; the value
    /// it returned last is the one written.
    pub fn update<E>(
        &mut self,
        name: &str,
        decide: &mut dyn FnMut(Option<&[u8]>) -> Decision<E>,
    ) -> Result<Updated, UpdateError<E>> {
        let key = self.key(name)?;
        let watch = Command::new("WATCH").arg(&key);
        let get = Command::new("GET").arg(&key);
        let unwatch = Command::new("UNWATCH");
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                self.back_off(attempt)?;
            }
            let replies = self.conn.pipeline(&[&watch, &get])?;
            let [watched, current] = <[Value; 2]>::try_from(replies)
                .map_err(|_| ConnError::Protocol("reply count".into()))?;
            expect_ok(&watched)?;
            let current = bulk(current)?;
            let new = match decide(current.as_deref()) {
                Ok(Some(v)) => v,
                Ok(None) => {
                    expect_ok(&self.conn.request(&unwatch)?)?;
                    return Ok(Updated {
                        written: false,
                        attempts: attempt,
                    });
                }
                Err(e) => {
                    expect_ok(&self.conn.request(&unwatch)?)?;
                    return Err(UpdateError::Decide(e));
                }
            };
            if self.exec_set(&key, &new)? {
                return Ok(Updated {
                    written: true,
                    attempts: attempt,
                });
            }
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// `MULTI`, `SET`, `EXEC`: true if written, false if a watched key
    /// changed (nil `EXEC`).
    fn exec_set(&mut self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let multi = Command::new("MULTI");
        let set = Command::new("SET").arg(key).arg(value);
        let exec = Command::new("EXEC");
        let replies = self.conn.pipeline(&[&multi, &set, &exec])?;
        let [started, queued, done] = <[Value; 3]>::try_from(replies)
            .map_err(|_| ConnError::Protocol("reply count".into()))?;
        expect_ok(&started)?;
        match &queued {
            Value::SimpleString(s) if s == "QUEUED" => {}
            // A refused SET (NOPERM, ...): EXEC then answers EXECABORT;
            // report the SET's own error, which says why.
            other => return Err(unexpected(other).into()),
        }
        match done {
            Value::Nil => Ok(false),
            Value::Array(items) => match items.as_slice() {
                [reply] => {
                    expect_ok(reply)?;
                    Ok(true)
                }
                _ => Err(ConnError::Protocol("EXEC reply length".into()).into()),
            },
            other => Err(unexpected(&other).into()),
        }
    }

    /// A short random pause before retrying, so hosts that collided do not
    /// collide again in lockstep; never past the deadline.
    fn back_off(&mut self, attempt: u32) -> Result<(), StoreError> {
        let left = self
            .conn
            .deadline()
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnError::TimedOut.into());
        }
        let mut byte = [0u8; 1];
        // Without randomness, a fixed pause still bounds the loop.
        let jitter = getrandom::fill(&mut byte).map(|()| byte[0]).unwrap_or(128);
        let cap_us = 200 * u64::from(attempt.min(10));
        let pause = Duration::from_micros(u64::from(jitter) * cap_us / 255);
        std::thread::sleep(pause.min(left / 2));
        Ok(())
    }
}

/// Keys `SCAN` is asked to look at per page.
const SCAN_PAGE: u32 = 1000;
/// Most key names [`Store::scan`] returns.
pub const MAX_SCAN_NAMES: usize = 1_000_000;

/// `bytes` matched literally in a `MATCH` pattern: `*`, `?`, `[`, `]` and
/// `\` escaped with a backslash (the prefix is the administrator's).
fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// A SCAN reply: the next cursor and this page's keys.
fn scan_page(reply: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>), ConnError> {
    let Value::Array(parts) = reply else {
        return Err(unexpected(&reply));
    };
    let [cursor, keys] = <[Value; 2]>::try_from(parts)
        .map_err(|_| ConnError::Protocol("SCAN reply length".into()))?;
    let (Value::BulkString(cursor), Value::Array(keys)) = (cursor, keys) else {
        return Err(ConnError::Protocol("SCAN reply shape".into()));
    };
    let keys = keys
        .into_iter()
        .map(|k| match k {
            Value::BulkString(k) => Ok(k),
            other => Err(unexpected(&other)),
        })
        .collect::<Result<_, _>>()?;
    Ok((cursor, keys))
}

/// A GET reply: a bulk string or nil.
fn bulk(reply: Value) -> Result<Option<Vec<u8>>, ConnError> {
    match reply {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one whole reply `bytes` hold.
    fn reply(bytes: &[u8]) -> Value {
        let (value, used) = super::super::resp::parse(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        value
    }

    #[test]
    fn get_replies() {
        assert_eq!(bulk(Value::Nil).unwrap(), None);
        assert_eq!(
            bulk(Value::BulkString(b"x".to_vec())).unwrap(),
            Some(b"x".to_vec())
        );
        assert!(matches!(bulk(Value::Int(1)), Err(ConnError::Protocol(_))));
        let err = reply(b"-WRONGTYPE nope\r\n");
        assert!(matches!(bulk(err), Err(ConnError::Server { .. })));
    }

    #[test]
    fn scan_patterns_and_replies() {
        assert_eq!(glob_escape(b"a*b?[c]\\:"), b"a\\*b\\?\\[c\\]\\\\:");
        let page = reply(b"*2\r\n$2\r\n17\r\n*1\r\n$3\r\nk:a\r\n");
        assert_eq!(
            scan_page(page).unwrap(),
            (b"17".to_vec(), vec![b"k:a".to_vec()])
        );
        assert!(scan_page(Value::Int(1)).is_err());
    }

    #[test]
    fn defaults() {
        let c = StoreConfig::new(StateUrl::parse("redis://127.0.0.1").unwrap());
        assert_eq!(c.prefix, "pam-totp:");
        assert_eq!(c.timeout, Duration::from_millis(1000));
        assert!(c.credentials.is_none() && c.ca.is_none());
    }
}
