//! Benchmark (not a test): whole `pam_authenticate` calls through the real
//! libpam under concurrency, and how their cost grows with the number of
//! enrolled users. See docs/benchmarks.md ("Load").
//!
//! ```text
//! cargo build --release --examples
//! sudo target/release/examples/load_bench [--dir DIR] [--module PATH]
//!      [--users N] [--workers 1,2,4,...] [--scale 1,10,...] [--samples S]
//!      [--part concurrency|scale|all]
//! ```
//!
//! Root only: it runs in a private mount namespace of its own (so the
//! generated /etc/passwd it bind-mounts is seen by nobody else, and goes
//! away when it exits), and the state directory must be root's. Its files
//! go in a temporary directory under DIR (default $TMPDIR or /tmp);
//! `--dir /dev/shm` takes the disk's fsync out of the figures.
//!
//! Part 1, concurrency: `--users` accounts (default 2,000) in /etc/passwd,
//! each enrolled (a secret file, read as root). For each number of worker
//! processes W in `--workers`, every user's state is set as after an
//! earlier login (a state file and a lock file), the workers are released
//! together, and between them they log every user in once
//! (pam_start_confdir, pam_authenticate with the right code, pam_end, one
//! after the other in each worker): p50 and p99 latency of
//! pam_authenticate and of the whole pam_start..pam_end, and throughput
//! (logins per second from the release to the last worker's exit).
//!
//! Part 2, scale: for each N in `--scale` (default 1 to 100,000), N users
//! have a secret file, a state file and a lock file (as after a login).
//! `--samples` logins (default 400) of users picked at random among the N,
//! one at a time, each user's state put back before its login (outside the
//! timing), so every login does the same work. Twice: with /etc/passwd
//! holding the machine's accounts and only the user logging in (rewritten
//! before each login, outside the timing: the module's own cost, the
//! lookup the same whatever N is), and with all N users in it (what
//! glibc's linear scan of /etc/passwd adds); and getpwnam_r alone against
//! the big file.
//!
//! The libpam calls are those of examples/bench.rs, repeated here so that
//! each example stays one file.

#[path = "support/accounts.rs"]
mod accounts;
#[path = "support/libpam.rs"]
mod libpam;
#[path = "support/workers.rs"]
mod workers;

use std::ffi::c_int;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libpam::*;
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::secret::file;
use pam_totp::state::model::{KeyState, UserState};
use pam_totp::state::record;

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const FIRST_UID: u32 = 3_000_000;

fn die(msg: &str) -> ! {
    eprintln!("load_bench: {msg}");
    std::process::exit(2);
}

fn or_die<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| die(&e.to_string()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn user_name(i: usize) -> String {
    format!("lb{i:06}")
}

// ---------------------------------------------------------------------
// libpam (as in examples/bench.rs).
// ---------------------------------------------------------------------

/// One login of `user` with `code`: (pam_authenticate, pam_start..pam_end, rc).
fn login(confdir: &Path, user: &str, code: &str) -> (Duration, Duration, c_int) {
    timed_login(confdir, "load", user, code).unwrap_or_else(|e| die(&e))
}

/// Every user has the same secret (its cost does not depend on it).
fn key() -> Enrollment {
    let file = format!("version = 1\nsecret = \"{SECRET}\"\n");
    or_die(file::parse(file.as_bytes()))
}

fn right_code(key: &Enrollment) -> String {
    let k = key.first_key();
    k.totp_code(k.step_at(now())).to_string()
}

// ---------------------------------------------------------------------
// The world: module, service, secrets, state, /etc/passwd.
// ---------------------------------------------------------------------

struct World {
    dir: tempfile::TempDir,
    /// Users with files so far.
    enrolled: usize,
    /// A state file as a login leaves it.
    /// The state file's bytes, in the layout the module writes (two slots).
    state_file: Vec<u8>,
}

impl World {
    fn new(module: &Path, base: &Path) -> World {
        let dir = or_die(
            tempfile::Builder::new()
                .prefix("pam-totp-load.")
                .tempdir_in(base),
        );
        let p = dir.path();
        for d in ["pam.d", "state", "secrets", "etc"] {
            or_die(fs::create_dir(p.join(d)));
        }
        set_mode(p, 0o755);
        set_mode(&p.join("state"), 0o700);
        or_die(fs::copy(module, p.join("pam_totp.so")));
        let service = format!(
            "auth required {0}/pam_totp.so secret={0}/secrets/${{USER}} state_dir={0}/state window=1\n",
            p.display()
        );
        or_die(fs::write(p.join("pam.d/load"), service));
        or_die(fs::write(
            p.join("pam.d/other"),
            "auth required pam_deny.so\n",
        ));
        // The state a login leaves: a step long past, no failures.
        let mut st = UserState::new();
        st.keys.push(KeyState {
            id: "0000000000000000".into(),
            last_used: now() - 30_000,
            last_step: Some(now() / 30 - 1000),
            hotp_next: None,
        });
        st.last_success = Some(now() - 30_000);
        let text = or_die(st.to_toml());
        let state_file = record::new_file(1, text.as_bytes(), record::slot_size_for(text.len()));
        World {
            dir,
            enrolled: 0,
            state_file,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn confdir(&self) -> PathBuf {
        self.path().join("pam.d")
    }

    fn state_path(&self, i: usize) -> PathBuf {
        self.path().join("state").join(user_name(i))
    }

    /// Enrolls users up to `n`; with `state`, each also gets a state file
    /// and a lock file, as after a login.
    fn enroll_up_to(&mut self, n: usize, state: bool) {
        let secret = format!("version = 1\nsecret = \"{SECRET}\"\n");
        for i in self.enrolled..n {
            let name = user_name(i);
            let s = self.path().join("secrets").join(&name);
            or_die(fs::write(&s, &secret));
            set_mode(&s, 0o600);
            if state {
                self.put_state_back(i);
                let lock = self.path().join("state").join(format!(".{name}.lock"));
                or_die(fs::write(&lock, ""));
                set_mode(&lock, 0o600);
            }
        }
        self.enrolled = self.enrolled.max(n);
    }

    fn put_state_back(&self, i: usize) {
        let p = self.state_path(i);
        or_die(fs::write(&p, &self.state_file));
        set_mode(&p, 0o600);
    }

    fn clear_state(&self) {
        for e in or_die(fs::read_dir(self.path().join("state"))) {
            or_die(fs::remove_file(or_die(e).path()));
        }
    }

    /// Writes the passwd and group files seen as /etc/passwd and /etc/group:
    /// the machine's own entries and then `users`.
    fn set_accounts(&self, users: impl Iterator<Item = usize>) {
        let etc = self.path().join("etc");
        let mut passwd = or_die(fs::read_to_string(etc.join("passwd.orig")));
        let mut group = or_die(fs::read_to_string(etc.join("group.orig")));
        for i in users {
            let (name, uid) = (user_name(i), FIRST_UID + i as u32);
            passwd.push_str(&format!(
                "{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
            ));
            group.push_str(&format!("{name}:x:{uid}:\n"));
        }
        // Rewritten in place: the bind mounts refer to these inodes.
        or_die(fs::write(self.path().join("etc/passwd"), passwd));
        or_die(fs::write(self.path().join("etc/group"), group));
    }
}

fn set_mode(path: &Path, mode: u32) {
    or_die(fs::set_permissions(path, fs::Permissions::from_mode(mode)));
}

// ---------------------------------------------------------------------
// Statistics.
// ---------------------------------------------------------------------

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

// ---------------------------------------------------------------------
// Part 1: concurrency.
// ---------------------------------------------------------------------

/// A worker process: logs in users `first`, `first + stride`, ... below
/// `users`, after its standard input closes; prints one line per login:
/// `auth_ns whole_ns rc`.
fn worker(confdir: &Path, first: usize, stride: usize, users: usize) {
    let key = key();
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let mut out = String::new();
    for i in (first..users).step_by(stride) {
        let code = right_code(&key);
        let (auth, whole, rc) = login(confdir, &user_name(i), &code);
        out.push_str(&format!("{} {} {rc}\n", auth.as_nanos(), whole.as_nanos()));
    }
    print!("{out}");
}

fn concurrency(world: &mut World, users: usize, workers: &[usize]) {
    world.enroll_up_to(users, true);
    world.set_accounts(0..users);
    println!(
        "Part 1: {users} users, each logged in once per row, by W worker processes \
         released together (state under {})",
        world.path().display()
    );
    println!(
        "{:>3}  {:>10} {:>10}  {:>10} {:>10}  {:>12}",
        "W", "auth p50", "auth p99", "whole p50", "whole p99", "logins/s"
    );
    let me = or_die(std::env::current_exe());
    for &w in workers {
        // Every user as after an earlier login: a state file and a lock.
        for i in 0..users {
            world.put_state_back(i);
        }
        let mut children: Vec<_> = (0..w)
            .map(|k| {
                or_die(
                    Command::new(&me)
                        .arg("--worker")
                        .arg(world.confdir())
                        .args([k.to_string(), w.to_string(), users.to_string()])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn(),
                )
            })
            .collect();
        let (outputs, wall) = or_die(workers::release_and_collect(&mut children));
        let (mut auth, mut whole) = (Vec::new(), Vec::new());
        for line in outputs.iter().flat_map(|s| s.lines()) {
            let f: Vec<u64> = line
                .split(' ')
                .map(|x| x.parse().unwrap_or_else(|_| die("worker output")))
                .collect();
            if f[2] != PAM_SUCCESS as u64 {
                die(&format!("a login failed (rc {})", f[2]));
            }
            auth.push(Duration::from_nanos(f[0]));
            whole.push(Duration::from_nanos(f[1]));
        }
        if auth.len() != users {
            die("a worker lost logins");
        }
        println!(
            "{w:>3}  {:>10} {:>10}  {:>10} {:>10}  {:>12.0}",
            fmt(pct(&mut auth, 0.5)),
            fmt(pct(&mut auth, 0.99)),
            fmt(pct(&mut whole, 0.5)),
            fmt(pct(&mut whole, 0.99)),
            users as f64 / wall.as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------
// Part 2: scale.
// ---------------------------------------------------------------------

/// xorshift64*, for the choice of users.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

fn scale(world: &mut World, sizes: &[usize], samples: usize) {
    println!(
        "Part 2: N enrolled users (secret, state and lock files), {samples} logins of \
         random ones, one at a time (state under {})",
        world.path().display()
    );
    println!(
        "{:>7}  {:>9} {:>9} {:>10}  {:>9} {:>9} {:>10}  {:>10}",
        "N", "auth p50", "auth p99", "whole p50", "auth p50", "auth p99", "whole p50", "getpwnam"
    );
    println!(
        "{:>7}  {:<31}  {:<31}  {:>10}",
        "", "  passwd: this user only", "  passwd: all N users", "p50"
    );
    let key = key();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    world.clear_state();
    world.enrolled = 0;
    for &n in sizes {
        world.enroll_up_to(n, true);
        let picks: Vec<usize> = (0..samples).map(|_| rng.below(n)).collect();
        let mut row = Vec::new();
        for all in [false, true] {
            if all {
                world.set_accounts(0..n);
            }
            let (mut auth, mut whole) = (Vec::new(), Vec::new());
            for &i in &picks {
                if !all {
                    // The machine's accounts and this user: the lookup
                    // costs the same whatever N is.
                    world.set_accounts(std::iter::once(i));
                }
                world.put_state_back(i);
                let code = right_code(&key);
                let (a, w, rc) = login(&world.confdir(), &user_name(i), &code);
                if rc != PAM_SUCCESS {
                    die(&format!("login of {} failed: {rc}", user_name(i)));
                }
                auth.push(a);
                whole.push(w);
            }
            row.push(fmt(pct(&mut auth, 0.5)));
            row.push(fmt(pct(&mut auth, 0.99)));
            row.push(fmt(pct(&mut whole, 0.5)));
        }
        // getpwnam_r alone, against the file with all N users.
        let mut lookups: Vec<Duration> = picks
            .iter()
            .map(|&i| {
                let t = Instant::now();
                let u = or_die(nix::unistd::User::from_name(&user_name(i)));
                let d = t.elapsed();
                if u.is_none() {
                    die("user not found");
                }
                d
            })
            .collect();
        println!(
            "{n:>7}  {:>9} {:>9} {:>10}  {:>9} {:>9} {:>10}  {:>10}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            fmt(pct(&mut lookups, 0.5))
        );
    }
}

// ---------------------------------------------------------------------

fn default_module() -> PathBuf {
    built_module().unwrap_or_else(|e| die(&e))
}

fn list(s: &str) -> Vec<usize> {
    s.split(',')
        .map(|x| {
            x.trim()
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| die("a list of numbers"))
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut base = std::env::temp_dir();
    let mut module = None;
    let mut users = 2000;
    let mut workers = vec![1, 2, 4, 8, 16, 32];
    let mut sizes = vec![1, 10, 100, 1_000, 10_000, 100_000];
    let mut samples = 400;
    let mut part = String::from("all");
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--worker" => {
                let confdir = PathBuf::from(val());
                let n: Vec<usize> = (0..3)
                    .map(|_| val().parse().unwrap_or_else(|_| die("--worker")))
                    .collect();
                worker(&confdir, n[0], n[1], n[2]);
                return;
            }
            "--dir" => base = PathBuf::from(val()),
            "--module" => module = Some(PathBuf::from(val())),
            "--users" => users = list(&val())[0],
            "--workers" => workers = list(&val()),
            "--scale" => sizes = list(&val()),
            "--samples" => samples = list(&val())[0],
            "--part" => part = val(),
            // `cargo bench` and `cargo test` pass these to every target.
            "--bench" | "--test" => return,
            _ => die(&format!("unknown argument {a}")),
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        die("run as root (private mount namespace, root-owned state directory)");
    }
    let module = module.unwrap_or_else(default_module);
    let mut world = World::new(&module, &base);
    or_die(accounts::private_accounts(&world.path().join("etc")));
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cpu}, {cpus} CPUs; module: {}", module.display());
    if part == "all" || part == "concurrency" {
        concurrency(&mut world, users, &workers);
    }
    if part == "all" || part == "scale" {
        scale(&mut world, &sizes, samples);
    }
}
