use super::*;
use crate::test_support::{signed_transfer, test_context};
use storage::SharedCipher;

fn record(number: u64, txs: usize) -> BlockRecord {
    BlockRecord {
        number,
        context: test_context(number),
        transactions: (0..txs as u64).map(|n| signed_transfer(n, 1)).collect(),
        output_hash: B256::repeat_byte(number as u8),
        block_hash: B256::repeat_byte(0xb0 ^ number as u8),
    }
}

use alloy_primitives::B256;

#[test]
fn records_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let mut log = BlockLog::open(&path).unwrap();
    for n in 1..=3 {
        log.append(&record(n, n as usize)).unwrap();
    }
    drop(log);
    let log = BlockLog::open(&path).unwrap();
    assert_eq!(log.last_block(), Some(3));
    let back = log.read_from(2, 10).unwrap();
    assert_eq!(back, vec![record(2, 2), record(3, 3)]);
}

#[test]
fn out_of_order_append_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = BlockLog::open(&dir.path().join("blocks.log")).unwrap();
    log.append(&record(1, 0)).unwrap();
    assert!(matches!(
        log.append(&record(3, 0)),
        Err(WalError::OutOfOrder { .. })
    ));
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let mut log = BlockLog::open(&path).unwrap();
    log.append(&record(1, 1)).unwrap();
    log.append(&record(2, 1)).unwrap();
    drop(log);
    // Simulate a crash halfway through writing block 3.
    let mut payload = vec![v1::VERSION];
    v1::encode(&record(3, 2), &mut payload);
    let mut frame = frame_of(&payload);
    frame.truncate(frame.len() - payload.len() / 2);
    append_raw(&path, &frame);

    let mut log = BlockLog::open(&path).unwrap();
    assert_eq!(log.last_block(), Some(2));
    log.append(&record(3, 2)).unwrap();
    drop(log);
    assert_eq!(
        BlockLog::open(&path).unwrap().read_from(3, 10).unwrap(),
        vec![record(3, 2)]
    );
}

/// A backup copies a live log up to its last whole frame: a frame still
/// being written is left out, and the copy opens with every block before it.
#[test]
fn the_durable_prefix_stops_before_a_frame_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let mut log = BlockLog::open(&path).unwrap();
    log.append(&record(1, 1)).unwrap();
    log.append(&record(2, 3)).unwrap();
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut payload = vec![v1::VERSION];
    v1::encode(&record(3, 2), &mut payload);
    let mut frame = frame_of(&payload);
    frame.truncate(frame.len() - 5);
    append_raw(&path, &frame);

    let mut file = std::fs::File::open(&path).unwrap();
    assert_eq!(durable_prefix(&mut file).unwrap(), whole);
    let copy = dir.path().join("copy.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(whole as usize);
    std::fs::write(&copy, &bytes).unwrap();
    let copied = BlockLog::open(&copy).unwrap();
    assert_eq!(copied.last_block(), Some(2));
    assert_eq!(copied.read_from(2, 1).unwrap(), vec![record(2, 3)]);
    // A log with only its magic has no frames; an empty file not even that.
    std::fs::write(&copy, MAGIC).unwrap();
    assert_eq!(
        durable_prefix(&mut std::fs::File::open(&copy).unwrap()).unwrap(),
        8
    );
    std::fs::write(&copy, b"").unwrap();
    assert_eq!(
        durable_prefix(&mut std::fs::File::open(&copy).unwrap()).unwrap(),
        0
    );
}

#[test]
fn damage_before_the_tail_is_an_error_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let mut log = BlockLog::open(&path).unwrap();
    for n in 1..=3 {
        log.append(&record(n, 1)).unwrap();
    }
    let second = log.offsets[1];
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[second as usize + FRAME_HEADER + 5] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = BlockLog::open(&path).unwrap_err();
    assert!(
        matches!(err, WalError::Corrupt { offset, .. } if offset == second),
        "{err}"
    );
}

#[test]
fn unknown_record_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    drop(BlockLog::open(&path).unwrap());
    let frame = frame_of(&[9u8, 0xc0]);
    append_raw(&path, &frame);
    assert!(matches!(
        BlockLog::open(&path),
        Err(WalError::UnknownVersion { version: 9, .. })
    ));
}

/// The v1 wire format must never change once released.
#[test]
fn v1_encoding_matches_the_golden_fixture() {
    let fixture = format!(
        "{}/src/wal/fixtures/v1_block.hex",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    );
    let mut payload = vec![v1::VERSION];
    v1::encode(&record(7, 2), &mut payload);
    if std::env::var_os("PRIVIDIUM_BLESS").is_some() {
        std::fs::write(&fixture, hex_encode(&payload)).unwrap();
    }
    let golden = std::fs::read_to_string(&fixture).expect("golden fixture present");
    assert_eq!(hex_encode(&payload), golden.trim());
    assert_eq!(decode_payload(0, &payload, None).unwrap(), record(7, 2));
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A well-formed frame around `payload`, as `append` writes it.
fn frame_of(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Appends bytes behind the log's back, as a crash or an attacker would.
fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn cipher(versions: &[u32], current: u32, key_byte: u8) -> SharedCipher {
    std::sync::Arc::new(encryption::Cipher::new(&encryption::ActiveKeys {
        deks: versions
            .iter()
            .map(|v| (*v, zeroize::Zeroizing::new([key_byte ^ *v as u8; 32])))
            .collect(),
        current,
        epoch: 1,
        sealed_before: 0,
        limit: u64::MAX,
        mac: zeroize::Zeroizing::new([0; 32]),
    }))
}

#[test]
fn sealed_log_round_trips_and_hides_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let c = cipher(&[1], 1, 0x10);
    let mut log = BlockLog::open_with(&path, Some(c.clone())).unwrap();
    for n in 1..=3 {
        log.append(&record(n, 2)).unwrap();
    }
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    let tx = &record(2, 2).transactions[1];
    let needle = alloy_eips::eip2718::Encodable2718::encoded_2718(tx);
    assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
    let log = BlockLog::open_with(&path, Some(c)).unwrap();
    assert_eq!(log.read_from(1, 10).unwrap()[1], record(2, 2));

    // Without keys, or with the wrong key, the log is refused, naming the block.
    let err = BlockLog::open(&path).unwrap_err().to_string();
    assert!(err.contains("no keys"), "{err}");
    let err = BlockLog::open_with(&path, Some(cipher(&[1], 1, 0x77)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("block 1") && err.contains("authentication"),
        "{err}"
    );
}

#[test]
fn sealed_log_refuses_edited_swapped_and_plaintext_frames() {
    let dir = tempfile::tempdir().unwrap();
    let c = cipher(&[1], 1, 0x10);
    let path = dir.path().join("blocks.log");
    let mut log = BlockLog::open_with(&path, Some(c.clone())).unwrap();
    for n in 1..=3 {
        log.append(&record(n, 1)).unwrap();
    }
    let offsets = log.offsets.clone();
    drop(log);
    let good = std::fs::read(&path).unwrap();
    let frame = |i: usize| {
        let start = offsets[i] as usize;
        let end = offsets
            .get(i + 1)
            .map(|o| *o as usize)
            .unwrap_or(good.len());
        good[start..end].to_vec()
    };

    // One flipped ciphertext byte in the middle block, with a fixed-up CRC
    // (an attacker can recompute it): refused, naming block 2.
    let mut f2 = frame(1);
    let i = f2.len() - 20;
    f2[i] ^= 1;
    let fixed = frame_of(&f2[FRAME_HEADER..]);
    let mut edited = good[..offsets[1] as usize].to_vec();
    edited.extend_from_slice(&fixed);
    edited.extend_from_slice(&frame(2));
    std::fs::write(&path, &edited).unwrap();
    let err = BlockLog::open_with(&path, Some(c.clone()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("block 2"), "{err}");

    // Block 2's frame copied over block 3's place (a replayed record).
    let mut swapped = good[..offsets[2] as usize].to_vec();
    let mut f2 = frame(1);
    f2[FRAME_HEADER + 1..FRAME_HEADER + 9].copy_from_slice(&3u64.to_be_bytes());
    swapped.extend_from_slice(&frame_of(&f2[FRAME_HEADER..]));
    swapped.extend_from_slice(&frame(2));
    std::fs::write(&path, &swapped).unwrap();
    assert!(BlockLog::open_with(&path, Some(c.clone())).is_err());

    // A plaintext frame slipped into an encrypted log.
    let mut plain = vec![v1::VERSION];
    v1::encode(&record(4, 0), &mut plain);
    let mut injected = good.clone();
    injected.extend_from_slice(&frame_of(&plain));
    injected.extend_from_slice(&frame(0)); // not the tail, so not cut as torn
    std::fs::write(&path, &injected).unwrap();
    let err = BlockLog::open_with(&path, Some(c)).unwrap_err().to_string();
    assert!(err.contains("plaintext record"), "{err}");
}

fn keys(versions: &[u32], current: u32) -> encryption::ActiveKeys {
    encryption::ActiveKeys {
        deks: versions
            .iter()
            .map(|v| (*v, zeroize::Zeroizing::new([0x10 ^ *v as u8; 32])))
            .collect(),
        current,
        epoch: 1,
        sealed_before: 0,
        limit: u64::MAX,
        mac: zeroize::Zeroizing::new([0; 32]),
    }
}

/// A log of `blocks` one-transaction blocks sealed under v1, and its cipher.
fn log_under_v1(dir: &Path, blocks: u64) -> (std::sync::Arc<encryption::Cipher>, BlockLog) {
    let c = std::sync::Arc::new(encryption::Cipher::new(&keys(&[1], 1)));
    let mut log = BlockLog::open_with(&dir.join("blocks.log"), Some(c.clone())).unwrap();
    for n in 1..=blocks {
        log.append(&record(n, 1)).unwrap();
    }
    (c, log)
}

/// `n` re-seal steps of one frame each.
fn steps(log: &mut BlockLog, n: usize) {
    for _ in 0..n {
        log.reseal_step(std::time::Instant::now()).unwrap();
    }
}

/// Steps until complete, one frame per step (the deadline is already past).
fn reseal_all(log: &mut BlockLog) -> ResealProgress {
    loop {
        let p = log.reseal_step(std::time::Instant::now()).unwrap();
        if p.complete {
            return p;
        }
    }
}

#[test]
fn reseal_moves_every_frame_to_the_new_key_while_blocks_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let (c, mut log) = log_under_v1(dir.path(), 4);
    assert!(!log.needs_reseal());
    c.swap(&keys(&[1, 2], 2));
    assert!(log.needs_reseal());

    let first = log.reseal_step(std::time::Instant::now()).unwrap();
    assert_eq!((first.copied, first.total, first.complete), (1, 4, false));
    // Blocks keep coming in the middle of the copy, sealed under v2.
    log.append(&record(5, 2)).unwrap();
    let done = reseal_all(&mut log);
    assert_eq!((done.copied, done.total, done.resealed), (5, 5, 4));
    assert_eq!(log.key_versions(), &BTreeMap::from([(2, 5)]));
    assert!(!dir.path().join("blocks.log.reseal").exists());
    // Appends go to the new file.
    log.append(&record(6, 1)).unwrap();
    drop(log);

    // v1 is no longer needed to read anything.
    let only_v2 = std::sync::Arc::new(encryption::Cipher::new(&keys(&[2], 2)));
    let log = BlockLog::open_with(&path, Some(only_v2)).unwrap();
    assert_eq!(log.last_block(), Some(6));
    let all = log.read_from(1, 10).unwrap();
    assert_eq!(all[0], record(1, 1));
    assert_eq!(all[4], record(5, 2));
}

#[test]
fn interrupted_reseal_resumes_from_its_partial_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let (c, mut log) = log_under_v1(dir.path(), 6);
    c.swap(&keys(&[1, 2], 2));
    steps(&mut log, 3);
    drop(log); // stopped mid-way: three frames are in blocks.log.reseal
    let partial = dir.path().join("blocks.log.reseal");
    assert!(partial.exists());

    let mut log = BlockLog::open_with(&path, Some(c.clone())).unwrap();
    let done = reseal_all(&mut log);
    assert_eq!(
        (done.copied, done.resealed),
        (6, 3),
        "resumed after frame 3"
    );
    drop(log);
    let only_v2 = std::sync::Arc::new(encryption::Cipher::new(&keys(&[2], 2)));
    assert_eq!(
        BlockLog::open_with(&path, Some(only_v2))
            .unwrap()
            .read_from(3, 1)
            .unwrap()[0],
        record(3, 1)
    );

    // A partial copy that is not a prefix of this log is discarded.
    c.swap(&keys(&[1, 2, 3], 3));
    std::fs::write(&partial, b"PVDLOG01 not frames").unwrap();
    let mut log = BlockLog::open_with(&path, Some(c)).unwrap();
    let done = reseal_all(&mut log);
    assert_eq!((done.copied, done.resealed), (6, 6));
    assert_eq!(log.key_versions(), &BTreeMap::from([(3, 6)]));
}

#[test]
fn a_copy_made_for_an_older_key_is_never_reported_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.log");
    let (c, mut log) = log_under_v1(dir.path(), 4);

    // Rotated again while a copy for v2 is half done: the copy's v2 frames
    // are still v2 when it is swapped in, so the run is not complete.
    c.swap(&keys(&[1, 2], 2));
    steps(&mut log, 2);
    c.swap(&keys(&[1, 2, 3], 3));
    let swapped = reseal_all(&mut log);
    assert_eq!(log.key_versions(), &BTreeMap::from([(3, 4)]));
    assert_eq!(swapped.target, 3);

    // Stopped half-way through a copy for v4, rotated to v5 while stopped:
    // the v4 copy is not resumed, the v5 run redoes every frame.
    c.swap(&keys(&[3, 4], 4));
    steps(&mut log, 2);
    drop(log);
    assert!(dir.path().join("blocks.log.reseal").exists());
    c.swap(&keys(&[3, 4, 5], 5));
    let mut log = BlockLog::open_with(&path, Some(c)).unwrap();
    let done = reseal_all(&mut log);
    assert_eq!((done.copied, done.resealed), (4, 4));
    assert_eq!(log.key_versions(), &BTreeMap::from([(5, 4)]));
}
