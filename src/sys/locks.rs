//! Who holds a `flock` on a file, as /proc/locks tells: for the messages
//! of commands that will not wait for a lock, so that an administrator
//! learns whom they are waiting for without reading /proc/locks by hand.
//! Only ever for a message: nothing is decided on what it finds.
#![forbid(unsafe_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;

use nix::sys::stat::{major, minor};

/// A process that holds a `flock` on a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The owner of /proc/PID, the process's user; `None` if it is gone.
    pub uid: Option<u32>,
    /// /proc/PID/comm, the process's name as it set it: untrusted text,
    /// to be escaped where it is shown. `None` if it is gone.
    pub command: Option<String>,
}

/// The processes holding a `flock` on the file whose metadata is `meta`
/// (not those waiting for one), each once, in the order /proc/locks
/// lists them. Empty when /proc/locks cannot be read or names none, for
/// instance when the holders are outside this process's PID namespace.
pub fn flock_holders(meta: &fs::Metadata) -> Vec<Holder> {
    let Ok(text) = fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let dev = meta.dev();
    pids_holding(&text, major(dev), minor(dev), meta.ino())
        .into_iter()
        .map(|pid| Holder {
            pid,
            uid: fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid()),
            command: fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|c| c.trim_end_matches('\n').to_owned()),
        })
        .collect()
}

/// The pids of the `FLOCK` lines of /proc/locks `text` for the file
/// `major:minor:inode`. The kernel prints a line as `ID: FLOCK ADVISORY
/// READ|WRITE PID MAJOR:MINOR:INODE START END`, the device numbers in
/// hex, the inode in decimal; a process waiting for the lock has a line
/// with `->` after the id, which is not a holder. A pid the reader
/// cannot see is printed as 0 or -1, and left out.
fn pids_holding(text: &str, major: u64, minor: u64, inode: u64) -> Vec<u32> {
    let mut pids = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_id, kind, _mode, _access, pid, file, ..] = fields[..] else {
            continue;
        };
        if kind != "FLOCK" {
            continue;
        }
        let mut parts = file.split(':');
        let (Some(maj), Some(min), Some(ino), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let same_file = u64::from_str_radix(maj, 16) == Ok(major)
            && u64::from_str_radix(min, 16) == Ok(minor)
            && ino.parse::<u64>() == Ok(inode);
        match pid.parse::<u32>() {
            Ok(pid) if same_file && pid > 0 && !pids.contains(&pid) => pids.push(pid),
            _ => {}
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "\
1: FLOCK  ADVISORY  WRITE 14758 fe:00:10169427 0 EOF
2: FLOCK  ADVISORY  READ 300 08:12:4242 0 EOF
2: -> FLOCK  ADVISORY  WRITE 301 08:12:4242 0 EOF
3: POSIX  ADVISORY  WRITE 302 08:12:4242 0 EOF
4: FLOCK  ADVISORY  READ 303 08:12:42420 0 EOF
5: FLOCK  ADVISORY  READ 304 08:13:4242 0 EOF
6: FLOCK  ADVISORY  READ 0 08:12:4242 0 EOF
7: FLOCK  ADVISORY  READ 300 08:12:4242 0 EOF
8: FLOCK  ADVISORY  READ 305 08:12:4242 0 EOF
9: FLOCK  ADVISORY  READ 306 <none>:0 0 EOF
10: OFDLCK ADVISORY  READ -1 08:12:4242 0 EOF
";

    #[test]
    fn holders_of_one_file_each_once_without_waiters() {
        // 301 waits, 302 holds a POSIX lock, 303 and 304 hold other
        // files, 0 is a pid out of sight, 300 holds it twice.
        assert_eq!(pids_holding(LOCKS, 8, 0x12, 4242), [300, 305]);
        assert_eq!(pids_holding(LOCKS, 0xfe, 0, 10169427), [14758]);
        assert_eq!(pids_holding(LOCKS, 8, 0x12, 1), [] as [u32; 0]);
        assert_eq!(pids_holding("", 8, 0x12, 4242), [] as [u32; 0]);
        assert_eq!(
            pids_holding("garbage\n\n1:\n", 8, 0x12, 4242),
            [] as [u32; 0]
        );
    }

    #[test]
    fn a_flock_of_this_process_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = fs::File::open(dir.path()).unwrap();
        let meta = file.metadata().unwrap();
        assert!(flock_holders(&meta).is_empty());
        let _held =
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock).unwrap();
        let holders = flock_holders(&meta);
        let me = Holder {
            pid: std::process::id(),
            uid: Some(nix::unistd::geteuid().as_raw()),
            command: fs::read_to_string("/proc/self/comm")
                .ok()
                .map(|c| c.trim_end_matches('\n').to_owned()),
        };
        assert_eq!(holders, [me]);
    }
}
