//! Training: optimizer and learning-rate schedule, checkpoints, statistics.

pub mod checkpoint;
pub mod optim;
pub mod stats;
