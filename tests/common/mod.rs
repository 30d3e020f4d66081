//! Shared test support: a private PAM configuration directory with the
//! built module, secret files, and runs of the `pam_client` example (the
//! real libpam, `pam_start_confdir`), codes from `oathtool`.
//!
//! Tests run as root: the module reads files as their owners, and
//! `--syslog` uses a private mount namespace.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

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
        fs::copy(module_so(), dir.path().join("pam_totp.so")).unwrap();
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

    /// Writes a service file `name` whose auth stack is `lines`; the word
    /// `MODULE` stands for the module's path. Returns the service name.
    pub fn service(&self, name: &str, lines: &[&str]) -> String {
        let so = self.path().join("pam_totp.so");
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", l.replace("MODULE", &so.to_string_lossy())))
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

    /// The state file the module wrote for `user`, parsed.
    pub fn state(&self, user: &str) -> Option<toml::Table> {
        let text = fs::read_to_string(self.state_dir().join(user)).ok()?;
        Some(text.parse().expect("state file is TOML"))
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
    pub fn setcred(mut self) -> Self {
        self.cmd.arg("--setcred");
        self
    }
    pub fn wait_on(mut self, fifo: &Path) -> Self {
        self.cmd.arg("--wait").arg(fifo);
        self
    }
    pub fn run(mut self) -> PamResult {
        let out = self.cmd.output().expect("run pam_client");
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
pub fn release_together(fifo_dir: &Path, runs: Vec<ClientRun>) -> Vec<PamResult> {
    let fifo = fifo_dir.join("go");
    let _ = fs::remove_file(&fifo);
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let children: Vec<Child> = runs.into_iter().map(|r| r.wait_on(&fifo).spawn()).collect();
    // Opening for writing blocks until at least one reader has opened; give
    // every client time to reach its open() before the single release.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let w = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    drop(w);
    children
        .into_iter()
        .map(|c| PamResult::from_output(c.wait_with_output().unwrap()))
        .collect()
}
