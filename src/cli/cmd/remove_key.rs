//! `pam-totp remove-key NAME`: one key (device) taken out of a user's
//! native secret file, never the last one (`disable` removes the
//! enrollment). The rest of the file is rewritten as it is, through the one
//! write path (`secret_file::write_secret`). The removed key's spent steps
//! stay in the state: should the same key be added back, a code it showed
//! still does not log in again (the state frees the entry by its own rule).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use pam_totp::secret::store;

use crate::access::{caller, locate, require_writable, settings, target};
use crate::args::RemoveKeyArgs;
use crate::error::{KeysError, Result};
use crate::notify;
use crate::secret_file::{check_destination, hold_for_rewrite, read_native, write_secret};

pub(super) fn run(a: RemoveKeyArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let hold = store::hold_key(&settings.host_key);
    let mut file = read_native(&caller, &user, &settings, &loc, || {
        KeysError::GoogleSingleKey {
            path: loc.path.clone(),
        }
        .into()
    })?;
    let _hold = hold_for_rewrite(hold, &file)?;
    let Some(index) = file.key_index(&a.name) else {
        return Err(KeysError::Unknown {
            user: user.name.clone(),
            name: a.name,
        }
        .into());
    };
    if file.keys.len() == 1 {
        return Err(KeysError::LastKey {
            user: user.name.clone(),
            name: a.name,
        }
        .into());
    }
    check_destination(&caller, &user, &loc, true)?;
    drop(file.keys.remove(index));
    write_secret(&caller, &user, &loc, &mut file, None, true)?;
    notify::key_removed(&settings, &caller, &user.name, &a.name);
    eprintln!(
        "pam-totp: removed key \"{}\" of {} from {}; {} left",
        a.name,
        user.name,
        loc.shown(),
        file.keys.len()
    );
    Ok(ExitCode::SUCCESS)
}
