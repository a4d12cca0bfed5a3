//! Prediction reads raw data exactly as training and validation did: `segno predict` of a
//! validation crop equals validation's stored prediction for runs whose raw data goes
//! through a non-default Intensities range, for uint8 and uint16 raw; volumes at another
//! voxel size or of another element type are refused (or resampled when asked).

use std::path::Path;

mod common;

use assert_cmd::Command;
use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{ArrayData, DataType};
use segno::config::*;
use segno::demo::project::zarr;
use segno::geometry::Coordinate;
use segno::store::layout::RunDir;
use segno::store::Project;
use segno::train::{self, TrainOptions};

fn raw_config(source: ArrayConfig, min: f64, max: f64) -> ArrayConfig {
    ArrayConfig::Intensities(IntensitiesArrayConfig {
        name: "raw_norm".into(),
        source_array_config: Box::new(source),
        min,
        max,
    })
}

fn run_config(name: &str, raw: ArrayConfig) -> RunConfig {
    common::tiny_run(name, 2, 2, 1e-3, raw)
}

fn raw16() -> ArrayConfig {
    ArrayConfig::Zarr(ZarrArrayConfig {
        name: "raw16".into(),
        file_name: "data/raw16.zarr".into(),
        dataset: "raw".into(),
        snap_to_grid: None,
        axes: None,
        mode: Some("r".into()),
        ome_metadata: false,
    })
}

/// A uint16 copy of the demo raw (`v · 150 + 3000`) as a plain array `data/raw16.zarr/raw`.
fn write_uint16_raw(dir: &Path) {
    let raw = segno::array::open(&dir.join("data/synthetic.zarr/raw/s0")).unwrap();
    let info = raw.info().clone();
    let values = raw.read(&info.roi).unwrap().to_f64();
    let data = ArrayData::U16(values.mapv(|v| (v * 150.0 + 3000.0) as u16));
    let spec = ArraySpec::new(DataType::U16, info.roi, info.geometry.voxel_size, None);
    write::create(
        &dir.join("data/raw16.zarr"),
        "raw",
        &spec,
        WriteMode::Overwrite,
    )
    .unwrap()
    .write(&info.roi, &data)
    .unwrap();
}

/// Trains `run` to its validation at iteration 2, then predicts the validation crop with
/// `segno predict` from `input` and compares with validation's stored prediction.
fn predict_equals_validation(dir: &Path, run: &RunConfig, input: &Path) {
    let project = Project::open(dir).unwrap();
    project
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))
        .unwrap();
    let report = train::train_run(
        dir,
        run,
        TrainOptions {
            loader_threads: Some(1),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.validations.len(), 1);
    let gt = segno::array::open(&dir.join("data/synthetic.zarr/labels/crop2/mito/s0")).unwrap();
    let roi = gt.info().roi;
    let slices = (0..3)
        .map(|a| format!("{}:{}", roi.begin()[a], roi.end()[a]))
        .collect::<Vec<_>>()
        .join(",");
    let out = dir.join("out.zarr");
    let assert = Command::cargo_bin("segno")
        .unwrap()
        .args(["predict", "-r", &run.name, "--iteration", "2", "--input"])
        .arg(input)
        .arg("--output")
        .arg(&out)
        .args(["--dataset", &run.name, "--roi", &format!("[{slices}]")])
        // Validation's block size, so both compute the same blocks.
        .args([
            "--max-block-input",
            "1",
            "--device",
            "cpu",
            "--json",
            "--project",
        ])
        .arg(dir)
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(report["input"]["read_as"], "synthetic_crop1");
    assert_eq!(report["input"]["from_record"], true);
    assert_eq!(
        report["input"]["scale_shift"],
        serde_json::json!([2.0, -1.0])
    );
    let predicted = segno::array::open(&out.join(&run.name)).unwrap();
    let validated = segno::array::open(
        &dir.join(&run.name)
            .join("validation.zarr/2/synthetic_crop2/prediction"),
    )
    .unwrap();
    // Prediction keeps to where the raw data gives full context (validation pads with
    // zeros beyond it): compare where both predicted.
    let common = predicted.info().roi;
    assert_eq!(common.intersect(&roi), common);
    assert!(common.shape().iter().all(|v| v >= 64), "{common}");
    let a = predicted.read(&common).unwrap().to_f32();
    let b = validated.read(&common).unwrap().to_f32();
    assert_eq!(a.shape(), b.shape());
    let differing = a.iter().zip(b.iter()).filter(|(x, y)| x != y).count();
    assert_eq!(differing, 0, "{differing} of {} values differ", a.len());
    // The values are not trivially equal (e.g. all zero).
    let (lo, hi) = a
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    assert!(hi > lo, "prediction is constant {lo}");
}

#[test]
fn predict_of_a_validation_crop_equals_validation_for_uint8_raw_with_a_custom_range() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let run = run_config("u8", raw_config(zarr("raw", "raw"), 20.0, 200.0));
    // The OME-NGFF group: the level training read (s0, 8 nm) is chosen.
    predict_equals_validation(
        dir.path(),
        &run,
        &dir.path().join("data/synthetic.zarr/raw"),
    );

    // `segno predict` of run u8's iteration 2 from `input` into `refused.zarr`.
    let out = dir.path().join("refused.zarr");
    let predict = |input: &str, extra: &[&str]| {
        let mut c = Command::cargo_bin("segno").unwrap();
        c.args(["predict", "-r", "u8", "--iteration", "2", "--input"])
            .arg(dir.path().join(input))
            .arg("--output")
            .arg(&out)
            .args(extra)
            .args(["--device", "cpu", "--project"])
            .arg(dir.path());
        c
    };
    // Another voxel size is refused, naming both sizes; nothing is written.
    let assert = predict("data/synthetic.zarr/raw/s1", &[]).assert().code(1);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        err.contains("voxel size (16, 16, 16) nm") && err.contains("at (8, 8, 8) nm"),
        "{err}"
    );
    assert!(err.contains("--resample"), "{err}");
    assert!(!out.exists());
    // A uint16 volume is refused for a run trained on uint8 data.
    write_uint16_raw(dir.path());
    let assert = predict("data/raw16.zarr/raw", &[]).assert().code(1);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        err.contains("holds uint16 values") && err.contains("trained on uint8 data"),
        "{err}"
    );
    assert!(!out.exists());
    // With --resample, the 16 nm level is upsampled to the network's 8 nm.
    let assert = predict("data/synthetic.zarr/raw/s1", &["--resample", "--json"])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(
        report["input"]["steps"][0],
        serde_json::json!({"type": "resample", "upsample": [2, 2, 2], "downsample": [1, 1, 1], "interpolate": true})
    );
    assert_eq!(
        report["input"]["steps"][1],
        serde_json::json!({"type": "intensities", "min": 20.0, "max": 200.0})
    );
    let written = segno::array::open(&out.join("prediction_u8_2")).unwrap();
    assert_eq!(
        written.info().geometry.voxel_size,
        Coordinate::from([8, 8, 8])
    );
}

#[test]
fn predict_of_a_validation_crop_equals_validation_for_uint16_raw() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    write_uint16_raw(dir.path());
    let run = run_config("u16", raw_config(raw16(), 5000.0, 41000.0));
    let input = dir.path().join("data/raw16.zarr/raw");
    predict_equals_validation(dir.path(), &run, &input);
    // The record keeps the transform, and a run whose datasplit now reads raw data
    // differently is not resumed on top of checkpoints trained the other way.
    let record = segno::store::run::read_record(&dir.path().join("u16"))
        .unwrap()
        .unwrap();
    assert_eq!(record.inputs[0].transform.source_data_type, "uint16");
    assert_eq!(
        record.inputs[0].transform.steps,
        vec![segno::array::input::InputStep::Intensities {
            min: 5000.0,
            max: 41000.0
        }]
    );
    let mut changed = run.clone();
    changed.num_iterations = 4;
    let DataSplitConfig::TrainValidate(split) = &mut changed.datasplit_config else {
        unreachable!()
    };
    split.train_configs = vec![common::mito_dataset(
        "crop1",
        raw_config(raw16(), 0.0, 65535.0),
    )];
    let err = train::train_run(dir.path(), &changed, TrainOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("intensities [0, 65535]") && err.contains("intensities [5000, 41000]"),
        "{err}"
    );
    assert_eq!(
        RunDir::from_dir(&dir.path().join("u16")).latest_checkpoint(),
        Some(2)
    );
}
