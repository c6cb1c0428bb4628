use crate::{
    batch::prefix_end, Entry, KeyRange, KvRead, KvStore, Result, StorageError, Table, WriteBatch,
    WriteOp,
};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use std::{ops::Bound, path::Path};

fn def(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// The embedded default backend: one redb file.
///
/// redb commits are atomic and crash-safe; non-durable commits become
/// durable with the next durable one, which is what derived data needs.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the store file at `path` and ensures every table exists.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(|e| StorageError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let txn = db
            .begin_write()
            .map_err(|e| StorageError::backend(None, e))?;
        for table in Table::ALL {
            txn.open_table(def(table))
                .map_err(|e| StorageError::backend(Some(table), e))?;
        }
        txn.commit().map_err(|e| StorageError::backend(None, e))?;
        Ok(Self { db })
    }
}

fn get_in(txn: &ReadTransaction, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let t = txn
        .open_table(def(table))
        .map_err(|e| StorageError::backend(Some(table), e))?;
    let value = t
        .get(key)
        .map_err(|e| StorageError::backend(Some(table), e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

fn range_in(txn: &ReadTransaction, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
    let t = txn
        .open_table(def(table))
        .map_err(|e| StorageError::backend(Some(table), e))?;
    let upper = match keys.end {
        Some(e) => Bound::Excluded(e),
        None => Bound::Unbounded,
    };
    let iter = t
        .range::<&[u8]>((Bound::Included(keys.start), upper))
        .map_err(|e| StorageError::backend(Some(table), e))?;
    let mut out = Vec::new();
    for item in iter.take(keys.limit) {
        let (k, v) = item.map_err(|e| StorageError::backend(Some(table), e))?;
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

impl RedbStore {
    fn read_txn(&self) -> Result<ReadTransaction> {
        self.db
            .begin_read()
            .map_err(|e| StorageError::backend(None, e))
    }
}

impl KvRead for RedbStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.read_txn()?, table, key)
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
        range_in(&self.read_txn()?, table, keys)
    }
}

struct RedbSnapshot(ReadTransaction);

impl KvRead for RedbSnapshot {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.0, table, key)
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
        range_in(&self.0, table, keys)
    }
}

/// Puts each table's keyed operations in key order, between its prefix
/// deletes (which stay where they were, as barriers). Keys arrive in hash
/// order — trie nodes, blinded accounts, transaction hashes — so each
/// insert walked the B-tree down a different path; in key order
/// neighbouring inserts share the path and the leaf. The sort is stable, so
/// of two writes to one key the later still wins, and keys of different
/// tables never mix (`ops` is already grouped by table).
fn in_key_order(ops: &mut [WriteOp]) {
    for run in ops.chunk_by_mut(|a, b| a.table() == b.table()) {
        for segment in run.split_mut(|op| matches!(op, WriteOp::DeletePrefix(..))) {
            segment.sort_by(|a, b| a.key().cmp(&b.key()));
        }
    }
}

/// One operation on its (open) table.
fn apply(
    t: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    op: &WriteOp,
) -> std::result::Result<(), redb::StorageError> {
    match op {
        WriteOp::Put(_, k, v) => {
            t.insert(k.as_slice(), v.as_slice())?;
        }
        WriteOp::Delete(_, k) => {
            t.remove(k.as_slice())?;
        }
        WriteOp::Replace {
            key,
            expected,
            value,
            ..
        } => {
            let current = t
                .get(key.as_slice())?
                .map(|v| v.value() == expected.as_slice());
            if current == Some(true) {
                t.insert(key.as_slice(), value.as_slice())?;
            }
        }
        WriteOp::DeletePrefix(_, prefix) => {
            let end = prefix_end(prefix);
            let upper = match &end {
                Some(e) => Bound::Excluded(e.as_slice()),
                None => Bound::Unbounded,
            };
            t.retain_in::<&[u8], _>((Bound::Included(prefix.as_slice()), upper), |_, _| false)?;
        }
    }
    Ok(())
}

impl KvStore for RedbStore {
    fn write(&self, batch: WriteBatch, durable: bool) -> Result<()> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| StorageError::backend(None, e))?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StorageError::backend(None, e))?;
        // Each table is opened once per batch: opening and closing a redb
        // table is a lookup and an update of the table tree, which per
        // operation cost the derive stage a twentieth of its writing time.
        // Tables are independent, so grouping by table (a stable sort keeps
        // each table's own order) changes no outcome.
        let mut ops = batch.into_ops();
        ops.sort_by_key(WriteOp::table);
        in_key_order(&mut ops);
        for run in ops.chunk_by(|a, b| a.table() == b.table()) {
            let table = run[0].table();
            let mut t = txn
                .open_table(def(table))
                .map_err(|e| StorageError::backend(Some(table), e))?;
            for op in run {
                apply(&mut t, op).map_err(|e| StorageError::backend(Some(table), e))?;
            }
        }
        txn.commit().map_err(|e| StorageError::backend(None, e))?;
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + Send + Sync>> {
        Ok(Box::new(RedbSnapshot(self.read_txn()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn exercise(store: &dyn KvStore) {
        let mut b = WriteBatch::new();
        b.put(Table::Storage, vec![1, 1], vec![10]);
        b.put(Table::Storage, vec![1, 2], vec![20]);
        b.put(Table::Storage, vec![2, 1], vec![30]);
        store.write(b, true).unwrap();
        let snap = store.snapshot().unwrap();

        let mut b = WriteBatch::new();
        b.delete_prefix(Table::Storage, vec![1]);
        store.write(b, false).unwrap();

        assert_eq!(store.get(Table::Storage, &[1, 1]).unwrap(), None);
        assert_eq!(store.get(Table::Storage, &[2, 1]).unwrap(), Some(vec![30]));
        // The snapshot still sees the state before the prefix delete.
        assert_eq!(snap.get(Table::Storage, &[1, 2]).unwrap(), Some(vec![20]));
        assert_eq!(
            snap.range(Table::Storage, KeyRange::new(&[1], Some(&[2]), 10))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .range(Table::Storage, KeyRange::from(&[0], 10))
                .unwrap()
                .len(),
            1
        );

        // Replace writes only over the value it expects.
        let mut b = WriteBatch::new();
        b.replace(Table::Storage, vec![2, 1], vec![99], vec![1]);
        b.replace(Table::Storage, vec![7], vec![30], vec![1]);
        store.write(b, false).unwrap();
        assert_eq!(store.get(Table::Storage, &[2, 1]).unwrap(), Some(vec![30]));
        assert_eq!(store.get(Table::Storage, &[7]).unwrap(), None);
        let mut b = WriteBatch::new();
        b.replace(Table::Storage, vec![2, 1], vec![30], vec![31]);
        store.write(b, false).unwrap();
        assert_eq!(store.get(Table::Storage, &[2, 1]).unwrap(), Some(vec![31]));

        let mut seen = Vec::new();
        store
            .scan(Table::Storage, &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![(vec![2, 1], vec![31])]);
    }

    /// redb applies a table's writes in key order; what a batch leaves
    /// must still be what applying it in order leaves: the later of two
    /// writes to a key wins, a delete after a put removes it, and a prefix
    /// delete removes what came before it but not what came after.
    #[test]
    fn writes_applied_in_key_order_leave_what_the_batch_says() {
        let mut b = WriteBatch::new();
        b.put(Table::Storage, vec![9, 1], vec![1]);
        b.put(Table::Accounts, vec![5], vec![1]);
        b.put(Table::Storage, vec![1, 7], vec![1]);
        b.put(Table::Storage, vec![9, 1], vec![2]);
        b.put(Table::Storage, vec![3], vec![1]);
        b.delete(Table::Storage, vec![3]);
        b.put(Table::Storage, vec![1, 8], vec![1]);
        b.delete_prefix(Table::Storage, vec![1]);
        b.put(Table::Storage, vec![1, 9], vec![3]);
        b.put(Table::Storage, vec![0], vec![4]);
        b.put(Table::Accounts, vec![5], vec![2]);
        b.replace(Table::Storage, vec![9, 1], vec![2], vec![5]);
        let contents = |store: &dyn KvStore| {
            let mut seen = Vec::new();
            for table in [Table::Storage, Table::Accounts] {
                store
                    .scan(table, &mut |k, v| {
                        seen.push((table, k.to_vec(), v.to_vec()));
                        Ok(())
                    })
                    .unwrap();
            }
            seen
        };
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStore::open(&dir.path().join("db.redb")).unwrap();
        redb.write(b.clone(), true).unwrap();
        let memory = MemoryStore::new();
        memory.write(b, true).unwrap();
        let expected = vec![
            (Table::Storage, vec![0], vec![4]),
            (Table::Storage, vec![1, 9], vec![3]),
            (Table::Storage, vec![9, 1], vec![5]),
            (Table::Accounts, vec![5], vec![2]),
        ];
        assert_eq!(contents(&memory), expected);
        assert_eq!(contents(&redb), expected);
    }

    #[test]
    fn redb_and_memory_backends_agree() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&RedbStore::open(&dir.path().join("db.redb")).unwrap());
        exercise(&MemoryStore::new());
    }

    #[test]
    fn redb_keeps_data_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            let mut b = WriteBatch::new();
            b.put(Table::Meta, b"k".to_vec(), b"v".to_vec());
            store.write(b, true).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.get(Table::Meta, b"k").unwrap(), Some(b"v".to_vec()));
    }
}
