//! The durable record of a block job that any number of workers share, on a local disk or
//! a network file system: which blocks are done (by which worker, when), which are being
//! worked on, and which failed.
//!
//! Every record is a file that is created once and never changed, through a hard link of a
//! fully written temporary file (atomic and exclusive on NFS as on local disks), so two
//! workers can never both own an attempt and a crash never leaves half a record:
//!
//! ```text
//! claims/<block>.<attempt>   a worker took the block (attempts count from 1)
//! failed/<block>.<attempt>   that attempt failed (with the error)
//! done/<block>               the block's output is fully written
//! grants/<n>                 a re-run granted failed blocks another round of attempts
//! workers/<worker>.json      the worker's heartbeat (rewritten by that worker only)
//! log/<worker>.jsonl         the worker's events, appended by that worker only
//! ```
//!
//! A claim whose worker stopped beating for longer than the lease (or, on the same host,
//! whose process is gone) is stale: the next attempt is claimed by whoever asks first.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What can go wrong reading or writing a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file of the ledger cannot be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A worker name that cannot be a file name.
    #[error("worker name {0:?}: use 1 to 100 letters, digits, `.`, `_` or `-`")]
    WorkerName(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LedgerError + '_ {
    move |e| LedgerError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The time source of a ledger, in seconds since the Unix epoch (a test can move it).
pub trait Clock: Send + Sync {
    /// Now.
    fn now_secs(&self) -> f64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// How workers share blocks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LedgerSettings {
    /// Seconds without a heartbeat after which a worker's claims are stale.
    pub lease_secs: f64,
    /// Attempts per block (failures and stale claims both count) before it is given up.
    pub max_attempts: u32,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        Self {
            lease_secs: 120.0,
            max_attempts: 3,
        }
    }
}

/// Who holds a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The worker's name.
    pub worker: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When (seconds since the Unix epoch).
    pub at: f64,
}

/// A `done/<block>` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneRecord {
    /// Who finished the block, and when.
    #[serde(flatten)]
    pub by: Holder,
    /// The attempt that finished it.
    pub attempt: u32,
    /// Seconds the block took.
    pub secs: f64,
    /// What the job records per block (e.g. foreground voxel counts).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

/// A `failed/<block>.<attempt>` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRecord {
    /// Who failed, and when.
    #[serde(flatten)]
    pub by: Holder,
    /// The error.
    pub error: String,
}

/// The answer to [`Ledger::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The block is this worker's, as this attempt.
    Mine(u32),
    /// The block is done.
    Done,
    /// A live worker has it.
    Busy(String),
    /// Its attempts are used up; the last error.
    GaveUp(String),
}

/// The state of one block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BlockState {
    /// Nobody took it yet.
    Pending,
    /// A live worker has it.
    Running {
        /// The worker.
        worker: String,
        /// The attempt.
        attempt: u32,
    },
    /// Its worker stopped: the next worker to ask takes it.
    Stale {
        /// The worker that stopped.
        worker: String,
        /// The attempt.
        attempt: u32,
    },
    /// An attempt failed; it will be retried.
    Retrying {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// Its attempts are used up.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// Done.
    Done(DoneRecord),
}

/// Counts of block states over a job, from [`Ledger::summary`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LedgerSummary {
    /// Blocks in the job.
    pub total: u64,
    /// Done.
    pub done: u64,
    /// Held by a live worker.
    pub running: u64,
    /// Held by a worker that stopped.
    pub stale: u64,
    /// Failed at least once, to be retried.
    pub retrying: u64,
    /// Given up: `(block, attempts, last error)`.
    pub gave_up: Vec<(u64, u32, String)>,
    /// Not taken yet.
    pub pending: u64,
    /// Seconds per finished block, averaged (0 when none).
    pub mean_block_secs: f64,
    /// When the first and the last block were done (seconds since the Unix epoch).
    pub done_span: Option<(f64, f64)>,
    /// Workers by name, with whether they are alive.
    pub workers: Vec<(String, bool)>,
    /// Each block's state in block order (for drawing a block map; not serialised).
    #[serde(skip)]
    pub marks: Vec<BlockMark>,
}

/// A block's state without its details, for drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockMark {
    /// Not taken yet.
    #[default]
    Pending,
    /// Held by a live worker.
    Running,
    /// Held by a worker that stopped, or failed and waiting for a retry.
    Stalled,
    /// Given up.
    Failed,
    /// Done.
    Done,
}

/// A worker's heartbeat file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Heartbeat {
    host: String,
    pid: u32,
    started: f64,
    beat: f64,
}

/// One event of a worker's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `claim`, `done` or `failed`.
    pub event: String,
    /// The block.
    pub block: u64,
    /// The attempt.
    pub attempt: u32,
    /// When.
    pub at: f64,
    /// Seconds the block took (`done`), or the error (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// This machine's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This machine's name as it may appear in a worker name (other characters become `-`).
pub fn host_name_part() -> String {
    let h: String = host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    if h.is_empty() || h == "." || h == ".." {
        "host".into()
    } else {
        h
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `name` can name a worker (it becomes a file name).
pub fn valid_worker_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name != "."
        && name != ".."
}

/// Creates `path` with `bytes`, only if it does not exist: `Ok(false)` when it does.
/// The content is complete before the file appears (temporary file + hard link).
fn create_exclusive(path: &Path, bytes: &[u8]) -> Result<bool, LedgerError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        unique(),
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    let result = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, LedgerError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LedgerError::Io {
                path: path.display().to_string(),
                message: format!("not a ledger record: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// A job's ledger as seen by one worker (or by a reader, for [`Ledger::summary`]).
pub struct Ledger {
    dir: PathBuf,
    worker: String,
    host: String,
    pid: u32,
    settings: LedgerSettings,
    clock: Arc<dyn Clock>,
    log: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("worker", &self.worker)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating it if needed) the ledger in `dir` for the worker named `worker`.
    pub fn open(dir: &Path, worker: &str, settings: LedgerSettings) -> Result<Self, LedgerError> {
        Self::open_with_clock(dir, worker, settings, Arc::new(SystemClock))
    }

    /// [`Ledger::open`] with another clock.
    pub fn open_with_clock(
        dir: &Path,
        worker: &str,
        settings: LedgerSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LedgerError> {
        if !valid_worker_name(worker) {
            return Err(LedgerError::WorkerName(worker.to_string()));
        }
        for sub in ["claims", "failed", "done", "grants", "workers", "log"] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            worker: worker.to_string(),
            host: host_name(),
            pid: std::process::id(),
            settings,
            clock,
            log: Mutex::new(None),
        })
    }

    /// The ledger's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This worker's name.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn holder(&self) -> Holder {
        Holder {
            worker: self.worker.clone(),
            host: self.host.clone(),
            pid: self.pid,
            at: self.clock.now_secs(),
        }
    }

    fn claim_path(&self, block: u64, attempt: u32) -> PathBuf {
        self.dir.join("claims").join(format!("{block}.{attempt}"))
    }

    fn failed_path(&self, block: u64, attempt: u32) -> PathBuf {
        self.dir.join("failed").join(format!("{block}.{attempt}"))
    }

    fn done_path(&self, block: u64) -> PathBuf {
        self.dir.join("done").join(block.to_string())
    }

    /// Writes this worker's heartbeat: its claims stay its own for another lease.
    pub fn beat(&self) -> Result<(), LedgerError> {
        let path = self
            .dir
            .join("workers")
            .join(format!("{}.json", self.worker));
        let started = read_json::<Heartbeat>(&path)
            .ok()
            .flatten()
            .filter(|h| h.pid == self.pid && h.host == self.host)
            .map(|h| h.started)
            .unwrap_or_else(|| self.clock.now_secs());
        let beat = Heartbeat {
            host: self.host.clone(),
            pid: self.pid,
            started,
            beat: self.clock.now_secs(),
        };
        let bytes = serde_json::to_vec(&beat).map_err(|e| LedgerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let tmp = path.with_extension(format!("tmp-{}", unique()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Beats every quarter lease on a background thread until the returned guard is
    /// dropped.
    pub fn keep_beating(self: &Arc<Self>) -> Result<BeatGuard, LedgerError> {
        self.beat()?;
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::clone(self);
        let flag = Arc::clone(&stop);
        let period = Duration::from_secs_f64((self.settings.lease_secs / 4.0).clamp(0.05, 30.0));
        let handle = std::thread::spawn(move || {
            let step = Duration::from_millis(20);
            let mut waited = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                waited += step;
                if waited >= period {
                    waited = Duration::ZERO;
                    if let Err(e) = ledger.beat() {
                        tracing::warn!("heartbeat: {e}");
                    }
                }
            }
        });
        Ok(BeatGuard {
            stop,
            handle: Some(handle),
        })
    }

    fn alive(&self, holder: &Holder) -> bool {
        let path = self
            .dir
            .join("workers")
            .join(format!("{}.json", holder.worker));
        let now = self.clock.now_secs();
        let beat = read_json::<Heartbeat>(&path).ok().flatten();
        match beat {
            Some(b) if b.pid == holder.pid && b.host == holder.host => {
                now - b.beat <= self.settings.lease_secs
                    && (b.host != self.host || process_alive(b.pid))
            }
            // The worker's name was taken by a later process: this claim's process ended.
            Some(_) => false,
            None => {
                now - holder.at <= self.settings.lease_secs
                    && (holder.host != self.host || process_alive(holder.pid))
            }
        }
    }

    fn grants(&self) -> u32 {
        std::fs::read_dir(self.dir.join("grants"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count() as u32
            })
            .unwrap_or(0)
    }

    fn budget(&self, grants: u32) -> u32 {
        self.settings.max_attempts.max(1).saturating_mul(grants + 1)
    }

    /// The state of `block`.
    pub fn state(&self, block: u64) -> Result<BlockState, LedgerError> {
        self.state_with(block, self.grants())
    }

    fn state_with(&self, block: u64, grants: u32) -> Result<BlockState, LedgerError> {
        if let Some(done) = read_json::<DoneRecord>(&self.done_path(block))? {
            return Ok(BlockState::Done(done));
        }
        let mut last = 0u32;
        while self.claim_path(block, last + 1).exists() {
            last += 1;
        }
        if last == 0 {
            return Ok(BlockState::Pending);
        }
        let budget = self.budget(grants);
        if let Some(failed) = read_json::<FailedRecord>(&self.failed_path(block, last))? {
            return Ok(if last >= budget {
                BlockState::GaveUp {
                    attempts: last,
                    error: failed.error,
                }
            } else {
                BlockState::Retrying {
                    attempts: last,
                    error: failed.error,
                }
            });
        }
        let Some(holder) = read_json::<Holder>(&self.claim_path(block, last))? else {
            return Ok(BlockState::Pending);
        };
        if self.alive(&holder) {
            Ok(BlockState::Running {
                worker: holder.worker,
                attempt: last,
            })
        } else if last >= budget {
            Ok(BlockState::GaveUp {
                attempts: last,
                error: format!("worker {} stopped while working on it", holder.worker),
            })
        } else {
            Ok(BlockState::Stale {
                worker: holder.worker,
                attempt: last,
            })
        }
    }

    /// Tries to take `block` for this worker.
    pub fn claim(&self, block: u64) -> Result<Claim, LedgerError> {
        let grants = self.grants();
        loop {
            let attempt = match self.state_with(block, grants)? {
                BlockState::Done(_) => return Ok(Claim::Done),
                BlockState::Running { worker, .. } => return Ok(Claim::Busy(worker)),
                BlockState::GaveUp { error, .. } => return Ok(Claim::GaveUp(error)),
                BlockState::Pending => 1,
                BlockState::Stale { attempt, .. } => attempt + 1,
                BlockState::Retrying { attempts, .. } => attempts + 1,
            };
            let bytes = serde_json::to_vec(&self.holder()).map_err(|e| LedgerError::Io {
                path: self.dir.display().to_string(),
                message: e.to_string(),
            })?;
            if create_exclusive(&self.claim_path(block, attempt), &bytes)? {
                self.append(&Event {
                    event: "claim".into(),
                    block,
                    attempt,
                    at: self.clock.now_secs(),
                    detail: None,
                })?;
                return Ok(Claim::Mine(attempt));
            }
            // Another worker took this attempt first: look again.
        }
    }

    /// Records `block` as done by this worker's `attempt`, after its output is fully
    /// written; it took `secs`.
    pub fn complete(&self, block: u64, attempt: u32, secs: f64) -> Result<(), LedgerError> {
        self.complete_with(block, attempt, secs, serde_json::Value::Null)
    }

    /// [`Ledger::complete`] with what the job records for the block.
    pub fn complete_with(
        &self,
        block: u64,
        attempt: u32,
        secs: f64,
        extra: serde_json::Value,
    ) -> Result<(), LedgerError> {
        let record = DoneRecord {
            by: self.holder(),
            attempt,
            secs,
            extra,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| LedgerError::Io {
            path: self.dir.display().to_string(),
            message: e.to_string(),
        })?;
        // Done by another worker too (it took over a claim thought stale): the first record
        // stays, both wrote the same output.
        create_exclusive(&self.done_path(block), &bytes)?;
        self.append(&Event {
            event: "done".into(),
            block,
            attempt,
            at: record.by.at,
            detail: Some(serde_json::json!(secs)),
        })
    }

    /// Records that this worker's `attempt` at `block` failed with `error`; `Ok(true)`
    /// when the block has attempts left.
    pub fn fail(&self, block: u64, attempt: u32, error: &str) -> Result<bool, LedgerError> {
        let record = FailedRecord {
            by: self.holder(),
            error: error.to_string(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| LedgerError::Io {
            path: self.dir.display().to_string(),
            message: e.to_string(),
        })?;
        create_exclusive(&self.failed_path(block, attempt), &bytes)?;
        self.append(&Event {
            event: "failed".into(),
            block,
            attempt,
            at: record.by.at,
            detail: Some(serde_json::json!(error)),
        })?;
        Ok(attempt < self.budget(self.grants()))
    }

    /// Gives every block whose attempts are used up another round of attempts (a re-run
    /// of the job does this). Returns how many blocks it concerned.
    pub fn grant_retries(&self, total: u64) -> Result<u64, LedgerError> {
        let given_up = (0..total)
            .filter(|b| matches!(self.state(*b), Ok(BlockState::GaveUp { .. })))
            .count() as u64;
        if given_up > 0 {
            let n = self.grants();
            let holder = serde_json::to_vec(&self.holder()).map_err(|e| LedgerError::Io {
                path: self.dir.display().to_string(),
                message: e.to_string(),
            })?;
            let mut k = n + 1;
            while !create_exclusive(&self.dir.join("grants").join(k.to_string()), &holder)? {
                k += 1;
            }
        }
        Ok(given_up)
    }

    fn append(&self, event: &Event) -> Result<(), LedgerError> {
        let path = self.dir.join("log").join(format!("{}.jsonl", self.worker));
        let mut guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            // A line torn by an earlier crash is ended, so the next event starts cleanly.
            let len = file.metadata().map_err(io(&path))?.len();
            if len > 0 {
                let text = std::fs::read(&path).map_err(io(&path))?;
                if text.last() != Some(&b'\n') {
                    file.write_all(b"\n").map_err(io(&path))?;
                }
            }
            *guard = Some(file);
        }
        let mut line = serde_json::to_vec(event).map_err(|e| LedgerError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        line.push(b'\n');
        if let Some(file) = guard.as_mut() {
            file.write_all(&line).map_err(io(&path))?;
        }
        Ok(())
    }

    /// The events of every worker's log, oldest first per worker (torn lines skipped).
    pub fn events(&self) -> Result<Vec<(String, Event)>, LedgerError> {
        let dir = self.dir.join("log");
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for path in files {
            let worker = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            for line in text.lines() {
                if let Ok(e) = serde_json::from_str::<Event>(line) {
                    out.push((worker.clone(), e));
                }
            }
        }
        Ok(out)
    }

    /// Number of blocks done (one directory listing: cheap enough to poll).
    pub fn done_count(&self) -> Result<u64, LedgerError> {
        let dir = self.dir.join("done");
        let entries = std::fs::read_dir(&dir).map_err(io(&dir))?;
        Ok(entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count() as u64)
    }

    /// The done records of blocks `0..total` (missing ones skipped).
    pub fn done_records(&self, total: u64) -> Result<Vec<(u64, DoneRecord)>, LedgerError> {
        let mut out = Vec::new();
        for block in 0..total {
            if let Some(d) = read_json::<DoneRecord>(&self.done_path(block))? {
                out.push((block, d));
            }
        }
        Ok(out)
    }

    /// Counts of block states over blocks `0..total`.
    pub fn summary(&self, total: u64) -> Result<LedgerSummary, LedgerError> {
        let grants = self.grants();
        let mut s = LedgerSummary {
            total,
            ..LedgerSummary::default()
        };
        let mut secs = 0.0;
        for block in 0..total {
            let state = self.state_with(block, grants)?;
            s.marks.push(match &state {
                BlockState::Pending => BlockMark::Pending,
                BlockState::Running { .. } => BlockMark::Running,
                BlockState::Stale { .. } | BlockState::Retrying { .. } => BlockMark::Stalled,
                BlockState::GaveUp { .. } => BlockMark::Failed,
                BlockState::Done(_) => BlockMark::Done,
            });
            match state {
                BlockState::Pending => s.pending += 1,
                BlockState::Running { .. } => s.running += 1,
                BlockState::Stale { .. } => s.stale += 1,
                BlockState::Retrying { .. } => s.retrying += 1,
                BlockState::GaveUp { attempts, error } => s.gave_up.push((block, attempts, error)),
                BlockState::Done(d) => {
                    s.done += 1;
                    secs += d.secs;
                    let at = d.by.at;
                    s.done_span = Some(match s.done_span {
                        Some((a, b)) => (a.min(at), b.max(at)),
                        None => (at, at),
                    });
                }
            }
        }
        if s.done > 0 {
            s.mean_block_secs = secs / s.done as f64;
        }
        let dir = self.dir.join("workers");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json").map(str::to_string)
                })
                .collect();
            names.sort();
            for name in names {
                let beat = read_json::<Heartbeat>(&dir.join(format!("{name}.json")))
                    .ok()
                    .flatten();
                let alive = beat.is_some_and(|b| {
                    self.alive(&Holder {
                        worker: name.clone(),
                        host: b.host,
                        pid: b.pid,
                        at: b.beat,
                    })
                });
                s.workers.push((name, alive));
            }
        }
        Ok(s)
    }
}

/// Keeps a worker's heartbeat going; dropping it stops the beat.
pub struct BeatGuard {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for BeatGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves.
    struct FakeClock(Mutex<f64>);

    impl Clock for FakeClock {
        fn now_secs(&self) -> f64 {
            *self.0.lock().unwrap()
        }
    }

    fn settings() -> LedgerSettings {
        LedgerSettings {
            lease_secs: 10.0,
            max_attempts: 2,
        }
    }

    #[test]
    fn concurrent_workers_do_every_block_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let total = 200u64;
        let counts: Vec<std::sync::atomic::AtomicU32> = (0..total)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        std::thread::scope(|s| {
            for w in 0..4 {
                let counts = &counts;
                let dir = dir.path();
                s.spawn(move || {
                    let ledger = Ledger::open(dir, &format!("w{w}"), settings()).unwrap();
                    ledger.beat().unwrap();
                    // Each worker starts elsewhere in the job, as real workers do.
                    for k in 0..total {
                        let b = (k + w * total / 4) % total;
                        if let Claim::Mine(a) = ledger.claim(b).unwrap() {
                            counts[b as usize].fetch_add(1, Ordering::SeqCst);
                            ledger.complete(b, a, 0.5).unwrap();
                        }
                    }
                });
            }
        });
        assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 1));
        let reader = Ledger::open(dir.path(), "reader", settings()).unwrap();
        let s = reader.summary(total).unwrap();
        assert_eq!((s.done, s.pending, s.running), (200, 0, 0));
        assert_eq!(reader.done_count().unwrap(), 200);
        assert_eq!(s.mean_block_secs, 0.5);
        let done_events = reader
            .events()
            .unwrap()
            .iter()
            .filter(|(_, e)| e.event == "done")
            .count();
        assert_eq!(done_events, 200);
        // No temporary file is left behind.
        let leftovers = std::fs::read_dir(dir.path().join("done"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_stale_claim_is_taken_over_after_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock(Mutex::new(1000.0)));
        // Another host, so only the heartbeat tells whether it lives.
        let a = Ledger::open_with_clock(dir.path(), "a", settings(), clock.clone()).unwrap();
        let mut a = a;
        a.host = "elsewhere".into();
        a.beat().unwrap();
        let b = Ledger::open_with_clock(dir.path(), "b", settings(), clock.clone()).unwrap();
        b.beat().unwrap();
        assert_eq!(a.claim(7).unwrap(), Claim::Mine(1));
        assert_eq!(b.claim(7).unwrap(), Claim::Busy("a".into()));
        // a keeps beating: still busy after more than a lease.
        *clock.0.lock().unwrap() = 1008.0;
        a.beat().unwrap();
        *clock.0.lock().unwrap() = 1015.0;
        assert_eq!(b.claim(7).unwrap(), Claim::Busy("a".into()));
        // a stops beating: after the lease b takes attempt 2.
        *clock.0.lock().unwrap() = 1019.0;
        assert!(matches!(b.state(7).unwrap(), BlockState::Stale { .. }));
        assert_eq!(b.claim(7).unwrap(), Claim::Mine(2));
        b.complete(7, 2, 1.0).unwrap();
        // a comes back and finishes too: the first record stays.
        a.complete(7, 1, 3.0).unwrap();
        match b.state(7).unwrap() {
            BlockState::Done(d) => assert_eq!((d.by.worker.as_str(), d.attempt), ("b", 2)),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn a_dead_process_on_this_host_is_stale_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Ledger::open(dir.path(), "a", settings()).unwrap();
        // A process id that cannot exist.
        a.pid = u32::MAX - 1;
        a.beat().unwrap();
        assert_eq!(a.claim(0).unwrap(), Claim::Mine(1));
        let b = Ledger::open(dir.path(), "b", settings()).unwrap();
        assert_eq!(b.claim(0).unwrap(), Claim::Mine(2));
        // A later process under the same name as a live worker ends its predecessor's claims.
        let c = Ledger::open(dir.path(), "c", settings()).unwrap();
        c.beat().unwrap();
        assert_eq!(c.claim(1).unwrap(), Claim::Mine(1));
        let mut c2 = Ledger::open(dir.path(), "c", settings()).unwrap();
        c2.pid = std::process::id() + 1;
        let b_view = b.state(1).unwrap();
        assert!(matches!(b_view, BlockState::Running { .. }), "{b_view:?}");
        c2.beat().unwrap();
        assert!(matches!(b.state(1).unwrap(), BlockState::Stale { .. }));
    }

    #[test]
    fn failures_are_retried_then_given_up_and_a_grant_allows_more() {
        let dir = tempfile::tempdir().unwrap();
        let w = Ledger::open(dir.path(), "w", settings()).unwrap();
        w.beat().unwrap();
        assert_eq!(w.claim(3).unwrap(), Claim::Mine(1));
        assert!(w.fail(3, 1, "disk full").unwrap());
        assert!(matches!(
            w.state(3).unwrap(),
            BlockState::Retrying { attempts: 1, .. }
        ));
        assert_eq!(w.claim(3).unwrap(), Claim::Mine(2));
        assert!(!w.fail(3, 2, "disk still full").unwrap());
        assert_eq!(w.claim(3).unwrap(), Claim::GaveUp("disk still full".into()));
        let s = w.summary(5).unwrap();
        assert_eq!(s.gave_up, vec![(3, 2, "disk still full".to_string())]);
        assert_eq!(s.pending, 4);
        // A re-run grants another round.
        assert_eq!(w.grant_retries(5).unwrap(), 1);
        assert_eq!(w.claim(3).unwrap(), Claim::Mine(3));
        w.complete(3, 3, 0.1).unwrap();
        assert_eq!(w.grant_retries(5).unwrap(), 0);
        assert_eq!(w.summary(5).unwrap().done, 1);
    }

    #[test]
    fn a_torn_log_line_is_skipped_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let w = Ledger::open(dir.path(), "w", settings()).unwrap();
        assert_eq!(w.claim(0).unwrap(), Claim::Mine(1));
        w.complete(0, 1, 0.2).unwrap();
        drop(w);
        let log = dir.path().join("log/w.jsonl");
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"event\":\"do");
        std::fs::write(&log, text).unwrap();
        let w = Ledger::open(dir.path(), "w", settings()).unwrap();
        assert_eq!(w.claim(1).unwrap(), Claim::Mine(1));
        let events: Vec<(String, u64)> = w
            .events()
            .unwrap()
            .into_iter()
            .map(|(_, e)| (e.event, e.block))
            .collect();
        assert_eq!(
            events,
            vec![
                ("claim".to_string(), 0),
                ("done".to_string(), 0),
                ("claim".to_string(), 1)
            ]
        );
    }

    #[test]
    fn worker_names_must_be_file_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "a/b", "..", "x y", &"w".repeat(101)] {
            assert!(matches!(
                Ledger::open(dir.path(), bad, settings()),
                Err(LedgerError::WorkerName(_))
            ));
        }
        assert!(Ledger::open(dir.path(), "slurm-12.3_a", settings()).is_ok());
    }
}
