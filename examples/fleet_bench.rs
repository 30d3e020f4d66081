//! Benchmark (not a test): what the fleet state (issue 13, `state=` on a
//! Redis/Valkey server) costs a login, against the local state directory.
//! See docs/benchmarks.md ("Fleet state").
//!
//! ```text
//! cargo build --release --examples
//! sudo target/release/examples/fleet_bench [--dir DIR] [--module PATH]
//!      [--rounds N] [--users N] [--workers W] [--one-account-logins N]
//! ```
//!
//! Root only. It starts its own `redis-server` (with the code of
//! tests/redis_support: a tempdir, a Unix socket and a free 127.0.0.1
//! port, `appendonly yes` as the README recommends, an ACL user limited to
//! the key prefix) and kills it at the end; and it works in a private
//! mount namespace of its own, where a generated /etc/passwd holding the
//! benchmark's accounts is bind-mounted (the machine's file is never
//! written). Its files go in a temporary directory under DIR (default
//! $TMPDIR or /tmp): `--dir /dev/shm` takes the disk out of the local
//! store's figures.
//!
//! Three PAM services, the same but for where the state lives: `local`
//! (the state directory), `unix` (`state=redis+unix://…`) and `tcp`
//! (`state=redis://127.0.0.1:PORT`), all `window=1`, default rate limit.
//!
//! Part 1, the added cost of one login: `--rounds` rounds (default 200),
//! each one login of root with the right code through every service in
//! turn (so a drift of the machine hits all alike); root's state is
//! removed before each login, outside the timing (the state file, or the
//! key on the server), so every login does the same work. p10, median and
//! p90 of `pam_authenticate` and of the whole `pam_start`..`pam_end`.
//!
//! Part 2, logins per second: `--workers` client processes (default 8)
//! released together, each doing logins one after another, for every
//! service:
//! - *one account*: every worker logs root in `--one-account-logins`
//!   times in all (default 2,000) with the right code. One login per step
//!   succeeds; the next three are refused as replays and the rest by the
//!   rate limit (default 3/30), and each of them is still a whole
//!   read-decide-write of the one account's state, which is what
//!   serialises. Checked after the run: successes + the state's
//!   `failed_attempts` = logins (no attempt lost).
//! - *N accounts*: `--users` accounts (default 1,000), each logged in once
//!   with its right code; every login must succeed.

#[path = "support/accounts.rs"]
mod accounts;
#[path = "support/libpam.rs"]
mod libpam;
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;
#[path = "support/workers.rs"]
mod workers;

use std::ffi::c_int;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libpam::*;
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::secret::file;
use redis_support::{Options, RedisServer, ADMIN_PASSWORD, ADMIN_USER, PASSWORD, PREFIX, USER};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const FIRST_UID: u32 = 3_100_000;
const SERVICES: [&str; 3] = ["local", "unix", "tcp"];

fn die(msg: &str) -> ! {
    eprintln!("fleet_bench: {msg}");
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
    format!("fb{i:06}")
}

fn key() -> Enrollment {
    let file = format!("version = 1\nsecret = \"{SECRET}\"\n");
    or_die(file::parse(file.as_bytes()))
}

fn right_code(key: &Enrollment) -> String {
    let k = key.first_key();
    k.totp_code(k.step_at(now())).to_string()
}

fn set_mode(path: &Path, mode: u32) {
    or_die(fs::set_permissions(path, fs::Permissions::from_mode(mode)));
}

/// Waits while the current 30 s step has fewer than `margin` seconds left.
fn avoid_step_edge(margin: u64) {
    let left = 30 - now() % 30;
    if left < margin {
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

// ---------------------------------------------------------------------
// The world: module, services, secrets, state, /etc/passwd.
// ---------------------------------------------------------------------

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new(module: &Path, base: &Path, server: &RedisServer, creds: &Path) -> World {
        let dir = or_die(
            tempfile::Builder::new()
                .prefix("pam-totp-fleet-bench.")
                .tempdir_in(base),
        );
        let p = dir.path();
        for d in ["pam.d", "state", "secrets"] {
            or_die(fs::create_dir(p.join(d)));
        }
        set_mode(p, 0o755);
        set_mode(&p.join("state"), 0o700);
        or_die(fs::copy(module, p.join("pam_totp.so")));
        // A config file of its own, so the machine's never decides.
        or_die(fs::write(p.join("config.toml"), ""));
        set_mode(&p.join("config.toml"), 0o644);
        let line = |extra: &str| {
            format!(
                "auth required {0}/pam_totp.so config={0}/config.toml \
                 secret={0}/secrets/${{USER}} state_dir={0}/state window=1 {extra}\n",
                p.display()
            )
        };
        let fleet = |url: String| format!("state={url} state_credentials={}", creds.display());
        or_die(fs::write(p.join("pam.d/local"), line("")));
        or_die(fs::write(
            p.join("pam.d/unix"),
            line(&fleet(server.unix_url())),
        ));
        or_die(fs::write(
            p.join("pam.d/tcp"),
            line(&fleet(server.tcp_url())),
        ));
        or_die(fs::write(
            p.join("pam.d/other"),
            "auth required pam_deny.so\n",
        ));
        World { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn confdir(&self) -> PathBuf {
        self.path().join("pam.d")
    }

    fn enroll(&self, user: &str) {
        let s = self.path().join("secrets").join(user);
        or_die(fs::write(
            &s,
            format!("version = 1\nsecret = \"{SECRET}\"\n"),
        ));
        set_mode(&s, 0o600);
    }

    fn clear_local_state(&self) {
        for e in or_die(fs::read_dir(self.path().join("state"))) {
            or_die(fs::remove_file(or_die(e).path()));
        }
    }
}

/// Writes `etc`/passwd and `etc`/group, seen as /etc/passwd and
/// /etc/group: the machine's own entries and then `users` accounts.
fn set_accounts(etc: &Path, users: usize) {
    let mut passwd = or_die(fs::read_to_string(etc.join("passwd.orig")));
    let mut group = or_die(fs::read_to_string(etc.join("group.orig")));
    for i in 0..users {
        let (name, uid) = (user_name(i), FIRST_UID + i as u32);
        passwd.push_str(&format!(
            "{name}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
        ));
        group.push_str(&format!("{name}:x:{uid}:\n"));
    }
    // Rewritten in place: the bind mounts refer to these inodes.
    or_die(fs::write(etc.join("passwd"), passwd));
    or_die(fs::write(etc.join("group"), group));
}

// ---------------------------------------------------------------------
// The server, as its administrator (outside every timing).
// ---------------------------------------------------------------------

/// A connection as the unrestricted admin user, over the Unix socket,
/// speaking inline commands.
struct Admin(BufReader<UnixStream>);

impl Admin {
    fn connect(server: &RedisServer) -> Admin {
        let s = or_die(UnixStream::connect(server.socket()));
        let mut a = Admin(BufReader::new(s));
        let ok = a.command(&format!("AUTH {ADMIN_USER} {ADMIN_PASSWORD}"));
        if ok != "+OK" {
            die(&format!("AUTH: {ok}"));
        }
        a
    }

    /// One command; its first reply line (a bulk string's text for GET).
    fn command(&mut self, cmd: &str) -> String {
        or_die(self.0.get_mut().write_all(format!("{cmd}\r\n").as_bytes()));
        let mut line = String::new();
        or_die(self.0.read_line(&mut line));
        let line = line.trim_end().to_owned();
        if let Some(n) = line.strip_prefix('$') {
            let n: i64 = or_die(n.parse());
            if n < 0 {
                return String::new();
            }
            let mut body = vec![0u8; n as usize + 2];
            or_die(self.0.read_exact(&mut body));
            body.truncate(n as usize);
            return or_die(String::from_utf8(body));
        }
        line
    }

    fn forget(&mut self, user: &str) {
        self.command(&format!("DEL {PREFIX}state:{user}"));
    }

    fn state(&mut self, user: &str) -> String {
        self.command(&format!("GET {PREFIX}state:{user}"))
    }
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
// Part 1: the added cost of one login.
// ---------------------------------------------------------------------

fn added_cost(world: &World, admin: &mut Admin, rounds: u32) {
    println!(
        "Part 1: one login of root with the right code, state removed before each \
         ({rounds} rounds, services alternating; local state under {})",
        world.path().display()
    );
    let key = key();
    let mut auth: Vec<Vec<Duration>> = vec![Vec::new(); SERVICES.len()];
    let mut whole: Vec<Vec<Duration>> = vec![Vec::new(); SERVICES.len()];
    let mut done = 0;
    while done < rounds {
        avoid_step_edge(2);
        let code = right_code(&key);
        for (i, svc) in SERVICES.iter().enumerate() {
            world.clear_local_state();
            admin.forget("root");
            let (a, w, rc) = or_die(timed_login(&world.confdir(), svc, "root", &code));
            if rc != PAM_SUCCESS {
                die(&format!("{svc}: a right code gave {rc}"));
            }
            auth[i].push(a);
            whole[i].push(w);
        }
        done += 1;
    }
    println!(
        "  {:<8} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
        "state", "auth p10", "auth p50", "auth p90", "whole p10", "whole p50", "whole p90"
    );
    let mut medians = Vec::new();
    for (i, svc) in SERVICES.iter().enumerate() {
        let (a, w) = (&mut auth[i], &mut whole[i]);
        let m = pct(a, 0.5);
        medians.push(m);
        println!(
            "  {svc:<8} {:>10} {:>10} {:>10}   {:>10} {:>10} {:>10}",
            fmt(pct(a, 0.1)),
            fmt(m),
            fmt(pct(a, 0.9)),
            fmt(pct(w, 0.1)),
            fmt(pct(w, 0.5)),
            fmt(pct(w, 0.9)),
        );
    }
    for (i, svc) in SERVICES.iter().enumerate().skip(1) {
        let d = medians[i].as_secs_f64() - medians[0].as_secs_f64();
        println!(
            "  added by {svc}: {:+.0} µs per pam_authenticate (median against local)",
            d * 1e6
        );
    }
}

// ---------------------------------------------------------------------
// Part 2: logins per second from concurrent client processes.
// ---------------------------------------------------------------------

/// A worker process: after its standard input closes, logs in through
/// `service` either root `n` times (`mode` one) or users `first`,
/// `first + stride`, ... below `n` (`mode` many); prints one line per
/// login: `auth_ns whole_ns rc`.
fn worker(confdir: &Path, service: &str, mode: &str, first: usize, stride: usize, n: usize) {
    let key = key();
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let mut out = String::new();
    let users: Vec<String> = match mode {
        "one" => vec!["root".to_owned(); n],
        _ => (first..n).step_by(stride).map(user_name).collect(),
    };
    for user in users {
        let code = right_code(&key);
        let (auth, whole, rc) = or_die(timed_login(confdir, service, &user, &code));
        out.push_str(&format!("{} {} {rc}\n", auth.as_nanos(), whole.as_nanos()));
    }
    print!("{out}");
}

struct Run {
    wall: Duration,
    auth: Vec<Duration>,
    successes: usize,
    refusals: usize,
}

fn release_workers(world: &World, service: &str, mode: &str, workers: usize, n: usize) -> Run {
    let me = or_die(std::env::current_exe());
    let mut children: Vec<_> = (0..workers)
        .map(|k| {
            // one account: the n logins shared out; many: user k, k+W, ...
            let count = if mode == "one" {
                n / workers + usize::from(k < n % workers)
            } else {
                n
            };
            or_die(
                Command::new(&me)
                    .arg("--worker")
                    .arg(world.confdir())
                    .args([service, mode])
                    .args([k.to_string(), workers.to_string(), count.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn(),
            )
        })
        .collect();
    let (outputs, wall) = or_die(workers::release_and_collect(&mut children));
    let mut run = Run {
        wall,
        auth: Vec::new(),
        successes: 0,
        refusals: 0,
    };
    for line in outputs.iter().flat_map(|s| s.lines()) {
        let f: Vec<u64> = line
            .split(' ')
            .map(|x| x.parse().unwrap_or_else(|_| die("worker output")))
            .collect();
        match f[2] as c_int {
            PAM_SUCCESS => run.successes += 1,
            PAM_AUTH_ERR => run.refusals += 1,
            rc => die(&format!("{service}: a login gave {rc}")),
        }
        run.auth.push(Duration::from_nanos(f[0]));
    }
    run
}

/// root's `failed_attempts` in the state `text` (TOML).
fn failed_attempts(text: &str) -> usize {
    let t: toml::Table = or_die(text.parse());
    t.get("failed_attempts")
        .and_then(|v| v.as_integer())
        .unwrap_or(0) as usize
}

fn throughput(world: &World, admin: &mut Admin, workers: usize, users: usize, one_n: usize) {
    println!(
        "Part 2: {workers} client processes released together; logins per second \
         from the release to the last one's exit"
    );
    println!(
        "  {:<8} {:<14} {:>7} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "state", "accounts", "logins", "success", "refused", "auth p50", "auth p99", "logins/s"
    );
    for (mode, n, label) in [
        ("one", one_n, "1 (root)".to_owned()),
        ("many", users, format!("{users}, once")),
    ] {
        for svc in SERVICES {
            world.clear_local_state();
            admin.command("FLUSHDB");
            avoid_step_edge(if mode == "one" { 8 } else { 4 });
            let mut run = release_workers(world, svc, mode, workers, n);
            let total = run.successes + run.refusals;
            if total != n {
                die(&format!("{svc}: {total} logins reported, {n} made"));
            }
            if mode == "many" && run.successes != n {
                die(&format!(
                    "{svc}: {} of {n} right codes refused",
                    run.refusals
                ));
            }
            if mode == "one" {
                // Every refusal was recorded in the one state: none lost.
                let text = if svc == "local" {
                    let bytes = or_die(fs::read(world.path().join("state/root")));
                    or_die(or_die(pam_totp::state::record::parse_state_file(&bytes)).to_toml())
                } else {
                    admin.state("root")
                };
                let failed = failed_attempts(&text);
                // failed_attempts counts since the last success.
                if failed > run.refusals || run.successes == 0 {
                    die(&format!("{svc}: state says {failed} failures"));
                }
            }
            println!(
                "  {svc:<8} {label:<14} {n:>7} {:>9} {:>9} {:>10} {:>10} {:>10.0}",
                run.successes,
                run.refusals,
                fmt(pct(&mut run.auth, 0.5)),
                fmt(pct(&mut run.auth, 0.99)),
                n as f64 / run.wall.as_secs_f64()
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut base = std::env::temp_dir();
    let mut module = None;
    let mut rounds = 200;
    let mut users = 1000;
    let mut workers = 8;
    let mut one_n = 2000;
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        let mut num =
            |what: &str| -> usize { val().parse().unwrap_or_else(|_| die(&format!("{what} N"))) };
        match a.as_str() {
            "--worker" => {
                let confdir = PathBuf::from(val());
                let (service, mode) = (val(), val());
                let n: Vec<usize> = (0..3)
                    .map(|_| val().parse().unwrap_or_else(|_| die("--worker")))
                    .collect();
                worker(&confdir, &service, &mode, n[0], n[1], n[2]);
                return;
            }
            "--dir" => base = PathBuf::from(val()),
            "--module" => module = Some(PathBuf::from(val())),
            "--rounds" => rounds = num("--rounds") as u32,
            "--users" => users = num("--users"),
            "--workers" => workers = num("--workers").max(1),
            "--one-account-logins" => one_n = num("--one-account-logins"),
            // `cargo bench` and `cargo test` pass these to every target.
            "--bench" | "--test" => return,
            _ => die(&format!("unknown argument {a}")),
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        die("run as root (private mount namespace, root-owned state directory)");
    }
    let module = module.unwrap_or_else(|| built_module().unwrap_or_else(|e| die(&e)));
    // The accounts first, while the process is single-threaded.
    let etc = or_die(
        tempfile::Builder::new()
            .prefix("pam-totp-fleet-bench-etc.")
            .tempdir_in(&base),
    );
    or_die(accounts::private_accounts(etc.path()));

    let server = RedisServer::start(Options {
        tcp: true,
        appendonly: true,
        ..Options::default()
    });
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    let world = World::new(&module, &base, &server, &creds);
    world.enroll("root");
    for i in 0..users {
        world.enroll(&user_name(i));
    }
    set_accounts(etc.path(), users);
    let mut admin = Admin::connect(&server);

    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("machine: {cpu}, {cpus} CPUs; module: {}", module.display());
    println!("server: {version}; appendonly yes; ACL user {USER}");
    added_cost(&world, &mut admin, rounds);
    throughput(&world, &mut admin, workers, users, one_n);
    drop(server);
}
