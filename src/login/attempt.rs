//! One attempt: the decision, under the account's lock, through the state
//! store; then (forward_pass) the password handed on, and the audit line.
#![forbid(unsafe_code)]

use crate::config::Settings;
use crate::core::decision::{self, Credentials, Method, Outcome};
use crate::core::logtext::{reason, token};
use crate::secret::enrollment::Enrollment;
use crate::secret::enrollment::DEFAULT_KEY_NAME;
use crate::state::fleet::conn::tls::TlsConnector;
use crate::state::fleet::FleetStateStore;
use crate::state::local::LocalStore;
use crate::state::{Account, StateError, StateStore};

use super::audit::Audit;
use super::error::{self, Denial};
use super::input::Input;
use super::owner::Owner;
use super::{Level, PamIo, Verdict};

/// How one attempt ended.
pub(crate) enum Attempt {
    /// The verdict, whatever comes next.
    Done(Verdict),
    /// Not accepted, and this was not the last attempt allowed: the caller
    /// asks again.
    TryAgain,
}

/// One attempt. `from_authtok`: the try_first_pass attempt with
/// PAM_AUTHTOK, after which anything but the right code is asked for
/// again; otherwise this is the last attempt, and a wrong code is the
/// verdict.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attempt(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    owner: &Owner,
    enrollment: &Enrollment,
    input: &Input,
    now: u64,
    from_authtok: bool,
) -> Result<Attempt, Denial> {
    let (outcome, remaining, locked_by_it) =
        decide_logged(io, settings, audit, owner, enrollment, input, now)?;
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
                return Err(Denial::SetAuthtok);
            }
        }
    }

    let offset = match &outcome {
        Outcome::Accepted(Method::Totp { key, step }) => enrollment
            .keys
            .get(*key)
            .map_or(0, |k| *step as i128 - k.key.step_at(now) as i128),
        _ => 0,
    };
    let limit = Credentials::of(enrollment).rate_limit(&settings.policy);
    let (level, result, mut detail) = error::decided(&outcome, offset, remaining, limit);
    if let Some(name) = key_name(enrollment, &outcome) {
        detail = format!("{detail} key={}", token(name));
    }
    let detail = match (from_authtok, detail.is_empty()) {
        (false, _) => detail,
        (true, true) => "source=authtok".to_owned(),
        (true, false) => format!("{detail} source=authtok"),
    };
    io.log(level, &audit.line(result, &detail));
    for (kind, detail) in error::decided_events(&outcome, remaining, locked_by_it, limit) {
        audit.event(kind, detail);
    }
    // A locked-out user is told how long to wait (issue 16), once per
    // login: on the attempt that ends it, not on a try_first_pass attempt
    // the prompt follows. A wrong code keeps its generic refusal.
    if let (Outcome::RateLimited { retry_after }, false, false) =
        (&outcome, again, settings.quiet_lockout)
    {
        io.error_message(&lockout_message(*retry_after));
    }
    Ok(if outcome.is_success() {
        Attempt::Done(Verdict::Success)
    } else if again {
        Attempt::TryAgain
    } else {
        Attempt::Done(Verdict::AuthErr)
    })
}

/// The name of the key whose code was accepted, for the audit line; none
/// for a file of one key named `default` (the single-key layout).
fn key_name<'a>(enrollment: &'a Enrollment, outcome: &Outcome) -> Option<&'a str> {
    let index = match outcome {
        Outcome::Accepted(Method::Totp { key, .. } | Method::Hotp { key, .. }) => *key,
        _ => return None,
    };
    let name = enrollment.keys.get(index)?.name.as_str();
    (enrollment.keys.len() > 1 || name != DEFAULT_KEY_NAME).then_some(name)
}

/// A decided attempt: the outcome, the scratch codes left, and the
/// seconds of the lockout the attempt started, if it reached the limit.
type Decided = (Outcome, usize, Option<u64>);

/// What a rate-limited user is shown (unless `quiet_lockout`).
fn lockout_message(retry_after: u64) -> String {
    format!("Too many failed codes; try again in {retry_after} seconds.")
}

/// [`decide`], with the fallback to the local state
/// (state_unavailable=local) logged, and its event raised, before the
/// verdict's line, whatever the verdict; a store that fails is the
/// login's denial. Also used by the enrollment at login to judge the new
/// key's code.
pub(crate) fn decide_logged(
    io: &mut dyn PamIo,
    settings: &Settings,
    audit: &Audit,
    owner: &Owner,
    enrollment: &Enrollment,
    input: &Input,
    now: u64,
) -> Result<Decided, Denial> {
    let candidates: Vec<&str> = input.candidates.iter().map(|c| c.code.as_str()).collect();
    let mut warnings = Vec::new();
    let tls = io.tls();
    let decided = decide(
        settings,
        owner,
        enrollment,
        &candidates,
        now,
        tls,
        &mut warnings,
    );
    for why in &warnings {
        io.log(Level::Warning, &audit.line("state-fallback", &reason(why)));
    }
    if let Some((kind, detail)) = error::fallback_event(&warnings) {
        audit.event(kind, detail);
    }
    decided.map_err(Denial::State)
}

/// The decision through the state store: the account's state is read,
/// decided on and written back under its lock. The store is the state
/// server when `state=` is set (its fallback warnings go to `warnings`),
/// else the local state directory; the decision is the same. The state is
/// the account's, whatever spelling of its name was typed ([`Owner`]).
/// If the new state cannot be recorded, the store fails and so does the
/// login: a success's step would not be marked as spent. Also returned:
/// the remaining scratch codes, and the seconds of the lockout this
/// attempt started when it reached the rate limit.
fn decide(
    settings: &Settings,
    owner: &Owner,
    enrollment: &Enrollment,
    candidates: &[&str],
    now: u64,
    tls: Option<&'static dyn TlsConnector>,
    warnings: &mut Vec<String>,
) -> Result<Decided, StateError> {
    let account = owner.account()?;
    if settings.fleet.url.is_some() {
        let store = FleetStateStore::new(&settings.fleet, &settings.state_dir, tls);
        let decided = decide_in(&store, settings, account, enrollment, candidates, now);
        warnings.extend(store.take_warnings());
        return decided;
    }
    let store = LocalStore::open(&settings.state_dir, true)?;
    decide_in(&store, settings, account, enrollment, candidates, now)
}

/// The one decision, in whichever store.
fn decide_in(
    store: &dyn StateStore,
    settings: &Settings,
    account: &Account,
    enrollment: &Enrollment,
    candidates: &[&str],
    now: u64,
) -> Result<Decided, StateError> {
    let creds = Credentials::of(enrollment);
    let limit = creds.rate_limit(&settings.policy);
    let mut decided = (Outcome::Wrong, 0, None);
    // Re-runnable: each run starts from the state it is given and
    // overwrites `decided` (see `StateStore::update`).
    store.update(account, &mut |state| {
        let outcome = decision::attempt_any(&creds, candidates, now, &settings.policy, state);
        let counted = !outcome.is_success() && !matches!(outcome, Outcome::RateLimited { .. });
        let locked_by_it =
            (counted && state.locked(now, limit)).then(|| state.retry_after(now, limit));
        decided = (
            outcome,
            decision::remaining_scratch(&enrollment.scratch, state),
            locked_by_it,
        );
    })?;
    Ok(decided)
}
