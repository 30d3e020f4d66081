//! Real sudo with the shipped conf/pam.d/sudo: the password, then a code
//! from a root-owned secret file.
//!
//! Each sudo run happens in private mount and PID namespaces where the test's
//! copy of conf/pam.d/sudo is bind-mounted over /etc/pam.d/sudo and a test
//! sudoers file over /etc/sudoers; the machine's own files are untouched.
//! The test user runs `sudo -S -k id -u` (through setpriv, which changes
//! identity without PAM), answering both prompts on stdin.
//!
//! Runs as root. The test user is `pamtotp-sudo`.

mod common;
mod e2e_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{avoid_step_edge, oathtool_totp, SECRET};
use e2e_support::*;

const PASSWORD: &str = "sudo pass 7";

struct SudoBox<'a> {
    dir: &'a Path,
    user: &'a TestUser,
    syslog: Syslog,
}

impl SudoBox<'_> {
    /// `sudo -S -k id -u` as the test user, with `input` on stdin.
    fn sudo(&self, input: &str) -> Run {
        let pam = self.dir.join("pam.d-sudo");
        let sudoers = self.dir.join("sudoers");
        let script = format!(
            "{} exec setpriv --reuid={} --regid={} --init-groups -- \
             sudo -S -k -- id -u",
            namespace_setup(
                &self.syslog.path,
                &[(&pam, "/etc/pam.d/sudo"), (&sudoers, "/etc/sudoers")]
            ),
            self.user.uid,
            self.user.gid
        );
        run_bounded(&mut in_namespace(&script), input, COMMAND_TIMEOUT)
    }
}

fn ran_as_root(r: &Run) -> bool {
    r.success() && r.stdout.trim() == "0"
}

#[test]
fn sudo_needs_password_and_code_from_a_root_owned_secret() {
    let machine = (snapshot("/etc/pam.d/sudo"), snapshot("/etc/sudoers"));
    let dir = work_dir("sudo");
    let user = TestUser::create("sudo");
    user.set_password(PASSWORD);
    let so = install_module(dir.path());

    // The recommended setup: secret=/var/lib/pam-totp/secrets/${USER},
    // root-owned, 0600, in a 0700 directory (moved into the test directory).
    let secret = dir.path().join("var-lib-pam-totp/secrets").join(&user.name);
    fs::write(&secret, secret_toml(SECRET)).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let conf = read_conf("pam.d/sudo");
    assert!(conf.contains("secret=/var/lib/pam-totp/secrets/${USER}"));
    fs::write(
        dir.path().join("pam.d-sudo"),
        localize_pam_conf(&conf, &so, dir.path(), ""),
    )
    .unwrap();
    let sudoers = dir.path().join("sudoers");
    fs::write(
        &sudoers,
        format!(
            "Defaults env_reset\nDefaults lecture=never\n\
             Defaults timestamp_timeout=0\nDefaults passwd_tries=1\n\
             root ALL=(ALL:ALL) ALL\n{} ALL=(ALL:ALL) ALL\n",
            user.name
        ),
    )
    .unwrap();
    fs::set_permissions(&sudoers, fs::Permissions::from_mode(0o440)).unwrap();
    let sb = SudoBox {
        dir: dir.path(),
        user: &user,
        syslog: Syslog::bind(dir.path()),
    };

    avoid_step_edge(30, 12);
    let codes: Vec<String> = (-1..=1)
        .map(|o| oathtool_totp(SECRET, "SHA1", 6, 30, o))
        .collect();
    let code = &codes[1];

    // A wrong password with the right code: refused at the password.
    let r = sb.sudo(&format!("not the password\n{code}\n"));
    assert!(!ran_as_root(&r), "wrong password ran the command: {r:?}");
    assert!(!r.stderr.contains("Verification code"), "{r:?}");

    // The right password with a wrong code: refused.
    let r = sb.sudo(&format!("{PASSWORD}\n{}\n", wrong_code(&codes)));
    assert!(!ran_as_root(&r), "wrong code ran the command: {r:?}");
    assert!(r.stderr.contains("Verification code: "), "{r:?}");
    let log = sb.syslog.module_lines();
    assert!(
        log.iter()
            .any(|l| l.contains("service=sudo") && l.contains("result=wrong-code")),
        "{log:?}"
    );

    // Both right: the command runs as root.
    let r = sb.sudo(&format!("{PASSWORD}\n{code}\n"));
    assert!(ran_as_root(&r), "password and code refused: {r:?}");
    let log = sb.syslog.module_lines();
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("user={}", user.name))
                && l.contains("service=sudo")
                && l.contains("result=success")),
        "{log:?}"
    );

    // The same code again: a replay, refused.
    let r = sb.sudo(&format!("{PASSWORD}\n{code}\n"));
    assert!(!ran_as_root(&r), "replayed code ran the command: {r:?}");
    let log = sb.syslog.module_lines();
    assert!(
        log.iter().any(|l| l.contains("result=replayed-code")),
        "{log:?}"
    );

    // The state went to the test's state directory, and nothing changed
    // on the machine.
    assert!(module_state(dir.path(), &user.name).is_some());
    assert_eq!(
        (snapshot("/etc/pam.d/sudo"), snapshot("/etc/sudoers")),
        machine
    );
}
