//! config.toml on disk: read through `open_checked` (root's, not
//! writable by others, bounded), as text for the parser in `config`.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::Path;

use crate::sys::open::{open_checked, Broken, OpenError, Owner, Rules};

const MAX_CONFIG_FILE: u64 = 64 * 1024;

/// Reads a config file: `Ok(None)` when it does not exist.
pub type ConfigReader<'a> = &'a dyn Fn(&Path) -> Result<Option<String>, ConfigFileError>;

/// Why config.toml was refused.
#[derive(Debug)]
pub enum ConfigFileError {
    Open(OpenError),
    NotUtf8,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigFileError::Open(OpenError::Rule(Broken::Owner, found)) => {
                write!(f, "owned by uid {}, not root", found.uid)
            }
            ConfigFileError::Open(OpenError::Rule(Broken::Mode, found)) => write!(
                f,
                "mode {:04o} lets others write to it",
                found.mode & 0o7777
            ),
            ConfigFileError::Open(e) => e.fmt(f),
            ConfigFileError::NotUtf8 => {
                f.write_str("cannot be read: stream did not contain valid UTF-8")
            }
        }
    }
}

impl std::error::Error for ConfigFileError {}

/// Reads a system configuration file. `Ok(None)`: it does not exist. It
/// must be a regular file owned by root that only root may write, because
/// it decides who needs a second factor.
pub fn read_config_file(path: &Path) -> Result<Option<String>, ConfigFileError> {
    let rules = Rules {
        owner: Owner::Root,
        forbidden_mode: 0o022,
        max_size: MAX_CONFIG_FILE,
    };
    let bytes = match open_checked(path, &rules) {
        Ok(b) => b,
        Err(OpenError::NotFound) => return Ok(None),
        Err(e) => return Err(ConfigFileError::Open(e)),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| ConfigFileError::NotUtf8)?;
    Ok(Some(text.to_owned()))
}
