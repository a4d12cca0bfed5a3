//! `segno job work|status`: one worker of a block job, and a job's progress.

use super::*;
use crate::blockwise::WorkOptions;
use crate::ops::job::WorkerOptions;

pub(super) fn work(args: &JobWorkArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let mut work = WorkOptions::sweeping();
    if let Some(w) = &args.worker {
        work.worker = w.clone();
    }
    work.start_fraction = match args.task {
        Some((i, n)) => f64::from(i - 1) / f64::from(n),
        None => args.start,
    };
    work.sweep = args.sweep;
    let report = crate::ops::job::work(
        &WorkerOptions {
            output: args.output.clone(),
            work,
            device: args.device.clone(),
            threads: args.threads,
        },
        &mut |_, _| {},
    )?;
    print(out, &report, args.json)
}

pub(super) fn status(output: &Path, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let report = crate::ops::job::status(output)?;
    print(out, &report, json)
}

pub(super) fn resume(output: &Path, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let report =
        super::predict::with_block_bar(json, |progress| crate::ops::job::resume(output, progress))?;
    print(out, &report, json)
}

pub(super) fn cancel(output: &Path, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let record = crate::ops::job::cancel(output)?;
    if json {
        let value = serde_json::to_value(&record)
            .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
        emit_json(out, &value)?;
    } else {
        emit(
            out,
            &format!(
                "cancelled {} jobs {} (workers) and {} (finishing); finished blocks stay recorded\n",
                record.submitted.scheduler.label(),
                record.submitted.array_id,
                record.submitted.sweep_id
            ),
        )?;
    }
    Ok(exit::OK)
}

impl ClusterArgs {
    /// The cluster launch these options ask for, finishing with `finish` (this command
    /// without them); `None` to run here.
    pub(super) fn launch(&self, finish: Vec<String>) -> Option<crate::ops::job::ClusterLaunch> {
        use crate::cluster::{ArrayRequest, JobRequest, Scheduler};
        let scheduler = if self.slurm {
            Scheduler::Slurm
        } else if self.lsf {
            Scheduler::Lsf
        } else {
            return None;
        };
        Some(crate::ops::job::ClusterLaunch {
            request: ArrayRequest {
                request: JobRequest {
                    scheduler,
                    queue: self.partition.clone().unwrap_or_default(),
                    gpus: self.gpus,
                    cpus: self.cpus,
                    account: self.account.clone().unwrap_or_default(),
                },
                tasks: self.array,
                time_limit_mins: self.time,
            },
            finish,
        })
    }
}

/// This process's command line without the options that send work to a cluster: what
/// the finishing job runs (with the program as an absolute path).
pub(super) fn finishing_command() -> Vec<String> {
    let mut args: Vec<String> = std::env::args().collect();
    if let Ok(exe) = crate::ops::job::segno_program() {
        if let Some(first) = args.first_mut() {
            *first = exe.display().to_string();
        }
    }
    finishing_args(args)
}

/// `args` without the options that send work to a cluster and without `--overwrite`: the
/// submitting command already replaced what was there, and the finishing job must continue
/// the job its array tasks worked on, not start it again.
fn finishing_args(args: Vec<String>) -> Vec<String> {
    let with_value = [
        "--array",
        "--partition",
        "--queue",
        "--gpus",
        "--cpus",
        "--time",
        "--account",
    ];
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--slurm" || a == "--lsf" || a == "--overwrite" {
            continue;
        }
        if with_value.contains(&a.as_str()) {
            skip = true;
            continue;
        }
        if with_value.iter().any(|o| a.starts_with(&format!("{o}="))) {
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::finishing_args;

    #[test]
    fn the_finishing_job_continues_without_cluster_options_or_overwrite() {
        let args: Vec<String> = [
            "/bin/segno",
            "apply",
            "--run",
            "r",
            "--overwrite",
            "--slurm",
            "--array",
            "4",
            "--partition=debug",
            "--cpus",
            "2",
            "--output",
            "o.zarr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            finishing_args(args),
            vec!["/bin/segno", "apply", "--run", "r", "--output", "o.zarr"]
        );
    }
}
