//! `state_credentials=PATH`: the user name and password for the state
//! server, in a small TOML file:
//!
//! ```toml
//! username = "pam-totp"
//! password = "..."
//! ```
//!
//! The file must be a regular file (no symlink: opened with `O_NOFOLLOW`),
//! owned by root (or by the effective uid, which is root inside sshd),
//! with no group or world permission bits, and at most
//! [`MAX_CREDENTIALS_FILE`] bytes; all of it is checked on the opened
//! descriptor, not the path. The password stays in a buffer wiped on drop;
//! `Debug` never shows it and no error ever quotes the file's content.

use std::fmt;
use std::io;
use std::path::Path;

use zeroize::Zeroizing;

use crate::core::toml_doc::{required, Doc, DocError};

use crate::sys::open::{open_checked, Broken, OpenError, Owner, Rules};

/// The largest credentials file read.
pub const MAX_CREDENTIALS_FILE: u64 = 16 * 1024;

/// A user name and password for Redis 6 ACL authentication (`AUTH user pass`).
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

/// Why a credentials (or CA) file was refused. Never quotes its content.
#[derive(Debug)]
pub enum CredentialsError {
    NotFound,
    Symlink,
    NotRegular,
    /// Owned by someone other than root or the effective uid.
    BadOwner {
        uid: u32,
    },
    /// Group or world permission bits are set.
    BadMode {
        mode: u32,
    },
    TooLarge {
        size: u64,
    },
    Io(io::Error),
    /// Not UTF-8 TOML with exactly `username` and `password` strings. The
    /// line is where the parser stopped, when it says.
    Syntax {
        line: Option<usize>,
    },
    /// An empty user name, or one with spaces or control characters.
    BadUsername,
    EmptyPassword,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::NotFound => write!(f, "does not exist"),
            CredentialsError::Symlink => write!(f, "is a symbolic link"),
            CredentialsError::NotRegular => write!(f, "is not a regular file"),
            CredentialsError::BadOwner { uid } => write!(f, "is owned by uid {uid}, not root"),
            CredentialsError::BadMode { mode } => write!(
                f,
                "has mode {:04o}: group and others must have no access (chmod 600)",
                mode & 0o7777
            ),
            CredentialsError::TooLarge { size } => {
                write!(
                    f,
                    "is {size} bytes, over the {MAX_CREDENTIALS_FILE}-byte limit"
                )
            }
            CredentialsError::Io(e) => write!(f, "cannot be read: {e}"),
            CredentialsError::Syntax { line: Some(line) } => write!(
                f,
                "is not TOML with `username` and `password` strings (line {line})"
            ),
            CredentialsError::Syntax { line: None } => {
                write!(f, "is not TOML with `username` and `password` strings")
            }
            CredentialsError::BadUsername => {
                write!(
                    f,
                    "has an empty username or one with spaces or control characters"
                )
            }
            CredentialsError::EmptyPassword => write!(f, "has an empty password"),
        }
    }
}

impl std::error::Error for CredentialsError {}

impl Credentials {
    /// Credentials given directly (the tool, tests). The same rules as the
    /// file's fields.
    pub fn new(username: &str, password: &str) -> Result<Credentials, CredentialsError> {
        if username.is_empty()
            || username
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CredentialsError::BadUsername);
        }
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword);
        }
        Ok(Credentials {
            username: username.to_owned(),
            password: Zeroizing::new(password.to_owned()),
        })
    }

    /// Reads and checks a `state_credentials=` file.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let bytes = read_private_file(path, MAX_CREDENTIALS_FILE, Access::OwnerOnly)?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| CredentialsError::Syntax { line: None })?;
        let syntax = |e: DocError| CredentialsError::Syntax {
            line: e
                .span
                .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count()),
        };
        let doc = Doc::parse(text).map_err(syntax)?;
        let read = || -> Result<_, DocError> {
            let t = doc.table().only(&["username", "password"])?;
            let username = required(t.str("username")?, "username")?;
            // Copied only into a buffer wiped on drop.
            let password = required(t.secret("password")?, "password")?;
            Ok((username, password))
        };
        let (username, password) = read().map_err(syntax)?;
        if username.is_empty()
            || username
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CredentialsError::BadUsername);
        }
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword);
        }
        Ok(Credentials {
            username: username.to_owned(),
            password,
        })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, for `AUTH` only.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Who besides the owner may have access to a file read here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No group or world bits at all (secrets).
    OwnerOnly,
    /// Others may read but not write (public data whose integrity matters,
    /// such as a CA bundle).
    NotWritableByOthers,
}

/// Opens `path` without following a symlink and without blocking on a
/// FIFO, checks the opened descriptor (regular file, owned by root or the
/// effective uid, permission bits, size), and reads it into a buffer wiped
/// on drop.
pub(crate) fn read_private_file(
    path: &Path,
    limit: u64,
    access: Access,
) -> Result<Zeroizing<Vec<u8>>, CredentialsError> {
    let rules = Rules {
        owner: Owner::RootOrEuid,
        forbidden_mode: match access {
            Access::OwnerOnly => 0o077,
            Access::NotWritableByOthers => 0o022,
        },
        max_size: limit,
    };
    open_checked(path, &rules).map_err(|e| match e {
        OpenError::NotFound => CredentialsError::NotFound,
        OpenError::Io(e) if e.raw_os_error() == Some(libc::ENOTDIR) => CredentialsError::NotFound,
        OpenError::Symlink => CredentialsError::Symlink,
        OpenError::Rule(Broken::NotRegular, _) => CredentialsError::NotRegular,
        OpenError::Rule(Broken::Owner, f) => CredentialsError::BadOwner { uid: f.uid },
        OpenError::Rule(Broken::Mode, f) => CredentialsError::BadMode { mode: f.mode },
        OpenError::Rule(Broken::TooLarge, f) => CredentialsError::TooLarge { size: f.size },
        OpenError::Io(e) => CredentialsError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const PASSWORD: &str = "s3cr3t-Pa55";

    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn good_body() -> String {
        format!("username = \"pamtotp\"\npassword = \"{PASSWORD}\"\n")
    }

    fn refused(p: &Path) -> CredentialsError {
        let e = Credentials::load(p).expect_err("accepted");
        let msg = e.to_string();
        assert!(!msg.contains(PASSWORD), "{msg}");
        assert!(!msg.contains("pamtotp"), "{msg}");
        e
    }

    #[test]
    fn loads_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", &good_body(), 0o600);
        let c = Credentials::load(&p).unwrap();
        assert_eq!(c.username(), "pamtotp");
        assert_eq!(c.password(), PASSWORD);
        let p = write(dir.path(), "r.toml", &good_body(), 0o400);
        assert!(Credentials::load(&p).is_ok());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::new("pamtotp", PASSWORD).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains(PASSWORD), "{shown}");
        assert!(shown.contains("pamtotp"));
    }

    #[test]
    fn refuses_group_or_world_bits() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o610, 0o601, 0o660, 0o666] {
            let p = write(dir.path(), "c.toml", &good_body(), mode);
            match refused(&p) {
                CredentialsError::BadMode { mode: m } => assert_eq!(m & 0o777, mode),
                e => panic!("{mode:o}: {e:?}"),
            }
            std::fs::remove_file(&p).unwrap();
        }
    }

    #[test]
    fn refuses_a_symlink_a_directory_a_fifo_and_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = write(dir.path(), "real.toml", &good_body(), 0o600);
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(refused(&link), CredentialsError::Symlink));
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(refused(&sub), CredentialsError::NotRegular));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(refused(&fifo), CredentialsError::NotRegular));
        assert!(matches!(
            refused(&dir.path().join("none")),
            CredentialsError::NotFound
        ));
    }

    #[test]
    fn refuses_a_file_owned_by_someone_else() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.toml", &good_body(), 0o600);
        // Tests run as root; a file handed to another uid must be refused.
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(matches!(
                refused(&p),
                CredentialsError::BadOwner { uid: 65534 }
            ));
        } else {
            panic!("this test needs root to give a file away");
        }
    }

    #[test]
    fn refuses_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let body = format!(
            "{}\n# {}",
            good_body(),
            "x".repeat(MAX_CREDENTIALS_FILE as usize)
        );
        let p = write(dir.path(), "c.toml", &body, 0o600);
        assert!(matches!(refused(&p), CredentialsError::TooLarge { .. }));
    }

    #[test]
    fn bad_content_is_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            // A password on a line the parser chokes on.
            format!("username = \"pamtotp\"\npassword = \"{PASSWORD}\" junk\n"),
            format!("username = \"pamtotp\"\npassword = {PASSWORD}\n"),
            format!("password = \"{PASSWORD}\"\n"),
            "username = \"pamtotp\"\n".to_owned(),
            format!("username = \"pamtotp\"\npassword = \"{PASSWORD}\"\nextra = \"{PASSWORD}\"\n"),
            format!("username = \"pamtotp\"\npassword = [\"{PASSWORD}\"]\n"),
            format!("username = 7\npassword = \"{PASSWORD}\"\n"),
            String::new(),
        ];
        for (i, body) in cases.iter().enumerate() {
            let p = write(dir.path(), &format!("c{i}.toml"), body, 0o600);
            assert!(
                matches!(refused(&p), CredentialsError::Syntax { .. }),
                "case {i}"
            );
        }
        let p = dir.path().join("bin.toml");
        std::fs::write(&p, b"username = \"\xff\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            refused(&p),
            CredentialsError::Syntax { line: None }
        ));
        let e = refused(&write(dir.path(), "l.toml", &cases[0], 0o600));
        assert!(
            matches!(e, CredentialsError::Syntax { line: Some(2) }),
            "{e:?}"
        );
    }

    #[test]
    fn refuses_empty_or_odd_fields() {
        let dir = tempfile::tempdir().unwrap();
        for (body, bad_user) in [
            (
                format!("username = \"\"\npassword = \"{PASSWORD}\"\n"),
                true,
            ),
            (
                format!("username = \"a b\"\npassword = \"{PASSWORD}\"\n"),
                true,
            ),
            (
                format!("username = \"a\\nb\"\npassword = \"{PASSWORD}\"\n"),
                true,
            ),
            (
                "username = \"pamtotp\"\npassword = \"\"\n".to_owned(),
                false,
            ),
        ] {
            let p = write(dir.path(), "c.toml", &body, 0o600);
            match (refused(&p), bad_user) {
                (CredentialsError::BadUsername, true)
                | (CredentialsError::EmptyPassword, false) => {}
                (e, _) => panic!("{body:?}: {e:?}"),
            }
        }
        assert!(matches!(
            Credentials::new("", "x"),
            Err(CredentialsError::BadUsername)
        ));
        assert!(matches!(
            Credentials::new("u", ""),
            Err(CredentialsError::EmptyPassword)
        ));
    }
}
