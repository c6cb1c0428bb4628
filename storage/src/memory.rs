use crate::{
    batch::prefix_end, Entry, KeyRange, KvRead, KvStore, Result, Table, WriteBatch, WriteOp,
};
use parking_lot::RwLock;
use std::{collections::BTreeMap, sync::Arc};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// An in-memory store with the same semantics as the disk backends.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: Arc<RwLock<Arc<Tables>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn read_range(tables: &Tables, table: Table, keys: KeyRange<'_>) -> Vec<Entry> {
    let Some(t) = tables.get(&table) else {
        return Vec::new();
    };
    t.range(keys.start.to_vec()..)
        .take_while(|(k, _)| keys.end.is_none_or(|e| k.as_slice() < e))
        .take(keys.limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl KvRead for MemoryStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tables
            .read()
            .get(&table)
            .and_then(|t| t.get(key))
            .cloned())
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
        Ok(read_range(&self.tables.read(), table, keys))
    }
}

struct MemorySnapshot(Arc<Tables>);

impl KvRead for MemorySnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(&table).and_then(|t| t.get(key)).cloned())
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
        Ok(read_range(&self.0, table, keys))
    }
}

impl KvStore for MemoryStore {
    fn write(&self, batch: WriteBatch, _durable: bool) -> Result<()> {
        let mut guard = self.tables.write();
        // Copy-on-write keeps outstanding snapshots unchanged.
        let tables = Arc::make_mut(&mut guard);
        for op in batch.into_ops() {
            match op {
                WriteOp::Put(t, k, v) => {
                    tables.entry(t).or_default().insert(k, v);
                }
                WriteOp::Delete(t, k) => {
                    tables.entry(t).or_default().remove(&k);
                }
                WriteOp::Replace {
                    table,
                    key,
                    expected,
                    value,
                } => {
                    let t = tables.entry(table).or_default();
                    if t.get(&key) == Some(&expected) {
                        t.insert(key, value);
                    }
                }
                WriteOp::DeletePrefix(t, prefix) => {
                    let table = tables.entry(t).or_default();
                    let end = prefix_end(&prefix);
                    let doomed: Vec<Vec<u8>> = table
                        .range(prefix.clone()..)
                        .take_while(|(k, _)| end.as_ref().is_none_or(|e| *k < e))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        table.remove(&k);
                    }
                }
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + Send + Sync>> {
        Ok(Box::new(MemorySnapshot(self.tables.read().clone())))
    }
}
