//! The DataSplit generator: from raw + ground-truth pairs (typed in, or DaCapo's CSV
//! `train|val,raw_container,raw_dataset,gt_container,gt_dataset`) to a
//! `TrainValidateDataSplitConfig` with the array chains DaCapo's `DataSplitGenerator`
//! builds: the scale level nearest the wanted resolution, integer resampling, intensity
//! normalisation, per-class (binarised) ground truth concatenated in target order, and
//! masks for classes a crop does not annotate. `segno datasplit` and the app's DataSplit
//! wizard both call it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::array::{self, ArrayInfo};
use crate::config::*;
use crate::geometry::{Coordinate, Roi};

/// Errors of the generator; each names the CSV line or dataset and the field.
#[derive(Debug, thiserror::Error)]
pub enum DataSplitError {
    /// The CSV file cannot be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A CSV line is malformed.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A dataset cannot be turned into configs.
    #[error("dataset {dataset}: {message}")]
    Dataset {
        /// The dataset (`train,<raw>,…` as in the CSV).
        dataset: String,
        /// What is wrong.
        message: String,
    },
    /// The options are invalid.
    #[error("{0}")]
    Options(String),
}

/// Training or validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sampled during training.
    Train,
    /// Predicted and scored at validation.
    Val,
}

/// One raw + ground-truth pair (a CSV line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatasetSpec {
    /// Training or validation.
    pub role: Role,
    /// The raw data's container (`…/x.zarr`, `…/x.n5`).
    pub raw_container: String,
    /// The raw array or multiscale group inside it.
    pub raw_dataset: String,
    /// The ground truth's container.
    pub gt_container: String,
    /// The ground truth inside it, ending in the class list: `labels/crop1/[mito&er]`.
    pub gt_dataset: String,
}

impl DatasetSpec {
    /// The CSV line of this spec.
    pub fn to_csv_line(&self) -> String {
        let role = match self.role {
            Role::Train => "train",
            Role::Val => "val",
        };
        format!(
            "{role},{},{},{},{}",
            self.raw_container, self.raw_dataset, self.gt_container, self.gt_dataset
        )
    }

    /// DaCapo's string form: `<raw container stem>_<gt dataset>`.
    pub fn spec_name(&self) -> String {
        format!("{}_{}", stem(&self.raw_container), self.gt_dataset)
    }

    /// The class names in the ground-truth path and the path each class's array has:
    /// `labels/crop1/[mito&er]` → `[("mito", "labels/crop1/mito"), ("er", …)]`. Without
    /// brackets the whole path is the array of the single target.
    pub fn classes(
        &self,
        separator: &str,
        targets: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, String> {
        let gt = &self.gt_dataset;
        match gt.find('[') {
            Some(open) => {
                let close = gt[open..]
                    .find(']')
                    .map(|c| open + c)
                    .ok_or_else(|| format!("gt_dataset `{gt}`: `[` without a closing `]`"))?;
                let base = &gt[..open];
                let names: Vec<String> = gt[open + 1..close]
                    .split(separator)
                    .map(|c| c.trim().to_string())
                    .collect();
                if names.iter().any(|n| n.is_empty()) {
                    return Err(format!("gt_dataset `{gt}`: an empty class name in the brackets"));
                }
                Ok(names
                    .into_iter()
                    .map(|n| (n.clone(), format!("{base}{n}")))
                    .collect())
            }
            None => match targets {
                Some([one]) => Ok(vec![(one.clone(), gt.clone())]),
                _ => Err(format!(
                    "gt_dataset `{gt}` has no class list such as [mito&er]; without one, exactly one target must be given"
                )),
            },
        }
    }
}

/// The file name of a container without its extension (`/d/jrc_hela-2.zarr` → `jrc_hela-2`).
fn stem(container: &str) -> String {
    let name = container
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(container);
    match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s.to_string(),
        _ => name.to_string(),
    }
}

/// Parses DaCapo's DataSplit CSV text (no header; five comma-separated fields a line).
pub fn parse_csv(text: &str, path: &str) -> Result<Vec<DatasetSpec>, DataSplitError> {
    // Spreadsheet programs start UTF-8 CSV files with a byte-order mark: not data.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| DataSplitError::Csv {
            path: path.to_string(),
            line: i + 1,
            message,
        };
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 5 {
            return Err(err(format!(
                "expected 5 comma-separated fields (train|val,raw_container,raw_dataset,gt_container,gt_dataset), found {}",
                fields.len()
            )));
        }
        let role = match fields[0].trim().to_ascii_lowercase().as_str() {
            "train" => Role::Train,
            "val" => Role::Val,
            other => {
                return Err(err(format!(
                    "the dataset type must be train or val, not `{other}`"
                )))
            }
        };
        for (k, name) in [
            (1, "raw_container"),
            (2, "raw_dataset"),
            (3, "gt_container"),
            (4, "gt_dataset"),
        ] {
            if fields[k].trim().is_empty() {
                return Err(err(format!("{name} is empty")));
            }
        }
        out.push(DatasetSpec {
            role,
            raw_container: fields[1].to_string(),
            raw_dataset: fields[2].to_string(),
            gt_container: fields[3].to_string(),
            gt_dataset: fields[4].to_string(),
        });
    }
    if out.is_empty() {
        return Err(DataSplitError::Csv {
            path: path.to_string(),
            line: 0,
            message: "no datasets listed".into(),
        });
    }
    Ok(out)
}

/// Reads a DataSplit CSV file.
pub fn read_csv(path: &Path) -> Result<Vec<DatasetSpec>, DataSplitError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataSplitError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_csv(&text, &path.display().to_string())
}

/// Writes `specs` as a DataSplit CSV (atomically), one line each.
pub fn write_csv(specs: &[DatasetSpec], path: &Path) -> Result<(), DataSplitError> {
    let mut text = String::new();
    for s in specs {
        text.push_str(&s.to_csv_line());
        text.push('\n');
    }
    crate::store::atomic::write_atomic(path, text.as_bytes(), true).map_err(|e| {
        DataSplitError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    })
}

/// The generator's options (DaCapo's `DataSplitGenerator` parameters).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorOptions {
    /// Prefix of the datasplit's name.
    pub name: String,
    /// Voxel size wanted for raw data (nm, z y x).
    pub input_resolution: Coordinate,
    /// Voxel size wanted for ground truth (nm, z y x).
    pub output_resolution: Coordinate,
    /// The classes to learn, in channel order (default: those of the first dataset).
    pub targets: Option<Vec<String>>,
    /// Turn every non-zero id into 1 (needed when ground truth holds instance ids).
    pub binarize_gt: bool,
    /// Allow crops without some targets: those are 0 where other classes are annotated.
    pub use_negative_class: bool,
    /// Raw value mapped to 0.
    pub raw_min: f64,
    /// Raw value mapped to 1.
    pub raw_max: f64,
    /// The separator of class names inside `[...]`.
    pub separator: String,
    /// Largest validation crop in voxels (larger ones are centre-cropped).
    pub max_validation_volume_size: Option<u64>,
    /// Largest downsampling of ground truth (warning beyond).
    pub max_gt_downsample: i64,
    /// Largest upsampling of ground truth.
    pub max_gt_upsample: i64,
    /// Largest downsampling of training raw data.
    pub max_raw_training_downsample: i64,
    /// Largest upsampling of training raw data.
    pub max_raw_training_upsample: i64,
    /// Largest downsampling of validation raw data.
    pub max_raw_validation_downsample: i64,
    /// Largest upsampling of validation raw data.
    pub max_raw_validation_upsample: i64,
    /// Smallest training crop in voxels (at the output resolution).
    pub min_training_volume_size: u64,
}

impl GeneratorOptions {
    /// DaCapo's defaults for `name` at the given resolutions.
    pub fn new(name: &str, input_resolution: Coordinate, output_resolution: Coordinate) -> Self {
        Self {
            name: name.to_string(),
            input_resolution,
            output_resolution,
            targets: None,
            binarize_gt: false,
            use_negative_class: false,
            raw_min: 0.0,
            raw_max: 255.0,
            separator: "&".into(),
            max_validation_volume_size: None,
            max_gt_downsample: 32,
            max_gt_upsample: 4,
            max_raw_training_downsample: 16,
            max_raw_training_upsample: 2,
            max_raw_validation_downsample: 8,
            max_raw_validation_upsample: 2,
            min_training_volume_size: 8000,
        }
    }
}

/// What the generator made, with the problems worth a look that did not stop it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The datasplit config.
    pub config: TrainValidateDataSplitConfig,
    /// Warnings (resampling beyond the limits, small crops), each naming its dataset.
    pub warnings: Vec<String>,
}

/// An opened array path: the chosen level, the dataset path of that level, its name part.
struct Chosen {
    dataset: String,
    level: Option<usize>,
    info: ArrayInfo,
}

/// Opens `container/dataset` (an array or an OME-Zarr multiscale group) and picks the level
/// for `target` as DaCapo does.
fn choose(
    base: &Path,
    container: &str,
    dataset: &str,
    target: &Coordinate,
) -> Result<Chosen, String> {
    let root = array::open::resolve_path(base, container);
    let ds = dataset.trim_matches('/');
    let full: PathBuf = root.join(ds);
    if !full.exists() {
        return Err(format!("{}: no such array or group", full.display()));
    }
    let levels = array::zarr::scale_levels(&root, ds).map_err(|e| e.to_string())?;
    if levels.is_empty() {
        let a = array::open(&full).map_err(|e| e.to_string())?;
        return Ok(Chosen {
            dataset: ds.to_string(),
            level: None,
            info: a.info().clone(),
        });
    }
    let level = array::zarr::choose_level(&levels, target).unwrap_or(0);
    Ok(Chosen {
        dataset: format!("{ds}/{}", levels[level].path),
        level: Some(level),
        info: levels[level].info.clone(),
    })
}

/// DaCapo's `resize_if_needed`: integer up/down factors per axis, or `None` when the array
/// is already at `target`. Non-integer ratios are errors (DaCapo silently mis-resamples).
fn factors(
    vs: &Coordinate,
    target: &Coordinate,
) -> Result<Option<(Coordinate, Coordinate)>, String> {
    if vs.dims() != target.dims() {
        return Err(format!(
            "has {} spatial axes but the resolution {target} has {}",
            vs.dims(),
            target.dims()
        ));
    }
    let mut up = Vec::new();
    let mut down = Vec::new();
    for (v, t) in vs.iter().zip(target.iter()) {
        if v % t != 0 && t % v != 0 {
            return Err(format!(
                "voxel size {vs} nm cannot be resampled to {target} nm by whole factors"
            ));
        }
        up.push(if v > t { v / t } else { 1 });
        down.push(if t > v { t / v } else { 1 });
    }
    if up.iter().chain(&down).all(|f| *f == 1) {
        return Ok(None);
    }
    let c = |v: &[i64]| Coordinate::new(v).map_err(|e| e.to_string());
    Ok(Some((c(&up)?, c(&down)?)))
}

fn zarr(name: String, container: &str, dataset: &str) -> ArrayConfig {
    ArrayConfig::Zarr(ZarrArrayConfig {
        name,
        file_name: container.to_string(),
        dataset: dataset.to_string(),
        snap_to_grid: None,
        axes: None,
        mode: Some("r".into()),
        ome_metadata: false,
    })
}

/// The zarr config of a chosen array, resampled to `target` when needed.
fn sourced(
    prefix: &str,
    container: &str,
    ds: &str,
    chosen: &Chosen,
    target: &Coordinate,
) -> Result<(ArrayConfig, Option<(Coordinate, Coordinate)>), String> {
    let st = stem(container);
    let flat = |s: &str| s.trim_matches('/').to_string();
    let name = match chosen.level {
        Some(0) => format!("{prefix}_{st}_{}_uint8", flat(ds)),
        Some(l) => format!("{prefix}_{st}_{}_s{l}_uint8", flat(ds)),
        None if prefix == "gt" => format!("{prefix}_{st}_{}_uint8", flat(ds)),
        None => format!("{prefix}_{st}_uint8"),
    };
    let base = zarr(name.clone(), container, &chosen.dataset);
    let f = factors(&chosen.info.geometry.voxel_size, target)?;
    Ok(match f {
        None => (base, None),
        Some((up, down)) => (
            ArrayConfig::Resampled(ResampledArrayConfig {
                name: format!("{prefix}_{name}_{}_resampled", flat(&chosen.dataset)),
                source_array_config: Box::new(base),
                upsample: up,
                downsample: down,
                interp_order: false,
            }),
            Some((up, down)),
        ),
    })
}

fn check_limits(
    what: &str,
    f: &Option<(Coordinate, Coordinate)>,
    max_up: i64,
    max_down: i64,
    warnings: &mut Vec<String>,
    dataset: &str,
) {
    if let Some((up, down)) = f {
        let u = up.iter().max().unwrap_or(1);
        let d = down.iter().max().unwrap_or(1);
        if u > max_up {
            warnings.push(format!(
                "dataset {dataset}: {what} is upsampled ×{u}, more than the limit ×{max_up}"
            ));
        }
        if d > max_down {
            warnings.push(format!(
                "dataset {dataset}: {what} is downsampled ×{d}, more than the limit ×{max_down}"
            ));
        }
    }
}

/// Builds the datasplit for `specs`; relative containers are resolved against `base`
/// (the project directory) but written as given.
pub fn generate(
    specs: &[DatasetSpec],
    options: &GeneratorOptions,
    base: &Path,
) -> Result<Generated, DataSplitError> {
    let opt_err = |m: String| DataSplitError::Options(m);
    if options.name.trim().is_empty() {
        return Err(opt_err("the datasplit needs a name".into()));
    }
    for (what, c) in [
        ("input resolution", &options.input_resolution),
        ("output resolution", &options.output_resolution),
    ] {
        if !c.is_positive() {
            return Err(opt_err(format!("the {what} must be positive, got {c}")));
        }
    }
    if options.raw_min.partial_cmp(&options.raw_max) != Some(std::cmp::Ordering::Less) {
        return Err(opt_err(format!(
            "raw max ({}) must be greater than raw min ({})",
            options.raw_max, options.raw_min
        )));
    }
    if options.separator.is_empty() || options.separator.contains([',', '[', ']']) {
        return Err(opt_err(format!(
            "the class separator `{}` must be non-empty and not a comma or bracket",
            options.separator
        )));
    }
    if specs.iter().all(|s| s.role != Role::Train) {
        return Err(opt_err(
            "no training dataset: mark at least one as train".into(),
        ));
    }
    let first = specs[0]
        .classes(&options.separator, options.targets.as_deref())
        .map_err(|m| DataSplitError::Dataset {
            dataset: specs[0].to_csv_line(),
            message: m,
        })?;
    let targets: Vec<String> = match &options.targets {
        Some(t) if !t.is_empty() => t.clone(),
        _ => first.iter().map(|(c, _)| c.clone()).collect(),
    };
    let r = options.output_resolution.as_slice()[0];
    let sep = &options.separator;
    let mut warnings = Vec::new();
    let mut train = Vec::new();
    let mut validate = Vec::new();
    for spec in specs {
        let line = spec.to_csv_line();
        let derr = |message: String| DataSplitError::Dataset {
            dataset: line.clone(),
            message,
        };
        let spec_name = spec.spec_name();
        // Raw.
        let raw_chosen = choose(
            base,
            &spec.raw_container,
            &spec.raw_dataset,
            &options.input_resolution,
        )
        .map_err(|m| derr(format!("raw: {m}")))?;
        let (raw_src, raw_f) = sourced(
            "raw",
            &spec.raw_container,
            &spec.raw_dataset,
            &raw_chosen,
            &options.input_resolution,
        )
        .map_err(|m| derr(format!("raw: {m}")))?;
        let (max_up, max_down) = match spec.role {
            Role::Train => (
                options.max_raw_training_upsample,
                options.max_raw_training_downsample,
            ),
            Role::Val => (
                options.max_raw_validation_upsample,
                options.max_raw_validation_downsample,
            ),
        };
        check_limits("raw", &raw_f, max_up, max_down, &mut warnings, &line);
        let raw = ArrayConfig::Intensities(IntensitiesArrayConfig {
            name: format!("raw_{}_uint8", stem(&spec.raw_container)),
            source_array_config: Box::new(raw_src),
            min: options.raw_min,
            max: options.raw_max,
        });
        // Ground truth, one array per class present.
        let classes = spec
            .classes(sep, options.targets.as_deref())
            .map_err(derr)?;
        let mut per_class: BTreeMap<String, (ArrayConfig, ArrayInfo)> = BTreeMap::new();
        for (class, ds) in &classes {
            if !targets.contains(class) {
                continue;
            }
            let chosen = choose(base, &spec.gt_container, ds, &options.output_resolution)
                .map_err(|m| derr(format!("class {class}: {m}")))?;
            let (src, f) = sourced(
                "gt",
                &spec.gt_container,
                ds,
                &chosen,
                &options.output_resolution,
            )
            .map_err(|m| derr(format!("class {class}: {m}")))?;
            check_limits(
                &format!("class {class}"),
                &f,
                options.max_gt_upsample,
                options.max_gt_downsample,
                &mut warnings,
                &line,
            );
            let cfg = if options.binarize_gt {
                ArrayConfig::Binarize(BinarizeArrayConfig {
                    name: format!("{spec_name}_{class}_{r}nm_binarized"),
                    source_array_config: Box::new(src),
                    groupings: vec![(class.clone(), vec![])],
                    background: 0,
                })
            } else {
                src
            };
            per_class.insert(class.clone(), (cfg, chosen.info));
        }
        let missing: Vec<&String> = targets
            .iter()
            .filter(|t| !per_class.contains_key(*t))
            .collect();
        let Some((_, (first_found, first_info))) = per_class.iter().next() else {
            return Err(derr(format!(
                "none of the targets {targets:?} is among its classes {:?}",
                classes.iter().map(|c| &c.0).collect::<Vec<_>>()
            )));
        };
        let first_found = first_found.clone();
        let first_info = first_info.clone();
        if !missing.is_empty() && !options.use_negative_class {
            return Err(derr(format!(
                "lacks the target(s) {missing:?}; list them in its gt_dataset or allow a negative class"
            )));
        }
        let classes_joined = targets.join(sep);
        let gt_name = format!("{spec_name}_{}_{r}nm_gt", targets.join("_"));
        let mut gt_sources = BTreeMap::new();
        let mut mask_sources = BTreeMap::new();
        for t in &targets {
            match per_class.get(t) {
                Some((cfg, _)) => {
                    gt_sources.insert(t.clone(), cfg.clone());
                    mask_sources.insert(
                        t.clone(),
                        ArrayConfig::Constant(ConstantArrayConfig {
                            name: format!("{spec_name}_{t}_{r}nm_labelled_voxels"),
                            source_array_config: Box::new(cfg.clone()),
                            constant: 1,
                        }),
                    );
                }
                None => {
                    gt_sources.insert(
                        t.clone(),
                        ArrayConfig::Constant(ConstantArrayConfig {
                            name: format!("{spec_name}_{t}_{r}nm_gt"),
                            source_array_config: Box::new(first_found.clone()),
                            constant: 0,
                        }),
                    );
                    // A missing class is absent exactly where another class is annotated.
                    let found: Vec<&String> = per_class.keys().collect();
                    let union = if found.len() == 1 {
                        first_found.clone()
                    } else {
                        ArrayConfig::LogicalOr(LogicalOrArrayConfig {
                            name: format!("{spec_name}_{t}_{r}nm_labelled_voxels"),
                            source_array_config: Box::new(ArrayConfig::Concat(ConcatArrayConfig {
                                name: format!("{spec_name}_{t}_{r}nm_found_classes"),
                                channels: found.iter().map(|s| s.to_string()).collect(),
                                source_array_configs: per_class
                                    .iter()
                                    .map(|(k, (c, _))| (k.clone(), c.clone()))
                                    .collect(),
                                default_config: None,
                            })),
                        })
                    };
                    mask_sources.insert(t.clone(), union);
                }
            }
        }
        let mut gt = ArrayConfig::Concat(ConcatArrayConfig {
            name: gt_name.clone(),
            channels: targets.clone(),
            source_array_configs: gt_sources,
            default_config: None,
        });
        // A mask only matters when a class is missing; all-ones masks are left out.
        let mut mask = (!missing.is_empty()).then(|| {
            ArrayConfig::Concat(ConcatArrayConfig {
                name: format!("{spec_name}_{}_{r}nm_mask", targets.join("_")),
                channels: targets.clone(),
                source_array_configs: mask_sources,
                default_config: None,
            })
        });
        let voxels = (first_info.roi.shape() / options.output_resolution)
            .iter()
            .map(|v| v.max(0) as u64)
            .product::<u64>();
        if spec.role == Role::Train && voxels < options.min_training_volume_size {
            warnings.push(format!(
                "dataset {line}: the crop has {voxels} voxels at {} nm, fewer than {}",
                options.output_resolution, options.min_training_volume_size
            ));
        }
        if let (Role::Val, Some(max)) = (spec.role, options.max_validation_volume_size) {
            if let Some(roi) = centre_crop(&first_info.roi, &options.output_resolution, max) {
                gt = ArrayConfig::Crop(CropArrayConfig {
                    name: format!("{gt_name}_cropped"),
                    source_array_config: Box::new(gt),
                    roi,
                });
                // Crop the mask itself (DaCapo crops the ground truth again here).
                mask = mask.map(|m| {
                    ArrayConfig::Crop(CropArrayConfig {
                        name: format!("{gt_name}_mask_cropped"),
                        source_array_config: Box::new(m),
                        roi,
                    })
                });
            }
        }
        let dataset = DatasetConfig::RawGt(RawGTDatasetConfig {
            name: format!("{spec_name}_{gt_name}_{classes_joined}_{r}nm"),
            weight: 1,
            raw_config: Some(raw),
            gt_config: Some(gt),
            mask_config: mask,
            sample_points: None,
        });
        match spec.role {
            Role::Train => train.push(dataset),
            Role::Val => validate.push(dataset),
        }
    }
    let config = TrainValidateDataSplitConfig {
        name: format!("{}_semantic_{}_{r}nm", options.name, targets.join(sep)),
        train_configs: train,
        validate_configs: validate,
    };
    Ok(Generated { config, warnings })
}

/// The centred region of at most `max_voxels` voxels of `roi` (halving its longest axis
/// until it fits), or `None` when it already fits.
fn centre_crop(roi: &Roi, vs: &Coordinate, max_voxels: u64) -> Option<Roi> {
    let mut shape: Vec<i64> = (roi.shape() / *vs).to_vec();
    let count = |s: &[i64]| s.iter().map(|v| v.max(&0).unsigned_abs()).product::<u64>();
    if count(&shape) <= max_voxels {
        return None;
    }
    while count(&shape) > max_voxels {
        // The first of the longest axes, as numpy's argmax picks it.
        let longest = *shape.iter().max()?;
        let i = shape.iter().position(|v| *v == longest)?;
        shape[i] /= 2;
        if shape[i] == 0 {
            return None;
        }
    }
    let new_shape = Coordinate::new(&shape).ok()? * *vs;
    let context = (roi.shape() - new_shape) / Coordinate::splat(2, vs.dims());
    let snapped = (context / *vs) * *vs;
    Roi::new(roi.offset() + snapped, new_shape).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_parse_and_round_trip() {
        let text = "train,/d/a.zarr,raw,/d/a.zarr,labels/crop1/[mito&er]\nVAL,/d/a.zarr,raw,/d/a.zarr,labels/crop2/[mito]\r\n\n";
        let specs = parse_csv(text, "x.csv").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].role, Role::Val);
        assert_eq!(specs[0].spec_name(), "a_labels/crop1/[mito&er]");
        assert_eq!(
            specs[0].classes("&", None).unwrap(),
            vec![
                ("mito".to_string(), "labels/crop1/mito".to_string()),
                ("er".to_string(), "labels/crop1/er".to_string())
            ]
        );
        let back: String = specs.iter().map(|s| s.to_csv_line() + "\n").collect();
        assert_eq!(parse_csv(&back, "y.csv").unwrap(), specs);
        // A byte-order mark (as spreadsheet programs write) is not part of the first field.
        assert_eq!(
            parse_csv(&format!("\u{feff}{text}"), "bom.csv").unwrap(),
            specs
        );
        let e = parse_csv("test,a.zarr,raw,a.zarr,[x]\n", "x.csv")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.csv:1:") && e.contains("`test`"), "{e}");
        let e = parse_csv("train,a.zarr,raw\n", "x.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("found 3"), "{e}");
        let s = &parse_csv("train,a.zarr,raw,a.zarr,gt/[mito\n", "x.csv").unwrap()[0];
        assert!(s
            .classes("&", None)
            .unwrap_err()
            .contains("without a closing"));
        let s = &parse_csv("train,a.zarr,raw,a.zarr,gt/mito\n", "x.csv").unwrap()[0];
        assert!(s.classes("&", None).is_err());
        assert_eq!(
            s.classes("&", Some(&["mito".to_string()])).unwrap(),
            vec![("mito".to_string(), "gt/mito".to_string())]
        );
    }

    #[test]
    fn resampling_factors_are_whole_or_refused() {
        let c = |v: [i64; 3]| Coordinate::from(v);
        assert_eq!(factors(&c([8, 8, 8]), &c([8, 8, 8])).unwrap(), None);
        assert_eq!(
            factors(&c([4, 4, 4]), &c([8, 8, 8])).unwrap(),
            Some((c([1, 1, 1]), c([2, 2, 2])))
        );
        assert_eq!(
            factors(&c([16, 8, 8]), &c([8, 8, 8])).unwrap(),
            Some((c([2, 1, 1]), c([1, 1, 1])))
        );
        assert!(factors(&c([6, 6, 6]), &c([4, 4, 4])).is_err());
    }

    #[test]
    fn large_validation_crops_are_centre_cropped() {
        let roi = Roi::new(
            Coordinate::from([0, 0, 0]),
            Coordinate::from([800, 400, 400]),
        )
        .unwrap();
        let vs = Coordinate::from([8, 8, 8]);
        // 100 × 50 × 50 voxels = 250 000 > 100 000: halve z (100 → 50), then 50³ = 125 000,
        // halve the first longest (z again, 50 → 25): 62 500.
        let c = centre_crop(&roi, &vs, 100_000).unwrap();
        assert_eq!(c.shape(), Coordinate::from([200, 400, 400]));
        assert_eq!(c.offset(), Coordinate::from([296, 0, 0]));
        assert!(centre_crop(&roi, &vs, 1_000_000).is_none());
    }
}

/// What an array path holds, for the wizard's table.
#[derive(Debug, Clone, PartialEq)]
pub struct ArraySummary {
    /// Element type.
    pub data_type: String,
    /// Voxels along z, y, x (of the finest level).
    pub shape: Vec<u64>,
    /// Voxel size of the finest level (nm).
    pub voxel_size: Coordinate,
    /// Offset (nm).
    pub offset: Coordinate,
    /// Voxel sizes of every scale level (one entry for plain arrays).
    pub levels: Vec<Coordinate>,
}

impl std::fmt::Display for ArraySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape: Vec<String> = self.shape.iter().map(|s| s.to_string()).collect();
        write!(
            f,
            "{} {} @ {} nm from {}",
            self.data_type,
            shape.join("×"),
            self.voxel_size,
            self.offset
        )?;
        if self.levels.len() > 1 {
            write!(f, ", {} levels", self.levels.len())?;
        }
        Ok(())
    }
}

/// One dataset row as the wizard shows it: the raw array, each class's array, and every
/// problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The raw array, if it opens.
    pub raw: Option<ArraySummary>,
    /// Each class with its array, if it opens.
    pub classes: Vec<(String, Option<ArraySummary>)>,
    /// What is wrong (missing files, unreadable arrays, class lists, resolutions).
    pub problems: Vec<String>,
}

fn summarize(base: &Path, container: &str, dataset: &str) -> Result<ArraySummary, String> {
    let root = array::open::resolve_path(base, container);
    let ds = dataset.trim_matches('/');
    let full = root.join(ds);
    if !full.exists() {
        return Err(format!("{}: no such array or group", full.display()));
    }
    let levels = array::zarr::scale_levels(&root, ds).map_err(|e| e.to_string())?;
    let infos: Vec<ArrayInfo> = if levels.is_empty() {
        vec![array::open(&full)
            .map_err(|e| e.to_string())?
            .info()
            .clone()]
    } else {
        levels.into_iter().map(|l| l.info).collect()
    };
    let first = &infos[0];
    let spatial = first.spatial_axes();
    Ok(ArraySummary {
        data_type: first.data_type.to_string(),
        shape: spatial.iter().map(|&a| first.shape[a]).collect(),
        voxel_size: first.geometry.voxel_size,
        offset: first.geometry.offset,
        levels: infos.iter().map(|i| i.geometry.voxel_size).collect(),
    })
}

/// Inspects one dataset: opens its raw and class arrays and lists every problem.
pub fn inspect(
    spec: &DatasetSpec,
    base: &Path,
    separator: &str,
    targets: Option<&[String]>,
) -> Inspection {
    let mut problems = Vec::new();
    let raw = match summarize(base, &spec.raw_container, &spec.raw_dataset) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(format!("raw: {e}"));
            None
        }
    };
    let mut classes = Vec::new();
    match spec.classes(separator, targets) {
        Ok(list) => {
            for (class, ds) in list {
                match summarize(base, &spec.gt_container, &ds) {
                    Ok(s) => {
                        if s.data_type.starts_with("float") {
                            problems.push(format!(
                                "class {class}: {} ground truth; labels should be integers",
                                s.data_type
                            ));
                        }
                        classes.push((class, Some(s)));
                    }
                    Err(e) => {
                        problems.push(format!("class {class}: {e}"));
                        classes.push((class, None));
                    }
                }
            }
        }
        Err(e) => problems.push(e),
    }
    Inspection {
        raw,
        classes,
        problems,
    }
}
