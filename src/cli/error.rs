//! Why a command stopped: one enum for the whole tool. Each variant says,
//! in one place below, which exit status it ends with (2: bad input,
//! nothing written; 1: the work itself failed) and which one line goes to
//! standard error after "pam-totp: ". No secret or code is ever a field.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use pam_totp::config::ConfigError;
use pam_totp::enrollment::{FormatError, SerializeError};
use pam_totp::files::ReadError;
use pam_totp::google::GoogleError;
use pam_totp::otp::ParamError;
use pam_totp::otpauth::UriError;
use pam_totp::seal::SealError;
use pam_totp::state::StateError;
use pam_totp::verify::Refusal;

/// Exit status for bad input: usage, values, users, paths, permissions.
pub const EXIT_INPUT: u8 = 2;
/// Exit status when the work itself failed (I/O, no confirmation, a problem
/// found by `status`).
pub const EXIT_FAILED: u8 = 1;

pub type Result<T> = std::result::Result<T, CliError>;

/// Why a path is not taken for a secret file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotSecret {
    NotRegular,
    NotOurs,
}

/// Why a file given to `import-google-authenticator` is not Google's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotGoogle {
    AlreadyNative,
    NoSecretLine,
}

#[derive(Debug)]
pub enum CliError {
    // Who: the caller and the user acted on.
    CallerLookup {
        uid: u32,
        err: io::Error,
    },
    CallerUnknown {
        uid: u32,
    },
    /// `--user` names another account, and the caller is not root.
    AnotherUser {
        name: String,
    },
    NoSuchUser {
        name: String,
    },
    UserLookup {
        name: String,
        err: io::Error,
    },
    /// The account's canonical name did not resolve (the library's reason).
    Account(String),
    ListAccounts(io::Error),
    /// Root only: what the caller tried, and why only root may.
    ResetRootOnly {
        dir: PathBuf,
    },
    HostKeyRootOnly {
        verb: &'static str,
    },

    // Where: configuration, paths, destinations.
    Config(ConfigError),
    SecretFileRootOnly,
    SecretFilePath {
        path: PathBuf,
        err: io::Error,
    },
    /// The config file's `secret` template (the library's reason).
    SecretTemplate(String),
    NotAFilePath {
        path: PathBuf,
    },
    OutsideHome {
        path: PathBuf,
    },
    Identity {
        path: PathBuf,
        err: io::Error,
    },
    CannotUse {
        path: PathBuf,
        err: io::Error,
    },
    NotReplacing {
        path: PathBuf,
        why: NotSecret,
    },
    NotRemoving {
        path: PathBuf,
        why: NotSecret,
    },
    AlreadyEnrolled {
        user: String,
        path: PathBuf,
    },
    DirNotDir {
        path: PathBuf,
        dir: PathBuf,
    },
    DirUnusable {
        path: PathBuf,
        dir: PathBuf,
        err: io::Error,
    },
    NotWritable {
        path: PathBuf,
        err: io::Error,
    },
    AppearedMeanwhile {
        path: PathBuf,
    },
    OnlyRootCanSee {
        path: PathBuf,
    },

    // Secret files: reading, writing, their content.
    Write {
        path: PathBuf,
        err: io::Error,
    },
    Remove {
        path: PathBuf,
        err: io::Error,
    },
    ReadSecret {
        path: PathBuf,
        err: ReadError,
    },
    Format {
        path: PathBuf,
        err: FormatError,
    },
    NotNative {
        path: PathBuf,
    },
    Serialize {
        path: PathBuf,
        err: SerializeError,
    },
    ReadBack {
        path: PathBuf,
        err: ReadError,
    },
    ReadBackParse {
        path: PathBuf,
        err: FormatError,
    },
    NotEnrolled {
        user: String,
        path: PathBuf,
    },
    GoogleNotRewritten {
        path: PathBuf,
    },
    NeedRegenerate,

    // The new secret and its presentation.
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

    // Sealing and the host key pair.
    Seal(SealError),
    HostPubUnusable(SealError),
    HostKeyUnusable {
        err: SealError,
        public: PathBuf,
    },
    /// host.pub is not host.key's public key: found before sealing (2), or
    /// after writing the pair (1).
    PairMismatch {
        public: PathBuf,
        key: PathBuf,
    },
    WrittenPairMismatch {
        public: PathBuf,
        key: PathBuf,
    },
    HostKey(SealError),
    HostKeyInput(SealError),
    NoHostKey(SealError),
    BadHostKeyPath {
        path: PathBuf,
    },
    KeyDirUnreadable {
        dir: PathBuf,
        err: io::Error,
    },
    KeyDirNotDir {
        dir: PathBuf,
    },
    KeyDirUnsafe {
        dir: PathBuf,
        uid: u32,
        mode: u32,
    },
    KeyDirOpen {
        dir: PathBuf,
        err: io::Error,
    },
    KeyBusy {
        dir: PathBuf,
    },
    KeyLock {
        dir: PathBuf,
        err: nix::errno::Errno,
    },
    CreateDir {
        dir: PathBuf,
        err: io::Error,
    },
    KeyAppeared {
        path: PathBuf,
    },
    PubWithoutKey {
        public: PathBuf,
        key: PathBuf,
    },
    KeyExists {
        key: PathBuf,
    },
    Probe {
        path: PathBuf,
        err: io::Error,
    },
    ReadDir {
        dir: PathBuf,
        err: io::Error,
    },

    // import-google-authenticator
    GooglePath {
        path: PathBuf,
        err: io::Error,
    },
    NothingToImport {
        from: String,
    },
    GoogleUnreadable {
        from: String,
        err: ReadError,
    },
    NotGoogle {
        from: String,
        why: NotGoogle,
    },
    GoogleParse {
        from: String,
        err: GoogleError,
    },
    GoogleHotp {
        from: String,
        file_name: &'static str,
    },
    GoogleTooManyScratch {
        from: String,
        n: usize,
        max: usize,
    },
    GoogleFormat {
        from: String,
        err: FormatError,
    },
    ImportOntoItself {
        path: PathBuf,
    },

    // The login state.
    State(StateError),
}

impl CliError {
    /// The exit status of each variant: 2 when the input was refused before
    /// anything was written, 1 when the work itself failed.
    pub fn exit_status(&self) -> u8 {
        use CliError::*;
        match self {
            AnotherUser { .. }
            | NoSuchUser { .. }
            | ResetRootOnly { .. }
            | HostKeyRootOnly { .. }
            | Config(_)
            | SecretFileRootOnly
            | SecretFilePath { .. }
            | SecretTemplate(_)
            | NotAFilePath { .. }
            | OutsideHome { .. }
            | CannotUse { .. }
            | NotReplacing { .. }
            | NotRemoving { .. }
            | AlreadyEnrolled { .. }
            | DirNotDir { .. }
            | DirUnusable { .. }
            | NotWritable { .. }
            | AppearedMeanwhile { .. }
            | OnlyRootCanSee { .. }
            | NotEnrolled { .. }
            | GoogleNotRewritten { .. }
            | NeedRegenerate
            | ShortSecret { .. }
            | SecretStdin(_)
            | SecretNotBase32
            | SecretParams(_)
            | NameHoldsColon { .. }
            | EnrollUri(_)
            | HostPubUnusable(_)
            | HostKeyUnusable { .. }
            | PairMismatch { .. }
            | HostKeyInput(_)
            | NoHostKey(_)
            | BadHostKeyPath { .. }
            | KeyDirUnreadable { .. }
            | KeyDirNotDir { .. }
            | KeyDirUnsafe { .. }
            | KeyAppeared { .. }
            | PubWithoutKey { .. }
            | KeyExists { .. }
            | GooglePath { .. }
            | NothingToImport { .. }
            | GoogleUnreadable { .. }
            | NotGoogle { .. }
            | GoogleParse { .. }
            | GoogleHotp { .. }
            | GoogleTooManyScratch { .. }
            | GoogleFormat { .. }
            | ImportOntoItself { .. } => EXIT_INPUT,
            CallerLookup { .. }
            | CallerUnknown { .. }
            | UserLookup { .. }
            | Account(_)
            | ListAccounts(_)
            | Identity { .. }
            | Write { .. }
            | Remove { .. }
            | ReadSecret { .. }
            | Format { .. }
            | NotNative { .. }
            | Serialize { .. }
            | ReadBack { .. }
            | ReadBackParse { .. }
            | ImportUri(_)
            | Qr(_)
            | Json(_)
            | Stdout(_)
            | Random(_)
            | ReadCode(_)
            | NotConfirmed
            | ConfirmNotRecorded { .. }
            | Seal(_)
            | WrittenPairMismatch { .. }
            | HostKey(_)
            | KeyDirOpen { .. }
            | KeyBusy { .. }
            | KeyLock { .. }
            | CreateDir { .. }
            | Probe { .. }
            | ReadDir { .. }
            | State(_) => EXIT_FAILED,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }
}

impl fmt::Display for NotSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSecret::NotRegular => "it is not a regular file",
            NotSecret::NotOurs => "it is not a pam-totp or Google Authenticator secret file",
        })
    }
}

impl fmt::Display for NotGoogle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotGoogle::AlreadyNative => "it is already in pam-totp's own format",
            NotGoogle::NoSecretLine => "its first line is not a base32 secret",
        })
    }
}

/// The one line each variant prints (after "pam-totp: ").
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CliError::*;
        match self {
            CallerLookup { uid, err } => write!(f, "cannot look up uid {uid}: {err}"),
            CallerUnknown { uid } => write!(f, "uid {uid} has no account (passwd entry)"),
            AnotherUser { name } => {
                write!(f, "only root may name another user (--user {name:?})")
            }
            NoSuchUser { name } => write!(f, "no such user: {name:?}"),
            UserLookup { name, err } => write!(f, "cannot look up user {name:?}: {err}"),
            Account(why) => f.write_str(why),
            ListAccounts(err) => write!(f, "cannot list the accounts (getpwent): {err}"),
            ResetRootOnly { dir } => write!(
                f,
                "only root can reset: the state directory {} is root's",
                dir.display()
            ),
            HostKeyRootOnly { verb } => write!(
                f,
                "only root can {verb} the host key: the private key is root's"
            ),
            Config(err) => write!(f, "{err}"),
            SecretFileRootOnly => f.write_str(
                "only root may choose --secret-file (yours follows the config file, by default ~/.pam_totp)",
            ),
            SecretFilePath { path, err } => write!(f, "--secret-file {}: {err}", path.display()),
            SecretTemplate(why) => write!(f, "config `secret`: {why}"),
            NotAFilePath { path } => write!(f, "{} is not a file path", path.display()),
            OutsideHome { path } => write!(
                f,
                "{} is outside your home directory; only root can change it (ask an administrator)",
                path.display()
            ),
            Identity { path, err } | ReadDir { dir: path, err } | Probe { path, err } => {
                write!(f, "{}: {err}", path.display())
            }
            CannotUse { path, err } => write!(f, "cannot use {}: {err}", path.display()),
            NotReplacing { path, why } => write!(
                f,
                "{} exists and {why}; not replacing it (remove it yourself if it should go)",
                path.display()
            ),
            NotRemoving { path, why } => write!(
                f,
                "{} exists but {why}; not removing it (remove it yourself if it should go)",
                path.display()
            ),
            AlreadyEnrolled { user, path } => write!(
                f,
                "{user} is already enrolled ({} exists); use --force to replace it",
                path.display()
            ),
            DirNotDir { path, dir } => write!(
                f,
                "cannot write {}: {} is not a directory",
                path.display(),
                dir.display()
            ),
            DirUnusable { path, dir, err } => write!(
                f,
                "cannot write {}: {}: {err}",
                path.display(),
                dir.display()
            ),
            NotWritable { path, err } | Write { path, err } => {
                write!(f, "cannot write {}: {err}", path.display())
            }
            AppearedMeanwhile { path } => write!(
                f,
                "{} appeared meanwhile; use --force to replace it",
                path.display()
            ),
            OnlyRootCanSee { path } => write!(
                f,
                "cannot read {}: permission denied (only root can see this enrollment)",
                path.display()
            ),
            Remove { path, err } => write!(f, "cannot remove {}: {err}", path.display()),
            ReadSecret { path, err } => write!(f, "{}: {err}", path.display()),
            Format { path, err } => write!(f, "{}: {err}", path.display()),
            NotNative { path } => write!(f, "{}: not a native secret file", path.display()),
            Serialize { path, err } => write!(f, "not writing {}: {err}", path.display()),
            ReadBack { path, err } => write!(f, "wrote {} but it {err}", path.display()),
            ReadBackParse { path, err } => {
                write!(f, "wrote {} but it does not parse: {err}", path.display())
            }
            NotEnrolled { user, path } => write!(
                f,
                "{user} is not enrolled ({} does not exist)",
                path.display()
            ),
            GoogleNotRewritten { path } => write!(
                f,
                "{} is in Google Authenticator's format, which pam-totp does not rewrite; \
                 enroll anew with --force",
                path.display()
            ),
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
            Seal(err) => write!(f, "cannot seal the secret: {err}"),
            HostPubUnusable(err) => write!(f, "{err}; fix the host key pair, or use --no-seal"),
            HostKeyUnusable { err, public } => write!(
                f,
                "{err}, so the module could not open a secret sealed to {}; \
                 fix the host key pair (pam-totp host-key init), or use --no-seal",
                public.display()
            ),
            PairMismatch { public, key } | WrittenPairMismatch { public, key } => write!(
                f,
                "{} does not match {}; remove it and run `pam-totp host-key init --if-missing`",
                public.display(),
                key.display()
            ),
            HostKey(err) | HostKeyInput(err) => write!(f, "{err}"),
            NoHostKey(err) => write!(
                f,
                "{err}: there is no host key to rotate (`pam-totp host-key init` creates one)"
            ),
            BadHostKeyPath { path } => write!(
                f,
                "{} cannot be the host key: host.pub goes beside it with the extension .pub",
                path.display()
            ),
            KeyDirUnreadable { dir, err } | KeyDirOpen { dir, err } => {
                write!(f, "{}: {err}", dir.display())
            }
            KeyDirNotDir { dir } => write!(f, "{} is not a directory", dir.display()),
            KeyDirUnsafe { dir, uid, mode } => write!(
                f,
                "{} must be a directory owned by root that only root can write to \
                 (is uid {uid}, mode {mode:04o}): whoever can change it can replace the host key",
                dir.display()
            ),
            KeyBusy { dir } => write!(
                f,
                "another `pam-totp host-key` command is changing the host key in {}; \
                 nothing was done: run this again when it has finished",
                dir.display()
            ),
            KeyLock { dir, err } => write!(f, "cannot lock {}: {err}", dir.display()),
            CreateDir { dir, err } => write!(f, "cannot create {}: {err}", dir.display()),
            KeyAppeared { path } => write!(
                f,
                "{} appeared meanwhile; not replacing it",
                path.display()
            ),
            PubWithoutKey { public, key } => write!(
                f,
                "{} exists without {}: secrets sealed to it cannot be opened; \
                 remove it, or use --force",
                public.display(),
                key.display()
            ),
            KeyExists { key } => write!(
                f,
                "{} exists; --force replaces the key pair, and secrets sealed to it then \
                 no longer open (`pam-totp host-key rotate` changes the key and re-seals them)",
                key.display()
            ),
            GooglePath { path, err } => write!(f, "{}: {err}", path.display()),
            NothingToImport { from } => write!(f, "{from}: no such file, nothing to import"),
            GoogleUnreadable { from, err } => write!(f, "{from}: {err}"),
            NotGoogle { from, why } => {
                write!(f, "{from} is not a Google Authenticator file: {why}")
            }
            GoogleParse { from, err } => write!(f, "{from}: {err}"),
            GoogleHotp { from, file_name } => write!(
                f,
                "{from} is counter-based (HOTP_COUNTER), which pam-totp's own format cannot hold; \
                 leave it as it is and point the module's secret= at it (for example \
                 secret=${{HOME}}/{file_name}): it is read in place, the counter kept in \
                 pam-totp's state"
            ),
            GoogleTooManyScratch { from, n, max } => write!(
                f,
                "{from} has {n} scratch codes; pam-totp keeps at most {max}"
            ),
            GoogleFormat { from, err } => write!(f, "{from}: {err}"),
            ImportOntoItself { path } => write!(
                f,
                "{} is the Google Authenticator file itself, which is never rewritten; import it \
                 to another path (the config file's `secret`, by default ~/.pam_totp, or \
                 --secret-file)",
                path.display()
            ),
            State(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_2_and_failure_is_1() {
        assert_eq!(CliError::NeedRegenerate.exit_status(), EXIT_INPUT);
        assert_eq!(CliError::NotConfirmed.exit_status(), EXIT_FAILED);
        let e = CliError::AlreadyEnrolled {
            user: "alice".into(),
            path: "/home/alice/.pam_totp".into(),
        };
        assert_eq!(
            e.to_string(),
            "alice is already enrolled (/home/alice/.pam_totp exists); use --force to replace it"
        );
    }
}
