//! The host key pair: `host-key init|rotate|export|import` and sealing to host.pub.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use pam_totp::core::logtext::token;
use pam_totp::secret::seal::SealError;
use pam_totp::sys::locks::Holder;

use super::{EXIT_FAILED, EXIT_INPUT};

#[derive(Debug)]
pub enum KeyError {
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
    /// The key's lock file (`store::open_lock`) cannot be opened or made.
    KeyLockOpen {
        lock: PathBuf,
        err: io::Error,
    },
    KeyBusy {
        dir: PathBuf,
    },
    /// The key's directory is locked by another user's process: one
    /// sealing a secret, or one holding it for no good reason; `holders`
    /// as /proc/locks names them (empty if it names none).
    KeyDirBusy {
        dir: PathBuf,
        holders: Vec<Holder>,
    },
    /// The host key changed between the start of an enrollment and the
    /// write of its sealed secret.
    KeyChanged {
        key: PathBuf,
    },
    KeyLock {
        lock: PathBuf,
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
    /// `host-key import`: the file given, and what is wrong with it.
    ImportRead {
        from: String,
        err: io::Error,
    },
    ImportSymlink {
        from: String,
    },
    ImportNotFile {
        from: String,
    },
    ImportUnsafeMode {
        from: String,
        mode: u32,
    },
    ImportMalformed {
        from: String,
        why: &'static str,
    },
    ImportMismatch {
        from: String,
    },
    /// Another key is installed (`--force` replaces it).
    ImportWouldReplace {
        key: PathBuf,
        current: String,
        new: String,
    },
    /// host.key.old exists: a rotation is not finished.
    ImportDuringRotation {
        old: PathBuf,
    },
}

impl KeyError {
    /// 2: refused before anything was written; 1: the work failed.
    pub fn exit_status(&self) -> u8 {
        use KeyError::*;
        match self {
            HostPubUnusable(_)
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
            | ImportRead { .. }
            | ImportSymlink { .. }
            | ImportNotFile { .. }
            | ImportUnsafeMode { .. }
            | ImportMalformed { .. }
            | ImportMismatch { .. }
            | ImportWouldReplace { .. }
            | ImportDuringRotation { .. } => EXIT_INPUT,
            WrittenPairMismatch { .. }
            | HostKey(_)
            | KeyLockOpen { .. }
            | KeyBusy { .. }
            | KeyDirBusy { .. }
            | KeyChanged { .. }
            | KeyLock { .. }
            | CreateDir { .. } => EXIT_FAILED,
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyError::*;
        match self {
            HostPubUnusable(_)
            | HostKeyUnusable { .. }
            | PairMismatch { .. }
            | WrittenPairMismatch { .. }
            | HostKey(_)
            | HostKeyInput(_)
            | NoHostKey(_)
            | BadHostKeyPath { .. }
            | KeyAppeared { .. }
            | PubWithoutKey { .. }
            | KeyExists { .. } => self.fmt_key_pair(f),
            KeyDirUnreadable { .. }
            | KeyLockOpen { .. }
            | KeyDirNotDir { .. }
            | KeyDirUnsafe { .. }
            | KeyBusy { .. }
            | KeyDirBusy { .. }
            | KeyChanged { .. }
            | KeyLock { .. }
            | CreateDir { .. } => self.fmt_key_dir(f),
            ImportRead { .. }
            | ImportSymlink { .. }
            | ImportNotFile { .. }
            | ImportUnsafeMode { .. }
            | ImportMalformed { .. }
            | ImportMismatch { .. }
            | ImportWouldReplace { .. }
            | ImportDuringRotation { .. } => self.fmt_import(f),
        }
    }
}

impl KeyError {
    /// host.key and host.pub themselves: unusable, mismatched, missing or in the way.
    fn fmt_key_pair(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyError::*;
        match self {
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
            KeyAppeared { path } => {
                write!(f, "{} appeared meanwhile; not replacing it", path.display())
            }
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
            _ => unreachable!("fmt sends only key-pair errors here"),
        }
    }

    /// The directory that holds the key pair, and its lock.
    fn fmt_key_dir(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyError::*;
        match self {
            KeyDirUnreadable { dir, err } => write!(f, "{}: {err}", dir.display()),
            KeyLockOpen { lock, err } => write!(f, "cannot open {}: {err}", lock.display()),
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
            KeyDirBusy { dir, holders } => write!(
                f,
                "{} is locked by another process (an enrollment sealing a secret, \
                 or another user holding it: {}); nothing was done: \
                 run this again when it is free",
                dir.display(),
                describe_holders(holders)
            ),
            KeyChanged { key } => write!(
                f,
                "the host key {} changed while this command ran (a `pam-totp host-key` \
                 command replaced it); nothing was written: run this again",
                key.display()
            ),
            KeyLock { lock, err } => write!(f, "cannot lock {}: {err}", lock.display()),
            CreateDir { dir, err } => write!(f, "cannot create {}: {err}", dir.display()),
            _ => unreachable!("fmt sends only key-directory errors here"),
        }
    }

    /// `host-key import`: the file given, and the key it would replace.
    fn fmt_import(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyError::*;
        match self {
            ImportRead { from, err } => write!(f, "cannot read {from}: {err}"),
            ImportSymlink { from } => {
                write!(f, "{from} is a symlink; give the key pair's own file")
            }
            ImportNotFile { from } => write!(f, "{from} is not a regular file"),
            ImportUnsafeMode { from, mode } => write!(
                f,
                "{from} has mode {mode:04o}: group or others may read it, and it holds a \
                 private key; chmod 600 it (and ask who else saw it)"
            ),
            ImportMalformed { from, why } => write!(
                f,
                "{from} is not a key pair as `pam-totp host-key export` prints it: {why}"
            ),
            ImportMismatch { from } => write!(
                f,
                "{from}: the public key is not the private key's; nothing was installed"
            ),
            ImportWouldReplace { key, current, new } => write!(
                f,
                "{} holds another key ({current}, not {new}); --force replaces it and keeps \
                 it as host.key.old, so what is sealed to it still opens",
                key.display()
            ),
            ImportDuringRotation { old } => write!(
                f,
                "{} exists: a rotation is not finished; run `pam-totp host-key rotate \
                 --drop-old-key` first",
                old.display()
            ),
            _ => unreachable!("fmt sends only import errors here"),
        }
    }
}

/// The processes holding a lock, for a message: `pid 4242 (flock, uid
/// 65534)`, joined with commas; the process's name, which it chose
/// itself, as a [`token`]. Without any: where to look.
fn describe_holders(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "see /proc/locks".to_owned();
    }
    let one = |h: &Holder| {
        let name = h
            .command
            .as_deref()
            .map_or_else(|| "gone".to_owned(), token);
        match h.uid {
            Some(uid) => format!("pid {} ({name}, uid {uid})", h.pid),
            None => format!("pid {} ({name})", h.pid),
        }
    };
    let all: Vec<String> = holders.iter().map(one).collect();
    format!("held by {}", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_named_with_their_names_escaped() {
        let h = |pid, uid, command: Option<&str>| Holder {
            pid,
            uid,
            command: command.map(str::to_owned),
        };
        assert_eq!(describe_holders(&[]), "see /proc/locks");
        assert_eq!(
            describe_holders(&[h(7, Some(65534), Some("flock")), h(9, None, None)]),
            "held by pid 7 (flock, uid 65534), pid 9 (gone)"
        );
        // A process names itself: it cannot add a line or a field.
        let forged = describe_holders(&[h(8, Some(1000), Some("x\nroot=y z"))]);
        assert_eq!(forged, "held by pid 8 ('x\\x0aroot\\x3dy\\x20z', uid 1000)");
    }
}
