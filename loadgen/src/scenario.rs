//! Workloads: setup (deploy, fund) and the pre-signed measured transactions.

use crate::{abi, client::Client, Args, LoadgenError, Result};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

/// Which workload.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// Native ETH transfers among many accounts.
    Eth,
    /// ERC-20 transfers among (by default) 50,000 accounts.
    Erc20,
    /// Price updates to one oracle contract.
    Oracle,
}

struct Fees {
    chain_id: u64,
    max_fee: u128,
}

fn sign(
    key: &PrivateKeySigner,
    fees: &Fees,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas: u64,
) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: fees.chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: fees.max_fee,
        max_priority_fee_per_gas: 0,
        to,
        value,
        input,
        access_list: Default::default(),
    };
    let sig = key
        .sign_hash_sync(&tx.signature_hash())
        .expect("local signing cannot fail");
    TxEnvelope::Eip1559(tx.into_signed(sig))
}

/// Fresh accounts per run (salted), so a re-run never collides with the
/// nonces an earlier run used.
fn bench_keys(n: usize) -> Vec<PrivateKeySigner> {
    let salt: u64 = rand::random();
    let derive = |i: usize| {
        let seed = keccak256(format!("prividium-bench-{salt}-{i}").as_bytes());
        PrivateKeySigner::from_bytes(&seed)
            .expect("hash is a valid key with overwhelming probability")
    };
    parallel_map(n, derive)
}

/// Maps 0..n over all cores (key derivation and signing dominate setup).
fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism().map_or(1, |p| p.get());
    let chunk = n.div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                s.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    })
}

fn artifact(json: &str) -> Result<Bytes> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(LoadgenError::setup)?;
    let hex = v["bytecode"]
        .as_str()
        .ok_or_else(|| LoadgenError::setup("artifact without bytecode"))?;
    hex.parse().map_err(LoadgenError::setup)
}

const BANK_TOKEN: &str = include_str!("../../contracts/out/BankToken.json");
const BENCH_KIT: &str = include_str!("../../contracts/out/BenchKit.json");

/// Setup transactions sent ahead of their receipts.
const SETUP_IN_FLIGHT: usize = 256;

struct Funder<'a> {
    client: &'a Client,
    key: PrivateKeySigner,
    nonce: u64,
    fees: &'a Fees,
    /// Every setup transaction sent, in order, for the ceiling's replay.
    sent: Vec<TxEnvelope>,
}

impl Funder<'_> {
    /// Signs and sends the funder's next transaction; returns its hash.
    async fn submit(&mut self, to: TxKind, value: U256, input: Bytes, gas: u64) -> Result<B256> {
        let tx = sign(&self.key, self.fees, self.nonce, to, value, input, gas);
        self.nonce += 1;
        let hash = self.client.send_raw(&tx.encoded_2718().into()).await?;
        self.sent.push(tx);
        Ok(hash)
    }

    async fn send(
        &mut self,
        to: TxKind,
        value: U256,
        input: Bytes,
        gas: u64,
    ) -> Result<serde_json::Value> {
        let hash = self.submit(to, value, input, gas).await?;
        self.client.wait_success(hash).await
    }

    /// Sends every call at once and then waits for each receipt, so setup
    /// takes a few blocks, not one block per transaction. On a node whose
    /// every block costs in proportion to its state (anvil copies its whole
    /// state each block unless told to prune history), waiting per
    /// transaction made the 50,000-holder setup outlast any run.
    async fn send_all(&mut self, calls: Vec<(Address, U256, Bytes, u64)>) -> Result<()> {
        let mut hashes = std::collections::VecDeque::with_capacity(SETUP_IN_FLIGHT);
        for (to, value, input, gas) in calls {
            // Nodes refuse nonces too far ahead of the account's (ours
            // after 1,024 by default), so only so many wait at once.
            if hashes.len() == SETUP_IN_FLIGHT {
                if let Some(oldest) = hashes.pop_front() {
                    self.client.wait_success(oldest).await?;
                }
            }
            let hash = self.submit(TxKind::Call(to), value, input, gas).await?;
            hashes.push_back(hash);
        }
        for hash in hashes {
            self.client.wait_success(hash).await?;
        }
        Ok(())
    }

    async fn deploy(&mut self, code: Bytes) -> Result<Address> {
        let receipt = self
            .send(TxKind::Create, U256::ZERO, code, 5_000_000)
            .await?;
        serde_json::from_value(receipt["contractAddress"].clone())
            .map_err(|e| LoadgenError::Setup(format!("contract address: {e}")))
    }
}

/// What setup did and what the measured phase sends.
pub(super) struct Prepared {
    pub(super) chain_id: u64,
    /// The funder, and its nonce before setup.
    pub(super) funder: Address,
    pub(super) funder_nonce: u64,
    /// Setup transactions in the order they were included.
    pub(super) setup: Vec<TxEnvelope>,
    /// The measured transactions: (hash, raw), in sending order.
    pub(super) txs: Vec<(B256, Bytes)>,
}

/// Deploys and funds what the scenario needs, then pre-signs the load.
pub(super) async fn prepare(client: &Client, args: &Args) -> Result<Prepared> {
    let key: PrivateKeySigner = client
        .funder_key
        .parse()
        .map_err(|e| LoadgenError::Setup(format!("funder key: {e}")))?;
    let gas_price = client.gas_price().await?;
    let fees = Fees {
        chain_id: client.chain_id().await?,
        max_fee: gas_price * 2,
    };
    let nonce = client.nonce(&key.address()).await?;
    let mut funder = Funder {
        client,
        key,
        nonce,
        fees: &fees,
        sent: Vec::new(),
    };
    let n = args.accounts.unwrap_or(match args.scenario {
        Scenario::Erc20 => 50_000,
        Scenario::Eth => 1_000,
        Scenario::Oracle => 100,
    });
    eprintln!("deriving {n} account keys");
    let keys = bench_keys(n);
    let addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let per_account = args.txs.div_ceil(n) as u64;
    let gas = match args.scenario {
        Scenario::Eth => 21_000,
        _ => 80_000,
    };
    let kit = funder.deploy(artifact(BENCH_KIT)?).await?;
    let fund_each = match args.scenario {
        Scenario::Eth => U256::from(10u64).pow(U256::from(18u64)),
        _ => U256::from(fees.max_fee) * U256::from(gas) * U256::from(per_account),
    };
    if !fund_each.is_zero() {
        eprintln!("funding {n} accounts");
        let calls = addrs.chunks(500).map(|chunk| {
            let value = fund_each * U256::from(chunk.len());
            (kit, value, abi::disperse(chunk), 20_000_000)
        });
        funder.send_all(calls.collect()).await?;
    }
    let target = match args.scenario {
        Scenario::Eth => Address::ZERO,
        Scenario::Oracle => kit,
        Scenario::Erc20 => {
            let mut code = artifact(BANK_TOKEN)?.to_vec();
            code.extend(abi::token_constructor("Bench Token", "BNCH", U256::ZERO));
            let token = funder.deploy(code.into()).await?;
            eprintln!("minting to {n} accounts");
            let each = U256::from(10u64).pow(U256::from(21u64));
            let calls = addrs
                .chunks(1_000)
                .map(|chunk| (token, U256::ZERO, abi::mint_batch(chunk, each), 40_000_000));
            funder.send_all(calls.collect()).await?;
            token
        }
    };
    eprintln!("signing {} transactions", args.txs);
    let scenario = args.scenario;
    let txs = parallel_map(args.txs, |i| {
        let sender = &keys[i % n];
        let nonce = (i / n) as u64;
        let to_account = addrs[(i.wrapping_mul(7919) + 1) % n];
        let (to, value, input) = match scenario {
            Scenario::Eth => (TxKind::Call(to_account), U256::from(1u64), Bytes::new()),
            Scenario::Erc20 => (
                TxKind::Call(target),
                U256::ZERO,
                abi::transfer(&to_account, U256::from(1u64)),
            ),
            Scenario::Oracle => (
                TxKind::Call(target),
                U256::ZERO,
                abi::set_price((i % 16) as u64, i as u64 + 1),
            ),
        };
        let tx = sign(sender, &fees, nonce, to, value, input, gas);
        (*tx.tx_hash(), Bytes::from(tx.encoded_2718()))
    });
    // Index order already sends every sender's nonce 0 before its nonce 1.
    Ok(Prepared {
        chain_id: fees.chain_id,
        funder: funder.key.address(),
        funder_nonce: nonce,
        setup: funder.sent,
        txs,
    })
}
