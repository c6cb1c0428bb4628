//! A small private chain built block by block with the state-transition
//! program, as the sequencer would: genesis with funded test keys, ETH
//! transfers, the BankToken ERC-20 (contracts/out/BankToken.json) and the
//! BenchKit price oracle (contracts/out/BenchKit.json). The cycle benchmark
//! (benches/cycles.rs) builds its workloads with it too.
#![allow(dead_code, unreachable_pub, missing_docs)]

use alloy_consensus::{
    transaction::SignerRecoverable, Header, SignableTransaction, TxEip1559, TxEnvelope,
};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{sol, SolCall, SolValue};
use prover::{ChainBlock, ProverState};
use sequencer::test_support::{test_signer, TEST_CHAIN_ID};
use state_transition::{
    revm::{primitives::hardfork::SpecId, state::AccountInfo},
    BlockContext, BlockExecutor, ChainSpec, FeeMode, MemoryState, ParentBlock, RootedState,
};

sol! {
    function transfer(address to, uint256 value) returns (bool);
    function mintBatch(address[] to, uint256 amountEach);
    function setPrice(uint256 assetId, uint256 price);
}

pub const GWEI: u128 = 1_000_000_000;

pub struct TestChain {
    pub spec: ChainSpec,
    pub genesis: MemoryState,
    pub state: RootedState,
    pub headers: Vec<Header>,
    pub hashes: Vec<B256>,
    pub blocks: Vec<ChainBlock>,
    pub roots: Vec<B256>,
    nonces: Vec<u64>,
}

impl TestChain {
    /// Four funded keys (10,000 ETH each), EIP-1559 fees.
    pub fn new() -> Self {
        Self::with_keys(4)
    }

    /// `keys` funded keys (10,000 ETH each), EIP-1559 fees.
    pub fn with_keys(keys: usize) -> Self {
        let spec = ChainSpec {
            chain_id: TEST_CHAIN_ID,
            spec: SpecId::PRAGUE,
            fee_mode: FeeMode::Eip1559 {
                initial_base_fee: GWEI as u64,
            },
            block_gas_limit: 30_000_000,
        };
        let mut genesis = MemoryState::default();
        for i in 0..keys {
            genesis.accounts.insert(
                Self::address(i),
                AccountInfo {
                    balance: U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18)),
                    ..Default::default()
                },
            );
        }
        let root = genesis.state_root();
        let header = Header {
            number: 0,
            state_root: root,
            gas_limit: spec.block_gas_limit,
            timestamp: 1_700_000_000,
            base_fee_per_gas: Some(GWEI as u64),
            ..Default::default()
        };
        let hash = header.hash_slow();
        let mut state = RootedState::new(genesis.clone());
        state.apply_diff(&Default::default(), 0, hash);
        Self {
            spec,
            genesis,
            state,
            headers: vec![header],
            hashes: vec![hash],
            blocks: Vec::new(),
            roots: vec![root],
            nonces: vec![0; keys],
        }
    }

    pub fn prover_state(&self) -> ProverState {
        let mut genesis = self.genesis.clone();
        genesis.record_block_hash(0, self.hashes[0]);
        ProverState::new(genesis, 0)
    }

    pub fn header(&self, n: u64) -> Result<Header, prover::ProverError> {
        self.headers
            .get(n as usize)
            .cloned()
            .ok_or(prover::ProverError::MissingHeader(n))
    }

    pub fn address(i: usize) -> Address {
        test_signer(i as u64).address()
    }

    /// Signs a call (or creation when `to` is None) from key `from`, with
    /// room for 3M gas.
    pub fn tx(
        &mut self,
        from: usize,
        to: Option<Address>,
        value: U256,
        input: Vec<u8>,
    ) -> TxEnvelope {
        self.tx_with_gas(from, to, value, input, 3_000_000)
    }

    /// Signs a call with a gas limit of `gas` (a block holds 30M).
    pub fn tx_with_gas(
        &mut self,
        from: usize,
        to: Option<Address>,
        value: U256,
        input: Vec<u8>,
        gas: u64,
    ) -> TxEnvelope {
        let signer: PrivateKeySigner = test_signer(from as u64);
        let tx = TxEip1559 {
            chain_id: TEST_CHAIN_ID,
            nonce: self.nonces[from],
            gas_limit: gas,
            max_fee_per_gas: 10 * GWEI,
            max_priority_fee_per_gas: GWEI,
            to: to.map_or(TxKind::Create, TxKind::Call),
            value,
            input: Bytes::from(input),
            ..Default::default()
        };
        self.nonces[from] += 1;
        let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
        TxEnvelope::Eip1559(tx.into_signed(sig))
    }

    pub fn eth(&mut self, from: usize, to: Address, wei: u64) -> TxEnvelope {
        self.tx_with_gas(from, Some(to), U256::from(wei), Vec::new(), 21_000)
    }

    /// Deploys BankToken minting `supply` to key `from`; returns the tx and token address.
    pub fn deploy_token(&mut self, from: usize, supply: u64) -> (TxEnvelope, Address) {
        let mut code = creation_code(include_str!("../../../contracts/out/BankToken.json"));
        code.extend(("Bank", "BNK", U256::from(supply)).abi_encode_params());
        self.deploy(from, code)
    }

    /// Deploys the BenchKit price oracle from key `from`.
    pub fn deploy_oracle(&mut self, from: usize) -> (TxEnvelope, Address) {
        let code = creation_code(include_str!("../../../contracts/out/BenchKit.json"));
        self.deploy(from, code)
    }

    fn deploy(&mut self, from: usize, code: Vec<u8>) -> (TxEnvelope, Address) {
        let address = Self::address(from).create(self.nonces[from]);
        (self.tx(from, None, U256::ZERO, code), address)
    }

    /// The token's owner (its deployer) mints `each` to every one of `to`.
    pub fn mint_batch(
        &mut self,
        owner: usize,
        token: Address,
        to: Vec<Address>,
        each: u64,
    ) -> TxEnvelope {
        let to_len = to.len() as u64;
        let input = mintBatchCall {
            to,
            amountEach: U256::from(each),
        }
        .abi_encode();
        let gas = 100_000 + 30_000 * to_len;
        self.tx_with_gas(owner, Some(token), U256::ZERO, input, gas)
    }

    /// An oracle price update from key `from`.
    pub fn set_price(
        &mut self,
        from: usize,
        oracle: Address,
        asset: u64,
        price: u64,
    ) -> TxEnvelope {
        let input = setPriceCall {
            assetId: U256::from(asset),
            price: U256::from(price),
        }
        .abi_encode();
        self.tx_with_gas(from, Some(oracle), U256::ZERO, input, 100_000)
    }

    pub fn token_transfer(
        &mut self,
        from: usize,
        token: Address,
        to: Address,
        amount: u64,
    ) -> TxEnvelope {
        let input = transferCall {
            to,
            value: U256::from(amount),
        }
        .abi_encode();
        self.tx_with_gas(from, Some(token), U256::ZERO, input, 100_000)
    }

    /// Executes `txs` into the next block (all must be included).
    pub fn produce(&mut self, txs: Vec<TxEnvelope>) -> ChainBlock {
        let parent = self.headers.last().unwrap();
        let parent_hash = *self.hashes.last().unwrap();
        let ctx = BlockContext::child_of(
            &self.spec,
            &ParentBlock::of(parent, parent_hash),
            parent.timestamp + 2,
            Address::repeat_byte(0xbe),
        );
        let mut exec = BlockExecutor::new(&self.spec, ctx, self.state.state());
        for tx in &txs {
            let sender = tx.recover_signer().unwrap();
            let executed = exec.execute(tx.clone(), sender).expect("included");
            assert!(executed.receipt.status(), "transaction succeeded");
        }
        let outcome = exec.finish();
        let root = self
            .state
            .apply(&outcome.diff, outcome.context.number, outcome.header.hash);
        self.roots.push(root);
        self.headers.push(outcome.header.header.clone());
        self.hashes.push(outcome.header.hash);
        let block = ChainBlock {
            header: outcome.header.header,
            hash: outcome.header.hash,
            transactions: txs,
        };
        self.blocks.push(block.clone());
        block
    }
}

fn creation_code(artifact: &str) -> Vec<u8> {
    let artifact: serde_json::Value = serde_json::from_str(artifact).unwrap();
    artifact["bytecode"]
        .as_str()
        .unwrap()
        .parse::<Bytes>()
        .unwrap()
        .to_vec()
}

/// The chain as the prover service reads it.
pub struct Source(pub std::sync::Mutex<Vec<ChainBlock>>);

impl Source {
    pub fn of(chain: &TestChain) -> std::sync::Arc<Self> {
        let mut blocks = vec![ChainBlock {
            header: chain.headers[0].clone(),
            hash: chain.hashes[0],
            transactions: Vec::new(),
        }];
        blocks.extend(chain.blocks.iter().cloned());
        std::sync::Arc::new(Self(std::sync::Mutex::new(blocks)))
    }

    pub fn push(&self, block: ChainBlock) {
        self.0.lock().unwrap().push(block);
    }
}

impl prover::ChainSource for Source {
    fn head(&self) -> Result<u64, prover::ProverError> {
        Ok(self.0.lock().unwrap().len() as u64 - 1)
    }
    fn block(&self, n: u64) -> Result<ChainBlock, prover::ProverError> {
        self.0
            .lock()
            .unwrap()
            .get(n as usize)
            .cloned()
            .ok_or(prover::ProverError::Chain(format!("no block {n}")))
    }
}

/// A fixed audit head.
pub struct FixedAudit(pub state_transition::AuditHead);

impl prover::AuditSource for FixedAudit {
    fn head(&self) -> state_transition::AuditHead {
        self.0
    }
}
