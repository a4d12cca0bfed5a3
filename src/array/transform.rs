//! Lazy array transforms: each wraps one or more source arrays and computes its voxels
//! only for the region a caller reads. Their semantics follow DaCapo's array configs,
//! with DaCapo's known defects fixed (see each type).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use ndarray::{ArrayD, Axis, IxDyn};
use serde_json::Value;

use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, Axis as MetaAxis, DataType, Geometry};
use crate::geometry::{Coordinate, Roi, SnapMode};

pub use super::in_memory::InMemory;

/// The info of an array derived from `src`: same spatial geometry over `roi`, element
/// type `data_type`, and a leading channel axis of length `channels` if given (any
/// channel axes of the source are dropped).
pub fn derived_info(
    name: &str,
    format: &'static str,
    src: &ArrayInfo,
    data_type: DataType,
    channels: Option<u64>,
    roi: Roi,
) -> ArrayInfo {
    let vs = src.geometry.voxel_size;
    let mut axes = Vec::new();
    let mut shape = Vec::new();
    let mut chunk_shape = Vec::new();
    if let Some(c) = channels {
        axes.push(MetaAxis {
            name: "c^".into(),
            spatial: false,
        });
        shape.push(c);
        chunk_shape.push(c);
    }
    let voxels = roi.shape() / vs;
    let mut s = 0;
    for (axis, a) in src.geometry.axes.iter().enumerate() {
        if a.spatial {
            axes.push(a.clone());
            shape.push(voxels[s].max(0) as u64);
            chunk_shape.push(src.chunk_shape[axis]);
            s += 1;
        }
    }
    ArrayInfo {
        path: name.to_string(),
        format,
        data_type,
        shape,
        chunk_shape,
        shard_shape: None,
        codecs: format!("{format} of {}", src.path),
        fill_value: Value::from(0),
        geometry: Geometry::derived(
            axes,
            vs,
            roi.offset(),
            src.geometry.units.clone(),
            "derived",
        ),
        roi,
    }
}

fn has_channels(info: &ArrayInfo) -> bool {
    info.geometry.axes.iter().any(|a| !a.spatial)
}

pub(super) fn invalid(name: &str, message: impl Into<String>) -> ArrayError {
    ArrayError::Invalid {
        path: name.to_string(),
        message: message.into(),
    }
}

fn read_error(info: &ArrayInfo, roi: &Roi, message: impl Into<String>) -> ArrayError {
    ArrayError::Read {
        path: info.path.clone(),
        roi: roi.to_string(),
        message: message.into(),
    }
}

/// Drops a leading channel axis of length 1, so that single-channel sources can be used
/// where a plain volume is expected.
fn squeeze_channel(data: ArrayData, info: &ArrayInfo) -> ArrayData {
    if has_channels(info) && data.shape().len() > info.spatial_dims() && data.shape()[0] == 1 {
        crate::with_array_data!(data, a => a.index_axis_move(Axis(0), 0).into())
    } else {
        data
    }
}

/// One channel per class: `out[i] = source ∈ groupings[i].ids`, or `source ≠ background`
/// when a group lists no ids (uint8, channel axis first).
pub struct Binarize {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
    groups: Vec<Vec<u64>>,
    background: u64,
}

impl Binarize {
    /// Wraps a label array without channel axis.
    pub fn new(
        name: &str,
        source: Box<dyn ArraySource>,
        groupings: &[(String, Vec<u64>)],
        background: u64,
    ) -> Result<Self, ArrayError> {
        let src = source.info();
        if has_channels(src) && src.channels() != 1 {
            return Err(invalid(
                name,
                format!(
                    "the source {} has {} channels; binarize needs a single label volume",
                    src.path,
                    src.channels()
                ),
            ));
        }
        if groupings.is_empty() {
            return Err(invalid(
                name,
                "groupings: needs at least one (class name, ids) group",
            ));
        }
        let info = derived_info(
            name,
            "Binarize",
            src,
            DataType::U8,
            Some(groupings.len() as u64),
            src.roi,
        );
        Ok(Self {
            info,
            groups: groupings.iter().map(|(_, ids)| ids.clone()).collect(),
            background,
            source,
        })
    }
}

impl ArraySource for Binarize {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let src = squeeze_channel(self.source.read(roi)?, self.source.info());
        let labels = src
            .to_labels()
            .map_err(|m| read_error(&self.info, roi, m))?;
        let mut channels = Vec::with_capacity(self.groups.len());
        for ids in &self.groups {
            let bg = self.background;
            let ch: ArrayD<u8> = if ids.is_empty() {
                labels.mapv(|v| u8::from(v != bg))
            } else {
                let set: BTreeSet<u64> = ids.iter().copied().collect();
                labels.mapv(|v| u8::from(set.contains(&v)))
            };
            channels.push(ArrayData::U8(ch).with_channel_axis());
        }
        ArrayData::concat(&channels).map_err(|m| read_error(&self.info, roi, m))
    }
}

/// Intensities scaled to `(v − min) / (max − min)` as float32 (not clipped).
pub struct Intensities {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
    min: f64,
    max: f64,
}

impl Intensities {
    /// Wraps `source`; `max` must be greater than `min`.
    pub fn new(
        name: &str,
        source: Box<dyn ArraySource>,
        min: f64,
        max: f64,
    ) -> Result<Self, ArrayError> {
        if !(min.is_finite() && max.is_finite() && max > min) {
            return Err(invalid(
                name,
                format!("max must be greater than min (min = {min}, max = {max})"),
            ));
        }
        let mut info = source.info().clone();
        info.path = name.to_string();
        info.format = "Intensities";
        info.data_type = DataType::F32;
        info.codecs = format!(
            "intensities [{min}, {max}] → [0, 1] of {}",
            source.info().path
        );
        Ok(Self {
            source,
            info,
            min,
            max,
        })
    }
}

impl ArraySource for Intensities {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let v = self.source.read(roi)?.to_f64();
        let (min, range) = (self.min, self.max - self.min);
        Ok(ArrayData::F32(v.mapv(|x| ((x - min) / range) as f32)))
    }
}

/// Every voxel (and channel) of the source replaced by one value: `Ones` (boolean true)
/// and `Constant` (the source's element type).
pub struct Constant {
    info: ArrayInfo,
    value: f64,
}

impl Constant {
    /// A constant over the source's geometry; `data_type` `None` keeps the source's type.
    pub fn new(
        name: &str,
        source: &dyn ArraySource,
        value: f64,
        data_type: Option<DataType>,
        format: &'static str,
    ) -> Self {
        let mut info = source.info().clone();
        info.path = name.to_string();
        info.format = format;
        if let Some(dt) = data_type {
            info.data_type = dt;
        }
        info.codecs = format!("constant {value} over {}", source.info().path);
        Self { info, value }
    }
}

impl ArraySource for Constant {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.voxel_ranges(roi)?;
        let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        Ok(ArrayData::filled(self.info.data_type, &shape, self.value))
    }
}

/// Channels stacked in a given order: mapped sources, the default array for unmapped
/// channels, zeros otherwise. The region is the intersection of the sources' regions.
pub struct Concat {
    parts: Vec<Option<Box<dyn ArraySource>>>,
    default: Option<Box<dyn ArraySource>>,
    info: ArrayInfo,
}

impl Concat {
    /// `parts[i]` is channel i's source (`None` = use `default`, else zeros). Sources must
    /// share voxel size and element type and have at most one channel each.
    pub fn new(
        name: &str,
        channels: &[String],
        parts: Vec<Option<Box<dyn ArraySource>>>,
        default: Option<Box<dyn ArraySource>>,
    ) -> Result<Self, ArrayError> {
        let all: Vec<&dyn ArraySource> = parts
            .iter()
            .flatten()
            .map(|b| b.as_ref())
            .chain(default.iter().map(|b| b.as_ref()))
            .collect();
        let Some(first) = all.first() else {
            return Err(invalid(
                name,
                "needs at least one source array (or a default_config)",
            ));
        };
        let first = first.info();
        let mut roi = first.roi;
        for (i, a) in all.iter().enumerate() {
            let info = a.info();
            let label = parts
                .iter()
                .position(|p| {
                    p.as_ref()
                        .is_some_and(|p| std::ptr::addr_eq(p.as_ref(), *a))
                })
                .map(|c| format!("channel `{}`", channels[c]))
                .unwrap_or_else(|| {
                    if i + 1 == all.len() && default.is_some() {
                        "default_config".into()
                    } else {
                        "a source".into()
                    }
                });
            if info.geometry.voxel_size != first.geometry.voxel_size {
                return Err(invalid(
                    name,
                    format!(
                        "{label} ({}) has voxel size {} but {} has {}",
                        info.path, info.geometry.voxel_size, first.path, first.geometry.voxel_size
                    ),
                ));
            }
            if info.data_type != first.data_type {
                return Err(invalid(
                    name,
                    format!(
                        "{label} ({}) holds {} but {} holds {}",
                        info.path, info.data_type, first.path, first.data_type
                    ),
                ));
            }
            if info.channels() != 1 {
                return Err(invalid(
                    name,
                    format!(
                        "{label} ({}) has {} channels; each channel needs a single-channel source",
                        info.path,
                        info.channels()
                    ),
                ));
            }
            if !roi.intersects(&info.roi) {
                return Err(invalid(
                    name,
                    format!(
                        "{label} ({}) covers {}, which does not overlap {roi}",
                        info.path, info.roi
                    ),
                ));
            }
            roi = roi.intersect(&info.roi);
        }
        let info = derived_info(
            name,
            "Concat",
            first,
            first.data_type,
            Some(channels.len() as u64),
            roi,
        );
        Ok(Self {
            parts,
            default,
            info,
        })
    }
}

impl ArraySource for Concat {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.voxel_ranges(roi)?;
        let spatial: Vec<usize> = ranges[1..]
            .iter()
            .map(|r| (r.end - r.start) as usize)
            .collect();
        let mut out = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let src = part.as_ref().or(self.default.as_ref());
            let data = match src {
                Some(s) => {
                    let d = s.read(roi)?;
                    if d.shape().len() == spatial.len() {
                        d.with_channel_axis()
                    } else {
                        d
                    }
                }
                None => ArrayData::filled(self.info.data_type, &spatial, 0.0).with_channel_axis(),
            };
            out.push(data);
        }
        ArrayData::concat(&out).map_err(|m| read_error(&self.info, roi, m))
    }
}

/// The maximum over the source's channels (uint8): a voxel is set if any channel is.
pub struct LogicalOr {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
}

impl LogicalOr {
    /// Wraps `source` (with or without a channel axis).
    pub fn new(name: &str, source: Box<dyn ArraySource>) -> Self {
        let src = source.info();
        let info = derived_info(name, "LogicalOr", src, DataType::U8, None, src.roi);
        Self { source, info }
    }
}

impl ArraySource for LogicalOr {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let data = self.source.read(roi)?.to_f64();
        let src = self.source.info();
        let mut any = data.mapv(|v| v != 0.0);
        for _ in 0..(data.ndim() - src.spatial_dims()) {
            any = any.map_axis(Axis(0), |lane| lane.iter().any(|v| *v));
        }
        Ok(ArrayData::U8(any.mapv(u8::from)))
    }
}

/// The source restricted to a region (the intersection of the crop and the source).
pub struct Crop {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
}

impl Crop {
    /// Wraps `source`; `roi` must lie on the source's voxel grid and overlap it.
    pub fn new(name: &str, source: Box<dyn ArraySource>, roi: &Roi) -> Result<Self, ArrayError> {
        let src = source.info();
        let vs = src.geometry.voxel_size;
        if roi.dims() != vs.dims() {
            return Err(invalid(
                name,
                format!(
                    "roi: {roi} has {} axes, {} has {}",
                    roi.dims(),
                    src.path,
                    vs.dims()
                ),
            ));
        }
        if !(roi.offset() - src.geometry.offset).is_multiple_of(&vs) {
            let nearest = src.geometry.offset + ((roi.offset() - src.geometry.offset) / vs) * vs;
            return Err(invalid(
                name,
                format!(
                    "roi: its offset {} nm is not on the voxel grid of {} (voxel size {vs} nm, array offset {} nm); the offset must be the array offset plus whole voxels, e.g. {nearest}",
                    roi.offset(),
                    src.path,
                    src.geometry.offset
                ),
            ));
        }
        if !roi.shape().is_multiple_of(&vs) {
            return Err(invalid(
                name,
                format!(
                    "roi: its shape {} nm is not a whole number of voxels of {} (voxel size {vs} nm)",
                    roi.shape(),
                    src.path
                ),
            ));
        }
        if !roi.intersects(&src.roi) {
            return Err(invalid(
                name,
                format!("roi: {roi} does not overlap {} ({})", src.path, src.roi),
            ));
        }
        let cropped = roi.intersect(&src.roi);
        let mut info = src.clone();
        info.path = name.to_string();
        info.format = "Crop";
        info.codecs = format!("crop {cropped} of {}", src.path);
        let voxels = cropped.shape() / vs;
        let mut s = 0;
        for (axis, a) in src.geometry.axes.iter().enumerate() {
            if a.spatial {
                info.shape[axis] = voxels[s] as u64;
                s += 1;
            }
        }
        info.geometry.offset = cropped.offset();
        info.roi = cropped;
        Ok(Self { source, info })
    }
}

impl ArraySource for Crop {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        self.source.read(roi)
    }
}

/// The voxel-wise sum of several volumes (the first one's element type and region).
pub struct Sum {
    sources: Vec<Box<dyn ArraySource>>,
    info: ArrayInfo,
}

fn check_same_grid(name: &str, sources: &[Box<dyn ArraySource>]) -> Result<Roi, ArrayError> {
    let Some(first) = sources.first() else {
        return Err(invalid(
            name,
            "source_array_configs: needs at least one source array",
        ));
    };
    let first = first.info();
    let mut roi = first.roi;
    for s in &sources[1..] {
        let info = s.info();
        if info.geometry.voxel_size != first.geometry.voxel_size {
            return Err(invalid(
                name,
                format!(
                    "{} has voxel size {} but {} has {}",
                    info.path, info.geometry.voxel_size, first.path, first.geometry.voxel_size
                ),
            ));
        }
        if !roi.intersects(&info.roi) {
            return Err(invalid(
                name,
                format!(
                    "{} covers {}, which does not overlap {roi}",
                    info.path, info.roi
                ),
            ));
        }
        roi = roi.intersect(&info.roi);
    }
    Ok(roi)
}

impl Sum {
    /// Wraps `sources` (same voxel size); the region is their intersection.
    pub fn new(name: &str, sources: Vec<Box<dyn ArraySource>>) -> Result<Self, ArrayError> {
        let roi = check_same_grid(name, &sources)?;
        let first = sources[0].info();
        let info = derived_info(name, "Sum", first, first.data_type, None, roi);
        Ok(Self { sources, info })
    }
}

impl ArraySource for Sum {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let mut total: Option<ArrayD<f64>> = None;
        for s in &self.sources {
            let v = squeeze_channel(s.read(roi)?, s.info()).to_f64();
            total = Some(match total {
                None => v,
                Some(t) if t.shape() == v.shape() => t + v,
                Some(t) => {
                    return Err(read_error(
                        &self.info,
                        roi,
                        format!(
                            "{} gave shape {:?}, expected {:?}",
                            s.info().path,
                            v.shape(),
                            t.shape()
                        ),
                    ))
                }
            });
        }
        let total = total.unwrap_or_else(|| ArrayD::zeros(IxDyn(&[])));
        Ok(super::data::from_f64(self.info.data_type, &total))
    }
}

/// Instance labels of several volumes merged into one (uint64) with disjoint ids: the ids
/// of source k are shifted by the sum of the maximum ids of sources 0..k, and where two
/// sources label the same voxel the earlier source wins. (DaCapo adds overlapping labels
/// and shifts by a non-cumulative offset, which can merge distinct objects.)
pub struct MergeInstances {
    sources: Vec<Box<dyn ArraySource>>,
    info: ArrayInfo,
    offsets: OnceLock<Result<Vec<u64>, String>>,
}

impl MergeInstances {
    /// Wraps label `sources` (same voxel size); the region is their intersection.
    pub fn new(name: &str, sources: Vec<Box<dyn ArraySource>>) -> Result<Self, ArrayError> {
        let roi = check_same_grid(name, &sources)?;
        let info = derived_info(
            name,
            "MergeInstances",
            sources[0].info(),
            DataType::U64,
            None,
            roi,
        );
        Ok(Self {
            sources,
            info,
            offsets: OnceLock::new(),
        })
    }

    /// Cumulative id offsets, from each source's maximum over its whole region.
    fn offsets(&self) -> Result<&Vec<u64>, String> {
        self.offsets
            .get_or_init(|| {
                let mut offsets = Vec::with_capacity(self.sources.len());
                let mut next = 0u64;
                for s in &self.sources {
                    offsets.push(next);
                    let all = s.read(&s.info().roi).map_err(|e| e.to_string())?;
                    let max = all.to_labels()?.iter().copied().max().unwrap_or(0);
                    next = next
                        .checked_add(max)
                        .ok_or("label ids overflow uint64 when merged")?;
                }
                Ok(offsets)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ArraySource for MergeInstances {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let offsets = self
            .offsets()
            .map_err(|m| read_error(&self.info, roi, m))?
            .clone();
        let mut out: Option<ArrayD<u64>> = None;
        for (s, offset) in self.sources.iter().zip(offsets) {
            let v = squeeze_channel(s.read(roi)?, s.info())
                .to_labels()
                .map_err(|m| read_error(&self.info, roi, m))?;
            match &mut out {
                None => out = Some(v.mapv(|id| if id == 0 { 0 } else { id + offset })),
                Some(o) => ndarray::Zip::from(o).and(&v).for_each(|o, id| {
                    if *o == 0 && *id != 0 {
                        *o = id + offset;
                    }
                }),
            }
        }
        Ok(ArrayData::U64(
            out.unwrap_or_else(|| ArrayD::zeros(IxDyn(&[]))),
        ))
    }
}

/// One channel per class group: `labels > 0`, except that a group's channel is all zero
/// when the container's `labels` annotation attribute marks one of its ids as present but
/// not annotated (CellMap's `annotationState`). Without such an attribute nothing is masked.
pub struct MissingAnnotationsMask {
    source: Box<dyn ArraySource>,
    info: ArrayInfo,
    unannotated: Vec<bool>,
}

impl MissingAnnotationsMask {
    /// Wraps a label array; `groupings` as for binarize.
    pub fn new(
        name: &str,
        source: Box<dyn ArraySource>,
        groupings: &[(String, Vec<u64>)],
    ) -> Result<Self, ArrayError> {
        let src = source.info();
        let mut missing: BTreeSet<u64> = BTreeSet::new();
        if let Some(Value::Array(labels)) = source.attributes().and_then(|a| a.get("labels")) {
            for l in labels {
                let value = l.get("value").and_then(Value::as_u64);
                let state = l.get("annotationState");
                let present = state
                    .and_then(|s| s.get("present"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let annotated = state
                    .and_then(|s| s.get("annotated"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if let (Some(v), true, false) = (value, present, annotated) {
                    missing.insert(v);
                }
            }
        }
        let unannotated = groupings
            .iter()
            .map(|(_, ids)| ids.iter().any(|i| missing.contains(i)))
            .collect();
        let info = derived_info(
            name,
            "MissingAnnotationsMask",
            src,
            DataType::U8,
            Some(groupings.len() as u64),
            src.roi,
        );
        Ok(Self {
            source,
            info,
            unannotated,
        })
    }
}

impl ArraySource for MissingAnnotationsMask {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.info.voxel_ranges(roi)?;
        let labels = squeeze_channel(self.source.read(roi)?, self.source.info())
            .to_labels()
            .map_err(|m| read_error(&self.info, roi, m))?;
        let channels: Vec<ArrayData> = self
            .unannotated
            .iter()
            .map(|&masked| {
                ArrayData::U8(labels.mapv(|v| u8::from(!masked && v > 0))).with_channel_axis()
            })
            .collect();
        ArrayData::concat(&channels).map_err(|m| read_error(&self.info, roi, m))
    }
}

/// A zarr/N5 array with its region shrunk to a grid (the `snap_to_grid` config option).
pub fn snap_roi(name: &str, info: &ArrayInfo, grid: &Coordinate) -> Result<Roi, ArrayError> {
    let g = info
        .geometry
        .voxel_size
        .checked_lcm(grid)
        .map_err(|e| invalid(name, format!("snap_to_grid: {e}")))?;
    info.roi
        .snap_to_grid(&g, SnapMode::Shrink)
        .map_err(|e| invalid(name, format!("snap_to_grid: {e}")))
}
