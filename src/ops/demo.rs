//! The five-minute demo (`segno demo`): synthetic data written (once), a small U-Net
//! trained on it with validation, the best checkpoint and threshold applied to the whole
//! volume, and a summary of how each class learned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Serialize;

use super::apply::{ApplyOptions, ApplyReport, PredictJob, SettingsRequest};
use super::train::{TrainRunOptions, TrainRunReport};
use super::OpsError;
use crate::config::AnyConfig;
use crate::store::layout::RunDir;
use crate::store::Project;
use crate::task::evaluate::ValidationScores;
use crate::train::KeepValidation;

/// Options of [`run_demo`].
pub struct DemoRunOptions {
    /// The demo project's directory (created with its data when missing).
    pub project: PathBuf,
    /// Training iterations.
    pub iterations: u64,
    /// Validate every this many iterations.
    pub validation_interval: u64,
    /// Edge length of the synthetic volume, in voxels.
    pub size: usize,
    /// Seed of the data and of training.
    pub seed: u64,
    /// Set to stop training after the current iteration (the demo then goes on).
    pub stop: Option<Arc<AtomicBool>>,
}

/// A class's best score at one validated iteration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassBest {
    /// The post-processing parameters with the best F1 score (e.g. `threshold_0.5`).
    pub threshold: String,
    /// That F1 score.
    pub f1_score: f64,
    /// The Dice score at the same parameters (none when it could not be computed).
    pub dice: Option<f64>,
}

/// The best scores per class at one validated iteration, on the first validation dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoValidation {
    /// The iteration.
    pub iteration: u64,
    /// Per class with an F1 score; classes without one are left out.
    #[serde(flatten)]
    pub classes: BTreeMap<String, ClassBest>,
}

/// What [`run_demo`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoReport {
    /// The project directory.
    pub project: PathBuf,
    /// The demo run's name.
    pub run: String,
    /// Wall time of training.
    pub duration_secs: f64,
    /// Per validated iteration, the best scores per class.
    pub validations: Vec<DemoValidation>,
    /// Iterations with training statistics.
    pub iterations: usize,
    /// What applying the best checkpoint to the whole volume did.
    pub applied: ApplyReport,
    /// What training did.
    #[serde(skip)]
    pub training: TrainRunReport,
    /// Mean loss of the first 20 iterations.
    #[serde(skip)]
    pub first_loss: f64,
    /// Mean loss of the last 20 iterations.
    #[serde(skip)]
    pub last_loss: f64,
    /// The run's checkpoint directory.
    #[serde(skip)]
    pub checkpoints: PathBuf,
    /// The container of the validation predictions.
    #[serde(skip)]
    pub validation_predictions: PathBuf,
    /// The validation scores file.
    #[serde(skip)]
    pub scores: PathBuf,
}

/// Per iteration of `scores`, the parameters with the best F1 score on the first dataset
/// for each of `classes` (criteria `<class>__f1_score`, `<class>__dice`).
pub fn best_per_class(scores: &ValidationScores, classes: &[&str]) -> Vec<DemoValidation> {
    let Some(dataset) = scores.datasets().first() else {
        return Vec::new();
    };
    scores
        .iterations()
        .map(|iteration| {
            let mut best_of = BTreeMap::new();
            for class in classes {
                let (f1, dice) = (format!("{class}__f1_score"), format!("{class}__dice"));
                let mut best: Option<(&String, f64)> = None;
                for p in scores.parameters() {
                    let v = scores.value(iteration, dataset, p, &f1).unwrap_or(f64::NAN);
                    if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
                        best = Some((p, v));
                    }
                }
                if let Some((p, f1_score)) = best {
                    let dice = scores
                        .value(iteration, dataset, p, &dice)
                        .filter(|v| v.is_finite());
                    best_of.insert(
                        class.to_string(),
                        ClassBest {
                            threshold: p.clone(),
                            f1_score,
                            dice,
                        },
                    );
                }
            }
            DemoValidation {
                iteration,
                classes: best_of,
            }
        })
        .collect()
}

/// Runs the demo in `options.project`, telling `say` what it is doing.
pub fn run_demo(options: DemoRunOptions, say: &dyn Fn(String)) -> Result<DemoReport, OpsError> {
    let dir = &options.project;
    if !dir.join("data/synthetic.zarr/raw").exists() {
        say(format!(
            "writing synthetic data ({0}³ voxels) to {1}/data/synthetic.zarr",
            options.size,
            dir.display()
        ));
        crate::demo::generate(
            dir,
            &crate::demo::DemoOptions {
                seed: options.seed,
                size: options.size,
                overwrite: false,
            },
        )?;
    }
    let project = Project::open(dir)?;
    let run =
        crate::demo::project::demo_run(options.iterations, options.validation_interval.max(1));
    let outcome = project
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))?;
    say(format!(
        "run config `{}`: {outcome:?} in {}/configs/runs",
        run.name,
        dir.display()
    ));
    say(format!(
        "training `{}` for {} iterations (validation every {})…",
        run.name, run.num_iterations, run.validation_interval
    ));
    let training = super::train::train_stored_run(
        &project,
        TrainRunOptions {
            run: run.name.clone(),
            seed: Some(options.seed),
            device: "auto".into(),
            loader_threads: None,
            validate: true,
            keep_validation: KeepValidation::All,
            stop_after: None,
            stop: options.stop,
            on_start: None,
            on_iteration: None,
        },
    )?;
    let layout = RunDir::new(dir, &run.name);
    let scores = crate::store::scores::read_stored_scores(&layout)?.ok_or_else(|| {
        OpsError::Io(format!(
            "{}: no validation scores were written",
            layout.validation_scores().display()
        ))
    })?;
    let validations = best_per_class(&scores, &crate::demo::project::CLASSES);
    let stats = crate::store::stats::read_training_stats(&layout.training_stats())
        .map_err(|e| OpsError::Io(e.to_string()))?;
    let mean_loss = |from: usize, to: usize| {
        let s = &stats[from.min(stats.len())..to.min(stats.len())];
        s.iter().map(|x| x.loss).sum::<f64>() / s.len().max(1) as f64
    };
    say(format!(
        "applying the best checkpoint to {}/data/synthetic.zarr/raw…",
        dir.display()
    ));
    let applied = super::apply::apply(
        &project,
        &ApplyOptions {
            run: run.name.clone(),
            settings: SettingsRequest::default(),
            job: PredictJob {
                input: dir.join("data/synthetic.zarr/raw"),
                output: dir.join("outputs/synthetic.zarr"),
                roi: None,
                device: "auto".into(),
                max_block_input_voxels: None,
                input_options: Default::default(),
                // Running the demo again recomputes its outputs.
                overwrite: true,
                workers: 1,
                cluster: None,
                prepare_only: false,
                format: Default::default(),
                precision: Default::default(),
            },
        },
        &mut |_, _| {},
    )?;
    Ok(DemoReport {
        project: dir.clone(),
        run: run.name.clone(),
        duration_secs: training.duration_secs,
        validations,
        iterations: stats.len(),
        applied,
        training,
        first_loss: mean_loss(0, 20),
        last_loss: mean_loss(stats.len().saturating_sub(20), stats.len()),
        checkpoints: layout.checkpoints_dir(),
        validation_predictions: layout.validation_container(),
        scores: layout.validation_scores(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_threshold_per_class_skips_failed_scores_and_missing_classes() {
        let criteria = ["mito__f1_score", "mito__dice", "er__f1_score", "er__dice"]
            .map(String::from)
            .to_vec();
        let params = ["threshold_0", "threshold_0.5"].map(String::from).to_vec();
        let mut s =
            ValidationScores::new(criteria, params, vec!["crop2".into(), "crop3".into()]).unwrap();
        let nan = f64::NAN;
        // [dataset][parameter][criterion]; only the first dataset counts.
        s.add_iteration(
            100,
            vec![
                vec![vec![0.4, 0.3, nan, nan], vec![0.6, nan, nan, nan]],
                vec![vec![0.9, 0.9, 0.9, 0.9], vec![0.9, 0.9, 0.9, 0.9]],
            ],
        )
        .unwrap();
        s.add_iteration(
            200,
            vec![
                vec![vec![0.7, 0.65, 0.2, 0.1], vec![0.7, 0.6, 0.5, 0.45]],
                vec![vec![0.0; 4], vec![0.0; 4]],
            ],
        )
        .unwrap();
        let rows = best_per_class(&s, &["mito", "er", "golgi"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].iteration, 100);
        let mito = &rows[0].classes["mito"];
        assert_eq!(
            (mito.threshold.as_str(), mito.f1_score, mito.dice),
            ("threshold_0.5", 0.6, None)
        );
        // er failed everywhere at 100; golgi has no criteria at all.
        assert!(!rows[0].classes.contains_key("er"));
        assert!(!rows[0].classes.contains_key("golgi"));
        // Ties go to the first parameters.
        let mito = &rows[1].classes["mito"];
        assert_eq!(
            (mito.threshold.as_str(), mito.dice),
            ("threshold_0", Some(0.65))
        );
        let er = &rows[1].classes["er"];
        assert_eq!(
            (er.threshold.as_str(), er.f1_score, er.dice),
            ("threshold_0.5", 0.5, Some(0.45))
        );
        let json = serde_json::to_value(&rows[1]).unwrap();
        assert_eq!(json["iteration"], 200);
        assert_eq!(json["er"]["f1_score"], 0.5);
    }
}
