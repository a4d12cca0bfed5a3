//! Options of `segno bench …`: the engine benchmarks side by side with zarr-python and
//! DaCapo, and the viewer's.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::parse_size;

/// `segno bench …` sub-commands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Read throughput of zarr v2 (Blosc) and v3 (sharded Zstandard) arrays, by Segno
    /// and by zarr-python on the same files. Build with --release for real numbers.
    Arrays {
        /// Edge length of the uint8 test cube in voxels.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Where the test arrays are kept between runs.
        #[arg(long, value_name = "DIR", default_value = "target/bench-arrays")]
        dir: PathBuf,
        /// Timed repetitions per measurement (the best counts).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Python with zarr-python (default: .venv-zarr/bin/python of this checkout).
        #[arg(long, value_name = "PYTHON")]
        python: Option<PathBuf>,
        /// Only time Segno.
        #[arg(long)]
        no_reference: bool,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Batches per second of the training batch pipeline alone (sampling, augments,
    /// targets, weights), by Segno and by DaCapo 0.3.5's gunpowder pipeline on the same run.
    Pipeline(EngineBenchArgs),
    /// The network alone: forward + backward + optimiser steps per second and evaluation
    /// voxels per second, by Segno and DaCapo.
    Model(EngineBenchArgs),
    /// Training iterations per second end to end, by Segno and DaCapo, and Segno's rate as
    /// a fraction of its model-only rate.
    Train(EngineBenchArgs),
    /// Output voxels per second predicting the whole synthetic volume, by Segno and DaCapo.
    Predict(EngineBenchArgs),
    /// Viewer frame times while panning raw, labels and prediction layers over a large
    /// multiscale volume (drawn offscreen with wgpu), and the time from a jump to the
    /// first complete slice. Build with --release for real numbers.
    Viewer(ViewerBenchArgs),
    /// A model layer in the viewer on the demo network: time to its first drawn block and
    /// to a fully predicted xy panel, blocks per second against the network's forward pass
    /// alone, and compose times while blocks compute. Build with --release for real numbers.
    Live {
        /// The demo project (created and trained when missing, reused otherwise).
        #[arg(long, value_name = "DIR", default_value = "target/bench-live")]
        dir: PathBuf,
        /// Edge length of the demo volume in voxels.
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Training iterations of the demo run.
        #[arg(long, default_value_t = 20)]
        iterations: u64,
        /// The xy panel's size, WIDTHxHEIGHT in pixels.
        #[arg(long, default_value = "640x640", value_parser = parse_size)]
        panel: [u32; 2],
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Block jobs: the same prediction by 1 and 2 worker processes (one CPU thread each;
    /// scaling efficiency), the ledger's time per block as a fraction of the block's, and
    /// with --slurm a Slurm job array of 4 workers against 1.
    Blockwise {
        /// Where the synthetic project is written (replaced on every run).
        #[arg(long, value_name = "DIR", default_value = "target/bench-blockwise")]
        dir: PathBuf,
        /// Edge length of the synthetic raw volume in voxels.
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Also time a Slurm job array of 4 workers against 1.
        #[arg(long)]
        slurm: bool,
        /// Slurm partition for --slurm (default: the scheduler's).
        #[arg(long)]
        partition: Option<String>,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `segno bench viewer`.
#[derive(Debug, Args, Clone)]
pub struct ViewerBenchArgs {
    /// Where the benchmark volume is kept between runs.
    #[arg(long, value_name = "DIR", default_value = "target/bench-viewer")]
    pub dir: PathBuf,
    /// Edge of the volume in voxels (a power of two).
    #[arg(long, default_value_t = 2048)]
    pub size: u64,
    /// Image size, WIDTHxHEIGHT in pixels.
    #[arg(long, default_value = "1280x800", value_parser = parse_size)]
    pub image: [u32; 2],
    /// Timed frames of panning.
    #[arg(long, default_value_t = 120)]
    pub frames: usize,
    /// Screen points panned per frame (one point is one voxel at the view's zoom).
    #[arg(long, default_value_t = 4)]
    pub pan: u32,
    /// Physical pixels per screen point, as on a high-density screen (a 4K screen at
    /// 200 % scale: 2): the view shows one voxel per point, so each voxel is drawn this
    /// many pixels wide.
    #[arg(long, default_value_t = 1.0, value_parser = parse_pixels_per_point)]
    pub pixels_per_point: f64,
    /// Jumps timed, each with an empty chunk cache.
    #[arg(long, default_value_t = 5)]
    pub jumps: usize,
    /// Panel layout: 4panel, xy, xz or yz.
    #[arg(long, default_value = "xy")]
    pub layout: String,
    /// Layers drawn: 1 (raw), 2 (and labels) or 3 (and a float prediction).
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    /// Run every combination of layout (xy, 4panel), layers (1, 3) and screen (1280x800;
    /// 3840x2160 at 1 and at 2 pixels per point) one after the other, ignoring --layout,
    /// --layers, --image and --pixels-per-point.
    #[arg(long, conflicts_with = "model")]
    pub matrix: bool,
    /// Pan once more with a model layer computing over the view: the demo run of this
    /// project (made and trained when missing), frame times side by side.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Training iterations of the --model demo run.
    #[arg(long, default_value_t = 20)]
    pub model_iterations: u64,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options shared by the engine benchmarks (`segno bench pipeline|model|train|predict`).
#[derive(Debug, Args, Clone)]
pub struct EngineBenchArgs {
    /// The benchmark project (synthetic data and the run are made there once).
    #[arg(long, value_name = "DIR", default_value = "target/bench-engine")]
    pub dir: PathBuf,
    /// Edge of the synthetic raw volume in voxels.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Edge of the network's training input in voxels.
    #[arg(long, default_value_t = 132)]
    pub input: i64,
    /// Network: bench (12 maps ×2, 0.2 M parameters) or spec (DaCapo's tutorial, ×5, 3.6 M).
    #[arg(long, default_value = "bench")]
    pub net: String,
    /// Timed iterations.
    #[arg(long, default_value_t = 5)]
    pub iterations: u64,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Compute and loader threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Python of DaCapo's environment (default ~/segno-peer/.venv/bin/python).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// Only time Segno.
    #[arg(long)]
    pub no_reference: bool,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--pixels-per-point`: a number from 1 to 4.
fn parse_pixels_per_point(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| (1.0..=4.0).contains(v))
        .ok_or_else(|| format!("{s:?} is not a number of pixels per point from 1 to 4"))
}
