//! One client of the fleet store's compare-and-set, for the concurrency
//! test in tests/fleet_conn.rs: connects, waits until its standard input
//! closes (the test releases every process at once), then increments a
//! decimal counter under one key with `Store::update`.
//!
//!   fleet_counter URL CREDENTIALS_FILE KEY_NAME TIMEOUT_MS HOLD_MS
//!
//! HOLD_MS: how long the decision takes (a sleep between reading the old
//! value and writing the new one), so that concurrent clients do overlap
//! and a lost update would show.
//!
//! Prints `attempts=N` and exits 0 on success; prints the error and exits 1
//! otherwise.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use pam_totp::state::fleet::{Credentials, StateUrl, Store, StoreConfig};

fn main() -> ExitCode {
    match run() {
        Ok(attempts) => {
            println!("attempts={attempts}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fleet_counter: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<u32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, creds, key, timeout_ms, hold_ms] = args.as_slice() else {
        return Err("usage: fleet_counter URL CREDENTIALS_FILE KEY_NAME TIMEOUT_MS HOLD_MS".into());
    };
    let hold = Duration::from_millis(hold_ms.parse().map_err(|_| "bad hold")?);
    let mut config = StoreConfig::new(StateUrl::parse(url).map_err(|e| e.to_string())?);
    config.credentials =
        Some(Credentials::load(&PathBuf::from(creds)).map_err(|e| format!("credentials {e}"))?);
    config.timeout = Duration::from_millis(timeout_ms.parse().map_err(|_| "bad timeout")?);
    let mut store = Store::connect(&config).map_err(|e| e.to_string())?;
    // Released by the test closing our stdin.
    let mut sink = Vec::new();
    std::io::stdin()
        .read_to_end(&mut sink)
        .map_err(|e| e.to_string())?;
    store.renew_deadline();
    let updated = store
        .update(
            key,
            &mut |old: Option<&[u8]>| -> Result<Option<Vec<u8>>, String> {
                let n: u64 = match old {
                    None => 0,
                    Some(b) => std::str::from_utf8(b)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("counter is not a number")?,
                };
                std::thread::sleep(hold);
                Ok(Some((n + 1).to_string().into_bytes()))
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(updated.attempts)
}
