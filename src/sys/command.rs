//! Running a root-owned command as another user, with a deadline, and
//! capturing what it prints: for `secret_command=`
//! (src/login/secret_command.rs).
//!
//! The command runs without a shell, with one argument, a fixed minimal
//! environment, `/` as its directory, stdin from /dev/null, in a process
//! group of its own. Standard output (at most [`MAX_OUTPUT`] bytes kept)
//! and the first line of standard error are read together with `poll`, so
//! neither pipe can fill up and block the command, and all of it within
//! the deadline. At the deadline, or when the output is too large, the
//! whole process group is killed (SIGKILL) and the command reaped.
//!
//! What happens in the child between fork and exec (dropping to the
//! command's user, marking inherited descriptors close-on-exec) needs
//! `unsafe` and lives at the PAM edge (src/pam/confine.rs); [`run`] takes
//! it as `confine`, and the login reaches it through its `PamIo` trait.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use zeroize::{Zeroize, Zeroizing};

/// The most standard output kept; more is an error.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// The most of standard error's first line kept (bytes).
pub const MAX_STDERR_LINE: usize = 200;
/// The command's whole environment.
pub const ENVIRONMENT: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin"), ("LANG", "C")];

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// Absolute, checked with [`check_owned_by_root`].
    pub program: PathBuf,
    /// The only argument.
    pub arg: String,
    /// The identity the command runs with (groups: none but `gid`).
    pub uid: u32,
    pub gid: u32,
    pub timeout: Duration,
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exit(i32),
    Signal(i32),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Exit(n) => write!(f, "exit status {n}"),
            Ended::Signal(n) => write!(f, "killed by signal {n}"),
        }
    }
}

/// A command that ran to its end.
pub struct CommandOutput {
    pub ended: Ended,
    pub stdout: Zeroizing<Vec<u8>>,
    /// The first line of standard error (lossy UTF-8, at most
    /// [`MAX_STDERR_LINE`] bytes, no newline); empty if none.
    pub stderr_line: String,
}

/// Why the command gave no output to use.
#[derive(Debug)]
pub enum CommandErrorKind {
    /// It could not be started (exec failed, the identity could not be
    /// taken).
    Spawn(io::Error),
    /// Reading its output or waiting for it failed.
    Io(io::Error),
    /// Still running at the deadline: killed with its process group.
    Timeout(Duration),
    /// More than [`MAX_OUTPUT`] bytes on standard output: killed.
    TooMuchOutput,
}

#[derive(Debug)]
pub struct CommandError {
    pub kind: CommandErrorKind,
    /// As in [`CommandOutput::stderr_line`].
    pub stderr_line: String,
}

impl fmt::Display for CommandErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandErrorKind::Spawn(e) => write!(f, "could not be started: {e}"),
            CommandErrorKind::Io(e) => write!(f, "reading its output failed: {e}"),
            CommandErrorKind::Timeout(t) => {
                write!(f, "timed out after {} ms (killed)", t.as_millis())
            }
            CommandErrorKind::TooMuchOutput => {
                write!(f, "printed more than {MAX_OUTPUT} bytes (killed)")
            }
        }
    }
}

/// Why a command file cannot be run (see [`check_owned_by_root`]). The
/// path it names is the one at fault; [`fmt::Display`] gives the reason
/// without the path, which the caller escapes for the log.
#[derive(Debug)]
pub enum CommandPathError {
    NotAbsolute,
    Resolve(io::Error),
    Stat(PathBuf, io::Error),
    NotAFile(PathBuf),
    NotADirectory(PathBuf),
    NotRootOwned(PathBuf),
    /// Writable by group or others; the mode bits.
    Writable(PathBuf, u32),
}

impl CommandPathError {
    /// The file or directory at fault, if the path got that far.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::NotAbsolute | Self::Resolve(_) => None,
            Self::Stat(p, _)
            | Self::NotAFile(p)
            | Self::NotADirectory(p)
            | Self::NotRootOwned(p)
            | Self::Writable(p, _) => Some(p),
        }
    }
}

impl fmt::Display for CommandPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute => f.write_str("not an absolute path"),
            Self::Resolve(e) => write!(f, "cannot resolve: {e}"),
            Self::Stat(_, e) => write!(f, "cannot be examined: {e}"),
            Self::NotAFile(_) => f.write_str("is not a regular file"),
            Self::NotADirectory(_) => f.write_str("is not a directory"),
            Self::NotRootOwned(_) => f.write_str("is not owned by root"),
            Self::Writable(_, mode) => {
                write!(f, "is writable by group or others (mode {mode:o})")
            }
        }
    }
}

impl std::error::Error for CommandPathError {}

/// Checks that `path` and every directory above it are owned by root and
/// not writable by group or others (as sshd checks AuthorizedKeysCommand),
/// and that `path` is a regular file. Symbolic links are resolved first;
/// the resolved path is returned, to be run.
pub fn check_owned_by_root(path: &Path) -> Result<PathBuf, CommandPathError> {
    use CommandPathError as E;
    if !path.is_absolute() {
        return Err(E::NotAbsolute);
    }
    let real = fs::canonicalize(path).map_err(E::Resolve)?;
    let check = |p: &Path, want_file: bool| -> Result<(), CommandPathError> {
        let m = fs::symlink_metadata(p).map_err(|e| E::Stat(p.to_owned(), e))?;
        if want_file && !m.file_type().is_file() {
            return Err(E::NotAFile(p.to_owned()));
        }
        if !want_file && !m.file_type().is_dir() {
            return Err(E::NotADirectory(p.to_owned()));
        }
        if m.uid() != 0 {
            return Err(E::NotRootOwned(p.to_owned()));
        }
        let mode = m.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(E::Writable(p.to_owned(), mode & 0o7777));
        }
        Ok(())
    };
    check(&real, true)?;
    for dir in real.ancestors().skip(1) {
        check(dir, false)?;
    }
    Ok(real)
}

/// Between fork and exec in the child: take the identity `uid`/`gid`
/// with no supplementary groups, and keep no inherited descriptor above
/// 2 across exec. Implemented in src/pam/confine.rs (it needs `unsafe`).
pub type Confine = fn(&mut Command, uid: u32, gid: u32);

/// Runs `spec` (see the module documentation).
pub fn run(spec: &CommandSpec, confine: Confine) -> Result<CommandOutput, CommandError> {
    let deadline = Instant::now() + spec.timeout;
    let mut cmd = Command::new(&spec.program);
    cmd.arg(&spec.arg)
        .env_clear()
        .envs(ENVIRONMENT.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    confine(&mut cmd, spec.uid, spec.gid);
    let mut child = cmd.spawn().map_err(|e| CommandError {
        kind: CommandErrorKind::Spawn(e),
        stderr_line: String::new(),
    })?;
    let mut reader = Reader {
        stdout: Zeroizing::new(Vec::with_capacity(MAX_OUTPUT + READ_CHUNK)),
        stderr: Vec::new(),
        stderr_done: false,
    };
    let read = reader.read_all(&mut child, deadline, spec.timeout);
    let ended = read.and_then(|()| wait_until(&mut child, deadline, spec.timeout));
    match ended {
        Ok(status) => Ok(CommandOutput {
            ended: match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Exit(code),
                (None, Some(sig)) => Ended::Signal(sig),
                (None, None) => Ended::Signal(0),
            },
            stdout: std::mem::take(&mut reader.stdout),
            stderr_line: reader.stderr_line(),
        }),
        Err(kind) => {
            kill_group(&mut child);
            Err(CommandError {
                kind,
                stderr_line: reader.stderr_line(),
            })
        }
    }
}

const READ_CHUNK: usize = 8192;

struct Reader {
    stdout: Zeroizing<Vec<u8>>,
    stderr: Vec<u8>,
    /// The first line of standard error is complete; the rest is drained.
    stderr_done: bool,
}

impl Reader {
    /// Reads both pipes until both are closed, or fails (the caller then
    /// kills the process group).
    fn read_all(
        &mut self,
        child: &mut Child,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CommandErrorKind> {
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let mut buf = Zeroizing::new([0u8; READ_CHUNK]);
        while out.is_some() || err.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CommandErrorKind::Timeout(timeout));
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let (out_ready, err_ready) = {
                let mut fds = Vec::with_capacity(2);
                if let Some(o) = &out {
                    fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                }
                if let Some(e) = &err {
                    fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(CommandErrorKind::Io(e.into())),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                let mut it = fds.iter();
                (
                    out.is_some() && it.next().is_some_and(ready),
                    err.is_some() && it.next().is_some_and(ready),
                )
            };
            if out_ready {
                let o = out.as_mut().expect("checked above");
                let n = retry(|| o.read(&mut buf[..]))?;
                if n == 0 {
                    out = None;
                } else if self.stdout.len() + n > MAX_OUTPUT {
                    return Err(CommandErrorKind::TooMuchOutput);
                } else {
                    // Within the capacity: no reallocation leaves a copy.
                    self.stdout.extend_from_slice(&buf[..n]);
                }
            }
            if err_ready {
                let e = err.as_mut().expect("checked above");
                let n = retry(|| e.read(&mut buf[..]))?;
                if n == 0 {
                    err = None;
                } else if !self.stderr_done {
                    let chunk = &buf[..n];
                    let line = match chunk.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            self.stderr_done = true;
                            &chunk[..i]
                        }
                        None => chunk,
                    };
                    let room = MAX_STDERR_LINE.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&line[..line.len().min(room)]);
                }
            }
        }
        buf.zeroize();
        Ok(())
    }

    fn stderr_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn retry(mut f: impl FnMut() -> io::Result<usize>) -> Result<usize, CommandErrorKind> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map_err(CommandErrorKind::Io),
        }
    }
}

/// Waits for the command (both pipes are closed) until the deadline.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    timeout: Duration,
) -> Result<std::process::ExitStatus, CommandErrorKind> {
    loop {
        if let Some(status) = child.try_wait().map_err(CommandErrorKind::Io)? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(CommandErrorKind::Timeout(timeout));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the command's process group and reaps the command. Called only
/// while the command is not yet reaped, so its pid (the group's id) cannot
/// have been reused.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_writable_by_others_are_refused() {
        assert!(check_owned_by_root(Path::new("relative")).is_err());
        // /tmp is world-writable (sticky or not).
        let e = check_owned_by_root(Path::new("/tmp")).unwrap_err();
        assert!(matches!(e, CommandPathError::NotAFile(_)), "{e:?}");
        let f = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        fs::set_permissions(f.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_owned_by_root(f.path()).unwrap_err();
        assert!(
            matches!(&e, CommandPathError::Writable(p, _) if p == Path::new("/tmp")),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("is writable by group or others"));
        assert_eq!(
            check_owned_by_root(Path::new("/bin/true")).ok(),
            Some(fs::canonicalize("/bin/true").unwrap())
        );
    }
}
