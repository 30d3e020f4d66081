//! Which accounts `report` lists, and where their state is: every account
//! the passwd database enumerates, every name in the secrets directory
//! (when the `secret` template is one root-owned file per user in one
//! directory) and every account with a state in the state store (the
//! local state directory, or the fleet's server). One entry per account,
//! under its canonical name, sorted.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pam_totp::config::Settings;
use pam_totp::pam::passwd;
use pam_totp::state::fleet::FleetStore;
use pam_totp::state::local::StateDir;
use pam_totp::state::model::UserState;
use pam_totp::state::StateError;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use super::super::fleet_state;
use super::super::status::StateView;
use crate::access::{self, Caller};
use crate::args::StateDirArg;
use crate::error::{AccessError, CliError, FileError, FleetCliError, Result};

/// One account of the report.
pub(super) struct Account {
    /// The canonical name; with no passwd entry, the name it was found by.
    pub name: String,
    /// The passwd entry; `None` when found only in the secrets directory
    /// or the state store (a deleted account's leftovers).
    pub user: Option<UserInfo>,
    /// Why the account's canonical name could not be settled (the module
    /// refuses its logins).
    pub problem: Option<String>,
}

/// Every account, sorted by name. Fails only when the passwd database or
/// the secrets directory cannot be listed at all.
pub(super) fn gather(settings: &Settings, states: &States) -> Result<Vec<Account>> {
    let mut found: BTreeMap<String, Account> = BTreeMap::new();
    for user in passwd::all_users().map_err(AccessError::ListAccounts)? {
        let account = match users::canonical_name(&user) {
            Ok(name) if name == user.name => Account {
                name,
                user: Some(user),
                problem: None,
            },
            // Another name of an account listed under its own name too.
            Ok(name) => resolve(&name),
            Err(why) => Account {
                name: user.name.clone(),
                user: Some(user),
                problem: Some(why.to_string()),
            },
        };
        found.entry(account.name.clone()).or_insert(account);
    }
    let mut extra = secret_dir_names(&settings.secret)?;
    extra.extend(states.listed.iter().cloned());
    for name in extra {
        if !found.contains_key(&name) {
            let account = resolve(&name);
            found.entry(account.name.clone()).or_insert(account);
        }
    }
    Ok(found.into_values().collect())
}

/// The account a name found on disk or on the server belongs to.
fn resolve(name: &str) -> Account {
    let problem = |why: String| Account {
        name: name.to_owned(),
        user: None,
        problem: Some(why),
    };
    match users::lookup_user(name) {
        Ok(None) => Account {
            name: name.to_owned(),
            user: None,
            problem: None,
        },
        Ok(Some(user)) => match users::canonical_name(&user) {
            Ok(canonical) => {
                let user = match canonical == user.name {
                    true => Some(user),
                    false => users::lookup_user(&canonical).ok().flatten(),
                };
                Account {
                    name: canonical,
                    user,
                    problem: None,
                }
            }
            Err(why) => problem(why.to_string()),
        },
        Err(e) => problem(format!("cannot look up user {name:?}: {e}")),
    }
}

/// The directory a `secret` template puts every user's file in, when it
/// is one root-owned file per user there (`/DIR/PRE${USER}SUF`, no other
/// variable): the directory, and what comes before and after the name.
pub(super) fn template_dir(template: &str) -> Option<(PathBuf, &str, &str)> {
    let (dir, last) = template.rsplit_once('/')?;
    let (pre, suf) = last.split_once("${USER}")?;
    if !template.starts_with('/') || dir.contains('$') || pre.contains('$') || suf.contains('$') {
        return None;
    }
    Some((
        PathBuf::from(if dir.is_empty() { "/" } else { dir }),
        pre,
        suf,
    ))
}

/// The user names of the files in the secrets directory (none when the
/// template is not one directory, or the directory is not there).
fn secret_dir_names(template: &str) -> Result<Vec<String>> {
    let Some((dir, pre, suf)) = template_dir(template) else {
        return Ok(Vec::new());
    };
    let read_dir = |err| -> CliError {
        FileError::ReadDir {
            dir: dir.clone(),
            err,
        }
        .into()
    };
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_dir(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let file = entry.map_err(read_dir)?.file_name();
        let name = file
            .to_str()
            .and_then(|f| f.strip_prefix(pre))
            .and_then(|f| f.strip_suffix(suf));
        // Temporary files of an atomic write start with a dot: not a name.
        if let Some(name) = name.filter(|n| users::valid_user_name(n)) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Where the accounts' states are, and which accounts have one.
pub(super) struct States {
    store: Store,
    listed: HashSet<String>,
}

enum Store {
    Fleet(Box<FleetStore>),
    Local(StateDir),
    /// The state directory does not exist: every account is fresh.
    Nothing,
}

impl States {
    /// The fleet's server when configured, else the state directory; and
    /// the accounts with a state there. Fails when the store cannot be
    /// reached or listed (nothing can be said about any account's state).
    pub(super) fn open(caller: &Caller, settings: &Settings, arg: &StateDirArg) -> Result<States> {
        if let Some(mut fleet) = fleet_state::open(caller, settings, arg)? {
            let listed = fleet.accounts().map_err(FleetCliError::List)?;
            return Ok(States {
                store: Store::Fleet(Box::new(fleet)),
                listed: listed.into_iter().collect(),
            });
        }
        let dir = access::state_dir(settings, &arg.state_dir);
        if !access::exists(&dir) {
            return Ok(States {
                store: Store::Nothing,
                listed: HashSet::new(),
            });
        }
        let dir = StateDir::open(&dir, false).map_err(CliError::State)?;
        let listed = dir.accounts().map_err(CliError::State)?;
        Ok(States {
            store: Store::Local(dir),
            listed: listed.into_iter().collect(),
        })
    }

    /// The account's state; `Err` is why it could not be read (the state
    /// is then unknown). An account the store does not list is fresh:
    /// nothing is locked or created for it.
    pub(super) fn read(&mut self, account: &str) -> std::result::Result<StateView, String> {
        if !self.listed.contains(account) {
            return Ok(StateView::Known(UserState::new()));
        }
        match &mut self.store {
            Store::Fleet(fleet) => match fleet_state::read(fleet, account) {
                Ok(Ok(s)) => Ok(StateView::Known(s)),
                Ok(Err(why)) => Ok(StateView::Corrupt(why)),
                Err(e) => Err(e.to_string()),
            },
            Store::Local(dir) => match dir.lock(account).and_then(|l| l.read()) {
                Ok(s) => Ok(StateView::Known(s)),
                Err(e @ StateError::Corrupt { .. }) => Ok(StateView::Corrupt(e.to_string())),
                Err(e) => Err(e.to_string()),
            },
            Store::Nothing => Ok(StateView::Known(UserState::new())),
        }
    }
}

/// The stand-in owner of a secret file with no passwd entry: only root's
/// file is read for it (as `host-key rotate` does).
pub(super) fn no_account(name: &str) -> UserInfo {
    UserInfo {
        name: name.to_owned(),
        uid: 0,
        gid: 0,
        home: Path::new("/").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_directory_of_a_template() {
        assert_eq!(
            template_dir("/etc/pam-totp/secrets/${USER}"),
            Some((PathBuf::from("/etc/pam-totp/secrets"), "", ""))
        );
        assert_eq!(
            template_dir("/s/totp-${USER}.toml"),
            Some((PathBuf::from("/s"), "totp-", ".toml"))
        );
        assert_eq!(template_dir("~/.pam_totp"), None);
        assert_eq!(template_dir("${HOME}/.pam_totp"), None);
        assert_eq!(template_dir("/home/${USER}/.pam_totp"), None);
        assert_eq!(template_dir("/s/fixed"), None);
    }
}
