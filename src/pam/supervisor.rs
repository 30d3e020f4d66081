//! The supervisor of a `notify=` hook (see [`super::notify`]): a child of
//! the host that never execs, so everything here is async-signal-safe:
//! raw system calls, buffers on the stack, data prepared before the fork.
//! No allocation, no lock, no formatting machinery, no panic path taken.

use std::ffi::{c_char, c_int, CString};
use std::ptr;

/// Everything the children read, built before the fork (by
/// `super::notify`, which owns the rest of the hook's run).
pub(super) struct Prepared {
    pub(super) program: CString,
    pub(super) argv: [*const c_char; 2],
    /// Owns the strings `envp` points to.
    pub(super) _env: Vec<CString>,
    pub(super) envp: Vec<*const c_char>,
    pub(super) root_dir: CString,
    pub(super) dev_null: CString,
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
    pub(super) timeout_ms: i64,
    pub(super) log_prefix: Vec<u8>,
    pub(super) log_addr: libc::sockaddr_un,
}

/// The most of each first line (stdout, stderr) logged, in bytes.
const LINE_MAX: usize = 200;
/// The largest syslog datagram sent.
const MSG_MAX: usize = 2048;
/// How often the hook is looked at while it runs (milliseconds).
const TICK_MS: i64 = 20;
/// LOG_AUTHPRIV with a severity.
const PRI_WARNING: u32 = (10 << 3) | 4;
const PRI_NOTICE: u32 = (10 << 3) | 5;
const PRI_INFO: u32 = (10 << 3) | 6;
/// What the hook's child reports through the status pipe before exec.
const STAGE_IDENTITY: u8 = 1;
const STAGE_EXEC: u8 = 2;

/// A fixed buffer that silently stops at its end.
struct Buf<const N: usize> {
    data: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf {
            data: [0; N],
            len: 0,
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.data.get_mut(self.len) {
                Some(slot) => *slot = b,
                None => return,
            }
            self.len += 1;
        }
    }
    fn bytes(&self) -> &[u8] {
        self.data.get(..self.len).unwrap_or_default()
    }
    fn number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(digits.get(i..).unwrap_or_default());
    }
    /// One value from outside as a log token, as `logtext::token` writes
    /// it: as it is when plain, else in single quotes with `\xHH`.
    fn token(&mut self, s: &[u8]) {
        let plain = |b: u8| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'=');
        if s.is_empty() {
            return self.push(b"-");
        }
        if s.iter().all(|&b| plain(b)) {
            return self.push(s);
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.push(b"'");
        for &b in s {
            if plain(b) && b != b'\\' {
                self.push(&[b]);
            } else {
                let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                let lo = HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0');
                self.push(&[b'\\', b'x', hi, lo]);
            }
        }
        self.push(b"'");
    }
}

/// The first line of one of the hook's outputs.
struct FirstLine {
    line: Buf<LINE_MAX>,
    done: bool,
}

impl FirstLine {
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.done {
                return;
            }
            if b == b'\n' || self.line.len == LINE_MAX {
                self.done = true;
            } else {
                self.line.push(&[b]);
            }
        }
    }
}

/// How the hook ended.
enum End {
    Exit(c_int),
    Signal(c_int),
    TimedOut,
    /// It could not be started: the stage and errno.
    NotStarted(u8, c_int),
}

/// Milliseconds of the monotonic clock.
fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe; `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec.saturating_mul(1000) + ts.tv_nsec / 1_000_000
}

/// The supervisor T: runs the hook, watches it until the deadline, logs
/// how it went, exits.
pub(super) fn supervise(p: &Prepared) -> ! {
    let deadline = now_ms().saturating_add(p.timeout_ms);
    let mut out = [-1; 2];
    let mut err = [-1; 2];
    let mut status_pipe = [-1; 2];
    // SAFETY: async-signal-safe calls on valid arrays of two descriptors.
    let piped = unsafe {
        libc::pipe2(out.as_mut_ptr(), libc::O_CLOEXEC) == 0
            && libc::pipe2(err.as_mut_ptr(), libc::O_CLOEXEC) == 0
            && libc::pipe2(status_pipe.as_mut_ptr(), libc::O_CLOEXEC) == 0
    };
    if !piped {
        log_end(p, End::NotStarted(0, libc::EMFILE));
        // SAFETY: ends this process without running anything of the host's.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: fork is async-signal-safe; the child only runs `exec_hook`.
    let hook = unsafe { libc::fork() };
    if hook == 0 {
        exec_hook(p, out[1], err[1], status_pipe[1]);
    }
    // SAFETY: closing our copies of the hook's ends, and our stdin.
    unsafe {
        libc::close(out[1]);
        libc::close(err[1]);
        libc::close(status_pipe[1]);
        libc::close(0);
    }
    if hook < 0 {
        log_end(p, End::NotStarted(0, libc::EAGAIN));
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    let mut report = [0u8; 8];
    // SAFETY: reads at most 8 bytes into `report`; the write end closes at
    // the hook's exec (close-on-exec) or after its report.
    let n = unsafe { libc::read(status_pipe[0], report.as_mut_ptr().cast(), report.len()) };
    let end = if n == 8 {
        let errno = c_int::from_ne_bytes([report[4], report[5], report[6], report[7]]);
        reap(hook);
        End::NotStarted(report[0], errno)
    } else {
        let mut stdout = FirstLine {
            line: Buf::new(),
            done: false,
        };
        let mut stderr = FirstLine {
            line: Buf::new(),
            done: false,
        };
        let end = watch(hook, [out[0], err[0]], deadline, [&mut stdout, &mut stderr]);
        log_line(p, PRI_INFO, b"stdout=", stdout.line.bytes());
        log_line(p, PRI_NOTICE, b"stderr=", stderr.line.bytes());
        end
    };
    log_end(p, end);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// Reads the hook's outputs while it runs, until it has exited or the
/// deadline has passed (then its process group is killed). Returns how
/// it ended; the hook is reaped.
fn watch(hook: c_int, fds: [c_int; 2], deadline: i64, lines: [&mut FirstLine; 2]) -> End {
    let mut open = [true, true];
    let mut chunk = [0u8; 512];
    let [first, second] = lines;
    loop {
        let mut pfd = [
            libc::pollfd {
                fd: if open[0] { fds[0] } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if open[1] { fds[1] } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let left = deadline.saturating_sub(now_ms());
        // SAFETY: poll on a valid array of two pollfd (negative fds are
        // skipped by the kernel).
        unsafe { libc::poll(pfd.as_mut_ptr(), 2, left.clamp(0, TICK_MS) as c_int) };
        for (i, line) in [(0usize, &mut *first), (1usize, &mut *second)] {
            if open[i] && pfd[i].revents != 0 {
                // SAFETY: reads into the stack buffer, at most its size.
                let n = unsafe { libc::read(fds[i], chunk.as_mut_ptr().cast(), chunk.len()) };
                if n > 0 {
                    line.feed(chunk.get(..n.unsigned_abs()).unwrap_or_default());
                } else if n == 0 {
                    open[i] = false;
                }
            }
        }
        let mut status: c_int = 0;
        // SAFETY: our own child; `status` is a valid out-pointer.
        if unsafe { libc::waitpid(hook, &mut status, libc::WNOHANG) } == hook {
            return ended(status);
        }
        if now_ms() >= deadline {
            // SAFETY: the hook is not reaped yet, so its pid (its group's
            // id) cannot have been reused.
            unsafe {
                libc::kill(-hook, libc::SIGKILL);
                libc::kill(hook, libc::SIGKILL);
            }
            reap(hook);
            return End::TimedOut;
        }
    }
}

fn ended(status: c_int) -> End {
    if libc::WIFEXITED(status) {
        End::Exit(libc::WEXITSTATUS(status))
    } else {
        End::Signal(libc::WTERMSIG(status))
    }
}

fn reap(pid: c_int) {
    let mut status: c_int = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        // SAFETY: reading errno is async-signal-safe.
        if unsafe { *libc::__errno_location() } != libc::EINTR {
            return;
        }
    }
}

/// The hook's process H: a process group of its own, stdout and stderr
/// the pipes, no supplementary groups, the hook's gid and uid, `/` as its
/// directory; then exec. A failure is reported on `status` and exits.
fn exec_hook(p: &Prepared, out: c_int, err: c_int, status: c_int) -> ! {
    // SAFETY: async-signal-safe system calls only, on descriptors of
    // this process and strings prepared before the fork; dropping groups,
    // then the gid, then the uid (after the uid, the others can no longer
    // change).
    unsafe {
        let mut stage = STAGE_IDENTITY;
        if libc::setpgid(0, 0) == 0
            && libc::dup2(out, 1) >= 0
            && libc::dup2(err, 2) >= 0
            // Not root (the tool run by a user): the hook keeps the
            // caller's own identity, and groups cannot be changed.
            && (libc::geteuid() != 0 || libc::setgroups(0, ptr::null()) == 0)
            && libc::setresgid(p.gid, p.gid, p.gid) == 0
            && libc::setresuid(p.uid, p.uid, p.uid) == 0
            && libc::chdir(p.root_dir.as_ptr()) == 0
        {
            stage = STAGE_EXEC;
            libc::execve(p.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        }
        let errno = *libc::__errno_location();
        let e = errno.to_ne_bytes();
        let report = [stage, 0, 0, 0, e[0], e[1], e[2], e[3]];
        libc::write(status, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    }
}

/// Sends one line `<PRI>pam_totp[PID]: PREFIX NAMEVALUE` to /dev/log when
/// `value` is not empty (the value escaped as a token).
fn log_line(p: &Prepared, pri: u32, name: &[u8], value: &[u8]) {
    if value.is_empty() {
        return;
    }
    let mut m = start(p, pri);
    m.push(b" ");
    m.push(name);
    m.token(value);
    send(p, &m);
}

/// The line about how the hook ended; nothing when it exited 0.
fn log_end(p: &Prepared, end: End) {
    let mut m = start(p, PRI_WARNING);
    m.push(b" result=failed reason=\"");
    match end {
        End::Exit(0) => return,
        End::Exit(n) => {
            m.push(b"exit status ");
            m.number(n.unsigned_abs().into());
        }
        End::Signal(n) => {
            m.push(b"killed by signal ");
            m.number(n.unsigned_abs().into());
        }
        End::TimedOut => {
            m.push(b"timed out after ");
            m.number(p.timeout_ms.unsigned_abs());
            m.push(b" ms (killed)");
        }
        End::NotStarted(stage, errno) => {
            m.push(match stage {
                STAGE_IDENTITY => b"could not take its identity: errno " as &[u8],
                STAGE_EXEC => b"could not be executed: errno ",
                _ => b"could not be started: errno ",
            });
            m.number(errno.unsigned_abs().into());
        }
    }
    m.push(b"\"");
    send(p, &m);
}

fn start(p: &Prepared, pri: u32) -> Buf<MSG_MAX> {
    let mut m = Buf::new();
    m.push(b"<");
    m.number(pri.into());
    m.push(b">pam_totp[");
    // SAFETY: getpid is async-signal-safe.
    m.number(unsafe { libc::getpid() }.unsigned_abs().into());
    m.push(b"]: ");
    m.push(&p.log_prefix);
    m
}

/// One datagram to /dev/log; none when there is no /dev/log.
fn send(p: &Prepared, m: &Buf<MSG_MAX>) {
    // SAFETY: async-signal-safe calls; `log_addr` is a sockaddr_un
    // prepared before the fork; the message is a live stack buffer.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return;
        }
        let bytes = m.bytes();
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            (&p.log_addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        libc::close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_numbers_without_allocation() {
        let mut b: Buf<64> = Buf::new();
        b.number(0);
        b.push(b" ");
        b.number(1234567);
        b.push(b" ");
        b.token(b"plain");
        b.push(b" ");
        b.token(b"a b=\n'\\");
        b.push(b" ");
        b.token(b"");
        assert_eq!(
            b.bytes(),
            b"0 1234567 plain 'a\\x20b\\x3d\\x0a\\x27\\x5c' -" as &[u8]
        );
        let mut small: Buf<4> = Buf::new();
        small.push(b"abcdef");
        assert_eq!(small.bytes(), b"abcd");
        let mut l = FirstLine {
            line: Buf::new(),
            done: false,
        };
        l.feed(b"one");
        l.feed(b" two\nthree");
        assert_eq!(l.line.bytes(), b"one two");
    }
}
