use super::*;
use crate::provider::{KdfParams, LocalKeyFile, Passphrase};
use storage::RecordCipher;

fn provider(dir: &Path) -> LocalKeyFile {
    LocalKeyFile::open_or_create(
        &dir.join("keys/kek.sealed"),
        &Passphrase::new("correct horse battery staple"),
        KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn epochs_advance_on_every_unlock_and_rotation_keeps_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(dir.path());
    let ring = Keyring::new(dir.path());
    let k1 = ring.unlock(&p, KeyLimits::default()).await.unwrap();
    let k2 = ring.unlock(&p, KeyLimits::default()).await.unwrap();
    assert_eq!((k1.epoch, k2.epoch), (1, 2));
    assert_eq!(*k1.deks[&1], *k2.deks[&1]);

    let c = Cipher::new(&k2);
    let old = c.seal(b"ctx", b"v1 record").unwrap();
    assert_eq!(ring.rotate_dek(&p).await.unwrap(), 2);
    assert_eq!(
        ring.refresh(&p, &c, KeyLimits::default()).await.unwrap(),
        Some(2)
    );
    assert_eq!(c.current_version(), 2);
    assert_eq!(c.open(b"ctx", &old).unwrap(), b"v1 record");
    assert_eq!(
        ring.refresh(&p, &c, KeyLimits::default()).await.unwrap(),
        None
    );

    ring.rotate_kek(&p).await.unwrap();
    let doc = ring.read().unwrap();
    assert!(doc.deks.iter().all(|d| d.wrapped.starts_with("local:v2:")));
    let k3 = ring.unlock(&p, KeyLimits::default()).await.unwrap();
    assert_eq!(Cipher::new(&k3).open(b"ctx", &old).unwrap(), b"v1 record");

    // Retired: never unwrapped again, and a running cipher drops it
    // without counting that as a rotation.
    ring.retire(&p, &[1, 2]).await.unwrap(); // the current one stays
    assert_eq!(
        ring.refresh(&p, &c, KeyLimits::default()).await.unwrap(),
        None
    );
    assert_eq!(c.versions(), vec![2]);
    assert!(c.open(b"ctx", &old).is_err());
    let k4 = ring.unlock(&p, KeyLimits::default()).await.unwrap();
    assert_eq!(k4.deks.keys().copied().collect::<Vec<_>>(), vec![2]);
}

#[tokio::test]
async fn edited_keyring_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(dir.path());
    let ring = Keyring::new(dir.path());
    ring.unlock(&p, KeyLimits::default()).await.unwrap();
    let mut doc = ring.read().unwrap();
    doc.deks[0].epoch = 0; // roll the epoch back to reuse nonces
    std::fs::write(ring.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = ring.unlock(&p, KeyLimits::default()).await.unwrap_err();
    assert!(err.to_string().contains("edited outside"), "{err}");
}

/// A data directory copied elsewhere (a backup, a restore): its keyring
/// opens read-only with the copied key file without a byte written, and
/// is re-bound to the copy only when the copy opens every key.
#[tokio::test]
async fn a_copied_keyring_opens_read_only_and_rebinds_only_to_its_own_keys() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let original = provider(a.path());
    let ring = Keyring::new(a.path());
    let keys = ring.unlock(&original, KeyLimits::default()).await.unwrap();
    let sealed = Cipher::new(&keys).seal(b"ctx", b"record").unwrap();
    std::fs::create_dir_all(b.path().join(KEYS_DIR)).unwrap();
    for name in [KEYRING_FILE, "kek.sealed"] {
        std::fs::copy(
            a.path().join(KEYS_DIR).join(name),
            b.path().join(KEYS_DIR).join(name),
        )
        .unwrap();
    }
    let (copy, copied) = (provider(b.path()), Keyring::new(b.path()));
    let before = std::fs::read(copied.path()).unwrap();
    let opened = copied.unlock_to_open(&copy).await.unwrap();
    assert_eq!(
        std::fs::read(copied.path()).unwrap(),
        before,
        "nothing written"
    );
    let reader = Cipher::new(&opened);
    assert_eq!(reader.open(b"ctx", &sealed).unwrap(), b"record");
    assert!(
        reader.seal(b"ctx", b"x").is_err(),
        "no nonce epoch: never seals"
    );
    // Named after the original's path until re-bound.
    assert!(copied.unlock(&copy, KeyLimits::default()).await.is_err());
    // Another key file does not take it over.
    let stranger = provider(c.path());
    assert!(copied.rebind(&stranger).await.is_err());
    assert!(copied.rebind(&copy).await.unwrap());
    assert!(!copied.rebind(&copy).await.unwrap(), "already bound");
    let k = copied.unlock(&copy, KeyLimits::default()).await.unwrap();
    assert_eq!(Cipher::new(&k).open(b"ctx", &sealed).unwrap(), b"record");
}
