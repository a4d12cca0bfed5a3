//! Voxel arrays: a common view of stored volumes (zarr v2/v3, OME-NGFF, N5) with their
//! geometry in world units, read by region of interest.
//!
//! Every array exposes its voxel size, its region (world units, nm), its axes (spatial and
//! channel axes), its element type and reads of any voxel-aligned region inside it. Input
//! data is only ever opened for reading.

pub mod data;
mod in_memory;
pub mod input;
pub mod meta;
pub mod n5;
pub mod open;
pub mod resample;
pub mod shard;
pub mod transform;
pub mod write;
pub mod zarr;

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;

use crate::geometry::{Coordinate, Roi};
pub use meta::{Axis, Geometry, MetaError};

/// The most voxels an array may declare (2^53: every voxel index and count stays exact
/// in the f64 arithmetic of viewers and scripts).
pub const MAX_ARRAY_VOXELS: u64 = 1 << 53;

/// The largest chunk (or shard) Segno decodes, in bytes (2 GiB).
pub const MAX_CHUNK_BYTES: u64 = 1 << 31;

/// The most memory one read of a region may take, in bytes (16 GiB); larger regions are
/// processed block by block.
pub const MAX_READ_BYTES: u64 = 1 << 34;

/// Errors reading arrays. Every variant names the array (and the chunk where it applies).
#[derive(Debug, thiserror::Error)]
pub enum ArrayError {
    /// Nothing array-like at the path.
    #[error("{path}: {message}")]
    NotFound {
        /// The path looked at.
        path: String,
        /// What was looked for.
        message: String,
    },
    /// The array's metadata cannot be read or is invalid.
    #[error("{path}: invalid array metadata: {message}")]
    Metadata {
        /// The array.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A data type, codec or layout Segno cannot read.
    #[error("{path}: unsupported {what}")]
    Unsupported {
        /// The array.
        path: String,
        /// What is not supported.
        what: String,
    },
    /// A chunk could not be read or decoded.
    #[error("{path}: cannot read chunk {chunk}: {message}")]
    Chunk {
        /// The array.
        path: String,
        /// The chunk's grid index, or its key.
        chunk: String,
        /// What went wrong.
        message: String,
    },
    /// Reading failed for another reason.
    #[error("{path}: cannot read {roi}: {message}")]
    Read {
        /// The array.
        path: String,
        /// The requested region.
        roi: String,
        /// What went wrong.
        message: String,
    },
    /// The requested region is not inside the array.
    #[error("{path}: the region {requested} is not inside the array's region {available}")]
    OutOfBounds {
        /// The array.
        path: String,
        /// The requested region.
        requested: Box<Roi>,
        /// The array's region.
        available: Box<Roi>,
    },
    /// The requested region does not fall on the voxel grid.
    #[error("{path}: the region {requested} is not aligned to the voxel grid (voxel size {voxel_size}, array offset {offset})")]
    Misaligned {
        /// The array.
        path: String,
        /// The requested region.
        requested: Box<Roi>,
        /// The array's voxel size.
        voxel_size: Box<Coordinate>,
        /// The array's offset.
        offset: Box<Coordinate>,
    },
    /// An array description (config) that cannot be turned into an array.
    #[error("{path}: {message}")]
    Invalid {
        /// The array (config name or path).
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Writing failed.
    #[error("{path}: cannot write {what}: {message}")]
    Write {
        /// The array.
        path: String,
        /// What was being written (a region, a chunk, metadata).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// An output exists and replacing it was not asked for.
    #[error("{path} exists ({what}): pass --overwrite to replace it, or choose another output")]
    Exists {
        /// The existing output.
        path: String,
        /// What it holds.
        what: String,
    },
    /// An output would replace, contain or lie inside an input of the same command.
    #[error("the output {path} would overlap the input {input}: write it somewhere else")]
    OverInput {
        /// The output.
        path: String,
        /// The input it overlaps.
        input: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Boolean.
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// 16-bit (IEEE half) float, a storage type: read as float32 values, written from them.
    F16,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl DataType {
    /// Parses the names used by zarr v3, N5 and numpy (`uint8`, `float32`, `bool`, …).
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name {
            "bool" => DataType::Bool,
            "uint8" | "u1" | "|u1" => DataType::U8,
            "uint16" | "<u2" | ">u2" => DataType::U16,
            "uint32" | "<u4" | ">u4" => DataType::U32,
            "uint64" | "<u8" | ">u8" => DataType::U64,
            "int8" | "i1" | "|i1" => DataType::I8,
            "int16" | "<i2" | ">i2" => DataType::I16,
            "int32" | "<i4" | ">i4" => DataType::I32,
            "int64" | "<i8" | ">i8" => DataType::I64,
            "float16" | "<f2" | ">f2" => DataType::F16,
            "float32" | "<f4" | ">f4" => DataType::F32,
            "float64" | "<f8" | ">f8" => DataType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::Bool | DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 | DataType::F16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::U64 | DataType::I64 | DataType::F64 => 8,
        }
    }

    /// The zarr v3 name (`uint8`, …).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::U8 => "uint8",
            DataType::U16 => "uint16",
            DataType::U32 => "uint32",
            DataType::U64 => "uint64",
            DataType::I8 => "int8",
            DataType::I16 => "int16",
            DataType::I32 => "int32",
            DataType::I64 => "int64",
            DataType::F16 => "float16",
            DataType::F32 => "float32",
            DataType::F64 => "float64",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Voxel data of any supported element type, in storage axis order (channel axes first,
/// then z, y, x).
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayData {
    /// Booleans.
    Bool(ArrayD<bool>),
    /// Unsigned 8-bit integers.
    U8(ArrayD<u8>),
    /// Unsigned 16-bit integers.
    U16(ArrayD<u16>),
    /// Unsigned 32-bit integers.
    U32(ArrayD<u32>),
    /// Unsigned 64-bit integers.
    U64(ArrayD<u64>),
    /// Signed 8-bit integers.
    I8(ArrayD<i8>),
    /// Signed 16-bit integers.
    I16(ArrayD<i16>),
    /// Signed 32-bit integers.
    I32(ArrayD<i32>),
    /// Signed 64-bit integers.
    I64(ArrayD<i64>),
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// 64-bit floats.
    F64(ArrayD<f64>),
}

/// Applies an expression to the ndarray inside an [`ArrayData`], whatever its type.
#[macro_export]
macro_rules! with_array_data {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            $crate::array::ArrayData::Bool($a) => $body,
            $crate::array::ArrayData::U8($a) => $body,
            $crate::array::ArrayData::U16($a) => $body,
            $crate::array::ArrayData::U32($a) => $body,
            $crate::array::ArrayData::U64($a) => $body,
            $crate::array::ArrayData::I8($a) => $body,
            $crate::array::ArrayData::I16($a) => $body,
            $crate::array::ArrayData::I32($a) => $body,
            $crate::array::ArrayData::I64($a) => $body,
            $crate::array::ArrayData::F32($a) => $body,
            $crate::array::ArrayData::F64($a) => $body,
        }
    };
}

impl ArrayData {
    /// The element type.
    pub fn data_type(&self) -> DataType {
        match self {
            ArrayData::Bool(_) => DataType::Bool,
            ArrayData::U8(_) => DataType::U8,
            ArrayData::U16(_) => DataType::U16,
            ArrayData::U32(_) => DataType::U32,
            ArrayData::U64(_) => DataType::U64,
            ArrayData::I8(_) => DataType::I8,
            ArrayData::I16(_) => DataType::I16,
            ArrayData::I32(_) => DataType::I32,
            ArrayData::I64(_) => DataType::I64,
            ArrayData::F32(_) => DataType::F32,
            ArrayData::F64(_) => DataType::F64,
        }
    }

    /// The shape, in storage axis order.
    pub fn shape(&self) -> &[usize] {
        with_array_data!(self, a => a.shape())
    }
}

/// Everything known about an array without reading its voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayInfo {
    /// Where the array lives (`container.zarr/path/to/array`).
    pub path: String,
    /// Storage format (`zarr v2`, `zarr v3`, `N5`).
    pub format: &'static str,
    /// Element type.
    pub data_type: DataType,
    /// Shape of the stored array, every axis, in voxels.
    pub shape: Vec<u64>,
    /// Shape of one chunk (of one shard's inner chunk for sharded arrays), every axis.
    pub chunk_shape: Vec<u64>,
    /// Shape of one shard, when the array is sharded.
    pub shard_shape: Option<Vec<u64>>,
    /// Compression and other codecs, human-readable.
    pub codecs: String,
    /// The value missing chunks read as, as JSON.
    pub fill_value: serde_json::Value,
    /// Geometry: axes, voxel size, offset, units.
    pub geometry: Geometry,
    /// The array's region in world units (nm).
    pub roi: Roi,
}

/// What a zarr or N5 header says about a stored array, apart from its geometry.
pub(crate) struct StoredHeader {
    /// The array's path as shown in messages.
    pub path: String,
    /// The storage format (`zarr v2`, `zarr v3`, `N5`).
    pub format: &'static str,
    /// The element type.
    pub data_type: DataType,
    /// The stored shape, channel axes included.
    pub shape: Vec<u64>,
    /// The chunk (or inner chunk) shape.
    pub chunk_shape: Vec<u64>,
    /// The shard shape of a sharded zarr v3 array.
    pub shard_shape: Option<Vec<u64>>,
    /// The codecs, as text.
    pub codecs: String,
    /// The fill value as stored.
    pub fill_value: serde_json::Value,
}

impl ArrayInfo {
    /// The description of a stored array from its header and the metadata its geometry is
    /// resolved from (see [`meta::resolve`]): sizes checked, region computed. Every error is
    /// a metadata error naming the array. The one conversion the zarr and N5 readers share.
    pub(crate) fn from_header(
        header: StoredHeader,
        inputs: &meta::MetaInputs<'_>,
    ) -> Result<Self, ArrayError> {
        let error = |message: String| ArrayError::Metadata {
            path: header.path.clone(),
            message,
        };
        let geometry = meta::resolve(inputs).map_err(|e| error(e.to_string()))?;
        Self::check_sizes(
            &header.shape,
            &header.chunk_shape,
            header.shard_shape.as_deref(),
            header.data_type,
        )
        .map_err(error)?;
        let roi = Self::compute_roi(&header.shape, &geometry).map_err(error)?;
        Ok(ArrayInfo {
            path: header.path,
            format: header.format,
            data_type: header.data_type,
            shape: header.shape,
            chunk_shape: header.chunk_shape,
            shard_shape: header.shard_shape,
            codecs: header.codecs,
            fill_value: header.fill_value,
            geometry,
            roi,
        })
    }

    /// Refuses an array whose offset is off its voxel grid (not a multiple of the voxel
    /// size) for `purpose` ("training", "prediction", …), which computes on the world voxel
    /// grid: Segno never shifts data to make it fit.
    pub fn require_on_grid(&self, purpose: &str) -> Result<(), ArrayError> {
        if self.geometry.on_grid() {
            return Ok(());
        }
        let mut message = format!(
            "the offset {} nm is not a multiple of the voxel size {} nm, and {purpose} needs arrays on the voxel grid; Segno does not shift data onto it: resample the array or correct its offset attribute",
            self.geometry.offset, self.geometry.voxel_size
        );
        for note in &self.geometry.offset_notes {
            message.push_str(&format!(" ({note})"));
        }
        Err(ArrayError::Invalid {
            path: self.path.clone(),
            message,
        })
    }

    /// Number of spatial axes.
    pub fn spatial_dims(&self) -> usize {
        self.geometry.voxel_size.dims()
    }

    /// Indices of the spatial axes in storage order.
    pub fn spatial_axes(&self) -> Vec<usize> {
        (0..self.geometry.axes.len())
            .filter(|&i| self.geometry.axes[i].spatial)
            .collect()
    }

    /// Number of channels: the product of the non-spatial axis lengths (1 when none).
    pub fn channels(&self) -> u64 {
        self.geometry
            .axes
            .iter()
            .zip(&self.shape)
            .filter(|(a, _)| !a.spatial)
            .map(|(_, n)| *n)
            .product()
    }

    /// Computes the array's region in world units (nm) from its shape and geometry.
    /// Checks the sizes an array's metadata declares before anything is allocated for
    /// them: at most [`MAX_ARRAY_VOXELS`] voxels in all, chunks (and shards) of at most
    /// [`MAX_CHUNK_BYTES`] decoded bytes, no empty chunk axis.
    pub fn check_sizes(
        shape: &[u64],
        chunk_shape: &[u64],
        shard_shape: Option<&[u64]>,
        data_type: DataType,
    ) -> Result<(), String> {
        let voxels = shape.iter().try_fold(1u64, |a, b| a.checked_mul(*b));
        if voxels.is_none_or(|v| v > MAX_ARRAY_VOXELS) {
            return Err(format!(
                "the shape {shape:?} has more than 2^53 voxels, the most Segno reads"
            ));
        }
        if chunk_shape.len() != shape.len() || chunk_shape.contains(&0) {
            return Err(format!(
                "the chunk shape {chunk_shape:?} does not fit the shape {shape:?}"
            ));
        }
        let size = data_type.size_bytes() as u64;
        for (what, s) in
            std::iter::once(("chunk", chunk_shape)).chain(shard_shape.map(|s| ("shard", s)))
        {
            let bytes = s
                .iter()
                .try_fold(size, |a, b| a.checked_mul(*b))
                .filter(|b| *b <= MAX_CHUNK_BYTES);
            if bytes.is_none() {
                return Err(format!(
                    "a {what} of shape {s:?} ({data_type}) is larger than {} GiB, the largest Segno decodes",
                    MAX_CHUNK_BYTES >> 30
                ));
            }
        }
        Ok(())
    }

    /// Refuses reading `ranges` (voxel ranges per stored axis) when that would take more
    /// than [`MAX_READ_BYTES`] of memory.
    pub fn check_read_size(&self, ranges: &[std::ops::Range<u64>]) -> Result<(), ArrayError> {
        let bytes = ranges
            .iter()
            .try_fold(self.data_type.size_bytes() as u64, |a, r| {
                a.checked_mul(r.end.saturating_sub(r.start))
            });
        match bytes {
            Some(b) if b <= MAX_READ_BYTES => Ok(()),
            _ => Err(ArrayError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "reading {:?} voxels at once would take more than {} GiB of memory, the most Segno reads in one piece; read a smaller region",
                    ranges.iter().map(|r| r.end.saturating_sub(r.start)).collect::<Vec<_>>(),
                    MAX_READ_BYTES >> 30
                ),
            }),
        }
    }

    /// The world region covered by an array of `shape` with `geometry`.
    pub fn compute_roi(shape: &[u64], geometry: &Geometry) -> Result<Roi, String> {
        let voxels = (0..shape.len())
            .filter(|&i| geometry.axes[i].spatial)
            .map(|i| i64::try_from(shape[i]).map_err(|_| format!("shape {shape:?} is too large")))
            .collect::<Result<Vec<i64>, String>>()?;
        let voxels = Coordinate::new(&voxels).map_err(|e| e.to_string())?;
        let size = voxels
            .checked_mul(&geometry.voxel_size)
            .map_err(|e| e.to_string())?;
        Roi::new(geometry.offset, size).map_err(|e| e.to_string())
    }

    /// The world region of the chunk at grid `index` (clipped to the array). Non-spatial
    /// axes are ignored: the region covers every channel.
    pub fn chunk_roi(&self, index: &[u64]) -> Result<Roi, ArrayError> {
        let ranges = self.chunk_ranges(index)?;
        let mut begin = Vec::new();
        let mut end = Vec::new();
        for axis in self.spatial_axes() {
            begin.push(ranges[axis].start as i64);
            end.push(ranges[axis].end as i64);
        }
        let vs = self.geometry.voxel_size;
        let begin = Coordinate::new(&begin).map_err(|e| self.meta_error(e))?;
        let end = Coordinate::new(&end).map_err(|e| self.meta_error(e))?;
        Roi::from_bounds(
            begin * vs + self.geometry.offset,
            end * vs + self.geometry.offset,
        )
        .map_err(|e| self.meta_error(e))
    }

    /// Number of stored chunks (shards for sharded arrays) along every axis.
    pub fn chunk_grid(&self) -> Vec<u64> {
        let chunk = self.shard_shape.as_ref().unwrap_or(&self.chunk_shape);
        self.shape
            .iter()
            .zip(chunk)
            .map(|(s, c)| s.div_ceil((*c).max(1)))
            .collect()
    }

    /// The voxel range of every axis covered by the stored chunk (shard) at grid `index`,
    /// clipped to the array; an index outside the grid is an error naming the array.
    pub fn chunk_ranges(&self, index: &[u64]) -> Result<Vec<std::ops::Range<u64>>, ArrayError> {
        let chunk = self.shard_shape.as_ref().unwrap_or(&self.chunk_shape);
        let grid = self.chunk_grid();
        if index.len() != grid.len() || index.iter().zip(&grid).any(|(i, g)| i >= g) {
            return Err(ArrayError::Chunk {
                path: self.path.clone(),
                chunk: format!("{index:?}"),
                message: format!("outside the chunk grid {grid:?}"),
            });
        }
        Ok(index
            .iter()
            .zip(chunk)
            .zip(&self.shape)
            .map(|((i, c), s)| i * c..((i + 1) * c).min(*s))
            .collect())
    }

    fn meta_error(&self, e: impl fmt::Display) -> ArrayError {
        ArrayError::Metadata {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Checks that `roi` has the array's spatial dimensions and lies on its voxel grid
    /// (offset and shape whole voxels from the array's offset).
    pub fn check_aligned(&self, roi: &Roi) -> Result<(), ArrayError> {
        let vs = self.geometry.voxel_size;
        let aligned = roi.dims() == vs.dims()
            && (roi.offset() - self.geometry.offset).is_multiple_of(&vs)
            && roi.shape().is_multiple_of(&vs);
        if aligned {
            Ok(())
        } else {
            Err(ArrayError::Misaligned {
                path: self.path.clone(),
                requested: Box::new(*roi),
                voxel_size: Box::new(vs),
                offset: Box::new(self.geometry.offset),
            })
        }
    }

    /// Checks that `roi` lies on the voxel grid and inside the array, and returns the
    /// voxel range of each stored axis (non-spatial axes whole).
    pub fn voxel_ranges(&self, roi: &Roi) -> Result<Vec<std::ops::Range<u64>>, ArrayError> {
        let available = self.roi;
        let vs = self.geometry.voxel_size;
        self.check_aligned(roi)?;
        if !available.contains_roi(roi) {
            return Err(ArrayError::OutOfBounds {
                path: self.path.clone(),
                requested: Box::new(*roi),
                available: Box::new(available),
            });
        }
        let begin = (roi.offset() - self.geometry.offset) / vs;
        let len = roi.shape() / vs;
        let mut spatial = 0;
        let ranges: Vec<std::ops::Range<u64>> = (0..self.shape.len())
            .map(|axis| {
                if self.geometry.axes[axis].spatial {
                    let b = begin[spatial] as u64;
                    let r = b..b + len[spatial] as u64;
                    spatial += 1;
                    r
                } else {
                    0..self.shape[axis]
                }
            })
            .collect();
        self.check_read_size(&ranges)?;
        Ok(ranges)
    }
}

/// An array opened for reading: a stored array or a lazy transform of other arrays.
pub trait ArraySource: Send + Sync {
    /// Metadata and geometry.
    fn info(&self) -> &ArrayInfo;

    /// Reads the voxels of `roi` (world units; must be voxel-aligned and inside the array).
    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError>;

    /// The stored array's own attributes (`.zattrs`, `attributes.json`), if it has any.
    fn attributes(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        None
    }

    /// Number of chunks along every stored axis.
    fn chunk_grid_shape(&self) -> Vec<u64> {
        self.info().chunk_grid()
    }

    /// Reads one chunk by its grid index (edge chunks are clipped to the array).
    fn read_chunk(&self, index: &[u64]) -> Result<ArrayData, ArrayError> {
        let info = self.info();
        let chunk = info.chunk_ranges(index)?;
        let roi = info.chunk_roi(index)?;
        let data = self.read(&roi)?;
        // Virtual arrays read channel axes whole; keep only the chunk's channel range.
        let ranges: Vec<std::ops::Range<usize>> = (0..info.shape.len())
            .map(|axis| {
                if info.geometry.axes[axis].spatial {
                    0..data.shape()[axis]
                } else {
                    chunk[axis].start as usize..chunk[axis].end as usize
                }
            })
            .collect();
        if ranges
            .iter()
            .zip(data.shape())
            .all(|(r, n)| r.start == 0 && r.end == *n)
        {
            Ok(data)
        } else {
            Ok(data.slice_region(&ranges))
        }
    }

    /// Reads `roi`, which may reach outside the array: voxels outside read as `fill`.
    /// The region must still be aligned to the voxel grid.
    fn read_filled(&self, roi: &Roi, fill: f64) -> Result<ArrayData, ArrayError> {
        let info = self.info();
        if info.roi.contains_roi(roi) {
            return self.read(roi);
        }
        let vs = info.geometry.voxel_size;
        info.check_aligned(roi)?;
        let spatial = roi.shape() / vs;
        let mut shape = Vec::with_capacity(info.shape.len());
        let mut s = 0;
        for (axis, n) in info.shape.iter().enumerate() {
            if info.geometry.axes[axis].spatial {
                shape.push(spatial[s] as usize);
                s += 1;
            } else {
                shape.push(*n as usize);
            }
        }
        let mut out = ArrayData::filled(info.data_type, &shape, fill);
        if !roi.intersects(&info.roi) {
            return Ok(out);
        }
        let inner = roi.intersect(&info.roi);
        if inner.is_empty() {
            return Ok(out);
        }
        let data = self.read(&inner)?;
        let start = (inner.offset() - roi.offset()) / vs;
        let mut offset = Vec::with_capacity(shape.len());
        let mut s = 0;
        for axis in 0..shape.len() {
            if info.geometry.axes[axis].spatial {
                offset.push(start[s] as usize);
                s += 1;
            } else {
                offset.push(0);
            }
        }
        out.assign_at(&offset, &data)
            .map_err(|message| ArrayError::Read {
                path: info.path.clone(),
                roi: roi.to_string(),
                message,
            })?;
        Ok(out)
    }
}

/// Splits a path such as `/data/x.zarr/volumes/raw` into the container (`/data/x.zarr`)
/// and the array path inside it (`volumes/raw`). The container is the last path component
/// ending in `.zarr` or `.n5`; without one, the whole path is the container.
pub fn split_container_path(path: &Path) -> (PathBuf, String) {
    let comps: Vec<_> = path.components().collect();
    let is_container = |c: &std::path::Component<'_>| {
        let s = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        s.ends_with(".zarr") || s.ends_with(".n5")
    };
    match comps.iter().rposition(is_container) {
        Some(i) => {
            let container: PathBuf = comps[..=i].iter().collect();
            let inner: Vec<String> = comps[i + 1..]
                .iter()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (container, inner.join("/"))
        }
        None => (path.to_path_buf(), String::new()),
    }
}

/// Opens the array at `path` (`container.zarr/dataset`, `container.n5/dataset`, or an
/// array directory) for reading. For an OME-NGFF multiscale group, `path` may name the
/// group: its first (finest) level is opened.
pub fn open(path: &Path) -> Result<Box<dyn ArraySource>, ArrayError> {
    let (container, inner) = split_container_path(path);
    let is_n5 = container
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("n5"))
        || container.join(&inner).join("attributes.json").is_file()
            && !container.join(&inner).join(".zarray").is_file()
            && !container.join(&inner).join("zarr.json").is_file();
    if is_n5 {
        Ok(Box::new(n5::N5Array::open(&container, &inner)?))
    } else {
        Ok(Box::new(zarr::ZarrArray::open(&container, &inner)?))
    }
}
