//! Training a run stored in a project (`segno train`, the app's launcher): the device
//! chosen, the run trained (resuming from its latest checkpoint), and how training ended
//! recorded in the run's status file for the Runs section.

/// Which validation arrays a run keeps (re-exported for the front ends).
pub use crate::train::KeepValidation;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use super::OpsError;
use crate::store::layout::RunDir;
use crate::store::Project;
use crate::train::{self, TrainError, TrainOptions};

/// Options of [`train_stored_run`].
pub struct TrainRunOptions {
    /// The run's name.
    pub run: String,
    /// The seed (default: the run's recorded one, else a fresh one).
    pub seed: Option<u64>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Threads loading batches (default: by the machine).
    pub loader_threads: Option<usize>,
    /// Validate at the run's validation interval.
    pub validate: bool,
    /// Which validation predictions to keep on disk.
    pub keep_validation: KeepValidation,
    /// Stop after this many iterations of this session.
    pub stop_after: Option<u64>,
    /// Set to stop after the current iteration (kept as a checkpoint).
    pub stop: Option<Arc<AtomicBool>>,
    /// Called once the device is chosen, before training starts.
    pub on_start: Option<Box<dyn FnOnce(tch::Device)>>,
    /// Called after every iteration with its index and loss.
    pub on_iteration: Option<Box<dyn FnMut(u64, f64) + Send>>,
}

/// A validation that failed during training.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationFailure {
    /// The iteration validated.
    pub iteration: u64,
    /// The dataset that failed, when one dataset did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Why.
    pub error: String,
}

/// What [`train_stored_run`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainRunReport {
    /// The run's name.
    pub run: String,
    /// The iteration training reached.
    pub trained_until: u64,
    /// The run's total iterations.
    pub num_iterations: u64,
    /// The seed used.
    pub seed: u64,
    /// Whether training was stopped before the end.
    pub interrupted: bool,
    /// Validations that failed.
    pub validation_failures: Vec<ValidationFailure>,
    /// Threads that loaded batches.
    pub loader_threads: usize,
    /// The checkpoint training resumed from, if any.
    pub resumed_from: Option<u64>,
    /// The loss of the last iteration.
    pub last_loss: Option<f64>,
    /// Checkpoints written in this session.
    pub checkpoints: Vec<u64>,
    /// Wall time.
    pub duration_secs: f64,
    /// The device trained on (as libtorch names it).
    pub device: String,
}

/// Trains the run `options.run` stored in `project` and records how it ended (finished,
/// stopped or failed with the error) in its status file. A run locked by another trainer
/// is refused without touching its status.
pub fn train_stored_run(
    project: &Project,
    options: TrainRunOptions,
) -> Result<TrainRunReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let device = super::device(&options.device)?;
    if let Some(start) = options.on_start {
        start(device);
    }
    let train_options = TrainOptions {
        seed: options.seed,
        device,
        loader_threads: options.loader_threads,
        stop: options.stop,
        validate: options.validate,
        max_watershed_voxels: crate::task::predictor::MAX_WATERSHED_VOXELS,
        keep_validation: options.keep_validation,
        stop_after: options.stop_after,
        on_iteration: options.on_iteration,
    };
    let started = std::time::Instant::now();
    let run_dir = RunDir::new(project.root(), &run.name);
    let result = train::train_run(project.root(), &run, train_options);
    let status = match &result {
        Ok(r) if r.trained_until >= run.num_iterations => Some(("finished", None)),
        Ok(_) => Some(("stopped", None)),
        Err(TrainError::Lock(_)) => None,
        Err(e) => Some(("failed", Some(e.to_string()))),
    };
    if let Some((state, error)) = status {
        crate::store::lock::record_status(run_dir.dir(), state, error);
    }
    let report = result.map_err(OpsError::run(&run.name))?;
    let validation_failures = report
        .validations
        .iter()
        .flat_map(|v| {
            v.errors.iter().map(move |(d, e)| ValidationFailure {
                iteration: v.iteration,
                dataset: Some(d.clone()),
                error: e.clone(),
            })
        })
        .chain(
            report
                .validation_errors
                .iter()
                .map(|(i, e)| ValidationFailure {
                    iteration: *i,
                    dataset: None,
                    error: e.clone(),
                }),
        )
        .collect();
    Ok(TrainRunReport {
        run: run.name.clone(),
        trained_until: report.trained_until,
        num_iterations: run.num_iterations,
        seed: report.seed,
        interrupted: report.interrupted,
        validation_failures,
        loader_threads: report.loader_threads,
        resumed_from: report.resumed_from,
        last_loss: report.last_loss,
        checkpoints: report.checkpoints,
        duration_secs: started.elapsed().as_secs_f64(),
        device: format!("{device:?}"),
    })
}
