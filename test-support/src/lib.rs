//! Helpers the workspace's tests share; see README.md.

mod pg;

pub use pg::{pg_server, PgDatabase, ScratchPg};

use std::{
    net::TcpListener,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Ports handed out lie in `[FIRST, FIRST + SPAN)`, below Linux's default
/// ephemeral range (32768–60999). A port from `bind(":0")` is ephemeral: the
/// kernel may reuse it as the source port of any outgoing connection before
/// the peer binds it, and a probe connecting to a port nobody listens on yet
/// can connect to itself — both made a peer fail to start now and then.
const FIRST: u32 = 20_000;
const SPAN: u32 = 12_000;

/// Ports are handed out in pairs: a server given `p` may also take `p + 1`
/// (an OpenBao dev server puts its cluster listener there).
const STRIDE: u32 = 2;

/// Offset of the next candidate; starts at a per-process value so test
/// binaries that overlap in time start far apart.
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback TCP port free now (and the one after it), never returned
/// before in this process.
///
/// # Panics
/// When no port in the range is free (a test helper: failing loudly is right).
pub fn free_port() -> u16 {
    let _ = NEXT.compare_exchange(u32::MAX, seed(), Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..SPAN / STRIDE {
        let offset = NEXT.fetch_add(STRIDE, Ordering::Relaxed) % SPAN;
        let port = u16::try_from(FIRST + offset).expect("range fits u16");
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 1) {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

fn seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % SPAN / STRIDE * STRIDE
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let distinct: HashSet<_> = ports.iter().flat_map(|p| [*p, p + 1]).collect();
        assert_eq!(distinct.len(), 2 * ports.len(), "pairs never overlap");
        for p in ports {
            assert!((20_000..32_000).contains(&p), "{p}");
        }
        let p = free_port();
        TcpListener::bind(("127.0.0.1", p)).expect("handed-out port is bindable");
    }

    #[test]
    fn parallel_callers_never_share_a_port() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..50).map(|_| free_port()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for p in h.join().unwrap() {
                assert!(all.insert(p), "port {p} handed out twice");
            }
        }
    }
}
