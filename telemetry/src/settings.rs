//! `[metrics]` of the configuration.

use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// Where and to whom the node's metrics are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (default: on).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Listen address (default: loopback, port 9464). Keep it on loopback
    /// or a management network: the numbers are not secret, but they show
    /// the bank's activity.
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// SHA-256 (hex) of a bearer token the scraper must send; absent: none
    /// asked.
    #[serde(default)]
    pub bearer_token_sha256: Option<String>,
    /// Serve over TLS with this certificate chain (PEM).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn default_enabled() -> bool {
    true
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            addr: default_addr(),
            bearer_token_sha256: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl MetricsConfig {
    /// Problems with the settings, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(h) = &self.bearer_token_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.push("metrics.bearer_token_sha256 must be 64 hex digits".into());
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            p.push("metrics.tls_cert and metrics.tls_key go together".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_its_key() {
        let s = MetricsConfig {
            bearer_token_sha256: Some("abc".into()),
            tls_cert: Some("c.pem".into()),
            ..Default::default()
        };
        let p = s.problems().join("\n");
        assert!(p.contains("metrics.bearer_token_sha256"), "{p}");
        assert!(p.contains("metrics.tls_cert and metrics.tls_key"), "{p}");
        assert!(MetricsConfig::default().problems().is_empty());
    }
}
