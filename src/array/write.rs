//! Writing the arrays Segno creates (predictions, post-processed outputs, snapshots,
//! validation copies, demo data).
//!
//! Every array is written as an OME-NGFF 0.4 image: a zarr v2 group holding the
//! `multiscales` metadata and one array per scale level (`s0`, `s1`, …) with `/` chunk
//! keys. Each level array also carries the attributes DaCapo-era tools read
//! (`resolution`/`offset`/`axes` and `voxel_size`/`axis_names`/`units`, world units), so
//! `<dataset>/s0` opens in DaCapo and the group opens in neuroglancer and napari.
//! Chunks are written to a temporary file and renamed into place, so a reader (or a crash)
//! never sees a half-written chunk, and writers of distinct chunks never interfere.
//! The layout, its metadata and its chunk writes are one format, kept in one file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use zarrs::array::ArraySubset;
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV2};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

pub use super::data::grid_indices;
use super::zarr::ZarrArray;
use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, DataType};
use crate::geometry::{Coordinate, Roi, SnapMode};

/// A filesystem store whose writes are atomic: each value goes to a temporary sibling
/// file that is renamed over the destination.
pub struct AtomicFilesystemStore {
    fs: FilesystemStore,
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl AtomicFilesystemStore {
    /// A store rooted at the directory `root` (created if missing).
    pub fn new(root: &Path) -> Result<Self, ArrayError> {
        std::fs::create_dir_all(root).map_err(|e| ArrayError::Io {
            path: root.display().to_string(),
            source: e,
        })?;
        let fs = FilesystemStore::new(root).map_err(|e| ArrayError::Write {
            path: root.display().to_string(),
            what: "the container".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            fs,
            root: root.to_path_buf(),
        })
    }

    fn path_of(&self, key: &StoreKey) -> PathBuf {
        self.root.join(key.as_str().trim_start_matches('/'))
    }

    /// Writes `bytes` to `path` through a uniquely named temporary file and a rename.
    fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{name}.{}.{}.partial",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

impl ReadableStorageTraits for AtomicFilesystemStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.fs.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.fs.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.fs.supports_get_partial()
    }
}

impl ListableStorageTraits for AtomicFilesystemStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.fs.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.fs.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.fs.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.fs.size_prefix(prefix)
    }
}

impl WritableStorageTraits for AtomicFilesystemStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        Self::write_file(&self.path_of(key), &value).map_err(StorageError::from)
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        zarrs::storage::store_set_partial_many(self, key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.fs.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.fs.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

/// Chunk compression of written arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Uncompressed.
    None,
    /// Blosc with LZ4 and byte shuffle (zarr-python's default; fast to read and write).
    #[default]
    BloscLz4,
    /// Blosc with Zstandard and byte shuffle (smaller, slower).
    BloscZstd,
    /// Gzip level 5 (what early DaCapo wrote).
    Gzip,
}

impl Compression {
    /// The names users give: `blosc-lz4`, `blosc-zstd`, `gzip`, `none`.
    pub const NAMES: [&'static str; 4] = ["blosc-lz4", "blosc-zstd", "gzip", "none"];

    /// The compression called `name` (see [`Compression::NAMES`]).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "blosc-lz4" => Compression::BloscLz4,
            "blosc-zstd" => Compression::BloscZstd,
            "gzip" => Compression::Gzip,
            "none" => Compression::None,
            _ => return None,
        })
    }

    /// Its name (see [`Compression::NAMES`]).
    pub fn name(self) -> &'static str {
        match self {
            Compression::BloscLz4 => "blosc-lz4",
            Compression::BloscZstd => "blosc-zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    fn metadata(self, data_type: DataType) -> Value {
        match self {
            Compression::None => Value::Null,
            Compression::BloscLz4 | Compression::BloscZstd => json!({
                "id": "blosc",
                "cname": if self == Compression::BloscLz4 { "lz4" } else { "zstd" },
                "clevel": 5,
                "shuffle": if data_type.size_bytes() > 1 { 1 } else { 2 },
                "blocksize": 0,
            }),
            Compression::Gzip => json!({"id": "gzip", "level": 5}),
        }
    }
}

/// How to treat an array that already exists at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail if anything exists at the destination.
    CreateNew,
    /// Delete what exists at the destination and start afresh.
    Overwrite,
    /// Reuse an existing array if its shape, type, chunks and geometry match (resuming an
    /// interrupted job); create it otherwise. A mismatch is an error naming the difference.
    Resume,
}

/// What to create: element type, region, voxel size, channels, chunking and compression.
#[derive(Debug, Clone, PartialEq)]
pub struct ArraySpec {
    /// Element type.
    pub data_type: DataType,
    /// Region covered, in world units (nm); a multiple of the voxel size.
    pub roi: Roi,
    /// Voxel size of the finest level, in nm.
    pub voxel_size: Coordinate,
    /// Length of a leading channel axis, or `None` for an array without one.
    pub channels: Option<u64>,
    /// Chunk shape of the spatial axes in voxels; `None` picks 64 per axis (3D) or
    /// 256 (2D), clipped to the array.
    pub chunk_voxels: Option<Vec<u64>>,
    /// Chunk compression.
    pub compression: Compression,
    /// Value of voxels never written.
    pub fill_value: f64,
    /// Extra attributes stored on every level array.
    pub attributes: Map<String, Value>,
}

impl ArraySpec {
    /// A spec with the default chunking, Blosc-LZ4 compression and fill value 0.
    pub fn new(
        data_type: DataType,
        roi: Roi,
        voxel_size: Coordinate,
        channels: Option<u64>,
    ) -> Self {
        Self {
            data_type,
            roi,
            voxel_size,
            channels,
            chunk_voxels: None,
            compression: Compression::BloscLz4,
            fill_value: 0.0,
            attributes: Map::new(),
        }
    }
}

/// One level of an image being written: writes regions or chunks, and reads them back.
pub struct ArrayWriter {
    array: Array<AtomicFilesystemStore>,
    reader: ZarrArray,
}

fn werr(path: &str, what: impl Into<String>, e: impl std::fmt::Display) -> ArrayError {
    ArrayError::Write {
        path: path.to_string(),
        what: what.into(),
        message: e.to_string(),
    }
}

fn v2_dtype(dt: DataType) -> &'static str {
    match dt {
        DataType::Bool => "|b1",
        DataType::U8 => "|u1",
        DataType::U16 => "<u2",
        DataType::U32 => "<u4",
        DataType::U64 => "<u8",
        DataType::I8 => "|i1",
        DataType::I16 => "<i2",
        DataType::I32 => "<i4",
        DataType::I64 => "<i8",
        DataType::F16 => "<f2",
        DataType::F32 => "<f4",
        DataType::F64 => "<f8",
    }
}

fn fill_json(dt: DataType, v: f64) -> Value {
    match dt {
        DataType::Bool => json!(v != 0.0),
        DataType::F16 | DataType::F32 | DataType::F64 => json!(v),
        DataType::I8 | DataType::I16 | DataType::I32 | DataType::I64 => json!(v.round() as i64),
        _ => json!(v.max(0.0).round() as u64),
    }
}

/// Writes `.zgroup` for `inner` and every group above it that lacks one.
fn ensure_groups(
    store: &AtomicFilesystemStore,
    inner: &str,
    display: &str,
) -> Result<(), ArrayError> {
    let parts: Vec<&str> = inner.split('/').filter(|s| !s.is_empty()).collect();
    for cut in 0..=parts.len() {
        let dir = store.root.join(parts[..cut].join("/"));
        if dir.join(".zarray").is_file() {
            return Err(werr(
                display,
                "the group",
                format!("{} is an array, not a group", dir.display()),
            ));
        }
        let zgroup = dir.join(".zgroup");
        if !zgroup.is_file() {
            AtomicFilesystemStore::write_file(&zgroup, b"{\n    \"zarr_format\": 2\n}")
                .map_err(|e| werr(display, ".zgroup", e))?;
        }
    }
    Ok(())
}

/// Checks a dataset path given for an output: relative (no leading `/`), inside its
/// container (no `.` or `..` parts), without backslashes or NUL bytes, not empty. Returns
/// it without trailing slashes.
pub fn output_dataset_name(container: &Path, dataset: &str) -> Result<String, ArrayError> {
    let display = format!("{}/{dataset}", container.display());
    let name = dataset.trim_end_matches('/');
    let bad = if name.is_empty() {
        Some("the dataset name is empty")
    } else if name.starts_with('/') {
        Some("the dataset name must be relative to the container, not an absolute path")
    } else if name.contains('\\') || name.contains('\0') {
        Some("the dataset name must not contain backslashes or NUL bytes")
    } else if name
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        Some("the dataset name must not contain empty, `.` or `..` parts")
    } else {
        None
    };
    match bad {
        Some(message) => Err(ArrayError::Invalid {
            path: display,
            message: format!("{message} (got {dataset:?})"),
        }),
        None => Ok(name.to_string()),
    }
}

/// `path` as the file system resolves it: its longest existing ancestor with symlinks and
/// `..` resolved, and the rest appended with `.` and `..` applied. Two spellings of the
/// same place give the same result.
pub fn resolved_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut rest = Vec::new();
    let mut at = absolute.clone();
    let base = loop {
        if let Ok(real) = at.canonicalize() {
            break real;
        }
        match (at.file_name().map(|n| n.to_os_string()), at.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                at = parent.to_path_buf();
            }
            // `..` or `.` at the end of a missing path: resolve it lexically.
            _ => match at.parent() {
                Some(parent) if at.ends_with("..") || at.ends_with(".") => {
                    rest.push(
                        at.components()
                            .next_back()
                            .map_or_else(Default::default, |c| c.as_os_str().to_os_string()),
                    );
                    at = parent.to_path_buf();
                }
                _ => break absolute,
            },
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
            }
            Some(Component::CurDir) | None => {}
            Some(_) => out.push(part),
        }
    }
    out
}

/// Refuses to write the array at `image_dir` inside `container` when a directory Segno
/// would write into is marked read-only (`chmod a-w`): every existing directory from
/// `image_dir` up to the container, and the nearest existing one above them (the project's
/// rule, [`crate::store::atomic::ensure_writable`], with that directory as the root).
fn ensure_writable(container: &Path, image_dir: &Path) -> Result<(), ArrayError> {
    let container = resolved_path(container);
    let root = container
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(&container);
    crate::store::atomic::ensure_writable(&resolved_path(image_dir), root).map_err(|e| match e {
        crate::store::StoreError::ReadOnly { path } => ArrayError::Write {
            path: image_dir.display().to_string(),
            what: "the array".into(),
            message: format!(
                "{} is marked read-only: nothing was written",
                path.display()
            ),
        },
        other => ArrayError::Write {
            path: image_dir.display().to_string(),
            what: "the array".into(),
            message: other.to_string(),
        },
    })
}

/// Checks that the array `container/dataset` may be written with `mode`: its name stays
/// inside the container (see [`output_dataset_name`]), it neither is, contains nor lies
/// inside any of `inputs` (however the paths are spelled: symlinks, `.`, `..`), and with
/// [`WriteMode::CreateNew`] nothing exists there yet. Returns the destination's path.
pub fn check_destination(
    container: &Path,
    dataset: &str,
    inputs: &[&Path],
    mode: WriteMode,
) -> Result<PathBuf, ArrayError> {
    let name = output_dataset_name(container, dataset)?;
    let path = container.join(&name);
    let out = resolved_path(&path);
    for input in inputs {
        let i = resolved_path(input);
        if i.starts_with(&out) || out.starts_with(&i) {
            return Err(ArrayError::OverInput {
                path: path.display().to_string(),
                input: input.display().to_string(),
            });
        }
    }
    ensure_writable(container, &path)?;
    if mode == WriteMode::CreateNew && std::fs::symlink_metadata(&path).is_ok() {
        let what = if path.join(".zarray").is_file() || path.join("zarr.json").is_file() {
            "an array"
        } else if path.join(".zattrs").is_file() || path.join(".zgroup").is_file() {
            "a group"
        } else {
            "a file or directory"
        };
        return Err(ArrayError::Exists {
            path: path.display().to_string(),
            what: what.into(),
        });
    }
    Ok(path)
}

/// Creates (or, with [`WriteMode::Resume`], reopens) the OME-NGFF image `dataset` inside the
/// zarr container `container` with `levels` scale levels (each halving the previous one on
/// every spatial axis) and returns a writer per level, finest first.
pub fn create_image(
    container: &Path,
    dataset: &str,
    spec: &ArraySpec,
    levels: usize,
    mode: WriteMode,
) -> Result<Vec<ArrayWriter>, ArrayError> {
    let dataset = &output_dataset_name(container, dataset)?;
    let display = format!("{}/{dataset}", container.display());
    let dims = spec.voxel_size.dims();
    if spec.roi.dims() != dims
        || !spec.voxel_size.is_positive()
        || !spec.roi.is_multiple_of(&spec.voxel_size)
    {
        return Err(ArrayError::Invalid {
            path: display,
            message: format!(
                "the region {} is not a multiple of the voxel size {}",
                spec.roi, spec.voxel_size
            ),
        });
    }
    if spec.roi.is_empty() || levels == 0 {
        return Err(ArrayError::Invalid {
            path: display,
            message: format!("nothing to write: region {} with {levels} levels", spec.roi),
        });
    }
    let image_dir = container.join(dataset);
    ensure_writable(container, &image_dir)?;
    let exists = image_dir.exists();
    match mode {
        WriteMode::CreateNew if exists => {
            return Err(ArrayError::Exists {
                path: display,
                what: "an array or group".into(),
            });
        }
        WriteMode::Overwrite if exists => {
            std::fs::remove_dir_all(&image_dir).map_err(|e| werr(&display, "the old array", e))?;
        }
        _ => {}
    }
    let store = Arc::new(AtomicFilesystemStore::new(container)?);
    ensure_groups(&store, dataset, &display)?;

    let mut ome_datasets = Vec::new();
    let mut writers = Vec::new();
    for level in 0..levels {
        let factor = 1i64 << level.min(40);
        let vs = spec.voxel_size * factor;
        // Coarser levels cover the part of the region that falls on their voxel grid.
        let level_roi = spec
            .roi
            .snap_to_grid(&vs, SnapMode::Shrink)
            .ok()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ArrayError::Invalid {
                path: display.clone(),
                message: format!(
                    "level s{level} (voxel size {vs}) would be empty: the region {} is too small for {levels} levels",
                    spec.roi
                ),
            })?;
        let offset = level_roi.offset();
        // OME-NGFF translations locate voxel centres: coarser levels shift by half the
        // difference in voxel size (the convention of CellMap/DaCapo pyramids).
        let translation: Vec<f64> = (0..dims)
            .map(|i| offset[i] as f64 + (vs[i] - spec.voxel_size[i]) as f64 / 2.0)
            .collect();
        let path = format!("{dataset}/s{level}");
        let writer = create_level(&store, container, &path, spec, &vs, &level_roi, mode)?;
        writers.push(writer);
        let mut scale: Vec<f64> = vs.iter().map(|v| v as f64).collect();
        let mut trans = translation;
        if spec.channels.is_some() {
            scale.insert(0, 1.0);
            trans.insert(0, 0.0);
        }
        ome_datasets.push(json!({
            "path": format!("s{level}"),
            "coordinateTransformations": [
                {"type": "scale", "scale": scale},
                {"type": "translation", "translation": trans},
            ],
        }));
    }
    let mut axes = Vec::new();
    if spec.channels.is_some() {
        axes.push(json!({"name": "c", "type": "channel"}));
    }
    for name in &["z", "y", "x"][3 - dims.min(3)..] {
        axes.push(json!({"name": name, "type": "space", "unit": "nanometer"}));
    }
    let name = dataset.rsplit('/').next().unwrap_or(dataset);
    let attrs = json!({
        "multiscales": [{
            "version": "0.4",
            "name": name,
            "axes": axes,
            "datasets": ome_datasets,
        }]
    });
    let text = serde_json::to_vec_pretty(&attrs).map_err(|e| werr(&display, ".zattrs", e))?;
    AtomicFilesystemStore::write_file(&image_dir.join(".zattrs"), &text)
        .map_err(|e| werr(&display, ".zattrs", e))?;
    Ok(writers)
}

/// Opens the finest level of the image `dataset` that [`create`] made, to write more of its
/// chunks (another worker of the same job); its metadata is left as it is.
pub fn reopen(container: &Path, dataset: &str) -> Result<ArrayWriter, ArrayError> {
    let path = format!("{dataset}/s0");
    let display = format!("{}/{path}", container.display());
    let store = Arc::new(AtomicFilesystemStore::new(container)?);
    let array =
        Array::open(store, &format!("/{path}")).map_err(|e| werr(&display, "the array", e))?;
    let reader = ZarrArray::open(container, &path)?;
    Ok(ArrayWriter { array, reader })
}

/// Creates a single-level image (see [`create_image`]) and returns its writer.
pub fn create(
    container: &Path,
    dataset: &str,
    spec: &ArraySpec,
    mode: WriteMode,
) -> Result<ArrayWriter, ArrayError> {
    let mut levels = create_image(container, dataset, spec, 1, mode)?;
    levels.pop().ok_or_else(|| ArrayError::Invalid {
        path: format!("{}/{dataset}", container.display()),
        message: "no level was created".into(),
    })
}

fn create_level(
    store: &Arc<AtomicFilesystemStore>,
    container: &Path,
    path: &str,
    spec: &ArraySpec,
    vs: &Coordinate,
    roi: &Roi,
    mode: WriteMode,
) -> Result<ArrayWriter, ArrayError> {
    let display = format!("{}/{path}", container.display());
    let spatial: Vec<u64> = (roi.shape() / *vs)
        .iter()
        .map(|v| v.max(1) as u64)
        .collect();
    let dims = spatial.len();
    let default_chunk = if dims >= 3 { 64 } else { 256 };
    let chunk_spatial: Vec<u64> = match &spec.chunk_voxels {
        Some(c) if c.len() == dims && c.iter().all(|v| *v > 0) => c.clone(),
        Some(c) => {
            return Err(ArrayError::Invalid {
                path: display,
                message: format!("chunk shape {c:?} does not fit {dims} spatial axes"),
            })
        }
        None => vec![default_chunk; dims],
    };
    let chunk_spatial: Vec<u64> = chunk_spatial
        .iter()
        .zip(&spatial)
        .map(|(c, s)| (*c).min(*s).max(1))
        .collect();
    let mut shape = spatial.clone();
    let mut chunks = chunk_spatial;
    let spatial_names: Vec<&str> = ["z", "y", "x"][3 - dims.min(3)..].to_vec();
    let mut axes: Vec<String> = spatial_names.iter().map(|s| s.to_string()).collect();
    let mut axis_names = axes.clone();
    if let Some(c) = spec.channels {
        shape.insert(0, c);
        chunks.insert(0, c.max(1));
        axes.insert(0, "c".into());
        axis_names.insert(0, "c^".into());
    }
    let mut attributes = spec.attributes.clone();
    let offset: Vec<i64> = roi.offset().to_vec();
    let vs_list: Vec<i64> = vs.to_vec();
    attributes.insert("resolution".into(), json!(vs_list));
    attributes.insert("voxel_size".into(), json!(vs_list));
    attributes.insert("offset".into(), json!(offset));
    attributes.insert("axes".into(), json!(axes));
    attributes.insert("axis_names".into(), json!(axis_names));
    attributes.insert("units".into(), json!(vec!["nm"; dims]));
    let zarray = json!({
        "zarr_format": 2,
        "shape": shape,
        "chunks": chunks,
        "dtype": v2_dtype(spec.data_type),
        "compressor": spec.compression.metadata(spec.data_type),
        "fill_value": fill_json(spec.data_type, spec.fill_value),
        "order": "C",
        "filters": null,
        "dimension_separator": "/",
    });
    let dir = container.join(path);
    if mode == WriteMode::Resume && dir.join(".zarray").is_file() {
        let existing = ZarrArray::open(container, path)?;
        let e = existing.info();
        let same = e.shape == shape
            && e.chunk_shape == chunks
            && e.data_type == spec.data_type
            && e.geometry.voxel_size == *vs
            && e.geometry.offset == roi.offset();
        if !same {
            return Err(werr(
                &display,
                "the array",
                format!(
                    "an array with different metadata exists (shape {:?}, chunks {:?}, {}, voxel size {}, offset {}; wanted shape {shape:?}, chunks {chunks:?}, {}, voxel size {vs}, offset {}); delete it or write elsewhere",
                    e.shape, e.chunk_shape, e.data_type, e.geometry.voxel_size, e.geometry.offset, spec.data_type, roi.offset()
                ),
            ));
        }
    } else {
        let mut meta: ArrayMetadataV2 =
            serde_json::from_value(zarray).map_err(|e| werr(&display, ".zarray", e))?;
        meta.attributes = attributes;
        let array =
            Array::new_with_metadata(store.clone(), &format!("/{path}"), ArrayMetadata::V2(meta))
                .map_err(|e| werr(&display, "the array metadata", e))?;
        array
            .store_metadata()
            .map_err(|e| werr(&display, "the array metadata", e))?;
    }
    let array = Array::open(store.clone(), &format!("/{path}"))
        .map_err(|e| werr(&display, "the array", e))?;
    let reader = ZarrArray::open(container, path)?;
    Ok(ArrayWriter { array, reader })
}

macro_rules! store_typed {
    ($self:expr, $subset:expr, $data:expr, $what:expr) => {{
        let path = &$self.reader.info().path;
        let err = |e: zarrs::array::ArrayError| werr(path, $what, e);
        let a = &$self.array;
        match $data {
            ArrayData::Bool(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::U8(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::U16(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::U32(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::U64(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::I8(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::I16(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::I32(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::I64(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::F32(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
            ArrayData::F64(d) => a
                .store_array_subset(&$subset, d.as_standard_layout().to_owned())
                .map_err(err),
        }
    }};
}

impl ArrayWriter {
    /// Writes `data` (every stored axis, channels first) into `roi`, which must be
    /// voxel-aligned and inside the array. Data of another element type is converted.
    /// Writers of distinct chunks may run concurrently; regions that share a chunk must
    /// not be written at the same time.
    pub fn write(&self, roi: &Roi, data: &ArrayData) -> Result<(), ArrayError> {
        let info = self.reader.info();
        let ranges = info.voxel_ranges(roi)?;
        let expected: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        if data.shape() != expected.as_slice() {
            return Err(werr(
                &info.path,
                roi.to_string(),
                format!(
                    "data of shape {:?} does not fit the region (shape {expected:?})",
                    data.shape()
                ),
            ));
        }
        let subset = ArraySubset::new_with_ranges(&ranges);
        if info.data_type == DataType::F16 {
            return self.store_half(&subset, data, roi.to_string());
        }
        let converted;
        let data = if data.data_type() == info.data_type {
            data
        } else {
            converted = data.cast(info.data_type);
            &converted
        };
        store_typed!(self, subset, data, roi.to_string())
    }

    /// Stores `data` into a float16 array: each value rounded to the nearest half.
    fn store_half(
        &self,
        subset: &ArraySubset,
        data: &ArrayData,
        what: String,
    ) -> Result<(), ArrayError> {
        let values: ndarray::ArrayD<half::f16> = data.to_f32().mapv(half::f16::from_f32);
        self.array
            .store_array_subset(subset, values.as_standard_layout().to_owned())
            .map_err(|e| werr(&self.reader.info().path, what, e))
    }

    /// Writes one whole chunk (clipped at the array's edge) by its grid index.
    pub fn write_chunk(&self, index: &[u64], data: &ArrayData) -> Result<(), ArrayError> {
        let info = self.reader.info();
        let ranges = info.chunk_ranges(index)?;
        let expected: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        if data.shape() != expected.as_slice() {
            return Err(ArrayError::Chunk {
                path: info.path.clone(),
                chunk: format!("{index:?}"),
                message: format!(
                    "data of shape {:?} does not fit the chunk (shape {expected:?})",
                    data.shape()
                ),
            });
        }
        let subset = ArraySubset::new_with_ranges(&ranges);
        if info.data_type == DataType::F16 {
            return self.store_half(&subset, data, format!("chunk {index:?}"));
        }
        let data = data.cast(info.data_type);
        store_typed!(self, subset, &data, format!("chunk {index:?}"))
    }

    /// Whether chunk `index` (its grid index) is stored; a chunk never written reads as
    /// the fill value.
    pub fn chunk_stored(&self, index: &[u64]) -> Result<bool, ArrayError> {
        let key = self.array.chunk_key(index);
        self.array
            .storage()
            .size_key(&key)
            .map(|size| size.is_some())
            .map_err(|e| werr(&self.reader.info().path, format!("chunk {index:?}"), e))
    }

    /// The array's metadata and geometry.
    pub fn info(&self) -> &ArrayInfo {
        self.reader.info()
    }
}

impl ArraySource for ArrayWriter {
    fn info(&self) -> &ArrayInfo {
        self.reader.info()
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        self.reader.read(roi)
    }

    fn attributes(&self) -> Option<&Map<String, Value>> {
        self.reader.attributes()
    }

    fn chunk_grid_shape(&self) -> Vec<u64> {
        self.reader.chunk_grid_shape()
    }

    fn read_chunk(&self, index: &[u64]) -> Result<ArrayData, ArrayError> {
        self.reader.read_chunk(index)
    }
}

/// Fills the coarser levels of an image from its finest one: each level is the previous
/// one reduced 2× per spatial axis, by the mean for intensities (`labels` false) or by the
/// most frequent non-zero value for labels (`labels` true; ties go to the smaller id).
/// Works chunk by chunk, in parallel.
pub fn build_pyramid(levels: &[ArrayWriter], labels: bool) -> Result<(), ArrayError> {
    use rayon::prelude::*;
    for pair in levels.windows(2) {
        let (fine, coarse) = (&pair[0], &pair[1]);
        let grid = coarse.chunk_grid_shape();
        let indices = grid_indices(&grid);
        indices
            .par_iter()
            .try_for_each(|index| -> Result<(), ArrayError> {
                let roi = coarse.info().chunk_roi(index)?;
                let src = fine.read(&roi)?;
                let reduced =
                    super::resample::downsample_by(&src, &spatial_factors(fine.info(), 2), labels);
                coarse.write(&roi, &reduced)
            })?;
    }
    Ok(())
}

fn spatial_factors(info: &ArrayInfo, f: usize) -> Vec<usize> {
    info.geometry
        .axes
        .iter()
        .map(|a| if a.spatial { f } else { 1 })
        .collect()
}
