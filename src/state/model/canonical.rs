//! The state's text exactly as [`UserState::to_toml`] writes it, read
//! without the TOML parser.
//!
//! Every login reads a state, and nearly always one this module wrote: a
//! version-2 text in one fixed layout. Read by the `toml` crate, such a
//! text cost about 28,500 instructions per login; read here, about 5,000
//! (callgrind, docs/benchmarks.md).
//!
//! [`read`] takes nothing but that layout: the keys in the writer's order,
//! each on its own line, `key = value` with single spaces, integers in
//! plain decimal (no sign, no leading zero, no `_`), strings of printable
//! ASCII with nothing to escape, `[]` or items joined by `", "`, a blank
//! line before each `[[keys]]`. Anything else, a version-1 state or a
//! text edited by hand included, gives `None`, and the caller reads the
//! text with the TOML parser as before. So this is a shortcut, not a
//! second reader: whatever it accepts, the parser reads as the same
//! state (tests below, and the `state_file` fuzz target, compare the two).
#![forbid(unsafe_code)]

use super::{KeyState, UserState, STATE_VERSION};

/// The state in `body` (the text without its trailer line), if it is in
/// the writer's layout; `None` for anything else.
pub(super) fn read(body: &str) -> Option<UserState> {
    let mut lines = Lines(body);
    if lines.int("version")? != u64::from(STATE_VERSION) {
        return None;
    }
    let failures = lines.ints("failures")?;
    let failed_attempts = lines.int("failed_attempts")?;
    let used_scratch = lines.strings("used_scratch")?;
    let last_success = lines.optional_int("last_success")?;
    let mut keys = Vec::new();
    while !lines.0.is_empty() {
        lines.exact("")?;
        lines.exact("[[keys]]")?;
        keys.push(KeyState {
            id: lines.string("id")?,
            last_used: lines.int("last_used")?,
            last_step: lines.optional_int("last_step")?,
            hotp_next: lines.optional_int("hotp_next")?,
        });
    }
    Some(UserState {
        version: STATE_VERSION,
        failures,
        failed_attempts,
        used_scratch,
        last_success,
        keys,
    })
}

/// What is left of the text, read one whole line at a time.
struct Lines<'t>(&'t str);

impl<'t> Lines<'t> {
    /// The next line (without its newline); `None` at the end, or when the
    /// line has no newline.
    fn next(&mut self) -> Option<&'t str> {
        let (line, rest) = self.0.split_once('\n')?;
        self.0 = rest;
        Some(line)
    }

    fn exact(&mut self, want: &str) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// The value of the line `key = value`.
    fn value(&mut self, key: &str) -> Option<&'t str> {
        self.next()?.strip_prefix(key)?.strip_prefix(" = ")
    }

    fn int(&mut self, key: &str) -> Option<u64> {
        int(self.value(key)?)
    }

    /// `Some(None)` when the next line is not `key = ...`; `None` when it
    /// is, with a value this reader does not take.
    fn optional_int(&mut self, key: &str) -> Option<Option<u64>> {
        let line = self.0.split_once('\n').map_or(self.0, |(l, _)| l);
        if !line.starts_with(key) || !line[key.len()..].starts_with(" = ") {
            return Some(None);
        }
        self.int(key).map(Some)
    }

    fn string(&mut self, key: &str) -> Option<String> {
        string(self.value(key)?)
    }

    fn ints(&mut self, key: &str) -> Option<Vec<u64>> {
        items(self.value(key)?)?.map(int).collect()
    }

    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        items(self.value(key)?)?.map(string).collect()
    }
}

/// `0` or a decimal without leading zero that fits in a `u64`.
fn int(text: &str) -> Option<u64> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    if text.is_empty() || !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// `"..."` of printable ASCII without `"` or `\`: the writer escapes
/// nothing in it, and the parser decodes nothing.
fn string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let plain = inner
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    plain.then(|| inner.to_owned())
}

/// The items of `[a, b]` (none for `[]`).
fn items(text: &str) -> Option<impl Iterator<Item = &str>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let mut split = inner.split(", ");
    if inner.is_empty() {
        split.next();
    }
    Some(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser's reading, without this shortcut.
    fn parsed(body: &str) -> Option<UserState> {
        UserState::from_toml_by_parser(&format!("{body}{}", super::super::STATE_TRAILER)).ok()
    }

    fn body(state: &UserState) -> String {
        let text = state.to_toml().unwrap();
        text.strip_suffix(super::super::STATE_TRAILER)
            .unwrap()
            .to_owned()
    }

    fn states() -> Vec<UserState> {
        let key = |id: &str, step: Option<u64>, next: Option<u64>| KeyState {
            id: id.into(),
            last_used: 1_796_189_205,
            last_step: step,
            hotp_next: next,
        };
        vec![
            UserState::new(),
            UserState {
                version: STATE_VERSION,
                failures: vec![0, 1, u64::MAX],
                failed_attempts: 7,
                used_scratch: vec!["ab".into(), "0707".into(), " ~x!".into()],
                last_success: Some(1_796_189_205),
                keys: vec![
                    key("68c9280ee85f579e", Some(59_872_972), None),
                    key("", None, Some(u64::MAX)),
                    key("f1", Some(1), Some(0)),
                    key("f2", None, None),
                ],
            },
            UserState {
                last_success: Some(0),
                keys: vec![key("68c9280ee85f579e", Some(59_872_972), None)],
                ..UserState::new()
            },
        ]
    }

    #[test]
    fn what_the_writer_writes_is_read_here_as_the_parser_reads_it() {
        for st in states() {
            let b = body(&st);
            assert_eq!(read(&b), Some(st.clone()), "{b}");
            assert_eq!(parsed(&b), Some(st), "{b}");
        }
    }

    #[test]
    fn texts_this_reader_does_not_take_are_left_to_the_parser() {
        let mut escaped = UserState::new();
        escaped.used_scratch = vec!["q\"uote".into()];
        let mut unicode = UserState::new();
        unicode.keys = vec![KeyState {
            id: "漢字".into(),
            ..KeyState::default()
        }];
        for st in [escaped, unicode] {
            let b = body(&st);
            assert_eq!(read(&b), None, "{b}");
            assert_eq!(parsed(&b), Some(st));
        }
        for other in [
            // Version 1, other versions.
            "version = 1\nlast_step = 33333\n",
            "version = 3\nfailures = []\nfailed_attempts = 0\nused_scratch = []\n",
            // Valid TOML in another layout.
            "version = 2\n",
            "version=2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\n",
            "version = 2\nfailed_attempts = 0\nfailures = []\nused_scratch = []\n",
            "version = 2\nfailures = [1,2]\nfailed_attempts = 0\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = 1_0\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = +1\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = 0 # c\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = ['ab']\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\n\
             [[keys]]\nid = \"a\"\nlast_used = 1\n",
            // Not valid at all.
            "version = 2\nfailures = []\nfailed_attempts = 01\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = 18446744073709551616\nused_scratch = []\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\nlast_success = -1\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\nextra = 1\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\n\n[[keys]]\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []\n\n[[keys]]\nid = \"a\"\n",
            "version = 2\nfailures = []\nfailed_attempts = 0\nused_scratch = []",
        ] {
            assert_eq!(read(other), None, "{other}");
        }
    }

    /// Every text one byte away from a written one (each byte changed to
    /// each of a set of bytes, deleted, or doubled): whatever this reader
    /// takes of them, the parser reads as the same state.
    #[test]
    fn whatever_this_reader_takes_the_parser_reads_the_same() {
        let mut taken = 0;
        for st in states() {
            let b = body(&st).into_bytes();
            let mut variants: Vec<Vec<u8>> = Vec::new();
            for i in 0..b.len() {
                for &c in b"0179 ,=[]\"\\\n\t_+-ax#'" {
                    let mut v = b.clone();
                    v[i] = c;
                    variants.push(v);
                }
                let mut v = b.clone();
                v.remove(i);
                variants.push(v);
                let mut v = b.clone();
                v.insert(i, b[i]);
                variants.push(v);
            }
            for v in variants {
                let Ok(text) = String::from_utf8(v) else {
                    continue;
                };
                if let Some(fast) = read(&text) {
                    taken += 1;
                    assert_eq!(parsed(&text), Some(fast), "{text:?}");
                }
            }
        }
        // Changed digits and ids are still the writer's layout.
        assert!(taken > 100, "{taken}");
    }
}
