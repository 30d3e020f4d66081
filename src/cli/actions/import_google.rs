//! `pam-totp import-google-authenticator`: a Google Authenticator file
//! converted to the native format and written the way `enroll` writes a new
//! secret file (same destination, permission rules, sealing, atomic write,
//! refusal to replace without `--force`).
//!
//! The original is only read, never written, so switching back to
//! pam_google_authenticator stays possible. What carries over: the secret
//! (legacy ones under 128 bits only with `--allow-short-secret`), STEP_SIZE
//! as `period`, and the scratch codes, hashed with the identifiers the
//! module gives them when it reads the file in place, so a code used
//! meanwhile stays used. What does not: WINDOW_SIZE
//! and RATE_LIMIT (the module's settings apply; a note says so when the
//! file's were stricter) and DISALLOW_REUSE's list of used steps. An HOTP
//! file is refused: the native format has no counter, and the module reads
//! such a file in place, keeping the counter in its state.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use pam_totp::core::otp;
use pam_totp::core::otp::Algorithm;
use pam_totp::core::otp::DEFAULT_DIGITS;
use pam_totp::core::policy::Policy;
use pam_totp::core::scratch::ScratchHash;
use pam_totp::secret::enrollment::{Enrollment, MAX_SCRATCH_CODES};
use pam_totp::secret::google;
use pam_totp::secret::google::GoogleFile;
use pam_totp::secret::native::SecretFile;
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::ReadError;
use pam_totp::sys::users::UserInfo;

use super::{
    caller, check_destination, check_new_secret_length, failed, host_name, input, locate,
    print_out, require_writable, sealing, settings, target, write_secret, Caller, Location, Result,
};
use crate::cli::ImportArgs;
use crate::output::{self, UriParts};

/// Where Google's tool writes a user's file, under their home directory.
const GOOGLE_FILE: &str = ".google_authenticator";

pub(super) fn run(a: ImportArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(&a.who)?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let seal_to = sealing(&caller, &settings, a.no_seal)?;

    let source = match &a.google_file {
        Some(p) => std::path::absolute(p).map_err(|e| input(format!("{}: {e}", p.display())))?,
        None => user.home.join(GOOGLE_FILE),
    };
    let from = source.display().to_string();
    // Read as the module reads a secret file: under the user's home with the
    // user's identity; owned by the user or root, no access for others.
    let as_owner = caller.root && secret_file::accessed_as_owner(&user, &source);
    let bytes = secret_file::read_secret_file(&source, &user, as_owner).map_err(|e| match e {
        ReadError::NotFound => input(format!("{from}: no such file, nothing to import")),
        e => input(format!("{from}: {e}")),
    })?;
    if !google::looks_like_google(&bytes) {
        let why = if SecretFile::parse(&bytes).is_ok() {
            "it is already in pam-totp's own format"
        } else {
            "its first line is not a base32 secret"
        };
        return Err(input(format!(
            "{from} is not a Google Authenticator file: {why}"
        )));
    }
    let g = google::parse(&bytes).map_err(|e| input(format!("{from}: {e}")))?;
    check_new_secret_length(
        g.secret.len(),
        &format!("the secret of {from}"),
        a.allow_short_secret,
    )?;
    if g.hotp_counter.is_some() {
        return Err(input(format!(
            "{from} is counter-based (HOTP_COUNTER), which pam-totp's own format cannot hold; \
             leave it as it is and point the module's secret= at it (for example \
             secret=${{HOME}}/{GOOGLE_FILE}): it is read in place, the counter kept in \
             pam-totp's state"
        )));
    }
    if g.scratch_codes.len() > MAX_SCRATCH_CODES {
        return Err(input(format!(
            "{from} has {} scratch codes; pam-totp keeps at most {MAX_SCRATCH_CODES}",
            g.scratch_codes.len()
        )));
    }
    let imported = Enrollment::from_google(&g).map_err(|e| input(format!("{from}: {e}")))?;
    if same_file(&source, &loc, &caller, &user)? {
        return Err(input(format!(
            "{} is the Google Authenticator file itself, which is never rewritten; import it \
             to another path (the config file's `secret`, by default ~/.pam_totp, or \
             --secret-file)",
            loc.shown()
        )));
    }
    check_destination(&caller, &user, &loc, a.force)?;

    let hashes: Vec<ScratchHash> = g
        .scratch_codes
        .iter()
        .map(|c| ScratchHash::import_plain(c, &g.secret))
        .collect();
    let mut file = SecretFile::new(&g.secret, &imported.key, &hashes);
    write_secret(&caller, &user, &loc, &mut file, seal_to.as_ref(), a.force)?;

    if a.json {
        let b32 = otp::encode_base32(&g.secret);
        let host = host_name();
        let account = format!("{}@{host}", user.name);
        let uri = output::otpauth_uri(&UriParts {
            issuer: &host,
            account: &account,
            secret: &b32,
            algorithm: Algorithm::Sha1,
            digits: DEFAULT_DIGITS,
            period: g.step_size,
        })
        .map_err(|e| failed(format!("cannot make the otpauth URI: {e}")))?;
        let shown = loc.shown();
        print_out(
            &output::json(&output::ImportJson {
                user: &user.name,
                secret_file: &shown,
                secret: &b32,
                otpauth_uri: &uri,
                scratch_codes: g.scratch_codes.iter().map(|c| c.as_str()).collect(),
                imported_from: &from,
            })
            .map_err(failed)?,
        )?;
        println!();
    }
    for note in dropped_limits(&g, &settings.policy) {
        eprintln!("pam-totp: note: {from}: {note}");
    }
    let sealed = seal_to
        .map(|k| format!(", secret sealed to host key {}", k.id()))
        .unwrap_or_default();
    eprintln!(
        "pam-totp: imported {}: {} from {from} (time-based, {}-second steps, {} scratch codes{sealed}); \
         {from} is unchanged",
        user.name,
        loc.shown(),
        g.step_size,
        g.scratch_codes.len(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether writing at `loc` would replace the source file itself (the same
/// path, or a hard link to it). A symlink there is replaced, not followed,
/// so it is no danger.
fn same_file(source: &Path, loc: &Location, caller: &Caller, user: &UserInfo) -> Result<bool> {
    if source == loc.path {
        return Ok(true);
    }
    let _id = loc.identity(caller, user)?;
    Ok(
        match (
            fs::symlink_metadata(source),
            fs::symlink_metadata(&loc.path),
        ) {
            (Ok(s), Ok(d)) => s.dev() == d.dev() && s.ino() == d.ino(),
            _ => false,
        },
    )
}

/// What the file limited more strictly than the settings known here (the
/// config file's, or the defaults) and the imported file will not.
fn dropped_limits(g: &GoogleFile, policy: &Policy) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(size), Some((back, ahead))) = (g.window_size, g.window_bounds()) {
        if back < policy.window || ahead < policy.window {
            notes.push(format!(
                "its WINDOW_SIZE {size} was narrower than window={}; the imported file has no \
                 window of its own: set window= in pam.d or config.toml to keep it",
                policy.window
            ));
        }
    }
    if let Some((n, m)) = g.rate_limit {
        let ours = policy.rate_limit;
        if n < ours.max_failures || m > ours.seconds {
            notes.push(format!(
                "its RATE_LIMIT {n} {m} was stricter than rate_limit={ours}; the imported file \
                 has no limit of its own: set rate_limit= in pam.d or config.toml to keep it"
            ));
        }
    }
    notes
}
