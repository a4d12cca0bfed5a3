//! Bad configs that look fine on their own are refused by `segno config validate` and
//! `segno config import`, naming the field and the value; settings that are accepted but
//! have no effect (and types Segno does not compute with) are shown as warnings.

mod common;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// `segno config VERB FILE… --project DIR --json`: the exit code and the report.
fn config(verb: &str, project: &Path, files: &[&Path]) -> (i32, Vec<Value>) {
    let out = Command::cargo_bin("segno")
        .unwrap()
        .current_dir(project)
        .args(["config", verb])
        .args(files)
        .arg("--project")
        .arg(project)
        .arg("--json")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        report.as_array().cloned().unwrap_or_default(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The demo's run config as YAML, with `edit` applied to its document.
fn run_yaml(edit: impl FnOnce(&mut Value)) -> String {
    let run = segno::demo::project::demo_run(10, 10);
    let mut doc = segno::config::AnyConfig::Run(Box::new(run)).to_document();
    edit(&mut doc);
    segno::config::to_yaml(&doc)
}

#[test]
fn runs_and_tasks_that_do_not_fit_the_project_are_refused_by_validate_and_import() {
    let dir = common::demo_data_project(64);
    let files = tempfile::tempdir().unwrap();
    let run_name = "demo_mito_er_10";
    // A 2D network on the 3D demo data.
    let flat = write(
        files.path(),
        &format!("{run_name}.yaml"),
        &run_yaml(|d| {
            let a = &mut d["architecture_config"];
            a["input_shape"] = serde_json::json!([132, 132]);
            a["downsample_factors"] = serde_json::json!([[2, 2]]);
            a["_eval_shape_increase"] = Value::Null;
            a["kernel_size_down"] = Value::Null;
            a["kernel_size_up"] = Value::Null;
        }),
    );
    for verb in ["validate", "import"] {
        let (code, report) = config(verb, dir.path(), &[&flat]);
        assert_eq!(code, 1, "{report:?}");
        let error = report[0]["error"].as_str().unwrap();
        assert!(
            error.contains("architecture_config.input_shape")
                && error.contains("has 2 axes")
                && error.contains("3 spatial axes"),
            "{error}"
        );
    }
    assert!(!dir
        .path()
        .join("configs/runs")
        .join(format!("{run_name}.yaml"))
        .exists());

    // A file whose name differs from the config's `name`.
    let renamed = write(files.path(), "other_name.yaml", &run_yaml(|_| {}));
    for verb in ["validate", "import"] {
        let (code, report) = config(verb, dir.path(), &[&renamed]);
        assert_eq!(code, 1, "{report:?}");
        let error = report[0]["error"].as_str().unwrap();
        assert!(
            error.contains("name: `demo_mito_er_10` differs from the file name `other_name.yaml`"),
            "{error}"
        );
    }
    assert!(!dir.path().join("configs/runs").exists());

    // A pretrained task whose weights file does not exist.
    let task = write(
        files.path(),
        "pretrained.yaml",
        "__type__: PretrainedTaskConfig\nname: pretrained\nweights: checkpoints/missing.pt\nsub_task_config:\n  __type__: DistanceTaskConfig\n  name: d\n  channels: [mito]\n  clip_distance: 40.0\n  tol_distance: 40.0\n  scale_factor: 80.0\n",
    );
    for verb in ["validate", "import"] {
        let (code, report) = config(verb, dir.path(), &[&task]);
        assert_eq!(code, 1, "{report:?}");
        let error = report[0]["error"].as_str().unwrap();
        assert!(
            error.contains("weights: no such file") && error.contains("missing.pt"),
            "{error}"
        );
    }
    // Once the file is there, the task is stored.
    std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
    std::fs::write(dir.path().join("checkpoints/missing.pt"), b"x").unwrap();
    let (code, report) = config("import", dir.path(), &[&task]);
    assert_eq!(code, 0, "{report:?}");
    // The demo run itself fits the demo data.
    let good = write(files.path(), &format!("{run_name}.yaml"), &run_yaml(|_| {}));
    let (code, report) = config("validate", dir.path(), &[&good]);
    assert_eq!(code, 0, "{report:?}");
}

#[test]
fn malformed_values_are_named_with_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let unet = write(
        dir.path(),
        "u.yaml",
        "__type__: CNNectomeUNetConfig\nname: u\ninput_shape: [132, 132, 132]\nfmaps_out: 12\nfmaps_in: 1\nnum_fmaps: 12\nfmap_inc_factor: 6\ndownsample_factors: []\n",
    );
    let float = write(
        dir.path(),
        "f.yaml",
        "__type__: CNNectomeUNetConfig\nname: f\ninput_shape: !!python/tuple [132, 132.5, 132]\nfmaps_out: 12\nfmaps_in: 1\nnum_fmaps: 12\nfmap_inc_factor: 6\ndownsample_factors: [[2, 2, 2]]\n",
    );
    let object = write(
        dir.path(),
        "o.yaml",
        "__type__: DistanceTaskConfig\nname: o\nchannels: [mito]\nclip_distance: !!python/object/apply:numpy.float64 [40.0]\ntol_distance: 40.0\nscale_factor: 80.0\n",
    );
    let (code, report) = config("validate", dir.path(), &[&unet, &float, &object]);
    assert_eq!(code, 1);
    let errors: Vec<&str> = report
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(
        errors[0].contains("downsample_factors: needs at least one downsampling factor"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("input_shape") && errors[1].contains("element 1 is 132.5"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("line 4")
            && errors[2].contains("`!!python/object/apply:numpy.float64` is not supported"),
        "{}",
        errors[2]
    );
}

#[test]
fn settings_without_effect_and_refused_types_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let options = write(
        dir.path(),
        "dacapo.yaml",
        "type: files\nruns_base_dir: /tmp/runs\nmongo_db_host: mongodb://somewhere\ncompute_context:\n  type: Bsub\n  config:\n    queue: gpu_a100\n    distribute_workers: false\n",
    );
    let trainer = write(
        dir.path(),
        "dummy.yaml",
        "__type__: DummyTrainerConfig\nname: dummy\nmirror_augment: true\n",
    );
    let (code, report) = config("validate", dir.path(), &[&options, &trainer]);
    assert_eq!(code, 0, "{report:?}");
    let warnings = |i: usize| -> Vec<String> {
        report[i]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    let w = warnings(0);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with(
            "mongo_db_host: set to the string \"mongodb://somewhere\", but has no effect"
        ),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("compute_context.config.distribute_workers: set to the boolean false"),
        "{w:?}"
    );
    let w = warnings(1);
    assert!(
        w.len() == 1 && w[0].starts_with("DummyTrainerConfig: accepted for compatibility, but Segno trains with the gunpowder trainer only"),
        "{w:?}"
    );
    // `config describe` says so too.
    let out = Command::cargo_bin("segno")
        .unwrap()
        .args(["config", "describe", "LocalTorch"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("No effect in Segno (accepted for compatibility): DaCapo declares it without enforcing it"),
        "{text}"
    );
}

#[test]
fn the_options_files_local_device_is_what_auto_means() {
    let dir = common::demo_data_project(64);
    let run = segno::demo::project::demo_run(2, 2);
    segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .store(&segno::config::AnyConfig::Run(Box::new(run.clone())))
        .unwrap();
    // This machine has no GPU: an options file asking for CUDA makes `auto` fail, naming it.
    let options = write(
        dir.path(),
        "dacapo.yaml",
        "type: files\nruns_base_dir: .\ncompute_context:\n  type: LocalTorch\n  config:\n    device: cuda\n",
    );
    let out = Command::cargo_bin("segno")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("DACAPO_OPTIONS_FILE")
        .args(["train", "-r", &run.name])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("device \"cuda\" was requested"), "{err}");
    // `--device cpu` overrides it; the Bsub context gives LSF submissions their defaults.
    std::fs::write(
        &options,
        "type: files\nruns_base_dir: .\ncompute_context:\n  type: Bsub\n  config:\n    queue: gpu_a100\n    num_gpus: 2\n    num_cpus: 12\n    billing: cellmap\n",
    )
    .unwrap();
    let doc =
        segno::config::parse_document(&std::fs::read_to_string(&options).unwrap(), "o").unwrap();
    let parsed: segno::config::OptionsConfig = segno::config::decode_document(&doc, "o").unwrap();
    let segno::config::ComputeContextConfig::Bsub(b) = &parsed.compute_context else {
        panic!("Bsub expected");
    };
    let request = segno::cluster::JobRequest::from_bsub(b);
    assert_eq!(
        (
            request.queue.as_str(),
            request.gpus,
            request.cpus,
            request.account.as_str()
        ),
        ("gpu_a100", 2, 12, "cellmap")
    );
}

#[test]
fn validate_applies_the_name_rules_of_import_and_quotes_long_names_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let task = |name: &str| {
        format!(
            "__type__: DistanceTaskConfig\nname: {name}\nchannels: [mito]\nclip_distance: 40.0\ntol_distance: 40.0\nscale_factor: 80.0\n"
        )
    };
    let slash = write(dir.path(), "s.yaml", &task("\"a/b\""));
    let long_name = "x".repeat(2_000_000);
    let long = write(dir.path(), "l.yaml", &task(&long_name));
    {
        let verb = "validate";
        let (code, report) = config(verb, dir.path(), &[&slash, &long]);
        assert_eq!(code, 1, "{verb}");
        let slash_error = report[0]["error"].as_str().unwrap();
        assert!(
            slash_error.contains("must not contain /"),
            "{verb}: {slash_error}"
        );
        let long_error = report[1]["error"].as_str().unwrap();
        assert!(
            long_error.contains("at most 200 bytes") && long_error.contains("(2000000 bytes)"),
            "{verb}: {}",
            &long_error[..long_error.len().min(500)]
        );
        // The report quotes the name briefly, not 2 MB of it (twice).
        let text = serde_json::to_string(&report[1]).unwrap();
        assert!(text.len() < 2_000, "{verb}: {} bytes", text.len());
    }
}

#[test]
fn iteration_numbers_beyond_two_to_the_53_are_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A run config asking for more iterations than statistics and scores hold exactly.
    let run = write(
        dir.path(),
        "huge.yaml",
        &run_yaml(|d| d["num_iterations"] = Value::from(u64::MAX)),
    );
    let (code, report) = config("validate", dir.path(), &[&run]);
    assert_eq!(code, 1, "{report:?}");
    let error = report[0]["error"].as_str().unwrap();
    assert!(
        error.contains("num_iterations")
            && error.contains("18446744073709551615 is beyond the limit of 2^53"),
        "{error}"
    );

    // `--iteration 2^64-1` (and 2^53+1) on the command line: a usage error naming the limit,
    // before any run is looked up.
    for (command, value, rest) in [
        (
            "predict",
            "18446744073709551615",
            &["--output", "o.zarr", "--input", "i.zarr"][..],
        ),
        ("validate", "9007199254740993", &[][..]),
        (
            "export-weights",
            "18446744073709551615",
            &["--output", "w.pt"][..],
        ),
    ] {
        let out = Command::cargo_bin("segno")
            .unwrap()
            .current_dir(dir.path())
            .args([command, "--run", "r", "--iteration", value])
            .args(rest)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{value} is beyond the limit of 2^53 = 9007199254740992 iterations"
            )),
            "{command}: {stderr}"
        );
    }
    // 2^53 itself is accepted as a number (the run is then looked up and is missing).
    let out = Command::cargo_bin("segno")
        .unwrap()
        .current_dir(dir.path())
        .args(["validate", "--run", "r", "--iteration", "9007199254740992"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("beyond the limit"), "{stderr}");
}
