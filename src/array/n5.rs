//! N5 datasets (read only): `attributes.json` metadata, x-y-z ordered block grid, blocks
//! with a big-endian header and raw, gzip, zstd or blosc compressed big-endian data.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use serde_json::{Map, Value};

use super::meta::MetaInputs;
use super::{ArrayData, ArrayError, ArrayInfo, ArraySource, DataType};
use crate::geometry::Roi;

/// Compression of N5 blocks.
#[derive(Debug, Clone, PartialEq)]
enum Compression {
    Raw,
    Gzip { zlib: bool },
    Zstd,
    Blosc,
}

/// An N5 dataset opened read-only.
pub struct N5Array {
    dir: PathBuf,
    info: ArrayInfo,
    /// Block shape in storage (z, y, x) order.
    block: Vec<u64>,
    compression: Compression,
    attributes: Map<String, Value>,
}

fn read_json(path: &Path, display: &str) -> Result<Option<Map<String, Value>>, ArrayError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ArrayError::Io {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(ArrayError::Metadata {
            path: display.to_string(),
            message: format!("{} is not a JSON object", path.display()),
        }),
        Err(e) => Err(ArrayError::Metadata {
            path: display.to_string(),
            message: format!("{}: {e}", path.display()),
        }),
    }
}

fn u64_list(attrs: &Map<String, Value>, key: &str, display: &str) -> Result<Vec<u64>, ArrayError> {
    attrs
        .get(key)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
        .ok_or_else(|| ArrayError::Metadata {
            path: display.to_string(),
            message: format!("attributes.json: `{key}` must be a list of non-negative integers"),
        })
}

impl N5Array {
    /// Opens the dataset `inner` of the N5 container at `container`.
    pub fn open(container: &Path, inner: &str) -> Result<Self, ArrayError> {
        let inner = inner.trim_matches('/');
        let dir = container.join(inner);
        let display = if inner.is_empty() {
            container.display().to_string()
        } else {
            format!("{}/{inner}", container.display())
        };
        let Some(attrs) = read_json(&dir.join("attributes.json"), &display)? else {
            return Err(ArrayError::NotFound {
                path: display,
                message: "no N5 dataset here (no attributes.json)".into(),
            });
        };
        if !attrs.contains_key("dimensions") {
            return Err(ArrayError::NotFound {
                path: display,
                message: "this N5 group has no `dimensions`: it is a group, not a dataset".into(),
            });
        }
        let mut shape = u64_list(&attrs, "dimensions", &display)?;
        let mut block = u64_list(&attrs, "blockSize", &display)?;
        if shape.len() != block.len() || block.contains(&0) {
            return Err(ArrayError::Metadata {
                path: display,
                message: format!("blockSize {block:?} does not fit dimensions {shape:?}"),
            });
        }
        shape.reverse();
        block.reverse();
        let dt_name = attrs.get("dataType").and_then(Value::as_str).unwrap_or("");
        let data_type = DataType::parse(dt_name)
            .filter(|d| *d != DataType::Bool)
            .ok_or_else(|| ArrayError::Unsupported {
                path: display.clone(),
                what: format!("N5 data type {dt_name:?}"),
            })?;
        let compression_json = attrs.get("compression").cloned().unwrap_or(Value::Null);
        let kind = compression_json
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("raw");
        let compression = match kind {
            "raw" => Compression::Raw,
            "gzip" => Compression::Gzip {
                zlib: compression_json
                    .get("useZlib")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "zstd" => Compression::Zstd,
            "blosc" => Compression::Blosc,
            other => {
                return Err(ArrayError::Unsupported {
                    path: display,
                    what: format!("N5 compression {other:?} (supported: raw, gzip, zstd, blosc)"),
                })
            }
        };
        let parent_attrs = dir
            .parent()
            .filter(|_| !inner.is_empty())
            .map(|p| read_json(&p.join("attributes.json"), &display))
            .transpose()?
            .flatten();
        let ndim = shape.len();
        let info = ArrayInfo::from_header(
            super::StoredHeader {
                path: display,
                format: "N5",
                data_type,
                shape,
                chunk_shape: block.clone(),
                shard_shape: None,
                codecs: compression_json.to_string(),
                fill_value: Value::from(0),
            },
            &MetaInputs {
                ndim,
                attributes: Some(&attrs),
                parent_attributes: parent_attrs.as_ref(),
                dimension_names: None,
                ome: None,
                n5: true,
                axis_override: None,
            },
        )?;
        Ok(Self {
            dir,
            info,
            block,
            compression,
            attributes: attrs,
        })
    }

    /// Decodes the block at `index` (z, y, x grid order) into a zero-filled array of the
    /// full block shape; a missing block reads as zeros.
    fn block_values<T: Element>(&self, index: &[u64]) -> Result<ArrayD<T>, ArrayError> {
        let full: Vec<usize> = self.block.iter().map(|&b| b as usize).collect();
        let mut out = ArrayD::<T>::from_elem(IxDyn(&full), T::ZERO);
        let mut file = self.dir.clone();
        for i in index.iter().rev() {
            file.push(i.to_string());
        }
        let chunk_err = |message: String| ArrayError::Chunk {
            path: self.info.path.clone(),
            chunk: format!("{index:?} ({})", file.display()),
            message,
        };
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(chunk_err(e.to_string())),
        };
        // Header: mode (u16), number of dimensions (u16), block size per dimension (u32, x first).
        if bytes.len() < 4 {
            return Err(chunk_err(format!(
                "truncated header ({} bytes)",
                bytes.len()
            )));
        }
        let mode = u16::from_be_bytes([bytes[0], bytes[1]]);
        let ndim = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if mode > 1 {
            return Err(chunk_err(format!("unsupported block mode {mode}")));
        }
        if ndim != full.len() {
            return Err(chunk_err(format!(
                "block has {ndim} dimensions, the dataset {}",
                full.len()
            )));
        }
        let mut pos = 4;
        let mut dims = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            let Some(b) = bytes.get(pos..pos + 4) else {
                return Err(chunk_err("truncated header".into()));
            };
            dims.push(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
            pos += 4;
        }
        if mode == 1 {
            pos += 4; // number of elements of a varlength block; the dimensions decide here
        }
        dims.reverse();
        if dims.iter().zip(&full).any(|(d, f)| d > f) {
            return Err(chunk_err(format!(
                "block size {dims:?} exceeds the block shape {full:?}"
            )));
        }
        let count: usize = dims.iter().product();
        let expected = count * std::mem::size_of::<T>();
        let payload = bytes.get(pos..).unwrap_or(&[]);
        let raw = match self.compression {
            Compression::Raw => payload.to_vec(),
            Compression::Gzip { zlib } => {
                let mut out = Vec::with_capacity(expected);
                let result = if zlib {
                    flate2::read::ZlibDecoder::new(payload).read_to_end(&mut out)
                } else {
                    flate2::read::MultiGzDecoder::new(payload).read_to_end(&mut out)
                };
                result.map_err(|e| chunk_err(format!("gzip: {e}")))?;
                out
            }
            Compression::Zstd => {
                zstd::stream::decode_all(payload).map_err(|e| chunk_err(format!("zstd: {e}")))?
            }
            Compression::Blosc => {
                use zarrs::array::codec::bytes_to_bytes::blosc::{
                    blosc_decompress_bytes, blosc_validate,
                };
                let size = blosc_validate(payload)
                    .ok_or_else(|| chunk_err("not valid blosc data".into()))?;
                if size != expected {
                    return Err(chunk_err(format!(
                        "blosc data holds {size} bytes, expected {expected}"
                    )));
                }
                blosc_decompress_bytes(payload, size, 1)
                    .map_err(|e| chunk_err(format!("blosc: {e}")))?
            }
        };
        if raw.len() != expected {
            return Err(chunk_err(format!(
                "decoded {} bytes, expected {expected} for a block of {dims:?} {}",
                raw.len(),
                self.info.data_type
            )));
        }
        let values: Vec<T> = raw
            .chunks_exact(std::mem::size_of::<T>())
            .map(T::from_be)
            .collect();
        let block =
            ArrayD::from_shape_vec(IxDyn(&dims), values).map_err(|e| chunk_err(e.to_string()))?;
        let slice: Vec<ndarray::SliceInfoElem> = dims
            .iter()
            .map(|&d| ndarray::SliceInfoElem::Slice {
                start: 0,
                end: Some(d as isize),
                step: 1,
            })
            .collect();
        out.slice_mut(slice.as_slice()).assign(&block);
        Ok(out)
    }

    fn read_ranges<T: Element>(
        &self,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<ArrayD<T>, ArrayError> {
        let out_shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let mut out = super::data::zeroed::<T>(&out_shape);
        if out_shape.contains(&0) {
            return Ok(out);
        }
        let first: Vec<u64> = ranges
            .iter()
            .zip(&self.block)
            .map(|(r, b)| r.start / b)
            .collect();
        let last: Vec<u64> = ranges
            .iter()
            .zip(&self.block)
            .map(|(r, b)| (r.end - 1) / b)
            .collect();
        let mut index = first.clone();
        loop {
            let block = self.block_values::<T>(&index)?;
            // Intersection of this block with the requested ranges.
            let mut src = Vec::new();
            let mut dst = Vec::new();
            for (axis, r) in ranges.iter().enumerate() {
                let b0 = index[axis] * self.block[axis];
                let lo = r.start.max(b0);
                let hi = r.end.min(b0 + self.block[axis]);
                src.push(ndarray::SliceInfoElem::Slice {
                    start: (lo - b0) as isize,
                    end: Some((hi - b0) as isize),
                    step: 1,
                });
                dst.push(ndarray::SliceInfoElem::Slice {
                    start: (lo - r.start) as isize,
                    end: Some((hi - r.start) as isize),
                    step: 1,
                });
            }
            out.slice_mut(dst.as_slice())
                .assign(&block.slice(src.as_slice()));
            // Next block index (odometer).
            let mut axis = index.len();
            loop {
                if axis == 0 {
                    return Ok(out);
                }
                axis -= 1;
                if index[axis] < last[axis] {
                    index[axis] += 1;
                    break;
                }
                index[axis] = first[axis];
            }
        }
    }

    fn read_any(&self, ranges: &[std::ops::Range<u64>]) -> Result<ArrayData, ArrayError> {
        Ok(match self.info.data_type {
            DataType::U8 => ArrayData::U8(self.read_ranges(ranges)?),
            DataType::U16 => ArrayData::U16(self.read_ranges(ranges)?),
            DataType::U32 => ArrayData::U32(self.read_ranges(ranges)?),
            DataType::U64 => ArrayData::U64(self.read_ranges(ranges)?),
            DataType::I8 => ArrayData::I8(self.read_ranges(ranges)?),
            DataType::I16 => ArrayData::I16(self.read_ranges(ranges)?),
            DataType::I32 => ArrayData::I32(self.read_ranges(ranges)?),
            DataType::I64 => ArrayData::I64(self.read_ranges(ranges)?),
            DataType::F32 => ArrayData::F32(self.read_ranges(ranges)?),
            DataType::F64 => ArrayData::F64(self.read_ranges(ranges)?),
            DataType::F16 | DataType::Bool => {
                return Err(ArrayError::Unsupported {
                    path: self.info.path.clone(),
                    what: format!("N5 data type {}", self.info.data_type),
                })
            }
        })
    }
}

impl ArraySource for N5Array {
    fn info(&self) -> &ArrayInfo {
        &self.info
    }

    fn attributes(&self) -> Option<&Map<String, Value>> {
        Some(&self.attributes)
    }

    fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.voxel_ranges(roi)?;
        self.read_any(&ranges)
    }

    fn read_chunk(&self, index: &[u64]) -> Result<ArrayData, ArrayError> {
        let ranges = self.info.chunk_ranges(index)?;
        self.read_any(&ranges)
    }
}

/// A numeric element stored big-endian in N5 blocks.
trait Element: Copy + Clone + Default + Send + Sync + 'static {
    const ZERO: Self;
    fn from_be(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            const ZERO: Self = 0 as $t;
            fn from_be(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_be_bytes(b)
            }
        }
    )*};
}

element!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);
