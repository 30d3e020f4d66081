//! The command line: subcommands and options (see docs/cli.md), parsed
//! into typed values once, here. Values that can be checked without the
//! system (digits, period, algorithm, names) are checked by clap with the
//! library's own rules (`values`); the rest (users, paths, the secret) by
//! `access` and the subcommands.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};

use pam_totp::core::otp::Algorithm;
use pam_totp::core::policy::RateLimit;

use crate::error::EXIT_INPUT;

mod host_key;
mod import;
mod keys;
mod report;
mod values;

pub use host_key::{
    HostKeyCommand, HostKeyExportArgs, HostKeyImportArgs, HostKeyInitArgs, HostKeyPath,
    HostKeyRotateArgs,
};
pub use import::ImportArgs;
pub use keys::RemoveKeyArgs;
pub use report::{ReportArgs, ReportFilter};

use values::{
    absolute_path, algorithm, digits, key_name, label_part, period, rate_limit, scratch_count,
};

const EXIT_STATUS_HELP: &str = "\
Exit status: 0 done; 1 the work failed (an I/O error, no code confirmed, or
`status` or `report` found a problem); 2 bad input (an option, a user, a path, a
permission), with nothing written. Messages and prompts go to standard
error; data (and JSON) to standard output.";

#[derive(Parser, Debug)]
#[command(
    name = "pam-totp",
    version,
    about = "Enroll users in pam_totp.so (TOTP second factor) and administer their enrollment",
    after_help = EXIT_STATUS_HELP,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a user's secret: QR code, secret and scratch codes, then a code to confirm.
    #[command(
        long_about = "\
Create a user's secret file: a new random 160-bit secret (or --secret, of at
least 128 bits unless --allow-short-secret), shown
as a QR code of its otpauth:// URI, as text in groups of four, with scratch
codes shown this once (only their salted hashes are stored). Then it asks for
a code from the app and saves only after a right one (unless --no-confirm).

The file is written atomically, mode 0600, never through a symlink. Where it
goes: --secret-file, else the `secret` template of the config file (default
~/.pam_totp). A file under the user's home is written with the user's
identity and owned by the user; one elsewhere (for example
/var/lib/pam-totp/secrets/${USER}) is owned by root. Its directory must exist.
An existing enrollment is replaced only with --force, and only if it is a
secret file (or a symlink, which is replaced, not followed). The state kept by
the module (failed attempts, used codes) is left as it is; see `reset`.

A user who is not root may enroll only themself, to a secret file under their
home directory.

--secret-file - writes no file: the secret file's text (sealed when the host
key pair exists) goes to standard output once confirmed, for a central store
(`pam-totp enroll --user alice --secret-file - | ldapmodify ...`); the QR
code, the secret, the scratch codes and the prompt go to standard error. As
with a file, root marks the confirmation code as used in the user's state.

--add NAME adds a key for another device (a backup phone, a hardware token)
to the user's existing native secret file instead: a new secret under that
name, confirmed the same way, sealed the same way; the other keys and the
scratch codes are kept. Refused for a name the file has, a Google
Authenticator file (one key only) or no enrollment. A code of any key logs in.",
        after_help = EXIT_STATUS_HELP
    )]
    Enroll(EnrollArgs),

    /// Show a user's enrollment and login state (failed attempts, lockout).
    #[command(
        long_about = "\
Show whether a user is enrolled, the code parameters, the scratch codes left,
the failed attempts since the last successful login and whether the rate
limit locks the user out now. The state is read from the state directory
(--state-dir, else the config file's `state_dir`, else /var/lib/pam-totp/state),
as the module writes it.

`locked` is judged with --rate-limit, else the config file's `rate_limit`,
else 3/30 (made stricter by a Google Authenticator file's own limit, as the
module does); if pam.d sets rate_limit= differently, put it in the config
file or pass --rate-limit.

A user who is not root may ask about themself only. The state directory is
root's: for them, scratch_codes_remaining, failed_attempts and locked are
unknown (null in JSON) and a note says so.

If the secret file is there but unusable (unsafe owner or mode, malformed),
or the state file is corrupt (the module then denies; run `pam-totp reset`),
the status is still printed, the problem goes to standard error, and the
exit status is 1.

--secret-file - reads the secret file's text from standard input (what a
central store holds) and judges it as the module would; empty input is
\"not enrolled\".",
        after_help = EXIT_STATUS_HELP
    )]
    Status(StatusArgs),

    /// Replace a user's scratch codes with new ones (--regenerate).
    #[command(
        name = "scratch-codes",
        long_about = "\
Replace all of a user's scratch codes with new ones, shown this once; the old
ones stop working. Scratch codes are stored only as salted hashes, so they
can never be shown again: --regenerate is required. The secret and the code
parameters are kept. Files in Google Authenticator's format are not
rewritten (enroll anew with --force instead).",
        after_help = EXIT_STATUS_HELP
    )]
    ScratchCodes(ScratchArgs),

    /// Clear a user's failed attempts and lockout (keeps the secret).
    #[command(
        long_about = "\
Clear a user's failed attempts and lockout, so they can log in again at once.
The secret file is not touched. What keeps codes from being used twice (the
last accepted time step, the scratch codes already used) is kept, so nothing
used becomes valid again. A corrupt state file, which makes the module deny
every login, is removed; scratch codes used before may then work once more,
so consider `pam-totp scratch-codes --regenerate`.

Only root can reset: the state directory is root's.",
        after_help = EXIT_STATUS_HELP
    )]
    Reset(ResetArgs),

    /// Remove a user's enrollment: the secret file and the login state.
    #[command(
        long_about = "\
Remove a user's secret file and their state (failed attempts, used codes).
Without a secret file the module asks for a code anyway and denies, unless
pam.d says nullok. Only a secret file (or a symlink, which is removed, not
followed) is removed; anything else at that path is left for you to look at.
Disabling a user who is not enrolled is not an error.

A user who is not root may disable only themself, and only a secret file under
their home directory; the state directory is root's, so their state is left
(it is harmless, and root's `reset` or `disable` clears it).",
        after_help = EXIT_STATUS_HELP
    )]
    Disable(DisableArgs),

    /// Every account at once: who is enrolled, locked, low on scratch codes (root only).
    #[command(long_about = report::LONG_ABOUT, after_help = EXIT_STATUS_HELP)]
    Report(ReportArgs),

    /// Remove one key (device) from a user's secret file; never the last one.
    #[command(name = "remove-key", long_about = keys::REMOVE_KEY_HELP, after_help = EXIT_STATUS_HELP)]
    RemoveKey(RemoveKeyArgs),

    /// Convert a Google Authenticator file to pam-totp's format (the original is left as it is).
    #[command(
        name = "import-google-authenticator",
        long_about = "\
Convert a user's Google Authenticator file (by default ~/.google_authenticator,
as google-authenticator(1) writes it) to pam-totp's own format, and write it
where and as `enroll` would: --secret-file, else the config file's `secret`
template (default ~/.pam_totp); atomically, mode 0600, the user's own under
their home; sealed when the host key pair exists (unless --no-seal); an
existing enrollment replaced only with --force. The user keeps the same app
account and the same scratch codes.

Carried over: the secret (a legacy one shorter than 128 bits only with
--allow-short-secret), STEP_SIZE as the period,
and the scratch codes, stored as salted hashes; one already used while
pam_totp.so read the Google file in place stays used. Not carried over:
WINDOW_SIZE and RATE_LIMIT (the module's window= and rate_limit= apply; a note
says so when the file's were stricter) and the steps DISALLOW_REUSE lists.

The Google file is only read, never changed, so switching back to
pam_google_authenticator stays possible. It must be safe as a secret file
(owned by the user or root, no access for group or others, not a symlink). A
counter-based (HOTP) file is refused, as pam-totp's format has no counter:
point the module's secret= at it instead, which reads it in place and keeps
the counter in its state.

A user who is not root may import only their own file, into their home.
--secret-file - prints the converted text on standard output and writes no
file.",
        after_help = EXIT_STATUS_HELP
    )]
    ImportGoogleAuthenticator(ImportArgs),

    /// Create, rotate, export or import the host key pair that seals secrets (root only).
    #[command(
        name = "host-key",
        subcommand,
        long_about = "\
The host key pair seals secrets: with host.pub present, `enroll` encrypts
the secret to it, so the secret file is of no use to anyone but root (the
module inside sshd, sudo, su, login), and only for its user. host.key is
root's (0600); host.pub is readable by all (0644), so users enroll
themselves. The pair's place is --host-key, else the config file's
`host_key`, else /etc/pam-totp/host.key (and host.pub beside it)."
    )]
    HostKey(HostKeyCommand),
}

/// Whose enrollment, and which configuration.
#[derive(Args, Debug)]
pub struct UserArgs {
    /// The user to act on [default: you]. Only root may name another user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// The config file to read `secret`, `state_dir` and `rate_limit` from
    /// [default: /etc/pam-totp/config.toml, if it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SecretFileArg {
    /// The user's secret file (root only) [default: the config file's
    /// `secret` template, else ~/.pam_totp]. `-` is standard output for
    /// enroll and import-google-authenticator (the file's text is printed,
    /// nothing is written), standard input for status.
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
}

impl SecretFileArg {
    /// `--secret-file -`: the secret file's text on standard output (or,
    /// for `status`, input) instead of a file.
    pub fn is_stdio(&self) -> bool {
        self.secret_file.as_deref() == Some(Path::new("-"))
    }
}

#[derive(Args, Debug)]
pub struct StateDirArg {
    /// The module's state directory, as state_dir= in pam.d [default: the
    /// config file's `state_dir`, else /var/lib/pam-totp/state].
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub state_dir: Option<PathBuf>,

    /// The fleet's state server, as state= in pam.d (redis://, rediss://,
    /// redis+unix://, valkey...) [default: the config file's `state`; when
    /// neither is set, the state directory].
    #[arg(long, value_name = "URL")]
    pub state: Option<String>,

    /// The state server's credentials file (username, password; root's,
    /// mode 0600), as state_credentials= [default: the config file's
    /// `state_credentials`].
    #[arg(long, value_name = "PATH", value_parser = absolute_path)]
    pub state_credentials: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EnrollArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,

    /// The issuer the app shows (label prefix and issuer= parameter)
    /// [default: this host's name].
    #[arg(long, value_name = "ISSUER", value_parser = label_part)]
    pub issuer: Option<String>,

    /// The account name the app shows, after "ISSUER:" [default: USER@HOST].
    #[arg(long, value_name = "LABEL", value_parser = label_part)]
    pub label: Option<String>,

    /// HMAC algorithm. Many apps ignore anything but SHA1.
    #[arg(long, value_name = "SHA1|SHA256|SHA512", default_value = "SHA1", value_parser = algorithm)]
    pub algorithm: Algorithm,

    /// Digits per code. Many apps ignore anything but 6.
    #[arg(long, value_name = "6..8", default_value = "6", value_parser = digits)]
    pub digits: u8,

    /// Seconds per code. Many apps ignore anything but 30.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = period)]
    pub period: u64,

    /// Keep an existing base32 secret instead of making a new one; `-` reads
    /// it from standard input (a secret on the command line is visible to
    /// other users in ps).
    #[arg(long, value_name = "BASE32")]
    pub secret: Option<String>,

    /// Accept a --secret shorter than 128 bits (80 at least), for a hardware
    /// token with a fixed 80-bit key. Refused otherwise (RFC 4226 R6).
    #[arg(long, requires = "secret")]
    pub allow_short_secret: bool,

    /// How many scratch codes to make (0 to 100).
    #[arg(long, value_name = "N", default_value = "5", value_parser = scratch_count)]
    pub scratch_codes: usize,

    /// How to draw the QR code.
    #[arg(long, value_name = "STYLE", value_enum, default_value_t = QrStyle::Utf8)]
    pub qr: QrStyle,

    /// Save without asking for a code from the app (for scripts).
    #[arg(long)]
    pub no_confirm: bool,

    /// Replace an existing enrollment.
    #[arg(long, conflicts_with = "add")]
    pub force: bool,

    /// Add a key named NAME (A-Z a-z 0-9 . _ -, at most 32) for another
    /// device to the existing enrollment; no new scratch codes.
    #[arg(long, value_name = "NAME", value_parser = key_name)]
    pub add: Option<String>,

    /// Store the secret in the clear even though the host key pair exists
    /// (by default it is sealed to host.pub, which only root can open).
    #[arg(long)]
    pub no_seal: bool,

    /// Print {"user","secret_file","secret","otpauth_uri","scratch_codes"} on
    /// standard output once saved; the QR code and the rest go to standard
    /// error, and only when a code is to be confirmed. With --secret-file -,
    /// also "secret_file_text" (the file's text).
    #[arg(long)]
    pub json: bool,
}

/// How the QR code is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QrStyle {
    /// UTF-8 half blocks drawn in the text colour as the light modules: for
    /// the usual light-on-dark terminal.
    Utf8,
    /// UTF-8 half blocks with ANSI colours set for black on white: for any
    /// terminal background.
    Ansi,
    /// No QR code; the URI and the secret are still printed.
    None,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,
    #[command(flatten)]
    pub state: StateDirArg,

    /// The rate limit `locked` is judged by, as rate_limit= in pam.d
    /// [default: the config file's `rate_limit`, else 3/30].
    #[arg(long, value_name = "N/SECONDS", value_parser = rate_limit)]
    pub rate_limit: Option<RateLimit>,

    /// Print {"user","enrolled","secret_file","algorithm","digits","period",
    /// "scratch_codes_remaining","failed_attempts","locked","keys"}; unknown
    /// values are null; "keys" lists {"name","algorithm","digits","period",
    /// "sealed"}, the other parameters are the first key's.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ScratchArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,

    /// Replace the scratch codes with new ones (required: stored codes are
    /// hashed and cannot be shown).
    #[arg(long)]
    pub regenerate: bool,

    /// How many new scratch codes (0 to 100).
    #[arg(long, value_name = "N", default_value = "5", value_parser = scratch_count)]
    pub scratch_codes: usize,

    /// Print {"user","secret_file","scratch_codes"} on standard output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub state: StateDirArg,
}

#[derive(Args, Debug)]
pub struct DisableArgs {
    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,
    #[command(flatten)]
    pub state: StateDirArg,
}

/// Parses the command line. Help and version print and exit 0; any other
/// problem is one line on standard error and exit status 2.
pub fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let _ = e.print();
                Err(ExitCode::SUCCESS)
            }
            // `pam-totp` alone: the overview, on standard error.
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                Err(ExitCode::from(EXIT_INPUT))
            }
            _ => {
                eprintln!("pam-totp: {}", one_line(&e.render().to_string()));
                Err(ExitCode::from(EXIT_INPUT))
            }
        },
    }
}

/// The first line of clap's message, without its "error: " prefix, and a
/// pointer to --help in place of the usage block.
fn one_line(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    let msg = first.strip_prefix("error: ").unwrap_or(first);
    format!("{msg} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_become_one_line() {
        let e = Cli::try_parse_from(["pam-totp", "enroll", "--digits", "9"]).unwrap_err();
        let line = one_line(&e.render().to_string());
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("invalid value '9' for '--digits"),
            "{line}"
        );
    }
}
