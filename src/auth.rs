//! The login decision, from module arguments to a verdict.
//!
//! Safe code over the [`PamIo`] trait; `pam.rs` implements the trait with
//! libpam. Order of work: settings, user, group rules, secret file, then the
//! prompt (no lock held), then read-decide-write under the user's state lock.
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use zeroize::Zeroizing;

use crate::config::{self, FirstPass, Settings};
use crate::enrollment::{self, Enrollment};
use crate::files::{self, ReadError, UserInfo};
use crate::logtext::{prose, reason, token};
use crate::scratch::{looks_like_scratch_code, SCRATCH_DIGITS};
use crate::seal;
use crate::state::StateDir;
use crate::verify::{self, Credentials, Method, Outcome};

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
    /// One line to syslog (LOG_AUTHPRIV). Never given a code or a secret.
    fn log(&self, level: Level, msg: &str);
    /// secret_command= (src/secret_command.rs): runs the command as
    /// `crate::command::run` does, with the child-side confinement that
    /// needs `unsafe` (pam.rs).
    fn run_secret_command(
        &self,
        spec: &crate::command::CommandSpec,
    ) -> Result<crate::command::CommandOutput, crate::command::CommandError>;
}

/// Who is logging in, for the audit line. Every value that comes from
/// outside (user, service, remote host, paths, group names) is a
/// [`token`]; every reason goes through [`reason`]. So no value can pose as
/// one of the line's own `key=value` fields (see `logtext`).
struct Audit {
    user: String,
    service: String,
    rhost: String,
}

impl Audit {
    fn line(&self, result: &str, detail: &str) -> String {
        let mut s = format!(
            "user={} service={} rhost={} result={result}",
            token(&self.user),
            token(&self.service),
            token(&self.rhost)
        );
        if !detail.is_empty() {
            let _ = write!(s, " {detail}");
        }
        s
    }
}

/// Where the user stands before any code is typed.
enum Standing {
    Enrolled(Enrollment),
    NotEnrolled,
    UnknownUser,
    /// The secret file exists but cannot be used; the reason for syslog.
    Problem(String),
}

pub fn authenticate(io: &mut dyn PamIo, args: &[String], now: u64) -> Verdict {
    let settings = match config::from_args(args, &files::read_config_file) {
        Ok(s) => s,
        Err(e) => {
            io.log(
                Level::Err,
                &format!("configuration error: {}; denying", prose(&e.to_string())),
            );
            return Verdict::AuthErr;
        }
    };
    let Some(name) = io.user() else {
        io.log(Level::Err, "could not get the user name; denying");
        return Verdict::AuthErr;
    };
    let audit = Audit {
        user: name.clone(),
        service: io.service().unwrap_or_default(),
        rhost: io.rhost().unwrap_or_default(),
    };
    if settings.debug {
        io.log(
            Level::Debug,
            &audit.line(
                "start",
                &format!(
                    "secret={} state_dir={} window={} rate_limit={}",
                    token(&settings.secret),
                    token(&settings.state_dir.to_string_lossy()),
                    settings.policy.window,
                    settings.policy.rate_limit
                ),
            ),
        );
    }

    let user = match files::lookup_user(&name) {
        Ok(u) => u,
        Err(e) => {
            io.log(
                Level::Err,
                &audit.line("error", &reason(&format!("user lookup failed: {e}"))),
            );
            return Verdict::AuthErr;
        }
    };
    match group_rules(&settings, user.as_ref()) {
        Ok(None) => {}
        Ok(Some(why)) => {
            io.log(
                Level::Info,
                &audit.line("skipped", &format!("reason={why}")),
            );
            return Verdict::Ignore;
        }
        Err(e) => {
            io.log(Level::Err, &audit.line("config-error", &reason(&e)));
            return Verdict::AuthErr;
        }
    }

    let enrolled = match &user {
        None => Standing::UnknownUser,
        Some(u) => match load_enrollment(&settings, u, io) {
            Ok(e) => e,
            Err(why) => {
                io.log(Level::Err, &audit.line("config-error", &reason(&why)));
                return Verdict::AuthErr;
            }
        },
    };
    if matches!(enrolled, Standing::NotEnrolled) && settings.nullok {
        io.log(
            Level::Info,
            &audit.line("skipped", "reason=not-enrolled,nullok"),
        );
        return Verdict::Ignore;
    }

    let digits = match &enrolled {
        Standing::Enrolled(e) => usize::from(e.key.digits()),
        _ => usize::from(enrollment::DEFAULT_DIGITS),
    };

    // try_first_pass: a code-shaped PAM_AUTHTOK is a first attempt of its
    // own (locked, decided, recorded). Anything but the right code falls
    // back to the prompt below, which is the next attempt. An authtok that
    // cannot be a code (the password of the module before) is no attempt
    // at all. For a user who is not enrolled the authtok is not checked,
    // and the prompt comes just as it would after a wrong code.
    if settings.first_pass == FirstPass::Try {
        if let (Some(tok), Standing::Enrolled(e)) = (
            io.authtok().filter(|t| looks_like_code(t, digits)),
            &enrolled,
        ) {
            match attempt(io, &settings, &audit, &name, e, &only(tok), now, true) {
                Attempt::Done(verdict) => return verdict,
                Attempt::TryAgain => {}
            }
        }
    }

    // The prompt comes before any verdict, so an attacker cannot tell an
    // unknown or unenrolled user from an enrolled one.
    let Some(input) = read_code(io, &settings, digits) else {
        io.log(
            Level::Notice,
            &audit.line("no-code", &reason("conversation failed or no code given")),
        );
        return Verdict::AuthErr;
    };

    let enrollment = match enrolled {
        Standing::Enrolled(e) => e,
        Standing::NotEnrolled => {
            io.log(
                Level::Notice,
                &audit.line("not-enrolled", &reason("no secret file")),
            );
            return Verdict::AuthErr;
        }
        Standing::UnknownUser => {
            io.log(Level::Notice, &audit.line("unknown-user", ""));
            return Verdict::AuthErr;
        }
        Standing::Problem(why) => {
            io.log(Level::Err, &audit.line("file-problem", &reason(&why)));
            return Verdict::AuthErr;
        }
    };
    match attempt(
        io,
        &settings,
        &audit,
        &name,
        &enrollment,
        &input,
        now,
        false,
    ) {
        Attempt::Done(verdict) => verdict,
        Attempt::TryAgain => Verdict::AuthErr,
    }
}

/// How one attempt ended.
enum Attempt {
    /// The verdict, whatever comes next.
    Done(Verdict),
    /// Not accepted, and this was not the last attempt allowed: the caller
    /// asks again.
    TryAgain,
}

/// One attempt: read, decide and write the state under the lock, then
/// (forward_pass) hand the password on, and log the audit line.
/// `from_authtok`: the try_first_pass attempt with PAM_AUTHTOK, after
/// anything but the right code is asked for again; otherwise this is
/// the last attempt, and a wrong code is the verdict.
#[allow(clippy::too_many_arguments)]
fn attempt(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    name: &str,
    enrollment: &Enrollment,
    input: &Input,
    now: u64,
    from_authtok: bool,
) -> Attempt {
    let candidates: Vec<&str> = input.candidates.iter().map(|c| c.code.as_str()).collect();
    // Fleet state (src/fleet/login.rs) when state= is set.
    let decided = if settings.fleet.url.is_some() {
        let mut warn =
            |why: &str| io.log(Level::Warning, &audit.line("state-fallback", &reason(why)));
        crate::fleet::login::decide(settings, name, enrollment, &candidates, now, &mut warn)
    } else {
        decide(settings, name, enrollment, &candidates, now)
    };
    let (outcome, remaining) = match decided {
        Ok(o) => o,
        Err(why) => {
            io.log(Level::Err, &audit.line("state-error", &reason(&why)));
            return Attempt::Done(Verdict::AuthErr);
        }
    };
    // Whatever went wrong with the authtok, the prompt follows (also when
    // rate-limited: the prompt is what every locked or unknown user sees).
    let again = from_authtok && !outcome.is_success();

    if settings.forward_pass && !again {
        // Forward the password that went with the accepted reading of the
        // input (or the first reading), so the next module can check it.
        let chosen = match &outcome {
            Outcome::Accepted(Method::Scratch { .. }) => input
                .candidates
                .iter()
                .find(|c| c.scratch)
                .or(input.candidates.first()),
            _ => input.candidates.first(),
        };
        if let Some(c) = chosen {
            if !io.set_authtok(&c.password) {
                io.log(
                    Level::Err,
                    &audit.line("error", &reason("could not set PAM_AUTHTOK")),
                );
                return Attempt::Done(Verdict::AuthErr);
            }
        }
    }

    let (level, result, detail) = match &outcome {
        Outcome::Accepted(Method::Totp { step }) => {
            let offset = *step as i128 - enrollment.key.step_at(now) as i128;
            (
                Level::Notice,
                "success",
                format!("method=totp offset={offset}"),
            )
        }
        Outcome::Accepted(Method::Scratch { .. }) => (
            Level::Notice,
            "scratch-code-used",
            format!("method=scratch remaining={remaining}"),
        ),
        Outcome::Wrong => (Level::Warning, "wrong-code", String::new()),
        Outcome::Accepted(Method::Hotp { counter }) => (
            Level::Notice,
            "success",
            format!("method=hotp counter={counter}"),
        ),
        Outcome::Replayed(Method::Totp { .. } | Method::Hotp { .. }) => {
            (Level::Warning, "replayed-code", "method=totp".into())
        }
        Outcome::Replayed(Method::Scratch { .. }) => {
            (Level::Warning, "replayed-code", "method=scratch".into())
        }
        Outcome::Refused(_, why) => (Level::Err, "refused", format!("reason={}", why.as_str())),
        Outcome::RateLimited => (
            Level::Warning,
            "rate-limited",
            format!(
                "rate_limit={}",
                Credentials::of(enrollment).rate_limit(&settings.policy)
            ),
        ),
    };
    let detail = match (from_authtok, detail.is_empty()) {
        (false, _) => detail,
        (true, true) => "source=authtok".to_owned(),
        (true, false) => format!("{detail} source=authtok"),
    };
    io.log(level, &audit.line(result, &detail));
    if outcome.is_success() {
        Attempt::Done(Verdict::Success)
    } else if again {
        Attempt::TryAgain
    } else {
        Attempt::Done(Verdict::AuthErr)
    }
}

/// `Ok(Some(reason))` when the group rules exempt this user.
/// `Err(reason)` denies: the groups cannot be looked up, or `require_group`
/// names a group that does not exist (a typo there would otherwise exempt
/// everybody from the second factor).
///
/// An unknown user (`None`) is never exempted, by either rule: it is asked
/// for a code and refused like anyone the module cannot vouch for. Skipping
/// it would return PAM_IGNORE, and a stack with `pam_permit.so` (or any
/// `sufficient` module) after this one would then let it in.
fn group_rules(settings: &Settings, user: Option<&UserInfo>) -> Result<Option<String>, String> {
    let lookup = |e: std::io::Error| format!("group lookup failed: {e}");
    if let Some(g) = &settings.require_group {
        if !files::group_exists(g).map_err(lookup)? {
            return Err(format!(
                "require_group names {}, which does not exist",
                token(g)
            ));
        }
    }
    let Some(u) = user else {
        return Ok(None);
    };
    if let Some(g) = &settings.exempt_group {
        if files::in_group(u, g).map_err(lookup)? {
            return Ok(Some(format!("exempt_group={}", token(g))));
        }
    }
    if let Some(g) = &settings.require_group {
        if !files::in_group(u, g).map_err(lookup)? {
            return Ok(Some(format!("require_group={}", token(g))));
        }
    }
    Ok(None)
}

/// Finds and parses the user's secret file. `Err` only for a secret path
/// that cannot be expanded (a configuration error).
fn load_enrollment(
    settings: &Settings,
    user: &UserInfo,
    io: &dyn PamIo,
) -> Result<Standing, String> {
    // Only called for a sealed file: the host key is read as root.
    let unseal = |sealed: &str| {
        let keys = seal::load_secret_keys(&settings.host_key).map_err(|e| e.to_string())?;
        seal::open(&keys, &user.name, sealed).map_err(|e| e.to_string())
    };
    // secret_command= (src/secret_command.rs): the bytes come from the
    // command's output, parsed and unsealed exactly as a file's are.
    if settings.secret_command.path.is_some() {
        use crate::secret_command::{fetch, Fetched};
        return Ok(
            match fetch(&settings.secret_command, user, io, settings.debug)? {
                Fetched::Text(bytes) => match enrollment::parse_with(&bytes, Some(&unseal)) {
                    Ok(e) => Standing::Enrolled(e),
                    Err(e) => Standing::Problem(format!("secret_command output: {e}")),
                },
                Fetched::Nothing => Standing::NotEnrolled,
                Fetched::Problem(why) => Standing::Problem(why),
            },
        );
    }
    let path = config::expand_secret(&settings.secret, user)?;
    // Files under the home directory are read with the user's identity;
    // system-wide ones (root-owned) as root.
    let as_owner = files::accessed_as_owner(user, &path);
    if settings.debug {
        io.log(
            Level::Debug,
            &format!(
                "reading {} as {}",
                token(&path.to_string_lossy()),
                if as_owner { "the user" } else { "root" }
            ),
        );
    }
    let shown = token(&path.to_string_lossy());
    Ok(match files::read_secret_file(&path, user, as_owner) {
        Ok(bytes) => match enrollment::parse_with(&bytes, Some(&unseal)) {
            Ok(e) => Standing::Enrolled(e),
            Err(e) => Standing::Problem(format!("{shown}: {e}")),
        },
        Err(ReadError::NotFound) => Standing::NotEnrolled,
        Err(e) => Standing::Problem(format!("{shown}: {e}")),
    })
}

/// One way to read what the user typed: the code, and (forward_pass) the
/// password in front of it.
struct Candidate {
    code: Zeroizing<String>,
    password: Zeroizing<String>,
    scratch: bool,
}

struct Input {
    candidates: Vec<Candidate>,
}

/// The input read one way only: `code`, with no password in front.
fn only(code: Zeroizing<String>) -> Input {
    Input {
        candidates: vec![Candidate {
            code,
            password: Zeroizing::new(String::new()),
            scratch: false,
        }],
    }
}

/// Gets the code: from PAM_AUTHTOK (use_first_pass) or a prompt. For
/// try_first_pass the authtok has had its own attempt already, in
/// [`authenticate`]; this is the prompt that follows it.
fn read_code(io: &mut dyn PamIo, settings: &Settings, digits: usize) -> Option<Input> {
    if settings.first_pass == FirstPass::Use {
        return io.authtok().map(only);
    }
    let typed = io.prompt(settings.prompt(), settings.echo_code)?;
    if !settings.forward_pass {
        return Some(only(typed));
    }
    // password + code in one answer: the code is the last `digits`
    // characters, or the last eight for a scratch code.
    let mut candidates = Vec::new();
    for (len, scratch) in [(digits, false), (SCRATCH_DIGITS, true)] {
        if scratch && len == digits {
            continue;
        }
        let Some(split) = typed.len().checked_sub(len) else {
            continue;
        };
        if !typed.is_char_boundary(split) {
            continue;
        }
        candidates.push(Candidate {
            code: Zeroizing::new(typed[split..].to_owned()),
            password: Zeroizing::new(typed[..split].to_owned()),
            scratch,
        });
    }
    if candidates.is_empty() {
        candidates.push(Candidate {
            code: Zeroizing::new(String::new()),
            password: typed,
            scratch: false,
        });
    }
    Some(Input { candidates })
}

/// Whether an authtok has the form of a code (so try_first_pass uses it
/// rather than prompting).
fn looks_like_code(tok: &str, digits: usize) -> bool {
    let t: String = tok.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = t.len() == digits && t.bytes().all(|b| b.is_ascii_digit());
    totp || looks_like_scratch_code(&t)
}

/// Read, decide and write under the user's state lock. The state is the
/// account's, whatever spelling of its name was typed (see
/// `files::state_account`).
fn decide(
    settings: &Settings,
    user: &str,
    enrollment: &Enrollment,
    candidates: &[&str],
    now: u64,
) -> Result<(Outcome, usize), String> {
    let account = files::state_account(user)?;
    let dir = StateDir::open(&settings.state_dir, true).map_err(|e| e.to_string())?;
    let lock = dir.lock(&account).map_err(|e| e.to_string())?;
    let mut state = lock.read().map_err(|e| e.to_string())?;
    let creds = Credentials::of(enrollment);
    let outcome = verify::attempt_any(&creds, candidates, now, &settings.policy, &mut state);
    // If the new state cannot be recorded, a success cannot be allowed:
    // its step would not be marked as spent.
    lock.write(&state).map_err(|e| e.to_string())?;
    Ok((
        outcome,
        verify::remaining_scratch(&enrollment.scratch, &state),
    ))
}
