//! A new secret and how it is shown: `enroll`, `scratch-codes`, the output.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use pam_totp::core::otp::ParamError;
use pam_totp::secret::otpauth::UriError;
use pam_totp::state::model::Refusal;

use super::{EXIT_FAILED, EXIT_INPUT};

#[derive(Debug)]
pub enum EnrollError {
    NeedRegenerate,
    ShortSecret {
        what: String,
        bits: usize,
        min_bits: usize,
    },
    SecretStdin(io::Error),
    SecretNotBase32,
    SecretParams(ParamError),
    NameHoldsColon {
        name: String,
    },
    EnrollUri(UriError),
    ImportUri(UriError),
    Qr(qrcode::types::QrError),
    Json(serde_json::Error),
    Stdout(io::Error),
    Random(getrandom::Error),
    ReadCode(io::Error),
    NotConfirmed,
    /// The confirmed code's step could not be spent in the state.
    ConfirmNotRecorded {
        path: PathBuf,
        why: Refusal,
    },
}

impl EnrollError {
    /// 2: refused before anything was written; 1: the work failed.
    pub fn exit_status(&self) -> u8 {
        use EnrollError::*;
        match self {
            NeedRegenerate
            | ShortSecret { .. }
            | SecretStdin(_)
            | SecretNotBase32
            | SecretParams(_)
            | NameHoldsColon { .. }
            | EnrollUri(_) => EXIT_INPUT,
            ImportUri(_)
            | Qr(_)
            | Json(_)
            | Stdout(_)
            | Random(_)
            | ReadCode(_)
            | NotConfirmed
            | ConfirmNotRecorded { .. } => EXIT_FAILED,
        }
    }
}

impl fmt::Display for EnrollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use EnrollError::*;
        match self {
            NeedRegenerate => f.write_str(
                "scratch codes are stored only as hashes and cannot be shown again; \
                 --regenerate replaces them with new ones",
            ),
            ShortSecret {
                what,
                bits,
                min_bits,
            } => write!(
                f,
                "{what} is {bits} bits; a new secret must have at least {min_bits} (RFC 4226); \
                 for a hardware token with a fixed shorter key, add --allow-short-secret"
            ),
            SecretStdin(err) => write!(f, "--secret -: cannot read standard input: {err}"),
            SecretNotBase32 => f.write_str(
                "--secret is not base32 (letters A-Z and digits 2-7; spaces and = padding are fine)",
            ),
            SecretParams(err) => write!(f, "--secret: {err}"),
            NameHoldsColon { name } => write!(
                f,
                "user name {name:?} holds ':', which a label cannot; give --label"
            ),
            EnrollUri(err) => write!(
                f,
                "cannot make the otpauth URI: {err}; give --issuer or --label"
            ),
            ImportUri(err) => write!(f, "cannot make the otpauth URI: {err}"),
            Qr(err) => write!(f, "cannot make a QR code of the URI: {err}"),
            Json(err) => write!(f, "cannot write the JSON output: {err}"),
            Stdout(err) => write!(f, "cannot write to standard output: {err}"),
            Random(err) => write!(f, "no random numbers from the OS: {err}"),
            ReadCode(err) => write!(f, "cannot read the code: {err}"),
            NotConfirmed => f.write_str(
                "no right code was typed; nothing was saved (scripts: use --no-confirm)",
            ),
            ConfirmNotRecorded { path, why } => write!(
                f,
                "cannot record the confirmation code: {}: {why}",
                path.display()
            ),
        }
    }
}
