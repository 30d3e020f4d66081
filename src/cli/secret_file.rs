//! Secret files on disk, as the tool sees them: what is at a path, whether a
//! new one can go there, writing one atomically and reading it back as the
//! module will, and what an existing one holds.
//!
//! Files are replaced atomically and never through a symlink; secrets stay
//! in zeroizing buffers and never reach an error message.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

use pam_totp::config::Settings;
use pam_totp::secret::enrollment;
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::secret::enrollment::Format;
use pam_totp::secret::enrollment::FormatError;
use pam_totp::secret::file;
use pam_totp::secret::google;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::secret::store;
use pam_totp::secret::store::WriteError;
use pam_totp::secret::store::{HoldError, KeyHold, SealingKey};
use pam_totp::sys::atomic;
use pam_totp::sys::open::{open_checked, Broken, OpenError, Owner, Rules};
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::ReadError;
use pam_totp::sys::secret_file::MAX_SECRET_FILE;
use pam_totp::sys::users::UserInfo;

use crate::access::{unsealer, Caller, Location};
use crate::error::{AccessError, CliError, FileError, KeyError, NotSecret, Result};

/// Mode of every secret file written.
pub use pam_totp::secret::store::SECRET_MODE;

/// What is at a secret file's path now.
pub enum Existing {
    Nothing,
    Symlink,
    /// A regular file that is a secret file (any format, even unusable).
    SecretFile,
    /// Anything else, and why it is not taken for a secret file.
    Other(NotSecret),
}

/// Looks at the path without following a symlink there; call it with the
/// identity the file is accessed with.
pub fn existing(path: &Path) -> io::Result<Existing> {
    // Any owner and mode: this only tells what is there. One byte over the
    // limit is enough to know it is not ours.
    let rules = Rules {
        owner: Owner::Any,
        forbidden_mode: 0,
        max_size: MAX_SECRET_FILE,
    };
    let bytes = match open_checked(path, &rules) {
        Ok(b) => b,
        Err(OpenError::NotFound) => return Ok(Existing::Nothing),
        Err(OpenError::Symlink) => return Ok(Existing::Symlink),
        Err(OpenError::Rule(Broken::NotRegular, _)) => {
            return Ok(Existing::Other(NotSecret::NotRegular))
        }
        Err(OpenError::Rule(..)) => return Ok(Existing::Other(NotSecret::NotOurs)),
        Err(OpenError::Io(e)) => return Err(e),
    };
    let ours = google::looks_like_google(&bytes) || SecretFile::parse(&bytes).is_ok();
    Ok(if ours {
        Existing::SecretFile
    } else {
        Existing::Other(NotSecret::NotOurs)
    })
}

/// Checks, before anything is shown or written, that the secret file can
/// be created (or, with `replace`, replaced) at `loc`.
pub fn check_destination(
    caller: &Caller,
    user: &UserInfo,
    loc: &Location,
    replace: bool,
) -> Result<()> {
    let _id = loc.identity(caller, user)?;
    let path = || loc.path.clone();
    match existing(&loc.path).map_err(|err| FileError::CannotUse { path: path(), err })? {
        Existing::Nothing => {}
        Existing::Other(why) => return Err(FileError::NotReplacing { path: path(), why }.into()),
        Existing::Symlink | Existing::SecretFile if !replace => {
            return Err(FileError::AlreadyEnrolled {
                user: user.name.clone(),
                path: path(),
            }
            .into())
        }
        Existing::Symlink | Existing::SecretFile => {}
    }
    let dir = atomic::parent_dir(&loc.path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(FileError::DirNotDir {
                path: path(),
                dir: dir.to_owned(),
            }
            .into())
        }
        Err(err) => {
            return Err(FileError::DirUnusable {
                path: path(),
                dir: dir.to_owned(),
                err,
            }
            .into())
        }
    }
    // The one reliable test of writability (permissions, ACLs, read-only
    // mounts, the identity in force): create a file there, and remove it.
    tempfile::Builder::new()
        .prefix(".pam-totp-probe.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|err| FileError::NotWritable { path: path(), err }.into())
}

/// Writes the secret file atomically, mode 0600: as the user under their
/// home (so it is theirs), as root elsewhere. With `seal_to` (see
/// `access::sealing`), a plaintext secret is sealed first, so the file
/// holds only `sealed_secret`. Without `replace`, an entry that appeared
/// meanwhile is left alone.
pub fn write_secret(
    caller: &Caller,
    user: &UserInfo,
    loc: &Location,
    file: &mut SecretFile,
    seal_to: Option<&SealingKey>,
    replace: bool,
) -> Result<()> {
    let path = || loc.path.clone();
    // The library's write, shared with the module's enrollment at login.
    let as_owner = loc.read_as_owner(caller);
    store::write_secret_file(user, &loc.path, as_owner, file, seal_to, replace).map_err(
        |e| -> CliError {
            match e {
                WriteError::Key(err) => hold_error(err),
                WriteError::Seal(err) => FileError::Seal(err).into(),
                WriteError::Serialize(err) => FileError::Serialize { path: path(), err }.into(),
                WriteError::Identity(err) => AccessError::Identity { path: path(), err }.into(),
                WriteError::AppearedMeanwhile => {
                    FileError::AppearedMeanwhile { path: path() }.into()
                }
                WriteError::Write(err) => FileError::Write { path: path(), err }.into(),
                WriteError::ReadBack(err) => FileError::ReadBack { path: path(), err }.into(),
                WriteError::ReadBackParse(err) => {
                    FileError::ReadBackParse { path: path(), err }.into()
                }
            }
        },
    )
}

/// Why the host key could not be held while a sealed secret was written.
pub fn hold_error(e: HoldError) -> CliError {
    match e {
        HoldError::Busy(dir) => KeyError::KeyBusy { dir }.into(),
        HoldError::Lock(lock, err) => KeyError::KeyLockOpen { lock, err }.into(),
        HoldError::Changed(key) => KeyError::KeyChanged { key }.into(),
    }
}

/// The hold of the host key a rewrite of `file` as it is
/// needs: taken before the file was read (`store::hold_key`), and
/// required only when the file holds a sealed secret, which a rotation at
/// work would reseal (it leaves plain files alone).
pub fn hold_for_rewrite(
    hold: std::result::Result<KeyHold, HoldError>,
    file: &SecretFile,
) -> Result<Option<KeyHold>> {
    match hold {
        Ok(hold) => Ok(Some(hold)),
        Err(_) if file.keys.iter().all(|k| k.sealed_secret.is_none()) => Ok(None),
        Err(e) => Err(hold_error(e)),
    }
}

/// The text of the secret file `write_secret` would write (sealed first
/// with `seal_to`), for `--secret-file -`: nothing is written anywhere.
/// Parsed back as the module will parse it, so text it would refuse is
/// never printed.
pub fn secret_text(
    user: &UserInfo,
    file: &mut SecretFile,
    seal_to: Option<&HostPublicKey>,
) -> Result<Zeroizing<String>> {
    if let Some(key) = seal_to {
        file.seal(key, &user.name).map_err(FileError::Seal)?;
    }
    let text = file.to_toml().map_err(FileError::TextSerialize)?;
    SecretFile::parse(text.as_bytes()).map_err(FileError::TextParse)?;
    Ok(text)
}

/// `status --secret-file -`: the secret file's text on standard input, at
/// most as large as a secret file may be.
pub fn read_stdin_text() -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::new());
    io::stdin()
        .lock()
        .take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Stdin)?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(FileError::StdinTooLarge {
            max: MAX_SECRET_FILE,
        }
        .into());
    }
    Ok(bytes)
}

/// The user's native secret file, to be rewritten (`scratch-codes`,
/// `enroll --add`, `remove-key`): it must exist, be in the native format
/// and be usable as the module would judge it (a sealed file that only
/// root can open is taken as it is). `google`: the error for a Google
/// Authenticator file, which is never rewritten.
pub fn read_native(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    loc: &Location,
    google: impl FnOnce() -> CliError,
) -> Result<SecretFile> {
    let path = || loc.path.clone();
    let bytes = match secret_file::read_secret_file(&loc.path, user, loc.read_as_owner(caller)) {
        Ok(b) => b,
        Err(ReadError::NotFound) => {
            return Err(FileError::NotEnrolled {
                user: user.name.clone(),
                path: path(),
            }
            .into())
        }
        Err(err) => return Err(FileError::ReadSecret { path: path(), err }.into()),
    };
    if google::looks_like_google(&bytes) {
        return Err(google());
    }
    let file = SecretFile::parse(&bytes).map_err(|err| FileError::Format { path: path(), err })?;
    let unseal = unsealer(caller, settings, user);
    let unseal: Option<enrollment::Unsealer<'_>> = unseal.as_ref().map(|f| f as _);
    match file.to_enrollment_with(unseal) {
        Ok(e) if e.format == Format::Native => Ok(file),
        Ok(_) => Err(FileError::NotNative { path: path() }.into()),
        // Sealed and not root: the file is the user's, but only root can check it.
        Err(FormatError::Sealed) => Ok(file),
        Err(err) => Err(FileError::Format { path: path(), err }.into()),
    }
}

/// What the user's secret file holds, as the module would see it.
pub enum Found {
    Missing,
    Enrolled(Enrollment),
    /// Sealed to the host key, which only root can read: the file's own
    /// word for its parameters, unchecked.
    Sealed(SecretFile),
    /// There, but the module would deny: the reason.
    Unusable(String),
}

pub fn read_enrollment(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    loc: &Location,
) -> Result<Found> {
    Ok(read_enrollment_sealed(caller, user, settings, loc)?.0)
}

/// [`read_enrollment`], and whether the file holds its secret sealed to the
/// host key (`pam-totp report`).
pub fn read_enrollment_sealed(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    loc: &Location,
) -> Result<(Found, bool)> {
    let bytes = match secret_file::read_secret_file(&loc.path, user, loc.read_as_owner(caller)) {
        Ok(b) => b,
        Err(ReadError::NotFound) => return Ok((Found::Missing, false)),
        Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied && !caller.root => {
            return Err(FileError::OnlyRootCanSee {
                path: loc.path.clone(),
            }
            .into())
        }
        Err(e) => return Ok((Found::Unusable(format!("{}: {e}", loc.shown())), false)),
    };
    // Sealed: every key of the file (one plaintext key is what a thief reads).
    let sealed =
        SecretFile::parse(&bytes).is_ok_and(|f| f.keys.iter().all(|k| k.sealed_secret.is_some()));
    Ok((
        found_in(caller, user, settings, &bytes, &loc.shown()),
        sealed,
    ))
}

/// What a secret file's text holds, as the module would see it; `shown`
/// names where it came from in a reason.
pub fn found_in(
    caller: &Caller,
    user: &UserInfo,
    settings: &Settings,
    bytes: &[u8],
    shown: &str,
) -> Found {
    let unseal = unsealer(caller, settings, user);
    let unseal: Option<enrollment::Unsealer<'_>> = unseal.as_ref().map(|f| f as _);
    match file::parse_with(bytes, unseal) {
        Ok(e) => Found::Enrolled(e),
        Err(FormatError::Sealed) => match SecretFile::parse(bytes) {
            Ok(file) => Found::Sealed(file),
            Err(e) => Found::Unusable(format!("{shown}: {e}")),
        },
        Err(e) => Found::Unusable(format!("{shown}: {e}")),
    }
}
