//! Validating a trained run on demand (`segno validate`): one checkpoint predicted on every
//! validation dataset, post-processed with every parameter set and scored; the scores are
//! stored with the run's others, and the best-checkpoint records are updated.

use serde::Serialize;

use super::{NamedScores, OpsError};
use crate::blockwise::{self, Checkpoint};
use crate::config::DataSplitConfig;
use crate::store::Project;
use crate::task::predictor::{Predictor, MAX_WATERSHED_VOXELS};
use crate::train::validate::{self, Inference};

/// Options of [`validate_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidateOptions {
    /// The run's name.
    pub run: String,
    /// The checkpoint iteration (default: the latest).
    pub iteration: Option<u64>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
}

/// The scores of one parameter set on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterScores {
    /// The parameter set's name (e.g. `threshold_0.5`).
    pub parameters: String,
    /// Each criterion's score; null where it could not be computed.
    pub scores: NamedScores,
}

/// The scores on one validation dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetScores {
    /// The dataset's name.
    pub dataset: String,
    /// Per parameter set, in the task's grid order.
    pub parameters: Vec<ParameterScores>,
}

/// What [`validate_run`] scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationReport {
    /// The run's name.
    pub run: String,
    /// The checkpoint iteration validated.
    pub iteration: u64,
    /// Per validation dataset.
    pub results: Vec<DatasetScores>,
    /// Datasets that could not be validated, with why (their scores are null).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub errors: std::collections::BTreeMap<String, String>,
}

/// Validates a checkpoint of a run stored in `project` on its validation datasets and
/// stores the scores with the run's others.
pub fn validate_run(
    project: &Project,
    options: &ValidateOptions,
) -> Result<ValidationReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let fail = OpsError::run(&run.name);
    let predictor = Predictor::from_task(&run.task_config).map_err(|e| fail(e.into()))?;
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return Err(OpsError::Invalid(
            "only TrainValidateDataSplitConfig datasplits can be validated".into(),
        ));
    };
    let device = super::device(&options.device)?;
    let checkpoint = options
        .iteration
        .map_or(Checkpoint::Latest, Checkpoint::Iteration);
    let model = blockwise::load_model(project.root(), &run, &checkpoint, device).map_err(&fail)?;
    let datasets =
        validate::open_validation(project.root(), &split.validate_configs).map_err(&fail)?;
    let Some(first) = datasets.first() else {
        return Err(OpsError::Invalid(format!(
            "run `{}` has no validation datasets",
            run.name
        )));
    };
    let inference =
        Inference::for_run(&run, first.raw.info().geometry.voxel_size, device).map_err(&fail)?;
    let outcome = validate::validate(
        project.root(),
        &run.name,
        model.iteration,
        &model.model,
        &inference,
        &datasets,
        &predictor,
        MAX_WATERSHED_VOXELS,
    )
    .map_err(&fail)?;
    let results = outcome
        .datasets
        .iter()
        .zip(&outcome.scores)
        .map(|(dataset, per_parameter)| DatasetScores {
            dataset: dataset.clone(),
            parameters: outcome
                .parameters
                .iter()
                .zip(per_parameter)
                .map(|(p, values)| ParameterScores {
                    parameters: p.clone(),
                    scores: NamedScores::new(&outcome.criteria, values),
                })
                .collect(),
        })
        .collect();
    Ok(ValidationReport {
        run: run.name.clone(),
        iteration: outcome.iteration,
        results,
        errors: outcome.errors,
    })
}
