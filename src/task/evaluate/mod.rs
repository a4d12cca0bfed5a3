//! Evaluation of post-processed predictions against ground truth: per-channel binary
//! segmentation criteria (overlap, surface distances in world units, tolerance-based rates),
//! variation of information between instance labelings, a deterministic dummy evaluator,
//! criterion metadata, and a store of validation scores with best-iteration selection
//! (`binary`, `instance` and `scores` respectively; the shared types are here).

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, Axis};
use thiserror::Error;

use super::edt::distance_to_features;

mod binary;
mod instance;
mod scores;
#[cfg(test)]
mod tests;

use binary::real;
pub use binary::*;
pub use instance::*;
pub use scores::*;

/// Errors raised by the evaluators and the validation-score store.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvaluateError {
    /// Test and truth arrays differ in shape.
    #[error("test shape {test:?} differs from truth shape {truth:?}")]
    ShapeMismatch {
        /// Shape of the test array.
        test: Vec<usize>,
        /// Shape of the truth array.
        truth: Vec<usize>,
    },
    /// The arrays have neither as many axes as the voxel size nor one more (a channel axis).
    #[error(
        "array shape {shape:?} does not fit voxel size {spacing:?}: expected {} spatial axes, \
         optionally after one channel axis",
        spacing.len()
    )]
    DimensionMismatch {
        /// Shape of the arrays.
        shape: Vec<usize>,
        /// Voxel size per spatial axis.
        spacing: Vec<f64>,
    },
    /// The voxel size is empty or has a non-finite or non-positive entry.
    #[error("voxel size {0:?} must have at least one axis, every entry finite and positive")]
    InvalidSpacing(Vec<f64>),
    /// A distance parameter is negative or NaN.
    #[error("{name} = {value} must be a non-negative number")]
    InvalidDistance {
        /// Parameter name (`clip_distance` or `tol_distance`).
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A block was read with less context than the clip distance or the tolerance, so
    /// its distances up to them would not be exact.
    #[error(
        "the context read around a block reaches {reach_nm} nm, less than the {needed_nm} nm \
         of the clip distance or tolerance"
    )]
    ContextTooSmall {
        /// How far the context reaches from the block (nm).
        reach_nm: f64,
        /// How far it must reach (nm).
        needed_nm: f64,
    },
    /// The number of channel names does not match the number of channels.
    #[error(
        "{} channel names {names:?} for arrays of shape {shape:?} with {channels} channel(s)",
        names.len()
    )]
    ChannelCount {
        /// The channel names given.
        names: Vec<String>,
        /// Shape of the arrays.
        shape: Vec<usize>,
        /// Number of channels in the arrays.
        channels: usize,
    },
    /// A name occurs twice where names must be unique.
    #[error("duplicate {kind} name {name:?}")]
    DuplicateName {
        /// What the name names (channel, criterion, parameter, dataset).
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A criterion name without known metadata.
    #[error("unknown criterion {0:?}")]
    UnknownCriterion(String),
    /// A score block whose nesting does not match the store's datasets, parameters, criteria.
    #[error("score block for iteration {iteration} has {found} {level}, expected {expected}")]
    BlockShape {
        /// Iteration the block was given for.
        iteration: u64,
        /// The level of the block that is wrong, e.g. `criteria in dataset 0, parameter 1`.
        level: String,
        /// Expected length at that level.
        expected: usize,
        /// Length found at that level.
        found: usize,
    },
    /// The distance transform returned an array of a different shape than its input.
    #[error("distance transform returned shape {found:?} for a mask of shape {expected:?}")]
    DistanceShape {
        /// Shape of the mask.
        expected: Vec<usize>,
        /// Shape of the returned distances.
        found: Vec<usize>,
    },
}

/// Metadata of one criterion: its direction, value bounds and whether its best is tracked.
#[derive(Debug, Clone, PartialEq)]
pub struct CriterionInfo {
    /// The criterion name as asked for (possibly `channel__metric`).
    pub name: String,
    /// Whether larger values are better.
    pub higher_is_better: bool,
    /// Lower and (if any) upper bound of the values.
    pub bounds: (f64, Option<f64>),
    /// Whether the best value over iterations is stored and reported.
    pub store_best: bool,
}

impl CriterionInfo {
    /// Whether `candidate` is strictly better than `incumbent` (false if either is NaN).
    pub fn is_better(&self, candidate: f64, incumbent: f64) -> bool {
        if self.higher_is_better {
            candidate > incumbent
        } else {
            candidate < incumbent
        }
    }
}

/// Metadata of a criterion; `channel__metric` has the metadata of `metric`. `None` if unknown.
pub fn criterion_info(name: &str) -> Option<CriterionInfo> {
    let metric = name.rsplit_once("__").map_or(name, |(_, metric)| metric);
    let (higher_is_better, upper, store_best) = match metric {
        "dice" | "jaccard" => (true, Some(1.0), false),
        "hausdorff" => (false, None, false),
        "false_negative_rate"
        | "false_negative_rate_with_tolerance"
        | "false_positive_rate"
        | "false_positive_rate_with_tolerance"
        | "false_discovery_rate" => (false, Some(1.0), false),
        "voi" | "voi_split" | "voi_merge" => (false, Some(1.0), true),
        "mean_false_positive_distance"
        | "mean_false_negative_distance"
        | "mean_false_distance"
        | "mean_false_positive_distance_clipped"
        | "mean_false_negative_distance_clipped"
        | "mean_false_distance_clipped" => (false, None, false),
        "precision"
        | "precision_with_tolerance"
        | "recall"
        | "recall_with_tolerance"
        | "f1_score_with_tolerance" => (true, Some(1.0), false),
        "f1_score" | "frizz_level" => (true, Some(1.0), true),
        "blipp_score" => (false, Some(1.0), true),
        _ => return None,
    };
    Some(CriterionInfo {
        name: name.to_string(),
        higher_is_better,
        bounds: (0.0, upper),
        store_best,
    })
}

/// The binary-segmentation criteria, in the order they are reported per channel.
pub const BINARY_METRICS: [&str; 21] = [
    "dice",
    "jaccard",
    "hausdorff",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "precision",
    "recall",
    "f1_score",
    "voi",
    "mean_false_positive_distance",
    "mean_false_negative_distance",
    "mean_false_distance",
    "mean_false_positive_distance_clipped",
    "mean_false_negative_distance_clipped",
    "mean_false_distance_clipped",
    "false_positive_rate_with_tolerance",
    "false_negative_rate_with_tolerance",
    "precision_with_tolerance",
    "recall_with_tolerance",
    "f1_score_with_tolerance",
];

/// Named criterion values of one evaluation; `criteria` and `values` have the same order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// Criterion names.
    pub criteria: Vec<String>,
    /// Criterion values (NaN where undefined).
    pub values: Vec<f64>,
}

impl Scores {
    /// The value of the criterion called `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.criteria
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.values.get(i).copied())
    }
}
