//! Worker processes of the benchmarks, released together: each worker
//! prints `ready` once it is set up, then waits for its stdin to close;
//! the parent closes every stdin at once and collects what each printed
//! (examples/load_bench.rs, examples/fleet_bench.rs).

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::time::{Duration, Instant};

/// Waits until every child is ready, releases them all, and returns each
/// child's output and the wall time from the release to the last exit.
pub fn release_and_collect(children: &mut [Child]) -> Result<(Vec<String>, Duration), String> {
    let mut readers = Vec::with_capacity(children.len());
    for c in children.iter_mut() {
        let out = c.stdout.take().ok_or("a worker has no stdout pipe")?;
        let mut r = BufReader::new(out);
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err("a worker did not start".into());
        }
        readers.push(r);
    }
    let start = Instant::now();
    for c in children.iter_mut() {
        drop(c.stdin.take());
    }
    let mut outputs = Vec::with_capacity(readers.len());
    for r in &mut readers {
        let mut s = String::new();
        r.read_to_string(&mut s).map_err(|e| e.to_string())?;
        outputs.push(s);
    }
    for c in children.iter_mut() {
        c.wait().map_err(|e| e.to_string())?;
    }
    Ok((outputs, start.elapsed()))
}
