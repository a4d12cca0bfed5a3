//! Validation never ends a run: a crop that cannot be validated gets NaN scores with its
//! error while training goes on; masks are honoured in scoring; affinity crops too large to
//! segment in one piece are segmented block by block; and a run can keep the validation
//! arrays of its best and latest iterations only.

mod common;

use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{ArrayData, DataType};
use segno::config::*;
use segno::geometry::{Coordinate, Roi};
use segno::store::layout::RunDir;
use segno::train::{self, KeepValidation, TrainOptions};

fn options() -> TrainOptions {
    TrainOptions {
        seed: Some(3),
        loader_threads: Some(1),
        ..TrainOptions::default()
    }
}

fn split(run: &mut RunConfig) -> &mut TrainValidateDataSplitConfig {
    match &mut run.datasplit_config {
        DataSplitConfig::TrainValidate(s) => s,
        _ => unreachable!(),
    }
}

/// A copy of crop 2's mito labels at `data/copy.zarr/mito`, returned as its config.
fn copy_of_crop2_mito(dir: &std::path::Path) -> (ArrayConfig, Roi) {
    let src = segno::array::open(&dir.join("data/synthetic.zarr/labels/crop2/mito/s0")).unwrap();
    let info = src.info().clone();
    let data = src.read(&info.roi).unwrap();
    let mut spec = ArraySpec::new(data.data_type(), info.roi, info.geometry.voxel_size, None);
    spec.chunk_voxels = Some(vec![16, 16, 16]);
    write::create(
        &dir.join("data/copy.zarr"),
        "mito",
        &spec,
        WriteMode::Overwrite,
    )
    .unwrap()
    .write(&info.roi, &data)
    .unwrap();
    let config = ArrayConfig::Binarize(BinarizeArrayConfig {
        name: "copy_mito".into(),
        source_array_config: Box::new(ArrayConfig::Zarr(ZarrArrayConfig {
            name: "copy".into(),
            file_name: "data/copy.zarr".into(),
            dataset: "mito".into(),
            snap_to_grid: None,
            axes: None,
            mode: Some("r".into()),
            ome_metadata: false,
        })),
        groupings: vec![("mito".into(), vec![])],
        background: 0,
    });
    (config, info.roi)
}

#[test]
fn a_crop_that_cannot_be_validated_gets_nan_scores_and_training_goes_on() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let (broken, _) = copy_of_crop2_mito(dir.path());
    // Damage a chunk of the copy: the crop opens, but reading it fails.
    let chunk = common::walk_files(&dir.path().join("data/copy.zarr/mito/s0"))
        .into_iter()
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .expect("a chunk file");
    std::fs::write(&chunk, b"not a chunk").unwrap();
    let mut run = common::tiny_run("survives", 4, 2, 0.05, common::demo_raw(0.0, 255.0));
    let mut bad = common::mito_dataset("crop2", common::demo_raw(0.0, 255.0));
    if let DatasetConfig::RawGt(d) = &mut bad {
        d.name = "broken_crop".into();
        d.gt_config = Some(broken);
    }
    split(&mut run).validate_configs.push(bad);
    let report = train::train_run(dir.path(), &run, options()).unwrap();
    assert_eq!(report.trained_until, 4);
    assert_eq!(report.checkpoints, vec![2, 4]);
    assert_eq!(report.validations.len(), 2);
    for v in &report.validations {
        assert!(
            v.scores[0][1].iter().any(|x| x.is_finite()),
            "crop 2 is scored"
        );
        assert!(v.scores[1].iter().flatten().all(|x| x.is_nan()));
        let error = &v.errors["broken_crop"];
        assert!(
            error.contains("copy.zarr") && error.contains("cannot read"),
            "{error}"
        );
    }
    // The stored scores keep the error next to the NaNs, and the best ignores them.
    let scores = segno::store::scores::read_scores(
        &RunDir::new(dir.path(), "survives").validation_scores(),
        &report.validations[0].criteria,
        &report.validations[0].parameters,
        &report.validations[0].datasets,
    )
    .unwrap();
    assert!(scores.failures(4).unwrap()["broken_crop"].contains("cannot read"));
    assert_eq!(scores.last_failure().unwrap().0, 4);
    assert!(scores
        .best_for("synthetic_crop2", "mito__f1_score")
        .is_some());
    assert!(scores.best_for("broken_crop", "mito__f1_score").is_none());
}

#[test]
fn validation_scores_only_where_the_mask_says_the_truth_is_known() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let (gt, roi) = copy_of_crop2_mito(dir.path());
    // A mask that knows one half of the crop along z only (the half with more mito).
    let shape: Vec<usize> = (roi.shape() / Coordinate::from([8, 8, 8]))
        .iter()
        .map(|v| v as usize)
        .collect();
    let labels = segno::array::open(&dir.path().join("data/copy.zarr/mito"))
        .unwrap()
        .read(&roi)
        .unwrap()
        .to_f32();
    let mid = shape[0] / 2;
    let count = |range: std::ops::Range<usize>| {
        labels
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(range))
            .iter()
            .filter(|v| **v != 0.0)
            .count()
    };
    let halves = if count(0..mid) >= count(mid..shape[0]) {
        0..mid
    } else {
        mid..shape[0]
    };
    let mut known = ndarray::ArrayD::<u8>::zeros(shape.clone());
    known
        .slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(halves.clone()))
        .fill(1);
    let spec = ArraySpec::new(DataType::U8, roi, Coordinate::from([8, 8, 8]), None);
    write::create(
        &dir.path().join("data/copy.zarr"),
        "mask",
        &spec,
        WriteMode::Overwrite,
    )
    .unwrap()
    .write(&roi, &ArrayData::U8(known))
    .unwrap();
    let mut run = common::tiny_run("masked", 2, 2, 0.05, common::demo_raw(0.0, 255.0));
    if let DatasetConfig::RawGt(d) = &mut split(&mut run).validate_configs[0] {
        d.gt_config = Some(gt);
        d.mask_config = Some(ArrayConfig::Zarr(ZarrArrayConfig {
            name: "mask".into(),
            file_name: "data/copy.zarr".into(),
            dataset: "mask".into(),
            snap_to_grid: None,
            axes: None,
            mode: Some("r".into()),
            ome_metadata: false,
        }));
    }
    let report = train::train_run(dir.path(), &run, options()).unwrap();
    let v = &report.validations[0];
    let at = |name: &str| v.criteria.iter().position(|c| c == name).unwrap();
    // Recompute the counting metrics over the known half from the stored output.
    let out = segno::array::open(
        &dir.path()
            .join("masked/validation.zarr/2/synthetic_crop2/output/threshold_-0.2"),
    )
    .unwrap();
    let mut begin = roi.offset().to_vec();
    let mut size = roi.shape().to_vec();
    begin[0] += halves.start as i64 * 8;
    size[0] = (halves.end - halves.start) as i64 * 8;
    let known = Roi::new(
        Coordinate::new(&begin).unwrap(),
        Coordinate::new(&size).unwrap(),
    )
    .unwrap();
    let test = out.read(&known).unwrap().to_f32();
    let truth = segno::array::open(&dir.path().join("data/copy.zarr/mito"))
        .unwrap()
        .read(&known)
        .unwrap()
        .to_f32();
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (p, t) in test.iter().zip(truth.iter()) {
        let (p, t) = (*p != 0.0, *t != 0.0);
        tp += f64::from(u8::from(p && t));
        fp += f64::from(u8::from(p && !t));
        fn_ += f64::from(u8::from(!p && t));
    }
    assert!(tp + fn_ > 0.0, "the known half holds mito");
    assert!(tp + fp > 0.0, "the output has foreground there");
    let dice = 2.0 * tp / (2.0 * tp + fp + fn_);
    let stored = v.scores[0][0][at("mito__dice")];
    assert!((stored - dice).abs() < 1e-12, "{stored} vs {dice}");
    let fpr = v.scores[0][0][at("mito__false_positive_rate")];
    let negatives = test.len() as f64 - (tp + fn_);
    assert!(
        (fpr - fp / negatives).abs() < 1e-12,
        "{fpr} vs {}",
        fp / negatives
    );
}

#[test]
fn large_affinity_crops_are_segmented_block_by_block_and_arrays_can_be_pruned() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let mut run = segno::demo::project::demo_run(6, 2);
    run.name = "affs".into();
    run.task_config = common::affinities_task(false);
    if let ArchitectureConfig::CnnectomeUnet(u) = &mut run.architecture_config {
        u.input_shape = Coordinate::from([44, 44, 44]);
        u.num_fmaps = 2;
        u.fmaps_out = 4;
        u.eval_shape_increase = None;
    }
    let s = split(&mut run);
    let datasets = s
        .train_configs
        .iter_mut()
        .zip(["crop1"])
        .chain(s.validate_configs.iter_mut().zip(["crop2"]));
    for (d, crop) in datasets {
        if let DatasetConfig::RawGt(r) = d {
            r.gt_config = Some(segno::demo::project::zarr(
                "cells",
                &format!("labels/{crop}/cells"),
            ));
        }
    }
    let report = train::train_run(
        dir.path(),
        &run,
        TrainOptions {
            max_watershed_voxels: 4096,
            keep_validation: KeepValidation::BestAndLatest,
            ..options()
        },
    )
    .unwrap();
    assert_eq!(report.validations.len(), 3);
    for v in &report.validations {
        assert!(v.errors.is_empty(), "{:?}", v.errors);
        assert!(v.scores[0].iter().flatten().all(|x| x.is_finite()));
    }
    // Segmented block by block: the stitched output says what it came from.
    let run_dir = dir.path().join("affs");
    let out =
        segno::array::open(&run_dir.join("validation.zarr/6/synthetic_crop2/output/bias_0.5"))
            .unwrap();
    let attrs = out.attributes().cloned().unwrap_or_default();
    assert!(attrs.contains_key("segno_post_process"), "{attrs:?}");
    // Only the latest and the best iterations keep their arrays; every score stays.
    let kept = RunDir::from_dir(&run_dir).validated_iterations();
    let scores = segno::store::scores::read_scores(
        &RunDir::new(dir.path(), "affs").validation_scores(),
        &report.validations[0].criteria,
        &report.validations[0].parameters,
        &report.validations[0].datasets,
    )
    .unwrap();
    assert_eq!(scores.iterations().collect::<Vec<_>>(), vec![2, 4, 6]);
    let mut best: Vec<u64> = scores
        .best_table()
        .into_iter()
        .filter_map(|e| e.best.map(|(i, _, _)| i))
        .collect();
    best.push(6);
    best.sort_unstable();
    best.dedup();
    assert_eq!(kept, best);
}

#[test]
fn a_checkpoint_whose_validation_was_interrupted_is_validated_on_resume() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let run = common::tiny_run("interrupted", 4, 2, 0.05, common::demo_raw(0.0, 255.0));
    let report = train::train_run(p, &run, options()).unwrap();
    assert_eq!(report.checkpoints, vec![2, 4]);
    let first = &report.validations[1];
    assert_eq!(first.iteration, 4);
    let scores_file = RunDir::new(p, "interrupted").validation_scores();
    let read = || {
        segno::store::scores::read_scores(
            &scores_file,
            &first.criteria,
            &first.parameters,
            &first.datasets,
        )
        .unwrap()
    };
    // Iteration 4's scores, as bits (NaN compares equal to NaN).
    let scores_of_4 = || -> Vec<u64> {
        read()
            .block(4)
            .unwrap()
            .iter()
            .flatten()
            .flatten()
            .map(|x| x.to_bits())
            .collect()
    };
    let before = scores_of_4();

    // What a kill between checkpoint 4 and the end of its validation leaves: the
    // checkpoint, no scores for 4, and half-written arrays marked incomplete.
    let mut without =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&scores_file).unwrap()).unwrap();
    remove_iteration(&mut without, 4);
    std::fs::write(&scores_file, serde_json::to_vec(&without).unwrap()).unwrap();
    assert_eq!(read().iterations().collect::<Vec<_>>(), vec![2]);
    let run_dir = p.join("interrupted");
    let it4 = run_dir.join("validation.zarr/4");
    std::fs::write(it4.join(".segno-incomplete"), b"").unwrap();
    std::fs::write(it4.join("half-written"), b"x").unwrap();
    assert_eq!(
        RunDir::from_dir(&run_dir).validated_iterations(),
        vec![2],
        "an incomplete iteration is not offered"
    );

    // Resuming (nothing left to train) validates 4 again, with the same scores.
    let report = train::train_run(p, &run, options()).unwrap();
    assert_eq!(report.checkpoints, Vec::<u64>::new());
    assert_eq!(
        report
            .validations
            .iter()
            .map(|v| v.iteration)
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert_eq!(scores_of_4(), before);
    assert!(!it4.join(".segno-incomplete").exists());
    assert!(!it4.join("half-written").exists());
    assert_eq!(
        RunDir::from_dir(&run_dir).validated_iterations(),
        vec![2, 4]
    );
    // Nothing left to validate: a second resume does nothing.
    let report = train::train_run(p, &run, options()).unwrap();
    assert!(report.validations.is_empty());
}

/// Removes `iteration`'s entry from a stored validation-scores document.
fn remove_iteration(doc: &mut serde_json::Value, iteration: u64) {
    let entries = doc["iterations"].as_array_mut().unwrap();
    let before = entries.len();
    entries.retain(|e| e["iteration"].as_u64() != Some(iteration));
    assert_eq!(entries.len() + 1, before);
}
