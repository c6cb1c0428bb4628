//! Fixed keys for other crates' tests and benches (feature `test-utils`,
//! never enabled by shipped code): the real cipher, so what tests check is
//! what runs, over keys anyone can reproduce.

use crate::{ActiveKeys, Cipher, KeyBytes};
use std::sync::Arc;

/// Data keys `versions` (key `v` is 32 bytes of `v`), sealing under
/// `current`. Two calls with a version in common open each other's records.
pub fn keys(versions: &[u32], current: u32) -> ActiveKeys {
    ActiveKeys {
        deks: versions
            .iter()
            .map(|v| (*v, KeyBytes::new([*v as u8; 32])))
            .collect(),
        current,
        epoch: 1,
        sealed_before: 0,
        limit: u64::MAX,
        mac: KeyBytes::new([0x5a; 32]),
    }
}

/// [`keys`] as the record cipher the appliance hands its stores.
pub fn cipher(versions: &[u32], current: u32) -> storage::SharedCipher {
    Arc::new(Cipher::new(&keys(versions, current)))
}
