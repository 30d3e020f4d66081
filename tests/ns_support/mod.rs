//! Private mount namespaces for the fault and load tests (tests/fault_*.rs,
//! tests/load_*.rs): a small full tmpfs, a read-only bind mount, or a
//! generated /etc/passwd with a thousand users, seen only by the processes
//! a test runs inside the namespace.
//!
//! A namespace is held open by one helper process (`unshare`, then `cat`
//! reading a pipe from the test). Clients enter it with `nsenter`, which
//! execs in place, so a client's pid is the pid the test spawned. The test
//! reaches the namespace's files through `/proc/<holder>/root`. When the
//! test drops the namespace, or dies any way at all, the pipe closes, the
//! holder exits, and the kernel takes the mounts away with the namespace:
//! nothing is ever mounted on the machine.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::{ClientRun, Fixture};

/// A private mount namespace, set up by a shell script.
pub struct MountNs {
    holder: Option<Child>,
    /// Kept open: the holder lives until this pipe closes.
    keepalive: Option<ChildStdin>,
}

impl MountNs {
    /// Runs `script` (`sh -c`, `set -e`, with `args` as $1...) in a new
    /// private mount namespace and keeps the namespace until drop. Fails
    /// the test with the script's stderr if it fails.
    pub fn new<S: AsRef<OsStr>>(script: &str, args: &[S]) -> MountNs {
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!("set -e\n{script}\necho ready\nexec cat >/dev/null"))
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux)");
        let stdin = child.stdin.take();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let _ = out.read_line(&mut line);
        if line.trim() != "ready" {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.kill();
            let _ = child.wait();
            panic!("mount namespace setup failed: {err}");
        }
        MountNs {
            holder: Some(child),
            keepalive: stdin,
        }
    }

    pub fn pid(&self) -> u32 {
        self.holder.as_ref().map(Child::id).unwrap()
    }

    /// Where the test sees `path` as the namespace sees it.
    pub fn path(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").expect("an absolute path");
        PathBuf::from(format!("/proc/{}/root", self.pid())).join(rel)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.pid()))
            .arg("--")
            .arg(program);
        c
    }

    /// The client `run`, inside the namespace (its arguments and
    /// environment kept; options added afterwards still reach it).
    pub fn enter(&self, run: ClientRun) -> ClientRun {
        let mut c = self.command(run.cmd.get_program());
        c.args(run.cmd.get_args());
        for (k, v) in run.cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        ClientRun { cmd: c }
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        self.keepalive = None;
        if let Some(mut c) = self.holder.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A generated account: name, uid, and a TOTP secret of its own (base32).
#[derive(Clone, Debug)]
pub struct NsUser {
    pub name: String,
    pub uid: u32,
    pub secret: String,
}

/// First uid of generated users: far above any real account.
const FIRST_UID: u32 = 3_000_000;

/// `n` users that exist only inside a private mount namespace: the machine's
/// /etc/passwd and /etc/group with `n` entries added (`pamtotp-<tag>NNNN`,
/// home /nonexistent), bind-mounted over the real ones in the namespace.
/// Each user is enrolled in the fixture's secrets/ (root-owned, read as
/// root, so no home directory is needed) with a random secret.
pub struct UserWorld {
    pub fx: Fixture,
    pub ns: MountNs,
    pub users: Vec<NsUser>,
}

impl UserWorld {
    pub fn new(tag: &str, n: usize) -> UserWorld {
        let fx = Fixture::new();
        let mut passwd = fs::read_to_string("/etc/passwd").unwrap();
        let mut group = fs::read_to_string("/etc/group").unwrap();
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("pamtotp-{tag}{i:04}");
            let uid = FIRST_UID + i as u32;
            passwd.push_str(&format!(
                "{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
            ));
            group.push_str(&format!("{name}:x:{uid}:\n"));
            let mut key = [0u8; 20];
            getrandom::fill(&mut key).unwrap();
            let secret = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &key);
            fx.enroll(&name, &secret, "SHA1", 6, 30);
            users.push(NsUser { name, uid, secret });
        }
        let etc = fx.path().join("etc");
        fs::create_dir(&etc).unwrap();
        for (name, text) in [("passwd", &passwd), ("group", &group)] {
            fs::write(etc.join(name), text).unwrap();
            fs::set_permissions(etc.join(name), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let ns = MountNs::new(
            r#"mount --bind "$1/passwd" /etc/passwd; mount --bind "$1/group" /etc/group"#,
            &[&etc],
        );
        UserWorld { fx, ns, users }
    }

    /// A client of the fixture's `service` for `user`, inside the namespace.
    pub fn client(&self, service: &str, user: &str) -> ClientRun {
        self.ns.enter(self.fx.client(service, user))
    }
}

/// Set in the environment of a test binary run by
/// [`rerun_on_a_configured_machine`]: the run is the inner one.
const CONFIGURED_MACHINE: &str = "PAMTOTP_TEST_CONFIGURED_MACHINE";

/// A /etc/pam-totp/config.toml that would change the outcome of every
/// test that read it: other secret and state places, no window, one
/// failure a day, `nullok`, another prompt.
pub const HOSTILE_CONFIG: &str = "\
secret = \"/nonexistent-pam-totp-machine/${USER}\"
state_dir = \"/nonexistent-pam-totp-machine/state\"
window = 0
rate_limit = \"1/86400\"
nullok = true
prompt = \"MACHINE PROMPT: \"
";

/// Runs every other test of this test binary again, inside a private mount
/// namespace where /etc is an overlay whose /etc/pam-totp holds what an
/// installed pam-totp leaves there: a host key pair (made by the tool,
/// `host-key init`) and a config.toml ([`HOSTILE_CONFIG`]) that would
/// change every outcome. They must all pass there too: no test may depend
/// on the machine's /etc/pam-totp. Nothing is written to the machine's /etc
/// (the overlay's upper layer is a tmpfs that goes with the namespace);
/// test users the inner run creates with useradd exist only in there. /home
/// is a tmpfs of its own too, so the inner run and this binary's other
/// tests, running meanwhile with the same test users, share no file.
///
/// `this_test` is the calling test's name (skipped in the inner run).
pub fn rerun_on_a_configured_machine(this_test: &str) {
    if std::env::var_os(CONFIGURED_MACHINE).is_some() {
        return;
    }
    let scratch = tempfile::Builder::new()
        .prefix("pam-totp-etc.")
        .tempdir()
        .unwrap();
    let script = r#"set -e
mount -t tmpfs -o mode=0700 tmpfs "$1"
mkdir "$1/upper" "$1/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
mount -t tmpfs -o mode=0755 tmpfs /home
"$2" host-key init >/dev/null 2>&1
test -s /etc/pam-totp/host.key -a -s /etc/pam-totp/host.pub
printf '%s' "$3" > /etc/pam-totp/config.toml
chmod 0644 /etc/pam-totp/config.toml
shift 3
exec "$@"
"#;
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(scratch.path())
        .arg(env!("CARGO_BIN_EXE_pam-totp"))
        .arg(HOSTILE_CONFIG)
        .arg(&exe)
        .args(["--skip", this_test])
        .env(CONFIGURED_MACHINE, "1")
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "with /etc/pam-totp holding a host key and a config.toml, tests fail:\n{text}"
    );
    // The inner run did run tests (not zero of them).
    assert!(
        text.contains("test result: ok.") && !text.contains("ok. 0 passed"),
        "{text}"
    );
}
