//! Wires mempool → produce → block log → derive, and exposes the handle the
//! RPC layer talks to.

use crate::{
    derive::{replay, Committer, Deriver, SharedTries, Staged, StateProof},
    hot::{Hot, ProducedHead, SharedHot},
    mempool::{admission, Mempool, MempoolError, PooledTx, TxGuard},
    preflight::{preflight, ClosedCodes},
    produce::{Producer, ResealControl},
    sealed::SealedBlocks,
    wal::{BlockLog, ResealProgress},
    ChainView, Genesis, ReplayReport, Result, SequencerConfig, SequencerError,
};
use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256};
use parking_lot::{Mutex, RwLock};
use state_transition::{ChainSpec, SharedGuard};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
};
use storage::KvStore;
use tokio::sync::{broadcast, watch};

/// How many admitted transactions the pending feed holds for a listener
/// that has not caught up; a slower listener skips the oldest (it is told
/// how many), so the feed's memory is fixed whoever listens.
const PENDING_FEED_CAPACITY: usize = 4_096;

/// A transaction just admitted to the pool: what pending-transaction
/// filters and subscriptions are fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingTx {
    /// Transaction hash.
    pub hash: B256,
    /// Its recovered signer.
    pub sender: Address,
}

/// Most blocks the derive stage roots at once when it has fallen behind
/// (the committer merges waiting groups while it holds fewer, so one commit
/// holds under twice this): enough to share the store's page writes, few
/// enough that receipts and reads are not held back behind one long step.
const DERIVE_GROUP: usize = 16;

/// Rooted groups waiting for the committer. Their blocks stay in memory
/// (readers see them through [`SealedBlocks`]) until committed, so this
/// bounds that memory: fewer than `(COMMIT_QUEUE + 3) * DERIVE_GROUP`
/// blocks (queued; being committed, under two groups; published by the
/// derive stage while it waits to queue them). A durable flush takes about
/// two block times; a store slower than that for longer backs up to the
/// producer, which then waits, as it did before.
const COMMIT_QUEUE: usize = 4;

/// The last derived block (rooted, and durable in the block log; its store
/// commit may still be running): what RPC reads are consistent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainHead {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// State root after it.
    pub state_root: B256,
    /// No block after this one (up to `number`) deployed a contract: what
    /// lets the contract directory skip blocks without decoding them. At
    /// start it is the head itself, since earlier blocks are not looked at.
    pub last_deploy: u64,
}

/// A running sequencer.
pub struct Sequencer {
    config: SequencerConfig,
    store: Arc<dyn KvStore>,
    hot: SharedHot,
    mempool: Arc<Mutex<Mempool>>,
    head: watch::Receiver<ChainHead>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<Result<()>>>>,
    reseal: Arc<ResealControl>,
    heartbeat: Arc<crate::produce::Heartbeat>,
    pending: broadcast::Sender<PendingTx>,
    tries: SharedTries,
    sealed: Arc<SealedBlocks>,
    /// Contract codes admission can answer for without executing.
    closed_codes: ClosedCodes,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

/// File name of the block log inside the data directory.
pub const BLOCK_LOG_FILE: &str = "blocks.log";

impl Sequencer {
    /// Opens the chain in `dir` (block log + derived `store`), replays any
    /// logged blocks the store lacks, and starts producing.
    pub fn start(
        dir: &Path,
        store: Arc<dyn KvStore>,
        genesis: &Genesis,
        config: SequencerConfig,
    ) -> Result<Self> {
        let log = BlockLog::open_with(&dir.join(BLOCK_LOG_FILE), config.log_cipher.clone())?;
        let mut deriver =
            Deriver::open(store.clone(), genesis, &config.chain, config.durable_every)?;
        deriver.keep_history(config.history_keep);
        let report = replay(&config.chain, &log, &mut deriver, |_, _| {})?;
        if let Some(from) = report.from {
            tracing::info!(
                from,
                to = report.to,
                txs = report.transactions,
                "replayed block log tail"
            );
        }
        let view = ChainView::new(store.snapshot()?);
        let head_block = view.block(deriver.height())?.ok_or_else(|| {
            SequencerError::Execution(format!("derived block {} missing", deriver.height()))
        })?;
        let head = ChainHead {
            number: deriver.height(),
            hash: head_block.hash,
            state_root: view.state_root(deriver.height())?.unwrap_or_default(),
            last_deploy: deriver.height(),
        };
        let hot = Arc::new(RwLock::new(Hot {
            state: deriver.state().clone(),
            head: ProducedHead {
                number: head.number,
                hash: head.hash,
                timestamp: head_block.header.timestamp,
                gas_used: head_block.header.gas_used,
                base_fee: head_block.header.base_fee_per_gas.unwrap_or_default(),
            },
        }));
        let tries = deriver.tries();
        let (head_tx, head_rx) = watch::channel(head);
        let (to_derive, from_produce) = mpsc::sync_channel(256);
        let stop = Arc::new(AtomicBool::new(false));
        let mempool = Arc::new(Mutex::new(Mempool::new(config.mempool.clone())));
        let reseal = Arc::new(ResealControl::default());
        let heartbeat = Arc::new(crate::produce::Heartbeat::default());

        let sealed = Arc::new(SealedBlocks::default());
        let (stager, committer) = deriver.into_parts();
        let (to_commit, from_derive) = mpsc::sync_channel::<Staged>(COMMIT_QUEUE);
        let commit_thread = std::thread::Builder::new()
            .name("derive-commit".into())
            .spawn({
                let sealed = sealed.clone();
                let stop = stop.clone();
                move || commit_loop(committer, &from_derive, &sealed, &stop)
            })?;
        let derive_thread = std::thread::Builder::new().name("derive".into()).spawn({
            let sealed = sealed.clone();
            move || -> Result<()> {
                let mut stager = stager;
                // Blocks already waiting are rooted together, so a
                // stage that fell behind catches up; one that keeps up
                // roots each alone.
                let mut group = Vec::with_capacity(DERIVE_GROUP);
                let mut rooted = Vec::with_capacity(DERIVE_GROUP);
                let mut last_deploy = head.last_deploy;
                while let Ok(first) = from_produce.recv() {
                    group.push(first);
                    group.extend(from_produce.try_iter().take(DERIVE_GROUP - 1));
                    let (staged, roots) = stager.stage(&group, Some(&mut rooted));
                    for outcome in &group {
                        if outcome.txs.iter().any(|t| t.contract_address.is_some()) {
                            last_deploy = outcome.context.number;
                        }
                    }
                    // Readers first, then the head that sends them
                    // looking, then the store.
                    sealed.push(rooted.drain(..));
                    if let (Some(last), Some(root)) = (group.last(), roots.last()) {
                        head_tx.send_replace(ChainHead {
                            number: last.context.number,
                            hash: last.header.hash,
                            state_root: *root,
                            last_deploy,
                        });
                    }
                    metrics::gauge!("prividium_derive_uncommitted_blocks").set(sealed.len() as f64);
                    group.clear();
                    if let Some(staged) = staged {
                        to_commit
                            .send(staged)
                            .map_err(|_| SequencerError::Stopped)?;
                    }
                }
                Ok(())
            }
        })?;
        let producer = Producer {
            config: config.clone(),
            hot: hot.clone(),
            mempool: mempool.clone(),
            log,
            to_derive,
            stop: stop.clone(),
            beneficiary: Address::ZERO,
            reseal: reseal.clone(),
            heartbeat: heartbeat.clone(),
        };
        let stop_on_error = stop.clone();
        let produce_thread =
            std::thread::Builder::new()
                .name("produce".into())
                .spawn(move || {
                    let result = producer.run();
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "block production stopped");
                        stop_on_error.store(true, Ordering::Relaxed);
                    }
                    result
                })?;
        Ok(Self {
            config,
            store,
            hot,
            mempool,
            head: head_rx,
            stop,
            threads: Mutex::new(vec![produce_thread, derive_thread, commit_thread]),
            reseal,
            heartbeat,
            pending: broadcast::channel(PENDING_FEED_CAPACITY).0,
            tries,
            sealed,
            closed_codes: ClosedCodes::default(),
        })
    }

    /// Asks the producer to move the block log onto the current data key
    /// in its idle time (after a rotation, so the old key can be retired).
    pub fn reseal_block_log(&self) {
        self.reseal.request();
    }

    /// Where the last [`Self::reseal_block_log`] stands (None until the
    /// producer's first slice of it).
    pub fn block_log_reseal(&self) -> Option<std::result::Result<ResealProgress, String>> {
        self.reseal.state()
    }

    /// Chain rules.
    pub fn chain(&self) -> &ChainSpec {
        &self.config.chain
    }

    /// True while blocks are being produced.
    pub fn is_running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// How long ago the production loop last went round (it goes round at
    /// least every few milliseconds while running, idle or not).
    pub fn producer_heartbeat_age(&self) -> std::time::Duration {
        self.heartbeat.age()
    }

    /// The last block produced (durable in the block log; derived a moment
    /// later).
    pub fn produced_number(&self) -> u64 {
        self.hot.read().head.number
    }

    /// The last derived block (readable through [`Self::view`]).
    pub fn head(&self) -> ChainHead {
        *self.head.borrow()
    }

    /// Subscribes to derived-head changes.
    pub fn subscribe(&self) -> watch::Receiver<ChainHead> {
        self.head.clone()
    }

    /// Listens to transactions as they are admitted to the pool (from now
    /// on; bounded, see [`PENDING_FEED_CAPACITY`]).
    pub fn pending_feed(&self) -> broadcast::Receiver<PendingTx> {
        self.pending.subscribe()
    }

    /// A consistent read view at (or just after) the current head.
    pub fn view(&self) -> Result<ChainView> {
        // The list before the snapshot: a block leaves the list only once
        // committed, so it is in one or the other (see `sealed`).
        let sealed = self.sealed.current();
        Ok(ChainView::over(self.store.snapshot()?, sealed)?)
    }

    /// The EIP-1186 proof of `address` and its `slots` against the state
    /// root of the latest derived block (named in the answer). It may be
    /// up to [`DERIVE_GROUP`] blocks ahead of [`Self::view`]: the tries move
    /// while a group is rooted, before its blocks are published.
    pub fn state_proof(&self, address: &Address, slots: &[B256]) -> StateProof {
        self.tries.read().proof(address, slots)
    }

    /// Base fee the next block will charge.
    pub fn next_base_fee(&self) -> u64 {
        self.hot.read().head.next_base_fee(&self.config.chain)
    }

    /// Next nonce for `address`, counting pooled transactions.
    pub fn pending_nonce(&self, address: &Address) -> u64 {
        // Pool first: the producer publishes the new account nonce before it
        // prunes the pool, so under the pool lock the account nonce read is
        // never older than the pool's view (read the other way round, a
        // block sealed between the two reads hides the included nonce from
        // both and the answer goes back by one).
        let pool = self.mempool.lock();
        let account_nonce = self.hot.read().nonce_and_balance(address).0;
        pool.pending_nonce(address, account_nonce)
    }

    /// A transaction still waiting in the pool.
    pub fn pooled(&self, hash: &B256) -> Option<Arc<PooledTx>> {
        self.mempool.lock().get(hash)
    }

    /// Number of pooled transactions.
    pub fn pool_size(&self) -> usize {
        self.mempool.lock().len()
    }

    /// Decodes a raw signed transaction, enforcing the size limit.
    pub fn decode_raw(&self, raw: &[u8]) -> Result<TxEnvelope, MempoolError> {
        admission::decode(raw, &self.config.mempool)
    }

    /// Decodes, validates and pools a raw signed transaction.
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256, MempoolError> {
        self.submit(self.decode_raw(raw)?)
    }

    /// Validates and pools a decoded transaction.
    pub fn submit(&self, tx: TxEnvelope) -> Result<B256, MempoolError> {
        let sender = admission::recover(&tx)?;
        self.submit_signed(tx, sender, None)
    }

    /// Validates and pools a transaction whose signer the caller has already
    /// recovered (`sender` must be it). With a `guard`, the transaction is
    /// first executed against the latest state with every call frame put to
    /// the guard, so a policy denial is reported to the submitter now; the
    /// guard travels with it and is applied again when it is sequenced.
    pub fn submit_signed(
        &self,
        tx: TxEnvelope,
        sender: Address,
        guard: Option<SharedGuard>,
    ) -> Result<B256, MempoolError> {
        self.validate(&tx)?;
        if let Some(g) = &guard {
            preflight(
                &self.config.chain,
                &self.hot.read(),
                &tx,
                sender,
                g,
                &self.closed_codes,
            )?;
        }
        let hash = {
            // Under the pool lock, so a block sealed meanwhile cannot leave
            // the pool judging by an account nonce it has already pruned.
            let mut pool = self.mempool.lock();
            let (nonce, balance) = self.hot.read().nonce_and_balance(&sender);
            pool.insert_guarded(tx, sender, nonce, balance, TxGuard(guard))?
        };
        // Nobody listening is the common case: no send, no lock.
        if self.pending.receiver_count() > 0 {
            let _ = self.pending.send(PendingTx { hash, sender });
        }
        Ok(hash)
    }

    /// Stateless checks against the chain rules, at the next block's base
    /// fee.
    fn validate(&self, tx: &TxEnvelope) -> Result<(), MempoolError> {
        admission::validate(tx, &self.config.chain, || self.next_base_fee())
    }

    /// Stops producing, lets the derive stage and its commits drain, and
    /// flushes the store.
    pub fn shutdown(&self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.threads.lock());
        let mut first_err = None;
        for t in threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(SequencerError::Stopped);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The committer's thread: commits what the derive stage rooted, in order,
/// several waiting groups in one commit; drops committed blocks from the
/// readers' list; flushes when the derive stage is gone. A failed commit
/// stops the chain: blocks would otherwise pile up in memory, served as if
/// stored.
fn commit_loop(
    mut committer: Committer,
    from_derive: &mpsc::Receiver<Staged>,
    sealed: &SealedBlocks,
    stop: &AtomicBool,
) -> Result<()> {
    while let Ok(mut staged) = from_derive.recv() {
        while staged.blocks < DERIVE_GROUP {
            match from_derive.try_recv() {
                Ok(next) => staged.merge(next),
                Err(_) => break,
            }
        }
        if let Err(e) = committer.commit(staged) {
            tracing::error!(error = %e, "derived store commit failed; chain stopped");
            stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
        sealed.committed(committer.height());
        metrics::gauge!("prividium_derive_uncommitted_blocks").set(sealed.len() as f64);
    }
    committer.flush()
}

/// Rebuilds the derived store from genesis by replaying the whole block log.
pub fn rebuild(
    dir: &Path,
    store: Arc<dyn KvStore>,
    genesis: &Genesis,
    chain: &ChainSpec,
    log_cipher: Option<storage::SharedCipher>,
    progress: impl FnMut(u64, u64),
) -> Result<ReplayReport> {
    let log = BlockLog::open_with(&dir.join(BLOCK_LOG_FILE), log_cipher)?;
    let mut deriver = Deriver::open(store, genesis, chain, 1_000)?;
    replay(chain, &log, &mut deriver, progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{GenesisAccount, GenesisConfig};
    use crate::test_support::{
        signed_create_from, signed_transfer_from, test_signer, TEST_CHAIN_ID,
    };
    use alloy_primitives::{Bytes, U256};
    use state_transition::{revm::primitives::hardfork::SpecId, FeeMode};
    use std::time::{Duration, Instant};

    fn started(dir: &Path) -> (Sequencer, alloy_signer_local::PrivateKeySigner) {
        let store = Arc::new(storage::RedbStore::open(&dir.join("state.redb")).unwrap());
        started_on(dir, store)
    }

    fn started_on(
        dir: &Path,
        store: Arc<dyn KvStore>,
    ) -> (Sequencer, alloy_signer_local::PrivateKeySigner) {
        let chain = ChainSpec {
            chain_id: TEST_CHAIN_ID,
            spec: SpecId::PRAGUE,
            fee_mode: FeeMode::Zero,
            block_gas_limit: 30_000_000,
        };
        let signer = test_signer(0);
        let funded = GenesisAccount {
            balance: Some(U256::from(10u64).pow(U256::from(18u64))),
            ..Default::default()
        };
        let genesis = Genesis {
            config: GenesisConfig {
                chain_id: Some(TEST_CHAIN_ID),
            },
            timestamp: None,
            gas_limit: None,
            alloc: [(signer.address(), funded)].into_iter().collect(),
        };
        let mut config = SequencerConfig::new(chain);
        config.block_time = Duration::from_millis(20);
        (
            Sequencer::start(dir, store, &genesis, config).unwrap(),
            signer,
        )
    }

    /// Waits until the derived head includes `hash`; returns its block.
    fn derived_with(seq: &Sequencer, hash: B256) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = seq.view().unwrap().tx_location(&hash).unwrap();
            if let Some((block, _)) = found.filter(|(b, _)| seq.head().number >= *b) {
                return block;
            }
            assert!(Instant::now() < deadline, "{hash} not derived");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The derived head says which block last deployed a contract, so the
    /// contract directory can skip the blocks after it without decoding
    /// them: a deployment moves it, transfers do not, and a restart starts
    /// it at the head (nothing before is known).
    #[test]
    fn the_head_tells_which_block_last_deployed_a_contract() {
        let dir = tempfile::tempdir().unwrap();
        let (seq, signer) = started(dir.path());
        assert_eq!(seq.head().last_deploy, 0);
        // Init code returning one byte of runtime code (STOP).
        let init = Bytes::from_static(&[0x60, 0x01, 0x60, 0x00, 0xf3]);
        let deploy = seq.submit(signed_create_from(&signer, 0, init)).unwrap();
        let deployed_in = derived_with(&seq, deploy);
        assert!(deployed_in >= 1);
        assert_eq!(seq.head().last_deploy, deployed_in);
        let to = Address::with_last_byte(0x42);
        let transfer = seq
            .submit(signed_transfer_from(&signer, 1, to, 1_000, 0))
            .unwrap();
        let transferred_in = derived_with(&seq, transfer);
        let head = seq.head();
        assert!(transferred_in > deployed_in && head.number >= transferred_in);
        assert_eq!(head.last_deploy, deployed_in, "a transfer deploys nothing");
        drop(seq);
        let (seq, _) = started(dir.path());
        let head = seq.head();
        assert_eq!(head.last_deploy, head.number, "unknown before a restart");
    }

    /// A store whose commits wait while the gate is shut.
    struct Gated {
        inner: storage::RedbStore,
        shut: parking_lot::Mutex<bool>,
        opened: parking_lot::Condvar,
    }

    impl Gated {
        fn set(&self, shut: bool) {
            *self.shut.lock() = shut;
            self.opened.notify_all();
        }
    }

    impl storage::KvRead for Gated {
        fn get(&self, table: storage::Table, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
            self.inner.get(table, key)
        }
        fn range(
            &self,
            table: storage::Table,
            keys: storage::KeyRange<'_>,
        ) -> storage::Result<Vec<storage::Entry>> {
            self.inner.range(table, keys)
        }
    }

    impl KvStore for Gated {
        fn write(&self, batch: storage::WriteBatch, durable: bool) -> storage::Result<()> {
            let mut shut = self.shut.lock();
            while *shut {
                self.opened.wait(&mut shut);
            }
            drop(shut);
            self.inner.write(batch, durable)
        }
        fn snapshot(&self) -> storage::Result<Box<dyn storage::KvRead + Send + Sync>> {
            self.inner.snapshot()
        }
    }

    /// A block is readable (head, receipt location, balances, state root)
    /// as soon as the derive stage has rooted it, while its store commit is
    /// still held up; the chain keeps producing meanwhile, and the store
    /// catches up once the commit goes through.
    #[test]
    fn a_rooted_block_is_readable_before_its_store_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Gated {
            inner: storage::RedbStore::open(&dir.path().join("state.redb")).unwrap(),
            shut: parking_lot::Mutex::new(false),
            opened: parking_lot::Condvar::new(),
        });
        let (seq, signer) = started_on(dir.path(), store.clone());
        let stored_head = || ChainView::new(store.snapshot().unwrap()).head().unwrap();
        let before = seq.head().number;
        store.set(true);
        // A failed assertion must not leave shutdown waiting on the gate.
        struct Reopen<'a>(&'a Gated);
        impl Drop for Reopen<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let reopen = Reopen(&store);
        let to = Address::with_last_byte(0x77);
        let hash = seq
            .submit(signed_transfer_from(&signer, 0, to, 12_345, 0))
            .unwrap();
        let block = derived_with(&seq, hash);
        // Head first: its blocks are published before it is.
        let head = seq.head();
        let view = seq.view().unwrap();
        assert!(view.head().unwrap() >= head.number && block > before);
        assert_eq!(view.tx_location(&hash).unwrap(), Some((block, 0)));
        let info = view.account_info(&to).unwrap().expect("recipient exists");
        assert_eq!(info.balance, U256::from(12_345u64));
        assert_eq!(view.state_root(head.number).unwrap(), Some(head.state_root));
        // Served from memory: the store has not committed it.
        let stored = stored_head();
        assert!(stored < block, "store at {stored}, block {block}");
        let unstored = ChainView::new(store.snapshot().unwrap());
        assert_eq!(unstored.tx_location(&hash).unwrap(), None);
        assert_eq!(unstored.account_info(&to).unwrap(), None);
        // The chain goes on producing while the commit is held.
        let next = seq
            .submit(signed_transfer_from(&signer, 1, to, 1, 0))
            .unwrap();
        let next_block = derived_with(&seq, next);
        assert!(next_block > block);
        assert!(stored_head() < block);

        drop(reopen);
        let deadline = Instant::now() + Duration::from_secs(10);
        while stored_head() < next_block {
            assert!(Instant::now() < deadline, "store never caught up");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stored = ChainView::new(store.snapshot().unwrap());
        assert_eq!(stored.tx_location(&hash).unwrap(), Some((block, 0)));
        assert_eq!(stored.tx_location(&next).unwrap(), Some((next_block, 0)));
        let balance = stored.account_info(&to).unwrap().map(|a| a.balance);
        assert_eq!(balance, Some(info.balance + U256::from(1u64)));
        drop(seq);
    }
}
