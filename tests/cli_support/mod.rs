//! Support for the `pam-totp` tool's tests (tests/cli_*.rs): running the
//! tool (as root or as a test user), test users, a private config file,
//! and decoding the QR code it draws with a real decoder (zbarimg).
//!
//! Tests run as root; test users are created with useradd, named
//! `pamtotp-*`, one per test so tests can run in parallel.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The tool as cargo built it for this test run.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pam-totp")
}

/// One run of the tool.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Asserts success and returns stdout parsed as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Asserts the bad-input contract: exit 2, nothing on stdout, exactly
    /// one line on stderr, containing `want`.
    pub fn bad_input(&self, want: &str) {
        assert_eq!(self.code, 2, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(
            self.stderr.starts_with("pam-totp: ") && self.stderr.ends_with('\n'),
            "{self:?}"
        );
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:?}");
        assert!(self.stderr.contains(want), "want {want:?}: {self:?}");
    }
}

/// Runs the tool with `args` and `stdin` as standard input, as root.
pub fn run(args: &[&str], stdin: &str) -> Run {
    run_cmd(Command::new(bin()), args, stdin)
}

/// Runs the tool as `user` (real and effective ids, groups), with setpriv.
pub fn run_as(user: &TestUser, args: &[&str], stdin: &str) -> Run {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", user.uid),
        &format!("--regid={}", user.gid),
        "--init-groups",
        "--",
        bin(),
    ]);
    run_cmd(cmd, args, stdin)
}

fn run_cmd(mut cmd: Command, args: &[&str], stdin: &str) -> Run {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pam-totp");
    // A closed pipe (the tool did not read) is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    Run::from(child.wait_with_output().unwrap())
}

/// A test account.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl TestUser {
    /// The account `pamtotp-<suffix>`, created (with a home directory) if
    /// missing, and its home emptied of earlier runs' secret files.
    pub fn get(suffix: &str) -> TestUser {
        let name = format!("pamtotp-{suffix}");
        assert!(name.len() <= 32, "user name too long: {name}");
        if !exists(&name) {
            // useradd locks /etc/passwd; other tests may hold it a moment.
            for attempt in 0.. {
                let out = Command::new("useradd")
                    .args(["--create-home", "--shell", "/bin/sh", &name])
                    .output()
                    .expect("useradd");
                if out.status.success() || exists(&name) {
                    break;
                }
                assert!(
                    attempt < 50,
                    "useradd {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let home = PathBuf::from(format!("/home/{name}"));
        let user = TestUser {
            uid: id("-u"),
            gid: id("-g"),
            home,
            name,
        };
        fs::create_dir_all(&user.home).unwrap();
        std::os::unix::fs::chown(&user.home, Some(user.uid), Some(user.gid)).unwrap();
        fs::set_permissions(&user.home, fs::Permissions::from_mode(0o750)).unwrap();
        let _ = fs::remove_file(user.home.join(".pam_totp"));
        user
    }

    pub fn secret_path(&self) -> PathBuf {
        self.home.join(".pam_totp")
    }
}

fn exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A scratch directory every test user may enter (0755), with a config
/// file of its own (`config.toml`, root-owned, 0644), so no test depends on
/// the machine's /etc/pam-totp/config.toml. The config file always names a
/// host key (`host_key`, in the sandbox, absent unless a test makes it), so
/// no test seals to the machine's /etc/pam-totp/host.pub either.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new(config: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("pam-totp-cli.")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let sb = Sandbox { dir };
        sb.set_config(config);
        sb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path().join(p)
    }

    pub fn config(&self) -> String {
        self.join("config.toml").to_string_lossy().into_owned()
    }

    /// Writes config.toml: `text`, and a `host_key` in the sandbox unless
    /// `text` names one.
    pub fn set_config(&self, text: &str) {
        let p = self.join("config.toml");
        let mut text = text.to_owned();
        if !text.contains("host_key") {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "host_key = \"{}\"\n",
                self.join("host.key").display()
            ));
        }
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// Every name in the directory (to show nothing was written).
    pub fn listing(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Owner uid and permission bits of a path (not following a symlink).
pub fn owner_mode(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.mode() & 0o7777)
}

/// The QR code's lines in the tool's output: from the line after the
/// "Scan this QR code" heading's blank line to the next blank line.
pub fn qr_lines(output: &str) -> Vec<&str> {
    let lines: Vec<&str> = output.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("Scan this QR code"))
        .expect("a QR code heading")
        + 2;
    lines[start..]
        .iter()
        .take_while(|l| !l.is_empty())
        .copied()
        .collect()
}

/// Module rows of a `--qr utf8` drawing as a light-on-dark terminal shows
/// it: a drawn half block is light, a blank is the dark background.
pub fn modules_utf8(lines: &[&str]) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in lines {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for c in line.chars() {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?} in the QR code"),
            };
            top.push(t);
            bottom.push(b);
        }
        rows.push(top);
        rows.push(bottom);
    }
    rows
}

/// Module rows of a `--qr ansi` drawing: every cell an upper half block,
/// foreground the top module, background the bottom (30/40 black,
/// 97/107 bright white). `true` is light.
pub fn modules_ansi(lines: &[&str]) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in lines {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        let (mut fg, mut bg) = (None, None);
        let mut rest = *line;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("\x1b[") {
                let end = after.find('m').expect("SGR ends with m");
                for p in after[..end].split(';') {
                    match p {
                        "0" => (fg, bg) = (None, None),
                        "30" => fg = Some(false),
                        "97" => fg = Some(true),
                        "40" => bg = Some(false),
                        "107" => bg = Some(true),
                        other => panic!("unexpected SGR {other}"),
                    }
                }
                rest = &after[end + 1..];
            } else {
                let c = rest.chars().next().unwrap();
                assert_eq!(c, '▀', "only upper half blocks in ansi mode");
                top.push(fg.expect("foreground set"));
                bottom.push(bg.expect("background set"));
                rest = &rest[c.len_utf8()..];
            }
        }
        rows.push(top);
        rows.push(bottom);
    }
    rows
}

/// Decodes module rows (`true` light) with zbarimg: drawn on a dark
/// border (the terminal around the code), 4 pixels a module, as a PBM.
pub fn zbar_decode(rows: &[Vec<bool>], work: &Path) -> String {
    const BORDER: usize = 3;
    const SCALE: usize = 4;
    let width = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == width), "ragged QR rows");
    let w = width + 2 * BORDER;
    let h = rows.len() + 2 * BORDER;
    let mut pbm = format!("P1\n{} {}\n", w * SCALE, h * SCALE);
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            let light = y >= BORDER
                && y < h - BORDER
                && x >= BORDER
                && x < w - BORDER
                && rows[y - BORDER][x - BORDER];
            for _ in 0..SCALE {
                line.push_str(if light { "0 " } else { "1 " });
            }
        }
        line.push('\n');
        for _ in 0..SCALE {
            pbm.push_str(&line);
        }
    }
    let file = work.join("qr.pbm");
    fs::write(&file, pbm).unwrap();
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(&file)
        .output()
        .expect("zbarimg (apt-get install zbar-tools)");
    assert!(out.status.success(), "zbarimg found no code: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// The value of `key: value` on an "  key:   value" line of the output.
pub fn field<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}: line in {output}"))
        .trim()
}

/// The eight-digit scratch codes listed in the output.
pub fn scratch_codes(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}
