// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title PrividiumSettlement
/// @notice Anchors private chains to a public chain with commitments only.
///
/// Each private chain is registered under its chain id with a starting
/// state commitment, the program id its batches are proven with, and one
/// authorised submitter. Per batch only five things are kept: the state
/// commitments before and after, one private commitment, the digest of the
/// proof and the program id. No block number, audit size or time: those
/// would give away the bank's activity volume and cadence. Counterparties
/// fetch a batch and check its proof off chain
/// (`prividium verify --settlement-rpc ...`).
///
/// A state commitment is keccak256(state root, block hash) of the private
/// chain. The block hash hides the root's neighbourhood and binds the
/// block height, so requiring each batch to start from the last commitment
/// keeps batches contiguous in blocks as well as in state. The private
/// commitment is keccak256 of everything else the proof asserts (block
/// range, audit head, ...), which the bank opens to its own auditors.
///
/// This is the "commit" step of the ZKsync Gateway model; see
/// gateway-bridge/README.md.
contract PrividiumSettlement {
    /// The five fields the zkVM's outputs digest covers, in order.
    struct Outputs {
        uint64 chainId;
        uint64 batchNumber;
        bytes32 prevCommitment;
        bytes32 newCommitment;
        bytes32 privateCommitment;
    }

    /// What is kept per batch.
    struct Batch {
        bytes32 prevCommitment;
        bytes32 newCommitment;
        bytes32 privateCommitment;
        bytes32 proofDigest;
        bytes32 programId;
    }

    struct Chain {
        bool registered;
        address submitter;
        bytes32 programId;
        uint64 lastBatch;
        bytes32 lastCommitment;
    }

    /// Where a proof was committed; lets a counterparty holding only a
    /// proof file find the commitment it must match.
    struct ProofRef {
        uint64 chainId;
        uint64 batchNumber;
    }

    address public owner;
    mapping(uint64 => Chain) private chains;
    mapping(uint64 => mapping(uint64 => Batch)) private batches;
    mapping(bytes32 => ProofRef) private proofs;

    event ChainRegistered(
        uint64 indexed chainId, uint64 startBatch, bytes32 startCommitment, bytes32 programId, address submitter
    );
    event SubmitterChanged(uint64 indexed chainId, address submitter);
    event ProgramChanged(uint64 indexed chainId, bytes32 programId);
    event BatchCommitted(
        uint64 indexed chainId, uint64 indexed batchNumber, bytes32 newCommitment, bytes32 proofDigest, bytes32 programId
    );

    error NotOwner(address caller);
    error NotSubmitter(uint64 chainId, address caller);
    error UnknownChain(uint64 chainId);
    error AlreadyRegistered(uint64 chainId);
    error BadOutputsLength(uint256 length);
    error NotNextBatch(uint64 expected, uint64 got);
    error CommitmentMismatch(bytes32 expected, bytes32 got);
    error ProofAlreadyCommitted(bytes32 proofDigest, uint64 chainId, uint64 batchNumber);
    error ZeroProofDigest();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    /// Registers a chain whose next batch is `startBatch + 1` and starts
    /// from `startCommitment`: 0 and the genesis commitment for a new
    /// chain, or the last batch settled elsewhere when a chain moves here
    /// from an earlier contract.
    function registerChain(
        uint64 chainId,
        uint64 startBatch,
        bytes32 startCommitment,
        bytes32 programId,
        address submitter
    ) external onlyOwner {
        if (chains[chainId].registered) revert AlreadyRegistered(chainId);
        chains[chainId] = Chain(true, submitter, programId, startBatch, startCommitment);
        emit ChainRegistered(chainId, startBatch, startCommitment, programId, submitter);
    }

    function setSubmitter(uint64 chainId, address submitter) external onlyOwner {
        _chain(chainId).submitter = submitter;
        emit SubmitterChanged(chainId, submitter);
    }

    /// An upgrade of the batch program: later batches are proven by `programId`.
    function setProgram(uint64 chainId, bytes32 programId) external onlyOwner {
        _chain(chainId).programId = programId;
        emit ProgramChanged(chainId, programId);
    }

    /// Stores a proven batch. `outputs` is the 160-byte ABI encoding the
    /// zkVM's digest covers; `proofDigest` is keccak256 of the proof file.
    function commitBatch(bytes calldata outputs, bytes32 proofDigest) external {
        if (outputs.length != 160) revert BadOutputsLength(outputs.length);
        Outputs memory o = abi.decode(outputs, (Outputs));
        Chain storage c = _chain(o.chainId);
        if (msg.sender != c.submitter) revert NotSubmitter(o.chainId, msg.sender);
        if (o.batchNumber != c.lastBatch + 1) revert NotNextBatch(c.lastBatch + 1, o.batchNumber);
        if (o.prevCommitment != c.lastCommitment) revert CommitmentMismatch(c.lastCommitment, o.prevCommitment);
        if (proofDigest == bytes32(0)) revert ZeroProofDigest();
        ProofRef memory seen = proofs[proofDigest];
        if (seen.batchNumber != 0) revert ProofAlreadyCommitted(proofDigest, seen.chainId, seen.batchNumber);
        proofs[proofDigest] = ProofRef(o.chainId, o.batchNumber);
        batches[o.chainId][o.batchNumber] =
            Batch(o.prevCommitment, o.newCommitment, o.privateCommitment, proofDigest, c.programId);
        c.lastBatch = o.batchNumber;
        c.lastCommitment = o.newCommitment;
        emit BatchCommitted(o.chainId, o.batchNumber, o.newCommitment, proofDigest, c.programId);
    }

    /// Batch `batchNumber` of the chain; all zero when it was never committed
    /// here.
    function getBatch(uint64 chainId, uint64 batchNumber) external view returns (Batch memory) {
        return batches[chainId][batchNumber];
    }

    function getChain(uint64 chainId) external view returns (Chain memory) {
        return chains[chainId];
    }

    /// The chain and batch a proof (by keccak256 of its file) was committed
    /// for; batchNumber 0 when it never was.
    function findProof(bytes32 proofDigest) external view returns (ProofRef memory) {
        return proofs[proofDigest];
    }

    function _chain(uint64 chainId) private view returns (Chain storage c) {
        c = chains[chainId];
        if (!c.registered) revert UnknownChain(chainId);
    }
}
