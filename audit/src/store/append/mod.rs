//! Appending a batch: one transaction that locks the tree state, inserts the
//! events as the next leaves, and stores the new signed head. Each driver
//! inserts its own way (`any.rs`: SQLite; `pg.rs`: Postgres arrays); the
//! tree state they share is `tree.rs`.

mod any;
mod pg;
mod tree;

use super::AuditDb;
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    AuditError,
};

impl AuditDb {
    /// Appends `events` (from [`StoredEvent::pending`]; their ids are
    /// assigned here) and returns the signed head that now covers them.
    pub async fn append(
        &self,
        events: &mut [StoredEvent],
        signer: &HeadSigner,
    ) -> Result<TreeHead, AuditError> {
        match &self.pg {
            // Postgres appends on its native pool.
            Some(pg) => pg::append(self, pg, events, signer).await,
            None => any::append(self, events, signer).await,
        }
    }
}
