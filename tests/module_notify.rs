//! `notify=` through the real libpam (issue 16, items 1 and 2): each
//! module event reaches a hook that records its standard input; the hook
//! runs as `notify_user`, detached (no terminal, a session of its own),
//! never delays a login nor changes its verdict, and is killed (with its
//! process group) after `notify_timeout`.
//!
//! The hooks are /bin/sh scripts in a root-owned 0755 directory of the
//! test's own (`common::trusted_command_dir`); codes come from oathtool.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// The account the hooks run as.
const HOOK_USER: &str = "pamtotp-notify";
const SCRATCH: [&str; 2] = ["12345678", "87654321"];
const RHOST: &str = "192.0.2.9";

struct World {
    fx: Fixture,
    hooks: tempfile::TempDir,
    /// Where the hooks write (owned by HOOK_USER).
    out: PathBuf,
    user: TestUser,
}

impl World {
    fn new() -> World {
        let user = ensure_user(HOOK_USER, &[]);
        let fx = Fixture::new();
        let hooks = trusted_command_dir("notify-hook.");
        let out = fx.path().join("out");
        fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(user.uid), Some(user.gid)).unwrap();
        World {
            fx,
            hooks,
            out,
            user,
        }
    }

    /// Writes the hook `name` (/bin/sh, root-owned, 0755); `OUT` in `body`
    /// stands for the output directory.
    fn hook(&self, name: &str, body: &str) -> PathBuf {
        let p = self.hooks.path().join(name);
        let body = body.replace("OUT", &self.out.to_string_lossy());
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// The hook that records each event (one JSON line in OUT/events), and
    /// its uid, session and terminal (OUT/whoami).
    fn recorder(&self) -> PathBuf {
        self.hook(
            "record",
            "cat >> OUT/events\n\
             echo \"$(id -u) $(awk '{print $6, $7}' /proc/$$/stat)\" >> OUT/whoami",
        )
    }

    fn service(&self, name: &str, hook: &Path, extra: &str) -> String {
        self.fx.module_service(
            name,
            &format!("notify={} notify_user={HOOK_USER} {extra}", hook.display()),
        )
    }

    fn login(&self, service: &str, answer: &str) -> PamResult {
        self.fx
            .client(service, "root")
            .answer(answer)
            .rhost(RHOST)
            .run()
    }

    /// The lines of OUT/`file` once there are `n` (waits up to 10 s).
    fn lines(&self, file: &str, n: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(self.out.join(file)).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || Instant::now() > until {
                assert_eq!(lines.len(), n, "{file}: {text}");
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn event(line: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per event");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "event, user, service, rhost, time, detail: {line}"
    );
    v
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for this purpose.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
}

#[test]
fn each_module_event_reaches_the_hook_as_json_without_codes() {
    let w = World::new();
    let hook = w.recorder();
    w.fx.enroll_with_scratch("root", SECRET, &SCRATCH);
    let svc = w.service("ev", &hook, "rate_limit=3/600");
    avoid_step_edge(30, 8);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    let steps = [
        (code.as_str(), "PAM_SUCCESS"),
        (code.as_str(), "PAM_AUTH_ERR"), // replayed (failure 1)
        (SCRATCH[0], "PAM_SUCCESS"),     // scratch_used, scratch_low
        (SCRATCH[0], "PAM_AUTH_ERR"),    // replayed (failure 2)
        ("000000", "PAM_AUTH_ERR"),      // failure 3: lockout
        (code.as_str(), "PAM_AUTH_ERR"), // rate-limited: no new event
    ];
    for (typed, want) in steps {
        assert_eq!(w.login(&svc, typed).result, want, "{typed}");
    }
    // A secret file others can write to.
    let bad = w.fx.path().join("bad-secret");
    fs::write(&bad, format!("version = 1\nsecret = \"{SECRET}\"\n")).unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o666)).unwrap();
    let svc_bad = w.fx.service(
        "bad",
        &[&format!(
            "auth required MODULE secret={} state_dir={} notify={} notify_user={HOOK_USER}",
            bad.display(),
            w.fx.state_dir().display(),
            hook.display()
        )],
    );
    assert_eq!(w.login(&svc_bad, "123456").result, "PAM_AUTH_ERR");
    // A state server nobody listens on.
    let svc_fleet = w.service(
        "fleet",
        &hook,
        "state=redis://127.0.0.1:1 state_timeout=300",
    );
    assert_eq!(w.login(&svc_fleet, &code).result, "PAM_AUTH_ERR");
    // ... and with the local state deciding instead (locked out there).
    let svc_local = w.service(
        "fleet-local",
        &hook,
        "state=redis://127.0.0.1:1 state_timeout=300 state_unavailable=local",
    );
    assert_eq!(w.login(&svc_local, "000000").result, "PAM_AUTH_ERR");

    let lines = w.lines("events", 8);
    let all = lines.join("\n");
    for secret in [SECRET, code.as_str(), SCRATCH[0], SCRATCH[1], "000000"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
    let mut events: Vec<serde_json::Value> = lines.iter().map(|l| event(l)).collect();
    // Each login started its hooks in order, but they run concurrently.
    events.sort_by_key(|e| e["time"].as_str().unwrap().to_owned() + e["event"].as_str().unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "lockout",
            "replayed",
            "replayed",
            "scratch_low",
            "scratch_used",
            "secret_problem",
            "state_unavailable",
            "state_unavailable"
        ],
        "{all}"
    );
    let by = |name: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|e| e["event"] == name).collect()
    };
    for e in &events {
        assert_eq!(e["user"], "root", "{e}");
        assert_eq!(e["rhost"], RHOST, "{e}");
        let t = e["time"].as_str().unwrap();
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
        assert!(e["detail"].is_object(), "{e}");
    }
    assert_eq!(by("scratch_used")[0]["service"], "ev");
    assert_eq!(by("scratch_used")[0]["detail"]["remaining"], 1);
    assert_eq!(by("scratch_low")[0]["detail"]["remaining"], 1);
    let mut methods: Vec<&str> = by("replayed")
        .iter()
        .map(|e| e["detail"]["method"].as_str().unwrap())
        .collect();
    methods.sort_unstable();
    assert_eq!(methods, ["scratch", "totp"]);
    let lockout = by("lockout")[0];
    assert_eq!(lockout["detail"]["rate_limit"], "3/600");
    let retry = lockout["detail"]["retry_after"].as_u64().unwrap();
    assert!((590..=600).contains(&retry), "{lockout}");
    let problem = by("secret_problem")[0];
    assert_eq!(problem["service"], "bad");
    assert!(problem["detail"]["reason"]
        .as_str()
        .unwrap()
        .contains("bad-secret"));
    let mut state: Vec<(String, String)> = by("state_unavailable")
        .iter()
        .map(|e| {
            let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
            (s(&e["service"]), s(&e["detail"]["fallback"]))
        })
        .collect();
    state.sort();
    assert_eq!(
        state,
        [
            ("fleet".to_owned(), "deny".to_owned()),
            ("fleet-local".to_owned(), "local".to_owned())
        ]
    );

    // Every hook ran as notify_user, in a session of its own, with no
    // controlling terminal.
    let me = fs::read_to_string("/proc/self/stat").unwrap();
    let my_session = me
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(3)
        .unwrap()
        .to_owned();
    for line in w.lines("whoami", 8) {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], w.user.uid.to_string(), "{line}");
        assert_ne!(f[1], my_session, "{line}");
        assert_eq!(f[2], "0", "no controlling terminal: {line}");
    }
}

#[test]
fn a_slow_hook_does_not_delay_the_login() {
    let w = World::new();
    let hook = w.hook("slow", "cat > /dev/null\necho $$ >> OUT/pid\nexec sleep 30");
    w.fx.enroll_with_scratch("root", SECRET, &SCRATCH);
    let svc = w.service("slow", &hook, "");
    let started = Instant::now();
    let r = w.login(&svc, SCRATCH[0]);
    let whole = started.elapsed();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // scratch_used and scratch_low: two hooks, neither waited for.
    assert!(r.auth_ms < 2000, "pam_authenticate took {} ms", r.auth_ms);
    // Nor does the client wait for it (no descriptor of its own is held).
    assert!(whole < Duration::from_secs(10), "{whole:?}");
    for line in w.lines("pid", 2) {
        let pid: u32 = line.parse().unwrap();
        assert!(alive(pid), "the hook still runs after the login");
        kill_group(pid);
    }
}

#[test]
fn a_failing_or_missing_hook_changes_nothing_and_is_logged() {
    let w = World::new();
    let failing = w.hook(
        "fail",
        "cat > /dev/null\nprintf 'first line\\nsecond line\\n'\necho 'bad=thing' >&2\nexit 3",
    );
    let missing = w.hooks.path().join("no-such-hook");
    let scratch = ["12345678", "87654321", "11223344"];
    w.fx.enroll_with_scratch("root", SECRET, &scratch);
    avoid_step_edge(30, 5);
    let code = oathtool_totp(SECRET, "SHA1", 6, 30, 0);
    // The failing hook: each line once, escaped, after the login.
    let svc = w.service("fail", &failing, "");
    let r =
        w.fx.client(&svc, "root")
            .answer(SCRATCH[0])
            .syslog()
            .linger(3000)
            .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let log = r.all_log_text();
    let hook_lines: Vec<&String> = r
        .syslog
        .iter()
        .filter(|l| l.contains("notify event="))
        .collect();
    // One event (scratch_used; two codes left), three lines.
    assert_eq!(hook_lines.len(), 3, "{log}");
    assert!(
        log.contains("event=scratch_used user=root service=fail hook="),
        "{log}"
    );
    assert!(log.contains(" stdout='first\\x20line'"), "{log}");
    assert!(log.contains(" stderr='bad\\x3dthing'"), "{log}");
    assert!(
        log.contains(" result=failed reason=\"exit status 3\""),
        "{log}"
    );
    assert!(!log.contains("second"), "{log}");
    assert!(!log.contains(scratch[0]), "{log}");
    // A wrong code stays a wrong code.
    let r = w.login(&svc, "000000");
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    // With no /dev/log at all, the same.
    let r =
        w.fx.client(&svc, "root")
            .answer(&code)
            .no_log_socket()
            .run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // The missing hook: logged by the module, the verdict unchanged.
    let svc = w.service("missing", &missing, "");
    let r = w.fx.client(&svc, "root").answer(scratch[1]).syslog().run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(
        r.audit_results(),
        ["scratch-code-used", "notify-error", "notify-error"],
        "{r:?}"
    );
    assert!(r.all_log_text().contains("event=scratch_low"), "{r:?}");
}

#[test]
fn the_hook_is_killed_with_its_group_after_notify_timeout() {
    let w = World::new();
    let hook = w.hook(
        "hang",
        "sleep 60 &\necho $! > OUT/child\necho $$ > OUT/pid\nexec sleep 60",
    );
    w.fx.secret_file("root", "version = 1\nsecret = \"short\"\n");
    let svc = w.service("hang", &hook, "notify_timeout=700");
    let started = Instant::now();
    let r = w.login(&svc, "123456");
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    let pid: u32 = w.lines("pid", 1)[0].parse().unwrap();
    let child: u32 = w.lines("child", 1)[0].parse().unwrap();
    assert!(alive(pid) && alive(child));
    let until = Instant::now() + Duration::from_secs(10);
    while (alive(pid) || alive(child)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(pid) && !alive(child),
        "still running after the timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
}

#[test]
fn notify_needs_notify_user() {
    let w = World::new();
    let hook = w.recorder();
    w.fx.enroll_with_scratch("root", SECRET, &SCRATCH);
    let svc =
        w.fx.module_service("nouser", &format!("notify={}", hook.display()));
    let r = w.fx.client(&svc, "root").answer(SCRATCH[0]).syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.all_log_text().contains("notify needs notify_user"),
        "{r:?}"
    );
}

#[test]
fn the_login_leaves_no_child_behind() {
    let w = World::new();
    let hook = w.hook("slow", "cat > /dev/null\nexec sleep 5");
    w.fx.enroll_with_scratch("root", SECRET, &SCRATCH);
    let svc = w.service("zombie", &hook, "");
    // The client keeps running (collecting syslog) after the login.
    let child =
        w.fx.client(&svc, "root")
            .answer(SCRATCH[0])
            .syslog()
            .linger(1500)
            .spawn();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(700));
    // The intermediate process was reaped; the supervisor is not ours.
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let r = PamResult::from_output(wait_bounded(child, CLIENT_TIMEOUT));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    assert_eq!(children.trim(), "", "children of the client: {children}");
}
