//! The data directory's file system: how much room is left (`doctor`,
//! and a gauge the disk-full alert reads).

use std::path::Path;

/// Free bytes for an unprivileged writer, and the total, of `dir`'s file
/// system.
pub fn free_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `s` is written by statvfs before
    // it is read (only when it returns 0).
    let s = unsafe {
        if libc::statvfs(path.as_ptr(), s.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        s.assume_init()
    };
    let frag = s.f_frsize as u64;
    Ok((s.f_bavail as u64 * frag, s.f_blocks as u64 * frag))
}
