//! Looking at what a run would train on and with: the targets and weights a task makes of
//! a ground-truth crop (written as arrays for the viewer), and a network's sizes (of a
//! config file, a stored architecture or a run).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::{AnyConfig, Family};
use crate::config::{
    ArchitectureConfig, DataSplitConfig, DatasetConfig, RawGTDatasetConfig, RunConfig, ShapeReport,
    TaskConfig,
};
use crate::geometry::Coordinate;
use crate::store::{Project, StoreError};
use crate::task::predictor::Predictor;
use crate::train::validate::read_gt;
use crate::train::TrainError;

use super::OpsError;

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

/// Where `segno targets` takes the task and the ground truth from.
pub enum TargetsSource<'a> {
    /// A stored run's task. Without `gt`, the ground truth (and mask) of its datasplit's
    /// `dataset` (default the first training dataset).
    Run {
        /// The project holding the run.
        project: &'a Project,
        /// The run's name.
        name: &'a str,
        /// The datasplit dataset to use when no `gt` is given.
        dataset: Option<&'a str>,
        /// A ground-truth array to use instead of the datasplit's.
        gt: Option<&'a Path>,
        /// Where `gt` is annotated (non-zero).
        mask: Option<&'a Path>,
    },
    /// A task config file and a ground-truth array.
    TaskFile {
        /// The task config file.
        file: &'a Path,
        /// The ground-truth array.
        gt: &'a Path,
        /// Where `gt` is annotated (non-zero).
        mask: Option<&'a Path>,
    },
}

/// What `segno targets` wrote, with the task and ground truth it used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetsOutcome {
    /// The task's name.
    #[serde(skip)]
    pub task: String,
    /// The ground truth used: an array path, or `dataset NAME` of the run's datasplit.
    #[serde(skip)]
    pub ground_truth: String,
    /// The arrays written and their value ranges.
    #[serde(flatten)]
    pub report: TargetsReport,
}

/// Writes the targets and weights of the task `source` names for its ground truth into
/// `container` (an existing one only with `overwrite`).
pub fn targets(
    source: TargetsSource<'_>,
    container: &Path,
    overwrite: bool,
) -> Result<TargetsOutcome, OpsError> {
    let (task, gt, mask) = match source {
        TargetsSource::Run {
            project,
            name,
            dataset,
            gt,
            mask,
        } => {
            let run = super::stored_run(project, name)?;
            let Some(gt) = gt else {
                let (report, dataset) =
                    write_run_targets(project.root(), &run, dataset, container, overwrite)?;
                return Ok(TargetsOutcome {
                    task: run.task_config.name().to_string(),
                    ground_truth: format!("dataset {}", dataset.name),
                    report,
                });
            };
            (run.task_config.clone(), gt, mask)
        }
        TargetsSource::TaskFile { file, gt, mask } => {
            let task = match super::configs::load_file(file, Some(Family::Tasks))? {
                AnyConfig::Task(t) => t,
                other => {
                    return Err(OpsError::Usage(format!(
                        "{} holds a {}, not a task",
                        file.display(),
                        other.family().noun()
                    )))
                }
            };
            (task, gt, mask)
        }
    };
    let gt = crate::array::open(gt)?;
    let mask = mask.map(crate::array::open).transpose()?;
    let report = write_targets(&task, gt.as_ref(), mask.as_deref(), container, overwrite)?;
    Ok(TargetsOutcome {
        task: task.name().to_string(),
        ground_truth: gt.info().path.clone(),
        report,
    })
}

/// A network's sizes as `segno architecture shapes` reports them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapesOutcome {
    /// The architecture's name.
    pub architecture: String,
    /// Whether the input gives a valid output.
    pub valid: bool,
    /// Why sizes are shown in voxels only, when a run's voxel size could not be found.
    #[serde(skip)]
    pub note: Option<String>,
    /// The sizes.
    #[serde(flatten)]
    pub report: ShapeReport,
}

/// The sizes of the network `name` names: a config file (an architecture or a run), else an
/// architecture or run stored in `project`. A run adds its task's head and, unless
/// `voxel_size_nm` is given, the voxel size its raw data was trained at.
pub fn architecture_shapes(
    project: Option<&Project>,
    name: &str,
    input: Option<Coordinate>,
    voxel_size_nm: Option<Coordinate>,
) -> Result<ShapesOutcome, OpsError> {
    let file = Path::new(name);
    let config = if file.is_file() {
        super::configs::load_file(file, None)?
    } else {
        let Some(project) = project else {
            return Err(OpsError::Usage(format!(
                "{name} is no config file, and there is no project to look it up in"
            )));
        };
        let store = project.configs();
        match store.retrieve(Family::Architectures, name) {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => store.retrieve(Family::Runs, name)?,
            Err(e) => return Err(e.into()),
        }
    };
    let mut note = None;
    let (architecture, task, voxel_size_nm) = match &config {
        AnyConfig::Architecture(a) => (a.clone(), None, voxel_size_nm),
        AnyConfig::Run(r) => {
            // The voxel size the network was trained at (recorded), else the raw data's.
            let vs = voxel_size_nm.or_else(|| {
                let root = project?.root().to_path_buf();
                let record = crate::store::run::read_record(&root.join(&r.name))
                    .ok()
                    .flatten();
                let record = record.or_else(|| crate::train::run::run_record(&root, r, 0).ok());
                let found = record
                    .and_then(|rec| rec.input_for(None).ok().map(|d| d.transform.voxel_size_nm));
                if found.is_none() {
                    note =
                        Some("the run's raw data could not be opened: sizes in voxels only".into());
                }
                found
            });
            (
                r.architecture_config.clone(),
                Some(r.task_config.clone()),
                vs,
            )
        }
        other => {
            return Err(OpsError::Usage(format!(
                "{name} is a {}, not an architecture or a run",
                other.family().noun()
            )))
        }
    };
    let report = shapes(&architecture, task.as_ref(), input, voxel_size_nm)
        .map_err(|e| OpsError::Invalid(e.to_string()))?;
    Ok(ShapesOutcome {
        architecture: architecture.name().to_string(),
        valid: report.error.is_none(),
        note,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_an_architecture_file_and_of_a_stored_run_with_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open(dir.path().join("p")).unwrap();
        let unet = crate::config::templates::small_unet("u", 44, 4);
        let file = dir.path().join("u.yaml");
        std::fs::write(&file, AnyConfig::Architecture(unet.clone()).to_yaml()).unwrap();
        let by_file = architecture_shapes(None, file.to_str().unwrap(), None, None).unwrap();
        assert_eq!(by_file.architecture, "u");
        let direct = shapes(&unet, None, None, None).unwrap();
        assert_eq!(by_file.report, direct);
        assert_eq!(by_file.valid, direct.error.is_none());
        let v = serde_json::to_value(&by_file).unwrap();
        assert_eq!(v["architecture"], "u");
        assert_eq!(v["valid"], serde_json::json!(by_file.valid));
        assert!(v.get("input_voxels").is_some(), "{v}");

        // A stored architecture by name; an unknown name is the store's NotFound.
        project
            .configs()
            .store(&AnyConfig::Architecture(unet))
            .unwrap();
        let stored = architecture_shapes(Some(&project), "u", None, None).unwrap();
        assert_eq!(stored.report, by_file.report);
        let missing = architecture_shapes(Some(&project), "nope", None, None).unwrap_err();
        assert!(
            matches!(missing, OpsError::Store(StoreError::NotFound { .. })),
            "{missing}"
        );
        let no_project = architecture_shapes(None, "u", None, None).unwrap_err();
        assert!(matches!(no_project, OpsError::Usage(_)));
        // Too many axes for the network.
        let bad = architecture_shapes(Some(&project), "u", Some(Coordinate::from([44, 44])), None)
            .unwrap_err();
        assert!(bad.to_string().contains("2 axes"), "{bad}");
    }

    #[test]
    fn a_task_file_that_holds_another_family_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let unet = crate::config::templates::small_unet("u", 44, 4);
        let file = dir.path().join("u.yaml");
        std::fs::write(&file, AnyConfig::Architecture(unet).to_yaml()).unwrap();
        let gt = dir.path().join("gt.zarr");
        let e = targets(
            TargetsSource::TaskFile {
                file: &file,
                gt: &gt,
                mask: None,
            },
            &dir.path().join("out.zarr"),
            false,
        )
        .unwrap_err();
        // Read as a task, an architecture file does not parse: the config error names it.
        assert!(matches!(e, OpsError::Config(_) | OpsError::Usage(_)), "{e}");
        assert!(e.to_string().contains("u.yaml"), "{e}");
        assert!(!dir.path().join("out.zarr").exists());
    }
}
