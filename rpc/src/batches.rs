//! Proven batches as the console and counterparties see them:
//! `prividium_batches` lists what `proofs/` holds (each batch's range,
//! roots, digest and program id, and whether it is settled), and
//! `GET /proofs/batch-N.{proof,json}` hands out the files themselves.
//! Both are decided as the `prividium_batches` method (`rpc:chain`): the
//! files are public by design, but the appliance answers only its users.

use super::{
    access::RequestCaller,
    asker::{refuse, Asker},
    jsonrpc::{code, RpcError},
    params::Params,
    RpcState,
};
use axum::{
    body::Body,
    extract::Path,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{path::PathBuf, sync::Arc};

/// The methods this module answers.
pub(crate) const METHODS: &[&str] = &["prividium_batches"];

/// Most batches one page lists.
const MAX_PAGE: usize = 100;

pub(super) fn routes() -> Router<Arc<RpcState>> {
    Router::new().route("/proofs/{file}", get(download))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageArgs {
    /// Only batches numbered below this (the previous page's `next`).
    before: Option<u64>,
    limit: Option<usize>,
}

/// The batch numbers `proofs/` holds an outputs file for, newest first.
fn exported(dir: &std::path::Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("batch-")?.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

/// One batch's row: its outputs file as written, plus the proof's size and
/// settlement. A file that does not parse is shown as unreadable rather than
/// failing the page.
fn batch_row(dir: &std::path::Path, n: u64, settled: Option<u64>) -> Value {
    let outputs = std::fs::read(dir.join(format!("batch-{n}.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let proof_bytes = std::fs::metadata(dir.join(format!("batch-{n}.proof")))
        .ok()
        .map(|m| m.len());
    let Some(o) = outputs else {
        return json!({ "batch": n, "unreadable": true });
    };
    let program = o["program_id"].as_str().unwrap_or_default();
    json!({
        "batch": n,
        "firstBlock": o["first_block"],
        "lastBlock": o["last_block"],
        "prevStateRoot": o["prev_state_root"],
        "newStateRoot": o["new_state_root"],
        "batchCommitment": o["batch_commitment"],
        "digest": o["digest"],
        "programId": o["program_id"],
        "backend": o["backend"],
        "cycles": o["cycles"],
        "proven": proof_bytes.is_some(),
        "exported": proof_bytes.is_some(),
        "proofBytes": proof_bytes,
        "settled": settled.is_some_and(|s| n <= s),
        "verify": format!(
            "prividium verify --proof batch-{n}.proof --outputs batch-{n}.json --image-id {program}"
        ),
    })
}

pub(crate) async fn dispatch(
    state: &RpcState,
    _rc: &RequestCaller,
    p: &Params,
) -> Result<Value, RpcError> {
    let args: PageArgs = p.at_most(1)?.opt(0, "page")?.unwrap_or_default();
    let limit = args.limit.unwrap_or(20).clamp(1, MAX_PAGE);
    let settlement = super::health::read(state.settlement.clone(), "settlement").await;
    let proving = super::health::read(state.proving.clone(), "proving").await;
    let Some(dir) = state.proofs_dir.clone() else {
        return Ok(json!({ "proving": false, "batches": [], "next": null }));
    };
    let settled = settlement["settled_batch"].as_u64();
    let rows =
        tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<Value>, Option<u64>)> {
            let all = exported(&dir)?;
            let page: Vec<u64> = all
                .into_iter()
                .filter(|n| args.before.is_none_or(|b| *n < b))
                .take(limit + 1)
                .collect();
            let next = (page.len() > limit).then(|| page[limit - 1]);
            let rows = page
                .iter()
                .take(limit)
                .map(|n| batch_row(&dir, *n, settled))
                .collect();
            Ok((rows, next))
        })
        .await
        .map_err(RpcError::internal)?
        .map_err(|e| RpcError::server(format!("proofs directory unreadable: {e}")))?;
    Ok(json!({
        "proving": true,
        "queue": proving,
        "settlement": settlement,
        "batches": rows.0,
        "next": rows.1,
    }))
}

/// `batch-N.proof` or `batch-N.json`, and nothing else.
fn proof_file(name: &str) -> Option<(&str, &'static str)> {
    let (stem, ctype) = if let Some(s) = name.strip_suffix(".proof") {
        (s, "application/octet-stream")
    } else if let Some(s) = name.strip_suffix(".json") {
        (s, "application/json")
    } else {
        return None;
    };
    let n = stem.strip_prefix("batch-")?;
    (!n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
        .then_some((name, ctype))
}

async fn download(ask: Asker, Path(file): Path<String>) -> Response {
    ask.answer(async {
        let principal = ask.principal().await?;
        let state = &ask.state;
        let rc = RequestCaller::new(state.access.caller(principal));
        if let Err(e) = state.access.check_method(&rc, "prividium_batches") {
            let status = if e.code == code::FORBIDDEN {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return Err(refuse(status, e.message));
        }
        let (name, ctype) = proof_file(&file).ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                "only batch-N.proof and batch-N.json are served here",
            )
        })?;
        let dir = state
            .proofs_dir
            .as_ref()
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "this node does not prove"))?;
        let path: PathBuf = dir.join(name);
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                refuse(
                    StatusCode::NOT_FOUND,
                    format!("{name} is not exported (yet)"),
                )
            } else {
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{name} is unreadable: {e}"),
                )
            }
        })?;
        let size = file.metadata().await.ok().map(|m| m.len());
        let stream = tokio_util::io::ReaderStream::new(file);
        let mut resp = Body::from_stream(stream).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        if let Some(n) = size {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        Ok(resp)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_batch_files_are_served() {
        assert!(proof_file("batch-7.proof").is_some());
        assert_eq!(proof_file("batch-12.json").unwrap().1, "application/json");
        for bad in [
            "batch-.proof",
            "batch-1.proof.tmp",
            "../keys/dek",
            "batch-1/../x.json",
            "checkpoint.json",
            "batch-x.json",
        ] {
            assert!(proof_file(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn exported_lists_newest_first_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "batch-1.json",
            "batch-10.json",
            "batch-2.json",
            "batch-3.proof",
            "x.json",
        ] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        assert_eq!(exported(dir.path()).unwrap(), vec![10, 2, 1]);
        assert!(exported(&dir.path().join("missing")).unwrap().is_empty());
    }
}
