//! The record cipher: AES-256-GCM under the keyring's data keys.
//!
//! Sealed record: `format (1) | key version (u32 BE) | nonce (12) | ciphertext ‖ tag`.
//! The nonce is `epoch (u32 BE) | counter (u64 BE)`: the epoch is bumped and
//! made durable in the keyring every time a data key is put to use, and the
//! counter only grows within one epoch, so a nonce never repeats under a key
//! (random 96-bit nonces would only make that likely). The associated data
//! binds the record to its key version and to the caller's context (table
//! and key, block number, file name), so a record moved anywhere else fails.

use aes_gcm::{
    aead::{AeadInOut, KeyInit},
    Aes256Gcm, Nonce,
};
use arc_swap::ArcSwap;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};
use storage::{CipherError, RecordCipher};
use zeroize::Zeroizing;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;
const AD_PREFIX: &[u8] = b"prividium/seal/1";

/// A 256-bit key in memory, wiped on drop.
pub type KeyBytes = Zeroizing<[u8; 32]>;

/// The key set a cipher works with at one moment.
pub struct ActiveKeys {
    /// Every data key that may have sealed a record, by version.
    pub deks: BTreeMap<u32, KeyBytes>,
    /// Version that seals new records.
    pub current: u32,
    /// Epoch reserved (durably) for this use of the current key.
    pub epoch: u32,
    /// Records the current key sealed in earlier epochs.
    pub sealed_before: u64,
    /// Most records one data key may seal.
    pub limit: u64,
    /// Key for blinding lookup keys; never rotated with the data keys,
    /// because blinded keys are where records live.
    pub mac: KeyBytes,
}

impl std::fmt::Debug for ActiveKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKeys")
            .field("versions", &self.deks.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    ciphers: BTreeMap<u32, Aes256Gcm>,
    current: u32,
    epoch: u32,
    sealed_before: u64,
    limit: u64,
    counter: AtomicU64,
    mac: Hmac<Sha256>,
}

impl Loaded {
    fn new(keys: &ActiveKeys) -> Self {
        let ciphers = keys
            .deks
            .iter()
            .map(|(v, k)| (*v, Aes256Gcm::new((&**k).into())))
            .collect();
        Self {
            ciphers,
            current: keys.current,
            epoch: keys.epoch,
            sealed_before: keys.sealed_before,
            limit: keys.limit,
            counter: AtomicU64::new(0),
            mac: <Hmac<Sha256> as Mac>::new_from_slice(keys.mac.as_ref())
                .expect("HMAC takes any key length"),
        }
    }
}

/// Seals and opens records; the key set can be swapped while in use
/// (data-key rotation) without stopping writers.
pub struct Cipher {
    loaded: ArcSwap<Loaded>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.loaded.load();
        f.debug_struct("Cipher")
            .field("versions", &l.ciphers.keys().collect::<Vec<_>>())
            .field("current", &l.current)
            .finish_non_exhaustive()
    }
}

impl Cipher {
    /// A cipher over `keys`.
    pub fn new(keys: &ActiveKeys) -> Self {
        Self {
            loaded: ArcSwap::from_pointee(Loaded::new(keys)),
        }
    }

    /// Replaces the key set (after a rotation); records sealed from now on
    /// use the new current key.
    pub fn swap(&self, keys: &ActiveKeys) {
        self.loaded.store(Arc::new(Loaded::new(keys)));
    }

    /// Records the current key has sealed in total (this and earlier epochs).
    pub fn sealed_total(&self) -> (u32, u64) {
        let l = self.loaded.load();
        (
            l.current,
            l.sealed_before + l.counter.load(Ordering::Relaxed),
        )
    }

    /// Data-key versions this cipher can open.
    pub fn versions(&self) -> Vec<u32> {
        self.loaded.load().ciphers.keys().copied().collect()
    }
}

fn associated_data(version: u32, context: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_PREFIX.len() + 4 + context.len());
    ad.extend_from_slice(AD_PREFIX);
    ad.extend_from_slice(&version.to_be_bytes());
    ad.extend_from_slice(context);
    ad
}

fn header(sealed: &[u8]) -> Result<(u32, [u8; 12]), CipherError> {
    if sealed.len() < HEADER + TAG {
        return Err(CipherError::Malformed(format!(
            "{} bytes is shorter than any sealed record",
            sealed.len()
        )));
    }
    if sealed[0] != FORMAT {
        return Err(CipherError::Malformed(format!(
            "unknown format byte {:#04x}",
            sealed[0]
        )));
    }
    let version = u32::from_be_bytes(sealed[1..5].try_into().expect("4 bytes"));
    let nonce: [u8; 12] = sealed[5..HEADER].try_into().expect("12 bytes");
    Ok((version, nonce))
}

impl RecordCipher for Cipher {
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        let l = self.loaded.load();
        let n = l.counter.fetch_add(1, Ordering::Relaxed);
        if l.sealed_before.saturating_add(n) >= l.limit {
            return Err(CipherError::Exhausted(l.current));
        }
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&l.epoch.to_be_bytes());
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        let cipher = l
            .ciphers
            .get(&l.current)
            .ok_or(CipherError::UnknownKey(l.current))?;
        // Encrypted where it will be stored: one buffer, no copy of the
        // plaintext beside it (a block record is most of a megabyte).
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.push(FORMAT);
        out.extend_from_slice(&l.current.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let ad = associated_data(l.current, context);
        let tag = cipher
            .encrypt_inout_detached(&Nonce::from(nonce), &ad, (&mut out[HEADER..]).into())
            .map_err(|_| CipherError::Malformed("record too large to seal".into()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        let (version, nonce) = header(sealed)?;
        let l = self.loaded.load();
        let cipher = l
            .ciphers
            .get(&version)
            .ok_or(CipherError::UnknownKey(version))?;
        let mut body = sealed[HEADER..].to_vec();
        let ad = associated_data(version, context);
        cipher
            .decrypt_in_place(&Nonce::from(nonce), &ad, &mut body)
            .map_err(|_| CipherError::Tampered)?;
        Ok(body)
    }

    fn key_version(&self, sealed: &[u8]) -> Result<u32, CipherError> {
        header(sealed).map(|(v, _)| v)
    }

    fn current_version(&self) -> u32 {
        self.loaded.load().current
    }

    fn blind(&self, domain: &[u8], key: &[u8]) -> [u8; 32] {
        let mut mac = self.loaded.load().mac.clone();
        mac.update(&[domain.len() as u8]);
        mac.update(domain);
        mac.update(key);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn keys(versions: &[u32], current: u32) -> ActiveKeys {
        ActiveKeys {
            deks: versions
                .iter()
                .map(|v| (*v, Zeroizing::new([*v as u8; 32])))
                .collect(),
            current,
            epoch: 7,
            sealed_before: 0,
            limit: u64::MAX,
            mac: Zeroizing::new([0xaa; 32]),
        }
    }

    /// The stored layout, pinned: a record sealed today must open on every
    /// later build. The expected bytes come from another AES-GCM
    /// implementation (Python's `cryptography`: key 0x01×32, nonce epoch 7 |
    /// counter 0, associated data `prividium/seal/1` | version | context).
    #[test]
    fn a_sealed_record_is_format_version_nonce_ciphertext_and_tag() {
        let c = Cipher::new(&keys(&[1], 1));
        let sealed = c.seal(b"accounts/k1", b"balance 1000").unwrap();
        assert_eq!(
            hex::encode(&sealed),
            "01000000010000000700000000000000\
             00a5e9145099b2507f051edd146b3d2b\
             b60c5fefb8da59118a41a123e3"
        );
        assert_eq!(c.open(b"accounts/k1", &sealed).unwrap(), b"balance 1000");
    }

    #[test]
    fn round_trip_and_every_tamper_case_fails() {
        let c = Cipher::new(&keys(&[1], 1));
        let sealed = c.seal(b"accounts/k1", b"balance 1000").unwrap();
        assert_eq!(c.open(b"accounts/k1", &sealed).unwrap(), b"balance 1000");
        assert!(!sealed.windows(4).any(|w| w == b"bala"));

        // Moved to another key or table.
        assert_eq!(c.open(b"accounts/k2", &sealed), Err(CipherError::Tampered));
        // Any flipped bit, header included.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(c.open(b"accounts/k1", &bad).is_err(), "byte {i} flipped");
        }
        // Truncated.
        assert!(matches!(
            c.open(b"accounts/k1", &sealed[..10]),
            Err(CipherError::Malformed(_))
        ));
        // Wrong key with the same version number.
        let mut other = keys(&[1], 1);
        other.deks.insert(1, Zeroizing::new([9; 32]));
        assert_eq!(
            Cipher::new(&other).open(b"accounts/k1", &sealed),
            Err(CipherError::Tampered)
        );
    }

    #[test]
    fn nonces_never_repeat_within_an_epoch() {
        let c = Cipher::new(&keys(&[1], 1));
        let mut nonces = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = c.seal(b"x", b"same plaintext").unwrap();
            assert!(nonces.insert(s[5..17].to_vec()));
        }
        assert_eq!(c.sealed_total(), (1, 1000));
    }

    #[test]
    fn rotation_keeps_old_records_readable_and_seals_new_ones_under_the_new_key() {
        let c = Cipher::new(&keys(&[1], 1));
        let old = c.seal(b"ctx", b"old").unwrap();
        c.swap(&keys(&[1, 2], 2));
        let new = c.seal(b"ctx", b"new").unwrap();
        assert_eq!(c.key_version(&old).unwrap(), 1);
        assert_eq!(c.key_version(&new).unwrap(), 2);
        assert_eq!(c.open(b"ctx", &old).unwrap(), b"old");
        assert_eq!(c.open(b"ctx", &new).unwrap(), b"new");
        // A keyring without version 1 names the missing key.
        let only2 = Cipher::new(&keys(&[2], 2));
        assert_eq!(only2.open(b"ctx", &old), Err(CipherError::UnknownKey(1)));
    }

    #[test]
    fn usage_limit_is_enforced() {
        let mut k = keys(&[1], 1);
        k.limit = 3;
        k.sealed_before = 1;
        let c = Cipher::new(&k);
        c.seal(b"a", b"1").unwrap();
        c.seal(b"a", b"2").unwrap();
        assert_eq!(c.seal(b"a", b"3"), Err(CipherError::Exhausted(1)));
    }

    #[test]
    fn blinding_is_keyed_and_domain_separated() {
        let c = Cipher::new(&keys(&[1], 1));
        let a = c.blind(b"accounts", &[1; 20]);
        assert_eq!(a, c.blind(b"accounts", &[1; 20]));
        assert_ne!(a, c.blind(b"code", &[1; 20]));
        let mut other = keys(&[1], 1);
        other.mac = Zeroizing::new([0xbb; 32]);
        assert_ne!(a, Cipher::new(&other).blind(b"accounts", &[1; 20]));
    }
}
