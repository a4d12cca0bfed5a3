//! Training runs as cluster jobs: submission to Slurm (`sbatch`) or LSF (`bsub`) with
//! queue/partition, GPUs, CPUs and account, the job's state from the scheduler, and
//! cancelling. The submitted job runs `segno train` exactly as a local start does; the
//! job is recorded in `<run>/cluster.json` so that any later session finds it again.

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
    let mut a: Vec<String> = Vec::new();
    match request.scheduler {
        Scheduler::Slurm => {
            a.extend(["--parsable".into(), "-J".into(), name]);
            if !request.queue.trim().is_empty() {
                a.extend(["-p".into(), request.queue.trim().into()]);
            }
            a.extend(["-c".into(), request.cpus.to_string()]);
            if request.gpus > 0 {
                a.push(format!("--gres=gpu:{}", request.gpus));
            }
            if !request.account.trim().is_empty() {
                a.extend(["-A".into(), request.account.trim().into()]);
            }
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
            if !request.queue.trim().is_empty() {
                a.extend(["-q".into(), request.queue.trim().into()]);
            }
            a.extend(["-n".into(), request.cpus.to_string()]);
            if request.gpus > 0 {
                a.extend(["-gpu".into(), format!("num={}", request.gpus)]);
            }
            if !request.account.trim().is_empty() {
                a.extend(["-P".into(), request.account.trim().into()]);
            }
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
