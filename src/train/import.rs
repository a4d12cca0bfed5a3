//! A run trained by DaCapo, brought into Segno where it lies: the checkpoints DaCapo's file
//! store wrote (`<run>/checkpoints/iterations/<n>`, `torch.save` of its `Weights`: model
//! and RAdam state) become Segno checkpoints beside them (`<n>.safetensors`, model and
//! optimizer moments, so training resumes exactly), and its training statistics
//! (`stats/training_stats/<run>`, a pickled list of dicts) become Segno's. DaCapo's files
//! are left as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{nn, Tensor};

use super::checkpoint;
use super::optim::RAdam;
use super::TrainError;
use crate::config::RunConfig;
use crate::store::layout::RunDir;
use crate::store::stats::{self, IterationStats};
use crate::weights::torch_pickle::{self, Value};

/// Options of [`import_dacapo_run`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Replace Segno checkpoints and statistics that already exist.
    pub overwrite: bool,
}

/// One checkpoint brought in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImportedCheckpoint {
    /// The iteration (DaCapo's file name).
    pub iteration: u64,
    /// The DaCapo file.
    pub from: PathBuf,
    /// The Segno checkpoint written.
    pub to: PathBuf,
    /// Whether DaCapo's optimizer state (RAdam moments and step) came along; when not,
    /// training from it starts with fresh moments.
    pub optimizer: bool,
}

/// What [`import_dacapo_run`] did.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ImportReport {
    /// The run.
    pub run: String,
    /// Checkpoints written.
    pub imported: Vec<ImportedCheckpoint>,
    /// Iterations that already had a Segno checkpoint (kept; `overwrite` replaces them).
    pub kept: Vec<u64>,
    /// Training iterations whose statistics were brought in.
    pub training_stats: usize,
    /// Validated iterations found in DaCapo's scores (not imported, see `notes`).
    pub validation_scores_found: usize,
    /// What was left out and why, in words.
    pub notes: Vec<String>,
}

/// Brings the DaCapo run `run` of the project at `project` into Segno (see the module
/// docs). Refuses a run that is training, and a checkpoint that does not fit the run's
/// network (naming the file and the tensors).
pub fn import_dacapo_run(
    project: &Path,
    run: &RunConfig,
    options: &ImportOptions,
) -> Result<ImportReport, TrainError> {
    let run_dir = project.join(&run.name);
    let _lock = crate::store::lock::RunLock::acquire(&run_dir)?;
    let mut report = ImportReport {
        run: run.name.clone(),
        ..Default::default()
    };
    let layout = RunDir::new(project, &run.name);
    let checkpoints = layout.dacapo_checkpoints();
    let stats_path = layout.dacapo_training_stats();
    if checkpoints.is_empty() && !stats_path.is_file() {
        return Err(TrainError::Data(format!(
            "{} holds no DaCapo checkpoints (checkpoints/iterations/<n>) and {} does not exist: nothing to import for run `{}`",
            run_dir.display(),
            stats_path.display(),
            run.name
        )));
    }
    let head = super::run::head_for(&run.task_config)?;
    for (iteration, from) in checkpoints {
        let to = layout.checkpoint(iteration);
        if to.exists() && !options.overwrite {
            report.kept.push(iteration);
            continue;
        }
        let vs = nn::VarStore::new(tch::Device::Cpu);
        crate::nn::Model::new(&vs.root(), &run.architecture_config, &head)?;
        let value = torch_pickle::read(&from).map_err(|e| TrainError::Data(e.to_string()))?;
        let entries =
            torch_pickle::state_dict(&value).map_err(|e| TrainError::Data(e.to_string()))?;
        let mut state = Vec::with_capacity(entries.len());
        for (name, t) in &entries {
            let tensor = crate::weights::to_tensor(t)
                .map_err(|e| TrainError::Data(format!("{}, `{name}`: {e}", from.display())))?;
            if let Some(tensor) = tensor {
                state.push((name.clone(), tensor));
            }
        }
        crate::weights::load_into(&vs, &state, &from, false)
            .map_err(|e| TrainError::Data(e.to_string()))?;
        let mut optimizer = RAdam::new(&vs);
        match restore_optimizer(&value, &entries, &mut optimizer) {
            Ok(()) => {}
            Err(why) => report.notes.push(format!(
                "iteration {iteration}: optimizer state not imported ({why}); training from it starts with fresh RAdam moments"
            )),
        }
        let with_optimizer = optimizer.step > 0;
        checkpoint::save(&to, &vs, &optimizer, &BTreeMap::new())?;
        report.imported.push(ImportedCheckpoint {
            iteration,
            from,
            to,
            optimizer: with_optimizer,
        });
    }

    if stats_path.is_file() {
        let target = layout.training_stats();
        let existing = stats::read_training_stats(&target)?;
        if !existing.is_empty() && !options.overwrite {
            report.notes.push(format!(
                "{} already holds {} iterations: DaCapo's statistics were not imported (pass --overwrite to replace them)",
                target.display(),
                existing.len()
            ));
        } else {
            let value = torch_pickle::read_plain(&stats_path)
                .map_err(|e| TrainError::Data(e.to_string()))?;
            let records = training_stats(&value, &run.name)
                .map_err(|m| TrainError::Data(format!("{}: {m}", stats_path.display())))?;
            stats::write_training_stats(&target, &records)?;
            report.training_stats = records.len();
        }
    }

    let scores_path = layout.dacapo_validation_scores();
    if scores_path.is_file() {
        let found = torch_pickle::read_plain(&scores_path)
            .ok()
            .and_then(|v| v.as_seq().map(<[Value]>::len))
            .unwrap_or(0);
        report.validation_scores_found = found;
        report.notes.push(format!(
            "{} ({found} validated iterations) was not imported: DaCapo scores other post-processing parameters (e.g. a threshold of 127 on tanh distances); score the imported checkpoints with `segno validate -r {} --iteration N`",
            scores_path.display(),
            run.name
        ));
    }
    Ok(report)
}

/// DaCapo's training statistics (a list of `{"iteration", "loss", "time", …}` dicts) as
/// Segno's records.
fn training_stats(value: &Value, run: &str) -> Result<Vec<IterationStats>, String> {
    let items = value
        .as_seq()
        .ok_or_else(|| "expected a list of per-iteration dicts".to_string())?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let number = |key: &str| {
            item.get(key)
                .and_then(|v| v.as_float().or_else(|| v.as_int().map(|i| i as f64)))
                .ok_or_else(|| format!("entry {i} has no number `{key}`"))
        };
        let iteration = item
            .get("iteration")
            .and_then(Value::as_int)
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| format!("entry {i} has no iteration"))?;
        out.push(IterationStats {
            iteration,
            loss: number("loss")?,
            time: number("time").unwrap_or(0.0),
            run_name: run.to_string(),
        });
    }
    out.sort_by_key(|r| r.iteration);
    Ok(out)
}

/// Sets the optimizer's moments and step from DaCapo's RAdam `state_dict`: its `state` is
/// keyed by the index of the parameter in `model.parameters()` order, i.e. the model
/// state dict's order without the `chain.*` aliases (DaCapo's U-Net has no buffers).
fn restore_optimizer(
    value: &Value,
    entries: &[(String, torch_pickle::TensorData)],
    optimizer: &mut RAdam,
) -> Result<(), String> {
    let root = match value {
        Value::Object {
            state: Some(state), ..
        } => state.as_ref(),
        other => other,
    };
    let opt = root
        .get("optimizer")
        .ok_or("the checkpoint has no optimizer state")?;
    let state = opt
        .get("state")
        .and_then(Value::as_dict)
        .ok_or("the optimizer state has no `state`")?;
    let mut names: Vec<String> = Vec::new();
    for (name, _) in entries {
        let segno = crate::weights::segno_name(name);
        if !names.contains(&segno) {
            names.push(segno);
        }
    }
    if state.len() != names.len() || state.len() != optimizer.moments.len() {
        return Err(format!(
            "{} parameter states for {} parameters",
            state.len(),
            optimizer.moments.len()
        ));
    }
    let tensor = |v: Option<&Value>, what: &str| -> Result<Tensor, String> {
        let t = v
            .and_then(Value::as_tensor)
            .ok_or_else(|| format!("no `{what}`"))?;
        crate::weights::to_tensor(t)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("`{what}` is not a float tensor"))
    };
    let mut step = None;
    let mut moments = Vec::new();
    for (key, s) in state {
        let index = key
            .as_int()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or("a parameter state is not keyed by an index")?;
        let name = names
            .get(index)
            .ok_or_else(|| format!("parameter index {index} out of range"))?;
        let m = optimizer
            .moments
            .get(name)
            .ok_or_else(|| format!("`{name}` is not a trainable parameter"))?;
        let exp_avg = tensor(s.get("exp_avg"), "exp_avg")?;
        let exp_avg_sq = tensor(s.get("exp_avg_sq"), "exp_avg_sq")?;
        if exp_avg.size() != m.exp_avg.size() || exp_avg_sq.size() != m.exp_avg_sq.size() {
            return Err(format!("the moments of `{name}` have another shape"));
        }
        let this_step = match s.get("step") {
            Some(v) => v
                .as_float()
                .or_else(|| v.as_int().map(|i| i as f64))
                .or_else(|| {
                    v.as_tensor()
                        .map(|t| t.to_f32().first().copied().unwrap_or(0.0) as f64)
                })
                .ok_or("a step is not a number")?,
            None => return Err("no `step`".into()),
        };
        if step.is_some_and(|s: f64| s != this_step) {
            return Err("parameters have different step counts".into());
        }
        step = Some(this_step);
        moments.push((name.clone(), exp_avg, exp_avg_sq));
    }
    for (name, exp_avg, exp_avg_sq) in moments {
        if let Some(m) = optimizer.moments.get_mut(&name) {
            m.exp_avg = exp_avg;
            m.exp_avg_sq = exp_avg_sq;
        }
    }
    let step = step.unwrap_or(0.0);
    if !(step >= 0.0 && step.fract() == 0.0) {
        return Err(format!("step {step} is not a whole number"));
    }
    optimizer.step = step as u64;
    Ok(())
}
