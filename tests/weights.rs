//! PyTorch/DaCapo checkpoints load into Segno networks and give PyTorch's outputs: the
//! fixtures in tests/fixtures/dacapo were written by DaCapo 0.3.5 itself
//! (scripts/make_dacapo_fixture.py) with a fixed input and its output.

use std::path::{Path, PathBuf};

use segno::config::*;
use segno::geometry::Coordinate;
use segno::nn::Model;
use segno::store::layout::RunDir;
use segno::weights::{self, torch_pickle};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dacapo")
        .join(name)
}

fn unet(
    input: &[i64],
    downsample: &[i64],
    constant_upsample: bool,
    attention: bool,
) -> ArchitectureConfig {
    ArchitectureConfig::CnnectomeUnet(CNNectomeUNetConfig {
        name: "fixture".into(),
        input_shape: Coordinate::new(input).unwrap(),
        fmaps_out: 3,
        fmaps_in: 1,
        num_fmaps: 2,
        fmap_inc_factor: 2,
        downsample_factors: vec![Coordinate::new(downsample).unwrap()],
        kernel_size_down: None,
        kernel_size_up: None,
        eval_shape_increase: None,
        upsample_factors: None,
        constant_upsample,
        padding: "valid".into(),
        use_attention: attention,
        batch_norm: false,
    })
}

fn task() -> TaskConfig {
    TaskConfig::Distance(DistanceTaskConfig {
        name: "fixture_distance".into(),
        channels: vec!["a".into(), "b".into()],
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 1.0,
        mask_distances: true,
        clipmin: 0.05,
        clipmax: 0.95,
    })
}

/// Loads `checkpoint` into a network of `arch` and compares its output on the fixture's
/// input with PyTorch's; returns the largest absolute difference.
fn max_difference(arch: &ArchitectureConfig, checkpoint: &str, io: &str) -> f32 {
    tch::set_num_threads(1);
    let head = segno::train::run::head_for(&task()).unwrap();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = Model::new(&vs.root(), arch, &head).unwrap();
    let state = weights::read_state_dict(&fixture(checkpoint)).unwrap();
    let report = weights::load_into(&vs, &state, &fixture(checkpoint), false).unwrap();
    assert_eq!(report.loaded, vs.variables().len());
    assert!(
        report.kept.is_empty() && report.unused.is_empty(),
        "{report:?}"
    );
    let (x, want) = fixture_io(io);
    let y = tch::no_grad(|| model.forward_t(&x, false)).unwrap();
    assert_eq!(y.size(), want.size());
    (y - want).abs().max().double_value(&[]) as f32
}

#[test]
fn a_dacapo_3d_checkpoint_gives_pytorchs_output() {
    let d = max_difference(
        &unet(&[20, 20, 20], &[2, 2, 2], true, false),
        "unet3d.pt",
        "unet3d_io.pt",
    );
    assert!(d < 1e-5, "max |segno − pytorch| = {d}");
}

#[test]
fn a_dacapo_2d_checkpoint_with_attention_and_transposed_upsampling_gives_pytorchs_output() {
    let d = max_difference(
        &unet(&[36, 28], &[2, 2], false, true),
        "unet2d.pt",
        "unet2d_io.pt",
    );
    assert!(d < 1e-5, "max |segno − pytorch| = {d}");
}

fn segno(args: &[&str], project: &Path) -> std::process::Output {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"))
        .args(args)
        .arg("-p")
        .arg(project)
        .output()
        .unwrap()
}

/// Runs `segno ARGS --json -p PROJECT`, which must succeed, and parses its output.
fn segno_json(args: &[&str], project: &Path) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = segno(&all, project);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The fixed input and PyTorch's output stored in an `_io.pt` fixture.
fn fixture_io(name: &str) -> (tch::Tensor, tch::Tensor) {
    let io = torch_pickle::into_state_dict(torch_pickle::read(&fixture(name)).unwrap()).unwrap();
    let get = |key: &str| {
        let t = &io.iter().find(|(k, _)| k == key).unwrap().1;
        let shape: Vec<i64> = t.shape.iter().map(|n| *n as i64).collect();
        tch::Tensor::from_slice(&t.to_f32()).view(shape.as_slice())
    };
    (get("input"), get("output"))
}

/// A project holding a run with the 3D fixture's network and `channels` classes.
fn project_with_run(dir: &Path, name: &str, channels: &[&str]) {
    let mut run = segno::demo::project::demo_run(10, 10);
    run.name = name.into();
    run.architecture_config = unet(&[20, 20, 20], &[2, 2, 2], true, false);
    if let TaskConfig::Distance(t) = &mut run.task_config {
        t.channels = channels.iter().map(|c| c.to_string()).collect();
    }
    segno::store::Project::open(dir)
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run)))
        .unwrap();
}

#[test]
fn segno_import_weights_makes_a_checkpoint_that_predicts_like_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    project_with_run(dir.path(), "imported", &["a", "b"]);
    let w = fixture("unet3d.pt");
    let w = w.to_str().unwrap();
    let v = segno_json(
        &["import-weights", "-r", "imported", "--weights", w],
        dir.path(),
    );
    assert_eq!(v["loaded"], 16);
    assert_eq!(v["iteration"], 0);
    // The checkpoint predicts what PyTorch predicted.
    let project = segno::store::Project::open(dir.path()).unwrap();
    let run = match project
        .configs()
        .retrieve(Family::Runs, "imported")
        .unwrap()
    {
        AnyConfig::Run(r) => *r,
        other => panic!("{other:?}"),
    };
    let model = segno::blockwise::load_model(
        dir.path(),
        &run,
        &segno::blockwise::Checkpoint::Latest,
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.iteration, 0);
    let (x, want) = fixture_io("unet3d_io.pt");
    let y = tch::no_grad(|| model.model.forward_t(&x, false)).unwrap();
    let d = (y - want).abs().max().double_value(&[]);
    assert!(d < 1e-5, "{d}");
    // A second import does not replace it without --overwrite.
    let again = segno(
        &["import-weights", "-r", "imported", "--weights", w],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
}

#[test]
fn a_checkpoint_with_another_head_loads_partially_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    project_with_run(dir.path(), "three", &["a", "b", "c"]);
    let w = fixture("unet3d.pt");
    let w = w.to_str().unwrap();
    // Strict: refused, naming the head's shapes; nothing written.
    let out = segno(
        &["import-weights", "-r", "three", "--weights", w],
        dir.path(),
    );
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("`prediction_head.weight` has shape [2, 3, 1, 1, 1] in the file, [3, 3, 1, 1, 1] in the network"),
        "{msg}"
    );
    assert!(!dir.path().join("three/checkpoints").exists());
    // Partial: the backbone is loaded, the head keeps its initialisation.
    let v = segno_json(
        &["import-weights", "-r", "three", "--weights", w, "--partial"],
        dir.path(),
    );
    assert_eq!(v["loaded"], 14);
    assert_eq!(
        v["kept_initialised"],
        serde_json::json!(["prediction_head.bias", "prediction_head.weight"])
    );
    // Not a checkpoint at all: a clear error.
    let bad = dir.path().join("bad.pt");
    std::fs::write(&bad, b"not a zip file").unwrap();
    let out = segno(
        &[
            "import-weights",
            "-r",
            "three",
            "--weights",
            bad.to_str().unwrap(),
            "--overwrite",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("bad.pt"), "{msg}");
}

#[test]
fn a_dacapo_run_directory_is_imported_in_place_with_its_optimizer_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project_with_run(p, "dacapo_run", &["a", "b"]);
    // The run directory as DaCapo's file stores left it.
    let iterations = p.join("dacapo_run/checkpoints/iterations");
    std::fs::create_dir_all(&iterations).unwrap();
    std::fs::copy(fixture("unet3d.pt"), iterations.join("1")).unwrap();
    for kind in ["training_stats", "validation_scores"] {
        std::fs::create_dir_all(p.join("stats").join(kind)).unwrap();
        std::fs::copy(fixture(kind), p.join("stats").join(kind).join("dacapo_run")).unwrap();
    }
    let v = segno_json(&["import-run", "-r", "dacapo_run"], p);
    assert_eq!(v["imported"][0]["iteration"], 1);
    assert_eq!(v["imported"][0]["optimizer"], true);
    assert_eq!(v["training_stats"], 3);
    assert_eq!(v["validation_scores_found"], 1);
    assert!(v["notes"][0]
        .as_str()
        .unwrap()
        .contains("segno validate -r dacapo_run"));
    // DaCapo's files are kept.
    assert!(iterations.join("1").is_file());
    // The checkpoint predicts what PyTorch predicted, and carries DaCapo's RAdam state.
    let project = segno::store::Project::open(p).unwrap();
    let AnyConfig::Run(run) = project
        .configs()
        .retrieve(Family::Runs, "dacapo_run")
        .unwrap()
    else {
        panic!("not a run")
    };
    let model = segno::blockwise::load_model(
        p,
        &run,
        &segno::blockwise::Checkpoint::Latest,
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.iteration, 1);
    let (x, want) = fixture_io("unet3d_io.pt");
    let y = tch::no_grad(|| model.model.forward_t(&x, false)).unwrap();
    assert!((y - want).abs().max().double_value(&[]) < 1e-5);
    let saved: std::collections::BTreeMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(iterations.join("1.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(saved["optimizer.step"].int64_value(&[0]), 1);
    let dacapo = torch_pickle::read(&fixture("unet3d.pt")).unwrap();
    let root = match &dacapo {
        torch_pickle::Value::Object { state: Some(s), .. } => s.as_ref(),
        other => other,
    };
    // Parameter 0 in DaCapo's order is the first U-Net convolution's weight.
    let first = root
        .get("optimizer")
        .unwrap()
        .get("state")
        .unwrap()
        .as_dict()
        .unwrap()[0]
        .1
        .get("exp_avg")
        .unwrap()
        .as_tensor()
        .unwrap()
        .to_f32();
    let names = torch_pickle::state_dict(&dacapo).unwrap();
    let name = segno::weights::segno_name(&names[0].0);
    let ours =
        Vec::<f32>::try_from(saved[&format!("optimizer.exp_avg.{name}")].flatten(0, -1)).unwrap();
    assert_eq!(ours, first);
    assert!(first.iter().any(|v| *v != 0.0));
    // Training statistics, as Segno stores them.
    let stats =
        segno::store::stats::read_training_stats(&RunDir::new(p, "dacapo_run").training_stats())
            .unwrap();
    let losses: Vec<f64> = stats.iter().map(|s| s.loss).collect();
    assert_eq!(losses, vec![0.75, 0.5, 0.375]);
    // Importing again keeps what is there.
    let again = segno_json(&["import-run", "-r", "dacapo_run"], p);
    assert_eq!(again["kept"], serde_json::json!([1]));
    assert_eq!(again["imported"], serde_json::json!([]));
}

#[test]
fn an_exported_checkpoint_has_dacapos_layout_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    project_with_run(p, "out", &["a", "b"]);
    let w = fixture("unet3d.pt");
    segno_json(
        &[
            "import-weights",
            "-r",
            "out",
            "--weights",
            w.to_str().unwrap(),
            "--iteration",
            "7",
        ],
        p,
    );
    let file = p.join("exported_7");
    let v = segno_json(
        &[
            "export-weights",
            "-r",
            "out",
            "--output",
            file.to_str().unwrap(),
        ],
        p,
    );
    assert_eq!(v["iteration"], 7);
    assert_eq!(v["tensors"], 16);
    assert_eq!(v["parameters"], 16);
    // Every tensor of DaCapo's own checkpoint, under every one of its names, same values.
    let ours = torch_pickle::state_dict(&torch_pickle::read(&file).unwrap()).unwrap();
    let theirs = torch_pickle::state_dict(&torch_pickle::read(&w).unwrap()).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (name, t) in &theirs {
        let o = &ours
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}"))
            .1;
        assert_eq!(o.shape, t.shape, "{name}");
        assert_eq!(o.to_f32(), t.to_f32(), "{name}");
    }
    let exported = torch_pickle::read(&file).unwrap();
    let group = &exported
        .get("optimizer")
        .unwrap()
        .get("param_groups")
        .unwrap()
        .as_seq()
        .unwrap()[0];
    assert_eq!(group.get("params").unwrap().as_seq().unwrap().len(), 16);
    assert_eq!(group.get("lr").unwrap().as_float(), Some(run_lr(p)));
    // DaCapo's own weights store loads it into its model and optimizer and predicts what
    // PyTorch predicted with the original checkpoint (needs the DaCapo venv).
    let python = std::env::var("DACAPO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join("segno-peer/.venv/bin/python")
        });
    if python.is_file() {
        let check = std::process::Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dacapo_load_check.py"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    } else {
        eprintln!(
            "skipped loading with DaCapo: no DaCapo venv at {}",
            python.display()
        );
    }
    // An existing file is not replaced without --overwrite.
    let again = segno(
        &[
            "export-weights",
            "-r",
            "out",
            "--output",
            file.to_str().unwrap(),
        ],
        p,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
}

fn run_lr(p: &Path) -> f64 {
    let project = segno::store::Project::open(p).unwrap();
    let AnyConfig::Run(run) = project.configs().retrieve(Family::Runs, "out").unwrap() else {
        panic!("not a run")
    };
    match run.trainer_config {
        TrainerConfig::Gunpowder(t) => t.learning_rate,
        _ => panic!("not gunpowder"),
    }
}
