//! Block-by-block prediction over regions of any size: the output region is cut into
//! blocks of the network's evaluation output (the last block on each axis moved back so the
//! remainder is covered), each block is predicted with its context and written as whole
//! chunks of an OME-Zarr array, and finished blocks are recorded so an interrupted job
//! resumes where it stopped.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tch::nn;

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::RunConfig;
use crate::geometry::{Roi, SnapMode};
use crate::nn::Model;
use crate::train::checkpoint::{self, checkpoint_path};
use crate::train::validate::Inference;
use crate::train::TrainError;

/// A run's network with weights loaded, ready to predict.
pub struct LoadedModel {
    /// Keeps the parameters alive.
    pub vs: nn::VarStore,
    /// The network.
    pub model: Model,
    /// Number of output channels.
    pub channels: usize,
    /// The iteration whose weights were loaded.
    pub iteration: u64,
}

/// Which checkpoint to use.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    /// A given iteration.
    Iteration(u64),
    /// The latest checkpoint.
    Latest,
    /// The best iteration for `criterion` on validation dataset `dataset`.
    Best {
        /// The validation dataset.
        dataset: String,
        /// The criterion (e.g. `mito__f1_score`).
        criterion: String,
    },
}

/// Loads the network of `run` with the weights of `which`.
pub fn load_model(
    project: &Path,
    run: &RunConfig,
    which: &Which,
    device: tch::Device,
) -> Result<LoadedModel, TrainError> {
    let run_dir = project.join(&run.name);
    let iteration = match which {
        Which::Iteration(i) => *i,
        Which::Latest => checkpoint::latest_iteration(&run_dir).ok_or_else(|| {
            TrainError::Data(format!(
                "run `{}` has no checkpoint yet: train it first",
                run.name
            ))
        })?,
        Which::Best { dataset, criterion } => {
            let file = run_dir
                .join("checkpoints")
                .join(dataset.replace('/', "_"))
                .join(format!("{criterion}.json"));
            let text = std::fs::read_to_string(&file).map_err(|e| {
                TrainError::Data(format!(
                    "{}: {e} (no best checkpoint recorded for this dataset and criterion)",
                    file.display()
                ))
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TrainError::Data(format!("{}: {e}", file.display())))?;
            v["iteration"]
                .as_u64()
                .ok_or_else(|| TrainError::Data(format!("{}: no iteration", file.display())))?
        }
    };
    let head = crate::train::run::head_for(&run.task_config)?;
    let channels = head.channels as usize;
    let vs = nn::VarStore::new(device);
    let model = Model::new(&vs.root(), &run.architecture_config, &head)?;
    let path = checkpoint_path(&run_dir, iteration);
    if !path.is_file() {
        return Err(TrainError::Data(format!(
            "{}: no checkpoint for iteration {iteration}",
            path.display()
        )));
    }
    checkpoint::load(&path, &vs, None)?;
    Ok(LoadedModel {
        vs,
        model,
        channels,
        iteration,
    })
}

/// What [`predict`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictReport {
    /// The output array (container/dataset).
    pub output: PathBuf,
    /// The region predicted.
    pub roi: Roi,
    /// Blocks in the region.
    pub blocks: usize,
    /// Blocks skipped because an earlier run finished them.
    pub skipped: usize,
}

fn done_path(container: &Path, dataset: &str) -> PathBuf {
    container.join(dataset).join(".segno-done-blocks")
}

fn read_done(path: &Path) -> BTreeSet<String> {
    // One finished block per line; a torn last line (a crash mid-write) is ignored.
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| l.ends_with(';'))
                .map(|l| l.trim_end_matches(';').to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Predicts `roi` (default: the raw region minus the network's context) of `raw` with
/// `model` into `container/dataset` (float32, channels first, chunks = output blocks).
/// Raw values are scaled by `raw_scale` (e.g. 1/255 for uint8) before the run's
/// normalisation. Blocks finished by an earlier, interrupted call are skipped.
#[allow(clippy::too_many_arguments)]
pub fn predict(
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    raw_scale: f32,
    roi: Option<Roi>,
    container: &Path,
    dataset: &str,
    mut on_block: impl FnMut(usize, usize),
) -> Result<PredictReport, TrainError> {
    let context = inference.context();
    let raw_roi = raw.info().roi;
    let default = raw_roi
        .grow(&(-context), &(-context))
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let roi = match roi {
        Some(r) => r
            .snap_to_grid(&inference.out_vs, SnapMode::Grow)
            .map_err(|e| TrainError::Data(e.to_string()))?
            .intersect(&default),
        None => default,
    };
    if roi.is_empty() {
        return Err(TrainError::Data(format!("nothing to predict: the region is empty once the network's context ({context} nm) is taken from the raw region {raw_roi}")));
    }
    let mut spec = ArraySpec::new(
        DataType::F32,
        roi,
        inference.out_vs,
        Some(model.channels as u64),
    );
    spec.chunk_voxels = Some(inference.output_shape.iter().map(|v| v as u64).collect());
    spec.attributes.insert(
        "segno_prediction".into(),
        serde_json::json!({"iteration": model.iteration}),
    );
    let writer = write::create(container, dataset, &spec, WriteMode::Resume)?;
    let existing = writer
        .attributes()
        .and_then(|a| a.get("segno_prediction"))
        .and_then(|v| v["iteration"].as_u64());
    if existing.is_some_and(|i| i != model.iteration) {
        return Err(TrainError::Data(format!(
            "{}/{dataset} holds a prediction of iteration {}, not {}: delete it or choose another output",
            container.display(),
            existing.unwrap_or_default(),
            model.iteration
        )));
    }
    let done_file = done_path(container, dataset);
    let done = read_done(&done_file);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&done_file)
        .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))?;
    let blocks = inference.blocks(&roi)?;
    let scaled = Inference {
        normalisation: (
            inference.normalisation.0 * raw_scale,
            inference.normalisation.1,
        ),
        ..inference.clone()
    };
    let mut skipped = 0;
    for (k, block) in blocks.iter().enumerate() {
        let key = block.to_string();
        if done.contains(&key) {
            skipped += 1;
            on_block(k + 1, blocks.len());
            continue;
        }
        let part = block.intersect(&roi);
        let values = scaled.predict(&model.model, raw, &part, model.channels)?;
        writer.write(&part, &ArrayData::F32(values))?;
        writeln!(log, "{key};")
            .and_then(|()| log.flush())
            .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))?;
        on_block(k + 1, blocks.len());
    }
    Ok(PredictReport {
        output: container.join(dataset),
        roi,
        blocks: blocks.len(),
        skipped,
    })
}

/// The scale that maps a raw element type to [0, 1] (uint8 ÷ 255, uint16 ÷ 65535, floats as they are).
pub fn raw_scale(dt: DataType) -> f32 {
    match dt {
        DataType::U8 => 1.0 / 255.0,
        DataType::U16 => 1.0 / 65535.0,
        _ => 1.0,
    }
}

/// What [`threshold_array`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessReport {
    /// The output array.
    pub output: PathBuf,
    /// Chunks written.
    pub chunks: usize,
    /// Voxels above the threshold, per channel.
    pub foreground: Vec<u64>,
}

/// Thresholds a prediction chunk by chunk, in parallel, into `container/dataset` (uint8,
/// same geometry and chunking): `prediction > threshold`.
pub fn threshold_array(
    prediction: &dyn ArraySource,
    threshold: f64,
    container: &Path,
    dataset: &str,
) -> Result<PostProcessReport, TrainError> {
    use rayon::prelude::*;
    let info = prediction.info();
    let channels = info
        .geometry
        .axes
        .iter()
        .any(|a| !a.spatial)
        .then(|| info.channels());
    let mut spec = ArraySpec::new(DataType::U8, info.roi, info.geometry.voxel_size, channels);
    spec.chunk_voxels = Some(
        info.spatial_axes()
            .iter()
            .map(|&a| info.chunk_shape[a])
            .collect(),
    );
    spec.attributes.insert(
        "segno_post_process".into(),
        serde_json::json!({"threshold": threshold, "source": info.path}),
    );
    let writer = write::create(container, dataset, &spec, WriteMode::Overwrite)?;
    let indices = write::grid_indices(&writer.chunk_grid_shape());
    let n_channels = channels.unwrap_or(1) as usize;
    let counts = indices
        .par_iter()
        .map(|index| -> Result<Vec<u64>, TrainError> {
            let roi = writer.info().chunk_roi(index)?;
            let p = prediction.read(&roi)?.to_f32();
            let out = crate::task::postprocess::threshold(&p, threshold);
            let mut fg = vec![0u64; n_channels];
            if channels.is_some() {
                for (c, lane) in out.outer_iter().enumerate() {
                    fg[c] = lane.iter().filter(|v| **v != 0).count() as u64;
                }
            } else {
                fg[0] = out.iter().filter(|v| **v != 0).count() as u64;
            }
            writer.write(&roi, &ArrayData::U8(out))?;
            Ok(fg)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut foreground = vec![0u64; n_channels];
    for c in counts {
        for (a, b) in foreground.iter_mut().zip(c) {
            *a += b;
        }
    }
    Ok(PostProcessReport {
        output: container.join(dataset),
        chunks: indices.len(),
        foreground,
    })
}
