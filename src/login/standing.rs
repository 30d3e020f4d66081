//! Where the user stands before any code is typed: the group rules, then
//! the secret file (found, read safely, parsed, unsealed).
#![forbid(unsafe_code)]

use crate::config::{self, Settings};
use crate::core::logtext::token;
use crate::secret::enrollment::Enrollment;
use crate::secret::file;
use crate::secret::seal;
use crate::sys::secret_file::{self, ReadError};
use crate::sys::users::{self, UserInfo};

use super::error::{Denial, GroupError, Skip};
use super::owner::Owner;
use super::secret_command::{self, Fetched};
use super::{Level, PamIo};

/// Where the user stands before any code is typed.
pub(crate) enum Standing {
    Enrolled(Enrollment),
    NotEnrolled,
    UnknownUser,
    /// The secret file exists but cannot be used; the reason for syslog.
    Problem(String),
}

/// `Ok(Some(skip))` when the group rules exempt this user.
/// `Err` denies: the groups cannot be looked up, or `require_group`
/// names a group that does not exist (a typo there would otherwise exempt
/// everybody from the second factor).
///
/// An unknown user (`None`) is never exempted, by either rule: it is asked
/// for a code and refused like anyone the module cannot vouch for. Skipping
/// it would return PAM_IGNORE, and a stack with `pam_permit.so` (or any
/// `sufficient` module) after this one would then let it in.
pub(crate) fn group_rules(
    settings: &Settings,
    user: Option<&UserInfo>,
) -> Result<Option<Skip>, GroupError> {
    if let Some(g) = &settings.require_group {
        if !users::group_exists(g).map_err(GroupError::Lookup)? {
            return Err(GroupError::NoSuchGroup(g.clone()));
        }
    }
    let Some(u) = user else {
        return Ok(None);
    };
    if let Some(g) = &settings.exempt_group {
        if users::in_group(u, g).map_err(GroupError::Lookup)? {
            return Ok(Some(Skip::ExemptGroup(g.clone())));
        }
    }
    if let Some(g) = &settings.require_group {
        if !users::in_group(u, g).map_err(GroupError::Lookup)? {
            return Ok(Some(Skip::NotInRequiredGroup(g.clone())));
        }
    }
    Ok(None)
}

/// Finds, reads and parses the user's secret file (or the output of
/// `secret_command=`). `Err` only for a configuration error: a secret
/// path that cannot be expanded, a command that cannot be run.
pub(crate) fn load_enrollment(
    settings: &Settings,
    owner: &Owner,
    io: &dyn PamIo,
) -> Result<Standing, Denial> {
    let user = owner.user();
    // Only called for a sealed file: the host key is read as root.
    let unseal = |sealed: &str| seal::unseal(&settings.host_key, &user.name, sealed);
    // secret_command=: the bytes come from the command's output, parsed
    // and unsealed exactly as a file's are.
    if settings.secret_command.path.is_some() {
        let fetched = secret_command::fetch(&settings.secret_command, owner, io, settings.debug)
            .map_err(Denial::SecretCommand)?;
        return Ok(match fetched {
            Fetched::Text(bytes) => match file::parse_with(&bytes, Some(&unseal)) {
                Ok(e) => Standing::Enrolled(e),
                Err(e) => Standing::Problem(format!("secret_command output: {e}")),
            },
            Fetched::Nothing => Standing::NotEnrolled,
            Fetched::Problem(why) => Standing::Problem(why),
        });
    }
    let path = config::expand_secret(&settings.secret, user).map_err(Denial::SecretPath)?;
    // Files under the home directory are read with the user's identity;
    // system-wide ones (root-owned) as root.
    let as_owner = secret_file::accessed_as_owner(user, &path);
    let shown = token(&path.to_string_lossy());
    if settings.debug {
        let who = if as_owner { "the user" } else { "root" };
        io.log(Level::Debug, &format!("reading {shown} as {who}"));
    }
    Ok(match secret_file::read_secret_file(&path, user, as_owner) {
        Ok(bytes) => match file::parse_with(&bytes, Some(&unseal)) {
            Ok(e) => Standing::Enrolled(e),
            Err(e) => Standing::Problem(format!("{shown}: {e}")),
        },
        Err(ReadError::NotFound) => Standing::NotEnrolled,
        Err(e) => Standing::Problem(format!("{shown}: {e}")),
    })
}
