//! Block-by-block prediction over regions of any size: the output region is cut into
//! blocks of the network's evaluation output (the last block on each axis moved back so the
//! remainder is covered), each block is predicted with its context and written as whole
//! chunks of an OME-Zarr array, and finished blocks are recorded so an interrupted job
//! resumes where it stopped.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tch::nn;

use crate::array::input::InputTransform;
use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::RunConfig;
use crate::geometry::{Roi, SnapMode};
use crate::nn::Model;
use crate::store::layout::RunDir;
pub use crate::task::arrays::{
    output_spec, watershed_array, PostProcessReport, WATERSHED_CONTEXT_VOXELS,
};
use crate::task::postprocess::PostProcessorParameters;
use crate::task::predictor::{Predictor, Segmentation};
use crate::train::checkpoint;
use crate::train::validate::Inference;
use crate::train::TrainError;

mod post_process;
mod provenance;
#[cfg(test)]
mod tests;

pub use post_process::{post_process_array, threshold_array};
use provenance::*;
pub use provenance::{input_identity, Provenance};

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
    /// The run's name.
    pub run: String,
    /// The checkpoint file the weights came from.
    pub checkpoint: PathBuf,
}

/// Which of a run's checkpoints to load.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
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
    which: &Checkpoint,
    device: tch::Device,
) -> Result<LoadedModel, TrainError> {
    let layout = RunDir::new(project, &run.name);
    let iteration = match which {
        Checkpoint::Iteration(i) => *i,
        Checkpoint::Latest => layout.latest_checkpoint().ok_or_else(|| {
            TrainError::Data(format!(
                "run `{}` has no checkpoint yet: train it first",
                run.name
            ))
        })?,
        Checkpoint::Best { dataset, criterion } => {
            let best = layout
                .read_best(dataset, criterion)
                .map_err(|e| TrainError::Data(e.to_string()))?
                .ok_or_else(|| {
                    TrainError::Data(format!(
                        "{}: no best checkpoint recorded for this dataset and criterion",
                        layout.best_file(dataset, criterion).display()
                    ))
                })?;
            best.iteration
        }
    };
    let head = crate::train::run::head_for(&run.task_config)?;
    let channels = head.channels as usize;
    let vs = nn::VarStore::new(device);
    let model = Model::new(&vs.root(), &run.architecture_config, &head)?;
    let path = layout.checkpoint(iteration);
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
        run: run.name.clone(),
        checkpoint: path,
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

/// The region a prediction covers: `roi` snapped outward to the output grid, within the raw
/// region less the network's context (which is also the default).
pub fn prediction_roi(
    inference: &Inference,
    raw: &dyn ArraySource,
    roi: Option<Roi>,
) -> Result<Roi, TrainError> {
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
    Ok(roi)
}

/// The largest network input (voxels) a prediction block may have by default. On a GPU:
/// activations of the widest full-resolution layer, a few alive at once, within about
/// 4 GiB. On the CPU 2²³ voxels (≈ 203³): measured on a 2-core machine, larger inputs run
/// slower per voxel (cache misses outweigh the context saved).
pub fn max_block_input_voxels(run: &RunConfig, device: tch::Device) -> f64 {
    if device == tch::Device::Cpu {
        return f64::from(1u32 << 23);
    }
    let widest = match &run.architecture_config {
        crate::config::ArchitectureConfig::CnnectomeUnet(u) => {
            u.num_fmaps.max(u.fmaps_out).max(u.fmaps_in).max(1)
        }
        crate::config::ArchitectureConfig::Dummy(_) => 1,
    };
    (4u64 << 30) as f64 / (f64::from(widest) * 4.0 * 4.0)
}

/// Prediction shapes for `run` over `roi` of `raw` (default: all of it with context):
/// blocks as large as the region and `max_input_voxels` (default
/// [`max_block_input_voxels`]) allow, never smaller than the configured evaluation block,
/// and the region itself.
pub fn inference_for(
    run: &RunConfig,
    raw: &dyn ArraySource,
    roi: Option<Roi>,
    max_input_voxels: Option<f64>,
    device: tch::Device,
) -> Result<(Inference, Roi), TrainError> {
    let inference = Inference::for_run(run, raw.info().geometry.voxel_size, device)?;
    let roi = prediction_roi(&inference, raw, roi)?;
    let budget = max_input_voxels.unwrap_or_else(|| max_block_input_voxels(run, device));
    let sized = inference.sized_for(run, &roi, budget)?;
    Ok((sized, roi))
}

/// The element type of a prediction array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictionType {
    /// The network's values as they are.
    #[default]
    Float32,
    /// DaCapo's uint8 predictions: probabilities (sigmoid, softmax) × 255, other values
    /// mapped from [−1, 1] to [0, 255]; clipped and truncated. Post-processing reads them
    /// back in the network's units.
    Uint8,
}

impl PredictionType {
    /// For uint8: `(scale, offset)` with `value = stored · scale + offset` in the network's
    /// units, for a network whose evaluation activation is `activation`.
    pub fn encoding(self, activation: crate::nn::Activation) -> Option<(f64, f64)> {
        match (self, activation) {
            (PredictionType::Float32, _) => None,
            (PredictionType::Uint8, crate::nn::Activation::Identity) => Some((2.0 / 255.0, -1.0)),
            (PredictionType::Uint8, _) => Some((1.0 / 255.0, 0.0)),
        }
    }
}

/// Where and how [`predict`] writes.
#[derive(Debug, Clone)]
pub struct PredictOutput<'a> {
    /// The output container.
    pub container: &'a Path,
    /// The dataset inside it.
    pub dataset: &'a str,
    /// Element type of the values written.
    pub data_type: PredictionType,
    /// Recorded in the array's `segno_prediction` attributes next to the iteration (e.g.
    /// the run and the post-processing parameters apply would choose).
    pub about: serde_json::Value,
    /// Replace an existing array at the output (else only an unfinished prediction with the
    /// same [`Provenance`] is continued, and anything else is refused).
    pub overwrite: bool,
    /// The input volume as given (recorded resolved, with its identity).
    pub input: &'a Path,
    /// How the input was read (recorded; see [`PreparedInput`]).
    pub input_steps: serde_json::Value,
}

/// How a prediction reads its input volume (see [`open_input`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputOptions {
    /// Read the volume as this dataset of the run did (default: as every training
    /// dataset did, when they agree).
    pub like: Option<String>,
    /// Resample a volume at another voxel size to the one the network was trained at
    /// (instead of refusing it).
    pub resample: bool,
    /// Accept a volume whose element type differs from the training data's.
    pub accept_data_type: bool,
}

/// A volume opened for prediction as the run's training read its raw data.
pub struct PreparedInput {
    /// The volume with the run's input steps applied (normalised, at the network's voxel size).
    pub array: Box<dyn ArraySource>,
    /// The steps applied.
    pub transform: InputTransform,
    /// The dataset whose steps these are.
    pub like: String,
    /// `(scale, shift)` applied last, inside the network's input (the trainer's
    /// IntensityScaleShift).
    pub scale_shift: (f32, f32),
    /// The scale level of a multiscale group that was chosen, if any.
    pub level: Option<String>,
    /// Whether the steps came from the run's record (else from its configs as they are now).
    pub recorded: bool,
    /// Things the user should know (element type differences accepted, resampling done).
    pub notes: Vec<String>,
}

/// Opens the volume at `path` for predicting with `run`: the run's recorded input steps
/// (normalisation, resampling; from its configs when it has no record yet) applied to it,
/// the scale level of a multiscale group at the voxel size training read. A volume at
/// another voxel size or of another element type is refused, naming both, unless
/// `options` ask to resample or accept it.
pub fn open_input(
    project: &Path,
    run: &RunConfig,
    path: &Path,
    options: &InputOptions,
) -> Result<PreparedInput, TrainError> {
    let run_dir = project.join(&run.name);
    let stored =
        crate::store::run::read_record(&run_dir).map_err(|e| TrainError::Data(e.to_string()))?;
    let recorded = stored.is_some();
    let record = match stored {
        Some(r) => r,
        None => crate::train::run::run_record(project, run, 0)?,
    };
    let chosen = record
        .input_for(options.like.as_deref())
        .map_err(TrainError::Data)?;
    let mut transform = chosen.transform.clone();
    let mut notes = Vec::new();
    // A multiscale group: the level at the voxel size training read, if there is one.
    let (container, inner) = crate::array::split_container_path(path);
    let levels = crate::array::zarr::scale_levels(&container, &inner).unwrap_or_default();
    let mut level = None;
    let raw = if levels.is_empty() {
        crate::array::open(path)?
    } else {
        let pick = levels
            .iter()
            .find(|l| l.info.geometry.voxel_size == transform.source_voxel_size_nm)
            .or_else(|| {
                options
                    .resample
                    .then(|| {
                        levels
                            .iter()
                            .find(|l| l.info.geometry.voxel_size == transform.voxel_size_nm)
                    })
                    .flatten()
            });
        match pick {
            Some(l) => {
                level = Some(l.path.clone());
                crate::array::open(&path.join(&l.path))?
            }
            None if options.resample => {
                let first = &levels[0];
                level = Some(first.path.clone());
                crate::array::open(&path.join(&first.path))?
            }
            None => {
                let sizes: Vec<String> = levels
                    .iter()
                    .map(|l| format!("{} {} nm", l.path, l.info.geometry.voxel_size))
                    .collect();
                return Err(TrainError::Data(format!(
                    "{} has no scale level at {} nm, the voxel size the run's raw data was read at ({}); its levels: {}. Ask for resampling (--resample) or give a volume at {} nm",
                    path.display(),
                    transform.source_voxel_size_nm,
                    transform.source,
                    sizes.join(", "),
                    transform.source_voxel_size_nm
                )));
            }
        }
    };
    raw.info()
        .require_on_grid("prediction")
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let dt = raw.info().data_type.to_string();
    if dt != transform.source_data_type {
        let message = format!(
            "{} holds {dt} values, but the run was trained on {} data ({}), read as {}",
            raw.info().path,
            transform.source_data_type,
            transform.source,
            transform.describe()
        );
        if !options.accept_data_type {
            return Err(TrainError::Data(format!(
                "{message}: the same normalisation would give other values. Convert the volume, or pass --accept-data-type if its values have the same range"
            )));
        }
        notes.push(message);
    }
    let vs = raw.info().geometry.voxel_size;
    if vs != transform.source_voxel_size_nm && options.resample {
        transform = transform
            .resampled_from(&vs)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        notes.push(format!(
            "resampled from {vs} nm to the network's {} nm ({})",
            transform.voxel_size_nm,
            transform.describe()
        ));
    }
    let array = transform
        .apply(raw)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    Ok(PreparedInput {
        array,
        transform,
        like: chosen.dataset.clone(),
        scale_shift: record.input_scale_shift,
        level,
        recorded,
        notes,
    })
}

/// Predicts `roi` (default: the raw region minus the network's context) of `raw` with
/// `model` into `container/dataset` (float32, channels first, chunks = output blocks).
/// `raw` must already be read as the run's training read its raw data (see
/// [`open_input`]); the inference's normalisation is applied on top, as in training.
/// Blocks finished by an earlier, interrupted call of the same prediction are skipped; an
/// output that exists otherwise is refused unless `output.overwrite`.
pub fn predict(
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    roi: Option<Roi>,
    output: &PredictOutput<'_>,
    mut on_block: impl FnMut(usize, usize),
) -> Result<PredictReport, TrainError> {
    let (container, dataset) = (output.container, output.dataset);
    let roi = prediction_roi(inference, raw, roi)?;
    let data_type = match output.data_type {
        PredictionType::Float32 => DataType::F32,
        PredictionType::Uint8 => DataType::U8,
    };
    let encoding = output.data_type.encoding(model.model.eval_activation());
    let mut spec = ArraySpec::new(
        data_type,
        roi,
        inference.out_vs,
        Some(model.channels as u64),
    );
    // Chunks of at most 128 voxels per axis that tile a block (blocks may be larger).
    spec.chunk_voxels = Some(
        inference
            .output_shape
            .iter()
            .map(|v| {
                let mut c = v.max(1) as u64;
                while c > 128 && c.is_multiple_of(2) {
                    c /= 2;
                }
                c
            })
            .collect(),
    );
    let dataset = &write::output_dataset_name(container, dataset)?;
    let provenance = Provenance {
        segno_version: env!("CARGO_PKG_VERSION").to_string(),
        run: model.run.clone(),
        iteration: model.iteration,
        checkpoint: write::resolved_path(&model.checkpoint)
            .display()
            .to_string(),
        checkpoint_sha256: file_sha256(&model.checkpoint)?,
        input: write::resolved_path(output.input).display().to_string(),
        input_identity: input_identity(output.input)?,
        input_steps: output.input_steps.clone(),
        region: roi.to_string(),
        parameters: serde_json::json!({
            "data_type": data_type.to_string(),
            "input_shape_voxels": inference.input_shape.to_vec(),
            "output_shape_voxels": inference.output_shape.to_vec(),
            "input_voxel_size_nm": inference.raw_vs.to_vec(),
            "output_voxel_size_nm": inference.out_vs.to_vec(),
            "normalisation": [inference.normalisation.0, inference.normalisation.1],
        }),
    };
    let mut record = serde_json::json!({"iteration": model.iteration});
    if let (Some(r), Some(a)) = (record.as_object_mut(), output.about.as_object()) {
        for (k, v) in a {
            r.insert(k.clone(), v.clone());
        }
    }
    if let Some((scale, offset)) = encoding {
        record["uint8"] = serde_json::json!({"scale": scale, "offset": offset});
    }
    record["provenance"] =
        serde_json::to_value(&provenance).map_err(|e| TrainError::Data(e.to_string()))?;
    spec.attributes.insert("segno_prediction".into(), record);
    let path = container.join(dataset);
    let done_file = done_path(container, dataset);
    if std::fs::symlink_metadata(&path).is_ok() {
        if output.overwrite {
            std::fs::remove_dir_all(&path)
                .map_err(|e| TrainError::Data(format!("cannot remove {}: {e}", path.display())))?;
        } else {
            // Only an unfinished prediction with the same provenance is continued.
            let total = inference.blocks(&roi)?.len();
            let done = read_done(&done_file).len();
            let existing = crate::array::open(&path)
                .ok()
                .and_then(|a| a.attributes()?.get("segno_prediction").cloned());
            let recorded = existing
                .as_ref()
                .and_then(|r| serde_json::from_value::<Provenance>(r["provenance"].clone()).ok());
            let iteration = existing.as_ref().and_then(|r| r["iteration"].as_u64());
            let what = match (&recorded, iteration) {
                (Some(r), _) if done < total => {
                    let differences = r.differences(&provenance);
                    if differences.is_empty() {
                        None
                    } else {
                        Some(format!(
                            "an unfinished prediction made otherwise; {}",
                            differences.join("; ")
                        ))
                    }
                }
                (_, Some(i)) if done_file.is_file() && done >= total => {
                    Some(format!("a finished prediction of iteration {i}"))
                }
                (None, Some(i)) => Some(format!(
                    "a prediction of iteration {i} without a record of what made it"
                )),
                (Some(r), _) => Some(format!("a prediction of iteration {}", r.iteration)),
                (None, None) => Some("an array Segno did not predict".to_string()),
            };
            if let Some(what) = what {
                return Err(TrainError::OutputExists {
                    path: path.display().to_string(),
                    what,
                });
            }
        }
    }
    let writer = write::create(container, dataset, &spec, WriteMode::Resume)?;
    let done = read_done(&done_file);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&done_file)
        .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))?;
    let blocks = inference.blocks(&roi)?;
    let scaled = inference;
    let pending: Vec<(usize, Roi)> = blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| !done.contains(&b.to_string()))
        .map(|(k, b)| (k, *b))
        .collect();
    let skipped = blocks.len() - pending.len();
    let mut finished = skipped;
    if skipped > 0 {
        on_block(finished, blocks.len());
    }
    // Three stages overlap: reading the next inputs, the network, writing the last outputs.
    type Input = (Roi, ndarray::ArrayD<f32>);
    type Output = (Roi, Vec<f32>, Vec<usize>);
    let channels = model.channels;
    let out_vs = inference.out_vs;
    std::thread::scope(|scope| -> Result<(), TrainError> {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Result<Input, TrainError>>(2);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Output>(2);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<(), TrainError>>();
        let pending = &pending;
        scope.spawn(move || {
            for (_, block) in pending {
                let item = scaled.read_input(raw, block).map(|x| (*block, x));
                let failed = item.is_err();
                if in_tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let writer = &writer;
        let log = &mut log;
        let done_file = &done_file;
        scope.spawn(move || {
            for (block, values, shape) in out_rx {
                let result = (|| -> Result<(), TrainError> {
                    let part = block.intersect(&roi);
                    let n = part.shape() / out_vs;
                    let src_off = (part.begin() - block.begin()) / out_vs;
                    let dims: Vec<usize> = std::iter::once(channels)
                        .chain(n.iter().map(|v| v as usize))
                        .collect();
                    let mut data = ndarray::ArrayD::<f32>::zeros(dims);
                    let ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..channels)
                        .chain(
                            (0..n.dims())
                                .map(|a| src_off[a] as usize..(src_off[a] + n[a]) as usize),
                        )
                        .collect();
                    crate::array::data::copy_sub_block(
                        &mut data,
                        &vec![0; ranges.len()],
                        &values,
                        &shape,
                        &ranges,
                    );
                    let data = match encoding {
                        Some((scale, offset)) => ArrayData::U8(data.mapv(|p| {
                            // DaCapo's uint8 predictions: (p − offset) / scale, clipped, truncated.
                            ((p - offset as f32) / scale as f32).clamp(0.0, 255.0) as u8
                        })),
                        None => ArrayData::F32(data),
                    };
                    writer.write(&part, &data)?;
                    writeln!(log, "{block};")
                        .and_then(|()| log.flush())
                        .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))
                })();
                let failed = result.is_err();
                if done_tx.send(result).is_err() || failed {
                    break;
                }
            }
        });
        let mut in_flight = 0usize;
        for item in in_rx {
            let (block, x) = item?;
            let (values, shape) = scaled.forward(&model.model, &x)?;
            if shape.first() != Some(&channels) {
                return Err(TrainError::Data(format!(
                    "the network produced {shape:?}, expected {channels} channels"
                )));
            }
            if out_tx.send((block, values, shape)).is_err() {
                break;
            }
            in_flight += 1;
            // Report blocks as they are written.
            while let Ok(r) = done_rx.try_recv() {
                r?;
                in_flight -= 1;
                finished += 1;
                on_block(finished, blocks.len());
            }
        }
        drop(out_tx);
        for r in done_rx.iter().take(in_flight) {
            r?;
            finished += 1;
            on_block(finished, blocks.len());
        }
        Ok(())
    })?;
    Ok(PredictReport {
        output: container.join(dataset),
        roi,
        blocks: blocks.len(),
        skipped,
    })
}
