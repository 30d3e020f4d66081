//! Enrollment at login (`enroll_at_login`, issue 15): a user without a
//! secret file is shown, through the conversation (PAM_TEXT_INFO), a short
//! explanation, the QR code of a new key's otpauth URI (the UTF-8 half
//! blocks of the tool's `--qr utf8`) and the secret in groups of four, and
//! is asked for a code from the app.
//!
//! A right code, judged by the same decision and window as a login, in the
//! account's state under its lock (so its step is spent there, through the
//! same store a login uses), saves the secret where `pam-totp enroll`
//! would: the `secret=` path, created exclusively (a file that appeared
//! meanwhile is left alone), with the user's identity under their home,
//! sealed when the host has a key. Then the scratch codes are shown once
//! and the login succeeds. A wrong code saves nothing and denies; an empty
//! answer is a skip (PAM_IGNORE) only for a user who may pass without a
//! code anyway (`Settings::may_pass_without`), else a denial.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::config::{self, Settings};
use crate::core::decision::{Counter, FileLimits, Method, Outcome};
use crate::core::logtext::token;
use crate::core::otp::{self, Algorithm, OtpKey, DEFAULT_DIGITS, DEFAULT_PERIOD};
use crate::core::scratch::ScratchHash;
use crate::secret::enrollment::{Enrollment, Format, NamedKey, DEFAULT_KEY_NAME};
use crate::secret::fresh;
use crate::secret::native::SecretFile;
use crate::secret::otpauth::{self, UriParts};
use crate::secret::qr::{self, Matrix};
use crate::secret::store::{self, SealingKey, WriteError};
use crate::sys::secret_file;
use crate::sys::users::UserInfo;

use super::attempt;
use super::audit::Audit;
use super::error::{Denial, EnrollEnd, Skip};
use super::input::only;
use super::notify;
use super::owner::Owner;
use super::{Level, PamIo, Verdict};

/// The prompt for the app's code (echoed: it is shown on the app anyway,
/// and the user sees what they typed).
const PROMPT: &str = "Code from the app: ";
const PROMPT_SKIP: &str = "Code from the app (leave empty to skip for now): ";

/// A new key, ready to be shown and saved; nothing is on disk yet.
struct NewKey {
    secret: Zeroizing<Vec<u8>>,
    secret_b32: Zeroizing<String>,
    /// The new key alone (no scratch codes: only an app's code enrolls).
    enrollment: Enrollment,
    codes: Vec<Zeroizing<String>>,
    hashes: Vec<ScratchHash>,
    qr: String,
}

/// Offers the enrollment and ends the login: `Ok(Success)` once the new
/// secret is saved (its audit line written), `Err` otherwise.
pub(crate) fn at_login(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    owner: &Owner,
    now: u64,
) -> Result<Verdict, Denial> {
    let user = owner.user();
    let may_skip = settings.may_pass_without(now);
    let skip = || Denial::Skipped(Skip::EnrollmentSkipped(settings.enroll_by));
    // Where the file goes and what it is sealed to are settled before
    // anything is shown: a configuration that cannot save ends here.
    let path = config::expand_secret(&settings.secret, user).map_err(Denial::SecretPath)?;
    let seal_to = store::sealing_key(&settings.host_key, true)
        .map_err(|e| Denial::Enroll(EnrollEnd::Failed(format!("cannot seal a new secret: {e}"))))?;
    let new = new_key(user).map_err(|why| Denial::Enroll(EnrollEnd::Failed(why)))?;

    show(io, settings, &new, may_skip, now);
    let prompt = if may_skip { PROMPT_SKIP } else { PROMPT };
    let typed = match io.prompt(prompt, true) {
        Some(t) if !t.trim().is_empty() => t,
        // An empty answer, or no conversation at all.
        _ if may_skip => return Err(skip()),
        _ => return Err(Denial::Enroll(EnrollEnd::NoCode)),
    };

    // The decision, under the account's lock, in the store a login uses:
    // a right code's step is spent there, a wrong one counts as a failure.
    let (outcome, _, _) = attempt::decide_logged(
        io,
        settings,
        audit,
        owner,
        &new.enrollment,
        &only(typed),
        now,
    )?;
    match outcome {
        Outcome::Accepted(Method::Totp { .. }) => {}
        Outcome::RateLimited { .. } => return Err(Denial::Enroll(EnrollEnd::RateLimited)),
        _ => return Err(Denial::Enroll(EnrollEnd::WrongCode)),
    }

    let mut file = SecretFile::new(&new.secret, new.enrollment.first_key(), &new.hashes);
    save(user, &path, &mut file, seal_to.as_ref())?;
    io.info_message(&scratch_text(&new.codes));
    enrolled(io, audit, &path, seal_to.is_some());
    Ok(Verdict::Success)
}

/// The one place an enrollment at login succeeds: its audit line (no
/// secret, no code in it) and its `enrolled_at_login` event.
fn enrolled(io: &mut dyn PamIo, audit: &Audit, path: &std::path::Path, sealed: bool) {
    let detail = format!(
        "method=totp sealed={} secret_file={}",
        if sealed { "yes" } else { "no" },
        token(&path.to_string_lossy())
    );
    io.log(Level::Notice, &audit.line("enrolled-at-login", &detail));
    notify::enrolled_at_login(audit);
}

/// A new key with the defaults every app honours (SHA1, six digits, 30
/// seconds), its scratch codes and its URI's QR code.
fn new_key(user: &UserInfo) -> Result<NewKey, String> {
    let random = |e: getrandom::Error| format!("no random numbers from the OS: {e}");
    let secret = fresh::new_secret().map_err(random)?;
    let key = OtpKey::new(
        &secret,
        Algorithm::Sha1,
        u64::from(DEFAULT_DIGITS),
        DEFAULT_PERIOD,
    )
    .map_err(|e| e.to_string())?;
    let (codes, hashes) = fresh::new_scratch_codes(fresh::DEFAULT_SCRATCH_CODES).map_err(random)?;
    let host = fresh::host_name();
    let account = format!("{}@{host}", user.name);
    let secret_b32 = otp::encode_base32(&secret);
    let uri = otpauth::uri(&UriParts {
        issuer: &host,
        account: &account,
        secret: &secret_b32,
        algorithm: key.algorithm(),
        digits: key.digits(),
        period: key.period(),
    })
    .map_err(|e| format!("the otpauth URI: {e}"))?;
    let qr = Matrix::new(&uri)
        .map_err(|e| format!("the QR code: {e}"))?
        .utf8();
    Ok(NewKey {
        secret,
        secret_b32,
        enrollment: Enrollment {
            keys: vec![NamedKey {
                name: DEFAULT_KEY_NAME.to_owned(),
                key,
                sealed: false,
            }],
            scratch: Vec::new(),
            counter: Counter::Time,
            limits: FileLimits::default(),
            format: Format::Native,
        },
        codes,
        hashes,
        qr,
    })
}

/// The explanation, the QR code and the secret, each one PAM_TEXT_INFO.
fn show(io: &mut dyn PamIo, settings: &Settings, new: &NewKey, may_skip: bool, now: u64) {
    let mut intro = String::from(
        "You have no verification code set up yet. Set it up now: scan this QR code \
         with an authenticator app (or type the secret below into it), then type the \
         code the app shows.",
    );
    match settings.enroll_by.filter(|d| d.is_ahead(now)) {
        Some(d) => {
            let _ = write!(intro, "\n{}", d.notice());
        }
        None if may_skip => intro.push_str("\nYou may leave the code empty to skip this for now."),
        None => {}
    }
    io.info_message(&intro);
    io.info_message(new.qr.trim_end_matches('\n'));
    let mut manual = Zeroizing::new(String::new());
    let _ = write!(
        manual,
        "Secret: {}\n(time-based, SHA1, 6 digits, every 30 seconds)",
        qr::grouped(&new.secret_b32).as_str()
    );
    io.info_message(&manual);
}

/// Saves the new secret file, exclusively (never over a file that appeared
/// meanwhile), as `pam-totp enroll` would.
fn save(
    user: &UserInfo,
    path: &std::path::Path,
    file: &mut SecretFile,
    seal_to: Option<&SealingKey>,
) -> Result<(), Denial> {
    let as_owner = secret_file::accessed_as_owner(user, path);
    store::write_secret_file(user, path, as_owner, file, seal_to, false).map_err(|e| {
        let shown = token(&path.to_string_lossy());
        Denial::Enroll(match e {
            WriteError::AppearedMeanwhile => EnrollEnd::Failed(format!(
                "{shown}: a file appeared there meanwhile; not replaced"
            )),
            e => EnrollEnd::Failed(format!("{shown}: {e}")),
        })
    })
}

/// The scratch codes, shown this once.
fn scratch_text(codes: &[Zeroizing<String>]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::from(
        "Saved. Scratch codes: each logs in once if the phone is lost. Keep them \
         somewhere safe; they are not shown again.",
    ));
    for c in codes {
        let _ = write!(s, "\n  {}", c.as_str());
    }
    s
}
