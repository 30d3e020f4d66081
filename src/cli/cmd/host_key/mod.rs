//! `pam-totp host-key init|rotate|export|import`: the host key pair that
//! seals secrets (see `pam_totp::seal`); `export` and `import` (transfer.rs)
//! give a fleet one pair.
//!
//! Order of writes, so that a crash at any point leaves every login working:
//! - `init` writes host.key before host.pub, so a host.pub never exists
//!   without its private key (`--if-missing` writes a missing host.pub from
//!   host.key);
//! - `rotate` first copies the current private key to host.key.old (the
//!   module opens files with host.key and host.key.old), then replaces
//!   host.key and host.pub, re-seals the files, and removes host.key.old
//!   last, only when asked (`--drop-old-key`) and only if every sealed file
//!   it found now opens with the new key. A rotation that stopped half-way,
//!   or kept host.key.old, is finished by the next `rotate`.
//!
//! What `rotate` cannot see, it says: accounts NSS does not enumerate, and
//! pam.d files it cannot read (their `secret=` may name more files).
//!
//! `init`, `rotate` and `import` take an exclusive `flock` on the key's lock
//! file (`host.key.lock`, root's, 0600: see `store::open_lock`) and on the
//! key's directory, without waiting: a second `host-key` command refuses
//! while one runs, so two rotations never interleave (one rotation, not two
//! in a row, is what was asked), and so does one started while a secret is
//! being sealed.
#![forbid(unsafe_code)]

mod rotate;
mod scan;
mod transfer;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use pam_totp::config::Settings;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostSecretKey;
use pam_totp::secret::store;
use pam_totp::sys::{atomic, locks};

use crate::access::{caller, settings, Caller};
use crate::args::{HostKeyCommand, HostKeyInitArgs, HostKeyPath};
use crate::error::{AccessError, CliError, FileError, KeyError, Result};

/// Mode of host.key (root only) and host.pub (anyone may seal).
const KEY_MODE: u32 = 0o600;
const PUB_MODE: u32 = 0o644;

pub(super) fn run(command: HostKeyCommand) -> Result<ExitCode> {
    match command {
        HostKeyCommand::Init(a) => init(a),
        HostKeyCommand::Rotate(a) => rotate::run(a),
        HostKeyCommand::Export(a) => transfer::export(a),
        HostKeyCommand::Import(a) => transfer::import(a),
    }
}

/// The settings (for `host_key` and `secret`) and the host key's path.
fn key_location(
    caller: &Caller,
    verb: &'static str,
    key: &HostKeyPath,
) -> Result<(Settings, PathBuf)> {
    if !caller.root {
        return Err(AccessError::HostKeyRootOnly { verb }.into());
    }
    let settings = settings(key.config.as_deref())?;
    let path = key.host_key.clone().unwrap_or(settings.host_key.clone());
    if seal::public_path(&path) == path || path.file_name().is_none() {
        return Err(KeyError::BadHostKeyPath { path }.into());
    }
    Ok((settings, path))
}

/// The key's directory must be one only root can change: whoever can
/// rename files in it can swap the key.
fn check_key_dir(path: &Path) -> Result<()> {
    let dir = atomic::parent_dir(path);
    let dir_buf = || dir.to_owned();
    let meta = fs::metadata(dir).map_err(|err| KeyError::KeyDirUnreadable {
        dir: dir_buf(),
        err,
    })?;
    if !meta.is_dir() {
        return Err(KeyError::KeyDirNotDir { dir: dir_buf() }.into());
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(KeyError::KeyDirUnsafe {
            dir: dir_buf(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        }
        .into());
    }
    Ok(())
}

/// The locks a `host-key` command holds while it works, released when the
/// process ends, however it ends.
struct KeyLocks {
    _file: Flock<fs::File>,
    _dir: Flock<fs::File>,
}

/// Takes, without waiting, an exclusive `flock` on the key's lock file
/// (`store::open_lock`: root's, 0600), which excludes other `host-key`
/// commands and root sealing a secret, and then on the key's directory,
/// which excludes other users sealing one (see `store::hold_key`).
fn lock_key(path: &Path) -> Result<KeyLocks> {
    let lock = store::lock_path(path);
    let dir = atomic::parent_dir(path);
    let file = store::open_lock(path).map_err(|err| KeyError::KeyLockOpen {
        lock: lock.clone(),
        err,
    })?;
    let file = lock_now(file, &lock, || KeyError::KeyBusy {
        dir: dir.to_owned(),
    })?;
    let opened = fs::File::open(dir).map_err(|err| KeyError::KeyLockOpen {
        lock: dir.to_owned(),
        err,
    })?;
    let meta = opened.metadata().ok();
    // Another user's process holds it: the message names it.
    let busy = || KeyError::KeyDirBusy {
        dir: dir.to_owned(),
        holders: meta.as_ref().map(locks::flock_holders).unwrap_or_default(),
    };
    Ok(KeyLocks {
        _file: file,
        _dir: lock_now(opened, dir, busy)?,
    })
}

/// An exclusive `flock` on `file` (which is `path`), not waited for:
/// `busy()` when another process holds it.
fn lock_now(
    file: fs::File,
    path: &Path,
    busy: impl FnOnce() -> KeyError,
) -> Result<Flock<fs::File>> {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, err)| {
        if err == Errno::EWOULDBLOCK {
            busy().into()
        } else {
            KeyError::KeyLock {
                lock: path.to_owned(),
                err,
            }
            .into()
        }
    })
}

/// Whether anything (even a dangling symlink) is at `path`.
fn present(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(FileError::Probe {
            path: path.to_owned(),
            err,
        }
        .into()),
    }
}

/// Writes one key file atomically (replacing only when `replace`).
fn write_key(path: &Path, text: &str, mode: u32, replace: bool) -> Result<()> {
    let written = if replace {
        atomic::write_atomic(path, text.as_bytes(), mode)
    } else {
        atomic::write_atomic_new(path, text.as_bytes(), mode)
    };
    written.map_err(|err| match err.kind() {
        io::ErrorKind::AlreadyExists => CliError::from(KeyError::KeyAppeared {
            path: path.to_owned(),
        }),
        _ => FileError::Write {
            path: path.to_owned(),
            err,
        }
        .into(),
    })
}

/// Reads the pair back as the module and `enroll` will, and checks that
/// host.pub is host.key's public key.
fn check_pair(path: &Path) -> Result<HostSecretKey> {
    let key = seal::load_secret_keys(path)
        .map_err(KeyError::HostKey)?
        .swap_remove(0);
    let public = seal::load_public_key(path).map_err(KeyError::HostKey)?;
    if public != key.public() {
        return Err(KeyError::WrittenPairMismatch {
            public: seal::public_path(path),
            key: path.to_owned(),
        }
        .into());
    }
    Ok(key)
}

// ---------------------------------------------------------------------------
// init

fn init(a: HostKeyInitArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (_, path) = key_location(&caller, "create", &a.key)?;
    let pub_path = seal::public_path(&path);
    let dir = atomic::parent_dir(&path);
    if !present(dir)? {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|err| KeyError::CreateDir {
                dir: dir.to_owned(),
                err,
            })?;
    }
    check_key_dir(&path)?;
    let _lock = lock_key(&path)?;
    let (has_key, has_pub) = (present(&path)?, present(&pub_path)?);

    if a.if_missing && has_key {
        if !has_pub {
            let key = seal::load_secret_keys(&path)
                .map_err(KeyError::HostKey)?
                .swap_remove(0);
            write_key(&pub_path, &key.public().to_text(), PUB_MODE, false)?;
            eprintln!(
                "pam-totp: wrote {} from {}",
                pub_path.display(),
                path.display()
            );
        }
        let key = check_pair(&path)?;
        eprintln!(
            "pam-totp: the host key pair exists: {} (key id {})",
            path.display(),
            key.public().id()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !a.force && has_pub && !has_key {
        return Err(KeyError::PubWithoutKey {
            public: pub_path,
            key: path,
        }
        .into());
    }
    if !a.force && has_key {
        return Err(KeyError::KeyExists { key: path }.into());
    }

    let key = HostSecretKey::generate().map_err(KeyError::HostKey)?;
    write_key(&path, &key.to_text(), KEY_MODE, a.force)?;
    write_key(&pub_path, &key.public().to_text(), PUB_MODE, a.force)?;
    let key = check_pair(&path)?;
    eprintln!(
        "pam-totp: created the host key pair {} (root, 0600) and {} (0644), key id {}",
        path.display(),
        pub_path.display(),
        key.public().id()
    );
    if a.force && has_key {
        eprintln!(
            "pam-totp: warning: secrets sealed to the previous key no longer open; \
             enroll those users again"
        );
    }
    Ok(ExitCode::SUCCESS)
}
