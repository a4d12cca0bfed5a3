//! The operations behind `segno train`, `validate`, `predict`, `apply` and `post-process`,
//! called as the app calls them: one tiny run trained, validated and applied, each report
//! checked against what was written to disk.

mod common;

use segno::blockwise::Checkpoint;
use segno::config::AnyConfig;
use segno::geometry::Roi;
use segno::ops::apply::{self, PredictJob, SettingsRequest};
use segno::ops::post_process::{self as post, PostProcessMethod};
use segno::ops::train::TrainRunOptions;
use segno::ops::validate::ValidateOptions;
use segno::store::layout::RunDir;
use segno::store::Project;

fn job(dir: &std::path::Path, output: &str) -> PredictJob {
    PredictJob {
        input: dir.join("data/synthetic.zarr/raw"),
        output: dir.join(output),
        roi: None,
        device: "cpu".into(),
        max_block_input_voxels: None,
        input_options: Default::default(),
        overwrite: false,
        workers: 1,
        cluster: None,
        prepare_only: false,
        format: Default::default(),
        precision: Default::default(),
    }
}

fn read_all(path: &std::path::Path) -> (Roi, Vec<f32>) {
    let a = segno::array::open(path).unwrap();
    let roi = a.info().roi;
    let values = a.read(&roi).unwrap().to_f32().iter().copied().collect();
    (roi, values)
}

#[test]
fn train_validate_predict_apply_and_post_process_report_what_they_wrote() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let project = Project::open(p).unwrap();
    let run = common::tiny_run("ops", 4, 4, 0.05, common::demo_raw(0.0, 255.0));
    project
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))
        .unwrap();
    let layout = RunDir::new(p, "ops");

    // Train: the report says what happened, the status file how it ended.
    let trained = segno::ops::train::train_stored_run(
        &project,
        TrainRunOptions {
            run: "ops".into(),
            seed: Some(3),
            device: "cpu".into(),
            loader_threads: Some(1),
            validate: true,
            keep_validation: Default::default(),
            stop_after: None,
            stop: None,
            on_start: None,
            on_iteration: None,
        },
    )
    .unwrap();
    assert_eq!((trained.trained_until, trained.num_iterations), (4, 4));
    assert_eq!(trained.checkpoints, vec![4]);
    assert_eq!(trained.seed, 3);
    assert_eq!(trained.device, "Cpu");
    assert!(trained.validation_failures.is_empty());
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.status_file()).unwrap()).unwrap();
    assert_eq!(status["state"], "finished");

    // Validate again: the report's scores are the stored ones.
    let validated = segno::ops::validate::validate_run(
        &project,
        &ValidateOptions {
            run: "ops".into(),
            iteration: None,
            device: "cpu".into(),
        },
    )
    .unwrap();
    assert_eq!(validated.iteration, 4);
    assert_eq!(validated.results.len(), 1);
    let crop = &validated.results[0];
    assert_eq!(crop.dataset, "synthetic_crop2");
    let stored = segno::store::scores::read_stored_scores(&layout)
        .unwrap()
        .unwrap();
    let mut compared = 0;
    for ps in &crop.parameters {
        for (criterion, value) in &ps.scores.0 {
            let s = stored
                .value(4, &crop.dataset, &ps.parameters, criterion)
                .unwrap();
            assert!(
                s.to_bits() == value.to_bits() || (s.is_nan() && value.is_nan()),
                "{criterion}"
            );
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared}");

    // Apply: the choice is the best stored score; the counts are those of the output.
    let applied = apply::apply(
        &project,
        &apply::ApplyOptions {
            run: "ops".into(),
            settings: SettingsRequest::default(),
            job: job(p, "out.zarr"),
        },
        &mut |_, _| {},
    )
    .unwrap();
    let chosen = applied.chosen_by.clone().unwrap();
    let (it, k, best) = stored.best_for(&chosen.dataset, &chosen.criterion).unwrap();
    assert_eq!((applied.iteration, chosen.score), (it, best));
    assert_eq!(applied.parameters, stored.parameters()[k]);
    let (roi, segmentation) = read_all(&applied.output);
    assert_eq!(roi, applied.roi);
    let nonzero = segmentation.iter().filter(|v| **v != 0.0).count() as u64;
    assert_eq!(applied.foreground_voxels, vec![nonzero]);
    assert_eq!(applied.voxels, segmentation.len() as u64);
    assert_eq!(applied.foreground_labels, vec!["mito".to_string()]);

    // Predict the same checkpoint elsewhere: the same values as apply's prediction.
    let predicted = apply::predict(
        &project,
        &apply::PredictOptions {
            run: "ops".into(),
            checkpoint: Checkpoint::Iteration(4),
            dataset: Some("again".into()),
            data_type: Default::default(),
            job: job(p, "again.zarr"),
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(predicted.iteration, 4);
    assert_eq!(predicted.roi, applied.roi);
    assert_eq!(predicted.blocks, applied.blocks);
    assert_eq!(predicted.input.read_as, "synthetic_crop1");
    let (_, again) = read_all(&predicted.output);
    let (_, first) = read_all(&applied.prediction);
    assert_eq!(again, first);

    // Post-process by threshold and by the run's chosen parameters.
    let thresholded = post::post_process(
        None,
        &post::PostProcessOptions {
            input: predicted.output.clone(),
            output: p.join("post.zarr"),
            dataset: None,
            method: PostProcessMethod::Threshold(0.0),
            overwrite: false,
            block_voxels: None,
            workers: 1,
            compression: Default::default(),
        },
    )
    .unwrap();
    assert!(thresholded.output.ends_with("output_again_threshold_0"));
    let above = again.iter().filter(|v| **v > 0.0).count() as u64;
    assert_eq!(thresholded.foreground_voxels, vec![above]);
    let by_run = post::post_process(
        Some(&project),
        &post::PostProcessOptions {
            input: predicted.output.clone(),
            output: p.join("post.zarr"),
            dataset: Some("by_run".into()),
            method: PostProcessMethod::Run {
                name: "ops".into(),
                parameters: None,
            },
            overwrite: false,
            block_voxels: None,
            workers: 1,
            compression: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(by_run.foreground_voxels, applied.foreground_voxels);
    // Without its project a run cannot be used.
    let e = post::post_process(
        None,
        &post::PostProcessOptions {
            input: predicted.output.clone(),
            output: p.join("post.zarr"),
            dataset: Some("no_project".into()),
            method: PostProcessMethod::Run {
                name: "ops".into(),
                parameters: None,
            },
            overwrite: false,
            block_voxels: None,
            workers: 1,
            compression: Default::default(),
        },
    )
    .unwrap_err();
    assert!(matches!(e, segno::ops::OpsError::Usage(_)), "{e}");

    // Export the checkpoint for DaCapo and import it back as another iteration.
    let dacapo = p.join("exported.pt");
    let exported = segno::ops::weights::export_weights(
        &project,
        &segno::ops::weights::ExportWeightsOptions {
            run: "ops".into(),
            iteration: None,
            output: dacapo.clone(),
            overwrite: false,
        },
    )
    .unwrap();
    assert_eq!(
        (exported.iteration, exported.output.clone()),
        (4, dacapo.clone())
    );
    let again = segno::ops::weights::export_weights(
        &project,
        &segno::ops::weights::ExportWeightsOptions {
            run: "ops".into(),
            iteration: Some(4),
            output: dacapo.clone(),
            overwrite: false,
        },
    )
    .unwrap_err();
    assert!(matches!(again, segno::ops::OpsError::Exists(_)), "{again}");
    let imported = segno::ops::weights::import_weights(
        &project,
        &segno::ops::weights::ImportWeightsOptions {
            run: "ops".into(),
            weights: dacapo,
            iteration: 100,
            partial: false,
            overwrite: false,
        },
    )
    .unwrap();
    assert_eq!(imported.loaded, exported.tensors);
    assert!(imported.kept_initialised.is_empty() && imported.unused.is_empty());
    assert_eq!(imported.checkpoint, layout.checkpoint(100));
    // The imported checkpoint predicts exactly what the original does.
    let from_import = apply::predict(
        &project,
        &apply::PredictOptions {
            run: "ops".into(),
            checkpoint: Checkpoint::Iteration(100),
            dataset: Some("imported".into()),
            data_type: Default::default(),
            job: job(p, "imported.zarr"),
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(read_all(&from_import.output).1, first);

    // A malformed scores file is an error naming it, for apply and for predict alike.
    std::fs::write(layout.validation_scores(), b"{\"criteria\": 3}").unwrap();
    let scores_file = layout.validation_scores().display().to_string();
    let e = apply::apply(
        &project,
        &apply::ApplyOptions {
            run: "ops".into(),
            settings: SettingsRequest::default(),
            job: job(p, "out2.zarr"),
        },
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(&scores_file), "{e}");
    let e = apply::predict(
        &project,
        &apply::PredictOptions {
            run: "ops".into(),
            checkpoint: Checkpoint::Latest,
            dataset: None,
            data_type: Default::default(),
            job: job(p, "out3.zarr"),
        },
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(&scores_file), "{e}");
    assert!(!p.join("out3.zarr").exists());
}

#[test]
fn the_demo_reports_its_validations_from_the_stored_scores() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let report = segno::ops::demo::run_demo(
        segno::ops::demo::DemoRunOptions {
            project: project.clone(),
            iterations: 6,
            validation_interval: 3,
            size: 64,
            seed: 0,
            stop: None,
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.iterations, 6);
    assert_eq!(report.training.checkpoints, vec![3, 6]);
    let stored = segno::store::scores::read_stored_scores(&RunDir::new(&project, &report.run))
        .unwrap()
        .unwrap();
    let rows = segno::ops::demo::best_per_class(&stored, &segno::demo::project::CLASSES);
    assert_eq!(report.validations, rows);
    assert_eq!(
        report
            .validations
            .iter()
            .map(|v| v.iteration)
            .collect::<Vec<_>>(),
        vec![3, 6]
    );
    assert_eq!(report.applied.foreground_labels, vec!["mito", "er"]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["applied"]["voxels"], report.applied.voxels);
    // A model layer's checkpoint and segmentation choices are apply's.
    let (best, why) = segno::ops::live::best_checkpoint(&project, &report.run).unwrap();
    assert_eq!(best, report.applied.iteration);
    let by = report.applied.chosen_by.clone().unwrap();
    assert!(
        why.starts_with(&format!("best by {} on {}: ", by.criterion, by.dataset)),
        "{why}"
    );
    assert_eq!(
        segno::ops::live::default_segmentation(&project, &report.run, best).unwrap(),
        report.applied.parameters
    );
}
