//! Looking at what a run would train on and with: the targets and weights a task makes of
//! a ground-truth crop (written as arrays for the viewer), and a network's sizes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::{
    ArchitectureConfig, DataSplitConfig, DatasetConfig, RawGTDatasetConfig, RunConfig, ShapeReport,
    TaskConfig,
};
use crate::geometry::Coordinate;
use crate::task::predictor::Predictor;
use crate::train::validate::read_gt;
use crate::train::TrainError;

/// What [`write_targets`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetsReport {
    /// The target array (`container/target`).
    pub target: PathBuf,
    /// The weight array (`container/weight`).
    pub weight: PathBuf,
    /// Channels of each.
    pub channels: usize,
    /// The region (the ground truth's), offset and shape in nm.
    pub roi_nm: (Vec<i64>, Vec<i64>),
    /// Per channel: the smallest and largest target value.
    pub target_range: Vec<(f32, f32)>,
    /// Per channel: the smallest and largest weight.
    pub weight_range: Vec<(f32, f32)>,
}

fn ranges(a: &ndarray::ArrayD<f32>) -> Vec<(f32, f32)> {
    a.outer_iter()
        .map(|c| {
            c.iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                })
        })
        .collect()
}

/// Computes the targets and weights `task` makes of the ground truth `gt` (annotated where
/// `mask` is non-zero, everywhere without one) over its whole region, as training does
/// for a patch (class balance from this crop alone), and writes them as OME-Zarr float32
/// arrays `target` and `weight` into `container` (an existing one only with `overwrite`).
pub fn write_targets(
    task: &TaskConfig,
    gt: &dyn ArraySource,
    mask: Option<&dyn ArraySource>,
    container: &Path,
    overwrite: bool,
) -> Result<TargetsReport, TrainError> {
    let predictor = Predictor::from_task(task)?;
    let mode = if overwrite {
        WriteMode::Overwrite
    } else {
        WriteMode::CreateNew
    };
    // Both outputs are checked before either is written: never one without the other.
    let inputs: Vec<&Path> = std::iter::once(gt)
        .chain(mask)
        .map(|a| Path::new(&a.info().path))
        .collect();
    for name in ["target", "weight"] {
        write::check_destination(container, name, &inputs, mode)?;
    }
    let info = gt.info();
    let roi = info.roi;
    let vs = info.geometry.voxel_size;
    let labels = read_gt(gt, &roi, &predictor)?;
    let known = match mask {
        Some(m) => {
            let mut k = m
                .read_filled(&roi, 0.0)?
                .to_f32()
                .mapv(|v| f32::from(u8::from(v > 0.0)));
            if k.ndim() == roi.dims() {
                k = k.insert_axis(ndarray::Axis(0));
            }
            if k.shape()[0] == 1 && labels.shape()[0] > 1 {
                let views: Vec<_> = (0..labels.shape()[0])
                    .map(|_| k.index_axis(ndarray::Axis(0), 0))
                    .collect();
                k = ndarray::stack(ndarray::Axis(0), &views)
                    .map_err(|e| TrainError::Data(e.to_string()))?;
            }
            k
        }
        None => ndarray::ArrayD::from_elem(labels.raw_dim(), 1.0),
    };
    let spacing: Vec<f64> = vs.iter().map(|v| v as f64).collect();
    let targets = predictor.targets(&labels, &known, &spacing)?;
    let weight = predictor.weights(&mut Vec::new(), &targets)?;
    let store = |name: &str, values: &ndarray::ArrayD<f32>| -> Result<PathBuf, TrainError> {
        let spec = ArraySpec::new(DataType::F32, roi, vs, Some(values.shape()[0] as u64));
        write::create(container, name, &spec, mode)?
            .write(&roi, &ArrayData::F32(values.clone()))?;
        Ok(container.join(name))
    };
    Ok(TargetsReport {
        target: store("target", &targets.target)?,
        weight: store("weight", &weight)?,
        channels: targets.target.shape()[0],
        roi_nm: (roi.offset().to_vec(), roi.shape().to_vec()),
        target_range: ranges(&targets.target),
        weight_range: ranges(&weight),
    })
}

/// Writes the targets and weights of `run`'s task for one dataset of its datasplit
/// (`dataset`, default the first training dataset) into `container`, as
/// [`write_targets`] does; relative array paths are read against `project`. Returns the
/// report and the dataset used.
pub fn write_run_targets(
    project: &Path,
    run: &RunConfig,
    dataset: Option<&str>,
    container: &Path,
    overwrite: bool,
) -> Result<(TargetsReport, RawGTDatasetConfig), TrainError> {
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return Err(TrainError::Data(format!(
            "run `{}`: its datasplit lists no datasets; give a ground-truth array instead",
            run.name
        )));
    };
    let all: Vec<&DatasetConfig> = split
        .train_configs
        .iter()
        .chain(&split.validate_configs)
        .collect();
    let chosen = match dataset {
        Some(d) => all.iter().find(|c| c.name() == d).copied(),
        None => all.first().copied(),
    };
    let Some(DatasetConfig::RawGt(d)) = chosen else {
        let names: Vec<&str> = all.iter().map(|c| c.name()).collect();
        return Err(TrainError::Data(format!(
            "run `{}` has no dataset {:?} with ground truth; its datasets: {}",
            run.name,
            dataset.unwrap_or_default(),
            names.join(", ")
        )));
    };
    let Some(gt) = &d.gt_config else {
        return Err(TrainError::Data(format!(
            "dataset `{}` has no gt_config",
            d.name
        )));
    };
    let open = |c: &crate::config::ArrayConfig| crate::array::open::open_config(c, project);
    let gt = open(gt)?;
    let mask = d.mask_config.as_ref().map(open).transpose()?;
    let report = write_targets(
        &run.task_config,
        gt.as_ref(),
        mask.as_deref(),
        container,
        overwrite,
    )?;
    Ok((report, d.clone()))
}

/// The sizes of `architecture` (a U-Net) with `task`'s prediction head (a 1×1 head
/// without a task) for `input` (default: its input shape) at `voxel_size_nm`.
pub fn shapes(
    architecture: &ArchitectureConfig,
    task: Option<&TaskConfig>,
    input: Option<Coordinate>,
    voxel_size_nm: Option<Coordinate>,
) -> Result<ShapeReport, TrainError> {
    let ArchitectureConfig::CnnectomeUnet(unet) = architecture else {
        return Err(TrainError::Data(format!(
            "architecture `{}` is not a CNNectomeUNet: only U-Nets have sizes to show",
            architecture.name()
        )));
    };
    let head = match task {
        Some(t) => Predictor::from_task(t)?.head().kernel_size,
        None => 1,
    };
    if let Some(i) = &input {
        if i.dims() != unet.input_shape.dims() {
            return Err(TrainError::Data(format!(
                "--input {i} has {} axes, the network {}",
                i.dims(),
                unet.input_shape.dims()
            )));
        }
    }
    Ok(unet.shape_report(input, voxel_size_nm, head))
}
