//! Synthetic demo data: deterministic EM-like volumes with ground truth, written as an
//! OME-NGFF zarr container inside a project, so a first training run needs no data.
//!
//! Layout of `<project>/data/synthetic.zarr`:
//!
//! * `raw` — uint8 intensities, a multiscale image (`s0` at 8 nm, then 16, 32, 64 nm, …);
//! * `labels/crop1` — training crop at 8 nm: `cells` (instances), `mito`, `er`;
//! * `labels/crop2` — validation crop at 8 nm, same arrays;
//! * `labels/crop3` — a second training crop whose labels are at 4 nm, finer than raw.
//!
//! A DataSplit CSV (`<project>/data/synthetic.csv`) lists the crops for the
//! `[mito&er]` classes.

pub mod project;
pub mod synth;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::array::write::{self, ArraySpec, Compression, WriteMode};
use crate::array::{ArrayData, ArrayError, ArraySource, DataType};
use crate::geometry::{Coordinate, Roi};
use synth::SynthParams;

/// Voxel size of the raw data's finest level, in nm.
pub const RAW_VOXEL_NM: i64 = 8;
/// Voxel size of the fine ground-truth crop, in nm.
pub const FINE_VOXEL_NM: i64 = 4;
/// The smallest supported volume edge, in voxels (four pyramid levels of at least 8³).
pub const MIN_SIZE: usize = 64;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Seed of the generator: the same seed and size always give identical data.
    pub seed: u64,
    /// Edge length of the raw volume in voxels at 8 nm (a cube).
    pub size: usize,
    /// Replace existing demo data instead of refusing.
    pub overwrite: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            size: 128,
            overwrite: false,
        }
    }
}

/// One array that was written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenArray {
    /// Dataset path inside the container.
    pub dataset: String,
    /// The role: `raw`, or `train`/`validate` ground truth.
    pub role: &'static str,
    /// Region in world units (nm).
    pub roi: Roi,
    /// Voxel size of the finest level (nm).
    pub voxel_size: Coordinate,
    /// Number of scale levels.
    pub levels: usize,
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct DemoData {
    /// The zarr container.
    pub container: PathBuf,
    /// The DataSplit CSV listing the crops.
    pub csv: PathBuf,
    /// Everything written, raw first.
    pub arrays: Vec<WrittenArray>,
}

/// A crop of the volume: name, role, region (in voxels of 8 nm) and label voxel size.
struct Crop {
    name: &'static str,
    role: &'static str,
    begin: [usize; 3],
    end: [usize; 3],
    voxel_nm: i64,
}

/// Largest crop edge in 8 nm voxels: ground-truth crops stay small however big the volume.
const MAX_CROP: usize = 256;

fn crops(n: usize) -> Vec<Crop> {
    // Train on the first half along x, validate on the last quarter, with a gap between;
    // the fine crop sits in the gap's first half. Big volumes keep the crops of a 256³ one.
    let m = n.min(MAX_CROP);
    vec![
        Crop {
            name: "crop1",
            role: "train",
            begin: [0, 0, 0],
            end: [m, m, m / 2],
            voxel_nm: RAW_VOXEL_NM,
        },
        Crop {
            name: "crop2",
            role: "validate",
            begin: [m / 8, m / 8, 3 * m / 4],
            end: [m - m / 8, m - m / 8, m],
            voxel_nm: RAW_VOXEL_NM,
        },
        Crop {
            name: "crop3",
            role: "train",
            begin: [m / 4, m / 4, m / 2],
            end: [3 * m / 4, 3 * m / 4, m / 2 + m / 8],
            voxel_nm: FINE_VOXEL_NM,
        },
    ]
}

fn voxel_roi(begin: [usize; 3], end: [usize; 3]) -> Result<Roi, ArrayError> {
    let to = |v: [usize; 3]| {
        Coordinate::from([
            v[0] as i64 * RAW_VOXEL_NM,
            v[1] as i64 * RAW_VOXEL_NM,
            v[2] as i64 * RAW_VOXEL_NM,
        ])
    };
    Roi::from_bounds(to(begin), to(end)).map_err(|e| ArrayError::Invalid {
        path: "demo data".into(),
        message: e.to_string(),
    })
}

fn arr3(c: Coordinate) -> [i64; 3] {
    [c[0], c[1], c[2]]
}

fn block_shape(roi: &Roi, voxel_size: &Coordinate) -> [usize; 3] {
    let shape = roi.shape() / *voxel_size;
    [shape[0] as usize, shape[1] as usize, shape[2] as usize]
}

/// Number of pyramid levels for a cube of `size` voxels: halve while at least 8 voxels
/// remain, at least 4 levels (for `size ≥ 64`) and at most 8.
pub fn pyramid_levels(size: usize) -> usize {
    let mut levels = 1;
    while levels < 8 && size >> levels >= 8 {
        levels += 1;
    }
    levels
}

/// Writes the demo data into `<project>/data/` (see the module docs) and returns what was
/// written. Refuses to replace existing demo data unless `overwrite` is set.
pub fn generate(project: &Path, options: &DemoOptions) -> Result<DemoData, ArrayError> {
    let n = options.size;
    let data_dir = project.join("data");
    let container = data_dir.join("synthetic.zarr");
    if !(MIN_SIZE..=1 << 16).contains(&n) {
        return Err(ArrayError::Invalid {
            path: container.display().to_string(),
            message: format!("--size must be between {MIN_SIZE} and 65536 voxels, got {n}"),
        });
    }
    if container.exists() && !options.overwrite {
        return Err(ArrayError::Write {
            path: container.display().to_string(),
            what: "the demo data".into(),
            message: "it already exists; pass --overwrite to replace it".into(),
        });
    }
    if container.exists() {
        std::fs::remove_dir_all(&container).map_err(|e| ArrayError::Write {
            path: container.display().to_string(),
            what: "the old demo data".into(),
            message: e.to_string(),
        })?;
    }
    let mode = WriteMode::CreateNew;
    let params = SynthParams {
        seed: options.seed,
        ..SynthParams::default()
    };
    let mut arrays = Vec::new();

    // Raw: a multiscale uint8 image.
    let raw_roi = voxel_roi([0, 0, 0], [n, n, n])?;
    let vs = Coordinate::from([RAW_VOXEL_NM; 3]);
    let mut spec = ArraySpec::new(DataType::U8, raw_roi, vs, None);
    spec.compression = Compression::BloscLz4;
    let levels = pyramid_levels(n);
    let raw = write::create_image(&container, "raw", &spec, levels, mode)?;
    let indices = write::grid_indices(&raw[0].chunk_grid_shape());
    indices.par_iter().try_for_each(|index| {
        let roi = raw[0].info().chunk_roi(index)?;
        let block = synth::raw_block(
            &params,
            arr3(roi.offset()),
            arr3(vs),
            block_shape(&roi, &vs),
        );
        raw[0].write_chunk(index, &ArrayData::U8(block.into_dyn()))
    })?;
    write::build_pyramid(&raw, false)?;
    arrays.push(WrittenArray {
        dataset: "raw".into(),
        role: "raw",
        roi: raw_roi,
        voxel_size: vs,
        levels,
    });

    // Ground-truth crops: instance labels of cells, mito and er.
    let mut csv = String::new();
    for crop in crops(n) {
        let roi = voxel_roi(crop.begin, crop.end)?;
        let cvs = Coordinate::from([crop.voxel_nm; 3]);
        let mut spec = ArraySpec::new(DataType::U64, roi, cvs, None);
        spec.compression = Compression::BloscZstd;
        let mut writers = Vec::new();
        for class in ["cells", "mito", "er"] {
            let dataset = format!("labels/{}/{class}", crop.name);
            writers.push(write::create(&container, &dataset, &spec, mode)?);
            arrays.push(WrittenArray {
                dataset,
                role: crop.role,
                roi,
                voxel_size: cvs,
                levels: 1,
            });
        }
        // The three arrays share one chunk grid: compute each chunk's labels once.
        let indices = write::grid_indices(&writers[0].chunk_grid_shape());
        indices.par_iter().try_for_each(|index| {
            let r = writers[0].info().chunk_roi(index)?;
            let blocks =
                synth::label_blocks(&params, arr3(r.offset()), arr3(cvs), block_shape(&r, &cvs));
            for (w, a) in writers.iter().zip([blocks.cells, blocks.mito, blocks.er]) {
                w.write_chunk(index, &ArrayData::U64(a.into_dyn()))?;
            }
            Ok::<(), ArrayError>(())
        })?;
        let kind = if crop.role == "train" { "train" } else { "val" };
        let c = container.display();
        csv.push_str(&format!(
            "{kind},{c},raw,{c},labels/{}/[mito&er]\n",
            crop.name
        ));
    }
    let csv_path = data_dir.join("synthetic.csv");
    write_text(&csv_path, &csv)?;
    Ok(DemoData {
        container,
        csv: csv_path,
        arrays,
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), ArrayError> {
    crate::store::atomic::write_atomic(path, text.as_bytes(), true).map_err(|e| ArrayError::Write {
        path: path.display().to_string(),
        what: "the file".into(),
        message: e.to_string(),
    })
}
