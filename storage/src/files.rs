//! Crash-safe writes of small private files (keyrings, signing keys, heads).

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    path::Path,
};

/// Writes `bytes` to a temporary file readable only by the owner, fsyncs
/// it, renames it over `path` and fsyncs the directory: a crash leaves the
/// old or the new file whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        set_private(&f)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(unix)]
fn set_private(f: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_: &File) -> std::io::Result<()> {
    Ok(())
}
