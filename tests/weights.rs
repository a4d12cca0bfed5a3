//! PyTorch/DaCapo checkpoints load into Segno networks and give PyTorch's outputs: the
//! fixtures in tests/fixtures/dacapo were written by DaCapo 0.3.5 itself
//! (scripts/make_dacapo_fixture.py) with a fixed input and its output.

use std::path::{Path, PathBuf};

use segno::config::*;
use segno::geometry::Coordinate;
use segno::nn::Model;
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
        &segno::blockwise::Which::Latest,
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
