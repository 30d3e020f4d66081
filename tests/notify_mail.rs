//! The ready hook `conf/notify/pam-totp-mail` (issue 16, item 3): each
//! event (written by the crate's own serializer, or recorded from the real
//! module) becomes one plain-text message through the `sendmail` first on
//! PATH (a fake that records its arguments and input), to the user and the
//! configured admin; nothing a value from outside holds can add a header
//! or a recipient; a bad configuration or bad JSON mails nothing.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pam_totp::core::event::{DetailValue, Event, EventKind};

fn hook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/notify/pam-totp-mail")
}

struct Mail {
    dir: tempfile::TempDir,
}

/// What the hook did: exit status, stdout+stderr, and the recorded mail
/// (`ARGS: ...` then the message), empty if sendmail was not run.
struct Sent {
    ok: bool,
    said: String,
    mail: String,
}

impl Mail {
    /// A fake sendmail and a config file (root-owned, 0644) with `conf`.
    fn new(conf: &str) -> Mail {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("sendmail");
        let log = dir.path().join("mail");
        fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"ARGS: $*\" >> {0}\ncat >> {0}\n",
                log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let m = Mail { dir };
        m.set_conf(conf, 0o644);
        m
    }

    fn set_conf(&self, text: &str, mode: u32) {
        let p = self.dir.path().join("notify-mail.conf");
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn send(&self, input: &str) -> Sent {
        let _ = fs::remove_file(self.dir.path().join("mail"));
        let mut child = Command::new(hook())
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().display()),
            )
            .env(
                "PAM_TOTP_MAIL_CONF",
                self.dir.path().join("notify-mail.conf"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Sent {
            ok: out.status.success(),
            said: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            mail: fs::read_to_string(self.dir.path().join("mail")).unwrap_or_default(),
        }
    }
}

fn event(kind: EventKind, user: &str, detail: Vec<(&'static str, DetailValue)>) -> String {
    Event {
        kind,
        user: user.into(),
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        time: 1_796_157_301,
        detail,
    }
    .to_json()
}

/// The header lines of the recorded message (after the ARGS line).
fn headers(mail: &str) -> Vec<&str> {
    mail.lines().skip(1).take_while(|l| !l.is_empty()).collect()
}

#[test]
fn an_event_is_mailed_to_the_user_and_the_admin() {
    let m = Mail::new("# who gets a copy\nadmin=sec@example.org\nuser_domain=example.org\nfrom=pam-totp@example.org\n");
    let s = m.send(&event(
        EventKind::ScratchUsed,
        "alice",
        vec![("remaining", DetailValue::Int(2))],
    ));
    assert!(s.ok, "{}", s.said);
    assert!(
        s.mail
            .starts_with("ARGS: -i -f pam-totp@example.org -- alice@example.org sec@example.org\n"),
        "{}",
        s.mail
    );
    let h = headers(&s.mail);
    assert!(
        h.contains(&"To: alice@example.org, sec@example.org"),
        "{h:?}"
    );
    assert!(h.contains(&"From: pam-totp@example.org"), "{h:?}");
    assert!(
        h.iter()
            .any(|l| l.starts_with("Subject: pam-totp: a scratch code was used for alice")),
        "{h:?}"
    );
    assert!(s.mail.contains("2 scratch codes are left"), "{}", s.mail);
    assert!(
        s.mail
            .contains("Event: scratch_used at 2026-12-01T20:35:01Z"),
        "{}",
        s.mail
    );
    assert!(s.said.contains("mailed scratch_used"), "{}", s.said);

    // host_key_rotated: to the admin only.
    let s = m.send(&event(
        EventKind::HostKeyRotated,
        "",
        vec![("host_key", DetailValue::Text("abcd".into()))],
    ));
    assert!(s.ok, "{}", s.said);
    assert!(
        headers(&s.mail).contains(&"To: sec@example.org"),
        "{}",
        s.mail
    );
}

#[test]
fn values_from_outside_cannot_add_headers_or_recipients() {
    let m = Mail::new("admin=sec@example.org\n");
    let s = m.send(&event(
        EventKind::Lockout,
        "evil\r\nBcc: victim@example.org",
        vec![
            ("retry_after", DetailValue::Int(30)),
            (
                "rate_limit",
                DetailValue::Text("3/30\nBcc: x@example.org".into()),
            ),
        ],
    ));
    assert!(s.ok, "{}", s.said);
    // Not an address: mailed to the admin only.
    assert!(
        s.mail.starts_with("ARGS: -i -f root -- sec@example.org\n"),
        "{}",
        s.mail
    );
    assert!(!s.mail.lines().any(|l| l.starts_with("Bcc:")), "{}", s.mail);
    assert!(s.said.contains("not mailed to the user"), "{}", s.said);
}

#[test]
fn filters_bad_configuration_and_bad_json_mail_nothing() {
    let m = Mail::new("events=lockout, replayed disabled\nmail_user=yes\n");
    let scratch = event(EventKind::ScratchUsed, "bob", vec![]);
    let s = m.send(&scratch);
    assert!(s.ok && s.mail.is_empty(), "{} {}", s.said, s.mail);
    let s = m.send(&event(EventKind::Replayed, "bob", vec![]));
    assert!(
        s.ok && s.mail.starts_with("ARGS: -i -f root -- bob\n"),
        "{}",
        s.mail
    );

    for bad in [
        "",
        "[]",
        "{\"event\":\"lockout\",\"user\":\"bob\"",
        "{\"event\":\"lockout\"} trailing",
        "{\"event\":\"lockout\",\"user\":\"b\\q\"}",
    ] {
        let s = m.send(bad);
        assert!(!s.ok && s.mail.is_empty(), "{bad}: {} {}", s.said, s.mail);
    }
    // disable of a user who was not enrolled: nothing to tell.
    let s = m.send(&event(
        EventKind::Disabled,
        "bob",
        vec![("was_enrolled", DetailValue::Int(0))],
    ));
    assert!(s.ok && s.mail.is_empty(), "{} {}", s.said, s.mail);
    m.set_conf("events=all\n", 0o664);
    let s = m.send(&scratch);
    assert!(!s.ok && s.mail.is_empty(), "{}", s.said);
    assert!(s.said.contains("writable by group or others"), "{}", s.said);
    m.set_conf("colour=blue\n", 0o644);
    assert!(!m.send(&scratch).ok);
}

#[test]
fn a_real_module_event_mails_no_code_and_no_secret() {
    let user = common::ensure_user("pamtotp-notify", &[]);
    let fx = common::Fixture::new();
    let hooks = common::trusted_command_dir("notify-mail.");
    let out = fx.path().join("out");
    fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(user.uid), Some(user.gid)).unwrap();
    let rec = hooks.path().join("record");
    fs::write(
        &rec,
        format!("#!/bin/sh\ncat >> {}/events\n", out.display()),
    )
    .unwrap();
    fs::set_permissions(&rec, fs::Permissions::from_mode(0o755)).unwrap();
    let scratch = "24681357";
    fx.enroll_with_scratch("root", common::SECRET, &[scratch]);
    let svc = fx.module_service(
        "mail",
        &format!("notify={} notify_user=pamtotp-notify", rec.display()),
    );
    let r = fx.client(&svc, "root").answer(scratch).run();
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    // scratch_used and scratch_low.
    let until = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = fs::read_to_string(out.join("events")).unwrap_or_default();
        if t.lines().count() >= 2 || Instant::now() > until {
            break t;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let m = Mail::new("");
    let mut mails = String::new();
    for line in text.lines() {
        let s = m.send(line);
        assert!(s.ok, "{}", s.said);
        assert!(headers(&s.mail).contains(&"To: root"), "{}", s.mail);
        mails += &s.mail;
    }
    assert!(mails.contains("Event: scratch_used"), "{mails}");
    assert!(mails.contains("Event: scratch_low"), "{mails}");
    assert!(mails.contains("has 0 unused scratch codes"), "{mails}");
    for secret in [scratch, common::SECRET] {
        assert!(!mails.contains(secret), "{mails}");
    }
}
