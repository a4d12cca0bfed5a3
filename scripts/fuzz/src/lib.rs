//! Helpers shared by the fuzz targets: a scratch directory per process (on a RAM disk when
//! there is one) into which a target writes the fuzzed bytes as the file a parser reads.

use std::path::{Path, PathBuf};

/// A directory private to this process, created once; files written into it are reused by
/// the next execution.
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("segno-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

/// Writes `bytes` to `relative` inside the scratch directory, creating its parents.
pub fn put(relative: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a scratch subdirectory");
    }
    std::fs::write(&path, bytes).expect("a scratch file");
    path
}

/// Removes `relative` (file or directory) from the scratch directory, if present.
pub fn clear(relative: &str) {
    let path = scratch().join(relative);
    let _ = std::fs::remove_dir_all(&path);
    let _ = std::fs::remove_file(&path);
}
