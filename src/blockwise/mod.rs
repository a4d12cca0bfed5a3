//! Block-by-block prediction over regions of any size, as block jobs: the output region is
//! cut into a grid of blocks of the network's evaluation output aligned to the output's
//! chunks (see [`job`]), each block is predicted with its context and written as whole
//! chunks of an OME-Zarr array, and a ledger shared by every worker of the job (see
//! [`ledger`]) records which blocks are done, so any number of workers can share a job and
//! an interrupted job resumes where it stopped.

use std::path::{Path, PathBuf};

use tch::nn;

use crate::array::input::InputTransform;
use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::RunConfig;
use crate::geometry::{Roi, SnapMode};
use crate::nn::Model;
use crate::store::layout::RunDir;
pub use crate::task::arrays::{output_spec, PostProcessReport};
use crate::task::postprocess::PostProcessorParameters;
use crate::task::predictor::{Predictor, Segmentation};
use crate::train::checkpoint;
use crate::train::validate::Inference;
pub use crate::train::validate::Precision;
use crate::train::TrainError;

pub mod evaluate;
pub mod job;
pub mod ledger;
pub mod live;
mod post_process;
mod provenance;
mod rows;
pub mod segment;
#[cfg(test)]
mod tests;

pub use job::{BlockGrid, JobFile, JobKind, WorkOptions, WorkReport};
pub use post_process::{post_block_nm, post_process_array, threshold_array};
use provenance::*;
pub use provenance::{input_identity, Provenance};
pub use segment::{segment_array, SegmentMethod, SegmentOptions, WATERSHED_CONTEXT_VOXELS};

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

impl LoadedModel {
    /// Converts the weights to `precision` (float32 leaves them as they are).
    pub fn set_precision(&mut self, precision: Precision) {
        if precision != Precision::Float32 {
            self.vs.set_kind(precision.kind());
        }
    }
}

/// [`load_model`], with the weights converted to `precision`.
pub fn load_model_as(
    project: &Path,
    run: &RunConfig,
    which: &Checkpoint,
    device: tch::Device,
    precision: Precision,
) -> Result<LoadedModel, TrainError> {
    let mut model = load_model(project, run, which, device)?;
    model.set_precision(precision);
    Ok(model)
}

/// How far a run's network computing in a lower precision is from float32, measured on
/// its validation crops.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PrecisionCheck {
    /// The precision measured.
    pub precision: String,
    /// The largest absolute difference of any output value from float32's (`None`
    /// without validation crops).
    pub max_abs_difference: Option<f64>,
    /// Validation crops measured on (one network evaluation block at the centre of each).
    pub crops: usize,
    /// Output values compared.
    pub values: u64,
}

/// Predicts one evaluation block at the centre of each of `run`'s validation crops with
/// the checkpoint of `iteration` in float32 and in `precision`, and reports the largest
/// difference; `None` for float32.
pub fn precision_check(
    project: &Path,
    run: &RunConfig,
    iteration: u64,
    device: tch::Device,
    precision: Precision,
) -> Result<Option<PrecisionCheck>, TrainError> {
    if precision == Precision::Float32 {
        return Ok(None);
    }
    let configs = match &run.datasplit_config {
        crate::config::DataSplitConfig::TrainValidate(split) => split.validate_configs.clone(),
        _ => Vec::new(),
    };
    let datasets = crate::train::validate::open_validation(project, &configs)?;
    let which = Checkpoint::Iteration(iteration);
    let full = load_model(project, run, &which, device)?;
    let low = load_model_as(project, run, &which, device, precision)?;
    let mut worst: Option<f64> = None;
    let mut values = 0u64;
    for d in &datasets {
        let mut inference = Inference::for_run(run, d.raw.info().geometry.voxel_size, device)?;
        let gt = d.gt.info().roi;
        let block = inference.output_shape * inference.out_vs;
        // On the crop's voxel grid: whole output voxels from its begin.
        let vs = inference.out_vs;
        let begin = gt.begin() + (gt.center() - block / 2 - gt.begin()) / vs * vs;
        let roi = Roi::new(begin, block).map_err(|e| TrainError::Data(e.to_string()))?;
        let a = inference.predict(&full.model, d.raw.as_ref(), &roi, full.channels)?;
        inference.precision = precision;
        let b = inference.predict(&low.model, d.raw.as_ref(), &roi, low.channels)?;
        for (x, y) in a.iter().zip(b.iter()) {
            let diff = f64::from((x - y).abs());
            worst = Some(worst.map_or(diff, |w| w.max(diff)));
        }
        values += a.len() as u64;
    }
    Ok(Some(PrecisionCheck {
        precision: precision.name().to_string(),
        max_abs_difference: worst,
        crops: datasets.len(),
        values,
    }))
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
    /// What this process's worker did.
    pub work: WorkReport,
}

/// The region a prediction covers: `roi` snapped outward to the output grid, within the raw
/// region less the network's context (which is also the default). A region reaching
/// outside the raw region is refused.
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
        Some(r) if !raw_roi.contains_roi(&r) => {
            return Err(TrainError::Data(format!(
                "the region {r} reaches outside the input {} ({raw_roi}): give a region inside it",
                raw.info().path
            )))
        }
        // Where the input cannot give the network its context, nothing is predicted.
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
    /// Each value rounded to the nearest IEEE half (half the disk; 3 significant digits).
    Float16,
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
            (PredictionType::Float32 | PredictionType::Float16, _) => None,
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
    /// How the job's workers share blocks.
    pub ledger: ledger::LedgerSettings,
    /// How a worker in another process opens the model and input again (stored in the
    /// job's description for it).
    pub worker: serde_json::Value,
    /// Use a finished prediction made the same way as it is (apply run again), instead of
    /// refusing it.
    pub reuse_finished: bool,
    /// Chunk shape and compression.
    pub format: OutputFormat,
}

/// How an output array is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputFormat {
    /// Chunk shape in voxels per spatial axis. A prediction's must divide the network's
    /// output block on every axis (default: the block halved down to at most 128 voxels);
    /// post-processed outputs keep their prediction's chunks.
    pub chunk_voxels: Option<Vec<u64>>,
    /// Chunk compression.
    pub compression: write::Compression,
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
    // Data of another dimensionality than training read is named as such, not as a
    // missing voxel size.
    let dims = transform.source_voxel_size_nm.dims();
    if let Some(l) = levels
        .first()
        .filter(|l| l.info.spatial_axes().len() != dims)
    {
        return Err(TrainError::Data(format!(
            "{} has {} spatial axes; the run's raw data ({}) has {dims}",
            path.display(),
            l.info.spatial_axes().len(),
            transform.source
        )));
    }
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
    if raw.info().spatial_axes().len() != dims {
        return Err(TrainError::Data(format!(
            "{} has {} spatial axes; the run's raw data ({}) has {dims}",
            raw.info().path,
            raw.info().spatial_axes().len(),
            transform.source
        )));
    }
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

/// The array spec and provenance of a prediction of `roi` with `model`.
fn prediction_spec(
    model: &LoadedModel,
    inference: &Inference,
    roi: Roi,
    output: &PredictOutput<'_>,
) -> Result<(ArraySpec, Provenance), TrainError> {
    let data_type = match output.data_type {
        PredictionType::Float32 => DataType::F32,
        PredictionType::Float16 => DataType::F16,
        PredictionType::Uint8 => DataType::U8,
    };
    let encoding = output.data_type.encoding(model.model.eval_activation());
    let mut spec = ArraySpec::new(
        data_type,
        roi,
        inference.out_vs,
        Some(model.channels as u64),
    );
    // Chunks that tile a block (blocks may be larger), so each chunk belongs to exactly
    // one block: as asked, or of at most 128 voxels per axis.
    let block: Vec<u64> = inference
        .output_shape
        .iter()
        .map(|v| v.max(1) as u64)
        .collect();
    let chunk: Vec<u64> = match &output.format.chunk_voxels {
        Some(c) => {
            let tiles =
                c.len() == block.len() && c.iter().zip(&block).all(|(c, b)| *c > 0 && b % c == 0);
            if !tiles {
                return Err(TrainError::Data(format!(
                    "a chunk of {c:?} voxels does not tile the network's output block of {block:?} voxels (each chunk must divide it on every axis, so that every chunk belongs to one block)"
                )));
            }
            c.clone()
        }
        None => block
            .iter()
            .map(|b| {
                let mut c = *b;
                while c > 128 && c.is_multiple_of(2) {
                    c /= 2;
                }
                c
            })
            .collect(),
    };
    spec.chunk_voxels = Some(chunk.clone());
    spec.compression = output.format.compression;
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
            "precision": inference.precision.name(),
            "chunk_voxels": chunk,
            "compression": output.format.compression.name(),
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
    Ok((spec, provenance))
}

/// Prepares the block job that predicts `roi` (default: the raw region minus the network's
/// context) of `raw` with `model` into `container/dataset` (channels first, chunks tiling
/// the output blocks): creates the output array and the job's description and ledger, for
/// workers of this or other processes to share (see [`work_prediction`]). An output that
/// exists is continued only when it is an unfinished prediction with the same
/// [`Provenance`]; anything else is refused unless `output.overwrite`.
pub fn prepare_prediction(
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    roi: Option<Roi>,
    output: &PredictOutput<'_>,
) -> Result<JobFile, TrainError> {
    let container = output.container;
    let roi = prediction_roi(inference, raw, roi)?;
    let grid = BlockGrid::new(roi, inference.out_vs * inference.output_shape)?;
    let (spec, provenance) = prediction_spec(model, inference, roi, output)?;
    let dataset = write::output_dataset_name(container, output.dataset)?;
    let path = container.join(&dataset);
    if std::fs::symlink_metadata(&path).is_ok() {
        if output.overwrite {
            std::fs::remove_dir_all(&path)
                .map_err(|e| TrainError::Data(format!("cannot remove {}: {e}", path.display())))?;
        } else if let Some(what) = existing_output(&path, &provenance, output.reuse_finished)? {
            return Err(TrainError::OutputExists {
                path: path.display().to_string(),
                what,
            });
        }
    }
    write::create(container, &dataset, &spec, WriteMode::Resume)?;
    let job = JobFile {
        format: 1,
        kind: JobKind::Predict,
        container: container.to_path_buf(),
        dataset,
        grid,
        ledger: output.ledger,
        provenance: Some(provenance),
        source: serde_json::Value::Null,
        worker: output.worker.clone(),
        then: Vec::new(),
    };
    match JobFile::load(&path)? {
        // Another process prepared the same job first: keep its description.
        Some(existing) if existing.provenance == job.provenance && existing.grid == job.grid => {
            Ok(existing)
        }
        _ => {
            job.store()?;
            Ok(job)
        }
    }
}

/// What exists at an output path that a prediction with `provenance` may not continue,
/// described; `None` when it is an unfinished prediction made the same way.
fn existing_output(
    path: &Path,
    provenance: &Provenance,
    reuse_finished: bool,
) -> Result<Option<String>, TrainError> {
    let existing = crate::array::open(path)
        .ok()
        .and_then(|a| a.attributes()?.get("segno_prediction").cloned());
    let recorded = existing
        .as_ref()
        .and_then(|r| serde_json::from_value::<Provenance>(r["provenance"].clone()).ok());
    let iteration = existing.as_ref().and_then(|r| r["iteration"].as_u64());
    let job = JobFile::load(path).ok().flatten();
    let finished = match &job {
        Some(j) => {
            j.ledger("reader")?
                .done_count()
                .map_err(|e| TrainError::Data(e.to_string()))?
                >= j.grid.len()
        }
        None => true,
    };
    Ok(match (&recorded, iteration) {
        (Some(r), _) if !finished || (reuse_finished && job.is_some()) => {
            let differences = r.differences(provenance);
            if differences.is_empty() {
                None
            } else {
                Some(format!(
                    "an unfinished prediction made otherwise; {}",
                    differences.join("; ")
                ))
            }
        }
        (_, Some(i)) if job.is_some() => Some(format!("a finished prediction of iteration {i}")),
        (None, Some(i)) => Some(format!(
            "a prediction of iteration {i} without a record of what made it"
        )),
        (Some(r), _) => Some(format!("a prediction of iteration {}", r.iteration)),
        (None, None) => Some("an array Segno did not predict".to_string()),
    })
}

/// Predicts `roi` of `raw` with `model` into `container/dataset` as one block job run by
/// this process (see [`prepare_prediction`] and [`work_prediction`]): blocks finished by an
/// earlier, interrupted call of the same prediction are skipped, blocks another live
/// worker holds are left to it (and waited for).
pub fn predict(
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    roi: Option<Roi>,
    output: &PredictOutput<'_>,
    on_block: impl FnMut(usize, usize) + Send,
) -> Result<PredictReport, TrainError> {
    let job = prepare_prediction(model, inference, raw, roi, output)?;
    let done_before = job
        .ledger("status")?
        .done_count()
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let total = job.grid.len() as usize;
    let progress = std::sync::Mutex::new((done_before as usize, on_block));
    let work = work_prediction(
        &job,
        model,
        inference,
        raw,
        &WorkOptions::sweeping(),
        &|_| {
            let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
            p.0 += 1;
            let n = p.0.min(total);
            (p.1)(n, total);
        },
    )?;
    Ok(PredictReport {
        output: job.output(),
        roi: job.grid.roi,
        blocks: job.grid.len() as usize,
        skipped: work.done_before as usize,
        work,
    })
}

/// How many prediction pipelines (each one network evaluation on one CPU thread) a worker
/// with `cpus` CPU threads runs at once on the CPU: one per thread, as far as the memory
/// available (`available_bytes`, default: the system's) holds a block's activations each.
/// On a GPU: one.
pub fn cpu_pipelines(
    run: &RunConfig,
    inference: &Inference,
    cpus: usize,
    available_bytes: Option<u64>,
) -> usize {
    if inference.device != tch::Device::Cpu {
        return 1;
    }
    let widest = match &run.architecture_config {
        crate::config::ArchitectureConfig::CnnectomeUnet(u) => {
            u.num_fmaps.max(u.fmaps_out).max(u.fmaps_in).max(1)
        }
        crate::config::ArchitectureConfig::Dummy(_) => 1,
    };
    let voxels: f64 = inference.input_shape.iter().map(|v| v as f64).product();
    // A few full-resolution feature maps of the widest layer alive at once.
    let per_block = voxels * f64::from(widest) * 4.0 * 4.0;
    let available = available_bytes.or_else(available_memory_bytes);
    let by_memory = available
        .map(|a| ((a as f64 * 0.8) / per_block.max(1.0)).floor() as usize)
        .unwrap_or(cpus);
    cpus.min(by_memory).max(1)
}

/// The memory the system reports available (Linux `MemAvailable`), if it can be read.
fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Takes part in the prediction job `job` with `pipelines` pipelines at once, each a
/// worker of its own (named `<worker>-p<i>`) with its own copy of the network from
/// `load`. On the CPU every network evaluation then runs on one thread, so the values
/// written do not depend on how many threads, processes or machines share the job (a
/// convolution's sums are ordered by its thread count). `progress(done, total)` follows
/// the job as this process sees it.
#[allow(clippy::too_many_arguments)]
pub fn work_prediction_parallel(
    job: &JobFile,
    load: &(dyn Fn() -> Result<LoadedModel, TrainError> + Sync),
    pipelines: usize,
    inference: &Inference,
    raw: &dyn ArraySource,
    options: &WorkOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<WorkReport, TrainError> {
    let pipelines = pipelines.max(1);
    let total = job.grid.len();
    let done_before = job
        .ledger("status")?
        .done_count()
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let mut done = done_before as usize;
    progress(done, total as usize);
    let threads_before = crate::device::cpu_threads();
    if inference.device == tch::Device::Cpu {
        crate::device::set_cpu_threads(1);
    } else {
        // cuDNN's benchmark mode picks convolution algorithms by timing them, which can
        // change the values from one block (or worker) to the next: off.
        tch::Cuda::cudnn_set_benchmark(false);
    }
    let reports = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let handles: Vec<_> = (0..pipelines)
            .map(|i| {
                let tx = tx.clone();
                let mut opts = options.clone();
                if pipelines > 1 {
                    opts.worker = format!("{}-p{}", options.worker, i + 1);
                    opts.start_fraction =
                        (options.start_fraction + i as f64 / pipelines as f64).fract();
                }
                scope.spawn(move || -> Result<WorkReport, TrainError> {
                    let model = load()?;
                    let tx = std::sync::Mutex::new(tx);
                    work_prediction(job, &model, inference, raw, &opts, &|k| {
                        let _ = tx.lock().map(|t| t.send(k));
                    })
                })
            })
            .collect();
        drop(tx);
        // Progress is reported on this thread as the pipelines finish blocks.
        for _ in rx {
            done += 1;
            progress(done.min(total as usize), total as usize);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().map_err(|_| {
                    TrainError::Data("a prediction pipeline stopped unexpectedly".into())
                })?
            })
            .collect::<Result<Vec<_>, TrainError>>()
    });
    crate::device::set_cpu_threads(threads_before);
    let reports = reports?;
    let summary = job
        .ledger("status")?
        .summary(total)
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let mut merged = job.report(
        done_before,
        reports.iter().map(|r| r.finished).sum(),
        reports.iter().map(|r| r.failed_attempts).sum(),
        summary,
    );
    merged.ledger_secs = reports.iter().map(|r| r.ledger_secs).sum();
    merged.block_secs = reports.iter().map(|r| r.block_secs).sum();
    Ok(merged)
}

/// Failures in a row, with no block done, after which a worker stops: the cause is not
/// one block but the job.
const FAILURES_BEFORE_STOPPING: u64 = 4;

/// Takes part in the prediction job `job` as one worker: claims blocks in the ledger,
/// predicts each with its context, writes it (clipped to the region, whole chunks) and
/// records it done, until no block is left to take (or, with `options.sweep`, until every
/// block is done or given up). A block that fails is recorded and retried up to the job's
/// attempts; the blocks given up are reported. Reading, the network and writing overlap.
/// `on_finished(block)` is called as this worker finishes each block.
pub fn work_prediction(
    job: &JobFile,
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    options: &WorkOptions,
    on_finished: &(dyn Fn(u64) + Sync),
) -> Result<WorkReport, TrainError> {
    let grid = &job.grid;
    let roi = grid.roi;
    let total = grid.len();
    if grid.block_nm != inference.out_vs * inference.output_shape {
        return Err(TrainError::Data(format!(
            "{}: the job's blocks are {} nm, this worker's network output is {} nm",
            job.dir().display(),
            grid.block_nm,
            inference.out_vs * inference.output_shape
        )));
    }
    let ledger_error = |e: ledger::LedgerError| TrainError::Data(e.to_string());
    let ledger = std::sync::Arc::new(job.ledger(&options.worker)?);
    let _beat = ledger.keep_beating().map_err(ledger_error)?;
    let writer = write::reopen(&job.container, &job.dataset)?;
    let encoding = job
        .provenance
        .as_ref()
        .and_then(|p| p.parameters["data_type"].as_str())
        .filter(|t| *t == DataType::U8.to_string())
        .and_then(|_| PredictionType::Uint8.encoding(model.model.eval_activation()));
    let channels = model.channels;
    let out_vs = inference.out_vs;
    let done_before = ledger.done_count().map_err(ledger_error)?;
    let mut report = WorkReport {
        total,
        done_before,
        ..WorkReport::default()
    };
    // Three stages overlap: claiming and reading the next inputs, the network, writing.
    type Claimed = (u64, u32, Roi, std::time::Instant);
    type Input = (Claimed, Result<ndarray::ArrayD<f32>, TrainError>);
    type Output = (Claimed, Result<(Vec<f32>, Vec<usize>), TrainError>);
    enum Outcome {
        Done,
        Failed,
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ledger_nanos = std::sync::atomic::AtomicU64::new(0);
    let block_nanos = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<(), TrainError> {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Input>(2);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Output>(2);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<(u64, Outcome), TrainError>>();
        let ledger_ref = &ledger;
        let stop = &stop;
        let (ledger_nanos, block_nanos) = (&ledger_nanos, &block_nanos);
        let timed = |since: std::time::Instant, total: &std::sync::atomic::AtomicU64| {
            let n = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        };
        let claimer = scope.spawn(move || -> Result<(), TrainError> {
            let mut settled = vec![false; usize::try_from(total).unwrap_or(usize::MAX)];
            loop {
                let mut took = false;
                let mut waiting = false;
                for k in job::visiting_order(total, options.start_fraction) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return Ok(());
                    }
                    if settled[k as usize] {
                        continue;
                    }
                    let asked = std::time::Instant::now();
                    let claim = ledger_ref.claim(k).map_err(ledger_error)?;
                    timed(asked, ledger_nanos);
                    match claim {
                        ledger::Claim::Mine(attempt) => {
                            took = true;
                            let block = grid.block(k);
                            let started = std::time::Instant::now();
                            let x = inference.read_input(raw, &block);
                            if in_tx.send(((k, attempt, block, started), x)).is_err() {
                                return Ok(());
                            }
                        }
                        ledger::Claim::Done | ledger::Claim::GaveUp(_) => {
                            settled[k as usize] = true
                        }
                        // Blocks this worker holds are in its pipeline already.
                        ledger::Claim::Busy(w) => waiting |= w != options.worker,
                    }
                }
                if !(took || options.sweep && waiting) {
                    return Ok(());
                }
                if !took {
                    std::thread::sleep(job::idle_pause(job));
                }
            }
        });
        let writer = &writer;
        scope.spawn(move || {
            for ((k, attempt, block, started), result) in out_rx {
                let written = result.and_then(|(values, shape)| {
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
                    writer.write(&part, &data).map_err(TrainError::from)
                });
                // The ledger lists a block only once all its chunks are written.
                let recording = std::time::Instant::now();
                timed(started, block_nanos);
                let outcome = match written {
                    Ok(()) => ledger_ref
                        .complete(k, attempt, started.elapsed().as_secs_f64())
                        .map(|()| (k, Outcome::Done))
                        .map_err(ledger_error),
                    Err(e) => {
                        tracing::warn!("block {k} ({block}), attempt {attempt}: {e}");
                        ledger_ref
                            .fail(k, attempt, &e.to_string())
                            .map(|_| (k, Outcome::Failed))
                            .map_err(ledger_error)
                    }
                };
                timed(recording, ledger_nanos);
                if done_tx.send(outcome).is_err() {
                    break;
                }
            }
        });
        let mut in_flight = 0usize;
        let mut consecutive_failures = 0u64;
        let mut first_error: Option<String> = None;
        let mut handle = |r: Result<(u64, Outcome), TrainError>,
                          report: &mut WorkReport|
         -> Result<(), TrainError> {
            match r? {
                (k, Outcome::Done) => {
                    report.finished += 1;
                    consecutive_failures = 0;
                    on_finished(k);
                }
                (k, Outcome::Failed) => {
                    report.failed_attempts += 1;
                    consecutive_failures += 1;
                    if first_error.is_none() {
                        first_error = Some(format!("block {k} ({})", grid.written(k)));
                    }
                    if report.finished == 0 && consecutive_failures >= FAILURES_BEFORE_STOPPING {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            Ok(())
        };
        for (claimed, x) in in_rx {
            let y = x.and_then(|x| {
                let (values, shape) = inference.forward(&model.model, &x)?;
                if shape.first() != Some(&channels) {
                    return Err(TrainError::Data(format!(
                        "the network produced {shape:?}, expected {channels} channels"
                    )));
                }
                Ok((values, shape))
            });
            if out_tx.send((claimed, y)).is_err() {
                break;
            }
            in_flight += 1;
            while let Ok(r) = done_rx.try_recv() {
                in_flight -= 1;
                handle(r, &mut report)?;
            }
        }
        drop(out_tx);
        for r in done_rx.iter().take(in_flight) {
            handle(r, &mut report)?;
        }
        claimer
            .join()
            .map_err(|_| TrainError::Data("the block reader stopped unexpectedly".into()))??;
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            let last = ledger
                .events()
                .ok()
                .and_then(|events| {
                    events
                        .into_iter()
                        .rev()
                        .find(|(w, e)| *w == options.worker && e.event == "failed")
                        .and_then(|(_, e)| e.detail)
                })
                .map(|d| d.as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            return Err(TrainError::Data(format!(
                "{} failed {consecutive_failures} times in a row and no block succeeded, the first at {}: {last}",
                options.worker,
                first_error.unwrap_or_default()
            )));
        }
        Ok(())
    })?;
    let summary = ledger.summary(total).map_err(ledger_error)?;
    let mut finished = job.report(
        report.done_before,
        report.finished,
        report.failed_attempts,
        summary,
    );
    let secs = |n: &std::sync::atomic::AtomicU64| {
        n.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9
    };
    finished.ledger_secs = secs(&ledger_nanos);
    finished.block_secs = secs(&block_nanos);
    Ok(finished)
}
