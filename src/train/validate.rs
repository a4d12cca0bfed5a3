//! Validation: predict every validation crop with the current weights (tiling the crop
//! with output blocks, the remainder included), threshold the prediction at every point of
//! the post-processor grid, score each result against the ground truth, store the scores
//! and record the best iteration and parameters per (dataset, criterion).

use std::path::Path;

use ndarray::{ArrayD, Axis, IxDyn};
use tch::Tensor;

use super::sample::{open_datasets, TrainDataset};
use super::TrainError;
use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource};
use crate::geometry::{Coordinate, Roi};
use crate::nn::Model;
use crate::store::layout::RunDir;
use crate::task::predictor::{GtKind, Predictor, Segmentation};

/// The most blocks one prediction may cover (2^27, about 134 million: 10⁵ voxels on a side
/// in blocks of 20³); larger regions are refused, naming this limit.
pub const MAX_BLOCKS: u64 = 1 << 27;

/// Shapes and normalisation for running a trained network over a region.
#[derive(Debug, Clone, PartialEq)]
pub struct Inference {
    /// Network input block (voxels).
    pub input_shape: Coordinate,
    /// Network output block (voxels).
    pub output_shape: Coordinate,
    /// Raw voxel size (nm).
    pub raw_vs: Coordinate,
    /// Output voxel size (nm).
    pub out_vs: Coordinate,
    /// (scale, shift) applied to raw before the network (the training normalisation).
    pub normalisation: (f32, f32),
    /// Where the network runs.
    pub device: tch::Device,
    /// The floating-point type the network computes in (its weights must have been
    /// converted to it, see `LoadedModel::set_precision`).
    pub precision: Precision,
}

/// The floating-point type a network computes in: float32 (what it was trained in), or
/// bfloat16 / float16 (half the memory, faster on GPUs that have them; values differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    Float32,
    /// bfloat16: float32's range with 8 bits of mantissa.
    Bfloat16,
    /// IEEE half precision.
    Float16,
}

impl Precision {
    /// The names users give.
    pub const NAMES: [&'static str; 3] = ["float32", "bfloat16", "float16"];

    /// The precision called `name` (see [`Precision::NAMES`]).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "float32" => Some(Precision::Float32),
            "bfloat16" => Some(Precision::Bfloat16),
            "float16" => Some(Precision::Float16),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Bfloat16 => "bfloat16",
            Precision::Float16 => "float16",
        }
    }

    /// The tensor kind.
    pub fn kind(self) -> tch::Kind {
        match self {
            Precision::Float32 => tch::Kind::Float,
            Precision::Bfloat16 => tch::Kind::BFloat16,
            Precision::Float16 => tch::Kind::Half,
        }
    }
}

impl Inference {
    /// The inference shapes and normalisation of `run` for raw data at `raw_vs`: the
    /// evaluation block (input_shape + eval_shape_increase when set) and the input
    /// normalisation of the run's IntensityScaleShift augments.
    pub fn for_run(
        run: &crate::config::RunConfig,
        raw_vs: Coordinate,
        device: tch::Device,
    ) -> Result<Self, TrainError> {
        use crate::config::{ArchitectureConfig, TrainerConfig};
        let ArchitectureConfig::CnnectomeUnet(unet) = &run.architecture_config else {
            return Err(TrainError::Data(
                "only CNNectomeUNet architectures can predict".into(),
            ));
        };
        let input = match unet.eval_shape_increase {
            Some(inc) if inc.dims() == unet.input_shape.dims() => unet.input_shape + inc,
            _ => unet.input_shape,
        };
        let kernel = crate::task::predictor::Predictor::from_task(&run.task_config)?
            .head()
            .kernel_size;
        let output = crate::nn::model_output_shape(&run.architecture_config, kernel, &input)?;
        let normalisation = match &run.trainer_config {
            TrainerConfig::Gunpowder(t) => super::augment::input_normalisation(&t.augments),
            TrainerConfig::Dummy(_) => (1.0, 0.0),
        };
        Ok(Self {
            input_shape: input,
            output_shape: output,
            out_vs: crate::nn::output_voxel_size(unet, &raw_vs),
            raw_vs,
            normalisation,
            device,
            precision: Precision::Float32,
        })
    }

    /// A copy whose blocks are as large as `region` and a memory budget allow (fewer blocks,
    /// so less context computed twice; the outputs are the same): per axis the fewest
    /// blocks that cover the region, each the smallest valid input that does, at least the
    /// configured one; while the input exceeds `max_input_voxels`, the largest axis gets one
    /// more block.
    pub fn sized_for(
        &self,
        run: &crate::config::RunConfig,
        region: &Roi,
        max_input_voxels: f64,
    ) -> Result<Self, TrainError> {
        let kernel = crate::task::predictor::Predictor::from_task(&run.task_config)?
            .head()
            .kernel_size;
        let arch = &run.architecture_config;
        let dims = self.input_shape.dims();
        // Valid (input, output) sizes per axis, from the configured block up.
        let mut options: Vec<Vec<(i64, i64)>> = Vec::with_capacity(dims);
        for a in 0..dims {
            let want = region.shape()[a] / self.out_vs[a];
            let mut list = Vec::new();
            for extra in 0..2048 {
                let mut input = self.input_shape.to_vec();
                input[a] += extra;
                let input = Coordinate::new(&input).map_err(|e| TrainError::Data(e.to_string()))?;
                if let Ok(out) = crate::nn::model_output_shape(arch, kernel, &input) {
                    list.push((input[a], out[a]));
                    if out[a] >= want {
                        break;
                    }
                }
            }
            if list.is_empty() {
                list.push((self.input_shape[a], self.output_shape[a]));
            }
            options.push(list);
        }
        let want: Vec<i64> = (0..dims)
            .map(|a| (region.shape()[a] / self.out_vs[a]).max(1))
            .collect();
        let largest: Vec<i64> = options
            .iter()
            .map(|o| o.last().map_or(1, |p| p.1))
            .collect();
        let mut blocks: Vec<i64> = (0..dims)
            .map(|a| (want[a] + largest[a] - 1) / largest[a].max(1))
            .collect();
        let pick = |a: usize, n: i64| -> (i64, i64) {
            let need = (want[a] + n - 1) / n.max(1);
            options[a]
                .iter()
                .copied()
                .find(|(_, out)| *out >= need)
                .or_else(|| options[a].last().copied())
                .unwrap_or((self.input_shape[a], self.output_shape[a]))
        };
        loop {
            let chosen: Vec<(i64, i64)> = (0..dims).map(|a| pick(a, blocks[a])).collect();
            let voxels: f64 = chosen.iter().map(|(i, _)| *i as f64).product();
            let smallest = (0..dims).all(|a| chosen[a].0 <= self.input_shape[a]);
            if voxels <= max_input_voxels || smallest {
                let input: Vec<i64> = chosen.iter().map(|c| c.0).collect();
                let output: Vec<i64> = chosen.iter().map(|c| c.1).collect();
                let coord =
                    |v: &[i64]| Coordinate::new(v).map_err(|e| TrainError::Data(e.to_string()));
                return Ok(Self {
                    input_shape: coord(&input)?,
                    output_shape: coord(&output)?,
                    ..self.clone()
                });
            }
            // More blocks along the axis with the largest input: as many as the next
            // smaller valid block needs (one at a time would take ~region/block steps).
            let a = (0..dims)
                .filter(|a| chosen[*a].0 > self.input_shape[*a])
                .max_by_key(|a| chosen[*a].0)
                .unwrap_or(0);
            let smaller = options[a]
                .iter()
                .rev()
                .find(|(input, _)| *input < chosen[a].0)
                .map_or(1, |(_, out)| (*out).max(1));
            let enough = (want[a] + smaller - 1) / smaller;
            blocks[a] = enough.max(blocks[a].saturating_add(1));
        }
    }

    /// The world context on each side between input and output blocks.
    pub fn context(&self) -> Coordinate {
        (self.raw_vs * self.input_shape - self.out_vs * self.output_shape)
            / Coordinate::splat(2, self.raw_vs.dims())
    }

    /// Output blocks covering `roi` (world): a regular grid of the output size, the last
    /// block on each axis moved back to end at the region's end (so nothing is left out).
    pub fn blocks(&self, roi: &Roi) -> Result<Vec<Roi>, TrainError> {
        let size = self.out_vs * self.output_shape;
        let dims = size.dims();
        // Refuse a region of more blocks than can be listed before listing them.
        let count = (0..dims).try_fold(1u64, |n, a| {
            let span = u64::try_from(roi.end()[a] - roi.begin()[a]).unwrap_or(0);
            let per_axis = span
                .div_ceil(u64::try_from(size[a].max(1)).unwrap_or(1))
                .max(1);
            n.checked_mul(per_axis)
        });
        if count.is_none_or(|n| n > MAX_BLOCKS) {
            return Err(TrainError::Data(format!(
                "the region {roi} needs more than {MAX_BLOCKS} blocks of {size} nm: predict a smaller region (--roi)"
            )));
        }
        let mut starts: Vec<Vec<i64>> = Vec::with_capacity(dims);
        for a in 0..dims {
            let (b, e, s) = (roi.begin()[a], roi.end()[a], size[a]);
            let mut v = Vec::new();
            let mut o = b;
            while o + s < e {
                v.push(o);
                o += s;
            }
            // The last block ends at the region's end (or starts at its begin if smaller).
            let last = (e - s).max(b);
            let last = b + (last - b).div_euclid(self.out_vs[a]) * self.out_vs[a];
            if v.last() != Some(&last) {
                v.push(last);
            }
            starts.push(v);
        }
        let counts: Vec<u64> = starts.iter().map(|v| v.len() as u64).collect();
        write::grid_indices(&counts)
            .into_iter()
            .map(|idx| {
                let o: Vec<i64> = idx
                    .iter()
                    .enumerate()
                    .map(|(a, i)| starts[a][*i as usize])
                    .collect();
                let o = Coordinate::new(&o).map_err(|e| TrainError::Data(e.to_string()))?;
                Roi::new(o, size).map_err(|e| TrainError::Data(e.to_string()))
            })
            .collect()
    }

    /// The network input for output block `block`: raw grown by the context (zero beyond
    /// the data), with a channel axis, normalised.
    pub fn read_input(
        &self,
        raw: &dyn ArraySource,
        block: &Roi,
    ) -> Result<ArrayD<f32>, TrainError> {
        let context = self.context();
        let input_roi = block
            .grow(&context, &context)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        let mut x = raw.read_filled(&input_roi, 0.0)?.to_f32();
        if x.ndim() == self.raw_vs.dims() {
            x = x.insert_axis(Axis(0));
        }
        let (s, sh) = self.normalisation;
        x.mapv_inplace(|v| v * s + sh);
        Ok(x)
    }

    /// Runs `model` in evaluation mode on one input `(channels, spatial…)`; returns the
    /// output values (row-major) and their shape `(channels, spatial…)`.
    pub fn forward(
        &self,
        model: &Model,
        x: &ArrayD<f32>,
    ) -> Result<(Vec<f32>, Vec<usize>), TrainError> {
        let dims: Vec<i64> = std::iter::once(1)
            .chain(x.shape().iter().map(|n| *n as i64))
            .collect();
        let contiguous = x.as_standard_layout();
        let data = contiguous
            .as_slice()
            .ok_or_else(|| TrainError::Data("a batch is not contiguous".into()))?;
        let mut t = Tensor::from_slice(data)
            .f_view(dims.as_slice())?
            .f_to_device(self.device)?;
        if self.precision != Precision::Float32 {
            t = t.f_to_kind(self.precision.kind())?;
        }
        let y = tch::no_grad(|| model.forward_t(&t, false))
            .map_err(|e| {
                TrainError::Data(format!(
                    "the network cannot compute in {} on {:?}: {e}",
                    self.precision.name(),
                    self.device
                ))
            })?
            .f_to_kind(tch::Kind::Float)?
            .f_to_device(tch::Device::Cpu)?;
        let ys: Vec<usize> = y.size()[1..].iter().map(|n| *n as usize).collect();
        let values: Vec<f32> = Vec::<f32>::try_from(y.f_flatten(0, -1)?)?;
        Ok((values, ys))
    }

    /// Predicts `roi` (world, on the output grid) from `raw` into a `(channels, spatial…)`
    /// array; raw beyond its data reads as 0.
    pub fn predict(
        &self,
        model: &Model,
        raw: &dyn ArraySource,
        roi: &Roi,
        channels: usize,
    ) -> Result<ArrayD<f32>, TrainError> {
        let shape: Vec<usize> = std::iter::once(channels)
            .chain((roi.shape() / self.out_vs).iter().map(|v| v as usize))
            .collect();
        let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
        for block in self.blocks(roi)? {
            let x = self.read_input(raw, &block)?;
            let (values, ys) = self.forward(model, &x)?;
            // The part of the block inside the region, copied into place.
            let part = block.intersect(roi);
            let src_off = (part.begin() - block.begin()) / self.out_vs;
            let dst_off = (part.begin() - roi.begin()) / self.out_vs;
            let n = part.shape() / self.out_vs;
            let src_ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..channels)
                .chain((0..n.dims()).map(|a| src_off[a] as usize..(src_off[a] + n[a]) as usize))
                .collect();
            let dst_offset: Vec<usize> = std::iter::once(0)
                .chain(dst_off.iter().map(|v| v as usize))
                .collect();
            crate::array::data::copy_sub_block(&mut out, &dst_offset, &values, &ys, &src_ranges);
        }
        Ok(out)
    }
}

/// What a validation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationOutcome {
    /// The iteration validated.
    pub iteration: u64,
    /// Per dataset, per parameter set: the criteria values, in `criteria` order.
    pub scores: Vec<Vec<Vec<f64>>>,
    /// Criterion names.
    pub criteria: Vec<String>,
    /// Parameter-set names.
    pub parameters: Vec<String>,
    /// Dataset names.
    pub datasets: Vec<String>,
    /// Datasets that could not be validated (their scores are NaN), with the error.
    pub errors: std::collections::BTreeMap<String, String>,
}

/// The checkpoint iterations among `checkpoints` that were due a validation (`due`) but
/// have no stored scores, or whose validation arrays are marked incomplete (a kill or a
/// full disk between the checkpoint and the end of its validation).
pub fn unvalidated_iterations(
    project: &Path,
    run_name: &str,
    checkpoints: &[u64],
    due: impl Fn(u64) -> bool,
) -> Result<Vec<u64>, TrainError> {
    let scored: std::collections::BTreeSet<u64> =
        crate::store::scores::read_stored_scores(&RunDir::new(project, run_name))?
            .map(|s| s.iterations().collect())
            .unwrap_or_default();
    let layout = RunDir::new(project, run_name);
    Ok(checkpoints
        .iter()
        .copied()
        .filter(|i| due(*i))
        .filter(|i| !scored.contains(i) || layout.validation_incomplete_marker(*i).exists())
        .collect())
}

/// Validates `model` at `iteration` on `datasets` with the task's `predictor`, writing
/// predictions and outputs under `<run>/validation.zarr/<iteration>/`, the scores to the
/// stats store and the best (iteration, parameters) per dataset and criterion to
/// `<run>/checkpoints/<dataset>/<criterion>.json`. A dataset that cannot be validated (an
/// unreadable crop, a failing post-processing) gets NaN scores and its error is stored with
/// them; the others are scored as usual. Affinity crops of more than
/// `max_watershed_voxels` voxels are segmented block by block.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    project: &Path,
    run_name: &str,
    iteration: u64,
    model: &Model,
    inference: &Inference,
    datasets: &[TrainDataset],
    predictor: &Predictor,
    max_watershed_voxels: usize,
) -> Result<ValidationOutcome, TrainError> {
    let layout = RunDir::new(project, run_name);
    let container = layout.validation_container();
    let grid = predictor.parameters();
    let parameters: Vec<String> = grid.iter().map(|p| p.name()).collect();
    let criteria = predictor.criteria();
    let names: Vec<String> = datasets.iter().map(|d| d.name.clone()).collect();
    // The iteration's arrays are marked incomplete until its scores are stored; what an
    // interrupted validation of it left is removed first.
    let iteration_dir = layout.validation_iteration(iteration);
    let io = |e: std::io::Error| TrainError::Data(format!("{}: {e}", iteration_dir.display()));
    if iteration_dir.exists() {
        std::fs::remove_dir_all(&iteration_dir).map_err(io)?;
    }
    std::fs::create_dir_all(&iteration_dir).map_err(io)?;
    std::fs::write(layout.validation_incomplete_marker(iteration), b"").map_err(io)?;
    let mut block = Vec::with_capacity(datasets.len());
    let mut errors = std::collections::BTreeMap::new();
    for d in datasets {
        let outcome = validate_dataset(
            &container,
            iteration,
            model,
            inference,
            d,
            predictor,
            max_watershed_voxels,
        );
        match outcome {
            Ok(per_param) => block.push(per_param),
            Err(e) => {
                tracing::warn!(
                    "validation of `{}` at iteration {iteration} failed: {e}",
                    d.name
                );
                errors.insert(d.name.clone(), e.to_string());
                block.push(vec![vec![f64::NAN; criteria.len()]; grid.len()]);
            }
        }
    }
    let path = layout.validation_scores();
    let mut store = crate::store::scores::read_scores(&path, &criteria, &parameters, &names)?;
    store
        .add_iteration(iteration, block.clone())
        .map_err(|e| TrainError::Data(e.to_string()))?;
    for (dataset, error) in &errors {
        store.add_failure(iteration, dataset, error);
    }
    crate::store::scores::write_scores(&path, &store)?;
    for entry in store.best_table() {
        if let Some((it, p, score)) = entry.best {
            let best = crate::store::layout::BestCheckpoint {
                iteration: it,
                parameters: parameters[p].clone(),
                score: Some(score),
            };
            layout
                .write_best(&entry.dataset, &entry.criterion, &best)
                .map_err(|e| TrainError::Data(e.to_string()))?;
        }
    }
    std::fs::remove_file(layout.validation_incomplete_marker(iteration)).map_err(io)?;
    Ok(ValidationOutcome {
        iteration,
        scores: block,
        criteria,
        parameters,
        datasets: names,
        errors,
    })
}

/// Predicts one validation dataset, post-processes the prediction with every parameter set
/// of the task's grid (affinity crops too large to segment in one piece block by block) and
/// scores each output where the ground truth is known (the dataset's mask).
fn validate_dataset(
    container: &Path,
    iteration: u64,
    model: &Model,
    inference: &Inference,
    d: &TrainDataset,
    predictor: &Predictor,
    max_watershed_voxels: usize,
) -> Result<Vec<Vec<f64>>, TrainError> {
    let channels = predictor.head().channels as usize;
    let roi = d.gt.info().roi;
    let store = |path: &str, data: &ArrayData, channels: Option<u64>| {
        let mut spec = ArraySpec::new(data.data_type(), roi, inference.out_vs, channels);
        spec.chunk_voxels = Some(inference.output_shape.iter().map(|v| v as u64).collect());
        write::create(container, path, &spec, WriteMode::Overwrite)?.write(&roi, data)?;
        Ok::<(), TrainError>(())
    };
    // The prediction is stored first: large affinity crops are segmented from it.
    let prediction_path = RunDir::validation_prediction_key(iteration, &d.name);
    let prediction = ArrayData::F32(inference.predict(model, d.raw.as_ref(), &roi, channels)?);
    store(&prediction_path, &prediction, Some(channels as u64))?;
    let ArrayData::F32(prediction) = prediction else {
        return Err(TrainError::Data("the prediction is not float32".into()));
    };
    let gt = read_gt(d.gt.as_ref(), &roi, predictor)?;
    let mask = read_mask(d, &roi)?;
    let spacing: Vec<f64> = inference.out_vs.iter().map(|v| v as f64).collect();
    let voxels: usize = prediction.shape().iter().skip(1).product();
    let blockwise =
        matches!(predictor, Predictor::Affinities { .. }) && voxels > max_watershed_voxels;
    let mut per_param = Vec::new();
    for (k, p) in predictor.parameters().iter().enumerate() {
        let path = RunDir::validation_output_key(iteration, &d.name, &p.name());
        let out = if blockwise {
            let stored = crate::array::open(&container.join(&prediction_path))?;
            let method = crate::blockwise::SegmentMethod::for_task(predictor, p)
                .ok_or_else(|| TrainError::Data(format!("{} is not a segmentation", p.name())))?;
            crate::blockwise::segment_array(
                stored.as_ref(),
                &method,
                &crate::blockwise::SegmentOptions {
                    max_one_piece_voxels: max_watershed_voxels as u64,
                    ..Default::default()
                },
                (container, &path, crate::array::write::WriteMode::Overwrite),
                &|_, _| {},
            )?;
            let labels = crate::array::open(&container.join(&path))?
                .read(&roi)?
                .to_labels()
                .map_err(TrainError::Data)?;
            Segmentation::Labels(labels)
        } else {
            let out = predictor.post_process(&prediction, p)?;
            match &out {
                Segmentation::Binary(b) => {
                    let c = b.shape()[0] as u64;
                    store(&path, &ArrayData::U8(b.clone()), Some(c))?
                }
                Segmentation::Labels(l) => store(&path, &ArrayData::U64(l.clone()), None)?,
            }
            out
        };
        let seed = iteration ^ (k as u64) << 32;
        per_param.push(predictor.evaluate_masked(&out, &gt, mask.as_ref(), &spacing, seed)?);
    }
    Ok(per_param)
}

/// Where a dataset's ground truth is known over `roi` (`(channels, spatial…)`, true where
/// its mask is non-zero; zero beyond the mask's region), or `None` without a mask.
pub fn read_mask(d: &TrainDataset, roi: &Roi) -> Result<Option<ArrayD<bool>>, TrainError> {
    let Some(m) = &d.mask else { return Ok(None) };
    let mut known = m.read_filled(roi, 0.0)?.to_f32().mapv(|v| v > 0.0);
    if known.ndim() == roi.dims() {
        known = known.insert_axis(Axis(0));
    }
    Ok(Some(known))
}

/// Deletes the validation arrays (`validation.zarr/<i>`) of every iteration that is neither
/// `latest` nor the best iteration of some (dataset, criterion) in the run's stored scores;
/// returns the iterations removed. Scores are kept.
pub fn prune_validation_arrays(
    project: &Path,
    run_name: &str,
    latest: u64,
) -> Result<Vec<u64>, TrainError> {
    let layout = RunDir::new(project, run_name);
    let Some(scores) = crate::store::scores::read_stored_scores(&layout)? else {
        return Ok(Vec::new());
    };
    let mut keep: std::collections::BTreeSet<u64> = scores
        .best_table()
        .into_iter()
        .filter_map(|e| e.best.map(|(i, _, _)| i))
        .collect();
    keep.insert(latest);
    let mut removed = Vec::new();
    for i in layout.validated_iterations() {
        if keep.contains(&i) {
            continue;
        }
        let dir = layout.validation_iteration(i);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| TrainError::Data(format!("cannot remove {}: {e}", dir.display())))?;
        removed.push(i);
    }
    Ok(removed)
}

/// Ground truth over `roi` as `predictor` reads it, with a channel axis.
pub fn read_gt(
    gt: &dyn ArraySource,
    roi: &Roi,
    predictor: &Predictor,
) -> Result<ArrayD<u64>, TrainError> {
    let mut labels = gt.read(roi)?.to_labels().map_err(TrainError::Data)?;
    if predictor.gt_kind() == GtKind::Binary {
        labels.mapv_inplace(|v| u64::from(v != 0));
    }
    if labels.ndim() == roi.dims() {
        labels = labels.insert_axis(Axis(0));
    }
    Ok(labels)
}

/// Opens a run's validation datasets.
pub fn open_validation(
    project: &Path,
    configs: &[crate::config::DatasetConfig],
) -> Result<Vec<TrainDataset>, TrainError> {
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    open_datasets(configs, project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_region_including_the_remainder() {
        let inf = Inference {
            input_shape: Coordinate::from([20, 20, 20]),
            output_shape: Coordinate::from([8, 8, 8]),
            raw_vs: Coordinate::from([4, 4, 4]),
            out_vs: Coordinate::from([4, 4, 4]),
            normalisation: (1.0, 0.0),
            device: tch::Device::Cpu,
            precision: Precision::Float32,
        };
        assert_eq!(inf.context(), Coordinate::from([24, 24, 24]));
        // 80 nm along z = 2.5 blocks of 32 nm: starts 0, 32 and 48 (moved back to end at 80).
        let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([80, 32, 16])).unwrap();
        let blocks = inf.blocks(&roi).unwrap();
        let zs: std::collections::BTreeSet<i64> = blocks.iter().map(|b| b.begin()[0]).collect();
        assert_eq!(zs.into_iter().collect::<Vec<_>>(), vec![0, 32, 48]);
        // Smaller than a block: one block starting at the region.
        let xs: std::collections::BTreeSet<i64> = blocks.iter().map(|b| b.begin()[2]).collect();
        assert_eq!(xs.into_iter().collect::<Vec<_>>(), vec![0]);
        assert_eq!(blocks.len(), 3);
    }

    #[test]
    fn prediction_blocks_grow_to_the_region_within_the_budget() {
        let options = crate::bench::engine::EngineBenchOptions {
            dir: std::path::PathBuf::new(),
            size: 256,
            input: 132,
            net: crate::bench::engine::BenchNet::Bench,
            iterations: 1,
            warmup: 1,
            threads: 1,
            python: None,
            reference: false,
        };
        let run = crate::bench::engine::bench_run(&options);
        let vs = Coordinate::from([8, 8, 8]);
        let inf = Inference::for_run(&run, vs, tch::Device::Cpu).unwrap();
        // Configured: 148³ in, 108³ out.
        assert_eq!(inf.input_shape, Coordinate::from([148, 148, 148]));
        assert_eq!(inf.output_shape, Coordinate::from([108, 108, 108]));
        // A 216³ region fits one 256³ → 216³ block.
        let region = Roi::new(
            Coordinate::from([320, 320, 320]),
            vs * Coordinate::from([216, 216, 216]),
        )
        .unwrap();
        let big = inf.sized_for(&run, &region, 1e9).unwrap();
        assert_eq!(big.input_shape, Coordinate::from([256, 256, 256]));
        assert_eq!(big.output_shape, Coordinate::from([216, 216, 216]));
        assert_eq!(big.blocks(&region).unwrap().len(), 1);
        assert_eq!(big.context(), inf.context());
        // A budget below 256³ splits one axis in two.
        let split = inf.sized_for(&run, &region, 256.0 * 256.0 * 200.0).unwrap();
        let mut out = split.output_shape.to_vec();
        out.sort();
        assert_eq!(out, [108, 216, 216]);
        assert_eq!(split.blocks(&region).unwrap().len(), 2);
        // Never below the configured block.
        let small = inf.sized_for(&run, &region, 1.0).unwrap();
        assert_eq!(small.input_shape, inf.input_shape);
    }
}
