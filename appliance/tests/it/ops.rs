//! Operating the node: a real Prometheus (Debian's package, unpacked by
//! `deploy/dev/install-peers.sh`) scrapes it under load, the shipped alert
//! rules pass `promtool`, and the probes say live and ready.

use crate::common::{
    assert_check, doctor, doctor_line, hash_of, probe, raw, transfer, wait_receipt, Node,
};
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn prometheus_dir() -> Option<PathBuf> {
    let peers = std::env::var("PRIVIDIUM_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/prividium-peers")
        });
    let bin = peers.join("debian/prometheus/usr/bin");
    bin.join("promtool").exists().then_some(bin)
}

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn peers() -> PathBuf {
    std::env::var("PRIVIDIUM_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/prividium-peers")
        })
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze not installed");
        return;
    };
    // The shipped unit, pointing at the binary just built.
    let unit = std::fs::read_to_string(repo_file("deploy/systemd/prividium.service")).unwrap();
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=prividium",
        "LimitNOFILE=",
        "TimeoutStopSec=",
        "DynamicUser=yes",
    ] {
        assert!(unit.contains(hardening), "the unit lacks {hardening}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prividium.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/prividium", crate::common::bin()),
    )
    .unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    // verify exits 0 on some mistakes (an unparsable value is "ignored"):
    // anything it says is a finding.
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
        .ok_or(())
}

#[test]
fn the_kubernetes_manifests_pass_kubernetes_validate() {
    let validate = peers().join("venv/bin/kubernetes-validate");
    if !validate.exists() {
        eprintln!("skipped: kubernetes-validate not installed (run deploy/dev/install-peers.sh)");
        return;
    }
    let dir = repo_file("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let out = Command::new(&validate)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate: {said}");
    for kind in [
        "statefulset/prividium",
        "service/prividium",
        "configmap/prividium-config",
        "secret/prividium-secret",
    ] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{kind} not validated: {said}"
        );
    }
    // The probes are wired to the node's own endpoints.
    let sts = std::fs::read_to_string(dir.join("statefulset.yaml")).unwrap();
    assert!(
        sts.contains("path: /livez") && sts.contains("path: /readyz"),
        "{sts}"
    );
    // No CRD schema ships with kubernetes-validate: check the
    // ServiceMonitor's shape by hand.
    let sm = std::fs::read_to_string(dir.join("servicemonitor.yaml")).unwrap();
    for needle in ["kind: ServiceMonitor", "port: metrics", "path: /metrics"] {
        assert!(sm.contains(needle), "{needle}");
    }
}

#[test]
fn shipped_alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(bin) = prometheus_dir() else {
        eprintln!("skipped: prometheus not unpacked (run deploy/dev/install-peers.sh)");
        return;
    };
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(bin.join("promtool"))
            .args(&args)
            .current_dir(repo_file("deploy/prometheus"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prometheus's whole answer to instant query `q`.
async fn query_body(prom: &Prometheus, q: &str) -> Option<Value> {
    reqwest::Client::new()
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// The value of `query` (a single series) on `prom`, if it has one.
async fn query(prom: &Prometheus, q: &str) -> Option<f64> {
    let body = query_body(prom, q).await?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn prometheus_scrapes_transactions_blocks_and_audit_under_load() {
    let Some(bin) = prometheus_dir() else {
        eprintln!("skipped: prometheus not unpacked (run deploy/dev/install-peers.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let metrics_url = node.dev["metrics_url"]
        .as_str()
        .expect("dev.json names the metrics endpoint");
    let target = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();

    // The endpoint speaks Prometheus text, sealed gauge off once open.
    let text = scrape(metrics_url).await;
    assert!(text.contains("prividium_sealed 0"), "{text}");

    let prom_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        prom_dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prividium\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(bin.join("prometheus"))
        .arg(format!(
            "--config.file={}",
            prom_dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let prom = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };

    // A short load: 40 transfers from two accounts, all included.
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let to = node.key(9).address();
    let mut hashes = Vec::new();
    for nonce in 0..20 {
        for k in [0, 1] {
            let tx = transfer(&node.key(k), chain_id, nonce, to, 1);
            let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
            hashes.push(format!("{:#x}", hash_of(&sent)));
        }
    }
    for h in &hashes {
        wait_receipt(&node, h).await;
    }

    // What Prometheus stored, through its own query API.
    let wanted = [
        (
            r#"sum(prividium_rpc_requests_total{method="eth_sendRawTransaction",outcome="ok"})"#,
            40.0,
        ),
        (r#"sum(prividium_blocks_produced_total)"#, 1.0),
        (r#"sum(prividium_inclusion_latency_seconds_count)"#, 40.0),
        (r#"sum(prividium_block_transactions_sum)"#, 40.0),
        // What holds a receipt back after its block is sealed: the block
        // log's fsync and the derived store's commit.
        (r#"sum(prividium_block_log_append_seconds_count)"#, 1.0),
        (r#"sum(prividium_derive_commit_seconds_count)"#, 1.0),
        (r#"sum(prividium_audit_committed_events_total)"#, 1.0),
        (
            r#"sum(prividium_policy_decisions_total{outcome="allow"})"#,
            1.0,
        ),
        (r#"sum(prividium_auth_total{outcome="ok"})"#, 1.0),
        (r#"prividium_block_height{stage="derived"}"#, 1.0),
        (r#"up{job="prividium"}"#, 1.0),
        // The disk-full alert's inputs: some room left on a real file system.
        (r#"prividium_data_dir_free_bytes"#, 1.0),
        (r#"prividium_data_dir_capacity_bytes"#, 1.0),
        // Two scrapes since the load: rates (the dashboard's) have data.
        (r#"sum(rate(prividium_rpc_requests_total[1m]))"#, 0.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for (q, at_least) in wanted {
        loop {
            match query(&prom, q).await {
                Some(v) if v >= at_least => break,
                got => assert!(
                    Instant::now() < deadline,
                    "Prometheus never had {q} >= {at_least} (last: {got:?})"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // Plausible, not just present: every transfer waited less than a
    // minute from admission to its block, and the pool drained.
    let p99 = query(
        &prom,
        "histogram_quantile(0.99, sum by (le) (prividium_inclusion_latency_seconds_bucket))",
    )
    .await
    .unwrap();
    assert!(p99 > 0.0 && p99 <= 60.0, "p99 inclusion {p99}");
    assert_eq!(
        query(&prom, "prividium_mempool_transactions").await,
        Some(0.0)
    );
    // Every query of the shipped Grafana dashboard is valid PromQL over
    // series the node exports (those of a node that proves and seals may
    // be empty here; the chain, RPC and audit panels are not).
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/grafana/prividium.json")).unwrap(),
    )
    .unwrap();
    let mut with_data = 0;
    let mut exprs = 0;
    let mut empty = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let body = query_body(&prom, expr).await.expect("Prometheus answers");
            assert_eq!(
                body["status"], "success",
                "panel {}: {expr}: {body}",
                panel["title"]
            );
            exprs += 1;
            if body["data"]["result"].as_array().unwrap().is_empty() {
                empty.push(expr.to_owned());
            } else {
                with_data += 1;
            }
        }
    }
    assert!(
        exprs >= 16 && with_data >= exprs * 2 / 3,
        "{with_data} of {exprs} dashboard queries had data; empty: {empty:#?}"
    );
    // No label carries an address, a hash or a principal.
    let text = scrape(metrics_url).await;
    let admin_key = node.dev["api_key"].as_str().unwrap();
    assert!(
        !text
            .to_lowercase()
            .contains(&format!("{to:#x}").to_lowercase()),
        "an address in a label"
    );
    assert!(!text.contains(&hashes[0]), "a transaction hash in a label");
    assert!(
        !text.contains(admin_key) && !text.contains("ApiKey:"),
        "a principal in a label"
    );
    node.stop();
}

#[tokio::test]
async fn probes_and_doctor_say_a_dev_node_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    for (path, status) in [("livez", "live"), ("readyz", "ready")] {
        let (code, body) = probe(&node.http, &node.url(), path).await;
        assert_eq!(code, 200, "/{path}: {body}");
        assert_eq!(body["status"], status, "/{path}: {body}");
    }
    // The doctor, beside the running node: everything it depends on works.
    let (ok, said) = doctor(dir.path());
    assert!(ok, "{said}");
    for name in [
        "data directory",
        "disk space",
        "key provider",
        "audit database",
        "tls certificate",
    ] {
        assert_check(&said, name, "ok");
    }
    for name in ["config", "settlement", "program id"] {
        assert_check(&said, name, "skip");
    }
    // The certificate check has teeth: asked for more days than the dev
    // certificate has left (it runs to 4096), it fails by name.
    let out = crate::common::cli(&["doctor", "--cert-min-days", "1000000"], dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert_check(&said, "tls certificate", "FAIL");
    node.stop();
}

#[test]
fn doctor_reports_a_bad_config_and_an_unreachable_idp_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("prividium.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
genesis = "{data}/genesis.json"
[chain]
chain_id = 7777
[rpc]
listen = "127.0.0.1:8545"
tls_cert = "{data}/missing.pem"
tls_key = "{data}/missing.key"
[access]
policies_dir = "{data}/policies"
siwe_domain = "chain.bank.internal"
[[access.oidc]]
name = "bank-idp"
issuer = "http://127.0.0.1:1/realms/bank"
audience = "prividium"
[encryption]
provider = "off"
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let out = Command::new(crate::common::bin())
        .args(["doctor", "--config"])
        .arg(&config)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    let line = doctor_line(&said, "config");
    assert!(
        line.starts_with("FAIL") && line.contains("rpc.tls_cert"),
        "{said}"
    );
    assert_check(&said, "idp bank-idp", "FAIL");
    assert_check(&said, "tls certificate", "FAIL");
    assert_check(&said, "key provider", "skip");
}
