//! Module arguments (pam.d) and config.toml, as `config::from_args` reads
//! them. The input is text: one pam.d argument per line, then, after a
//! line `---`, the config file (without that line there is none).
//!
//! - Never panics.
//! - Fail closed: an unknown argument is always an error.
//! - Whatever is accepted is in range: window, rate limit, absolute paths,
//!   a secret template that expands to an absolute path, group names, and
//!   no forward_pass with try_first_pass/use_first_pass.
//! - pam.d wins: the last `window=`/`prompt=` argument is what is in force.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pam_totp::config;
use pam_totp::config::FirstPass;
use pam_totp::core::policy::MAX_WINDOW;
use pam_totp::sys::users::UserInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (args, file) = match text.strip_prefix("---\n") {
        Some(f) => ("", Some(f.to_owned())),
        None => match text.split_once("\n---\n") {
            Some((a, f)) => (a, Some(f.to_owned())),
            None => (text, None),
        },
    };
    let args: Vec<String> = args.lines().map(str::to_owned).collect();
    let read = |_: &Path| -> Result<Option<String>, config::ConfigFileError> { Ok(file.clone()) };
    let settings = match config::from_args(&args, &read) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    let key = |a: &String| a.split_once('=').map_or(a.clone(), |(k, _)| k.to_owned());
    for a in &args {
        let name = key(a);
        assert!(
            name == "config" || config::keys::key(&name).is_some(),
            "unknown argument {a:?} accepted"
        );
    }
    assert!(settings.policy.window <= MAX_WINDOW);
    let rl = settings.policy.rate_limit;
    assert!((1..=1000).contains(&rl.max_failures) && (1..=86_400).contains(&rl.seconds));
    assert!(settings.state_dir.is_absolute() && settings.host_key.is_absolute());
    let user = UserInfo {
        name: "alice".into(),
        uid: 1000,
        gid: 1000,
        home: "/home/alice".into(),
    };
    let secret = config::expand_secret(&settings.secret, &user)
        .unwrap_or_else(|e| panic!("accepted secret template does not expand: {e}"));
    assert!(secret.is_absolute());
    for g in [&settings.require_group, &settings.exempt_group]
        .into_iter()
        .flatten()
    {
        assert!(!g.is_empty() && !g.contains(|c: char| c == '/' || c.is_whitespace()));
    }
    assert!(!(settings.forward_pass && settings.first_pass != FirstPass::Prompt));

    let last = |name: &str| {
        args.iter()
            .rev()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
    };
    if let Some(w) = last("window") {
        assert_eq!(Ok(settings.policy.window), w.parse::<u64>());
    }
    if let Some(p) = last("prompt") {
        assert_eq!(settings.prompt.as_deref(), Some(p));
    }
});
