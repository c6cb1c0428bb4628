/// The tables of the derived store. A fixed list keeps the on-disk layout
/// reviewable and lets the encryption layer bind each record to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// address → account (nonce, balance, code hash).
    Accounts,
    /// address ‖ slot → value.
    Storage,
    /// code hash → bytecode.
    Code,
    /// block number (BE) → stored block (header, transactions, receipts).
    Blocks,
    /// block hash → block number.
    BlockHashes,
    /// transaction hash → (block number, index).
    TxIndex,
    /// block number (BE) → state root after that block.
    StateRoots,
    /// Single values: derived height, chain identity.
    Meta,
    /// Prover: batch jobs, witnesses and proofs by batch number (its own file).
    ProverJobs,
    /// Merkle-Patricia trie node hash → the last block that wrote it (BE)
    /// ‖ its RLP, for every version of the state kept: reads and proofs at
    /// older blocks walk it from their root.
    TrieNodes,
    /// block number (BE) → the hashes of the trie nodes it wrote: what
    /// pruning the history looks at.
    TrieNodeLog,
}

impl Table {
    /// Every table, for creation and scans.
    pub const ALL: [Table; 11] = [
        Table::Accounts,
        Table::Storage,
        Table::Code,
        Table::Blocks,
        Table::BlockHashes,
        Table::TxIndex,
        Table::StateRoots,
        Table::Meta,
        Table::ProverJobs,
        Table::TrieNodes,
        Table::TrieNodeLog,
    ];

    /// Stable on-disk name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Accounts => "accounts",
            Table::Storage => "storage",
            Table::Code => "code",
            Table::Blocks => "blocks",
            Table::BlockHashes => "block_hashes",
            Table::TxIndex => "tx_index",
            Table::StateRoots => "state_roots",
            Table::Meta => "meta",
            Table::ProverJobs => "prover_jobs",
            Table::TrieNodes => "trie_nodes",
            Table::TrieNodeLog => "trie_node_log",
        }
    }
}
