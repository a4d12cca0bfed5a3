//! Every task trains, validates and stores scores and outputs of the right kind on the
//! synthetic demo data: inner distances on cell instances, hot distances and one-hot
//! classes on mitochondria, and the dummy task.

use std::path::Path;

mod common;

use segno::array::{self, DataType};
use segno::config::*;
use segno::demo::project::{demo_run, zarr};
use segno::demo::{self, DemoOptions};
use segno::geometry::Coordinate;
use segno::store::layout::RunDir;
use segno::task::predictor::Predictor;
use segno::train::{self, TrainOptions};

fn mito(crop: &str) -> ArrayConfig {
    ArrayConfig::Binarize(BinarizeArrayConfig {
        name: format!("{crop}_mito"),
        source_array_config: Box::new(zarr("mito", &format!("labels/{crop}/mito"))),
        groupings: vec![("mito".into(), vec![])],
        background: 0,
    })
}

fn cells(crop: &str) -> ArrayConfig {
    zarr("cells", &format!("labels/{crop}/cells"))
}

/// The demo run with a smaller network, 4 iterations validated every 2, and `task`
/// learning from the ground truth `gt(crop)`.
fn run_config(task: TaskConfig, gt: fn(&str) -> ArrayConfig) -> RunConfig {
    let mut run = demo_run(4, 2);
    run.name = format!("task_{}", task.name());
    run.task_config = task;
    if let ArchitectureConfig::CnnectomeUnet(u) = &mut run.architecture_config {
        u.input_shape = Coordinate::from([44, 44, 44]);
        u.num_fmaps = 2;
        u.fmaps_out = 4;
        u.eval_shape_increase = None;
    }
    if let TrainerConfig::Gunpowder(t) = &mut run.trainer_config {
        t.learning_rate = 0.01;
    }
    if let DataSplitConfig::TrainValidate(split) = &mut run.datasplit_config {
        let datasets = split
            .train_configs
            .iter_mut()
            .zip(["crop1"])
            .chain(split.validate_configs.iter_mut().zip(["crop2"]));
        for (d, crop) in datasets {
            if let DatasetConfig::RawGt(r) = d {
                r.gt_config = Some(gt(crop));
            }
        }
    }
    run
}

/// A temporary project with the 64³ synthetic data.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    demo::generate(
        dir.path(),
        &DemoOptions {
            seed: 1,
            size: 64,
            overwrite: false,
        },
    )
    .unwrap();
    dir
}

/// Trains `task` for 4 iterations (validating at 2 and 4) and checks the stored scores and
/// the validation output of the last iteration; returns the output's values.
fn train_and_check(
    task: TaskConfig,
    gt: fn(&str) -> ArrayConfig,
    output_type: DataType,
    output_channels: Option<u64>,
) -> (tempfile::TempDir, RunConfig, Vec<f64>, ndarray::ArrayD<f32>) {
    tch::set_num_threads(1);
    let dir = project();
    let run = run_config(task, gt);
    let predictor = Predictor::from_task(&run.task_config).unwrap();
    let report = train::train_run(
        dir.path(),
        &run,
        TrainOptions {
            seed: Some(3),
            loader_threads: Some(1),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.trained_until, 4);
    assert!(report.last_loss.is_some_and(f64::is_finite));
    assert_eq!(report.validations.len(), 2);
    let last = &report.validations[1];
    assert_eq!(last.criteria, predictor.criteria());
    let grid: Vec<String> = predictor.parameters().iter().map(|p| p.name()).collect();
    assert_eq!(last.parameters, grid);
    // Every criterion of every parameter set was scored.
    assert_eq!(last.scores[0].len(), grid.len());
    assert!(last.scores[0]
        .iter()
        .all(|v| v.len() == last.criteria.len()));
    let output = dir
        .path()
        .join(&run.name)
        .join("validation.zarr/4/synthetic_crop2/output")
        .join(&grid[0]);
    let out = array::open(&output).unwrap();
    assert_eq!(out.info().data_type, output_type);
    let has_channels = out.info().geometry.axes.iter().any(|a| !a.spatial);
    assert_eq!(has_channels.then(|| out.info().channels()), output_channels);
    let gt_roi = array::open(&dir.path().join("data/synthetic.zarr/labels/crop2/mito"))
        .unwrap()
        .info()
        .roi;
    assert_eq!(out.info().roi, gt_roi);
    let values = out.read(&out.info().roi).unwrap().to_f32();
    let first = last.scores[0][0].clone();
    (dir, run, first, values)
}

#[test]
fn inner_distance_trains_on_cell_instances() {
    let task = TaskConfig::InnerDistance(InnerDistanceTaskConfig {
        name: "inner".into(),
        channels: vec!["cells".into()],
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 40.0,
    });
    let (_dir, run, scores, values) = train_and_check(task, cells, DataType::U8, Some(1));
    assert!(values.iter().all(|v| *v == 0.0 || *v == 1.0));
    // F1 is a number in [0, 1] or NaN when nothing was predicted.
    let criteria = Predictor::from_task(&run.task_config).unwrap().criteria();
    let f1 = scores[criteria
        .iter()
        .position(|c| c == "cells__f1_score")
        .unwrap()];
    assert!(f1.is_nan() || (0.0..=1.0).contains(&f1), "{f1}");
}

#[test]
fn hot_distance_outputs_one_channel_per_class() {
    let task = TaskConfig::HotDistance(HotDistanceTaskConfig {
        name: "hot".into(),
        channels: vec!["mito".into()],
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 40.0,
        mask_distances: false,
        kernel_size: None,
    });
    let (_dir, _, _, values) = train_and_check(task, mito, DataType::U8, Some(1));
    assert!(values.iter().all(|v| *v == 0.0 || *v == 1.0));
}

#[test]
fn one_hot_outputs_class_labels() {
    let task = TaskConfig::OneHot(OneHotTaskConfig {
        classes: vec!["background".into(), "mito".into()],
        name: "onehot".into(),
        kernel_size: None,
    });
    let (_dir, _, scores, values) = train_and_check(task, mito, DataType::U64, None);
    assert!(values.iter().all(|v| *v == 0.0 || *v == 1.0));
    assert_eq!(
        scores.len(),
        2 * segno::task::evaluate::BINARY_METRICS.len()
    );
}

#[test]
fn dummy_task_scores_are_deterministic() {
    let task = TaskConfig::Dummy(DummyTaskConfig {
        name: "dummy".into(),
        embedding_dims: 2,
        detection_threshold: 0.5,
    });
    let (_dir, _, scores, values) = train_and_check(task, mito, DataType::U64, None);
    // Parameters id 0 write min_size 1 everywhere; scores are the dummy evaluator's.
    assert!(values.iter().all(|v| *v == 1.0));
    assert_eq!(scores.len(), 2);
    assert!(scores.iter().all(|v| (0.0..1.0).contains(v)));
}

#[test]
fn a_task_that_cannot_read_the_ground_truth_fails_before_training() {
    // Two-channel ground truth for a one-class task.
    let dir = project();
    let task = TaskConfig::InnerDistance(InnerDistanceTaskConfig {
        name: "inner2".into(),
        channels: vec!["a".into(), "b".into()],
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 40.0,
    });
    let run = run_config(task, cells);
    let err = train::train_run(dir.path(), &run, TrainOptions::default())
        .expect_err("mismatching channels are refused")
        .to_string();
    assert!(
        err.contains("1 channel(s), the task needs 2 (a, b)"),
        "{err}"
    );
    assert!(!Path::new(&dir.path().join(&run.name)).exists());
}

#[test]
fn snapshots_hold_the_sample_prediction_and_loss_gradient() {
    tch::set_num_threads(1);
    let dir = project();
    let mut run = run_config(mito_distance("dist"), mito);
    run.num_iterations = 3;
    run.validation_interval = 3;
    if let TrainerConfig::Gunpowder(t) = &mut run.trainer_config {
        t.snapshot_interval = Some(2);
        t.augments.clear();
    }
    train::train_run(dir.path(), &run, TrainOptions::default()).unwrap();
    let snaps = dir.path().join(&run.name).join("snapshot.zarr");
    // Iterations 0 and 2 (counted from 0), not 1.
    assert!(snaps.join("0/volumes/raw").is_dir());
    assert!(snaps.join("2/volumes/raw").is_dir());
    assert!(!snaps.join("1").exists());
    let open = |name: &str| array::open(&snaps.join("2/volumes").join(name)).unwrap();
    let (raw, gt, target, weight, pred, grad) = (
        open("raw"),
        open("gt"),
        open("target"),
        open("weight"),
        open("prediction"),
        open("gradients"),
    );
    // Raw is the network input (44³) around the output patch, at their world positions.
    let out_roi = gt.info().roi;
    assert_eq!(raw.info().shape, vec![44, 44, 44]);
    let context = (raw.info().roi.shape() - out_roi.shape()) / Coordinate::from([2, 2, 2]);
    assert_eq!(raw.info().roi.begin() + context, out_roi.begin());
    for a in [&target, &weight, &pred, &grad] {
        assert_eq!(a.info().roi, out_roi);
        assert_eq!(a.info().channels(), 1);
    }
    // Without augments the ground truth is the dataset's at the patch (zero beyond it).
    let truth = array::open(&dir.path().join("data/synthetic.zarr/labels/crop1/mito"))
        .unwrap()
        .read_filled(&out_roi, 0.0)
        .unwrap()
        .to_labels()
        .unwrap()
        .mapv(|v| u64::from(v != 0));
    let stored = gt.read(&out_roi).unwrap().to_labels().unwrap();
    assert_eq!(stored, truth);
    // DaCapo's MSE: loss = mean(w² (p − t)²), so ∂loss/∂p = 2 w² (p − t) / N.
    let read = |a: &dyn array::ArraySource| a.read(&out_roi).unwrap().to_f32();
    let (t, w, p, g) = (
        read(target.as_ref()),
        read(weight.as_ref()),
        read(pred.as_ref()),
        read(grad.as_ref()),
    );
    let n = t.len() as f32;
    let mut worst = 0.0f32;
    for (((t, w), p), g) in t.iter().zip(&w).zip(&p).zip(&g) {
        let want = 2.0 * w * w * (p - t) / n;
        worst = worst.max((want - g).abs() / want.abs().max(1e-9));
    }
    assert!(worst < 1e-3, "relative gradient error {worst}");
    assert!(g.iter().any(|v| *v != 0.0));
}

#[test]
fn affinities_with_lsds_train_and_segment_cells() {
    let task = common::affinities_task(true);
    let (dir, run, scores, values) = train_and_check(task, cells, DataType::U64, None);
    let predictor = Predictor::from_task(&run.task_config).unwrap();
    assert_eq!(predictor.head().channels, 3 + 10);
    assert_eq!(predictor.criteria(), ["voi_split", "voi_merge", "voi"]);
    // VOI split and merge are non-negative and voi is their mean.
    assert!(scores[0] >= 0.0 && scores[1] >= 0.0);
    assert!((scores[2] - 0.5 * (scores[0] + scores[1])).abs() < 1e-12);
    // Labels are consecutive from 1 (0 is background).
    let max = values.iter().copied().fold(0.0f32, f32::max) as usize;
    let mut seen = vec![false; max + 1];
    for v in values.iter() {
        seen[*v as usize] = true;
    }
    assert!(seen[1..].iter().all(|s| *s), "ids 1..={max} are all used");
    // `segno post-process --run` segments the stored prediction as validation did.
    segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))
        .unwrap();
    let v = dir
        .path()
        .join(&run.name)
        .join("validation.zarr/4/synthetic_crop2");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"))
        .args([
            "post-process",
            "-r",
            &run.name,
            "--parameters",
            "bias_0.1",
            "--json",
        ])
        .arg("--input")
        .arg(v.join("prediction"))
        .arg("--output")
        .arg(dir.path().join("pp.zarr"))
        .arg("-p")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| {
        let a = array::open(p).unwrap();
        a.read(&a.info().roi).unwrap().to_labels().unwrap()
    };
    assert_eq!(
        read(&dir.path().join("pp.zarr/output_prediction_bias_0.1")),
        read(&v.join("output/bias_0.1"))
    );
}

fn mito_distance(name: &str) -> TaskConfig {
    TaskConfig::Distance(DistanceTaskConfig {
        name: name.into(),
        channels: vec!["mito".into()],
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 40.0,
        mask_distances: false,
        clipmin: 0.05,
        clipmax: 0.95,
    })
}

/// The model tensors of a Segno checkpoint.
fn model_tensors(path: &Path) -> Vec<(String, tch::Tensor)> {
    let mut t: Vec<_> = tch::Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("optimizer.") && !k.starts_with("extra."))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn runs_start_from_another_runs_checkpoint_or_pretrained_weights() {
    tch::set_num_threads(1);
    let dir = project();
    let mut first = run_config(mito_distance("first"), mito);
    first.num_iterations = 2;
    first.validation_interval = 2;
    train::train_run(dir.path(), &first, TrainOptions::default()).unwrap();
    let source = RunDir::from_dir(&dir.path().join(&first.name)).checkpoint(2);
    // With a learning rate of 0, one iteration keeps the starting weights exactly.
    let frozen = |mut run: RunConfig| {
        run.num_iterations = 1;
        run.validation_interval = 1;
        if let TrainerConfig::Gunpowder(t) = &mut run.trainer_config {
            t.learning_rate = 0.0;
        }
        run
    };
    // By iteration number, and by the criterion whose best iteration the run recorded.
    for (name, criterion) in [("by_iteration", "2"), ("by_criterion", "mito__f1_score")] {
        let mut run = frozen(run_config(mito_distance(name), mito));
        run.start_config = Some(InitialWeightsConfig::Start(StartConfig {
            run: first.name.clone(),
            criterion: criterion.into(),
        }));
        let report = train::train_run(dir.path(), &run, TrainOptions::default()).unwrap();
        let (path, loaded) = report.initial_weights.clone().unwrap();
        assert_eq!(loaded, model_tensors(&source).len());
        let best: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                dir.path()
                    .join(&first.name)
                    .join("checkpoints/synthetic_crop2/mito__f1_score.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let want_iteration = if criterion == "2" {
            2
        } else {
            best["iteration"].as_u64().unwrap()
        };
        assert_eq!(
            path,
            RunDir::from_dir(&dir.path().join(&first.name)).checkpoint(want_iteration)
        );
        let after = RunDir::from_dir(&dir.path().join(&run.name)).checkpoint(1);
        for ((ka, a), (kb, b)) in model_tensors(&path)
            .iter()
            .zip(model_tensors(&after).iter())
        {
            assert_eq!(ka, kb);
            assert!(a.equal(b), "{ka} changed");
        }
    }
    // A pretrained task loads every weight of the file.
    let pretrained = TaskConfig::Pretrained(PretrainedTaskConfig {
        name: "pretrained".into(),
        sub_task_config: Box::new(mito_distance("sub")),
        weights: source.to_string_lossy().into_owned(),
    });
    let run = frozen(run_config(pretrained, mito));
    let report = train::train_run(dir.path(), &run, TrainOptions::default()).unwrap();
    assert_eq!(report.initial_weights.unwrap().0, source);
    // Weights of another network are refused before anything is written.
    let mut other = frozen(run_config(
        TaskConfig::Pretrained(PretrainedTaskConfig {
            name: "pretrained_wrong".into(),
            sub_task_config: Box::new(mito_distance("sub")),
            weights: source.to_string_lossy().into_owned(),
        }),
        mito,
    ));
    if let ArchitectureConfig::CnnectomeUnet(u) = &mut other.architecture_config {
        u.num_fmaps = 3;
    }
    let err = train::train_run(dir.path(), &other, TrainOptions::default())
        .expect_err("another architecture's weights are refused")
        .to_string();
    assert!(
        err.contains("does not fit the run's network") && err.contains("has shape"),
        "{err}"
    );
    assert!(!dir.path().join(&other.name).exists());
    assert!(!dir
        .path()
        .join(format!("stats/training_stats/{}.jsonl", other.name))
        .exists());
}
