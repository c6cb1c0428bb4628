//! The settlement chain as the bridge sees it: a trait at the seam (so the
//! ZKsync Gateway or any EVM chain can sit behind it) and its alloy
//! implementation over JSON-RPC.

use crate::{
    contract::{creation_code, describe_revert, PrividiumSettlement as C},
    egress::Commitment,
    BridgeError,
};
use alloy_network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_provider::{Provider, RootProvider};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use serde::Serialize;
use state_transition::SettledOutputs;
use std::{future::Future, time::Duration};

/// A registered chain as the contract holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainRecord {
    /// The only address allowed to commit its batches.
    pub submitter: Address,
    /// The program batches must be proven with.
    pub program_id: B256,
    /// Last committed batch (the registered start before any).
    pub last_batch: u64,
    /// State commitment after the last batch (the registered start before
    /// any).
    pub last_commitment: B256,
}

/// One committed batch as the contract holds it: commitments only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledBatch {
    /// What the proof must reveal the digest of.
    #[serde(flatten)]
    pub outputs: SettledOutputsJson,
    /// keccak256 of the settled outputs: what the proof reveals.
    pub outputs_digest: B256,
    /// keccak256 of the proof file.
    pub proof_digest: B256,
    /// Program the batch was proven with.
    pub program_id: B256,
}

/// [`SettledOutputs`] as `prividium settlement status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SettledOutputsJson {
    /// The private chain.
    pub chain_id: u64,
    /// Batch number.
    pub batch_number: u64,
    /// State commitment before the batch.
    pub prev_commitment: B256,
    /// State commitment after the batch.
    pub new_commitment: B256,
    /// Commitment to the rest of the batch's outputs.
    pub private_commitment: B256,
}

impl From<SettledOutputsJson> for SettledOutputs {
    fn from(o: SettledOutputsJson) -> Self {
        Self {
            chain_id: o.chain_id,
            batch_number: o.batch_number,
            prev_commitment: o.prev_commitment,
            new_commitment: o.new_commitment,
            private_commitment: o.private_commitment,
        }
    }
}

impl SettledBatch {
    /// The settled outputs.
    pub fn settled(&self) -> SettledOutputs {
        self.outputs.into()
    }
}

/// A mined settlement transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    /// Its hash on the settlement chain.
    pub tx_hash: B256,
    /// The settlement block it is in.
    pub block_number: u64,
}

/// The settlement layer.
pub trait SettlementClient: Send + Sync {
    /// The chain's record, `None` when it is not registered.
    fn chain(
        &self,
        chain_id: u64,
    ) -> impl Future<Output = Result<Option<ChainRecord>, BridgeError>> + Send;
    /// Batch `n` of the chain, `None` when not committed.
    fn batch(
        &self,
        chain_id: u64,
        n: u64,
    ) -> impl Future<Output = Result<Option<SettledBatch>, BridgeError>> + Send;
    /// Where a proof (by digest) was committed: `(chain id, batch)`.
    fn find_proof(
        &self,
        proof_digest: B256,
    ) -> impl Future<Output = Result<Option<(u64, u64)>, BridgeError>> + Send;
    /// Sends one commitment and waits until it is mined.
    fn commit(
        &self,
        commitment: &Commitment,
    ) -> impl Future<Output = Result<Mined, BridgeError>> + Send;
    /// What the submitting key holds on the settlement chain (wei); `None`
    /// for a client without a signer.
    fn signer_balance(&self) -> impl Future<Output = Result<Option<U256>, BridgeError>> + Send;
}

/// Timing of submissions.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// Longest wait for one RPC answer.
    pub rpc_timeout: Duration,
    /// How long a sent transaction may stay unmined before it is re-sent
    /// with the same nonce and higher fees.
    pub mine_timeout: Duration,
    /// Re-sends before giving up on one submission.
    pub max_resends: u32,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(15),
            mine_timeout: Duration::from_secs(60),
            max_resends: 5,
        }
    }
}

/// The settlement contract on an EVM chain, over JSON-RPC.
#[derive(Debug, Clone)]
pub struct EvmSettlement {
    provider: RootProvider,
    contract: Address,
    signer: Option<PrivateKeySigner>,
    policy: SendPolicy,
}

impl EvmSettlement {
    /// A client of `contract` at `rpc_url`; `signer` is needed only to send.
    pub fn new(
        rpc_url: &str,
        contract: Address,
        signer: Option<PrivateKeySigner>,
        policy: SendPolicy,
    ) -> Result<Self, BridgeError> {
        let url = rpc_url
            .parse()
            .map_err(|e| BridgeError::Rpc(format!("bad settlement RPC URL {rpc_url:?}: {e}")))?;
        Ok(Self {
            provider: RootProvider::new_http(url),
            contract,
            signer,
            policy,
        })
    }

    /// The contract address.
    pub fn contract(&self) -> Address {
        self.contract
    }

    /// What `who` holds on the settlement chain (wei): whether the signer
    /// can still pay for commitments.
    pub async fn balance(&self, who: Address) -> Result<U256, BridgeError> {
        self.timed(self.provider.get_balance(who)).await
    }

    /// Deploys the settlement contract with `owner` as its owner.
    pub async fn deploy(
        rpc_url: &str,
        owner: PrivateKeySigner,
        policy: SendPolicy,
    ) -> Result<Self, BridgeError> {
        let mut client = Self::new(rpc_url, Address::ZERO, Some(owner), policy)?;
        let mined = client.send(TxKind::Create, creation_code()).await?;
        let receipt = client
            .timed(client.provider.get_transaction_receipt(mined.tx_hash))
            .await?
            .ok_or_else(|| BridgeError::Rpc("deployment receipt vanished".into()))?;
        client.contract = receipt
            .contract_address
            .ok_or_else(|| BridgeError::Rpc("deployment created no contract".into()))?;
        Ok(client)
    }

    /// Registers a private chain (owner only) whose next batch is
    /// `start_batch + 1`, starting from state commitment `start`: 0 and the
    /// genesis commitment for a new chain, or its last batch settled on an
    /// earlier contract.
    pub async fn register_chain(
        &self,
        chain_id: u64,
        start_batch: u64,
        start: B256,
        program_id: B256,
        submitter: Address,
    ) -> Result<Mined, BridgeError> {
        let call = C::registerChainCall {
            chainId: chain_id,
            startBatch: start_batch,
            startCommitment: start,
            programId: program_id,
            submitter,
        };
        self.send(TxKind::Call(self.contract), call.abi_encode().into())
            .await
    }

    /// Points later batches at a new program (owner only).
    pub async fn set_program(&self, chain_id: u64, program_id: B256) -> Result<Mined, BridgeError> {
        let call = C::setProgramCall {
            chainId: chain_id,
            programId: program_id,
        };
        self.send(TxKind::Call(self.contract), call.abi_encode().into())
            .await
    }

    async fn view<T: SolCall>(&self, call: T) -> Result<T::Return, BridgeError> {
        let tx = TransactionRequest::default()
            .with_to(self.contract)
            .with_input(call.abi_encode());
        let out = self.timed(self.provider.call(tx)).await?;
        T::abi_decode_returns(&out).map_err(|e| {
            BridgeError::Rpc(format!("undecodable answer from {}: {e}", self.contract))
        })
    }

    /// Signs and sends one transaction, re-sending it with the same nonce
    /// and higher fees while it stays unmined, and waits for its receipt.
    async fn send(&self, to: TxKind, input: Bytes) -> Result<Mined, BridgeError> {
        let signer = self
            .signer
            .clone()
            .ok_or_else(|| BridgeError::Signer("this client has no signer".into()))?;
        let from = signer.address();
        let wallet = EthereumWallet::from(signer);
        let chain_id = self.timed(self.provider.get_chain_id()).await?;
        // The mined (not pending) count: a transaction of ours left in the
        // pool by a crash is replaced rather than queued behind.
        let nonce = self
            .timed(self.provider.get_transaction_count(from).latest())
            .await?;
        let mut tx = TransactionRequest::default()
            .with_from(from)
            .with_kind(to)
            .with_input(input)
            .with_chain_id(chain_id)
            .with_nonce(nonce);
        let gas = self.timed(self.provider.estimate_gas(tx.clone())).await?;
        tx.set_gas_limit(gas + gas / 5);
        let fees = self.timed(self.provider.estimate_eip1559_fees()).await?;
        let mut last_hash = B256::ZERO;
        for attempt in 0..=self.policy.max_resends {
            // Each re-send bumps both fees by 25 %, above the 10 % a node
            // requires to replace a pending transaction.
            let bump = |fee: u128| fee + fee * 25 * u128::from(attempt) / 100;
            let tx = tx
                .clone()
                .with_max_fee_per_gas(bump(fees.max_fee_per_gas))
                .with_max_priority_fee_per_gas(bump(fees.max_priority_fee_per_gas));
            let envelope = tx
                .build(&wallet)
                .await
                .map_err(|e| BridgeError::Signer(e.to_string()))?;
            let raw = alloy_network::eip2718::Encodable2718::encoded_2718(&envelope);
            last_hash = *envelope.tx_hash();
            match self.timed(self.provider.send_raw_transaction(&raw)).await {
                Ok(_) => {}
                // Sent before a restart or a lost answer: wait for it.
                Err(BridgeError::Rpc(m)) if m.contains("already known") => {}
                Err(e) => return Err(e),
            }
            if let Some(mined) = self.wait_mined(last_hash).await? {
                return Ok(mined);
            }
            tracing::warn!(tx = %last_hash, attempt, "settlement transaction not mined yet; re-sending with higher fees");
        }
        Err(BridgeError::NotMined {
            hash: last_hash,
            secs: self.policy.mine_timeout.as_secs() * u64::from(self.policy.max_resends + 1),
        })
    }

    async fn wait_mined(&self, hash: B256) -> Result<Option<Mined>, BridgeError> {
        let deadline = tokio::time::Instant::now() + self.policy.mine_timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(r) = self
                .timed(self.provider.get_transaction_receipt(hash))
                .await?
            {
                let mined = Mined {
                    tx_hash: hash,
                    block_number: r.block_number.unwrap_or_default(),
                };
                if !r.status() {
                    return Err(BridgeError::Reverted(format!(
                        "transaction {hash} reverted in block {}",
                        mined.block_number
                    )));
                }
                return Ok(Some(mined));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(None)
    }

    /// Runs one RPC with a deadline; a revert becomes the contract's reason.
    async fn timed<T>(
        &self,
        fut: impl std::future::IntoFuture<Output = alloy_provider::transport::TransportResult<T>>,
    ) -> Result<T, BridgeError> {
        match tokio::time::timeout(self.policy.rpc_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                Some(data) => BridgeError::Reverted(describe_revert(&data)),
                None => BridgeError::rpc(e),
            }),
            Err(_) => Err(BridgeError::Rpc(format!(
                "no answer within {} s",
                self.policy.rpc_timeout.as_secs()
            ))),
        }
    }
}

impl SettlementClient for EvmSettlement {
    async fn signer_balance(&self) -> Result<Option<U256>, BridgeError> {
        match self.signer.as_ref().map(|s| s.address()) {
            Some(who) => self.balance(who).await.map(Some),
            None => Ok(None),
        }
    }

    async fn chain(&self, chain_id: u64) -> Result<Option<ChainRecord>, BridgeError> {
        let c = self.view(C::getChainCall { chainId: chain_id }).await?;
        Ok(c.registered.then_some(ChainRecord {
            submitter: c.submitter,
            program_id: c.programId,
            last_batch: c.lastBatch,
            last_commitment: c.lastCommitment,
        }))
    }

    async fn batch(&self, chain_id: u64, n: u64) -> Result<Option<SettledBatch>, BridgeError> {
        let b = self
            .view(C::getBatchCall {
                chainId: chain_id,
                batchNumber: n,
            })
            .await?;
        // A committed batch always has a proof digest (the contract
        // refuses zero).
        if b.proofDigest.is_zero() {
            return Ok(None);
        }
        let outputs = SettledOutputsJson {
            chain_id,
            batch_number: n,
            prev_commitment: b.prevCommitment,
            new_commitment: b.newCommitment,
            private_commitment: b.privateCommitment,
        };
        Ok(Some(SettledBatch {
            outputs_digest: SettledOutputs::from(outputs).digest(),
            outputs,
            proof_digest: b.proofDigest,
            program_id: b.programId,
        }))
    }

    async fn find_proof(&self, proof_digest: B256) -> Result<Option<(u64, u64)>, BridgeError> {
        let r = self
            .view(C::findProofCall {
                proofDigest: proof_digest,
            })
            .await?;
        Ok((r.batchNumber != 0).then_some((r.chainId, r.batchNumber)))
    }

    async fn commit(&self, commitment: &Commitment) -> Result<Mined, BridgeError> {
        self.send(TxKind::Call(self.contract), commitment.calldata())
            .await
    }
}
