//! Atomic file writes: data goes to a temporary sibling, is flushed to disk, then renamed
//! into place, so readers see either the old file or the complete new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Refuses to write into `dir` when it, or any existing directory between it and `root`,
/// is marked read-only. This is honoured even for users the OS would let write anyway
/// (such as root), so marking a project read-only reliably protects it.
pub fn ensure_writable(dir: &Path, root: &Path) -> Result<(), StoreError> {
    for p in dir.ancestors() {
        if let Ok(meta) = std::fs::metadata(p) {
            if meta.permissions().readonly() {
                return Err(StoreError::ReadOnly {
                    path: p.to_path_buf(),
                });
            }
        }
        if p == root {
            break;
        }
    }
    Ok(())
}

/// Distinguishes the temporary files of concurrent writes in one process.
static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` atomically, creating parent directories. With `replace` false
/// an existing file is never overwritten (the call fails with `AlreadyExists`). The file
/// gets the permissions of any new file (0666 less the user's umask), and a failed write
/// (a full disk) leaves no partial file behind.
pub fn write_atomic(path: &Path, bytes: &[u8], replace: bool) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create directory", &dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".tmp-{name}.{}.{}.partial",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| StoreError::io("write", &tmp, e))
        .and_then(|()| {
            if replace {
                std::fs::rename(&tmp, path).map_err(|e| StoreError::io("rename into", path, e))
            } else {
                // A hard link fails when the destination exists: never clobbers.
                std::fs::hard_link(&tmp, path)
                    .map_err(|e| StoreError::io("create", path, e))
                    .map(|()| {
                        let _ = std::fs::remove_file(&tmp);
                    })
            }
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.yaml");
        write_atomic(&path, b"one", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let err = write_atomic(&path, b"two", false).unwrap_err();
        assert!(
            matches!(err, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"three", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.yaml")]);
    }
}
