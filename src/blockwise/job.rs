//! A block job on disk: the output region cut into a grid of blocks aligned to the output's
//! chunks (the last block on each axis overhangs the region and its writes are clipped), the
//! job's description in `<output>/.segno-job/job.json`, its ledger in `ledger/`, its
//! cluster submission in `submission.json` and its workers' logs in `logs/`. Any
//! number of workers — threads, processes, cluster tasks — open the same job and share its
//! blocks through the ledger.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ledger::{Ledger, LedgerSettings};
use super::Provenance;
use crate::geometry::{Coordinate, Roi};
use crate::train::TrainError;

/// The name of a job's directory inside its output array.
pub const JOB_DIR: &str = ".segno-job";

/// The job's ledger, inside its directory: a block listed done there is final.
pub const MAIN_LEDGER: &str = "ledger";

/// One stage of a job: what it does, its ledger (in the job's directory) and its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// What the stage does (`blocks` for a job of one stage).
    pub name: &'static str,
    /// Its ledger's directory name.
    pub ledger: &'static str,
    /// Its blocks.
    pub blocks: u64,
}

/// A region cut into equal blocks from its begin: block `k` in row-major order. The last
/// block on an axis may reach past the region's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockGrid {
    /// The region (world units).
    pub roi: Roi,
    /// The block size (world units).
    pub block_nm: Coordinate,
}

impl BlockGrid {
    /// The grid of `block_nm` blocks over `roi`; refuses a grid of more than
    /// [`crate::train::validate::MAX_BLOCKS`] blocks.
    pub fn new(roi: Roi, block_nm: Coordinate) -> Result<Self, TrainError> {
        if block_nm.dims() != roi.dims() || !block_nm.is_positive() {
            return Err(TrainError::Data(format!(
                "block size {block_nm} does not fit the region {roi}"
            )));
        }
        let grid = Self { roi, block_nm };
        let count = grid
            .counts()
            .iter()
            .try_fold(1u64, |n, c| n.checked_mul(*c));
        if count.is_none_or(|n| n > crate::train::validate::MAX_BLOCKS) {
            return Err(TrainError::Data(format!(
                "the region {roi} needs more than {} blocks of {block_nm} nm: give a smaller region",
                crate::train::validate::MAX_BLOCKS
            )));
        }
        Ok(grid)
    }

    /// Blocks per axis.
    pub fn counts(&self) -> Vec<u64> {
        (0..self.roi.dims())
            .map(|a| {
                let span = u64::try_from(self.roi.shape()[a]).unwrap_or(0);
                span.div_ceil(u64::try_from(self.block_nm[a]).unwrap_or(1).max(1))
                    .max(1)
            })
            .collect()
    }

    /// Number of blocks.
    pub fn len(&self) -> u64 {
        self.counts().iter().product()
    }

    /// Whether the grid has no blocks (never: a grid has at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The grid position of block `k` (row-major, the last axis fastest).
    pub fn index(&self, k: u64) -> Vec<u64> {
        let counts = self.counts();
        let mut index = vec![0u64; counts.len()];
        let mut rest = k;
        for a in (0..counts.len()).rev() {
            index[a] = rest % counts[a].max(1);
            rest /= counts[a].max(1);
        }
        index
    }

    /// Block `k` (world units, not clipped to the region).
    pub fn block(&self, k: u64) -> Roi {
        let index = self.index(k);
        let dims = index.len();
        let begin: Vec<i64> = (0..dims)
            .map(|a| self.roi.begin()[a] + index[a] as i64 * self.block_nm[a])
            .collect();
        let begin = Coordinate::new(&begin).unwrap_or(self.roi.begin());
        Roi::new(begin, self.block_nm).unwrap_or(self.roi)
    }

    /// Block `k` clipped to the region: what is written for it.
    pub fn written(&self, k: u64) -> Roi {
        self.block(k).intersect(&self.roi)
    }
}

/// What a job computes per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A network's prediction.
    Predict,
    /// A prediction post-processed point by point (threshold, argmax, the task's
    /// parameters).
    PostProcess,
    /// A segmentation into objects across blocks (mutex watershed, connected
    /// components): fragments per block, their contacts across block faces, one merge,
    /// then every block relabelled; each stage has its own ledger, the last the job's.
    Segment,
    /// Scores of a segmentation against ground truth: every block's statistics are kept in
    /// the job's directory and summed into the report (see [`super::evaluate`]).
    Evaluate,
}

/// A job's description, `<output>/.segno-job/job.json`: everything a worker in another
/// process needs to take part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    /// Version of this file's layout.
    pub format: u32,
    /// What the job computes.
    pub kind: JobKind,
    /// The output container.
    pub container: PathBuf,
    /// The output dataset inside it.
    pub dataset: String,
    /// The blocks.
    pub grid: BlockGrid,
    /// How workers share them.
    pub ledger: LedgerSettings,
    /// What made the output (a prediction's record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// What the job's output is made of, compared when a job is continued (a
    /// post-processing's source and parameters).
    #[serde(default)]
    pub source: serde_json::Value,
    /// How a worker process opens the model and input again (set by whoever starts the
    /// job, read back by its workers).
    pub worker: serde_json::Value,
    /// Output arrays whose jobs (segmentations of this prediction) this job's workers take
    /// part in once every block of this one is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub then: Vec<PathBuf>,
}

impl JobFile {
    /// The job's directory.
    pub fn dir(&self) -> PathBuf {
        job_dir(&self.container.join(&self.dataset))
    }

    /// Where the job's cluster submission is recorded.
    pub fn submission_record(&self) -> PathBuf {
        self.dir().join("submission.json")
    }

    /// Where the job's cluster tasks and local worker processes log.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }

    /// A worker's report: what it did and the job's state in `summary`.
    pub fn report(
        &self,
        done_before: u64,
        finished: u64,
        failed_attempts: u64,
        summary: super::ledger::LedgerSummary,
    ) -> WorkReport {
        WorkReport {
            total: self.grid.len(),
            done_before,
            finished,
            failed_attempts,
            done: summary.done,
            gave_up: summary
                .gave_up
                .into_iter()
                .map(|(k, _, e)| (k, self.grid.written(k), e))
                .collect(),
            ledger_secs: 0.0,
            block_secs: 0.0,
        }
    }

    /// The output array (the image group).
    pub fn output(&self) -> PathBuf {
        self.container.join(&self.dataset)
    }

    /// The job's stages in order; the last is the job's own ledger. A segmentation has
    /// four (see [`super::segment`]), every other job one.
    pub fn stages(&self) -> Vec<Stage> {
        let n = self.grid.len();
        match self.kind {
            JobKind::Segment => super::segment::stages(n).to_vec(),
            JobKind::Predict | JobKind::PostProcess | JobKind::Evaluate => vec![Stage {
                name: "blocks",
                ledger: MAIN_LEDGER,
                blocks: n,
            }],
        }
    }

    /// Opens the job's ledger for the worker named `worker`.
    pub fn ledger(&self, worker: &str) -> Result<Ledger, TrainError> {
        self.stage_ledger(MAIN_LEDGER, worker)
    }

    /// Opens the ledger called `name` in the job's directory (a stage of a job of
    /// several; [`MAIN_LEDGER`] is the job's own) for the worker named `worker`.
    pub fn stage_ledger(&self, name: &str, worker: &str) -> Result<Ledger, TrainError> {
        Ledger::open(&self.dir().join(name), worker, self.ledger)
            .map_err(|e| TrainError::Data(e.to_string()))
    }

    /// Writes the description (temporary file + rename).
    pub fn store(&self) -> Result<(), TrainError> {
        let dir = self.dir();
        let fail = |e: String| TrainError::Data(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| fail(e.to_string()))?;
        let path = dir.join("job.json");
        let tmp = dir.join(format!(".job.json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| fail(e.to_string()))
    }

    /// Reads the job of the output array at `output` (`None` when it has none).
    pub fn load(output: &Path) -> Result<Option<Self>, TrainError> {
        let path = job_dir(output).join("job.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                TrainError::Data(format!(
                    "{}: not a Segno job description: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TrainError::Data(format!("{}: {e}", path.display()))),
        }
    }
}

/// Whether the output array at `output` is an unfinished block job's (its ledger lists
/// fewer blocks done than the job has).
pub fn unfinished(output: &Path) -> bool {
    JobFile::load(output).ok().flatten().is_some_and(|j| {
        j.ledger("status")
            .ok()
            .and_then(|l| l.done_count().ok())
            .is_some_and(|done| done < j.grid.len())
    })
}

/// The job directory of the output array at `output`.
pub fn job_dir(output: &Path) -> PathBuf {
    output.join(JOB_DIR)
}

/// How one worker takes part in a job.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkOptions {
    /// The worker's name (letters, digits, `.`, `_`, `-`).
    pub worker: String,
    /// Where in the job this worker starts looking for blocks, as a fraction of it (workers
    /// starting apart rarely ask for the same block).
    pub start_fraction: f64,
    /// Stay until every block is done or given up, taking over blocks whose workers stop
    /// (else leave when no block is left to take).
    pub sweep: bool,
}

impl WorkOptions {
    /// A worker of this process that stays to the end.
    pub fn sweeping() -> Self {
        Self {
            worker: format!("{}-{}", super::ledger::host_name_part(), std::process::id()),
            start_fraction: 0.0,
            sweep: true,
        }
    }
}

/// What one worker did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkReport {
    /// Blocks in the job.
    pub total: u64,
    /// Blocks done when the worker started.
    pub done_before: u64,
    /// Blocks this worker finished.
    pub finished: u64,
    /// Attempts of this worker that failed.
    pub failed_attempts: u64,
    /// Blocks done when the worker left.
    pub done: u64,
    /// Blocks given up: `(block, region, last error)`.
    pub gave_up: Vec<(u64, Roi, String)>,
    /// Seconds this worker spent on the ledger (claiming, recording blocks done or
    /// failed).
    pub ledger_secs: f64,
    /// Seconds its blocks took from claim to written, summed (blocks in a pipeline
    /// overlap).
    pub block_secs: f64,
}

impl WorkReport {
    /// The ledger's time as a fraction of the blocks' time (0 when no block was done).
    pub fn ledger_fraction(&self) -> f64 {
        if self.block_secs > 0.0 {
            self.ledger_secs / self.block_secs
        } else {
            0.0
        }
    }

    /// An error listing the blocks given up (the first ten, with their regions and
    /// errors), or `Ok` when there are none.
    pub fn check_complete(&self, job: &JobFile) -> Result<(), TrainError> {
        if self.gave_up.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = self
            .gave_up
            .iter()
            .take(10)
            .map(|(k, r, e)| format!("block {k} {r}: {e}"))
            .collect();
        Err(TrainError::Data(format!(
            "{} of {} blocks failed after {} attempts each ({}{}); the others are written to {}. Run the same command again to retry them",
            self.gave_up.len(),
            self.total,
            job.ledger.max_attempts,
            listed.join("; "),
            if self.gave_up.len() > 10 { "; …" } else { "" },
            job.output().display()
        )))
    }
}

/// How long a worker that found no block to take waits before looking again (for blocks
/// of workers that stop).
pub(super) fn idle_pause(job: &JobFile) -> std::time::Duration {
    std::time::Duration::from_secs_f64((job.ledger.lease_secs / 20.0).clamp(0.05, 0.5))
}

/// The order in which a worker visits blocks: all of them, from `start_fraction` on.
pub fn visiting_order(total: u64, start_fraction: f64) -> impl Iterator<Item = u64> {
    let start = ((start_fraction.clamp(0.0, 1.0) * total as f64) as u64).min(total.max(1) - 1);
    (0..total).map(move |k| (k + start) % total.max(1))
}

/// Takes part in a job whose blocks need no network, as one worker of `threads` threads:
/// each thread claims blocks in the ledger and runs `process(block, region)` on them
/// (`region` clipped to the job's region; what it returns is kept in the block's done
/// record), recording each done or failed, until no block
/// is left to take (or, with `options.sweep`, until every block is done or given up).
/// `on_block(done, total)` follows the job's progress as this worker sees it.
pub fn work_blocks(
    job: &JobFile,
    options: &WorkOptions,
    threads: usize,
    process: &(dyn Fn(u64, &Roi) -> Result<serde_json::Value, TrainError> + Sync),
    on_block: &(dyn Fn(usize, usize) + Sync),
) -> Result<WorkReport, TrainError> {
    work_stage(
        job,
        (MAIN_LEDGER, job.grid.len()),
        options,
        threads,
        process,
        on_block,
    )
}

/// [`work_blocks`] on the stage whose ledger is called `stage.0` in the job's directory
/// and which has `stage.1` blocks (block `k` is given the grid's block `k`, clipped).
pub fn work_stage(
    job: &JobFile,
    stage: (&str, u64),
    options: &WorkOptions,
    threads: usize,
    process: &(dyn Fn(u64, &Roi) -> Result<serde_json::Value, TrainError> + Sync),
    on_block: &(dyn Fn(usize, usize) + Sync),
) -> Result<WorkReport, TrainError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let ledger_error = |e: super::ledger::LedgerError| TrainError::Data(e.to_string());
    let ledger = std::sync::Arc::new(job.stage_ledger(stage.0, &options.worker)?);
    let _beat = ledger.keep_beating().map_err(ledger_error)?;
    let total = stage.1;
    let done_before = ledger.done_count().map_err(ledger_error)?;
    let seen = AtomicU64::new(done_before);
    let finished = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let first_error = std::sync::Mutex::new(None::<String>);
    let ledger_nanos = AtomicU64::new(0);
    let block_nanos = AtomicU64::new(0);
    let add = |since: std::time::Instant, total: &AtomicU64| {
        let n = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        total.fetch_add(n, Ordering::Relaxed);
    };
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for t in 0..threads {
            let ledger = &ledger;
            let (seen, finished, failed, stop, first_error) =
                (&seen, &finished, &failed, &stop, &first_error);
            let (ledger_nanos, block_nanos) = (&ledger_nanos, &block_nanos);
            handles.push(scope.spawn(move || -> Result<(), TrainError> {
                let start = (options.start_fraction + t as f64 / threads as f64).fract();
                loop {
                    let mut took = false;
                    let mut waiting = false;
                    for k in visiting_order(total, start) {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let asked = std::time::Instant::now();
                        let claim = ledger.claim(k).map_err(ledger_error)?;
                        add(asked, ledger_nanos);
                        let attempt = match claim {
                            super::ledger::Claim::Mine(a) => a,
                            super::ledger::Claim::Busy(w) => {
                                // Threads of this worker finish their own blocks.
                                waiting |= w != options.worker;
                                continue;
                            }
                            _ => continue,
                        };
                        took = true;
                        let started = std::time::Instant::now();
                        let result = process(k, &job.grid.written(k));
                        add(started, block_nanos);
                        let recording = std::time::Instant::now();
                        match result {
                            Ok(extra) => {
                                ledger
                                    .complete_with(
                                        k,
                                        attempt,
                                        started.elapsed().as_secs_f64(),
                                        extra,
                                    )
                                    .map_err(ledger_error)?;
                                finished.fetch_add(1, Ordering::Relaxed);
                                let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
                                on_block(n.min(total) as usize, total as usize);
                            }
                            Err(e) => {
                                tracing::warn!("block {k}, attempt {attempt}: {e}");
                                ledger
                                    .fail(k, attempt, &e.to_string())
                                    .map_err(ledger_error)?;
                                let n = failed.fetch_add(1, Ordering::Relaxed) + 1;
                                let mut first =
                                    first_error.lock().unwrap_or_else(|p| p.into_inner());
                                if first.is_none() {
                                    *first =
                                        Some(format!("block {k} ({}): {e}", job.grid.written(k)));
                                }
                                if finished.load(Ordering::Relaxed) == 0
                                    && n >= super::FAILURES_BEFORE_STOPPING
                                {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        }
                        add(recording, ledger_nanos);
                    }
                    if !(took || options.sweep && waiting) {
                        return Ok(());
                    }
                    if !took {
                        std::thread::sleep(idle_pause(job));
                    }
                }
            }));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| TrainError::Data("a worker thread stopped unexpectedly".into()))?
            })
            .collect::<Result<Vec<()>, TrainError>>()
    })?;
    if stop.load(Ordering::Relaxed) {
        return Err(TrainError::Data(format!(
            "{} failed {} times and no block succeeded; the first: {}",
            options.worker,
            failed.load(Ordering::Relaxed),
            first_error
                .lock()
                .map(|f| f.clone().unwrap_or_default())
                .unwrap_or_default()
        )));
    }
    let summary = ledger.summary(total).map_err(ledger_error)?;
    let mut report = job.report(
        done_before,
        finished.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        summary,
    );
    report.total = total;
    report.ledger_secs = ledger_nanos.load(Ordering::Relaxed) as f64 * 1e-9;
    report.block_secs = block_nanos.load(Ordering::Relaxed) as f64 * 1e-9;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_starts_at_the_region_and_overhangs_at_its_end() {
        let roi = Roi::new(Coordinate::from([0, 8, 0]), Coordinate::from([80, 32, 16])).unwrap();
        let grid = BlockGrid::new(roi, Coordinate::from([32, 32, 32])).unwrap();
        assert_eq!(grid.counts(), vec![3, 1, 1]);
        assert_eq!(grid.len(), 3);
        assert_eq!(grid.block(0).begin(), Coordinate::from([0, 8, 0]));
        assert_eq!(grid.block(2).begin(), Coordinate::from([64, 8, 0]));
        // The last block reaches past the region; what is written stops at its end.
        assert_eq!(grid.block(2).end(), Coordinate::from([96, 40, 32]));
        assert_eq!(grid.written(2).end(), Coordinate::from([80, 40, 16]));
        // Blocks tile the region without overlap.
        let voxels: u128 = (0..grid.len()).map(|k| grid.written(k).size()).sum();
        assert_eq!(voxels, roi.size());
        // Row-major: the last axis varies fastest.
        let g2 = BlockGrid::new(
            Roi::new(Coordinate::from([0, 0]), Coordinate::from([20, 30])).unwrap(),
            Coordinate::from([10, 10]),
        )
        .unwrap();
        assert_eq!(g2.block(1).begin(), Coordinate::from([0, 10]));
        assert_eq!(g2.block(3).begin(), Coordinate::from([10, 0]));
    }

    #[test]
    fn a_huge_grid_is_refused_before_it_is_listed() {
        let roi = Roi::new(
            Coordinate::from([0, 0, 0]),
            Coordinate::from([1 << 40, 1 << 40, 1 << 40]),
        )
        .unwrap();
        let e = BlockGrid::new(roi, Coordinate::from([8, 8, 8])).unwrap_err();
        assert!(e.to_string().contains("smaller region"), "{e}");
    }

    #[test]
    fn workers_visit_every_block_from_their_own_start() {
        let order: Vec<u64> = visiting_order(5, 0.5).collect();
        assert_eq!(order, vec![2, 3, 4, 0, 1]);
        assert_eq!(visiting_order(5, 1.0).count(), 5);
        assert_eq!(visiting_order(1, 0.7).collect::<Vec<_>>(), vec![0]);
    }

    fn job_in(dir: &Path, blocks: i64) -> JobFile {
        let roi = Roi::new(
            Coordinate::from([0, 0]),
            Coordinate::from([10 * blocks, 10]),
        )
        .unwrap();
        let job = JobFile {
            format: 1,
            kind: JobKind::PostProcess,
            container: dir.to_path_buf(),
            dataset: "out".into(),
            grid: BlockGrid::new(roi, Coordinate::from([10, 10])).unwrap(),
            ledger: LedgerSettings {
                lease_secs: 5.0,
                max_attempts: 2,
            },
            provenance: None,
            source: serde_json::json!({"what": "test"}),
            worker: serde_json::Value::Null,
            then: Vec::new(),
        };
        job.store().unwrap();
        job
    }

    #[test]
    fn threads_of_a_worker_share_its_blocks_and_failures_are_retried_then_reported() {
        let dir = tempfile::tempdir().unwrap();
        let job = job_in(dir.path(), 12);
        assert_eq!(JobFile::load(&job.output()).unwrap().unwrap(), job);
        assert!(unfinished(&job.output()));
        let calls: Vec<std::sync::atomic::AtomicU32> = (0..12)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        let options = WorkOptions {
            worker: "w".into(),
            start_fraction: 0.0,
            sweep: true,
        };
        let report = work_blocks(
            &job,
            &options,
            3,
            &|k, roi| {
                calls[k as usize].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if k == 5 {
                    return Err(TrainError::Data("bad block".into()));
                }
                Ok(serde_json::json!([roi.begin()[0]]))
            },
            &|_, _| {},
        )
        .unwrap();
        // Block 5 was tried twice (the job's attempts), every other block once.
        let counts: Vec<u32> = calls
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::SeqCst))
            .collect();
        assert_eq!(counts, vec![1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1]);
        assert_eq!(
            (report.finished, report.failed_attempts, report.done),
            (11, 2, 11)
        );
        assert_eq!(report.gave_up.len(), 1);
        assert_eq!(report.gave_up[0].0, 5);
        assert_eq!(report.gave_up[0].1.begin(), Coordinate::from([50, 0]));
        assert_eq!(report.gave_up[0].2, "bad block");
        // What each block returned is kept in its done record.
        let records = job.ledger("r").unwrap().done_records(12).unwrap();
        assert_eq!(records.len(), 11);
        assert!(records
            .iter()
            .all(|(k, r)| r.extra == serde_json::json!([10 * *k as i64])));
        assert!(unfinished(&job.output()));
    }

    #[test]
    fn a_job_failing_everywhere_stops_with_its_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let job = job_in(dir.path(), 20);
        let options = WorkOptions {
            worker: "w".into(),
            start_fraction: 0.0,
            sweep: false,
        };
        let e = work_blocks(
            &job,
            &options,
            1,
            &|_, _| Err(TrainError::Data("no such model".into())),
            &|_, _| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no block succeeded"), "{e}");
        assert!(e.contains("block 0 ("), "{e}");
        assert!(e.contains("no such model"), "{e}");
    }
}
