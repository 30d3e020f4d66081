//! The house rules, read from the source (issue 12): each folder under
//! src/ is a room, imports follow only the arrows below, no two rooms
//! import each other (directly or round a longer cycle), nor do two files
//! (a file may use what its parent module, the room's face, holds),
//! `unsafe` lives only at the PAM edge, and no source file or function
//! (library or tool) grows past the size a reviewer can hold in their head.
//!
//! Allowed arrows (what a room may import):
//!
//! - core → nothing of ours; sys → nothing of ours
//! - secret, state, config → core, sys
//! - login → core, secret, state, sys, config
//! - pam → login, sys (and core for values), and of the state only
//!   `state::fleet::conn::tls`: the TLS seam, which the edge implements
//!   by loading the TLS library (`pam::tls`, `dlopen` needs `unsafe`)
//! - cli → everything but pam, except `pam::passwd` (the passwd
//!   enumeration needs `unsafe`, so it lives at the edge; only the tool
//!   calls it) and `pam::notify` (the detached run of a `notify=` hook,
//!   shared with the module)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

fn allowed(from: &str, to: &str) -> bool {
    let may: &[&str] = match from {
        "core" | "sys" => &[],
        "secret" | "state" => &["core", "sys"],
        // The fleet's settings (`state=` and friends) are state::fleet types.
        "config" => &["core", "sys", "state"],
        "login" => &["core", "secret", "state", "sys", "config"],
        "pam" => &["login", "sys", "core"],
        "cli" => &["core", "secret", "state", "sys", "config", "login"],
        _ => return false,
    };
    from == to || may.contains(&to)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The room a file is in: the first component under src/ (a folder, or
/// a file's stem); `None` for lib.rs.
fn room_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let room = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (room != "lib").then_some(room)
}

/// The source with comments, string and character literals blanked
/// (newlines kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, x)| c.get(i + k) == Some(&x));
    let ident = |x: char| x.is_alphanumeric() || x == '_';
    let blank = |out: &mut String, from: usize, to: usize| {
        for &x in &c[from..to.min(c.len())] {
            out.push(if x == '\n' { '\n' } else { ' ' });
        }
    };
    let find = |from: usize, end: &str, escapes: bool| {
        let mut j = from;
        while j < c.len() && !at(j, end) {
            if escapes && c[j] == '\\' {
                j += 1;
            }
            j += 1;
        }
        (j + end.chars().count()).min(c.len())
    };
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        let end = if at(i, "//") {
            find(i, "\n", false).saturating_sub(1)
        } else if at(i, "/*") {
            find(i + 2, "*/", false)
        } else if !prev_ident && (at(i, "r\"") || at(i, "r#\"") || at(i, "r##\"")) {
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            find(i + 2 + hashes, &format!("\"{}", "#".repeat(hashes)), false)
        } else if c[i] == '"' {
            find(i + 1, "\"", true)
        } else if c[i] == '\'' && (c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'')) {
            find(i + 1, "'", true)
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        blank(&mut out, i, end);
        i = end;
    }
    out
}

/// The rooms `code` imports through `root::` (`crate` in the library,
/// `pam_totp` in the tool): `(room, item path after the room, line)`.
fn imports(code: &str, root: &str) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    let pat = format!("{root}::");
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find(&pat) {
            let before = rest[..i].chars().last();
            let after = &rest[i + pat.len()..];
            rest = after;
            if before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == ':') {
                continue;
            }
            let names: Vec<String> = if let Some(group) = after.strip_prefix('{') {
                // `crate::{a::b, c}`: the first segment of each entry.
                let inner = group.split('}').next().unwrap_or("");
                inner
                    .split(',')
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect()
            } else {
                let path: String = after
                    .chars()
                    .take_while(|&x| x.is_alphanumeric() || x == '_' || x == ':')
                    .collect();
                vec![path]
            };
            for name in names {
                let room = name.split("::").next().unwrap_or("").to_owned();
                let item = name.get(room.len()..).unwrap_or("").to_owned();
                found.push((room, item, n + 1));
            }
        }
    }
    found
}

/// The arrows one file draws, and the ones the plan does not allow.
fn arrows_of(room: &str, code: &str) -> (BTreeSet<String>, Vec<String>) {
    let root = if room == "cli" { "pam_totp" } else { "crate" };
    let mut to = BTreeSet::new();
    let mut bad = Vec::new();
    for (target, item, line) in imports(code, root) {
        if target.is_empty() || target == room {
            continue;
        }
        let edge_exception = (room == "cli"
            && target == "pam"
            && (item.starts_with("::passwd") || item.starts_with("::notify")))
            || (room == "pam" && target == "state" && item.starts_with("::fleet::conn::tls"));
        if !allowed(room, &target) && !edge_exception {
            bad.push(format!("line {line}: {room} imports {target}{item}"));
        }
        to.insert(target);
    }
    (to, bad)
}

/// A cycle in the graph of rooms, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut c = path[start..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Lines (1-based) with the keyword `unsafe` in code.
fn unsafe_lines(code: &str) -> Vec<usize> {
    let ident = |x: char| x.is_alphanumeric() || x == '_';
    code.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.match_indices("unsafe").any(|(i, _)| {
                let before = l[..i].chars().last();
                let after = l[i + 6..].chars().next();
                !before.is_some_and(ident) && !after.is_some_and(ident)
            })
        })
        .map(|(n, _)| n + 1)
        .collect()
}

/// Functions longer than `max` lines: `(name, first line, lines)`.
fn long_functions(code: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let Some(pos) = t.find("fn ") else { continue };
        let head = &t[..pos];
        let is_fn = head.split_whitespace().all(|w| {
            [
                "pub",
                "pub(crate)",
                "pub(super)",
                "const",
                "async",
                "unsafe",
                "extern",
                "\"C\"",
            ]
            .contains(&w)
                || w.starts_with("pub(")
        });
        if !is_fn {
            continue;
        }
        let name: String = t[pos + 3..]
            .chars()
            .take_while(|&x| x.is_alphanumeric() || x == '_')
            .collect();
        // The body: from the first `{` after the signature to its match.
        let mut depth = 0i32;
        let mut opened = false;
        let mut end = None;
        'scan: for (k, body) in lines.iter().enumerate().skip(n) {
            for ch in body.chars() {
                match ch {
                    ';' if !opened && depth == 0 => break 'scan,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(k);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(e) = end {
            let len = e - n + 1;
            if len > max {
                long.push((name, n + 1, len));
            }
        }
    }
    long
}

struct Source {
    path: PathBuf,
    room: Option<String>,
    text: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            Source {
                room: room_of(&path),
                code: code_only(&text),
                path,
                text,
            }
        })
        .collect()
}

fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
}

#[test]
fn every_import_follows_an_allowed_arrow() {
    let mut bad = Vec::new();
    for s in sources() {
        let Some(room) = &s.room else { continue };
        for b in arrows_of(room, &s.code).1 {
            bad.push(format!("{}: {b}", s.path.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "imports against the plan:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_cycle_between_rooms() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources() {
        let Some(room) = &s.room else { continue };
        let (to, _) = arrows_of(room, &s.code);
        graph.entry(room.clone()).or_default().extend(to);
    }
    assert!(graph.len() >= 7, "{graph:?}");
    assert_eq!(cycle(&graph), None, "{graph:?}");
}

/// The module a file is, as path segments within its crate: the library
/// (src/, `lib.rs` its root) or the tool (src/cli/, `main.rs` its root).
/// `mod.rs` is its folder's module. The crate is the first value.
fn module_of(path: &Path) -> (&'static str, Vec<String>) {
    let rel = path.strip_prefix(src()).unwrap();
    let (krate, rel) = match rel.strip_prefix("cli") {
        Ok(inner) => ("cli", inner),
        Err(_) => ("lib", rel),
    };
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    (krate, parts)
}

/// The paths `code` names through `crate::`, `super::` or `self::` (in a
/// `use`, grouped or not, or inline), made absolute within the crate of
/// the module `own`.
fn module_paths(code: &str, own: &[String]) -> Vec<Vec<String>> {
    fn ident_end(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        i
    }
    // One use tree at `i`: segments joined by `::`, maybe ending in a
    // `{...}` group of trees. Every full path goes to `out`.
    fn tree(b: &[u8], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b.get(i) == Some(&b'{') {
                let (mut depth, mut start) = (0, i + 1);
                for j in i..b.len() {
                    match b[j] {
                        b'{' => depth += 1,
                        b'}' | b',' if depth == 1 => {
                            tree(&b[..j], start, prefix.clone(), out);
                            start = j + 1;
                            if b[j] == b'}' {
                                return;
                            }
                        }
                        b'}' => depth -= 1,
                        _ => {}
                    }
                }
                return;
            }
            let end = ident_end(b, i);
            if end > i {
                prefix.push(String::from_utf8_lossy(&b[i..end]).into_owned());
            }
            if b.get(end..end + 2) == Some(b"::".as_slice()) {
                i = end + 2;
                continue;
            }
            out.push(prefix);
            return;
        }
    }
    let b = code.as_bytes();
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(k) = code[from..].find(start) {
            let i = from + k;
            from = i + start.len();
            let before = i.checked_sub(1).map(|j| b[j]);
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':') {
                continue;
            }
            let mut trees = Vec::new();
            tree(b, i, Vec::new(), &mut trees);
            for t in trees {
                let mut abs: Vec<String> = match t.first().map(String::as_str) {
                    Some("crate") => Vec::new(),
                    _ => own.to_vec(),
                };
                for seg in t {
                    match seg.as_str() {
                        "crate" | "self" => {}
                        "super" => {
                            abs.pop();
                        }
                        _ => abs.push(seg),
                    }
                }
                found.push(abs);
            }
        }
    }
    found
}

/// The files each file imports from (by module path, within its crate):
/// the longest module a named path starts with; its own module and its
/// ancestors (what a parent module hands on) do not count.
fn file_graph(
    files: &[(String, &'static str, Vec<String>, String)],
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, krate, own, code) in files {
        let modules: Vec<&(String, &str, Vec<String>, String)> =
            files.iter().filter(|f| f.1 == *krate).collect();
        let edges = graph.entry(name.clone()).or_default();
        for path in module_paths(code, own) {
            let target = modules
                .iter()
                .filter(|m| path.starts_with(&m.2))
                .max_by_key(|m| m.2.len());
            if let Some(m) = target {
                if !own.starts_with(&m.2) {
                    edges.insert(m.0.clone());
                }
            }
        }
    }
    graph
}

#[test]
fn no_cycle_between_files() {
    let files: Vec<_> = sources()
        .into_iter()
        .filter(|s| !is_test_file(&s.path))
        .map(|s| {
            let (krate, own) = module_of(&s.path);
            let name = s.path.strip_prefix(src()).unwrap().display().to_string();
            (name, krate, own, s.code)
        })
        .collect();
    let graph = file_graph(&files);
    // The check sees imports between files of one room.
    assert!(
        graph["login/enroll.rs"].contains("login/attempt.rs"),
        "{:?}",
        graph["login/enroll.rs"]
    );
    assert_eq!(cycle(&graph), None);
}

/// The file check finds a circle of two files, in a grouped and an inline
/// import, and lets a file use its parent module.
#[test]
fn the_file_check_catches_a_circle() {
    let file = |name: &str, krate, own: &[&str], code: &str| {
        let own = own.iter().map(|s| s.to_string()).collect();
        (name.to_owned(), krate, own, code_only(code))
    };
    let files = vec![
        file(
            "a/mod.rs",
            "lib",
            &["a"],
            "use self::x::X;\nmod x;\nmod y;\n",
        ),
        file(
            "a/x.rs",
            "lib",
            &["a", "x"],
            "use super::{y::{self, Y}, Face};\n",
        ),
        file(
            "a/y.rs",
            "lib",
            &["a", "y"],
            "fn f() { crate::a::x::g() }\n",
        ),
    ];
    let graph = file_graph(&files);
    assert!(graph["a/x.rs"].contains("a/y.rs"), "{graph:?}");
    assert!(graph["a/y.rs"].contains("a/x.rs"), "{graph:?}");
    assert!(!graph["a/x.rs"].contains("a/mod.rs"), "{graph:?}");
    assert!(cycle(&graph).is_some());
    let files = vec![
        file("a/mod.rs", "lib", &["a"], "use self::x::X;\n"),
        file(
            "a/x.rs",
            "lib",
            &["a", "x"],
            "use super::Face;\nuse crate::a::y::Y;\n",
        ),
        file("a/y.rs", "lib", &["a", "y"], "// crate::a::x\n"),
    ];
    assert_eq!(cycle(&file_graph(&files)), None);
}

#[test]
fn unsafe_lives_only_at_the_pam_edge() {
    let mut at_the_edge = 0;
    for s in sources() {
        let lines = unsafe_lines(&s.code);
        if s.room.as_deref() == Some("pam") {
            at_the_edge += lines.len();
        } else {
            assert!(
                lines.is_empty(),
                "unsafe in {}: {lines:?}",
                s.path.display()
            );
        }
    }
    assert!(at_the_edge > 0);
}

/// The TLS library (tls/) is a crate of its own, loaded by the module: its
/// `unsafe` is its C interface, `tls/src/ffi.rs`, and nowhere else.
#[test]
fn unsafe_in_the_tls_library_lives_only_in_its_c_interface() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tls/src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(!files.is_empty());
    let mut in_ffi = 0;
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let lines = unsafe_lines(&code_only(&text));
        assert!(
            text.lines().count() <= MAX_FILE_LINES,
            "{} is too long",
            path.display()
        );
        if path.ends_with("ffi.rs") {
            in_ffi += lines.len();
        } else {
            assert!(lines.is_empty(), "unsafe in {}: {lines:?}", path.display());
        }
    }
    assert!(in_ffi > 0);
}

#[test]
fn no_source_file_is_over_500_lines() {
    for s in sources() {
        let n = s.text.lines().count();
        assert!(
            n <= MAX_FILE_LINES,
            "{} has {n} lines (at most {MAX_FILE_LINES}: split it)",
            s.path.display()
        );
    }
}

#[test]
fn no_function_is_over_80_lines() {
    let mut long = Vec::new();
    for s in sources() {
        if is_test_file(&s.path) {
            continue;
        }
        for (name, line, n) in long_functions(&s.code, MAX_FN_LINES) {
            long.push(format!(
                "{}:{line}: fn {name} is {n} lines",
                s.path.display()
            ));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

/// The checks above catch what they are for: each rule broken on purpose
/// in a made-up file is found.
#[test]
fn the_checks_catch_violations() {
    // core importing an I/O room, and in a grouped import.
    let (_, bad) = arrows_of("core", &code_only("use crate::sys::open::open_checked;\n"));
    assert_eq!(bad.len(), 1, "{bad:?}");
    let (_, bad) = arrows_of(
        "core",
        &code_only("use crate::{state::Account, core::otp};\n"),
    );
    assert_eq!(bad, ["line 1: core imports state::Account"]);
    // Prose and strings are not imports.
    let (to, bad) = arrows_of(
        "core",
        &code_only("// see crate::sys\nlet s = \"crate::pam\";\n/* crate::login */\n"),
    );
    assert!(to.is_empty() && bad.is_empty(), "{to:?} {bad:?}");
    // The tool may not reach the edge but for the passwd enumeration.
    assert_eq!(arrows_of("cli", "use pam_totp::pam::handle;\n").1.len(), 1);
    assert!(arrows_of("cli", "pam_totp::pam::passwd::all_users()\n")
        .1
        .is_empty());
    assert!(
        arrows_of("cli", "use pam_totp::pam::notify::spawn_detached;\n")
            .1
            .is_empty()
    );
    // The edge may implement the fleet's TLS seam, and reach nothing else
    // of the state.
    assert!(arrows_of(
        "pam",
        "use crate::state::fleet::conn::tls::{TlsConnector, TlsSession};\n"
    )
    .1
    .is_empty());
    assert_eq!(
        arrows_of("pam", "use crate::state::local::LocalStore;\n")
            .1
            .len(),
        1
    );
    // A cycle of two rooms, and of three.
    let g = |edges: &[(&str, &str)]| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            m.entry(a.to_string()).or_default().insert(b.to_string());
        }
        m
    };
    assert!(cycle(&g(&[("state", "sys"), ("sys", "state")])).is_some());
    assert!(cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])).is_some());
    assert!(cycle(&g(&[
        ("login", "state"),
        ("state", "sys"),
        ("login", "sys")
    ]))
    .is_none());
    // unsafe in code, not in comments, strings or identifiers.
    let text = "// unsafe\nlet s = \"unsafe\";\n#![forbid(unsafe_code)]\nunsafe { f() }\n";
    assert_eq!(unsafe_lines(&code_only(text)), [4]);
    // A long function is found, a short one is not.
    let body = "    x();\n".repeat(MAX_FN_LINES);
    let long = format!("fn short() {{\n}}\n\npub(crate) fn long() {{\n{body}}}\n");
    let found = long_functions(&code_only(&long), MAX_FN_LINES);
    assert_eq!(found, [("long".to_owned(), 4, MAX_FN_LINES + 2)]);
}
