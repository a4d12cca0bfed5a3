//! Live predictions for the viewer: a run's checkpoint over any raw volume, computed block by
//! block as the viewer reads it (see [`crate::blockwise::live`]), in this process.

use std::path::{Path, PathBuf};
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
    .and_then(|live| {
        let (lanes, threads) = compute_lanes(device);
        live.with_lanes(project.root(), &run, lanes, threads)
    })
    .and_then(|live| live.warm_up().map(|()| Arc::new(live)))
    .map_err(OpsError::run(&run.name))
}

/// How many blocks a live prediction computes at once on the device `auto` picks: the
/// compute threads a viewer's chunk cache needs.
pub fn default_lanes() -> usize {
    compute_lanes(super::device("auto").unwrap_or(tch::Device::Cpu)).0
}

/// How many blocks a live prediction on `device` computes at once, and the intra-op
/// threads of each: on a CPU, two blocks side by side with half the cores each (no thread
/// waits for the other at every layer, so more blocks per second than one block at a time
/// on all cores; `segno bench live` measures it); on a GPU one at a time.
pub fn compute_lanes(device: tch::Device) -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match device {
        tch::Device::Cuda(_) => (1, 0),
        _ if cores >= 2 => (2, cores / 2),
        _ => (1, 0),
    }
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

/// The container, inside a project, that computed layers are written to for neuroglancer.
pub const EXPORT_CONTAINER: &str = "exports/neuroglancer.zarr";

/// What [`write_computed`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComputedExport {
    /// The array written (an OME-Zarr image of one level).
    pub path: PathBuf,
    /// Blocks written: those computed when it was asked.
    pub blocks_written: u64,
    /// Blocks of the whole prediction grid; the others hold the fill value 0.
    pub blocks_total: u64,
}

/// A dataset name for `layer` inside [`EXPORT_CONTAINER`]: letters, digits, `.`, `-` and
/// `_` kept, anything else `_` (`quick @ 4` → `quick_4`).
pub fn export_dataset_name(layer: &str) -> String {
    let mut out = String::new();
    for c in layer.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if keep {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches(|c| c == '_' || c == '.').to_string();
    if out.is_empty() {
        "layer".into()
    } else {
        out
    }
}

/// Writes the blocks of `live` computed so far, as `layer` (the live prediction itself or
/// its segmentation) gives them, into `container`/`dataset` — an array of the layer's
/// type, voxel size and region with one chunk per block, replacing what an earlier
/// export wrote there. Blocks not computed are not computed here: they keep the fill
/// value. Meant for [`EXPORT_CONTAINER`] in the project, so that a neuroglancer state can
/// show what the viewer computed.
pub fn write_computed(
    layer: &dyn crate::array::ArraySource,
    live: &LivePrediction,
    container: &Path,
    dataset: &str,
) -> Result<ComputedExport, OpsError> {
    use crate::array::write::{create, ArraySpec, WriteMode};
    let info = layer.info();
    let vs = info.geometry.voxel_size;
    let grid = live.grid();
    let channels = (info.shape.len() > vs.dims()).then(|| info.channels());
    let mut spec = ArraySpec::new(info.data_type, info.roi, vs, channels);
    spec.chunk_voxels = Some((grid.block_nm / vs).iter().map(|v| v as u64).collect());
    spec.attributes.insert(
        "segno_computed".into(),
        serde_json::json!({ "from": info.path }),
    );
    let writer = create(container, dataset, &spec, WriteMode::Overwrite)?;
    let mut written = 0;
    for k in live.computed_keys() {
        let roi = grid.block(k).intersect(&info.roi);
        if roi.is_empty() {
            continue;
        }
        let values = layer.read(&roi)?;
        writer.write(&roi, &values)?;
        written += 1;
    }
    Ok(ComputedExport {
        path: container.join(dataset),
        blocks_written: written,
        blocks_total: grid.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_names_keep_what_paths_allow() {
        assert_eq!(export_dataset_name("quick @ 4"), "quick_4");
        assert_eq!(
            export_dataset_name("quick @ 4 · threshold_0.5"),
            "quick_4_threshold_0.5"
        );
        assert_eq!(export_dataset_name("../up"), "up");
        assert_eq!(export_dataset_name("@@"), "layer");
    }
}
