//! Re-sealing the block log in the producer's idle time: the producer owns
//! the log, so the copy and the final swap never race an append.

use super::Producer;
use crate::wal::{ResealProgress, WalError};
use parking_lot::Mutex;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

/// Longest one idle slice spends on the re-seal, so a block is never late
/// by more than about this.
const SLICE: Duration = Duration::from_millis(5);

/// A request to move the block log onto the current data key, and where
/// that stands (shared by the producer and whoever asks).
#[derive(Debug, Default)]
pub(crate) struct ResealControl {
    requested: AtomicBool,
    state: Mutex<Option<Result<ResealProgress, String>>>,
}

impl ResealControl {
    /// Asks for a re-seal onto the key current when the producer gets to it.
    pub(crate) fn request(&self) {
        *self.state.lock() = None;
        self.requested.store(true, Ordering::Release);
    }

    /// The latest progress of the last request (None before its first step).
    pub(crate) fn state(&self) -> Option<Result<ResealProgress, String>> {
        self.state.lock().clone()
    }
}

impl Producer {
    /// One slice of a requested re-seal; false when none is requested.
    /// A failure ends the request and is reported, not fatal — the old log
    /// stays in use — unless it left the log unable to take appends.
    pub(super) fn reseal_slice(&mut self) -> Result<bool, crate::SequencerError> {
        if !self.reseal.requested.load(Ordering::Acquire) {
            return Ok(false);
        }
        let result = self.log.reseal_step(Instant::now() + SLICE);
        let finished = match &result {
            Ok(p) => p.complete,
            Err(e) => {
                tracing::error!(error = %e, "block log re-seal stopped");
                true
            }
        };
        if finished {
            self.reseal.requested.store(false, Ordering::Release);
        }
        let (state, fatal) = match result {
            Ok(p) => (Ok(p), None),
            Err(e) => (
                Err(e.to_string()),
                matches!(e, WalError::Unusable(_)).then_some(e),
            ),
        };
        *self.reseal.state.lock() = Some(state);
        match fatal {
            Some(e) => Err(e.into()),
            None => Ok(true),
        }
    }
}
