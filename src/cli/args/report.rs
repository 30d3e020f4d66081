//! `pam-totp report`'s options: the store to read, the rate limit, JSON,
//! and at most one filter.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Args;

use pam_totp::core::policy::RateLimit;

use super::values::rate_limit;
use super::StateDirArg;

pub const LONG_ABOUT: &str = "\
Every account at once, the rollout's dashboard: each account the passwd
database lists (getpwent), each file in the secrets directory (when the
config file's `secret` template is one root-owned file per user in one
directory, such as /var/lib/pam-totp/secrets/${USER}) and each account with
a state in the state store (the state directory, or the fleet's server with
--state or the config file's `state`), once, under its canonical name,
sorted by name.

For each: enrolled (yes; no; or error when the secret file is there but the
module cannot use it: unsafe owner or mode, unreadable, malformed, sealed to
a key it cannot open, a home directory that cannot be searched), where the secret file is, whether it is sealed, the
number of keys, the scratch codes left, the failed attempts since the last
successful login, whether the rate limit locks the account out now (judged as
`status` judges it) and the last successful login (UTC).

A table by default; with --json, one JSON object per line and account. An
account that cannot be read gets its reason in `error` and the others are
still reported; every error (even of an account a filter leaves out) is also
a line on standard error, and the exit status is then 1.

On a fleet, the accounts are listed with SCAN: use --state-credentials of
an ACL user allowed +scan (not the module's, which need not list keys).

Only root can report: the secret files and the state are root's.";

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The config file to read `secret`, `state_dir`, `state` and
    /// `rate_limit` from [default: /etc/pam-totp/config.toml, if it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateDirArg,

    /// The rate limit `locked` is judged by, as rate_limit= in pam.d
    /// [default: the config file's `rate_limit`, else 3/30].
    #[arg(long, value_name = "N/SECONDS", value_parser = rate_limit)]
    pub rate_limit: Option<RateLimit>,

    /// One JSON object per line and account: {"user","account","enrolled",
    /// "secret_file","sealed","keys","scratch_codes_remaining",
    /// "failed_attempts","locked","last_login","error"}; unknown values are
    /// null.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub filter: ReportFilter,
}

/// Which accounts `report` shows (at most one of these).
#[derive(Args, Debug)]
#[group(multiple = false)]
pub struct ReportFilter {
    /// Only the accounts with a secret file (enrolled yes or error).
    #[arg(long)]
    pub enrolled: bool,

    /// Only the accounts with no secret file.
    #[arg(long)]
    pub not_enrolled: bool,

    /// Only the accounts the rate limit (or a corrupt state) locks out now.
    #[arg(long)]
    pub locked: bool,
}
