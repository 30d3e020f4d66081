//! Who may act on whom, and where the files are: the rules every
//! subcommand shares, in one place.
//!
//! - The caller is root only when both the real and the effective uid are
//!   0, so a setuid copy never acts as root for a user.
//! - `--user` names another account only for root; another spelling of the
//!   caller's own account is the caller.
//! - The secret file is `--secret-file` (root only), else the config file's
//!   `secret` template. One under the user's home is touched only with the
//!   user's filesystem identity (`FsIdentity`), so root can do nothing there
//!   the user could not; one elsewhere is root's, and a user who is not
//!   root writes only under their own home.
//! - The state is kept under the account's canonical name, in `--state-dir`,
//!   else the config file's `state_dir`.
//! - Sealing: to host.pub when it exists (unless `--no-seal`); only root
//!   opens a sealed secret, as the module does.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{geteuid, getuid};
use zeroize::Zeroizing;

use pam_totp::config;
use pam_totp::config::Settings;
use pam_totp::secret::seal;
use pam_totp::secret::store;
use pam_totp::secret::store::{SealingError, SealingKey};
use pam_totp::sys::identity::FsIdentity;
use pam_totp::sys::secret_file;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use crate::args::UserArgs;
use crate::error::{AccessError, KeyError, Result};

/// The user running the tool.
pub struct Caller {
    pub root: bool,
    pub me: UserInfo,
}

pub fn caller() -> Result<Caller> {
    let uid = getuid().as_raw();
    let me = users::lookup_uid(uid)
        .map_err(|err| AccessError::CallerLookup { uid, err })?
        .ok_or(AccessError::CallerUnknown { uid })?;
    Ok(Caller {
        root: uid == 0 && geteuid().is_root(),
        me,
    })
}

/// The user to act on: `--user` (root, or the caller naming themself) or
/// the caller.
pub fn target(caller: &Caller, who: &UserArgs) -> Result<UserInfo> {
    let Some(name) = who.user.as_deref() else {
        return Ok(caller.me.clone());
    };
    if !caller.root && name != caller.me.name {
        // Another spelling of the caller's own account is the caller.
        return match users::lookup_user(name) {
            Ok(Some(u)) if u.uid == caller.me.uid => Ok(u),
            _ => Err(AccessError::AnotherUser { name: name.into() }.into()),
        };
    }
    Ok(lookup_user(name)?.ok_or_else(|| AccessError::NoSuchUser { name: name.into() })?)
}

/// A user by name, through the library's lookup.
pub fn lookup_user(name: &str) -> Result<Option<UserInfo>> {
    Ok(
        users::lookup_user(name).map_err(|err| AccessError::UserLookup {
            name: name.into(),
            err,
        })?,
    )
}

/// The name the user's state is kept under: the account's canonical name,
/// whatever spelling `--user` gave (as the module does).
pub fn state_account(user: &UserInfo) -> Result<String> {
    Ok(users::canonical_name(user).map_err(AccessError::Account)?)
}

/// The module's settings from the config file (the default one may be
/// absent; one named with --config must exist).
pub fn settings(config: Option<&Path>) -> Result<Settings> {
    let args: Vec<String> = config
        .iter()
        .map(|p| format!("config={}", p.display()))
        .collect();
    Ok(config::from_args(&args, &config::read_config_file).map_err(AccessError::Config)?)
}

/// The state directory: `--state-dir`, else the config file's.
pub fn state_dir(settings: &Settings, chosen: &Option<PathBuf>) -> PathBuf {
    chosen.clone().unwrap_or_else(|| settings.state_dir.clone())
}

/// Whether anything (even a dangling symlink) is at `path`; an error other
/// than "not found" counts as something there.
pub fn exists(path: &Path) -> bool {
    !matches!(fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// Where a user's secret file is, and how it is accessed.
pub struct Location {
    pub path: PathBuf,
    /// Under the user's home: accessed with the user's identity.
    pub as_owner: bool,
}

impl Location {
    /// Where `path` is, for `user`.
    pub fn of(user: &UserInfo, path: PathBuf) -> Location {
        Location {
            as_owner: secret_file::accessed_as_owner(user, &path),
            path,
        }
    }

    pub fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether root reads the file with the user's identity.
    pub fn read_as_owner(&self, caller: &Caller) -> bool {
        caller.root && self.as_owner
    }

    /// The user's filesystem identity while alive, when root works in the
    /// user's home; nothing otherwise (a user acts as themself anyway).
    /// Fails if the identity could not be taken (nothing is done then).
    pub fn identity(&self, caller: &Caller, user: &UserInfo) -> Result<Option<FsIdentity>> {
        if !self.read_as_owner(caller) {
            return Ok(None);
        }
        let id = FsIdentity::assume(user.uid, user.gid).map_err(|err| AccessError::Identity {
            path: self.path.clone(),
            err,
        })?;
        Ok(Some(id))
    }
}

/// The user's secret file: `--secret-file` (root only) or the template.
pub fn locate(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    chosen: Option<&Path>,
) -> Result<Location> {
    let path = match chosen {
        Some(_) if !caller.root => return Err(AccessError::SecretFileRootOnly.into()),
        Some(p) => std::path::absolute(p).map_err(|err| AccessError::SecretFilePath {
            path: p.to_owned(),
            err,
        })?,
        None => {
            config::expand_secret(&settings.secret, user).map_err(AccessError::SecretTemplate)?
        }
    };
    if path.file_name().is_none() {
        return Err(AccessError::NotAFilePath { path }.into());
    }
    Ok(Location::of(user, path))
}

/// A user who is not root writes only under their own home directory.
pub fn require_writable(caller: &Caller, loc: &Location) -> Result<()> {
    if caller.root || loc.as_owner {
        return Ok(());
    }
    Err(AccessError::OutsideHome {
        path: loc.path.clone(),
    }
    .into())
}

/// Opens sealed secrets as the module does (root only: the host key is
/// root's). Its error type is the library's `Unsealer`'s.
pub fn unsealer<'a>(
    caller: &Caller,
    settings: &'a Settings,
    user: &'a UserInfo,
) -> Option<impl Fn(&str) -> std::result::Result<Zeroizing<Vec<u8>>, seal::SealError> + 'a> {
    caller
        .root
        .then_some(move |sealed: &str| seal::unseal(&settings.host_key, &user.name, sealed))
}

/// The host key a new secret is sealed to: host.pub when it exists (unless
/// `--no-seal`), else none (a plain secret). Decided before anything is
/// shown or written. Root also checks that host.key is there and matches,
/// so that no secret is sealed to a key the module cannot open.
pub fn sealing(caller: &Caller, settings: &Settings, no_seal: bool) -> Result<Option<SealingKey>> {
    if no_seal {
        return Ok(None);
    }
    // The library's choice, shared with the module's enrollment at login.
    let public_path = || seal::public_path(&settings.host_key);
    Ok(
        store::sealing_key(&settings.host_key, caller.root).map_err(|e| match e {
            SealingError::Public(err) => KeyError::HostPubUnusable(err),
            SealingError::Private(err) => KeyError::HostKeyUnusable {
                err,
                public: public_path(),
            },
            SealingError::Mismatch => KeyError::PairMismatch {
                public: public_path(),
                key: settings.host_key.clone(),
            },
        })?,
    )
}
