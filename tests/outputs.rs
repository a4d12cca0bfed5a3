//! Outputs never clobber: commands that write arrays refuse an existing dataset unless
//! `--overwrite` is given, never write over their own input however the paths are
//! spelled, keep dataset names inside the output container, and a prediction is only
//! resumed by the same prediction (same checkpoint, input, region and parameters).

mod common;

use std::path::Path;

use segno::config::AnyConfig;
use segno::store::layout::RunDir;
use segno::store::Project;

fn segno(args: &[&str]) -> (i32, serde_json::Value, String) {
    common::segno_json(args)
}

fn values(path: &Path) -> Vec<f32> {
    common::array_values(path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn post_process_refuses_existing_outputs_its_own_input_and_escaping_names() {
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let container = p.join("data/synthetic.zarr");
    let raw = container.join("raw/s0");
    let raw_before = values(&raw);
    let labels = container.join("labels/crop1/mito/s0");
    let labels_before = values(&labels);
    let post = |output: &Path, dataset: &str, extra: &[&str]| {
        let mut args = vec![
            "post-process",
            "--input",
            s(&raw),
            "--output",
            s(output),
            "--dataset",
            dataset,
            "--threshold",
            "100",
        ];
        args.extend(extra);
        segno(&args)
    };

    // Its own input, spelled in every way: directly, through `..`, through a symlink,
    // or as the group holding it - refused (usage error) even with --overwrite.
    let link = p.join("link.zarr");
    std::os::unix::fs::symlink(&container, &link).unwrap();
    let dotdot = p.join("data/../data/synthetic.zarr");
    for (output, dataset) in [
        (&container, "raw/s0"),
        (&container, "raw"),
        (&dotdot, "raw/s0"),
        (&link, "raw"),
        (&container, "raw/s0/"),
    ] {
        let (code, _, err) = post(output, dataset, &["--overwrite"]);
        assert_eq!(code, 2, "{} {dataset}: {err}", output.display());
        assert!(err.contains("would overlap the input"), "{err}");
    }
    assert_eq!(values(&raw), raw_before);

    // Another existing array: refused (conflict) unless --overwrite.
    let (code, _, err) = post(&container, "labels/crop1/mito", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("labels/crop1/mito exists (a group)") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(values(&labels), labels_before);

    // Names that leave the container: refused, nothing written anywhere.
    let outside = p.join("outside");
    let out = p.join("out.zarr");
    for dataset in [s(&outside), "../escaped", "a/../../b", "a//b", "."] {
        let (code, _, err) = post(&out, dataset, &[]);
        assert_eq!(code, 1, "{dataset}: {err}");
        assert!(err.contains("dataset name"), "{err}");
        assert!(err.contains(&format!("{dataset:?}")), "{err}");
    }
    assert!(!outside.exists());
    assert!(!p.join("escaped").exists() && !p.join("b").exists());
    assert!(!out.exists(), "nothing is created for a refused name");

    // A new dataset is written; the same again is refused; --overwrite replaces it.
    let (code, v, err) = post(&out, "mask", &[]);
    assert_eq!(code, 0, "{err}");
    let expected: Vec<f32> = raw_before
        .iter()
        .map(|v| f32::from(u8::from(*v > 100.0)))
        .collect();
    assert_eq!(values(&out.join("mask/s0")), expected);
    assert_eq!(
        v["foreground_voxels"][0].as_u64().unwrap(),
        expected.iter().filter(|v| **v > 0.0).count() as u64
    );
    let (code, _, err) = post(&out, "mask", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("mask exists"), "{err}");
    let (code, _, err) = segno(&[
        "post-process",
        "--input",
        s(&raw),
        "--output",
        s(&out),
        "--dataset",
        "mask",
        "--threshold",
        "200",
        "--overwrite",
    ]);
    assert_eq!(code, 0, "{err}");
    let expected: Vec<f32> = raw_before
        .iter()
        .map(|v| f32::from(u8::from(*v > 200.0)))
        .collect();
    assert_eq!(values(&out.join("mask/s0")), expected);
}

#[test]
fn a_prediction_is_resumed_only_by_the_same_prediction() {
    let dir = common::trained_quick_project();
    let p = dir.path();
    // A copy of the raw data: the same values at another path.
    let copy = p.join("copy.zarr");
    common::copy_dir(&p.join("data/synthetic.zarr/raw"), &copy.join("raw"));
    std::fs::write(copy.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    let copy_raw = copy.join("raw");

    let raw = p.join("data/synthetic.zarr/raw");
    let out = p.join("out.zarr");
    let predict = |input: &Path, dataset: &str, extra: &[&str]| {
        common::predict_quick(p, input, (&out, dataset), extra)
    };
    let (code, v, err) = predict(&raw, "whole", &[]);
    assert_eq!(code, 0, "{err}");
    let blocks = v["blocks"].as_u64().unwrap();
    assert!(blocks >= 4, "{v}");
    let whole = values(&out.join("whole"));
    let attrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("whole/s0/.zattrs")).unwrap()).unwrap();
    let record = &attrs["segno_prediction"]["provenance"];
    assert_eq!(record["run"], "quick");
    assert_eq!(record["iteration"], 4);
    assert_eq!(record["checkpoint_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(record["segno_version"], env!("CARGO_PKG_VERSION"));
    assert!(record["input"]
        .as_str()
        .unwrap()
        .ends_with("synthetic.zarr/raw"));

    // Interrupted after one block, then re-run otherwise: each difference is named and
    // nothing is written.
    let (code, _, err) = predict(&raw, "part", &[]);
    assert_eq!(code, 0, "{err}");
    common::interrupt_job(&out.join("part"), 1);
    let log_before = common::done_blocks(&out.join("part"));
    // A smaller region: the whole prediction's less 8 nm at the end of each axis.
    let roi = segno::array::open(&out.join("whole")).unwrap().info().roi;
    let smaller = format!(
        "[{}]",
        (0..3)
            .map(|a| format!("{}:{}", roi.begin()[a], roi.end()[a] - 8))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: [(&Path, &[&str], &[&str]); 3] = [
        (
            &raw,
            &["--iteration", "2"],
            &["iteration: recorded 4, now 2", "checkpoint_sha256"],
        ),
        (&copy_raw, &[], &["input: recorded", "copy.zarr/raw"]),
        (&raw, &["--roi", &smaller], &["region: recorded"]),
    ];
    for (input, extra, named) in cases {
        let (code, _, err) = predict(input, "part", extra);
        assert_eq!(code, 4, "{extra:?}: {err}");
        assert!(
            err.contains("an unfinished prediction made otherwise"),
            "{err}"
        );
        for n in named {
            assert!(err.contains(n), "{n:?} not in {err}");
        }
        assert_eq!(common::done_blocks(&out.join("part")), log_before);
    }
    // The same input with other metadata is another input.
    let mut zattrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("raw/s0/.zattrs")).unwrap()).unwrap();
    let (code, _, err) = predict(&copy_raw, "copy", &[]);
    assert_eq!(code, 0, "{err}");
    common::interrupt_job(&out.join("copy"), 1);
    zattrs["note"] = serde_json::json!("replaced by another volume");
    std::fs::write(
        copy.join("raw/s0/.zattrs"),
        serde_json::to_vec(&zattrs).unwrap(),
    )
    .unwrap();
    let (code, _, err) = predict(&copy_raw, "copy", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("input_identity: recorded"), "{err}");

    // The same prediction resumes: only the missing blocks, and the result equals the
    // uninterrupted one.
    let (code, v, err) = predict(&raw, "part", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["skipped"], 1, "{v}");
    assert_eq!(values(&out.join("part")), whole);
    // Finished: refused without --overwrite.
    let (code, _, err) = predict(&raw, "part", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("a finished prediction of iteration 4"),
        "{err}"
    );

    // Chunks and compression as asked: the same values, stored otherwise.
    let block: Vec<u64> = record["parameters"]["output_shape_voxels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // The largest proper divisor of each axis of the block (the block when it is prime).
    let divisor = |b: u64| {
        (2..=b)
            .find(|d| b.is_multiple_of(*d))
            .map_or(b, |d| b / d)
            .max(1)
    };
    let chunk: Vec<String> = block.iter().map(|b| divisor(*b).to_string()).collect();
    let (code, _, err) = predict(
        &raw,
        "gzip",
        &["--chunk", &chunk.join(","), "--compression", "gzip"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&out.join("gzip")), whole);
    let zarray = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path.join("s0/.zarray")).unwrap()).unwrap()
    };
    let meta = zarray(&out.join("gzip"));
    let chunks: Vec<String> = meta["chunks"].as_array().unwrap()[1..]
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(chunks, chunk);
    assert_eq!(meta["compressor"]["id"], "gzip");
    // A chunk that does not divide the block is refused, naming both.
    let odd: Vec<String> = block.iter().map(|b| (b + 1).to_string()).collect();
    let (code, _, err) = predict(&raw, "odd", &["--chunk", &odd.join(",")]);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{block:?}")), "{err}");
    assert!(!out.join("odd").exists());
    // Post-processed outputs: the compression asked for, the prediction's record.
    let (code, _, err) = segno(&[
        "post-process",
        "--input",
        s(&out.join("whole")),
        "--output",
        s(&out),
        "--dataset",
        "zstd",
        "--compression",
        "blosc-zstd",
    ]);
    assert_eq!(code, 0, "{err}");
    let meta = zarray(&out.join("zstd"));
    assert_eq!(meta["compressor"]["cname"], "zstd");
    let attrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("zstd/s0/.zattrs")).unwrap()).unwrap();
    let post = &attrs["segno_post_process"];
    assert_eq!(post["segno_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(post["prediction_provenance"]["run"], "quick");
    assert_eq!(post["prediction_provenance"]["iteration"], 4);
    assert_eq!(post["threshold"], 0.0);
}

#[test]
fn files_get_the_users_umask_and_a_read_only_project_is_never_written() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let configs = Project::open(p).unwrap().configs();
    for name in ["shared", "refused"] {
        let run = common::tiny_run(name, 2, 2, 0.05, common::demo_raw(0.0, 255.0));
        configs.store(&AnyConfig::Run(Box::new(run))).unwrap();
    }
    // `segno train` under umask 027: every file it writes is 0640 (group-readable).
    let bin = assert_cmd::cargo::cargo_bin("segno");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 027 && exec \"$0\" \"$@\""])
        .arg(&bin)
        .args([
            "train",
            "-r",
            "shared",
            "--no-validation",
            "--device",
            "cpu",
            "-p",
        ])
        .arg(p)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = p.join("shared");
    for file in [
        RunDir::new(p, "shared").training_stats(),
        RunDir::from_dir(&run_dir).status_file(),
        RunDir::from_dir(&run_dir).checkpoint(2),
        run_dir.join("run.json"),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{} is {mode:o}", file.display());
    }

    // A project marked read-only: `train` writes nothing, even as root, and says why.
    let listing = |p: &Path| {
        let mut v: Vec<_> = common::walk_files(p);
        v.sort();
        v
    };
    let before = listing(p);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (code, _, err) = segno(&[
        "train",
        "-r",
        "refused",
        "--no-validation",
        "--device",
        "cpu",
        "-p",
        s(p),
    ]);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("is read-only: nothing was written"), "{err}");
    assert_eq!(listing(p), before);
    // So does writing an array into it.
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (code, _, err) = segno(&[
        "post-process",
        "--input",
        s(&p.join("data/synthetic.zarr/raw/s0")),
        "--output",
        s(&p.join("new.zarr")),
        "--dataset",
        "mask",
    ]);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("is marked read-only: nothing was written"),
        "{err}"
    );
    assert_eq!(listing(p), before);
}

#[test]
fn a_lower_precision_reports_its_difference_from_float32_and_is_recorded() {
    let dir = common::trained_quick_project();
    let p = dir.path();
    let raw = p.join("data/synthetic.zarr/raw");
    let out = p.join("out.zarr");
    let predict =
        |dataset: &str, extra: &[&str]| common::predict_quick(p, &raw, (&out, dataset), extra);
    let (code, full, err) = predict("f32", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(full["precision"].is_null(), "{full}");
    let (code, low, err) = predict("bf16", &["--precision", "bfloat16"]);
    assert_eq!(code, 0, "{err}");
    // Measured on the run's one validation crop: a real, small difference.
    let check = &low["precision"];
    assert_eq!(check["precision"], "bfloat16");
    assert_eq!(check["crops"], 1);
    assert!(check["values"].as_u64().unwrap() > 1000, "{check}");
    let measured = check["max_abs_difference"].as_f64().unwrap();
    assert!(measured > 0.0 && measured < 0.25, "{check}");
    // float16 keeps 10 bits of mantissa to bfloat16's 7: closer to float32.
    let (code, half, err) = predict("f16", &["--precision", "float16"]);
    assert_eq!(code, 0, "{err}");
    let half = half["precision"]["max_abs_difference"].as_f64().unwrap();
    assert!(
        half > 0.0 && half < measured,
        "float16 {half}, bfloat16 {measured}"
    );
    // Stored as float16: exactly float32's values rounded to the nearest half, which
    // post-processing reads back.
    let (code, _, err) = predict("stored_f16", &["--output-dtype", "float16"]);
    assert_eq!(code, 0, "{err}");
    let zarray: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stored_f16/s0/.zarray")).unwrap()).unwrap();
    assert_eq!(zarray["dtype"], "<f2");
    let full_values = values(&out.join("f32"));
    let rounded: Vec<f32> = full_values
        .iter()
        .map(|v| half::f16::from_f32(*v).to_f32())
        .collect();
    assert_eq!(values(&out.join("stored_f16")), rounded);
    assert_ne!(rounded, full_values);
    let (code, post, err) = segno(&[
        "post-process",
        "--input",
        s(&out.join("stored_f16")),
        "--output",
        s(&out),
        "--dataset",
        "from_f16",
    ]);
    assert_eq!(code, 0, "{err}");
    let above = rounded.iter().filter(|v| **v > 0.0).count() as u64;
    assert_eq!(post["foreground_voxels"][0].as_u64(), Some(above));
    // The prediction itself differs from float32's by the same order.
    let (a, b) = (values(&out.join("f32")), values(&out.join("bf16")));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst > 0.0 && worst < 0.25, "{worst}");
    // Recorded, and a float32 run cannot continue it.
    let attrs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bf16/s0/.zattrs")).unwrap()).unwrap();
    assert_eq!(
        attrs["segno_prediction"]["provenance"]["parameters"]["precision"],
        "bfloat16"
    );
    common::interrupt_job(&out.join("bf16"), 1);
    let (code, _, err) = predict("bf16", &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("precision"), "{err}");
    let (code, _, err) = predict("bf16", &["--precision", "bfloat16"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&out.join("bf16")), b);
}
