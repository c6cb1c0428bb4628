//! Value sent per principal per UTC day, for daily caps in policies.
//!
//! Reserved when a transaction is submitted, released if it is not
//! admitted (one dropped later at execution still counts: the cap errs on
//! the side of the bank). Kept in memory and flushed
//! to a file so a restart does not reset the day.

use crate::store::{unix_now, DocDir, JsonDoc, StoreError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// File of today's totals inside the access directory.
pub const SPEND_FILE: &str = "spend.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Day {
    day: u64,
    gwei: HashMap<String, u64>,
}

/// Daily totals.
#[derive(Debug)]
pub struct SpendTracker {
    doc: JsonDoc,
    today: Mutex<(Day, bool)>,
}

fn today() -> u64 {
    unix_now() / 86_400
}

impl SpendTracker {
    /// Opens the totals kept in `docs`.
    pub fn open(docs: &DocDir) -> Result<Self, StoreError> {
        let doc = docs.doc(SPEND_FILE);
        let day: Day = doc.read()?;
        Ok(Self {
            doc,
            today: Mutex::new((day, false)),
        })
    }

    fn roll(day: &mut Day) {
        let t = today();
        if day.day != t {
            *day = Day {
                day: t,
                gwei: HashMap::new(),
            };
        }
    }

    /// Adds `gwei` to today's total for `principal` and returns the new
    /// total. Reserving before the cap is checked (rather than peeking and
    /// adding afterwards) keeps two concurrent submissions from both
    /// passing a daily cap; undo with [`release`](Self::release).
    pub fn reserve(&self, principal: &str, gwei: u64) -> u64 {
        let mut guard = self.today.lock();
        Self::roll(&mut guard.0);
        // Looked up before inserting: the key is copied once a day, not
        // once a transaction.
        let totals = &mut guard.0.gwei;
        let now = match totals.get_mut(principal) {
            Some(total) => {
                *total = total.saturating_add(gwei);
                *total
            }
            None => {
                totals.insert(principal.to_owned(), gwei);
                gwei
            }
        };
        if gwei > 0 {
            guard.1 = true;
        }
        now
    }

    /// Gives back a reservation whose transaction was not admitted.
    pub fn release(&self, principal: &str, gwei: u64) {
        if gwei == 0 {
            return;
        }
        let mut guard = self.today.lock();
        Self::roll(&mut guard.0);
        if let Some(total) = guard.0.gwei.get_mut(principal) {
            *total = total.saturating_sub(gwei);
            guard.1 = true;
        }
    }

    /// Persists when something changed since the last flush.
    pub fn flush(&self) -> Result<(), StoreError> {
        let snapshot = {
            let mut guard = self.today.lock();
            if !guard.1 {
                return Ok(());
            }
            guard.1 = false;
            guard.0.clone()
        };
        self.doc.update(|d: &mut Day| *d = snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_accumulate_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = SpendTracker::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        assert_eq!(s.reserve("p", 5), 5);
        assert_eq!(s.reserve("p", 3), 8);
        s.release("p", 3);
        s.flush().unwrap();
        let again = SpendTracker::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        assert_eq!(again.reserve("p", 0), 5);
        assert_eq!(again.reserve("q", 1), 1);
    }
}
