//! The transit key provider against a real OpenBao server.

mod support;

use encryption::{
    provider::{TransitAuth, TransitConfig, TransitProvider},
    Cipher, KeyLimits, KeyProvider, Keyring, ProviderError,
};
use std::path::Path;
use storage::RecordCipher;
use support::bao::{bao_bin, free_port, Bao};

fn ready() -> bool {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if bao_bin().is_none() {
        eprintln!("skipped: bao not installed (run deploy/dev/install-peers.sh)");
        return false;
    }
    true
}

fn config(addr: &str, auth: TransitAuth) -> TransitConfig {
    TransitConfig {
        address: addr.into(),
        mount: "transit".into(),
        key: "prividium".into(),
        ca_cert: None,
        namespace: None,
        auth,
        create_key: true,
        timeout_secs: 3,
    }
}

fn token_provider(bao: &Bao, dir: &Path) -> TransitProvider {
    TransitProvider::new(config(
        &bao.addr,
        TransitAuth::Token {
            env: None,
            file: Some(bao.token_file(dir)),
        },
    ))
    .unwrap()
}

#[tokio::test]
async fn transit_wraps_data_keys_and_rotations_keep_records_readable() {
    if !ready() {
        return;
    }
    let bao = Bao::dev();
    let dir = tempfile::tempdir().unwrap();
    let p = token_provider(&bao, dir.path());
    let ring = Keyring::new(dir.path());
    let cipher = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    let sealed = cipher.seal(b"kv/accounts/x", b"1000 EUR").unwrap();
    let doc = ring.read().unwrap();
    assert!(
        doc.deks[0].wrapped.starts_with("vault:v1:"),
        "stored wrapped by transit"
    );
    assert!(doc.provider.starts_with("transit:"));

    // Restart: the keys come back from transit.
    let again = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    assert_eq!(again.open(b"kv/accounts/x", &sealed).unwrap(), b"1000 EUR");

    // DEK rotation: new writes use v2, v1 records stay readable.
    assert_eq!(ring.rotate_dek(&p).await.unwrap(), 2);
    assert_eq!(
        ring.refresh(&p, &again, KeyLimits::default())
            .await
            .unwrap(),
        Some(2)
    );
    let newer = again.seal(b"ctx", b"after").unwrap();
    assert_eq!(again.key_version(&newer).unwrap(), 2);
    assert_eq!(again.open(b"kv/accounts/x", &sealed).unwrap(), b"1000 EUR");

    // KEK rotation in transit: every stored key re-wrapped, no record touched.
    ring.rotate_kek(&p).await.unwrap();
    let doc = ring.read().unwrap();
    assert!(
        doc.deks.iter().all(|d| d.wrapped.starts_with("vault:v2:")),
        "{doc:?}"
    );
    let after = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    assert_eq!(after.open(b"kv/accounts/x", &sealed).unwrap(), b"1000 EUR");
    assert_eq!(after.open(b"ctx", &newer).unwrap(), b"after");
}

#[tokio::test]
async fn approle_login_reaches_transit() {
    if !ready() {
        return;
    }
    let bao = Bao::dev();
    let dir = tempfile::tempdir().unwrap();
    bao.cli(&["auth", "enable", "approle"]);
    bao.cli_input(
        &["policy", "write", "prividium", "-"],
        Some(
            r#"path "transit/datakey/plaintext/prividium" { capabilities = ["update"] }
path "transit/decrypt/prividium" { capabilities = ["update"] }
path "transit/rewrap/prividium" { capabilities = ["update"] }
path "transit/keys/prividium" { capabilities = ["read", "create", "update"] }
path "transit/keys/prividium/rotate" { capabilities = ["update"] }"#,
        ),
    );
    bao.cli(&[
        "write",
        "auth/approle/role/prividium",
        "token_policies=prividium",
    ]);
    let role_id = bao
        .cli(&[
            "read",
            "-field=role_id",
            "auth/approle/role/prividium/role-id",
        ])
        .trim()
        .to_string();
    let secret = bao
        .cli(&[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/prividium/secret-id",
        ])
        .trim()
        .to_string();
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&secret_file, &secret).unwrap();
    let p = TransitProvider::new(config(
        &bao.addr,
        TransitAuth::Approle {
            mount: "approle".into(),
            role_id,
            secret_id_file: secret_file.clone(),
        },
    ))
    .unwrap();
    let ring = Keyring::new(dir.path());
    let keys = ring.unlock(&p, KeyLimits::default()).await.unwrap();
    assert_eq!(keys.current, 1);

    // A wrong secret id is refused and named; it stays retryable because an
    // operator can fix the role while the appliance waits sealed.
    std::fs::write(&secret_file, "not-the-secret").unwrap();
    let err = ring.unlock(&p, KeyLimits::default()).await.unwrap_err();
    assert!(err.to_string().contains("approle login"), "{err}");
    assert!(matches!(&err, encryption::KeyringError::Provider(e) if e.is_retryable()));
}

#[tokio::test]
async fn transit_over_tls_trusts_only_the_configured_ca() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let bao = Bao::dev_tls(&certs);
    let auth = || TransitAuth::Token {
        env: None,
        file: Some(bao.token_file(dir.path())),
    };

    // The server's certificate is from its own CA, which the system store
    // does not hold: without the pinned CA nothing is sent.
    let unpinned = TransitProvider::new(config(&bao.addr, auth())).unwrap();
    let err = unpinned
        .generate()
        .await
        .err()
        .expect("untrusted certificate");
    assert!(err.to_string().contains("certificate"), "{err}");

    let mut pinned = config(&bao.addr, auth());
    pinned.ca_cert = bao.ca.clone();
    let p = TransitProvider::new(pinned).unwrap();
    let ring = Keyring::new(&dir.path().join("data"));
    let cipher = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    let sealed = cipher.seal(b"kv/accounts/y", b"250 CHF").unwrap();
    assert!(ring.read().unwrap().deks[0]
        .wrapped
        .starts_with("vault:v1:"));
    // A restart unwraps the key over TLS again.
    let again = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    assert_eq!(again.open(b"kv/accounts/y", &sealed).unwrap(), b"250 CHF");
}

#[tokio::test]
async fn unreachable_or_refusing_provider_is_reported_as_retryable() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("t");
    std::fs::write(&token, "root").unwrap();
    let down = TransitProvider::new(config(
        &format!("http://127.0.0.1:{}", free_port()),
        TransitAuth::Token {
            env: None,
            file: Some(token.clone()),
        },
    ))
    .unwrap();
    match down.generate().await {
        Err(e @ ProviderError::Unavailable { .. }) => assert!(e.is_retryable()),
        other => panic!("expected unavailable, got {:?}", other.err()),
    }

    let bao = Bao::dev();
    std::fs::write(&token, "wrong-token").unwrap();
    let refused = TransitProvider::new(config(
        &bao.addr,
        TransitAuth::Token {
            env: None,
            file: Some(token),
        },
    ))
    .unwrap();
    match refused.generate().await {
        Err(e @ ProviderError::Refused { .. }) => assert!(e.to_string().contains("403"), "{e}"),
        other => panic!("expected refused, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn sealed_server_after_restart_keeps_keys_locked_until_unsealed() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut bao = Bao::raft(dir.path());
    let data = dir.path().join("data");
    let p = token_provider(&bao, dir.path());
    let ring = Keyring::new(&data);
    let cipher = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    let sealed = cipher.seal(b"blocklog/1", b"block one").unwrap();

    bao.restart_sealed();
    let err = ring.unlock(&p, KeyLimits::default()).await.unwrap_err();
    assert!(
        matches!(&err, encryption::KeyringError::Provider(e) if e.is_retryable()),
        "sealed server must read as retryable: {err}"
    );

    bao.unseal();
    let back = Cipher::new(&ring.unlock(&p, KeyLimits::default()).await.unwrap());
    assert_eq!(back.open(b"blocklog/1", &sealed).unwrap(), b"block one");
}
