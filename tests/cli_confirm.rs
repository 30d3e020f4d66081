//! `enroll`'s confirmation driven through a pseudo-terminal by expect
//! (Debian's expect), as a person at a terminal would: a wrong code, then
//! the right one (from oathtool). The right code is never shown, and the
//! file appears only after it.

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::process::Command;

use cli_support::{bin, Sandbox};
use common::{avoid_step_edge, oathtool_totp};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const MARK: &str = "@@TYPING-THE-RIGHT-CODE@@";

/// Runs an expect script; returns its exit status and everything the
/// terminal showed.
fn expect(script: &str, sb: &Sandbox) -> (i32, String) {
    let path = sb.join("confirm.exp");
    fs::write(&path, script).unwrap();
    let out = Command::new("expect")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("expect (apt-get install expect)");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), shown)
}

/// The spawn line for enrolling into `file` with the known secret.
fn spawn(sb: &Sandbox, file: &str) -> String {
    format!(
        "spawn {} enroll --config {} --secret-file {file} --secret {SECRET} --scratch-codes 0",
        bin(),
        sb.config()
    )
}

#[test]
fn wrong_code_then_right_code_at_a_terminal() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let file = file.to_str().unwrap();
    avoid_step_edge(30, 10);
    // Any of these would be accepted now (window of one step).
    let valid: Vec<String> = (-1..=1)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect();
    let right = &valid[1];
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .unwrap();
    let script = format!(
        r#"
set timeout 20
log_user 1
{spawn}
expect {{
    "Code from the app: " {{}}
    timeout {{ exit 10 }}
    eof {{ exit 11 }}
}}
send "{wrong}\r"
expect {{
    "That is not the right code" {{}}
    timeout {{ exit 12 }}
    eof {{ exit 13 }}
}}
expect {{
    "Code from the app: " {{}}
    timeout {{ exit 14 }}
    eof {{ exit 15 }}
}}
if {{[file exists {file}]}} {{ exit 16 }}
send_user "\n{MARK}\n"
send "{right}\r"
expect {{
    "Code accepted." {{}}
    timeout {{ exit 17 }}
    eof {{ exit 18 }}
}}
expect eof
lassign [wait] pid spawnid os_error value
exit $value
"#,
        spawn = spawn(&sb, file)
    );
    let (code, shown) = expect(&script, &sb);
    assert_eq!(code, 0, "{shown}");
    let (before, after) = shown.split_once(MARK).expect("the marker");
    // What the terminal showed before the right code was typed: the QR
    // code, the secret, one refusal, and never a valid code.
    assert!(before.contains("Scan this QR code"), "{before}");
    assert!(before.contains('█'));
    assert!(before.contains("JBSW Y3DP EHPK 3PXP"));
    assert_eq!(before.matches("Code from the app: ").count(), 2, "{before}");
    assert_eq!(before.matches("That is not the right code").count(), 1);
    for v in &valid {
        assert!(
            !before.contains(v.as_str()),
            "{v} shown before typed: {before}"
        );
    }
    assert!(after.contains("pam-totp: enrolled root:"), "{after}");
    let saved = fs::read_to_string(file).unwrap();
    assert!(saved.contains(SECRET));
}

#[test]
fn giving_up_at_the_terminal_saves_nothing() {
    let sb = Sandbox::new("");
    let file = sb.join("s");
    let file = file.to_str().unwrap();
    let script = format!(
        r#"
set timeout 20
log_user 1
{spawn}
expect {{
    "Code from the app: " {{}}
    timeout {{ exit 10 }}
}}
send "123\r"
expect {{
    "That code has 3 digits" {{}}
    timeout {{ exit 12 }}
}}
expect "Code from the app: "
send "\004"
expect {{
    "nothing was saved" {{}}
    timeout {{ exit 13 }}
}}
expect eof
lassign [wait] pid spawnid os_error value
exit $value
"#,
        spawn = spawn(&sb, file)
    );
    let (code, shown) = expect(&script, &sb);
    assert_eq!(code, 1, "{shown}");
    assert!(!std::path::Path::new(file).exists());
    assert_eq!(sb.listing(""), ["config.toml", "confirm.exp"]);
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
