//! One file per subcommand, over the shared rules of `access` (who, where)
//! and `secret_file` (what is on disk). Everything that can be refused is
//! refused before anything is written (exit status 2, one line).
#![forbid(unsafe_code)]

mod add_key;
mod disable;
mod enroll;
mod fleet_state;
mod host_key;
mod import_google;
mod remove_key;
mod report;
mod reset;
mod scratch_codes;
mod status;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use pam_totp::core::scratch::ScratchHash;
use pam_totp::secret::fresh;

use crate::args::Command;
use crate::error::{EnrollError, Result};

/// Fewest bytes of a secret given to `enroll --secret` or imported: 128
/// bits, RFC 4226's requirement R6. Shorter ones (80-bit hardware tokens,
/// old Google Authenticator files) only with `--allow-short-secret`; the
/// module still reads files that hold them.
const MIN_NEW_SECRET_BYTES: usize = 16;

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        // `enroll --add NAME` adds a key to an enrollment (add_key.rs).
        Command::Enroll(mut a) => match a.add.take() {
            Some(name) => add_key::run(a, name),
            None => enroll::run(a),
        },
        Command::Status(a) => status::run(a),
        Command::ScratchCodes(a) => scratch_codes::run(a),
        Command::Reset(a) => reset::run(a),
        Command::Disable(a) => disable::run(a),
        Command::Report(a) => report::run(a),
        Command::RemoveKey(a) => remove_key::run(a),
        Command::HostKey(c) => host_key::run(c),
        Command::ImportGoogleAuthenticator(a) => import_google::run(a),
    }
}

/// Refuses a secret shorter than [`MIN_NEW_SECRET_BYTES`] unless `allow`.
fn check_new_secret_length(len: usize, what: &str, allow: bool) -> Result<()> {
    if len >= MIN_NEW_SECRET_BYTES || allow {
        return Ok(());
    }
    Err(EnrollError::ShortSecret {
        what: what.to_owned(),
        bits: len * 8,
        min_bits: MIN_NEW_SECRET_BYTES * 8,
    }
    .into())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    Ok(fresh::random::<N>().map_err(EnrollError::Random)?)
}

/// This host's name (the default issuer), as gethostname() gives it.
fn host_name() -> String {
    fresh::host_name()
}

/// `n` distinct new scratch codes and their salted hashes (the library's,
/// shared with the module's enrollment at login).
fn new_scratch_codes(n: usize) -> Result<(Vec<Zeroizing<String>>, Vec<ScratchHash>)> {
    Ok(fresh::new_scratch_codes(n).map_err(EnrollError::Random)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CliError;

    #[test]
    fn new_secrets_are_at_least_128_bits_unless_allowed() {
        assert!(check_new_secret_length(16, "--secret", false).is_ok());
        assert!(check_new_secret_length(10, "--secret", true).is_ok());
        match check_new_secret_length(15, "--secret", false) {
            Err(e @ CliError::Enroll(EnrollError::ShortSecret { .. })) => {
                let m = e.to_string();
                assert!(m.starts_with("--secret is 120 bits;"), "{m}");
                assert!(m.contains("--allow-short-secret"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
