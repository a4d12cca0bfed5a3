//! `arrays`: read throughput of a synthetic uint8 cube stored as zarr v2 (Blosc-LZ4,
//! 64³ chunks) and as zarr v3 (sharded, 256³ shards of 64³ Zstandard chunks), read
//! chunk by chunk and as one region, with one thread and with all cores — by Segno and
//! by zarr-python (scripts/zarr_python_bench.py in the `.venv-zarr` venv) on the same
//! files, reported as MB/s and as the ratio Segno / zarr-python.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::Value;
use zarrs::array::ArrayBuilder;
use zarrs::filesystem::FilesystemStore;

use super::BenchError;
use crate::array::write::{self, ArraySpec, Compression, WriteMode};
use crate::array::{self, ArrayData, ArraySource, DataType};
use crate::geometry::{Coordinate, Roi};

/// What to benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayBenchOptions {
    /// Edge length of the cube in voxels.
    pub size: usize,
    /// Where the test arrays are written (and reused on the next run).
    pub dir: PathBuf,
    /// Timed repetitions per measurement (the best is reported).
    pub repeats: usize,
    /// Python interpreter with zarr-python; `None` skips the reference.
    pub python: Option<PathBuf>,
    /// The zarr_python_bench.py script.
    pub script: PathBuf,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// The stored array (`zarr v2 blosc-lz4`, `zarr v3 sharded zstd`).
    pub array: String,
    /// `chunks` (every chunk read on its own) or `whole` (one read of everything).
    pub mode: &'static str,
    /// Threads used.
    pub threads: usize,
    /// Segno's throughput, uncompressed MB/s (10^6 bytes).
    pub segno_mb_per_s: f64,
    /// zarr-python's throughput on the same files, if it ran.
    pub reference_mb_per_s: Option<f64>,
}

impl BenchRow {
    /// Segno / zarr-python throughput.
    pub fn ratio(&self) -> Option<f64> {
        self.reference_mb_per_s.map(|r| self.segno_mb_per_s / r)
    }
}

fn other(e: impl std::fmt::Display) -> BenchError {
    BenchError::Other(e.to_string())
}

/// Writes the two test arrays (unless a previous run left them complete) and returns their
/// array directories: (v2, v3 sharded).
fn prepare(options: &ArrayBenchOptions) -> Result<(PathBuf, PathBuf), BenchError> {
    let n = options.size;
    let stamp = options.dir.join(format!("complete-{n}"));
    let v2_container = options.dir.join("v2_blosc.zarr");
    let v3_container = options.dir.join("v3_sharded.zarr");
    let v2 = v2_container.join("raw/s0");
    let v3 = v3_container.join("raw");
    if stamp.is_file() {
        return Ok((v2, v3));
    }
    let _ = std::fs::remove_dir_all(&options.dir);
    std::fs::create_dir_all(&options.dir).map_err(other)?;
    let params = crate::demo::synth::SynthParams::default();
    let block = |offset: [i64; 3], shape: [usize; 3]| {
        let o = [offset[0] * 8, offset[1] * 8, offset[2] * 8];
        crate::demo::synth::raw_block(&params, o, [8, 8, 8], shape)
    };

    // v2: Segno's own writer (Blosc-LZ4, 64³ chunks).
    let size = Coordinate::from([n as i64 * 8; 3]);
    let roi = Roi::new(Coordinate::from([0, 0, 0]), size).map_err(other)?;
    let mut spec = ArraySpec::new(DataType::U8, roi, Coordinate::from([8, 8, 8]), None);
    spec.compression = Compression::BloscLz4;
    let writer = write::create(&v2_container, "raw", &spec, WriteMode::Overwrite)?;
    let indices = write::grid_indices(&writer.chunk_grid_shape());
    indices.par_iter().try_for_each(|index| {
        let r = writer.info().chunk_roi(index)?;
        let b = r.offset() / Coordinate::from([8, 8, 8]);
        let s = r.shape() / Coordinate::from([8, 8, 8]);
        let data = block(
            [b[0], b[1], b[2]],
            [s[0] as usize, s[1] as usize, s[2] as usize],
        );
        writer.write_chunk(index, &ArrayData::U8(data.into_dyn()))
    })?;

    // v3: sharded, Zstandard inner chunks, written shard by shard with zarrs.
    let store = Arc::new(FilesystemStore::new(&v3_container).map_err(other)?);
    let group = zarrs::group::GroupBuilder::new()
        .build(store.clone(), "/")
        .map_err(other)?;
    group.store_metadata().map_err(other)?;
    let shard = (256u64).min(n as u64);
    let inner = 64u64.min(shard);
    let a = ArrayBuilder::new(vec![n as u64; 3], vec![shard; 3], zarrs::array::data_type::uint8(), 0u8)
        .subchunk_shape(vec![inner; 3])
        .bytes_to_bytes_codecs(vec![Arc::new(zarrs::array::codec::ZstdCodec::new(3, false))])
        .dimension_names(["z", "y", "x"].into())
        .attributes(
            serde_json::json!({"voxel_size": [8, 8, 8], "offset": [0, 0, 0], "units": ["nm", "nm", "nm"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .build(store.clone(), "/raw")
        .map_err(other)?;
    a.store_metadata().map_err(other)?;
    let grid: Vec<u64> = vec![(n as u64).div_ceil(shard); 3];
    write::grid_indices(&grid).par_iter().try_for_each(|idx| {
        let begin: Vec<u64> = idx.iter().map(|i| i * shard).collect();
        let shape: Vec<usize> = begin
            .iter()
            .map(|b| (shard.min(n as u64 - b)) as usize)
            .collect();
        let data = block(
            [begin[0] as i64, begin[1] as i64, begin[2] as i64],
            [shape[0], shape[1], shape[2]],
        );
        a.store_chunk(idx, data.into_dyn()).map_err(other)
    })?;
    std::fs::write(&stamp, b"").map_err(other)?;
    Ok((v2, v3))
}

/// Best-of-`repeats` seconds of `f` after one untimed warm-up call.
fn best_secs(
    repeats: usize,
    mut f: impl FnMut() -> Result<(), BenchError>,
) -> Result<f64, BenchError> {
    f()?;
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Times Segno reading `path` with `threads` threads: (chunks MB/s, whole MB/s).
fn time_segno(path: &Path, threads: usize, repeats: usize) -> Result<(f64, f64), BenchError> {
    let a = array::open(path)?;
    let info = a.info().clone();
    let bytes = info.shape.iter().product::<u64>() as f64 * info.data_type.size_bytes() as f64;
    // Chunk-by-chunk reads use the chunks a reader decodes: inner chunks of shards.
    let rois: Vec<Roi> = {
        let mut probe = info.clone();
        probe.shard_shape = None;
        write::grid_indices(&probe.chunk_grid())
            .iter()
            .map(|i| probe.chunk_roi(i))
            .collect::<Result<_, _>>()?
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(other)?;
    zarrs::config::global_config_mut().set_codec_concurrent_target(threads);
    pool.install(|| {
        let chunks = best_secs(repeats, || {
            if threads == 1 {
                for r in &rois {
                    std::hint::black_box(a.read(r)?);
                }
            } else {
                rois.par_iter().try_for_each(|r| {
                    a.read(r).map(|d| {
                        std::hint::black_box(d);
                    })
                })?;
            }
            Ok(())
        })?;
        let whole = best_secs(repeats, || {
            std::hint::black_box(a.read(&info.roi)?);
            Ok(())
        })?;
        Ok((bytes / chunks / 1e6, bytes / whole / 1e6))
    })
}

/// Runs zarr-python's side of the benchmark: MB/s keyed by (array path, mode, threads).
fn time_reference(
    options: &ArrayBenchOptions,
    python: &Path,
    arrays: &[&Path],
) -> Result<Vec<(PathBuf, String, usize, f64)>, BenchError> {
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&options.script);
    for a in arrays {
        cmd.arg("--array").arg(a);
    }
    cmd.args([
        "--repeats",
        &options.repeats.to_string(),
        "--threads",
        "1,all",
    ]);
    let out = cmd
        .output()
        .map_err(|e| BenchError::Reference(format!("cannot run {}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(BenchError::Reference(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BenchError::Reference(format!("unreadable output: {e}")))?;
    let rows = v["results"].as_array().cloned().unwrap_or_default();
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                PathBuf::from(r["array"].as_str()?),
                r["mode"].as_str()?.to_string(),
                r["threads"].as_u64()? as usize,
                r["mb_per_s"].as_f64()?,
            ))
        })
        .collect())
}

/// Runs the array benchmark (see the module docs).
pub fn bench_arrays(options: &ArrayBenchOptions) -> Result<Vec<BenchRow>, BenchError> {
    let (v2, v3) = prepare(options)?;
    if !same_content(&v2, &v3)? {
        return Err(other(format!(
            "{} and {} hold different voxels: delete {} and run again",
            v2.display(),
            v3.display(),
            options.dir.display()
        )));
    }
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut thread_counts = vec![1];
    if all > 1 {
        thread_counts.push(all);
    }
    let reference = match &options.python {
        Some(py) => time_reference(options, py, &[&v2, &v3])?,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    for (label, path) in [("zarr v2 blosc-lz4", &v2), ("zarr v3 sharded zstd", &v3)] {
        for &threads in &thread_counts {
            let (chunks, whole) = time_segno(path, threads, options.repeats)?;
            for (mode, mb) in [("chunks", chunks), ("whole", whole)] {
                let r = reference
                    .iter()
                    .find(|(p, m, t, _)| p == path && m == mode && *t == threads)
                    .map(|x| x.3);
                rows.push(BenchRow {
                    array: label.to_string(),
                    mode,
                    threads,
                    segno_mb_per_s: mb,
                    reference_mb_per_s: r,
                });
            }
        }
    }
    Ok(rows)
}

/// Whether two arrays hold the same voxels over the first one's region.
pub fn same_content(a: &Path, b: &Path) -> Result<bool, BenchError> {
    let x = array::open(a)?;
    let y = array::open(b)?;
    let roi = x.info().roi;
    Ok(x.read(&roi)? == y.read(&roi)?)
}
