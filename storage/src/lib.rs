//! Storage for the appliance's derived data.
//!
//! Role: one small key-value interface ([`KvStore`]) over named [`Table`]s,
//! with atomic multi-table [`WriteBatch`]es and consistent snapshots. The
//! sequencer's derived state, receipts and indexes live behind it, so the
//! encryption layer can wrap any backend without the sequencer noticing.
//!
//! Backends: [`RedbStore`] (embedded, pure Rust, the default) and
//! [`MemoryStore`] (tests and benchmarks).

mod batch;
mod cipher;
mod error;
mod files;
mod memory;
mod redb_store;
mod sealed_file;
mod table;

pub use batch::{WriteBatch, WriteOp};
pub use cipher::{CipherError, RecordCipher, SharedCipher};
pub use error::{Result, StorageError};
pub use files::write_atomic;
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use sealed_file::{
    file_key_version, is_sealed, open_file, open_file_if, seal_file, seal_file_if,
};
pub use table::Table;

/// A key-value pair as returned by range scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The keys a range read covers: `start <= key < end` (to the table's end
/// without `end`), in key order, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange<'a> {
    /// First key that may be read.
    pub start: &'a [u8],
    /// First key past the range; `None` runs to the table's end.
    pub end: Option<&'a [u8]>,
    /// Most entries returned.
    pub limit: usize,
}

impl<'a> KeyRange<'a> {
    /// Keys from `start` up to (not including) `end`, at most `limit`.
    pub fn new(start: &'a [u8], end: Option<&'a [u8]>, limit: usize) -> Self {
        Self { start, end, limit }
    }

    /// Up to `limit` keys from `start` to the table's end.
    pub fn from(start: &'a [u8], limit: usize) -> Self {
        Self::new(start, None, limit)
    }
}

/// Called for each entry of a whole-table scan.
pub type ScanFn<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// Reads from one consistent view of the store.
pub trait KvRead {
    /// The value under `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The entries of `table` whose keys lie in `keys`, in key order.
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>>;
    /// Calls `f` on every entry of `table`, in the backend's order. Use this
    /// for whole-table loads: unlike paging through [`KvRead::range`] it
    /// works when the stored keys are blinded.
    fn scan(&self, table: Table, f: &mut ScanFn<'_>) -> Result<()> {
        const PAGE: usize = 10_000;
        let mut start: Vec<u8> = Vec::new();
        loop {
            let page = self.range(table, KeyRange::from(&start, PAGE))?;
            for (k, v) in &page {
                f(k, v)?;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    start = k.clone();
                    start.push(0);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// A store: reads, atomic batched writes and snapshots.
pub trait KvStore: KvRead + Send + Sync + 'static {
    /// Applies every operation of `batch` atomically. With `durable` the call
    /// returns only once the data is on disk; without it a crash may lose
    /// this batch (callers that can rebuild, like derived state, use that).
    /// Operations on one table apply in the order they were queued; a
    /// backend may apply different tables in any order, since no operation
    /// reads another table.
    fn write(&self, batch: WriteBatch, durable: bool) -> Result<()>;
    /// A read view that later writes do not change.
    fn snapshot(&self) -> Result<Box<dyn KvRead + Send + Sync>>;
}
