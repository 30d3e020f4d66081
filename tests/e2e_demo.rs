//! scripts/demo: it starts sshd with the module, prints a QR code and an
//! ssh command that really logs in with a code, and removes everything
//! (server, user, temporary files) when told to stop.
//!
//! The test runs the script with the binaries cargo built (no nested
//! build), on a free port, with its own user name and its own config file
//! (PAM_TOTP_DEMO_CONFIG), so the machine's /etc/pam-totp never decides.
//! With a host key in that config, the secret is sealed and the demo's
//! `oathtool` hint must still give working codes (issue 11, item 12).

mod common;
mod e2e_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{avoid_step_edge, module_so, oathtool_totp};
use e2e_support::*;

fn user_exists(name: &str) -> bool {
    nix::unistd::User::from_name(name).ok().flatten().is_some()
}

/// The running demo; on drop (a failed test) it is told to stop, then
/// killed, and its user removed if it is still there.
struct Demo {
    child: Child,
    reaped: bool,
    user: &'static str,
}

impl Demo {
    /// Closes the demo's stdin (its "press Enter") and waits for it.
    fn stop(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return Some(st);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if !self.reaped && self.stop(Duration::from_secs(20)).is_none() {
            // SAFETY: killpg takes plain integers; the group is the demo's
            // own (process_group(0)), whose leader we have not reaped.
            unsafe { libc::killpg(self.child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = self.child.wait();
        }
        if user_exists(self.user) {
            let _ = Command::new("userdel")
                .args(["-r", "-f", self.user])
                .status();
        }
    }
}

#[test]
fn demo_starts_logs_in_with_a_code_and_cleans_up() {
    run_demo("pamtotp-demotest", false);
}

#[test]
fn demo_prints_a_working_oathtool_hint_when_the_secret_is_sealed() {
    run_demo("pamtotp-demoseal", true);
}

/// Runs the demo as `user` with a config file of its own, naming a host key
/// that exists (`sealed`) or not; logs in through its ssh command with a
/// code from the secret its `oathtool` hint shows.
fn run_demo(user: &'static str, sealed: bool) {
    let machine = (
        snapshot("/etc/pam.d/sshd"),
        snapshot("/etc/ssh/sshd_config"),
    );
    if user_exists(user) {
        // Left over by a run that was killed.
        let _ = Command::new("userdel").args(["-r", "-f", user]).status();
    }
    let dir = work_dir("demo");
    // The demo's own config file and host key (made only when `sealed`).
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let key = keys.join("host.key");
    if sealed {
        let out = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
            .args(["host-key", "init", "--host-key"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("host_key = \"{}\"\n", key.display())).unwrap();
    let askpass = Askpass::new(dir.path());
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo");
    let mut demo = Demo {
        child: Command::new(script)
            .env("PAM_TOTP_DEMO_PORT", port.to_string())
            .env("PAM_TOTP_DEMO_USER", user)
            .env("PAM_TOTP_DEMO_CONFIG", &config)
            .env("PAM_TOTP_DEMO_MODULE", module_so())
            .env("PAM_TOTP_DEMO_CLI", env!("CARGO_BIN_EXE_pam-totp"))
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scripts/demo"),
        reaped: false,
        user,
    };

    // Its output, line by line, until it waits for Enter.
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(demo.child.stdout.take().unwrap());
    thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err = demo.child.stderr.take().unwrap();
    let err = thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains("Press Enter");
                printed.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let st = demo.stop(Duration::from_secs(20));
                panic!(
                    "the demo did not get ready (exit {st:?}):\n{}\nstderr:\n{}",
                    printed.join("\n"),
                    err.join().unwrap_or_default()
                );
            }
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("otpauth://totp/"), "{text}");
    assert!(
        text.contains('▀') || text.contains('▄') || text.contains('█'),
        "no QR code:\n{text}"
    );
    let ssh_line = printed
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("ssh "))
        .unwrap_or_else(|| panic!("no ssh command:\n{text}"))
        .to_owned();
    let words: Vec<&str> = ssh_line.split_whitespace().skip(1).collect();
    assert!(words.contains(&format!("{user}@127.0.0.1").as_str()));
    assert!(words.contains(&port.to_string().as_str()));
    let key = words
        .iter()
        .position(|w| *w == "-i")
        .map(|i| PathBuf::from(words[i + 1]))
        .expect("-i KEY in the ssh command");
    let work = key.parent().unwrap().to_owned();
    assert!(work.is_dir());
    assert_eq!(
        (
            snapshot("/etc/pam.d/sshd"),
            snapshot("/etc/ssh/sshd_config")
        ),
        machine,
        "the demo changed the machine's sshd files"
    );

    // The secret the demo's oathtool hint shows.
    let hint = printed
        .iter()
        .find_map(|l| l.split("oathtool --totp -b ").nth(1))
        .unwrap_or_else(|| panic!("no oathtool hint:\n{text}"));
    let secret: String = hint
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert!(
        secret.len() >= 16,
        "oathtool hint without a secret: {hint:?}"
    );
    // The file holds it plain, or sealed to the demo's host key.
    let home = nix::unistd::User::from_name(user).unwrap().unwrap().dir;
    let enrolled: toml::Table = std::fs::read_to_string(home.join(".pam_totp"))
        .unwrap()
        .parse()
        .unwrap();
    if sealed {
        assert!(enrolled.contains_key("sealed_secret"), "{enrolled:?}");
        assert!(!enrolled.contains_key("secret"), "{enrolled:?}");
    } else {
        assert_eq!(enrolled["secret"].as_str(), Some(secret.as_str()));
    }
    // Log in with the printed command and a code from the hint's secret.
    avoid_step_edge(30, 5);
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    let mut cmd = ssh_base();
    cmd.args(&words);
    let r = run_ssh(cmd, &askpass, user, &code, "");
    assert!(r.ran, "the demo's ssh command with the right code: {r:?}");
    assert_eq!(r.code_prompts(), 1, "{r:?}");

    // Enter: everything goes.
    demo.child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let st = demo.stop(Duration::from_secs(30)).expect("the demo stops");
    let err = err.join().unwrap_or_default();
    assert!(st.success(), "demo exit {st}: {err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(!user_exists(user), "the demo user is still there");
    assert!(!home.exists(), "the demo user's home is still there");
    assert!(!work.exists(), "{} is still there", work.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port}"
    );
    assert_eq!(
        (
            snapshot("/etc/pam.d/sshd"),
            snapshot("/etc/ssh/sshd_config")
        ),
        machine
    );
}
