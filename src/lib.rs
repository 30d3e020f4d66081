//! pam-totp: a TOTP second factor for Linux logins.
//!
//! The crate builds the PAM module (`pam_totp.so`, the cdylib) and the
//! library the `pam-totp` tool (`src/cli/`, behind the `cli` feature) uses.
//!
//! # Rooms
//!
//! Each folder is a room; imports only point down this list's arrows
//! (`tests/architecture.rs` checks it, and that no two rooms, nor two
//! files, import each other):
//!
//! - [`core`]: pure. Codes and their typed input, scratch-code hashes, the
//!   policy (window, rate limit), the state model, TOML read typed and
//!   written without serde (`core::toml_doc`), the verification decision
//!   and the `notify=` events as JSON. No I/O, no `unsafe`; time and state
//!   are passed in. Imports nothing of ours.
//! - [`sys`]: the operating system, in safe code. The one
//!   [`open_checked`](sys::open::open_checked), the filesystem-identity
//!   guard, user and group lookups, atomic writes, running
//!   `secret_command=`, preparing a `notify=` hook, who holds a lock (for
//!   the tool's messages). Imports nothing of ours.
//! - [`secret`] → core, sys: what a secret file is (the enrollment it
//!   describes; native and Google formats, either read by `secret::file`),
//!   sealing to the host key, the otpauth URI; a new
//!   enrollment made, drawn as a QR code and saved (the tool's and the
//!   enrollment at login's alike).
//! - [`state`] → core, sys: what a login remembers, and the
//!   [`StateStore`](state::StateStore) seam it is kept behind (the local
//!   state directory, its file of two checksummed slots; the fleet
//!   transport to Redis/Valkey, speaking RESP2 through our own codec,
//!   `state::fleet::resp`, and whose TLS sessions come through a seam,
//!   `state::fleet::conn::tls`).
//! - [`config`] → core, sys: module arguments and config.toml.
//! - [`login`] → core, secret, state, sys, config: one login as a pipeline,
//!   the enrollment at login, the events for `notify=`.
//! - `pam` → login, sys: the FFI edge, every `unsafe` of the crate (also
//!   the child sides of a fork: `secret_command=`, the `notify=` supervisor;
//!   and the TLS library loaded with `dlopen` for `rediss://`, the one
//!   piece of the state it implements).
//!
//! TLS itself is not in this crate: `tls/` builds `libpam_totp_tls.so`,
//! which the module loads beside itself only for a `rediss://` state
//! server, and which the tool links in.
//!
//! # The flow of a login
//!
//! pam args → settings ([`config::from_args`]) → standing (the user, the
//! group rules, nullok) → secret (the file read through `sys`, parsed and
//! unsealed by `secret`; a user without a secret file meets nullok,
//! `enroll_by` and `enroll_at_login` in `login::rollout`) → input
//! (authtok or prompt, before any lock) →
//! decision ([`core::decision`]) under the account's lock
//! ([`StateStore::update`](state::StateStore::update)) → one audit line,
//! mapped with the verdict in one place (`login::error`) → the events, if
//! any, to the `notify=` hook, detached, once the verdict is in.
//!
//! `docs/architecture.md` draws the login and enrollment paths and where
//! each invariant (constant-time compare, zeroizing, lock before read,
//! fail-closed mapping) is enforced.
#![deny(unsafe_code)]

pub mod config;
pub mod core;
pub mod login;
pub mod secret;
pub mod state;
pub mod sys;

#[allow(unsafe_code)]
pub mod pam;
