//! What a login remembers, and where: the state model ([`model`]) and the
//! [`StateStore`] seam. A store's one operation is "under this account's
//! lock, read the state, let the pure decision change it, write it back
//! atomically"; the decision itself is `crate::core::decision`, single
//! whatever the store. [`local::LocalStore`] (the state directory) is the
//! first implementation; [`fleet::FleetStateStore`] (a Redis or Valkey
//! server, with the `state_unavailable=` fallback) the second.
//!
//! Lock before read: no decision is ever made on a state read outside the
//! account's lock, so concurrent logins of one account are serialised and
//! a spent code stays spent.
#![forbid(unsafe_code)]

pub mod fleet;
pub mod local;
pub mod model;
pub mod record;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use model::{ModelError, UserState};

use crate::sys::users::{self, AccountError, UserInfo};

/// The account whose state a login uses: the canonical name of the account
/// the typed name resolves to (see [`users::state_account`]), whatever
/// spelling was typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account(String);

impl Account {
    /// The account a typed user name belongs to.
    pub fn resolve(typed: &str) -> Result<Account, StateError> {
        users::state_account(typed)
            .map(Account)
            .map_err(StateError::Account)
    }

    /// The account of a user already looked up as `typed`
    /// ([`users::lookup_user`]): the same account [`resolve`](Self::resolve)
    /// gives, without looking `typed` up again
    /// ([`users::canonical_name_found_as`]).
    pub fn of_user(typed: &str, user: &UserInfo) -> Result<Account, StateError> {
        users::canonical_name_found_as(user, typed)
            .map(Account)
            .map_err(StateError::Account)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the per-account state is kept.
///
/// `update` is the one way a login changes the state: under the account's
/// lock it reads the state (a fresh one if there is none), calls `decide`
/// on it, and writes the result back atomically (a later read sees the
/// old state or the new one, never a mix), then releases the lock. The
/// local store has what must survive a crash of the host (a spent code:
/// [`UserState::must_survive_a_crash`]) on disk when `update` returns and
/// leaves the rest to the kernel's writeback; the fleet store's
/// durability is the server's (`appendfsync`, see the README).
/// If the write fails, the caller must not allow the login: a code whose
/// use is not recorded could be used again.
///
/// `decide` may be called more than once, each time on a freshly read
/// state: a store built on compare-and-set (the fleet's `Store::update`)
/// retries when another host changed the state in between. So `decide`
/// must be a pure function of the state it is given (and of values it
/// captured): whatever it reports must be overwritten on each call, never
/// accumulated.
pub trait StateStore {
    fn update(
        &self,
        account: &Account,
        decide: &mut dyn FnMut(&mut UserState),
    ) -> Result<(), StateError>;

    /// The state as it is (for `pam-totp status`), read under the lock.
    fn read(&self, account: &Account) -> Result<UserState, StateError>;

    /// Forgets the account's state (for `pam-totp reset`).
    fn remove(&self, account: &Account) -> Result<(), StateError>;
}

/// Why a state file is refused as corrupt.
#[derive(Debug)]
pub enum Corruption {
    Symlink,
    NotRegular,
    TooLarge(u64),
    NotUtf8,
    Model(ModelError),
    /// Starts like a state file of two slots, but is not twice a slot
    /// long (cut or extended): its length.
    Shape(u64),
    /// Neither slot holds a whole record (both torn or damaged).
    NoValidRecord,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::Symlink => f.write_str("a symbolic link"),
            Corruption::NotRegular => f.write_str("not a regular file"),
            Corruption::TooLarge(n) => write!(f, "{n} bytes"),
            Corruption::NotUtf8 => f.write_str("not UTF-8"),
            Corruption::Model(e) => e.fmt(f),
            Corruption::Shape(n) => write!(f, "{n} bytes, not two whole slots"),
            Corruption::NoValidRecord => f.write_str("neither slot holds a whole record"),
        }
    }
}

#[derive(Debug)]
pub enum StateError {
    /// The state directory is missing, not a directory, or open to others.
    Dir { path: PathBuf, why: String },
    /// The user name cannot be a state file name.
    BadUser(String),
    /// The state file does not parse: refused until `pam-totp reset`.
    Corrupt { path: PathBuf, why: Corruption },
    /// The account the typed name belongs to could not be settled.
    Account(AccountError),
    /// The fleet settings cannot make a store (`state_credentials=`).
    FleetSetup(fleet::SetupError),
    /// The state server refused, failed or holds a corrupt state.
    Fleet(fleet::FleetError),
    /// The state server could not be reached and `state_unavailable` is
    /// `deny`.
    FleetDenied(fleet::FleetError),
    /// A file operation failed (a full or read-only filesystem, ...);
    /// `op` says what the module was doing, for the administrator.
    Io {
        op: &'static str,
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Dir { path, why } => {
                write!(f, "state directory {}: {why}", path.display())
            }
            StateError::BadUser(u) => write!(f, "user name {u:?} cannot have a state file"),
            StateError::Corrupt { path, why } => write!(
                f,
                "state file {} is corrupt ({why}); run `pam-totp reset` for this user",
                path.display()
            ),
            StateError::Io { op, path, err } => write!(f, "{op}: {}: {err}", path.display()),
            StateError::Account(e) => e.fmt(f),
            StateError::FleetSetup(e) => e.fmt(f),
            StateError::Fleet(e) => e.fmt(f),
            StateError::FleetDenied(e) => {
                write!(f, "{e}; denying, as state_unavailable is deny")
            }
        }
    }
}

impl std::error::Error for StateError {}
