//! Checkpoints: one safetensors file per iteration holding the model's parameters and
//! buffers (DaCapo's names), the optimizer's moments (`optimizer.exp_avg.<name>`,
//! `optimizer.exp_avg_sq.<name>`), its step count and any extra training state, written
//! atomically. PyTorch loads the model part with `safetensors.torch.load_file`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{nn, Kind, Tensor};

use super::optim::RAdam;

/// Errors reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint does not fit the model (another architecture or task).
    #[error("{path}: does not fit this model: {message}")]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// Missing, unexpected or differently shaped tensors.
        message: String,
    },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes model, optimizer and `extra` tensors to `path` (temporary file + rename).
pub fn save(
    path: &Path,
    vs: &nn::VarStore,
    optimizer: &RAdam,
    extra: &BTreeMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in vars {
        named.push((name, t.detach().to_device(tch::Device::Cpu)));
    }
    for (name, m) in &optimizer.moments {
        named.push((
            format!("optimizer.exp_avg.{name}"),
            m.exp_avg.to_device(tch::Device::Cpu),
        ));
        named.push((
            format!("optimizer.exp_avg_sq.{name}"),
            m.exp_avg_sq.to_device(tch::Device::Cpu),
        ));
    }
    named.push((
        "optimizer.step".into(),
        Tensor::from_slice(&[optimizer.step as i64]),
    ));
    for (name, t) in extra {
        named.push((format!("extra.{name}"), t.to_device(tch::Device::Cpu)));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.partial",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint")
    ));
    let written = Tensor::write_safetensors(&named, &tmp)
        .map_err(|e| io(&tmp, e))
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&tmp, e))
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if written.is_err() {
        // A full disk leaves no partial checkpoint behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Loads a checkpoint into `vs` (every variable must be present with its shape) and, if
/// given, into `optimizer`; returns the `extra` tensors.
pub fn load(
    path: &Path,
    vs: &nn::VarStore,
    optimizer: Option<&mut RAdam>,
) -> Result<BTreeMap<String, Tensor>, CheckpointError> {
    let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| io(path, e))?
        .into_iter()
        .collect();
    let vars = vs.variables();
    let mut problems = Vec::new();
    for (name, var) in &vars {
        match tensors.get(name) {
            None => problems.push(format!("missing `{name}`")),
            Some(t) if t.size() != var.size() => problems.push(format!(
                "`{name}` has shape {:?}, the model {:?}",
                t.size(),
                var.size()
            )),
            Some(_) => {}
        }
    }
    let unexpected: Vec<&String> = tensors
        .keys()
        .filter(|k| {
            !k.starts_with("optimizer.") && !k.starts_with("extra.") && !vars.contains_key(*k)
        })
        .collect();
    for k in unexpected.iter().take(5) {
        problems.push(format!("unexpected `{k}`"));
    }
    if !problems.is_empty() {
        let total = problems.len();
        let mut message = problems.into_iter().take(8).collect::<Vec<_>>().join(", ");
        if total > 8 {
            message.push_str(&format!(" (and {} more)", total - 8));
        }
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            message,
        });
    }
    tch::no_grad(|| -> Result<(), CheckpointError> {
        for (name, var) in &vars {
            if let Some(t) = tensors.get(name) {
                let mut v = var.shallow_clone();
                v.f_copy_(&t.to_device(var.device()))
                    .map_err(|e| io(path, e))?;
            }
        }
        Ok(())
    })?;
    if let Some(opt) = optimizer {
        for (name, m) in opt.moments.iter_mut() {
            let (Some(a), Some(b)) = (
                tensors.get(&format!("optimizer.exp_avg.{name}")),
                tensors.get(&format!("optimizer.exp_avg_sq.{name}")),
            ) else {
                return Err(CheckpointError::Mismatch {
                    path: path.to_path_buf(),
                    message: format!("no optimizer state for `{name}`"),
                });
            };
            tch::no_grad(|| -> Result<(), tch::TchError> {
                m.exp_avg.f_copy_(&a.to_device(m.exp_avg.device()))?;
                m.exp_avg_sq.f_copy_(&b.to_device(m.exp_avg_sq.device()))?;
                Ok(())
            })
            .map_err(|e| io(path, e))?;
        }
        opt.step = tensors
            .get("optimizer.step")
            .map(|t| t.to_kind(Kind::Int64).int64_value(&[0]) as u64)
            .unwrap_or(0);
    }
    Ok(tensors
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("extra.").map(|n| (n.to_string(), v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ArchitectureConfig, CNNectomeUNetConfig};
    use crate::geometry::Coordinate;
    use crate::nn::{HeadSpec, Model};
    use crate::store::layout::RunDir;

    fn arch(fmaps: u32) -> ArchitectureConfig {
        ArchitectureConfig::CnnectomeUnet(CNNectomeUNetConfig {
            name: "a".into(),
            input_shape: Coordinate::from([20, 20, 20]),
            fmaps_out: 2,
            fmaps_in: 1,
            num_fmaps: fmaps,
            fmap_inc_factor: 2,
            downsample_factors: vec![Coordinate::from([2, 2, 2])],
            kernel_size_down: None,
            kernel_size_up: None,
            eval_shape_increase: None,
            upsample_factors: None,
            constant_upsample: true,
            padding: "valid".into(),
            use_attention: false,
            batch_norm: true,
        })
    }

    #[test]
    fn round_trip_restores_model_and_optimizer() {
        tch::set_num_threads(1);
        let dir = tempfile::tempdir().unwrap();
        let head = HeadSpec {
            channels: 1,
            kernel_size: 1,
            eval_activation: crate::nn::Activation::Identity,
        };
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = Model::new(&vs.root(), &arch(2), &head).unwrap();
        let mut opt = RAdam::new(&vs);
        let x = Tensor::randn([1, 1, 20, 20, 20], (Kind::Float, tch::Device::Cpu));
        for _ in 0..3 {
            opt.zero_grad();
            model
                .forward_t(&x, true)
                .unwrap()
                .mean(Kind::Float)
                .backward();
            opt.step(0.01).unwrap();
        }
        let path = RunDir::from_dir(dir.path()).checkpoint(3);
        let mut extra = BTreeMap::new();
        extra.insert("balance".to_string(), Tensor::from_slice(&[1.0f64, 2.0]));
        save(&path, &vs, &opt, &extra).unwrap();
        assert_eq!(RunDir::from_dir(dir.path()).latest_checkpoint(), Some(3));

        let vs2 = nn::VarStore::new(tch::Device::Cpu);
        let model2 = Model::new(&vs2.root(), &arch(2), &head).unwrap();
        let mut opt2 = RAdam::new(&vs2);
        let back = load(&path, &vs2, Some(&mut opt2)).unwrap();
        assert_eq!(opt2.step, 3);
        assert_eq!(
            Vec::<f64>::try_from(&back["balance"]).unwrap(),
            vec![1.0, 2.0]
        );
        let a = model.forward_t(&x, false).unwrap();
        let b = model2.forward_t(&x, false).unwrap();
        assert_eq!(a.size(), b.size());
        assert_eq!(f64::try_from((&a - &b).abs().max()).unwrap(), 0.0);
        for (name, m) in &opt.moments {
            let m2 = &opt2.moments[name];
            assert_eq!(
                f64::try_from((&m.exp_avg_sq - &m2.exp_avg_sq).abs().max()).unwrap(),
                0.0,
                "{name}"
            );
        }
        // Another architecture is refused with the offending tensors named, and the
        // model is left as it was.
        let vs3 = nn::VarStore::new(tch::Device::Cpu);
        let _m3 = Model::new(&vs3.root(), &arch(3), &head).unwrap();
        let before: f64 = vs3.variables()["prediction_head.bias"].double_value(&[0]);
        let err = load(&path, &vs3, None).unwrap_err();
        assert!(
            err.to_string().contains("does not fit") && err.to_string().contains("shape"),
            "{err}"
        );
        assert_eq!(
            vs3.variables()["prediction_head.bias"].double_value(&[0]),
            before
        );
    }
}
