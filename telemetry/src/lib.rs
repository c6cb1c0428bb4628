//! The node's numbers for Prometheus.
//!
//! Every crate records through the `metrics` facade (counters and
//! histograms where things happen: a call answered, a block produced).
//! [`Metrics::install`] puts the Prometheus recorder behind that facade;
//! [`serve`] answers `GET /metrics` on its own listener (loopback by
//! default, optionally TLS and a bearer token), first asking each
//! [`Sampler`] to set the gauges that describe state (pool size, audit
//! queue, proving lag), so they are current at every scrape.

mod settings;

pub use settings::MetricsConfig;

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

/// Sets gauges from the state of one part of the node, just before a
/// scrape. May block briefly (it runs off the async workers).
pub trait Sampler: Send + Sync {
    /// Sets the gauges.
    fn sample(&self);
}

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The recorder could not be built or installed.
    #[error("metrics recorder: {0}")]
    Recorder(String),
    /// The listener.
    #[error("metrics listener {addr}: {source}")]
    Listen {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate or key.
    #[error("metrics TLS: {0}")]
    Tls(std::io::Error),
}

/// Latency buckets (seconds): sub-millisecond calls to half-minute blocks.
const SECONDS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const TRANSACTIONS: &[f64] = &[
    0.0, 1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
];
const GAS: &[f64] = &[1e5, 1e6, 5e6, 1e7, 2e7, 3e7, 6e7, 1e8, 3e8];
/// Proof wall time (seconds): a GPU's seconds to a CPU's hour.
const PROVING: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_200.0, 1_800.0, 3_600.0, 7_200.0,
];

static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the recorder behind the `metrics` facade, once per process
    /// (later calls return the same one), and starts its upkeep, which
    /// drains histogram samples even while nobody scrapes, so memory stays
    /// flat. Needs a tokio runtime.
    pub fn install() -> Result<Self, TelemetryError> {
        if let Some(h) = INSTALLED.get() {
            return Ok(Self { handle: h.clone() });
        }
        let err = |e: &dyn std::fmt::Display| TelemetryError::Recorder(e.to_string());
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .map_err(|e| err(&e))?
            .set_buckets_for_metric(
                Matcher::Full("prividium_block_transactions".into()),
                TRANSACTIONS,
            )
            .map_err(|e| err(&e))?
            .set_buckets_for_metric(Matcher::Full("prividium_block_gas_used".into()), GAS)
            .map_err(|e| err(&e))?
            .set_buckets_for_metric(Matcher::Full("prividium_proving_seconds".into()), PROVING)
            .map_err(|e| err(&e))?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|e| err(&e))?;
        let handle = INSTALLED.get_or_init(|| handle).clone();
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Self { handle })
    }

    /// The exposition text of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

struct Shared {
    metrics: Metrics,
    token_sha256: Option<Vec<u8>>,
    samplers: Vec<Arc<dyn Sampler>>,
    // One scrape at a time: a scraper gone wild gets 503, not a pile of
    // blocking sampler threads.
    busy: tokio::sync::Mutex<()>,
}

/// Serves `GET /metrics` as `settings` say (nothing when turned off);
/// returns the bound address and the server task.
pub async fn serve(
    metrics: Metrics,
    settings: &MetricsConfig,
    samplers: Vec<Arc<dyn Sampler>>,
) -> Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>, TelemetryError> {
    if !settings.enabled {
        return Ok(None);
    }
    let addr = settings.addr;
    let shared = Arc::new(Shared {
        metrics,
        token_sha256: settings
            .bearer_token_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok()),
        samplers,
        busy: tokio::sync::Mutex::new(()),
    });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(shared)
        .into_make_service();
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| TelemetryError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| TelemetryError::Listen { addr, source })?;
    let listen_err = |source| TelemetryError::Listen {
        addr: bound,
        source,
    };
    let task = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(TelemetryError::Tls)?;
            let server = axum_server::from_tcp_rustls(listener, tls).map_err(listen_err)?;
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            })
        }
        _ => {
            let server = axum_server::from_tcp(listener).map_err(listen_err)?;
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            })
        }
    };
    tracing::info!(addr = %bound, tls = settings.tls_cert.is_some(), "metrics serving");
    Ok(Some((bound, task)))
}

async fn scrape(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(want) = &s.token_sha256 {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Sha256::digest(t.as_bytes()).to_vec());
        if presented.as_deref() != Some(want.as_slice()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid bearer token is required\n",
            )
                .into_response();
        }
    }
    let Ok(_busy) = s.busy.try_lock() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "a scrape is in progress\n").into_response();
    };
    let samplers = s.samplers.clone();
    if tokio::task::spawn_blocking(move || samplers.iter().for_each(|x| x.sample()))
        .await
        .is_err()
    {
        tracing::warn!("a metrics sampler failed; serving the last values");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pool;
    impl Sampler for Pool {
        fn sample(&self) {
            metrics::gauge!("prividium_test_pool").set(7.0);
        }
    }

    #[tokio::test]
    async fn a_scraper_gets_prometheus_text_only_with_the_token() {
        let metrics = Metrics::install().unwrap();
        metrics::counter!("prividium_test_calls_total", "method" => "eth_call").increment(3);
        metrics::histogram!("prividium_test_duration_seconds").record(0.003);
        metrics::histogram!("prividium_proving_seconds", "worker" => "w-0").record(90.0);
        let token = "s3cret-scrape-token";
        let settings = MetricsConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            bearer_token_sha256: Some(hex::encode(Sha256::digest(token))),
            ..Default::default()
        };
        let (addr, _task) = serve(metrics, &settings, vec![Arc::new(Pool)])
            .await
            .unwrap()
            .unwrap();
        let url = format!("http://{addr}/metrics");
        let http = reqwest::Client::new();
        let denied = http.get(&url).send().await.unwrap();
        assert_eq!(denied.status().as_u16(), 401);
        let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        let ok = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        let text = ok.text().await.unwrap();
        assert!(
            text.contains("prividium_test_calls_total{method=\"eth_call\"} 3"),
            "{text}"
        );
        // Sampled at the scrape; latency as a true histogram with buckets.
        assert!(text.contains("prividium_test_pool 7"), "{text}");
        assert!(
            text.contains("prividium_test_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        // Proof times get their own buckets (minutes), not the latency ones.
        assert!(
            text.contains("prividium_proving_seconds_bucket{worker=\"w-0\",le=\"120\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("prividium_proving_seconds_bucket{worker=\"w-0\",le=\"60\"} 0"),
            "{text}"
        );
    }
}
