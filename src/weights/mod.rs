//! Network weights from elsewhere: PyTorch/DaCapo checkpoints (`torch.save` files, read
//! without Python) and safetensors files, mapped onto a run's network.

pub mod torch_pickle;
pub mod torch_save;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{nn, Kind, Tensor};

use torch_pickle::{DType, TensorData};

/// Errors reading weights or fitting them to a network.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read as a checkpoint.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The weights do not fit the network.
    #[error("{path}: does not fit the run's network: {message}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which parameters are missing or have other shapes.
        message: String,
    },
}

/// A model's parameters and buffers by name, as read from a file.
pub type StateDict = Vec<(String, Tensor)>;

fn read_error(path: &Path, e: impl std::fmt::Display) -> WeightsError {
    WeightsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

pub(crate) fn to_tensor(t: &TensorData) -> Result<Option<Tensor>, tch::TchError> {
    let shape: Vec<i64> = t.shape.iter().map(|n| *n as i64).collect();
    Ok(match t.dtype {
        // Integer entries are counters (batch norm's num_batches_tracked), not weights.
        DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U8 | DType::Bool => None,
        _ => Some(Tensor::from_slice(&t.to_f32()).f_view(shape.as_slice())?),
    })
}

/// Reads the model state of a checkpoint: a `torch.save` file (a state dict, or DaCapo's
/// `{"model": state_dict, "optimizer": …}`) or a safetensors file (Segno's checkpoints
/// included, whose optimizer and training entries are left out). Float tensors only.
pub fn read_state_dict(path: &Path) -> Result<StateDict, WeightsError> {
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if is_safetensors {
        let tensors = Tensor::read_safetensors(path).map_err(|e| read_error(path, e))?;
        return Ok(tensors
            .into_iter()
            .filter(|(k, t)| {
                !k.starts_with("optimizer.") && !k.starts_with("extra.") && t.is_floating_point()
            })
            .map(|(k, t)| (k, t.to_kind(Kind::Float)))
            .collect());
    }
    let value = torch_pickle::read(path).map_err(|e| read_error(path, e))?;
    let entries = torch_pickle::into_state_dict(value).map_err(|e| read_error(path, e))?;
    let mut out = Vec::with_capacity(entries.len());
    for (name, t) in &entries {
        if let Some(tensor) =
            to_tensor(t).map_err(|e| read_error(path, format!("`{name}`: {e}")))?
        {
            out.push((name.clone(), tensor));
        }
    }
    Ok(out)
}

/// The name a file's entry has in a Segno network (`architecture.…`, `prediction_head.…`),
/// whichever layout wrote it: DaCapo's `Model` (`architecture.*`, `prediction_head.*` and
/// the same tensors again as `chain.0.*`, `chain.1.*`), a pretrained task's `chain`
/// (`0.*`, `1.*`), `DataParallel`'s `module.` prefix, or a bare backbone (`unet.*`).
pub fn segno_name(name: &str) -> String {
    let name = name.strip_prefix("module.").unwrap_or(name);
    for (from, to) in [
        ("chain.0.", "architecture."),
        ("chain.1.", "prediction_head."),
        ("0.", "architecture."),
        ("1.", "prediction_head."),
        ("unet.", "architecture.unet."),
    ] {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    name.to_string()
}

/// What [`load_into`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    /// Network tensors set from the file.
    pub loaded: usize,
    /// Network tensors kept as initialised (missing from the file or of another shape).
    pub kept: Vec<String>,
    /// File entries the network has no place for.
    pub unused: Vec<String>,
}

/// Sets the variables of `vs` from `state` (names mapped by [`segno_name`]). With
/// `partial` false every variable must be present with its shape; with `partial` true the
/// matching ones are loaded and the others keep their initial values (DaCapo's rule for
/// starting from another run).
pub fn load_into(
    vs: &nn::VarStore,
    state: &StateDict,
    path: &Path,
    partial: bool,
) -> Result<LoadReport, WeightsError> {
    let mut by_name: BTreeMap<String, &Tensor> = BTreeMap::new();
    for (name, t) in state {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        // The first of duplicated layouts wins (they hold the same tensors).
        by_name.entry(segno_name(name)).or_insert(t);
    }
    // Sorted, so reports do not depend on hash order.
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut report = LoadReport::default();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match by_name.get(name) {
            Some(t) if t.size() == var.size() => {}
            Some(t) => {
                problems.push(format!(
                    "`{name}` has shape {:?} in the file, {:?} in the network",
                    t.size(),
                    var.size()
                ));
                report.kept.push(name.clone());
            }
            None => {
                problems.push(format!("`{name}` is missing"));
                report.kept.push(name.clone());
            }
        }
    }
    report.unused = by_name
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    if !partial && !problems.is_empty() {
        let total = problems.len();
        let mut message = problems.into_iter().take(6).collect::<Vec<_>>().join("; ");
        if total > 6 {
            message.push_str(&format!(" (and {} more)", total - 6));
        }
        if let Some(example) = report.unused.first() {
            message.push_str(&format!("; the file has e.g. `{example}`"));
        }
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            message,
        });
    }
    tch::no_grad(|| -> Result<(), tch::TchError> {
        for (name, var) in &vars {
            if let Some(t) = by_name.get(name).filter(|t| t.size() == var.size()) {
                let mut v = var.shallow_clone();
                v.f_copy_(&t.f_to_device(var.device())?)?;
                report.loaded += 1;
            }
        }
        Ok(())
    })
    .map_err(|e| read_error(path, e))?;
    if partial && report.loaded == 0 {
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            message: "no parameter has a name and shape of the network".into(),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_every_layout_map_to_segno_names() {
        for (from, to) in [
            (
                "architecture.unet.l_conv.0.conv_pass.0.weight",
                "architecture.unet.l_conv.0.conv_pass.0.weight",
            ),
            (
                "chain.0.unet.l_conv.0.conv_pass.0.weight",
                "architecture.unet.l_conv.0.conv_pass.0.weight",
            ),
            ("chain.1.weight", "prediction_head.weight"),
            (
                "0.unet.r_up.0.up.weight",
                "architecture.unet.r_up.0.up.weight",
            ),
            ("1.bias", "prediction_head.bias"),
            ("module.prediction_head.bias", "prediction_head.bias"),
            (
                "unet.l_conv.1.conv_pass.2.bias",
                "architecture.unet.l_conv.1.conv_pass.2.bias",
            ),
        ] {
            assert_eq!(segno_name(from), to, "{from}");
        }
    }
}

/// What [`export_dacapo`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    /// The file written.
    pub output: PathBuf,
    /// Tensors in the model state dict (each also under its `chain.*` alias).
    pub tensors: usize,
    /// Trainable parameters the optimizer state lists.
    pub parameters: usize,
}

/// Writes the model of a Segno checkpoint as a file DaCapo's weights loader reads:
/// `torch.save({"model": state_dict, "optimizer": RAdam state_dict})` with DaCapo's names
/// (`architecture.*`, `prediction_head.*` and the same tensors as `chain.0.*`,
/// `chain.1.*`) and an optimizer state without moments (DaCapo's parameter order is not
/// recorded in a Segno checkpoint; DaCapo resumes with fresh moments at learning rate `lr`).
pub fn export_dacapo(
    checkpoint: &Path,
    output: &Path,
    lr: f64,
) -> Result<ExportReport, WeightsError> {
    use torch_save::Py;
    let state = read_state_dict(checkpoint)?;
    let mut entries: Vec<(String, Vec<i64>, Vec<f32>)> = Vec::new();
    for (name, t) in state {
        let name = segno_name(&name);
        let shape = t.size();
        let values = Vec::<f32>::try_from(t.flatten(0, -1))
            .map_err(|e| read_error(checkpoint, format!("`{name}`: {e}")))?;
        entries.push((name, shape, values));
    }
    // The network's own order is not recorded: backbone first, then the head.
    entries.sort_by_key(|(n, _, _)| (!n.starts_with("architecture."), n.clone()));
    let mut model = Vec::new();
    let mut aliases = Vec::new();
    let mut storages = Vec::new();
    let mut parameters = 0;
    for (k, (name, shape, values)) in entries.into_iter().enumerate() {
        let tensor = Py::Tensor { storage: k, shape };
        if !(name.ends_with("running_mean") || name.ends_with("running_var")) {
            parameters += 1;
        }
        let alias = name
            .strip_prefix("architecture.")
            .map(|r| format!("chain.0.{r}"))
            .or_else(|| {
                name.strip_prefix("prediction_head.")
                    .map(|r| format!("chain.1.{r}"))
            });
        if let Some(alias) = alias {
            aliases.push((Py::Str(alias), tensor.clone()));
        }
        model.push((Py::Str(name), tensor));
        storages.push(values);
    }
    let tensors = model.len();
    model.extend(aliases);
    let group = Py::Dict(vec![
        (Py::Str("lr".into()), Py::Float(lr)),
        (
            Py::Str("betas".into()),
            Py::Tuple(vec![Py::Float(0.9), Py::Float(0.999)]),
        ),
        (Py::Str("eps".into()), Py::Float(1e-8)),
        (Py::Str("weight_decay".into()), Py::Int(0)),
        (Py::Str("foreach".into()), Py::None),
        (Py::Str("maximize".into()), Py::Bool(false)),
        (Py::Str("capturable".into()), Py::Bool(false)),
        (Py::Str("differentiable".into()), Py::Bool(false)),
        (Py::Str("decoupled_weight_decay".into()), Py::Bool(false)),
        (
            Py::Str("params".into()),
            Py::List((0..parameters as i64).map(Py::Int).collect()),
        ),
    ]);
    let root = Py::Dict(vec![
        (Py::Str("model".into()), Py::OrderedDict(model)),
        (
            Py::Str("optimizer".into()),
            Py::Dict(vec![
                (Py::Str("state".into()), Py::Dict(Vec::new())),
                (Py::Str("param_groups".into()), Py::List(vec![group])),
            ]),
        ),
    ]);
    torch_save::write(output, &root, &storages).map_err(|e| read_error(output, e))?;
    Ok(ExportReport {
        output: output.to_path_buf(),
        tensors,
        parameters,
    })
}
