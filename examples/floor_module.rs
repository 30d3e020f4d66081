//! Benchmark aid (not shipped, not a test): the least a TOTP module built
//! from this project's stack weighs and costs (issue 17).
//!
//! A PAM module of the standard library and the crates pam_totp.so links
//! for a TOTP login (pamsm, toml's parser, totp-rs, base32, subtle, nix),
//! doing what pam_google_authenticator's default configuration does on a
//! login and nothing more: look the user up, read one secret file, ask for
//! the code, compare it with the codes of three steps, log one line. No
//! state, no replay protection, no rate limit, no scratch codes, no
//! sealed secrets, no fleet, no options beyond `secret=`: it keeps none
//! of the module's promises, so it is a lower bound, not an alternative.
//! Never install it.
//!
//! `login_cost --floor PATH` loads it from a copy on disk with the
//! arguments of our module's "ours" service (it reads `secret=`, with
//! `${USER}`, and ignores the rest) and times a right and a wrong code
//! interleaved with every other case. Built as the module ships
//! (docs/benchmarks.md, "The floor of the stack"):
//!
//! ```text
//! RUSTFLAGS="$(scripts/dist-rustflags . target)" cargo rustc --profile dist \
//!     --locked --no-default-features --example floor_module --target-dir target \
//!     -- -C linker=$PWD/scripts/link-static-unwind
//! # -> target/dist/examples/libfloor_module.so
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{SystemTime, UNIX_EPOCH};

use pamsm::{LogLvl, Pam, PamError, PamFlags, PamLibExt, PamMsgStyle, PamServiceModule};
use subtle::ConstantTimeEq;
use toml::de::{DeTable, DeValue};
use zeroize::Zeroizing;

struct FloorModule;

impl PamServiceModule for FloorModule {
    fn authenticate(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        // pamsm's hooks do not catch a panic; this one must not unwind
        // into the login application either.
        catch_unwind(AssertUnwindSafe(|| login(&pamh, &args))).unwrap_or(PamError::AUTH_ERR)
    }

    fn setcred(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::SUCCESS
    }
}

fn login(pamh: &Pam, args: &[String]) -> PamError {
    let user = match pamh.get_user(None) {
        Ok(Some(u)) => match u.to_str() {
            Ok(u) => u.to_owned(),
            Err(_) => return PamError::USER_UNKNOWN,
        },
        _ => return PamError::USER_UNKNOWN,
    };
    // The account, as every module that keeps files per user looks it up.
    if !matches!(nix::unistd::User::from_name(&user), Ok(Some(_))) {
        return PamError::USER_UNKNOWN;
    }
    let Some(path) = args.iter().find_map(|a| a.strip_prefix("secret=")) else {
        return PamError::SERVICE_ERR;
    };
    let Some(key) = read_key(&path.replace("${USER}", &user)) else {
        return PamError::AUTH_ERR;
    };
    let code = match pamh.conv(Some("Verification code: "), PamMsgStyle::PROMPT_ECHO_OFF) {
        // pamsm neither frees nor wipes the reply; the copy is wiped.
        Ok(Some(c)) => Zeroizing::new(c.to_bytes().to_vec()),
        _ => return PamError::CONV_ERR,
    };
    let totp = totp_rs::Builder::new()
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(0)
        .with_secret(key.to_vec())
        .build_noncompliant();
    let step = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 30);
    let mut right = false;
    for s in step.saturating_sub(1)..=step + 1 {
        let expected = Zeroizing::new(totp.generate(s * 30).to_string());
        right |= bool::from(expected.as_bytes().ct_eq(&code));
    }
    let verdict = if right { "accepted" } else { "refused" };
    let _ = pamh.syslog(
        LogLvl::NOTICE,
        &format!("floor_module: code {verdict} for user {user:?}"),
    );
    if right {
        PamError::SUCCESS
    } else {
        PamError::AUTH_ERR
    }
}

/// The key of a secret file of ours (`secret = "BASE32"`).
fn read_key(path: &str) -> Option<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(std::fs::read_to_string(path).ok()?);
    let table = DeTable::parse(&text).ok()?;
    let secret = table
        .get_ref()
        .iter()
        .find_map(|(k, v)| match v.get_ref() {
            DeValue::String(s) if k.get_ref() == "secret" => Some(Zeroizing::new(s.to_string())),
            _ => None,
        })?;
    let alphabet = base32::Alphabet::Rfc4648 { padding: false };
    base32::decode(alphabet, &secret).map(Zeroizing::new)
}

pamsm::pam_module!(FloorModule);
