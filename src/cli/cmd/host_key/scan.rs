//! Where `rotate` looks for secret files: each account's file as each
//! `secret` template names it (the config file's, and those of the
//! pam_totp.so lines in pam.d that use this host key), and every file in
//! the system-wide directory.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pam_totp::config;
use pam_totp::sys::users;
use pam_totp::sys::users::UserInfo;

use crate::access::{lookup_user, Location};
use crate::error::{FileError, Result};

/// A secret file and whose it is.
pub struct Target {
    pub user: UserInfo,
    pub loc: Location,
}

/// Every place a secret file may be: each account's file as each `secret`
/// template names it, and each file in `secret_dir` (named after its user).
/// Each path once.
pub fn secret_files(
    templates: &[String],
    users: &[UserInfo],
    secret_dir: &Path,
) -> Result<Vec<Target>> {
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    let mut add = |user: UserInfo, path: PathBuf| {
        if seen.insert(path.clone()) {
            targets.push(Target {
                loc: Location::of(&user, path),
                user,
            });
        }
    };
    for template in templates {
        for user in users {
            if let Ok(path) = config::expand_secret(template, user) {
                add(user.clone(), path);
            }
        }
    }
    let entries = match fs::read_dir(secret_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(targets),
        Err(err) => {
            return Err(FileError::ReadDir {
                dir: secret_dir.to_owned(),
                err,
            }
            .into())
        }
    };
    for entry in entries {
        let entry = entry.map_err(|err| FileError::ReadDir {
            dir: secret_dir.to_owned(),
            err,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of an atomic write, and anything not a user name.
        if !users::valid_user_name(&name) || name.ends_with(".tmp") {
            continue;
        }
        let user = lookup_user(&name)?.unwrap_or(UserInfo {
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
pub struct PamTemplates {
    pub templates: Vec<String>,
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// Reads every file in `pam_dir`; for each pam_totp.so line, the settings
/// it gives (its arguments over its `config=` file) as the module builds
/// them. A line whose settings do not build is one the module refuses
/// anyway; a line with another host key seals to another key.
pub fn pam_templates(pam_dir: &Path, host_key: &Path) -> PamTemplates {
    let mut out = PamTemplates::default();
    let entries = match fs::read_dir(pam_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.unreadable.push((pam_dir.to_owned(), e));
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
                out.unreadable.push((file, e));
                continue;
            }
        };
        for args in module_lines(&text) {
            let Ok(s) = config::from_args(&args, &config::read_config_file) else {
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
