//! Enrollment at login through the real OpenSSH server and client
//! (issue 15, item 1): a user with a public key and no secret logs in with
//! keyboard-interactive; the real `ssh` client runs under a pseudo-terminal
//! (expect), where the QR code the module sends shows up in the client's
//! output. The test decodes it (zbarimg), types oathtool's code for the
//! decoded URI, and the login succeeds; the secret is saved in the user's
//! home. sshd runs in private namespaces as in tests/e2e_sshd.rs.

mod cli_support;
mod common;
mod e2e_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cli_support::{modules_utf8, zbar_decode};
use common::{avoid_step_edge, oathtool_totp};
use e2e_support::*;

/// Drives ssh under a pseudo-terminal: waits for the code prompt, writes
/// everything shown so far to $SEEN, waits for $ANSWER to appear, types
/// its contents, and writes the rest of the session to $REST.
const EXPECT: &str = r#"
set timeout 60
spawn -noecho {*}$argv
expect {
  "Code from the app: " {}
  timeout { exit 2 }
  eof { exit 3 }
}
set f [open $env(SEEN) w]
fconfigure $f -encoding utf-8
puts -nonewline $f $expect_out(buffer)
close $f
set n 0
while {![file exists $env(ANSWER)]} {
  after 100
  incr n
  if {$n > 600} { exit 4 }
}
set f [open $env(ANSWER) r]
set code [string trim [read $f]]
close $f
send -- "$code\r"
expect {
  eof {}
  timeout { exit 5 }
}
set f [open $env(REST) w]
fconfigure $f -encoding utf-8
puts -nonewline $f $expect_out(buffer)
close $f
lassign [wait] pid spawnid oserr status
exit $status
"#;

/// The QR code's rows in a terminal's output: the lines made only of
/// half blocks and spaces (carriage returns and the prompt's prefix gone).
fn qr_rows(seen: &str) -> Vec<String> {
    seen.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.contains('█') && l.chars().all(|c| "█▀▄ ".contains(c)))
        .map(str::to_owned)
        .collect()
}

fn wait_for(path: &Path, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            return text;
        }
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn enrolls_at_login_over_ssh_keyboard_interactive() {
    let dir = work_dir("ssh-eal");
    let user = TestUser::create("ssh-eal");
    let key = dir.path().join("id_user");
    user.authorize_key(&ssh_keygen(&key));
    let so = install_module(dir.path());
    let pam = localize_pam_conf(
        &read_conf("pam.d/sshd-publickey"),
        &so,
        dir.path(),
        "enroll_at_login",
    );
    let sshd = Sshd::start(
        dir.path(),
        &pam,
        &read_conf("sshd_config.d/pam-totp-publickey.conf"),
    );

    let script = dir.path().join("drive.exp");
    fs::write(&script, EXPECT).unwrap();
    let (seen, answer, rest) = (
        dir.path().join("seen"),
        dir.path().join("answer"),
        dir.path().join("rest"),
    );
    let ssh = sshd.ssh_command(&user.name, Some(&key));
    let mut cmd = Command::new("expect");
    cmd.arg("-f")
        .arg(&script)
        .arg("--")
        .arg(ssh.get_program())
        .args(ssh.get_args())
        .arg(REMOTE_COMMAND)
        .env("SEEN", &seen)
        .env("ANSWER", &answer)
        .env("REST", &rest)
        .env("LC_ALL", "C.UTF-8")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("DISPLAY");
    avoid_step_edge(30, 20);
    let driver = std::thread::spawn(move || run_bounded(&mut cmd, "", Duration::from_secs(120)));

    let shown = wait_for(&seen, Duration::from_secs(90));
    let rows = qr_rows(&shown);
    assert!(
        rows.len() > 10,
        "no QR code in the client's output:\n{shown}"
    );
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let uri = zbar_decode(&modules_utf8(&rows), dir.path());
    let secret = uri
        .split_once("?secret=")
        .and_then(|(_, q)| q.split('&').next())
        .expect("a secret in the URI")
        .to_owned();
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert!(
        shown.contains(&format!("Secret: {}", grouped.join(" "))),
        "{shown}"
    );
    fs::write(&answer, oathtool_totp(&secret, "sha1", 6, 30, 0)).unwrap();

    let run = driver.join().unwrap();
    let rest = fs::read_to_string(&rest).unwrap_or_default();
    assert!(
        run.success() && rest.contains(&format!("pamtotp-ran:{}", user.name)),
        "login failed: {run:?}\n{rest}\nsshd log:\n{}",
        sshd.server_log()
    );
    let file = user.home.join(".pam_totp");
    let meta = fs::metadata(&file).expect("the secret is saved");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (user.uid, 0o600));
    assert!(fs::read_to_string(&file).unwrap().contains(&secret));
    let log = sshd.syslog.module_lines();
    assert!(
        log.iter()
            .any(|l| l.contains("service=sshd") && l.contains("result=enrolled-at-login")),
        "{log:?}"
    );
}
