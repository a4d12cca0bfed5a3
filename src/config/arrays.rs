//! Array configs: where voxel data comes from and the lazy transforms applied to it.

use std::collections::BTreeMap;

use crate::geometry::{Coordinate, Roi};

use super::schema::{child, index, Check, Problems};
use super::{check_name, check_positive_coordinate};

config_enum! {
    /// An array: a source of voxel data (a zarr/N5 dataset, a TIFF stack, …) or a lazy
    /// transform of other arrays (binarise, resample, normalise, concatenate, crop, …).
    ArrayConfig: named {
        /// A dataset inside a zarr or N5 container.
        Zarr(ZarrArrayConfig),
        /// Label ids turned into one binary channel per class group.
        Binarize(BinarizeArrayConfig),
        /// Integer up/down-sampling of another array.
        Resampled(ResampledArrayConfig),
        /// Linear intensity normalisation to [0, 1].
        Intensities(IntensitiesArrayConfig),
        /// Mask of voxels whose classes were annotated in a CellMap crop.
        MissingAnnotationsMask(MissingAnnotationsMaskConfig),
        /// All ones with another array's geometry (deprecated: use Constant).
        Ones(OnesArrayConfig),
        /// A constant value with another array's geometry.
        Constant(ConstantArrayConfig),
        /// One channel per name, stacked from several arrays.
        Concat(ConcatArrayConfig),
        /// Union (maximum) over the channels of an array.
        LogicalOr(LogicalOrArrayConfig),
        /// A world-unit crop of another array.
        Crop(CropArrayConfig),
        /// Several label arrays combined with non-colliding ids.
        MergeInstances(MergeInstancesArrayConfig),
        /// A DVID grayscale or label instance on a server.
        Dvid(DVIDArrayConfig),
        /// Voxel-wise sum of several arrays.
        Sum(SumArrayConfig),
        /// A TIFF stack with explicit geometry.
        Tiff(TiffArrayConfig),
        /// A fixed dummy array for tests.
        Dummy(DummyArrayConfig),
    }
}

config_struct! {
    /// A dataset inside a zarr (v2/v3, OME-Zarr) or N5 container.
    ZarrArrayConfig {
        /// Name of this array config.
        name: String,
        /// Path or URL of the container (`…/x.zarr` or `…/x.n5`).
        file_name: String,
        /// Path of the array inside the container; may contain `/`.
        dataset: String,
        /// If set, the array's region is shrunk to multiples of lcm(voxel size, this), in nm.
        snap_to_grid: Option<Coordinate> = None,
        /// Axis names overriding the stored ones (letters such as `c, z, y, x`).
        axes ["_axes", "axes"]: Option<Vec<String>> = None,
        /// DaCapo's open mode. Segno only ever reads input arrays, so `r`, `r+` and `a` all
        /// open it read-only; `w` and `w-` (which create or empty the array) are refused.
        mode: Option<String> { "r" | "r+" | "w" | "w-" | "a" } = Some("a".to_string()),
        /// Require OME-NGFF multiscales metadata: the dataset must be (or name) a level of
        /// a multiscale image, else opening fails. Without it OME-NGFF metadata is still
        /// used when present, else DaCapo's `voxel_size`/`resolution` attributes.
        ome_metadata: bool = false => newer,
    }
}

impl Check for ZarrArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        let container = self.file_name.trim_end_matches('/');
        if container.is_empty() {
            problems.push(&child(path, "file_name"), "must not be empty");
        } else if !(container.ends_with(".zarr") || container.ends_with(".n5")) {
            problems.push(
                &child(path, "file_name"),
                format!("`{container}` is not a container path ending in .zarr or .n5"),
            );
        }
        if self.dataset.trim_matches('/').is_empty() {
            problems.push(&child(path, "dataset"), "must not be empty");
        }
        if let Some(grid) = &self.snap_to_grid {
            check_positive_coordinate(grid, &child(path, "snap_to_grid"), problems);
        }
        if let Some(mode @ ("w" | "w-")) = self.mode.as_deref() {
            problems.push(
                &child(path, "mode"),
                format!("`{mode}` would create or empty the array; Segno only reads input arrays: use `r`"),
            );
        }
    }
}

config_struct! {
    /// Turns a label volume into one binary (0/1) channel per class group.
    BinarizeArrayConfig {
        /// Name of this array config.
        name: String,
        /// The label volume (no channel axis), usually uint64 ids.
        source_array_config: Box<ArrayConfig>,
        /// One (class name, ids) pair per output channel; an empty id list means every id except the background.
        groupings: Vec<(String, Vec<u64>)>,
        /// The id that is never set to 1.
        background: u64 = 0,
    }
}

impl Check for BinarizeArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_groupings(&self.groupings, path, problems);
    }
}

fn check_groupings(groupings: &[(String, Vec<u64>)], path: &str, problems: &mut Problems) {
    let gpath = child(path, "groupings");
    if groupings.is_empty() {
        problems.push(&gpath, "needs at least one (class name, ids) group");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, (name, _)) in groupings.iter().enumerate() {
        if name.trim().is_empty() {
            problems.push(&index(&gpath, i), "the class name must not be empty");
        } else if !seen.insert(name.as_str()) {
            problems.push(
                &index(&gpath, i),
                format!("class `{name}` appears more than once"),
            );
        }
    }
}

config_struct! {
    /// Resamples another array by integer factors per axis.
    ResampledArrayConfig {
        /// Name of this array config.
        name: String,
        /// The array to resample.
        source_array_config: Box<ArrayConfig>,
        /// Integer upsampling factor per axis (0 or 1 = none).
        upsample ["upsample", "_upsample"]: Coordinate,
        /// Integer downsampling factor per axis (0 or 1 = none).
        downsample ["downsample", "_downsample"]: Coordinate,
        /// Interpolation: false = nearest neighbour (labels), true = linear (intensities).
        interp_order: bool,
    }
}

impl Check for ResampledArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        for (key, c) in [
            ("upsample", &self.upsample),
            ("downsample", &self.downsample),
        ] {
            if c.iter().any(|v| v < 0) {
                problems.push(
                    &child(path, key),
                    format!("factors must be 0 or positive, got {c}"),
                );
            }
        }
        if self.upsample.dims() != self.downsample.dims() {
            problems.push(
                &child(path, "downsample"),
                format!(
                    "has {} axes but upsample has {}",
                    self.downsample.dims(),
                    self.upsample.dims()
                ),
            );
        } else if self
            .upsample
            .iter()
            .zip(self.downsample.iter())
            .any(|(u, d)| u > 1 && d > 1)
        {
            problems.push(
                path,
                "an axis is both upsampled and downsampled; give at most one factor above 1 per axis",
            );
        }
    }
}

config_struct! {
    /// Normalises intensities linearly: (value − min) / (max − min), as float32, without clipping.
    IntensitiesArrayConfig {
        /// Name of this array config.
        name: String,
        /// The raw intensity array.
        source_array_config: Box<ArrayConfig>,
        /// Raw value mapped to 0.
        min: f64,
        /// Raw value mapped to 1.
        max: f64,
    }
}

impl Check for IntensitiesArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if !(self.min.is_finite() && self.max.is_finite()) || self.min >= self.max {
            problems.push(
                &child(path, "max"),
                format!(
                    "must be greater than min (min = {}, max = {})",
                    self.min, self.max
                ),
            );
        }
    }
}

config_struct! {
    /// A mask that is 1 where a CellMap crop says its classes were annotated.
    MissingAnnotationsMaskConfig {
        /// Name of this array config.
        name: String,
        /// Label volume whose container attributes list the annotated classes.
        source_array_config: Box<ArrayConfig>,
        /// One (class name, ids) pair per output channel.
        groupings: Vec<(String, Vec<u64>)>,
    }
}

impl Check for MissingAnnotationsMaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_groupings(&self.groupings, path, problems);
    }
}

config_struct! {
    /// All ones (true) with the geometry of another array. Deprecated: use ConstantArrayConfig.
    OnesArrayConfig {
        /// Name of this array config.
        name: String,
        /// The array whose voxel size and region are copied.
        source_array_config: Box<ArrayConfig>,
    }
}

impl Check for OnesArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_struct! {
    /// A constant value with the geometry of another array (used for "everything annotated" masks).
    ConstantArrayConfig {
        /// Name of this array config.
        name: String,
        /// The array whose voxel size and region are copied.
        source_array_config: Box<ArrayConfig>,
        /// The value of every voxel.
        constant: i64 = 1,
    }
}

impl Check for ConstantArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_struct! {
    /// Stacks one array per channel name into a multi-channel array.
    ConcatArrayConfig {
        /// Name of this array config.
        name: String,
        /// Output channel names, in order.
        channels: Vec<String>,
        /// The single-channel array for each channel name.
        source_array_configs: BTreeMap<String, ArrayConfig>,
        /// Array used for channels missing from source_array_configs (zeros when absent).
        default_config: Option<Box<ArrayConfig>> = None,
    }
}

impl Check for ConcatArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        let cpath = child(path, "channels");
        if self.channels.is_empty() {
            problems.push(&cpath, "needs at least one channel");
        }
        for key in self.source_array_configs.keys() {
            if !self.channels.contains(key) {
                problems.push(
                    &child(&child(path, "source_array_configs"), key),
                    format!("`{key}` is not one of the channels {:?}", self.channels),
                );
            }
        }
        if self.source_array_configs.is_empty() && self.default_config.is_none() {
            problems.push(
                &child(path, "source_array_configs"),
                "needs at least one source array (or a default_config)",
            );
        }
    }
}

config_struct! {
    /// The union (maximum) over the channels of a multi-channel mask.
    LogicalOrArrayConfig {
        /// Name of this array config.
        name: String,
        /// An array with a channel axis.
        source_array_config: Box<ArrayConfig>,
    }
}

impl Check for LogicalOrArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_struct! {
    /// A crop of another array to a world-unit region (intersected with the source's region).
    CropArrayConfig {
        /// Name of this array config.
        name: String,
        /// The array to crop.
        source_array_config: Box<ArrayConfig>,
        /// The region to keep, as [offset, shape] in nm.
        roi: Roi,
    }
}

impl Check for CropArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.roi.is_empty() {
            problems.push(&child(path, "roi"), "the crop region is empty");
        }
    }
}

config_struct! {
    /// Several label arrays combined into one, with ids shifted so objects stay distinct.
    MergeInstancesArrayConfig {
        /// Name of this array config.
        name: String,
        /// The label arrays to merge.
        source_array_configs: Vec<ArrayConfig>,
    }
}

impl Check for MergeInstancesArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_has_sources(self.source_array_configs.len(), path, problems);
    }
}

config_struct! {
    /// A DVID grayscale or labelmap instance (needs network access to the server).
    #[refused = "reading DVID needs a DVID server, which Segno does not support; export the volume to zarr or N5"]
    DVIDArrayConfig {
        /// Name of this array config.
        name: String,
        /// (server, uuid, data name) of the DVID instance.
        source: (String, String, String),
    }
}

impl Check for DVIDArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_struct! {
    /// The voxel-wise sum of several arrays (no channel axis in the output).
    SumArrayConfig {
        /// Name of this array config.
        name: String,
        /// The arrays to add.
        source_array_configs: Vec<ArrayConfig>,
    }
}

impl Check for SumArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_has_sources(self.source_array_configs.len(), path, problems);
    }
}

config_struct! {
    /// A TIFF stack with explicitly given geometry.
    TiffArrayConfig {
        /// Name of this array config.
        name: String,
        /// Path of the TIFF file.
        file_name: String,
        /// World offset of the first voxel, in `units` (nm when none are given).
        offset: Coordinate,
        /// Voxel size, in `units` (nm when none are given).
        voxel_size: Coordinate,
        /// Axis names, one per axis (pages first), e.g. `z, y, x`; shown by the viewer.
        axis_names ["axis_names", "axes"]: Vec<String>,
        /// Unit of `voxel_size` and `offset` per spatial axis (`nm`, `um`, …); they are
        /// converted to nm, which must give whole numbers.
        units: Vec<String> = Vec::new(),
    }
}

impl Check for TiffArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_positive_coordinate(&self.voxel_size, &child(path, "voxel_size"), problems);
    }
}

config_struct! {
    /// A fixed array of zeros for tests: shape (100, 50, 50), voxel size (1, 2, 2).
    DummyArrayConfig {
        /// Name of this array config.
        name: String,
    }
}

impl Check for DummyArrayConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

fn check_has_sources(count: usize, path: &str, problems: &mut Problems) {
    if count == 0 {
        problems.push(
            &child(path, "source_array_configs"),
            "needs at least one source array",
        );
    }
}

impl ArrayConfig {
    /// The zarr/N5 dataset this array reads in the end, following the source arrays of
    /// transforms: `(container, dataset)`; `None` for arrays with no such source.
    pub fn zarr_source(&self) -> Option<(String, String)> {
        fn walk(v: &serde_json::Value) -> Option<(String, String)> {
            let map = v.as_object()?;
            if map.get(crate::config::TYPE_KEY).and_then(|t| t.as_str()) == Some("ZarrArrayConfig")
            {
                let text = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
                return Some((text("file_name")?, text("dataset")?));
            }
            // In a typed config, the arrays are the `…config(s)` fields; a plain mapping
            // (named sources) holds arrays as its values.
            let typed = map.contains_key(crate::config::TYPE_KEY);
            map.iter()
                .filter(|(k, _)| !typed || k.contains("config"))
                .find_map(|(_, child)| match child {
                    serde_json::Value::Array(items) => items.iter().find_map(walk),
                    other => walk(other),
                })
        }
        walk(&super::schema::Encode::encode(self))
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn the_zarr_source_of_a_transform_is_found_through_its_sources() {
        let run = crate::demo::project::demo_run(20, 10);
        let crate::config::DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
            panic!("demo datasplit");
        };
        let crate::config::DatasetConfig::RawGt(d) = &split.validate_configs[0] else {
            panic!("demo dataset");
        };
        let gt = d.gt_config.as_ref().unwrap();
        assert!(
            !matches!(gt, ArrayConfig::Zarr(_)),
            "the demo ground truth is a transform"
        );
        let (container, dataset) = gt.zarr_source().unwrap();
        assert!(container.ends_with("synthetic.zarr"), "{container}");
        assert!(dataset.starts_with("labels/crop2"), "{dataset}");
        let raw = d.raw_config.as_ref().unwrap().zarr_source().unwrap();
        assert_eq!(raw.1, "raw/s0");
    }
}
