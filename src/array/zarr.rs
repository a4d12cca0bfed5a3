//! Zarr v2 and v3 arrays (including sharding and OME-NGFF multiscale levels) via zarrs.

use std::path::Path;
use std::sync::Arc;

use ndarray::ArrayD;
use zarrs::array::{Array, ArrayMetadata, ArrayShardedExt, CodecMetadataOptions};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;
use zarrs::plugin::ExtensionName;

use super::meta::{self, MetaInputs};
use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, DataType};
use crate::geometry::Roi;

/// A zarr array opened read-only.
pub struct ZarrArray {
    array: Array<FilesystemStore>,
    info: ArrayInfo,
    container: std::path::PathBuf,
    shards: Option<super::shard::ShardLayout>,
}

fn node_path(inner: &str) -> String {
    let trimmed = inner.trim_matches('/');
    format!("/{trimmed}")
}

impl ZarrArray {
    /// Opens the array `inner` (a `/`-separated path, empty for the root) of the zarr
    /// container at `container`. A multiscale group opens its first level.
    pub fn open(container: &Path, inner: &str) -> Result<Self, ArrayError> {
        Self::open_with_axes(container, inner, None)
    }

    /// Like [`ZarrArray::open`], with axis names that override the stored ones (e.g.
    /// `["c", "z", "y", "x"]` for an array whose metadata names no channel axis).
    pub fn open_with_axes(
        container: &Path,
        inner: &str,
        axes: Option<&[String]>,
    ) -> Result<Self, ArrayError> {
        let display = if inner.is_empty() {
            container.display().to_string()
        } else {
            format!("{}/{}", container.display(), inner.trim_matches('/'))
        };
        if !container.is_dir() {
            return Err(ArrayError::NotFound {
                path: display,
                message: "no such directory".into(),
            });
        }
        let store =
            Arc::new(
                FilesystemStore::new(container).map_err(|e| ArrayError::NotFound {
                    path: display.clone(),
                    message: e.to_string(),
                })?,
            );
        let mut path = node_path(inner);
        let dir = container.join(inner.trim_matches('/'));
        let has_array_meta = dir.join(".zarray").is_file() || is_v3_array(&dir.join("zarr.json"));
        if !has_array_meta {
            // A multiscale group: open its first level.
            let group = Group::open(store.clone(), &path).map_err(|_| ArrayError::NotFound {
                path: display.clone(),
                message: "no zarr array here (no .zarray or zarr.json)".into(),
            })?;
            let levels =
                meta::ome_levels(group.attributes()).map_err(|e| ArrayError::Metadata {
                    path: display.clone(),
                    message: e.to_string(),
                })?;
            let Some((first, _)) = levels.first() else {
                return Err(ArrayError::NotFound {
                    path: display,
                    message: "this is a zarr group without OME-NGFF multiscales, not an array"
                        .into(),
                });
            };
            path = node_path(&format!("{}/{first}", inner.trim_matches('/')));
        }
        let display = format!(
            "{}{}",
            container.display(),
            if path == "/" {
                String::new()
            } else {
                path.clone()
            }
        );
        let array = Array::open(store.clone(), &path).map_err(|e| ArrayError::Metadata {
            path: display.clone(),
            message: e.to_string(),
        })?;
        let info = describe(&store, &array, &path, &display, axes)?;
        let shards = match array.metadata() {
            ArrayMetadata::V3(m) if info.data_type != DataType::Bool => {
                serde_json::to_value(m).ok().and_then(|v| {
                    super::shard::ShardLayout::from_metadata(&v, info.data_type.size_bytes())
                })
            }
            _ => None,
        };
        Ok(Self {
            array,
            info,
            container: container.to_path_buf(),
            shards,
        })
    }
}

/// One level of an OME-NGFF multiscale image.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleLevel {
    /// The level's array path relative to the image group (`s0`, `s1`, …).
    pub path: String,
    /// Metadata and geometry of the level.
    pub info: ArrayInfo,
}

/// Lists the levels of the OME-NGFF multiscale image group `inner` of `container`, finest
/// first as the metadata lists them. A plain array (no multiscales) gives an empty list.
pub fn scale_levels(container: &Path, inner: &str) -> Result<Vec<ScaleLevel>, ArrayError> {
    let inner = inner.trim_matches('/');
    let dir = container.join(inner);
    if dir.join(".zarray").is_file() || is_v3_array(&dir.join("zarr.json")) {
        return Ok(Vec::new());
    }
    let display = format!("{}/{inner}", container.display());
    let store = Arc::new(
        FilesystemStore::new(container).map_err(|e| ArrayError::NotFound {
            path: display.clone(),
            message: e.to_string(),
        })?,
    );
    let group = Group::open(store, &node_path(inner)).map_err(|_| ArrayError::NotFound {
        path: display.clone(),
        message: "no zarr array or group here".into(),
    })?;
    let levels = meta::ome_levels(group.attributes()).map_err(|e| ArrayError::Metadata {
        path: display.clone(),
        message: e.to_string(),
    })?;
    levels
        .into_iter()
        .map(|(path, _)| {
            let level = ZarrArray::open(container, &format!("{inner}/{path}"))?;
            Ok(ScaleLevel {
                path,
                info: level.info,
            })
        })
        .collect()
}

/// Picks the scale level for a target voxel size the way DaCapo's DataSplit generator
/// does: start at the finest level and go one level coarser while every axis of the
/// current level is strictly finer than the target and a coarser level exists.
pub fn choose_level(levels: &[ScaleLevel], target: &crate::geometry::Coordinate) -> Option<usize> {
    if levels.is_empty() {
        return None;
    }
    let mut chosen = 0;
    while chosen + 1 < levels.len() {
        let vs = levels[chosen].info.geometry.voxel_size;
        let finer = vs.dims() == target.dims() && vs.iter().zip(target.iter()).all(|(v, t)| v < t);
        if !finer {
            break;
        }
        chosen += 1;
    }
    Some(chosen)
}

fn is_v3_array(zarr_json: &Path) -> bool {
    std::fs::read_to_string(zarr_json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("node_type").and_then(|n| n.as_str()) == Some("array"))
}

/// Builds the info of an opened array: data type, chunking, codecs and geometry (OME-NGFF
/// levels of ancestor groups first, then the array's and its parent's attributes).
fn describe(
    store: &Arc<FilesystemStore>,
    array: &Array<FilesystemStore>,
    path: &str,
    display: &str,
    axes: Option<&[String]>,
) -> Result<ArrayInfo, ArrayError> {
    let dt_name = array
        .data_type()
        .name_v3()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let data_type = DataType::parse(&dt_name).ok_or_else(|| ArrayError::Unsupported {
        path: display.to_string(),
        what: format!("data type {}", array.data_type()),
    })?;
    let shape = array.shape().to_vec();
    let ndim = shape.len();
    let zeros = vec![0u64; ndim];
    let outer = array
        .chunk_shape(&zeros)
        .map(|c| c.iter().map(|n| n.get()).collect::<Vec<u64>>())
        .map_err(|e| ArrayError::Metadata {
            path: display.to_string(),
            message: e.to_string(),
        })?;
    let (chunk_shape, shard_shape) = match array.subchunk_shape() {
        Some(inner) if array.is_sharded() => (inner.iter().map(|n| n.get()).collect(), Some(outer)),
        _ => (outer, None),
    };
    let codecs = codec_summary(array);
    let fill_value = array
        .data_type()
        .metadata_fill_value(array.fill_value())
        .ok()
        .and_then(|f| serde_json::to_value(f).ok())
        .unwrap_or(serde_json::Value::Null);

    // OME-NGFF: the nearest ancestor group whose multiscales list this array.
    let mut ome = None;
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    for cut in (0..parts.len()).rev() {
        let group_path = node_path(&parts[..cut].join("/"));
        let Ok(group) = Group::open(store.clone(), &group_path) else {
            continue;
        };
        let relative = parts[cut..].join("/");
        let levels = meta::ome_levels(group.attributes()).map_err(|e| ArrayError::Metadata {
            path: display.to_string(),
            message: e.to_string(),
        })?;
        if let Some((_, level)) = levels
            .into_iter()
            .find(|(p, _)| p.trim_matches('/') == relative)
        {
            ome = Some(level);
            break;
        }
    }
    let parent_attrs = if parts.is_empty() {
        None
    } else {
        Group::open(
            store.clone(),
            &node_path(&parts[..parts.len() - 1].join("/")),
        )
        .ok()
        .map(|g| g.attributes().clone())
    };
    let dimension_names = array.dimension_names().as_ref().map(|names| {
        names
            .iter()
            .map(|n| n.as_ref().map(|s| s.to_string()))
            .collect()
    });
    ArrayInfo::from_header(
        super::StoredHeader {
            path: display.to_string(),
            format: match array.metadata() {
                ArrayMetadata::V2(_) => "zarr v2",
                ArrayMetadata::V3(_) => "zarr v3",
            },
            data_type,
            shape,
            chunk_shape,
            shard_shape,
            codecs,
            fill_value,
        },
        &MetaInputs {
            ndim,
            attributes: Some(array.attributes()),
            parent_attributes: parent_attrs.as_ref(),
            dimension_names,
            ome,
            n5: false,
            axis_override: axes.map(<[String]>::to_vec),
        },
    )
}

fn codec_summary(array: &Array<FilesystemStore>) -> String {
    if let ArrayMetadata::V2(m) = array.metadata() {
        return match &m.compressor {
            Some(c) => serde_json::to_string(c).unwrap_or_else(|_| "unknown".into()),
            None => "none".into(),
        };
    }
    let metas = array
        .codecs()
        .create_metadatas(&CodecMetadataOptions::default());
    metas
        .iter()
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" → ")
}

macro_rules! read_typed {
    ($self:expr, $ranges:expr) => {{
        let subset: Vec<std::ops::Range<u64>> = $ranges;
        // The subset lies in one chunk: an error names it.
        let err = |e: zarrs::array::ArrayError| $self.chunk_error(&subset, e);
        let a = &$self.array;
        Ok(match $self.info.data_type {
            DataType::Bool => ArrayData::Bool(
                a.retrieve_array_subset::<ArrayD<bool>>(&subset)
                    .map_err(err)?,
            ),
            DataType::U8 => ArrayData::U8(
                a.retrieve_array_subset::<ArrayD<u8>>(&subset)
                    .map_err(err)?,
            ),
            DataType::U16 => ArrayData::U16(
                a.retrieve_array_subset::<ArrayD<u16>>(&subset)
                    .map_err(err)?,
            ),
            DataType::U32 => ArrayData::U32(
                a.retrieve_array_subset::<ArrayD<u32>>(&subset)
                    .map_err(err)?,
            ),
            DataType::U64 => ArrayData::U64(
                a.retrieve_array_subset::<ArrayD<u64>>(&subset)
                    .map_err(err)?,
            ),
            DataType::I8 => ArrayData::I8(
                a.retrieve_array_subset::<ArrayD<i8>>(&subset)
                    .map_err(err)?,
            ),
            DataType::I16 => ArrayData::I16(
                a.retrieve_array_subset::<ArrayD<i16>>(&subset)
                    .map_err(err)?,
            ),
            DataType::I32 => ArrayData::I32(
                a.retrieve_array_subset::<ArrayD<i32>>(&subset)
                    .map_err(err)?,
            ),
            DataType::I64 => ArrayData::I64(
                a.retrieve_array_subset::<ArrayD<i64>>(&subset)
                    .map_err(err)?,
            ),
            DataType::F32 => ArrayData::F32(
                a.retrieve_array_subset::<ArrayD<f32>>(&subset)
                    .map_err(err)?,
            ),
            // float16 is read as float32 (exactly: every half is a float).
            DataType::F16 => ArrayData::F32(
                a.retrieve_array_subset::<ArrayD<half::f16>>(&subset)
                    .map_err(err)?
                    .mapv(half::f16::to_f32),
            ),
            DataType::F64 => ArrayData::F64(
                a.retrieve_array_subset::<ArrayD<f64>>(&subset)
                    .map_err(err)?,
            ),
        })
    }};
}

impl ZarrArray {
    /// The error of reading `part`, which lies inside one stored chunk: names that chunk's
    /// grid index and file.
    fn chunk_error(
        &self,
        part: &[std::ops::Range<u64>],
        e: zarrs::array::ArrayError,
    ) -> ArrayError {
        let index: Vec<u64> = part
            .iter()
            .zip(&self.info.chunk_shape)
            .map(|(r, c)| r.start / (*c).max(1))
            .collect();
        let outer = self
            .info
            .shard_shape
            .as_ref()
            .map_or(index.clone(), |shard| {
                part.iter()
                    .zip(shard)
                    .map(|(r, c)| r.start / (*c).max(1))
                    .collect()
            });
        let file = self.container.join(self.array.chunk_key(&outer).as_str());
        ArrayError::Chunk {
            path: self.info.path.clone(),
            chunk: format!("{index:?} ({})", file.display()),
            message: e.to_string(),
        }
    }

    /// Reads a region that spans several stored chunks (or shards): each one is decoded
    /// on its own, in parallel on the current thread pool, and copied into place.
    fn read_assembled<T>(
        &self,
        ranges: &[std::ops::Range<u64>],
        what: &str,
    ) -> Result<ArrayD<T>, ArrayError>
    where
        T: zarrs::array::ElementOwned + Copy + Default + Send + Sync,
    {
        use rayon::prelude::*;
        // Sharded arrays are assembled from their inner chunks: decoding a whole shard at once
        // is several times slower in zarrs than reading its chunks one by one.
        let chunk = &self.info.chunk_shape;
        let (first, counts) = super::data::chunk_span(ranges, chunk);
        let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let out = std::sync::Mutex::new(super::data::zeroed::<T>(&shape));
        super::data::grid_indices(&counts)
            .par_iter()
            .try_for_each(|rel| {
                let part: Vec<std::ops::Range<u64>> = rel
                    .iter()
                    .zip(&first)
                    .zip(chunk)
                    .zip(ranges)
                    .map(|(((i, f), c), r)| {
                        let b = (i + f) * c;
                        b.max(r.start)..(b + c).min(r.end)
                    })
                    .collect();
                let data = self
                    .array
                    .retrieve_array_subset::<ArrayD<T>>(&part)
                    .map_err(|e| self.chunk_error(&part, e))?;
                let offset: Vec<usize> = part
                    .iter()
                    .zip(ranges)
                    .map(|(p, r)| (p.start - r.start) as usize)
                    .collect();
                let mut guard = out.lock().map_err(|_| ArrayError::Read {
                    path: self.info.path.clone(),
                    roi: what.to_string(),
                    message: "a reader thread panicked".into(),
                })?;
                super::data::copy_block(&mut guard, &data, &offset);
                Ok(())
            })?;
        out.into_inner().map_err(|_| ArrayError::Read {
            path: self.info.path.clone(),
            roi: what.to_string(),
            message: "a reader thread panicked".into(),
        })
    }
}

impl ArraySource for ZarrArray {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn attributes(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        Some(self.array.attributes())
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.voxel_ranges(roi)?;
        let what = roi.to_string();
        // Inner chunks for sharded arrays.
        let chunk = &self.info.chunk_shape;
        let spans_chunks = ranges
            .iter()
            .zip(chunk)
            .any(|(r, c)| r.end > r.start && (r.start / c) != ((r.end - 1) / c));
        if !spans_chunks && self.shards.is_none() {
            return read_typed!(self, ranges);
        }
        if let Some(layout) = &self.shards {
            let path = |shard: &[u64]| self.container.join(self.array.chunk_key(shard).as_str());
            let fill = self.info.fill_value.as_f64().unwrap_or(0.0);
            macro_rules! sharded {
                ($($v:ident: $t:ty),*) => {
                    match self.info.data_type {
                        $(DataType::$v => {
                            return Ok(ArrayData::$v(super::shard::read::<$t>(
                                layout,
                                &ranges,
                                <$t as super::data::Scalar>::from_f64(fill),
                                &path,
                                &self.info.path,
                            )?))
                        })*
                        DataType::Bool => {}
                        DataType::F16 => {
                            return Ok(ArrayData::F32(
                                super::shard::read::<half::f16>(
                                    layout,
                                    &ranges,
                                    half::f16::from_f64(fill),
                                    &path,
                                    &self.info.path,
                                )?
                                .mapv(half::f16::to_f32),
                            ));
                        }
                    }
                };
            }
            sharded!(U8: u8, U16: u16, U32: u32, U64: u64, I8: i8, I16: i16, I32: i32, I64: i64, F32: f32, F64: f64);
        }
        Ok(match self.info.data_type {
            DataType::Bool => ArrayData::Bool(self.read_assembled(&ranges, &what)?),
            DataType::U8 => ArrayData::U8(self.read_assembled(&ranges, &what)?),
            DataType::U16 => ArrayData::U16(self.read_assembled(&ranges, &what)?),
            DataType::U32 => ArrayData::U32(self.read_assembled(&ranges, &what)?),
            DataType::U64 => ArrayData::U64(self.read_assembled(&ranges, &what)?),
            DataType::I8 => ArrayData::I8(self.read_assembled(&ranges, &what)?),
            DataType::I16 => ArrayData::I16(self.read_assembled(&ranges, &what)?),
            DataType::I32 => ArrayData::I32(self.read_assembled(&ranges, &what)?),
            DataType::I64 => ArrayData::I64(self.read_assembled(&ranges, &what)?),
            DataType::F32 => ArrayData::F32(self.read_assembled(&ranges, &what)?),
            DataType::F16 => ArrayData::F32(
                self.read_assembled::<half::f16>(&ranges, &what)?
                    .mapv(half::f16::to_f32),
            ),
            DataType::F64 => ArrayData::F64(self.read_assembled(&ranges, &what)?),
        })
    }

    fn read_chunk(&self, index: &[u64]) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.chunk_ranges(index)?;
        read_typed!(self, ranges)
    }
}
