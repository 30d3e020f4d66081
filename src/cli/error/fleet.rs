//! The fleet's state server, as `status`, `reset` and `disable` reach it.
#![forbid(unsafe_code)]

use std::fmt;

use pam_totp::state::fleet::FleetError;

use super::{EXIT_FAILED, EXIT_INPUT};

#[derive(Debug)]
pub enum FleetCliError {
    /// `--state URL` is not a state URL (the parser's reason, never the URL).
    BadUrl(String),
    /// `--state-credentials` without a state server to use them for.
    CredentialsWithoutState,
    /// The credentials file (root's) can only be read by root.
    RootOnly,
    /// The credentials file or the TLS roots were refused (the reason).
    Config(String),
    /// The server could not be reached, refused, or its value is corrupt.
    Server(FleetError),
    /// `report` could not list the accounts on the server (SCAN).
    List(FleetError),
}

impl FleetCliError {
    pub fn exit_status(&self) -> u8 {
        match self {
            FleetCliError::BadUrl(_)
            | FleetCliError::CredentialsWithoutState
            | FleetCliError::RootOnly
            | FleetCliError::Config(_) => EXIT_INPUT,
            FleetCliError::Server(_) | FleetCliError::List(_) => EXIT_FAILED,
        }
    }
}

impl fmt::Display for FleetCliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetCliError::BadUrl(why) => write!(f, "--state: {why}"),
            FleetCliError::CredentialsWithoutState => {
                f.write_str("--state-credentials needs --state URL (or state in the config file)")
            }
            FleetCliError::RootOnly => f.write_str(
                "only root can reach the fleet's state server (its credentials are root's)",
            ),
            FleetCliError::Config(why) => f.write_str(why),
            FleetCliError::Server(e) => write!(f, "{e}"),
            FleetCliError::List(e) => write!(
                f,
                "cannot list the accounts on the state server (SCAN; the ACL user of \
                 --state-credentials must be allowed +scan): {e}"
            ),
        }
    }
}
