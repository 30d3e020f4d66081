//! The filesystem identity guard: files in a home directory are opened
//! with exactly the rights of their owner (setfsuid/setfsgid).
#![forbid(unsafe_code)]

use std::io;

use nix::unistd::{self, Gid, Uid};

/// While alive, file accesses of this process are checked as another user
/// (setfsuid/setfsgid); dropping it restores the previous identity. So root
/// reads a file in a home directory with exactly the rights of its owner,
/// which also works on root-squashed NFS homes.
///
/// Both changes are read back. setfsuid/setfsgid report no error: a
/// process without CAP_SETUID/CAP_SETGID is silently left with its own
/// identity, so [`FsIdentity::assume`] checks that the new identity took
/// effect and fails (with the old one restored) if it did not.
///
/// Restoring is checked too. A process that cannot get its own filesystem
/// identity back would go on (in sshd, sudo, login) creating and opening
/// files as the user, so it must not go on at all: it aborts. The kernel
/// always lets a process return to the fsuid it had (it is its effective
/// uid), so this is a guard against the impossible, never a way to deny.
pub struct FsIdentity {
    uid: Uid,
    gid: Gid,
}

/// setfsuid/setfsgid with an id that is never valid change nothing and
/// return the current one: the only way to read the filesystem identity.
const NO_ID: u32 = u32::MAX;

fn current_fsuid() -> Uid {
    unistd::setfsuid(Uid::from_raw(NO_ID))
}

fn current_fsgid() -> Gid {
    unistd::setfsgid(Gid::from_raw(NO_ID))
}

impl FsIdentity {
    /// Takes the filesystem identity `uid`/`gid`, or fails (changing
    /// nothing) if the kernel did not let it take effect.
    pub fn assume(uid: u32, gid: u32) -> io::Result<FsIdentity> {
        // Group first: once the uid is dropped the group may not be changeable.
        let old_gid = unistd::setfsgid(Gid::from_raw(gid));
        let old_uid = unistd::setfsuid(Uid::from_raw(uid));
        let identity = FsIdentity {
            uid: old_uid,
            gid: old_gid,
        };
        let (now_uid, now_gid) = (current_fsuid().as_raw(), current_fsgid().as_raw());
        if now_uid != uid || now_gid != gid {
            // Dropping `identity` puts the old ids back.
            drop(identity);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "could not take the filesystem identity uid {uid} gid {gid}                      (still uid {now_uid} gid {now_gid})"
                ),
            ));
        }
        Ok(identity)
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        unistd::setfsuid(self.uid);
        unistd::setfsgid(self.gid);
        if current_fsuid() != self.uid || current_fsgid() != self.gid {
            // See the type's documentation: never go on with the user's
            // identity. abort() does not unwind, so nothing crosses FFI.
            std::process::abort();
        }
    }
}
