//! `pam-totp host-key rotate`: a new key pair, the previous private key kept
//! as host.key.old (which the module still opens with), every sealed
//! secret file found re-sealed to the new key, and host.key.old removed
//! last, only with `--drop-old-key` and only if nothing was left behind.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pam_totp::core::event::{DetailValue, EventKind};
use pam_totp::pam::passwd;
use pam_totp::secret::enrollment::FormatError;
use pam_totp::secret::enrollment::SerializeError;
use pam_totp::secret::google;
use pam_totp::secret::native::SecretFile;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::secret::seal::HostSecretKey;
use pam_totp::secret::seal::SealError;
use pam_totp::sys::atomic;
use pam_totp::sys::secret_file;
use pam_totp::sys::secret_file::ReadError;

use super::scan::{pam_templates, secret_files, PamTemplates, Target};
use super::{check_key_dir, check_pair, key_location, lock_key, present, write_key};
use super::{KEY_MODE, PUB_MODE};
use crate::access::{caller, Caller};
use crate::args::HostKeyRotateArgs;
use crate::error::{AccessError, CliError, FileError, KeyError, Result, EXIT_FAILED};
use crate::notify;
use crate::secret_file::SECRET_MODE;

/// Where system-wide secret files are, each named after its user.
const DEFAULT_SECRET_DIR: &str = "/var/lib/pam-totp/secrets";
/// Where the PAM configuration is.
const DEFAULT_PAM_DIR: &str = "/etc/pam.d";

pub(super) fn run(a: HostKeyRotateArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (settings, path) = key_location(&caller, "rotate", &a.key)?;
    check_key_dir(&path)?;
    let _lock = lock_key(&path)?;
    let keys = new_pair(&path)?;
    let current = keys[0].public();

    let secret_dir = a
        .secret_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRET_DIR));
    let pam_dir = a.pam_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_PAM_DIR));
    let users = passwd::all_users().map_err(AccessError::ListAccounts)?;
    let mut templates = vec![settings.secret.clone()];
    let pam = pam_templates(&pam_dir, &path);
    for t in &pam.templates {
        if !templates.contains(t) {
            templates.push(t.clone());
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
    // What it could not look at: said every time, counted where it can be.
    eprintln!(
        "pam-totp: looked at the files of {} accounts the passwd database lists, with {} \
         secret path template(s); accounts NSS does not list (SSSD or LDAP without \
         enumeration) were not checked",
        users.len(),
        templates.len()
    );
    let detail = vec![
        ("host_key", DetailValue::Text(current.id())),
        ("resealed", DetailValue::Int(tally.resealed as u64)),
        ("problems", DetailValue::Int(tally.problems as u64)),
    ];
    notify::emit(&settings, &caller, "", EventKind::HostKeyRotated, detail);
    finish(&path, &current, &tally, &pam, a.drop_old_key)
}

/// The keys to re-seal with, the new one first: a new pair (the current
/// private key kept as host.key.old first), or, when host.key.old exists,
/// the pair of the rotation that stopped half-way.
fn new_pair(path: &Path) -> Result<Vec<HostSecretKey>> {
    let old_path = seal::old_path(path);
    let pub_path = seal::public_path(path);
    let mut keys = match seal::load_secret_keys(path) {
        Ok(k) => k,
        Err(e) if !present(path)? => return Err(KeyError::NoHostKey(e).into()),
        Err(e) => return Err(KeyError::HostKeyInput(e).into()),
    };
    if keys.len() == 2 && keys[0].public() == keys[1].public() {
        // A rotation stopped right after keeping the key: nothing changed yet.
        fs::remove_file(&old_path).map_err(|err| FileError::Remove {
            path: old_path.clone(),
            err,
        })?;
        keys.truncate(1);
    }
    if keys.len() == 1 {
        // The module opens files with host.key and host.key.old: keep the
        // current key there first, then replace the pair.
        write_key(&old_path, &keys[0].to_text(), KEY_MODE, false)?;
        let new = HostSecretKey::generate().map_err(KeyError::HostKey)?;
        write_key(path, &new.to_text(), KEY_MODE, true)?;
        write_key(&pub_path, &new.public().to_text(), PUB_MODE, true)?;
        check_pair(path)?;
        let keys = seal::load_secret_keys(path).map_err(KeyError::HostKey)?;
        eprintln!(
            "pam-totp: new host key {}; the previous one ({}) is kept as {} until every \
             sealed secret is re-sealed",
            keys[0].public().id(),
            keys[1].public().id(),
            old_path.display()
        );
        return Ok(keys);
    }
    // A rotation stopped half-way: finish it.
    let public = keys[0].public();
    if seal::load_public_key(path).ok().as_ref() != Some(&public) {
        write_key(&pub_path, &public.to_text(), PUB_MODE, true)?;
    }
    eprintln!(
        "pam-totp: {} exists: finishing the rotation to host key {}",
        old_path.display(),
        public.id()
    );
    Ok(keys)
}

/// Reports the rotation and removes host.key.old when asked and safe.
fn finish(
    path: &Path,
    current: &HostPublicKey,
    tally: &Tally,
    pam: &PamTemplates,
    drop_old_key: bool,
) -> Result<ExitCode> {
    let old_path = seal::old_path(path);
    let summary = format!(
        "{} re-sealed, {} already sealed to the new key, {} plain (left as they are)",
        tally.resealed, tally.current, tally.plain
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
    if !drop_old_key {
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
        .map_err(|err| FileError::Remove {
            path: old_path.clone(),
            err,
        })?;
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

enum Outcome {
    Missing,
    /// Not sealed (native with `secret`, or Google Authenticator): untouched.
    Plain,
    /// Already sealed to the current key: untouched.
    Current,
    Resealed,
    /// Could not be re-sealed: why.
    Problem(Problem),
}

/// Why a sealed file was not re-sealed.
enum Problem {
    Read(ReadError),
    Parse(FormatError),
    Seal(SealError),
    Serialize(SerializeError),
    Identity(CliError),
    Write(io::Error),
    /// Written, but reading it back as the module would failed.
    ReadBack(Box<Problem>),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Read(e) => write!(f, "{e}"),
            Problem::Parse(e) => write!(f, "{e}"),
            Problem::Seal(e) => write!(f, "{e}"),
            Problem::Serialize(e) => write!(f, "not rewritten: {e}"),
            Problem::Identity(e) => write!(f, "{e}"),
            Problem::Write(e) => write!(f, "cannot write it: {e}"),
            Problem::ReadBack(why) => write!(f, "re-sealed, but it does not read back: {why}"),
        }
    }
}

/// Re-seals one file to `current` if it is sealed to another key: read as
/// the module reads it, opened with `keys`, sealed again, written
/// atomically as `enroll` writes it, and read back to check it opens with
/// the current key alone.
fn reseal(caller: &Caller, keys: &[HostSecretKey], current: &HostPublicKey, t: &Target) -> Outcome {
    let bytes = match secret_file::read_secret_file(&t.loc.path, &t.user, t.loc.as_owner) {
        Ok(b) => b,
        // A directory that is not there holds no file to re-seal (system
        // accounts with a home such as /nonexistent).
        Err(ReadError::NotFound) => return Outcome::Missing,
        Err(ReadError::NoDirectory { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
            return Outcome::Missing
        }
        Err(e) => return Outcome::Problem(Problem::Read(e)),
    };
    if google::looks_like_google(&bytes) {
        return Outcome::Plain;
    }
    let mut file = match SecretFile::parse(&bytes) {
        Ok(f) => f,
        Err(e) => return Outcome::Problem(Problem::Parse(e)),
    };
    // Every key of the file that is sealed (several devices, several keys).
    let sealed: Vec<&str> = file
        .keys
        .iter()
        .filter_map(|k| k.sealed_secret.as_deref())
        .collect();
    if sealed.is_empty() {
        return Outcome::Plain;
    }
    if sealed
        .iter()
        .all(|s| seal::sealed_key_id(s) == Some(current.id().as_str()))
    {
        return Outcome::Current;
    }
    match rewrite(caller, keys, current, t, &mut file) {
        Ok(()) => Outcome::Resealed,
        Err(why) => Outcome::Problem(why),
    }
}

/// Seals the sealed secrets of `file` to `current`, writes it, and reads
/// it back.
fn rewrite(
    caller: &Caller,
    keys: &[HostSecretKey],
    current: &HostPublicKey,
    t: &Target,
    file: &mut SecretFile,
) -> std::result::Result<(), Problem> {
    for k in &mut file.keys {
        let Some(sealed) = k.sealed_secret.as_deref() else {
            continue;
        };
        let secret = seal::open(keys, &t.user.name, sealed).map_err(Problem::Seal)?;
        let resealed = seal::seal(current, &t.user.name, &secret).map_err(Problem::Seal)?;
        k.sealed_secret = Some(resealed);
    }
    let text = file.to_toml().map_err(Problem::Serialize)?;
    {
        let _id = t.loc.identity(caller, &t.user).map_err(Problem::Identity)?;
        atomic::write_atomic(&t.loc.path, text.as_bytes(), SECRET_MODE).map_err(Problem::Write)?;
    }
    let read_back = || -> std::result::Result<(), Problem> {
        let bytes = secret_file::read_secret_file(&t.loc.path, &t.user, t.loc.as_owner)
            .map_err(Problem::Read)?;
        let f = SecretFile::parse(&bytes).map_err(Problem::Parse)?;
        f.keys
            .iter()
            .filter_map(|k| k.sealed_secret.as_deref())
            .try_for_each(|sealed| {
                seal::open(&keys[..1], &t.user.name, sealed)
                    .map(drop)
                    .map_err(Problem::Seal)
            })
    };
    read_back().map_err(|why| Problem::ReadBack(Box::new(why)))
}
