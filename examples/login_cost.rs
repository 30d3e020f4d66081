//! Benchmark (not a test): what one login costs as sshd pays it (issue 17).
//!
//! sshd starts a fresh process for every connection, and that process
//! loads the PAM modules anew. So every login here is a fresh process:
//! a small C program, `examples/c/pam_login.c` (built here with `cc`; a C
//! program like sshd, so a Rust module pays for loading `libgcc_s.so.1`
//! as it does in sshd, which a Rust client would have loaded already), is
//! executed once per login,
//! opens the service from a private directory with `pam_start_confdir`,
//! answers the prompt with a code and ends; the time is from the spawn to
//! the exit, as an observer of the login sees it, and the CPU time (user +
//! system) of that process, which waiting for a CPU does not inflate. The
//! per-round difference with pam_permit is "above floor". All cases run in one
//! run, interleaved (one login of each case per round), so a change in the
//! machine's load hits them alike.
//!
//! Root only: the benchmark enters a private mount namespace whose /dev
//! has its own listening /dev/log (drained by a thread, as syslog would),
//! so the modules' log lines cost what they cost with a syslog daemon.
//!
//! Cases: pam_permit (the floor: process, libpam, the service file);
//! pam_google_authenticator ("strong": DISALLOW_REUSE and RATE_LIMIT 3 30,
//! right code; "default": a file of TOTP_AUTH only, wrong code), its file on
//! ext4 and on tmpfs like our state; both modules for a user not enrolled
//! yet, under `nullok` (the module loaded, the user looked up, no secret
//! file found; pam_permit then lets the login through): what a module
//! costs before it does any work; our module with a
//! right, a wrong and a scratch code and a sealed secret, with the state
//! directory on ext4 (`--disk`, /var/tmp) and on tmpfs (`--tmpfs`,
//! /dev/shm); and the fleet store on a loopback redis-server started here,
//! over plain TCP and over TLS (`rediss://`: the module loads its TLS
//! library, `libpam_totp_tls.so`, which must sit beside the module given,
//! as the package installs it; `scripts/build-libraries target` builds
//! both as the package does, into target/dist/).
//! Our module is loaded from a copy on `--disk` in every case, as an
//! installed module is (and as Google's is, from /usr/lib): only the
//! state moves to tmpfs. A module file on tmpfs costs more to load (here
//! its pages were mapped one fault each, against 16 per fault from ext4).
//! Every file a login changes is put back before the next (outside the
//! timing), so every round does the same work. Root is a returning user:
//! at the start, one login with the code of the step before leaves the
//! state (local, and the fleet's) that every round starts from, as a
//! user who logged in a while ago has it; the module then rewrites that
//! state in place. The "first login" cases start with no state, so the
//! module creates it, as it does once per user.
//!
//! Then the module's own cost against the number of enrolled users: 1 to
//! 100,000 secret files and state files in the directories (tmpfs), one
//! login of root per round interleaved with pam_permit.
//!
//! ```text
//! sudo target/release/examples/login_cost [--rounds 200] [--scale-rounds 100]
//!      [--scale 1,100,10000,100000] [--disk /var/tmp] [--tmpfs /dev/shm]
//!      [--module PATH] [--client PATH] [--alt OTHER.so] [--floor FLOOR.so]
//! ```
//!
//! `--client` runs another login application instead of the C one (one
//! that takes the same arguments and prints `"result":"PAM_..."`, such as
//! `target/release/examples/pam_client`, the Rust client of the tests).
//!
//! `--alt` adds a second build of the module (another profile), in a world
//! of its own on tmpfs, interleaved with the rest. `--floor` does the
//! same for `examples/floor_module.rs` (a right and a wrong code): the
//! least a TOTP module built from the module's own crates costs, which no
//! module of this stack can go under. Nothing here asserts a time: the
//! target checks are printed, not tested (docs/benchmarks.md).

#[path = "support/libpam.rs"]
mod libpam;
#[path = "support/login_world.rs"]
mod login_world;
#[path = "../tests/redis_support/mod.rs"]
mod redis_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use login_world::{private_dev_log, Admin, World};
use pam_totp::secret::file;
use redis_support::{Options, RedisServer, TestCa, TlsConfig, PASSWORD, USER};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SCRATCH: [&str; 5] = ["11111111", "22222222", "33333333", "44444444", "55555555"];

fn die(msg: &str) -> ! {
    eprintln!("login_cost: {msg}");
    std::process::exit(2);
}

fn or_die<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| die(&e.to_string()))
}

fn now() -> u64 {
    or_die(SystemTime::now().duration_since(UNIX_EPOCH)).as_secs()
}

fn set_mode(path: &Path, mode: u32) {
    or_die(fs::set_permissions(path, fs::Permissions::from_mode(mode)));
}

fn put(path: &Path, text: &str, mode: u32) {
    or_die(fs::write(path, text));
    set_mode(path, mode);
}

fn right_code() -> String {
    let e = or_die(file::parse(
        format!("version = 1\nsecret = \"{SECRET}\"\n").as_bytes(),
    ));
    let key = e.first_key();
    key.totp_code(key.step_at(now())).to_string()
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
// One login: a fresh process.
// ---------------------------------------------------------------------

/// One login's wall time (spawn to exit) and the CPU time (user + system)
/// its process used.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

/// CPU time of the waited-for children so far, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: rusage is plain data, filled in by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage for the call to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        die("getrusage");
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Runs `client` for one login, checking the result is `expect`.
fn login(client: &Path, confdir: &Path, service: &str, code: &str, expect: &str) -> Sample {
    let cpu_before = children_cpu();
    let start = Instant::now();
    let out = or_die(
        Command::new(client)
            .arg("--confdir")
            .arg(confdir)
            .args(["--service", service, "--user", "root", "--answer", code])
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output(),
    );
    let wall = start.elapsed().as_secs_f64();
    let cpu = children_cpu() - cpu_before;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains(&format!("\"result\":\"{expect}\"")) {
        die(&format!("{service} with {expect:?} expected: {text}"));
    }
    Sample { wall, cpu }
}

struct Case {
    label: &'static str,
    world: usize,
    service: &'static str,
    code: fn() -> String,
    expect: &'static str,
    /// No state yet (the user's first login), instead of a returning
    /// user's.
    first_login: bool,
}

const fn case(
    label: &'static str,
    world: usize,
    service: &'static str,
    code: fn() -> String,
    expect: &'static str,
) -> Case {
    Case {
        label,
        world,
        service,
        code,
        expect,
        first_login: false,
    }
}

/// `c` as a user's first login: no state yet, so the module creates the
/// file (or the fleet's key).
const fn first(c: Case) -> Case {
    Case {
        first_login: true,
        ..c
    }
}

/// The code of the step before now: a login with it leaves the state of
/// a user who logged in a while ago (that step spent, the current one
/// not).
fn previous_code() -> String {
    let e = or_die(file::parse(
        format!("version = 1\nsecret = \"{SECRET}\"\n").as_bytes(),
    ));
    let key = e.first_key();
    key.totp_code(key.step_at(now()) - 1).to_string()
}

/// Not across a step edge: a code is computed before its login.
fn away_from_step_edge() {
    if 30 - now() % 30 < 2 {
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Makes root of `w` a returning user: one login with the code of the
/// step before (and one through the fleet, with `admin`), whose state
/// every later round but a first login starts from. The module writes
/// a state in place at every login; a user's first login creates it,
/// once (cases "first login").
fn make_returning(w: &mut World, client: &Path, admin: &mut Option<Admin>) {
    away_from_step_edge();
    let services: &[&str] = if admin.is_some() {
        &["ours", "fleet"]
    } else {
        &["ours"]
    };
    for service in services {
        w.reset(service, true, admin);
        login(
            client,
            &w.path().join("pam.d"),
            service,
            &previous_code(),
            "PAM_SUCCESS",
        );
    }
    w.remember_state(admin.as_mut());
}

fn wrong_code() -> String {
    altered(&right_code())
}

fn scratch_code() -> String {
    SCRATCH[2].to_owned()
}

fn pct(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1e3)
}

/// Every case once per round, in turn: the samples per case, by round.
fn run(
    worlds: &[World],
    cases: &[Case],
    rounds: u32,
    client: &Path,
    admin: &mut Option<Admin>,
) -> Vec<Vec<Sample>> {
    let mut times = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        away_from_step_edge();
        for (c, t) in cases.iter().zip(&mut times) {
            let w = &worlds[c.world];
            w.reset(c.service, c.first_login, admin);
            let code = (c.code)();
            t.push(login(
                client,
                &w.path().join("pam.d"),
                c.service,
                &code,
                c.expect,
            ));
        }
    }
    times
}

/// Medians of one case: wall, CPU, and both above the floor (the median
/// of the per-round differences, so slow drifts of the load cancel).
struct Summary {
    wall: f64,
    cpu: f64,
    wall_above: f64,
    cpu_above: f64,
}

fn summary(v: &[Sample], floor: &[Sample]) -> Summary {
    let get = |f: fn(&Sample) -> f64| v.iter().map(f).collect::<Vec<_>>();
    let above = |f: fn(&Sample) -> f64| {
        v.iter()
            .zip(floor)
            .map(|(a, b)| f(a) - f(b))
            .collect::<Vec<_>>()
    };
    Summary {
        wall: median(&get(|s| s.wall)),
        cpu: median(&get(|s| s.cpu)),
        wall_above: median(&above(|s| s.wall)),
        cpu_above: median(&above(|s| s.cpu)),
    }
}

const CASES: [Case; 21] = [
    case("pam_permit (floor)", 0, "permit", right_code, "PAM_SUCCESS"),
    case(
        "google, strong, right, ext4",
        0,
        "gstrong",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "google, default, wrong, ext4",
        0,
        "gdefault",
        wrong_code,
        "PAM_AUTH_ERR",
    ),
    case(
        "google, strong, right, tmpfs",
        1,
        "gstrong",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "google, default, wrong, tmpfs",
        1,
        "gdefault",
        wrong_code,
        "PAM_AUTH_ERR",
    ),
    case("ours, right, ext4", 0, "ours", right_code, "PAM_SUCCESS"),
    first(case(
        "ours, right, first login, ext4",
        0,
        "ours",
        right_code,
        "PAM_SUCCESS",
    )),
    case("ours, wrong, ext4", 0, "ours", wrong_code, "PAM_AUTH_ERR"),
    case(
        "ours, scratch, ext4",
        0,
        "scratch",
        scratch_code,
        "PAM_SUCCESS",
    ),
    case(
        "ours, sealed, right, ext4",
        0,
        "sealed",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "google, not enrolled (nullok), tmpfs",
        1,
        "gnone",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "ours, not enrolled (nullok), tmpfs",
        1,
        "oursnone",
        right_code,
        "PAM_SUCCESS",
    ),
    case("ours, right, tmpfs", 1, "ours", right_code, "PAM_SUCCESS"),
    first(case(
        "ours, right, first login, tmpfs",
        1,
        "ours",
        right_code,
        "PAM_SUCCESS",
    )),
    case("ours, wrong, tmpfs", 1, "ours", wrong_code, "PAM_AUTH_ERR"),
    case(
        "ours, scratch, tmpfs",
        1,
        "scratch",
        scratch_code,
        "PAM_SUCCESS",
    ),
    case(
        "ours, sealed, right, tmpfs",
        1,
        "sealed",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "ours, fleet (loopback redis), right",
        0,
        "fleet",
        right_code,
        "PAM_SUCCESS",
    ),
    first(case(
        "ours, fleet (loopback redis), right, first login",
        0,
        "fleet",
        right_code,
        "PAM_SUCCESS",
    )),
    case(
        "ours, fleet (loopback redis), wrong",
        0,
        "fleet",
        wrong_code,
        "PAM_AUTH_ERR",
    ),
    case(
        "ours, fleet over TLS (loopback rediss), right",
        0,
        "fleettls",
        right_code,
        "PAM_SUCCESS",
    ),
];

/// With `--alt PATH`: the same module built otherwise (another profile),
/// in a world of its own on tmpfs, interleaved with the rest.
const ALT_CASES: [Case; 4] = [
    case(
        "alt module: right, tmpfs",
        2,
        "ours",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "alt module: wrong, tmpfs",
        2,
        "ours",
        wrong_code,
        "PAM_AUTH_ERR",
    ),
    case(
        "alt module: scratch, tmpfs",
        2,
        "scratch",
        scratch_code,
        "PAM_SUCCESS",
    ),
    case(
        "alt module: sealed, right, tmpfs",
        2,
        "sealed",
        right_code,
        "PAM_SUCCESS",
    ),
];

/// With `--floor PATH`: examples/floor_module.rs, in a world of its own
/// on tmpfs (its `world` is set when that world is made). It keeps no
/// state, so its world has no returning user.
const FLOOR_CASES: [Case; 2] = [
    case(
        "floor module: right, tmpfs",
        0,
        "ours",
        right_code,
        "PAM_SUCCESS",
    ),
    case(
        "floor module: wrong, tmpfs",
        0,
        "ours",
        wrong_code,
        "PAM_AUTH_ERR",
    ),
];

fn report(cases: &[Case], times: &[Vec<Sample>]) {
    println!(
        "| case | wall p50 | wall p10 | wall p90 | CPU p50 | wall above floor | CPU above floor |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut sums = BTreeMap::new();
    for (c, v) in cases.iter().zip(times) {
        let s = summary(v, &times[0]);
        let wall: Vec<f64> = v.iter().map(|s| s.wall).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.label,
            ms(s.wall),
            ms(pct(&wall, 0.1)),
            ms(pct(&wall, 0.9)),
            ms(s.cpu),
            ms(s.wall_above),
            ms(s.cpu_above)
        );
        sums.insert(c.label, s);
    }
    let get = |k: &str| sums.get(k).unwrap_or_else(|| die(k));
    println!("\ntargets: ours / google (wall; wall above floor; CPU above floor)");
    for (ours, google, target) in [
        ("ours, right, ext4", "google, strong, right, ext4", 1.0),
        ("ours, right, tmpfs", "google, strong, right, tmpfs", 1.0),
        ("ours, wrong, ext4", "google, default, wrong, ext4", 0.5),
        ("ours, wrong, tmpfs", "google, default, wrong, tmpfs", 0.5),
    ] {
        let (o, google) = (get(ours), get(google));
        let (whole, above, cpu) = (
            ratio(o.wall, google.wall),
            ratio(o.wall_above, google.wall_above),
            ratio(o.cpu_above, google.cpu_above),
        );
        let verdict = if above <= target { "met" } else { "MISSED" };
        println!(
            "  {ours}: {whole:.2}x; {above:.2}x; {cpu:.2}x (target <= {target}x above floor): {verdict}"
        );
    }
    // The floor module promises nothing; its ratios say how far under the
    // targets the stack itself is, not whether ours meets them.
    let floor_targets = [
        (
            "floor module: right, tmpfs",
            "google, strong, right, tmpfs",
            1.0,
        ),
        (
            "floor module: wrong, tmpfs",
            "google, default, wrong, tmpfs",
            0.5,
        ),
    ];
    for (floor, google, target) in floor_targets {
        if let (Some(f), Some(g)) = (sums.get(floor), sums.get(google)) {
            println!(
                "  {floor} / {google}: {:.2}x above floor; {:.2}x CPU above floor (what the target asks of ours: <= {target}x)",
                ratio(f.wall_above, g.wall_above),
                ratio(f.cpu_above, g.cpu_above)
            );
        }
    }
}

/// `a / b` (seconds), a `b` under one microsecond (a case no dearer than
/// the floor) read as one microsecond.
fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(1e-6)
}

/// The module's own cost against the number of enrolled users.
fn scale_part(
    module: &Path,
    tmpfs: &Path,
    disk: &Path,
    client: &Path,
    scale: &[usize],
    rounds: u32,
) {
    let mut worlds = [World::new(module, tmpfs, disk, None)];
    make_returning(&mut worlds[0], client, &mut None);
    let p = worlds[0].path();
    let secret = fs::read_to_string(p.join("secrets/root")).unwrap_or_default();
    let mut have = 1usize;
    println!("\nenrolled users (secret and state files on tmpfs), {rounds} rounds each");
    println!("| N | ours, right, wall p50 | pam_permit | wall above floor | CPU above floor |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let by_label = |label: &str| {
        CASES
            .iter()
            .find(|c| c.label == label)
            .unwrap_or_else(|| die(label))
            .clone_as()
    };
    let cases = [
        by_label("pam_permit (floor)"),
        by_label("ours, right, tmpfs"),
    ];
    for &n in scale {
        while have < n {
            let name = format!("u{have:06}");
            put(&p.join("secrets").join(&name), &secret, 0o600);
            put(&p.join("state").join(&name), "", 0o600);
            have += 1;
        }
        let t = run(&worlds, &cases, rounds, client, &mut None);
        let s = summary(&t[1], &t[0]);
        let floor: Vec<f64> = t[0].iter().map(|s| s.wall).collect();
        println!(
            "| {n} | {} | {} | {} | {} |",
            ms(s.wall),
            ms(median(&floor)),
            ms(s.wall_above),
            ms(s.cpu_above)
        );
    }
}

impl Case {
    /// The same case in world 0 (the scale part has one world).
    fn clone_as(&self) -> Case {
        Case {
            first_login: self.first_login,
            ..case(self.label, 0, self.service, self.code, self.expect)
        }
    }
}

fn stripped_size(module: &Path, scratch: &Path) -> u64 {
    let out = scratch.join("stripped.so");
    let ok = Command::new("strip")
        .args(["--strip-all", "-o"])
        .arg(&out)
        .arg(module)
        .status();
    if !ok.map(|s| s.success()).unwrap_or(false) {
        die("strip failed (binutils)");
    }
    or_die(fs::metadata(out)).len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut scale_rounds) = (200u32, 100u32);
    let mut scale: Vec<usize> = vec![1, 100, 10_000, 100_000];
    let (mut disk, mut tmpfs) = (PathBuf::from("/var/tmp"), PathBuf::from("/dev/shm"));
    let (mut module, mut client, mut alt, mut floor) = (None, None, None, None);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--rounds" => rounds = or_die(val().parse()),
            "--scale-rounds" => scale_rounds = or_die(val().parse()),
            "--scale" => scale = val().split(',').map(|n| or_die(n.parse())).collect(),
            "--disk" => disk = PathBuf::from(val()),
            "--tmpfs" => tmpfs = PathBuf::from(val()),
            "--module" => module = Some(PathBuf::from(val())),
            "--client" => client = Some(PathBuf::from(val())),
            "--alt" => alt = Some(PathBuf::from(val())),
            "--floor" => floor = Some(PathBuf::from(val())),
            // `cargo bench` and `cargo test` pass these to every target.
            "--bench" | "--test" => return,
            _ => die(&format!("unknown argument {a}")),
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        die("run as root (private mount namespace, root-owned state directory)");
    }
    let module = module.unwrap_or_else(|| or_die(libpam::built_module()));
    let scratch = or_die(tempfile::Builder::new().prefix("pam-totp-lc.").tempdir());
    let client = client.unwrap_or_else(|| build_c_client(scratch.path()));
    if !client.exists() {
        die(&format!("no client at {}", client.display()));
    }
    let devdir = scratch.path().join("dev");
    or_die(fs::create_dir(&devdir));
    private_dev_log(&devdir);

    let ca = TestCa::new(scratch.path(), "fleet");
    let server = RedisServer::start(Options {
        tcp: true,
        appendonly: true,
        tls: Some(TlsConfig {
            server: ca.issue_server("server", "IP:127.0.0.1"),
            ca_cert: ca.files.cert.clone(),
        }),
    });
    let creds = server.credentials_file("creds.toml", USER, PASSWORD, 0o600);
    let mut admin = Some(Admin::connect(&server));
    let mut worlds = vec![
        World::new(
            &module,
            &disk,
            &disk,
            Some((&server, &creds, &ca.files.cert)),
        ),
        World::new(&module, &tmpfs, &disk, None),
    ];
    let mut cases = Vec::from(CASES);
    if let Some(alt) = &alt {
        worlds.push(World::new(alt, &tmpfs, &disk, None));
        cases.extend(ALT_CASES);
        println!(
            "alt module: {} ({} bytes)",
            alt.display(),
            or_die(fs::metadata(alt)).len()
        );
    }
    let returning = worlds.len();
    if let Some(floor) = &floor {
        let world = worlds.len();
        worlds.push(World::new(floor, &tmpfs, &disk, None));
        cases.extend(FLOOR_CASES.map(|c| Case { world, ..c }));
        println!(
            "floor module: {} ({} bytes)",
            floor.display(),
            or_die(fs::metadata(floor)).len()
        );
    }
    for (i, w) in worlds.iter_mut().enumerate().take(returning) {
        let mut fleet = if i == 0 { admin.take() } else { None };
        make_returning(w, &client, &mut fleet);
        if i == 0 {
            admin = fleet;
        }
    }
    report_machine(&module, scratch.path(), &disk, &tmpfs);
    println!("login application: {}", client.display());
    println!("\none login = one fresh process ({rounds} rounds, interleaved)");
    let times = run(&worlds, &cases, rounds, &client, &mut admin);
    report(&cases, &times);
    scale_part(&module, &tmpfs, &disk, &client, &scale, scale_rounds);
    drop(server);
    // Detach the private /dev and its tmpfs, so the scratch directory can go.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("umount -l /dev; umount -l {}", devdir.display()))
        .status();
}

/// Builds the C client (examples/c/pam_login.c) into `dir`: a login
/// application as sshd is one, without a Rust runtime, so that the first
/// Rust module a login loads pays for `libgcc_s.so.1` as it does in sshd.
fn build_c_client(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/c/pam_login.c");
    let out = dir.join("pam_login");
    let status = or_die(
        Command::new("cc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&source)
            .arg("-lpam")
            .status(),
    );
    if !status.success() {
        die(
            "cc could not build examples/c/pam_login.c (needs libpam0g-dev), or give --client PATH",
        );
    }
    out
}

fn report_machine(module: &Path, scratch: &Path, disk: &Path, tmpfs: &Path) {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("machine: {cpu}, {cpus} CPUs, kernel {}", kernel.trim());
    println!("load average at start: {}", load.trim());
    println!(
        "state on disk: {}, on tmpfs: {}; modules loaded from a copy on disk ({})",
        disk.display(),
        tmpfs.display(),
        disk.display()
    );
    let size = or_die(fs::metadata(module)).len();
    println!(
        "module: {} ({size} bytes; stripped: {} bytes)",
        module.display(),
        stripped_size(module, scratch)
    );
}
