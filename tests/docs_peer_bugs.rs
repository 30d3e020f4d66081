//! docs/peer-bugs.md names, for each past bug of a peer module, the tests
//! that show it cannot happen here. Every test it names must exist, so a
//! renamed or deleted test cannot leave the page pointing at nothing.

use std::fs;
use std::path::Path;

/// Backticked words of a line outside parentheses (notes):
/// "`a`, `b c` (with `x`)" -> ["a", "b c"].
fn backticked(line: &str) -> Vec<String> {
    let mut depth = 0;
    let outside: String = line
        .chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => return depth == 0,
            }
            false
        })
        .collect();
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn every_test_named_in_peer_bugs_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("docs/peer-bugs.md")).unwrap();
    let mut named = 0;
    for line in doc.lines().filter(|l| l.starts_with("- ")) {
        // "- `tests/FILE.rs`: `test_a`, `test_b` (a note)"
        let words = backticked(line);
        if let Some(file) = words.first().filter(|w| w.starts_with("tests/")) {
            let file = file.as_str();
            let text = fs::read_to_string(root.join(file))
                .unwrap_or_else(|e| panic!("{file}, named in docs/peer-bugs.md: {e}"));
            let tests: Vec<&String> = words[1..].iter().filter(|w| is_ident(w)).collect();
            assert!(!tests.is_empty(), "no test named after {file}: {line}");
            for t in tests {
                let defined = text
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("fn {t}(")));
                let marked = text.contains(&format!("#[test]\nfn {t}("));
                assert!(
                    defined && marked,
                    "{file} has no test {t} (docs/peer-bugs.md)"
                );
                named += 1;
            }
        }
        // "- fuzz/fuzz_targets/NAME.rs: ..."
        if let Some(path) = line.strip_prefix("- ").and_then(|l| l.split(':').next()) {
            if path.starts_with("fuzz/") {
                assert!(
                    root.join(path).is_file(),
                    "{path} (docs/peer-bugs.md) is missing"
                );
            }
        }
    }
    assert!(
        named >= 30,
        "only {named} tests named: is the format still parsed?"
    );
}
