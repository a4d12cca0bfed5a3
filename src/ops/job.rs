//! Block jobs over many workers: what a worker process needs to take part in a prediction
//! job started elsewhere ([`WorkerSpec`], stored in the job's description), one worker's
//! loop ([`work`]), local worker processes sharing a job ([`run_local_workers`]), and a
//! job's progress read from its ledger ([`status`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{OpsError, RoiNm};
use crate::blockwise::{self, Checkpoint, InputOptions, JobFile, WorkOptions, WorkReport};
use crate::store::Project;
use crate::train::validate::Inference;
use crate::train::TrainError;

/// How a worker process opens the model and the input of a prediction job again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The project holding the run (absolute).
    pub project: PathBuf,
    /// The run.
    pub run: String,
    /// The checkpoint iteration.
    pub iteration: u64,
    /// The input volume as given (absolute).
    pub input: PathBuf,
    /// Read the input as this dataset of the run did.
    pub like: Option<String>,
    /// Resample an input at another voxel size.
    pub resample: bool,
    /// Accept an input of another element type.
    pub accept_data_type: bool,
    /// Network input block (voxels).
    pub input_shape_voxels: Vec<i64>,
    /// Network output block (voxels).
    pub output_shape_voxels: Vec<i64>,
    /// The device the job was started for (`auto`, `cpu`, `cuda:N`).
    pub device: String,
    /// The floating-point type the network computes in.
    #[serde(default)]
    pub precision: crate::blockwise::Precision,
}

impl WorkerSpec {
    /// The spec stored in `job`.
    pub fn of(job: &JobFile) -> Result<Self, OpsError> {
        serde_json::from_value(job.worker.clone()).map_err(|e| {
            OpsError::Invalid(format!(
                "{}: the job does not say how a worker opens its model and input ({e})",
                job.dir().join("job.json").display()
            ))
        })
    }

    /// The input options it records.
    pub fn input_options(&self) -> InputOptions {
        InputOptions {
            like: self.like.clone(),
            resample: self.resample,
            accept_data_type: self.accept_data_type,
        }
    }
}

/// Absolute form of `path` (relative to the current directory), without resolving links.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Options of [`work`].
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// The output array whose job to take part in.
    pub output: PathBuf,
    /// This worker's name and behaviour.
    pub work: WorkOptions,
    /// The device (default: the job's).
    pub device: Option<String>,
    /// CPU threads: prediction pipelines of one thread each on the CPU (default: the
    /// machine's).
    pub threads: Option<usize>,
}

/// Loads the job of `output`, or explains that there is none.
pub fn load_job(output: &Path) -> Result<JobFile, OpsError> {
    JobFile::load(output)?.ok_or_else(|| {
        OpsError::Invalid(format!(
            "{}: no block job here (expected {})",
            output.display(),
            blockwise::job::job_dir(output).join("job.json").display()
        ))
    })
}

/// Takes part in the job of `options.output` as one worker, in this process.
pub fn work(
    options: &WorkerOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<WorkReport, OpsError> {
    let job = load_job(&options.output)?;
    match job.kind {
        blockwise::JobKind::Predict => {}
        blockwise::JobKind::Segment => {
            return work_segmentation(&job, &options.work, worker_threads(options), progress);
        }
        blockwise::JobKind::Evaluate => {
            return super::evaluate::work_job(
                &job,
                &options.work,
                worker_threads(options),
                progress,
            );
        }
        blockwise::JobKind::PostProcess => {
            return Err(OpsError::Invalid(format!(
                "{}: a point-wise post-processing job is worked on by the command that started it; run that command again to continue it",
                options.output.display()
            )));
        }
    }
    let spec = WorkerSpec::of(&job)?;
    let project = Project::open(&spec.project)?;
    let run = super::stored_run(&project, &spec.run)?;
    let fail = OpsError::run(&run.name);
    let device = super::device(options.device.as_deref().unwrap_or(&spec.device))?;
    let load = || {
        blockwise::load_model_as(
            project.root(),
            &run,
            &Checkpoint::Iteration(spec.iteration),
            device,
            spec.precision,
        )
    };
    // A checkpoint that cannot be loaded is reported before any block is claimed.
    drop(load().map_err(&fail)?);
    let input = blockwise::open_input(project.root(), &run, &spec.input, &spec.input_options())
        .map_err(&fail)?;
    let inference = job_inference(&run, &spec, input.array.as_ref(), device, input.scale_shift)
        .map_err(&fail)?;
    let cpus = worker_threads(options);
    let pipelines = blockwise::cpu_pipelines(&run, &inference, cpus, None);
    // Workers of a prediction segmented afterwards stay until every block is predicted.
    let work = WorkOptions {
        sweep: options.work.sweep || !job.then.is_empty(),
        ..options.work.clone()
    };
    let report = blockwise::work_prediction_parallel(
        &job,
        &load,
        pipelines,
        &inference,
        input.array.as_ref(),
        &work,
        progress,
    )
    .map_err(&fail)?;
    if !job.then.is_empty() {
        report.check_complete(&job).map_err(&fail)?;
        for next in &job.then {
            work_segmentation(&load_job(next)?, &options.work, cpus, progress)?;
        }
    }
    Ok(report)
}

/// The threads a worker uses: as asked, else the machine's.
fn worker_threads(options: &WorkerOptions) -> usize {
    options
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1)
}

/// Takes part in the segmentation job `job` as the worker `work` with `threads` threads.
fn work_segmentation(
    job: &JobFile,
    work: &WorkOptions,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<WorkReport, OpsError> {
    if job.kind != blockwise::JobKind::Segment {
        return Err(OpsError::Invalid(format!(
            "{}: not a segmentation job",
            job.output().display()
        )));
    }
    relay_progress(progress, |p| {
        blockwise::segment::work_segment(job, work, threads, p)
    })
}

/// Runs `f` on another thread with a progress callback that threads can share, reporting
/// its calls to `progress` on this thread as they come.
pub(crate) fn relay_progress<T: Send>(
    progress: &mut dyn FnMut(usize, usize),
    f: impl FnOnce(&(dyn Fn(usize, usize) + Sync)) -> Result<T, TrainError> + Send,
) -> Result<T, OpsError> {
    let (send, receive) = std::sync::mpsc::channel::<(usize, usize)>();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let send = std::sync::Mutex::new(send);
            f(&|d, t| {
                if let Ok(s) = send.lock() {
                    let _ = s.send((d, t));
                }
            })
        });
        for (done, total) in receive {
            progress(done, total);
        }
        worker
            .join()
            .map_err(|_| OpsError::Io("a worker thread stopped unexpectedly".into()))?
            .map_err(OpsError::Engine)
    })
}

/// The run's inference with the block shapes the job was started with.
fn job_inference(
    run: &crate::config::RunConfig,
    spec: &WorkerSpec,
    raw: &dyn crate::array::ArraySource,
    device: tch::Device,
    scale_shift: (f32, f32),
) -> Result<Inference, TrainError> {
    let mut inference = Inference::for_run(run, raw.info().geometry.voxel_size, device)?;
    let coordinate = |v: &[i64]| {
        crate::geometry::Coordinate::new(v).map_err(|e| TrainError::Data(e.to_string()))
    };
    inference.input_shape = coordinate(&spec.input_shape_voxels)?;
    inference.output_shape = coordinate(&spec.output_shape_voxels)?;
    inference.normalisation = scale_shift;
    inference.precision = spec.precision;
    Ok(inference)
}

/// A job's progress, from its ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// The output array.
    pub output: PathBuf,
    /// The job's region.
    pub roi_nm: RoiNm,
    /// Block size in nm.
    pub block_nm: Vec<i64>,
    /// Block counts by state.
    pub blocks: blockwise::ledger::LedgerSummary,
    /// Blocks given up, with their regions: `(block, region, attempts, last error)`.
    pub gave_up: Vec<(u64, RoiNm, u32, String)>,
    /// Blocks per second so far (between the first and the last block done).
    pub blocks_per_sec: Option<f64>,
    /// Seconds left at that pace.
    pub eta_secs: Option<f64>,
    /// Whether every block is done.
    pub complete: bool,
    /// The cluster jobs, when the job was submitted to one.
    pub cluster: Option<ClusterStatus>,
    /// A job of several stages (a segmentation): each stage's blocks done, in order; the
    /// last is the job's own ledger.
    pub stages: Vec<StageStatus>,
}

/// One stage of a job of several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageStatus {
    /// `fragments`, `faces`, `merge` or `relabel`.
    pub name: String,
    /// Blocks done.
    pub done: u64,
    /// Blocks in the stage.
    pub total: u64,
}

/// The scheduler's view of a block job's cluster jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterStatus {
    /// The scheduler.
    pub scheduler: crate::cluster::Scheduler,
    /// The array job's id.
    pub array_id: String,
    /// Its state.
    pub array_state: String,
    /// The finishing job's id.
    pub finish_id: String,
    /// Its state.
    pub finish_state: String,
}

/// The progress of the job of the output array `output`.
pub fn status(output: &Path) -> Result<JobStatus, OpsError> {
    let job = load_job(output)?;
    let ledger = job.ledger("status")?;
    let total = job.grid.len();
    let blocks = ledger
        .summary(total)
        .map_err(|e| OpsError::Io(e.to_string()))?;
    let blocks_per_sec = blocks
        .done_span
        .filter(|(a, b)| b > a && blocks.done > 1)
        .map(|(a, b)| (blocks.done - 1) as f64 / (b - a));
    let left = total - blocks.done - blocks.gave_up.len() as u64;
    let eta_secs = blocks_per_sec.map(|r| left as f64 / r);
    let gave_up = blocks
        .gave_up
        .iter()
        .map(|(k, a, e)| (*k, RoiNm::from(&job.grid.written(*k)), *a, e.clone()))
        .collect();
    let cluster = match cluster_record(output)? {
        Some(r) => {
            let [array, finish] = r.submitted.jobs();
            let state = |j: &crate::cluster::SubmittedJob| {
                crate::cluster::status(j)
                    .map(|s| s.label())
                    .unwrap_or_else(|e| format!("unknown ({e})"))
            };
            Some(ClusterStatus {
                scheduler: r.submitted.scheduler,
                array_state: state(&array),
                finish_state: state(&finish),
                array_id: array.job_id,
                finish_id: finish.job_id,
            })
        }
        None => None,
    };
    let stages = if job.kind == blockwise::JobKind::Segment {
        job.stages()
            .iter()
            .map(|stage| {
                let done = job
                    .stage_ledger(stage.ledger, "status")
                    .and_then(|l| l.done_count().map_err(|e| TrainError::Data(e.to_string())))?;
                Ok(StageStatus {
                    name: stage.name.to_string(),
                    done,
                    total: stage.blocks,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?
    } else {
        Vec::new()
    };
    Ok(JobStatus {
        stages,
        cluster,
        output: job.output(),
        roi_nm: RoiNm::from(&job.grid.roi),
        block_nm: job.grid.block_nm.to_vec(),
        complete: blocks.done == total,
        blocks,
        gave_up,
        blocks_per_sec,
        eta_secs,
    })
}

/// The program that runs workers: this executable, or `SEGNO_EXE` when set (a test
/// harness whose own executable is not `segno`).
pub fn segno_program() -> Result<PathBuf, OpsError> {
    if let Some(p) = std::env::var_os("SEGNO_EXE") {
        return Ok(PathBuf::from(p));
    }
    std::env::current_exe()
        .map_err(|e| OpsError::Io(format!("cannot find the segno executable: {e}")))
}

/// The command line of one worker of the job of `output`.
pub fn worker_args(
    output: &Path,
    worker: &str,
    start_fraction: f64,
    device: Option<&str>,
    threads: Option<usize>,
    sweep: bool,
) -> Vec<String> {
    let mut a = vec![
        "job".to_string(),
        "work".to_string(),
        output.display().to_string(),
        "--worker".to_string(),
        worker.to_string(),
        "--start".to_string(),
        format!("{start_fraction}"),
    ];
    if let Some(d) = device {
        a.extend(["--device".to_string(), d.to_string()]);
    }
    if let Some(t) = threads {
        a.extend(["--threads".to_string(), t.to_string()]);
    }
    if sweep {
        a.push("--sweep".to_string());
    }
    a
}

/// Runs `workers` worker processes of the job of `output` on this machine (one per CUDA
/// device when `device` is a GPU, the CPU threads divided otherwise, or
/// `threads_per_worker` each), calling `progress(done, total)` as the ledger fills, until
/// they all exit. Returns the workers that failed, with the end of what they printed.
pub fn run_local_workers(
    output: &Path,
    workers: usize,
    device: tch::Device,
    threads_per_worker: Option<usize>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<(String, String)>, OpsError> {
    let job = load_job(output)?;
    // A segmentation's progress counts the blocks of all its stages.
    let stages = job.stages();
    let total: u64 = stages.iter().map(|s| s.blocks).sum();
    let program = segno_program()?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut placement =
        crate::device::worker_placement(device, workers, crate::device::cuda_device_count(), cpus);
    if let Some(t) = threads_per_worker {
        for p in &mut placement {
            p.1 = t.max(1);
        }
    }
    let logs = job.logs_dir();
    std::fs::create_dir_all(&logs).map_err(|e| OpsError::Io(format!("{}: {e}", logs.display())))?;
    let mut children: Vec<(String, Child, PathBuf)> = Vec::new();
    for (i, (dev, threads)) in placement.iter().enumerate() {
        let name = format!(
            "{}-{}-{}",
            crate::blockwise::ledger::host_name_part(),
            std::process::id(),
            i + 1
        );
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|e| OpsError::Io(format!("{}: {e}", log.display())))?;
        let args = worker_args(
            output,
            &name,
            i as f64 / placement.len() as f64,
            Some(dev),
            Some(*threads),
            false,
        );
        let child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .map_err(|e| OpsError::Io(format!("cannot start {}: {e}", program.display())))?;
        children.push((name, child, log));
    }
    let ledgers = stages
        .iter()
        .map(|stage| job.stage_ledger(stage.ledger, "status"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut failed = Vec::new();
    let mut last = usize::MAX;
    while !children.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut done = 0usize;
        for ledger in &ledgers {
            done += ledger
                .done_count()
                .map_err(|e| OpsError::Io(e.to_string()))? as usize;
        }
        if done != last {
            progress(done, total as usize);
            last = done;
        }
        let mut still = Vec::new();
        for (name, mut child, log) in children {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    failed.push((name, format!("{status}: {}", tail.join(" | "))));
                }
                Ok(None) => still.push((name, child, log)),
                Err(e) => failed.push((name, e.to_string())),
            }
        }
        children = still;
    }
    Ok(failed)
}

/// A block job sent to a cluster: its workers as one job array, then a finishing job.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLaunch {
    /// Scheduler, resources and array width.
    pub request: crate::cluster::ArrayRequest,
    /// What the finishing job runs once every array task has ended: the same command
    /// without the cluster options, which finishes whatever the workers left (and, for
    /// `apply`, post-processes).
    pub finish: Vec<String>,
}

/// A block job's submission, recorded in the job's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The array and the finishing job.
    pub submitted: crate::cluster::SubmittedArray,
    /// The finishing job's command.
    pub finish: Vec<String>,
    /// Where the tasks log.
    pub log_dir: PathBuf,
}

/// What [`submit_workers`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmittedReport {
    /// The job's output array.
    pub output: PathBuf,
    /// `slurm` or `lsf`.
    pub scheduler: crate::cluster::Scheduler,
    /// The array job's id.
    pub array_id: String,
    /// The finishing job's id.
    pub finish_id: String,
    /// Array tasks.
    pub tasks: u32,
    /// Blocks in the job.
    pub blocks: u64,
    /// Blocks already done.
    pub done: u64,
    /// Where the tasks log.
    pub log_dir: PathBuf,
}

/// The cluster submission recorded for the job of `output`, if any.
pub fn cluster_record(output: &Path) -> Result<Option<ClusterRecord>, OpsError> {
    let job = load_job(output)?;
    let path = job.submission_record();
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OpsError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OpsError::Io(format!("{}: {e}", path.display()))),
    }
}

/// Submits the workers of the prepared job of `output` as a job array (one `segno job
/// work` per task, each using the task's CPUs), then the finishing job after them, and
/// records both in the job's directory. A scheduler that is not installed is refused
/// before anything is submitted.
pub fn submit_workers(output: &Path, launch: &ClusterLaunch) -> Result<SubmittedReport, OpsError> {
    let job = load_job(output)?;
    let scheduler = launch.request.request.scheduler;
    if !crate::cluster::available(scheduler) {
        return Err(OpsError::Usage(format!(
            "{} is not available here: `{}` is not on PATH",
            scheduler.label(),
            scheduler.submit_command()
        )));
    }
    let program = segno_program()?;
    let mut fixed = vec![
        program.display().to_string(),
        "job".to_string(),
        "work".to_string(),
        absolute(output).display().to_string(),
        "--threads".to_string(),
        launch.request.request.cpus.max(1).to_string(),
    ];
    if launch.request.request.gpus > 0 {
        fixed.extend(["--device".to_string(), "cuda".to_string()]);
    }
    let line = crate::cluster::array_worker_line(scheduler, &fixed, launch.request.tasks);
    let log_dir = job.logs_dir();
    let name = format!(
        "segno-{}",
        job.dataset
            .rsplit('/')
            .next()
            .unwrap_or("job")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            })
            .collect::<String>()
    );
    let submitted =
        crate::cluster::submit_array(&launch.request, &name, &log_dir, &line, &launch.finish)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
    let record = ClusterRecord {
        submitted: submitted.clone(),
        finish: launch.finish.clone(),
        log_dir: log_dir.clone(),
    };
    let path = job.submission_record();
    let text = serde_json::to_vec_pretty(&record).map_err(|e| OpsError::Io(e.to_string()))?;
    crate::store::atomic::write_atomic(&path, &text, true)
        .map_err(|e| OpsError::Io(format!("{}: {e}", path.display())))?;
    let done = job
        .ledger("status")?
        .done_count()
        .map_err(|e| OpsError::Io(e.to_string()))?;
    Ok(SubmittedReport {
        output: job.output(),
        scheduler,
        array_id: submitted.array_id,
        finish_id: submitted.sweep_id,
        tasks: launch.request.tasks,
        blocks: job.grid.len(),
        done,
        log_dir,
    })
}

/// Cancels the cluster jobs of the job of `output` (its array and finishing job); the
/// ledger keeps every finished block, so the same command run again continues.
pub fn cancel(output: &Path) -> Result<ClusterRecord, OpsError> {
    let record = cluster_record(output)?.ok_or_else(|| {
        OpsError::Invalid(format!(
            "{}: the job was not submitted to a cluster (local workers stop with Ctrl-C)",
            output.display()
        ))
    })?;
    for job in record.submitted.jobs() {
        crate::cluster::cancel(&job).map_err(|e| OpsError::Invalid(e.to_string()))?;
    }
    Ok(record)
}

/// What [`resume`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resumed {
    /// The job's workers were submitted to its cluster again.
    Submitted(SubmittedReport),
    /// This process worked on the job until every block was done or given up.
    Worked(WorkReport),
}

/// Continues the job of `output`: blocks that failed get another round of attempts; a job
/// that was submitted to a cluster is submitted again with the same resources (refused
/// while its jobs are still queued or running), any other job is finished by this process.
pub fn resume(output: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<Resumed, OpsError> {
    let job = load_job(output)?;
    job.ledger("launcher")?
        .grant_retries(job.grid.len())
        .map_err(|e| OpsError::Io(e.to_string()))?;
    match cluster_record(output)? {
        Some(record) => {
            let active: Vec<String> = record
                .submitted
                .jobs()
                .iter()
                .filter(|j| crate::cluster::status(j).is_ok_and(|s| s.active()))
                .map(|j| j.job_id.clone())
                .collect();
            if !active.is_empty() {
                return Err(OpsError::Invalid(format!(
                    "{}: its {} jobs {} are still queued or running; wait for them or cancel them (segno job cancel) first",
                    output.display(),
                    record.submitted.scheduler.label(),
                    active.join(", ")
                )));
            }
            submit_workers(
                output,
                &ClusterLaunch {
                    request: record.submitted.request,
                    finish: record.finish,
                },
            )
            .map(Resumed::Submitted)
        }
        None => work(
            &WorkerOptions {
                output: output.to_path_buf(),
                work: WorkOptions::sweeping(),
                device: None,
                threads: None,
            },
            progress,
        )
        .map(Resumed::Worked),
    }
}
