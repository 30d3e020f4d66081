//! `pam-totp host-key export|import`: one key pair for a fleet (or a group
//! of servers), so a secret sealed on one server (and kept in a central
//! store) opens on all of them.
//!
//! The exported form is host.key's line and host.pub's line, after one
//! comment line: the files' own texts, so `import` parses each with the
//! library's own parser. `import` installs a pair as `init` writes one
//! (same lock, modes, order: private key first), and replaces a different
//! key only with `--force`, keeping it as host.key.old as `rotate` does.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::process::ExitCode;

use zeroize::Zeroizing;

use pam_totp::secret::seal;
use pam_totp::secret::seal::HostPublicKey;
use pam_totp::secret::seal::HostSecretKey;
use pam_totp::sys::atomic;
use pam_totp::sys::open::{open_checked, Broken, OpenError, Owner, Rules};

use super::{check_key_dir, check_pair, key_location, lock_key, present, write_key};
use super::{KEY_MODE, PUB_MODE};
use crate::access::caller;
use crate::args::{HostKeyExportArgs, HostKeyImportArgs};
use crate::error::{KeyError, Result};
use crate::output::print_out;

/// More than an exported pair ever holds.
const MAX_EXPORT: u64 = 4096;

pub(super) fn export(a: HostKeyExportArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (_, path) = key_location(&caller, "export", &a.key)?;
    let key = check_pair(&path)?;
    let id = key.public().id();
    eprintln!(
        "pam-totp: warning: standard output holds the private host key {id}: whoever has it \
         opens every secret sealed to it. Keep it as root's (mode 0600), move it only over \
         a channel you trust, and remove copies after `pam-totp host-key import`."
    );
    let mut text = Zeroizing::new(format!(
        "# pam-totp host key pair {id} (secret: host.key, then host.pub)\n"
    ));
    text.push_str(&key.to_text());
    text.push_str(&key.public().to_text());
    print_out(&text)?;
    if present(&seal::old_path(&path))? {
        eprintln!(
            "pam-totp: note: {} (kept by a rotation) is not exported",
            seal::old_path(&path).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn import(a: HostKeyImportArgs) -> Result<ExitCode> {
    let caller = caller()?;
    let (_, path) = key_location(&caller, "import", &a.key)?;
    let (key, public) = read_pair(&a.file)?;

    let pub_path = seal::public_path(&path);
    let old_path = seal::old_path(&path);
    create_key_dir(&path)?;
    check_key_dir(&path)?;
    let _lock = lock_key(&path)?;
    let id = public.id();

    if !present(&path)? {
        return install_first(&path, &key, &public, a.force);
    }

    let current = seal::load_secret_keys(&path).map_err(KeyError::HostKeyInput)?;
    if current[0].public() == public {
        if seal::load_public_key(&path).ok().as_ref() != Some(&public) {
            write_key(&pub_path, &public.to_text(), PUB_MODE, true)?;
        }
        check_pair(&path)?;
        eprintln!("pam-totp: the host key pair {id} is already this host's; nothing changed");
        return Ok(ExitCode::SUCCESS);
    }
    if !a.force {
        return Err(KeyError::ImportWouldReplace {
            key: path,
            current: current[0].public().id(),
            new: id,
        }
        .into());
    }
    if current.len() > 1 || present(&old_path)? {
        return Err(KeyError::ImportDuringRotation { old: old_path }.into());
    }
    // As `rotate`: keep the current key where the module still opens with
    // it, then replace the pair.
    write_key(&old_path, &current[0].to_text(), KEY_MODE, false)?;
    write_key(&path, &key.to_text(), KEY_MODE, true)?;
    write_key(&pub_path, &public.to_text(), PUB_MODE, true)?;
    check_pair(&path)?;
    eprintln!(
        "pam-totp: installed the host key pair {id}; the previous key ({}) is kept as {}, so \
         what is sealed to it still opens: `pam-totp host-key rotate --drop-old-key` re-seals \
         this host's files to {id} and removes it",
        current[0].public().id(),
        old_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The pair in `file` (`-`: standard input), checked to be one pair.
fn read_pair(file: &Path) -> Result<(HostSecretKey, HostPublicKey)> {
    let from = match file.as_os_str() == "-" {
        true => "standard input".to_owned(),
        false => file.display().to_string(),
    };
    let text = match file.as_os_str() == "-" {
        true => read_limited(io::stdin().lock(), &from)?,
        false => read_key_file(file, &from)?,
    };
    let (key, public) = parse_pair(&text, &from)?;
    if key.public() != public {
        return Err(KeyError::ImportMismatch { from }.into());
    }
    Ok((key, public))
}

/// Creates the directory of the host key `path` (0755) if it is missing.
fn create_key_dir(path: &Path) -> Result<()> {
    let dir = atomic::parent_dir(path);
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
    Ok(())
}

/// Installs the pair where there is no host key yet (a host.pub alone is
/// replaced only if it is this pair's, or with `--force`).
fn install_first(
    path: &Path,
    key: &HostSecretKey,
    public: &HostPublicKey,
    force: bool,
) -> Result<ExitCode> {
    let pub_path = seal::public_path(path);
    if present(&pub_path)? {
        let same = seal::load_public_key(path).ok().as_ref() == Some(public);
        if !same && !force {
            return Err(KeyError::PubWithoutKey {
                public: pub_path,
                key: path.to_owned(),
            }
            .into());
        }
    }
    write_key(path, &key.to_text(), KEY_MODE, false)?;
    write_key(&pub_path, &public.to_text(), PUB_MODE, true)?;
    check_pair(path)?;
    eprintln!(
        "pam-totp: installed the host key pair {}: {} (root, 0600) and {} (0644)",
        public.id(),
        path.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads FILE: not through a symlink, a regular file that gives group and
/// others no access (it holds a private key).
fn read_key_file(path: &Path, from: &str) -> Result<Zeroizing<String>> {
    let from = || from.to_owned();
    let rules = Rules {
        owner: Owner::Any,
        forbidden_mode: 0o077,
        max_size: MAX_EXPORT,
    };
    let bytes = open_checked(path, &rules).map_err(|e| match e {
        OpenError::Symlink => KeyError::ImportSymlink { from: from() },
        OpenError::Rule(Broken::NotRegular, _) => KeyError::ImportNotFile { from: from() },
        OpenError::Rule(Broken::Mode, found) => KeyError::ImportUnsafeMode {
            from: from(),
            mode: found.mode & 0o7777,
        },
        OpenError::Rule(..) => KeyError::ImportMalformed {
            from: from(),
            why: "it is too large",
        },
        OpenError::NotFound => KeyError::ImportRead {
            from: from(),
            err: io::ErrorKind::NotFound.into(),
        },
        OpenError::Io(err) => KeyError::ImportRead { from: from(), err },
    })?;
    read_limited(&bytes[..], &from())
}

fn read_limited(input: impl Read, from: &str) -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    input
        .take(MAX_EXPORT + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| KeyError::ImportRead {
            from: from.to_owned(),
            err,
        })?;
    let malformed = |why| KeyError::ImportMalformed {
        from: from.to_owned(),
        why,
    };
    if bytes.len() as u64 > MAX_EXPORT {
        return Err(malformed("it is too large").into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed("it is not text"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// The private and the public key of an exported pair: exactly one line
/// of each; comments (#) and blank lines ignored; anything else refused.
fn parse_pair(text: &str, from: &str) -> Result<(HostSecretKey, HostPublicKey)> {
    let malformed = |why| KeyError::ImportMalformed {
        from: from.to_owned(),
        why,
    };
    let (mut key, mut public) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(k) = HostSecretKey::from_text(line) {
            if key.replace(k).is_some() {
                return Err(malformed("it holds two private keys").into());
            }
        } else if let Some(p) = HostPublicKey::from_text(line) {
            if public.replace(p).is_some() {
                return Err(malformed("it holds two public keys").into());
            }
        } else {
            return Err(malformed("a line is neither host.key's nor host.pub's").into());
        }
    }
    match (key, public) {
        (Some(k), Some(p)) => Ok((k, p)),
        (None, _) => Err(malformed("no private key (host.key's line)").into()),
        (_, None) => Err(malformed("no public key (host.pub's line)").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_strictly() {
        let k = HostSecretKey::generate().unwrap();
        let text = format!("# c\n\n{}{}", k.to_text().as_str(), k.public().to_text());
        let (key, public) = parse_pair(&text, "x").unwrap();
        assert_eq!(key.public(), public);
        assert!(parse_pair(&k.public().to_text(), "x").is_err());
        assert!(parse_pair(k.to_text().as_str(), "x").is_err());
        let extra = format!("{text}garbage\n");
        assert!(parse_pair(&extra, "x").is_err());
        let twice = format!("{text}{}", k.to_text().as_str());
        assert!(parse_pair(&twice, "x").is_err());
    }
}
