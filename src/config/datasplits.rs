//! Dataset and DataSplit configs: which volumes are used for training and validation.

use crate::geometry::Coordinate;

use super::arrays::{ArrayConfig, DummyArrayConfig};
use super::check_name;
use super::schema::{child, index, Check, Problems};

config_enum! {
    /// One training or validation volume: raw intensities with ground truth and an optional mask.
    DatasetConfig: named {
        /// Raw + ground truth (+ mask) arrays.
        RawGt(RawGTDatasetConfig),
        /// A placeholder dataset for tests.
        Dummy(DummyDatasetConfig),
    }
}

config_struct! {
    /// A volume made of a raw array, a ground-truth array and an optional mask.
    RawGTDatasetConfig {
        /// Name of this dataset (free text; generated names contain `/`, `[`, `]`, `&`).
        name: String,
        /// Relative frequency with which training samples come from this dataset.
        weight: u32 = 1,
        /// Input intensities.
        raw_config: Option<ArrayConfig> = None,
        /// Ground truth; required for training and validation.
        gt_config: Option<ArrayConfig> = None,
        /// Where the mask is 0 the loss ignores the voxel; 1 means use it.
        mask_config: Option<ArrayConfig> = None,
        /// World coordinates (nm, inside the ground truth's region) that training patches of
        /// this dataset are centred on, each equally often; all locations when absent.
        sample_points: Option<Vec<Coordinate>> = None,
    }
}

impl Check for RawGTDatasetConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.weight == 0 {
            problems.push(
                &child(path, "weight"),
                "must be at least 1 (0 would never sample this dataset; remove it instead)",
            );
        }
        if self.raw_config.is_none() {
            problems.push(&child(path, "raw_config"), "a dataset needs a raw array");
        }
        if self.gt_config.is_none() {
            problems.push(
                &child(path, "gt_config"),
                "a dataset needs ground truth for training and validation",
            );
        }
        if let Some(points) = &self.sample_points {
            if points.is_empty() {
                problems.push(
                    &child(path, "sample_points"),
                    "is an empty list; use null to sample everywhere",
                );
            }
        }
    }
}

config_struct! {
    /// A placeholder dataset for tests; never valid for training.
    #[refused = "dummy datasets hold no data to train or validate on"]
    DummyDatasetConfig {
        /// Name of this dataset.
        name: String,
        /// Relative sampling frequency.
        weight: u32 = 1,
        /// The placeholder raw array.
        raw_config: ArrayConfig = ArrayConfig::Dummy(DummyArrayConfig { name: "dummy_array".to_string() }),
    }
}

impl Check for DummyDatasetConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_enum! {
    /// A DataSplit: the training datasets and the validation datasets of an experiment.
    DataSplitConfig: named {
        /// Explicit lists of training and validation datasets.
        TrainValidate(TrainValidateDataSplitConfig),
        /// Datasets discovered in `train`/`test` groups of one zarr container.
        Simple(SimpleDataSplitConfig),
        /// A placeholder datasplit for tests.
        Dummy(DummyDataSplitConfig),
    }
}

config_struct! {
    /// Explicit lists of training and validation datasets (what the DataSplit wizard writes).
    TrainValidateDataSplitConfig {
        /// Name of this datasplit.
        name: String,
        /// Datasets sampled during training; they must share raw and GT voxel sizes.
        train_configs: Vec<DatasetConfig>,
        /// Datasets predicted and scored at every validation; may be empty (no validation).
        validate_configs: Vec<DatasetConfig>,
    }
}

impl Check for TrainValidateDataSplitConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        let tpath = child(path, "train_configs");
        if self.train_configs.is_empty() {
            problems.push(&tpath, "needs at least one training dataset");
        }
        let mut names = std::collections::BTreeMap::new();
        for (list, key) in [
            (&self.train_configs, "train_configs"),
            (&self.validate_configs, "validate_configs"),
        ] {
            for (i, d) in list.iter().enumerate() {
                let here = index(&child(path, key), i);
                if let Some(first) = names.insert((key, d.name().to_string()), here.clone()) {
                    problems.push(
                        &here,
                        format!("dataset name `{}` is already used at {first}", d.name()),
                    );
                }
            }
        }
    }
}

config_struct! {
    /// Datasets discovered inside one zarr container: every group below `train_group_name`
    /// is a training dataset, every group below `validate_group_name` a validation dataset.
    #[refused = "Segno trains on TrainValidateDataSplitConfig datasplits; make one with the DataSplit wizard or `segno datasplit` from the same container"]
    SimpleDataSplitConfig {
        /// Name of this datasplit.
        name: String,
        /// Path of the root zarr container.
        path: String,
        /// Group holding the training datasets.
        train_group_name: String = "train".to_string(),
        /// Group holding the validation datasets.
        validate_group_name: String = "test".to_string(),
        /// Name of the raw array inside each dataset group.
        raw_name: String = "raw".to_string(),
        /// Name of the ground-truth array inside each dataset group.
        gt_name: String = "labels".to_string(),
        /// Name of the optional mask array inside each dataset group.
        mask_name: String = "mask".to_string(),
    }
}

impl Check for SimpleDataSplitConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.path.trim().is_empty() {
            problems.push(&child(path, "path"), "must not be empty");
        }
        if self.train_group_name == self.validate_group_name {
            problems.push(
                &child(path, "validate_group_name"),
                format!(
                    "is the same group as train_group_name (`{}`): validation data would be training data",
                    self.train_group_name
                ),
            );
        }
    }
}

config_struct! {
    /// A placeholder datasplit for tests: one dummy training dataset, no validation.
    #[refused = "a dummy datasplit holds no data to train or validate on"]
    DummyDataSplitConfig {
        /// Name of this datasplit.
        name: String,
        /// The placeholder training dataset.
        train_config: DatasetConfig = DatasetConfig::Dummy(DummyDatasetConfig {
            name: "dummy_dataset".to_string(),
            weight: 1,
            raw_config: ArrayConfig::Dummy(DummyArrayConfig { name: "dummy_array".to_string() }),
        }),
    }
}

impl Check for DummyDataSplitConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}
