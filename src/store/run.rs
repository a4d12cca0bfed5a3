//! A run's record of how it was trained (`<run>/run.json`): the seed, and for every dataset
//! the steps its raw data went through before the network (normalisation, resampling) with
//! the voxel size the network saw. Whatever later uses the trained run (prediction, apply)
//! reads new data through the recorded steps, so it sees what training and validation saw.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::array::input::InputTransform;
use crate::store::layout::RunDir;

/// Whether a dataset was trained on or validated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetRole {
    /// A training dataset.
    Train,
    /// A validation dataset.
    Validate,
}

/// How one dataset's raw data reached the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInput {
    /// The dataset's name in the datasplit.
    pub dataset: String,
    /// Trained or validated on.
    pub role: DatasetRole,
    /// The raw data's steps, source and voxel sizes.
    pub transform: InputTransform,
}

/// A dataset whose raw chain cannot be re-applied to another volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsupportedInput {
    /// The dataset's name.
    pub dataset: String,
    /// Trained or validated on.
    pub role: DatasetRole,
    /// Why its chain cannot be carried over.
    pub reason: String,
}

/// How a run was trained, as `segno train` records it when training starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Seed of weight initialisation and sampling.
    pub seed: u64,
    /// Every dataset's input transform, training datasets first.
    pub inputs: Vec<DatasetInput>,
    /// Datasets whose raw chain cannot be re-applied to another volume, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<UnsupportedInput>,
    /// `(scale, shift)` applied to the transformed raw values last (the trainer's
    /// IntensityScaleShift augments), at training and at prediction alike.
    pub input_scale_shift: (f32, f32),
    /// The Segno version that started the training.
    pub segno_version: String,
}

impl RunRecord {
    /// The input transform to read a new volume with: that of dataset `like` when given,
    /// else the one every training dataset shares. Errors list the datasets to choose from.
    pub fn input_for(&self, like: Option<&str>) -> Result<&DatasetInput, String> {
        let names = || {
            self.inputs
                .iter()
                .map(|d| {
                    format!(
                        "`{}` ({}: {})",
                        d.dataset,
                        match d.role {
                            DatasetRole::Train => "train",
                            DatasetRole::Validate => "validate",
                        },
                        d.transform.describe()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(name) = like {
            if let Some(u) = self.unsupported.iter().find(|u| u.dataset == name) {
                return Err(format!("dataset `{name}`: {}", u.reason));
            }
            return self
                .inputs
                .iter()
                .find(|d| d.dataset == name)
                .ok_or_else(|| {
                    format!("the run has no dataset `{name}`; its datasets: {}", names())
                });
        }
        let mut train = self.inputs.iter().filter(|d| d.role == DatasetRole::Train);
        let Some(first) = train.next() else {
            return Err(match self.unsupported.first() {
                Some(u) => format!("dataset `{}`: {}", u.dataset, u.reason),
                None => "the run records no training dataset".into(),
            });
        };
        let all_supported = !self
            .unsupported
            .iter()
            .any(|u| u.role == DatasetRole::Train);
        if all_supported && train.all(|d| d.transform.same_as(&first.transform)) {
            Ok(first)
        } else {
            Err(format!(
                "the run's training datasets read their raw data differently; choose the one whose normalisation and voxel size fit this volume (--like DATASET): {}",
                names()
            ))
        }
    }
}

/// Reads the record of the run in `run_dir`; `None` when the run has none (not trained by
/// this version yet).
pub fn read_record(run_dir: &Path) -> Result<Option<RunRecord>, StoreError> {
    super::read_json_file(&RunDir::from_dir(run_dir).record_file(), "a run record")
}

/// Writes the record of the run in `run_dir` atomically.
pub fn write_record(run_dir: &Path, record: &RunRecord) -> Result<(), StoreError> {
    let path = RunDir::from_dir(run_dir).record_file();
    let text = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Malformed {
        path: path.clone(),
        message: e.to_string(),
    })?;
    super::atomic::write_atomic(&path, &text, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::input::InputStep;
    use crate::geometry::Coordinate;

    fn input(name: &str, role: DatasetRole, max: f64) -> DatasetInput {
        DatasetInput {
            dataset: name.into(),
            role,
            transform: InputTransform {
                steps: vec![InputStep::Intensities { min: 0.0, max }],
                source: format!("{name}.zarr/raw"),
                source_data_type: "uint8".into(),
                source_voxel_size_nm: Coordinate::from([8, 8, 8]),
                voxel_size_nm: Coordinate::from([8, 8, 8]),
                channels: 1,
            },
        }
    }

    #[test]
    fn records_round_trip_and_choose_the_shared_transform() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_record(dir.path()).unwrap(), None);
        let mut record = RunRecord {
            seed: 42,
            inputs: vec![
                input("a", DatasetRole::Train, 255.0),
                input("b", DatasetRole::Train, 255.0),
                input("v", DatasetRole::Validate, 200.0),
            ],
            unsupported: Vec::new(),
            input_scale_shift: (2.0, -1.0),
            segno_version: "0.1.0".into(),
        };
        write_record(dir.path(), &record).unwrap();
        assert_eq!(read_record(dir.path()).unwrap().as_ref(), Some(&record));
        // Both training datasets share 0..255 (the other source path does not matter).
        assert_eq!(record.input_for(None).unwrap().dataset, "a");
        assert_eq!(record.input_for(Some("v")).unwrap().dataset, "v");
        let err = record.input_for(Some("x")).unwrap_err();
        assert!(
            err.contains("no dataset `x`") && err.contains("`v` (validate"),
            "{err}"
        );
        record.inputs[1] = input("b", DatasetRole::Train, 4095.0);
        let err = record.input_for(None).unwrap_err();
        assert!(err.contains("--like") && err.contains("[0, 4095]"), "{err}");
    }

    #[test]
    fn a_damaged_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            RunDir::from_dir(dir.path()).record_file(),
            "{\"seed\": \"x\"}",
        )
        .unwrap();
        let err = read_record(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("run.json") && err.contains("not a run record"),
            "{err}"
        );
    }
}
