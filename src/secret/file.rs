//! A secret file of either format, read: [`parse_with`] recognises the
//! format by content (native, see `native`; Google Authenticator's, see
//! `google`), gives the [`Enrollment`] it describes, and opens a sealed
//! secret with the one unseal step.
//!
//! Pure: bytes in, an [`Enrollment`] out. Opening the file safely is
//! `crate::sys::secret_file`'s job.
#![forbid(unsafe_code)]

use crate::secret::enrollment::{Enrollment, FormatError, Unsealer};
use crate::secret::google;
use crate::secret::native::SecretFile;

/// Parses a secret file's bytes, native or Google Authenticator format
/// (recognised by content). A sealed secret is an error.
pub fn parse(bytes: &[u8]) -> Result<Enrollment, FormatError> {
    parse_with(bytes, None)
}

/// Like [`parse`], opening a sealed secret with `unseal`.
pub fn parse_with(bytes: &[u8], unseal: Option<Unsealer<'_>>) -> Result<Enrollment, FormatError> {
    if google::looks_like_google(bytes) {
        let g = google::parse(bytes).map_err(FormatError::Google)?;
        return Enrollment::from_google(&g);
    }
    let file = SecretFile::parse(bytes)?;
    file.to_enrollment_with(unseal).map_err(|e| {
        // `parse` checked that the bytes are UTF-8.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        e.at_line_of(text)
    })
}

#[cfg(test)]
mod tests;
