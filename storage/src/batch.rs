use crate::Table;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put(Table, Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Table, Vec<u8>),
    /// Remove every key with this prefix (an account's storage, say).
    DeletePrefix(Table, Vec<u8>),
    /// Set `key` to `value` only if it still holds `expected` (re-encryption
    /// must not overwrite a value written since it was read).
    Replace {
        /// Table.
        table: Table,
        /// Key.
        key: Vec<u8>,
        /// Value the key must hold for the write to happen.
        expected: Vec<u8>,
        /// New value.
        value: Vec<u8>,
    },
}

impl WriteOp {
    /// The table the operation writes.
    pub fn table(&self) -> Table {
        match self {
            WriteOp::Put(t, ..) | WriteOp::Delete(t, _) | WriteOp::DeletePrefix(t, _) => *t,
            WriteOp::Replace { table, .. } => *table,
        }
    }

    /// The one key the operation writes (`None` for a prefix delete).
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            WriteOp::Put(_, k, _) | WriteOp::Delete(_, k) | WriteOp::Replace { key: k, .. } => {
                Some(k)
            }
            WriteOp::DeletePrefix(..) => None,
        }
    }
}

/// Operations applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Queues a put.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Put(table, key.into(), value.into()));
    }
    /// Queues a delete.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::Delete(table, key.into()));
    }
    /// Queues a prefix delete.
    pub fn delete_prefix(&mut self, table: Table, prefix: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp::DeletePrefix(table, prefix.into()));
    }
    /// Queues a compare-and-set (see [`WriteOp::Replace`]).
    pub fn replace(&mut self, table: Table, key: Vec<u8>, expected: Vec<u8>, value: Vec<u8>) {
        self.ops.push(WriteOp::Replace {
            table,
            key,
            expected,
            value,
        });
    }
    /// Queues an operation as is.
    pub fn push(&mut self, op: WriteOp) {
        self.ops.push(op);
    }
    /// The queued operations in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
    /// Takes the operations out.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (prefix of all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_rolls_over_ff_bytes() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
