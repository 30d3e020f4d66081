//! The passwd enumeration (setpwent/getpwent_r/endpwent): nix has none,
//! so it needs `unsafe`, and this room is the crate's one FFI edge. Only
//! the tool calls it (`pam-totp host-key rotate`); the module never does.

use std::ffi::c_char;
use std::io;
use std::ptr;

use crate::sys::users::{valid_user_name, UserInfo};

/// Every account the passwd database lists (getpwent: local files and the
/// NSS modules that enumerate; SSSD or LDAP set not to enumerate list
/// nothing), each name once, in the database's order. Names this module
/// would not handle ([`valid_user_name`]) are left out.
pub fn all_users() -> io::Result<Vec<UserInfo>> {
    let mut seen = std::collections::HashSet::new();
    Ok(enumerate_users()?
        .into_iter()
        .filter(|u| valid_user_name(&u.name) && seen.insert(u.name.clone()))
        .map(|u| UserInfo {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })
        .collect())
}

/// Every account the passwd database enumerates (local files and NSS
/// modules that enumerate), with setpwent/getpwent_r/endpwent: for
/// `pam-totp host-key rotate`, which must not run a `getent` found on PATH.
/// The enumeration position is process-wide state of libc: call this from
/// one thread at a time (the tool is single-threaded; the module never
/// calls it). It lives here because it needs `unsafe` (nix has no
/// enumeration), and this file is the crate's one FFI edge.
fn enumerate_users() -> io::Result<Vec<nix::unistd::User>> {
    const MAX_BUF: usize = 1 << 20;
    let mut users = Vec::new();
    let mut buf: Vec<c_char> = vec![0; 4096];
    // SAFETY: setpwent takes no arguments; it (re)starts this process's
    // enumeration of the passwd database.
    unsafe { libc::setpwent() };
    let result = loop {
        let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
        let mut found: *mut libc::passwd = ptr::null_mut();
        // SAFETY: `pwd` and `found` are valid for writes and `buf` for
        // `buf.len()` bytes for the whole call; getpwent_r writes the entry
        // into `pwd` (its strings into `buf`) and sets `found` to it, or to
        // null with an error number returned.
        let rc =
            unsafe { libc::getpwent_r(pwd.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            // glibc gives the same entry again with a larger buffer.
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == libc::ENOENT || (rc == 0 && found.is_null()) {
            break Ok(());
        }
        if rc != 0 {
            break Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: rc 0 and `found` non-null: it points to `pwd`, fully
        // initialised, whose strings point into `buf`; both outlive this
        // borrow, and `User::from` copies what it needs.
        users.push(nix::unistd::User::from(unsafe { &*found }));
    };
    // SAFETY: endpwent takes no arguments; it ends the enumeration.
    unsafe { libc::endpwent() };
    result.map(|()| users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_users_lists_root_once() {
        let users = all_users().unwrap();
        let roots: Vec<_> = users.iter().filter(|u| u.name == "root").collect();
        assert_eq!(roots.len(), 1, "{users:?}");
        assert_eq!((roots[0].uid, roots[0].gid), (0, 0));
    }
}
