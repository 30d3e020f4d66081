//! The module's binary interface: it exports the six `pam_sm_*` hooks and
//! nothing else; they can be found with dlopen/dlsym as libpam does; all
//! unsafe code sits in src/pam/ (the FFI edge), each block with a `// SAFETY:` comment.
//!
//! Issue 2, "Must work" 10 (and 8: pam_sm_setcred returns PAM_SUCCESS).

mod common;
use common::*;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const HOOKS: [&str; 6] = [
    "pam_sm_acct_mgmt",
    "pam_sm_authenticate",
    "pam_sm_chauthtok",
    "pam_sm_close_session",
    "pam_sm_open_session",
    "pam_sm_setcred",
];

/// The dynamic symbols a shared object defines, sorted.
fn exported(so: &Path) -> Vec<String> {
    let out = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(so));
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[test]
fn only_the_pam_sm_hooks_are_exported() {
    assert_eq!(exported(&module_so()), HOOKS);
}

/// The TLS library the module loads for `rediss://` exports its C
/// interface (tls/src/ffi.rs) and nothing else, and the module carries no
/// TLS of its own.
#[test]
fn the_tls_library_exports_only_its_interface_and_the_module_no_tls() {
    assert_eq!(
        exported(&tls_library_so()),
        [
            "pam_totp_tls_abi",
            "pam_totp_tls_error",
            "pam_totp_tls_free",
            "pam_totp_tls_give_input",
            "pam_totp_tls_is_handshaking",
            "pam_totp_tls_new",
            "pam_totp_tls_read_plain",
            "pam_totp_tls_take_output",
            "pam_totp_tls_wants_write",
            "pam_totp_tls_write_plain",
        ]
    );
    let module = fs::read(module_so()).unwrap();
    assert!(!module.windows(6).any(|w| w == b"rustls"));
    let tls = fs::read(tls_library_so()).unwrap();
    assert!(tls.windows(6).any(|w| w == b"rustls"));
}

/// Whether `so` carries code of the crate `name` (its directory as
/// `name-` in a source path, in a panic location, or its items in a
/// symbol: `_ZN` then the name's length and the name, or `name..` inside
/// a generic's path).
fn carries_crate(so: &[u8], name: &str) -> bool {
    let has = |needle: &str| so.windows(needle.len()).any(|w| w == needle.as_bytes());
    has(&format!("/{name}-"))
        || has(&format!("_ZN{}{name}", name.len()))
        || has(&format!("{name}.."))
}

/// The module speaks RESP with its own codec (src/state/fleet/resp.rs):
/// the redis crate and its parser combinators do not come back into it.
#[test]
fn the_module_carries_no_redis_crate() {
    let module = fs::read(module_so()).unwrap();
    // The check sees a crate that is linked (qrcode draws the QR code).
    assert!(carries_crate(&module, "qrcode"));
    for name in ["redis", "combine", "xxhash_rust", "xxhash-rust"] {
        assert!(!carries_crate(&module, name), "the module carries {name}");
    }
}

/// The crates `cargo tree` lists for the package with `features` (one
/// name a line), offline and from Cargo.lock.
fn linked_crates(features: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run_ok(
        Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["tree", "-p", "pam-totp", "-e", "normal", "--prefix", "none"])
            .args(["--offline", "--locked"])
            .args(features),
    )
}

/// The module reads and writes TOML through the `toml` crate's own parser
/// and its own writer (src/core/toml_doc.rs), without serde (issue 17:
/// smaller, faster to load): serde serves only the tool's `--json`, so
/// what the module links has no serde crate. (The module built here for
/// the tests does: the tests' own `toml` with serde unifies features into
/// it, so the check is on what a build of the module alone links.)
/// `serde_spanned` stays: the `toml` crate needs its `Spanned` type
/// whatever its features; without serde_core (checked here) it is that
/// type alone.
#[test]
fn the_module_links_no_serde() {
    let out = linked_crates(&["--no-default-features"]);
    let crates: Vec<&str> = out.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains(&"toml"), "{out}");
    let serde: Vec<&&str> = crates
        .iter()
        .filter(|c| c.starts_with("serde") && **c != "serde_spanned")
        .collect();
    assert!(serde.is_empty(), "{serde:?} in\n{out}");
    // The tool still has it (its --json), so the check above would see it.
    let tool = linked_crates(&[]);
    assert!(tool.lines().any(|l| l.starts_with("serde ")), "{tool}");
}

#[test]
fn the_stack_is_not_executable() {
    let out = run_ok(Command::new("readelf").args(["-lW"]).arg(module_so()));
    let stack = out
        .lines()
        .find(|l| l.contains("GNU_STACK"))
        .expect("a GNU_STACK header");
    assert!(stack.contains("RW ") && !stack.contains("RWE"), "{stack}");
}

type Hook = unsafe extern "C" fn(*mut c_void, c_int, c_int, *const *const c_char) -> c_int;

#[link(name = "dl")]
extern "C" {}

/// dlopen()s the module as libpam does (RTLD_NOW); the handle is kept for
/// the life of the test process.
fn dlopen_module() -> *mut c_void {
    let path = CString::new(module_so().to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; loading the module runs no code
    // of ours beyond Rust's static initialisation.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        // SAFETY: dlerror returns null or a NUL-terminated message.
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() {
            String::new()
        } else {
            // SAFETY: non-null, NUL-terminated (see above).
            unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned()
        };
        panic!("dlopen: {msg}");
    }
    h
}

fn dlsym(h: *mut c_void, name: &str) -> *mut c_void {
    let c = CString::new(name).unwrap();
    // SAFETY: a live handle from dlopen and a NUL-terminated name.
    unsafe { libc::dlsym(h, c.as_ptr()) }
}

#[test]
fn dlopen_finds_the_six_hooks_and_nothing_else() {
    let h = dlopen_module();
    for hook in HOOKS {
        assert!(!dlsym(h, hook).is_null(), "{hook} not found");
    }
    for private in [
        "authenticate",
        "collect_args",
        "guarded",
        "take_response",
        "rust_eh_personality",
        "__rust_alloc",
        "main",
    ] {
        assert!(dlsym(h, private).is_null(), "{private} is visible");
    }
}

#[test]
fn the_hooks_that_have_no_say_answer_without_touching_their_arguments() {
    let h = dlopen_module();
    for (name, want) in [
        ("pam_sm_setcred", 0),
        ("pam_sm_acct_mgmt", 25),
        ("pam_sm_open_session", 25),
        ("pam_sm_close_session", 25),
        ("pam_sm_chauthtok", 25),
    ] {
        let sym = dlsym(h, name);
        assert!(!sym.is_null());
        // SAFETY: the symbol is the module's hook of this signature; these
        // hooks do not look at their arguments (checked by this test: null
        // handle and argv).
        let rc = unsafe {
            let hook: Hook = std::mem::transmute::<*mut c_void, Hook>(sym);
            hook(std::ptr::null_mut(), 0, 0, std::ptr::null())
        };
        assert_eq!(rc, want, "{name}");
    }
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

/// The lines (1-based) on which the keyword `unsafe` appears in Rust
/// source: comments, string and character literals are skipped, and
/// `unsafe_code` and the like are other identifiers.
fn unsafe_lines(text: &str) -> Vec<usize> {
    let c: Vec<char> = text.chars().collect();
    let mut line = 1;
    let mut found = Vec::new();
    let mut i = 0;
    let at = |i: usize, s: &str| s.chars().enumerate().all(|(k, x)| c.get(i + k) == Some(&x));
    let ident = |x: char| x.is_alphanumeric() || x == '_';
    // Skips from `i` to just past `end`, counting lines.
    let skip_to = |i: &mut usize, line: &mut usize, end: &str, escapes: bool| {
        while *i < c.len() && !at(*i, end) {
            if escapes && c[*i] == '\\' {
                *i += 1;
            }
            if c.get(*i) == Some(&'\n') {
                *line += 1;
            }
            *i += 1;
        }
        *i += end.chars().count();
    };
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if at(i, "//") {
            skip_to(&mut i, &mut line, "\n", false);
            line += 1;
        } else if at(i, "/*") {
            i += 2;
            skip_to(&mut i, &mut line, "*/", false);
        } else if !prev_ident && (at(i, "r\"") || at(i, "r#")) {
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            i += 2 + hashes;
            let end = format!("\"{}", "#".repeat(hashes));
            skip_to(&mut i, &mut line, &end, false);
        } else if c[i] == '"' {
            i += 1;
            skip_to(&mut i, &mut line, "\"", true);
        } else if c[i] == '\'' && (c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'')) {
            i += 1;
            skip_to(&mut i, &mut line, "'", true);
        } else if ident(c[i]) && !prev_ident {
            let start = i;
            while i < c.len() && ident(c[i]) {
                i += 1;
            }
            if c[start..i].iter().collect::<String>() == "unsafe" {
                found.push(line);
            }
        } else {
            if c[i] == '\n' {
                line += 1;
            }
            i += 1;
        }
    }
    found
}

#[test]
fn the_unsafe_finder_sees_code_not_prose() {
    let text = "// unsafe\nlet s = \"unsafe\";\nlet r = r#\"un\"safe\"#;\n\
                #![forbid(unsafe_code)]\nlet c = '\"'; /* unsafe */\nunsafe { f() }\n";
    assert_eq!(unsafe_lines(text), [6]);
}

#[test]
fn unsafe_code_lives_only_in_src_pam() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "{files:?}");
    let pam = src.join("pam");
    let mut at_the_edge = 0;
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let lines = unsafe_lines(&text);
        if f.starts_with(&pam) {
            at_the_edge += lines.len();
        } else {
            assert!(
                lines.is_empty(),
                "unsafe in {}: lines {lines:?}",
                f.display()
            );
        }
    }
    assert!(at_the_edge > 0, "src/pam/ is the FFI edge");
    // And the compiler holds the library to it.
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"), "lib.rs");
    assert_eq!(lib.matches("#[allow(unsafe_code)]").count(), 1, "lib.rs");
    assert!(
        lib.contains("#[allow(unsafe_code)]\npub mod pam;"),
        "lib.rs"
    );
}

#[test]
fn every_unsafe_block_in_src_pam_says_why_it_is_sound() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pam");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let mut blocks = 0;
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let code = l.split("//").next().unwrap_or("");
            if !code.contains("unsafe {") {
                continue;
            }
            blocks += 1;
            // The comment is on the lines just above (the statement may start
            // a line or two earlier, e.g. `let x =` then `unsafe {`).
            let above = lines[i.saturating_sub(8)..i].join("\n");
            assert!(
                above.contains("// SAFETY:"),
                "{}:{}: unsafe block without a SAFETY comment",
                f.display(),
                i + 1
            );
        }
    }
    assert!(blocks > 0);
}
