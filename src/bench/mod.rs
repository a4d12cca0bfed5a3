//! Benchmarks run side by side with a reference implementation in the same run, reported
//! as ratios: array reads against zarr-python ([`bench_arrays`]), and the training
//! pipeline, network, training loop and prediction against DaCapo 0.3.5 ([`engine`]).

mod arrays;
pub mod engine;

pub use arrays::*;

use crate::array::ArrayError;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Preparing or reading the arrays failed.
    #[error(transparent)]
    Array(#[from] ArrayError),
    /// The reference implementation could not be run.
    #[error("zarr-python: {0}")]
    Reference(String),
    /// DaCapo could not be run or reported nothing usable.
    #[error("DaCapo: {0}")]
    Peer(String),
    /// Anything else (thread pools, files).
    #[error("{0}")]
    Other(String),
}
