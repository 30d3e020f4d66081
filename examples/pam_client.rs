//! A minimal PAM application for the tests: authenticates one user through
//! the real libpam, with a service file from a private directory
//! (`pam_start_confdir`), so no test touches /etc/pam.d.
//!
//! ```text
//! pam_client --confdir DIR --service NAME --user USER
//!            [--answer TEXT]... [--authtok TEXT] [--rhost HOST]
//!            [--wait FIFO] [--answer-wait FIFO] [--syslog | --no-log-socket]
//!            [--setcred] [--leak-fd FILE] [--interactive] [--linger MS]
//! ```
//!
//! `--leak-fd FILE` opens FILE without close-on-exec before
//! pam_authenticate, as an application that leaks a descriptor would: a
//! command the module runs must not inherit it.
//!
//! Prompts are answered with the `--answer` values in order; a prompt with
//! no answer left fails the conversation, unless `--interactive`: then
//! every message is written to stderr as it comes, as a line
//! `msg [STYLE,"TEXT"]` (JSON), and a prompt with no answer left writes a
//! line `ask` and takes the next line of stdin as its answer (EOF fails the
//! conversation), so a test can answer from what the module showed. `--wait FIFO` blocks, after
//! pam_start and before pam_authenticate, until the FIFO's writer closes it:
//! many clients released at the same instant. `--answer-wait FIFO` blocks
//! the same way inside the conversation, after the first prompt has been
//! shown and before it is answered: a user still typing. `--syslog` runs
//! the client in a private mount namespace with its own /dev/log and reports
//! every line logged; `--no-log-socket` runs it in such a namespace with no
//! /dev/log at all; `--linger MS` keeps collecting syslog lines for MS
//! milliseconds after the login (a `notify=` hook logs after it). The
//! result is one JSON object on stdout (`auth_ms`: how long
//! pam_authenticate took):
//!
//! ```text
//! {"rc":0,"auth_ms":3,"result":"PAM_SUCCESS","prompts":[[1,"Verification code: "]],
//!  "authtok":null,"setcred":null,"syslog":["..."]}
//! ```
//! The exit status is 0 whenever the client itself worked.
//!
//! Linux-PAM keeps PAM_AUTHTOK to modules: an application can neither set
//! it (`--authtok` then fails with exit status 2) nor read it (`authtok` is
//! then null). Tests that need it put a module in front (`pam_unix` sets
//! it from its prompt) or behind (`pam_exec expose_authtok` shows it).

#[path = "support/libpam.rs"]
mod libpam;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::ptr;

use libpam::*;

#[derive(Default)]
struct Conversation {
    answers: VecDeque<String>,
    prompts: Vec<(c_int, String)>,
    /// A FIFO to wait on before answering the first prompt.
    answer_wait: Option<String>,
    /// `--interactive`: messages to stderr, missing answers from stdin.
    interactive: bool,
}

/// `--interactive`: a line of stdin for a prompt with no answer left.
fn ask_stdin() -> Option<String> {
    eprintln!("ask");
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim_end_matches(['\n', '\r']).to_owned()),
        _ => None,
    }
}

/// Blocks until the writer of `fifo` closes it (see `--wait`).
fn wait_for_release(fifo: &str) {
    // Opening for reading blocks until a writer has opened; reading returns
    // at EOF, once every writer has closed.
    let mut f = std::fs::File::open(fifo).unwrap_or_else(|e| die(&format!("{fifo}: {e}")));
    let mut sink = Vec::new();
    let _ = f.read_to_end(&mut sink);
}

unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    // SAFETY: appdata is the &RefCell<Conversation> main() passed to pam_start.
    let conv = unsafe { &*(appdata as *const RefCell<Conversation>) };
    let mut conv = conv.borrow_mut();
    let n = num_msg.max(0) as usize;
    // SAFETY: calloc of n zeroed responses (freed by the module).
    let replies =
        unsafe { libc::calloc(n.max(1), std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_CONV_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
        let m = unsafe { &**msg.add(i) };
        // SAFETY: each message text is a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(m.msg) }
            .to_string_lossy()
            .into_owned();
        if conv.interactive {
            eprintln!("msg [{},{}]", m.msg_style, json_str(&text));
        }
        conv.prompts.push((m.msg_style, text));
        if m.msg_style == PAM_PROMPT_ECHO_OFF || m.msg_style == PAM_PROMPT_ECHO_ON {
            if let Some(fifo) = conv.answer_wait.take() {
                wait_for_release(&fifo);
            }
            let interactive = conv.interactive;
            let answer = conv
                .answers
                .pop_front()
                .or_else(|| interactive.then(ask_stdin).flatten());
            let Some(answer) = answer else {
                for j in 0..i {
                    // SAFETY: entries before i were filled by strdup or are null.
                    unsafe { libc::free((*replies.add(j)).resp as *mut c_void) };
                }
                // SAFETY: allocated above.
                unsafe { libc::free(replies as *mut c_void) };
                return PAM_CONV_ERR;
            };
            let c = CString::new(answer).unwrap_or_default();
            // SAFETY: i < n, within the calloc'd array; strdup copies c.
            unsafe { (*replies.add(i)).resp = libc::strdup(c.as_ptr()) };
        }
    }
    // SAFETY: resp is the module's out pointer.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

fn result_name(rc: c_int) -> &'static str {
    match rc {
        0 => "PAM_SUCCESS",
        3 => "PAM_SERVICE_ERR",
        4 => "PAM_SYSTEM_ERR",
        6 => "PAM_PERM_DENIED",
        7 => "PAM_AUTH_ERR",
        9 => "PAM_AUTHINFO_UNAVAIL",
        10 => "PAM_USER_UNKNOWN",
        19 => "PAM_CONV_ERR",
        25 => "PAM_IGNORE",
        26 => "PAM_ABORT",
        _ => "OTHER",
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn die(msg: &str) -> ! {
    eprintln!("pam_client: {msg}");
    std::process::exit(2);
}

/// Enters a private mount namespace whose /dev is an overlay of the real
/// one, with no /dev/log in it; the real /dev is never written.
fn private_dev() {
    let run = |c: &str| {
        let st = std::process::Command::new("sh").arg("-c").arg(c).status();
        if !st.map(|s| s.success()).unwrap_or(false) {
            die(&format!("setup failed: {c}"));
        }
    };
    // SAFETY: unshare has no memory-safety preconditions.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        die("unshare(CLONE_NEWNS) failed (run as root)");
    }
    let base = "/run/pam-totp-test-ns";
    let _ = std::fs::create_dir_all(base);
    run(&format!(
        "mount --make-rprivate / && mount -t tmpfs none {base} && mkdir {base}/u {base}/w && \
         mount -t overlay overlay -o lowerdir=/dev,upperdir={base}/u,workdir={base}/w /dev && \
         rm -f /dev/log"
    ));
}

/// A private /dev (see [`private_dev`]) with our own socket as /dev/log.
fn private_syslog() -> UnixDatagram {
    private_dev();
    let sock =
        UnixDatagram::bind("/dev/log").unwrap_or_else(|e| die(&format!("bind /dev/log: {e}")));
    sock.set_nonblocking(true)
        .unwrap_or_else(|e| die(&e.to_string()));
    sock
}

fn main() {
    let mut confdir = None;
    let mut service = None;
    let mut user = None;
    let mut rhost = None;
    let mut authtok = None;
    let mut wait = None;
    let mut syslog = false;
    let mut linger_ms: u64 = 0;
    let mut no_log_socket = false;
    let mut setcred = false;
    let mut leak_fd = None;
    let mut conv = Conversation::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--confdir" => confdir = Some(val()),
            "--service" => service = Some(val()),
            "--user" => user = Some(val()),
            "--rhost" => rhost = Some(val()),
            "--authtok" => authtok = Some(val()),
            "--answer" => conv.answers.push_back(val()),
            "--wait" => wait = Some(val()),
            "--answer-wait" => conv.answer_wait = Some(val()),
            "--syslog" => syslog = true,
            "--linger" => linger_ms = val().parse().unwrap_or_else(|_| die("--linger MS")),
            "--no-log-socket" => no_log_socket = true,
            "--setcred" => setcred = true,
            "--leak-fd" => leak_fd = Some(val()),
            "--interactive" => conv.interactive = true,
            _ => die(&format!("unknown argument {a}")),
        }
    }
    let cstr = |s: Option<String>, what: &str| {
        CString::new(s.unwrap_or_else(|| die(&format!("--{what} is required"))))
            .unwrap_or_else(|_| die("NUL in argument"))
    };
    let confdir = cstr(confdir, "confdir");
    let service = cstr(service, "service");
    let user = cstr(user, "user");
    if syslog && no_log_socket {
        die("--syslog and --no-log-socket exclude each other");
    }
    let log = syslog.then(private_syslog);
    if no_log_socket {
        private_dev();
    }

    let conv = RefCell::new(conv);
    let pam_conv = PamConv {
        conv: converse,
        appdata_ptr: &conv as *const RefCell<Conversation> as *mut c_void,
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the handle; pam_conv
    // and conv live until pam_end below.
    let rc = unsafe {
        pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &pam_conv,
            confdir.as_ptr(),
            &mut pamh,
        )
    };
    if rc != PAM_SUCCESS {
        die(&format!("pam_start_confdir failed: {rc}"));
    }
    for (item, value) in [(PAM_RHOST, rhost), (PAM_AUTHTOK, authtok)] {
        if let Some(v) = value {
            let c = CString::new(v).unwrap_or_else(|_| die("NUL in argument"));
            // SAFETY: libpam copies the string.
            let rc = unsafe { pam_set_item(pamh, item, c.as_ptr() as *const c_void) };
            if rc != PAM_SUCCESS {
                // Linux-PAM lets only modules set PAM_AUTHTOK (PAM_BAD_ITEM):
                // tests put a module such as pam_unix in front instead.
                die(&format!("pam_set_item({item}) refused: {rc}"));
            }
        }
    }
    if let Some(file) = leak_fd {
        let c = CString::new(file).unwrap_or_else(|_| die("NUL in argument"));
        // SAFETY: open with a valid NUL-terminated path; the descriptor is
        // deliberately kept (and leaked) without O_CLOEXEC.
        if unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) } < 0 {
            die("--leak-fd: open failed");
        }
    }
    if let Some(fifo) = wait {
        // Every client waiting on the FIFO wakes at once.
        wait_for_release(&fifo);
    }
    let started = std::time::Instant::now();
    // SAFETY: pamh is the live handle from pam_start_confdir.
    let rc = unsafe { pam_authenticate(pamh, 0) };
    let auth_ms = started.elapsed().as_millis();
    let cred = setcred.then(|| {
        // SAFETY: as above.
        unsafe { pam_setcred(pamh, PAM_ESTABLISH_CRED) }
    });
    let mut item: *const c_void = ptr::null();
    // SAFETY: as above; the item stays valid until pam_end.
    let tok = unsafe {
        if pam_get_item(pamh, PAM_AUTHTOK, &mut item) == PAM_SUCCESS && !item.is_null() {
            Some(
                CStr::from_ptr(item as *const c_char)
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            None
        }
    };
    // SAFETY: ends the handle once.
    unsafe { pam_end(pamh, rc) };

    let mut lines = Vec::new();
    if let Some(sock) = log {
        let mut buf = vec![0u8; 65536];
        // --linger: lines that come after the login (a notify= hook's
        // supervisor) are collected for that long.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(linger_ms);
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => lines.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(_) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(_) => break,
            }
        }
    }
    let conv = conv.into_inner();
    let prompts: Vec<String> = conv
        .prompts
        .iter()
        .map(|(style, text)| format!("[{style},{}]", json_str(text)))
        .collect();
    let syslog_json: Vec<String> = lines.iter().map(|l| json_str(l)).collect();
    println!(
        "{{\"rc\":{rc},\"auth_ms\":{auth_ms},\"result\":\"{}\",\"prompts\":[{}],\"authtok\":{},\"setcred\":{},\"syslog\":[{}]}}",
        result_name(rc),
        prompts.join(","),
        tok.map(|t| json_str(&t)).unwrap_or_else(|| "null".into()),
        cred.map(|c| c.to_string()).unwrap_or_else(|| "null".into()),
        syslog_json.join(",")
    );
}
