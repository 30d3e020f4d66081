//! pam-totp: a TOTP second factor for Linux logins.
//!
//! The crate builds the PAM module (`pam_totp.so`, the cdylib) and the
//! library the `pam-totp` command-line tool uses. Layers, from pure to I/O:
//!
//! - [`otp`], [`scratch`], [`enrollment`], [`verify`]: codes, scratch-code
//!   hashes, the secret-file format, and the verification decision. Pure:
//!   time and state are passed in.
//! - [`otpauth`]: the otpauth URI authenticator apps scan, built and parsed.
//! - [`config`]: module arguments and config.toml.
//! - [`files`], [`state`]: safe opening of secret files, identities, atomic
//!   writes, the locked per-user state.
//! - [`logtext`]: log-line tokens and error text no outside value can forge.
//! - [`auth`]: one login, from arguments to a verdict, over a trait.
//! - `pam`: the libpam edge; the only module with `unsafe` code.
#![deny(unsafe_code)]

pub mod auth;
pub mod command;
pub mod config;
pub mod enrollment;
pub mod files;
pub mod fleet;
pub mod google;
pub mod logtext;
pub mod otp;
pub mod otpauth;
pub mod scratch;
pub mod seal;
pub mod secret_command;
pub mod state;
pub mod verify;

#[allow(unsafe_code)]
mod pam;
