//! `remove-key`: one key (device) taken out of a user's secret file.
#![forbid(unsafe_code)]

use clap::Args;

use super::values::key_name;
use super::{SecretFileArg, UserArgs};

pub const REMOVE_KEY_HELP: &str = "\
Remove the key named NAME (one device) from a user's secret file; the other
keys and the scratch codes are kept, and a code of the removed key no longer
logs in. `pam-totp status` lists the keys. The last key is never removed:
`pam-totp disable` removes the enrollment. The file is rewritten as `enroll`
writes it (atomically, mode 0600, the user's own under their home); sealed
keys stay sealed. The spent steps of the removed key stay in the state, so a
code it showed never logs in again, should it be added back.

A user who is not root may remove a key only from their own secret file.";

#[derive(Args, Debug)]
pub struct RemoveKeyArgs {
    /// The key's name, as `status` lists it.
    #[arg(value_name = "NAME", value_parser = key_name)]
    pub name: String,

    #[command(flatten)]
    pub who: UserArgs,
    #[command(flatten)]
    pub file: SecretFileArg,
}
