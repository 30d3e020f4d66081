//! Shared test support: a private PAM configuration directory with the
//! built module, secret files, and runs of the `pam_client` example (the
//! real libpam, `pam_start_confdir`), codes from `oathtool`.
//!
//! Tests run as root: the module reads files as their owners, and
//! `--syslog` uses a private mount namespace.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pam_totp::core::scratch::ScratchHash;

/// A secret for tests, base32 (160 bits).
pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Where cargo put this test's artifacts: target/<profile>.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_owned()
}

/// The module as cargo built it (`cargo test` leaves the cdylib in deps/).
pub fn module_so() -> PathBuf {
    let dir = profile_dir();
    for p in [dir.join("deps/libpam_totp.so"), dir.join("libpam_totp.so")] {
        if p.exists() {
            return p;
        }
    }
    panic!("libpam_totp.so not found under {}", dir.display());
}

/// The TLS library the module loads beside itself for `rediss://`
/// (built from tls/ by `cargo test` with the module).
pub fn tls_library_so() -> PathBuf {
    let name = pam_totp::pam::tls::LIBRARY;
    let dir = profile_dir();
    for p in [dir.join("deps").join(name), dir.join(name)] {
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found under {}", dir.display());
}

/// The module and, beside it as the package installs them, its TLS
/// library, copied into `dir`; the module's path.
pub fn copy_module_into(dir: &Path) -> PathBuf {
    let so = dir.join("pam_totp.so");
    fs::copy(module_so(), &so).unwrap();
    fs::copy(tls_library_so(), dir.join(pam_totp::pam::tls::LIBRARY)).unwrap();
    so
}

/// The libpam test client (built by `cargo test` as an example).
pub fn client() -> PathBuf {
    let p = profile_dir().join("examples/pam_client");
    assert!(
        p.exists(),
        "{} missing: run the tests with plain `cargo test`, which builds examples",
        p.display()
    );
    p
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps until at least `margin` seconds remain in the current step of
/// `period`, so that a code computed now is still current when the module
/// checks it. This is not a timing assertion: it only avoids starting a
/// check right at a step boundary.
pub fn avoid_step_edge(period: u64, margin: u64) {
    loop {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let left = period - t.as_secs() % period;
        if left > margin {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A TOTP code from oathtool (an independent implementation).
/// `offset_steps` shifts the time by whole steps.
pub fn oathtool_totp(
    secret: &str,
    algorithm: &str,
    digits: u8,
    period: u64,
    offset_steps: i64,
) -> String {
    let t = now() as i64 + offset_steps * period as i64;
    let out = Command::new("oathtool")
        .args([
            &format!("--totp={}", algorithm.to_ascii_lowercase()),
            "-b",
            "-d",
            &digits.to_string(),
            "-s",
            &format!("{period}s"),
            "-N",
            &format!("@{t}"),
            secret,
        ])
        .output()
        .expect("oathtool (apt-get install oathtool)");
    assert!(
        out.status.success(),
        "oathtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A temporary PAM world: confdir, the module copied in as pam_totp.so, a
/// state directory and a directory for secret files.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-test.")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["pam.d", "state", "secrets"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        fs::set_permissions(dir.path().join("state"), fs::Permissions::from_mode(0o700)).unwrap();
        copy_module_into(dir.path());
        // The fixture's own config file: every service names it (see
        // `service`), so /etc/pam-totp/config.toml of the machine that runs
        // the tests never decides an outcome. Only a host key of its own
        // (absent unless a test makes one) instead of /etc/pam-totp/host.key.
        fs::write(
            dir.path().join("config.toml"),
            format!("host_key = \"{}\"\n", dir.path().join("host.key").display()),
        )
        .unwrap();
        fs::set_permissions(
            dir.path().join("config.toml"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        // Silence libpam's complaint about a missing "other" service.
        fs::write(
            dir.path().join("pam.d/other"),
            "auth required pam_deny.so\n",
        )
        .unwrap();
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// The fixture's own config file (it names only a host key in the
    /// fixture): for the tool's `--config` and the module's `config=`.
    pub fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }

    /// Writes a service file `name` whose auth stack is `lines`; the word
    /// `MODULE` stands for the module's path. A line that names no
    /// `config=` gets the fixture's own config file, never the
    /// machine's /etc/pam-totp/config.toml. Returns the service name.
    pub fn service(&self, name: &str, lines: &[&str]) -> String {
        let so = self.path().join("pam_totp.so");
        let own = format!("{} config={}", so.display(), self.config().display());
        let text: String = lines
            .iter()
            .map(|l| {
                let module = if l.contains("config=") {
                    so.to_string_lossy()
                } else {
                    own.as_str().into()
                };
                format!("{}\n", l.replace("MODULE", &module))
            })
            .collect();
        fs::write(self.path().join("pam.d").join(name), text).unwrap();
        name.to_owned()
    }

    /// A service with just this module, `required`, its secrets in
    /// secrets/${USER}, its state in state/, plus `args`.
    pub fn module_service(&self, name: &str, args: &str) -> String {
        let line = format!(
            "auth required MODULE secret={}/secrets/${{USER}} state_dir={} {args}",
            self.path().display(),
            self.state_dir().display()
        );
        self.service(name, &[&line])
    }

    /// Writes secrets/<user> (root-owned, 0600) with `body` as its contents.
    pub fn secret_file(&self, user: &str, body: &str) -> PathBuf {
        let p = self.path().join("secrets").join(user);
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// A plain native secret file for `user` with the given parameters.
    pub fn enroll(
        &self,
        user: &str,
        secret: &str,
        algorithm: &str,
        digits: u8,
        period: u64,
    ) -> PathBuf {
        self.secret_file(
            user,
            &format!(
                "version = 1\nsecret = \"{secret}\"\nalgorithm = \"{algorithm}\"\ndigits = {digits}\nperiod = {period}\n"
            ),
        )
    }

    /// The state file the module wrote for `user`, read as the module
    /// reads it (the newest whole record of its two slots), as TOML.
    pub fn state(&self, user: &str) -> Option<toml::Table> {
        let bytes = fs::read(self.state_dir().join(user)).ok()?;
        Some(state_toml(&bytes))
    }

    /// `field` (`last_step`, `hotp_next`) of the only key in `user`'s
    /// state (see [`key_field`]).
    pub fn key_field(&self, user: &str, field: &str) -> Option<i64> {
        key_field(&self.state(user)?, field)
    }

    pub fn client(&self, service: &str, user: &str) -> ClientRun {
        ClientRun {
            cmd: {
                let mut c = Command::new(client());
                c.args(["--confdir", &self.path().join("pam.d").to_string_lossy()])
                    .args(["--service", service, "--user", user]);
                c
            },
        }
    }
}

/// A state file's bytes (either layout) as the TOML table of its state.
pub fn state_toml(bytes: &[u8]) -> toml::Table {
    let st = pam_totp::state::record::parse_state_file(bytes).expect("a valid state file");
    st.to_toml().unwrap().parse().expect("state is TOML")
}

/// `field` (`last_step`, `hotp_next`, `last_used`) of the key record in a
/// state file (`[[keys]]`, one per key that has logged in). The tests that
/// use it log in with one key, so a second record fails the test.
pub fn key_field(st: &toml::Table, field: &str) -> Option<i64> {
    let keys = st.get("keys")?.as_array().expect("keys is an array");
    assert!(keys.len() <= 1, "one key expected: {st:?}");
    keys.first()?.get(field)?.as_integer()
}

/// One pam_client invocation being set up.
pub struct ClientRun {
    pub cmd: Command,
}

impl ClientRun {
    pub fn answer(mut self, a: &str) -> Self {
        self.cmd.args(["--answer", a]);
        self
    }
    pub fn authtok(mut self, a: &str) -> Self {
        self.cmd.args(["--authtok", a]);
        self
    }
    pub fn rhost(mut self, a: &str) -> Self {
        self.cmd.args(["--rhost", a]);
        self
    }
    pub fn syslog(mut self) -> Self {
        self.cmd.arg("--syslog");
        self
    }
    /// Keeps collecting syslog lines for `ms` after the login (with
    /// [`syslog`](Self::syslog)).
    pub fn linger(mut self, ms: u64) -> Self {
        self.cmd.args(["--linger", &ms.to_string()]);
        self
    }
    pub fn setcred(mut self) -> Self {
        self.cmd.arg("--setcred");
        self
    }
    pub fn wait_on(mut self, fifo: &Path) -> Self {
        self.cmd.arg("--wait").arg(fifo);
        self
    }
    pub fn run(self) -> PamResult {
        PamResult::from_output(wait_bounded(self.spawn(), CLIENT_TIMEOUT))
    }
    /// Runs the client with `--interactive`: each prompt left without an
    /// `--answer` is answered by `answer`, given every message shown so far
    /// (style, text). The result is the client's report.
    pub fn interactive(mut self, mut answer: impl FnMut(&[(i64, String)]) -> String) -> PamResult {
        use std::io::{BufRead, BufReader, Write};
        self.cmd
            .arg("--interactive")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn pam_client");
        let mut stdin = child.stdin.take().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut shown = Vec::new();
        let mut other = String::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(m) = line.strip_prefix("msg ") {
                let v: serde_json::Value = serde_json::from_str(m).expect("msg JSON");
                shown.push((v[0].as_i64().unwrap(), v[1].as_str().unwrap().to_owned()));
            } else if line == "ask" {
                let a = answer(&shown);
                writeln!(stdin, "{a}").unwrap();
            } else {
                other.push_str(&line);
                other.push('\n');
            }
        }
        drop(stdin);
        let out = wait_bounded(child, CLIENT_TIMEOUT);
        assert!(out.status.success(), "pam_client failed: {other}");
        PamResult::from_output(out)
    }
    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pam_client")
    }
}

/// What pam_client reported.
#[derive(Debug)]
pub struct PamResult {
    pub rc: i64,
    /// How long pam_authenticate took (milliseconds).
    pub auth_ms: i64,
    pub result: String,
    pub prompts: Vec<(i64, String)>,
    pub authtok: Option<String>,
    pub setcred: Option<i64>,
    pub syslog: Vec<String>,
}

impl PamResult {
    pub fn from_output(out: Output) -> PamResult {
        assert!(
            out.status.success(),
            "pam_client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).expect("pam_client JSON");
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        PamResult {
            rc: v["rc"].as_i64().expect("rc"),
            auth_ms: v["auth_ms"].as_i64().expect("auth_ms"),
            result: v["result"].as_str().unwrap_or_default().to_owned(),
            prompts: v["prompts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                p[0].as_i64().unwrap_or(-1),
                                p[1].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            authtok: v["authtok"].as_str().map(str::to_owned),
            setcred: v["setcred"].as_i64(),
            syslog: strings(&v["syslog"]),
        }
    }

    /// The module's own syslog lines (libpam's noise left out).
    pub fn module_log(&self) -> Vec<&str> {
        self.syslog
            .iter()
            .filter(|l| l.contains("pam_totp("))
            .map(String::as_str)
            .collect()
    }
}

/// Starts `n` clients that all block on one FIFO, then releases them at
/// the same instant and collects their results.
///
/// The release waits until every client is seen holding the FIFO open (in
/// /proc), so a slow starter cannot miss it; every wait is bounded.
pub fn release_together(fifo_dir: &Path, runs: Vec<ClientRun>) -> Vec<PamResult> {
    let gate = Gate::new(&fifo_dir.join("go"));
    let children: Vec<Child> = runs
        .into_iter()
        .map(|r| r.wait_on(gate.path()).spawn())
        .collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    if let Err(e) = gate.wait_opened_by(&pids, GATE_TIMEOUT) {
        for c in children {
            kill_and_reap(c);
        }
        panic!("{e}");
    }
    gate.release();
    children
        .into_iter()
        .map(|c| PamResult::from_output(wait_bounded(c, CLIENT_TIMEOUT)))
        .collect()
}

// ---------------------------------------------------------------------
// Helpers for the module suite (tests/module_*.rs).
// ---------------------------------------------------------------------

/// The longest a single pam_client run may take before the test fails.
/// Generous: a bound against hangs, never a timing assertion.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest the clients of one release may take to reach their FIFO.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for `child` and collects its output; kills it and fails the test
/// if it takes longer than `limit`.
pub fn wait_bounded(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for pam_client"),
        Err(_) => {
            // SAFETY: kill(2) has no memory-safety preconditions. The pid is
            // still our child's: it is reaped only by the waiting thread,
            // which has not returned.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = rx.recv_timeout(Duration::from_secs(10));
            panic!("process {pid} did not finish within {limit:?}; killed");
        }
    }
}

/// Kills the process group `pgid` (a process the test does not own, such
/// as a detached hook that made a group of its own). Through kill(2) and
/// not the `kill` command: procps-ng 4.0.2's `kill -9 -PGID` signals the
/// group "9" instead.
pub fn kill_group(pgid: u32) {
    let pgid = libc::pid_t::try_from(pgid).expect("a process group id");
    assert!(pgid > 1, "not a process group to kill: {pgid}");
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // names exactly the group `pgid` (never -1, checked above).
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Kills a child that is no longer wanted and reaps it.
pub fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The lock a `pam-totp host-key` command holds while it works: the key's
/// lock file (`host.key.lock`), exclusively.
pub fn hold_as_a_host_key_command(host_key: &Path) -> nix::fcntl::Flock<fs::File> {
    let file = pam_totp::secret::store::open_lock(host_key).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap()
}

/// Whether another process holds an exclusive `flock` on `path`.
pub fn locked_by_another(path: &Path) -> bool {
    fs::File::open(path).is_ok_and(|f| {
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
    })
}

/// Another user (`nobody`, uid 65534) holding an exclusive `flock` on a
/// path, in a process group of its own, with no descriptor of ours, until
/// dropped (the group killed, the process reaped).
pub struct NobodyHolds(Child);

impl NobodyHolds {
    /// The process that holds the lock (`flock`, run as `nobody`).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for NobodyHolds {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

/// Another user (`nobody`, uid 65534) takes an exclusive `flock` on `dir`
/// and keeps it while the value returned lives. Returns once it holds it,
/// or after 10 s: check with [`locked_by_another`]. `dir` must be one that
/// user may open.
pub fn nobody_holds(dir: &Path) -> NobodyHolds {
    let holder = NobodyHolds(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            // -o: only flock holds the lock, not the command it runs, so
            // once flock is reaped the lock is gone.
            .args(["flock", "-o", "-x"])
            .arg(dir)
            .args(["sleep", "60"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("setpriv flock"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !locked_by_another(dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    holder
}

/// A FIFO that holds clients back until [`Gate::release`]: the test keeps
/// it open for writing, a client opens it for reading (at once, since a
/// writer exists) and blocks in read() until the test closes its end.
/// The test can see in /proc which clients hold it open, so it knows that
/// they have reached the point where they wait.
pub struct Gate {
    path: PathBuf,
    writer: fs::File,
    dev: u64,
    ino: u64,
}

impl Gate {
    pub fn new(path: &Path) -> Gate {
        let _ = fs::remove_file(path);
        let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        // O_RDWR on a FIFO does not block on Linux; std opens it O_CLOEXEC,
        // so no child inherits this writer.
        let writer = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let meta = writer.metadata().unwrap();
        Gate {
            path: path.to_owned(),
            writer,
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether process `pid` has the FIFO open.
    pub fn is_open_by(&self, pid: u32) -> bool {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            fs::metadata(fd.path())
                .map(|m| m.dev() == self.dev && m.ino() == self.ino)
                .unwrap_or(false)
        })
    }

    /// Waits until every process in `pids` holds the FIFO open.
    pub fn wait_opened_by(&self, pids: &[u32], limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let waiting: Vec<u32> = pids
                .iter()
                .copied()
                .filter(|&p| !self.is_open_by(p))
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "processes {waiting:?} did not reach {} within {limit:?}",
                    self.path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets every waiting client go at once.
    pub fn release(self) {
        drop(self.writer);
        let _ = fs::remove_file(&self.path);
    }
}

impl ClientRun {
    /// Blocks inside the conversation, after the first prompt and before
    /// answering it, until `fifo` is released (see [`Gate`]).
    pub fn answer_wait(mut self, fifo: &Path) -> Self {
        self.cmd.arg("--answer-wait").arg(fifo);
        self
    }

    /// Runs the client in a private /dev that has no /dev/log.
    pub fn no_log_socket(mut self) -> Self {
        self.cmd.arg("--no-log-socket");
        self
    }

    /// Runs the client in a private mount namespace in which `src` is
    /// bind-mounted over `dst`; the machine's own `dst` is untouched.
    /// Options added afterwards still reach the client.
    pub fn bind_mounted(self, src: &Path, dst: &Path) -> Self {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#)
            .arg("sh")
            .arg(src)
            .arg(dst)
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        ClientRun { cmd: c }
    }
}

impl PamResult {
    /// The `result=` values of the module's audit lines, in order.
    pub fn audit_results(&self) -> Vec<String> {
        self.module_log()
            .iter()
            .filter_map(|l| l.split(' ').find_map(|w| w.strip_prefix("result=")))
            .map(str::to_owned)
            .collect()
    }

    /// The one module line of this run; fails unless there is exactly one.
    pub fn only_module_line(&self) -> &str {
        let lines = self.module_log();
        assert_eq!(lines.len(), 1, "expected one module line: {self:?}");
        lines[0]
    }

    /// Everything the run logged, as one string (for "never logged" checks).
    pub fn all_log_text(&self) -> String {
        self.syslog.join("\n")
    }
}

/// The stored hash of a scratch code, made by the crate's own code with a
/// fixed salt (`n` repeated).
pub fn scratch_hash(code: &str, n: u8) -> String {
    ScratchHash::new(code, [n; 16]).to_string()
}

impl Fixture {
    /// A native secret file with scratch codes (stored as hashes).
    pub fn enroll_with_scratch(&self, user: &str, secret: &str, codes: &[&str]) -> PathBuf {
        let hashes: Vec<String> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{}\"", scratch_hash(c, i as u8 + 1)))
            .collect();
        self.secret_file(
            user,
            &format!(
                "version = 1\nsecret = \"{secret}\"\nscratch_codes = [{}]\n",
                hashes.join(", ")
            ),
        )
    }

    /// The path of `user`'s state file.
    pub fn state_path(&self, user: &str) -> PathBuf {
        self.state_dir().join(user)
    }

    /// Writes a config.toml (root-owned, 0644) in the fixture.
    pub fn config_file(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path().join(name);
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// The names in the state directory, sorted.
    pub fn state_dir_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// What identifies a file's contents and its last change.
#[derive(Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub bytes: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

pub fn fingerprint(path: &Path) -> Fingerprint {
    let m = fs::symlink_metadata(path).unwrap();
    Fingerprint {
        bytes: fs::read(path).unwrap(),
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    }
}

/// A local account made for the tests.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// useradd and friends lock /etc/passwd; one test thread at a time.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Runs an account tool, retrying while another process holds the
/// account files' lock.
fn account_tool(args: &[&str]) {
    for _ in 0..50 {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("lock") {
            panic!("{args:?}: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{args:?}: account files stayed locked");
}

/// Creates the group `name` unless it exists. Names start with `pamtotp-`.
pub fn ensure_group(name: &str) {
    assert!(name.starts_with("pamtotp-"), "test groups are pamtotp-*");
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let exists = Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        account_tool(&["groupadd", name]);
    }
}

/// Creates the user `name` (with a home directory under /home) unless it
/// exists, and makes it a member of `groups` (created as needed).
pub fn ensure_user(name: &str, groups: &[&str]) -> TestUser {
    assert!(name.starts_with("pamtotp-"), "test users are pamtotp-*");
    for g in groups {
        ensure_group(g);
    }
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let passwd = |name: &str| {
        let out = Command::new("getent")
            .args(["passwd", name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    };
    if passwd(name).is_none() {
        account_tool(&["useradd", "-m", "-s", "/usr/sbin/nologin", name]);
    }
    let current = Command::new("id").args(["-nG", name]).output().unwrap();
    let current = String::from_utf8(current.stdout).unwrap();
    for g in groups {
        if !current.split_whitespace().any(|x| x == *g) {
            account_tool(&["usermod", "-a", "-G", g, name]);
        }
    }
    let line = passwd(name).expect("user exists");
    let f: Vec<&str> = line.trim().split(':').collect();
    let user = TestUser {
        name: name.to_owned(),
        uid: f[2].parse().unwrap(),
        gid: f[3].parse().unwrap(),
        home: PathBuf::from(f[5]),
    };
    fs::create_dir_all(&user.home).unwrap();
    user
}

/// Runs a command and returns its stdout; fails the test if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process that is killed and reaped if the test ends (or fails)
/// before it was waited for.
pub struct KillOnDrop(pub Option<Child>);

impl KillOnDrop {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Waits for the child (bounded) and parses its report.
    pub fn finish(mut self) -> PamResult {
        let child = self.0.take().expect("child");
        PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT))
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            kill_and_reap(c);
        }
    }
}

/// Whether `dir` and every directory above it are root-owned and not
/// writable by group or others: where the module accepts a command file.
fn trusted_for_commands(dir: &Path) -> bool {
    dir.ancestors()
        .all(|p| fs::metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0))
}

/// A temporary directory (root-owned, 0755) for commands the module runs
/// (`secret_command=`): the module refuses a command under a directory
/// others can write to, so it goes in the checkout's target/ when every
/// directory above it qualifies (a clone under /tmp does not), else in
/// /run or /var/lib. Removed on drop.
pub fn trusted_command_dir(prefix: &str) -> tempfile::TempDir {
    let base = [profile_dir(), "/run".into(), "/var/lib".into()]
        .into_iter()
        .find(|d| trusted_for_commands(d))
        .expect("no root-owned directory without group or world write bits for test commands");
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .expect("create a command directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    dir
}
