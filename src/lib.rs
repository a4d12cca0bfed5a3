//! Segno: configuration-driven training, prediction and inspection of deep-learning
//! segmentation models for large 3D microscopy volumes.
//!
//! The engine modules (`geometry`, `config`, `store`, …) have no GUI dependencies; the
//! desktop application is layered on top of them.

#![warn(missing_docs)]

pub mod array;
pub mod bench;
pub mod blockwise;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod datasplit;
pub mod demo;
pub mod device;
pub mod geometry;
pub mod gui;
pub mod nn;
pub mod ops;
pub mod render;
pub mod store;
pub mod task;
pub mod train;
pub mod weights;
