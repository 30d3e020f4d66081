//! What a new enrollment is made of, for the tool's `enroll` and the
//! module's enrollment at login alike: a random secret, scratch codes (only
//! their salted hashes are kept), and the names an authenticator app shows.
#![forbid(unsafe_code)]

use zeroize::{Zeroize, Zeroizing};

use crate::core::scratch::{self, ScratchHash};

/// Bytes in a new secret: 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// Scratch codes a new enrollment gets unless told otherwise.
pub const DEFAULT_SCRATCH_CODES: usize = 5;

/// `N` bytes from the system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// A new random secret of [`SECRET_BYTES`].
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, getrandom::Error> {
    let mut b = random::<SECRET_BYTES>()?;
    let secret = Zeroizing::new(b.to_vec());
    b.zeroize();
    Ok(secret)
}

/// `n` distinct new scratch codes and their salted hashes.
pub fn new_scratch_codes(
    n: usize,
) -> Result<(Vec<Zeroizing<String>>, Vec<ScratchHash>), getrandom::Error> {
    let mut codes: Vec<Zeroizing<String>> = Vec::with_capacity(n);
    while codes.len() < n {
        let mut bytes = random::<32>()?;
        let code = scratch::code_from_random(bytes);
        bytes.zeroize();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let hashes = codes
        .iter()
        .map(|c| Ok(ScratchHash::new(c, random::<16>()?)))
        .collect::<Result<Vec<_>, getrandom::Error>>()?;
    Ok((codes, hashes))
}

/// This host's name (the default issuer), as gethostname() gives it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::code::SCRATCH_DIGITS;

    #[test]
    fn scratch_codes_are_distinct_and_hashed() {
        let (codes, hashes) = new_scratch_codes(20).unwrap();
        assert_eq!(codes.len(), 20);
        for (c, h) in codes.iter().zip(&hashes) {
            assert_eq!(c.len(), SCRATCH_DIGITS);
            assert!(h.matches(c));
            assert!(!h.to_string().contains(c.as_str()));
        }
        let mut sorted: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 20);
        assert_eq!(new_secret().unwrap().len(), SECRET_BYTES);
    }
}
