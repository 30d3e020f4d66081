//! `notify=` (issue 16): what a detached hook run needs, checked and
//! resolved in safe code before the edge forks (src/pam/notify.rs).
//!
//! The hook file gets the checks of every command the module runs
//! ([`check_owned_by_root`]); its user is looked up by name (`root` only
//! when written so). The event's JSON is the hook's standard input; its
//! environment is [`HOOK_ENVIRONMENT`]; it gets no argument.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::command::{check_owned_by_root, CommandPathError};
use super::users;

/// The hook's whole environment (`sendmail` is in /usr/sbin).
pub const HOOK_ENVIRONMENT: &[(&str, &str)] =
    &[("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), ("LANG", "C")];
/// The most of an event given to a hook (the events are far smaller).
pub const MAX_INPUT: usize = 16 * 1024;

/// One detached run of a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// Checked with [`check_owned_by_root`], resolved.
    pub program: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Killed with its process group when still running after this.
    pub timeout: Duration,
    /// Standard input: the event's JSON (at most [`MAX_INPUT`] bytes).
    pub input: Vec<u8>,
    /// The start of every syslog line about this run (after the ident),
    /// e.g. `notify event=lockout user=alice hook=/usr/lib/x`: fields
    /// from outside already escaped (`logtext::token`).
    pub log_prefix: String,
}

/// Why a hook cannot be run.
#[derive(Debug)]
pub enum HookError {
    /// The hook file cannot be trusted (or is missing).
    Path(CommandPathError),
    UserLookup(io::Error),
    NoSuchUser(String),
    /// The hook's user has uid 0 but was not written `root`.
    RootAlias(String),
    /// The event is larger than [`MAX_INPUT`].
    TooLarge,
    /// Forking failed.
    Spawn(io::Error),
}

impl fmt::Display for HookError {
    /// Names from outside are the caller's to escape: only the reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(e) => match e.path() {
                Some(p) => write!(f, "{} {e}", shown(p)),
                None => write!(f, "{e}"),
            },
            Self::UserLookup(e) => write!(f, "notify_user lookup failed: {e}"),
            Self::NoSuchUser(_) => f.write_str("notify_user does not exist"),
            Self::RootAlias(_) => f.write_str(
                "notify_user has uid 0; only notify_user root (written so) runs the hook as root",
            ),
            Self::TooLarge => f.write_str("the event is too large"),
            Self::Spawn(e) => write!(f, "could not be started: {e}"),
        }
    }
}

impl std::error::Error for HookError {}

/// A path as one log token (printable ASCII as is, anything else `\xHH`).
fn shown(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.bytes()
        .map(|b| {
            if b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'=' | b'\\') {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Checks the hook file and looks up its user: `(program, uid, gid)`.
pub fn resolve(path: &Path, user: &str) -> Result<(PathBuf, u32, u32), HookError> {
    let program = check_owned_by_root(path).map_err(HookError::Path)?;
    let account = users::lookup_user(user)
        .map_err(HookError::UserLookup)?
        .ok_or_else(|| HookError::NoSuchUser(user.to_owned()))?;
    if account.uid == 0 && user != "root" {
        return Err(HookError::RootAlias(user.to_owned()));
    }
    Ok((program, account.uid, account.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_must_be_trusted_and_its_user_known() {
        let e = resolve(Path::new("/nonexistent/hook"), "root").unwrap_err();
        assert!(matches!(e, HookError::Path(_)), "{e:?}");
        let e = resolve(Path::new("/bin/true"), "pamtotp-no-such-user").unwrap_err();
        assert!(matches!(e, HookError::NoSuchUser(_)), "{e:?}");
        let (p, uid, _) = resolve(Path::new("/bin/true"), "root").unwrap();
        assert_eq!((p.is_absolute(), uid), (true, 0));
        assert_eq!(shown(Path::new("/a b=")), "/a\\x20b\\x3d");
    }
}
