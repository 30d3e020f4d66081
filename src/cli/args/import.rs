//! `pam-totp import-google-authenticator`'s arguments.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Args;

use super::{SecretFileArg, UserArgs};

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,

    /// The Google Authenticator file, only read [default: the user's
    /// ~/.google_authenticator].
    #[arg(value_name = "FILE")]
    pub google_file: Option<PathBuf>,

    /// Replace an existing enrollment.
    #[arg(long)]
    pub force: bool,

    /// Import a secret shorter than 128 bits (an 80-bit one, as older
    /// versions of google-authenticator wrote). Refused otherwise: enroll
    /// anew instead (RFC 4226 R6).
    #[arg(long)]
    pub allow_short_secret: bool,

    /// Store the secret in the clear even though the host key pair exists
    /// (by default it is sealed to host.pub, which only root can open).
    #[arg(long)]
    pub no_seal: bool,

    /// Print {"user","secret_file","secret","otpauth_uri","scratch_codes",
    /// "imported_from"} on standard output once saved.
    #[arg(long)]
    pub json: bool,
}
