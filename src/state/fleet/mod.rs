//! Fleet state: the per-account state shared by many hosts on a Redis or
//! Valkey server (`state=URL`), so a code, a scratch code and the rate
//! limit count once across the fleet.
//!
//! This module is the transport, bottom up:
//!
//! - [`url`]: the `state=` URL, parsed once into a typed value;
//! - [`credentials`]: the `state_credentials=` file (root-owned, 0600);
//! - [`conn`]: one connection (TCP, Unix socket or TLS with rustls), every
//!   connect, read and write bounded by `state_timeout=`;
//! - [`store`]: the atomic read-decide-write on one key
//!   ([`Store::update`]), plus `get` and `del`.
//!
//! No secret, code or scratch code passes through here: callers store only
//! what the local state file holds.

pub mod conn;
pub mod credentials;
pub mod store;
pub mod url;

pub use conn::{ConnError, SYSTEM_CA_BUNDLE};
pub use credentials::{Credentials, CredentialsError};
pub use store::{
    Decision, Store, StoreConfig, StoreError, UpdateError, Updated, DEFAULT_PREFIX, DEFAULT_TIMEOUT,
};
pub use url::{StateUrl, UrlError};
