//! Operations the command line and the app both offer, above the engine modules: each takes
//! typed options, does its work through `train`, `task`, `array`, `blockwise` and `store`,
//! and returns a serialisable report that `cli` prints and `gui` shows. Neither front end
//! orchestrates the engine itself.

pub mod apply;
pub mod configs;
pub mod datasplit;
pub mod demo;
pub mod describe;
pub mod evaluate;
pub mod inspect;
pub mod job;
pub mod job_bench;
pub mod live;
pub mod post_process;
pub mod train;
pub mod validate;
pub mod weights;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::array::ArrayError;
use crate::config::{AnyConfig, Family, RunConfig};
use crate::geometry::Roi;
use crate::store::{Project, StoreError};
use crate::train::TrainError;

/// Why an operation failed. Front ends map the kinds to exit codes or messages.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Options that contradict each other or do not parse.
    #[error("{0}")]
    Usage(String),
    /// A config, input or stored file that cannot be used as asked.
    #[error("{0}")]
    Invalid(String),
    /// A config file that does not parse or is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An array could not be opened, read or written.
    #[error(transparent)]
    Array(#[from] ArrayError),
    /// The project's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine failed outside any one run.
    #[error(transparent)]
    Engine(#[from] TrainError),
    /// The engine failed on a run, named.
    #[error("run `{run}`: {source}")]
    Run {
        /// The run's name.
        run: String,
        /// What failed.
        source: TrainError,
    },
    /// The output exists and replacing it was not asked for.
    #[error("{0}")]
    Exists(String),
    /// A file of the operation's own could not be read or written.
    #[error("{0}")]
    Io(String),
}

impl OpsError {
    /// Wraps an engine error of run `run`.
    pub fn run(run: &str) -> impl Fn(TrainError) -> OpsError + '_ {
        move |source| OpsError::Run {
            run: run.to_string(),
            source,
        }
    }
}

/// A region in nanometres as reports carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoiNm {
    /// The region's offset in nm.
    pub offset: Vec<i64>,
    /// The region's shape in nm.
    pub shape: Vec<i64>,
}

impl From<&Roi> for RoiNm {
    fn from(roi: &Roi) -> Self {
        Self {
            offset: roi.offset().to_vec(),
            shape: roi.shape().to_vec(),
        }
    }
}

/// Named scores in a fixed order; serialised as a JSON object whose non-finite values
/// (a criterion that could not be computed) are `null`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NamedScores(pub Vec<(String, f64)>);

impl NamedScores {
    /// Pairs `names` with `values` in order.
    pub fn new(names: &[String], values: &[f64]) -> Self {
        Self(names.iter().cloned().zip(values.iter().copied()).collect())
    }

    /// The value of criterion `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl Serialize for NamedScores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, &value.is_finite().then_some(*value))?;
        }
        map.end()
    }
}

/// The run config stored under `name` in `project`.
pub fn stored_run(project: &Project, name: &str) -> Result<RunConfig, OpsError> {
    match project.configs().retrieve(Family::Runs, name)? {
        AnyConfig::Run(r) => Ok(*r),
        _ => Err(OpsError::Invalid(format!("`{name}` is not a run"))),
    }
}

/// The device named by `choice` (`auto`, `cpu`, `cuda`, `cuda:N`).
pub fn device(choice: &str) -> Result<tch::Device, OpsError> {
    crate::device::choose_device_with_options(Some(choice))
        .map_err(|e| OpsError::Usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_scores_keep_their_order_and_write_failures_as_null() {
        let s = NamedScores::new(
            &["b".to_string(), "a".to_string(), "c".to_string()],
            &[0.5, f64::NAN, f64::INFINITY],
        );
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"b":0.5,"a":null,"c":null}"#
        );
        assert_eq!(s.get("b"), Some(0.5));
        assert_eq!(s.get("z"), None);
    }

    #[test]
    fn a_run_error_names_the_run() {
        let e = OpsError::run("r1")(TrainError::Data("no checkpoint".into()));
        assert_eq!(e.to_string(), "run `r1`: no checkpoint");
    }
}
