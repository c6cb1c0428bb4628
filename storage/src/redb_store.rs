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
