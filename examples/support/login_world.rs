//! The world of examples/login_cost.rs: a private /dev with a listening
//! /dev/log, the PAM services (our module, Google's, pam_permit), the
//! secret files, and the Redis administrator that forgets the fleet state.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::Command;

use pam_totp::core::otp;
use pam_totp::core::scratch::ScratchHash;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostSecretKey;

use crate::redis_support::{RedisServer, ADMIN_PASSWORD, ADMIN_USER, PREFIX};
use crate::{die, or_die, put, set_mode, SCRATCH, SECRET};

const GOOGLE: &str = "pam_google_authenticator.so";
// ---------------------------------------------------------------------
// The private /dev with a listening /dev/log.
// ---------------------------------------------------------------------

/// Enters a private mount namespace whose /dev is an overlay of the real
/// one (never written) with our socket as /dev/log, drained by a thread.
/// Must run while the process is single-threaded.
pub fn private_dev_log(scratch: &Path) {
    // SAFETY: unshare has no memory-safety preconditions; no thread yet.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        die("unshare(CLONE_NEWNS) failed (run as root)");
    }
    let base = scratch.display();
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs none {base} && mkdir {base}/u {base}/w && \
         mount -t overlay overlay -o lowerdir=/dev,upperdir={base}/u,workdir={base}/w /dev && \
         rm -f /dev/log"
    );
    let ok = Command::new("sh").arg("-c").arg(&script).status();
    if !ok.map(|s| s.success()).unwrap_or(false) {
        die(&format!("setup failed: {script}"));
    }
    let sock = or_die(UnixDatagram::bind("/dev/log"));
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while sock.recv(&mut buf).is_ok() {}
    });
}

// ---------------------------------------------------------------------
// The world: services, secrets, state, Google's files.
// ---------------------------------------------------------------------

pub struct World {
    dir: tempfile::TempDir,
    /// The state file of a returning user (see [`World::remember_state`]).
    state_before: Option<Vec<u8>>,
    /// Where the module (and its TLS library) was copied.
    _module_dir: tempfile::TempDir,
}

fn scratch_file() -> String {
    let codes: Vec<String> = SCRATCH
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\"{}\"", ScratchHash::new(c, [i as u8 + 1; 16])))
        .collect();
    format!(
        "version = 1\nsecret = \"{SECRET}\"\nscratch_codes = [{}]\n",
        codes.join(", ")
    )
}

/// Google's file as its tool writes it: the secret, the options, five
/// scratch codes.
fn google_file(options: &[&str]) -> String {
    let mut t = format!("{SECRET}\n");
    for o in options {
        t.push_str(&format!("\" {o}\n"));
    }
    for c in SCRATCH {
        t.push_str(&format!("{c}\n"));
    }
    t
}

const GOOGLE_STRONG: &[&str] = &[
    "RATE_LIMIT 3 30",
    "WINDOW_SIZE 3",
    "DISALLOW_REUSE",
    "TOTP_AUTH",
];
const GOOGLE_DEFAULT: &[&str] = &["TOTP_AUTH"];

impl World {
    /// A world for `module` under `base`; with `fleet`, the services
    /// `fleet` (plain TCP) and `fleettls` (`rediss://`, trusting the CA
    /// file given) on that server. The module itself is copied under
    /// `module_base`, a directory on disk whatever `base` is: a module is
    /// installed on disk, and one loaded from tmpfs pays for its pages
    /// otherwise (mapped one fault per page there, where a disk file
    /// maps 16 pages per fault; see docs/benchmarks.md), as Google's,
    /// loaded from /usr/lib, would not.
    pub fn new(
        module: &Path,
        base: &Path,
        module_base: &Path,
        fleet: Option<(&RedisServer, &Path, &Path)>,
    ) -> World {
        let module_dir = or_die(
            tempfile::Builder::new()
                .prefix("pam-totp-login-cost-module.")
                .tempdir_in(module_base),
        );
        set_mode(module_dir.path(), 0o755);
        let installed = module_dir.path().join("pam_totp.so");
        let dir = or_die(
            tempfile::Builder::new()
                .prefix("pam-totp-login-cost.")
                .tempdir_in(base),
        );
        let p = dir.path();
        for d in [
            "pam.d", "state", "secrets", "scratch", "sealed", "gstrong", "gdefault", "none",
        ] {
            or_die(fs::create_dir(p.join(d)));
        }
        set_mode(p, 0o755);
        set_mode(&p.join("state"), 0o700);
        or_die(fs::copy(module, &installed));
        // The TLS library, beside the module as the package installs it.
        let tls = module.with_file_name(pam_totp::pam::tls::LIBRARY);
        if tls.exists() {
            or_die(fs::copy(
                &tls,
                module_dir.path().join(pam_totp::pam::tls::LIBRARY),
            ));
        }
        put(&p.join("config.toml"), "", 0o644);
        let ours = |secrets: &str, extra: &str| {
            format!(
                "auth required {1} config={0}/config.toml \
                 secret={0}/{secrets}/${{USER}} state_dir={0}/state window=1 {extra}\n",
                p.display(),
                installed.display()
            )
        };
        let google = |dir: &str| {
            format!(
                "auth required {GOOGLE} secret={}/{dir}/${{USER}} user=root noskewadj\n",
                p.display()
            )
        };
        let services = [
            ("permit", "auth required pam_permit.so\n".to_owned()),
            ("other", "auth required pam_deny.so\n".to_owned()),
            ("ours", ours("secrets", "")),
            ("scratch", ours("scratch", "")),
            (
                "sealed",
                ours("sealed", &format!("host_key={}/host.key", p.display())),
            ),
            ("gstrong", google("gstrong")),
            ("gdefault", google("gdefault")),
            // A user not enrolled yet, under nullok (the module ignores
            // the user; pam_permit then lets the login through): what
            // loading a module and looking for the user's file costs.
            (
                "oursnone",
                ours("none", "nullok") + "auth required pam_permit.so\n",
            ),
            (
                "gnone",
                google("none").replace('\n', " nullok\n") + "auth required pam_permit.so\n",
            ),
        ];
        for (name, text) in services {
            or_die(fs::write(p.join("pam.d").join(name), text));
        }
        if let Some((server, creds, ca)) = fleet {
            let extra = format!(
                "state={} state_credentials={}",
                server.tcp_url(),
                creds.display()
            );
            or_die(fs::write(p.join("pam.d/fleet"), ours("secrets", &extra)));
            let extra = format!(
                "state={} state_credentials={} state_ca={}",
                server.tls_url(),
                creds.display(),
                ca.display()
            );
            or_die(fs::write(p.join("pam.d/fleettls"), ours("secrets", &extra)));
        }
        put(
            &p.join("secrets/root"),
            &format!("version = 1\nsecret = \"{SECRET}\"\n"),
            0o600,
        );
        put(&p.join("scratch/root"), &scratch_file(), 0o600);
        put(&p.join("sealed/root"), &sealed_files(p), 0o600);
        World {
            dir,
            state_before: None,
            _module_dir: module_dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the local state file as it is now (after one login of a
    /// returning user), and, with `admin`, the fleet's state of root
    /// under [`SNAPSHOT`]: every later login of a returning user starts
    /// from them.
    pub fn remember_state(&mut self, admin: Option<&mut Admin>) {
        self.state_before = Some(or_die(fs::read(self.path().join("state/root"))));
        if let Some(admin) = admin {
            admin.copy(&format!("{PREFIX}state:root"), SNAPSHOT);
        }
    }

    /// Puts back what a login of `service` changed (outside the timing):
    /// the state as [`remember_state`](Self::remember_state) kept it, or,
    /// for a `first_login` (or before anything was kept), no state at all.
    pub fn reset(&self, service: &str, first_login: bool, admin: &mut Option<Admin>) {
        let p = self.path();
        match service {
            "gstrong" => put(&p.join("gstrong/root"), &google_file(GOOGLE_STRONG), 0o400),
            "gdefault" => put(
                &p.join("gdefault/root"),
                &google_file(GOOGLE_DEFAULT),
                0o400,
            ),
            "fleet" | "fleettls" => {
                let admin = admin.as_mut().unwrap_or_else(|| die("no server"));
                let key = format!("{PREFIX}state:root");
                if first_login {
                    admin.del(&key);
                } else {
                    admin.copy(SNAPSHOT, &key);
                }
            }
            _ => {
                let path = p.join("state/root");
                match &self.state_before {
                    Some(bytes) if !first_login => {
                        or_die(fs::write(&path, bytes));
                        set_mode(&path, 0o600);
                    }
                    _ => {
                        let _ = fs::remove_file(path);
                    }
                }
            }
        }
    }
}

/// Where the fleet's state of a returning user is kept, outside the
/// module's key prefix.
const SNAPSHOT: &str = "login-cost:returning-user";

/// A host key pair in `dir` and root's secret sealed to it.
fn sealed_files(dir: &Path) -> String {
    let key = or_die(HostSecretKey::generate());
    put(&dir.join("host.key"), &key.to_text(), 0o600);
    let public = seal::public_path(&dir.join("host.key"));
    or_die(fs::write(public, key.public().to_text()));
    let secret = otp::decode_base32(SECRET).unwrap_or_else(|| die("base32"));
    let sealed = or_die(seal::seal(&key.public(), "root", &secret));
    format!("version = 1\nsealed_secret = \"{sealed}\"\n")
}

/// The server's administrator, over its Unix socket (outside the timing).
pub struct Admin(UnixStream);

impl Admin {
    pub fn connect(server: &RedisServer) -> Admin {
        let mut a = Admin(or_die(UnixStream::connect(server.socket())));
        let ok = a.command(&format!("AUTH {ADMIN_USER} {ADMIN_PASSWORD}"));
        if !ok.starts_with("+OK") {
            die(&format!("AUTH: {ok}"));
        }
        a
    }

    fn command(&mut self, cmd: &str) -> String {
        or_die(self.0.write_all(format!("{cmd}\r\n").as_bytes()));
        let mut buf = [0u8; 256];
        let n = or_die(self.0.read(&mut buf));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Replaces `to` with a copy of `from` (Redis 6.2 or later).
    fn copy(&mut self, from: &str, to: &str) {
        let r = self.command(&format!("COPY {from} {to} REPLACE"));
        if !r.starts_with(":1") {
            die(&format!("COPY {from} {to}: {r}"));
        }
    }

    fn del(&mut self, key: &str) {
        let r = self.command(&format!("DEL {key}"));
        if !r.starts_with(':') {
            die(&format!("DEL: {r}"));
        }
    }
}
