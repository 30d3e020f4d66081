//! What the user typed: from PAM_AUTHTOK or a prompt, and (forward_pass)
//! the ways to split it into a password and a code.
#![forbid(unsafe_code)]

use zeroize::Zeroizing;

use crate::config::{FirstPass, Settings};
use crate::core::code::SCRATCH_DIGITS;

use super::PamIo;

/// One way to read what the user typed: the code, and (forward_pass) the
/// password in front of it.
pub(crate) struct Candidate {
    pub(crate) code: Zeroizing<String>,
    pub(crate) password: Zeroizing<String>,
    pub(crate) scratch: bool,
}

pub(crate) struct Input {
    pub(crate) candidates: Vec<Candidate>,
}

/// The input read one way only: `code`, with no password in front.
pub(crate) fn only(code: Zeroizing<String>) -> Input {
    Input {
        candidates: vec![Candidate {
            code,
            password: Zeroizing::new(String::new()),
            scratch: false,
        }],
    }
}

/// Gets the code: from PAM_AUTHTOK (use_first_pass) or a prompt. For
/// try_first_pass the authtok has had its own attempt already; this is
/// the prompt that follows it.
pub(crate) fn read_code(io: &mut dyn PamIo, settings: &Settings, digits: usize) -> Option<Input> {
    if settings.first_pass == FirstPass::Use {
        return io.authtok().map(only);
    }
    let typed = io.prompt(settings.prompt(), settings.echo_code)?;
    if !settings.forward_pass {
        return Some(only(typed));
    }
    // password + code in one answer: the code is the last `digits`
    // characters, or the last eight for a scratch code.
    let mut candidates = Vec::new();
    for (len, scratch) in [(digits, false), (SCRATCH_DIGITS, true)] {
        if scratch && len == digits {
            continue;
        }
        let Some(split) = typed.len().checked_sub(len) else {
            continue;
        };
        if !typed.is_char_boundary(split) {
            continue;
        }
        candidates.push(Candidate {
            code: Zeroizing::new(typed[split..].to_owned()),
            password: Zeroizing::new(typed[..split].to_owned()),
            scratch,
        });
    }
    if candidates.is_empty() {
        candidates.push(Candidate {
            code: Zeroizing::new(String::new()),
            password: typed,
            scratch: false,
        });
    }
    Some(Input { candidates })
}
