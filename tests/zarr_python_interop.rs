//! Arrays Segno writes, read back by zarr-python (from the `.venv-zarr` that
//! scripts/setup.sh installs). Skipped with a message when that venv is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use segno::array::write::{self, ArraySpec, Compression, WriteMode};
use segno::array::{ArrayData, DataType};
use segno::geometry::{Coordinate, Roi};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn zarr_python() -> Option<PathBuf> {
    let py = root().join(".venv-zarr/bin/python");
    if py.is_file() {
        Some(py)
    } else {
        eprintln!(
            "skipped: {} is missing (run scripts/setup.sh to install zarr-python)",
            py.display()
        );
        None
    }
}

fn describe(py: &Path, path: &Path) -> Value {
    let out = Command::new(py)
        .arg(root().join("scripts/zarr_python_read.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zarr-python failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256_le<T: Copy>(values: &[T], to_le: impl Fn(T) -> Vec<u8>) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(to_le(*v));
    }
    format!("{:x}", h.finalize())
}

#[test]
fn zarr_python_reads_what_segno_writes() {
    let Some(py) = zarr_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("out.zarr");

    // A two-level uint8 image with a world offset.
    let region = Roi::new(
        Coordinate::from([80, 40, 48]),
        Coordinate::from([96, 160, 192]),
    )
    .unwrap();
    let vs = Coordinate::from([8, 8, 8]);
    let mut spec = ArraySpec::new(DataType::U8, region, vs, None);
    spec.chunk_voxels = Some(vec![8, 8, 16]);
    let levels = write::create_image(&container, "raw", &spec, 2, WriteMode::CreateNew).unwrap();
    let raw = ArrayD::from_shape_fn(IxDyn(&[12, 20, 24]), |i| {
        ((i[0] * 31 + i[1] * 7 + i[2] * 3) % 251) as u8
    });
    levels[0]
        .write(&region, &ArrayData::U8(raw.clone()))
        .unwrap();
    write::build_pyramid(&levels, false).unwrap();

    let d = describe(&py, &container.join("raw"));
    assert_eq!(d["zarr_format"], 2);
    assert_eq!(d["level_path"], "s0");
    assert_eq!(d["shape"], serde_json::json!([12, 20, 24]));
    assert_eq!(d["chunks"], serde_json::json!([8, 8, 16]));
    assert_eq!(d["dtype"], "uint8");
    assert_eq!(d["attributes"]["resolution"], serde_json::json!([8, 8, 8]));
    assert_eq!(d["attributes"]["offset"], serde_json::json!([80, 40, 48]));
    assert_eq!(
        d["attributes"]["axis_names"],
        serde_json::json!(["z", "y", "x"])
    );
    let ms = &d["group_attributes"]["multiscales"][0];
    assert_eq!(ms["version"], "0.4");
    assert_eq!(ms["datasets"][1]["path"], "s1");
    assert_eq!(
        ms["datasets"][0]["coordinateTransformations"][1]["translation"],
        serde_json::json!([80.0, 40.0, 48.0])
    );
    let sum: u64 = raw.iter().map(|v| u64::from(*v)).sum();
    assert_eq!(d["sum"].as_f64().unwrap(), sum as f64);
    let flat: Vec<u8> = raw.iter().copied().collect();
    assert_eq!(d["values_sha256"], sha256_le(&flat, |v| vec![v]));
    let s1 = describe(&py, &container.join("raw/s1"));
    // y starts at 40 nm, not on the 16 nm grid: s1 covers 48..192 nm there.
    assert_eq!(s1["shape"], serde_json::json!([6, 9, 12]));

    // Multi-channel float32 with gzip, and uint64 labels with blosc-zstd.
    let region = Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([16, 24, 24])).unwrap();
    let mut spec = ArraySpec::new(DataType::F32, region, Coordinate::from([4, 4, 4]), Some(2));
    spec.compression = Compression::Gzip;
    let w = write::create(&container, "prediction", &spec, WriteMode::CreateNew).unwrap();
    let pred = ArrayD::from_shape_fn(IxDyn(&[2, 4, 6, 6]), |i| {
        (i[0] as f32 - 0.5) * (i[1] * 36 + i[2] * 6 + i[3]) as f32 / 7.0
    });
    w.write(&region, &ArrayData::F32(pred.clone())).unwrap();
    let d = describe(&py, &container.join("prediction/s0"));
    assert_eq!(d["shape"], serde_json::json!([2, 4, 6, 6]));
    assert_eq!(d["dtype"], "float32");
    assert_eq!(
        d["attributes"]["axis_names"],
        serde_json::json!(["c^", "z", "y", "x"])
    );
    let flat: Vec<f32> = pred.iter().copied().collect();
    assert_eq!(
        d["values_sha256"],
        sha256_le(&flat, |v| v.to_le_bytes().to_vec())
    );

    // float16, written from float32 values (rounded to the nearest half).
    let spec = ArraySpec::new(DataType::F16, region, Coordinate::from([4, 4, 4]), Some(2));
    let w = write::create(&container, "half", &spec, WriteMode::CreateNew).unwrap();
    w.write(&region, &ArrayData::F32(pred.clone())).unwrap();
    let d = describe(&py, &container.join("half/s0"));
    assert_eq!(d["dtype"], "float16");
    let halves: Vec<half::f16> = pred.iter().map(|v| half::f16::from_f32(*v)).collect();
    assert_eq!(
        d["values_sha256"],
        sha256_le(&halves, |v| v.to_le_bytes().to_vec())
    );
    // Read back by Segno as float32 holding the same halves.
    let back = segno::array::open(&container.join("half")).unwrap();
    assert_eq!(back.info().data_type, DataType::F16);
    let read: Vec<f32> = back
        .read(&region)
        .unwrap()
        .to_f32()
        .iter()
        .copied()
        .collect();
    let expected: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
    assert_eq!(read, expected);

    let mut spec = ArraySpec::new(DataType::U64, region, Coordinate::from([4, 4, 4]), None);
    spec.compression = Compression::BloscZstd;
    let w = write::create(&container, "labels", &spec, WriteMode::CreateNew).unwrap();
    let labels = ArrayD::from_shape_fn(IxDyn(&[4, 6, 6]), |i| {
        if i[2] < 2 {
            0
        } else {
            (1u64 << 40) + (i[0] * 6 + i[1]) as u64
        }
    });
    w.write(&region, &ArrayData::U64(labels.clone())).unwrap();
    let d = describe(&py, &container.join("labels"));
    assert_eq!(d["dtype"], "uint64");
    assert_eq!(d["max"].as_f64().unwrap(), ((1u64 << 40) + 23) as f64);
    let flat: Vec<u64> = labels.iter().copied().collect();
    assert_eq!(
        d["values_sha256"],
        sha256_le(&flat, |v| v.to_le_bytes().to_vec())
    );
}
