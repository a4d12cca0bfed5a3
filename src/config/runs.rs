//! Run configs (one experiment: task + architecture + trainer + datasplit + iterations)
//! and start configs (initial weights from another run).

use super::architectures::ArchitectureConfig;
use super::check_name;
use super::datasplits::DataSplitConfig;
use super::schema::{child, Check, Problems};
use super::tasks::TaskConfig;
use super::trainers::TrainerConfig;

config_enum! {
    /// Where the initial weights of a run come from (DaCapo's StartConfig family).
    InitialWeightsConfig {
        /// A checkpoint of another run in the same project.
        Start(StartConfig),
        /// A published COSEM checkpoint.
        Cosem(CosemStartConfig),
    }
}

config_struct! {
    /// Starts from a checkpoint of another run: `checkpoints/<criterion>` if it exists,
    /// else `checkpoints/iterations/<criterion>`.
    StartConfig {
        /// Name of the run to take the weights from.
        run: String,
        /// Checkpoint key: a criterion name or an iteration number (as text, e.g. "200000").
        criterion: String,
    }
}

impl Check for StartConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.run.trim().is_empty() {
            problems.push(&child(path, "run"), "must name a run");
        }
        if self.criterion.trim().is_empty() {
            problems.push(
                &child(path, "criterion"),
                "must name a criterion or an iteration",
            );
        }
    }
}

config_struct! {
    /// Starts from a published COSEM checkpoint; output channels are matched by class name.
    CosemStartConfig {
        /// COSEM setup name, e.g. "setup04".
        run: String,
        /// Checkpoint iteration, e.g. "1820500".
        criterion: String,
    }
}

impl Check for CosemStartConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.run.trim().is_empty() {
            problems.push(&child(path, "run"), "must name a COSEM setup");
        }
        if self.criterion.trim().is_empty() {
            problems.push(
                &child(path, "criterion"),
                "must name a checkpoint iteration",
            );
        }
    }
}

config_struct! {
    /// One experiment: train `architecture_config` on `datasplit_config` for `task_config`
    /// with `trainer_config` for `num_iterations`, validating every `validation_interval`.
    RunConfig {
        /// Name of the run; also the name of its directory in the project.
        name: String,
        /// Replicate index of otherwise identical runs.
        repetition: u32 = 0,
        /// Train until this many iterations are done.
        num_iterations: u64,
        /// Save a checkpoint and validate every this many iterations.
        validation_interval: u64 = 1000,
        /// What to learn.
        task_config: TaskConfig,
        /// The network backbone.
        architecture_config: ArchitectureConfig,
        /// How to train.
        trainer_config: TrainerConfig,
        /// The training and validation data.
        datasplit_config: DataSplitConfig,
        /// Initial weights (random initialisation when null).
        start_config: Option<InitialWeightsConfig> = None,
    }
}

impl Check for RunConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.num_iterations == 0 {
            problems.push(&child(path, "num_iterations"), "must be at least 1");
        }
        if self.validation_interval == 0 {
            problems.push(&child(path, "validation_interval"), "must be at least 1");
        }
    }
}

/// Keys of a newer DaCapo run document that belong to the trainer in our model, with the
/// trainer key each one moves to.
const RUN_LEVEL_TRAINER_KEYS: [(&str, &str); 4] = [
    ("batch_size", "batch_size"),
    ("learning_rate", "learning_rate"),
    ("snapshot_interval", "snapshot_interval"),
    ("num_workers", "num_data_fetchers"),
];

/// Rewrites a run document of the newer DaCapo dialect, where batch size, learning rate,
/// snapshot interval and data workers are run fields, into the v0.3.x shape where they
/// belong to the trainer. Values already present in the trainer win. Other documents are
/// returned unchanged.
pub fn lift_run_dialect(mut doc: serde_json::Value) -> serde_json::Value {
    let Some(run) = doc.as_object_mut() else {
        return doc;
    };
    let moved: Vec<(&str, serde_json::Value)> = RUN_LEVEL_TRAINER_KEYS
        .iter()
        .filter_map(|(from, to)| run.remove(*from).map(|v| (*to, v)))
        .collect();
    if moved.is_empty() {
        return doc;
    }
    if let Some(serde_json::Value::Object(trainer)) = run.get_mut("trainer_config") {
        for (key, value) in moved {
            if value.is_null() && key != "snapshot_interval" {
                continue;
            }
            trainer.entry(key.to_string()).or_insert(value);
        }
    }
    doc
}
