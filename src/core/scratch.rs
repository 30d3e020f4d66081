//! Scratch codes: single-use 8-digit recovery codes.
//!
//! Only a salted PBKDF2-HMAC-SHA256 hash of each code is stored, in the form
//! `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`. The salt doubles as the
//! code's identifier in the state file, so the state can record a used code
//! without holding anything that would let someone recompute it.
#![forbid(unsafe_code)]

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::core::code::SCRATCH_DIGITS;
use crate::core::hex::{hex_decode, hex_encode};

/// PBKDF2 iterations for new hashes. A scratch code has only 27 bits, so the
/// hash mainly slows down whoever copied the file; checking five codes at a
/// login costs a few milliseconds.
pub const ITERATIONS: u32 = 10_000;
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;
const PREFIX: &str = "pbkdf2-sha256";
/// Bounds on stored iteration counts, so a hostile file cannot make a login spin.
const MAX_ITERATIONS: u32 = 1_000_000;

/// A stored scratch-code hash, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct ScratchHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_BYTES],
}

impl fmt::Debug for ScratchHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScratchHash({})", self.id())
    }
}

/// A stored hash that is not of the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadScratchHash;

impl fmt::Display for BadScratchHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a scratch code is not of the form {PREFIX}$ITERATIONS$SALT$HASH"
        )
    }
}

impl ScratchHash {
    /// Hashes `code` with `salt` (which should be 16 random bytes).
    pub fn new(code: &str, salt: [u8; SALT_BYTES]) -> ScratchHash {
        ScratchHash {
            iterations: ITERATIONS,
            hash: derive(code, &salt, ITERATIONS),
            salt: salt.to_vec(),
        }
    }

    /// Wraps a scratch code that a file stores in plain text (Google
    /// Authenticator files do). Hashing it slowly would protect nothing, so
    /// one iteration is used; the salt is keyed with the user's secret, so
    /// the identifier recorded in the state reveals nothing without it.
    pub fn from_plain(code: &str, secret: &[u8]) -> ScratchHash {
        let salt = plain_salt(code, secret);
        ScratchHash {
            iterations: 1,
            hash: derive(code, &salt, 1),
            salt: salt.to_vec(),
        }
    }

    /// A plain scratch code being imported into a native file: the slow
    /// hash of [`new`](Self::new), salted with the salt, hence the
    /// identifier, that [`from_plain`](Self::from_plain) gives it. A code
    /// used while the plain file was read in place is recorded in the state
    /// under that identifier, so it stays used after the import.
    ///
    /// The salt is a MAC of the code under the secret: it tells nothing to
    /// whoever lacks the secret, and whoever has it can make codes anyway.
    pub fn import_plain(code: &str, secret: &[u8]) -> ScratchHash {
        ScratchHash::new(code, plain_salt(code, secret))
    }

    pub fn parse(s: &str) -> Result<ScratchHash, BadScratchHash> {
        let mut parts = s.split('$');
        let (Some(PREFIX), Some(iter), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(BadScratchHash);
        };
        let iterations: u32 = iter.parse().map_err(|_| BadScratchHash)?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(BadScratchHash);
        }
        let salt = hex_decode(salt).ok_or(BadScratchHash)?;
        if salt.len() < 8 || salt.len() > 64 {
            return Err(BadScratchHash);
        }
        let hash: [u8; HASH_BYTES] = hex_decode(hash)
            .and_then(|h| h.try_into().ok())
            .ok_or(BadScratchHash)?;
        Ok(ScratchHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `code` is the code this hash was made from (constant time in
    /// the comparison; the derivation cost does not depend on the code).
    pub fn matches(&self, code: &str) -> bool {
        let derived = derive(code, &self.salt, self.iterations);
        bool::from(derived.ct_eq(&self.hash))
    }

    /// The identifier recorded in the state once this code is used.
    pub fn id(&self) -> String {
        hex_encode(&self.salt)
    }
}

impl fmt::Display for ScratchHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}${}${}${}",
            self.iterations,
            hex_encode(&self.salt),
            hex_encode(&self.hash)
        )
    }
}

/// Turns 32 random bytes into a scratch code. Rejection sampling keeps the
/// digits uniform: bytes of 250 and above are skipped.
pub fn code_from_random(bytes: [u8; 32]) -> Zeroizing<String> {
    let mut code = Zeroizing::new(String::with_capacity(SCRATCH_DIGITS));
    for b in bytes.iter().filter(|&&b| b < 250) {
        if code.len() == SCRATCH_DIGITS {
            break;
        }
        code.push(char::from(b'0' + b % 10));
    }
    // 32 bytes with fewer than 8 below 250 has probability ~1e-30; pad so the
    // function is total rather than panicking.
    while code.len() < SCRATCH_DIGITS {
        code.push('0');
    }
    code
}

/// The salt of a plain scratch code: keyed with the user's secret, so the
/// identifier recorded in the state reveals nothing without it.
fn plain_salt(code: &str, secret: &[u8]) -> [u8; SALT_BYTES] {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"pam-totp plain scratch code\0");
    mac.update(code.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut salt = [0u8; SALT_BYTES];
    salt.copy_from_slice(&tag[..SALT_BYTES]);
    salt
}

fn derive(code: &str, salt: &[u8], iterations: u32) -> [u8; HASH_BYTES] {
    let mut out = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(code.as_bytes(), salt, iterations, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::code::looks_like_scratch_code;

    #[test]
    fn hash_round_trip() {
        let h = ScratchHash::new("12345678", [7; 16]);
        let parsed = ScratchHash::parse(&h.to_string()).unwrap();
        assert_eq!(parsed, h);
        assert!(parsed.matches("12345678"));
        assert!(!parsed.matches("12345679"));
        assert_eq!(parsed.id(), "07".repeat(16));
    }

    #[test]
    fn plain_codes_get_stable_ids() {
        let a = ScratchHash::from_plain("12345678", b"secret-one");
        assert!(a.matches("12345678"));
        assert!(!a.matches("12345679"));
        assert_eq!(
            a.id(),
            ScratchHash::from_plain("12345678", b"secret-one").id()
        );
        assert_ne!(
            a.id(),
            ScratchHash::from_plain("12345678", b"secret-two").id()
        );
    }

    #[test]
    fn imported_plain_codes_keep_their_ids_and_get_the_slow_hash() {
        let plain = ScratchHash::from_plain("12345678", b"secret-one");
        let imported = ScratchHash::import_plain("12345678", b"secret-one");
        assert_eq!(imported.id(), plain.id());
        assert!(imported.matches("12345678"));
        assert!(!imported.matches("12345679"));
        assert_eq!(imported.iterations, ITERATIONS);
        let parsed = ScratchHash::parse(&imported.to_string()).unwrap();
        assert_eq!(parsed, imported);
    }

    #[test]
    fn malformed_hashes_are_rejected() {
        for bad in [
            "",
            "12345678",
            "pbkdf2-sha256$10000$0707$",
            "pbkdf2-sha256$0$07070707070707070707$00",
            "pbkdf2-sha256$99999999$0707070707070707$00",
            "md5$1$0707070707070707$00",
            "pbkdf2-sha256$10$0707070707070707$zz",
        ] {
            assert_eq!(ScratchHash::parse(bad), Err(BadScratchHash), "{bad}");
        }
    }

    #[test]
    fn codes_are_eight_digits() {
        let code = code_from_random([255; 32]);
        assert!(looks_like_scratch_code(&code));
        let code = code_from_random([13; 32]);
        assert_eq!(code.as_str(), "33333333");
    }
}
