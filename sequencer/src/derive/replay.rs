use super::Deriver;
use crate::{
    wal::{BlockLogReader, BlockRecord},
    Result, SequencerError,
};
use alloy_consensus::transaction::SignerRecoverable;
use alloy_primitives::{Address, B256};
use state_transition::{BlockExecutor, BlockOutcome, ChainSpec, TxRejection};

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// First block replayed (none when already current).
    pub from: Option<u64>,
    /// Last derived block afterwards.
    pub to: u64,
    /// Transactions re-executed.
    pub transactions: usize,
    /// State root after the last block.
    pub state_root: B256,
    /// Contracts the replayed transactions created, at any depth, with the
    /// signer of each creating transaction, in chain order.
    pub created: Vec<(Address, Address)>,
}

/// Re-executes one logged block with the state-transition program and checks
/// it reproduces the recorded output hash and block hash.
fn execute_record(
    chain: &ChainSpec,
    deriver: &Deriver,
    record: &BlockRecord,
) -> Result<BlockOutcome> {
    let state = deriver.state();
    let mut exec = BlockExecutor::new(chain, record.context.clone(), &*state);
    exec.reserve(record.transactions.len());
    for (index, tx) in record.transactions.iter().enumerate() {
        let sender = tx
            .recover_signer()
            .map_err(|_| SequencerError::ReplayRejected {
                number: record.number,
                index,
                rejection: TxRejection::InvalidSignature,
            })?;
        exec.execute(tx.clone(), sender)
            .map_err(|rejection| SequencerError::ReplayRejected {
                number: record.number,
                index,
                rejection,
            })?;
    }
    let outcome = exec.finish();
    if outcome.output_hash != record.output_hash {
        return Err(SequencerError::ReplayDiverged {
            number: record.number,
            reason: format!(
                "output hash {} but the log recorded {}",
                outcome.output_hash, record.output_hash
            ),
        });
    }
    if outcome.header.hash != record.block_hash {
        return Err(SequencerError::ReplayDiverged {
            number: record.number,
            reason: format!(
                "block hash {} but the log recorded {}",
                outcome.header.hash, record.block_hash
            ),
        });
    }
    Ok(outcome)
}

/// Brings the derived store up to the end of the block log.
///
/// Idempotent: blocks already derived are skipped, so running it twice, or
/// after a crash at any point, ends in the same state.
pub(crate) fn replay(
    chain: &ChainSpec,
    log: &dyn BlockLogReader,
    deriver: &mut Deriver,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport> {
    let start = deriver.height() + 1;
    let last = log.last_block().unwrap_or(0);
    let mut report = ReplayReport {
        from: None,
        to: deriver.height(),
        transactions: 0,
        state_root: B256::ZERO,
        created: Vec::new(),
    };
    if last >= start {
        report.from = Some(start);
        // Records are read in chunks to bound memory on long logs.
        let mut next = start;
        while next <= last {
            let records = log.read_from(next, 1_000)?;
            if records.is_empty() {
                break;
            }
            for record in records {
                let outcome = execute_record(chain, deriver, &record)?;
                report.transactions += outcome.txs.len();
                for t in &outcome.txs {
                    report
                        .created
                        .extend(t.created.iter().map(|c| (c.address, t.sender)));
                }
                deriver.apply(&outcome)?;
                next = record.number + 1;
                progress(record.number, last);
            }
        }
        deriver.flush()?;
    }
    report.to = deriver.height();
    report.state_root = deriver.root();
    Ok(report)
}
