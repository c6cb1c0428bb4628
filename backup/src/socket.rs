//! The running node's backup socket, `<data_dir>/backup.sock`.
//!
//! Only the node can copy its live stores consistently (their files are
//! locked by it), so `prividium backup` asks the node over a Unix socket
//! in the data directory. The socket is mode 0600: whoever can use it can
//! already read the data directory. One request per connection, one JSON
//! line each way; one backup at a time.

use crate::{BackupError, Manifest};
use serde::{Deserialize, Serialize};
use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::Mutex,
};

/// The socket's name inside the data directory.
pub const SOCKET_FILE: &str = "backup.sock";
/// Longest request line.
const MAX_LINE: u64 = 64 * 1024;
/// Longest reply line (a manifest lists a few dozen files).
const MAX_REPLY: u64 = 16 * 1024 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the node does for a request: the backup into the given (absolute)
/// destination, or why not.
pub type Handler = Arc<
    dyn Fn(PathBuf) -> Pin<Box<dyn Future<Output = Result<Manifest, String>> + Send>> + Send + Sync,
>;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    backup_to: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Done(Box<Manifest>),
    Failed(String),
}

/// Listens on `path` (a stale socket from an earlier run is replaced)
/// until the task is aborted.
pub fn serve(path: &Path, handler: Handler) -> Result<tokio::task::JoinHandle<()>, BackupError> {
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).map_err(BackupError::io("removing", path))?;
    }
    let listener = UnixListener::bind(path).map_err(BackupError::io("listening on", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(BackupError::io("restricting", path))?;
    }
    let busy = Arc::new(Mutex::new(()));
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "backup socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (handler, busy) = (handler.clone(), busy.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(stream, handler, busy).await {
                    tracing::warn!(error = %e, "backup socket: request failed");
                }
            });
        }
    }))
}

async fn answer(stream: UnixStream, handler: Handler, busy: Arc<Mutex<()>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let line = tokio::time::timeout(REQUEST_TIMEOUT, read_line(read, MAX_LINE)).await;
    let reply = match line {
        Err(_) => Reply::Failed("no request within 10 s".into()),
        Ok(Err(e)) => Reply::Failed(format!("reading the request: {e}")),
        Ok(Ok(line)) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Failed(format!("bad request: {e}")),
            Ok(r) if !r.backup_to.is_absolute() => {
                Reply::Failed("backup_to must be an absolute path".into())
            }
            Ok(r) => match busy.try_lock() {
                Err(_) => Reply::Failed("a backup is already running".into()),
                Ok(_guard) => match handler(r.backup_to).await {
                    Ok(m) => Reply::Done(Box::new(m)),
                    Err(e) => Reply::Failed(e),
                },
            },
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

async fn read_line(read: impl AsyncRead + Unpin, limit: u64) -> std::io::Result<String> {
    let mut line = String::new();
    BufReader::new(tokio::io::AsyncReadExt::take(read, limit))
        .read_line(&mut line)
        .await?;
    if !line.ends_with('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the line is unterminated or too long",
        ));
    }
    Ok(line)
}

/// Asks the node listening on `path` for a backup into `to` (absolute);
/// [`BackupError::NoNode`] when no node listens there.
pub async fn request(path: &Path, to: &Path) -> Result<Manifest, BackupError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| match e.kind() {
            // No socket, or one left by a node that is gone.
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                BackupError::NoNode(path.to_path_buf())
            }
            _ => BackupError::io("connecting to", path)(e),
        })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&Request {
        backup_to: to.to_path_buf(),
    })
    .map_err(|e| BackupError::Node(e.to_string()))?;
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(BackupError::io("writing to", path))?;
    let reply = read_line(read, MAX_REPLY)
        .await
        .map_err(BackupError::io("reading from", path))?;
    match serde_json::from_str(&reply)
        .map_err(|e| BackupError::Node(format!("unreadable reply: {e}")))?
    {
        Reply::Done(m) => Ok(*m),
        Reply::Failed(why) => Err(BackupError::Node(why)),
    }
}
