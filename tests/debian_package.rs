//! The Debian packaging agrees with the crate:
//!
//! - debian/copyright lists every crate in the binaries with its licence,
//!   as `cargo metadata` reports them for Cargo.lock. With
//!   `UPDATE_DEBIAN_COPYRIGHT=1` the test rewrites those paragraphs instead;
//! - debian/changelog's version is Cargo.toml's;
//! - conf/config.toml (the conffile) changes nothing, explains every key,
//!   and its commented-out values are the defaults;
//! - the pam-auth-update profile is off by default and has no arguments,
//!   so /etc/pam-totp/config.toml decides.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pam_totp::config;
use pam_totp::config::{Settings, DEFAULT_PROMPT};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

// ---------------------------------------------------------------- copyright

/// Files patterns of the generated paragraphs start with this.
const CRATE_PREFIX: &str = "Files: cargo/";

/// One crate in the build, as debian/copyright describes it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Crate {
    name: String,
    version: String,
    authors: Vec<String>,
    license: String,
    linked: bool,
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("{rustc} -vV: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV prints host:")
        .to_owned()
}

/// The crates the package build uses on this platform: every crate reached
/// from pam-totp over normal dependencies is linked, unless it is a
/// procedural macro; build dependencies and everything only reached through
/// them or through a procedural macro are build-time only. Dev-dependencies
/// are not part of the package.
fn build_crates() -> Vec<Crate> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--locked", "--format-version", "1"])
        .args(["--filter-platform", &host_triple(), "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("{cargo} metadata: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");

    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let is_proc_macro = |id: &str| {
        packages[id]["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .any(|t| {
                t["kind"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k == "proc-macro")
            })
    };
    // id -> [(dependency id, kinds)]
    let mut edges: BTreeMap<&str, Vec<(&str, Vec<&str>)>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("nodes") {
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .map(|d| {
                let kinds = d["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal"))
                    .collect();
                (d["pkg"].as_str().expect("pkg"), kinds)
            })
            .collect();
        edges.insert(node["id"].as_str().expect("node id"), deps);
    }
    let root_id = meta["resolve"]["root"].as_str().expect("resolve.root");

    // Breadth-first, linked first: a crate reached both ways counts as linked.
    let mut linked: BTreeSet<&str> = BTreeSet::new();
    let mut build_only: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::from([(root_id, true)]);
    while let Some((id, is_linked)) = queue.pop_front() {
        let seen = if is_linked {
            !linked.insert(id)
        } else {
            linked.contains(id) || !build_only.insert(id)
        };
        if seen {
            continue;
        }
        for (dep, kinds) in &edges[id] {
            if kinds.contains(&"normal") {
                let child_linked = is_linked && !is_proc_macro(dep);
                queue.push_back((dep, child_linked));
            }
            if kinds.contains(&"build") {
                queue.push_back((dep, false));
            }
        }
    }
    build_only.retain(|id| !linked.contains(id));
    // Our own crates (the workspace: pam-totp and its TLS library) are
    // covered by the first paragraph of debian/copyright.
    for member in meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
    {
        let member = member.as_str().expect("member id");
        linked.remove(member);
        build_only.remove(member);
    }

    let describe = |id: &str, linked: bool| {
        let p = packages[id];
        Crate {
            name: p["name"].as_str().expect("name").to_owned(),
            version: p["version"].as_str().expect("version").to_owned(),
            authors: p["authors"]
                .as_array()
                .expect("authors")
                .iter()
                .map(|a| a.as_str().expect("author").trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            license: p["license"].as_str().unwrap_or("").to_owned(),
            linked,
        }
    };
    let mut crates: Vec<Crate> = linked
        .iter()
        .map(|id| describe(id, true))
        .chain(build_only.iter().map(|id| describe(id, false)))
        .collect();
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    crates
}

/// SPDX identifiers and their names in debian/copyright. A new one needs a
/// line here and a stand-alone License paragraph there.
const LICENCE_NAMES: &[(&str, &str)] = &[
    ("MIT", "Expat"),
    ("Apache-2.0", "Apache-2.0"),
    ("BSD-3-Clause", "BSD-3-clause"),
    ("CC0-1.0", "CC0-1.0"),
    ("MIT-0", "MIT-0"),
    ("Unlicense", "Unlicense"),
    ("Unicode-3.0", "Unicode-3.0"),
    ("ISC", "ISC"),
    ("BSL-1.0", "BSL-1.0"),
    ("Zlib", "Zlib"),
    ("GPL-3.0", "GPL-3"),
    ("GPL-3.0-only", "GPL-3"),
    ("GPL-3.0-or-later", "GPL-3+"),
];
const EXCEPTION_NAMES: &[(&str, &str)] = &[("LLVM-exception", "LLVM")];

/// One licence term: `ID` or `ID WITH EXCEPTION`.
fn dep5_term(term: &str) -> Result<String, String> {
    let unknown = |id: &str| {
        format!(
            "licence {id:?} is not known to tests/debian_package.rs: add it to \
             LICENCE_NAMES and a License paragraph with its text to debian/copyright"
        )
    };
    let (id, exception) = match term.split_once(" WITH ") {
        Some((i, e)) => (i.trim(), Some(e.trim())),
        None => (term.trim(), None),
    };
    let name = LICENCE_NAMES
        .iter()
        .find(|(s, _)| *s == id)
        .map(|(_, d)| *d)
        .ok_or_else(|| unknown(id))?;
    Ok(match exception {
        None => name.to_owned(),
        Some(e) => {
            let ex = EXCEPTION_NAMES
                .iter()
                .find(|(s, _)| *s == e)
                .map(|(_, d)| *d)
                .ok_or_else(|| unknown(e))?;
            format!("{name} with {ex} exception")
        }
    })
}

/// A cargo licence expression in copyright-format syntax: `or`/`and` in
/// lower case, `(A OR B) AND C` as `A or B, and C`.
fn dep5_license(spdx: &str) -> Result<String, String> {
    let spdx = spdx.replace('/', " OR ");
    let alternatives = |s: &str| -> Result<String, String> {
        if s.contains(['(', ')']) || s.contains(" AND ") {
            return Err(format!("licence expression {spdx:?} is too complex"));
        }
        let terms: Result<Vec<_>, _> = s.split(" OR ").map(dep5_term).collect();
        Ok(terms?.join(" or "))
    };
    if let Some(rest) = spdx.strip_prefix('(') {
        let (inner, after) = rest
            .split_once(')')
            .ok_or_else(|| format!("unbalanced {spdx:?}"))?;
        let tail = after
            .trim()
            .strip_prefix("AND ")
            .ok_or_else(|| format!("licence expression {spdx:?} is too complex"))?;
        return Ok(format!(
            "{}, and {}",
            alternatives(inner)?,
            alternatives(tail)?
        ));
    }
    if spdx.contains(" AND ") && !spdx.contains(" OR ") {
        let terms: Result<Vec<_>, _> = spdx.split(" AND ").map(dep5_term).collect();
        return Ok(terms?.join(" and "));
    }
    alternatives(&spdx)
}

fn crate_paragraph(c: &Crate) -> Result<String, String> {
    if c.license.is_empty() {
        return Err(format!(
            "crate {} {} declares no licence in its Cargo.toml: write its paragraph by hand",
            c.name, c.version
        ));
    }
    let holders = if c.authors.is_empty() {
        vec![format!("the {} authors", c.name)]
    } else {
        c.authors.clone()
    };
    let use_ = if c.linked {
        "Linked into the binaries."
    } else {
        "Build-time only (procedural macro or build script); not linked into the binaries."
    };
    Ok(format!(
        "{CRATE_PREFIX}{}-{}/*\nCopyright: {}\nLicense: {}\nComment: {} {}. {use_}",
        c.name,
        c.version,
        holders.join("\n "),
        dep5_license(&c.license)?,
        c.name,
        c.version
    ))
}

/// Licence names a License field refers to (split at `or`, `and`, commas).
fn licence_names(field: &str) -> Vec<String> {
    field
        .replace(", and ", " and ")
        .split(" or ")
        .flat_map(|s| s.split(" and "))
        .map(|s| s.trim().to_owned())
        .collect()
}

#[test]
fn copyright_lists_every_crate_with_its_licence() {
    let crates = build_crates();
    assert!(
        crates.iter().any(|c| c.name == "pamsm" && c.linked),
        "pamsm should be linked: {crates:?}"
    );
    let generated: Vec<String> = crates
        .iter()
        .map(crate_paragraph)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));

    let path = root().join("debian/copyright");
    let text = read("debian/copyright");
    let paragraphs: Vec<&str> = text.trim_end().split("\n\n").collect();
    let is_crate = |p: &&str| p.starts_with(CRATE_PREFIX);
    let first = paragraphs.iter().position(is_crate);
    let last = paragraphs.iter().rposition(is_crate);
    let (before, current, after) = match (first, last) {
        (Some(f), Some(l)) => (&paragraphs[..f], &paragraphs[f..=l], &paragraphs[l + 1..]),
        // No crate paragraphs yet: they go before the stand-alone licences.
        _ => {
            let at = paragraphs
                .iter()
                .position(|p| p.starts_with("License:"))
                .expect("stand-alone License paragraphs in debian/copyright");
            (&paragraphs[..at], &paragraphs[at..at], &paragraphs[at..])
        }
    };
    assert!(
        current.iter().all(is_crate),
        "the crate paragraphs of debian/copyright must be contiguous"
    );

    if current != generated.iter().map(String::as_str).collect::<Vec<_>>() {
        if std::env::var_os("UPDATE_DEBIAN_COPYRIGHT").is_some() {
            let all: Vec<&str> = before
                .iter()
                .copied()
                .chain(generated.iter().map(String::as_str))
                .chain(after.iter().copied())
                .collect();
            fs::write(&path, all.join("\n\n") + "\n").expect("write debian/copyright");
            eprintln!("rewrote the crate paragraphs of {}", path.display());
        } else {
            let old: BTreeSet<&str> = current.iter().copied().collect();
            let new: BTreeSet<&str> = generated.iter().map(String::as_str).collect();
            panic!(
                "debian/copyright does not match Cargo.lock.\n\
                 missing or changed:\n{}\n\nstale:\n{}\n\n\
                 Run `UPDATE_DEBIAN_COPYRIGHT=1 cargo test --release --test debian_package` \
                 and commit debian/copyright.",
                new.difference(&old)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                old.difference(&new)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            );
        }
    }

    // Every licence named in a Files paragraph has a stand-alone paragraph.
    let text = read("debian/copyright");
    let standalone: BTreeSet<&str> = text
        .split("\n\n")
        .filter_map(|p| p.strip_prefix("License: "))
        .map(|p| p.lines().next().unwrap_or("").trim())
        .collect();
    for p in text.split("\n\n").filter(|p| p.starts_with("Files:")) {
        let field = p
            .lines()
            .find_map(|l| l.strip_prefix("License: "))
            .unwrap_or_else(|| panic!("no License in paragraph:\n{p}"));
        for name in licence_names(field) {
            assert!(
                standalone.contains(name.as_str()),
                "licence {name:?} has no stand-alone License paragraph in debian/copyright"
            );
        }
    }
}

#[test]
fn licence_expressions() {
    assert_eq!(
        dep5_license("MIT OR Apache-2.0").unwrap(),
        "Expat or Apache-2.0"
    );
    assert_eq!(
        dep5_license("MIT/Apache-2.0").unwrap(),
        "Expat or Apache-2.0"
    );
    assert_eq!(
        dep5_license("(MIT OR Apache-2.0) AND Unicode-3.0").unwrap(),
        "Expat or Apache-2.0, and Unicode-3.0"
    );
    assert_eq!(
        dep5_license("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT").unwrap(),
        "Apache-2.0 with LLVM exception or Apache-2.0 or Expat"
    );
    assert!(dep5_license("WTFPL").is_err());
    assert_eq!(
        licence_names("Expat or Apache-2.0, and Unicode-3.0"),
        ["Expat", "Apache-2.0", "Unicode-3.0"]
    );
}

// ---------------------------------------------------------------- changelog

#[test]
fn changelog_version_is_the_crate_version() {
    let changelog = read("debian/changelog");
    let first = changelog.lines().next().expect("changelog line");
    let version = first
        .split_once(" (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(v, _)| v)
        .expect("pam-totp (VERSION) ...");
    assert!(first.starts_with("pam-totp ("), "{first}");
    // A native package: the version is the crate's, with no Debian revision.
    assert_eq!(version, env!("CARGO_PKG_VERSION"), "{first}");
}

// ---------------------------------------------------------------- config.toml

/// The module's config.toml keys: the one key table, `config::keys::KEYS`.
fn config_keys() -> Vec<String> {
    let keys: Vec<String> = config::keys::KEYS
        .iter()
        .map(|k| k.name.to_owned())
        .collect();
    assert!(keys.len() >= 10, "too few keys: {keys:?}");
    keys
}

/// `# key = value` lines of conf/config.toml (the commented-out settings).
fn commented_settings(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Keys besides the groups whose default is unset: conf/config.toml shows
/// an example value for them. (secret_command and secret_command_user
/// also exclude `secret`, which the defaults write.)
const UNSET_BY_DEFAULT: &[&str] = &[
    "state",
    "state_credentials",
    "state_ca",
    "secret_command",
    "secret_command_user",
    "enroll_by",
    "notify",
    "notify_user",
];

#[test]
fn shipped_config_changes_nothing_and_explains_every_key() {
    let text = read("conf/config.toml");
    // As shipped it sets nothing at all.
    let table: toml::Table = toml::from_str(&text).expect("conf/config.toml is TOML");
    assert!(table.is_empty(), "conf/config.toml sets {table:?}");
    let from = |text: String| {
        let reader = move |_: &Path| -> Result<Option<String>, config::ConfigFileError> {
            Ok(Some(text.clone()))
        };
        config::from_args(&[], &reader)
    };
    assert_eq!(from(text.clone()).unwrap(), Settings::default());

    // Every key has a commented-out line, and those lines, uncommented, are
    // the defaults (the examples of keys whose default is unset aside: the
    // groups, the fleet's server, credentials and CA, and the secret
    // command and its user).
    let example = |k: &str| k.ends_with("_group") || UNSET_BY_DEFAULT.contains(&k);
    let settings = commented_settings(&text);
    for key in config_keys() {
        assert!(
            settings.contains_key(&key),
            "conf/config.toml has no `# {key} = ...` line"
        );
    }
    let defaults: String = settings
        .iter()
        .filter(|(k, _)| !example(k))
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let got = from(defaults.clone()).unwrap_or_else(|e| panic!("{e}\n{defaults}"));
    let want = Settings {
        prompt: Some(DEFAULT_PROMPT.to_owned()),
        // `secret` was written (at its default), which secret_command
        // would refuse.
        secret_given: true,
        ..Settings::default()
    };
    assert_eq!(got, want, "commented-out values are not the defaults");
    // The examples are valid values.
    let examples: String = settings
        .iter()
        .filter(|(k, _)| example(k))
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    let s =
        from(examples.clone()).unwrap_or_else(|e| panic!("examples do not parse: {e}\n{examples}"));
    assert!(s.secret_command.path.is_some(), "{examples}");
}

// ---------------------------------------------------------------- pam-configs

#[test]
fn pam_auth_update_profile_is_off_by_default() {
    let text = read("conf/pam-configs/pam-totp");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name}: in the profile"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Default"), "no");
    assert_eq!(field("Auth-Type"), "Additional");
    field("Name");
    field("Priority").parse::<u32>().expect("numeric Priority");
    let auth: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Auth:"))
        .skip(1)
        .take_while(|l| l.starts_with(char::is_whitespace))
        .collect();
    let words: Vec<Vec<&str>> = auth
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // No arguments: /etc/pam-totp/config.toml decides, and an argument here
    // could not be overridden there.
    assert_eq!(words, [vec!["required", "pam_totp.so"]], "{auth:?}");
}

// ---------------------------------------------------------------- notify hook

#[test]
fn the_mail_hook_ships_executable_where_the_docs_say() {
    let install = read("debian/pam-totp.install");
    assert!(
        install
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["conf/notify/pam-totp-mail", "usr/lib/pam-totp/"]),
        "{install}"
    );
    let mode = fs::metadata(root().join("conf/notify/pam-totp-mail"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "pam-totp-mail must be executable");
    assert!(read("conf/config.toml").contains("/usr/lib/pam-totp/pam-totp-mail"));
}
