//! What a run records about itself in `run.json`: the seed it trains with (given,
//! recorded, or derived from its name and repetition) and how each dataset reads its raw
//! data, checked on resume so checkpoints are never continued on differently read data.

use std::path::Path;

use super::TrainError;
use crate::config::{DataSplitConfig, RunConfig, TrainerConfig};
use crate::store::layout::RunDir;

/// The seed a run trains with when none is given: derived from its name and repetition
/// (SHA-256, 63 bits), so repetitions of one configuration differ and the same run always
/// gets the same seed.
pub fn default_seed(run: &RunConfig) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"segno-seed\0")
        .chain_update(run.name.as_bytes())
        .chain_update(b"\0")
        .chain_update(run.repetition.to_le_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes) & (i64::MAX as u64)
}

/// The seed to train `run` with: `given`, else the one its record holds, else (a run
/// trained before runs recorded their seed) 0 when it has checkpoints, else
/// [`default_seed`]. A `given` seed that differs from the one its checkpoints were trained
/// with is refused: the resumed run would be neither.
pub fn resolve_seed(
    run_dir: &Path,
    run: &RunConfig,
    given: Option<u64>,
) -> Result<u64, TrainError> {
    let record =
        crate::store::run::read_record(run_dir).map_err(|e| TrainError::Data(e.to_string()))?;
    let trained = RunDir::from_dir(run_dir).latest_checkpoint().is_some();
    Ok(match (given, record) {
        (Some(g), Some(r)) if trained && g != r.seed => {
            return Err(TrainError::Data(format!(
                "run `{}` was trained with seed {} (recorded in {}); resuming it with --seed {g} would mix two runs. Resume without --seed, or train a new run",
                run.name,
                r.seed,
                RunDir::from_dir(run_dir).record_file().display()
            )))
        }
        (Some(g), _) => g,
        (None, Some(r)) => r.seed,
        (None, None) if trained => 0,
        (None, None) => default_seed(run),
    })
}

/// How each dataset of `split` reads its raw data (training datasets first), and the
/// datasets whose raw chain cannot be carried over to other volumes.
pub fn dataset_inputs(
    project: &Path,
    split: &crate::config::TrainValidateDataSplitConfig,
) -> Result<
    (
        Vec<crate::store::run::DatasetInput>,
        Vec<crate::store::run::UnsupportedInput>,
    ),
    TrainError,
> {
    use crate::array::input::{InputError, InputTransform};
    use crate::store::run::{DatasetInput, DatasetRole, UnsupportedInput};
    let mut inputs = Vec::new();
    let mut unsupported = Vec::new();
    let roles = split
        .train_configs
        .iter()
        .map(|d| (d, DatasetRole::Train))
        .chain(
            split
                .validate_configs
                .iter()
                .map(|d| (d, DatasetRole::Validate)),
        );
    for (d, role) in roles {
        let crate::config::DatasetConfig::RawGt(c) = d else {
            continue;
        };
        let Some(raw) = &c.raw_config else {
            continue;
        };
        match InputTransform::from_config(raw, project) {
            Ok(transform) => inputs.push(DatasetInput {
                dataset: c.name.clone(),
                role,
                transform,
            }),
            Err(InputError::Unsupported(reason)) => unsupported.push(UnsupportedInput {
                dataset: c.name.clone(),
                role,
                reason,
            }),
            Err(e) => return Err(TrainError::Data(format!("dataset `{}`, raw: {e}", c.name))),
        }
    }
    Ok((inputs, unsupported))
}

/// The record of how `run` trains (or trained) with `seed`, from its configs as they are.
pub fn run_record(
    project: &Path,
    run: &RunConfig,
    seed: u64,
) -> Result<crate::store::run::RunRecord, TrainError> {
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return Err(TrainError::Data(format!(
            "run `{}`: only TrainValidateDataSplitConfig datasplits are supported",
            run.name
        )));
    };
    let (inputs, unsupported) = dataset_inputs(project, split)?;
    let input_scale_shift = match &run.trainer_config {
        TrainerConfig::Gunpowder(t) => super::augment::input_normalisation(&t.augments),
        TrainerConfig::Dummy(_) => (1.0, 0.0),
    };
    Ok(crate::store::run::RunRecord {
        seed,
        inputs,
        unsupported,
        input_scale_shift,
        segno_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Checks that a run with checkpoints still reads its data as its record says; returns
/// whether the record must be (re)written when training starts.
pub(super) fn check_record(
    run_dir: &Path,
    record: &crate::store::run::RunRecord,
    has_checkpoints: bool,
) -> Result<bool, TrainError> {
    let old =
        crate::store::run::read_record(run_dir).map_err(|e| TrainError::Data(e.to_string()))?;
    if let (Some(old), true) = (&old, has_checkpoints) {
        let key = |d: &crate::store::run::DatasetInput| (d.dataset.clone(), d.role);
        for now in &record.inputs {
            let before = old.inputs.iter().find(|o| key(o) == key(now));
            match before {
                Some(b) if b.transform.same_as(&now.transform) => {}
                Some(b) => {
                    return Err(TrainError::Data(format!(
                        "dataset `{}` now reads its raw data as {} at {} nm ({} {}), but the run's checkpoints were trained on {} at {} nm ({} {}) as recorded in {}: restore the datasplit or train a new run",
                        now.dataset,
                        now.transform.describe(),
                        now.transform.voxel_size_nm,
                        now.transform.source_data_type,
                        now.transform.source,
                        b.transform.describe(),
                        b.transform.voxel_size_nm,
                        b.transform.source_data_type,
                        b.transform.source,
                        RunDir::from_dir(run_dir).record_file().display()
                    )))
                }
                None => {}
            }
        }
        if old.input_scale_shift != record.input_scale_shift {
            return Err(TrainError::Data(format!(
                "the trainer's IntensityScaleShift is now scale {} shift {}, but the run's checkpoints were trained with scale {} shift {} (recorded in {}): restore the trainer or train a new run",
                record.input_scale_shift.0,
                record.input_scale_shift.1,
                old.input_scale_shift.0,
                old.input_scale_shift.1,
                RunDir::from_dir(run_dir).record_file().display()
            )));
        }
    }
    // The version that started the training is kept while nothing else changes.
    Ok(old.is_none_or(|o| {
        crate::store::run::RunRecord {
            segno_version: record.segno_version.clone(),
            ..o
        } != *record
    }))
}
