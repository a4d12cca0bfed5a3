//! The options file (`dacapo.yaml`): store type, project directory and compute context.

use serde_json::{Map, Value};

use super::schema::{
    check_unknown_keys, child, decode_field, describe, expect_map, Check, Decode, Encode,
    FieldInfo, Problems, Shape, Validate,
};

config_struct! {
    /// Global options: which store to use, where runs live and where work is computed.
    OptionsConfig {
        /// Store backend: `files` (a project directory; the only one Segno supports) or `mongo`.
        store_type ["type"]: String = "files".to_string(),
        /// Root directory of all configs, stats, checkpoints and arrays.
        runs_base_dir: String = "~/dacapo".to_string(),
        /// Where training and blockwise work run.
        compute_context: ComputeContextConfig = ComputeContextConfig::default(),
        /// MongoDB host (only for the `mongo` store type).
        #[no_effect = "Segno keeps everything in the project directory (the `files` store); there is no MongoDB"]
        mongo_db_host: Option<String> = None,
        /// MongoDB database name (only for the `mongo` store type).
        #[no_effect = "Segno keeps everything in the project directory (the `files` store); there is no MongoDB"]
        mongo_db_name: Option<String> = None,
    }
}

impl Check for OptionsConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        match self.store_type.as_str() {
            "files" => {}
            "mongo" => problems.push(
                &child(path, "type"),
                "the mongo store is not supported; use `files` (a project directory)",
            ),
            other => problems.push(
                &child(path, "type"),
                format!("`{other}` is not a store type; use `files`"),
            ),
        }
        if self.runs_base_dir.trim().is_empty() {
            problems.push(&child(path, "runs_base_dir"), "must not be empty");
        }
    }
}

config_struct! {
    /// Runs work on this machine (GPU when available, else CPU).
    LocalTorchConfig {
        /// Run blockwise workers as separate processes.
        #[no_effect = "Segno's block jobs run as threads of one process"]
        distribute_workers: Option<bool> = Some(false),
        /// `cuda`, `cuda:N` or `cpu`: the device `--device auto` (the default) means; null
        /// picks CUDA when available.
        device ["_device", "device"]: Option<String> = None,
        /// GB of GPU memory to leave free.
        #[no_effect = "DaCapo declares it without enforcing it; Segno sizes prediction blocks by --max-block-input"]
        oom_limit: Option<f64> = Some(4.2),
    }
}

impl Check for LocalTorchConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if let Some(d) = &self.device {
            let ok = d == "cpu"
                || d == "cuda"
                || d.strip_prefix("cuda:")
                    .is_some_and(|n| n.parse::<u32>().is_ok());
            if !ok {
                problems.push(
                    &child(path, "_device"),
                    format!("`{d}` is not a device; use cpu, cuda or cuda:N"),
                );
            }
        }
    }
}

config_struct! {
    /// Submits work to an LSF cluster with `bsub`.
    BsubConfig {
        /// Run blockwise workers as separate jobs.
        #[no_effect = "Segno's block jobs run as threads of one process"]
        distribute_workers: Option<bool> = Some(true),
        /// LSF queue (`bsub -q`); with the GPUs, CPUs and billing project below, the
        /// defaults of LSF submission in the Runs section.
        queue: String = "local".to_string(),
        /// GPUs per job (`-gpu num=N`).
        num_gpus: u32 = 1,
        /// CPUs per job (`bsub -n`).
        num_cpus: u32 = 5,
        /// Project to bill (`bsub -P`).
        billing: Option<String> = None,
    }
}

impl Check for BsubConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.num_cpus == 0 {
            problems.push(&child(path, "num_cpus"), "must be at least 1");
        }
    }
}

/// Where work is computed: `{type: LocalTorch|Bsub, config: {…}}` in the options file.
#[derive(Debug, Clone, PartialEq)]
pub enum ComputeContextConfig {
    /// This machine.
    LocalTorch(LocalTorchConfig),
    /// An LSF cluster.
    Bsub(BsubConfig),
}

impl Default for ComputeContextConfig {
    fn default() -> Self {
        Self::LocalTorch(LocalTorchConfig {
            distribute_workers: Some(false),
            device: None,
            oom_limit: Some(4.2),
        })
    }
}

const COMPUTE_CONTEXT_FIELDS: &[FieldInfo] = &[
    FieldInfo {
        name: "type",
        key: "type",
        aliases: &[],
        raw_help: "`LocalTorch` or `Bsub`.",
        type_name: "String",
        expected: <String as Decode>::expected,
        default: None,
        shape: <String as Decode>::shape,
        choices: &["LocalTorch", "Bsub"],
        no_effect: None,
    },
    FieldInfo {
        name: "config",
        key: "config",
        aliases: &[],
        raw_help: "Options of the chosen compute context.",
        type_name: "mapping",
        expected: || "a mapping of the chosen context's options".to_string(),
        default: Some(|| Value::Object(Map::new())),
        shape: || Shape::Any,
        choices: &[],
        no_effect: None,
    },
];

impl Decode for ComputeContextConfig {
    fn expected() -> String {
        "a compute context mapping {type: LocalTorch|Bsub, config: {…}}".into()
    }

    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        let map = expect_map(value, path, problems, "compute context")?;
        check_unknown_keys(
            map,
            COMPUTE_CONTEXT_FIELDS,
            "compute_context",
            path,
            problems,
        );
        let kind = decode_field::<String>(map, "type", &[], path, problems, None)?;
        let empty = Value::Object(Map::new());
        let config = match map.get("config") {
            None | Some(Value::Null) => &empty,
            Some(v) => v,
        };
        let cpath = child(path, "config");
        match kind.as_str() {
            "LocalTorch" => {
                LocalTorchConfig::decode(config, &cpath, problems).map(Self::LocalTorch)
            }
            "Bsub" => BsubConfig::decode(config, &cpath, problems).map(Self::Bsub),
            other => {
                problems.push(
                    &child(path, "type"),
                    format!(
                        "unknown compute context {}; use LocalTorch or Bsub",
                        describe(&Value::String(other.to_string()))
                    ),
                );
                None
            }
        }
    }
}

impl Encode for ComputeContextConfig {
    fn encode(&self) -> Value {
        let (kind, config) = match self {
            Self::LocalTorch(c) => ("LocalTorch", c.encode()),
            Self::Bsub(c) => ("Bsub", c.encode()),
        };
        let mut map = Map::new();
        map.insert("type".into(), Value::String(kind.into()));
        map.insert("config".into(), config);
        Value::Object(map)
    }
}

impl Validate for ComputeContextConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        let cpath = child(path, "config");
        match self {
            Self::LocalTorch(c) => c.validate(&cpath, problems),
            Self::Bsub(c) => c.validate(&cpath, problems),
        }
    }
}
