//! A small known volume for the viewer's unit tests.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, DataType};
use crate::geometry::{Coordinate, Roi};

/// Writes `v.zarr` into `dir` with 16³ voxels of 4 nm in 8³ chunks: `raw` (uint8, 10·x)
/// and `labels` (uint64, 1 for y < 8, 2 from y = 8 on); returns the container's path.
pub(crate) fn small_volume(dir: &Path) -> PathBuf {
    let c = dir.join("v.zarr");
    let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([64, 64, 64])).unwrap();
    let vs = Coordinate::from([4, 4, 4]);
    let mut spec = ArraySpec::new(DataType::U8, roi, vs, None);
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let raw = write::create(&c, "raw", &spec, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![16, 16, 16], |i| (10 * i[2]) as u8);
    raw.write(&roi, &ArrayData::U8(a)).unwrap();
    let mut spec = ArraySpec::new(DataType::U64, roi, vs, None);
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let labels = write::create(&c, "labels", &spec, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![16, 16, 16], |i| if i[1] < 8 { 1u64 } else { 2 });
    labels.write(&roi, &ArrayData::U64(a)).unwrap();
    c
}

/// Writes `p.zarr` into `dir`: `raw`, an OME-Zarr image of 20³ voxels of 4 nm in 8³ chunks
/// with three levels (20, 10 and 5 voxels a side: the coarser ones end a little earlier),
/// only the coarse levels filled in (the finest holds its values too), and its finest
/// chunk (1, 1, 1) corrupt; and `pred`, a 2-channel float32 array. Returns the container.
pub(crate) fn pyramid_volume(dir: &Path) -> PathBuf {
    let c = dir.join("p.zarr");
    let roi = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([80, 80, 80])).unwrap();
    let vs = Coordinate::from([4, 4, 4]);
    let mut spec = ArraySpec::new(DataType::U8, roi, vs, None);
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let raw = write::create_image(&c, "raw", &spec, 3, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![20, 20, 20], |i| (i[0] * 3 + i[1] * 5 + i[2] * 7) as u8);
    raw[0].write(&roi, &ArrayData::U8(a)).unwrap();
    write::build_pyramid(&raw, false).unwrap();
    let chunk = ["raw/s0/1.1.1", "raw/s0/1/1/1"]
        .iter()
        .map(|k| c.join(k))
        .find(|p| p.is_file())
        .unwrap();
    std::fs::write(&chunk, b"not a chunk").unwrap();
    let mut spec = ArraySpec::new(DataType::F32, roi, vs, Some(2));
    spec.chunk_voxels = Some(vec![8, 8, 8]);
    let pred = write::create(&c, "pred", &spec, WriteMode::CreateNew).unwrap();
    let a = ArrayD::from_shape_fn(vec![2, 20, 20, 20], |i| {
        (i[0] * 1000 + i[1] * 31 + i[2] * 17 + i[3]) as f32 * 0.25
    });
    pred.write(&roi, &ArrayData::F32(a)).unwrap();
    c
}
