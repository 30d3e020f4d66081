//! The man pages document the whole interface, and nothing that is gone:
//!
//! - pam_totp(8) has an item (`.TP` then `.B key` or `.BI key= ...`) for
//!   every module argument that src/config.rs accepts;
//! - pam-totp(1) has a `.SS` section for every subcommand that
//!   `pam-totp --help` lists (for a group such as `host-key`, one for each
//!   of its subcommands: `.SS "host-key init"`), with an item for every flag that
//!   `pam-totp SUBCOMMAND --help` shows, and no item for a flag the
//!   subcommand does not have; the top-level flags are in OPTIONS.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// roff source with `\-` as `-`, so flags can be compared as typed.
fn unescape(roff: &str) -> String {
    roff.replace("\\-", "-")
}

/// The first line of every `.TP` item.
fn items(roff: &str) -> Vec<String> {
    let lines: Vec<&str> = roff.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == ".TP" || w[0].trim() == ".TQ")
        .map(|w| unescape(w[1]))
        .collect()
}

/// `--flag` and `-f` words in a line, without their arguments.
fn flags_in(line: &str) -> BTreeSet<String> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '|')
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(|w| {
            let end = w
                .char_indices()
                .skip(1)
                .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(w.len(), |(i, _)| i);
            w[..end].to_owned()
        })
        .filter(|w| w != "-" && w != "--")
        .collect()
}

// ------------------------------------------------------------ pam_totp(8)

/// Every module argument: the one key table, `config::keys::KEYS`, and
/// the pam.d-only `config`.
fn module_arguments() -> BTreeSet<String> {
    let mut keys = BTreeSet::from(["config".to_owned()]);
    keys.extend(
        pam_totp::config::keys::KEYS
            .iter()
            .map(|k| k.name.to_owned()),
    );
    assert!(keys.len() >= 14, "too few arguments: {keys:?}");
    keys
}

#[test]
fn module_man_page_documents_every_argument() {
    let man = read("man/pam_totp.8");
    let documented: BTreeSet<String> = items(&man)
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix(".BI ").or_else(|| l.strip_prefix(".B "))?;
            let word = rest.split_whitespace().next()?;
            Some(word.trim_end_matches('=').to_owned())
        })
        .collect();
    let missing: Vec<_> = module_arguments()
        .into_iter()
        .filter(|k| !documented.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "pam_totp(8) has no .TP item for {missing:?} (documented: {documented:?})"
    );
}

// ------------------------------------------------------------ pam-totp(1)

fn cli_help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pam-totp"))
        .args(args)
        .arg("--help")
        .env("COLUMNS", "200")
        .output()
        .expect("run pam-totp");
    assert!(out.status.success(), "pam-totp {args:?} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The lines of a help section (`Commands:`, `Options:`) up to the next
/// unindented line.
fn help_section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| l.trim_end() != title)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// Flags a help text defines (in `Options:`, lines that start with `-`).
fn help_flags(help: &str) -> BTreeSet<String> {
    help_section(help, "Options:")
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| flags_in(l.split("  ").next().unwrap_or(l)))
        .collect()
}

/// The commands a help text lists (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    help_section(help, "Commands:")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_owned)
        .collect()
}

/// Every subcommand that does something, as typed: `enroll`, and for a
/// group such as `host-key`, each of its own (`host-key init`).
fn subcommands() -> Vec<String> {
    let help = cli_help(&[]);
    let mut subs = Vec::new();
    for sub in commands_in(&help) {
        let nested = commands_in(&cli_help(&[&sub]));
        if nested.is_empty() {
            subs.push(sub);
        } else {
            subs.extend(nested.iter().map(|n| format!("{sub} {n}")));
        }
    }
    assert!(
        !subs.is_empty(),
        "`pam-totp --help` lists no commands:\n{help}"
    );
    subs
}

/// pam-totp(1) split into its `.SH`/`.SS` sections, by unescaped title.
fn man_sections(man: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut title = String::new();
    let mut body = String::new();
    for line in man.lines() {
        let heading = line
            .strip_prefix(".SH ")
            .or_else(|| line.strip_prefix(".SS "));
        if let Some(h) = heading {
            sections.insert(std::mem::take(&mut title), std::mem::take(&mut body));
            title = unescape(h).trim_matches('"').to_owned();
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections.insert(title, body);
    sections
}

fn item_flags(section: &str) -> BTreeSet<String> {
    items(section).iter().flat_map(|l| flags_in(l)).collect()
}

#[test]
fn cli_man_page_documents_every_subcommand_and_flag() {
    let man = read("man/pam-totp.1");
    let sections = man_sections(&man);
    let mut problems = Vec::new();

    // Top-level flags (--help, --version) in OPTIONS.
    let top = help_flags(&cli_help(&[]));
    assert!(top.contains("--help"), "{top:?}");
    let options = item_flags(sections.get("OPTIONS").map_or("", String::as_str));
    for f in top.difference(&options) {
        problems.push(format!("OPTIONS has no item for `pam-totp {f}`"));
    }

    let subs = subcommands();
    for sub in &subs {
        let Some(section) = sections.get(sub) else {
            problems.push(format!("no `.SS {sub}` section"));
            continue;
        };
        // --help after a subcommand is documented once, in OPTIONS.
        let words: Vec<&str> = sub.split(' ').collect();
        let mut want = help_flags(&cli_help(&words));
        want.retain(|f| f != "--help" && f != "-h");
        assert!(!want.is_empty(), "`pam-totp {sub} --help` shows no flags");
        let have = item_flags(section);
        for f in want.difference(&have) {
            problems.push(format!("{sub}: no item for {f}"));
        }
        for f in have.difference(&want) {
            problems.push(format!("{sub}: documents {f}, which it does not have"));
        }
        if !man.contains(&format!(".B pam\\-totp {}", sub.replace('-', "\\-"))) {
            problems.push(format!("SYNOPSIS does not show `pam-totp {sub}`"));
        }
    }

    // No section for a subcommand that does not exist.
    let in_subcommands = man
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .expect("a SUBCOMMANDS section");
    for line in in_subcommands.lines() {
        if let Some(h) = line.strip_prefix(".SS ") {
            let h = unescape(h).trim_matches('"').to_owned();
            if !subs.contains(&h) {
                problems.push(format!("`.SS {h}` documents no existing subcommand"));
            }
        }
    }
    assert!(problems.is_empty(), "pam-totp(1):\n{}", problems.join("\n"));
}

#[test]
fn flag_parsing() {
    assert_eq!(
        flags_in("      --secret-file <PATH>"),
        BTreeSet::from(["--secret-file".to_owned()])
    );
    assert_eq!(
        flags_in("  -h, --help     Print help"),
        BTreeSet::from(["-h".to_owned(), "--help".to_owned()])
    );
    assert_eq!(
        flags_in(".BR -h \", \" --help"),
        BTreeSet::from(["-h".to_owned(), "--help".to_owned()])
    );
    assert_eq!(
        flags_in(".BI --user \" USER\""),
        BTreeSet::from(["--user".to_owned()])
    );
}
