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
mod reset;
mod scratch_codes;
mod status;

use std::fs;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::{Zeroize, Zeroizing};

use pam_totp::core::scratch;
use pam_totp::core::scratch::ScratchHash;

use crate::args::Command;
use crate::error::{EnrollError, Result};

/// Fewest bytes of a secret given to `enroll --secret` or imported: 128
/// bits, RFC 4226's requirement R6. Shorter ones (80-bit hardware tokens,
/// old Google Authenticator files) only with `--allow-short-secret`; the
/// module still reads files that hold them.
const MIN_NEW_SECRET_BYTES: usize = 16;

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Enroll(a) => enroll::run(a),
        Command::Status(a) => status::run(a),
        Command::ScratchCodes(a) => scratch_codes::run(a),
        Command::Reset(a) => reset::run(a),
        Command::Disable(a) => disable::run(a),
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
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(EnrollError::Random)?;
    Ok(b)
}

/// This host's name (the default issuer), as gethostname() gives it.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `n` distinct new scratch codes and their salted hashes.
fn new_scratch_codes(n: usize) -> Result<(Vec<Zeroizing<String>>, Vec<ScratchHash>)> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(n);
    while codes.len() < n {
        let mut bytes = random::<32>()?;
        let code = scratch::code_from_random(bytes);
        bytes.zeroize();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let hashes = codes
        .iter()
        .map(|c| Ok(ScratchHash::new(c, random::<16>()?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((codes, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CliError;
    use pam_totp::core::code::SCRATCH_DIGITS;

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

    #[test]
    fn scratch_codes_are_distinct_and_hashed() {
        let (codes, hashes) = new_scratch_codes(20).unwrap();
        assert_eq!(codes.len(), 20);
        for (c, h) in codes.iter().zip(&hashes) {
            assert_eq!(c.len(), SCRATCH_DIGITS);
            assert!(h.matches(c));
            assert!(!h.to_string().contains(c.as_str()));
        }
        let mut sorted: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20);
    }
}
