//! Training: random augmented samples, the batch loader, the optimizer and learning-rate
//! schedule, checkpoints, statistics and the training loop.

pub mod augment;
pub mod checkpoint;
pub mod import;
pub mod loader;
pub mod optim;
pub mod record;
pub mod run;
pub mod sample;
pub mod snapshot;
pub mod validate;

pub use run::{train_run, KeepValidation, TrainOptions, TrainReport};

/// Errors of a training run; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The run's data or configuration cannot be trained on.
    #[error("{0}")]
    Data(String),
    /// Reading an array failed.
    #[error(transparent)]
    Array(#[from] crate::array::ArrayError),
    /// The network could not be built or run.
    #[error(transparent)]
    Nn(#[from] crate::nn::NnError),
    /// An augment is misconfigured.
    #[error(transparent)]
    Augment(#[from] augment::AugmentError),
    /// Targets or weights could not be computed.
    #[error(transparent)]
    Task(#[from] crate::task::TaskError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// Statistics could not be read or written.
    #[error(transparent)]
    Stats(#[from] crate::store::stats::StatsError),
    /// A file of the run's directory (scores, best checkpoints) could not be read or written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Another process trains the run.
    #[error(transparent)]
    Lock(#[from] crate::store::lock::LockError),
    /// An output exists and replacing it was not asked for.
    #[error("{path} exists ({what}): pass --overwrite to replace it, or choose another output")]
    OutputExists {
        /// The existing output.
        path: String,
        /// What it holds.
        what: String,
    },
}
