//! The fleet's module arguments and config.toml keys: `state=`,
//! `state_credentials=`, `state_ca=`, `state_prefix=`, `state_timeout=`
//! and `state_unavailable=`, parsed into [`FleetSettings`].
//!
//! The key table in `config/keys.rs` calls [`apply`] for these keys, from
//! the pam.d line and from config.toml alike. Error messages never quote
//! a value (a password pasted into a URL must not reach syslog).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use std::fmt;

use super::conn::tls::TlsConnector;
use super::credentials::{Credentials, CredentialsError};
use super::store::{StoreConfig, StoreError, DEFAULT_PREFIX, DEFAULT_TIMEOUT};
use super::url::{StateUrl, UrlError};

/// Longest `state_timeout=`: a login is never held longer than a minute.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Longest `state_prefix=`.
pub const MAX_PREFIX: usize = 64;

/// `state_unavailable=`: what a login does when the state server cannot
/// be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unavailable {
    /// Deny (after the prompt), with a syslog line naming the cause.
    #[default]
    Deny,
    /// Decide on the host's local state directory, with a warning in
    /// syslog; the state used is merged into the server's at the next
    /// contact.
    Local,
}

/// The fleet settings; `url` is `None` when `state=` is not set (the
/// local state directory decides, as always).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSettings {
    pub url: Option<StateUrl>,
    pub credentials: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub prefix: String,
    pub timeout: Duration,
    pub unavailable: Unavailable,
}

impl Default for FleetSettings {
    fn default() -> FleetSettings {
        FleetSettings {
            url: None,
            credentials: None,
            ca: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            unavailable: Unavailable::Deny,
        }
    }
}

/// Why a value of one of the fleet's keys is refused. The message never quotes
/// the value.
#[derive(Debug)]
pub enum SettingError {
    Url(UrlError),
    NotAbsolute,
    Prefix,
    TimeoutNotNumber,
    TimeoutRange,
    Unavailable,
    NotAKey,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Url(e) => e.fmt(f),
            SettingError::NotAbsolute => f.write_str("the value is not an absolute path"),
            SettingError::Prefix => write!(
                f,
                "the prefix must be 1 to {MAX_PREFIX} printable ASCII characters, no spaces"
            ),
            SettingError::TimeoutNotNumber => {
                f.write_str("the value is not a number of milliseconds")
            }
            SettingError::TimeoutRange => write!(f, "must be 1 to {MAX_TIMEOUT_MS} milliseconds"),
            SettingError::Unavailable => f.write_str("the value is not deny or local"),
            SettingError::NotAKey => f.write_str("not a state setting"),
        }
    }
}

impl std::error::Error for SettingError {}

/// Sets `key` (one of the fleet's keys) from `value`.
pub fn apply(f: &mut FleetSettings, key: &str, value: &str) -> Result<(), SettingError> {
    match key {
        "state" => {
            f.url = Some(StateUrl::parse(value).map_err(SettingError::Url)?);
        }
        "state_credentials" => f.credentials = Some(abs_path(value)?),
        "state_ca" => f.ca = Some(abs_path(value)?),
        "state_prefix" => {
            if value.is_empty()
                || value.len() > MAX_PREFIX
                || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(SettingError::Prefix);
            }
            f.prefix = value.to_owned();
        }
        "state_timeout" => {
            let ms: u64 = value.parse().map_err(|_| SettingError::TimeoutNotNumber)?;
            if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                return Err(SettingError::TimeoutRange);
            }
            f.timeout = Duration::from_millis(ms);
        }
        "state_unavailable" => {
            f.unavailable = match value {
                "deny" => Unavailable::Deny,
                "local" => Unavailable::Local,
                _ => return Err(SettingError::Unavailable),
            }
        }
        _ => return Err(SettingError::NotAKey),
    }
    Ok(())
}

fn abs_path(v: &str) -> Result<PathBuf, SettingError> {
    let p = PathBuf::from(v);
    if !p.is_absolute() {
        return Err(SettingError::NotAbsolute);
    }
    Ok(p)
}

/// Why the fleet settings cannot make a [`StoreConfig`]: a configuration
/// problem (the login is denied whatever `state_unavailable=` says).
#[derive(Debug)]
pub enum SetupError {
    /// The `state_credentials=` file is refused.
    Credentials {
        path: PathBuf,
        err: CredentialsError,
    },
    /// `state=` is not set (a fleet store was asked for anyway).
    NoUrl,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Credentials { path, err } => {
                write!(f, "state_credentials {}: {err}", path.display())
            }
            SetupError::NoUrl => f.write_str("state= is not set"),
        }
    }
}

impl std::error::Error for SetupError {}

impl FleetSettings {
    /// The store configuration, with the credentials file loaded (and
    /// checked: root-owned, no group or world bits) and TLS sessions from
    /// `tls`. `None` without `state=`.
    pub fn store_config(
        &self,
        tls: Option<&'static dyn TlsConnector>,
    ) -> Result<Option<StoreConfig>, SetupError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let credentials = match &self.credentials {
            None => None,
            Some(p) => Some(Credentials::load(p).map_err(|err| SetupError::Credentials {
                path: p.clone(),
                err,
            })?),
        };
        Ok(Some(StoreConfig {
            url: url.clone(),
            credentials,
            ca: self.ca.clone(),
            prefix: self.prefix.clone(),
            timeout: self.timeout,
            tls,
        }))
    }
}

/// Whether a store error means the server could not be reached or did
/// not answer in time (as opposed to refusing what it was asked).
pub fn is_unreachable(e: &StoreError) -> bool {
    use super::conn::ConnError;
    matches!(
        e,
        StoreError::Conn(
            ConnError::Connect(_)
                | ConnError::TimedOut
                | ConnError::Io(_)
                | ConnError::Closed
                | ConnError::Broken
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let mut f = FleetSettings::default();
        assert_eq!(f.prefix, "pam-totp:");
        assert_eq!(f.timeout, Duration::from_millis(1000));
        assert_eq!(f.unavailable, Unavailable::Deny);
        apply(&mut f, "state", "redis://127.0.0.1:6379/2").unwrap();
        apply(&mut f, "state_timeout", "250").unwrap();
        apply(&mut f, "state_unavailable", "local").unwrap();
        apply(&mut f, "state_prefix", "realm-a:").unwrap();
        apply(&mut f, "state_ca", "/etc/ca.pem").unwrap();
        assert_eq!(f.timeout, Duration::from_millis(250));
        assert_eq!(f.unavailable, Unavailable::Local);
        assert_eq!(f.prefix, "realm-a:");
        assert!(f.url.is_some());
    }

    #[test]
    fn refusals_never_quote_the_value() {
        let pw = "s3cretPassw0rd";
        for (k, v) in [
            ("state", format!("redis://u:{pw}@127.0.0.1")),
            ("state", format!("http://{pw}")),
            ("state_timeout", pw.to_owned()),
            ("state_timeout", "0".to_owned()),
            ("state_timeout", "60001".to_owned()),
            ("state_unavailable", pw.to_owned()),
            ("state_prefix", format!("a {pw}")),
            ("state_prefix", String::new()),
            ("state_credentials", pw.to_owned()),
            ("state_ca", pw.to_owned()),
        ] {
            let e = apply(&mut FleetSettings::default(), k, &v)
                .unwrap_err()
                .to_string();
            assert!(!e.contains(pw), "{k}: {e}");
        }
    }
}
