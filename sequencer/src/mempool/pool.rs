use super::{MempoolConfig, MempoolError};
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, B256, U256};
use state_transition::SharedGuard;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
    sync::Arc,
};

/// A transaction admitted to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledTx {
    /// The signed transaction.
    pub envelope: TxEnvelope,
    /// Recovered signer.
    pub sender: Address,
    /// Transaction hash.
    pub hash: B256,
    /// Arrival sequence (FIFO ordering across senders).
    pub arrival: u64,
    /// Policy guard of the principal who submitted it, re-applied to every
    /// call frame when the transaction is executed into a block.
    pub guard: TxGuard,
    /// When it was admitted (for the submission-to-inclusion latency).
    pub admitted: std::time::Instant,
}

/// Optional per-transaction call guard (compared by identity).
#[derive(Clone, Default)]
pub struct TxGuard(pub Option<SharedGuard>);

impl std::fmt::Debug for TxGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TxGuard(set)"
        } else {
            "TxGuard(none)"
        })
    }
}

impl PartialEq for TxGuard {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for TxGuard {}

impl PooledTx {
    fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }
}

/// Per-sender nonce queues plus a hash index.
#[derive(Debug, Default)]
pub struct Mempool {
    config: MempoolConfig,
    by_hash: HashMap<B256, Arc<PooledTx>>,
    senders: HashMap<Address, BTreeMap<u64, Arc<PooledTx>>>,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            ..Default::default()
        }
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// True when the hash is pooled.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<Arc<PooledTx>> {
        self.by_hash.get(hash).cloned()
    }

    /// Admits a transaction whose signature, chain id, size and gas were
    /// already checked, given the sender's current account nonce and balance.
    pub fn insert(
        &mut self,
        envelope: TxEnvelope,
        sender: Address,
        account_nonce: u64,
        balance: U256,
    ) -> Result<B256, MempoolError> {
        self.insert_guarded(envelope, sender, account_nonce, balance, TxGuard::default())
    }

    /// [`insert`](Self::insert) with the submitter's call guard attached.
    pub fn insert_guarded(
        &mut self,
        envelope: TxEnvelope,
        sender: Address,
        account_nonce: u64,
        balance: U256,
        guard: TxGuard,
    ) -> Result<B256, MempoolError> {
        let hash = *envelope.tx_hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::AlreadyKnown);
        }
        let nonce = envelope.nonce();
        if nonce < account_nonce {
            return Err(MempoolError::NonceTooLow {
                expected: account_nonce,
                got: nonce,
            });
        }
        if nonce > account_nonce + self.config.max_nonce_gap {
            return Err(MempoolError::NonceTooHigh {
                expected: account_nonce,
                got: nonce,
            });
        }
        let cost = U256::from(envelope.gas_limit())
            .saturating_mul(U256::from(envelope.max_fee_per_gas()))
            .saturating_add(envelope.value());
        if cost > balance {
            return Err(MempoolError::InsufficientFunds { balance, cost });
        }
        let queue = self.senders.entry(sender).or_default();
        let replaced = match queue.get(&nonce) {
            Some(old) => {
                let bump = |old: u128| old + old * self.config.replace_bump_percent / 100;
                let fee_ok = envelope.max_fee_per_gas() >= bump(old.envelope.max_fee_per_gas());
                let tip_ok = envelope
                    .max_priority_fee_per_gas()
                    .unwrap_or(envelope.max_fee_per_gas())
                    >= bump(
                        old.envelope
                            .max_priority_fee_per_gas()
                            .unwrap_or(old.envelope.max_fee_per_gas()),
                    );
                // A zero-fee pool can never bump: treat an equal-zero fee as underpriced.
                if !(fee_ok && tip_ok) || envelope.max_fee_per_gas() == 0 {
                    return Err(MempoolError::ReplacementUnderpriced);
                }
                Some(old.hash)
            }
            None if self.by_hash.len() >= self.config.capacity => {
                return Err(MempoolError::PoolFull);
            }
            None => None,
        };
        let tx = Arc::new(PooledTx {
            envelope,
            sender,
            hash,
            arrival: self.next_arrival,
            guard,
            admitted: std::time::Instant::now(),
        });
        self.next_arrival += 1;
        queue.insert(nonce, tx.clone());
        if let Some(old) = replaced {
            self.by_hash.remove(&old);
        }
        self.by_hash.insert(hash, tx);
        Ok(hash)
    }

    /// The nonce a sender's next new transaction should use: one past the
    /// contiguous run of pooled nonces starting at the account nonce.
    pub fn pending_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(queue) = self.senders.get(sender) {
            for nonce in queue.range(account_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next += 1;
            }
        }
        next
    }

    /// Up to `max` executable transactions: for each sender the contiguous
    /// run from its account nonce, merged across senders by arrival.
    pub fn best(&self, max: usize, account_nonce: impl Fn(&Address) -> u64) -> Vec<Arc<PooledTx>> {
        let mut heads: BinaryHeap<Reverse<(u64, Address, u64)>> = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            let nonce = account_nonce(sender);
            if let Some(tx) = queue.get(&nonce) {
                heads.push(Reverse((tx.arrival, *sender, nonce)));
            }
        }
        let mut out = Vec::new();
        while let Some(Reverse((_, sender, nonce))) = heads.pop() {
            if out.len() >= max {
                break;
            }
            let queue = &self.senders[&sender];
            out.push(queue[&nonce].clone());
            if let Some(next) = queue.get(&(nonce + 1)) {
                heads.push(Reverse((next.arrival, sender, nonce + 1)));
            }
        }
        out
    }

    /// Drops transactions a new block made stale (nonce below the sender's
    /// new account nonce).
    pub fn on_block(&mut self, senders: impl IntoIterator<Item = (Address, u64)>) {
        for (sender, account_nonce) in senders {
            let Some(queue) = self.senders.get_mut(&sender) else {
                continue;
            };
            let keep = queue.split_off(&account_nonce);
            for tx in queue.values() {
                self.by_hash.remove(&tx.hash);
            }
            *queue = keep;
            if queue.is_empty() {
                self.senders.remove(&sender);
            }
        }
    }

    /// Removes one transaction (it failed at execution) and everything the
    /// same sender queued after it, which can no longer execute in order.
    pub fn remove_with_descendants(&mut self, hash: &B256) -> Vec<B256> {
        let Some(tx) = self.by_hash.get(hash).cloned() else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        if let Some(queue) = self.senders.get_mut(&tx.sender) {
            let doomed = queue.split_off(&tx.nonce());
            for t in doomed.values() {
                self.by_hash.remove(&t.hash);
                removed.push(t.hash);
            }
            if queue.is_empty() {
                self.senders.remove(&tx.sender);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{signed_transfer_from, test_signer};

    fn tx(key: u64, nonce: u64, fee: u128) -> (TxEnvelope, Address) {
        let s = test_signer(key);
        (
            signed_transfer_from(&s, nonce, Address::with_last_byte(1), 1, fee),
            s.address(),
        )
    }

    const RICH: U256 = U256::MAX;

    #[test]
    fn gapped_nonce_waits_until_the_gap_is_filled() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let (t2, a) = tx(0, 2, 0);
        pool.insert(t2, a, 0, RICH).unwrap();
        assert!(pool.best(10, |_| 0).is_empty());
        assert_eq!(pool.pending_nonce(&a, 0), 0);
        let (t0, _) = tx(0, 0, 0);
        pool.insert(t0, a, 0, RICH).unwrap();
        assert_eq!(pool.best(10, |_| 0).len(), 1);
        assert_eq!(pool.pending_nonce(&a, 0), 1);
        let (t1, _) = tx(0, 1, 0);
        pool.insert(t1, a, 0, RICH).unwrap();
        let nonces: Vec<u64> = pool.best(10, |_| 0).iter().map(|t| t.nonce()).collect();
        assert_eq!(nonces, vec![0, 1, 2]);
        assert_eq!(pool.pending_nonce(&a, 0), 3);
    }

    #[test]
    fn senders_are_served_in_arrival_order() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let (b0, b) = tx(1, 0, 0);
        let (a0, a) = tx(0, 0, 0);
        let (a1, _) = tx(0, 1, 0);
        pool.insert(b0, b, 0, RICH).unwrap();
        pool.insert(a0, a, 0, RICH).unwrap();
        pool.insert(a1, a, 0, RICH).unwrap();
        let order: Vec<(Address, u64)> = pool
            .best(10, |_| 0)
            .iter()
            .map(|t| (t.sender, t.nonce()))
            .collect();
        assert_eq!(order, vec![(b, 0), (a, 0), (a, 1)]);
        assert_eq!(pool.best(2, |_| 0).len(), 2);
    }

    #[test]
    fn replacement_needs_a_ten_percent_bump() {
        let mut pool = Mempool::new(MempoolConfig::default());
        let (t, a) = tx(0, 0, 100);
        let first = pool.insert(t, a, 0, RICH).unwrap();
        let (low, _) = tx(0, 0, 109);
        assert_eq!(
            pool.insert(low, a, 0, RICH),
            Err(MempoolError::ReplacementUnderpriced)
        );
        let (ok, _) = tx(0, 0, 110);
        let second = pool.insert(ok, a, 0, RICH).unwrap();
        assert_eq!(pool.len(), 1);
        assert!(!pool.contains(&first) && pool.contains(&second));
    }

    #[test]
    fn rejections_use_client_wording() {
        let mut pool = Mempool::new(MempoolConfig {
            capacity: 1,
            ..Default::default()
        });
        let (t, a) = tx(0, 0, 1);
        let err = pool.insert(t.clone(), a, 1, RICH).unwrap_err();
        assert!(err.to_string().starts_with("nonce too low"), "{err}");
        let err = pool.insert(t.clone(), a, 0, U256::from(10)).unwrap_err();
        assert!(err.to_string().starts_with("insufficient funds"), "{err}");
        pool.insert(t.clone(), a, 0, RICH).unwrap();
        assert_eq!(pool.insert(t, a, 0, RICH), Err(MempoolError::AlreadyKnown));
        let (other, b) = tx(1, 0, 1);
        assert_eq!(pool.insert(other, b, 0, RICH), Err(MempoolError::PoolFull));
    }

    #[test]
    fn block_inclusion_prunes_stale_nonces() {
        let mut pool = Mempool::new(MempoolConfig::default());
        for n in 0..3 {
            let (t, a) = tx(0, n, 0);
            pool.insert(t, a, 0, RICH).unwrap();
        }
        let a = test_signer(0).address();
        pool.on_block([(a, 2)]);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.best(10, |_| 2)[0].nonce(), 2);
    }
}
