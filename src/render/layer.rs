//! The arrays behind viewer layers: an array path (zarr v2/v3, N5, an OME-Zarr multiscale
//! group) opened as a list of scale levels with their world geometry, read one chunk at a
//! time into the two value forms the renderer draws (floats per channel, or label ids).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::array::{self, ArrayData, ArrayError, ArraySource, DataType};
use crate::geometry::{Coordinate, Roi};

/// Errors opening a layer; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The path is not an array (or OME-Zarr image) Segno can read.
    #[error("{path}: {message}")]
    Open {
        /// The path given.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// How a layer is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// Intensities through a contrast range and a colormap.
    Image,
    /// Label ids, each in its hash colour.
    Segmentation,
    /// Network outputs: a heatmap, or one colour per channel.
    Prediction,
}

impl LayerKind {
    /// Every kind, in menu order.
    pub const ALL: [LayerKind; 3] = [
        LayerKind::Image,
        LayerKind::Segmentation,
        LayerKind::Prediction,
    ];

    /// A readable name.
    pub fn label(self) -> &'static str {
        match self {
            LayerKind::Image => "image",
            LayerKind::Segmentation => "segmentation",
            LayerKind::Prediction => "prediction",
        }
    }
}

/// A point in world space, in nanometres, in the arrays' axis order (z, y, x).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct WorldNm(pub [f64; 3]);

/// A voxel index of one scale level (z, y, x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VoxelIndex(pub [i64; 3]);

/// One scale level of a layer: where its voxels sit in world space and how it is chunked.
pub struct Level {
    /// The array.
    pub source: Box<dyn ArraySource>,
    /// Voxel size along z, y, x in nm.
    pub voxel_size_nm: [f64; 3],
    /// World position of voxel (0, 0, 0)'s corner along z, y, x in nm.
    pub offset_nm: [f64; 3],
    /// Number of voxels along z, y, x.
    pub shape: [u64; 3],
    /// Voxels per chunk along z, y, x (the inner chunk of sharded arrays).
    pub chunk: [u64; 3],
    /// Number of chunks along z, y, x.
    pub grid: [u64; 3],
    /// Whether the stored array has only two spatial axes (shown as one z slice).
    pub two_d: bool,
    /// The array's metadata file, checked when a chunk is missing: a missing chunk of an
    /// array that still exists is its fill value; of a deleted array, an error.
    pub metadata_file: Option<PathBuf>,
}

impl Level {
    /// The voxel containing world point `p`, or `None` outside the level.
    pub fn voxel_at(&self, p: &WorldNm) -> Option<VoxelIndex> {
        let v: [f64; 3] =
            std::array::from_fn(|a| ((p.0[a] - self.offset_nm[a]) / self.voxel_size_nm[a]).floor());
        if (0..3).any(|a| !(0.0..self.shape[a] as f64).contains(&v[a])) {
            return None;
        }
        Some(VoxelIndex(v.map(|x| x as i64)))
    }

    /// The world centre of voxel `v`.
    pub fn world_of(&self, v: &VoxelIndex) -> WorldNm {
        WorldNm(std::array::from_fn(|a| {
            self.offset_nm[a] + (v.0[a] as f64 + 0.5) * self.voxel_size_nm[a]
        }))
    }

    /// The world box covered by the level: (begin, end) along z, y, x in nm.
    pub fn bounds_nm(&self) -> ([f64; 3], [f64; 3]) {
        let end = std::array::from_fn(|a| {
            self.offset_nm[a] + self.shape[a] as f64 * self.voxel_size_nm[a]
        });
        (self.offset_nm, end)
    }
}

/// Decoded voxels of one chunk, laid out channel, z, y, x (C order).
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkValues {
    /// Intensities or network outputs as f32.
    Float {
        /// Every channel's voxels, one after the other.
        values: Vec<f32>,
        /// Number of channels.
        channels: usize,
        /// Voxels along z, y, x.
        shape: [usize; 3],
    },
    /// Label ids.
    Labels {
        /// The ids.
        values: Vec<u64>,
        /// Voxels along z, y, x.
        shape: [usize; 3],
    },
}

impl ChunkValues {
    /// Bytes held (what the CPU cache counts).
    pub fn bytes(&self) -> usize {
        match self {
            ChunkValues::Float { values, .. } => values.len() * 4,
            ChunkValues::Labels { values, .. } => values.len() * 8,
        }
    }

    /// Voxels along z, y, x.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            ChunkValues::Float { shape, .. } | ChunkValues::Labels { shape, .. } => *shape,
        }
    }

    /// A copy of the voxel-thick slab at `offset` along `axis` (every channel), or why there
    /// is none (an axis above 2, an offset beyond the shape, values not of the shape).
    pub fn slab(&self, axis: usize, offset: usize) -> Result<ChunkValues, String> {
        fn cut<T: Copy>(
            values: &[T],
            channels: usize,
            shape: [usize; 3],
            axis: usize,
            k: usize,
        ) -> Result<Vec<T>, String> {
            if axis > 2 || k >= shape[axis] {
                return Err(format!(
                    "no slab {k} along axis {axis} of a chunk of {shape:?}"
                ));
            }
            let dims = (channels, shape[0], shape[1], shape[2]);
            let a = ndarray::ArrayView4::from_shape(dims, values)
                .map_err(|e| format!("{} values are not {dims:?}: {e}", values.len()))?;
            Ok(a.index_axis(ndarray::Axis(axis + 1), k)
                .iter()
                .copied()
                .collect())
        }
        let shape = self.shape();
        let mut out = shape;
        if let Some(n) = out.get_mut(axis) {
            *n = 1;
        }
        Ok(match self {
            ChunkValues::Float {
                values, channels, ..
            } => ChunkValues::Float {
                values: cut(values, *channels, shape, axis, offset)?,
                channels: *channels,
                shape: out,
            },
            ChunkValues::Labels { values, .. } => ChunkValues::Labels {
                values: cut(values, 1, shape, axis, offset)?,
                shape: out,
            },
        })
    }
}

/// An opened layer: its levels (finest first), what it holds and how it is drawn by default.
pub struct LayerData {
    /// The path it was opened from.
    pub path: PathBuf,
    /// A short name (the path's last components).
    pub name: String,
    /// Element type of the stored arrays.
    pub data_type: DataType,
    /// Number of channels (product of the non-spatial axes; 1 when none).
    pub channels: usize,
    /// Scale levels, finest first.
    pub levels: Vec<Level>,
    /// Names of the spatial axes (z, y, x order).
    pub axis_names: [String; 3],
    /// The guessed way of drawing it.
    pub default_kind: LayerKind,
    /// The value of missing chunks.
    pub fill_value: f64,
    /// Opened as an OME-Zarr multiscale group (whose metadata places it in world space).
    pub ome_group: bool,
    /// Computed on demand (a network's live prediction) rather than read from storage: the
    /// chunk cache computes its chunks on a thread of their own, so that reading the other
    /// layers never waits behind a forward pass.
    pub computed: bool,
}

impl std::fmt::Debug for LayerData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerData")
            .field("path", &self.path)
            .field("data_type", &self.data_type)
            .field("channels", &self.channels)
            .field("levels", &self.levels.len())
            .finish()
    }
}

/// Opens `path` as a viewer layer: an OME-Zarr multiscale group gives all its levels, any
/// other array one level. Arrays need two or three spatial axes.
pub fn open_layer(path: &Path) -> Result<Arc<LayerData>, LayerError> {
    let display = path.display().to_string();
    let err = |message: String| LayerError::Open {
        path: display.clone(),
        message,
    };
    if !path.exists() {
        return Err(err("no such file or directory".into()));
    }
    let (container, inner) = array::split_container_path(path);
    let multiscale = array::zarr::scale_levels(&container, &inner).unwrap_or_default();
    let dirs: Vec<PathBuf> = if multiscale.is_empty() {
        vec![path.to_path_buf()]
    } else {
        multiscale
            .iter()
            .map(|l| container.join(&inner).join(&l.path))
            .collect()
    };
    let sources: Vec<Box<dyn ArraySource>> = dirs
        .iter()
        .map(|d| array::open(d))
        .collect::<Result<_, ArrayError>>()
        .map_err(|e| err(strip_path(&e, &display)))?;
    let first = sources[0].info().clone();
    if first.shape.contains(&0) {
        return Err(err(format!(
            "the array has no voxels (shape {:?}); there is nothing to show",
            first.shape
        )));
    }
    let channels = first.channels() as usize;
    let mut levels = Vec::new();
    for (s, dir) in sources.into_iter().zip(&dirs) {
        let mut level = level_of(s).map_err(&err)?;
        level.metadata_file = [".zarray", "zarr.json", "attributes.json"]
            .iter()
            .map(|f| dir.join(f))
            .find(|f| f.is_file());
        levels.push(level);
    }
    levels.sort_by(|a, b| {
        let va: f64 = a.voxel_size_nm.iter().product();
        let vb: f64 = b.voxel_size_nm.iter().product();
        va.total_cmp(&vb)
    });
    let axis_names = axis_names(&first);
    let fill_value = first.fill_value.as_f64().unwrap_or(0.0);
    let name = short_name(path);
    let default_kind = guess_kind(&name, first.data_type, channels);
    Ok(Arc::new(LayerData {
        path: path.to_path_buf(),
        name,
        data_type: first.data_type,
        channels,
        levels,
        axis_names,
        default_kind,
        fill_value,
        ome_group: !multiscale.is_empty(),
        computed: false,
    }))
}

/// The names of the spatial axes of `info` in z, y, x order (`z` first for 2-D arrays).
fn axis_names(info: &crate::array::ArrayInfo) -> [String; 3] {
    let spatial: Vec<String> = info
        .geometry
        .axes
        .iter()
        .filter(|a| a.spatial)
        .map(|a| a.name.clone())
        .collect();
    match spatial.as_slice() {
        [z, y, x] => [z.clone(), y.clone(), x.clone()],
        [y, x] => ["z".into(), y.clone(), x.clone()],
        _ => ["z".into(), "y".into(), "x".into()],
    }
}

/// A layer of one level computed on demand by `source` (see [`LayerData::computed`]),
/// called `name`, computed from the data at `path`; drawn as a segmentation when it holds
/// label ids (uint64), as a prediction otherwise.
pub fn computed_layer(
    path: &Path,
    name: &str,
    source: Box<dyn ArraySource>,
) -> Result<Arc<LayerData>, LayerError> {
    let info = source.info().clone();
    let level = level_of(source).map_err(|message| LayerError::Open {
        path: path.display().to_string(),
        message,
    })?;
    Ok(Arc::new(LayerData {
        path: path.to_path_buf(),
        name: name.to_string(),
        data_type: info.data_type,
        channels: info.channels() as usize,
        levels: vec![level],
        axis_names: axis_names(&info),
        default_kind: if info.data_type == DataType::U64 {
            LayerKind::Segmentation
        } else {
            LayerKind::Prediction
        },
        fill_value: 0.0,
        ome_group: false,
        computed: true,
    }))
}

fn strip_path(e: &ArrayError, display: &str) -> String {
    let text = e.to_string();
    text.strip_prefix(&format!("{display}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

fn level_of(source: Box<dyn ArraySource>) -> Result<Level, String> {
    let info = source.info();
    let axes = info.spatial_axes();
    if !(2..=3).contains(&axes.len()) {
        return Err(format!(
            "{}: has {} spatial axes; the viewer shows arrays with 2 or 3",
            info.path,
            axes.len()
        ));
    }
    let two_d = axes.len() == 2;
    let vs = info.geometry.voxel_size.to_vec();
    let off = info.geometry.offset.to_vec();
    let pick = |v: &[u64], axis: usize| v[axes[axis]];
    let (voxel_size_nm, offset_nm, shape, chunk) = if two_d {
        (
            [1.0, vs[0] as f64, vs[1] as f64],
            [0.0, off[0] as f64, off[1] as f64],
            [1, pick(&info.shape, 0), pick(&info.shape, 1)],
            [1, pick(&info.chunk_shape, 0), pick(&info.chunk_shape, 1)],
        )
    } else {
        (
            [vs[0] as f64, vs[1] as f64, vs[2] as f64],
            [off[0] as f64, off[1] as f64, off[2] as f64],
            [0, 1, 2].map(|a| pick(&info.shape, a)),
            [0, 1, 2].map(|a| pick(&info.chunk_shape, a)),
        )
    };
    let chunk = chunk.map(|c| c.max(1));
    let grid = std::array::from_fn(|a| shape[a].div_ceil(chunk[a]));
    Ok(Level {
        source,
        voxel_size_nm,
        offset_nm,
        shape,
        chunk,
        grid,
        two_d,
        metadata_file: None,
    })
}

/// Every array under `root` a viewer layer can show: plain arrays and OME-Zarr multiscale
/// groups (not their levels), sorted. Looks at most `max_depth` directories deep.
pub fn list_arrays(root: &Path, max_depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, max_depth, &mut out);
    out.sort();
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let json = |name: &str| -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    let v3 = json("zarr.json");
    let is_array = dir.join(".zarray").is_file()
        || v3
            .as_ref()
            .and_then(|v| v.get("node_type"))
            .and_then(|t| t.as_str())
            == Some("array")
        || json("attributes.json").is_some_and(|a| a.get("dimensions").is_some());
    let multiscale = json(".zattrs").is_some_and(|a| a.get("multiscales").is_some())
        || v3.as_ref().is_some_and(|v| {
            v.pointer("/attributes/multiscales").is_some()
                || v.pointer("/attributes/ome/multiscales").is_some()
        });
    if is_array || multiscale {
        out.push(dir.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        walk(&d, depth - 1, out);
    }
}

/// The array's path inside its container, without a trailing scale level
/// (`x.zarr/raw/s0` → `raw`, `x.zarr/volumes/gt` → `volumes/gt`); the directory name for
/// arrays outside a container.
fn short_name(path: &Path) -> String {
    let (container, inner) = array::split_container_path(path);
    let mut parts: Vec<&str> = inner.split('/').filter(|p| !p.is_empty()).collect();
    let is_level = |s: &str| s.len() >= 2 && s.starts_with('s') && s[1..].parse::<u32>().is_ok();
    if parts.len() > 1 && parts.last().is_some_and(|p| is_level(p)) {
        parts.pop();
    }
    if parts.is_empty() {
        return container
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
    }
    parts.join("/")
}

/// The default way to draw an array: ids and names that say labels are segmentations,
/// floats are predictions, the rest images.
pub fn guess_kind(name: &str, data_type: DataType, channels: usize) -> LayerKind {
    let lower = name.to_ascii_lowercase();
    let says_labels = ["gt", "label", "seg", "instance", "mask", "output"]
        .iter()
        .any(|w| lower.contains(w));
    if channels > 1 {
        // Several channels (network outputs, per-class masks): one colour per channel.
        return LayerKind::Prediction;
    }
    match data_type {
        DataType::U64 | DataType::I64 | DataType::U32 | DataType::I32 => LayerKind::Segmentation,
        DataType::F16 | DataType::F32 | DataType::F64 if channels > 1 || lower.contains("pred") => {
            LayerKind::Prediction
        }
        DataType::F16 | DataType::F32 | DataType::F64 => LayerKind::Image,
        _ if says_labels => LayerKind::Segmentation,
        _ => LayerKind::Image,
    }
}

impl LayerData {
    /// Reads chunk `index` (z, y, x) of `level`, as labels for segmentation layers and as
    /// floats otherwise. Chunks the store lacks read as the fill value.
    pub fn read_chunk(
        &self,
        level: usize,
        index: [u64; 3],
        kind: LayerKind,
    ) -> Result<ChunkValues, String> {
        self.read_slab(level, index, None, kind)
    }

    /// Reads one voxel-thick slab of chunk `index`: the voxels at position `offset` along
    /// `axis` inside the chunk (what a cross-section through it shows; formats that decode
    /// partially, such as Blosc, then decode about one chunk-edge-th of the chunk). `None`
    /// reads the whole chunk.
    pub fn read_slab(
        &self,
        level: usize,
        index: [u64; 3],
        slab: Option<(usize, u64)>,
        kind: LayerKind,
    ) -> Result<ChunkValues, String> {
        self.read_part(level, index, slab.map(|(a, o)| (a, o..=o)), kind)
    }

    /// Reads the voxel-thick slabs `offsets` along `axis` of chunk `index` in one read (a
    /// compressed chunk is decoded once for all of them), one [`ChunkValues`] per offset.
    pub fn read_slabs(
        &self,
        level: usize,
        index: [u64; 3],
        axis: usize,
        offsets: std::ops::RangeInclusive<u64>,
        kind: LayerKind,
    ) -> Result<Vec<ChunkValues>, String> {
        let block = self.read_part(level, index, Some((axis, offsets)), kind)?;
        (0..block.shape()[axis])
            .map(|k| block.slab(axis, k))
            .collect()
    }

    /// Reads chunk `index`, or only the slabs `offsets` along an axis of it.
    fn read_part(
        &self,
        level: usize,
        index: [u64; 3],
        slab: Option<(usize, std::ops::RangeInclusive<u64>)>,
        kind: LayerKind,
    ) -> Result<ChunkValues, String> {
        let l = self
            .levels
            .get(level)
            .ok_or_else(|| format!("no scale level {level}"))?;
        if (0..3).any(|a| index[a] >= l.grid[a]) {
            return Err(format!("chunk {index:?} is outside the grid {:?}", l.grid));
        }
        let mut begin: [u64; 3] = std::array::from_fn(|a| index[a] * l.chunk[a]);
        let mut end: [u64; 3] =
            std::array::from_fn(|a| ((index[a] + 1) * l.chunk[a]).min(l.shape[a]));
        if let Some((axis, offsets)) = slab {
            let (first, last) = (*offsets.start(), *offsets.end());
            if axis > 2 || first > last || begin[axis] + last >= end[axis] {
                return Err(format!(
                    "slabs {first}..={last} along axis {axis} are outside chunk {index:?}"
                ));
            }
            end[axis] = begin[axis] + last + 1;
            begin[axis] += first;
        }
        let info = l.source.info();
        let vs = info.geometry.voxel_size;
        let dims = if l.two_d { 1..3 } else { 0..3 };
        let b: Vec<i64> = dims.clone().map(|a| begin[a] as i64).collect();
        let e: Vec<i64> = dims.map(|a| end[a] as i64).collect();
        let roi = Coordinate::new(&b)
            .and_then(|b| Coordinate::new(&e).map(|e| (b, e)))
            .and_then(|(b, e)| {
                Roi::from_bounds(b * vs + info.geometry.offset, e * vs + info.geometry.offset)
            })
            .map_err(|e| e.to_string())?;
        let data = l.source.read(&roi).map_err(|e| e.to_string())?;
        if let Some(meta) = &l.metadata_file {
            if !meta.is_file() {
                return Err(format!(
                    "{}: the array is gone (deleted or moved while viewing)",
                    info.path
                ));
            }
        }
        let shape: [usize; 3] = std::array::from_fn(|a| (end[a] - begin[a]) as usize);
        to_chunk_values(&data, &info.geometry.axes, shape, kind)
    }
}

/// Reorders stored data to channel-first and converts it for drawing.
fn to_chunk_values(
    data: &ArrayData,
    axes: &[crate::array::Axis],
    shape: [usize; 3],
    kind: LayerKind,
) -> Result<ChunkValues, String> {
    let mut order: Vec<usize> = (0..axes.len()).filter(|&a| !axes[a].spatial).collect();
    let channels: usize = order.iter().map(|&a| data.shape()[a]).product();
    order.extend((0..axes.len()).filter(|&a| axes[a].spatial));
    let voxels = shape.iter().product::<usize>();
    if kind == LayerKind::Segmentation && channels == 1 {
        let labels = data.to_labels()?;
        let values: Vec<u64> = labels
            .permuted_axes(order)
            .as_standard_layout()
            .iter()
            .copied()
            .collect();
        if values.len() != voxels {
            return Err(format!(
                "chunk holds {} values, expected {voxels}",
                values.len()
            ));
        }
        return Ok(ChunkValues::Labels { values, shape });
    }
    let values: Vec<f32> = data
        .to_f32()
        .permuted_axes(order)
        .as_standard_layout()
        .iter()
        .copied()
        .collect();
    if values.len() != voxels * channels {
        return Err(format!(
            "chunk holds {} values, expected {}",
            values.len(),
            voxels * channels
        ));
    }
    Ok(ChunkValues::Float {
        values,
        channels,
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slab_is_cut_from_every_channel_of_a_chunk() {
        // 2 channels of 2 × 2 × 3 voxels: each voxel's linear index, plus 100 in channel 1.
        let values: Vec<f32> = (0..2)
            .flat_map(|c| (0..12).map(move |i| (100 * c + i) as f32))
            .collect();
        let chunk = ChunkValues::Float {
            values,
            channels: 2,
            shape: [2, 2, 3],
        };
        // x = 1 of each (z, y), channel 0 then channel 1.
        assert_eq!(
            chunk.slab(2, 1),
            Ok(ChunkValues::Float {
                values: vec![1.0, 4.0, 7.0, 10.0, 101.0, 104.0, 107.0, 110.0],
                channels: 2,
                shape: [2, 2, 1],
            })
        );
        let labels = ChunkValues::Labels {
            values: (0..12).collect(),
            shape: [2, 2, 3],
        };
        assert_eq!(
            labels.slab(0, 1),
            Ok(ChunkValues::Labels {
                values: vec![6, 7, 8, 9, 10, 11],
                shape: [1, 2, 3],
            })
        );
        assert_eq!(
            labels.slab(2, 3),
            Err("no slab 3 along axis 2 of a chunk of [2, 2, 3]".to_string())
        );
        assert!(labels.slab(3, 0).is_err());
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(short_name(Path::new("/d/x.zarr/raw/s0")), "raw");
        assert_eq!(short_name(Path::new("/d/x.zarr/volumes/gt")), "volumes/gt");
        assert_eq!(guess_kind("raw", DataType::U8, 1), LayerKind::Image);
        assert_eq!(
            guess_kind("gt/mito", DataType::U8, 1),
            LayerKind::Segmentation
        );
        assert_eq!(
            guess_kind("labels", DataType::U64, 1),
            LayerKind::Segmentation
        );
        assert_eq!(
            guess_kind("prediction", DataType::F32, 1),
            LayerKind::Prediction
        );
        assert_eq!(guess_kind("x", DataType::F32, 2), LayerKind::Prediction);
        assert_eq!(guess_kind("x", DataType::F32, 1), LayerKind::Image);
        assert_eq!(guess_kind("pred", DataType::F16, 1), LayerKind::Prediction);
        assert_eq!(guess_kind("seg_f16", DataType::F16, 1), LayerKind::Image);
    }

    #[test]
    fn channel_last_data_is_reordered_channel_first() {
        use crate::array::Axis;
        let axes = ["z", "y", "x", "c"]
            .iter()
            .map(|n| Axis {
                name: n.to_string(),
                spatial: *n != "c",
            })
            .collect::<Vec<_>>();
        // value = 10*x + c over a 1×1×2×2 array.
        let a = ndarray::ArrayD::from_shape_fn(vec![1, 1, 2, 2], |i| (10 * i[2] + i[3]) as f32);
        let c =
            to_chunk_values(&ArrayData::F32(a), &axes, [1, 1, 2], LayerKind::Prediction).unwrap();
        assert_eq!(
            c,
            ChunkValues::Float {
                values: vec![0.0, 10.0, 1.0, 11.0],
                channels: 2,
                shape: [1, 1, 2]
            }
        );
    }
}
