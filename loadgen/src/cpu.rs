//! CPU time of a process over an interval, from `/proc/PID/stat` (user +
//! system, all threads), so the generator can say what the node and the
//! generator itself spent per transaction without a profiler attached.

use crate::{LoadgenError, Result};
use std::time::Duration;

/// Kernel clock ticks per second for `/proc` times; Linux fixes USER_HZ at
/// 100 on every architecture the appliance runs on.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time of one process since a starting point.
pub(super) struct Sampler {
    path: String,
    start: Duration,
}

fn read(path: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(path).map_err(|e| LoadgenError::file(path, e))?;
    parse(&stat).map_err(|why| LoadgenError::file(path, why))
}

fn parse(stat: &str) -> Result<Duration, String> {
    // The command name (field 2) may hold spaces; fields count from the
    // closing parenthesis. utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("no ')' after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("field {} unreadable", i + 3))
    };
    // After ')' the first field is the state (field 3).
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 1_000 / TICKS_PER_SECOND))
}

impl Sampler {
    pub(super) fn of_pid(pid: u32) -> Result<Self> {
        Self::at(format!("/proc/{pid}/stat"))
    }

    pub(super) fn of_self() -> Result<Self> {
        Self::at("/proc/self/stat".into())
    }

    fn at(path: String) -> Result<Self> {
        let start = read(&path)?;
        Ok(Self { path, start })
    }

    /// CPU spent since the sampler was made.
    pub(super) fn elapsed(&self) -> Result<Duration> {
        Ok(read(&self.path)?.saturating_sub(self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_ticks_are_read_past_a_command_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let line = "4242 (tokio ) worker) R 1 1 1 0 -1 4194560 10 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(parse(line).unwrap(), Duration::from_millis(3_250));
        assert!(parse("4242 tokio R 1").is_err());
        assert!(parse("4242 (x) R 1 1").is_err());
    }

    #[test]
    fn own_cpu_time_grows_while_spinning() {
        let s = Sampler::of_self().unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while s.elapsed().unwrap() < Duration::from_millis(50) {
            assert!(t.elapsed() < Duration::from_secs(60), "no CPU time seen");
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
            }
        }
    }
}
