//! [`EncryptedStore`]: any [`KvStore`] with every value sealed and every
//! revealing key blinded.
//!
//! Keys that are ordinals (block numbers) or fixed names stay as they are,
//! so range reads by block keep working. Keys that would reveal an address
//! or a hash become a keyed hash (16 bytes; for account storage, the
//! blinded address followed by the blinded slot, so an account's storage
//! can still be dropped by prefix). The plain key travels inside the sealed
//! value, which lets whole-table scans recover it and lets `get` confirm
//! the record is the one asked for.

use std::sync::Arc;
use storage::{
    Entry, KeyRange, KvRead, KvStore, Result, ScanFn, SharedCipher, StorageError, Table,
    WriteBatch, WriteOp,
};

const PART: usize = 16;

#[derive(Clone, Copy)]
enum Scheme {
    /// Key stored as is (ordinal or fixed name).
    Plain,
    /// Key blinded; `prefix` bytes of it blinded separately in front.
    Blind { prefix: Option<usize> },
}

fn scheme(table: Table) -> Scheme {
    match table {
        Table::Blocks
        | Table::StateRoots
        | Table::Meta
        | Table::ProverJobs
        | Table::TrieNodeLog => Scheme::Plain,
        Table::Storage => Scheme::Blind { prefix: Some(20) },
        Table::Accounts | Table::Code | Table::BlockHashes | Table::TxIndex | Table::TrieNodes => {
            Scheme::Blind { prefix: None }
        }
    }
}

pub(crate) fn context(table: Table, physical: &[u8]) -> Vec<u8> {
    let mut c = b"kv/".to_vec();
    c.extend_from_slice(table.name().as_bytes());
    c.push(b'/');
    c.extend_from_slice(physical);
    c
}

struct Codec {
    cipher: SharedCipher,
}

impl Codec {
    fn blind_part(&self, table: Table, part: &str, key: &[u8]) -> [u8; PART] {
        let mut domain = table.name().as_bytes().to_vec();
        domain.extend_from_slice(part.as_bytes());
        self.cipher.blind(&domain, key)[..PART]
            .try_into()
            .expect("PART bytes")
    }

    fn physical(&self, table: Table, key: &[u8]) -> Result<Vec<u8>> {
        match scheme(table) {
            Scheme::Plain => Ok(key.to_vec()),
            Scheme::Blind { prefix: None } => Ok(self.blind_part(table, "/key", key).to_vec()),
            Scheme::Blind { prefix: Some(p) } => {
                if key.len() < p {
                    return Err(StorageError::Unsupported {
                        table: table.name(),
                        message: format!("keys are at least {p} bytes"),
                    });
                }
                let mut k = self.blind_part(table, "/prefix", &key[..p]).to_vec();
                k.extend_from_slice(&self.blind_part(table, "/key", key));
                Ok(k)
            }
        }
    }

    fn seal(&self, table: Table, physical: &[u8], key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        let plain = match scheme(table) {
            Scheme::Plain => value.to_vec(),
            Scheme::Blind { .. } => {
                let mut p = Vec::with_capacity(2 + key.len() + value.len());
                p.extend_from_slice(&(key.len() as u16).to_be_bytes());
                p.extend_from_slice(key);
                p.extend_from_slice(value);
                p
            }
        };
        self.cipher
            .seal(&context(table, physical), &plain)
            .map_err(|reason| StorageError::Sealed {
                table: table.name(),
                key: hex::encode(physical),
                reason,
            })
    }

    /// Opens a stored record into (plain key, value).
    fn open(&self, table: Table, physical: &[u8], sealed: &[u8]) -> Result<Entry> {
        let sealed_err = |reason| StorageError::Sealed {
            table: table.name(),
            key: hex::encode(physical),
            reason,
        };
        let plain = self
            .cipher
            .open(&context(table, physical), sealed)
            .map_err(sealed_err)?;
        match scheme(table) {
            Scheme::Plain => Ok((physical.to_vec(), plain)),
            Scheme::Blind { .. } => {
                let corrupt = || StorageError::Corrupt {
                    table,
                    key: hex::encode(physical),
                    message: "sealed value lacks its key".into(),
                };
                let len =
                    u16::from_be_bytes(plain.get(..2).ok_or_else(corrupt)?.try_into().expect("2"))
                        as usize;
                let key = plain.get(2..2 + len).ok_or_else(corrupt)?.to_vec();
                Ok((key, plain[2 + len..].to_vec()))
            }
        }
    }

    fn get(
        &self,
        read: &(impl KvRead + ?Sized),
        table: Table,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let physical = self.physical(table, key)?;
        let Some(sealed) = read.get(table, &physical)? else {
            return Ok(None);
        };
        let (stored_key, value) = self.open(table, &physical, &sealed)?;
        if stored_key != key {
            return Err(StorageError::Corrupt {
                table,
                key: hex::encode(&physical),
                message: "record belongs to another key".into(),
            });
        }
        Ok(Some(value))
    }

    fn range(
        &self,
        read: &(impl KvRead + ?Sized),
        table: Table,
        keys: KeyRange<'_>,
    ) -> Result<Vec<Entry>> {
        if let Scheme::Blind { .. } = scheme(table) {
            return Err(StorageError::Unsupported {
                table: table.name(),
                message: "keys are blinded; ranges have no order (use scan)".into(),
            });
        }
        read.range(table, keys)?
            .into_iter()
            .map(|(k, v)| self.open(table, &k, &v))
            .collect()
    }

    fn scan(&self, read: &(impl KvRead + ?Sized), table: Table, f: &mut ScanFn<'_>) -> Result<()> {
        read.scan(table, &mut |k, v| {
            let (key, value) = self.open(table, k, v)?;
            f(&key, &value)
        })
    }
}

/// Records sealed by a [`RecordCipher`], read through `R`: the live store
/// ([`EncryptedStore`]) or one of its snapshots.
pub struct Sealed<R> {
    inner: R,
    codec: Arc<Codec>,
}

/// A store whose records are sealed by a [`RecordCipher`].
pub type EncryptedStore = Sealed<Arc<dyn KvStore>>;

impl<R> std::fmt::Debug for Sealed<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore").finish_non_exhaustive()
    }
}

impl EncryptedStore {
    /// Wraps `inner`; everything written through it is sealed by `cipher`.
    pub fn new(inner: Arc<dyn KvStore>, cipher: SharedCipher) -> Self {
        Self {
            inner,
            codec: Arc::new(Codec { cipher }),
        }
    }

    /// What a store's users read and write: `inner` itself on a node
    /// without encryption at rest, or `inner` sealed by `cipher`.
    pub fn wrap_if(inner: Arc<dyn KvStore>, cipher: Option<SharedCipher>) -> Arc<dyn KvStore> {
        match cipher {
            Some(c) => Arc::new(Self::new(inner, c)),
            None => inner,
        }
    }
}

impl<R> KvRead for Sealed<R>
where
    R: std::ops::Deref + Send + Sync,
    R::Target: KvRead,
{
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.codec.get(&*self.inner, table, key)
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> Result<Vec<Entry>> {
        self.codec.range(&*self.inner, table, keys)
    }
    fn scan(&self, table: Table, f: &mut ScanFn<'_>) -> Result<()> {
        self.codec.scan(&*self.inner, table, f)
    }
}

impl KvStore for EncryptedStore {
    fn write(&self, batch: WriteBatch, durable: bool) -> Result<()> {
        let mut sealed = WriteBatch::new();
        for op in batch.into_ops() {
            sealed.push(match op {
                WriteOp::Put(t, k, v) => {
                    let physical = self.codec.physical(t, &k)?;
                    let value = self.codec.seal(t, &physical, &k, &v)?;
                    WriteOp::Put(t, physical, value)
                }
                WriteOp::Delete(t, k) => WriteOp::Delete(t, self.codec.physical(t, &k)?),
                WriteOp::DeletePrefix(t, prefix) => match scheme(t) {
                    Scheme::Plain => WriteOp::DeletePrefix(t, prefix),
                    Scheme::Blind { prefix: Some(p) } if prefix.len() == p => {
                        WriteOp::DeletePrefix(
                            t,
                            self.codec.blind_part(t, "/prefix", &prefix).to_vec(),
                        )
                    }
                    Scheme::Blind { .. } => {
                        return Err(StorageError::Unsupported {
                            table: t.name(),
                            message:
                                "prefix deletes over blinded keys need the exact prefix length"
                                    .into(),
                        })
                    }
                },
                WriteOp::Replace { table, .. } => {
                    return Err(StorageError::Unsupported {
                        table: table.name(),
                        message: "compare-and-set works on the raw store only".into(),
                    })
                }
            });
        }
        self.inner.write(sealed, durable)
    }

    fn snapshot(&self) -> Result<Box<dyn KvRead + Send + Sync>> {
        Ok(Box::new(Sealed {
            inner: self.inner.snapshot()?,
            codec: self.codec.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::{tests::keys, Cipher};
    use storage::{CipherError, MemoryStore};

    fn setup() -> (Arc<MemoryStore>, EncryptedStore) {
        let raw = Arc::new(MemoryStore::new());
        let cipher: SharedCipher = Arc::new(Cipher::new(&keys(&[1], 1)));
        (raw.clone(), EncryptedStore::new(raw, cipher))
    }

    fn raw_entries(raw: &MemoryStore, table: Table) -> Vec<Entry> {
        raw.range(table, KeyRange::from(&[], usize::MAX)).unwrap()
    }

    #[test]
    fn values_sealed_and_revealing_keys_blinded() {
        let (raw, store) = setup();
        let addr = [0x42u8; 20];
        let mut slot_key = addr.to_vec();
        slot_key.extend_from_slice(&[7u8; 32]);
        let mut b = WriteBatch::new();
        b.put(
            Table::Accounts,
            addr.to_vec(),
            b"balance=123456789".to_vec(),
        );
        b.put(Table::Storage, slot_key.clone(), [9u8; 32].to_vec());
        b.put(
            Table::Blocks,
            5u64.to_be_bytes().to_vec(),
            b"block five".to_vec(),
        );
        store.write(b, true).unwrap();

        assert_eq!(
            store.get(Table::Accounts, &addr).unwrap().unwrap(),
            b"balance=123456789"
        );
        assert_eq!(
            store.get(Table::Storage, &slot_key).unwrap().unwrap(),
            [9u8; 32]
        );
        for table in [Table::Accounts, Table::Storage, Table::Blocks] {
            for (k, v) in raw_entries(&raw, table) {
                for needle in [&addr[..], &[9u8; 32][..], b"balance", b"block five"] {
                    assert!(!k.windows(needle.len()).any(|w| w == needle));
                    assert!(!v.windows(needle.len()).any(|w| w == needle));
                }
            }
        }
        // Ordinal keys stay plain so block ranges work.
        assert_eq!(raw_entries(&raw, Table::Blocks)[0].0, 5u64.to_be_bytes());
        let blocks = store.range(Table::Blocks, KeyRange::from(&[], 10)).unwrap();
        assert_eq!(blocks[0].1, b"block five");
        assert!(store
            .range(Table::Accounts, KeyRange::from(&[], 10))
            .is_err());

        // Scans give plain keys back; prefix deletes still drop an account's storage.
        let mut seen = Vec::new();
        store
            .scan(Table::Storage, &mut |k, _| {
                seen.push(k.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![slot_key.clone()]);
        let mut b = WriteBatch::new();
        b.delete_prefix(Table::Storage, addr.to_vec());
        store.write(b, true).unwrap();
        assert_eq!(store.get(Table::Storage, &slot_key).unwrap(), None);
    }

    #[test]
    fn swapped_and_modified_records_are_named_not_read() {
        let (raw, store) = setup();
        let mut b = WriteBatch::new();
        b.put(Table::Accounts, vec![1; 20], b"alice".to_vec());
        b.put(Table::Accounts, vec![2; 20], b"bob".to_vec());
        store.write(b, true).unwrap();
        let entries = raw_entries(&raw, Table::Accounts);

        // Swap the two sealed values.
        let mut b = WriteBatch::new();
        b.put(Table::Accounts, entries[0].0.clone(), entries[1].1.clone());
        b.put(Table::Accounts, entries[1].0.clone(), entries[0].1.clone());
        raw.write(b, true).unwrap();
        let err = store.get(Table::Accounts, &[1; 20]).unwrap_err();
        match &err {
            StorageError::Sealed { table, key, reason } => {
                assert_eq!(*table, "accounts");
                assert!(!key.is_empty());
                assert_eq!(*reason, CipherError::Tampered);
            }
            other => panic!("unexpected {other}"),
        }
        assert!(err.to_string().contains("accounts/"));

        // Flip one ciphertext byte.
        let mut v = entries[0].1.clone();
        let last = v.len() - 1;
        v[last] ^= 1;
        let mut b = WriteBatch::new();
        b.put(Table::Accounts, entries[0].0.clone(), v);
        raw.write(b, true).unwrap();
        assert!(store.scan(Table::Accounts, &mut |_, _| Ok(())).is_err());
    }
}
