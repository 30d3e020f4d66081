//! `pam-totp enroll`: a new secret (or `--secret`), shown as a QR code, as
//! text and as its otpauth URI, with scratch codes shown this once; saved
//! only after a right code from the app (unless `--no-confirm`).
//!
//! The confirmation is judged by the library's verification decision, with
//! the module's default window, so "a right code" means here exactly what
//! it means at login; its step is then spent in the user's state, so the
//! code typed (perhaps watched) during enrollment cannot also log in.
#![forbid(unsafe_code)]

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use zeroize::Zeroizing;

use pam_totp::config::Settings;
use pam_totp::core::decision;
use pam_totp::core::decision::Counter;
use pam_totp::core::decision::Credentials;
use pam_totp::core::decision::FileLimits;
use pam_totp::core::decision::Method;
use pam_totp::core::decision::Outcome;
use pam_totp::core::otp;
use pam_totp::core::otp::OtpKey;
use pam_totp::core::policy::Policy;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::secret::store::SealingKey;
use pam_totp::state::local::StateDir;
use pam_totp::state::model::UserState;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use super::{check_new_secret_length, host_name, new_scratch_codes, now, random};
use crate::access::{
    caller, locate, require_writable, sealing, settings, target, Caller, Location,
};
use crate::args::EnrollArgs;
use crate::error::{AccessError, CliError, EnrollError, Result};
use crate::notify;
use crate::output::{self, print_out, EnrollView, UriParts};
use crate::secret_file::{check_destination, secret_text, write_secret};

/// Bytes in a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

pub(super) fn run(mut a: EnrollArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(a.who.config.as_deref())?;
    let loc = destination(&caller, &user, &settings, &a)?;
    let seal_to = sealing(&caller, &settings, a.no_seal)?;

    let mut stdin = io::stdin().lock();
    let secret = new_secret(a.secret.take().map(Zeroizing::new), &mut stdin)?;
    let key = OtpKey::new(&secret, a.algorithm, u64::from(a.digits), a.period)
        .map_err(EnrollError::SecretParams)?;
    check_new_secret_length(secret.len(), "--secret", a.allow_short_secret)?;
    let (issuer, account) = app_names(&mut a, &user)?;

    if let Some(loc) = &loc {
        check_destination(&caller, &user, loc, a.force)?;
    }

    let (codes, hashes) = new_scratch_codes(a.scratch_codes)?;
    let mut file = SecretFile::new(&secret, &key, &hashes);
    let shown_key = present(&a, &issuer, &account, &secret)?;
    let view = shown_key.view(&a, &issuer, &account, &codes);
    let (b32, uri) = (&shown_key.b32, &shown_key.uri);
    // The file's text, when it goes to standard output (`--secret-file -`).
    let mut printed: Option<Zeroizing<String>> = None;
    let save = || match &loc {
        Some(loc) => write_secret(&caller, &user, loc, &mut file, seal_to.as_ref(), a.force),
        None => {
            let text = secret_text(&user, &mut file, seal_to.as_ref().map(SealingKey::public))?;
            if !a.json {
                print_out(&text)?;
            }
            printed = Some(text);
            Ok(())
        }
    };
    // With `-`, the confirmed step is still spent in the state (root): the
    // code typed at enrollment must not also log in, wherever the file goes.
    if let Some(step) = show_and_save(&a, &view, &key, &mut stdin, save)? {
        if caller.root {
            spend_confirmed_step(&settings, &user.name, &key, step);
        }
    }

    let shown = loc.as_ref().map_or_else(|| "-".to_owned(), |l| l.shown());
    if a.json {
        output::print_json(&output::EnrollJson {
            user: &user.name,
            secret_file: &shown,
            secret: b32,
            otpauth_uri: uri,
            scratch_codes: codes.iter().map(|c| c.as_str()).collect(),
            secret_file_text: printed.as_deref().map(String::as_str),
        })?;
    }
    announce(
        &user,
        loc.as_ref(),
        seal_to.as_ref().map(SealingKey::public),
    );
    notify::enrolled(&settings, &caller, &user.name, &shown, "enroll");
    Ok(ExitCode::SUCCESS)
}

/// Where the secret file goes: its checked location, or `None` for
/// `--secret-file -`, where the file's text goes to standard output and
/// nothing is written, so there is no path to check (any caller, for an
/// account `target` lets them act on).
fn destination(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    a: &EnrollArgs,
) -> Result<Option<Location>> {
    if a.file.is_stdio() {
        return Ok(None);
    }
    let loc = locate(caller, user, settings, a.file.secret_file.as_deref())?;
    require_writable(caller, &loc)?;
    Ok(Some(loc))
}

/// A new key as `enroll` and `enroll --add` show it: the secret as text,
/// its otpauth URI and its QR code (with a warning if the parameters are
/// ones many apps ignore).
pub(super) struct Presented {
    pub b32: Zeroizing<String>,
    pub uri: Zeroizing<String>,
    pub qr: Option<String>,
}

pub(super) fn present(
    a: &EnrollArgs,
    issuer: &str,
    account: &str,
    secret: &[u8],
) -> Result<Presented> {
    let b32 = otp::encode_base32(secret);
    let uri = enrollment_uri(a, issuer, account, &b32)?;
    warn_if_apps_may_ignore(a);
    let qr = output::qr(&uri, a.qr)?;
    Ok(Presented { b32, uri, qr })
}

impl Presented {
    /// What is printed of it, with `scratch_codes` (none for `--add`).
    pub(super) fn view<'a>(
        &'a self,
        a: &EnrollArgs,
        issuer: &'a str,
        account: &'a str,
        scratch_codes: &'a [Zeroizing<String>],
    ) -> EnrollView<'a> {
        EnrollView {
            qr: self.qr.as_deref(),
            uri: &self.uri,
            issuer,
            account,
            secret: &self.b32,
            algorithm: a.algorithm,
            digits: a.digits,
            period: a.period,
            scratch_codes,
        }
    }
}

/// The otpauth URI the app reads (from the QR code or as text).
fn enrollment_uri(
    a: &EnrollArgs,
    issuer: &str,
    account: &str,
    b32: &str,
) -> Result<Zeroizing<String>> {
    let uri = output::otpauth_uri(&UriParts {
        issuer,
        account,
        secret: b32,
        algorithm: a.algorithm,
        digits: a.digits,
        period: a.period,
    })
    .map_err(EnrollError::EnrollUri)?;
    Ok(uri)
}

/// Warns when the parameters are not the ones every app honours.
fn warn_if_apps_may_ignore(a: &EnrollArgs) {
    if !output::default_params(a.algorithm, a.digits, a.period) {
        eprintln!(
            "pam-totp: warning: {}, {} digits, {} seconds: many apps (Google Authenticator among them) \
             ignore these and use SHA1, 6 digits, 30 seconds; make sure the app's codes work",
            a.algorithm, a.digits, a.period
        );
    }
}

/// The closing line on standard error: where the enrollment went, and
/// whether the secret is sealed.
fn announce(user: &UserInfo, loc: Option<&Location>, seal_to: Option<&HostPublicKey>) {
    let whence = match loc {
        Some(l) => l.shown(),
        None => "the secret file's text is on standard output; nothing was written here".into(),
    };
    match seal_to {
        Some(k) => eprintln!(
            "pam-totp: enrolled {}: {whence} (secret sealed to host key {}: only root can open it, \
             and it is not shown again)",
            user.name,
            k.id()
        ),
        None => eprintln!("pam-totp: enrolled {}: {whence}", user.name),
    }
}

/// Shows the enrollment and, unless `--no-confirm`, asks for a code from
/// the app; saves only after a right one. The confirmed step, if any.
pub(super) fn show_and_save(
    a: &EnrollArgs,
    view: &EnrollView<'_>,
    key: &OtpKey,
    stdin: &mut impl BufRead,
    save: impl FnOnce() -> Result<()>,
) -> Result<Option<u64>> {
    // With --json, stdout is for the one JSON object, and with
    // `--secret-file -` for the file's text: show the rest on stderr.
    let to_stderr = a.json || a.file.is_stdio();
    if a.no_confirm {
        save()?;
        if a.json {
            return Ok(None);
        }
        let text = output::enroll_text(view);
        if to_stderr {
            eprint!("{}", text.as_str());
        } else {
            print_out(&text)?;
        }
        return Ok(None);
    }
    let text = output::enroll_text(view);
    if to_stderr {
        eprint!("{}", text.as_str());
    } else {
        print_out(&text)?;
    }
    let step = confirm(key, stdin)?;
    save()?;
    Ok(Some(step))
}

/// The secret: random, or `--secret` (`-`: a line of standard input).
pub(super) fn new_secret(
    given: Option<Zeroizing<String>>,
    stdin: &mut impl BufRead,
) -> Result<Zeroizing<Vec<u8>>> {
    let Some(given) = given else {
        return Ok(Zeroizing::new(random::<SECRET_BYTES>()?.to_vec()));
    };
    let text = if given.as_str() == "-" {
        let mut line = Zeroizing::new(String::new());
        stdin
            .read_line(&mut line)
            .map_err(EnrollError::SecretStdin)?;
        line
    } else {
        given
    };
    Ok(otp::decode_base32(&text).ok_or(EnrollError::SecretNotBase32)?)
}

/// The issuer and the account name the app shows.
pub(super) fn app_names(a: &mut EnrollArgs, user: &UserInfo) -> Result<(String, String)> {
    let host = host_name();
    let issuer = a.issuer.take().unwrap_or_else(|| host.clone());
    let account = match a.label.take() {
        Some(l) => l,
        None if user.name.contains(':') => {
            return Err(EnrollError::NameHoldsColon {
                name: user.name.clone(),
            }
            .into())
        }
        None => format!("{}@{host}", user.name),
    };
    Ok((issuer, account))
}

/// Records the step of the code typed at confirmation as spent in the
/// user's state, so that code cannot also log in (someone watching the
/// screen during enrollment gains nothing). Only root can write the state;
/// an existing state directory is required (the module creates it at the
/// first login otherwise). Best effort: a failure is reported, not fatal,
/// since the enrollment itself is saved.
pub(super) fn spend_confirmed_step(settings: &Settings, user: &str, key: &OtpKey, step: u64) {
    let dir = &settings.state_dir;
    if !dir.exists() {
        return;
    }
    let done = users::state_account(user)
        .map_err(|e| CliError::from(AccessError::Account(e)))
        .and_then(|account| {
            let d = StateDir::open(dir, false).map_err(CliError::State)?;
            let lock = d.lock(&account).map_err(CliError::State)?;
            let mut state = lock.read().map_err(CliError::State)?;
            state
                .spend_step(key, step, now())
                .map_err(|why| EnrollError::ConfirmNotRecorded {
                    path: d.state_path(&account),
                    why,
                })?;
            lock.write(&state).map_err(CliError::State)
        });
    if let Err(e) = done {
        eprintln!("pam-totp: warning: the confirmation code could not be marked as used: {e}");
    }
}

/// The step `typed` is right for at `now`, as the module's decision judges
/// it with its default window, or `None`. A fresh state each time: the
/// confirmation has no rate limit and nothing spent yet.
fn confirmed_step(key: &OtpKey, typed: &str, now: u64) -> Option<u64> {
    let creds = Credentials {
        keys: vec![key],
        scratch: &[],
        counter: Counter::Time,
        limits: &FileLimits::default(),
    };
    let mut state = UserState::new();
    match decision::attempt(&creds, typed, now, &Policy::default(), &mut state) {
        Outcome::Accepted(Method::Totp { step, .. }) => Some(step),
        _ => None,
    }
}

/// Asks for codes until a right one, or the end of the input, and returns
/// the step it matched. A wrong code is only called wrong: the right one
/// is never shown.
fn confirm(key: &OtpKey, input: &mut impl BufRead) -> Result<u64> {
    let digits = usize::from(key.digits());
    eprintln!(
        "To finish, type the code the app shows for this account. Nothing is saved\n\
         until a right code is typed (Ctrl-D gives up)."
    );
    loop {
        eprint!("Code from the app: ");
        let _ = io::stderr().flush();
        let mut line = Zeroizing::new(String::new());
        let n = input.read_line(&mut line).map_err(EnrollError::ReadCode)?;
        if n == 0 {
            eprintln!();
            return Err(EnrollError::NotConfirmed.into());
        }
        let typed: Zeroizing<String> =
            Zeroizing::new(line.chars().filter(|c| !c.is_whitespace()).collect());
        if typed.is_empty() {
            continue;
        }
        if let Some(step) = confirmed_step(key, &typed, now()) {
            eprintln!("Code accepted.");
            return Ok(step);
        }
        if typed.bytes().all(|b| b.is_ascii_digit()) && typed.len() != digits {
            eprintln!(
                "That code has {} digits; this account's codes have {digits}. If the app shows {}, \
                 it ignored the settings: enroll again with the defaults.",
                typed.len(),
                typed.len()
            );
        } else {
            eprintln!(
                "That is not the right code. Check that the app shows this account and that the \
                 phone's clock is right, then type the code it shows now."
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pam_totp::core::otp::Algorithm;

    #[test]
    fn confirmation_retries_and_stops_at_eof() {
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
        let right = key.totp_code(key.step_at(now()));
        let wrong = if right.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        let mut answers = io::Cursor::new(format!("{wrong}\n\n12 34\n{}\n", right.as_str()));
        assert!(confirm(&key, &mut answers).is_ok());
        let mut answers = io::Cursor::new(format!("{wrong}\n"));
        assert!(matches!(
            confirm(&key, &mut answers),
            Err(CliError::Enroll(EnrollError::NotConfirmed))
        ));
    }

    #[test]
    fn confirmation_uses_the_module_window() {
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
        let now = 1_000_000_000;
        let step = key.step_at(now);
        for s in [step - 1, step, step + 1] {
            assert_eq!(confirmed_step(&key, &key.totp_code(s), now), Some(s));
        }
        for s in [step - 2, step + 2] {
            let code = key.totp_code(s);
            let near = [step - 1, step, step + 1].map(|n| key.totp_code(n));
            if !near.contains(&code) {
                assert_eq!(confirmed_step(&key, &code, now), None);
            }
        }
        // Spaces inside are ignored, as at login.
        let code = key.totp_code(step);
        assert_eq!(
            confirmed_step(&key, &format!("{} {}", &code[..3], &code[3..]), now),
            Some(step)
        );
    }
}
