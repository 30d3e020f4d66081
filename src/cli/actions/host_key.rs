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
//!   last, only when asked (`--drop-old-key`) and only if every sealed file
//!   it found now opens with the new key. A rotation that stopped half-way,
//!   or kept host.key.old, is finished by the next `rotate`.
//!
//! What `rotate` cannot see, it says: accounts NSS does not enumerate, and
//! pam.d files it cannot read (their `secret=` may name more files).
//!
//! Both take an exclusive `flock` on the key's directory, without waiting:
//! a second `host-key` command refuses while one runs, so two rotations
//! never interleave (one rotation, not two in a row, is what was asked).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{Flock, FlockArg};

use pam_totp::config;
use pam_totp::pam::passwd;
use pam_totp::secret::google;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::seal;
use pam_totp::secret::seal::{HostPublicKey, HostSecretKey};
use pam_totp::sys::atomic;
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::ReadError;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use super::{caller, failed, input, settings, Caller, Location, Result, SECRET_MODE};
use crate::cli::{
    HostKeyCommand, HostKeyInitArgs, HostKeyPath, HostKeyRotateArgs, UserArgs, EXIT_FAILED,
};

/// Mode of host.key (root only) and host.pub (anyone may seal).
const KEY_MODE: u32 = 0o600;
const PUB_MODE: u32 = 0o644;
/// Where system-wide secret files are, each named after its user.
const DEFAULT_SECRET_DIR: &str = "/var/lib/pam-totp/secrets";
/// Where the PAM configuration is.
const DEFAULT_PAM_DIR: &str = "/etc/pam.d";

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
    let dir = atomic::parent_dir(path);
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

/// The lock every `host-key` command holds while it works: an exclusive
/// flock on the key's directory (no file of its own to leave behind),
/// released when the process ends, however it ends. Not waited for.
fn lock_key_dir(path: &Path) -> Result<Flock<fs::File>> {
    let dir = atomic::parent_dir(path);
    let file = fs::File::open(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        if e == nix::errno::Errno::EWOULDBLOCK {
            failed(format!(
                "another `pam-totp host-key` command is changing the host key in {}; \
                 nothing was done: run this again when it has finished",
                dir.display()
            ))
        } else {
            failed(format!("cannot lock {}: {e}", dir.display()))
        }
    })
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
        atomic::write_atomic(path, text.as_bytes(), mode)
    } else {
        atomic::write_atomic_new(path, text.as_bytes(), mode)
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
    let dir = atomic::parent_dir(&path);
    if !present(dir)? {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    check_key_dir(&path)?;
    let _lock = lock_key_dir(&path)?;
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
    let _lock = lock_key_dir(&path)?;
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
    let pam_dir = a.pam_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PAM_DIR));
    let users = passwd::all_users()
        .map_err(|e| failed(format!("cannot list the accounts (getpwent): {e}")))?;
    let mut templates = vec![settings.secret.clone()];
    let pam = pam_templates(&pam_dir, &path);
    for t in pam.templates {
        if !templates.contains(&t) {
            templates.push(t);
        }
    }
    let mut tally = Tally::default();
    for target in secret_files(&templates, &users, &secret_dir)? {
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
    // What it could not look at: said every time, counted where it can be.
    eprintln!(
        "pam-totp: looked at the files of {} accounts the passwd database lists, with {} \
         secret path template(s); accounts NSS does not list (SSSD or LDAP without \
         enumeration) were not checked",
        users.len(),
        templates.len()
    );
    for (file, why) in &pam.unreadable {
        eprintln!(
            "pam-totp: cannot read {}: {why}; secret files only its pam_totp.so lines \
             name were not checked",
            file.display()
        );
    }
    let unchecked = format!(
        "not checked: accounts NSS does not list, {} pam.d file(s) that could not be read",
        pam.unreadable.len()
    );
    if tally.problems > 0 {
        eprintln!(
            "pam-totp: {summary}; {} could not be re-sealed: {} is kept, so the module still \
             opens what is sealed to it. Fix or remove those files and run \
             `pam-totp host-key rotate --drop-old-key` again to finish.",
            tally.problems,
            old_path.display()
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    if !a.drop_old_key {
        eprintln!(
            "pam-totp: rotated to host key {}: {summary}; {unchecked}. {} is kept, so what \
             is still sealed to it opens: once every sealed file is re-sealed, run \
             `pam-totp host-key rotate --drop-old-key` to remove it.",
            current.id(),
            old_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    fs::remove_file(&old_path)
        .and_then(|()| atomic::sync_dir(atomic::parent_dir(&old_path)))
        .map_err(|e| failed(format!("cannot remove {}: {e}", old_path.display())))?;
    eprintln!(
        "pam-totp: rotated to host key {}: {summary}; {unchecked}; removed {} \
         (--drop-old-key)",
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

/// Every place a secret file may be: each account's file as each `secret`
/// template names it, and each file in `secret_dir` (named after its user).
/// Each path once.
fn secret_files(
    templates: &[String],
    users: &[UserInfo],
    secret_dir: &Path,
) -> Result<Vec<Target>> {
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    let mut add = |user: UserInfo, path: PathBuf| {
        if seen.insert(path.clone()) {
            targets.push(Target {
                loc: Location {
                    as_owner: secret_file::accessed_as_owner(&user, &path),
                    path,
                },
                user,
            });
        }
    };
    for template in templates {
        for user in users {
            if let Ok(path) = pam_totp::config::expand_secret(template, user) {
                add(user.clone(), path);
            }
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
        if !users::valid_user_name(&name) || name.ends_with(".tmp") {
            continue;
        }
        let user = users::lookup_user(&name)
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

/// The `secret` templates the pam.d lines of pam_totp.so use with this
/// host key, and the pam.d files that could not be read.
#[derive(Default)]
struct PamTemplates {
    templates: Vec<String>,
    unreadable: Vec<(PathBuf, String)>,
}

/// Reads every file in `pam_dir`; for each pam_totp.so line, the settings
/// it gives (its arguments over its `config=` file) as the module builds
/// them. A line whose settings do not build is one the module refuses
/// anyway; a line with another host key seals to another key.
fn pam_templates(pam_dir: &Path, host_key: &Path) -> PamTemplates {
    let mut out = PamTemplates::default();
    let entries = match fs::read_dir(pam_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.unreadable.push((pam_dir.to_owned(), e.to_string()));
            return out;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for file in paths {
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => continue,
            Err(e) => {
                out.unreadable.push((file, e.to_string()));
                continue;
            }
        };
        for args in module_lines(&text) {
            let Ok(s) = pam_totp::config::from_args(&args, &config::read_config_file) else {
                continue;
            };
            if s.host_key == host_key && !out.templates.contains(&s.secret) {
                out.templates.push(s.secret);
            }
        }
    }
    out
}

/// The arguments of each pam_totp.so line of a pam.d file.
fn module_lines(text: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = Vec::new();
        let mut rest = line.trim();
        // Words, with `[...]` (a control, or an argument) as one word.
        while !rest.is_empty() {
            let end = if rest.starts_with('[') {
                rest.find(']').map_or(rest.len(), |i| i + 1)
            } else {
                rest.find(char::is_whitespace).unwrap_or(rest.len())
            };
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
        // type, control, module, arguments
        let is_ours = words
            .get(2)
            .and_then(|m| Path::new(m).file_name())
            .is_some_and(|n| n == "pam_totp.so");
        if is_ours {
            let args = words[3..]
                .iter()
                .map(|w| {
                    w.strip_prefix('[')
                        .and_then(|w| w.strip_suffix(']'))
                        .unwrap_or(w)
                        .to_owned()
                })
                .collect();
            lines.push(args);
        }
    }
    lines
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
    let bytes = match secret_file::read_secret_file(&t.loc.path, &t.user, as_owner) {
        Ok(b) => b,
        // A directory that is not there holds no file to re-seal (system
        // accounts with a home such as /nonexistent).
        Err(ReadError::NotFound) => return Outcome::Missing,
        Err(ReadError::NoDirectory { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
            return Outcome::Missing
        }
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
    let written = match t.loc.identity(caller, &t.user) {
        Ok(_id) => atomic::write_atomic(&t.loc.path, text.as_bytes(), SECRET_MODE),
        Err(e) => return Outcome::Problem(e.to_string()),
    };
    if let Err(e) = written {
        return Outcome::Problem(format!("cannot write it: {e}"));
    }
    let check = secret_file::read_secret_file(&t.loc.path, &t.user, as_owner)
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
    fn pam_lines_of_the_module() {
        let text = "\
# auth required pam_totp.so secret=/commented
auth required pam_unix.so secret=/not-ours
auth [success=1 default=ignore] /lib/security/pam_totp.so secret=/a/${USER} nullok
-auth required pam_totp.so  config=/etc/x.toml # trailing
auth required pam_totp.so.old secret=/not-either
";
        assert_eq!(
            module_lines(text),
            [
                vec!["secret=/a/${USER}".to_owned(), "nullok".to_owned()],
                vec!["config=/etc/x.toml".to_owned()],
            ]
        );
    }
}
