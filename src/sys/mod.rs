//! The one room below the PAM edge that touches the operating system, in
//! safe code only: [`open::open_checked`] (every trusted file is read
//! through it), the filesystem-identity guard, user and group lookups,
//! atomic writes, running a command as another user with a deadline, and
//! who holds a lock (for messages).
//! Imports nothing from the other rooms.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod command;
pub mod hook;
pub mod identity;
pub mod locks;
pub mod open;
pub mod secret_file;
pub mod users;
