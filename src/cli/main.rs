//! `pam-totp`: enrolls users in the pam_totp.so second factor (QR code,
//! otpauth URI, scratch codes) and lets an administrator inspect, unlock,
//! reset and disable them. See `pam-totp --help` and docs/cli.md.
//!
//! Three parts: `cli` (the command line, parsed into typed values),
//! `actions` (what each subcommand does, over the `pam_totp` library) and
//! `output` (URI, QR code, text and JSON).
#![forbid(unsafe_code)]

mod actions;
mod cli;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match actions::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pam-totp: {e}");
            e.exit_code()
        }
    }
}
