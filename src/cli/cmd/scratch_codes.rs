//! `pam-totp scratch-codes --regenerate`: all of a user's scratch codes
//! replaced by new ones, shown this once. The secret and the code
//! parameters are kept; a sealed file stays sealed, a plain one plain.
//! Files in Google Authenticator's format are not rewritten.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use pam_totp::core::event::{DetailValue, EventKind};
use pam_totp::secret::store;

use super::new_scratch_codes;
use crate::access::{caller, locate, require_writable, settings, target};
use crate::args::ScratchArgs;
use crate::error::{EnrollError, FileError, Result};
use crate::notify;
use crate::output::{self, print_out};
use crate::secret_file::{check_destination, hold_for_rewrite, read_native, write_secret};

pub(super) fn run(a: ScratchArgs) -> Result<ExitCode> {
    if !a.regenerate {
        return Err(EnrollError::NeedRegenerate.into());
    }
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let path = || loc.path.clone();

    let hold = store::hold_key(&settings.host_key);
    let mut file = read_native(&caller, &user, &settings, &loc, || {
        FileError::GoogleNotRewritten { path: path() }.into()
    })?;
    let _hold = hold_for_rewrite(hold, &file)?;

    // Replacing a file that exists: the same checks as enroll --force.
    check_destination(&caller, &user, &loc, true)?;
    let (codes, hashes) = new_scratch_codes(a.scratch_codes)?;
    file.scratch_codes = hashes.iter().map(ToString::to_string).collect();
    // Rewritten as it is: sealed stays sealed, plain stays plain.
    write_secret(&caller, &user, &loc, &mut file, None, true)?;

    if a.json {
        output::print_json(&output::ScratchJson {
            user: &user.name,
            secret_file: &loc.shown(),
            scratch_codes: codes.iter().map(|c| c.as_str()).collect(),
        })?;
    } else {
        print_out(&output::scratch_text(&codes))?;
    }
    eprintln!(
        "pam-totp: {} new scratch codes for {} in {}",
        codes.len(),
        user.name,
        loc.shown()
    );
    let detail = vec![("scratch_codes", DetailValue::Int(codes.len() as u64))];
    notify::emit(
        &settings,
        &caller,
        &user.name,
        EventKind::ScratchRegenerated,
        detail,
    );
    Ok(ExitCode::SUCCESS)
}
