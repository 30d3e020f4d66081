//! Fleet state: the per-account state shared by many hosts on a Redis or
//! Valkey server (`state=URL`), so a code, a scratch code and the rate
//! limit count once across the fleet.
//!
//! This module is the transport, bottom up:
//!
//! - [`url`]: the `state=` URL, parsed once into a typed value;
//! - [`credentials`]: the `state_credentials=` file (root-owned, 0600);
//! - [`resp`]: the wire protocol (RESP2), commands encoded and replies
//!   parsed, pure and bounded;
//! - [`conn`]: one connection (TCP, Unix socket or TLS with rustls), every
//!   connect, read and write bounded by `state_timeout=`;
//! - [`store`]: the atomic read-decide-write on one key
//!   ([`Store::update`]), plus `get` and `del`.
//!
//! Above it, the account state on the server:
//!
//! - [`settings`]: the `state*=` module arguments and config.toml keys;
//! - [`state_store`]: [`FleetStore`], an account's state read, decided and
//!   written atomically;
//! - [`merge`]: the join of a host's outage-time local state into the
//!   server's;
//! - [`seam`]: [`FleetStateStore`], the fleet as a
//!   [`crate::state::StateStore`], with the `state_unavailable=` fallback
//!   and the pending merge.
//!
//! No secret, code or scratch code passes through here: callers store only
//! what the local state file holds.

pub mod conn;
pub mod credentials;
pub mod merge;
pub mod resp;
pub mod seam;
pub mod settings;
pub mod state_store;
pub mod store;
pub mod url;

pub use conn::{ConnError, SYSTEM_CA_BUNDLE};
pub use credentials::{Credentials, CredentialsError};
pub use seam::FleetStateStore;
pub use settings::{FleetSettings, SettingError, SetupError, Unavailable};
pub use state_store::{FleetError, FleetStore};
pub use store::{
    Decision, Store, StoreConfig, StoreError, UpdateError, Updated, DEFAULT_PREFIX, DEFAULT_TIMEOUT,
};
pub use url::{StateUrl, UrlError};
