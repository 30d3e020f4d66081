//! A real `redis-server` for the fleet tests, started and stopped by the
//! test that needs it: its own config file and data directory in a
//! tempdir, listening on a Unix socket in that tempdir and, when asked, on
//! 127.0.0.1 (a free port found by the test) in clear and/or TLS. Never a
//! system instance; nothing outside the tempdir is touched.
//!
//! The server has the `default` user disabled and two ACL users:
//! [`USER`] (password [`PASSWORD`]), limited to keys under [`PREFIX`] and
//! the commands the fleet store uses, and [`ADMIN_USER`] for inspection.
//!
//! The server is killed and reaped on drop. [`RedisServer::freeze`] and
//! [`RedisServer::thaw`] send SIGSTOP and SIGCONT; [`RedisServer::stop`]
//! and [`RedisServer::restart`] kill it and start it again on the same
//! addresses and data directory (with `appendonly`, the data survives).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ACL user the fleet store logs in as.
pub const USER: &str = "pamtotp";
pub const PASSWORD: &str = "fleet-Test-Passw0rd-7q2x";
/// An unrestricted user, for tests that inspect the server.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "fleet-Admin-Passw0rd-k9v4";
/// The key pattern [`USER`] may touch is `PREFIX*`.
pub const PREFIX: &str = "pam-totp:";
/// The commands [`USER`] may run: what src/state/fleet uses, and PING.
pub const USER_COMMANDS: &[&str] = &[
    "get", "set", "del", "watch", "unwatch", "multi", "exec", "select", "ping",
];
/// How long the server may take to answer after (re)starting.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A certificate and its key (PEM files).
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// TLS for the server: its certificate and the CA it names as its own.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub server: CertFiles,
    pub ca_cert: PathBuf,
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Listen on 127.0.0.1 in clear.
    pub tcp: bool,
    /// Listen on 127.0.0.1 with TLS.
    pub tls: Option<TlsConfig>,
    /// `appendonly yes`: writes survive [`RedisServer::restart`].
    pub appendonly: bool,
}

pub struct RedisServer {
    dir: tempfile::TempDir,
    options: Options,
    port: Option<u16>,
    tls_port: Option<u16>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits (bounded) until it answers.
    pub fn start(options: Options) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("pamtotp-redis-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir(dir.path().join("data")).expect("data dir");
        let mut server = RedisServer {
            dir,
            options,
            port: None,
            tls_port: None,
            child: None,
        };
        // A free port can be taken by someone else between our probe and
        // the server's bind: try again with new ports a few times.
        for attempt in 1..=5 {
            server.port = server.options.tcp.then(free_port);
            server.tls_port = server.options.tls.is_some().then(free_port);
            server.write_config();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) if attempt < 5 => eprintln!("redis-server attempt {attempt}: {e}"),
                Err(e) => panic!("redis-server did not start: {e}\n{}", server.log()),
            }
        }
        unreachable!()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// `redis+unix:///…/redis.sock`
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// `redis://127.0.0.1:PORT`
    pub fn tcp_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port.expect("started with tcp"))
    }

    /// `rediss://127.0.0.1:PORT` (the TLS port)
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://127.0.0.1:{}",
            self.tls_port.expect("started with tls")
        )
    }

    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("started with tls")
    }

    /// A `state_credentials=` file for [`USER`] (or any user and
    /// password) with `mode`, in the server's tempdir.
    pub fn credentials_file(&self, name: &str, user: &str, password: &str, mode: u32) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(
            &p,
            format!("username = \"{user}\"\npassword = \"{password}\"\n"),
        )
        .expect("write credentials");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod credentials");
        p
    }

    /// SIGSTOP: the server keeps its sockets (the kernel still accepts
    /// connections into the backlog) but answers nothing.
    pub fn freeze(&self) {
        signal(self.pid(), "STOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills the server and reaps it; the addresses stay reserved for
    /// [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again (stopping it first if needed) with the same
    /// config file, addresses and data directory.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            panic!("redis-server did not restart: {e}\n{}", self.log());
        }
    }

    /// The server's log file, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn write_config(&self) {
        let d = self.dir.path();
        let mut conf = format!(
            "daemonize no\n\
             bind 127.0.0.1\n\
             port {port}\n\
             unixsocket {sock}\n\
             unixsocketperm 700\n\
             dir {data}\n\
             logfile {log}\n\
             save \"\"\n\
             appendonly {aof}\n\
             user default off\n\
             user {USER} on >{PASSWORD} ~{PREFIX}* resetchannels -@all {cmds}\n\
             user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n",
            port = self.port.unwrap_or(0),
            sock = self.socket().display(),
            data = d.join("data").display(),
            log = d.join("redis.log").display(),
            aof = if self.options.appendonly { "yes" } else { "no" },
            cmds = USER_COMMANDS
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        if let Some(tls) = &self.options.tls {
            conf += &format!(
                "tls-port {}\n\
                 tls-cert-file {}\n\
                 tls-key-file {}\n\
                 tls-ca-cert-file {}\n\
                 tls-auth-clients no\n",
                self.tls_port.expect("tls port"),
                tls.server.cert.display(),
                tls.server.key.display(),
                tls.ca_cert.display(),
            );
        }
        let path = d.join("redis.conf");
        fs::write(&path, conf).expect("write redis.conf");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod redis.conf");
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .arg(self.dir.path().join("redis.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run redis-server (scripts/install-deps installs it): {e}")
            })?;
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("redis-server exited: {status}"));
            }
            if self.answers() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(format!("no answer within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True once every listener answers PING (with NOAUTH: the default
    /// user is off, and any reply means the server is serving).
    fn answers(&self) -> bool {
        let limit = Some(Duration::from_secs(2));
        let unix = UnixStream::connect(self.socket())
            .ok()
            .is_some_and(|mut s| {
                s.set_read_timeout(limit).is_ok()
                    && s.set_write_timeout(limit).is_ok()
                    && ping(&mut s)
            });
        let tcp = match self.port {
            None => true,
            Some(p) => TcpStream::connect(("127.0.0.1", p))
                .ok()
                .is_some_and(|mut s| {
                    s.set_read_timeout(limit).is_ok()
                        && s.set_write_timeout(limit).is_ok()
                        && ping(&mut s)
                }),
        };
        // The TLS port opens with the others; a TCP connect is enough.
        let tls = match self.tls_port {
            None => true,
            Some(p) => TcpStream::connect(("127.0.0.1", p)).is_ok(),
        };
        unix && tcp && tls
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping<S: Read + Write>(s: &mut S) -> bool {
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf[0] == b'+' || buf[0] == b'-'))
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// A certificate authority made with the openssl command-line tool.
pub struct TestCa {
    pub files: CertFiles,
    dir: PathBuf,
    name: String,
}

impl TestCa {
    /// A self-signed CA (EC P-256) in `dir`, files named after `name`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let cnf = dir.join(format!("{name}-ca.cnf"));
        fs::write(
            &cnf,
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n\
                 [dn]\nCN = pam-totp test CA {name}\n\
                 [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                 keyUsage = critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        )
        .expect("write CA config");
        let files = CertFiles {
            cert: dir.join(format!("{name}-ca.crt")),
            key: dir.join(format!("{name}-ca.key")),
        };
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-config",
            path(&cnf),
            "-extensions",
            "v3_ca",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path(&files.key),
            "-out",
            path(&files.cert),
            "-days",
            "2",
        ]);
        TestCa {
            files,
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A server certificate signed by this CA, valid for `san`
    /// (`IP:127.0.0.1`, `DNS:localhost`, comma-separated).
    pub fn issue_server(&self, leaf: &str, san: &str) -> CertFiles {
        let d = &self.dir;
        let files = CertFiles {
            cert: d.join(format!("{leaf}.crt")),
            key: d.join(format!("{leaf}.key")),
        };
        let csr = d.join(format!("{leaf}.csr"));
        let ext = d.join(format!("{leaf}.ext"));
        fs::write(
            &ext,
            format!(
                "basicConstraints = critical,CA:FALSE\n\
                 keyUsage = critical,digitalSignature\n\
                 extendedKeyUsage = serverAuth\n\
                 subjectAltName = {san}\n\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n"
            ),
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path(&files.key),
            "-out",
            path(&csr),
            "-subj",
            &format!("/CN={leaf}"),
        ]);
        let serial = d.join(format!("{}-ca.srl", self.name));
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.files.cert),
            "-CAkey",
            path(&self.files.key),
            "-CAserial",
            path(&serial),
            "-CAcreateserial",
            "-out",
            path(&files.cert),
            "-days",
            "2",
            "-extfile",
            path(&ext),
        ]);
        files
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
