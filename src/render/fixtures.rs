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
