//! The block log: the chain's only durable record.
//!
//! Input: sealed blocks (context + signed transactions + output hash).
//! Output: an append-only file of framed records, each fsync'd before the
//! block's transactions are reported included.
//!
//! Frame: `len: u32 BE | crc32(payload): u32 BE | payload`, where payload is
//! `version: u8 | body`. A torn last frame (crash mid-append) is cut off on
//! open; damage anywhere else is an error, never skipped.
//!
//! With a cipher (an encrypted appliance) every payload is version 2:
//! `2 | block number: u64 BE | sealed(version-1 payload)`, sealed for the
//! context `blocklog/<number>`, so a frame that is edited, moved to another
//! position or sealed under another key fails to open and the log is
//! refused. Plaintext frames are refused in an encrypted log.

mod record;
mod reseal;
mod v1;

pub use record::BlockRecord;
pub use reseal::ResealProgress;

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};
use storage::SharedCipher;

const MAGIC: &[u8; 8] = b"PVDLOG01";
const FRAME_HEADER: usize = 8;
const SEALED_VERSION: u8 = 2;
/// Largest record accepted (a block of max size with headroom).
pub const MAX_RECORD: usize = 256 * 1024 * 1024;

/// Block log failures.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// File I/O failed.
    #[error("block log i/o error at {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A record in the middle of the log is damaged.
    #[error("block log corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// File offset of the bad frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Record version this build cannot read.
    #[error("block log record at byte {offset} has unknown version {version}")]
    UnknownVersion {
        /// File offset.
        offset: u64,
        /// Version byte.
        version: u8,
    },
    /// The log cannot take appends any more (see the reason); restart.
    #[error("block log unusable: {0}")]
    Unusable(String),
    /// A block could not be sealed (key exhausted or unavailable).
    #[error("cannot seal block {number} for the block log: {reason}")]
    Seal {
        /// Block number.
        number: u64,
        /// Why.
        reason: String,
    },
    /// Appended block does not follow the last one.
    #[error("block {got} appended after block {last:?}")]
    OutOfOrder {
        /// Last block in the log.
        last: Option<u64>,
        /// Block appended.
        got: u64,
    },
}

type Result<T> = std::result::Result<T, WalError>;

/// Appends to the block log.
pub trait BlockLogWriter {
    /// Appends `record` and returns once it is on disk.
    fn append(&mut self, record: &BlockRecord) -> Result<()>;
}

/// Reads the block log.
pub trait BlockLogReader {
    /// Number of the last block in the log.
    fn last_block(&self) -> Option<u64>;
    /// Reads up to `limit` records with number `>= from`, in order.
    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<BlockRecord>>;
}

/// The block log file.
#[derive(Debug)]
pub struct BlockLog {
    path: PathBuf,
    file: File,
    /// Offset of each record, indexed by `number - first`.
    offsets: Vec<u64>,
    first: Option<u64>,
    len: u64,
    cipher: Option<SharedCipher>,
    /// Frames per data-key version (empty for a plaintext log).
    versions: BTreeMap<u32, u64>,
    /// A re-seal onto the current key in progress.
    reseal: Option<reseal::Rewrite>,
    /// Set when a failure left appends unsafe.
    unusable: Option<String>,
}

impl BlockLog {
    /// Opens or creates a plaintext log (tests, tools, `encryption = off`).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, None)
    }

    /// Opens or creates the log, validating (and, with a cipher, opening)
    /// every frame and cutting a torn tail.
    pub fn open_with(path: &Path, cipher: Option<SharedCipher>) -> Result<Self> {
        let io = |source| WalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            sync_dir(path).map_err(io)?;
            bytes.extend_from_slice(MAGIC);
        } else if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(WalError::Corrupt {
                offset: 0,
                reason: "not a prividium block log (bad magic)".into(),
            });
        }
        let scan = scan(&bytes, cipher.as_deref())?;
        if scan.valid_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = bytes.len() as u64 - scan.valid_len,
                "cutting torn tail off the block log"
            );
            file.set_len(scan.valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            offsets: scan.offsets,
            first: scan.first,
            len: scan.valid_len,
            cipher,
            versions: scan.versions,
            reseal: None,
            unusable: None,
        })
    }

    /// Frames per data-key version (empty for a plaintext log): a version
    /// absent here seals nothing in the log.
    pub fn key_versions(&self) -> &BTreeMap<u32, u64> {
        &self.versions
    }

    /// The frame payload of `record`, and the key version it is sealed under.
    fn encode_payload(&self, record: &BlockRecord) -> Result<(Vec<u8>, Option<u32>)> {
        let mut plain = vec![v1::VERSION];
        v1::encode(record, &mut plain);
        let Some(cipher) = &self.cipher else {
            return Ok((plain, None));
        };
        let seal_err = |reason: String| WalError::Seal {
            number: record.number,
            reason,
        };
        let sealed = cipher
            .seal(&frame_context(record.number), &plain)
            .map_err(|e| seal_err(e.to_string()))?;
        let version = cipher
            .key_version(&sealed)
            .map_err(|e| seal_err(e.to_string()))?;
        Ok((sealed_payload(record.number, &sealed), Some(version)))
    }

    fn read_at(&self, offset: u64) -> Result<BlockRecord> {
        let mut f = File::open(&self.path).map_err(self.io())?;
        let payload = self.read_payload(&mut f, offset)?;
        decode_payload(offset, &payload, self.cipher.as_deref())
    }

    /// The checked payload of the frame at `offset` of `f` (the log file).
    fn read_payload(&self, f: &mut File, offset: u64) -> Result<Vec<u8>> {
        f.seek(SeekFrom::Start(offset)).map_err(self.io())?;
        let mut header = [0u8; FRAME_HEADER];
        f.read_exact(&mut header).map_err(self.io())?;
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_RECORD {
            return Err(WalError::Corrupt {
                offset,
                reason: format!("frame length {len} exceeds limit"),
            });
        }
        let mut payload = vec![0u8; len];
        f.read_exact(&mut payload).map_err(self.io())?;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        if crc32fast::hash(&payload) != crc {
            return Err(WalError::Corrupt {
                offset,
                reason: "checksum mismatch".into(),
            });
        }
        Ok(payload)
    }

    fn io(&self) -> impl Fn(std::io::Error) -> WalError + '_ {
        |source| WalError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// `2 | number | sealed`: a version-1 payload sealed for block `number`.
fn sealed_payload(number: u64, sealed: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(9 + sealed.len());
    payload.push(SEALED_VERSION);
    payload.extend_from_slice(&number.to_be_bytes());
    payload.extend_from_slice(sealed);
    payload
}

/// `len | crc | payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn frame_context(number: u64) -> Vec<u8> {
    let mut c = b"blocklog/".to_vec();
    c.extend_from_slice(&number.to_be_bytes());
    c
}

/// The length of `file`'s complete frames, for copying a live log: the
/// file is synced after its length is read, so every byte counted is durable, and a frame the
/// writer is still appending is left out. Frames are not opened here (the
/// copy is checked by opening it with its keys).
pub fn durable_prefix(file: &mut File) -> std::io::Result<u64> {
    // Length first: a frame appended after it is not counted, and
    // everything counted is on disk once the sync returns.
    let len = file.metadata()?.len();
    file.sync_data()?;
    let mut header = [0u8; FRAME_HEADER];
    let mut pos = MAGIC.len() as u64;
    if len < pos {
        return Ok(0);
    }
    while pos + FRAME_HEADER as u64 <= len {
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut header)?;
        let body = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        let end = pos + FRAME_HEADER as u64 + body;
        if body as usize > MAX_RECORD || end > len {
            break;
        }
        pos = end;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(pos)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

struct Scan {
    offsets: Vec<u64>,
    first: Option<u64>,
    valid_len: u64,
    versions: BTreeMap<u32, u64>,
}

fn scan(bytes: &[u8], cipher: Option<&dyn storage::RecordCipher>) -> Result<Scan> {
    let mut offsets = Vec::new();
    let mut versions = BTreeMap::new();
    let mut first = None;
    let mut expected_next: Option<u64> = None;
    let mut pos = MAGIC.len();
    while pos < bytes.len() {
        let offset = pos as u64;
        let rest = &bytes[pos..];
        if rest.len() < FRAME_HEADER {
            break; // torn header at the tail
        }
        let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        let end = FRAME_HEADER + len;
        if len > MAX_RECORD {
            return Err(WalError::Corrupt {
                offset,
                reason: format!("frame length {len} exceeds limit"),
            });
        }
        if rest.len() < end {
            break; // torn body at the tail
        }
        let payload = &rest[FRAME_HEADER..end];
        if crc32fast::hash(payload) != crc {
            if rest.len() == end {
                break; // the last frame was half-written
            }
            return Err(WalError::Corrupt {
                offset,
                reason: "checksum mismatch".into(),
            });
        }
        let record = decode_payload(offset, payload, cipher)?;
        if let Some(next) = expected_next {
            if record.number != next {
                return Err(WalError::Corrupt {
                    offset,
                    reason: format!("block {} where {next} was expected", record.number),
                });
            }
        }
        if let (Some(c), Some(sealed)) = (cipher, payload.get(9..)) {
            // decode_payload opened it, so its header parses.
            if let Ok(v) = c.key_version(sealed) {
                *versions.entry(v).or_insert(0) += 1;
            }
        }
        first.get_or_insert(record.number);
        expected_next = Some(record.number + 1);
        offsets.push(offset);
        pos += end;
    }
    Ok(Scan {
        offsets,
        first,
        valid_len: pos.min(bytes.len()) as u64,
        versions,
    })
}

fn decode_payload(
    offset: u64,
    payload: &[u8],
    cipher: Option<&dyn storage::RecordCipher>,
) -> Result<BlockRecord> {
    let corrupt = |reason: String| WalError::Corrupt { offset, reason };
    let (&version, body) = payload
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    match (version, cipher) {
        (v1::VERSION, None) => v1::decode(body).map_err(corrupt),
        (v1::VERSION, Some(_)) => Err(corrupt(
            "plaintext record in an encrypted block log (written outside the appliance?)".into(),
        )),
        (SEALED_VERSION, None) => Err(corrupt(
            "encrypted record, but no keys were given (is encryption configured?)".into(),
        )),
        (SEALED_VERSION, Some(cipher)) => {
            let number = body
                .get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                .ok_or_else(|| corrupt("sealed record too short".into()))?;
            let plain = cipher
                .open(&frame_context(number), &body[8..])
                .map_err(|e| corrupt(format!("block {number}: {e}")))?;
            let record = decode_payload(offset, &plain, None)?;
            if record.number != number {
                return Err(corrupt(format!(
                    "sealed as block {number} but holds block {}",
                    record.number
                )));
            }
            Ok(record)
        }
        (version, _) => Err(WalError::UnknownVersion { offset, version }),
    }
}

impl BlockLogWriter for BlockLog {
    fn append(&mut self, record: &BlockRecord) -> Result<()> {
        if let Some(why) = &self.unusable {
            return Err(WalError::Unusable(why.clone()));
        }
        let last = self.last_block();
        if last.is_some_and(|l| record.number != l + 1) {
            return Err(WalError::OutOfOrder {
                last,
                got: record.number,
            });
        }
        let (payload, version) = self.encode_payload(record)?;
        let frame = frame(&payload);
        self.file.write_all(&frame).map_err(self.io())?;
        // fdatasync: the record must survive power loss before anyone is told.
        self.file.sync_data().map_err(self.io())?;
        self.offsets.push(self.len);
        self.first.get_or_insert(record.number);
        self.len += frame.len() as u64;
        if let Some(v) = version {
            *self.versions.entry(v).or_insert(0) += 1;
        }
        Ok(())
    }
}

impl BlockLogReader for BlockLog {
    fn last_block(&self) -> Option<u64> {
        self.first
            .map(|f| f + self.offsets.len() as u64 - 1)
            .filter(|_| !self.offsets.is_empty())
    }

    fn read_from(&self, from: u64, limit: usize) -> Result<Vec<BlockRecord>> {
        let Some(first) = self.first else {
            return Ok(Vec::new());
        };
        let start = from.saturating_sub(first) as usize;
        self.offsets
            .iter()
            .skip(start)
            .take(limit)
            .map(|&off| self.read_at(off))
            .collect()
    }
}

#[cfg(test)]
mod tests;
