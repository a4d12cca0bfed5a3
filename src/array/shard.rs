//! A fast path for reading regions of sharded zarr v3 arrays with the common codec chain
//! `sharding_indexed[bytes → (zstd | gzip | blosc)?]` and a `bytes (+ crc32c)` index:
//! shard indices and inner chunks are read with positioned reads and decompressed
//! straight into the output, in parallel over inner chunks. Arrays with other codec
//! chains are read through zarrs.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use ndarray::ArrayD;
use rayon::prelude::*;
use serde_json::Value;

use super::ArrayError;

/// Compression of inner chunks the fast path understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    None,
    Zstd,
    Gzip,
    Blosc,
}

/// How a sharded array's shards are laid out on disk.
#[derive(Debug, Clone)]
pub struct ShardLayout {
    shard: Vec<u64>,
    inner: Vec<u64>,
    compression: Inner,
    index_crc: bool,
    index_at_end: bool,
    element_size: usize,
}

impl ShardLayout {
    /// Recognises the layout from zarr v3 array metadata (as JSON); `None` when the array
    /// is not sharded or uses codecs the fast path does not handle.
    pub fn from_metadata(meta: &Value, element_size: usize) -> Option<Self> {
        let shard: Vec<u64> = meta["chunk_grid"]["configuration"]["chunk_shape"]
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<_>>()?;
        let codecs = meta["codecs"].as_array()?;
        if codecs.len() != 1 || codecs[0]["name"] != "sharding_indexed" {
            return None;
        }
        let cfg = &codecs[0]["configuration"];
        let inner: Vec<u64> = cfg["chunk_shape"]
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<_>>()?;
        if inner.len() != shard.len()
            || inner.contains(&0)
            || shard.iter().zip(&inner).any(|(s, i)| s % i != 0)
        {
            return None;
        }
        let little = |c: &Value| {
            c["name"] == "bytes"
                && (element_size == 1
                    || c["configuration"]["endian"].as_str().unwrap_or("little") == "little")
        };
        let chain = cfg["codecs"].as_array()?;
        let compression = match chain.as_slice() {
            [b] if little(b) => Inner::None,
            [b, c] if little(b) => match c["name"].as_str()? {
                "zstd" => Inner::Zstd,
                "gzip" => Inner::Gzip,
                "blosc" => Inner::Blosc,
                _ => return None,
            },
            _ => return None,
        };
        let index = cfg["index_codecs"].as_array()?;
        let index_crc = match index.as_slice() {
            [b] if little(b) || b["name"] == "bytes" => false,
            [b, c] if b["name"] == "bytes" && c["name"] == "crc32c" => true,
            _ => return None,
        };
        let index_at_end = cfg["index_location"].as_str().unwrap_or("end") == "end";
        if !cfg!(target_endian = "little") {
            return None;
        }
        Some(Self {
            shard,
            inner,
            compression,
            index_crc,
            index_at_end,
            element_size,
        })
    }

    fn inner_per_shard(&self) -> Vec<u64> {
        self.shard
            .iter()
            .zip(&self.inner)
            .map(|(s, i)| s / i)
            .collect()
    }
}

thread_local! {
    /// Per-thread buffers for encoded and decoded chunks, reused across reads.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Opened shards of one read: file, size and decoded index, by shard grid index.
type ShardCache =
    std::sync::Mutex<std::collections::HashMap<Vec<u64>, Option<std::sync::Arc<OpenShard>>>>;

/// A shard file with its verified index of (offset, length) per inner chunk.
struct OpenShard {
    file: std::fs::File,
    size: u64,
    index: Vec<(u64, u64)>,
}

/// Opens a shard and reads its index once per read call; `None` for a missing shard.
fn open_shard(
    layout: &ShardLayout,
    path: &std::path::Path,
    index_len: usize,
    cache: &ShardCache,
    shard: &[u64],
    err: &dyn Fn(String) -> ArrayError,
) -> Result<Option<std::sync::Arc<OpenShard>>, ArrayError> {
    if let Some(hit) = cache
        .lock()
        .map_err(|_| err("a reader thread panicked".into()))?
        .get(shard)
    {
        return Ok(hit.clone());
    }
    let opened = match std::fs::File::open(path) {
        Ok(file) => {
            let size = file.metadata().map_err(|e| err(e.to_string()))?.len();
            if size < index_len as u64 {
                return Err(err(format!(
                    "shard {} is {size} bytes, shorter than its index ({index_len} bytes)",
                    path.display()
                )));
            }
            let start = if layout.index_at_end {
                size - index_len as u64
            } else {
                0
            };
            let mut raw = vec![0u8; index_len];
            file.read_exact_at(&mut raw, start)
                .map_err(|e| err(e.to_string()))?;
            let body_len = index_len - if layout.index_crc { 4 } else { 0 };
            if layout.index_crc {
                let crc = &raw[body_len..];
                let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
                if crc32c::crc32c(&raw[..body_len]) != stored {
                    return Err(err(format!(
                        "the index of shard {} is corrupt (checksum mismatch)",
                        path.display()
                    )));
                }
            }
            let index = raw[..body_len]
                .chunks_exact(16)
                .map(|e| {
                    let mut a = [0u8; 8];
                    let mut b = [0u8; 8];
                    a.copy_from_slice(&e[..8]);
                    b.copy_from_slice(&e[8..]);
                    (u64::from_le_bytes(a), u64::from_le_bytes(b))
                })
                .collect();
            Some(std::sync::Arc::new(OpenShard { file, size, index }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(format!("{}: {e}", path.display()))),
    };
    cache
        .lock()
        .map_err(|_| err("a reader thread panicked".into()))?
        .insert(shard.to_vec(), opened.clone());
    Ok(opened)
}

/// Reads `ranges` (voxels, every axis) of a sharded array whose shard files are given by
/// `shard_path(shard_index)`; missing shards and chunks read as `fill`.
pub fn read<T>(
    layout: &ShardLayout,
    ranges: &[std::ops::Range<u64>],
    fill: T,
    shard_path: &(dyn Fn(&[u64]) -> PathBuf + Sync),
    display: &str,
) -> Result<ArrayD<T>, ArrayError>
where
    T: bytemuck::Pod + Default + PartialEq + Send + Sync,
{
    let shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
    let mut out = super::data::zeroed::<T>(&shape);
    if fill != T::default() {
        out.fill(fill);
    }
    if shape.contains(&0) {
        return Ok(out);
    }
    let inner = &layout.inner;
    let (first, counts) = super::data::chunk_span(ranges, inner);
    let per_shard = layout.inner_per_shard();
    let n_inner: u64 = per_shard.iter().product();
    let index_len = n_inner as usize * 16 + if layout.index_crc { 4 } else { 0 };
    let chunk_elems: usize = inner.iter().product::<u64>() as usize;
    let indices: ShardCache = std::sync::Mutex::new(std::collections::HashMap::new());
    let chunk_err_for = |index: &[u64]| {
        let index = index.to_vec();
        move |message: String| ArrayError::Chunk {
            path: display.to_string(),
            chunk: format!("{index:?}"),
            message,
        }
    };
    let chunk_err = |index: &[u64], message: String| ArrayError::Chunk {
        path: display.to_string(),
        chunk: format!("{index:?}"),
        message,
    };
    // The output is split into slabs along the first axis at inner-chunk borders; each
    // slab is filled by one task, so no two tasks write the same memory.
    let plane: usize = shape[1..].iter().product();
    let mut slabs: Vec<(u64, u64)> = Vec::new();
    let mut z = ranges[0].start;
    while z < ranges[0].end {
        let next = ((z / inner[0] + 1) * inner[0]).min(ranges[0].end);
        slabs.push((z, next));
        z = next;
    }
    let mut pieces: Vec<&mut [T]> = Vec::with_capacity(slabs.len());
    let Some(mut rest) = out.as_slice_mut() else {
        return Err(chunk_err(&[], "the output buffer is not contiguous".into()));
    };
    for (lo, hi) in &slabs {
        let (head, tail) = rest.split_at_mut((hi - lo) as usize * plane);
        pieces.push(head);
        rest = tail;
    }
    let outer_counts = counts[1..].to_vec();
    pieces.into_par_iter().zip(slabs.par_iter()).try_for_each(
        |(slab, &(slab_lo, slab_hi))| -> Result<(), ArrayError> {
            let mut slab_shape = shape.clone();
            slab_shape[0] = (slab_hi - slab_lo) as usize;
            let mut slab_ranges = ranges.to_vec();
            slab_ranges[0] = slab_lo..slab_hi;
            for outer in super::data::grid_indices(&outer_counts) {
                let mut rel = vec![slab_lo / inner[0] - first[0]];
                rel.extend(outer);
                let chunk: Vec<u64> = rel.iter().zip(&first).map(|(r, f)| r + f).collect();
                let shard: Vec<u64> = chunk.iter().zip(&per_shard).map(|(c, p)| c / p).collect();
                let within: Vec<u64> = chunk.iter().zip(&per_shard).map(|(c, p)| c % p).collect();
                let path = shard_path(&shard);
                let Some(opened) = open_shard(
                    layout,
                    &path,
                    index_len,
                    &indices,
                    &shard,
                    &chunk_err_for(&chunk),
                )?
                else {
                    continue; // a missing shard: fill value
                };
                let linear = within
                    .iter()
                    .zip(&per_shard)
                    .fold(0u64, |acc, (w, p)| acc * p + w) as usize;
                let size = opened.size;
                let (offset, nbytes) = opened
                    .index
                    .get(linear)
                    .copied()
                    .unwrap_or((u64::MAX, u64::MAX));
                if offset == u64::MAX && nbytes == u64::MAX {
                    continue; // an empty chunk: fill value
                }
                if offset.checked_add(nbytes).is_none_or(|end| end > size) {
                    return Err(chunk_err(
                        &chunk,
                        format!(
                            "shard {} points past its end (offset {offset}, {nbytes} bytes)",
                            path.display()
                        ),
                    ));
                }
                let expected = chunk_elems * layout.element_size;
                SCRATCH.with(|scratch| -> Result<(), ArrayError> {
                    let mut scratch = scratch.borrow_mut();
                    let (encoded_buf, decoded_buf) = &mut *scratch;
                    encoded_buf.resize(nbytes as usize, 0);
                    // u64 storage keeps the decoded bytes aligned for every element type.
                    decoded_buf.resize(expected.div_ceil(8), 0);
                    let encoded = encoded_buf.as_mut_slice();
                    opened
                        .file
                        .read_exact_at(encoded, offset)
                        .map_err(|e| chunk_err(&chunk, e.to_string()))?;
                    let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(decoded_buf)[..expected];
                    let n = match layout.compression {
                        Inner::None => {
                            if encoded.len() != expected {
                                return Err(chunk_err(
                                    &chunk,
                                    format!("{} bytes, expected {expected}", encoded.len()),
                                ));
                            }
                            bytes.copy_from_slice(encoded);
                            expected
                        }
                        Inner::Zstd => zstd::bulk::decompress_to_buffer(&*encoded, &mut *bytes)
                            .map_err(|e| chunk_err(&chunk, format!("zstd: {e}")))?,
                        Inner::Gzip => {
                            let mut d = flate2::read::MultiGzDecoder::new(&*encoded);
                            let mut tmp = Vec::with_capacity(expected);
                            d.read_to_end(&mut tmp)
                                .map_err(|e| chunk_err(&chunk, format!("gzip: {e}")))?;
                            if tmp.len() != expected {
                                return Err(chunk_err(
                                    &chunk,
                                    format!("gzip gave {} bytes, expected {expected}", tmp.len()),
                                ));
                            }
                            bytes.copy_from_slice(&tmp);
                            expected
                        }
                        Inner::Blosc => {
                            use zarrs::array::codec::bytes_to_bytes::blosc::{
                                blosc_decompress_bytes, blosc_validate,
                            };
                            let size = blosc_validate(encoded)
                                .ok_or_else(|| chunk_err(&chunk, "not valid blosc data".into()))?;
                            if size != expected {
                                return Err(chunk_err(
                                    &chunk,
                                    format!("blosc data holds {size} bytes, expected {expected}"),
                                ));
                            }
                            let v = blosc_decompress_bytes(encoded, size, 1)
                                .map_err(|e| chunk_err(&chunk, format!("blosc: {e}")))?;
                            bytes.copy_from_slice(&v);
                            expected
                        }
                    };
                    if n != expected {
                        return Err(chunk_err(
                            &chunk,
                            format!("decoded {n} bytes, expected {expected}"),
                        ));
                    }
                    let values: &[T] = bytemuck::cast_slice(&*bytes);
                    // The part of this chunk inside the request, copied into place.
                    let begin: Vec<u64> = chunk.iter().zip(inner).map(|(c, s)| c * s).collect();
                    let lo: Vec<u64> = begin
                        .iter()
                        .zip(&slab_ranges)
                        .map(|(b, r)| (*b).max(r.start))
                        .collect();
                    let hi: Vec<u64> = begin
                        .iter()
                        .zip(inner)
                        .zip(&slab_ranges)
                        .map(|((b, s), r)| (b + s).min(r.end))
                        .collect();
                    let src_shape: Vec<usize> = inner.iter().map(|s| *s as usize).collect();
                    let part: Vec<std::ops::Range<usize>> = lo
                        .iter()
                        .zip(&hi)
                        .zip(&begin)
                        .map(|((l, h), b)| (l - b) as usize..(h - b) as usize)
                        .collect();
                    let dst_offset: Vec<usize> = lo
                        .iter()
                        .zip(&slab_ranges)
                        .map(|(l, r)| (l - r.start) as usize)
                        .collect();
                    super::data::copy_sub_block_into(
                        slab,
                        &slab_shape,
                        &dst_offset,
                        values,
                        &src_shape,
                        &part,
                    );
                    Ok(())
                })?;
            }
            Ok(())
        },
    )?;
    Ok(out)
}
