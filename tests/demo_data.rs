//! `segno demo-data` and `segno array info`: deterministic synthetic volumes with the
//! layout DataSplits expect.

use std::path::Path;

use assert_cmd::Command;
use segno::array;
use segno::demo::{self, DemoOptions};
use segno::geometry::Coordinate;
use serde_json::Value;

fn read_all(path: &Path) -> Vec<f64> {
    let a = array::open(path).unwrap();
    a.read(&a.info().roi)
        .unwrap()
        .to_f64()
        .iter()
        .copied()
        .collect()
}

#[test]
fn demo_data_is_deterministic_multiscale_and_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 3,
        size: 64,
        overwrite: false,
    };
    let first = demo::generate(&dir.path().join("a"), &options).unwrap();
    let again = demo::generate(&dir.path().join("b"), &options).unwrap();
    let other = demo::generate(
        &dir.path().join("c"),
        &DemoOptions {
            seed: 4,
            ..options.clone()
        },
    )
    .unwrap();
    let raw = |d: &demo::DemoData| read_all(&d.container.join("raw"));
    assert_eq!(raw(&first), raw(&again));
    assert_ne!(raw(&first), raw(&other));
    let mito = |d: &demo::DemoData| read_all(&d.container.join("labels/crop1/mito"));
    assert_eq!(mito(&first), mito(&again));

    // Raw: 4 OME-NGFF levels at 8, 16, 32, 64 nm.
    let levels = array::zarr::scale_levels(&first.container, "raw").unwrap();
    assert_eq!(levels.len(), 4);
    let sizes: Vec<Coordinate> = levels.iter().map(|l| l.info.geometry.voxel_size).collect();
    assert_eq!(
        sizes,
        [8, 16, 32, 64]
            .map(|v| Coordinate::from([v, v, v]))
            .to_vec()
    );
    assert_eq!(levels[3].info.shape, vec![8, 8, 8]);

    // Crops: two training crops (one at 4 nm) and one validation crop, inside raw.
    let raw_info = array::open(&first.container.join("raw"))
        .unwrap()
        .info()
        .clone();
    let crops: Vec<_> = first
        .arrays
        .iter()
        .filter(|a| a.dataset.ends_with("/mito"))
        .collect();
    assert_eq!(crops.len(), 3);
    assert_eq!(crops.iter().filter(|a| a.role == "train").count(), 2);
    assert_eq!(crops.iter().filter(|a| a.role == "validate").count(), 1);
    for c in &crops {
        assert!(raw_info.roi.contains_roi(&c.roi), "{} {}", c.dataset, c.roi);
    }
    let fine = array::open(&first.container.join("labels/crop3/mito")).unwrap();
    assert_eq!(fine.info().geometry.voxel_size, Coordinate::from([4, 4, 4]));
    let train = crops
        .iter()
        .find(|a| a.dataset == "labels/crop1/mito")
        .unwrap();
    let val = crops.iter().find(|a| a.role == "validate").unwrap();
    assert!(
        !train.roi.intersects(&val.roi),
        "training and validation crops overlap"
    );

    // Labels agree with raw: mito voxels are darker than cell interiors, membranes darkest.
    let r = array::open(&first.container.join("raw")).unwrap();
    let crop_roi = train.roi;
    let raw_v = r.read(&crop_roi).unwrap().to_f64();
    let mito_v = array::open(&first.container.join("labels/crop1/mito"))
        .unwrap()
        .read(&crop_roi)
        .unwrap()
        .to_f64();
    let cells_v = array::open(&first.container.join("labels/crop1/cells"))
        .unwrap()
        .read(&crop_roi)
        .unwrap()
        .to_f64();
    let er_v = array::open(&first.container.join("labels/crop1/er"))
        .unwrap()
        .read(&crop_roi)
        .unwrap()
        .to_f64();
    let mean = |pick: &dyn Fn(usize) -> bool| {
        let vals: Vec<f64> = raw_v
            .iter()
            .enumerate()
            .filter(|(i, _)| pick(*i))
            .map(|(_, v)| *v)
            .collect();
        (
            vals.iter().sum::<f64>() / vals.len().max(1) as f64,
            vals.len(),
        )
    };
    let m = mito_v.as_slice().unwrap();
    let c = cells_v.as_slice().unwrap();
    let e = er_v.as_slice().unwrap();
    let (mito_mean, n_mito) = mean(&|i| m[i] > 0.0);
    let (cyto_mean, _) = mean(&|i| m[i] == 0.0 && e[i] == 0.0 && c[i] > 0.0);
    let (membrane_mean, n_membrane) = mean(&|i| c[i] == 0.0);
    assert!(
        n_mito > 100 && n_membrane > 100,
        "mito {n_mito}, membrane {n_membrane}"
    );
    assert!(
        mito_mean + 30.0 < cyto_mean,
        "mito {mito_mean} vs cytoplasm {cyto_mean}"
    );
    assert!(
        membrane_mean + 50.0 < cyto_mean,
        "membrane {membrane_mean} vs cytoplasm {cyto_mean}"
    );

    // The CSV lists the crops with their classes.
    let csv = std::fs::read_to_string(&first.csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("train,") && lines[0].ends_with(",labels/crop1/[mito&er]"),
        "{csv}"
    );
    assert!(lines[1].starts_with("val,"), "{csv}");

    // Existing data is kept unless --overwrite.
    let err = demo::generate(&dir.path().join("a"), &options).unwrap_err();
    assert!(err.to_string().contains("--overwrite"), "{err}");
    assert_eq!(raw(&first), read_all(&first.container.join("raw")));
    let err = demo::generate(
        &dir.path().join("d"),
        &DemoOptions {
            size: 16,
            ..options
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--size"), "{err}");
}

#[test]
fn cli_demo_data_and_array_info() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["demo-data", "--size", "64", "--json", "-p"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["arrays"][0]["dataset"], "raw");
    assert_eq!(v["arrays"][0]["levels"], 4);

    let raw = dir.path().join("data/synthetic.zarr/raw");
    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info", "--json"])
        .arg(&raw)
        .output()
        .unwrap();
    assert!(out.status.success());
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["data_type"], "uint8");
    assert_eq!(info["shape"], serde_json::json!([64, 64, 64]));
    assert_eq!(info["chunk_shape"], serde_json::json!([64, 64, 64]));
    assert_eq!(info["voxel_size_nm"], serde_json::json!([8, 8, 8]));
    assert_eq!(info["offset_nm"], serde_json::json!([0, 0, 0]));
    assert_eq!(info["scale_levels"].as_array().unwrap().len(), 4);
    assert_eq!(
        info["scale_levels"][2]["voxel_size_nm"],
        serde_json::json!([32, 32, 32])
    );
    assert_eq!(info["current_level"], "s0");
    assert!(info["codecs"].as_str().unwrap().contains("blosc"));

    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info"])
        .arg(raw.join("s2"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("voxel size    32 × 32 × 32 nm"), "{text}");
    assert!(text.contains("*s2"), "{text}");

    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info"])
        .arg(dir.path().join("data/synthetic.zarr/nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing"));
}
