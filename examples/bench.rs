//! Benchmark (not a test): the cost of one verification, and of one whole
//! `pam_authenticate` through the real libpam. See docs/benchmarks.md.
//!
//! ```text
//! cargo build --release --examples
//! sudo target/release/examples/bench [--module PATH] [--rounds N] [--dir DIR]
//! target/release/examples/bench --core-loop CASE N   # for callgrind
//! sudo target/release/examples/bench --pam-loop right|wrong N [--dir DIR]
//! ```
//!
//! Part 1 times `decision::attempt` (the pure decision: window 1, a fresh
//! state each time) for a right and a wrong code, and for scratch codes.
//! Part 2 loads the built module with `pam_start_confdir` from a private
//! directory and times `pam_authenticate` for a right and a wrong code
//! (the state file is removed between rounds, outside the timing, so the
//! rate limit never interferes and every round does the same work).
//! Right and wrong rounds alternate, so a drift of the machine affects both
//! alike. Part 2 needs root (the state directory must be root's); its
//! files go in a temporary directory under DIR (default $TMPDIR or /tmp),
//! so `--dir /dev/shm` shows the cost without the disk's fsync.
//! Part 3 (root) is what a sealed secret adds (issue 7): the secret file
//! parsed as the module does, plain against sealed (reading host.key and
//! opening the sealed box), and pam_authenticate with a plain and with a
//! sealed secret, alternating. `--read-loop plain|sealed N` and
//! `--pam-loop right-sealed N` are the callgrind loops for it.
//! `--core-loop CASE N` runs N attempts of one case and nothing else:
//! under `valgrind --tool=callgrind` the difference of two N gives exact
//! instructions per attempt; `--pam-loop` does the same for whole
//! pam_authenticate calls (options it uses must come before it).

#[path = "support/libpam.rs"]
mod libpam;

use std::ffi::c_int;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libpam::*;
use pam_totp::core::decision;
use pam_totp::core::decision::Credentials;
use pam_totp::core::otp;
use pam_totp::core::policy::{Policy, RateLimit};
use pam_totp::core::scratch::ScratchHash;
use pam_totp::secret::enrollment::Enrollment;
use pam_totp::secret::file;
use pam_totp::secret::seal;
use pam_totp::secret::seal::HostSecretKey;
use pam_totp::state::model::UserState;

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SCRATCH: [&str; 5] = ["11111111", "22222222", "33333333", "44444444", "55555555"];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2);
}

fn secret_file(scratch: bool) -> String {
    let codes: Vec<String> = if scratch {
        SCRATCH
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\"{}\"", ScratchHash::new(c, [i as u8 + 1; 16])))
            .collect()
    } else {
        Vec::new()
    };
    format!(
        "version = 1\nsecret = \"{SECRET}\"\nscratch_codes = [{}]\n",
        codes.join(", ")
    )
}

/// A code certainly not `code`: its last digit changed.
fn altered(code: &str) -> String {
    let mut b = code.as_bytes().to_vec();
    if let Some(last) = b.last_mut() {
        *last = if *last == b'9' { b'0' } else { *last + 1 };
    }
    String::from_utf8(b).unwrap_or_default()
}

// ---------------------------------------------------------------------
// Part 1: the verification core.
// ---------------------------------------------------------------------

struct Core {
    enrollment: Enrollment,
    policy: Policy,
    now: u64,
}

impl Core {
    fn new(scratch: bool) -> Core {
        let enrollment =
            file::parse(secret_file(scratch).as_bytes()).unwrap_or_else(|e| die(&e.to_string()));
        Core {
            enrollment,
            policy: Policy {
                window: 1,
                rate_limit: RateLimit {
                    max_failures: 1000,
                    seconds: 1,
                },
            },
            now: now(),
        }
    }

    fn right_code(&self) -> String {
        let key = self.enrollment.first_key();
        key.totp_code(key.step_at(self.now)).to_string()
    }

    /// One attempt from a fresh state; whether it was accepted.
    fn attempt(&self, typed: &str) -> bool {
        let mut state = UserState::new();
        let creds = Credentials::of(&self.enrollment);
        decision::attempt(&creds, typed, self.now, &self.policy, &mut state).is_success()
    }
}

/// Per-operation times of `batches` batches of `per_batch` runs of `f`.
fn batch_times(per_batch: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..per_batch {
        f();
    }
    t.elapsed() / per_batch
}

struct Stats {
    median: Duration,
    p10: Duration,
    p90: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p10: at(0.1),
        p90: at(0.9),
    }
}

fn show(name: &str, s: &Stats) {
    println!(
        "{name:<44} median {:>10.2?}   p10 {:>10.2?}   p90 {:>10.2?}",
        s.median, s.p10, s.p90
    );
}

/// Times cases of one setup, alternating between them batch by batch.
fn compare(rounds: u32, per_batch: u32, cases: &mut [(&str, &mut dyn FnMut())]) {
    let mut times: Vec<Vec<Duration>> = cases.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            times[i].push(batch_times(per_batch, *f));
        }
    }
    for ((name, _), t) in cases.iter().zip(times) {
        show(name, &stats(t));
    }
}

fn core_bench(rounds: u32) {
    println!("decision::attempt, window 1, fresh state (per attempt, {rounds} batches)");
    let plain = Core::new(false);
    let right = plain.right_code();
    let wrong = altered(&right);
    assert!(plain.attempt(&right) && !plain.attempt(&wrong));
    compare(
        rounds,
        2000,
        &mut [
            ("  TOTP, right code", &mut || {
                assert!(plain.attempt(&right));
            }),
            ("  TOTP, wrong code", &mut || {
                assert!(!plain.attempt(&wrong));
            }),
            ("  not a code at all (\"hello!\")", &mut || {
                assert!(!plain.attempt("hello!"));
            }),
        ],
    );
    let with = Core::new(true);
    let with_wrong = altered(&with.right_code());
    compare(
        rounds.min(20),
        20,
        &mut [
            ("  scratch (5 in file), right code", &mut || {
                assert!(with.attempt(SCRATCH[2]));
            }),
            ("  scratch (5 in file), wrong 8 digits", &mut || {
                assert!(!with.attempt("12121212"));
            }),
            ("  TOTP beside 5 scratch codes, wrong code", &mut || {
                assert!(!with.attempt(&with_wrong));
            }),
        ],
    );
}

fn core_loop(case: &str, n: u64) {
    let core = Core::new(case.starts_with("scratch"));
    let right = core.right_code();
    let wrong = altered(&right);
    if let Some(which) = case.strip_prefix("match-") {
        // The code check alone: every step of the window, constant time.
        let key = core.enrollment.first_key();
        let step = key.step_at(core.now);
        let typed = if which == "right" { &right } else { &wrong };
        for _ in 0..n {
            if key.match_totp(typed, step - 1, step + 1).is_some() != (which == "right") {
                die("unexpected verdict");
            }
        }
        return;
    }
    let (typed, want): (&str, bool) = match case {
        "right" => (&right, true),
        "wrong" => (&wrong, false),
        "scratch-right" => (SCRATCH[2], true),
        "scratch-wrong" => ("12121212", false),
        "scratch-file-totp-wrong" => (&wrong, false),
        _ => die(
            "CASE: right, wrong, scratch-right, scratch-wrong, scratch-file-totp-wrong, \
             match-right, match-wrong",
        ),
    };
    for _ in 0..n {
        if core.attempt(typed) != want {
            die("unexpected verdict");
        }
    }
}

// ---------------------------------------------------------------------
// Part 2: pam_authenticate through libpam.
// ---------------------------------------------------------------------

struct World {
    dir: tempfile::TempDir,
}

/// A host key pair in `dir` (host.key root 0600, host.pub) and root's
/// secret sealed to it, as `pam-totp enroll` writes it when host.pub exists.
fn sealed_world_files(dir: &Path) -> String {
    let key = HostSecretKey::generate().unwrap_or_else(|e| die(&e.to_string()));
    let key_path = dir.join("host.key");
    fs::write(&key_path, key.to_text().as_bytes()).unwrap_or_else(|e| die(&e.to_string()));
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| die(&e.to_string()));
    fs::write(seal::public_path(&key_path), key.public().to_text())
        .unwrap_or_else(|e| die(&e.to_string()));
    let secret = otp::decode_base32(SECRET).unwrap_or_else(|| die("base32"));
    let sealed = seal::seal(&key.public(), "root", &secret).unwrap_or_else(|e| die(&e.to_string()));
    format!("version = 1\nsealed_secret = \"{sealed}\"\n")
}

impl World {
    fn new(module: &Path, base: &Path) -> World {
        World::with(module, base, false)
    }

    /// With `sealed`, root's secret is sealed to a host key in the world
    /// and the service names it with `host_key=`.
    fn with(module: &Path, base: &Path, sealed: bool) -> World {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-bench.")
            .tempdir_in(base)
            .unwrap_or_else(|e| die(&e.to_string()));
        let p = dir.path();
        for d in ["pam.d", "state", "secrets"] {
            fs::create_dir(p.join(d)).unwrap_or_else(|e| die(&e.to_string()));
        }
        let set_mode = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| die(&e.to_string()))
        };
        set_mode(p, 0o755);
        set_mode(&p.join("state"), 0o700);
        fs::copy(module, p.join("pam_totp.so")).unwrap_or_else(|e| die(&e.to_string()));
        let mut service = format!(
            "auth required {}/pam_totp.so secret={}/secrets/${{USER}} state_dir={}/state window=1",
            p.display(),
            p.display(),
            p.display()
        );
        let file = if sealed {
            service.push_str(&format!(" host_key={}/host.key", p.display()));
            sealed_world_files(p)
        } else {
            secret_file(false)
        };
        service.push('\n');
        fs::write(p.join("pam.d/bench"), service).unwrap_or_else(|e| die(&e.to_string()));
        fs::write(p.join("pam.d/other"), "auth required pam_deny.so\n")
            .unwrap_or_else(|e| die(&e.to_string()));
        let secret = p.join("secrets/root");
        fs::write(&secret, file).unwrap_or_else(|e| die(&e.to_string()));
        set_mode(&secret, 0o600);
        World { dir }
    }

    /// One login: (time of pam_authenticate, time of pam_start..pam_end, rc).
    fn login(&self, code: &str) -> (Duration, Duration, c_int) {
        let _ = fs::remove_file(self.dir.path().join("state/root"));
        timed_login(&self.dir.path().join("pam.d"), "bench", "root", code)
            .unwrap_or_else(|e| die(&e))
    }
}

fn default_module() -> PathBuf {
    built_module().unwrap_or_else(|e| die(&e))
}

fn pam_bench(module: &Path, base: &Path, rounds: u32) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("pam_authenticate: skipped (needs root: the state directory must be root's)");
        return;
    }
    println!(
        "pam_authenticate through libpam, state and secret under {} ({rounds} rounds each)",
        base.display()
    );
    let world = World::new(module, base);
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    let (mut right_whole, mut wrong_whole) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let core = Core::new(false);
        let code = core.right_code();
        if core.now % 30 > 28 {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let (a, w, rc) = world.login(&code);
        if rc != PAM_SUCCESS {
            continue; // the step turned between computing and checking
        }
        right.push(a);
        right_whole.push(w);
        let (a, w, rc) = world.login(&altered(&code));
        if rc != PAM_AUTH_ERR {
            die(&format!("a wrong code gave {rc}"));
        }
        wrong.push(a);
        wrong_whole.push(w);
    }
    show("  pam_authenticate, right code", &stats(right));
    show("  pam_authenticate, wrong code", &stats(wrong));
    show("  pam_start..pam_end, right code", &stats(right_whole));
    show("  pam_start..pam_end, wrong code", &stats(wrong_whole));
}

fn main() {
    let mut module = None;
    let mut base = std::env::temp_dir();
    let mut rounds = 200u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--module" => module = Some(PathBuf::from(val())),
            "--dir" => base = PathBuf::from(val()),
            "--rounds" => rounds = val().parse().unwrap_or_else(|_| die("--rounds N")),
            "--pam-loop" => {
                let case = val();
                let n: u32 = val().parse().unwrap_or_else(|_| die("--pam-loop CASE N"));
                let sealed = case.ends_with("-sealed");
                let world = World::with(
                    &module.clone().unwrap_or_else(default_module),
                    &base,
                    sealed,
                );
                for _ in 0..n {
                    let code = Core::new(false).right_code();
                    let (typed, want) = match case.trim_end_matches("-sealed") {
                        "right" => (code, PAM_SUCCESS),
                        "wrong" => (altered(&code), PAM_AUTH_ERR),
                        _ => die("CASE: right, wrong, right-sealed or wrong-sealed"),
                    };
                    if world.login(&typed).2 != want {
                        die("unexpected verdict (a step boundary? run again)");
                    }
                }
                return;
            }
            "--core-loop" => {
                let case = val();
                let n = val().parse().unwrap_or_else(|_| die("--core-loop CASE N"));
                core_loop(&case, n);
                return;
            }
            "--read-loop" => {
                let case = val();
                let n = val().parse().unwrap_or_else(|_| die("--read-loop CASE N"));
                read_loop(&case, n, &base);
                return;
            }
            // `cargo bench` and `cargo test` pass these to every target.
            "--bench" | "--test" => {}
            _ => die(&format!("unknown argument {a}")),
        }
    }
    // What the machine is, for the record.
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!("machine: {cpu}, {} CPUs", num_cpus());
    core_bench(rounds.clamp(10, 200));
    let module = module.unwrap_or_else(default_module);
    println!("module: {}", module.display());
    pam_bench(&module, &base, rounds);
    seal_bench(&module, &base, rounds);
}

// ---------------------------------------------------------------------
// Part 3: what a sealed secret adds to a login.
// ---------------------------------------------------------------------

/// Root's secret file in a world, plain or sealed, and its host key.
struct SecretOnDisk {
    world: World,
    bytes: Vec<u8>,
}

impl SecretOnDisk {
    fn new(base: &Path, sealed: bool) -> SecretOnDisk {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-bench.")
            .tempdir_in(base)
            .unwrap_or_else(|e| die(&e.to_string()));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| die(&e.to_string()));
        let bytes = if sealed {
            sealed_world_files(dir.path())
        } else {
            secret_file(false)
        }
        .into_bytes();
        SecretOnDisk {
            world: World { dir },
            bytes,
        }
    }

    fn host_key(&self) -> PathBuf {
        self.world.dir.path().join("host.key")
    }

    /// What the module does with the secret file's bytes: parse, and for a
    /// sealed secret read the host key from disk (owner and mode checked)
    /// and open the sealed box.
    fn parse(&self) -> Enrollment {
        let host_key = self.host_key();
        let unseal = |sealed: &str| seal::unseal(&host_key, "root", sealed);
        file::parse_with(&self.bytes, Some(&unseal)).unwrap_or_else(|e| die(&e.to_string()))
    }
}

fn read_loop(case: &str, n: u64, base: &Path) {
    let sealed = match case {
        "plain" => false,
        "sealed" => true,
        _ => die("CASE: plain or sealed"),
    };
    let s = SecretOnDisk::new(base, sealed);
    for _ in 0..n {
        std::hint::black_box(s.parse());
    }
}

fn seal_bench(module: &Path, base: &Path, rounds: u32) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("sealed secrets: skipped (needs root: the host key must be root's)");
        return;
    }
    println!("sealed against plain secret file ({rounds} batches / rounds)");
    let plain = SecretOnDisk::new(base, false);
    let sealed = SecretOnDisk::new(base, true);
    let sealed_text = String::from_utf8_lossy(&sealed.bytes).into_owned();
    let sealed_value = sealed_text
        .split('"')
        .nth(1)
        .unwrap_or_else(|| die("no sealed value"))
        .to_owned();
    let keys = seal::load_secret_keys(&sealed.host_key()).unwrap_or_else(|e| die(&e.to_string()));
    compare(
        rounds,
        200,
        &mut [
            ("  parse the plain secret file", &mut || {
                std::hint::black_box(plain.parse());
            }),
            ("  parse the sealed file, read key, open", &mut || {
                std::hint::black_box(sealed.parse());
            }),
            ("  of which: read host.key (open, fstat)", &mut || {
                std::hint::black_box(
                    seal::load_secret_keys(&sealed.host_key())
                        .unwrap_or_else(|e| die(&e.to_string())),
                );
            }),
            ("  of which: open the sealed box", &mut || {
                std::hint::black_box(
                    seal::open(&keys, "root", &sealed_value)
                        .unwrap_or_else(|e| die(&e.to_string())),
                );
            }),
        ],
    );

    let plain = World::with(module, base, false);
    let sealed = World::with(module, base, true);
    let (mut p, mut s) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let core = Core::new(false);
        if core.now % 30 > 28 {
            std::thread::sleep(Duration::from_secs(2));
            continue;
        }
        let code = core.right_code();
        let (a, _, rc_plain) = plain.login(&code);
        let (b, _, rc_sealed) = sealed.login(&code);
        if rc_plain == PAM_SUCCESS && rc_sealed != PAM_SUCCESS {
            die(&format!("the sealed login gave {rc_sealed}"));
        }
        if rc_plain != PAM_SUCCESS || rc_sealed != PAM_SUCCESS {
            continue; // the step turned between computing and checking
        }
        p.push(a);
        s.push(b);
    }
    show("  pam_authenticate, right code, plain", &stats(p));
    show("  pam_authenticate, right code, sealed", &stats(s));
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
