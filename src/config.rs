//! Module settings: pam.d arguments over `/etc/pam-totp/config.toml` over
//! defaults. Anything unknown or malformed is an error, never ignored.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use crate::core::logtext::{self, token};
use crate::core::policy::{Policy, RateLimit, MAX_RATE_FAILURES, MAX_WINDOW};
use crate::core::toml_doc::Doc;
use crate::sys::users::UserInfo;

pub const DEFAULT_CONFIG: &str = "/etc/pam-totp/config.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam-totp/state";
pub const DEFAULT_HOST_KEY: &str = "/etc/pam-totp/host.key";
/// Largest config file read.
pub const DEFAULT_SECRET: &str = "~/.pam_totp";
pub const DEFAULT_PROMPT: &str = "Verification code: ";
pub const DEFAULT_FORWARD_PROMPT: &str = "Password & verification code: ";
/// Upper bounds that keep a typo from disabling the rate limit in practice.
const MAX_RATE_SECONDS: u64 = 86_400;

/// Where the code comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FirstPass {
    /// Always prompt.
    #[default]
    Prompt,
    /// Check PAM_AUTHTOK when it holds a code; prompt unless it was the
    /// right one.
    Try,
    /// Take PAM_AUTHTOK; never prompt.
    Use,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Secret file template, before `~`, `${USER}`, `${HOME}` are expanded.
    pub secret: String,
    pub state_dir: PathBuf,
    pub policy: Policy,
    pub nullok: bool,
    pub require_group: Option<String>,
    pub exempt_group: Option<String>,
    /// Set only when given; the default depends on `forward_pass`.
    pub prompt: Option<String>,
    pub echo_code: bool,
    pub first_pass: FirstPass,
    pub forward_pass: bool,
    /// Do not tell a rate-limited user how long to wait.
    pub quiet_lockout: bool,
    pub debug: bool,
    /// The host's private key, which opens sealed secrets; the public key
    /// is beside it (`host.pub`).
    pub host_key: PathBuf,
    /// Fleet state (`state=` and friends, src/state/fleet/settings.rs).
    pub fleet: crate::state::fleet::FleetSettings,
    /// secret_command= and friends (src/config/secret_command.rs).
    pub secret_command: SecretCommandSettings,
    /// `secret=` was given (argument or file): it excludes secret_command=.
    pub secret_given: bool,
    /// A user without a secret enrolls in the login's conversation.
    pub enroll_at_login: bool,
    /// `enroll_by=`: before this day a user without a secret passes (as
    /// with nullok); from it on, not (nullok or not).
    pub enroll_by: Option<Deadline>,
    /// notify= and friends (src/config/notify.rs).
    pub notify: NotifySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secret: DEFAULT_SECRET.to_owned(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            policy: Policy::default(),
            nullok: false,
            require_group: None,
            exempt_group: None,
            prompt: None,
            echo_code: false,
            first_pass: FirstPass::Prompt,
            forward_pass: false,
            quiet_lockout: false,
            debug: false,
            host_key: PathBuf::from(DEFAULT_HOST_KEY),
            fleet: crate::state::fleet::FleetSettings::default(),
            secret_command: secret_command::unset(),
            secret_given: false,
            enroll_at_login: false,
            enroll_by: None,
            notify: notify::unset(),
        }
    }
}

impl Settings {
    pub fn prompt(&self) -> &str {
        match (&self.prompt, self.forward_pass) {
            (Some(p), _) => p,
            (None, true) => DEFAULT_FORWARD_PROMPT,
            (None, false) => DEFAULT_PROMPT,
        }
    }
}

/// Why the settings were refused. Names the argument or the file's line
/// and key, never a value (a secret pasted into the wrong place must not
/// reach syslog); names from outside are shown only through
/// [`safe_name`](logtext::safe_name) or as a [`token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// An argument that is none of the module's: its position (1-based)
    /// and its name, when [`safe_name`](logtext::safe_name) lets it through.
    Unknown {
        position: usize,
        name: Option<String>,
        with_value: bool,
    },
    Malformed {
        key: String,
        why: String,
    },
    File {
        path: PathBuf,
        why: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unknown {
                position,
                name: Some(name),
                with_value,
            } => {
                let value = if *with_value { "=..." } else { "" };
                write!(f, "unknown argument {name}{value} (argument {position})")
            }
            ConfigError::Unknown { position, .. } => {
                write!(f, "unknown argument {position} (not shown)")
            }
            ConfigError::Malformed { key, why } => write!(f, "bad value for {key}: {why}"),
            ConfigError::File { path, why } => {
                write!(f, "config file {}: {why}", token(&path.to_string_lossy()))
            }
        }
    }
}

impl std::error::Error for ConfigError {}

fn malformed(key: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        key: key.to_owned(),
        why: why.into(),
    }
}

/// Why a secret path template does not expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPathError {
    UnknownVariable,
    NotAbsolute,
}

impl fmt::Display for SecretPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretPathError::UnknownVariable => "the secret path may use only ${USER} and ${HOME}",
            SecretPathError::NotAbsolute => "the secret path is not absolute",
        })
    }
}

impl std::error::Error for SecretPathError {}

/// Builds the settings from pam.d arguments. The config file named by
/// `config=` (or [`DEFAULT_CONFIG`]) is read through `read`; a file named
/// explicitly must exist, the default one may be absent. Both sources go
/// through the one key table, [`keys::KEYS`]; pam.d wins.
pub fn from_args(args: &[String], read: ConfigReader<'_>) -> Result<Settings, ConfigError> {
    let mut config_path: Option<&str> = None;
    let mut pairs = Vec::with_capacity(args.len());
    for (position, arg) in args.iter().enumerate() {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg.as_str(), None),
        };
        if key == "config" {
            config_path = Some(
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| malformed("config", "expected config=PATH"))?,
            );
        } else {
            pairs.push((position + 1, key, value));
        }
    }

    let mut settings = Settings::default();
    let path = Path::new(config_path.unwrap_or(DEFAULT_CONFIG));
    let file_err = |why: String| ConfigError::File {
        path: path.to_owned(),
        why,
    };
    match read(path).map_err(|e| file_err(e.to_string()))? {
        Some(text) => apply_file(&mut settings, path, &text)?,
        None if config_path.is_some() => return Err(file_err("does not exist".into())),
        None => {}
    }
    for (position, name, value) in pairs {
        let key =
            keys::key(name).ok_or_else(|| keys::unknown_arg(position, name, value.is_some()))?;
        keys::apply(&mut settings, key, keys::from_arg(key, value)?)?;
    }
    check(&settings)?;
    Ok(settings)
}

/// Applies config.toml's entries in the order of the file; an error
/// names the file, the line and the key, never the value.
fn apply_file(s: &mut Settings, path: &Path, text: &str) -> Result<(), ConfigError> {
    let file_err = |why: String| ConfigError::File {
        path: path.to_owned(),
        why,
    };
    let doc = Doc::parse(text).map_err(|e| file_err(logtext::toml_problem(text, &e)))?;
    let table = doc.table();
    let entries = table.entries();
    let line = |start: usize| logtext::line_at(text, start);
    let at = |k: &str, start: usize, what: &str| {
        file_err(logtext::problem_at_line(line(start), what, k))
    };
    let set = |name: &str| table.get(name).and_then(|v| v.get_ref().as_bool()) == Some(true);
    if set("try_first_pass") && set("use_first_pass") {
        let e = malformed(
            "try_first_pass",
            "try_first_pass and use_first_pass exclude each other",
        );
        let n = entries
            .iter()
            .find(|(k, _)| k.get_ref() == "try_first_pass")
            .map_or(1, |(k, _)| line(k.span().start));
        return Err(file_err(format!("line {n}: {e}")));
    }
    for (name, value) in entries {
        let (name, start) = (name.get_ref().as_ref(), name.span().start);
        let key = keys::key(name).ok_or_else(|| at(name, start, "unknown key"))?;
        let value = keys::from_toml(key, value.get_ref()).map_err(|p| at(name, start, p.what()))?;
        keys::apply(s, key, value).map_err(|e| file_err(format!("line {}: {e}", line(start))))?;
    }
    Ok(())
}

/// Cross-checks between settings.
fn check(s: &Settings) -> Result<(), ConfigError> {
    if s.forward_pass && s.first_pass != FirstPass::Prompt {
        return Err(malformed(
            "forward_pass",
            "forward_pass prompts itself; it cannot be combined with try_first_pass or use_first_pass",
        ));
    }
    secret_command::check(&s.secret_command, s.secret_given)
        .map_err(|e| malformed(e.key(), e.to_string()))?;
    if s.enroll_at_login && s.secret_command.path.is_some() {
        return Err(malformed(
            "enroll_at_login",
            "enroll_at_login saves a secret file; it cannot be combined with secret_command",
        ));
    }
    notify::check(&s.notify).map_err(|e| malformed(e.key(), e.to_string()))?;
    Ok(())
}

fn check_window(n: u64) -> Result<u64, ConfigError> {
    if n > MAX_WINDOW {
        return Err(malformed(
            "window",
            format!("{n} is over the maximum {MAX_WINDOW}"),
        ));
    }
    Ok(n)
}

/// Parses `N/SECONDS`.
pub fn parse_rate_limit(v: &str) -> Result<RateLimit, ConfigError> {
    let bad = || malformed("rate_limit", "the value is not N/SECONDS, e.g. 3/30");
    let (n, secs) = v.split_once('/').ok_or_else(bad)?;
    let max_failures: u32 = n.trim().parse().map_err(|_| bad())?;
    let seconds: u64 = secs.trim().parse().map_err(|_| bad())?;
    if !(1..=MAX_RATE_FAILURES).contains(&max_failures)
        || !(1..=MAX_RATE_SECONDS).contains(&seconds)
    {
        return Err(malformed(
            "rate_limit",
            format!("N must be 1 to {MAX_RATE_FAILURES}, SECONDS 1 to {MAX_RATE_SECONDS}"),
        ));
    }
    Ok(RateLimit {
        max_failures,
        seconds,
    })
}

fn parse_group(key: &str, v: &str) -> Result<String, ConfigError> {
    if v.is_empty() || v.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control()) {
        return Err(malformed(key, "the value is not a group name"));
    }
    Ok(v.to_owned())
}

fn parse_abs_path(key: &str, v: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(v);
    if !p.is_absolute() {
        return Err(malformed(key, "the value is not an absolute path"));
    }
    Ok(p)
}

/// Checks a secret path template; it is expanded per user by [`expand_secret`].
fn parse_secret_template(key: &str, v: &str) -> Result<String, ConfigError> {
    let probe = UserInfo {
        name: "u".into(),
        uid: 0,
        gid: 0,
        home: "/h".into(),
    };
    expand_secret(v, &probe).map_err(|why| malformed(key, why.to_string()))?;
    Ok(v.to_owned())
}

/// Expands `~` (at the start), `${USER}` and `${HOME}` in a secret path.
/// The result must be absolute.
pub fn expand_secret(template: &str, user: &UserInfo) -> Result<PathBuf, SecretPathError> {
    let home = user.home.to_string_lossy();
    let mut out = String::new();
    let mut rest = template;
    if rest == "~" || rest.starts_with("~/") {
        out.push_str(&home);
        rest = &rest[1..];
    }
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("${USER}") {
            out.push_str(&user.name);
            rest = r;
        } else if let Some(r) = after.strip_prefix("${HOME}") {
            out.push_str(&home);
            rest = r;
        } else {
            return Err(SecretPathError::UnknownVariable);
        }
    }
    out.push_str(rest);
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(SecretPathError::NotAbsolute);
    }
    Ok(path)
}

pub mod command;
mod file;
pub mod keys;
pub mod notify;
pub mod rollout;
pub mod secret_command;
#[cfg(test)]
mod tests;

pub use file::{read_config_file, ConfigFileError, ConfigReader};
pub use notify::NotifySettings;
pub use rollout::Deadline;
pub use secret_command::SecretCommandSettings;
