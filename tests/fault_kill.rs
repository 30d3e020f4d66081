//! Logins killed with SIGKILL at random moments, through the real libpam:
//! logins of 6 users, 12 at a time released together (so some wait for
//! another's lock), most of them doomed: killed after a random delay, or as
//! soon as the module holds the user's state lock, or while it writes the
//! new state. Each kill first stops the process (SIGSTOP) and records where
//! it was, so the test knows which moments it hit; a login that finishes
//! before its moment comes is a normal login. Rounds go on until 60 logins
//! were killed, at least 10 of them holding the lock and 10 writing.
//!
//! Those two moments are short on a fast disk (tens of microseconds on
//! tmpfs), so they are made long enough to hit whatever the storage:
//! the users have scratch codes, and an eight-digit attempt derives every
//! scratch hash (PBKDF2, milliseconds) under the lock; and a login doomed
//! to die while writing runs under `strace -p` with every fsync and
//! fdatasync delayed by 50 ms, and every pwrite held for 50 ms after it
//! ran. "Writing" is having the new state file open (the first login of a
//! user makes it: temporary file, fsync, rename, fsync of the directory)
//! or the state file open for writing (a slot written in place, then for
//! a spent code an fdatasync and the copy into the other slot; issue 17).
//! Afterwards:
//!
//! - every state file parses (the tool's `status` reads it as the module
//!   does), and no temporary file is taken for the state;
//! - no lock is left held: every lock file can be taken at once;
//! - every user logs in;
//! - no secret file changed.
//!
//! The users exist only in a private mount namespace (tests/ns_support).
//! The random choices come from a seed printed by the test; set
//! FAULT_KILL_SEED to replay one.
//!
//! Issue 8, "Must work" 2 (60 logins with random SIGKILLs).

mod common;
mod ns_support;

use common::*;
use ns_support::UserWorld;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 6;
const PER_USER_AT_ONCE: usize = 2;
/// Logins to kill, and how many of those holding the lock and writing.
const KILLS: usize = 60;
const KILLS_HOLDING: usize = 10;
const KILLS_WRITING: usize = 10;
const SCRATCH: [&str; 5] = ["10293847", "56473829", "11223344", "99887766", "31415926"];
/// A bound on the rounds (12 logins each) it may take.
const MAX_ROUNDS: usize = 60;

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// When a login is killed.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// After this long, wherever it is.
    After(Duration),
    /// As soon as it holds its user's state lock.
    HoldingLock,
    /// As soon as it has the new state file open, or is writing or
    /// flushing the state file in place; its syncs and writes are slowed
    /// down by strace.
    Writing,
    /// Never: it runs to the end.
    Spared,
}

/// Where a process was when it was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    /// Not yet at the lock, or past it (libpam, the prompt, exiting).
    Outside,
    WaitingForLock,
    HoldingLock,
    WritingState,
    /// Finished before it could be stopped.
    Exited,
    /// Not killed.
    Spared,
}

/// Whether `pid` holds a flock, or waits for one (/proc/locks).
fn lock_place(pid: u32) -> Option<Place> {
    let text = fs::read_to_string("/proc/locks").unwrap();
    let pid = pid.to_string();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [_, "->", "FLOCK", _, _, p, ..] if *p == pid => Some(Place::WaitingForLock),
            [_, "FLOCK", _, _, p, ..] if *p == pid => Some(Place::HoldingLock),
            _ => None,
        }
    })
}

fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) S ...: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether `pid` has the user's new state file open (while making it), or
/// the state file itself open for writing and is in a write or a flush
/// (while writing a slot in place). A login holds the state file open
/// for writing from the moment it has the lock (it reads it through that
/// descriptor), so an open descriptor alone does not tell a login that
/// writes from one that still decides.
fn writing_state(pid: u32, user: &str) -> bool {
    let tmp = format!("/.{user}.tmp");
    let state = format!("/state/{user}");
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let mut state_open = false;
    for fd in fds.flatten() {
        let Ok(target) = fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target.ends_with(&tmp) {
            return true;
        }
        state_open |= target.ends_with(&state) && open_for_writing(pid, &fd);
    }
    state_open && in_write_or_flush(pid)
}

/// Whether `pid` is inside write, pwrite64, fsync or fdatasync
/// (/proc/PID/syscall: the number of the system call it is blocked in;
/// strace holds the tracee there, see `slow_fsyncs`).
fn in_write_or_flush(pid: u32) -> bool {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let Some(nr) = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return false;
    };
    [
        libc::SYS_write,
        libc::SYS_pwrite64,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
    ]
    .contains(&nr)
}

/// Whether the descriptor `fd` of `pid` was opened for writing
/// (/proc/PID/fdinfo: `flags:` in octal; O_WRONLY 1, O_RDWR 2).
fn open_for_writing(pid: u32, fd: &fs::DirEntry) -> bool {
    let info = fs::read_to_string(format!(
        "/proc/{pid}/fdinfo/{}",
        fd.file_name().to_string_lossy()
    ))
    .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 3 != 0)
}

fn place(pid: u32, user: &str) -> Place {
    match process_state(pid) {
        None | Some('Z') | Some('X') => return Place::Exited,
        _ => {}
    }
    if writing_state(pid, user) {
        return Place::WritingState;
    }
    lock_place(pid).unwrap_or(Place::Outside)
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
    // child's, not yet reaped (the caller owns its Child).
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Stops the child, records where it is, and kills it.
fn stop_and_kill(mut child: Child, user: &str) -> Place {
    let pid = child.id();
    signal(pid, libc::SIGSTOP);
    let deadline = Instant::now() + Duration::from_secs(5);
    // 't': stopped by its tracer (strace holding an fsync back).
    while !matches!(process_state(pid), None | Some('T' | 't' | 'Z' | 'X')) {
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_micros(100));
    }
    let at = place(pid, user);
    signal(pid, libc::SIGKILL);
    let _ = child.wait();
    at
}

/// Attaches strace to `pid` with every fsync and fdatasync delayed by
/// 50 ms before it runs, and every pwrite by 50 ms after it ran (a slot
/// written in place, not yet flushed); returns once it is attached. It
/// exits when its tracee does.
fn slow_fsyncs(pid: u32) -> KillOnDrop {
    let tracer = KillOnDrop(Some(
        Command::new("strace")
            .args(["-qq", "-o", "/dev/null"])
            .args(["-e", "trace=fsync,fdatasync,pwrite64"])
            .args(["-e", "inject=fsync,fdatasync:delay_enter=50000"])
            .args(["-e", "inject=pwrite64:delay_exit=50000", "-p"])
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace (apt-get install strace)"),
    ));
    let deadline = Instant::now() + GATE_TIMEOUT;
    loop {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let tracer_pid = status
            .lines()
            .find_map(|l| l.strip_prefix("TracerPid:"))
            .map(str::trim);
        if tracer_pid.is_some_and(|t| t != "0") {
            return tracer;
        }
        assert!(Instant::now() < deadline, "strace did not attach to {pid}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for a tracer whose tracee is gone.
fn reap_tracer(mut tracer: KillOnDrop) {
    let mut tracer = tracer.0.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tracer.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            kill_and_reap(tracer);
            panic!("strace outlived its tracee");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Carries out `fate` on a client of `user` that has just been released.
fn execute(fate: Fate, child: Child, user: &str) -> (Place, Option<PamResult>) {
    let pid = child.id();
    let poll = |want: &dyn Fn() -> bool| {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            if want() {
                return true;
            }
            if matches!(process_state(pid), None | Some('Z' | 'X')) {
                return false;
            }
            assert!(Instant::now() < deadline, "client {pid} hangs");
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let caught = match fate {
        Fate::Spared => {
            let r = PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT));
            return (Place::Spared, Some(r));
        }
        Fate::After(d) => {
            std::thread::sleep(d);
            true
        }
        Fate::HoldingLock => poll(&|| lock_place(pid) == Some(Place::HoldingLock)),
        Fate::Writing => poll(&|| writing_state(pid, user)),
    };
    if !caught {
        // It finished first: a normal login.
        let r = PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT));
        return (Place::Exited, Some(r));
    }
    (stop_and_kill(child, user), None)
}

#[test]
fn sixty_logins_killed_at_random_moments_leave_no_damage() {
    let seed = std::env::var("FAULT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now() ^ u64::from(std::process::id()) << 32 | 1);
    eprintln!("FAULT_KILL_SEED={seed}");
    let mut rng = Rng(seed);

    let w = UserWorld::new("kill", USERS);
    for u in &w.users {
        w.fx.enroll_with_scratch(&u.name, &u.secret, &SCRATCH);
    }
    let svc = w.fx.module_service("kill", "window=2 rate_limit=1000/60");
    let secrets_before: Vec<Fingerprint> = w
        .users
        .iter()
        .map(|u| fingerprint(&w.fx.path().join("secrets").join(&u.name)))
        .collect();

    // Codes of the steps before and at now (the chaos may spend them all),
    // and the step after the next one for the logins at the end: all valid
    // with window=2 if the test ends within the next step.
    avoid_step_edge(30, 10);
    let codes: Vec<Vec<String>> = w
        .users
        .iter()
        .map(|u| {
            (-2..=2)
                .map(|o| oathtool_totp(&u.secret, "SHA1", 6, 30, o))
                .collect()
        })
        .collect();
    let wrong = |i: usize| {
        ["000000", "111111", "222222", "333333"]
            .into_iter()
            .find(|c| !codes[i].iter().any(|k| k == c))
            .unwrap()
    };

    // How long a login takes once released, to spread the random kills
    // over it: a six-digit attempt, and an eight-digit one (scratch hashes).
    let released = |typed: &str| {
        let gate = Gate::new(&w.fx.path().join("calibrate"));
        let child = w
            .client(&svc, &w.users[0].name)
            .answer(typed)
            .wait_on(gate.path())
            .spawn();
        gate.wait_opened_by(&[child.id()], GATE_TIMEOUT).unwrap();
        gate.release();
        let t = Instant::now();
        let r = PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT));
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        t.elapsed()
    };
    let span = released(wrong(0))
        .max(released("12345678"))
        .max(Duration::from_millis(2))
        * 6
        / 5;

    let mut places: BTreeMap<Place, usize> = BTreeMap::new();
    let mut finished: Vec<PamResult> = Vec::new();
    let wave = USERS * PER_USER_AT_ONCE;
    let count = |places: &BTreeMap<Place, usize>, which: &[Place]| -> usize {
        which
            .iter()
            .map(|p| places.get(p).copied().unwrap_or(0))
            .sum()
    };
    let killed = [
        Place::Outside,
        Place::WaitingForLock,
        Place::HoldingLock,
        Place::WritingState,
    ];
    let mut rounds = 0;
    while count(&places, &killed) < KILLS
        || count(&places, &[Place::HoldingLock]) < KILLS_HOLDING
        || count(&places, &[Place::WritingState]) < KILLS_WRITING
    {
        assert!(
            rounds < MAX_ROUNDS,
            "{MAX_ROUNDS} rounds did not kill enough inside the lock: {places:?}"
        );
        let round = rounds;
        rounds += 1;
        let plan: Vec<(usize, String, Fate)> = (0..wave)
            .map(|k| {
                let i = k % USERS;
                let fate = match rng.below(6) {
                    0 | 1 => Fate::After(span.mul_f64((rng.below(1000) as f64) / 1000.0)),
                    2 | 3 => Fate::HoldingLock,
                    4 => Fate::Writing,
                    _ => Fate::Spared,
                };
                // Eight digits keep the lock held for milliseconds, so a
                // login doomed to die holding the lock always types them.
                let kind = match fate {
                    Fate::HoldingLock => 3 + rng.below(2),
                    _ => rng.below(5),
                };
                let typed = match kind {
                    0 => wrong(i).to_owned(),
                    1 | 2 => codes[i][rng.below(3) as usize].clone(),
                    3 => SCRATCH[rng.below(5) as usize].to_owned(),
                    _ => "12345678".to_owned(),
                };
                (i, typed, fate)
            })
            .collect();
        let gate = Gate::new(&w.fx.path().join(format!("go{round}")));
        let children: Vec<Child> = plan
            .iter()
            .map(|(i, typed, _)| {
                w.client(&svc, &w.users[*i].name)
                    .answer(typed)
                    .wait_on(gate.path())
                    .spawn()
            })
            .collect();
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        if let Err(e) = gate.wait_opened_by(&pids, GATE_TIMEOUT) {
            children.into_iter().for_each(kill_and_reap);
            panic!("{e}");
        }
        let tracers: Vec<Option<KillOnDrop>> = plan
            .iter()
            .zip(&pids)
            .map(|((_, _, fate), &pid)| matches!(fate, Fate::Writing).then(|| slow_fsyncs(pid)))
            .collect();
        gate.release();
        let results: Vec<(Place, Option<PamResult>)> = std::thread::scope(|s| {
            let handles: Vec<_> = children
                .into_iter()
                .zip(&plan)
                .map(|(child, (i, _, fate))| {
                    let user = &w.users[*i].name;
                    s.spawn(move || execute(*fate, child, user))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        tracers.into_iter().flatten().for_each(reap_tracer);
        for (at, r) in results {
            *places.entry(at).or_default() += 1;
            finished.extend(r);
        }
    }
    eprintln!(
        "{} logins in {rounds} rounds, where they were stopped: {places:?}",
        rounds * wave
    );
    for r in &finished {
        assert!(
            r.result == "PAM_SUCCESS" || r.result == "PAM_AUTH_ERR",
            "{r:?}"
        );
    }

    // Every state file that exists parses, as the tool reads it.
    let cfg = w.fx.config_file("empty.toml", "");
    for u in &w.users {
        let path = w.fx.state_path(&u.name);
        if path.exists() {
            let st = w.fx.state(&u.name).unwrap();
            assert_eq!(st["version"].as_integer(), Some(2), "{}: {st:?}", u.name);
        }
        let out = run_ok(
            w.ns.command(env!("CARGO_BIN_EXE_pam-totp"))
                .args(["status", "--json", "--rate-limit", "1000/60"])
                .args(["--user", &u.name, "--config"])
                .arg(&cfg)
                .arg("--secret-file")
                .arg(w.fx.path().join("secrets").join(&u.name))
                .arg("--state-dir")
                .arg(w.fx.state_dir()),
        );
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(s["locked"], false, "{}: {s}", u.name);
    }
    // No lock is held by anyone: each can be taken at once.
    for u in &w.users {
        let p = w.fx.state_dir().join(format!(".{}.lock", u.name));
        if let Ok(f) = fs::File::open(&p) {
            let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock);
            assert!(held.is_ok(), "{} is still locked", p.display());
        }
    }
    // Every user logs in (all at once), with a code of a step not yet used.
    let runs = w
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| w.client(&svc, &u.name).answer(&codes[i][4]))
        .collect();
    for (u, r) in w.users.iter().zip(release_together(w.fx.path(), runs)) {
        assert_eq!(r.result, "PAM_SUCCESS", "{}: {r:?}", u.name);
        let st = w.fx.state(&u.name).unwrap();
        assert_eq!(st["failed_attempts"].as_integer(), Some(0), "{st:?}");
    }
    // And those codes are spent.
    for (i, u) in w.users.iter().enumerate() {
        let r = w.client(&svc, &u.name).answer(&codes[i][4]).run();
        assert_eq!(r.result, "PAM_AUTH_ERR", "{}: {r:?}", u.name);
    }
    // Temporary files left by killed writers were replaced by the last
    // write; only states and lock files remain.
    let mut want: Vec<String> = w
        .users
        .iter()
        .flat_map(|u| [u.name.clone(), format!(".{}.lock", u.name)])
        .collect();
    want.sort();
    assert_eq!(w.fx.state_dir_names(), want);
    for (u, before) in w.users.iter().zip(&secrets_before) {
        let now = fingerprint(&w.fx.path().join("secrets").join(&u.name));
        assert_eq!(&now, before, "{}: secret file changed", u.name);
    }
}
