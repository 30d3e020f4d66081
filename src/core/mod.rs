//! The pure core: codes, typed input, scratch-code hashes, the policy, the
//! state model and the verification decision. No I/O and no `unsafe`:
//! time and state are passed in, so every rule here is unit-tested.
//! Imports nothing from the other rooms.
#![forbid(unsafe_code)]

pub mod code;
pub mod decision;
pub mod event;
pub mod hex;
pub mod logtext;
pub mod otp;
pub mod policy;
pub mod scratch;
pub mod toml_doc;
pub mod user_state;
