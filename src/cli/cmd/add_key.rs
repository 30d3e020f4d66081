//! `pam-totp enroll --add NAME`: a key for another device added to an
//! existing native enrollment. Shown and confirmed as `enroll` shows and
//! confirms a new secret (the same window, `--no-confirm` honoured, the
//! confirmed step spent), sealed when the host key pair exists; the other
//! keys and the scratch codes are kept as they are, and the file is
//! rewritten through the one write path (`secret_file::write_secret`).
#![forbid(unsafe_code)]

use std::io;
use std::process::ExitCode;

use zeroize::Zeroizing;

use pam_totp::core::otp::OtpKey;
use pam_totp::secret::enrollment::MAX_FILE_KEYS;
use pam_totp::secret::native::{KeyEntry, SecretFile};
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::secret::store::SealingKey;

use super::check_new_secret_length;
use super::enroll::{app_names, new_secret, present, show_and_save, spend_confirmed_step};
use crate::access::{caller, locate, require_writable, sealing, settings, target};
use crate::args::EnrollArgs;
use crate::error::{EnrollError, FileError, KeysError, Result};
use crate::notify;
use crate::output;
use crate::secret_file::{check_destination, hold_error, read_native, write_secret};

pub(super) fn run(mut a: EnrollArgs, name: String) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    if a.file.is_stdio() {
        return Err(KeysError::AddToStdio.into());
    }
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let seal_to = sealing(&caller, &settings, a.no_seal)?;
    let mut file = read_native(&caller, &user, &settings, &loc, || {
        KeysError::GoogleSingleKey {
            path: loc.path.clone(),
        }
        .into()
    })?;
    check_addable(&file, &name, &user.name, a.digits)?;

    let mut stdin = io::stdin().lock();
    let secret = new_secret(a.secret.take().map(Zeroizing::new), &mut stdin)?;
    let key = OtpKey::new(&secret, a.algorithm, u64::from(a.digits), a.period)
        .map_err(EnrollError::SecretParams)?;
    check_new_secret_length(secret.len(), "--secret", a.allow_short_secret)?;
    let (issuer, account) = app_names(&mut a, &user)?;
    // Replacing a file that exists: the same checks as enroll --force.
    check_destination(&caller, &user, &loc, true)?;

    let mut entry = KeyEntry::new(&name, &secret, &key);
    if let Some(host) = &seal_to {
        entry
            .seal(host.public(), &user.name)
            .map_err(FileError::Seal)?;
    }
    let shown_key = present(&a, &issuer, &account, &secret)?;
    let view = shown_key.view(&a, &issuer, &account, &[]);
    let (b32, uri) = (&shown_key.b32, &shown_key.uri);
    // Only the new key is sealed here: the others are written as they are,
    // under the same hold of the host key as a sealing write.
    let save = || {
        let _hold = seal_to
            .as_ref()
            .map(SealingKey::hold)
            .transpose()
            .map_err(hold_error)?;
        file.keys.push(entry);
        write_secret(&caller, &user, &loc, &mut file, None, true)
    };
    if let Some(step) = show_and_save(&a, &view, &key, &mut stdin, save)? {
        if caller.root {
            spend_confirmed_step(&settings, &user.name, &key, step);
        }
    }

    if a.json {
        output::print_json(&output::EnrollJson {
            user: &user.name,
            secret_file: &loc.shown(),
            secret: b32,
            otpauth_uri: uri,
            scratch_codes: Vec::new(),
            secret_file_text: None,
        })?;
    }
    notify::key_added(&settings, &caller, &user.name, &name);
    announce(
        &name,
        &user.name,
        &loc.shown(),
        seal_to.as_ref().map(SealingKey::public),
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses a name the file has, a full file, or digits other than the
/// file's (its keys have the same number of digits).
fn check_addable(file: &SecretFile, name: &str, user: &str, digits: u8) -> Result<()> {
    if file.key_index(name).is_some() {
        return Err(KeysError::Duplicate {
            user: user.to_owned(),
            name: name.to_owned(),
        }
        .into());
    }
    if file.keys.len() >= MAX_FILE_KEYS {
        return Err(KeysError::TooMany {
            user: user.to_owned(),
            max: MAX_FILE_KEYS,
        }
        .into());
    }
    let have = file.keys.first().map_or(u64::from(digits), |k| k.digits);
    if have != u64::from(digits) {
        return Err(KeysError::Digits {
            have,
            asked: digits,
        }
        .into());
    }
    Ok(())
}

/// The closing line on standard error.
fn announce(name: &str, user: &str, shown: &str, seal_to: Option<&HostPublicKey>) {
    let sealed = match seal_to {
        Some(k) => format!(
            " (secret sealed to host key {}: only root can open it, and it is not shown again)",
            k.id()
        ),
        None => String::new(),
    };
    eprintln!("pam-totp: added key \"{name}\" for {user}: {shown}{sealed}");
}
