//! `pam-totp host-key init|rotate`: the host key pair that seals secrets
//! (see `pam_totp::seal`).
//!
//! Order of writes, so that a crash at any point leaves every login working:
//! - `init` writes host.key before host.pub, so a host.pub never exists
//!   without its private key (`--if-missing` writes a missing host.pub from
//!   host.key);
//! - `rotate` first copies the current private key to host.key.old (the
//!   module opens files with host.key and host.key.old), then replaces
//!   host.key and host.pub, re-seals the files, and removes host.key.old
//!   last, only if every sealed file now opens with the new key. A rotation
//!   that stopped half-way is finished by the next `rotate`.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode};

use pam_totp::enrollment::SecretFile;
use pam_totp::files::{self, ReadError, UserInfo};
use pam_totp::google;
use pam_totp::seal::{self, HostPublicKey, HostSecretKey};

use super::{caller, failed, input, settings, Caller, Location, Result, SECRET_MODE};
use crate::cli::{
    HostKeyCommand, HostKeyInitArgs, HostKeyPath, HostKeyRotateArgs, UserArgs, EXIT_FAILED,
};

/// Mode of host.key (root only) and host.pub (anyone may seal).
const KEY_MODE: u32 = 0o600;
const PUB_MODE: u32 = 0o644;
/// Where system-wide secret files are, each named after its user.
const DEFAULT_SECRET_DIR: &str = "/var/lib/pam-totp/secrets";

pub(super) fn run(command: HostKeyCommand) -> Result<ExitCode> {
    match command {
        HostKeyCommand::Init(a) => init(a),
        HostKeyCommand::Rotate(a) => rotate(a),
    }
}

/// The settings (for `host_key` and `secret`) and the host key's path.
fn key_location(
    caller: &Caller,
    what: &str,
    key: &HostKeyPath,
) -> Result<(pam_totp::config::Settings, PathBuf)> {
    if !caller.root {
        return Err(input(format!(
            "only root can {what} the host key: the private key is root's"
        )));
    }
    let settings = settings(&UserArgs {
        user: None,
        config: key.config.clone(),
    })?;
    let path = key.host_key.clone().unwrap_or(settings.host_key.clone());
    if seal::public_path(&path) == path || path.file_name().is_none() {
        return Err(input(format!(
            "{} cannot be the host key: host.pub goes beside it with the extension .pub",
            path.display()
        )));
    }
    Ok((settings, path))
}

/// The key's directory must be one only root can change: whoever can
/// rename files in it can swap the key.
fn check_key_dir(path: &Path) -> Result<()> {
    let dir = files::parent_dir(path);
    let meta = fs::metadata(dir).map_err(|e| input(format!("{}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(input(format!("{} is not a directory", dir.display())));
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(input(format!(
            "{} must be a directory owned by root that only root can write to \
             (is uid {}, mode {:04o}): whoever can change it can replace the host key",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Whether anything (even a dangling symlink) is at `path`.
fn present(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(failed(format!("{}: {e}", path.display()))),
    }
}

/// Writes one key file atomically (replacing only when `replace`).
fn write_key(path: &Path, text: &str, mode: u32, replace: bool) -> Result<()> {
    let written = if replace {
        files::write_atomic(path, text.as_bytes(), mode)
    } else {
        files::write_atomic_new(path, text.as_bytes(), mode)
    };
    written.map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => input(format!(
            "{} appeared meanwhile; not replacing it",
            path.display()
        )),
        _ => failed(format!("cannot write {}: {e}", path.display())),
    })
}

/// Reads the pair back as the module and `enroll` will, and checks that
/// host.pub is host.key's public key.
fn check_pair(path: &Path) -> Result<HostSecretKey> {
    let key = seal::load_secret_keys(path)
        .map_err(|e| failed(e.to_string()))?
        .swap_remove(0);
    let public = seal::load_public_key(path).map_err(|e| failed(e.to_string()))?;
    if public != key.public() {
        return Err(failed(format!(
            "{} does not match {}; remove it and run `pam-totp host-key init --if-missing`",
            seal::public_path(path).display(),
            path.display()
        )));
    }
    Ok(key)
}

// ---------------------------------------------------------------------------
// init

fn init(a: HostKeyInitArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (_, path) = key_location(&caller, "create", &a.key)?;
    let pub_path = seal::public_path(&path);
    let dir = files::parent_dir(&path);
    if !present(dir)? {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    check_key_dir(&path)?;
    let (has_key, has_pub) = (present(&path)?, present(&pub_path)?);

    if a.if_missing && has_key {
        if !has_pub {
            let key = seal::load_secret_keys(&path)
                .map_err(|e| failed(e.to_string()))?
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
        return Err(input(format!(
            "{} exists without {}: secrets sealed to it cannot be opened; \
             remove it, or use --force",
            pub_path.display(),
            path.display()
        )));
    }
    if !a.force && has_key {
        return Err(input(format!(
            "{} exists; --force replaces the key pair, and secrets sealed to it then \
             no longer open (`pam-totp host-key rotate` changes the key and re-seals them)",
            path.display()
        )));
    }

    let key = HostSecretKey::generate().map_err(|e| failed(e.to_string()))?;
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

// ---------------------------------------------------------------------------
// rotate

fn rotate(a: HostKeyRotateArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (settings, path) = key_location(&caller, "rotate", &a.key)?;
    check_key_dir(&path)?;
    let old_path = seal::old_path(&path);
    let pub_path = seal::public_path(&path);
    let mut keys = match seal::load_secret_keys(&path) {
        Ok(k) => k,
        Err(e) if !present(&path)? => {
            return Err(input(format!(
                "{e}: there is no host key to rotate (`pam-totp host-key init` creates one)"
            )))
        }
        Err(e) => return Err(input(e.to_string())),
    };

    if keys.len() == 2 && keys[0].public() == keys[1].public() {
        // A rotation stopped right after keeping the key: nothing changed yet.
        fs::remove_file(&old_path)
            .map_err(|e| failed(format!("cannot remove {}: {e}", old_path.display())))?;
        keys.truncate(1);
    }
    let keys = if keys.len() == 1 {
        // The module opens files with host.key and host.key.old: keep the
        // current key there first, then replace the pair.
        write_key(&old_path, &keys[0].to_text(), KEY_MODE, false)?;
        let new = HostSecretKey::generate().map_err(|e| failed(e.to_string()))?;
        write_key(&path, &new.to_text(), KEY_MODE, true)?;
        write_key(&pub_path, &new.public().to_text(), PUB_MODE, true)?;
        check_pair(&path)?;
        let keys = seal::load_secret_keys(&path).map_err(|e| failed(e.to_string()))?;
        eprintln!(
            "pam-totp: new host key {}; the previous one ({}) is kept as {} until every \
             sealed secret is re-sealed",
            keys[0].public().id(),
            keys[1].public().id(),
            old_path.display()
        );
        keys
    } else {
        // A rotation stopped half-way: finish it.
        let public = keys[0].public();
        if seal::load_public_key(&path).ok().as_ref() != Some(&public) {
            write_key(&pub_path, &public.to_text(), PUB_MODE, true)?;
        }
        eprintln!(
            "pam-totp: {} exists: finishing the rotation to host key {}",
            old_path.display(),
            public.id()
        );
        keys
    };
    let current = keys[0].public();

    let secret_dir = a
        .secret_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRET_DIR));
    let mut tally = Tally::default();
    for target in secret_files(&settings.secret, &secret_dir)? {
        let shown = target.loc.shown();
        match reseal(&caller, &keys, &current, &target) {
            Outcome::Missing => {}
            Outcome::Plain => tally.plain += 1,
            Outcome::Current => tally.current += 1,
            Outcome::Resealed => {
                eprintln!("pam-totp: re-sealed {shown} ({})", target.user.name);
                tally.resealed += 1;
            }
            Outcome::Problem(why) => {
                eprintln!("pam-totp: cannot re-seal {shown}: {why}");
                tally.problems += 1;
            }
        }
    }

    let summary = format!(
        "{} re-sealed, {} already sealed to the new key, {} plain (left as they are)",
        tally.resealed, tally.current, tally.plain
    );
    if tally.problems > 0 {
        eprintln!(
            "pam-totp: {summary}; {} could not be re-sealed: {} is kept, so the module still \
             opens what is sealed to it. Fix or remove those files and run \
             `pam-totp host-key rotate` again to finish.",
            tally.problems,
            old_path.display()
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    fs::remove_file(&old_path)
        .and_then(|()| files::sync_dir(files::parent_dir(&old_path)))
        .map_err(|e| failed(format!("cannot remove {}: {e}", old_path.display())))?;
    eprintln!(
        "pam-totp: rotated to host key {}: {summary}; removed {}",
        current.id(),
        old_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Tally {
    resealed: usize,
    current: usize,
    plain: usize,
    problems: usize,
}

/// A secret file and whose it is.
struct Target {
    user: UserInfo,
    loc: Location,
}

/// Every place a secret file may be: each account's file as the `secret`
/// template names it, and each file in `secret_dir` (named after its user).
/// Each path once.
fn secret_files(template: &str, secret_dir: &Path) -> Result<Vec<Target>> {
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    let mut add = |user: UserInfo, path: PathBuf| {
        if seen.insert(path.clone()) {
            targets.push(Target {
                loc: Location {
                    as_owner: files::accessed_as_owner(&user, &path),
                    path,
                },
                user,
            });
        }
    };
    for user in accounts()? {
        if let Ok(path) = pam_totp::config::expand_secret(template, &user) {
            add(user, path);
        }
    }
    let entries = match fs::read_dir(secret_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(targets),
        Err(e) => return Err(failed(format!("{}: {e}", secret_dir.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| failed(format!("{}: {e}", secret_dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of an atomic write, and anything not a user name.
        if !files::valid_user_name(&name) || name.ends_with(".tmp") {
            continue;
        }
        let user = files::lookup_user(&name)
            .map_err(|e| failed(format!("cannot look up user {name:?}: {e}")))?
            .unwrap_or(UserInfo {
                // No such account: the file can only be root's.
                name: name.clone(),
                uid: 0,
                gid: 0,
                home: PathBuf::from("/"),
            });
        add(user, entry.path());
    }
    Ok(targets)
}

/// Every account, as `getent passwd` lists them (local files and NSS).
fn accounts() -> Result<Vec<UserInfo>> {
    let out = Process::new("getent")
        .arg("passwd")
        .output()
        .map_err(|e| failed(format!("cannot run getent passwd: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!("getent passwd failed ({})", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().filter_map(parse_passwd_line).collect())
}

fn parse_passwd_line(line: &str) -> Option<UserInfo> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() != 7 || !files::valid_user_name(f[0]) {
        return None;
    }
    Some(UserInfo {
        name: f[0].to_owned(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: PathBuf::from(f[5]),
    })
}

enum Outcome {
    Missing,
    /// Not sealed (native with `secret`, or Google Authenticator): untouched.
    Plain,
    /// Already sealed to the current key: untouched.
    Current,
    Resealed,
    /// Could not be re-sealed: why.
    Problem(String),
}

/// Re-seals one file to `current` if it is sealed to another key: read as
/// the module reads it, opened with `keys`, sealed again, written
/// atomically as `enroll` writes it, and read back to check it opens with
/// the current key alone.
fn reseal(caller: &Caller, keys: &[HostSecretKey], current: &HostPublicKey, t: &Target) -> Outcome {
    let as_owner = t.loc.as_owner;
    let bytes = match files::read_secret_file(&t.loc.path, &t.user, as_owner) {
        Ok(b) => b,
        Err(ReadError::NotFound) => return Outcome::Missing,
        Err(e) => return Outcome::Problem(e.to_string()),
    };
    if google::looks_like_google(&bytes) {
        return Outcome::Plain;
    }
    let mut file = match SecretFile::parse(&bytes) {
        Ok(f) => f,
        Err(e) => return Outcome::Problem(e.to_string()),
    };
    let Some(sealed) = file.sealed_secret.take() else {
        return Outcome::Plain;
    };
    if seal::sealed_key_id(&sealed) == Some(current.id().as_str()) {
        return Outcome::Current;
    }
    let resealed = seal::open(keys, &t.user.name, &sealed)
        .and_then(|secret| seal::seal(current, &t.user.name, &secret));
    let resealed = match resealed {
        Ok(s) => s,
        Err(e) => return Outcome::Problem(e.to_string()),
    };
    file.sealed_secret = Some(resealed);
    let text = match file.to_toml() {
        Ok(t) => t,
        Err(e) => return Outcome::Problem(format!("not rewritten: {e}")),
    };
    let written = {
        let _id = t.loc.identity(caller, &t.user);
        files::write_atomic(&t.loc.path, text.as_bytes(), SECRET_MODE)
    };
    if let Err(e) = written {
        return Outcome::Problem(format!("cannot write it: {e}"));
    }
    let check = files::read_secret_file(&t.loc.path, &t.user, as_owner)
        .map_err(|e| e.to_string())
        .and_then(|b| SecretFile::parse(&b).map_err(|e| e.to_string()))
        .and_then(|f| {
            let sealed = f.sealed_secret.as_deref().unwrap_or_default();
            seal::open(&keys[..1], &t.user.name, sealed)
                .map(drop)
                .map_err(|e| e.to_string())
        });
    match check {
        Ok(()) => Outcome::Resealed,
        Err(why) => Outcome::Problem(format!("re-sealed, but it does not read back: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let u = parse_passwd_line("alice:x:1000:100:Alice,,,:/home/alice:/bin/bash").unwrap();
        assert_eq!((u.name.as_str(), u.uid, u.gid), ("alice", 1000, 100));
        assert_eq!(u.home, PathBuf::from("/home/alice"));
        assert!(parse_passwd_line("bad:x:1:2:/home").is_none());
        assert!(parse_passwd_line("../x:x:1:2::/h:/bin/sh").is_none());
    }
}
