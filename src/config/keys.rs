//! The one table of settings keys. A pam.d argument and a config.toml
//! entry both become a key and a typed [`Value`], and [`apply`] sets it:
//! each key's type and parser are written once, here. Adding a key is one
//! entry in [`KEYS`].
#![forbid(unsafe_code)]

use super::{
    check_window, malformed, parse_abs_path, parse_group, parse_rate_limit, parse_secret_template,
    ConfigError, FirstPass, Settings,
};
use crate::core::logtext::safe_name;
use crate::core::toml_doc;
use toml::de::DeValue;

/// A value, typed: a pam.d bare word is `Flag(true)`, `key=value` is
/// `Text` (an integer key parses it); config.toml gives its own types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Flag(bool),
    Text(&'a str),
    Int(u64),
}

/// What a key takes, and how it sets the settings.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A boolean: a bare word in pam.d, `true`/`false` in config.toml.
    Flag(fn(&mut Settings, bool)),
    /// Text: `key=TEXT` in pam.d, a string in config.toml.
    Text(fn(&mut Settings, &str) -> Result<(), ConfigError>),
    /// A non-negative integer: `key=N` in pam.d (refused with the message
    /// given here when it is not a number), an integer in config.toml.
    Int(
        fn(&mut Settings, u64) -> Result<(), ConfigError>,
        &'static str,
    ),
}

/// One settings key.
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
}

/// The fleet's keys are parsed in src/state/fleet/settings.rs.
fn fleet(s: &mut Settings, key: &str, v: &str) -> Result<(), ConfigError> {
    crate::state::fleet::settings::apply(&mut s.fleet, key, v)
        .map_err(|why| malformed(key, why.to_string()))
}

/// The keys of `secret_command=` are parsed in src/config/secret_command.rs.
fn command(s: &mut Settings, key: &str, v: &str) -> Result<(), ConfigError> {
    super::secret_command::apply(&mut s.secret_command, key, v)
        .map_err(|why| malformed(key, why.to_string()))
}

/// The keys of `notify=` are parsed in src/config/notify.rs.
fn notify(s: &mut Settings, key: &str, v: &str) -> Result<(), ConfigError> {
    super::notify::apply(&mut s.notify, key, v).map_err(|why| malformed(key, why.to_string()))
}

/// Every key of the module (pam.d arguments and config.toml alike; the
/// pam.d-only `config=` is read before these).
pub const KEYS: &[Key] = &[
    Key {
        name: "secret",
        kind: Kind::Text(|s, v| {
            s.secret = parse_secret_template("secret", v)?;
            // Written, even at its default: it excludes secret_command=.
            s.secret_given = true;
            Ok(())
        }),
    },
    Key {
        name: "state_dir",
        kind: Kind::Text(|s, v| {
            s.state_dir = parse_abs_path("state_dir", v)?;
            Ok(())
        }),
    },
    Key {
        name: "window",
        kind: Kind::Int(
            |s, n| {
                s.policy.window = check_window(n)?;
                Ok(())
            },
            "the value is not a number",
        ),
    },
    Key {
        name: "rate_limit",
        kind: Kind::Text(|s, v| {
            s.policy.rate_limit = parse_rate_limit(v)?;
            Ok(())
        }),
    },
    Key {
        name: "nullok",
        kind: Kind::Flag(|s, on| s.nullok = on),
    },
    Key {
        name: "enroll_at_login",
        kind: Kind::Flag(|s, on| s.enroll_at_login = on),
    },
    Key {
        name: "enroll_by",
        kind: Kind::Text(|s, v| {
            s.enroll_by = Some(super::Deadline::parse(v)?);
            Ok(())
        }),
    },
    Key {
        name: "require_group",
        kind: Kind::Text(|s, v| {
            s.require_group = Some(parse_group("require_group", v)?);
            Ok(())
        }),
    },
    Key {
        name: "exempt_group",
        kind: Kind::Text(|s, v| {
            s.exempt_group = Some(parse_group("exempt_group", v)?);
            Ok(())
        }),
    },
    Key {
        name: "prompt",
        kind: Kind::Text(|s, v| {
            s.prompt = Some(v.to_owned());
            Ok(())
        }),
    },
    Key {
        name: "echo_code",
        kind: Kind::Flag(|s, on| s.echo_code = on),
    },
    // `false` leaves the choice alone; config.toml refuses both set true
    // (pam.d: the last one given wins).
    Key {
        name: "try_first_pass",
        kind: Kind::Flag(|s, on| {
            if on {
                s.first_pass = FirstPass::Try;
            }
        }),
    },
    Key {
        name: "use_first_pass",
        kind: Kind::Flag(|s, on| {
            if on {
                s.first_pass = FirstPass::Use;
            }
        }),
    },
    Key {
        name: "forward_pass",
        kind: Kind::Flag(|s, on| s.forward_pass = on),
    },
    Key {
        name: "quiet_lockout",
        kind: Kind::Flag(|s, on| s.quiet_lockout = on),
    },
    Key {
        name: "debug",
        kind: Kind::Flag(|s, on| s.debug = on),
    },
    Key {
        name: "host_key",
        kind: Kind::Text(|s, v| {
            s.host_key = parse_abs_path("host_key", v)?;
            Ok(())
        }),
    },
    Key {
        name: "state",
        kind: Kind::Text(|s, v| fleet(s, "state", v)),
    },
    Key {
        name: "state_credentials",
        kind: Kind::Text(|s, v| fleet(s, "state_credentials", v)),
    },
    Key {
        name: "state_ca",
        kind: Kind::Text(|s, v| fleet(s, "state_ca", v)),
    },
    Key {
        name: "state_prefix",
        kind: Kind::Text(|s, v| fleet(s, "state_prefix", v)),
    },
    Key {
        name: "state_timeout",
        kind: Kind::Int(
            |s, n| fleet(s, "state_timeout", &n.to_string()),
            "the value is not a number of milliseconds",
        ),
    },
    Key {
        name: "state_unavailable",
        kind: Kind::Text(|s, v| fleet(s, "state_unavailable", v)),
    },
    Key {
        name: "secret_command",
        kind: Kind::Text(|s, v| command(s, "secret_command", v)),
    },
    Key {
        name: "secret_command_user",
        kind: Kind::Text(|s, v| command(s, "secret_command_user", v)),
    },
    Key {
        name: "secret_command_timeout",
        kind: Kind::Int(
            |s, n| command(s, "secret_command_timeout", &n.to_string()),
            "the value is not a number of milliseconds",
        ),
    },
    Key {
        name: "notify",
        kind: Kind::Text(|s, v| notify(s, "notify", v)),
    },
    Key {
        name: "notify_user",
        kind: Kind::Text(|s, v| notify(s, "notify_user", v)),
    },
    Key {
        name: "notify_timeout",
        kind: Kind::Int(
            |s, n| notify(s, "notify_timeout", &n.to_string()),
            "the value is not a number of milliseconds",
        ),
    },
];

/// The entry of `name`, if it is a key.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// A pam.d argument's value, typed for `key`: a bare word is a flag, a
/// `key=value` is text, parsed when the key takes an integer.
pub fn from_arg<'a>(key: &Key, value: Option<&'a str>) -> Result<Value<'a>, ConfigError> {
    let name = key.name;
    match (key.kind, value) {
        (Kind::Flag(_), None) => Ok(Value::Flag(true)),
        (Kind::Flag(_), Some(_)) => Err(malformed(name, format!("{name} takes no value"))),
        (_, None) => Err(malformed(name, format!("expected {name}=VALUE"))),
        (Kind::Text(_), Some(v)) => Ok(Value::Text(v)),
        (Kind::Int(_, not_a_number), Some(v)) => v
            .parse()
            .map(Value::Int)
            .map_err(|_| malformed(name, not_a_number)),
    }
}

/// Why a config.toml value does not fit its key (in the words of
/// `logtext::toml_problem`).
#[derive(Debug, PartialEq, Eq)]
pub enum TypeProblem {
    WrongType,
    Invalid,
}

impl TypeProblem {
    pub fn what(&self) -> &'static str {
        match self {
            TypeProblem::WrongType => "wrong type of value",
            TypeProblem::Invalid => "invalid value",
        }
    }
}

/// A config.toml value, typed for `key`: booleans must be TOML booleans,
/// text a string, integers a non-negative integer.
pub fn from_toml<'a>(key: &Key, value: &'a DeValue<'_>) -> Result<Value<'a>, TypeProblem> {
    match (key.kind, value) {
        (Kind::Flag(_), DeValue::Boolean(b)) => Ok(Value::Flag(*b)),
        (Kind::Text(_), DeValue::String(v)) => Ok(Value::Text(v)),
        (Kind::Int(..), v @ DeValue::Integer(_)) => toml_doc::int_of(v, &(0..=u64::MAX))
            .map(Value::Int)
            .map_err(|_| TypeProblem::Invalid),
        _ => Err(TypeProblem::WrongType),
    }
}

/// Sets `key` to `value` (typed for it by [`from_arg`] or [`from_toml`]).
pub fn apply(s: &mut Settings, key: &Key, value: Value<'_>) -> Result<(), ConfigError> {
    match (key.kind, value) {
        (Kind::Flag(set), Value::Flag(on)) => {
            set(s, on);
            Ok(())
        }
        (Kind::Text(set), Value::Text(v)) => set(s, v),
        (Kind::Int(set, _), Value::Int(n)) => set(s, n),
        // The typing functions above never build a mismatch; refuse it anyway.
        _ => Err(malformed(key.name, "wrong type of value")),
    }
}

/// An unknown pam.d argument, its name shown only when it is safe.
pub fn unknown_arg(position: usize, name: &str, with_value: bool) -> ConfigError {
    ConfigError::Unknown {
        position,
        name: safe_name(name).map(str::to_owned),
        with_value,
    }
}
