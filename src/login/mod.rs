//! One login, as a pipeline, from module arguments to a verdict:
//!
//! settings → standing (user, group rules, nullok) → secret → input →
//! decision through the state store → one audit line.
//!
//! Safe code over the [`PamIo`] trait, which `crate::pam` implements with
//! libpam. Each step returns a typed result; a step that ends the login
//! returns a [`Denial`](error::Denial), and [`error`] is the one place that
//! maps it to its PAM verdict and audit line. The prompt comes before any
//! verdict and before the state lock is taken; the decision runs under
//! the account's lock (`StateStore::update`).
#![forbid(unsafe_code)]

mod attempt;
mod audit;
mod enroll;
mod error;
mod input;
pub mod notify;
mod owner;
mod rollout;
mod secret_command;
mod standing;

use zeroize::Zeroizing;

use crate::config::{self, FirstPass, Settings};
use crate::core::code::looks_like_code;
use crate::core::logtext::token;
use crate::core::otp::DEFAULT_DIGITS;
use crate::state::fleet::conn::tls::TlsConnector;
use crate::sys::command::{CommandError, CommandOutput, CommandSpec};
use crate::sys::hook::{HookError, HookSpec};
use crate::sys::users;

use attempt::{attempt, Attempt};
use audit::Audit;
use error::Denial;
use input::only;
use owner::Owner;
use standing::Standing;

/// What `pam_sm_authenticate` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    AuthErr,
    /// This module has no say for this user (nullok, group rules).
    Ignore,
}

/// Syslog severities used by the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// What the login needs from libpam.
pub trait PamIo {
    /// The user being authenticated (PAM_USER, prompting if unset).
    fn user(&mut self) -> Option<String>;
    fn service(&self) -> Option<String>;
    fn rhost(&self) -> Option<String>;
    /// PAM_AUTHTOK, if an earlier module set it.
    fn authtok(&self) -> Option<Zeroizing<String>>;
    fn set_authtok(&mut self, value: &str) -> bool;
    /// Asks the user; `None` if the conversation failed or was cancelled.
    fn prompt(&mut self, text: &str, echo: bool) -> Option<Zeroizing<String>>;
    /// Shows the user an error message (PAM_ERROR_MSG). A conversation
    /// that fails changes nothing.
    fn error_message(&mut self, text: &str);
    /// Shows the user a message (PAM_TEXT_INFO). A conversation that fails
    /// changes nothing.
    fn info_message(&mut self, text: &str);
    /// One line to syslog (LOG_AUTHPRIV). Never given a code or a secret.
    fn log(&self, level: Level, msg: &str);
    /// secret_command= (secret_command.rs): runs the command as
    /// `crate::sys::command::run` does, with the child-side confinement
    /// that needs `unsafe` (`crate::pam`).
    fn run_secret_command(&self, spec: &CommandSpec) -> Result<CommandOutput, CommandError>;
    /// notify= (notify.rs): starts the hook detached and returns at once
    /// (`crate::pam::notify`); `Err` only when it could not be started.
    fn run_notify(&self, spec: &HookSpec) -> Result<(), HookError>;
    /// TLS sessions for a `rediss://` state server: the TLS library
    /// beside the module, loaded only when a session is started
    /// (`crate::pam::tls`).
    fn tls(&self) -> Option<&'static dyn TlsConnector>;
}

/// One login: its verdict, after exactly one audit line.
pub fn authenticate(io: &mut dyn PamIo, args: &[String], now: u64) -> Verdict {
    let settings = match config::from_args(args, &config::read_config_file) {
        Ok(s) => s,
        Err(e) => return finish(io, None, Denial::Config(e)),
    };
    let Some(name) = io.user() else {
        return finish(io, None, Denial::NoUserName);
    };
    let audit = Audit {
        user: name.clone(),
        service: io.service().unwrap_or_default(),
        rhost: io.rhost().unwrap_or_default(),
        events: Default::default(),
    };
    if settings.debug {
        let detail = format!(
            "secret={} state_dir={} window={} rate_limit={}",
            token(&settings.secret),
            token(&settings.state_dir.to_string_lossy()),
            settings.policy.window,
            settings.policy.rate_limit
        );
        io.log(Level::Debug, &audit.line("start", &detail));
    }
    let verdict = match login(io, &settings, &audit, &name, now) {
        Ok(verdict) => verdict,
        Err(denial) => {
            if let Some((kind, detail)) = error::denial_event(&denial) {
                audit.event(kind, detail);
            }
            finish(io, Some(&audit), denial)
        }
    };
    // After the login: the typed code and the secret are wiped by now.
    notify::emit_all(io, &settings, &audit, now);
    verdict
}

/// Logs how the login ended and returns its verdict.
fn finish(io: &mut dyn PamIo, audit: Option<&Audit>, denial: Denial) -> Verdict {
    let end = denial.ending();
    let line = match (audit, end.result) {
        (Some(a), Some(result)) => a.line(result, &end.detail),
        _ => end.detail,
    };
    io.log(end.level, &line);
    end.verdict
}

/// The steps after the user is known. `Ok`: a code was decided (and its
/// audit line written); `Err`: the login ended before that.
fn login(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    name: &str,
    now: u64,
) -> Result<Verdict, Denial> {
    let user = users::lookup_user(name).map_err(Denial::UserLookup)?;
    if let Some(skip) = standing::group_rules(settings, user.as_ref()).map_err(Denial::Groups)? {
        return Err(Denial::Skipped(skip));
    }
    // The state's account is settled from this one lookup, at most once
    // (owner::Owner).
    let owner = user.as_ref().map(|u| Owner::new(name, u));
    let standing = match &owner {
        None => Standing::UnknownUser,
        Some(o) => standing::load_enrollment(settings, o, io)?,
    };
    // No secret file: nullok, the enroll_by deadline, enrollment at login.
    if let (Standing::NotEnrolled, Some(o)) = (&standing, &owner) {
        if let Some(verdict) = rollout::not_enrolled(io, settings, audit, o, now)? {
            return Ok(verdict);
        }
    }
    let digits = match &standing {
        Standing::Enrolled(e) => usize::from(e.digits()),
        _ => usize::from(DEFAULT_DIGITS),
    };

    // try_first_pass: a code-shaped PAM_AUTHTOK is a first attempt of its
    // own (locked, decided, recorded). Anything but the right code falls
    // back to the prompt below, which is the next attempt. An authtok that
    // cannot be a code (the password of the module before) is no attempt
    // at all. For a user who is not enrolled the authtok is not checked,
    // and the prompt comes just as it would after a wrong code.
    if settings.first_pass == FirstPass::Try {
        if let (Some(tok), Standing::Enrolled(e), Some(owner)) = (
            io.authtok().filter(|t| looks_like_code(t, digits)),
            &standing,
            &owner,
        ) {
            if let Attempt::Done(v) = attempt(io, settings, audit, owner, e, &only(tok), now, true)?
            {
                return Ok(v);
            }
        }
    }

    // The prompt comes before any verdict, so an attacker cannot tell an
    // unknown or unenrolled user from an enrolled one.
    let input = input::read_code(io, settings, digits).ok_or(Denial::NoCode)?;
    let (enrollment, owner) = match (standing, &owner) {
        (Standing::Enrolled(e), Some(owner)) => (e, owner),
        (Standing::NotEnrolled, _) => return Err(Denial::NotEnrolled),
        (Standing::UnknownUser | Standing::Enrolled(_), _) => return Err(Denial::UnknownUser),
        (Standing::Problem(why), _) => return Err(Denial::FileProblem(why)),
    };
    match attempt(io, settings, audit, owner, &enrollment, &input, now, false)? {
        Attempt::Done(verdict) => Ok(verdict),
        Attempt::TryAgain => Ok(Verdict::AuthErr),
    }
}
