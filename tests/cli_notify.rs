//! `notify=` from the tool (issue 16, item 1): `enroll`, `scratch-codes
//! --regenerate`, `reset`, `disable`, `import-google-authenticator` and
//! `host-key rotate` tell the hook of config.toml, with the module's JSON,
//! as `notify_user` when root runs the tool and as the user otherwise;
//! never a secret or a scratch code.

mod cli_support;
mod common;
mod google_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cli_support::*;

const HOOK_USER: &str = "pamtotp-notify";

struct World {
    sb: Sandbox,
    _hooks: tempfile::TempDir,
    out: PathBuf,
    hook_uid: u32,
}

impl World {
    /// `system_secrets`: secret files in the sandbox (`secret=`), else
    /// the default one in the home.
    fn new(hook_body: &str, system_secrets: bool) -> World {
        let hook_user = common::ensure_user(HOOK_USER, &[]);
        let sb = Sandbox::new("");
        let hooks = common::trusted_command_dir("notify-cli.");
        let out = sb.join("out");
        fs::create_dir(&out).unwrap();
        // Written by the hook as notify_user, or as a user running the tool.
        fs::set_permissions(&out, fs::Permissions::from_mode(0o1777)).unwrap();
        let hook = hooks.path().join("record");
        let body = hook_body.replace("OUT", &out.to_string_lossy());
        fs::write(&hook, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        let state = sb.join("state");
        fs::create_dir(&state).unwrap();
        fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(sb.join("secrets")).unwrap();
        fs::create_dir(sb.join("pam.d")).unwrap();
        let secret = match system_secrets {
            true => format!("secret = \"{}/${{USER}}\"\n", sb.join("secrets").display()),
            false => String::new(),
        };
        sb.set_config(&format!(
            "notify = \"{}\"\nnotify_user = \"{HOOK_USER}\"\nstate_dir = \"{}\"\n{secret}",
            hook.display(),
            state.display(),
        ));
        World {
            sb,
            _hooks: hooks,
            out,
            hook_uid: hook_user.uid,
        }
    }

    /// The events recorded once there are `n` (waits up to 10 s), and the
    /// whole text.
    fn events(&self, n: usize) -> (Vec<serde_json::Value>, String) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(self.out.join("events")).unwrap_or_default();
            if text.lines().count() >= n || Instant::now() > until {
                assert_eq!(text.lines().count(), n, "{text}");
                let v = text
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("JSON"))
                    .collect();
                return (v, text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The uids the hook recorded once there are `n` (waits up to 10 s).
    fn uids(&self, n: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(self.out.join("uids")).unwrap_or_default();
            if text.lines().count() >= n || Instant::now() > until {
                return text.lines().map(str::to_owned).collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const RECORD: &str = "cat >> OUT/events\nid -u >> OUT/uids";

fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "{r:?}");
    r
}

#[test]
fn root_commands_reach_the_hook_as_notify_user() {
    let w = World::new(RECORD, true);
    let user = TestUser::get("notify-cli");
    let cfg = w.sb.config();
    let u = user.name.as_str();
    let enrolled = ok(run(
        &[
            "enroll",
            "--user",
            u,
            "--config",
            &cfg,
            "--no-confirm",
            "--json",
        ],
        "",
    ))
    .json();
    let regenerated = ok(run(
        &[
            "scratch-codes",
            "--regenerate",
            "--user",
            u,
            "--config",
            &cfg,
            "--json",
        ],
        "",
    ))
    .json();
    let added = ok(run(
        &[
            "enroll",
            "--add",
            "tablet",
            "--user",
            u,
            "--config",
            &cfg,
            "--no-confirm",
            "--json",
        ],
        "",
    ))
    .json();
    ok(run(
        &["remove-key", "tablet", "--user", u, "--config", &cfg],
        "",
    ));
    ok(run(&["reset", "--user", u, "--config", &cfg], ""));
    ok(run(&["disable", "--user", u, "--config", &cfg], ""));
    ok(run(
        &[
            "host-key",
            "init",
            "--host-key",
            w.sb.join("host.key").to_str().unwrap(),
        ],
        "",
    ));
    ok(run(
        &[
            "host-key",
            "rotate",
            "--config",
            &cfg,
            "--secret-dir",
            w.sb.join("secrets").to_str().unwrap(),
            "--pam-dir",
            w.sb.join("pam.d").to_str().unwrap(),
        ],
        "",
    ));

    let (events, text) = w.events(7);
    let mut secrets = vec![
        enrolled["secret"].as_str().unwrap().to_owned(),
        added["secret"].as_str().unwrap().to_owned(),
    ];
    for codes in [&enrolled["scratch_codes"], &regenerated["scratch_codes"]] {
        secrets.extend(
            codes
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned()),
        );
    }
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s} in {text}");
    }
    let mut names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "disabled",
            "enrolled",
            "host_key_rotated",
            "key_added",
            "key_removed",
            "reset",
            "scratch_regenerated"
        ],
        "{text}"
    );
    for e in &events {
        assert_eq!(e["service"], "pam-totp", "{e}");
        assert_eq!(e["rhost"], "", "{e}");
        assert_eq!(e["detail"]["by"], "root", "{e}");
        let want_user = if e["event"] == "host_key_rotated" {
            ""
        } else {
            u
        };
        assert_eq!(e["user"], want_user, "{e}");
    }
    let by = |n: &str| events.iter().find(|e| e["event"] == n).unwrap();
    assert_eq!(
        by("enrolled")["detail"]["secret_file"],
        w.sb.join("secrets").join(u).to_str().unwrap()
    );
    assert_eq!(by("scratch_regenerated")["detail"]["scratch_codes"], 5);
    assert_eq!(by("disabled")["detail"]["was_enrolled"], 1);
    assert_eq!(by("key_added")["detail"]["key"], "tablet");
    assert_eq!(by("key_removed")["detail"]["key"], "tablet");
    let uids = w.uids(7);
    assert_eq!(uids.len(), 7);
    assert!(
        uids.iter().all(|u| *u == w.hook_uid.to_string()),
        "{uids:?}"
    );
}

#[test]
fn a_user_enrolling_themself_reaches_the_hook_as_themself() {
    let w = World::new(RECORD, false);
    let user = TestUser::get("notify-self");
    let cfg = w.sb.config();
    ok(run_as(
        &user,
        &["enroll", "--config", &cfg, "--no-confirm"],
        "",
    ));
    let (events, _) = w.events(1);
    assert_eq!(events[0]["event"], "enrolled");
    assert_eq!(events[0]["user"], user.name.as_str());
    assert_eq!(events[0]["detail"]["by"], user.name.as_str());
    assert_eq!(w.uids(1), [user.uid.to_string()]);
}

#[test]
fn a_hook_that_hangs_or_fails_does_not_hold_up_the_tool() {
    let w = World::new("cat >> OUT/events\nsleep 30\nexit 1", true);
    let user = TestUser::get("notify-slow");
    let cfg = w.sb.config();
    let started = Instant::now();
    let r = ok(run(
        &[
            "enroll",
            "--user",
            &user.name,
            "--config",
            &cfg,
            "--no-confirm",
        ],
        "",
    ));
    assert!(started.elapsed() < Duration::from_secs(10), "{r:?}");
    assert!(!r.stderr.contains("warning"), "{r:?}");
    w.events(1);
    // A hook that cannot be run: one warning, the command still done.
    fs::remove_file(w._hooks.path().join("record")).unwrap();
    let r = ok(run(
        &["disable", "--user", &user.name, "--config", &cfg],
        "",
    ));
    assert!(
        r.stderr
            .contains("warning: the notify hook was not run for disabled"),
        "{r:?}"
    );
    assert!(!w.sb.join("secrets").join(&user.name).exists());
}

/// `import-google-authenticator` is an `enrolled` event with its source,
/// and neither the imported secret nor its scratch codes.
#[test]
fn an_import_reaches_the_hook_as_enrolled() {
    let w = World::new(RECORD, true);
    let user = TestUser::get("notify-import");
    let google = w.sb.join("google_authenticator");
    let text = google_support::google_authenticator(
        &google,
        &["-t", "-d", "-w", "3", "-r", "3", "-R", "30", "-e", "5"],
        None,
    );
    let cfg = w.sb.config();
    ok(run(
        &[
            "import-google-authenticator",
            "--config",
            &cfg,
            "--user",
            &user.name,
            google.to_str().unwrap(),
        ],
        "",
    ));
    let (events, log) = w.events(1);
    assert_eq!(events[0]["event"], "enrolled", "{log}");
    assert_eq!(events[0]["user"], user.name.as_str(), "{log}");
    assert_eq!(
        events[0]["detail"]["secret_file"],
        w.sb.join("secrets").join(&user.name).to_str().unwrap(),
        "{log}"
    );
    assert_eq!(
        events[0]["detail"]["source"], "google-authenticator",
        "{log}"
    );
    // The Google file's lines: the secret first, the scratch codes last.
    for line in text.lines().filter(|l| !l.starts_with('"')) {
        assert!(!log.contains(line.trim()), "{line} in {log}");
    }
}
