//! Live predictions for the viewer: a run's checkpoint over any raw volume, computed block by
//! block as the viewer reads it (see [`crate::blockwise::live`]), in this process.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::blockwise::live::LivePrediction;
use crate::blockwise::{Checkpoint, InputOptions};
use crate::store::Project;

/// Which network computes a live prediction over which volume: what a viewer layer
/// records to open it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSource {
    /// The project holding the run.
    pub project: PathBuf,
    /// The run.
    pub run: String,
    /// The checkpoint iteration (the latest when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u64>,
    /// The raw volume (an array or multiscale group).
    pub raw: PathBuf,
    /// For a segmentation layer: the post-processing parameters applied to every block
    /// (by name, e.g. `threshold_0.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<String>,
}

impl LiveSource {
    /// A short name for the layer: `<run> @ <iteration>`, and ` · <parameters>` for a
    /// segmentation.
    pub fn label(&self, iteration: u64) -> String {
        match &self.segmentation {
            Some(p) => format!("{} @ {iteration} · {p}", self.run),
            None => format!("{} @ {iteration}", self.run),
        }
    }
}

/// Opens the live prediction `source` describes on `device` (`auto`, `cpu`, `cuda:N`): the
/// run's network with the checkpoint's weights, the raw volume read as the run's training
/// read its raw data, the network run once on zeros (so the first block is not slower than
/// the others). A run, checkpoint or volume that does not fit is refused with what was
/// expected.
pub fn open_live(source: &LiveSource, device: &str) -> Result<Arc<LivePrediction>, OpsError> {
    let project = Project::open(&source.project)?;
    let run = super::stored_run(&project, &source.run)?;
    let which = match source.iteration {
        Some(i) => Checkpoint::Iteration(i),
        None => Checkpoint::Latest,
    };
    let device = super::device(device)?;
    LivePrediction::open(
        project.root(),
        &run,
        &which,
        &source.raw,
        &InputOptions::default(),
        device,
    )
    .and_then(|live| live.warm_up().map(|()| Arc::new(live)))
    .map_err(OpsError::run(&run.name))
}

/// The segmentation `source.segmentation` names of the live prediction `live` (opened from
/// `source`): its blocks post-processed with those parameters of the run's task.
pub fn open_segmentation(
    source: &LiveSource,
    live: Arc<LivePrediction>,
) -> Result<Arc<crate::blockwise::live::LiveSegmentation>, OpsError> {
    let project = Project::open(&source.project)?;
    let run = super::stored_run(&project, &source.run)?;
    let fail = OpsError::run(&run.name);
    let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)
        .map_err(|e| fail(e.into()))?;
    let grid = predictor.parameters();
    let name = source.segmentation.clone().unwrap_or_default();
    let parameters = crate::task::postprocess::PostProcessorParameters::from_name(&name, &grid)
        .ok_or_else(|| {
            OpsError::Invalid(format!(
                "run {}'s task has no post-processing parameters `{name}`; it has {}",
                run.name,
                grid.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ))
        })?;
    crate::blockwise::live::LiveSegmentation::new(live, &run, parameters)
        .map(Arc::new)
        .map_err(fail)
}

/// The post-processing parameters a segmentation of `run`'s checkpoint `iteration` uses by
/// default: those its validation chose for that checkpoint (as `apply` would), else the
/// first of the task's grid.
pub fn default_segmentation(
    project: &std::path::Path,
    run: &str,
    iteration: u64,
) -> Result<String, OpsError> {
    let project = Project::open(project)?;
    let run = super::stored_run(&project, run)?;
    let fail = OpsError::run(&run.name);
    let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)
        .map_err(|e| fail(e.into()))?;
    let request = super::apply::SettingsRequest {
        iteration: Some(iteration),
        ..super::apply::SettingsRequest::default()
    };
    match super::apply::choose_settings(project.root(), &run, &predictor, &request) {
        Ok(s) => Ok(s.parameters.name()),
        Err(_) => predictor
            .parameters()
            .first()
            .map(|p| p.name())
            .ok_or_else(|| {
                OpsError::Invalid(format!("run {}'s task has no post-processing", run.name))
            }),
    }
}

/// The checkpoint `apply` would take for `run` (the best by its task's criterion on its
/// validation scores), with what it rests on (`best by mito__f1_score on crop2: 0.913`);
/// `None` while the run has no scores.
pub fn best_checkpoint(project: &std::path::Path, run: &str) -> Option<(u64, String)> {
    let project = Project::open(project).ok()?;
    let choices = super::apply::apply_choices(&project, run).ok()?;
    let (iteration, _, by) = choices.default?;
    let by = by?;
    Some((
        iteration,
        format!(
            "best by {} on {}: {:.3}",
            by.criterion, by.dataset, by.score
        ),
    ))
}

/// The stored checkpoint iterations of `run` in the project at `project`, oldest first.
pub fn checkpoints(project: &std::path::Path, run: &str) -> Result<Vec<u64>, OpsError> {
    let project = Project::open(project)?;
    let run = super::stored_run(&project, run)?;
    Ok(crate::store::layout::RunDir::new(project.root(), &run.name).checkpoint_iterations())
}
