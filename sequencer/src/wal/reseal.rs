//! Moving the block log onto the current data key after a rotation, a few
//! frames at a time between blocks, so the old key can be retired without
//! stopping the chain.
//!
//! The new log is written beside the old one (`blocks.log.reseal`): frames
//! already under the current key are copied byte for byte, the others are
//! opened and sealed again for the same block. Once the copy has caught up
//! with the tip it is fsync'd and renamed over the old log — between two
//! appends, because the producer drives both. A stopped run leaves the
//! partial copy; the next run checks it frame by frame (as the log itself
//! is checked at open) and carries on from its end.

use super::*;
use std::time::Instant;

/// How far a re-seal has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResealProgress {
    /// Key version frames are moved onto.
    pub target: u32,
    /// Frames in the new log so far.
    pub copied: u64,
    /// Frames in the log (grows while blocks are produced).
    pub total: u64,
    /// Frames sealed again in this run (the others already were under the
    /// target key).
    pub resealed: u64,
    /// The new log has replaced the old one.
    pub complete: bool,
}

fn sync_dir_retrying(path: &Path) -> std::io::Result<()> {
    let mut result = sync_dir(path);
    for _ in 0..3 {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        result = sync_dir(path);
    }
    result
}

/// The partial new log.
#[derive(Debug)]
pub(super) struct Rewrite {
    path: PathBuf,
    file: File,
    offsets: Vec<u64>,
    len: u64,
    versions: BTreeMap<u32, u64>,
    resealed: u64,
}

impl BlockLog {
    fn reseal_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".reseal");
        PathBuf::from(p)
    }

    /// True when some frame is sealed under a key other than the cipher's
    /// current one.
    pub fn needs_reseal(&self) -> bool {
        self.cipher.as_ref().is_some_and(|c| {
            let target = c.current_version();
            self.versions.keys().any(|v| *v != target)
        })
    }

    /// Moves frames onto the current key until `deadline` (at least one
    /// frame per call), and swaps the new log in once it has caught up.
    /// Returns at once, complete, when nothing is left to move.
    pub fn reseal_step(&mut self, deadline: Instant) -> Result<ResealProgress> {
        let total = self.offsets.len() as u64;
        let Some(cipher) = self.cipher.clone() else {
            return Ok(ResealProgress {
                copied: total,
                total,
                complete: true,
                ..ResealProgress::default()
            });
        };
        let target = cipher.current_version();
        let mut rw = match self.reseal.take() {
            Some(rw) => rw,
            None if !self.needs_reseal() => {
                let _ = std::fs::remove_file(self.reseal_path());
                return Ok(ResealProgress {
                    target,
                    copied: total,
                    total,
                    resealed: 0,
                    complete: true,
                });
            }
            None => self.resume_rewrite(cipher.as_ref())?,
        };
        let mut live = File::open(&self.path).map_err(self.io())?;
        let mut out = Vec::new();
        while rw.offsets.len() < self.offsets.len() {
            let index = rw.offsets.len();
            let offset = self.offsets[index];
            let payload = self.read_payload(&mut live, offset)?;
            let corrupt = |reason: String| WalError::Corrupt { offset, reason };
            let (number, sealed) = match payload.split_first() {
                Some((&SEALED_VERSION, body)) if body.len() > 8 => (
                    u64::from_be_bytes(body[..8].try_into().expect("8 bytes")),
                    &body[8..],
                ),
                _ => return Err(corrupt("not a sealed frame in an encrypted log".into())),
            };
            let version = cipher
                .key_version(sealed)
                .map_err(|e| corrupt(format!("block {number}: {e}")))?;
            let (payload, version) = if version == target {
                (payload, version)
            } else {
                let ctx = frame_context(number);
                let plain = cipher
                    .open(&ctx, sealed)
                    .map_err(|e| corrupt(format!("block {number}: {e}")))?;
                let seal_err = |e: storage::CipherError| WalError::Seal {
                    number,
                    reason: e.to_string(),
                };
                let resealed = cipher.seal(&ctx, &plain).map_err(seal_err)?;
                let v = cipher.key_version(&resealed).map_err(seal_err)?;
                rw.resealed += 1;
                (sealed_payload(number, &resealed), v)
            };
            let frame = frame(&payload);
            rw.offsets.push(rw.len + out.len() as u64);
            out.extend_from_slice(&frame);
            *rw.versions.entry(version).or_insert(0) += 1;
            if Instant::now() >= deadline {
                break;
            }
        }
        let wio = |source| WalError::Io {
            path: rw.path.clone(),
            source,
        };
        rw.file.write_all(&out).map_err(wio)?;
        rw.len += out.len() as u64;
        let progress = ResealProgress {
            target,
            copied: rw.offsets.len() as u64,
            total,
            resealed: rw.resealed,
            complete: false,
        };
        if rw.offsets.len() < self.offsets.len() {
            // Kept on disk so a restart resumes here.
            rw.file.sync_data().map_err(wio)?;
            self.reseal = Some(rw);
            return Ok(progress);
        }
        rw.file.sync_all().map_err(wio)?;
        std::fs::rename(&rw.path, &self.path).map_err(self.io())?;
        // From here the copy is the log: appends go to it (its handle is
        // at its end), whatever happens next.
        self.file = rw.file;
        self.offsets = rw.offsets;
        self.len = rw.len;
        self.versions = rw.versions;
        if let Err(e) = sync_dir_retrying(&self.path) {
            // The rename may not survive a power loss, and blocks appended
            // now would be lost with it: stop appending instead.
            let why = format!("the re-sealed block log's rename is not durable: {e}");
            self.unusable = Some(why.clone());
            return Err(WalError::Unusable(why));
        }
        // Frames copied before a second rotation are under the key that
        // was current then: another pass moves them.
        let complete = !self.needs_reseal();
        tracing::info!(
            target,
            frames = total,
            resealed = rw.resealed,
            complete,
            "block log re-sealed and swapped in"
        );
        Ok(ResealProgress {
            complete,
            ..progress
        })
    }

    /// Continues a partial copy left by an earlier run when it checks out
    /// as a prefix of this log; starts a new one otherwise.
    fn resume_rewrite(&self, cipher: &dyn storage::RecordCipher) -> Result<Rewrite> {
        let path = self.reseal_path();
        let wio = |source| WalError::Io {
            path: path.clone(),
            source,
        };
        if let Ok(bytes) = std::fs::read(&path) {
            let prefix = bytes
                .starts_with(MAGIC)
                .then(|| scan(&bytes, Some(cipher)).ok())
                .flatten()
                .filter(|s| {
                    // A copy made for an earlier key (rotated again while
                    // stopped) would carry frames under it: start over.
                    s.offsets.len() <= self.offsets.len()
                        && (s.offsets.is_empty() || s.first == self.first)
                        && s.versions.keys().all(|v| *v == cipher.current_version())
                });
            match prefix {
                Some(s) => {
                    let mut file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(wio)?;
                    file.set_len(s.valid_len).map_err(wio)?;
                    file.seek(SeekFrom::End(0)).map_err(wio)?;
                    tracing::info!(frames = s.offsets.len(), "resuming the block log re-seal");
                    return Ok(Rewrite {
                        path,
                        file,
                        offsets: s.offsets,
                        len: s.valid_len,
                        versions: s.versions,
                        resealed: 0,
                    });
                }
                None => tracing::warn!(
                    path = %path.display(),
                    "discarding a partial block log re-seal that does not match the log"
                ),
            }
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(wio)?;
        file.write_all(MAGIC).map_err(wio)?;
        file.sync_all().map_err(wio)?;
        Ok(Rewrite {
            path,
            file,
            offsets: Vec::new(),
            len: MAGIC.len() as u64,
            versions: BTreeMap::new(),
            resealed: 0,
        })
    }
}
