//! The command-line options DaCapo users reach for: `train --no-validation`,
//! `predict --output-dtype uint8` and `--overwrite`, `architecture shapes` and `targets`.

mod common;

use std::path::Path;

use segno::config::AnyConfig;
use segno::store::Project;

/// `segno ARGS… -p DIR --json` (CPU): exit code, stdout as JSON (null when empty), stderr.
fn segno(dir: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = args.to_vec();
    all.extend(["-p", dir.to_str().unwrap()]);
    common::segno_json(&all)
}

fn store_run(dir: &Path, name: &str) -> segno::config::RunConfig {
    let run = common::tiny_run(name, 4, 2, 0.05, common::demo_raw(0.0, 255.0));
    Project::open(dir)
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))
        .unwrap();
    run
}

#[test]
fn train_without_validation_and_predictions_as_uint8_or_refusing_to_overwrite() {
    let dir = common::demo_data_project(64);
    let p = dir.path();
    store_run(p, "quick");
    let (code, v, err) = segno(
        p,
        &["train", "-r", "quick", "--no-validation", "--device", "cpu"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["checkpoints"], serde_json::json!([2, 4]));
    assert!(!p.join("stats/validation_scores/quick.json").exists());
    assert!(!p.join("quick/validation.zarr").exists());

    let raw = p.join("data/synthetic.zarr/raw");
    let out = p.join("out.zarr");
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", "-r", "quick", "--device", "cpu", "--input"];
        let raw = raw.to_str().unwrap();
        let out = out.to_str().unwrap();
        args.extend([raw, "--output", out]);
        args.extend(extra);
        segno(p, &args)
    };
    let (code, _, err) = predict(&["--dataset", "f32"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = predict(&["--dataset", "u8", "--output-dtype", "uint8"]);
    assert_eq!(code, 0, "{err}");
    let f32s = segno::array::open(&out.join("f32")).unwrap();
    let u8s = segno::array::open(&out.join("u8")).unwrap();
    assert_eq!(u8s.info().data_type, segno::array::DataType::U8);
    let roi = f32s.info().roi;
    let a = f32s.read(&roi).unwrap().to_f32();
    let b = u8s.read(&roi).unwrap().to_f32();
    // DaCapo's conversion of values in [−1, 1]: (p + 1) / 2 · 255, clipped, truncated.
    for (p, q) in a.iter().zip(b.iter()) {
        assert_eq!(
            *q,
            ((p + 1.0) / 2.0 * 255.0).clamp(0.0, 255.0).trunc(),
            "{p}"
        );
    }
    // Post-processing reads the uint8 prediction back in tanh units.
    let decoded = segno::task::arrays::read_prediction(u8s.as_ref(), &roi).unwrap();
    let worst = a
        .iter()
        .zip(decoded.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 2.0 / 255.0 + 1e-6, "{worst}");

    // The same output again: refused (exit 4) without touching it; --overwrite replaces it.
    let before = std::fs::read_dir(out.join("f32")).unwrap().count();
    let (code, _, err) = predict(&["--dataset", "f32"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("f32 exists (a finished prediction of iteration 4)")
            && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.join("f32")).unwrap().count(), before);
    let (code, _, err) = predict(&["--dataset", "f32", "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    // Never into the input itself, however it is spelled.
    let (code, _, err) = segno(
        p,
        &[
            "predict",
            "-r",
            "quick",
            "--device",
            "cpu",
            "--input",
            raw.to_str().unwrap(),
            "--output",
            p.join("data/./synthetic.zarr").to_str().unwrap(),
            "--dataset",
            "raw/s0",
            "--overwrite",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("would overlap the input"), "{err}");
    assert!(segno::array::open(&raw).is_ok());
}

#[test]
fn architecture_shapes_and_targets_show_what_the_network_and_task_see() {
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let run = store_run(p, "shapes");
    let (code, v, err) = segno(p, &["architecture", "shapes", "shapes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["input_voxels"], serde_json::json!([52, 52, 52]));
    assert_eq!(v["output_voxels"], serde_json::json!([36, 36, 36]));
    assert_eq!(v["context_voxels"], serde_json::json!([8.0, 8.0, 8.0]));
    assert_eq!(v["input_voxel_size_nm"], serde_json::json!([8, 8, 8]));
    assert_eq!(v["context_nm"], serde_json::json!([64.0, 64.0, 64.0]));
    // An input the network cannot take: why, and the nearest valid sizes.
    let (code, v, _) = segno(
        p,
        &["architecture", "shapes", "shapes", "--input", "53,52,52"],
    );
    assert_eq!(code, 1);
    assert_eq!(v["valid"], false);
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("axis 0") && error.contains("nearest valid sizes on that axis: 52 or 54"),
        "{error}"
    );

    // Targets and weights of the run's task on its first training crop.
    let out = p.join("targets.zarr");
    let (code, v, err) = segno(
        p,
        &["targets", "-r", "shapes", "--output", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["channels"], 1);
    let target = segno::array::open(&out.join("target")).unwrap();
    let gt = segno::array::open(&p.join("data/synthetic.zarr/labels/crop1/mito/s0")).unwrap();
    assert_eq!(target.info().roi, gt.info().roi);
    let (lo, hi) = (
        v["target_range"][0][0].as_f64().unwrap(),
        v["target_range"][0][1].as_f64().unwrap(),
    );
    // tanh distances: negative outside mito, positive inside, within [−1, 1] (far from
    // any mitochondrion tanh rounds to −1 in float32).
    assert!(lo < 0.0 && hi > 0.0 && lo >= -1.0 && hi < 1.0, "{lo} {hi}");
    assert!(v["weight_range"][0][1].as_f64().unwrap() > 0.0);
    // Where the ground truth has mito, the target is positive.
    let t = target.read(&gt.info().roi).unwrap().to_f32();
    let g = gt.read(&gt.info().roi).unwrap().to_f64();
    let agree = t
        .iter()
        .zip(g.iter())
        .filter(|(t, g)| (**t > 0.0) == (**g != 0.0))
        .count();
    assert_eq!(agree, g.len());
    // An existing output is refused without --overwrite.
    let (code, _, err) = segno(
        p,
        &["targets", "-r", "shapes", "--output", out.to_str().unwrap()],
    );
    assert_ne!(code, 0, "{err}");
    assert_eq!(run.name, "shapes");
}
