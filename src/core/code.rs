//! What the user typed, parsed once into a typed value: a [`Code`] (the
//! digits of the key's length) or a [`ScratchCode`] (eight digits). The
//! one rule of what "looks like a code" lives here; the login, the
//! decision and the readers of Google's files all ask it.
#![forbid(unsafe_code)]

use zeroize::Zeroizing;

/// Length of a scratch code.
pub const SCRATCH_DIGITS: usize = 8;

/// The input with its whitespace removed (people type `123 456`).
pub fn without_spaces(typed: &str) -> Zeroizing<String> {
    Zeroizing::new(typed.chars().filter(|c| !c.is_whitespace()).collect())
}

fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// A one-time code of `digits` ASCII digits, spaces removed; wiped on drop.
pub struct Code(Zeroizing<String>);

impl Code {
    /// `None` unless `typed`, without its spaces, is exactly `digits` digits.
    pub fn parse(typed: &str, digits: usize) -> Option<Code> {
        let s = without_spaces(typed);
        all_digits(&s, digits).then_some(Code(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A scratch code: [`SCRATCH_DIGITS`] ASCII digits, spaces removed; wiped
/// on drop.
pub struct ScratchCode(Zeroizing<String>);

impl ScratchCode {
    pub fn parse(typed: &str) -> Option<ScratchCode> {
        let s = without_spaces(typed);
        all_digits(&s, SCRATCH_DIGITS).then_some(ScratchCode(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `typed` (spaces removed) has the form of a scratch code.
pub fn looks_like_scratch_code(typed: &str) -> bool {
    ScratchCode::parse(typed).is_some()
}

/// Whether `typed` has the form of a code of `digits` digits or of a
/// scratch code (try_first_pass uses such an authtok as a first attempt).
pub fn looks_like_code(typed: &str, digits: usize) -> bool {
    Code::parse(typed, digits).is_some() || looks_like_scratch_code(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_digits_of_the_right_length_spaces_ignored() {
        assert_eq!(Code::parse("123 456", 6).unwrap().as_str(), "123456");
        assert!(Code::parse("12345", 6).is_none());
        assert!(Code::parse("12345a", 6).is_none());
        assert!(Code::parse("١٢٣٤٥٦", 6).is_none());
        assert_eq!(
            ScratchCode::parse("1234 5678").unwrap().as_str(),
            "12345678"
        );
        assert!(looks_like_code("12345678", 6));
        assert!(looks_like_code("123456", 6));
        assert!(!looks_like_code("hunter2", 6));
    }
}
