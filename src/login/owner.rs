//! Whose state a login decides on, settled once per login.
#![forbid(unsafe_code)]

use std::cell::OnceCell;

use crate::state::{Account, StateError};
use crate::sys::users::UserInfo;

/// Whose state a login decides on: the user looked up at its start (by
/// the typed name), and the account's canonical name, settled from that
/// lookup when it is first needed (`secret_command=`'s argument, the
/// first decision) and kept for the rest (a try_first_pass attempt and
/// the prompt after it): the passwd database is asked once for the name
/// and once for the uid, not again per step.
pub(crate) struct Owner<'a> {
    typed: &'a str,
    user: &'a UserInfo,
    account: OnceCell<Account>,
}

impl<'a> Owner<'a> {
    /// `user`: what `users::lookup_user(typed)` returned.
    pub(crate) fn new(typed: &'a str, user: &'a UserInfo) -> Owner<'a> {
        Owner {
            typed,
            user,
            account: OnceCell::new(),
        }
    }

    /// The user, as looked up.
    pub(crate) fn user(&self) -> &'a UserInfo {
        self.user
    }

    /// The account ([`Account::of_user`]); an error is not kept, so a
    /// later step would ask again.
    pub(crate) fn account(&self) -> Result<&Account, StateError> {
        if let Some(account) = self.account.get() {
            return Ok(account);
        }
        let account = Account::of_user(self.typed, self.user)?;
        Ok(self.account.get_or_init(|| account))
    }
}
