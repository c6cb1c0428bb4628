//! Settles only proofs and minimal commitments on the public settlement
//! chain, and lets counterparties check them from public data alone.
//!
//! Data flow: the prover's `proofs/` ([`ProofsDir`]) → [`Bridge`] (in
//! order, resuming from the contract) → [`Commitment`] (the egress guard:
//! settled outputs and a proof digest, nothing else) → [`SettlementClient`]
//! ([`EvmSettlement`], alloy) → `PrividiumSettlement.sol`. A counterparty
//! runs [`verify_settled`] with the proof file and the contract address.

mod client;
pub mod contract;
mod counterparty;
mod egress;
mod error;
mod service;
pub mod signer;
mod source;

pub use client::{
    ChainRecord, EvmSettlement, Mined, SendPolicy, SettledBatch, SettledOutputsJson,
    SettlementClient,
};
pub use counterparty::{verify_settled, Verified};
pub use egress::Commitment;
pub use error::BridgeError;
pub use service::{Bridge, BridgeConfig, BridgeStatus, SettlementObserver};
pub use source::{ProofCheck, ProofsDir, ProvenBatch, ProvenBatches};
