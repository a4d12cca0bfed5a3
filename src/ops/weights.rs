//! Moving weights between Segno and PyTorch/DaCapo: a `state_dict` file imported as a
//! checkpoint of a run (`segno import-weights`), and a checkpoint exported as a DaCapo
//! checkpoint file (`segno export-weights`).

use std::path::PathBuf;

use serde::Serialize;

use super::OpsError;
use crate::store::layout::RunDir;
use crate::store::Project;

/// Options of [`import_weights`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportWeightsOptions {
    /// The run whose network takes the weights.
    pub run: String,
    /// The weights file (PyTorch `state_dict`, DaCapo checkpoint or safetensors).
    pub weights: PathBuf,
    /// The checkpoint iteration to store them as.
    pub iteration: u64,
    /// Keep tensors the file lacks as initialised (else the file must cover the network).
    pub partial: bool,
    /// Replace an existing checkpoint of that iteration.
    pub overwrite: bool,
}

/// What [`import_weights`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportWeightsReport {
    /// The run.
    pub run: String,
    /// The weights file read.
    #[serde(skip)]
    pub weights: PathBuf,
    /// The checkpoint written.
    pub checkpoint: PathBuf,
    /// Its iteration.
    pub iteration: u64,
    /// Tensors loaded from the file.
    pub loaded: usize,
    /// Tensors of the network the file lacked, kept as initialised.
    pub kept_initialised: Vec<String>,
    /// Tensors of the file the network has no place for.
    pub unused: Vec<String>,
}

/// Loads a weights file into the network of a run stored in `project` and stores it as
/// the run's checkpoint of `options.iteration` (atomically; an existing one only with
/// `overwrite`).
pub fn import_weights(
    project: &Project,
    options: &ImportWeightsOptions,
) -> Result<ImportWeightsReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let path = RunDir::new(project.root(), &run.name).checkpoint(options.iteration);
    if path.exists() && !options.overwrite {
        return Err(OpsError::Invalid(format!(
            "{} exists: choose another --iteration or pass --overwrite",
            path.display()
        )));
    }
    let fail = OpsError::run(&run.name);
    let head = crate::train::run::head_for(&run.task_config).map_err(&fail)?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    crate::nn::Model::new(&vs.root(), &run.architecture_config, &head)
        .map_err(|e| fail(e.into()))?;
    let invalid = |e: crate::weights::WeightsError| OpsError::Invalid(e.to_string());
    let state = crate::weights::read_state_dict(&options.weights).map_err(invalid)?;
    let report = crate::weights::load_into(&vs, &state, &options.weights, options.partial)
        .map_err(invalid)?;
    let optimizer = crate::train::optim::RAdam::new(&vs);
    crate::train::checkpoint::save(&path, &vs, &optimizer, &std::collections::BTreeMap::new())
        .map_err(|e| OpsError::Io(e.to_string()))?;
    Ok(ImportWeightsReport {
        run: run.name.clone(),
        weights: options.weights.clone(),
        checkpoint: path,
        iteration: options.iteration,
        loaded: report.loaded,
        kept_initialised: report.kept,
        unused: report.unused,
    })
}

/// Options of [`export_weights`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportWeightsOptions {
    /// The run.
    pub run: String,
    /// The checkpoint iteration (default: the latest).
    pub iteration: Option<u64>,
    /// The DaCapo checkpoint file to write.
    pub output: PathBuf,
    /// Replace an existing file.
    pub overwrite: bool,
}

/// What [`export_weights`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportWeightsReport {
    /// The run.
    pub run: String,
    /// The checkpoint iteration exported.
    pub iteration: u64,
    /// The file written.
    pub output: PathBuf,
    /// Tensors written (aliases not counted).
    pub tensors: usize,
    /// Scalar parameters written.
    pub parameters: usize,
}

/// Writes a checkpoint of a run stored in `project` as a DaCapo checkpoint file (with the
/// trainer's learning rate in its optimizer state).
pub fn export_weights(
    project: &Project,
    options: &ExportWeightsOptions,
) -> Result<ExportWeightsReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let layout = RunDir::new(project.root(), &run.name);
    let iteration = match options.iteration {
        Some(i) => i,
        None => layout.latest_checkpoint().ok_or_else(|| {
            OpsError::Invalid(format!("run `{}` has no checkpoint to export", run.name))
        })?,
    };
    let path = layout.checkpoint(iteration);
    if !path.is_file() {
        return Err(OpsError::Invalid(format!(
            "run `{}` has no checkpoint of iteration {iteration} ({} does not exist)",
            run.name,
            path.display()
        )));
    }
    if options.output.exists() && !options.overwrite {
        return Err(OpsError::Exists(format!(
            "{} exists: pass --overwrite to replace it",
            options.output.display()
        )));
    }
    let lr = match &run.trainer_config {
        crate::config::TrainerConfig::Gunpowder(t) => t.learning_rate,
        _ => 1e-3,
    };
    let report = crate::weights::export_dacapo(&path, &options.output, lr)
        .map_err(|e| OpsError::Io(e.to_string()))?;
    Ok(ExportWeightsReport {
        run: run.name.clone(),
        iteration,
        output: report.output,
        tensors: report.tensors,
        parameters: report.parameters,
    })
}
/// What importing a run DaCapo trained brought in.
pub type ImportRunReport = crate::train::import::ImportReport;

/// Brings the checkpoints and training statistics of the DaCapo run stored as `name` in
/// `project` into Segno's run directory (existing Segno checkpoints are replaced only with
/// `overwrite`).
pub fn import_run(
    project: &Project,
    name: &str,
    overwrite: bool,
) -> Result<ImportRunReport, OpsError> {
    let run = super::stored_run(project, name)?;
    let options = crate::train::import::ImportOptions { overwrite };
    crate::train::import::import_dacapo_run(project.root(), &run, &options)
        .map_err(|e| OpsError::Invalid(format!("run `{}`: {e}", run.name)))
}
