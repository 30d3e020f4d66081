//! What each subcommand does, on top of the library: who may act on whom,
//! where the secret file is, how it is written, and what the state says.
//!
//! Rules kept throughout:
//! - everything that can be refused is refused before anything is written
//!   (exit status 2, one line);
//! - a secret file under the user's home is touched only with the user's
//!   filesystem identity (`FsIdentity`), so root can do nothing there the
//!   user could not; one elsewhere is root's;
//! - files are replaced atomically and never through a symlink;
//! - secrets and codes stay in zeroizing buffers and never reach an error
//!   message.
#![forbid(unsafe_code)]

mod host_key;
mod import_google;

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::unistd::{geteuid, getuid};
use zeroize::{Zeroize, Zeroizing};

use pam_totp::config;
use pam_totp::config::Settings;
use pam_totp::core::decision;
use pam_totp::core::decision::Credentials;
use pam_totp::core::otp;
use pam_totp::core::otp::{Algorithm, OtpKey};
use pam_totp::core::scratch;
use pam_totp::core::scratch::ScratchHash;
use pam_totp::secret::enrollment;
use pam_totp::secret::enrollment::{Enrollment, Format, FormatError};
use pam_totp::secret::google;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::state::local::StateDir;
use pam_totp::state::model::UserState;
use pam_totp::state::StateError;
use pam_totp::sys::atomic;
use pam_totp::sys::identity::FsIdentity;
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::{ReadError, MAX_SECRET_FILE};
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use crate::cli::{
    Command, DisableArgs, EnrollArgs, ResetArgs, ScratchArgs, StatusArgs, UserArgs, EXIT_FAILED,
    EXIT_INPUT,
};
use crate::output::{self, EnrollView, UriParts};

/// Mode of every secret file written.
const SECRET_MODE: u32 = 0o600;
/// Bytes in a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Fewest bytes of a secret given to `enroll --secret` or imported: 128
/// bits, RFC 4226's requirement R6. Shorter ones (80-bit hardware tokens,
/// old Google Authenticator files) only with `--allow-short-secret`; the
/// module still reads files that hold them.
const MIN_NEW_SECRET_BYTES: usize = 16;

/// Refuses a secret shorter than [`MIN_NEW_SECRET_BYTES`] unless `allow`.
fn check_new_secret_length(len: usize, what: &str, allow: bool) -> Result<()> {
    if len >= MIN_NEW_SECRET_BYTES || allow {
        return Ok(());
    }
    Err(input(format!(
        "{what} is {} bits; a new secret must have at least {} (RFC 4226); for a hardware \
         token with a fixed shorter key, add --allow-short-secret",
        len * 8,
        MIN_NEW_SECRET_BYTES * 8
    )))
}

/// Why a command stopped.
#[derive(Debug)]
pub enum CliError {
    /// Bad input: an option, a user, a path, a permission. Nothing written.
    Input(String),
    /// The work itself failed.
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Input(_) => EXIT_INPUT,
            CliError::Failed(_) => EXIT_FAILED,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Input(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

fn input(msg: impl Into<String>) -> CliError {
    CliError::Input(msg.into())
}

fn failed(msg: impl Into<String>) -> CliError {
    CliError::Failed(msg.into())
}

type Result<T> = std::result::Result<T, CliError>;

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Enroll(a) => enroll(a),
        Command::Status(a) => status(a),
        Command::ScratchCodes(a) => scratch_codes(a),
        Command::Reset(a) => reset(a),
        Command::Disable(a) => disable(a),
        Command::HostKey(c) => host_key::run(c),
        Command::ImportGoogleAuthenticator(a) => import_google::run(a),
    }
}

// ---------------------------------------------------------------------------
// Who, where, with which settings.

/// The user running the tool. Root only when both the real and the
/// effective uid are 0, so a setuid copy never acts as root for a user.
struct Caller {
    root: bool,
    me: UserInfo,
}

fn caller() -> Result<Caller> {
    let uid = getuid().as_raw();
    let me = users::lookup_uid(uid)
        .map_err(|e| failed(format!("cannot look up uid {uid}: {e}")))?
        .ok_or_else(|| failed(format!("uid {uid} has no account (passwd entry)")))?;
    Ok(Caller {
        root: uid == 0 && geteuid().is_root(),
        me,
    })
}

/// The user to act on: `--user` (root, or the caller naming themself) or
/// the caller.
fn target(caller: &Caller, who: &UserArgs) -> Result<UserInfo> {
    let Some(name) = who.user.as_deref() else {
        return Ok(caller.me.clone());
    };
    let another = || input(format!("only root may name another user (--user {name:?})"));
    if !caller.root && name != caller.me.name {
        // Another spelling of the caller's own account is the caller.
        return match users::lookup_user(name) {
            Ok(Some(u)) if u.uid == caller.me.uid => Ok(u),
            _ => Err(another()),
        };
    }
    match users::lookup_user(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(input(format!("no such user: {name:?}"))),
        Err(e) => Err(failed(format!("cannot look up user {name:?}: {e}"))),
    }
}

/// The name the user's state is kept under: the account's canonical name,
/// whatever spelling `--user` gave (as the module does).
fn state_account(user: &UserInfo) -> Result<String> {
    users::canonical_name(user).map_err(|e| failed(e.to_string()))
}

/// The module's settings from the config file (the default one may be
/// absent; one named with --config must exist).
fn settings(who: &UserArgs) -> Result<Settings> {
    let args: Vec<String> = who
        .config
        .iter()
        .map(|p| format!("config={}", p.display()))
        .collect();
    config::from_args(&args, &config::read_config_file).map_err(|e| input(e.to_string()))
}

/// Where a user's secret file is, and how it is accessed.
struct Location {
    path: PathBuf,
    /// Under the user's home: accessed with the user's identity.
    as_owner: bool,
}

impl Location {
    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// The user's filesystem identity while alive, when root works in the
    /// user's home; nothing otherwise (a user acts as themself anyway).
    /// Fails if the identity could not be taken (nothing is done then).
    fn identity(&self, caller: &Caller, user: &UserInfo) -> Result<Option<FsIdentity>> {
        if !(caller.root && self.as_owner) {
            return Ok(None);
        }
        FsIdentity::assume(user.uid, user.gid)
            .map(Some)
            .map_err(|e| failed(format!("{}: {e}", self.shown())))
    }
}

fn locate(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    chosen: Option<&Path>,
) -> Result<Location> {
    let path = match chosen {
        Some(_) if !caller.root => {
            return Err(input(
                "only root may choose --secret-file (yours follows the config file, by default ~/.pam_totp)",
            ))
        }
        Some(p) => std::path::absolute(p)
            .map_err(|e| input(format!("--secret-file {}: {e}", p.display())))?,
        None => config::expand_secret(&settings.secret, user)
            .map_err(|e| input(format!("config `secret`: {e}")))?,
    };
    if path.file_name().is_none() {
        return Err(input(format!("{} is not a file path", path.display())));
    }
    Ok(Location {
        as_owner: secret_file::accessed_as_owner(user, &path),
        path,
    })
}

/// A user who is not root writes only under their own home directory.
fn require_writable(caller: &Caller, loc: &Location) -> Result<()> {
    if caller.root || loc.as_owner {
        return Ok(());
    }
    Err(input(format!(
        "{} is outside your home directory; only root can change it (ask an administrator)",
        loc.shown()
    )))
}

/// Opens sealed secrets as the module does (root only: the host key is root's).
fn unsealer<'a>(
    caller: &Caller,
    settings: &'a Settings,
    user: &'a UserInfo,
) -> Option<impl Fn(&str) -> std::result::Result<Zeroizing<Vec<u8>>, seal::SealError> + 'a> {
    caller
        .root
        .then_some(move |sealed: &str| seal::unseal(&settings.host_key, &user.name, sealed))
}

/// The host key a new secret is sealed to: host.pub when it exists (unless
/// `--no-seal`), else none (a plain secret). Decided before anything is
/// shown or written. Root also checks that host.key is there and matches,
/// so that no secret is sealed to a key the module cannot open.
fn sealing(caller: &Caller, settings: &Settings, no_seal: bool) -> Result<Option<HostPublicKey>> {
    if no_seal {
        return Ok(None);
    }
    let public_path = seal::public_path(&settings.host_key);
    match fs::symlink_metadata(&public_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let public = seal::load_public_key(&settings.host_key)
        .map_err(|e| input(format!("{e}; fix the host key pair, or use --no-seal")))?;
    if caller.root {
        let keys = seal::load_secret_keys(&settings.host_key).map_err(|e| {
            input(format!(
                "{e}, so the module could not open a secret sealed to {}; \
                 fix the host key pair (pam-totp host-key init), or use --no-seal",
                public_path.display()
            ))
        })?;
        if keys[0].public() != public {
            return Err(input(format!(
                "{} does not match {}; remove it and run `pam-totp host-key init --if-missing`",
                public_path.display(),
                settings.host_key.display()
            )));
        }
    }
    Ok(Some(public))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| failed(format!("no random numbers from the OS: {e}")))?;
    Ok(b)
}

/// This host's name (the default issuer), as gethostname() gives it.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `n` distinct new scratch codes and their salted hashes.
fn new_scratch_codes(n: usize) -> Result<(Vec<Zeroizing<String>>, Vec<ScratchHash>)> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(n);
    while codes.len() < n {
        let mut bytes = random::<32>()?;
        let code = scratch::code_from_random(bytes);
        bytes.zeroize();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let hashes = codes
        .iter()
        .map(|c| Ok(ScratchHash::new(c, random::<16>()?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((codes, hashes))
}

// ---------------------------------------------------------------------------
// Secret files on disk.

/// What is at a secret file's path now.
enum Existing {
    Nothing,
    Symlink,
    /// A regular file that is a secret file (any format, even unusable).
    SecretFile,
    /// Anything else; the reason it is not taken for a secret file.
    Other(String),
}

/// Looks at the path without following a symlink there; call it with the
/// identity the file is accessed with.
fn existing(path: &Path) -> io::Result<Existing> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        return Ok(Existing::Symlink);
    }
    if !meta.is_file() {
        return Ok(Existing::Other("it is not a regular file".into()));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(Existing::Other("it is not a regular file".into()));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    (&mut file)
        .take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)?;
    let ours = bytes.len() as u64 <= MAX_SECRET_FILE
        && (google::looks_like_google(&bytes) || SecretFile::parse(&bytes).is_ok());
    Ok(if ours {
        Existing::SecretFile
    } else {
        Existing::Other("it is not a pam-totp or Google Authenticator secret file".into())
    })
}

/// Checks, before anything is shown or written, that the secret file can
/// be created (or, with `replace`, replaced) at `loc`.
fn check_destination(
    caller: &Caller,
    user: &UserInfo,
    loc: &Location,
    replace: bool,
) -> Result<()> {
    let _id = loc.identity(caller, user)?;
    let shown = loc.shown();
    match existing(&loc.path).map_err(|e| input(format!("cannot use {shown}: {e}")))? {
        Existing::Nothing => {}
        Existing::Other(why) => {
            return Err(input(format!(
                "{shown} exists and {why}; not replacing it (remove it yourself if it should go)"
            )))
        }
        Existing::Symlink | Existing::SecretFile if !replace => {
            return Err(input(format!(
                "{} is already enrolled ({shown} exists); use --force to replace it",
                user.name
            )))
        }
        Existing::Symlink | Existing::SecretFile => {}
    }
    let dir = atomic::parent_dir(&loc.path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(input(format!(
                "cannot write {shown}: {} is not a directory",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(input(format!(
                "cannot write {shown}: {}: {e}",
                dir.display()
            )))
        }
    }
    // The one reliable test of writability (permissions, ACLs, read-only
    // mounts, the identity in force): create a file there, and remove it.
    tempfile::Builder::new()
        .prefix(".pam-totp-probe.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| input(format!("cannot write {shown}: {e}")))
}

/// Writes the secret file atomically, mode 0600: as the user under their
/// home (so it is theirs), as root elsewhere. With `seal_to` (see
/// [`sealing`]), a plaintext secret is sealed first, so the file holds only
/// `sealed_secret`. Without `replace`, an entry that appeared meanwhile is
/// left alone.
fn write_secret(
    caller: &Caller,
    user: &UserInfo,
    loc: &Location,
    file: &mut SecretFile,
    seal_to: Option<&HostPublicKey>,
    replace: bool,
) -> Result<()> {
    if let Some(key) = seal_to {
        file.seal(key, &user.name)
            .map_err(|e| failed(format!("cannot seal the secret: {e}")))?;
    }
    let text = file
        .to_toml()
        .map_err(|e| failed(format!("not writing {}: {e}", loc.shown())))?;
    let written = {
        let _id = loc.identity(caller, user)?;
        if replace {
            atomic::write_atomic(&loc.path, text.as_bytes(), SECRET_MODE)
        } else {
            atomic::write_atomic_new(&loc.path, text.as_bytes(), SECRET_MODE)
        }
    };
    written.map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => input(format!(
            "{} appeared meanwhile; use --force to replace it",
            loc.shown()
        )),
        _ => failed(format!("cannot write {}: {e}", loc.shown())),
    })?;
    // Read it back the way the module will, so a file it would refuse is
    // reported now rather than at the next login.
    let bytes = secret_file::read_secret_file(&loc.path, user, caller.root && loc.as_owner)
        .map_err(|e| failed(format!("wrote {} but it {e}", loc.shown())))?;
    SecretFile::parse(&bytes)
        .map_err(|e| failed(format!("wrote {} but it does not parse: {e}", loc.shown())))?;
    Ok(())
}

/// What the user's secret file holds, as the module would see it.
enum Found {
    Missing,
    Enrolled(Enrollment),
    /// Sealed to the host key, which only root can read: the file's own
    /// word for its parameters, unchecked.
    Sealed(SecretFile),
    /// There, but the module would deny: the reason.
    Unusable(String),
}

fn read_enrollment(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    loc: &Location,
) -> Result<Found> {
    let bytes = match secret_file::read_secret_file(&loc.path, user, caller.root && loc.as_owner) {
        Ok(b) => b,
        Err(ReadError::NotFound) => return Ok(Found::Missing),
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied && !caller.root => {
            return Err(input(format!(
                "cannot read {}: permission denied (only root can see this enrollment)",
                loc.shown()
            )))
        }
        Err(e) => return Ok(Found::Unusable(format!("{}: {e}", loc.shown()))),
    };
    let unseal = unsealer(caller, settings, user);
    let unseal: Option<enrollment::Unsealer<'_>> = unseal.as_ref().map(|f| f as _);
    Ok(match enrollment::parse_with(&bytes, unseal) {
        Ok(e) => Found::Enrolled(e),
        Err(FormatError::Sealed) => match SecretFile::parse(&bytes) {
            Ok(file) => Found::Sealed(file),
            Err(e) => Found::Unusable(format!("{}: {e}", loc.shown())),
        },
        Err(e) => Found::Unusable(format!("{}: {e}", loc.shown())),
    })
}

// ---------------------------------------------------------------------------
// enroll

fn enroll(mut a: EnrollArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(&a.who)?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let seal_to = sealing(&caller, &settings, a.no_seal)?;

    let mut stdin = io::stdin().lock();
    let secret: Zeroizing<Vec<u8>> = match a.secret.take().map(Zeroizing::new) {
        None => Zeroizing::new(random::<SECRET_BYTES>()?.to_vec()),
        Some(given) => {
            let text = if given.as_str() == "-" {
                let mut line = Zeroizing::new(String::new());
                stdin
                    .read_line(&mut line)
                    .map_err(|e| input(format!("--secret -: cannot read standard input: {e}")))?;
                line
            } else {
                given
            };
            otp::decode_base32(&text).ok_or_else(|| {
                input("--secret is not base32 (letters A-Z and digits 2-7; spaces and = padding are fine)")
            })?
        }
    };
    let key = OtpKey::new(&secret, a.algorithm, u64::from(a.digits), a.period)
        .map_err(|e| input(format!("--secret: {e}")))?;
    check_new_secret_length(secret.len(), "--secret", a.allow_short_secret)?;

    let host = host_name();
    let issuer = a.issuer.take().unwrap_or_else(|| host.clone());
    let account = match a.label.take() {
        Some(l) => l,
        None if user.name.contains(':') => {
            return Err(input(format!(
                "user name {:?} holds ':', which a label cannot; give --label",
                user.name
            )))
        }
        None => format!("{}@{host}", user.name),
    };

    check_destination(&caller, &user, &loc, a.force)?;

    let (codes, hashes) = new_scratch_codes(a.scratch_codes)?;
    let mut file = SecretFile::new(&secret, &key, &hashes);
    let b32 = otp::encode_base32(&secret);
    let uri = output::otpauth_uri(&UriParts {
        issuer: &issuer,
        account: &account,
        secret: &b32,
        algorithm: a.algorithm,
        digits: a.digits,
        period: a.period,
    })
    .map_err(|e| {
        input(format!(
            "cannot make the otpauth URI: {e}; give --issuer or --label"
        ))
    })?;
    if !output::default_params(a.algorithm, a.digits, a.period) {
        eprintln!(
            "pam-totp: warning: {}, {} digits, {} seconds: many apps (Google Authenticator among them) \
             ignore these and use SHA1, 6 digits, 30 seconds; make sure the app's codes work",
            a.algorithm, a.digits, a.period
        );
    }
    let qr = output::qr(&uri, a.qr).map_err(failed)?;
    let view = EnrollView {
        qr: qr.as_deref(),
        uri: &uri,
        issuer: &issuer,
        account: &account,
        secret: &b32,
        algorithm: a.algorithm,
        digits: a.digits,
        period: a.period,
        scratch_codes: &codes,
    };

    if a.no_confirm {
        write_secret(&caller, &user, &loc, &mut file, seal_to.as_ref(), a.force)?;
        if !a.json {
            print_out(&output::enroll_text(&view))?;
        }
    } else {
        // With --json, stdout is for the one JSON object: show the rest on stderr.
        let text = output::enroll_text(&view);
        if a.json {
            eprint!("{}", text.as_str());
        } else {
            print_out(&text)?;
        }
        let step = confirm(&key, &mut stdin)?;
        write_secret(&caller, &user, &loc, &mut file, seal_to.as_ref(), a.force)?;
        if caller.root {
            spend_confirmed_step(&settings, &user.name, &key, step);
        }
    }

    if a.json {
        let shown = loc.shown();
        print_out(
            &output::json(&output::EnrollJson {
                user: &user.name,
                secret_file: &shown,
                secret: &b32,
                otpauth_uri: &uri,
                scratch_codes: codes.iter().map(|c| c.as_str()).collect(),
            })
            .map_err(failed)?,
        )?;
        println!();
    }
    match &seal_to {
        Some(k) => eprintln!(
            "pam-totp: enrolled {}: {} (secret sealed to host key {}: only root can open it, \
             and it is not shown again)",
            user.name,
            loc.shown(),
            k.id()
        ),
        None => eprintln!("pam-totp: enrolled {}: {}", user.name, loc.shown()),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_out(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| failed(format!("cannot write to standard output: {e}")))
}

/// Records the step of the code typed at confirmation as spent in the
/// user's state, so that code cannot also log in (someone watching the
/// screen during enrollment gains nothing). Only root can write the state;
/// an existing state directory is required (the module creates it at the
/// first login otherwise). Best effort: a failure is reported, not fatal,
/// since the enrollment itself is saved.
fn spend_confirmed_step(settings: &Settings, user: &str, key: &OtpKey, step: u64) {
    let dir = &settings.state_dir;
    if !dir.exists() {
        return;
    }
    let account = match users::state_account(user) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pam-totp: warning: the confirmation code could not be marked as used: {e}");
            return;
        }
    };
    let user = account.as_str();
    let done = StateDir::open(dir, false).and_then(|d| {
        let lock = d.lock(user)?;
        let mut state = lock.read()?;
        state
            .spend_step(key, step, now())
            .map_err(|why| StateError::Io {
                op: "cannot record the confirmation code",
                path: d.state_path(user),
                err: io::Error::other(why.to_string()),
            })?;
        lock.write(&state)
    });
    if let Err(e) = done {
        eprintln!("pam-totp: warning: the confirmation code could not be marked as used: {e}");
    }
}

/// Asks for codes until a right one (the step before, now, or after, as
/// the module's default window), or the end of the input, and returns the
/// step it matched. A wrong code is only called wrong: the right one is
/// never shown.
fn confirm(key: &OtpKey, input: &mut impl BufRead) -> Result<u64> {
    let digits = usize::from(key.digits());
    eprintln!(
        "To finish, type the code the app shows for this account. Nothing is saved\n\
         until a right code is typed (Ctrl-D gives up)."
    );
    loop {
        eprint!("Code from the app: ");
        let _ = io::stderr().flush();
        let mut line = Zeroizing::new(String::new());
        let n = input
            .read_line(&mut line)
            .map_err(|e| failed(format!("cannot read the code: {e}")))?;
        if n == 0 {
            eprintln!();
            return Err(failed(
                "no right code was typed; nothing was saved (scripts: use --no-confirm)",
            ));
        }
        let typed: Zeroizing<String> =
            Zeroizing::new(line.chars().filter(|c| !c.is_whitespace()).collect());
        if typed.is_empty() {
            continue;
        }
        let step = key.step_at(now());
        let form = typed.len() == digits && typed.bytes().all(|b| b.is_ascii_digit());
        let matched = form
            .then(|| key.match_totp(&typed, step.saturating_sub(1), step.saturating_add(1)))
            .flatten();
        if let Some(step) = matched {
            eprintln!("Code accepted.");
            return Ok(step);
        }
        if typed.bytes().all(|b| b.is_ascii_digit()) && typed.len() != digits {
            eprintln!(
                "That code has {} digits; this account's codes have {digits}. If the app shows {}, \
                 it ignored the settings: enroll again with the defaults.",
                typed.len(),
                typed.len()
            );
        } else {
            eprintln!(
                "That is not the right code. Check that the app shows this account and that the \
                 phone's clock is right, then type the code it shows now."
            );
        }
    }
}

// ---------------------------------------------------------------------------
// status

/// The user's state as far as this caller can see it.
enum StateView {
    Known(UserState),
    /// The module denies until `reset`: the reason.
    Corrupt(String),
    /// Not readable by this (non-root) caller: the reason.
    Hidden(String),
}

fn read_state(caller: &Caller, dir: &Path, user: &str) -> Result<StateView> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(StateView::Known(UserState::new()))
        }
        _ => {}
    }
    let account = users::state_account(user).map_err(|e| failed(e.to_string()))?;
    let read = StateDir::open(dir, false).and_then(|d| {
        let lock = d.lock(&account)?;
        lock.read()
    });
    match read {
        Ok(s) => Ok(StateView::Known(s)),
        Err(e @ StateError::Corrupt { .. }) => Ok(StateView::Corrupt(e.to_string())),
        Err(e) if !caller.root => Ok(StateView::Hidden(e.to_string())),
        Err(e) => Err(failed(e.to_string())),
    }
}

fn state_dir(settings: &Settings, chosen: &Option<PathBuf>) -> PathBuf {
    chosen.clone().unwrap_or_else(|| settings.state_dir.clone())
}

fn status(a: StatusArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let mut settings = settings(&a.who)?;
    if let Some(limit) = a.rate_limit {
        settings.policy.rate_limit = limit;
    }
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    let found = read_enrollment(&caller, &user, &settings, &loc)?;
    let dir = state_dir(&settings, &a.state.state_dir);
    let state = read_state(&caller, &dir, &user.name)?;

    let mut problems = Vec::new();
    let enrollment = match &found {
        Found::Enrolled(e) => Some(e),
        Found::Unusable(why) => {
            problems.push(format!("{why}; the module denies every login"));
            None
        }
        Found::Missing | Found::Sealed(_) => None,
    };
    let limit = enrollment.map_or(settings.policy.rate_limit, |e| {
        Credentials::of(e).rate_limit(&settings.policy)
    });
    let now = now();
    let (failed_attempts, locked, remaining) = match &state {
        StateView::Known(s) => (
            Some(s.failed_attempts),
            Some(s.locked(now, limit)),
            enrollment.map(|e| decision::remaining_scratch(&e.scratch, s)),
        ),
        StateView::Corrupt(why) => {
            problems.push(format!("{why}; the module denies every login"));
            (None, Some(true), None)
        }
        StateView::Hidden(why) => {
            eprintln!(
                "pam-totp: note: the state directory {} is root's ({why}); \
                 scratch_codes_remaining, failed_attempts and locked are unknown",
                dir.display()
            );
            (None, None, None)
        }
    };
    let (algorithm, digits, period) = match (&found, enrollment) {
        (_, Some(e)) => (
            Some(e.key.algorithm()),
            Some(e.key.digits()),
            match e.counter {
                decision::Counter::Time => Some(e.key.period()),
                decision::Counter::Event { .. } => None,
            },
        ),
        (Found::Sealed(f), None) => (
            f.algorithm.parse::<Algorithm>().ok(),
            u8::try_from(f.digits).ok(),
            Some(f.period),
        ),
        _ => (None, None, None),
    };
    let report = output::Status {
        user: user.name.clone(),
        enrolled: !matches!(found, Found::Missing),
        secret_file: loc.shown(),
        algorithm: algorithm.map(|a| a.as_str().to_owned()),
        digits,
        period,
        scratch_codes_remaining: remaining,
        failed_attempts,
        locked,
    };
    if a.json {
        print_out(&output::json(&report).map_err(failed)?)?;
        println!();
    } else {
        print_out(&output::status_text(&report))?;
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in problems {
        eprintln!("pam-totp: {p}");
    }
    Ok(ExitCode::from(EXIT_FAILED))
}

// ---------------------------------------------------------------------------
// scratch-codes --regenerate

fn scratch_codes(a: ScratchArgs) -> Result<ExitCode> {
    if !a.regenerate {
        return Err(input(
            "scratch codes are stored only as hashes and cannot be shown again; \
             --regenerate replaces them with new ones",
        ));
    }
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(&a.who)?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;

    let bytes = match secret_file::read_secret_file(&loc.path, &user, caller.root && loc.as_owner) {
        Ok(b) => b,
        Err(ReadError::NotFound) => {
            return Err(input(format!(
                "{} is not enrolled ({} does not exist)",
                user.name,
                loc.shown()
            )))
        }
        Err(e) => return Err(failed(format!("{}: {e}", loc.shown()))),
    };
    if google::looks_like_google(&bytes) {
        return Err(input(format!(
            "{} is in Google Authenticator's format, which pam-totp does not rewrite; \
             enroll anew with --force",
            loc.shown()
        )));
    }
    let mut file =
        SecretFile::parse(&bytes).map_err(|e| failed(format!("{}: {e}", loc.shown())))?;
    let unseal = unsealer(&caller, &settings, &user);
    let unseal: Option<enrollment::Unsealer<'_>> = unseal.as_ref().map(|f| f as _);
    match file.to_enrollment_with(unseal) {
        Ok(e) if e.format == Format::Native => {}
        Ok(_) => return Err(failed(format!("{}: not a native secret file", loc.shown()))),
        // Sealed and not root: the file is the user's, but only root can check it.
        Err(FormatError::Sealed) => {}
        Err(e) => return Err(failed(format!("{}: {e}", loc.shown()))),
    }

    // Replacing a file that exists: the same checks as enroll --force.
    check_destination(&caller, &user, &loc, true)?;
    let (codes, hashes) = new_scratch_codes(a.scratch_codes)?;
    file.scratch_codes = hashes.iter().map(ToString::to_string).collect();
    // Rewritten as it is: sealed stays sealed, plain stays plain.
    write_secret(&caller, &user, &loc, &mut file, None, true)?;

    if a.json {
        let shown = loc.shown();
        print_out(
            &output::json(&output::ScratchJson {
                user: &user.name,
                secret_file: &shown,
                scratch_codes: codes.iter().map(|c| c.as_str()).collect(),
            })
            .map_err(failed)?,
        )?;
        println!();
    } else {
        print_out(&output::scratch_text(&codes))?;
    }
    eprintln!(
        "pam-totp: {} new scratch codes for {} in {}",
        codes.len(),
        user.name,
        loc.shown()
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// reset

fn reset(a: ResetArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(&a.who)?;
    let dir = state_dir(&settings, &a.state.state_dir);
    if !caller.root {
        return Err(input(format!(
            "only root can reset: the state directory {} is root's",
            dir.display()
        )));
    }
    if let Err(e) = fs::symlink_metadata(&dir) {
        if e.kind() == io::ErrorKind::NotFound {
            eprintln!(
                "pam-totp: no state directory {}: {} has nothing to reset",
                dir.display(),
                user.name
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    let state_dir = StateDir::open(&dir, false).map_err(|e| failed(e.to_string()))?;
    let lock = state_dir
        .lock(&state_account(&user)?)
        .map_err(|e| failed(e.to_string()))?;
    match lock.read() {
        Ok(state) => {
            let cleared = UserState {
                failures: Vec::new(),
                failed_attempts: 0,
                ..state.clone()
            };
            if cleared != state {
                lock.write(&cleared).map_err(|e| failed(e.to_string()))?;
            }
            eprintln!(
                "pam-totp: reset {}: {} failed attempts cleared, not locked out; \
                 the secret file is unchanged",
                user.name, state.failed_attempts
            );
        }
        Err(e @ StateError::Corrupt { .. }) => {
            lock.remove().map_err(|e| failed(e.to_string()))?;
            eprintln!(
                "pam-totp: reset {}: removed the corrupt state ({e}); scratch codes used before \
                 may work once more: consider `pam-totp scratch-codes --regenerate --user {}`",
                user.name, user.name
            );
        }
        Err(e) => return Err(failed(e.to_string())),
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// disable

fn disable(a: DisableArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let user = target(&caller, &a.who)?;
    let settings = settings(&a.who)?;
    let loc = locate(&caller, &user, &settings, a.file.secret_file.as_deref())?;
    require_writable(&caller, &loc)?;
    let dir = state_dir(&settings, &a.state.state_dir);

    let removed = {
        let _id = loc.identity(&caller, &user)?;
        let shown = loc.shown();
        match existing(&loc.path).map_err(|e| input(format!("cannot use {shown}: {e}")))? {
            Existing::Nothing => false,
            Existing::Other(why) => {
                return Err(input(format!(
                    "{shown} exists but {why}; not removing it (remove it yourself if it should go)"
                )))
            }
            Existing::Symlink | Existing::SecretFile => {
                fs::remove_file(&loc.path)
                    .and_then(|()| atomic::sync_dir(atomic::parent_dir(&loc.path)))
                    .map_err(|e| failed(format!("cannot remove {shown}: {e}")))?;
                true
            }
        }
    };

    let state_note = if !caller.root {
        format!("the state in {} is root's and was left", dir.display())
    } else if fs::symlink_metadata(&dir).is_err() {
        "no state".to_owned()
    } else {
        let state_dir = StateDir::open(&dir, false).map_err(|e| failed(e.to_string()))?;
        let lock = state_dir
            .lock(&state_account(&user)?)
            .map_err(|e| failed(e.to_string()))?;
        lock.remove().map_err(|e| failed(e.to_string()))?;
        "state removed".to_owned()
    };
    if removed {
        eprintln!(
            "pam-totp: disabled {}: removed {}; {state_note}",
            user.name,
            loc.shown()
        );
    } else {
        eprintln!(
            "pam-totp: {} was not enrolled ({} does not exist); {state_note}",
            user.name,
            loc.shown()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_are_at_least_128_bits_unless_allowed() {
        assert!(check_new_secret_length(16, "--secret", false).is_ok());
        assert!(check_new_secret_length(10, "--secret", true).is_ok());
        match check_new_secret_length(15, "--secret", false) {
            Err(CliError::Input(m)) => {
                assert!(m.starts_with("--secret is 120 bits;"), "{m}");
                assert!(m.contains("--allow-short-secret"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
    use pam_totp::core::code::SCRATCH_DIGITS;

    #[test]
    fn confirmation_retries_and_stops_at_eof() {
        let key = OtpKey::new(b"12345678901234567890", Algorithm::Sha1, 6, 30).unwrap();
        let right = key.totp_code(key.step_at(now()));
        let wrong = if right.as_str() == "000000" {
            "111111"
        } else {
            "000000"
        };
        let mut answers = io::Cursor::new(format!("{wrong}\n\n12 34\n{}\n", right.as_str()));
        assert!(confirm(&key, &mut answers).is_ok());
        let mut answers = io::Cursor::new(format!("{wrong}\n"));
        assert!(matches!(
            confirm(&key, &mut answers),
            Err(CliError::Failed(_))
        ));
    }

    #[test]
    fn scratch_codes_are_distinct_and_hashed() {
        let (codes, hashes) = new_scratch_codes(20).unwrap();
        assert_eq!(codes.len(), 20);
        for (c, h) in codes.iter().zip(&hashes) {
            assert_eq!(c.len(), SCRATCH_DIGITS);
            assert!(h.matches(c));
            assert!(!h.to_string().contains(c.as_str()));
        }
        let mut sorted: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20);
    }
}
