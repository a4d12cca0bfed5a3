//! Cluster jobs through the scheduler users already have: submission to Slurm (`sbatch`)
//! or LSF (`bsub`) with queue/partition, GPUs, CPUs, account and time limit, the job's
//! state from the scheduler, and cancelling. A training run is one job running `segno
//! train` exactly as a local start does, recorded in `<run>/cluster.json`; a block job is
//! a job array of workers (`segno job work`) plus a sweep job that runs after them.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::store::layout::RunDir;

/// A batch scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Slurm: `sbatch`, `squeue`/`scontrol`, `scancel`.
    Slurm,
    /// IBM LSF: `bsub`, `bjobs`, `bkill`.
    Lsf,
}

impl Scheduler {
    /// The scheduler's name as shown.
    pub fn label(self) -> &'static str {
        match self {
            Scheduler::Slurm => "Slurm",
            Scheduler::Lsf => "LSF",
        }
    }

    /// The command that submits jobs.
    pub fn submit_command(self) -> &'static str {
        match self {
            Scheduler::Slurm => "sbatch",
            Scheduler::Lsf => "bsub",
        }
    }
}

/// The resources a training job asks for (DaCapo's Bsub compute-context fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Which scheduler to submit to.
    pub scheduler: Scheduler,
    /// Slurm partition or LSF queue; empty for the scheduler's default.
    pub queue: String,
    /// GPUs per job (0 for none).
    pub gpus: u32,
    /// CPUs per job.
    pub cpus: u32,
    /// Account / project to bill; empty for none.
    pub account: String,
}

impl Default for JobRequest {
    fn default() -> Self {
        Self {
            scheduler: Scheduler::Slurm,
            queue: String::new(),
            gpus: 0,
            cpus: 2,
            account: String::new(),
        }
    }
}

impl JobRequest {
    /// An LSF request with the settings of DaCapo's `Bsub` compute context (queue, GPUs,
    /// CPUs, billing project).
    pub fn from_bsub(bsub: &crate::config::BsubConfig) -> Self {
        Self {
            scheduler: Scheduler::Lsf,
            queue: bsub.queue.clone(),
            gpus: bsub.num_gpus,
            cpus: bsub.num_cpus,
            account: bsub.billing.clone().unwrap_or_default(),
        }
    }

    /// The request a new submission to `scheduler` starts from: for LSF the options
    /// file's `Bsub` compute context when there is one, else [`JobRequest::default`].
    pub fn default_for(scheduler: Scheduler) -> Result<Self, crate::store::StoreError> {
        let options = crate::store::read_options(&crate::store::options_file_candidates())?;
        if scheduler == Scheduler::Lsf {
            if let Some((_, o)) = &options {
                if let crate::config::ComputeContextConfig::Bsub(b) = &o.compute_context {
                    return Ok(Self::from_bsub(b));
                }
            }
        }
        Ok(Self {
            scheduler,
            ..Self::default()
        })
    }
}

/// A submitted job, as recorded in `<run>/cluster.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedJob {
    /// The scheduler it went to.
    pub scheduler: Scheduler,
    /// The scheduler's job id.
    pub job_id: String,
    /// What was asked for.
    pub request: JobRequest,
}

/// A job's state as its scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting in the queue.
    Pending,
    /// Running.
    Running,
    /// Ended by itself (the run's own status says whether training finished or failed).
    Completed,
    /// Ended with an error exit code.
    Failed(String),
    /// Cancelled.
    Cancelled,
    /// The scheduler no longer knows the job.
    Gone,
    /// Any other state, as the scheduler names it.
    Other(String),
}

impl JobState {
    /// Whether the job is still queued or running.
    pub fn active(&self) -> bool {
        matches!(self, JobState::Pending | JobState::Running)
    }

    /// A short description.
    pub fn label(&self) -> String {
        match self {
            JobState::Pending => "queued".into(),
            JobState::Running => "running".into(),
            JobState::Completed => "completed".into(),
            JobState::Failed(why) => format!("failed ({why})"),
            JobState::Cancelled => "cancelled".into(),
            JobState::Gone => "no longer known to the scheduler".into(),
            JobState::Other(s) => s.to_lowercase(),
        }
    }
}

/// What can go wrong talking to a scheduler.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The scheduler's command is not installed or cannot be run.
    #[error("cannot run `{command}`: {message} (is {scheduler} installed and on PATH?)")]
    Unavailable {
        /// The command.
        command: String,
        /// The scheduler.
        scheduler: &'static str,
        /// The OS error.
        message: String,
    },
    /// The scheduler refused a command.
    #[error("`{command}` failed: {message}")]
    Refused {
        /// The command line.
        command: String,
        /// What it printed on stderr (or stdout).
        message: String,
    },
    /// The scheduler's answer could not be understood.
    #[error("cannot read the job id from `{command}`'s output {output:?}")]
    Unreadable {
        /// The command.
        command: String,
        /// Its output.
        output: String,
    },
    /// The request is not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the job record failed.
    #[error("{path}: {message}")]
    Record {
        /// The record file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// The job recorded for the run in `run_dir`, if any (an unreadable record is an error).
pub fn recorded_job(run_dir: &Path) -> Result<Option<SubmittedJob>, ClusterError> {
    let path = RunDir::from_dir(run_dir).cluster_record();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClusterError::Record {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ClusterError::Record {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The scheduler arguments that submit `train` (the program and its arguments) for the
/// run named `run`, logging to `log`.
pub fn submit_args(request: &JobRequest, run: &str, log: &Path, train: &[String]) -> Vec<String> {
    let name = format!("segno-train-{run}");
    let log = log.display().to_string();
    let resources = ArrayRequest {
        request: request.clone(),
        tasks: 1,
        time_limit_mins: None,
    };
    let mut a: Vec<String> = Vec::new();
    match request.scheduler {
        Scheduler::Slurm => {
            a.extend(["--parsable".into(), "-J".into(), name]);
            resource_args(&resources, &mut a);
            a.extend([
                "-o".into(),
                log,
                "--open-mode=append".into(),
                "--wrap".into(),
                shell_words(train),
            ]);
        }
        Scheduler::Lsf => {
            a.extend(["-J".into(), name]);
            resource_args(&resources, &mut a);
            a.extend(["-o".into(), log.clone(), "-e".into(), log]);
            a.extend(train.iter().cloned());
        }
    }
    a
}

/// Quotes `args` for a POSIX shell (what `sbatch --wrap` runs).
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn call(scheduler: Scheduler, program: &str, args: &[String]) -> Result<String, ClusterError> {
    let line = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ClusterError::Unavailable {
            command: program.to_string(),
            scheduler: scheduler.label(),
            message: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(ClusterError::Refused {
            command: line,
            message: if stderr.is_empty() { stdout } else { stderr },
        });
    }
    Ok(stdout)
}

/// Reads the job id from `sbatch --parsable` ("123" or "123;cluster") or `bsub`
/// ("Job <123> is submitted to queue <normal>.").
pub fn parse_job_id(scheduler: Scheduler, output: &str) -> Option<String> {
    let id = match scheduler {
        Scheduler::Slurm => output.lines().last()?.split(';').next()?.trim().to_string(),
        Scheduler::Lsf => {
            let start = output.find("Job <")? + 5;
            let end = output[start..].find('>')? + start;
            output[start..end].to_string()
        }
    };
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then_some(id)
}

/// Submits `segno train` of `run` in `project` as a job (logging to `<run>/train.log`)
/// and records it in `<run>/cluster.json`. `train_args` are further `segno train`
/// options (`--device cuda`, `--keep-validation best`, …).
pub fn submit(
    request: &JobRequest,
    project: &Path,
    run: &str,
    segno_exe: &Path,
    train_args: &[String],
) -> Result<SubmittedJob, ClusterError> {
    if request.cpus == 0 {
        return Err(ClusterError::Invalid {
            field: "cpus",
            message: "must be at least 1".into(),
        });
    }
    let run_dir = project.join(run);
    let record = |e: std::io::Error, p: &Path| ClusterError::Record {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&run_dir).map_err(|e| record(e, &run_dir))?;
    let project = std::path::absolute(project).map_err(|e| record(e, project))?;
    let mut train = vec![
        segno_exe.display().to_string(),
        "train".into(),
        "-r".into(),
        run.to_string(),
    ];
    train.extend(train_args.iter().cloned());
    train.extend(["-p".to_string(), project.display().to_string()]);
    let log = RunDir::new(&project, run).train_log();
    let args = submit_args(request, run, &log, &train);
    let program = request.scheduler.submit_command();
    let output = call(request.scheduler, program, &args)?;
    let job_id =
        parse_job_id(request.scheduler, &output).ok_or_else(|| ClusterError::Unreadable {
            command: program.to_string(),
            output: output.clone(),
        })?;
    let job = SubmittedJob {
        scheduler: request.scheduler,
        job_id,
        request: request.clone(),
    };
    let path = RunDir::from_dir(&run_dir).cluster_record();
    let text = serde_json::to_string_pretty(&job).map_err(|e| ClusterError::Record {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    crate::store::atomic::write_atomic(&path, text.as_bytes(), true).map_err(|e| {
        ClusterError::Record {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })?;
    Ok(job)
}

/// A block job's workers as one job array: `tasks` array tasks, each with the resources of
/// `request`, each running one worker; then a sweep job after all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrayRequest {
    /// Scheduler, queue, GPUs and CPUs per task, account.
    pub request: JobRequest,
    /// Array tasks (workers).
    pub tasks: u32,
    /// Wall-time limit per task in minutes (none: the queue's default).
    pub time_limit_mins: Option<u32>,
}

/// A submitted worker array and the sweep job that runs after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedArray {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The array job's id.
    pub array_id: String,
    /// The sweep job's id.
    pub sweep_id: String,
    /// What was asked for.
    pub request: ArrayRequest,
}

/// The worker command of array task `$task` of `tasks` as a shell line: `fixed` (quoted),
/// then the scheduler's variables for the worker's name and its place in the job.
pub fn array_worker_line(scheduler: Scheduler, fixed: &[String], tasks: u32) -> String {
    let (job, task) = match scheduler {
        Scheduler::Slurm => ("${SLURM_ARRAY_JOB_ID}", "${SLURM_ARRAY_TASK_ID}"),
        Scheduler::Lsf => ("${LSB_JOBID}", "${LSB_JOBINDEX}"),
    };
    let prefix = match scheduler {
        Scheduler::Slurm => "slurm",
        Scheduler::Lsf => "lsf",
    };
    format!(
        "{} --worker {prefix}-{job}-{task} --task {task}/{tasks}",
        shell_words(fixed)
    )
}

fn resource_args(request: &ArrayRequest, a: &mut Vec<String>) {
    let r = &request.request;
    match r.scheduler {
        Scheduler::Slurm => {
            if !r.queue.trim().is_empty() {
                a.extend(["-p".into(), r.queue.trim().into()]);
            }
            a.extend(["-c".into(), r.cpus.to_string()]);
            if r.gpus > 0 {
                a.push(format!("--gres=gpu:{}", r.gpus));
            }
            if !r.account.trim().is_empty() {
                a.extend(["-A".into(), r.account.trim().into()]);
            }
            if let Some(t) = request.time_limit_mins {
                a.extend(["-t".into(), t.to_string()]);
            }
        }
        Scheduler::Lsf => {
            if !r.queue.trim().is_empty() {
                a.extend(["-q".into(), r.queue.trim().into()]);
            }
            a.extend(["-n".into(), r.cpus.to_string()]);
            if r.gpus > 0 {
                a.extend(["-gpu".into(), format!("num={}", r.gpus)]);
            }
            if !r.account.trim().is_empty() {
                a.extend(["-P".into(), r.account.trim().into()]);
            }
            if let Some(t) = request.time_limit_mins {
                a.extend(["-W".into(), t.to_string()]);
            }
        }
    }
}

/// The scheduler arguments that submit the worker array named `name`, running
/// `worker_line` (see [`array_worker_line`]) per task, logging into `log_dir`.
pub fn array_args(
    request: &ArrayRequest,
    name: &str,
    log_dir: &Path,
    worker_line: &str,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    match request.request.scheduler {
        Scheduler::Slurm => {
            a.extend([
                "--parsable".into(),
                "-J".into(),
                name.to_string(),
                format!("--array=1-{}", request.tasks),
            ]);
            resource_args(request, &mut a);
            a.extend([
                "-o".into(),
                log_dir.join("slurm-%A_%a.log").display().to_string(),
                "--wrap".into(),
                worker_line.to_string(),
            ]);
        }
        Scheduler::Lsf => {
            a.extend(["-J".into(), format!("{name}[1-{}]", request.tasks)]);
            resource_args(request, &mut a);
            let log = log_dir.join("lsf-%J_%I.log").display().to_string();
            a.extend([
                "-o".into(),
                log.clone(),
                "-e".into(),
                log,
                worker_line.to_string(),
            ]);
        }
    }
    a
}

/// The scheduler arguments that submit the sweep job of the array `array_id`: `sweep`
/// runs once every task of the array has ended, however it ended.
pub fn sweep_args(
    request: &ArrayRequest,
    name: &str,
    log_dir: &Path,
    array_id: &str,
    sweep: &[String],
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let single = ArrayRequest {
        tasks: 1,
        ..request.clone()
    };
    match request.request.scheduler {
        Scheduler::Slurm => {
            a.extend([
                "--parsable".into(),
                "-J".into(),
                format!("{name}-sweep"),
                format!("--dependency=afterany:{array_id}"),
            ]);
            resource_args(&single, &mut a);
            a.extend([
                "-o".into(),
                log_dir.join("slurm-%j-sweep.log").display().to_string(),
                "--wrap".into(),
                shell_words(sweep),
            ]);
        }
        Scheduler::Lsf => {
            a.extend([
                "-J".into(),
                format!("{name}-sweep"),
                "-w".into(),
                format!("ended({array_id})"),
            ]);
            resource_args(&single, &mut a);
            let log = log_dir.join("lsf-%J-sweep.log").display().to_string();
            a.extend([
                "-o".into(),
                log.clone(),
                "-e".into(),
                log,
                shell_words(sweep),
            ]);
        }
    }
    a
}

/// Submits a block job's worker array and its sweep job (see [`array_args`],
/// [`sweep_args`]). If the sweep cannot be submitted the array is cancelled again.
pub fn submit_array(
    request: &ArrayRequest,
    name: &str,
    log_dir: &Path,
    worker_line: &str,
    sweep: &[String],
) -> Result<SubmittedArray, ClusterError> {
    let r = &request.request;
    if r.cpus == 0 {
        return Err(ClusterError::Invalid {
            field: "cpus",
            message: "must be at least 1".into(),
        });
    }
    if request.tasks == 0 {
        return Err(ClusterError::Invalid {
            field: "tasks",
            message: "an array needs at least 1 task".into(),
        });
    }
    std::fs::create_dir_all(log_dir).map_err(|e| ClusterError::Record {
        path: log_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let program = r.scheduler.submit_command();
    let unreadable = |output: String| ClusterError::Unreadable {
        command: program.to_string(),
        output,
    };
    let output = call(
        r.scheduler,
        program,
        &array_args(request, name, log_dir, worker_line),
    )?;
    let array_id = parse_job_id(r.scheduler, &output).ok_or_else(|| unreadable(output.clone()))?;
    let sweep_id = call(
        r.scheduler,
        program,
        &sweep_args(request, name, log_dir, &array_id, sweep),
    )
    .and_then(|out| parse_job_id(r.scheduler, &out).ok_or_else(|| unreadable(out)));
    let sweep_id = match sweep_id {
        Ok(id) => id,
        Err(e) => {
            let _ = cancel(&SubmittedJob {
                scheduler: r.scheduler,
                job_id: array_id,
                request: r.clone(),
            });
            return Err(e);
        }
    };
    Ok(SubmittedArray {
        scheduler: r.scheduler,
        array_id,
        sweep_id,
        request: request.clone(),
    })
}

impl SubmittedArray {
    /// The array and the sweep as jobs [`status`] and [`cancel`] take.
    pub fn jobs(&self) -> [SubmittedJob; 2] {
        [&self.array_id, &self.sweep_id].map(|id| SubmittedJob {
            scheduler: self.scheduler,
            job_id: id.clone(),
            request: self.request.request.clone(),
        })
    }
}

/// Maps a Slurm job state name (`squeue %T`, `scontrol JobState=`) to a [`JobState`].
fn slurm_state(name: &str) -> JobState {
    match name.trim() {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "RESV_DEL_HOLD" | "REQUEUE_HOLD" => {
            JobState::Pending
        }
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SUSPENDED" => JobState::Running,
        "COMPLETED" => JobState::Completed,
        "CANCELLED" => JobState::Cancelled,
        "FAILED" | "TIMEOUT" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "DEADLINE" => {
            JobState::Failed(name.trim().to_lowercase())
        }
        "" => JobState::Gone,
        other => JobState::Other(other.to_string()),
    }
}

/// Maps an LSF job status (`bjobs -o stat`) to a [`JobState`].
fn lsf_state(name: &str) -> JobState {
    match name.trim() {
        "PEND" | "PSUSP" | "WAIT" => JobState::Pending,
        "RUN" | "USUSP" | "SSUSP" => JobState::Running,
        "DONE" => JobState::Completed,
        "EXIT" => JobState::Failed("exit".into()),
        "" => JobState::Gone,
        other => JobState::Other(other.to_string()),
    }
}

/// The job's state from its scheduler.
pub fn status(job: &SubmittedJob) -> Result<JobState, ClusterError> {
    match job.scheduler {
        Scheduler::Slurm => {
            let queued = call(
                job.scheduler,
                "squeue",
                &[
                    "-h".into(),
                    "-j".into(),
                    job.job_id.clone(),
                    "-o".into(),
                    "%T".into(),
                ],
            );
            match queued {
                Ok(s) if !s.trim().is_empty() => return Ok(slurm_state(&s)),
                // Finished jobs leave squeue (and make it fail with an invalid id).
                Ok(_) | Err(ClusterError::Refused { .. }) => {}
                Err(e) => return Err(e),
            }
            match call(
                job.scheduler,
                "scontrol",
                &["show".into(), "job".into(), "-o".into(), job.job_id.clone()],
            ) {
                Ok(line) => Ok(line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("JobState="))
                    .map_or(JobState::Gone, slurm_state)),
                Err(ClusterError::Refused { .. }) => Ok(JobState::Gone),
                Err(e) => Err(e),
            }
        }
        Scheduler::Lsf => {
            let out = call(
                job.scheduler,
                "bjobs",
                &[
                    "-noheader".into(),
                    "-o".into(),
                    "stat".into(),
                    job.job_id.clone(),
                ],
            );
            match out {
                Ok(s) => Ok(lsf_state(&s)),
                Err(ClusterError::Refused { .. }) => Ok(JobState::Gone),
                Err(e) => Err(e),
            }
        }
    }
}

/// Cancels the job.
pub fn cancel(job: &SubmittedJob) -> Result<(), ClusterError> {
    let program = match job.scheduler {
        Scheduler::Slurm => "scancel",
        Scheduler::Lsf => "bkill",
    };
    call(job.scheduler, program, std::slice::from_ref(&job.job_id)).map(|_| ())
}

/// Whether `scheduler`'s submit command can be found on PATH.
pub fn available(scheduler: Scheduler) -> bool {
    let cmd = scheduler.submit_command();
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(cmd).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scheduler: Scheduler) -> JobRequest {
        JobRequest {
            scheduler,
            queue: "gpu_a100".into(),
            gpus: 1,
            cpus: 4,
            account: "lab x".into(),
        }
    }

    #[test]
    fn slurm_and_lsf_arguments_carry_every_field() {
        let train: Vec<String> = ["/opt/segno", "train", "-r", "my run", "-p", "/p"]
            .map(String::from)
            .to_vec();
        let log = Path::new("/p/my run/train.log");
        let a = submit_args(&request(Scheduler::Slurm), "my run", log, &train);
        assert_eq!(
            a,
            [
                "--parsable",
                "-J",
                "segno-train-my run",
                "-p",
                "gpu_a100",
                "-c",
                "4",
                "--gres=gpu:1",
                "-A",
                "lab x",
                "-o",
                "/p/my run/train.log",
                "--open-mode=append",
                "--wrap",
                "/opt/segno train -r 'my run' -p /p",
            ]
        );
        let a = submit_args(&request(Scheduler::Lsf), "my run", log, &train);
        assert_eq!(
            a[..12],
            [
                "-J",
                "segno-train-my run",
                "-q",
                "gpu_a100",
                "-n",
                "4",
                "-gpu",
                "num=1",
                "-P",
                "lab x",
                "-o",
                "/p/my run/train.log",
            ]
        );
        assert_eq!(a[14..], train[..]);
        // No queue, GPUs or account: the scheduler's defaults.
        let plain = JobRequest::default();
        let a = submit_args(&plain, "r", log, &train);
        assert!(!a
            .iter()
            .any(|x| x == "-p" || x == "-A" || x.starts_with("--gres")));
    }

    #[test]
    fn worker_arrays_and_their_sweep_carry_every_field() {
        let req = ArrayRequest {
            request: request(Scheduler::Slurm),
            tasks: 4,
            time_limit_mins: Some(90),
        };
        let fixed: Vec<String> = ["/opt/segno", "job", "work", "/d/out.zarr/p q"]
            .map(String::from)
            .to_vec();
        let line = array_worker_line(Scheduler::Slurm, &fixed, 4);
        assert_eq!(
            line,
            "/opt/segno job work '/d/out.zarr/p q' --worker slurm-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID} --task ${SLURM_ARRAY_TASK_ID}/4"
        );
        let a = array_args(&req, "segno-predict", Path::new("/d/logs"), &line);
        assert_eq!(
            a,
            [
                "--parsable",
                "-J",
                "segno-predict",
                "--array=1-4",
                "-p",
                "gpu_a100",
                "-c",
                "4",
                "--gres=gpu:1",
                "-A",
                "lab x",
                "-t",
                "90",
                "-o",
                "/d/logs/slurm-%A_%a.log",
                "--wrap",
                line.as_str(),
            ]
        );
        let s = sweep_args(&req, "segno-predict", Path::new("/d/logs"), "77", &fixed);
        assert_eq!(
            s[..4],
            [
                "--parsable",
                "-J",
                "segno-predict-sweep",
                "--dependency=afterany:77"
            ]
        );
        assert_eq!(s.last().unwrap(), "/opt/segno job work '/d/out.zarr/p q'");
        let lsf = ArrayRequest {
            request: request(Scheduler::Lsf),
            ..req
        };
        let line = array_worker_line(Scheduler::Lsf, &fixed, 4);
        assert!(
            line.ends_with("--worker lsf-${LSB_JOBID}-${LSB_JOBINDEX} --task ${LSB_JOBINDEX}/4")
        );
        let a = array_args(&lsf, "segno-predict", Path::new("/d/logs"), &line);
        assert_eq!(a[..2], ["-J", "segno-predict[1-4]"]);
        assert!(a.windows(2).any(|w| w == ["-W", "90"]));
        assert_eq!(a.last().unwrap(), &line);
        let s = sweep_args(&lsf, "segno-predict", Path::new("/d/logs"), "77", &fixed);
        assert!(s.windows(2).any(|w| w == ["-w", "ended(77)"]));
    }

    #[test]
    fn job_ids_and_states_are_read_from_scheduler_output() {
        assert_eq!(
            parse_job_id(Scheduler::Slurm, "42\n").as_deref(),
            Some("42")
        );
        assert_eq!(
            parse_job_id(Scheduler::Slurm, "42;cluster").as_deref(),
            Some("42")
        );
        assert_eq!(
            parse_job_id(Scheduler::Lsf, "Job <1234> is submitted to queue <normal>.").as_deref(),
            Some("1234")
        );
        assert_eq!(parse_job_id(Scheduler::Slurm, "sbatch: error"), None);
        assert_eq!(slurm_state("PENDING"), JobState::Pending);
        assert_eq!(slurm_state("RUNNING\n"), JobState::Running);
        assert_eq!(slurm_state("TIMEOUT"), JobState::Failed("timeout".into()));
        assert_eq!(lsf_state("EXIT"), JobState::Failed("exit".into()));
        assert_eq!(lsf_state("DONE"), JobState::Completed);
        assert!(JobState::Pending.active() && !JobState::Cancelled.active());
    }

    #[test]
    fn a_missing_scheduler_is_a_clear_error() {
        let job = SubmittedJob {
            scheduler: Scheduler::Lsf,
            job_id: "1".into(),
            request: request(Scheduler::Lsf),
        };
        if available(Scheduler::Lsf) {
            return;
        }
        let e = cancel(&job).unwrap_err().to_string();
        assert!(e.contains("cannot run `bkill`"), "{e}");
        assert!(e.contains("is LSF installed and on PATH?"), "{e}");
    }
}
