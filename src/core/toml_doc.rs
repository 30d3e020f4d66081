//! TOML in and out without serde: the `toml` crate's own parser
//! (`DeTable::parse`, the serde-free part of the crate) read through a
//! small typed reader, and a writer of the few fixed shapes the module
//! writes (the state's text, the secret file).
//!
//! The reader hands out a table's values by key, typed (a string, an
//! integer within a range, a boolean, an array of strings or integers, an
//! array of tables), refuses keys a table does not know (what serde's
//! `deny_unknown_fields` did) and says where, by the byte span of the key
//! or value, never with the value. [`crate::core::logtext::toml_problem`]
//! turns a [`DocError`] into the module's words. Duplicate keys are
//! refused by the parser itself.
//!
//! Secrets: the parsed document borrows its strings from the text, save a
//! string written with escapes, which the parser decodes into a buffer of
//! its own; [`Doc`] wipes those buffers when it is dropped, and
//! [`Table::secret`] copies a value straight into a wiped-on-drop string.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::{Range, RangeInclusive};

use toml::de::{DeTable, DeValue};
use toml::Spanned;
use zeroize::{Zeroize, Zeroizing};

/// What is wrong with a document, in the module's words (see
/// `logtext::toml_problem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not TOML at all.
    NotToml,
    /// A key the table does not know.
    UnknownKey,
    /// A key the table needs is not there (its name).
    Missing(&'static str),
    /// A value of the wrong TOML type (a string for an integer, ...).
    WrongType,
    /// The right type, out of range (a negative count, ...).
    Invalid,
    /// The same key twice.
    Duplicate,
}

impl Problem {
    /// The words of the log line (without the key).
    pub fn what(self) -> &'static str {
        match self {
            Problem::NotToml => "not valid TOML",
            Problem::UnknownKey => "unknown key",
            Problem::Missing(_) => "a key is missing",
            Problem::WrongType => "wrong type of value",
            Problem::Invalid => "invalid value",
            Problem::Duplicate => "duplicate key",
        }
    }
}

/// A problem and where it is: the byte span in the text, when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocError {
    pub problem: Problem,
    pub span: Option<Range<usize>>,
}

impl DocError {
    fn at(problem: Problem, span: Range<usize>) -> DocError {
        DocError {
            problem,
            span: Some(span),
        }
    }
}

/// A parsed document; any string the parser had to copy (to decode
/// escapes) is wiped when it is dropped.
pub struct Doc<'t> {
    root: Spanned<DeTable<'t>>,
}

impl<'t> Doc<'t> {
    /// Parses `text` (the parser refuses duplicate keys and tables).
    pub fn parse(text: &'t str) -> Result<Doc<'t>, DocError> {
        let root = DeTable::parse(text).map_err(|e| {
            let problem = if e.message().starts_with("duplicate key") {
                Problem::Duplicate
            } else {
                Problem::NotToml
            };
            DocError {
                problem,
                span: e.span(),
            }
        })?;
        Ok(Doc { root })
    }

    /// The top-level table.
    pub fn table(&self) -> Table<'_, 't> {
        Table {
            map: self.root.get_ref(),
        }
    }
}

impl Drop for Doc<'_> {
    fn drop(&mut self) {
        wipe_table(self.root.get_mut());
    }
}

fn wipe_table(t: &mut DeTable<'_>) {
    for (_, v) in t.iter_mut() {
        wipe_value(v.get_mut());
    }
}

fn wipe_value(v: &mut DeValue<'_>) {
    match v {
        DeValue::String(Cow::Owned(s)) => s.zeroize(),
        DeValue::Array(a) => a.iter_mut().for_each(|e| wipe_value(e.get_mut())),
        DeValue::Table(t) => wipe_table(t),
        _ => {}
    }
}

type Entry<'a, 't> = (&'a Spanned<Cow<'t, str>>, &'a Spanned<DeValue<'t>>);

/// One table of a document, read by key.
#[derive(Clone, Copy)]
pub struct Table<'a, 't> {
    map: &'a DeTable<'t>,
}

/// The keys only: a value may be a secret.
impl std::fmt::Debug for Table<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.map.keys().map(|k| k.get_ref()))
            .finish()
    }
}

impl<'a, 't> Table<'a, 't> {
    /// Refuses any key not in `known` (the first in the file).
    pub fn only(self, known: &[&str]) -> Result<Self, DocError> {
        let unknown = self
            .entries()
            .into_iter()
            .find(|(k, _)| !known.contains(&k.get_ref().as_ref()));
        match unknown {
            Some((k, _)) => Err(DocError::at(Problem::UnknownKey, k.span())),
            None => Ok(self),
        }
    }

    /// Every entry, in the order of the file.
    pub fn entries(self) -> Vec<Entry<'a, 't>> {
        let mut all: Vec<_> = self.map.iter().collect();
        all.sort_by_key(|(k, _)| k.span().start);
        all
    }

    /// The value of `key`, if there.
    pub fn get(self, key: &str) -> Option<&'a Spanned<DeValue<'t>>> {
        self.map.get(key)
    }

    /// A string.
    pub fn str(self, key: &str) -> Result<Option<&'a str>, DocError> {
        self.typed(key, |v| v.as_str().ok_or(Problem::WrongType))
    }

    /// A string that may be a secret: copied only into a buffer wiped on drop.
    pub fn secret(self, key: &str) -> Result<Option<Zeroizing<String>>, DocError> {
        self.typed(key, |v| {
            let s = v.as_str().ok_or(Problem::WrongType)?;
            let mut out = Zeroizing::new(String::with_capacity(s.len()));
            out.push_str(s);
            Ok(out)
        })
    }

    /// A non-negative integer within `range`.
    pub fn int(self, key: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, DocError> {
        self.typed(key, |v| int_of(v, &range))
    }

    /// A boolean.
    pub fn bool(self, key: &str) -> Result<Option<bool>, DocError> {
        self.typed(key, |v| v.as_bool().ok_or(Problem::WrongType))
    }

    /// An array of strings.
    pub fn strings(self, key: &str) -> Result<Option<Vec<String>>, DocError> {
        self.array(key, |v| {
            v.as_str().map(str::to_owned).ok_or(Problem::WrongType)
        })
    }

    /// An array of integers, each within `range`.
    pub fn ints(self, key: &str, range: RangeInclusive<u64>) -> Result<Option<Vec<u64>>, DocError> {
        self.array(key, |v| int_of(v, &range))
    }

    /// An array of tables (`[[key]]`).
    pub fn tables(self, key: &str) -> Result<Option<Vec<Table<'a, 't>>>, DocError> {
        self.array(key, |v| match v {
            DeValue::Table(map) => Ok(Table { map }),
            _ => Err(Problem::WrongType),
        })
    }

    fn array<T>(
        self,
        key: &str,
        each: impl Fn(&'a DeValue<'t>) -> Result<T, Problem>,
    ) -> Result<Option<Vec<T>>, DocError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Some(items) = value.get_ref().as_array() else {
            return Err(DocError::at(Problem::WrongType, value.span()));
        };
        items
            .iter()
            .map(|item| each(item.get_ref()).map_err(|p| DocError::at(p, item.span())))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn typed<T>(
        self,
        key: &str,
        read: impl FnOnce(&'a DeValue<'t>) -> Result<T, Problem>,
    ) -> Result<Option<T>, DocError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => read(v.get_ref())
                .map(Some)
                .map_err(|p| DocError::at(p, v.span())),
        }
    }
}

/// `value` as an integer within `range`: [`Problem::WrongType`] for
/// anything but an integer, [`Problem::Invalid`] out of range.
pub fn int_of(value: &DeValue<'_>, range: &RangeInclusive<u64>) -> Result<u64, Problem> {
    let n = value.as_integer().ok_or(Problem::WrongType)?;
    u64::from_str_radix(n.as_str(), n.radix())
        .ok()
        .filter(|n| range.contains(n))
        .ok_or(Problem::Invalid)
}

/// The value of a key a table needs: [`Problem::Missing`] when it is not there.
pub fn required<T>(value: Option<T>, key: &'static str) -> Result<T, DocError> {
    value.ok_or(DocError {
        problem: Problem::Missing(key),
        span: None,
    })
}

/// Appends `s` as a TOML basic string: in double quotes, with `\` and `"`
/// escaped and every control character written `\uXXXX`, so any string
/// reads back as itself.
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `key = "value"` and a newline.
pub fn push_str_line(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(" = ");
    push_quoted(out, value);
    out.push('\n');
}

/// Appends `key = n` and a newline.
pub fn push_int_line(out: &mut String, key: &str, n: u64) {
    let _ = writeln!(out, "{key} = {n}");
}

/// Appends `key = [a, b]` of strings and a newline.
pub fn push_strings_line<S: AsRef<str>>(out: &mut String, key: &str, items: &[S]) {
    out.push_str(key);
    out.push_str(" = [");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_quoted(out, s.as_ref());
    }
    out.push_str("]\n");
}

/// Appends `key = [1, 2]` and a newline.
pub fn push_ints_line(out: &mut String, key: &str, items: &[u64]) {
    out.push_str(key);
    out.push_str(" = [");
    for (i, n) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{n}");
    }
    out.push_str("]\n");
}

#[cfg(test)]
mod tests;
