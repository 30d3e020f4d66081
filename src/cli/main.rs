//! `pam-totp`: enrolls users in the pam_totp.so second factor (QR code,
//! otpauth URI, scratch codes) and lets an administrator inspect, unlock,
//! reset and disable them. See `pam-totp --help` and docs/cli.md.
//!
//! The rooms of the tool:
//! - `args`: the command line, parsed into typed values once;
//! - `access`: who may act on whom, and where the files are (shared rules);
//! - `secret_file`: what is on disk at a secret file's path, and writing it;
//! - `cmd`: one file per subcommand, over the `pam_totp` library;
//! - `output`: URI, QR code, text and JSON, and standard output;
//! - `error`: why a command stopped, its exit status and its one line.
#![forbid(unsafe_code)]

mod access;
mod args;
mod cmd;
mod error;
mod notify;
mod output;
mod secret_file;
mod tls;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pam-totp: {e}");
            e.exit_code()
        }
    }
}
