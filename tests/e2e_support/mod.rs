//! Support for the real-login tests: test users, the real OpenSSH server
//! and sudo run inside private mount and PID namespaces, and the real `ssh`
//! client answering keyboard-interactive prompts through SSH_ASKPASS.
//!
//! The machine's own files are never changed: each server or sudo run
//! starts with `unshare --mount --pid --fork --kill-child --mount-proc`,
//! makes every mount private, mounts a tmpfs on /run (so /run/sshd, sudo's
//! timestamps and utmp stay inside), gives the namespace its own /dev/log
//! (an overlay of /dev with a symlink to a socket the test reads), and
//! bind-mounts the test's pam.d file (and sudoers) over the real paths.
//! Every wait has a deadline, and a [`Namespace`] guard kills the whole
//! process group (and with it the PID namespace) when it is dropped, even
//! when a test fails.
//!
//! Test users are made with useradd, named `pamtotp-...`, and removed with
//! `userdel -r` when their guard drops.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::copy_module_into;

/// How long one client command (ssh, sudo) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// What a bounded command printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

fn kill_group(pgid: u32) {
    // A process group we created (process_group(0)): its id is the pid of
    // its leader, our direct child.
    // SAFETY: killpg takes plain integers and has no memory effects.
    let _ = unsafe { libc::killpg(pgid as libc::pid_t, libc::SIGKILL) };
}

/// Runs `cmd` in its own process group with `stdin` as its input; kills the
/// whole group and panics if it has not finished within `timeout`.
pub fn run_bounded(cmd: &mut Command, stdin: &str, timeout: Duration) -> Run {
    use std::io::Write;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pgid = child.id();
    let input = stdin.to_owned();
    let mut w = child.stdin.take().expect("stdin");
    // A writer thread, so a child that does not read cannot block us.
    let writer = thread::spawn(move || {
        let _ = w.write_all(input.as_bytes());
    });
    let out = reader(child.stdout.take().expect("stdout"));
    let err = reader(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            kill_group(pgid);
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}; stderr so far: {}",
                err.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A directory of the test's own: 0755 so that sshd's and sudo's helpers
/// can reach the files in it, removed on drop.
pub fn work_dir(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("pam-totp-e2e-{tag}."))
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Checks a command that must work; panics with its output otherwise.
fn must(cmd: &mut Command) {
    let r = run_bounded(cmd, "", COMMAND_TIMEOUT);
    assert!(r.success(), "{cmd:?} failed: {r:?}");
}

/// Serialises useradd/userdel within one test binary: they lock
/// /etc/passwd and give up if another holds it for too long.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// A local account made for one test, removed (with its home) on drop.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl TestUser {
    /// `pamtotp-<suffix>`, with a home and bash. A leftover account of the
    /// same name (from a run that was killed) is removed first.
    pub fn create(suffix: &str) -> TestUser {
        let name = format!("pamtotp-{suffix}");
        assert!(name.len() <= 32, "user name too long: {name}");
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if nix::unistd::User::from_name(&name).ok().flatten().is_some() {
            remove_account(&name);
        }
        must(Command::new("useradd").args(["-m", "-s", "/bin/bash", &name]));
        let u = nix::unistd::User::from_name(&name)
            .expect("getpwnam")
            .expect("the new user exists");
        TestUser {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        }
    }

    pub fn set_password(&self, password: &str) {
        let r = run_bounded(
            &mut Command::new("chpasswd"),
            &format!("{}:{password}\n", self.name),
            COMMAND_TIMEOUT,
        );
        assert!(r.success(), "chpasswd: {r:?}");
    }

    /// Writes `path` with `text`, owned by this user, mode `mode`.
    pub fn write_owned(&self, path: &Path, text: &str, mode: u32) {
        write_mode(path, text, mode);
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// Lets `pubkey` (the text of a .pub file) log in as this user.
    pub fn authorize_key(&self, pubkey: &str) {
        let ssh = self.home.join(".ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&ssh, Some(self.uid), Some(self.gid)).unwrap();
        self.write_owned(&ssh.join("authorized_keys"), pubkey, 0o600);
    }

    /// Enrolls the user the default way: ~/.pam_totp, owned by the user.
    pub fn enroll_in_home(&self, secret: &str) -> PathBuf {
        let p = self.home.join(".pam_totp");
        self.write_owned(&p, &secret_toml(secret), 0o600);
        p
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        remove_account(&self.name);
    }
}

fn remove_account(name: &str) {
    assert!(name.starts_with("pamtotp-"), "refusing to remove {name}");
    // -f: even if a process of the user's is still on its way out.
    let _ = run_bounded(
        Command::new("userdel").args(["-r", "-f", name]),
        "",
        COMMAND_TIMEOUT,
    );
}

/// A native secret file's text with the default parameters.
pub fn secret_toml(secret: &str) -> String {
    format!("version = 1\nsecret = \"{secret}\"\n")
}

/// Turns one of the conf/pam.d files into the test's copy: the module line
/// gets the absolute path of the built module, the test's state directory
/// and `extra` arguments, and the recommended system-wide secret directory
/// (/var/lib/pam-totp/secrets) moves into `dir`. Everything else is the
/// shipped file, unchanged.
pub fn localize_pam_conf(conf: &str, so: &Path, dir: &Path, extra: &str) -> String {
    let mut module_lines = 0;
    let text: String = conf
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || !trimmed.contains("pam_totp.so") {
                return format!("{line}\n");
            }
            module_lines += 1;
            let line = line
                .replace(
                    "/var/lib/pam-totp/",
                    &format!("{}/var-lib-pam-totp/", dir.display()),
                )
                .replacen(
                    "pam_totp.so",
                    &format!(
                        "{} state_dir={}/state",
                        so.display(),
                        dir.join("var-lib-pam-totp").display()
                    ),
                    1,
                );
            format!("{} {extra}\n", line.trim_end())
        })
        .collect();
    assert_eq!(module_lines, 1, "one pam_totp.so line expected in:\n{conf}");
    text
}

/// The repository's conf/ directory.
pub fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf")
}

pub fn read_conf(rel: &str) -> String {
    let p = conf_dir().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A test's private copy of what the module needs: the .so, a state
/// directory and a directory for root-owned secrets, laid out like
/// /var/lib/pam-totp under `dir`.
pub fn install_module(dir: &Path) -> PathBuf {
    let so = copy_module_into(dir);
    let lib = dir.join("var-lib-pam-totp");
    for d in [lib.clone(), lib.join("state"), lib.join("secrets")] {
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    }
    so
}

/// The module's state for `user` in a test directory set up by
/// [`install_module`], as TOML.
pub fn module_state(dir: &Path, user: &str) -> Option<toml::Table> {
    let bytes = fs::read(dir.join("var-lib-pam-totp/state").join(user)).ok()?;
    let st = pam_totp::state::record::parse_state_file(&bytes).expect("a valid state file");
    Some(st.to_toml().unwrap().parse().expect("state is TOML"))
}

/// A syslog socket the namespace's /dev/log points to.
pub struct Syslog {
    sock: UnixDatagram,
    pub path: PathBuf,
}

impl Syslog {
    pub fn bind(dir: &Path) -> Syslog {
        let path = dir.join("log.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the syslog socket");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        sock.set_nonblocking(true).unwrap();
        Syslog { sock, path }
    }

    /// Every line received since the last call.
    pub fn drain(&self) -> Vec<String> {
        let mut buf = vec![0u8; 65536];
        let mut lines = Vec::new();
        while let Ok(n) = self.sock.recv(&mut buf) {
            lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        lines
    }

    /// The module's lines since the last call.
    pub fn module_lines(&self) -> Vec<String> {
        self.drain()
            .into_iter()
            .filter(|l| l.contains("pam_totp("))
            .collect()
    }
}

/// The shell commands that set up a private namespace: private mounts, a
/// tmpfs on /run, /dev/log pointing at `syslog`, and each `(file, target)`
/// bind-mounted over its target.
pub fn namespace_setup(syslog: &Path, binds: &[(&Path, &str)]) -> String {
    let mut s = String::from(
        "set -e; mount --make-rprivate /; \
         mount -t tmpfs -o mode=0755 tmpfs /run; \
         mkdir /run/dev-upper /run/dev-work; \
         mount -t overlay overlay -o lowerdir=/dev,upperdir=/run/dev-upper,workdir=/run/dev-work /dev; \
         rm -f /dev/log; ",
    );
    s.push_str(&format!(
        "ln -s {} /dev/log; ",
        sh_quote(&syslog.to_string_lossy())
    ));
    for (file, target) in binds {
        s.push_str(&format!(
            "mount --bind {} {}; ",
            sh_quote(&file.to_string_lossy()),
            sh_quote(target)
        ));
    }
    s
}

/// `unshare` into new mount and PID namespaces, running `script` with sh.
/// --kill-child: when unshare dies, the namespace's first process (and so
/// every process in the namespace) is killed.
pub fn in_namespace(script: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
        "sh",
        "-c",
        script,
    ]);
    c
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A long-running process group (a server in its namespace), killed with
/// everything in it when dropped.
pub struct Namespace {
    child: Child,
    /// Once reaped, its pid (and group id) may belong to someone else.
    reaped: bool,
}

impl Namespace {
    pub fn spawn(mut cmd: Command, log: &Path) -> Namespace {
        let log = fs::File::create(log).expect("server log");
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn the namespace");
        Namespace {
            child,
            reaped: false,
        }
    }

    /// `Some` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let st = self.child.try_wait().ok().flatten();
        self.reaped |= st.is_some();
        st
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if !self.reaped {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on loopback (the kernel's pick; released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, ns: &mut Namespace, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(st) = ns.exited() {
            panic!(
                "the server exited ({st}) before listening:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port} after {START_TIMEOUT:?}:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn ssh_keygen(path: &Path) -> String {
    must(Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "pam-totp-test",
        "-f",
        &path.to_string_lossy(),
    ]));
    fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// The askpass program: logs each prompt to $PAMTOTP_PROMPTS and answers a
/// code prompt with $PAMTOTP_CODE, a password prompt with $PAMTOTP_PASSWORD;
/// anything else is refused (exit 1, which ssh takes as "cancelled").
const ASKPASS: &str = r#"#!/bin/sh
printf '%s\n' "$1" >> "$PAMTOTP_PROMPTS"
case "$1" in
  *"erification code"*) printf '%s\n' "$PAMTOTP_CODE" ;;
  *assword*) printf '%s\n' "$PAMTOTP_PASSWORD" ;;
  *) exit 1 ;;
esac
"#;

/// Answers ssh's keyboard-interactive prompts (SSH_ASKPASS with
/// SSH_ASKPASS_REQUIRE=force) and records them.
pub struct Askpass {
    script: PathBuf,
    dir: PathBuf,
    calls: AtomicUsize,
}

impl Askpass {
    pub fn new(dir: &Path) -> Askpass {
        let script = dir.join("askpass");
        write_mode(&script, ASKPASS, 0o755);
        Askpass {
            script,
            dir: dir.to_owned(),
            calls: AtomicUsize::new(0),
        }
    }

    /// Sets up `cmd` (an ssh command) to answer with `code` and
    /// `password`; returns where the prompts it sees are recorded.
    pub fn answer(&self, cmd: &mut Command, code: &str, password: &str) -> PathBuf {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let prompts = self.dir.join(format!("prompts.{n}"));
        fs::write(&prompts, "").unwrap();
        cmd.env("SSH_ASKPASS", &self.script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env_remove("DISPLAY")
            .env_remove("SSH_AUTH_SOCK")
            .env("PAMTOTP_PROMPTS", &prompts)
            .env("PAMTOTP_CODE", code)
            .env("PAMTOTP_PASSWORD", password);
        prompts
    }
}

/// Options every test ssh client gets: no user or system config, a bounded
/// connection, no host key prompts, one try at keyboard-interactive.
pub fn ssh_base() -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-T"])
        .args(["-o", "ConnectTimeout=10"])
        .args(["-o", "ServerAliveInterval=5"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .args(["-o", "PasswordAuthentication=no"]);
    cmd
}

/// The remote command of every test login, and what it prints.
pub const REMOTE_COMMAND: &str = "echo pamtotp-ran:$(id -un)";

/// Runs an ssh command set up by [`ssh_base`] whose last argument is the
/// destination, with [`REMOTE_COMMAND`], answering through `askpass`.
pub fn run_ssh(
    mut cmd: Command,
    askpass: &Askpass,
    user: &str,
    code: &str,
    password: &str,
) -> SshResult {
    cmd.arg(REMOTE_COMMAND);
    let prompts = askpass.answer(&mut cmd, code, password);
    let run = run_bounded(&mut cmd, "", COMMAND_TIMEOUT);
    let prompts = fs::read_to_string(&prompts)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    SshResult {
        ran: run.success() && run.stdout.trim() == format!("pamtotp-ran:{user}"),
        run,
        prompts,
    }
}

/// The real OpenSSH server on 127.0.0.1:`port` with its own host key and
/// sshd_config, and `pam_text` as /etc/pam.d/sshd in its namespace.
pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub syslog: Syslog,
    known_hosts: PathBuf,
    askpass: Askpass,
    ns: Namespace,
}

impl Sshd {
    /// `config` is appended after the test's own lines (port, address, host
    /// key, pid file), so for a keyword both set, the test's value wins.
    pub fn start(dir: &Path, pam_text: &str, config: &str) -> Sshd {
        let hostkey = dir.join("ssh_host_ed25519_key");
        let hostpub = ssh_keygen(&hostkey);
        let port = free_port();
        let pam = dir.join("pam.d-sshd");
        write_mode(&pam, pam_text, 0o644);
        let cfg = dir.join("sshd_config");
        write_mode(
            &cfg,
            &format!(
                "# Test-only lines.\nPort {port}\nListenAddress 127.0.0.1\nHostKey {}\n\
                 PidFile {}\nLogLevel VERBOSE\nPermitRootLogin no\nUseDNS no\n\
                 # From conf/:\n{config}\n",
                hostkey.display(),
                dir.join("sshd.pid").display()
            ),
            0o644,
        );
        let known_hosts = dir.join("known_hosts");
        write_mode(
            &known_hosts,
            &format!("[127.0.0.1]:{port} {hostpub}"),
            0o644,
        );
        let askpass = Askpass::new(dir);
        let syslog = Syslog::bind(dir);
        let log = dir.join("sshd.log");
        let script = format!(
            "{} mkdir -m 0755 /run/sshd; exec /usr/sbin/sshd -D -e -f {}",
            namespace_setup(&syslog.path, &[(&pam, "/etc/pam.d/sshd")]),
            sh_quote(&cfg.to_string_lossy())
        );
        let mut ns = Namespace::spawn(in_namespace(&script), &log);
        wait_for_port(port, &mut ns, &log);
        Sshd {
            port,
            dir: dir.to_owned(),
            log,
            syslog,
            known_hosts,
            askpass,
            ns,
        }
    }

    /// Runs `echo pamtotp-ran:$(id -un)` as `user` through the real ssh
    /// client. `key`: the identity to offer (none: public keys off);
    /// `code` and `password`: what the askpass program types at a code
    /// prompt and at a password prompt.
    pub fn ssh(&self, user: &str, key: Option<&Path>, code: &str, password: &str) -> SshResult {
        run_ssh(
            self.ssh_command(user, key),
            &self.askpass,
            user,
            code,
            password,
        )
    }

    /// The ssh command [`Sshd::ssh`] runs, up to the destination (no
    /// remote command, no askpass): for a test that drives the client
    /// itself (under a pseudo-terminal).
    pub fn ssh_command(&self, user: &str, key: Option<&Path>) -> Command {
        let mut cmd = ssh_base();
        cmd.args(["-p", &self.port.to_string()])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args(["-o", "IdentitiesOnly=yes"]);
        match key {
            Some(k) => {
                cmd.arg("-i").arg(k);
            }
            None => {
                cmd.args(["-o", "PubkeyAuthentication=no"]);
            }
        }
        cmd.arg(format!("{user}@127.0.0.1"));
        cmd
    }

    pub fn server_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// What one ssh login did.
#[derive(Debug)]
pub struct SshResult {
    /// The remote command ran, as the user, and printed its marker.
    pub ran: bool,
    pub run: Run,
    /// The prompts the askpass program was asked to answer.
    pub prompts: Vec<String>,
}

impl SshResult {
    pub fn code_prompts(&self) -> usize {
        self.prompts
            .iter()
            .filter(|p| p.contains("Verification code"))
            .count()
    }
    pub fn password_prompts(&self) -> usize {
        self.prompts
            .iter()
            .filter(|p| p.contains("assword") && !p.contains("erification"))
            .count()
    }
}

/// A code of the same length that is none of the codes around now
/// (`codes`: the accepted window), so it is certainly wrong.
pub fn wrong_code(codes: &[String]) -> String {
    let len = codes[0].len();
    (0u64..)
        .map(|i| format!("{:0len$}", (i * 7919 + 123_457) % 10u64.pow(len as u32)))
        .find(|c| !codes.contains(c))
        .expect("some code is wrong")
}

/// The machine's own copy of `path`, to check it is the same afterwards.
pub fn snapshot(path: &str) -> Vec<u8> {
    fs::read(path).unwrap_or_default()
}
