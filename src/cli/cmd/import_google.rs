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
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::secret::enrollment::MAX_SCRATCH_CODES;
use pam_totp::secret::google;
use pam_totp::secret::google::GoogleFile;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::store::SealingKey;
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::ReadError;
use pam_totp::sys::users::UserInfo;

use super::{check_new_secret_length, host_name};
use crate::access::{
    caller, locate, require_writable, sealing, settings, target, Caller, Location,
};
use crate::args::ImportArgs;
use crate::error::{EnrollError, ImportError, NotGoogle, Result};
use crate::notify;
use crate::output::{self, print_out, UriParts};
use crate::secret_file::{check_destination, secret_text, write_secret};

/// Where Google's tool writes a user's file, under their home directory.
const GOOGLE_FILE: &str = ".google_authenticator";

pub(super) fn run(a: ImportArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    // `--secret-file -`: the converted text goes to standard output and
    // nothing is written (as `enroll --secret-file -`).
    let loc = match a.file.is_stdio() {
        true => None,
        false => {
            let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
            require_writable(&caller, &loc)?;
            Some(loc)
        }
    };
    let seal_to = sealing(&caller, &settings, a.no_seal)?;

    let source = match &a.google_file {
        Some(p) => std::path::absolute(p).map_err(|err| ImportError::GooglePath {
            path: p.to_owned(),
            err,
        })?,
        None => user.home.join(GOOGLE_FILE),
    };
    let from = source.display().to_string();
    let (g, imported) = read_google(&caller, &user, &source, a.allow_short_secret)?;
    if let Some(loc) = &loc {
        if same_file(&source, loc, &caller, &user)? {
            return Err(ImportError::ImportOntoItself {
                path: loc.path.clone(),
            }
            .into());
        }
        check_destination(&caller, &user, loc, a.force)?;
    }

    let hashes: Vec<ScratchHash> = g
        .scratch_codes
        .iter()
        .map(|c| ScratchHash::import_plain(c, &g.secret))
        .collect();
    let mut file = SecretFile::new(&g.secret, imported.first_key(), &hashes);
    let printed = match &loc {
        Some(loc) => {
            write_secret(&caller, &user, loc, &mut file, seal_to.as_ref(), a.force)?;
            None
        }
        None => {
            let text = secret_text(&user, &mut file, seal_to.as_ref().map(SealingKey::public))?;
            if !a.json {
                print_out(&text)?;
            }
            Some(text)
        }
    };
    let shown = loc.as_ref().map_or_else(|| "-".to_owned(), |l| l.shown());
    notify::enrolled(&settings, &caller, &user.name, &shown, notify::GOOGLE);

    if a.json {
        let text = printed.as_deref().map(String::as_str);
        print_json(&g, &user, &shown, &from, text)?;
    }
    for note in dropped_limits(&g, &settings.policy) {
        eprintln!("pam-totp: note: {from}: {note}");
    }
    let sealed = seal_to
        .map(|k| format!(", secret sealed to host key {}", k.public().id()))
        .unwrap_or_default();
    let whence = match &loc {
        Some(_) => shown,
        None => "the secret file's text, on standard output,".to_owned(),
    };
    eprintln!(
        "pam-totp: imported {}: {whence} from {from} (time-based, {}-second steps, {} scratch codes{sealed}); \
         {from} is unchanged",
        user.name,
        g.step_size,
        g.scratch_codes.len(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads and checks the Google file, as the module reads a secret file:
/// under the user's home with the user's identity; owned by the user or
/// root, no access for others. Refuses what the native format cannot hold.
fn read_google(
    caller: &Caller,
    user: &UserInfo,
    source: &Path,
    allow_short_secret: bool,
) -> Result<(GoogleFile, Enrollment)> {
    let from = source.display().to_string();
    let as_owner = caller.root && secret_file::accessed_as_owner(user, source);
    let bytes = secret_file::read_secret_file(source, user, as_owner).map_err(|e| match e {
        ReadError::NotFound => ImportError::NothingToImport { from: from.clone() },
        err => ImportError::GoogleUnreadable {
            from: from.clone(),
            err,
        },
    })?;
    if !google::looks_like_google(&bytes) {
        let why = if SecretFile::parse(&bytes).is_ok() {
            NotGoogle::AlreadyNative
        } else {
            NotGoogle::NoSecretLine
        };
        return Err(ImportError::NotGoogle { from, why }.into());
    }
    let g = google::parse(&bytes).map_err(|err| ImportError::GoogleParse {
        from: from.clone(),
        err,
    })?;
    check_new_secret_length(
        g.secret.len(),
        &format!("the secret of {from}"),
        allow_short_secret,
    )?;
    if g.hotp_counter.is_some() {
        return Err(ImportError::GoogleHotp {
            from,
            file_name: GOOGLE_FILE,
        }
        .into());
    }
    if g.scratch_codes.len() > MAX_SCRATCH_CODES {
        return Err(ImportError::GoogleTooManyScratch {
            from,
            n: g.scratch_codes.len(),
            max: MAX_SCRATCH_CODES,
        }
        .into());
    }
    let imported =
        Enrollment::from_google(&g).map_err(|err| ImportError::GoogleFormat { from, err })?;
    Ok((g, imported))
}

/// `--json`: `enroll --json`'s object and the file it came from.
fn print_json(
    g: &GoogleFile,
    user: &UserInfo,
    shown: &str,
    from: &str,
    text: Option<&str>,
) -> Result<()> {
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
    .map_err(EnrollError::ImportUri)?;
    output::print_json(&output::ImportJson {
        user: &user.name,
        secret_file: shown,
        secret: &b32,
        otpauth_uri: &uri,
        scratch_codes: g.scratch_codes.iter().map(|c| c.as_str()).collect(),
        imported_from: from,
        secret_file_text: text,
    })
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
