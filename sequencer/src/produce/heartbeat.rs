//! The producer's sign of life: the node's liveness probe asks how long ago
//! the production loop last went round, which tells a wedged producer (a
//! stuck fsync, a deadlock) from an idle one.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// When the production loop last went round.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    start: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// The loop went round now.
    pub(crate) fn beat(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long ago it last went round.
    pub(crate) fn age(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_grows_until_the_next_beat() {
        let h = Heartbeat::default();
        h.beat();
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.age() >= Duration::from_millis(30));
        h.beat();
        assert!(h.age() < Duration::from_millis(30));
    }
}
