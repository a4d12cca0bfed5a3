//! Array offsets are read exactly: DaCapo 0.3.5's offsets in voxels are recognised, an
//! offset off the voxel grid is kept as stored and shown, and training refuses such an
//! array instead of shifting it.

use std::path::Path;

use assert_cmd::Command;
use segno::config::*;

/// A plain zarr v2 array `container/name` (8³ uint8, uncompressed) with `attrs`.
fn plain_array(container: &Path, name: &str, attrs: serde_json::Value) {
    let dir = container.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(container.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    std::fs::write(
        dir.join(".zarray"),
        r#"{"zarr_format": 2, "shape": [8, 8, 8], "chunks": [8, 8, 8], "dtype": "|u1",
            "compressor": null, "fill_value": 0, "order": "C", "filters": null}"#,
    )
    .unwrap();
    std::fs::write(dir.join(".zattrs"), attrs.to_string()).unwrap();
    let voxels: Vec<u8> = (0..512).map(|i| (i % 7) as u8).collect();
    std::fs::write(dir.join("0.0.0"), voxels).unwrap();
}

fn info(path: &Path) -> serde_json::Value {
    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn array_info_shows_the_stored_offset_and_every_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("out.zarr");
    // As DaCapo 0.3.5 wrote a prediction at world offset 40 nm, 4 nm voxels.
    plain_array(
        &c,
        "dacapo",
        serde_json::json!({"voxel_size": [4, 4, 4], "offset": [10, 10, 10],
            "axis_names": ["z", "y", "x"], "units": ["", "", ""]}),
    );
    let v = info(&c.join("dacapo"));
    assert_eq!(v["offset_nm"], serde_json::json!([40, 40, 40]));
    assert_eq!(v["offset_as_stored"], serde_json::json!([10.0, 10.0, 10.0]));
    assert_eq!(v["roi_nm"]["offset"], serde_json::json!([40, 40, 40]));
    assert_eq!(v["on_voxel_grid"], true);
    let note = v["offset_notes"][0].as_str().unwrap();
    assert!(note.contains("as DaCapo 0.3.5 wrote it"), "{note}");

    // Off the grid: kept to the nm, flagged, and described in the text output.
    plain_array(
        &c,
        "shifted",
        serde_json::json!({"resolution": [8, 8, 8], "offset": [12, 0, 4]}),
    );
    let v = info(&c.join("shifted"));
    assert_eq!(v["offset_nm"], serde_json::json!([12, 0, 4]));
    assert_eq!(v["roi_nm"]["offset"], serde_json::json!([12, 0, 4]));
    assert_eq!(v["on_voxel_grid"], false);
    let text = Command::cargo_bin("segno")
        .unwrap()
        .args(["array", "info"])
        .arg(c.join("shifted"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("offset        12, 0, 4 nm"), "{text}");
    assert!(
        text.contains(
            "off the voxel grid on z (12 nm, voxel size 8 nm), x (4 nm, voxel size 8 nm)"
        ),
        "{text}"
    );
    // Reading it puts each voxel at its exact place: world 12 nm is voxel 0.
    let a = segno::array::open(&c.join("shifted")).unwrap();
    let roi = segno::geometry::Roi::new(
        segno::geometry::Coordinate::from([20, 8, 12]),
        segno::geometry::Coordinate::from([8, 8, 8]),
    )
    .unwrap();
    let v = a.read(&roi).unwrap().to_f64();
    // Voxel (1, 1, 1) of the stored data: index 64 + 8 + 1 = 73, 73 % 7 = 3.
    assert_eq!(v[[0, 0, 0]], 3.0);
}

#[test]
fn training_refuses_ground_truth_off_the_voxel_grid() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("data.zarr");
    plain_array(
        &c,
        "raw",
        serde_json::json!({"resolution": [8, 8, 8], "offset": [0, 0, 0]}),
    );
    plain_array(
        &c,
        "gt",
        serde_json::json!({"resolution": [8, 8, 8], "offset": [4, 0, 0]}),
    );
    let zarr = |name: &str| {
        ArrayConfig::Zarr(ZarrArrayConfig {
            name: name.into(),
            file_name: "data.zarr".into(),
            dataset: name.into(),
            snap_to_grid: None,
            axes: None,
            mode: None,
            ome_metadata: false,
        })
    };
    let dataset = DatasetConfig::RawGt(RawGTDatasetConfig {
        name: "shifted".into(),
        weight: 1,
        raw_config: Some(zarr("raw")),
        gt_config: Some(zarr("gt")),
        mask_config: None,
        sample_points: None,
    });
    let err = match segno::train::sample::open_datasets(&[dataset], dir.path()) {
        Ok(_) => panic!("an off-grid ground truth was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("dataset `shifted`, gt"), "{err}");
    assert!(
        err.contains("the offset (4, 0, 0) nm is not a multiple of the voxel size (8, 8, 8) nm"),
        "{err}"
    );
    assert!(err.contains("does not shift data"), "{err}");
}
