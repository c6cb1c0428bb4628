//! TLS material: a private dev CA and server certificate, or operator files.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// Paths of the PEM files the RPC server uses.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// CA certificate clients should trust (dev mode only).
    pub ca: Option<PathBuf>,
}

/// Creates (once) a dev CA and a server certificate for localhost/127.0.0.1
/// under `dir/tls/`. Clients trust the CA, never the leaf.
pub fn ensure_dev_certs(dir: &Path) -> Result<TlsFiles> {
    let tls = dir.join("tls");
    let files = TlsFiles {
        cert: tls.join("server.pem"),
        key: tls.join("server.key"),
        ca: Some(tls.join("ca.pem")),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    std::fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Prividium dev CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "prividium dev node");
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, cert.pem())?;
    std::fs::write(files.ca.as_ref().expect("dev ca"), ca.pem())?;
    Ok(files)
}

/// Writes a secret readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()?;
    Ok(())
}
