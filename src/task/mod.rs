//! Tasks: what a network learns (targets and weights), how it is scored during training
//! (losses), how its predictions become segmentations (post-processing) and how those are
//! evaluated against ground truth.

pub mod affinities;
pub mod arrays;
pub mod components;
pub mod distance;
pub mod edt;
pub mod evaluate;
pub mod loss;
pub mod postprocess;
pub mod predictor;

/// Errors computing targets, weights or scores.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// Inputs of mismatching shapes or unusable values.
    #[error("{0}")]
    Shape(String),
    /// Reading or writing an array failed (the array's error, which names it).
    #[error("{0}")]
    Array(String),
}

impl From<crate::array::ArrayError> for TaskError {
    fn from(e: crate::array::ArrayError) -> Self {
        TaskError::Array(e.to_string())
    }
}
