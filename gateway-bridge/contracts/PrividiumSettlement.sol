// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title PrividiumSettlement
/// @notice Anchors private chains to a public chain with commitments only.
///
/// Each private chain is registered under its chain id with a genesis state
/// root, the program id its batches are proven with, and one authorised
/// submitter. Only the public outputs of proven batches are stored:
/// roots, a batch commitment, the audit tree head, and the digest of the
/// proof. Counterparties fetch them and check the proof off-chain
/// (`prividium verify --settlement-rpc ...`).
///
/// Batches must be contiguous: batch n+1 starts where batch n ended, in
/// block numbers and in state root. This is the "commit" step of the ZKsync
/// Gateway model; see gateway-bridge/README.md.
contract PrividiumSettlement {
    /// The twelve fields the zkVM's outputs digest covers, in order.
    struct Outputs {
        uint64 chainId;
        uint64 batchNumber;
        uint64 firstBlock;
        uint64 lastBlock;
        bytes32 prevStateRoot;
        bytes32 newStateRoot;
        bytes32 prevBlockHash;
        bytes32 lastBlockHash;
        bytes32 batchCommitment;
        bytes32 configHash;
        uint64 auditSize;
        bytes32 auditRoot;
    }

    /// What is kept per batch.
    struct Batch {
        uint64 batchNumber;
        uint64 firstBlock;
        uint64 lastBlock;
        bytes32 prevStateRoot;
        bytes32 newStateRoot;
        bytes32 batchCommitment;
        bytes32 outputsDigest;
        bytes32 proofDigest;
        bytes32 programId;
        uint64 auditSize;
        bytes32 auditRoot;
        uint64 committedAt;
    }

    struct Chain {
        bool registered;
        address submitter;
        bytes32 programId;
        uint64 lastBatch;
        uint64 lastBlock;
        bytes32 lastStateRoot;
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

    event ChainRegistered(uint64 indexed chainId, bytes32 genesisStateRoot, bytes32 programId, address submitter);
    event SubmitterChanged(uint64 indexed chainId, address submitter);
    event ProgramChanged(uint64 indexed chainId, bytes32 programId);
    event BatchCommitted(
        uint64 indexed chainId,
        uint64 indexed batchNumber,
        bytes32 newStateRoot,
        bytes32 batchCommitment,
        bytes32 outputsDigest,
        bytes32 proofDigest,
        bytes32 programId
    );

    error NotOwner(address caller);
    error NotSubmitter(uint64 chainId, address caller);
    error UnknownChain(uint64 chainId);
    error AlreadyRegistered(uint64 chainId);
    error BadOutputsLength(uint256 length);
    error NotNextBatch(uint64 expected, uint64 got);
    error NotNextBlock(uint64 expected, uint64 got);
    error RootMismatch(bytes32 expected, bytes32 got);
    error EmptyBatch(uint64 firstBlock, uint64 lastBlock);
    error ProofAlreadyCommitted(bytes32 proofDigest, uint64 chainId, uint64 batchNumber);
    error ZeroProofDigest();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function registerChain(uint64 chainId, bytes32 genesisStateRoot, bytes32 programId, address submitter)
        external
        onlyOwner
    {
        if (chains[chainId].registered) revert AlreadyRegistered(chainId);
        chains[chainId] = Chain(true, submitter, programId, 0, 0, genesisStateRoot);
        emit ChainRegistered(chainId, genesisStateRoot, programId, submitter);
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

    /// Stores a proven batch. `outputs` is the 384-byte ABI encoding the
    /// zkVM's digest covers; `proofDigest` is keccak256 of the proof file.
    function commitBatch(bytes calldata outputs, bytes32 proofDigest) external {
        if (outputs.length != 384) revert BadOutputsLength(outputs.length);
        Outputs memory o = abi.decode(outputs, (Outputs));
        Chain storage c = _chain(o.chainId);
        if (msg.sender != c.submitter) revert NotSubmitter(o.chainId, msg.sender);
        if (o.batchNumber != c.lastBatch + 1) revert NotNextBatch(c.lastBatch + 1, o.batchNumber);
        if (o.firstBlock != c.lastBlock + 1) revert NotNextBlock(c.lastBlock + 1, o.firstBlock);
        if (o.lastBlock < o.firstBlock) revert EmptyBatch(o.firstBlock, o.lastBlock);
        if (o.prevStateRoot != c.lastStateRoot) revert RootMismatch(c.lastStateRoot, o.prevStateRoot);
        if (proofDigest == bytes32(0)) revert ZeroProofDigest();
        ProofRef memory seen = proofs[proofDigest];
        if (seen.batchNumber != 0) revert ProofAlreadyCommitted(proofDigest, seen.chainId, seen.batchNumber);
        proofs[proofDigest] = ProofRef(o.chainId, o.batchNumber);
        bytes32 digest = keccak256(outputs);
        batches[o.chainId][o.batchNumber] = Batch(
            o.batchNumber,
            o.firstBlock,
            o.lastBlock,
            o.prevStateRoot,
            o.newStateRoot,
            o.batchCommitment,
            digest,
            proofDigest,
            c.programId,
            o.auditSize,
            o.auditRoot,
            uint64(block.timestamp)
        );
        c.lastBatch = o.batchNumber;
        c.lastBlock = o.lastBlock;
        c.lastStateRoot = o.newStateRoot;
        emit BatchCommitted(o.chainId, o.batchNumber, o.newStateRoot, o.batchCommitment, digest, proofDigest, c.programId);
    }

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
