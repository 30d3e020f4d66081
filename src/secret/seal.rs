//! Sealed secrets: a secret encrypted to the host's public key, so that
//! only root (who can read the host's private key) can open it.
//!
//! The construction is libsodium's sealed box (X25519 + XSalsa20-Poly1305,
//! RustCrypto's `crypto_box`): anyone with `host.pub` can seal, only the
//! holder of `host.key` can open, and any change to the sealed value makes
//! opening fail. The plaintext starts with a label and the user's name, so
//! a sealed value copied into another user's file does not open.
//!
//! Formats (text, one line each):
//! - `host.key`: `PAM-TOTP-HOST-KEY-1 <64 hex digits>` (root, 0600)
//! - `host.pub`: `PAM-TOTP-HOST-PUB-1 <64 hex digits>` (0644)
//! - a sealed secret: `v1:<key id, 16 hex>:<sealed box, hex>`; the key id
//!   (the start of SHA-256 of the public key) says which host key opens it,
//!   so files sealed before a rotation still open with the old key.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use blake2::digest::consts::U24;
use blake2::{Blake2b, Digest as _};
use crypto_box::aead::{Aead, OsRng};
use crypto_box::{PublicKey, SalsaBox, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::core::hex::{hex_decode, hex_encode};
use crate::sys::open::{open_checked, Broken, OpenError, Owner, Rules};

const KEY_TAG: &str = "PAM-TOTP-HOST-KEY-1";
const PUB_TAG: &str = "PAM-TOTP-HOST-PUB-1";
const SEALED_PREFIX: &str = "v1";
const LABEL: &[u8] = b"pam-totp sealed secret v1\0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// A key file is missing, unsafe or malformed.
    Key {
        path: PathBuf,
        why: KeyProblem,
    },
    /// The sealed value is not of the form `v1:ID:HEX`.
    Malformed,
    /// No available host key has this id (sealed to another host, or to a
    /// key that has been rotated away).
    UnknownKey(String),
    /// Decryption failed: the value was changed, or sealed for another key.
    Tampered,
    /// It opened, but it was sealed for another user.
    WrongUser,
    Random,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Key { path, why } => write!(f, "host key {}: {why}", path.display()),
            SealError::Malformed => f.write_str("sealed secret is malformed"),
            SealError::UnknownKey(id) => write!(
                f,
                "sealed secret is for host key {id}, which this host does not have"
            ),
            SealError::Tampered => {
                f.write_str("sealed secret does not open: it was altered or sealed for another key")
            }
            SealError::WrongUser => f.write_str("sealed secret belongs to another user"),
            SealError::Random => f.write_str("the system random source failed"),
        }
    }
}

impl std::error::Error for SealError {}

/// What is wrong with a host key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Missing,
    /// Not a regular file owned by root with mode 0600: what it is.
    Unsafe {
        uid: u32,
        mode: u32,
    },
    /// A symbolic link, or reading failed (the reason).
    Unreadable(String),
    Malformed,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Missing => f.write_str("does not exist"),
            KeyProblem::Unsafe { uid, mode } => write!(
                f,
                "must be a regular file owned by root with mode 0600 (is uid {uid}, mode {:04o})",
                mode & 0o7777
            ),
            KeyProblem::Unreadable(why) => write!(f, "cannot be read: {why}"),
            KeyProblem::Malformed => f.write_str("malformed"),
        }
    }
}

/// The host's public key: anyone may seal with it.
#[derive(Clone, PartialEq, Eq)]
pub struct HostPublicKey(PublicKey);

/// The host's private key (wiped on drop: crypto_box does that), with its
/// public key.
pub struct HostSecretKey {
    secret: SecretKey,
    /// Derived from `secret` once, when the key is read. Deriving it is a
    /// scalar multiplication, and opening a sealed secret needs the public
    /// key twice (to find the key by its id, and for the box's nonce): done
    /// each time, the two derivations were half of what opening cost.
    public: PublicKey,
}

impl fmt::Debug for HostPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostPublicKey({})", self.id())
    }
}

impl fmt::Debug for HostSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostSecretKey({})", self.public().id())
    }
}

impl HostPublicKey {
    /// A short identifier: 16 hex digits of SHA-256 of the key.
    pub fn id(&self) -> String {
        hex_encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    pub fn to_text(&self) -> String {
        format!("{PUB_TAG} {}\n", hex_encode(self.0.as_bytes()))
    }

    pub fn from_text(text: &str) -> Option<HostPublicKey> {
        parse_key_line(text, PUB_TAG).map(|b| HostPublicKey(PublicKey::from(*b)))
    }
}

impl HostSecretKey {
    pub fn generate() -> Result<HostSecretKey, SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..]).map_err(|_| SealError::Random)?;
        Ok(HostSecretKey::new(SecretKey::from(*bytes)))
    }

    fn new(secret: SecretKey) -> HostSecretKey {
        let public = secret.public_key();
        HostSecretKey { secret, public }
    }

    pub fn public(&self) -> HostPublicKey {
        HostPublicKey(self.public.clone())
    }

    /// Opens a sealed box (libsodium's `crypto_box_seal`): the sender's
    /// ephemeral public key (32 bytes), then an XSalsa20-Poly1305 box from
    /// that key to ours, under the nonce BLAKE2b-192(ephemeral public key ‖
    /// our public key). crypto_box's `SecretKey::unseal` does the same but
    /// derives our public key again at every call; this uses the one
    /// derived when the key was read. `None`: it does not open (too short,
    /// altered, or sealed to another key).
    fn open_box(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (ephemeral, boxed) = sealed.split_first_chunk::<32>()?;
        let ephemeral = PublicKey::from(*ephemeral);
        let nonce = Blake2b::<U24>::new()
            .chain_update(ephemeral.as_bytes())
            .chain_update(self.public.as_bytes())
            .finalize();
        SalsaBox::new(&ephemeral, &self.secret)
            .decrypt(&nonce, boxed)
            .ok()
    }

    pub fn to_text(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.secret.to_bytes());
        Zeroizing::new(format!("{KEY_TAG} {}\n", hex_encode(&bytes[..])))
    }

    pub fn from_text(text: &str) -> Option<HostSecretKey> {
        parse_key_line(text, KEY_TAG).map(|b| HostSecretKey::new(SecretKey::from(*b)))
    }
}

fn parse_key_line(text: &str, tag: &str) -> Option<Zeroizing<[u8; 32]>> {
    let rest = text.trim().strip_prefix(tag)?.strip_prefix(' ')?;
    let bytes = Zeroizing::new(hex_decode(rest.trim())?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return None;
    }
    out.copy_from_slice(&bytes);
    Some(out)
}

fn plaintext(user: &str, secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut p = Zeroizing::new(Vec::with_capacity(
        LABEL.len() + user.len() + 1 + secret.len(),
    ));
    p.extend_from_slice(LABEL);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.extend_from_slice(secret);
    p
}

/// Seals `secret` for `user` to the host key.
pub fn seal(key: &HostPublicKey, user: &str, secret: &[u8]) -> Result<String, SealError> {
    let sealed = key
        .0
        .seal(&mut OsRng, &plaintext(user, secret))
        .map_err(|_| SealError::Random)?;
    Ok(format!(
        "{SEALED_PREFIX}:{}:{}",
        key.id(),
        hex_encode(&sealed)
    ))
}

/// The id of the host key a sealed value was sealed to, if it is of the
/// form `v1:ID:...` (without opening it).
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    let mut parts = sealed.trim().split(':');
    match (parts.next(), parts.next()) {
        (Some(SEALED_PREFIX), Some(id)) => Some(id),
        _ => None,
    }
}

/// Opens a sealed secret of `user` with whichever of `keys` it was sealed to.
pub fn open(
    keys: &[HostSecretKey],
    user: &str,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let mut parts = sealed.trim().split(':');
    let (Some(SEALED_PREFIX), Some(id), Some(body), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SealError::Malformed);
    };
    let body = hex_decode(body).ok_or(SealError::Malformed)?;
    let key = keys
        .iter()
        .find(|k| k.public().id() == id)
        .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
    let opened = Zeroizing::new(key.open_box(&body).ok_or(SealError::Tampered)?);
    let rest = opened.strip_prefix(LABEL).ok_or(SealError::Tampered)?;
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(SealError::Tampered)?;
    if &rest[..nul] != user.as_bytes() {
        return Err(SealError::WrongUser);
    }
    Ok(Zeroizing::new(rest[nul + 1..].to_vec()))
}

/// The public key's path beside a private key's: `host.key` → `host.pub`.
pub fn public_path(host_key: &Path) -> PathBuf {
    host_key.with_extension("pub")
}

/// The path a rotation keeps the previous private key at: `host.key.old`.
pub fn old_path(host_key: &Path) -> PathBuf {
    let mut s = host_key.as_os_str().to_owned();
    s.push(".old");
    PathBuf::from(s)
}

/// Reads the host's private keys: the current one, and the previous one
/// while a rotation is under way. Each must be a regular file owned by
/// root with no group or other permissions. The current key must exist.
pub fn load_secret_keys(host_key: &Path) -> Result<Vec<HostSecretKey>, SealError> {
    let mut keys = vec![read_secret_key(host_key)?];
    match read_secret_key(&old_path(host_key)) {
        Ok(k) => keys.push(k),
        Err(SealError::Key {
            why: KeyProblem::Missing,
            ..
        }) => {}
        Err(e) => return Err(e),
    }
    Ok(keys)
}

/// The one unseal step, for the module and the tool alike: opens `user`'s
/// sealed secret with the host's private keys at `host_key` (read as
/// root).
pub fn unseal(host_key: &Path, user: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
    open(&load_secret_keys(host_key)?, user, sealed)
}

fn read_secret_key(path: &Path) -> Result<HostSecretKey, SealError> {
    let err = |why| SealError::Key {
        path: path.to_owned(),
        why,
    };
    let rules = Rules {
        owner: Owner::Root,
        forbidden_mode: 0o077,
        max_size: 4096,
    };
    let bytes = open_checked(path, &rules).map_err(|e| {
        err(match e {
            OpenError::NotFound => KeyProblem::Missing,
            OpenError::Rule(Broken::TooLarge, _) => KeyProblem::Malformed,
            OpenError::Rule(_, found) => KeyProblem::Unsafe {
                uid: found.uid,
                mode: found.mode,
            },
            OpenError::Symlink => KeyProblem::Unreadable("is a symbolic link".into()),
            OpenError::Io(e) => KeyProblem::Unreadable(e.to_string()),
        })
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| err(KeyProblem::Malformed))?;
    HostSecretKey::from_text(text).ok_or_else(|| err(KeyProblem::Malformed))
}

/// Reads the host's public key (any user may).
pub fn load_public_key(host_key: &Path) -> Result<HostPublicKey, SealError> {
    let path = public_path(host_key);
    let err = |why| SealError::Key {
        path: path.clone(),
        why,
    };
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => err(KeyProblem::Missing),
        _ => err(KeyProblem::Unreadable(e.to_string())),
    })?;
    HostPublicKey::from_text(&text).ok_or_else(|| err(KeyProblem::Malformed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = HostSecretKey::generate().unwrap();
        let sealed = seal(&k.public(), "alice", b"12345678901234567890").unwrap();
        let keys = [k];
        assert_eq!(
            &open(&keys, "alice", &sealed).unwrap()[..],
            b"12345678901234567890"
        );
        assert_eq!(
            open(&keys, "bob", &sealed).unwrap_err(),
            SealError::WrongUser
        );
        assert_eq!(sealed_key_id(&sealed), Some(keys[0].public().id().as_str()));
        assert_eq!(sealed_key_id("v2:ab:cd"), None);
    }

    #[test]
    fn tampering_is_detected() {
        let k = HostSecretKey::generate().unwrap();
        let sealed = seal(&k.public(), "alice", b"12345678901234567890").unwrap();
        let keys = [k];
        // Flip one hex digit in every position of the body in turn.
        let body_start = sealed.rfind(':').unwrap() + 1;
        for i in (body_start..sealed.len()).step_by(7) {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(bytes).unwrap();
            assert_eq!(
                open(&keys, "alice", &t).unwrap_err(),
                SealError::Tampered,
                "at {i}"
            );
        }
        assert_eq!(
            open(&keys, "alice", "v1:zz").unwrap_err(),
            SealError::Malformed
        );
    }

    #[test]
    fn other_keys_do_not_open() {
        let a = HostSecretKey::generate().unwrap();
        let b = HostSecretKey::generate().unwrap();
        let sealed = seal(&a.public(), "alice", b"12345678901234567890").unwrap();
        assert!(matches!(
            open(&[b], "alice", &sealed),
            Err(SealError::UnknownKey(_))
        ));
        // After a rotation the old key still opens old files.
        let c = HostSecretKey::generate().unwrap();
        assert!(open(&[c, a], "alice", &sealed).is_ok());
    }

    /// Our opening of a sealed box against crypto_box's own `unseal`, on
    /// boxes it sealed and on every way of spoiling them: the same bytes
    /// out, or both refuse.
    #[test]
    fn boxes_open_as_crypto_box_opens_them() {
        for round in 0..8u8 {
            let k = HostSecretKey::generate().unwrap();
            let other = HostSecretKey::generate().unwrap();
            let message: Vec<u8> = (0..usize::from(round) * 9).map(|i| i as u8).collect();
            let sealed = k.public.seal(&mut OsRng, &message).unwrap();
            let theirs = |b: &[u8]| k.secret.unseal(b).ok();
            assert_eq!(k.open_box(&sealed).as_deref(), Some(&message[..]));
            assert_eq!(k.open_box(&sealed), theirs(&sealed));
            // Sealed to another key: neither opens it.
            let elsewhere = other.public.seal(&mut OsRng, &message).unwrap();
            assert_eq!(k.open_box(&elsewhere), None);
            assert_eq!(theirs(&elsewhere), None);
            // Every byte changed in turn (the ephemeral key, the tag, the
            // text), and every length cut short.
            for i in 0..sealed.len() {
                let mut t = sealed.clone();
                t[i] ^= 1 << (i % 8);
                assert_eq!(k.open_box(&t), None, "byte {i} changed");
                assert_eq!(theirs(&t), None, "byte {i} changed");
                assert_eq!(k.open_box(&sealed[..i]), None, "cut to {i}");
                assert_eq!(theirs(&sealed[..i]), None, "cut to {i}");
            }
        }
    }

    #[test]
    fn key_text_round_trip() {
        let k = HostSecretKey::generate().unwrap();
        let back = HostSecretKey::from_text(&k.to_text()).unwrap();
        assert_eq!(back.public(), k.public());
        let p = HostPublicKey::from_text(&k.public().to_text()).unwrap();
        assert_eq!(p, k.public());
        assert!(HostPublicKey::from_text("PAM-TOTP-HOST-PUB-1 abcd").is_none());
    }
}
