//! Users and groups: lookups in the passwd and group databases, the
//! canonical name an account's state is kept under, group membership.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::unistd::{self, Gid, Uid};

/// What the module needs to know about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Whether a user name is one this module will handle: it becomes a file
/// name in the state directory, so it must be a plain, short name.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| !c.is_control() && c != '/' && !c.is_whitespace())
}

/// Looks an account up in the passwd database. `Ok(None)`: no such user.
pub fn lookup_user(name: &str) -> io::Result<Option<UserInfo>> {
    if !valid_user_name(name) {
        return Ok(None);
    }
    let user = unistd::User::from_name(name).map_err(io::Error::from)?;
    Ok(user.map(|u| UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    }))
}

/// Looks an account up by uid.
pub fn lookup_uid(uid: u32) -> io::Result<Option<UserInfo>> {
    let user = unistd::User::from_uid(Uid::from_raw(uid)).map_err(io::Error::from)?;
    Ok(user.map(|u| UserInfo {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
    }))
}

/// The name of the account whose replay state and rate limit a login as
/// `name` uses: the canonical name of the account the name resolves to.
///
/// Several names can resolve to one account: two passwd lines with one
/// uid (`root` and `toor`), or NSS modules that answer to other spellings
/// (SSSD's case-insensitive and fully-qualified names, `Alice` and
/// `alice@example.com` for `alice`). Keyed by the typed name, each
/// spelling would have its own record of spent codes and its own failure
/// budget. So: `getpwnam(name)` gives the uid; the canonical name is
/// `getpwuid(uid)`'s `pw_name`; and `getpwnam(canonical)` must give the
/// same uid back, or the databases disagree and the login is refused
/// (`Err`, the reason for the log).
pub fn state_account(name: &str) -> Result<String, AccountError> {
    let user = lookup_user(name)
        .map_err(AccountError::Lookup)?
        .ok_or_else(|| AccountError::NoAccount(name.to_owned()))?;
    canonical_name_found_as(&user, name)
}

/// The canonical name of `user`'s account (see [`state_account`]), for a
/// user found by a name this function does not know: the canonical name
/// is always looked up again.
pub fn canonical_name(user: &UserInfo) -> Result<String, AccountError> {
    canonical(user, None)
}

/// The canonical name of `user`'s account (see [`state_account`]), for a
/// user that `getpwnam(found_as)` ([`lookup_user`]) returned. When the
/// canonical name is `found_as` itself, that lookup was
/// `getpwnam(canonical)` and gave this uid, so it is not made again: a
/// login by the account's own name costs two passwd lookups, not three.
/// Any other name (a second name of the uid, another spelling) is checked
/// back as [`state_account`] says.
pub fn canonical_name_found_as(user: &UserInfo, found_as: &str) -> Result<String, AccountError> {
    canonical(user, Some(found_as))
}

fn canonical(user: &UserInfo, found_as: Option<&str>) -> Result<String, AccountError> {
    let uid = user.uid;
    let by_uid = lookup_uid(uid)
        .map_err(|e| AccountError::UidLookup(uid, e))?
        .ok_or_else(|| AccountError::NoPasswdEntry(uid, user.name.clone()))?;
    if found_as == Some(by_uid.name.as_str()) {
        return Ok(by_uid.name);
    }
    let back = lookup_user(&by_uid.name)
        .map_err(AccountError::Lookup)?
        .ok_or_else(|| AccountError::NameDoesNotResolve(uid, by_uid.name.clone()))?;
    if back.uid != uid {
        return Err(AccountError::NameResolvesElsewhere {
            uid,
            name: by_uid.name,
            other: back.uid,
        });
    }
    Ok(by_uid.name)
}

/// Why the account a name belongs to could not be settled.
#[derive(Debug)]
pub enum AccountError {
    Lookup(io::Error),
    NoAccount(String),
    UidLookup(u32, io::Error),
    NoPasswdEntry(u32, String),
    NameDoesNotResolve(u32, String),
    NameResolvesElsewhere { uid: u32, name: String, other: u32 },
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::Lookup(e) => write!(f, "user lookup failed: {e}"),
            AccountError::NoAccount(name) => write!(f, "no account named {name:?}"),
            AccountError::UidLookup(uid, e) => write!(f, "lookup of uid {uid} failed: {e}"),
            AccountError::NoPasswdEntry(uid, name) => {
                write!(f, "uid {uid} of {name:?} has no passwd entry")
            }
            AccountError::NameDoesNotResolve(uid, name) => write!(
                f,
                "uid {uid} is named {name:?}, which does not resolve as a user name"
            ),
            AccountError::NameResolvesElsewhere { uid, name, other } => write!(
                f,
                "uid {uid} is named {name:?}, which resolves to uid {other}"
            ),
        }
    }
}

impl std::error::Error for AccountError {}

/// Whether a group of that name exists.
pub fn group_exists(group: &str) -> io::Result<bool> {
    Ok(unistd::Group::from_name(group)
        .map_err(io::Error::from)?
        .is_some())
}

/// Whether `user` belongs to the group `group` (primary or supplementary).
/// A group that does not exist has no members.
pub fn in_group(user: &UserInfo, group: &str) -> io::Result<bool> {
    let Some(g) = unistd::Group::from_name(group).map_err(io::Error::from)? else {
        return Ok(false);
    };
    if g.gid.as_raw() == user.gid || g.mem.iter().any(|m| m == &user.name) {
        return Ok(true);
    }
    let name = std::ffi::CString::new(user.name.as_str())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let groups = unistd::getgrouplist(&name, Gid::from_raw(user.gid)).map_err(io::Error::from)?;
    Ok(groups.contains(&g.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("svc.backup"));
        assert!(valid_user_name("DOMAIN\\bob"));
        for bad in ["", ".", "..", ".x", "-x", "a/b", "a b", "a\nb", "a\0b"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
