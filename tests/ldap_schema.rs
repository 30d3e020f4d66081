//! conf/ldap/ (the pamTotpUser schema) and conf/secret-command/pam-totp-ldap
//! against a real OpenLDAP slapd (issue 14, item 3): a throwaway cn=config
//! built with slapadd (core, cosine, inetorgperson and our schema, one mdb
//! database, the README's ACL), slapd on 127.0.0.1 started and killed by the
//! test, entries added with ldapadd from `pam-totp enroll --secret-file -`
//! output. The command prints exactly the stored text for a user, nothing
//! for a user without the attribute, escapes filter characters in the user
//! name, and fails when slapd is stopped. The ACL hides the attribute from
//! anyone but the command's bind DN.
//!
//! Logins through the real libpam with `secret_command=` running a
//! root-owned copy of the command (items 1 and 2): its config file is
//! /etc/pam-totp/ldap.conf in a private mount namespace (an overlay of /etc
//! that goes with the namespace).

mod cli_support;
mod common;
mod ns_support;

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cli_support::{run, Sandbox};
use common::{wait_bounded, KillOnDrop};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "root-secret";
const BIND_DN: &str = "cn=pam-totp,ou=services,dc=example,dc=org";
const BIND_PW: &str = "command-secret";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command with `stdin`, bounded to 20 s.
fn bounded(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    wait_bounded(child, Duration::from_secs(20))
}

fn ok(cmd: &mut Command, stdin: &str) -> String {
    let out = bounded(cmd, stdin);
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A slapd of the test's own, on loopback; killed when dropped.
struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<KillOnDrop>,
}

impl Slapd {
    fn start() -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-ldap.")
            .tempdir()
            .unwrap();
        let d = dir.path();
        fs::create_dir(d.join("slapd.d")).unwrap();
        fs::create_dir(d.join("db")).unwrap();
        let config = format!(
            "dn: cn=config\n\
             objectClass: olcGlobal\n\
             cn: config\n\
             olcPidFile: {pid}\n\
             \n\
             dn: cn=module{{0}},cn=config\n\
             objectClass: olcModuleList\n\
             cn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\n\
             olcModuleLoad: back_mdb\n\
             \n\
             dn: cn=schema,cn=config\n\
             objectClass: olcSchemaConfig\n\
             cn: schema\n\
             \n\
             include: file:///etc/ldap/schema/core.ldif\n\
             \n\
             include: file:///etc/ldap/schema/cosine.ldif\n\
             \n\
             include: file:///etc/ldap/schema/inetorgperson.ldif\n\
             \n\
             include: file://{ours}\n\
             \n\
             dn: olcDatabase={{0}}config,cn=config\n\
             objectClass: olcDatabaseConfig\n\
             olcDatabase: {{0}}config\n\
             olcAccess: {{0}}to * by * none\n\
             \n\
             dn: olcDatabase={{1}}mdb,cn=config\n\
             objectClass: olcDatabaseConfig\n\
             objectClass: olcMdbConfig\n\
             olcDatabase: {{1}}mdb\n\
             olcSuffix: {SUFFIX}\n\
             olcRootDN: {ROOT_DN}\n\
             olcRootPW: {ROOT_PW}\n\
             olcDbDirectory: {db}\n\
             olcDbMaxSize: 16777216\n\
             olcAccess: {{0}}to attrs=pamTotpSecret by dn.exact=\"{BIND_DN}\" read by * none\n\
             olcAccess: {{1}}to attrs=userPassword by anonymous auth by * none\n\
             olcAccess: {{2}}to * by * read\n",
            pid = d.join("slapd.pid").display(),
            ours = repo("conf/ldap/pam-totp.ldif").display(),
            db = d.join("db").display(),
        );
        fs::write(d.join("config.ldif"), config).unwrap();
        ok(
            Command::new("slapadd")
                .args(["-n", "0", "-F"])
                .arg(d.join("slapd.d"))
                .arg("-l")
                .arg(d.join("config.ldif")),
            "",
        );
        ok(
            Command::new("slaptest")
                .arg("-u")
                .arg("-F")
                .arg(d.join("slapd.d")),
            "",
        );
        let mut s = Slapd {
            dir,
            port: free_port(),
            child: None,
        };
        s.run();
        s
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// Starts slapd in the foreground (-d), and waits until it listens.
    fn run(&mut self) {
        let child = Command::new("slapd")
            .args(["-d", "0", "-h", &self.url(), "-F"])
            .arg(self.dir.path().join("slapd.d"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start slapd");
        self.child = Some(KillOnDrop(Some(child)));
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "slapd did not start"
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        drop(self.child.take());
    }

    fn add(&self, ldif: &str) {
        ok(
            Command::new("ldapadd").args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW]),
            ldif,
        );
    }
}

/// An entry for `uid` with, if given, the secret file's text.
fn person(uid: &str, text: Option<&str>) -> String {
    let mut e = format!(
        "dn: uid={uid},ou=people,{SUFFIX}\n\
         objectClass: inetOrgPerson\n\
         objectClass: pamTotpUser\n\
         uid: {uid}\n\
         cn: {uid}\n\
         sn: {uid}\n"
    );
    if let Some(t) = text {
        let b64 = ok(Command::new("base64").arg("-w0"), t);
        e.push_str(&format!("pamTotpSecret:: {b64}\n"));
    }
    e.push('\n');
    e
}

/// A new secret file's text, as `pam-totp enroll --secret-file -` prints it.
fn enrolled_text() -> String {
    let sb = Sandbox::new("");
    let r = run(
        &[
            "enroll",
            "--config",
            &sb.config(),
            "--user",
            "root",
            "--secret-file",
            "-",
            "--no-confirm",
            "--qr",
            "none",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("secret = \""), "{r:?}");
    r.stdout
}

fn command(conf: &Path, user: &str) -> Output {
    bounded(
        Command::new(repo("conf/secret-command/pam-totp-ldap"))
            .arg("-c")
            .arg(conf)
            .arg(user)
            .env_clear(),
        "",
    )
}

#[test]
fn the_command_prints_the_attribute_from_a_real_slapd() {
    let mut slapd = Slapd::start();
    slapd.add(&format!(
        "dn: {SUFFIX}\n\
         objectClass: dcObject\n\
         objectClass: organization\n\
         dc: example\n\
         o: Example\n\
         \n\
         dn: ou=people,{SUFFIX}\n\
         objectClass: organizationalUnit\n\
         ou: people\n\
         \n\
         dn: ou=services,{SUFFIX}\n\
         objectClass: organizationalUnit\n\
         ou: services\n\
         \n\
         dn: {BIND_DN}\n\
         objectClass: organizationalRole\n\
         objectClass: simpleSecurityObject\n\
         cn: pam-totp\n\
         userPassword: {BIND_PW}\n\
         \n"
    ));
    let alice = enrolled_text();
    let carol = enrolled_text();
    assert_ne!(alice, carol);
    slapd.add(&person("alice", Some(&alice)));
    slapd.add(&person("bob", None));
    slapd.add(&person("carol*)(", Some(&carol)));

    let d = slapd.dir.path();
    let pw = d.join("bind.pw");
    fs::write(&pw, BIND_PW).unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let conf = d.join("ldap.conf");
    fs::write(
        &conf,
        format!(
            "# test\nuri={}\nbase=ou=people,{SUFFIX}\nbinddn={BIND_DN}\nbindpw_file={}\ntimeout=3\n",
            slapd.url(),
            pw.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();

    // Exactly the text for alice; nothing for bob (no attribute) and for a
    // user with no entry.
    let out = command(&conf, "alice");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), alice);
    for nobody in ["bob", "dave"] {
        let out = command(&conf, nobody);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"", "{nobody}: {out:?}");
    }

    // Filter characters in the name are escaped (RFC 4515): `carol*)(`
    // finds its own entry; `*` and an injected filter match nothing.
    let out = command(&conf, "carol*)(");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), carol);
    for injected in ["*", "alice)(uid=*", "a*", "\\2a"] {
        let out = command(&conf, injected);
        assert!(out.status.success(), "{injected}: {out:?}");
        assert_eq!(out.stdout, b"", "{injected}: {out:?}");
    }

    // The ACL: anonymous readers see the entry, not the attribute.
    let anon = ok(
        Command::new("ldapsearch").args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url(),
            "-b",
            &format!("ou=people,{SUFFIX}"),
            "(uid=alice)",
        ]),
        "",
    );
    assert!(anon.contains("uid=alice"), "{anon}");
    assert!(!anon.to_lowercase().contains("pamtotpsecret"), "{anon}");

    // A config file others can write, or not root's, is refused.
    let loose = d.join("loose.conf");
    fs::copy(&conf, &loose).unwrap();
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o666)).unwrap();
    let out = command(&loose, "alice");
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&loose, Some(65534), None).unwrap();
    let out = command(&loose, "alice");
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");

    // slapd stopped: an error, not "not enrolled", and in bounded time.
    slapd.stop();
    let t0 = Instant::now();
    let out = command(&conf, "alice");
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn schema_files_declare_the_same_oids() {
    let schema = fs::read_to_string(repo("conf/ldap/pam-totp.schema")).unwrap();
    let ldif = fs::read_to_string(repo("conf/ldap/pam-totp.ldif")).unwrap();
    for name in [
        "'pamTotpSecret'",
        "'pamTotpUser'",
        "SINGLE-VALUE",
        "AUXILIARY",
    ] {
        assert!(schema.contains(name) && ldif.contains(name), "{name}");
    }
    let oids = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split("( ").nth(1))
            .map(|s| s.trim().to_owned())
            .collect()
    };
    assert_eq!(oids(&schema), oids(&ldif));
    assert_eq!(oids(&schema).len(), 2);
}

/// The base entries: the suffix, ou=people, ou=services, the command's
/// bind DN.
fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\n\
         objectClass: dcObject\n\
         objectClass: organization\n\
         dc: example\n\
         o: Example\n\
         \n\
         dn: ou=people,{SUFFIX}\n\
         objectClass: organizationalUnit\n\
         ou: people\n\
         \n\
         dn: ou=services,{SUFFIX}\n\
         objectClass: organizationalUnit\n\
         ou: services\n\
         \n\
         dn: {BIND_DN}\n\
         objectClass: organizationalRole\n\
         objectClass: simpleSecurityObject\n\
         cn: pam-totp\n\
         userPassword: {BIND_PW}\n\
         \n"
    )
}

/// The base32 secret in a plain secret file's text.
fn secret_of_text(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("secret = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("a plain secret line")
        .to_owned()
}

/// The account the command runs as (it must read the bind password).
const LDAP_CMD_USER: &str = "pamtotp-ldapcmd";

#[test]
fn logins_through_the_module_with_secrets_in_a_real_slapd() {
    use common::{avoid_step_edge, ensure_user, oathtool_totp, Fixture, PamResult};
    use ns_support::MountNs;

    let cmd_user = ensure_user(LDAP_CMD_USER, &[]);
    let alice = ensure_user("pamtotp-ldapal", &[]);
    let bob = ensure_user("pamtotp-ldapbob", &[]);

    let mut slapd = Slapd::start();
    slapd.add(&base_ldif());

    // Host A has a host key: `enroll --secret-file -` prints a sealed text
    // (sealed for root, the user who logs in with it).
    let host_a = Fixture::new();
    let host_b = Fixture::new();
    let r = run(
        &[
            "host-key",
            "init",
            "--config",
            &host_a.config().to_string_lossy(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let sealed = run(
        &[
            "enroll",
            "--config",
            &host_a.config().to_string_lossy(),
            "--user",
            "root",
            "--secret-file",
            "-",
            "--no-confirm",
            "--qr",
            "none",
            "--json",
        ],
        "",
    );
    assert_eq!(sealed.code, 0, "{sealed:?}");
    let json = sealed.json();
    let sealed_text = json["secret_file_text"].as_str().expect("secret_file_text");
    assert!(sealed_text.contains("sealed_secret"), "{sealed_text}");
    let root_secret = json["secret"].as_str().expect("secret").to_owned();
    // Plain for alice (from a sandbox with no host key).
    let plain = enrolled_text();
    let alice_secret = secret_of_text(&plain);
    slapd.add(&person("root", Some(sealed_text)));
    slapd.add(&person(&alice.name, Some(&plain)));
    slapd.add(&person(&bob.name, None));

    // The command: a root-owned copy in a directory the module trusts,
    // its config at /etc/pam-totp/ldap.conf in a private namespace.
    let cmds = common::trusted_command_dir("ldap-command.");
    let cmd = cmds.path().join("pam-totp-ldap");
    fs::copy(repo("conf/secret-command/pam-totp-ldap"), &cmd).unwrap();
    fs::set_permissions(&cmd, fs::Permissions::from_mode(0o755)).unwrap();
    let d = slapd.dir.path().to_owned();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    let pw = d.join("bind.pw");
    fs::write(&pw, BIND_PW).unwrap();
    std::os::unix::fs::chown(&pw, Some(0), Some(cmd_user.gid)).unwrap();
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o640)).unwrap();
    let conf = d.join("ldap.conf");
    fs::write(
        &conf,
        format!(
            "uri={}\nbase=ou=people,{SUFFIX}\nbinddn={BIND_DN}\nbindpw_file={}\ntimeout=3\n",
            slapd.url(),
            pw.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    fs::create_dir(d.join("etc-overlay")).unwrap();
    let ns = MountNs::new(
        r#"mount -t tmpfs -o mode=0700 tmpfs "$1"
mkdir "$1/upper" "$1/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
mkdir -p /etc/pam-totp
chmod 0755 /etc/pam-totp
cp "$2" /etc/pam-totp/ldap.conf
chmod 0644 /etc/pam-totp/ldap.conf"#,
        &[d.join("etc-overlay").as_path(), conf.as_path()],
    );

    let service = |fx: &Fixture, name: &str, extra: &str| {
        fx.service(
            name,
            &[&format!(
                "auth required MODULE state_dir={} secret_command={} secret_command_user={LDAP_CMD_USER} {extra}",
                fx.state_dir().display(),
                cmd.display()
            )],
        )
    };
    let login = |fx: &Fixture, svc: &str, user: &str, answer: &str| -> PamResult {
        ns.enter(fx.client(svc, user).answer(answer).syslog()).run()
    };
    let code = |secret: &str| {
        avoid_step_edge(30, 3);
        oathtool_totp(secret, "SHA1", 6, 30, 0)
    };
    let has = |r: &PamResult, parts: &[&str]| {
        let log = r.module_log();
        assert!(
            log.iter().any(|l| parts.iter().all(|p| l.contains(p))),
            "no module line with {parts:?}: {r:?}"
        );
    };

    let a = service(&host_a, "ldap", "");
    let a_nullok = service(&host_a, "ldap-nullok", "nullok");

    // Right code, then the same code again.
    let c = code(&alice_secret);
    let r = login(&host_a, &a, &alice.name, &c);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");
    let r = login(&host_a, &a, &alice.name, &c);
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    has(&r, &["result=replayed-code"]);

    // No attribute: not enrolled.
    let r = login(&host_a, &a_nullok, &bob.name, "123456");
    assert_eq!(
        r.result, "PAM_PERM_DENIED",
        "ignored, alone in the stack: {r:?}"
    );
    assert!(r.prompts.is_empty(), "{r:?}");
    has(&r, &["result=skipped", "not-enrolled,nullok"]);
    let r = login(&host_a, &a, &bob.name, "123456");
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert_eq!(r.prompts.len(), 1, "{r:?}");
    has(&r, &["result=not-enrolled"]);

    // The sealed secret opens on host A, whose key sealed it.
    let c = code(&root_secret);
    let r = login(&host_a, &a, "root", &c);
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // Host B: not before it has the fleet key; then it opens.
    let b = service(&host_b, "ldap", "");
    let r = login(&host_b, &b, "root", &code(&root_secret));
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    has(&r, &["result=file-problem", "secret_command output"]);
    let exported = run(
        &[
            "host-key",
            "export",
            "--config",
            &host_a.config().to_string_lossy(),
        ],
        "",
    );
    assert_eq!(exported.code, 0, "{exported:?}");
    let key_file = host_b.path().join("fleet.key");
    fs::write(&key_file, &exported.stdout).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(
        &[
            "host-key",
            "import",
            &key_file.to_string_lossy(),
            "--config",
            &host_b.config().to_string_lossy(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = login(&host_b, &b, "root", &code(&root_secret));
    assert_eq!(r.result, "PAM_SUCCESS", "{r:?}");

    // slapd stopped: denied (with nullok too), naming the command's error.
    slapd.stop();
    for svc in [&a, &a_nullok] {
        let t0 = Instant::now();
        let r = login(&host_a, svc, &alice.name, &code(&alice_secret));
        assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
        has(
            &r,
            &[
                "result=file-problem",
                "exit status 1",
                "stderr: 'ldap_sasl_bind",
            ],
        );
        assert!(t0.elapsed() < Duration::from_secs(60));
    }
}
