//! What a secret file is: the enrollment it describes, in the native
//! format or Google Authenticator's, a secret sealed to the host key, and
//! the otpauth URI authenticator apps scan. Formats and crypto; the only
//! file it reads itself is the host key (through `crate::sys::open`).
#![forbid(unsafe_code)]

pub mod enrollment;
pub mod file;
pub mod fresh;
pub mod google;
pub mod native;
pub mod otpauth;
pub mod qr;
pub mod seal;
pub mod store;
