//! `segno bench blockwise`: how block jobs scale and what their ledger costs. The same
//! prediction job on synthetic data, run by one worker process and by two (one CPU
//! thread each, so the second worker doubles the compute), the ledger's time per block
//! as a fraction of the block's, and, where Slurm is installed, a job array of four
//! workers against one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::apply::{PredictJob, PredictOptions};
use super::OpsError;
use crate::blockwise::Checkpoint;
use crate::store::Project;

/// Options of [`bench_blockwise`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockwiseBenchOptions {
    /// Where the synthetic project goes (kept for inspection).
    pub dir: PathBuf,
    /// Edge of the synthetic raw volume, in voxels.
    pub size: usize,
    /// Also time a Slurm job array of 4 workers against 1 (skipped when Slurm is not
    /// installed).
    pub slurm: bool,
    /// Slurm partition (default: the scheduler's).
    pub partition: Option<String>,
}

/// One timed configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timed {
    /// Workers.
    pub workers: usize,
    /// Wall time of the job, in seconds.
    pub secs: f64,
    /// Blocks per second.
    pub blocks_per_sec: f64,
}

/// What [`bench_blockwise`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockwiseBenchReport {
    /// The synthetic project.
    pub dir: PathBuf,
    /// Blocks in the job.
    pub blocks: u64,
    /// Output voxels per block.
    pub block_voxels: u64,
    /// One worker process, one thread.
    pub one_worker: Timed,
    /// Two worker processes, one thread each.
    pub two_workers: Timed,
    /// Speed-up of two workers over one, divided by two (1 = perfect scaling).
    pub scaling_efficiency: f64,
    /// Seconds spent on the ledger by one in-process worker, over the job.
    pub ledger_secs: f64,
    /// Seconds its blocks took (claim to written), summed.
    pub block_secs: f64,
    /// `ledger_secs / block_secs` (goal: at most 0.02).
    pub ledger_fraction: f64,
    /// A Slurm array of one task and of four, when measured.
    pub slurm: Option<SlurmScaling>,
    /// CPU threads of this machine.
    pub cpus: usize,
}

/// A Slurm job array of 1 and of 4 workers on the same job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlurmScaling {
    /// One array task, from submission until its finishing job ended.
    pub one_task: Timed,
    /// Four array tasks, likewise.
    pub four_tasks: Timed,
    /// `one_task.secs / four_tasks.secs`.
    pub speedup: f64,
}

fn timed(workers: usize, secs: f64, blocks: u64) -> Timed {
    Timed {
        workers,
        secs,
        blocks_per_sec: if secs > 0.0 {
            blocks as f64 / secs
        } else {
            0.0
        },
    }
}

/// Runs the benchmark in `options.dir` (replacing what an earlier run left there).
pub fn bench_blockwise(options: &BlockwiseBenchOptions) -> Result<BlockwiseBenchReport, OpsError> {
    let dir = &options.dir;
    let io = |e: std::io::Error| OpsError::Io(format!("{}: {e}", dir.display()));
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    crate::demo::generate(
        dir,
        &crate::demo::DemoOptions {
            seed: 1,
            size: options.size,
            overwrite: false,
        },
    )?;
    let project = Project::open(dir)?;
    let run = crate::demo::project::demo_run(1, 1);
    project
        .configs()
        .store(&crate::config::AnyConfig::Run(Box::new(run.clone())))?;
    super::train::train_stored_run(
        &project,
        super::train::TrainRunOptions {
            run: run.name.clone(),
            seed: Some(1),
            device: "cpu".into(),
            loader_threads: Some(1),
            validate: false,
            keep_validation: super::train::KeepValidation::All,
            stop_after: Some(1),
            stop: None,
            on_start: None,
            on_iteration: None,
        },
    )?;
    let output = dir.join("bench.zarr");
    let prepare = |dataset: &str| -> Result<(PathBuf, u64), OpsError> {
        let report = super::apply::predict(
            &project,
            &PredictOptions {
                run: run.name.clone(),
                checkpoint: Checkpoint::Latest,
                dataset: Some(dataset.to_string()),
                data_type: Default::default(),
                job: PredictJob {
                    input: dir.join("data/synthetic.zarr/raw"),
                    output: output.clone(),
                    roi: None,
                    device: "cpu".into(),
                    // The evaluation block: many blocks.
                    max_block_input_voxels: Some(1.0),
                    input_options: Default::default(),
                    overwrite: true,
                    workers: 1,
                    cluster: None,
                    prepare_only: true,
                    format: Default::default(),
                    precision: Default::default(),
                },
            },
            &mut |_, _| {},
        )?;
        Ok((report.output, report.blocks as u64))
    };
    let local = |dataset: &str, workers: usize| -> Result<(Timed, u64), OpsError> {
        let (path, blocks) = prepare(dataset)?;
        let started = Instant::now();
        let failed = super::job::run_local_workers(
            &path,
            workers,
            tch::Device::Cpu,
            Some(1),
            &mut |_, _| {},
        )?;
        let secs = started.elapsed().as_secs_f64();
        if let Some((w, why)) = failed.first() {
            return Err(OpsError::Invalid(format!("worker {w} failed: {why}")));
        }
        let status = super::job::status(&path)?;
        if !status.complete {
            return Err(OpsError::Invalid(format!(
                "{}: {} of {blocks} blocks done after the workers ended",
                path.display(),
                status.blocks.done
            )));
        }
        Ok((timed(workers, secs, blocks), blocks))
    };
    let (one_worker, blocks) = local("one", 1)?;
    let (two_workers, _) = local("two", 2)?;
    // The ledger's share, measured inside one worker of one thread.
    let (ledger_job, _) = prepare("ledger")?;
    let work = super::job::work(
        &super::job::WorkerOptions {
            output: ledger_job.clone(),
            work: crate::blockwise::WorkOptions::sweeping(),
            device: Some("cpu".into()),
            threads: Some(1),
        },
        &mut |_, _| {},
    )?;
    let job = super::job::load_job(&ledger_job)?;
    let block_voxels = (job.grid.block_nm
        / crate::array::open(&ledger_job)?.info().geometry.voxel_size)
        .iter()
        .map(|v| v as u64)
        .product();
    let slurm = if options.slurm && crate::cluster::available(crate::cluster::Scheduler::Slurm) {
        let array = |dataset: &str, tasks: u32| -> Result<Timed, OpsError> {
            let (path, blocks) = prepare(dataset)?;
            let program = super::job::segno_program()?;
            let finish = vec![
                program.display().to_string(),
                "job".to_string(),
                "work".to_string(),
                super::job::absolute(&path).display().to_string(),
                "--sweep".to_string(),
                "--threads".to_string(),
                "1".to_string(),
            ];
            let started = Instant::now();
            let submitted = super::job::submit_workers(
                &path,
                &super::job::ClusterLaunch {
                    request: crate::cluster::ArrayRequest {
                        request: crate::cluster::JobRequest {
                            scheduler: crate::cluster::Scheduler::Slurm,
                            queue: options.partition.clone().unwrap_or_default(),
                            gpus: 0,
                            cpus: 1,
                            account: String::new(),
                        },
                        tasks,
                        time_limit_mins: None,
                    },
                    finish,
                },
            )?;
            let jobs = [submitted.array_id.clone(), submitted.finish_id.clone()];
            loop {
                let states: Vec<crate::cluster::JobState> = jobs
                    .iter()
                    .map(|id| {
                        crate::cluster::status(&crate::cluster::SubmittedJob {
                            scheduler: crate::cluster::Scheduler::Slurm,
                            job_id: id.clone(),
                            request: crate::cluster::JobRequest::default(),
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| OpsError::Invalid(e.to_string()))?;
                if !states.iter().any(|s| s.active()) {
                    break;
                }
                if started.elapsed() > Duration::from_secs(3600) {
                    return Err(OpsError::Invalid(format!(
                        "Slurm jobs {} still running after an hour",
                        jobs.join(", ")
                    )));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let secs = started.elapsed().as_secs_f64();
            if !super::job::status(&path)?.complete {
                return Err(OpsError::Invalid(format!(
                    "{}: the Slurm jobs ended before the job was complete (logs in {})",
                    path.display(),
                    submitted.log_dir.display()
                )));
            }
            Ok(timed(tasks as usize, secs, blocks))
        };
        let one_task = array("slurm1", 1)?;
        let four_tasks = array("slurm4", 4)?;
        Some(SlurmScaling {
            speedup: one_task.secs / four_tasks.secs.max(1e-9),
            one_task,
            four_tasks,
        })
    } else {
        None
    };
    Ok(BlockwiseBenchReport {
        dir: dir.clone(),
        blocks,
        block_voxels,
        scaling_efficiency: one_worker.secs / (2.0 * two_workers.secs.max(1e-9)),
        one_worker,
        two_workers,
        ledger_fraction: work.ledger_fraction(),
        ledger_secs: work.ledger_secs,
        block_secs: work.block_secs,
        slurm,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    })
}
