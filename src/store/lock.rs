//! One trainer per run: `segno train` holds `<run>/train.lock` (its process id and host)
//! while it trains, so a second process (another terminal, the app's launcher, a cluster
//! job) refuses to train the same run, and the app can find and re-attach to a training
//! that outlived it. A lock left by a process of this host that no longer exists is taken
//! over; a lock of another host (a cluster node sharing the project) is never taken over,
//! since whether its process lives cannot be checked from here.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::layout::RunDir;

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process trains the run.
    #[error("{run} is being trained by process {pid}{host} (lock file {path}); stop it first, or delete the lock file if that process is not segno")]
    Busy {
        /// The run directory.
        run: String,
        /// The process holding the lock.
        pid: u32,
        /// " on HOST" when the process runs on another host, else empty.
        host: String,
        /// The lock file.
        path: String,
    },
    /// The lock file cannot be written or read.
    #[error("{path}: {message}")]
    Io {
        /// The lock file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Whether process `pid` exists (on this machine).
pub fn process_alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    // SAFETY: kill with signal 0 sends nothing; it only reports whether the process exists.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's host name (empty when it cannot be read).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The process (and its host, when another) holding the run's lock, if a live one does.
fn lock_holder(run_dir: &Path) -> Option<(u32, Option<String>)> {
    let text = std::fs::read_to_string(RunDir::from_dir(run_dir).lock_file()).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    match words.next() {
        Some(host) if host != host_name() => Some((pid, Some(host.to_string()))),
        _ => process_alive(pid).then_some((pid, None)),
    }
}

/// The process holding the run's lock, if a live one does (a process of another host
/// counts as live).
pub fn holder(run_dir: &Path) -> Option<u32> {
    lock_holder(run_dir).map(|(pid, _)| pid)
}

/// An error when a live process holds the run's lock (nothing is written).
pub fn check_free(run_dir: &Path) -> Result<(), LockError> {
    match lock_holder(run_dir) {
        Some((pid, host)) => Err(LockError::Busy {
            run: run_dir.display().to_string(),
            pid,
            host: host.map(|h| format!(" on {h}")).unwrap_or_default(),
            path: RunDir::from_dir(run_dir).lock_file().display().to_string(),
        }),
        None => Ok(()),
    }
}

/// The held lock; dropping it removes the file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The run directory, when taking the lock created it (removed again if left empty).
    created: Option<PathBuf>,
}

impl RunLock {
    /// Takes the lock of `run_dir` for this process.
    pub fn acquire(run_dir: &Path) -> Result<RunLock, LockError> {
        let path = RunDir::from_dir(run_dir).lock_file();
        let io = |e: std::io::Error| LockError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        // A project (or run) marked read-only is never written to, even by root.
        if let Some(project) = run_dir.parent() {
            crate::store::atomic::ensure_writable(run_dir, project).map_err(|e| LockError::Io {
                path: run_dir.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let created = (!run_dir.exists()).then(|| run_dir.to_path_buf());
        std::fs::create_dir_all(run_dir).map_err(io)?;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    writeln!(f, "{} {}", std::process::id(), host_name()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok(RunLock { path, created });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    check_free(run_dir)?;
                    // Stale: its process is gone.
                    tracing::warn!("taking over the stale lock {}", path.display());
                    std::fs::remove_file(&path).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LockError::Io {
            path: path.display().to_string(),
            message: "another process took the lock at the same time".into(),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // A run refused after the lock was taken leaves no empty directory behind
        // (remove_dir only removes empty directories).
        if let Some(dir) = &self.created {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_trained_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(holder(&run), Some(std::process::id()));
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(lock);
        assert!(!RunDir::from_dir(&run).lock_file().exists());
        assert!(
            !run.exists(),
            "the directory the lock created is removed when empty"
        );
        assert_eq!(holder(&run), None);
        // A lock of a process that has exited is taken over.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(RunDir::from_dir(&run).lock_file(), format!("{dead}\n")).unwrap();
        assert_eq!(holder(&run), None);
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(
            std::fs::read_to_string(RunDir::from_dir(&run).lock_file())
                .unwrap()
                .trim(),
            format!("{} {}", std::process::id(), host_name())
        );
        drop(lock);
        // A lock of another host (a cluster node) is never taken over from here, even
        // with a process id that does not exist on this machine.
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            RunDir::from_dir(&run).lock_file(),
            format!("{dead} node-17\n"),
        )
        .unwrap();
        assert_eq!(holder(&run), Some(dead));
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(e.contains(&format!("process {dead} on node-17")), "{e}");
        // The same process id recorded with this host's name is stale again.
        std::fs::write(
            RunDir::from_dir(&run).lock_file(),
            format!("{dead} {}\n", host_name()),
        )
        .unwrap();
        assert_eq!(holder(&run), None);
    }
}

/// How a trainer last ended, as `segno train` records it in `<run>/train.status.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainStatus {
    /// `training`, `stopped` (asked to stop, or `--iterations`), `finished` or `failed`
    /// (a killed trainer stays `training`).
    pub state: String,
    /// The process.
    pub pid: u32,
    /// The error of a failed run.
    #[serde(default)]
    pub error: Option<String>,
}

/// Records this process's training state (atomically; failures only warn, since the
/// training itself must not fail over its status line).
pub fn record_status(run_dir: &Path, state: &str, error: Option<String>) {
    let status = TrainStatus {
        state: state.to_string(),
        pid: std::process::id(),
        error,
    };
    let text = serde_json::to_string(&status).unwrap_or_default();
    if run_dir.is_dir() {
        if let Err(e) = crate::store::atomic::write_atomic(
            &RunDir::from_dir(run_dir).status_file(),
            text.as_bytes(),
            true,
        ) {
            tracing::warn!("cannot record the training status: {e}");
        }
    }
}

/// What a run is doing, as the Runs panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// No checkpoint yet and nobody trains it.
    NotStarted,
    /// A live process trains it.
    Training {
        /// The trainer's process id.
        pid: u32,
        /// The trainer's host when it is another machine (a cluster node).
        host: Option<String>,
    },
    /// Stopped before its last iteration (killed, stopped, or `--iterations`).
    Stopped,
    /// Trained to its last iteration.
    Finished,
    /// The last trainer failed.
    Failed {
        /// Why.
        error: String,
    },
}

impl RunState {
    /// A one-word label.
    pub fn label(&self) -> &'static str {
        match self {
            RunState::NotStarted => "not started",
            RunState::Training { .. } => "training",
            RunState::Stopped => "stopped",
            RunState::Finished => "finished",
            RunState::Failed { .. } => "failed",
        }
    }
}

/// The state of the run in `run_dir` configured for `num_iterations`.
pub fn run_state(run_dir: &Path, num_iterations: u64) -> RunState {
    if let Some((pid, host)) = lock_holder(run_dir) {
        return RunState::Training { pid, host };
    }
    let status: Option<TrainStatus> =
        std::fs::read_to_string(RunDir::from_dir(run_dir).status_file())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(TrainStatus {
        state,
        error: Some(error),
        ..
    }) = &status
    {
        if state == "failed" {
            return RunState::Failed {
                error: error.clone(),
            };
        }
    }
    match RunDir::from_dir(run_dir).latest_checkpoint() {
        Some(i) if i >= num_iterations => RunState::Finished,
        Some(_) => RunState::Stopped,
        // A trainer ran (and was stopped before its first checkpoint).
        None if status.is_some() => RunState::Stopped,
        None => RunState::NotStarted,
    }
}
