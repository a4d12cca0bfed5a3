//! The `segno` command line: argument parsing and the commands' human and JSON output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::{AnyConfig, ConfigError, Family};
use crate::geometry::Coordinate;
use crate::store::layout::RunDir;
use crate::store::{Project, StoreError, StoreOutcome};

/// Exit codes of `segno`, so scripts can tell failures apart.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// A config is malformed or invalid.
    pub const INVALID: u8 = 1;
    /// Bad command-line usage (reported by the argument parser).
    pub const USAGE: u8 = 2;
    /// A named config does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// A different config already exists under that name.
    pub const CONFLICT: u8 = 4;
    /// A file could not be read or written (including read-only projects).
    pub const IO: u8 = 5;
}

/// Segno: train, apply and inspect segmentation networks for large 3D microscopy volumes.
#[derive(Debug, Parser)]
#[command(name = "segno", version, about, long_about = None)]
pub struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,

    /// The command to run (none: open the app).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the desktop app (also what `segno` with no command does).
    Gui(GuiArgs),
    /// List, show, validate, import and export the configs of a project.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the version and the compute devices libtorch can use.
    Info(JsonFlag),
    /// Inspect zarr / N5 / OME-NGFF arrays.
    #[command(subcommand)]
    Array(ArrayCommand),
    /// Write synthetic EM-like demo data (raw, labels, crops) into a project.
    DemoData(DemoDataArgs),
    /// Benchmarks, run side by side with a reference implementation.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Train a run of the project, resuming from its latest checkpoint.
    Train(TrainArgs),
    /// Import weights from a PyTorch/DaCapo checkpoint (torch.save file) or a safetensors
    /// file into a run, as a checkpoint that training, prediction and apply start from.
    ImportWeights(ImportWeightsArgs),
    /// Bring a run DaCapo trained in this project into Segno: its checkpoints
    /// (`<run>/checkpoints/iterations/<n>`) and training statistics, kept in place.
    ImportRun(ImportRunArgs),
    /// Write a checkpoint of a run as a torch.save file DaCapo loads
    /// (`{"model": state_dict, "optimizer": …}`, DaCapo's parameter names).
    ExportWeights(ExportWeightsArgs),
    /// The whole workflow on synthetic data: write data and configs, train a small U-Net
    /// with validation, and print the scores.
    Demo(DemoArgs),
    /// Predict a raw volume block by block with a trained run (resumable).
    Predict(PredictArgs),
    /// Predict and post-process a raw volume with a run's best checkpoint and parameters
    /// (or the ones given): the whole job from raw data to a segmentation.
    Apply(ApplyArgs),
    /// Validate a checkpoint of a run on its validation datasets (scores and bests are stored).
    Validate(ValidateArgs),
    /// Threshold a prediction into a segmentation, chunk by chunk in parallel.
    PostProcess(PostProcessArgs),
    /// Score a segmentation against ground truth (DaCapo's 21 binary metrics per channel).
    Evaluate(EvaluateArgs),
    /// Export a saved view state as a neuroglancer state: prints its URL and writes the JSON.
    Neuroglancer(NeuroglancerArgs),
    /// A network's sizes: input, output, context and voxel sizes (or why an input is
    /// invalid, with the nearest valid sizes).
    #[command(subcommand)]
    Architecture(ArchitectureCommand),
    /// Write the targets and weights a task trains on for a ground-truth crop, as arrays
    /// to look at in the viewer.
    Targets(TargetsArgs),
    /// Generate a DataSplit config from raw + ground-truth pairs listed in DaCapo's CSV
    /// (`train|val,raw_container,raw_dataset,gt_container,gt_dataset[a&b]`).
    Datasplit(DatasplitArgs),
}

/// `segno architecture …` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ArchitectureCommand {
    /// Input, output and context sizes of a U-Net: NAME is an architecture or a run of the
    /// project (a run adds its task's head and its raw voxel size), or a config file.
    Shapes {
        /// Architecture or run name, or a YAML/JSON config file.
        name: String,
        /// The input to size, z,y,x in voxels (default: the architecture's input_shape).
        #[arg(long, value_parser = parse_coordinate)]
        input: Option<Coordinate>,
        /// The input voxel size, z,y,x in nm (default: a run's raw voxel size).
        #[arg(long, value_parser = parse_coordinate)]
        voxel_size: Option<Coordinate>,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
}

/// Options of `segno targets`.
#[derive(Debug, Args, Clone)]
pub struct TargetsArgs {
    /// The run whose task makes the targets.
    #[arg(long, short = 'r', conflicts_with = "task")]
    pub run: Option<String>,
    /// A task config file (instead of a run).
    #[arg(long)]
    pub task: Option<PathBuf>,
    /// The ground-truth array (default with --run: that of --dataset).
    #[arg(long)]
    pub gt: Option<PathBuf>,
    /// With --run: the datasplit dataset whose ground truth (and mask) to use (default:
    /// the first training dataset).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Where the ground truth is annotated (non-zero), with --gt.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Output zarr container: gets `target` and `weight`.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace existing `target` and `weight` arrays.
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Options of `segno datasplit`.
#[derive(Debug, Args, Clone)]
pub struct DatasplitArgs {
    /// The CSV listing the datasets (no header, one dataset a line).
    #[arg(long)]
    pub csv: PathBuf,
    /// Prefix of the datasplit's name (default: the CSV file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Voxel size wanted for raw data, z,y,x in nm.
    #[arg(long, value_parser = parse_coordinate)]
    pub input_resolution: Coordinate,
    /// Voxel size wanted for ground truth, z,y,x in nm.
    #[arg(long, value_parser = parse_coordinate)]
    pub output_resolution: Coordinate,
    /// Classes to learn in channel order, comma-separated (default: the first dataset's).
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Turn every non-zero label id into 1 (for instance-id ground truth).
    #[arg(long)]
    pub binarize_gt: bool,
    /// Allow datasets without some targets (0 where other classes are annotated).
    #[arg(long)]
    pub use_negative_class: bool,
    /// Raw value mapped to 0.
    #[arg(long, default_value_t = 0.0)]
    pub raw_min: f64,
    /// Raw value mapped to 1.
    #[arg(long, default_value_t = 255.0)]
    pub raw_max: f64,
    /// Separator of class names inside [...].
    #[arg(long, default_value = "&")]
    pub separator: String,
    /// Largest validation crop in voxels (larger ones are centre-cropped).
    #[arg(long)]
    pub max_validation_volume_size: Option<u64>,
    /// Store the config in the project (refused if a different one has the name).
    #[arg(long)]
    pub store: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

fn parse_coordinate(s: &str) -> Result<Coordinate, String> {
    let values = s
        .trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{v:?} in {s:?} is not a whole number of nm"))
        })
        .collect::<Result<Vec<i64>, String>>()?;
    Coordinate::new(&values).map_err(|e| e.to_string())
}

/// An iteration number or count: a whole number up to 2^53 (what statistics, scores and plots
/// hold exactly).
fn parse_iteration(s: &str) -> Result<u64, String> {
    let value: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of iterations"))?;
    if value > crate::config::runs::MAX_ITERATION {
        return Err(format!(
            "{value} is beyond the limit of 2^53 = {} iterations",
            crate::config::runs::MAX_ITERATION
        ));
    }
    Ok(value)
}

/// Options of `segno neuroglancer`.
#[derive(Debug, Args, Clone)]
pub struct NeuroglancerArgs {
    /// The view state (JSON, as saved from the Viewer).
    #[arg(long)]
    pub view: PathBuf,
    /// The URL the served directory is reachable at.
    #[arg(long, default_value = "http://127.0.0.1:9000/")]
    pub base_url: String,
    /// The directory served at --base-url (default: the view state's directory).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Write the neuroglancer state JSON here (atomically).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Options of `segno validate`.
#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    /// The run.
    #[arg(long, short = 'r')]
    pub run: String,
    /// Checkpoint iteration (default: the latest).
    #[arg(long, value_parser = parse_iteration)]
    pub iteration: Option<u64>,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Options of `segno post-process`.
#[derive(Debug, Args, Clone)]
pub struct PostProcessArgs {
    /// The prediction array (e.g. out.zarr/prediction_<run>_<iteration>).
    #[arg(long)]
    pub input: PathBuf,
    /// Output zarr container.
    #[arg(long)]
    pub output: PathBuf,
    /// Output dataset (default output_<prediction name>_threshold_<T>).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Foreground where the prediction exceeds this value (tanh units for distance tasks).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub threshold: f64,
    /// Post-process as this run's task does (e.g. the mutex watershed of an affinities
    /// task) instead of thresholding.
    #[arg(long, short = 'r')]
    pub run: Option<String>,
    /// With --run: the task's post-processing parameters, e.g. bias_0.5 or threshold_0.2
    /// (default: the best on the run's validation scores).
    #[arg(long)]
    pub parameters: Option<String>,
    /// Replace an existing array at the output dataset (never the input).
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory (with --run).
    #[arg(long, short = 'p', value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `segno evaluate`.
#[derive(Debug, Args, Clone)]
pub struct EvaluateArgs {
    /// The segmentation to score (non-zero = foreground).
    #[arg(long)]
    pub output: PathBuf,
    /// The ground truth (non-zero = foreground), same geometry; scored where both exist.
    #[arg(long)]
    pub gt: PathBuf,
    /// Channel names, comma-separated, one per channel (e.g. mito,er).
    #[arg(long, value_delimiter = ',', default_value = "foreground")]
    pub channels: Vec<String>,
    /// Distances are clipped at this many nm in the clipped metrics.
    #[arg(long, default_value_t = 40.0)]
    pub clip_distance: f64,
    /// Tolerance in nm of the with-tolerance metrics.
    #[arg(long, default_value_t = 40.0)]
    pub tol_distance: f64,
    /// Score instance segmentations (label ids) by variation of information instead.
    #[arg(long)]
    pub instance: bool,
    /// Where the ground truth is known (non-zero), e.g. a crop's annotation mask: only
    /// there are voxels scored (zero beyond the mask's region).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `segno predict`.
#[derive(Debug, Args, Clone)]
pub struct PredictArgs {
    /// The trained run.
    #[arg(long, short = 'r')]
    pub run: String,
    /// Checkpoint iteration (default: the latest, or the best with --best).
    #[arg(long, value_parser = parse_iteration)]
    pub iteration: Option<u64>,
    /// Use the best checkpoint for DATASET:CRITERION (e.g. synthetic_crop2:mito__f1_score).
    #[arg(long, value_name = "DATASET:CRITERION")]
    pub best: Option<String>,
    /// Output dataset (default prediction_<run>_<iteration>).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Element type of the prediction: float32 (the network's values) or uint8 (DaCapo's:
    /// probabilities × 255, values in [−1, 1] mapped to [0, 255]; post-processing reads them
    /// back).
    #[arg(long, default_value = "float32", value_parser = ["float32", "uint8"])]
    pub output_dtype: String,
    /// Input, output, region, device and project.
    #[command(flatten)]
    pub job: JobArgs,
}

/// What `segno predict` and `segno apply` read and write, and where they run.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// The raw array (container.zarr/dataset, N5 or an OME-NGFF image).
    #[arg(long)]
    pub input: PathBuf,
    /// Output zarr container.
    #[arg(long)]
    pub output: PathBuf,
    /// Region in world units, e.g. "[0:800, 0:800, 0:800]" (default: all of the raw region with full context).
    #[arg(long)]
    pub roi: Option<String>,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Largest network input per block, in voxels (default: 2^23 on the CPU, what about
    /// 4 GiB of activations allow on a GPU); blocks are never smaller than the run's
    /// evaluation block.
    #[arg(long, value_name = "VOXELS")]
    pub max_block_input: Option<f64>,
    /// Read the input as this dataset of the run read its raw data (its normalisation and
    /// voxel size); default: as the training datasets did, when they agree.
    #[arg(long, value_name = "DATASET")]
    pub like: Option<String>,
    /// Resample an input at another voxel size to the one the network was trained at
    /// (linear interpolation / averaging) instead of refusing it.
    #[arg(long)]
    pub resample: bool,
    /// Accept an input whose element type differs from the training data's (e.g. uint16
    /// instead of uint8) when its values have the same range.
    #[arg(long)]
    pub accept_data_type: bool,
    /// Replace existing output arrays (else only an interrupted prediction of the same
    /// checkpoint is continued, and any other existing array is refused).
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

impl JobArgs {
    /// How the input volume is read.
    fn input_options(&self) -> crate::blockwise::InputOptions {
        crate::blockwise::InputOptions {
            like: self.like.clone(),
            resample: self.resample,
            accept_data_type: self.accept_data_type,
        }
    }
}

/// Options of `segno gui`.
#[derive(Debug, Args, Clone)]
pub struct GuiArgs {
    /// Project directory to open.
    pub project: Option<PathBuf>,
    /// A view state (JSON, as saved from the Viewer) to open in the Viewer.
    #[arg(long)]
    pub view: Option<PathBuf>,
    /// Save a PNG of the view once everything visible has loaded, then exit. Without a
    /// display (or with --headless) the view is rendered offscreen.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Window or image size, WIDTHxHEIGHT in pixels.
    #[arg(long, default_value = "1280x800", value_parser = parse_size)]
    pub size: [u32; 2],
    /// Render the screenshot offscreen even when a display is available.
    #[arg(long)]
    pub headless: bool,
    /// Section to show first: project, configs, datasplit, runs or viewer.
    #[arg(long, value_parser = parse_section)]
    pub section: Option<crate::gui::Section>,
}

fn parse_section(s: &str) -> Result<crate::gui::Section, String> {
    crate::gui::Section::parse(s).ok_or_else(|| {
        format!("unknown section {s:?}; use project, configs, datasplit, runs or viewer")
    })
}

fn parse_size(s: &str) -> Result<[u32; 2], String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT such as 1280x800, got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (16..=16384).contains(n))
            .ok_or_else(|| format!("{v:?} in {s:?} is not a size between 16 and 16384 pixels"))
    };
    Ok([parse(w)?, parse(h)?])
}

/// Options of `segno import-weights`.
#[derive(Debug, Args, Clone)]
pub struct ImportWeightsArgs {
    /// The run whose network receives the weights (a config in the project's configs/runs).
    #[arg(long, short = 'r')]
    pub run: String,
    /// The checkpoint: a torch.save file (state dict or DaCapo's {"model": …}) or .safetensors.
    #[arg(long)]
    pub weights: PathBuf,
    /// Iteration number the imported checkpoint gets (training continues from it).
    #[arg(long, value_parser = parse_iteration, default_value_t = 0)]
    pub iteration: u64,
    /// Load what matches by name and shape and keep the rest freshly initialised (e.g. another head).
    #[arg(long)]
    pub partial: bool,
    /// Replace an existing checkpoint of that iteration.
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Options of `segno export-weights`.
#[derive(Debug, Args, Clone)]
pub struct ExportWeightsArgs {
    /// The run.
    #[arg(long, short = 'r')]
    pub run: String,
    /// Checkpoint iteration (default: the latest).
    #[arg(long, value_parser = parse_iteration)]
    pub iteration: Option<u64>,
    /// The file to write (e.g. a DaCapo run's `checkpoints/iterations/<n>`).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Options of `segno import-run`.
#[derive(Debug, Args, Clone)]
pub struct ImportRunArgs {
    /// The run (a config in the project's configs/runs, as DaCapo stored it).
    #[arg(long, short = 'r')]
    pub run: String,
    /// Replace Segno checkpoints and statistics the run already has.
    #[arg(long)]
    pub overwrite: bool,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Options of `segno apply`.
#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// The trained run.
    #[arg(long, short = 'r')]
    pub run: String,
    /// Checkpoint iteration (default: the best on the validation scores).
    #[arg(long, value_parser = parse_iteration)]
    pub iteration: Option<u64>,
    /// Post-processing parameters, e.g. threshold_0.2 (default: the best on the validation scores).
    #[arg(long)]
    pub parameters: Option<String>,
    /// Validation dataset whose scores choose (default: the run's first).
    #[arg(long)]
    pub validation_dataset: Option<String>,
    /// Criterion that chooses: a full name (mito__f1_score) or a metric averaged over the classes (default f1_score; voi for instances).
    #[arg(long)]
    pub criterion: Option<String>,
    /// Input (raw), output container (gets prediction_<run>_<iteration> and output_<run>_<iteration>_<parameters>), region, device and project.
    #[command(flatten)]
    pub job: JobArgs,
}

/// Options of `segno demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Project directory for the demo (created if missing; reused if it exists).
    #[arg(long, short = 'p', value_name = "DIR", default_value = "segno-demo")]
    pub project: PathBuf,
    /// Training iterations.
    #[arg(long, value_parser = parse_iteration, default_value_t = 300)]
    pub iterations: u64,
    /// Validate every this many iterations.
    #[arg(long, default_value_t = 100)]
    pub validation_interval: u64,
    /// Edge of the synthetic volume in voxels.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Seed of data, weights and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not open the app on the results at the end (it opens only when a display exists).
    #[arg(long)]
    pub no_gui: bool,
}

/// Options of `segno train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// The run to train (a config in the project's configs/runs).
    #[arg(long, short = 'r')]
    pub run: String,
    /// Seed of weight initialisation and sampling (the same seed gives the same run).
    /// Default: the seed the run recorded when it started, else one derived from the run's
    /// name and repetition.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Compute device: auto (a GPU when there is one), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Batch-loading threads (default: the trainer's num_data_fetchers, at most the
    /// number of cores).
    #[arg(long)]
    pub loader_threads: Option<usize>,
    /// Do not validate (checkpoints are still written at every validation interval; `segno
    /// validate` scores them later).
    #[arg(long)]
    pub no_validation: bool,
    /// Validation arrays to keep: `all`, or `best` (those of the latest iteration and of
    /// the best iteration per dataset and criterion; the scores of every iteration stay).
    #[arg(long, default_value = "all", value_parser = ["all", "best"])]
    pub keep_validation: String,
    /// Stop after this many iterations, keeping the iteration reached as a checkpoint
    /// (train again to continue).
    #[arg(long, value_parser = parse_iteration)]
    pub iterations: Option<u64>,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

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
    /// Pixels panned per frame.
    #[arg(long, default_value_t = 4)]
    pub pan: u32,
    /// Jumps timed, each with an empty chunk cache.
    #[arg(long, default_value_t = 5)]
    pub jumps: usize,
    /// Panel layout: 4panel, xy, xz or yz.
    #[arg(long, default_value = "xy")]
    pub layout: String,
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

/// `segno array …` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ArrayCommand {
    /// Show an array's type, shape, chunking, voxel size, offset, axes, units, codecs and
    /// scale levels. PATH is `container.zarr/dataset`, `container.n5/dataset` or an
    /// OME-NGFF image group.
    Info {
        /// The array or multiscale group.
        path: PathBuf,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `segno demo-data`.
#[derive(Debug, Args, Clone)]
pub struct DemoDataArgs {
    /// Project directory; the data goes to DIR/data/synthetic.zarr.
    #[arg(long, short = 'p', value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// Seed of the generator (the same seed gives identical data).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Edge length of the raw volume in voxels (8 nm); e.g. 2048 for benchmarks.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Replace existing demo data.
    #[arg(long)]
    pub overwrite: bool,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options shared by commands that work on a project.
#[derive(Debug, Args, Clone)]
pub struct ProjectArgs {
    /// Project directory (DaCapo's runs_base_dir). Default: the runs_base_dir of
    /// $DACAPO_OPTIONS_FILE or ./dacapo.yaml if one exists, else the current directory.
    #[arg(long, short = 'p', value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ProjectArgs {
    /// Opens the project these arguments name (see [`crate::store::locate_project`]).
    pub fn open(&self) -> Result<Project, Failure> {
        let (dir, source) = crate::store::locate_project(
            self.project.as_deref(),
            &crate::store::options_file_candidates(),
        )?;
        if let crate::store::ProjectSource::OptionsFile(file) = &source {
            tracing::info!("project {} from {}", dir.display(), file.display());
        }
        Ok(Project::open(dir)?)
    }
}

/// A lone `--json` flag.
#[derive(Debug, Args, Clone)]
pub struct JsonFlag {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `segno config …` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List stored configs, by family.
    List {
        /// Only this family: runs, tasks, architectures, trainers, datasplits or arrays.
        family: Option<String>,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Print one stored config as YAML (or JSON with --json).
    Show {
        /// Family: runs, tasks, architectures, trainers, datasplits or arrays.
        family: String,
        /// Config name.
        name: String,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Check config files (or, with no files, every stored config) and list every problem.
    Validate {
        /// YAML/JSON files to check; the family is detected unless --family is given.
        files: Vec<PathBuf>,
        /// Family of the given files.
        #[arg(long)]
        family: Option<String>,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Store config files (or every YAML/JSON file below given directories, such as a
    /// DaCapo `configs` folder) in the project.
    Import {
        /// Files or directories to import.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Family of the given files (detected from the folder name or content otherwise).
        #[arg(long)]
        family: Option<String>,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Explain the config types: all groups, the types of one group (e.g. `tasks`), or the
    /// fields of one type (e.g. `DistanceTaskConfig`) with defaults and help.
    Describe {
        /// A group name or a type name; everything when absent.
        what: Option<String>,
        /// Print machine-readable JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write one stored config to a file (or standard output) in DaCapo's YAML dialect.
    Export {
        /// Family: runs, tasks, architectures, trainers, datasplits or arrays.
        family: String,
        /// Config name.
        name: String,
        /// Output file; standard output when absent.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
        /// Project directory and output format.
        #[command(flatten)]
        project: ProjectArgs,
    },
}

/// A failure of a command, with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code for the process.
    pub code: u8,
    /// Message for standard error.
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::InvalidName { .. }
            | StoreError::InvalidConfig { .. }
            | StoreError::Config(_) => exit::INVALID,
            StoreError::NotFound { .. } => exit::NOT_FOUND,
            StoreError::Duplicate { .. } | StoreError::Taken { .. } => exit::CONFLICT,
            StoreError::ReadOnly { .. }
            | StoreError::NotADirectory { .. }
            | StoreError::Malformed { .. }
            | StoreError::Io { .. } => exit::IO,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::new(exit::INVALID, e.to_string())
    }
}

fn parse_family(text: &str) -> Result<Family, Failure> {
    Family::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Family::ALL.iter().map(|f| f.dir_name()).collect();
        Failure::new(
            exit::USAGE,
            format!(
                "unknown config family {text:?}; use one of {}",
                names.join(", ")
            ),
        )
    })
}

/// Runs a parsed command line, printing results to stdout and errors to stderr.
pub fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let command = cli.command.unwrap_or(Command::Gui(GuiArgs {
        project: None,
        view: None,
        screenshot: None,
        size: [1280, 800],
        headless: false,
        section: None,
    }));
    match dispatch(command, &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let _ = out.flush();
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn dispatch(command: Command, out: &mut dyn Write) -> Result<u8, Failure> {
    match command {
        Command::Info(flag) => info(flag.json, out),
        Command::Config(cmd) => config(cmd, out),
        Command::Array(ArrayCommand::Info { path, json }) => array_info(&path, json, out),
        Command::DemoData(args) => demo_data(&args, out),
        Command::Train(args) => train(&args, out),
        Command::Demo(args) => demo(&args, out),
        Command::Predict(args) => predict(&args, out),
        Command::Apply(args) => apply(&args, out),
        Command::Gui(args) => {
            let report = crate::gui::run(crate::gui::GuiOptions {
                project: args.project,
                view: args.view,
                screenshot: args.screenshot,
                size: args.size,
                headless: args.headless,
                section: args.section,
            })
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
            if let Some(line) = report {
                let _ = writeln!(out, "{line}");
            }
            Ok(exit::OK)
        }
        Command::ImportWeights(args) => import_weights(&args, out),
        Command::ImportRun(args) => import_run(&args, out),
        Command::ExportWeights(args) => export_weights(&args, out),
        Command::Neuroglancer(args) => neuroglancer(&args, out),
        Command::Datasplit(args) => datasplit(&args, out),
        Command::Validate(args) => validate_run(&args, out),
        Command::PostProcess(args) => post_process(&args, out),
        Command::Evaluate(args) => evaluate(&args, out),
        Command::Architecture(ArchitectureCommand::Shapes {
            name,
            input,
            voxel_size,
            project,
        }) => architecture_shapes(&name, input, voxel_size, &project, out),
        Command::Targets(args) => targets(&args, out),
        Command::Bench(BenchCommand::Arrays {
            size,
            dir,
            repeats,
            python,
            no_reference,
            json,
        }) => bench_arrays(size, dir, repeats, python, no_reference, json, out),
        Command::Bench(BenchCommand::Viewer(a)) => bench_viewer(&a, out),
        Command::Bench(BenchCommand::Pipeline(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Pipeline, &a, out)
        }
        Command::Bench(BenchCommand::Model(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Model, &a, out)
        }
        Command::Bench(BenchCommand::Train(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Train, &a, out)
        }
        Command::Bench(BenchCommand::Predict(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Predict, &a, out)
        }
    }
}

/// A run config stored in the project.
fn stored_run(project: &Project, name: &str) -> Result<crate::config::RunConfig, Failure> {
    match project.configs().retrieve(Family::Runs, name)? {
        AnyConfig::Run(r) => Ok(*r),
        _ => Err(Failure::new(
            exit::INVALID,
            format!("`{name}` is not a run"),
        )),
    }
}

fn validate_run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::blockwise::{self, Which};
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)
        .map_err(|e| Failure::new(exit::INVALID, format!("run `{}`: {e}", run.name)))?;
    let crate::config::DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return Err(Failure::new(
            exit::INVALID,
            "only TrainValidateDataSplitConfig datasplits can be validated",
        ));
    };
    let device = crate::device::choose_device_with_options(Some(&args.device))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let fail = |e: crate::train::TrainError| {
        Failure::new(train_code(&e), format!("run `{}`: {e}", run.name))
    };
    let which = args.iteration.map_or(Which::Latest, Which::Iteration);
    let model = blockwise::load_model(project.root(), &run, &which, device).map_err(fail)?;
    let datasets = crate::train::validate::open_validation(project.root(), &split.validate_configs)
        .map_err(fail)?;
    let Some(first) = datasets.first() else {
        return Err(Failure::new(
            exit::INVALID,
            format!("run `{}` has no validation datasets", run.name),
        ));
    };
    let inference = crate::train::validate::Inference::for_run(
        &run,
        first.raw.info().geometry.voxel_size,
        device,
    )
    .map_err(fail)?;
    let outcome = crate::train::validate::validate(
        project.root(),
        &run.name,
        model.iteration,
        &model.model,
        &inference,
        &datasets,
        &predictor,
        crate::task::predictor::MAX_WATERSHED_VOXELS,
    )
    .map_err(fail)?;
    if args.project.json {
        let scores: Vec<Value> = outcome
            .datasets
            .iter()
            .zip(&outcome.scores)
            .map(|(d, per_param)| {
                json!({"dataset": d, "parameters": outcome.parameters.iter().zip(per_param).map(|(p, vals)| {
                    let m: serde_json::Map<String, Value> = outcome.criteria.iter().zip(vals).map(|(c, v)| (c.clone(), if v.is_finite() { json!(v) } else { Value::Null })).collect();
                    json!({"parameters": p, "scores": m})
                }).collect::<Vec<_>>()})
            })
            .collect();
        emit_json(
            out,
            &json!({"run": run.name, "iteration": outcome.iteration, "results": scores}),
        )?;
    } else {
        let mut text = format!(
            "run {} validated at iteration {}\n",
            run.name, outcome.iteration
        );
        let pick: Vec<usize> = outcome
            .criteria
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.ends_with("__f1_score")
                    || c.ends_with("__dice")
                    || c.starts_with("voi")
                    || !c.contains("__")
            })
            .map(|(i, _)| i)
            .collect();
        for (d, per_param) in outcome.datasets.iter().zip(&outcome.scores) {
            text.push_str(&format!("  {d}\n"));
            for (p, vals) in outcome.parameters.iter().zip(per_param) {
                let cells: Vec<String> = pick
                    .iter()
                    .map(|&i| format!("{} {:.3}", outcome.criteria[i], vals[i]))
                    .collect();
                text.push_str(&format!("    {p:<16} {}\n", cells.join("  ")));
            }
        }
        emit(out, &text)?;
    }
    Ok(exit::OK)
}

fn post_process(args: &PostProcessArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let prediction = crate::array::open(&args.input)?;
    let base = args
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prediction".into());
    let base = if base == "s0" {
        args.input
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(base)
    } else {
        base
    };
    let started = std::time::Instant::now();
    let invalid = |e: crate::train::TrainError| Failure::new(train_code(&e), e.to_string());
    let report = match &args.run {
        Some(name) => {
            let project = ProjectArgs {
                project: args.project.clone(),
                json: args.json,
            }
            .open()?;
            let run = stored_run(&project, name)?;
            let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)
                .map_err(|e| Failure::new(exit::INVALID, format!("run `{name}`: {e}")))?;
            let choice = crate::blockwise::choose(
                project.root(),
                &run,
                &predictor,
                None,
                args.parameters.as_deref(),
                None,
                None,
            )
            .or_else(|e| match args.parameters.as_deref() {
                // Given parameters need no scores.
                Some(p) => crate::blockwise::choose(
                    project.root(),
                    &run,
                    &predictor,
                    Some(0),
                    Some(p),
                    None,
                    None,
                ),
                None => Err(e),
            })
            .map_err(invalid)?;
            let dataset = args
                .dataset
                .clone()
                .unwrap_or_else(|| format!("output_{base}_{}", choice.parameters.name()));
            let mode = checked_output(&args.output, &dataset, &args.input, args.overwrite)?;
            crate::blockwise::post_process_array(
                prediction.as_ref(),
                &predictor,
                &choice.parameters,
                &args.output,
                &dataset,
                mode,
            )
            .map_err(invalid)?
        }
        None => {
            let dataset = args
                .dataset
                .clone()
                .unwrap_or_else(|| format!("output_{base}_threshold_{}", args.threshold));
            let mode = checked_output(&args.output, &dataset, &args.input, args.overwrite)?;
            crate::blockwise::threshold_array(
                prediction.as_ref(),
                args.threshold,
                &args.output,
                &dataset,
                mode,
            )
            .map_err(invalid)?
        }
    };
    let duration_secs = started.elapsed().as_secs_f64();
    if args.json {
        emit_json(
            out,
            &json!({"output": report.output.display().to_string(), "chunks": report.chunks, "foreground_voxels": report.foreground, "duration_secs": duration_secs}),
        )?;
    } else {
        emit(
            out,
            &format!(
                "wrote {} ({} chunks, {duration_secs:.1} s); foreground voxels per channel: {}\n",
                report.output.display(),
                report.chunks,
                join_dims(&report.foreground, ", ")
            ),
        )?;
    }
    Ok(exit::OK)
}

/// Binary-segmentation scores of `test` against `truth` over `roi` (non-zero is foreground).
fn binary_scores(
    args: &EvaluateArgs,
    test: &dyn crate::array::ArraySource,
    truth: &dyn crate::array::ArraySource,
    roi: &crate::geometry::Roi,
    mask: Option<&ndarray::ArrayD<bool>>,
) -> Result<crate::task::evaluate::Scores, Failure> {
    let ti = test.info();
    let as_u8 = |a: &dyn crate::array::ArraySource| -> Result<ndarray::ArrayD<u8>, Failure> {
        let v = a
            .read(roi)?
            .to_labels()
            .map_err(|m| Failure::new(exit::INVALID, format!("{}: {m}", a.info().path)))?;
        Ok(v.mapv(|x| u8::from(x != 0)))
    };
    let (t, g) = (as_u8(test)?, as_u8(truth)?);
    let spacing: Vec<f64> = ti.geometry.voxel_size.iter().map(|v| v as f64).collect();
    let channels: Vec<String> = if t.ndim() == spacing.len() {
        Vec::new()
    } else {
        args.channels.clone()
    };
    let scores = crate::task::evaluate::binary_segmentation_masked(
        &t,
        &g,
        mask,
        &spacing,
        &channels,
        args.clip_distance,
        args.tol_distance,
    )
    .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    Ok(scores)
}

fn evaluate(args: &EvaluateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let test = crate::array::open(&args.output)?;
    let truth = crate::array::open(&args.gt)?;
    let (ti, gi) = (test.info(), truth.info());
    if ti.geometry.voxel_size != gi.geometry.voxel_size {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "{} has voxel size {} but {} has {}",
                ti.path, ti.geometry.voxel_size, gi.path, gi.geometry.voxel_size
            ),
        ));
    }
    if !(ti.geometry.offset - gi.geometry.offset).is_multiple_of(&gi.geometry.voxel_size) {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "{} (offset {} nm) and {} (offset {} nm) do not share a voxel grid at {} nm: their voxels would be compared shifted, which Segno does not do",
                ti.path, ti.geometry.offset, gi.path, gi.geometry.offset, gi.geometry.voxel_size
            ),
        ));
    }
    if !ti.roi.intersects(&gi.roi) {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "{} ({}) and {} ({}) do not overlap",
                ti.path, ti.roi, gi.path, gi.roi
            ),
        ));
    }
    let roi = ti.roi.intersect(&gi.roi);
    let mask = match &args.mask {
        Some(path) => {
            let m = crate::array::open(path)?;
            if m.info().geometry.voxel_size != gi.geometry.voxel_size {
                return Err(Failure::new(
                    exit::INVALID,
                    format!(
                        "--mask {} has voxel size {}, the ground truth {}",
                        m.info().path,
                        m.info().geometry.voxel_size,
                        gi.geometry.voxel_size
                    ),
                ));
            }
            Some(m.read_filled(&roi, 0.0)?.to_f32().mapv(|v| v > 0.0))
        }
        None => None,
    };
    let labels = |a: &dyn crate::array::ArraySource| -> Result<ndarray::ArrayD<u64>, Failure> {
        a.read(&roi)?
            .to_labels()
            .map_err(|m| Failure::new(exit::INVALID, format!("{}: {m}", a.info().path)))
    };
    let scores = if args.instance {
        let (t, g) = (labels(test.as_ref())?, labels(truth.as_ref())?);
        if t.shape() != g.shape() {
            return Err(Failure::new(
                exit::INVALID,
                format!(
                    "{} has shape {:?} over the common region, {} {:?}: instance scores need one label per voxel in both",
                    ti.path,
                    t.shape(),
                    gi.path,
                    g.shape()
                ),
            ));
        }
        crate::task::evaluate::instance_masked(&t, &g, mask.as_ref())
            .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?
    } else {
        binary_scores(args, test.as_ref(), truth.as_ref(), &roi, mask.as_ref())?
    };
    if args.json {
        let map: serde_json::Map<String, Value> = scores
            .criteria
            .iter()
            .zip(&scores.values)
            .map(|(c, v)| {
                (
                    c.clone(),
                    if v.is_finite() { json!(v) } else { Value::Null },
                )
            })
            .collect();
        emit_json(
            out,
            &json!({"region_nm": {"offset": roi.offset().to_vec(), "shape": roi.shape().to_vec()}, "scores": map}),
        )?;
    } else {
        let mut text = format!("scored {} against {} over {roi}\n", ti.path, gi.path);
        for (c, v) in scores.criteria.iter().zip(&scores.values) {
            text.push_str(&format!("  {c:<48} {v:.4}\n"));
        }
        emit(out, &text)?;
    }
    Ok(exit::OK)
}

fn predict(args: &PredictArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::blockwise::{self, Which};
    let project = args.job.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let which = match (&args.iteration, &args.best) {
        (Some(_), Some(_)) => {
            return Err(Failure::new(
                exit::USAGE,
                "give --iteration or --best, not both",
            ))
        }
        (Some(i), None) => Which::Iteration(*i),
        (None, Some(b)) => {
            let Some((dataset, criterion)) = b.split_once(':') else {
                return Err(Failure::new(
                    exit::USAGE,
                    format!("--best takes DATASET:CRITERION, got `{b}`"),
                ));
            };
            Which::Best {
                dataset: dataset.into(),
                criterion: criterion.into(),
            }
        }
        (None, None) => Which::Latest,
    };
    let device = crate::device::choose_device_with_options(Some(&args.job.device))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let fail = |e: crate::train::TrainError| {
        Failure::new(train_code(&e), format!("run `{}`: {e}", run.name))
    };
    let model = blockwise::load_model(project.root(), &run, &which, device).map_err(fail)?;
    let started = std::time::Instant::now();
    let data_type = if args.output_dtype == "uint8" {
        crate::blockwise::PredictionType::Uint8
    } else {
        crate::blockwise::PredictionType::Float32
    };
    let predicted = predict_with(
        project.root(),
        &run,
        &model,
        &args.job,
        args.dataset.clone(),
        data_type,
        device,
    )?;
    let report = &predicted.report;
    let duration_secs = started.elapsed().as_secs_f64();
    if args.job.project.json {
        emit_json(
            out,
            &json!({
                "output": report.output.display().to_string(),
                "iteration": model.iteration,
                "roi_nm": {"offset": report.roi.offset().to_vec(), "shape": report.roi.shape().to_vec()},
                "blocks": report.blocks,
                "skipped": report.skipped,
                "input": predicted.input_json(),
                "duration_secs": duration_secs,
            }),
        )?;
    } else {
        emit(
            out,
            &format!(
                "predicted {} with run {} (iteration {}) in {duration_secs:.1} s\n  region       {}\n  blocks       {} ({} already done)\n{}",
                report.output.display(),
                run.name,
                model.iteration,
                report.roi,
                report.blocks,
                report.skipped,
                predicted.input_text()
            ),
        )?;
    }
    Ok(exit::OK)
}

/// Refuses an output array that is, contains or lies inside the input array (whatever the
/// spelling of the paths), so no prediction ever writes over its own input.
/// Checks that `container/dataset` may be written by a command reading `input` (see
/// [`crate::array::write::check_destination`]) and returns how to write it: replacing
/// what is there with `overwrite`, else only into a new dataset.
fn checked_output(
    container: &Path,
    dataset: &str,
    input: &Path,
    overwrite: bool,
) -> Result<crate::array::write::WriteMode, Failure> {
    use crate::array::write::{self, WriteMode};
    let mode = if overwrite {
        WriteMode::Overwrite
    } else {
        WriteMode::CreateNew
    };
    write::check_destination(container, dataset, &[input], mode)?;
    Ok(mode)
}

/// What [`predict_with`] did: the blockwise report and how the input was read.
struct Predicted {
    report: crate::blockwise::PredictReport,
    input: crate::blockwise::PreparedInput,
}

impl Predicted {
    /// How the input was read, as JSON.
    fn input_json(&self) -> Value {
        json!({
            "read_as": self.input.like,
            "steps": self.input.transform.steps,
            "voxel_size_nm": self.input.transform.voxel_size_nm.to_vec(),
            "scale_shift": [self.input.scale_shift.0, self.input.scale_shift.1],
            "scale_level": self.input.level,
            "from_record": self.input.recorded,
            "notes": self.input.notes,
        })
    }

    /// How the input was read, as text lines.
    fn input_text(&self) -> String {
        let t = &self.input.transform;
        let mut text = format!(
            "  input        read as dataset {} ({}; {} nm{}{})\n",
            self.input.like,
            t.describe(),
            t.voxel_size_nm,
            self.input
                .level
                .as_ref()
                .map(|l| format!("; scale level {l}"))
                .unwrap_or_default(),
            if self.input.recorded {
                ""
            } else {
                "; from the run's configs, it has no run record yet"
            }
        );
        for n in &self.input.notes {
            text.push_str(&format!("  note         {n}\n"));
        }
        text
    }
}

/// Predicts `input` with a loaded model block by block (with a progress bar on a terminal),
/// reading it as the run's training read its raw data.
#[allow(clippy::too_many_arguments)]
fn predict_with(
    project: &Path,
    run: &crate::config::RunConfig,
    model: &crate::blockwise::LoadedModel,
    job: &JobArgs,
    dataset: Option<String>,
    data_type: crate::blockwise::PredictionType,
    device: tch::Device,
) -> Result<Predicted, Failure> {
    let fail = |e: crate::train::TrainError| {
        Failure::new(train_code(&e), format!("run `{}`: {e}", run.name))
    };
    let input = crate::blockwise::open_input(project, run, &job.input, &job.input_options())
        .map_err(fail)?;
    let roi = job
        .roi
        .as_deref()
        .map(crate::geometry::Roi::parse_slices)
        .transpose()
        .map_err(|e| Failure::new(exit::USAGE, format!("--roi: {e}")))?;
    let (mut inference, roi) = crate::blockwise::inference_for(
        run,
        input.array.as_ref(),
        roi,
        job.max_block_input,
        device,
    )
    .map_err(fail)?;
    inference.normalisation = input.scale_shift;
    let dataset = dataset.unwrap_or_else(|| format!("prediction_{}_{}", run.name, model.iteration));
    let bar = indicatif::ProgressBar::new(0);
    if job.project.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // What the viewer's error overlay thresholds the prediction at by default: the
    // post-processing parameters apply would choose.
    let about = match crate::task::predictor::Predictor::from_task(&run.task_config) {
        Ok(predictor) => {
            let chosen = crate::blockwise::choose(project, run, &predictor, None, None, None, None)
                .map(|c| c.parameters)
                .ok()
                .or_else(|| {
                    // No validation scores: DaCapo's default threshold 0, else the first.
                    let grid = predictor.parameters();
                    grid.iter()
                        .find(|p| p.name() == "threshold_0")
                        .or(grid.first())
                        .cloned()
                });
            let threshold = match &chosen {
                Some(crate::task::postprocess::PostProcessorParameters::Threshold {
                    threshold,
                    ..
                }) => Some(*threshold),
                _ => None,
            };
            json!({"run": run.name, "parameters": chosen.map(|p| p.name()), "threshold": threshold})
        }
        Err(_) => json!({"run": run.name}),
    };
    crate::array::write::check_destination(
        &job.output,
        &dataset,
        &[&job.input],
        crate::array::write::WriteMode::Resume,
    )?;
    let output = crate::blockwise::PredictOutput {
        container: &job.output,
        dataset: &dataset,
        data_type,
        about,
        overwrite: job.overwrite,
        input: &job.input,
        input_steps: json!({
            "like": input.like,
            "steps": input.transform,
            "scale_shift": [input.scale_shift.0, input.scale_shift.1],
            "level": input.level,
        }),
    };
    let report = crate::blockwise::predict(
        model,
        &inference,
        input.array.as_ref(),
        Some(roi),
        &output,
        |k, n| {
            bar.set_length(n as u64);
            bar.set_position(k as u64);
        },
    )
    .map_err(|e| match e {
        e @ crate::train::TrainError::OutputExists { .. } => {
            Failure::new(exit::CONFLICT, e.to_string())
        }
        e => fail(e),
    })?;
    bar.finish_and_clear();
    Ok(Predicted { report, input })
}

fn architecture_shapes(
    name: &str,
    input: Option<Coordinate>,
    voxel_size: Option<Coordinate>,
    project: &ProjectArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let file = Path::new(name);
    let config = if file.is_file() {
        load_file(file, None).1?
    } else {
        let store = project.open()?.configs();
        match store.retrieve(Family::Architectures, name) {
            Ok(c) => c,
            Err(StoreError::NotFound { .. }) => store.retrieve(Family::Runs, name)?,
            Err(e) => return Err(e.into()),
        }
    };
    let mut note = None;
    let (architecture, task, voxel_size) = match &config {
        AnyConfig::Architecture(a) => (a.clone(), None, voxel_size),
        AnyConfig::Run(r) => {
            // The voxel size the network was trained at (recorded), else the raw data's.
            let vs = voxel_size.or_else(|| {
                let root = project.open().ok()?.root().to_path_buf();
                let record = crate::store::run::read_record(&root.join(&r.name))
                    .ok()
                    .flatten();
                let record = record.or_else(|| crate::train::run::run_record(&root, r, 0).ok());
                let found = record
                    .and_then(|rec| rec.input_for(None).ok().map(|d| d.transform.voxel_size_nm));
                if found.is_none() {
                    note = Some("the run's raw data could not be opened: sizes in voxels only");
                }
                found
            });
            (
                r.architecture_config.clone(),
                Some(r.task_config.clone()),
                vs,
            )
        }
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!(
                    "{name} is a {}, not an architecture or a run",
                    other.family().noun()
                ),
            ))
        }
    };
    let report = crate::ops::inspect::shapes(&architecture, task.as_ref(), input, voxel_size)
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let code = if report.error.is_some() {
        exit::INVALID
    } else {
        exit::OK
    };
    if project.json {
        let mut v =
            serde_json::to_value(&report).map_err(|e| Failure::new(exit::IO, e.to_string()))?;
        v["architecture"] = json!(architecture.name());
        v["valid"] = json!(report.error.is_none());
        emit_json(out, &v)?;
    } else {
        let mut text = format!("{}: {}\n", architecture.name(), report.text());
        if let Some(n) = note {
            text.push_str(&format!("note: {n}\n"));
        }
        emit(out, &text)?;
    }
    Ok(code)
}

fn targets(args: &TargetsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let invalid = |e: crate::train::TrainError| Failure::new(train_code(&e), e.to_string());
    let (task, gt, mask): (
        crate::config::TaskConfig,
        Box<dyn crate::array::ArraySource>,
        Option<Box<dyn crate::array::ArraySource>>,
    ) = match (&args.run, &args.task) {
        (Some(run_name), None) => {
            let project = args.project.open()?;
            let run = stored_run(&project, run_name)?;
            match &args.gt {
                Some(gt) => (
                    run.task_config.clone(),
                    crate::array::open(gt)?,
                    args.mask.as_deref().map(crate::array::open).transpose()?,
                ),
                None => {
                    let (report, dataset) = crate::ops::inspect::write_run_targets(
                        project.root(),
                        &run,
                        args.dataset.as_deref(),
                        &args.output,
                        args.overwrite,
                    )
                    .map_err(invalid)?;
                    let what = format!("dataset {}", dataset.name);
                    return print_targets(args, &run.task_config, &what, &report, out);
                }
            }
        }
        (None, Some(file)) => {
            let Some(gt) = &args.gt else {
                return Err(Failure::new(exit::USAGE, "--task needs --gt"));
            };
            let task = match load_file(file, Some(Family::Tasks)).1? {
                AnyConfig::Task(t) => t,
                other => {
                    return Err(Failure::new(
                        exit::USAGE,
                        format!(
                            "{} holds a {}, not a task",
                            file.display(),
                            other.family().noun()
                        ),
                    ))
                }
            };
            (
                task,
                crate::array::open(gt)?,
                args.mask.as_deref().map(crate::array::open).transpose()?,
            )
        }
        _ => return Err(Failure::new(exit::USAGE, "give --run RUN or --task FILE")),
    };
    let report = crate::ops::inspect::write_targets(
        &task,
        gt.as_ref(),
        mask.as_deref(),
        &args.output,
        args.overwrite,
    )
    .map_err(invalid)?;
    print_targets(args, &task, &gt.info().path, &report, out)
}

fn print_targets(
    args: &TargetsArgs,
    task: &crate::config::TaskConfig,
    gt: &str,
    report: &crate::ops::inspect::TargetsReport,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    if args.project.json {
        let v = serde_json::to_value(report).map_err(|e| Failure::new(exit::IO, e.to_string()))?;
        emit_json(out, &v)?;
    } else {
        let mut text = format!(
            "wrote the targets and weights of task {} for {}\n  target  {}\n  weight  {}\n",
            task.name(),
            gt,
            report.target.display(),
            report.weight.display()
        );
        for (c, (t, w)) in report
            .target_range
            .iter()
            .zip(&report.weight_range)
            .enumerate()
        {
            text.push_str(&format!(
                "  channel {c}: target {:.3} … {:.3}, weight {:.3} … {:.3}\n",
                t.0, t.1, w.0, w.1
            ));
        }
        emit(out, &text)?;
    }
    Ok(exit::OK)
}

fn export_weights(args: &ExportWeightsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let run_dir = project.root().join(&run.name);
    let iteration = match args.iteration {
        Some(i) => i,
        None => RunDir::from_dir(&run_dir)
            .latest_checkpoint()
            .ok_or_else(|| {
                Failure::new(
                    exit::INVALID,
                    format!("run `{}` has no checkpoint to export", run.name),
                )
            })?,
    };
    let path = RunDir::from_dir(&run_dir).checkpoint(iteration);
    if !path.is_file() {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "run `{}` has no checkpoint of iteration {iteration} ({} does not exist)",
                run.name,
                path.display()
            ),
        ));
    }
    if args.output.exists() && !args.overwrite {
        return Err(Failure::new(
            exit::CONFLICT,
            format!(
                "{} exists: pass --overwrite to replace it",
                args.output.display()
            ),
        ));
    }
    let lr = match &run.trainer_config {
        crate::config::TrainerConfig::Gunpowder(t) => t.learning_rate,
        _ => 1e-3,
    };
    let report = crate::weights::export_dacapo(&path, &args.output, lr)
        .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    if args.project.json {
        emit_json(
            out,
            &json!({"run": run.name, "iteration": iteration, "output": report.output.display().to_string(),
                    "tensors": report.tensors, "parameters": report.parameters}),
        )?;
    } else {
        emit(
            out,
            &format!(
                "exported run {} iteration {iteration} to {} ({} tensors, with chain.* aliases)\n",
                run.name,
                report.output.display(),
                report.tensors
            ),
        )?;
    }
    Ok(exit::OK)
}

fn import_run(args: &ImportRunArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let options = crate::train::import::ImportOptions {
        overwrite: args.overwrite,
    };
    let report = crate::train::import::import_dacapo_run(project.root(), &run, &options)
        .map_err(|e| Failure::new(exit::INVALID, format!("run `{}`: {e}", run.name)))?;
    if args.project.json {
        emit_json(out, &serde_json::to_value(&report).unwrap_or(Value::Null))?;
        return Ok(exit::OK);
    }
    let mut text = format!("imported DaCapo run {}\n", report.run);
    for c in &report.imported {
        text.push_str(&format!(
            "  iteration {:<8} {} -> {}{}\n",
            c.iteration,
            c.from.display(),
            c.to.display(),
            if c.optimizer {
                " (with optimizer state)"
            } else {
                ""
            }
        ));
    }
    if !report.kept.is_empty() {
        text.push_str(&format!(
            "  already imported (kept): iterations {}\n",
            join_dims(&report.kept, ", ")
        ));
    }
    text.push_str(&format!(
        "  training statistics: {} iterations\n",
        report.training_stats
    ));
    for note in &report.notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

fn import_weights(args: &ImportWeightsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::train::checkpoint;
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let run_dir = project.root().join(&run.name);
    let path = RunDir::from_dir(&run_dir).checkpoint(args.iteration);
    if path.exists() && !args.overwrite {
        return Err(Failure::new(
            exit::INVALID,
            format!(
                "{} exists: choose another --iteration or pass --overwrite",
                path.display()
            ),
        ));
    }
    let head = crate::train::run::head_for(&run.task_config)
        .map_err(|e| Failure::new(exit::INVALID, format!("run `{}`: {e}", run.name)))?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    crate::nn::Model::new(&vs.root(), &run.architecture_config, &head)
        .map_err(|e| Failure::new(exit::INVALID, format!("run `{}`: {e}", run.name)))?;
    let invalid = |e: crate::weights::WeightsError| Failure::new(exit::INVALID, e.to_string());
    let state = crate::weights::read_state_dict(&args.weights).map_err(invalid)?;
    let report =
        crate::weights::load_into(&vs, &state, &args.weights, args.partial).map_err(invalid)?;
    let optimizer = crate::train::optim::RAdam::new(&vs);
    checkpoint::save(&path, &vs, &optimizer, &std::collections::BTreeMap::new())
        .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    if args.project.json {
        emit_json(
            out,
            &json!({
                "run": run.name,
                "checkpoint": path.display().to_string(),
                "iteration": args.iteration,
                "loaded": report.loaded,
                "kept_initialised": report.kept,
                "unused": report.unused,
            }),
        )?;
    } else {
        let mut text = format!(
            "imported {} into run {} as iteration {}: {} tensors loaded\n  checkpoint  {}\n",
            args.weights.display(),
            run.name,
            args.iteration,
            report.loaded,
            path.display()
        );
        if !report.kept.is_empty() {
            text.push_str(&format!(
                "  kept as initialised ({}): {}\n",
                report.kept.len(),
                report.kept.join(", ")
            ));
        }
        if !report.unused.is_empty() {
            text.push_str(&format!(
                "  not used ({}): {}\n",
                report.unused.len(),
                report.unused.join(", ")
            ));
        }
        emit(out, &text)?;
    }
    Ok(exit::OK)
}

fn apply(args: &ApplyArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::blockwise::{self, Which};
    let project = args.job.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let fail = |e: crate::train::TrainError| {
        Failure::new(train_code(&e), format!("run `{}`: {e}", run.name))
    };
    let predictor = crate::task::predictor::Predictor::from_task(&run.task_config)
        .map_err(|e| Failure::new(exit::INVALID, format!("run `{}`: {e}", run.name)))?;
    let choice = blockwise::choose(
        project.root(),
        &run,
        &predictor,
        args.iteration,
        args.parameters.as_deref(),
        args.validation_dataset.as_deref(),
        args.criterion.as_deref(),
    )
    .map_err(fail)?;
    let name = format!(
        "output_{}_{}_{}",
        run.name,
        choice.iteration,
        choice.parameters.name()
    );
    let mode = checked_output(&args.job.output, &name, &args.job.input, args.job.overwrite)?;
    let device = crate::device::choose_device_with_options(Some(&args.job.device))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let model = blockwise::load_model(
        project.root(),
        &run,
        &Which::Iteration(choice.iteration),
        device,
    )
    .map_err(fail)?;
    let started = std::time::Instant::now();
    let predicted_with = predict_with(
        project.root(),
        &run,
        &model,
        &args.job,
        None,
        crate::blockwise::PredictionType::Float32,
        device,
    )?;
    let predicted = &predicted_with.report;
    let predict_secs = started.elapsed().as_secs_f64();
    let prediction = crate::array::open(&predicted.output)?;
    let started = std::time::Instant::now();
    let post = blockwise::post_process_array(
        prediction.as_ref(),
        &predictor,
        &choice.parameters,
        &args.job.output,
        &name,
        mode,
    )
    .map_err(fail)?;
    let post_secs = started.elapsed().as_secs_f64();
    let voxels = predicted.roi.shape() / prediction.info().geometry.voxel_size;
    let total: u64 = voxels.iter().map(|v| v as u64).product();
    if args.job.project.json {
        emit_json(
            out,
            &json!({
                "run": run.name,
                "iteration": choice.iteration,
                "parameters": choice.parameters.name(),
                "chosen_by": choice.basis.as_ref().map(|(d, c, v)| json!({"dataset": d, "criterion": c, "score": v})),
                "prediction": predicted.output.display().to_string(),
                "output": post.output.display().to_string(),
                "roi_nm": {"offset": predicted.roi.offset().to_vec(), "shape": predicted.roi.shape().to_vec()},
                "blocks": predicted.blocks,
                "skipped": predicted.skipped,
                "foreground_voxels": post.foreground,
                "voxels": total,
                "input": predicted_with.input_json(),
                "predict_secs": predict_secs,
                "post_process_secs": post_secs,
            }),
        )?;
        return Ok(exit::OK);
    }
    let basis = match &choice.basis {
        Some((d, c, v)) => format!("best {c} on {d}: {v:.3}"),
        None => "as given".to_string(),
    };
    let classes = predictor.channel_names();
    let mut text = format!(
        "applied run {} (iteration {}, {}; {basis})\n  region       {}\n  prediction   {} ({} blocks, {} already done, {predict_secs:.1} s)\n  output       {} ({} chunks, {post_secs:.1} s)\n",
        run.name,
        choice.iteration,
        choice.parameters.name(),
        predicted.roi,
        predicted.output.display(),
        predicted.blocks,
        predicted.skipped,
        post.output.display(),
        post.chunks,
    );
    text.push_str(&predicted_with.input_text());
    for (k, n) in post.foreground.iter().enumerate() {
        let label = if predictor.output_channels().is_some() {
            classes.get(k).cloned().unwrap_or_default()
        } else {
            "labelled".to_string()
        };
        text.push_str(&format!(
            "  {label:<12} {:.2}% of {total} voxels\n",
            100.0 * *n as f64 / total.max(1) as f64
        ));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

fn demo(args: &DemoArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let dir = &args.project;
    let say = |text: String| {
        if !args.json {
            eprintln!("{text}");
        }
    };
    if !dir.join("data/synthetic.zarr/raw").exists() {
        say(format!(
            "writing synthetic data ({0}³ voxels) to {1}/data/synthetic.zarr",
            args.size,
            dir.display()
        ));
        crate::demo::generate(
            dir,
            &crate::demo::DemoOptions {
                seed: args.seed,
                size: args.size,
                overwrite: false,
            },
        )?;
    }
    let project = Project::open(dir)?;
    let run = crate::demo::project::demo_run(args.iterations, args.validation_interval.max(1));
    let outcome = project
        .configs()
        .store(&AnyConfig::Run(Box::new(run.clone())))?;
    say(format!(
        "run config `{}`: {outcome:?} in {}/configs/runs",
        run.name,
        dir.display()
    ));
    let train_args = TrainArgs {
        run: run.name.clone(),
        seed: Some(args.seed),
        device: "auto".into(),
        loader_threads: None,
        no_validation: false,
        keep_validation: "all".into(),
        iterations: None,
        project: ProjectArgs {
            project: Some(dir.clone()),
            json: true,
        },
    };
    let mut sink = Vec::new();
    say(format!(
        "training `{}` for {} iterations (validation every {})…",
        run.name, run.num_iterations, run.validation_interval
    ));
    let started = std::time::Instant::now();
    train(&train_args, &mut sink)?;
    let duration_secs = started.elapsed().as_secs_f64();
    // Results: the stored validation scores, best threshold per class and iteration.
    let scores_path = RunDir::new(dir, &run.name).validation_scores();
    let doc: Value = std::fs::read_to_string(&scores_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            Failure::new(
                exit::IO,
                format!(
                    "{}: no validation scores were written",
                    scores_path.display()
                ),
            )
        })?;
    let criteria: Vec<String> = doc["criteria"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let params: Vec<String> = doc["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let at = |name: &str| criteria.iter().position(|c| c == name);
    let mut rows = Vec::new();
    for it in doc["iterations"].as_array().into_iter().flatten() {
        let iteration = it["iteration"].as_u64().unwrap_or(0);
        let block = &it["scores"][0];
        let mut row = json!({"iteration": iteration});
        for class in crate::demo::project::CLASSES {
            let (Some(f1), Some(dice)) = (
                at(&format!("{class}__f1_score")),
                at(&format!("{class}__dice")),
            ) else {
                continue;
            };
            let mut best: Option<(usize, f64)> = None;
            for p in 0..params.len() {
                let v = block[p][f1].as_f64().unwrap_or(f64::NAN);
                if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
                    best = Some((p, v));
                }
            }
            if let Some((p, f)) = best {
                row[class] =
                    json!({"threshold": params[p], "f1_score": f, "dice": block[p][dice].as_f64()});
            }
        }
        rows.push(row);
    }
    let stats =
        crate::store::stats::read_training_stats(&RunDir::new(dir, &run.name).training_stats())
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    // Apply the best checkpoint and threshold to the whole raw volume.
    say(format!(
        "applying the best checkpoint to {}/data/synthetic.zarr/raw…",
        dir.display()
    ));
    let apply_args = ApplyArgs {
        run: run.name.clone(),
        iteration: None,
        parameters: None,
        validation_dataset: None,
        criterion: None,
        job: JobArgs {
            input: dir.join("data/synthetic.zarr/raw"),
            output: dir.join("outputs/synthetic.zarr"),
            roi: None,
            device: "auto".into(),
            max_block_input: None,
            like: None,
            resample: false,
            accept_data_type: false,
            // Running the demo again recomputes its outputs.
            overwrite: true,
            project: ProjectArgs {
                project: Some(dir.clone()),
                json: true,
            },
        },
    };
    let mut sink = Vec::new();
    apply(&apply_args, &mut sink)?;
    let applied: Value = serde_json::from_slice(&sink)
        .map_err(|e| Failure::new(exit::IO, format!("apply report: {e}")))?;
    let view = demo_view(dir, &applied);
    if args.json {
        emit_json(
            out,
            &json!({"project": dir.display().to_string(), "run": run.name, "duration_secs": duration_secs, "validations": rows, "iterations": stats.len(), "applied": applied, "view": view.as_ref().map(|v| v.display().to_string())}),
        )?;
        return Ok(exit::OK);
    }
    let mean_loss = |from: usize, to: usize| {
        let s = &stats[from.min(stats.len())..to.min(stats.len())];
        s.iter().map(|x| x.loss).sum::<f64>() / s.len().max(1) as f64
    };
    let mut text = format!("\ntrained {} iterations in {duration_secs:.0} s; loss {:.4} (first 20) → {:.4} (last 20)\n\n", stats.len(), mean_loss(0, 20), mean_loss(stats.len().saturating_sub(20), stats.len()));
    text.push_str(&format!(
        "{:>9}  {:<24} {:<24}\n",
        "iteration", "mito: best F1 (threshold)", "er: best F1 (threshold)"
    ));
    for r in &rows {
        let cell = |c: &str| {
            r.get(c)
                .map(|v| {
                    format!(
                        "{:.3} ({})",
                        v["f1_score"].as_f64().unwrap_or(f64::NAN),
                        v["threshold"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "-".into())
        };
        text.push_str(&format!(
            "{:>9}  {:<24} {:<24}\n",
            r["iteration"].as_u64().unwrap_or(0),
            cell("mito"),
            cell("er")
        ));
    }
    let voxels = applied["voxels"].as_u64().unwrap_or(0).max(1) as f64;
    let fg: Vec<String> = crate::demo::project::CLASSES
        .iter()
        .zip(
            applied["foreground_voxels"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .map(|(c, n)| format!("{c} {:.1}%", 100.0 * n.as_f64().unwrap_or(0.0) / voxels))
        .collect();
    text.push_str(&format!(
        "\napplied iteration {} with {} to the whole volume ({:.0} s): {}\n",
        applied["iteration"],
        applied["parameters"].as_str().unwrap_or(""),
        applied["predict_secs"].as_f64().unwrap_or(0.0)
            + applied["post_process_secs"].as_f64().unwrap_or(0.0),
        fg.join(", ")
    ));
    text.push_str(&format!(
        "\nproject: {0}\n  checkpoints  {1}/\n  predictions  {2}/<iteration>/synthetic_crop2/\n  scores       {3}\n  prediction   {4}\n  segmentation {5}\n",
        dir.display(),
        RunDir::new(dir, &run.name).checkpoints_dir().display(),
        RunDir::new(dir, &run.name).validation_container().display(),
        scores_path.display(),
        applied["prediction"].as_str().unwrap_or(""),
        applied["output"].as_str().unwrap_or("")
    ));
    if let Some(v) = &view {
        text.push_str(&format!(
            "  view         segno gui {} --view {}\n",
            dir.display(),
            v.display()
        ));
    }
    emit(out, &text)?;
    let display = crate::gui::has_display();
    if display && !args.no_gui {
        if let Some(v) = view {
            crate::gui::run(crate::gui::GuiOptions {
                project: Some(dir.clone()),
                view: Some(v),
                screenshot: None,
                size: [1280, 800],
                headless: false,
                section: None,
            })
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
        }
    }
    Ok(exit::OK)
}

/// Writes `<project>/demo.view.json`: the raw data with the applied prediction and
/// segmentation in the 4-panel layout. `None` (with a warning) when it cannot be written.
fn demo_view(dir: &Path, applied: &Value) -> Option<PathBuf> {
    use crate::render::state::{LayerSettings, LayerState, ViewState};
    let mut viewer = crate::gui::viewer::Viewer::new(1 << 20);
    viewer.add_layer(&dir.join("data/synthetic.zarr/raw"));
    for key in ["prediction", "output"] {
        if let Some(p) = applied[key].as_str() {
            viewer.add_layer(Path::new(p));
        }
    }
    let mut state: ViewState = viewer.state.clone();
    // The prediction starts hidden (press 2 to show it); the segmentation is on top.
    if let Some(LayerState {
        visible,
        settings: LayerSettings::Prediction(_),
        ..
    }) = state.layers.get_mut(1)
    {
        *visible = false;
    }
    let path = dir.join("demo.view.json");
    match state.save(&path) {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    }
}

fn train(args: &TrainArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
    let device = crate::device::choose_device_with_options(Some(&args.device))
        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let bar = indicatif::ProgressBar::new(run.num_iterations);
    if args.project.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} iterations, loss {msg} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(run.name.clone());
    let progress = bar.clone();
    // Without a terminal (a log file, the app's launcher) progress goes out as lines.
    let lines = {
        use std::io::IsTerminal;
        !std::io::stderr().is_terminal()
    };
    if lines {
        eprintln!("run {}: training on {device:?}", run.name);
    }
    // SIGTERM (the app's Stop, a cluster's cancel) and Ctrl-C stop after the current
    // iteration and keep it as a checkpoint; a second Ctrl-C ends the process at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()))
            .map_err(|e| Failure::new(exit::IO, format!("cannot handle signals: {e}")))?;
    }
    let options = crate::train::TrainOptions {
        seed: args.seed,
        device,
        loader_threads: args.loader_threads,
        stop: Some(stop),
        validate: !args.no_validation,
        max_watershed_voxels: crate::task::predictor::MAX_WATERSHED_VOXELS,
        keep_validation: if args.keep_validation == "best" {
            crate::train::KeepValidation::BestAndLatest
        } else {
            crate::train::KeepValidation::All
        },
        stop_after: args.iterations,
        on_iteration: Some(Box::new(move |i, loss| {
            progress.set_position(i + 1);
            progress.set_message(format!("{loss:.4}"));
            if lines && (i + 1) % 10 == 0 {
                eprintln!("iteration {}: loss {loss:.5}", i + 1);
            }
        })),
    };
    let started = std::time::Instant::now();
    let run_dir = project.root().join(&run.name);
    let result = crate::train::train_run(project.root(), &run, options);
    // The Runs panel reads how the trainer ended (a lock refusal is not this run's end).
    match &result {
        Ok(r) if r.trained_until >= run.num_iterations => {
            crate::store::lock::record_status(&run_dir, "finished", None)
        }
        Ok(_) => crate::store::lock::record_status(&run_dir, "stopped", None),
        Err(crate::train::TrainError::Lock(_)) => {}
        Err(e) => crate::store::lock::record_status(&run_dir, "failed", Some(e.to_string())),
    }
    let report =
        result.map_err(|e| Failure::new(train_code(&e), format!("run `{}`: {e}", run.name)))?;
    bar.finish_and_clear();
    let duration_secs = started.elapsed().as_secs_f64();
    if args.project.json {
        emit_json(
            out,
            &json!({
                "run": run.name,
                "trained_until": report.trained_until,
                "num_iterations": run.num_iterations,
                "seed": report.seed,
                "interrupted": report.interrupted,
                "validation_failures": report
                    .validations
                    .iter()
                    .flat_map(|v| v.errors.iter().map(move |(d, e)| json!({"iteration": v.iteration, "dataset": d, "error": e})))
                    .chain(report.validation_errors.iter().map(|(i, e)| json!({"iteration": i, "error": e})))
                    .collect::<Vec<_>>(),
                "loader_threads": report.loader_threads,
                "resumed_from": report.resumed_from,
                "last_loss": report.last_loss,
                "checkpoints": report.checkpoints,
                "duration_secs": duration_secs,
                "device": format!("{device:?}"),
            }),
        )?;
    } else {
        let resumed = report
            .resumed_from
            .map(|r| format!(" (resumed from checkpoint {r})"))
            .unwrap_or_default();
        let stopped = if report.interrupted { ", stopped" } else { "" };
        emit(
            out,
            &format!(
                "run {}: trained to iteration {} of {}{resumed}{stopped} in {duration_secs:.1} s on {device:?}\n  seed           {}\n  last loss      {}\n  checkpoints    {}\n",
                run.name,
                report.trained_until,
                run.num_iterations,
                report.seed,
                report.last_loss.map(|l| format!("{l:.5}")).unwrap_or_else(|| "-".into()),
                if report.checkpoints.is_empty() { "-".to_string() } else { join_dims(&report.checkpoints, ", ") },
            ),
        )?;
    }
    Ok(exit::OK)
}

/// A file of this checkout: relative to the current directory, else to the source tree
/// the binary was built from.
fn checkout_file(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn datasplit(args: &DatasplitArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::datasplit::{generate, read_csv, GeneratorOptions};
    let specs = read_csv(&args.csv).map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.csv
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "datasplit".into())
    });
    let mut options = GeneratorOptions::new(&name, args.input_resolution, args.output_resolution);
    options.targets = (!args.targets.is_empty()).then(|| args.targets.clone());
    options.binarize_gt = args.binarize_gt;
    options.use_negative_class = args.use_negative_class;
    options.raw_min = args.raw_min;
    options.raw_max = args.raw_max;
    options.separator = args.separator.clone();
    options.max_validation_volume_size = args.max_validation_volume_size;
    let project = args.project.open()?;
    let generated = generate(&specs, &options, project.root())
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let config = AnyConfig::Datasplit(crate::config::DataSplitConfig::TrainValidate(
        generated.config.clone(),
    ));
    let problems = config.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(Failure::new(
            exit::INVALID,
            format!("the generated datasplit is invalid: {}", lines.join("; ")),
        ));
    }
    let stored = if args.store {
        Some(
            match project.configs().store(&config).map_err(Failure::from)? {
                StoreOutcome::Written => "stored",
                StoreOutcome::Unchanged => "already stored (identical)",
            },
        )
    } else {
        None
    };
    for w in &generated.warnings {
        eprintln!("warning: {w}");
    }
    if args.project.json {
        return emit_json(
            out,
            &json!({"name": generated.config.name, "stored": stored, "warnings": generated.warnings,
                    "train": generated.config.train_configs.len(), "validate": generated.config.validate_configs.len(),
                    "yaml": config.to_yaml()}),
        )
        .map(|()| exit::OK);
    }
    match stored {
        Some(s) => emit(
            out,
            &format!(
                "datasplit {} ({} training, {} validation datasets): {s}\n",
                generated.config.name,
                generated.config.train_configs.len(),
                generated.config.validate_configs.len()
            ),
        )?,
        None => emit(out, &config.to_yaml())?,
    }
    Ok(exit::OK)
}

fn neuroglancer(args: &NeuroglancerArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let state = crate::render::state::ViewState::load(&args.view)
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    let mut viewer = crate::gui::viewer::Viewer::new(1 << 20);
    viewer.set_state(state);
    for i in 0..viewer.state.layers.len() {
        let s = viewer.layer_status(i);
        if s.starts_with("error") {
            return Err(Failure::new(
                exit::INVALID,
                format!("layer {:?}: {s}", viewer.state.layers[i].name),
            ));
        }
    }
    let root = match &args.root {
        Some(r) => r.clone(),
        None => args
            .view
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let (json, url) = viewer.neuroglancer(&args.base_url, &root);
    if let Some(path) = &args.output {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        crate::store::atomic::write_atomic(path, text.as_bytes(), true)
            .map_err(|e| Failure::new(exit::IO, format!("{}: {e}", path.display())))?;
    }
    let _ = writeln!(out, "{url}");
    Ok(exit::OK)
}

fn bench_viewer(args: &ViewerBenchArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::render::state::Layout;
    let layout = match args.layout.as_str() {
        "4panel" => Layout::FourPanel,
        "xy" => Layout::Xy,
        "xz" => Layout::Xz,
        "yz" => Layout::Yz,
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("--layout is 4panel, xy, xz or yz, not `{other}`"),
            ))
        }
    };
    let options = crate::gui::bench::ViewerBenchOptions {
        dir: args.dir.clone(),
        size: args.size,
        width: args.image[0],
        height: args.image[1],
        frames: args.frames.max(1),
        pan_px: args.pan,
        jumps: args.jumps,
        layout,
    };
    let r = crate::gui::bench::bench_viewer(&options, out)
        .map_err(|e| Failure::new(exit::INVALID, e))?;
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&r).unwrap_or_default()
        );
        return Ok(exit::OK);
    }
    let mut jumps = r.jump_ms.clone();
    jumps.sort_by(|a, b| a.total_cmp(b));
    let jump_median = jumps.get(jumps.len() / 2).copied().unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "viewer benchmark: {}³ volume, {}×{} {}, 3 layers ({} pixels per frame), {}",
        args.size, args.image[0], args.image[1], args.layout, r.pixels_per_frame, r.adapter
    );
    let _ = writeln!(
        out,
        "  frame time        median {:.1} ms ({:.1} fps), p90 {:.1} ms, p99 {:.1} ms   target median ≥ 30 fps {}",
        r.frame_ms[0],
        r.median_fps,
        r.frame_ms[1],
        r.frame_ms[2],
        if r.median_fps >= 30.0 { "✓" } else { "✗" }
    );
    let _ = writeln!(
        out,
        "    of which       compose {:.1} ms (CPU), upload + draw + read back {:.1} ms (GPU; {:.1} ms without new textures); {} of {} frames still loading new chunks",
        r.compose_ms, r.gpu_ms, r.gpu_static_ms, r.incomplete_frames, args.frames
    );
    let list: Vec<String> = r.jump_ms.iter().map(|v| format!("{v:.0}")).collect();
    let _ = writeln!(
        out,
        "  jump → complete   median {jump_median:.0} ms ({} ms)   target < 300 ms {}",
        list.join(", "),
        if jump_median < 300.0 { "✓" } else { "✗" }
    );
    Ok(exit::OK)
}

fn bench_engine(
    mode: crate::bench::engine::EngineMode,
    args: &EngineBenchArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    use crate::bench::engine::{self, BenchNet};
    let net = match args.net.as_str() {
        "bench" => BenchNet::Bench,
        "spec" => BenchNet::Spec,
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("--net is bench or spec, not `{other}`"),
            ))
        }
    };
    if args.warmup == 0 {
        return Err(Failure::new(exit::USAGE, "--warmup must be at least 1"));
    }
    let options = engine::EngineBenchOptions {
        dir: args.dir.clone(),
        size: args.size,
        input: args.input,
        net,
        iterations: args.iterations.max(1),
        warmup: args.warmup,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        python: args.python.clone(),
        reference: !args.no_reference,
    };
    let figures = engine::bench_engine(mode, &options)
        .map_err(|e| Failure::new(exit::INVALID, e.to_string()))?;
    if args.json {
        let rows: Vec<Value> = figures
            .iter()
            .map(|f| {
                json!({"name": f.name, "unit": f.unit, "segno": f.segno, "dacapo": f.dacapo, "ratio": f.ratio(), "target": f.target})
            })
            .collect();
        emit_json(
            out,
            &json!({"mode": mode.name(), "net": args.net, "input": args.input, "threads": options.threads, "iterations": options.iterations, "warmup": options.warmup, "figures": rows}),
        )?;
        return Ok(exit::OK);
    }
    let mut text = format!(
        "{} ({} net, {}³ input, {} threads, {} timed after {} warm-up)\n{:<36} {:>14} {:>14} {:>8}  {}\n",
        mode.name(),
        args.net,
        args.input,
        options.threads,
        options.iterations,
        options.warmup,
        "figure",
        "Segno",
        "DaCapo 0.3.5",
        "ratio",
        "target"
    );
    for f in &figures {
        let fmt = |v: f64| {
            if v >= 1000.0 {
                format!("{v:.3e}")
            } else {
                format!("{v:.4}")
            }
        };
        text.push_str(&format!(
            "{:<36} {:>14} {:>14} {:>8}  {}  ({})\n",
            f.name,
            fmt(f.segno),
            f.dacapo.map(fmt).unwrap_or_else(|| "-".into()),
            f.ratio()
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "-".into()),
            f.target.map(|t| format!("≥ {t}")).unwrap_or_default(),
            f.unit
        ));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

fn bench_arrays(
    size: usize,
    dir: PathBuf,
    repeats: usize,
    python: Option<PathBuf>,
    no_reference: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    if size < 64 {
        return Err(Failure::new(
            exit::USAGE,
            format!("--size must be at least 64, got {size}"),
        ));
    }
    let python = if no_reference {
        None
    } else {
        let py = python.unwrap_or_else(|| checkout_file(".venv-zarr/bin/python"));
        if !py.exists() {
            return Err(Failure::new(
                exit::IO,
                format!("{} not found: run scripts/zarr-python-venv.sh, pass --python, or use --no-reference", py.display()),
            ));
        }
        Some(py)
    };
    let options = crate::bench::ArrayBenchOptions {
        size,
        dir,
        repeats,
        python,
        script: checkout_file("scripts/zarr_python_bench.py"),
    };
    if cfg!(debug_assertions) {
        tracing::warn!("this is a debug build: build with --release for meaningful numbers");
    }
    let rows =
        crate::bench::bench_arrays(&options).map_err(|e| Failure::new(exit::IO, e.to_string()))?;
    if json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "array": r.array,
                    "mode": r.mode,
                    "threads": r.threads,
                    "segno_mb_per_s": r.segno_mb_per_s,
                    "zarr_python_mb_per_s": r.reference_mb_per_s,
                    "ratio": r.ratio(),
                })
            })
            .collect();
        emit_json(
            out,
            &json!({"size": size, "debug_build": cfg!(debug_assertions), "rows": v}),
        )?;
        return Ok(exit::OK);
    }
    let mut text =
        format!(
        "{size}³ uint8 ({:.0} MB), best of {repeats}{}\n{:<22} {:<7} {:>7} {:>12} {:>14} {:>7}\n",
        (size * size * size) as f64 / 1e6,
        if cfg!(debug_assertions) { ", DEBUG BUILD" } else { "" },
        "array", "mode", "threads", "segno MB/s", "zarr-py MB/s", "ratio"
    );
    for r in &rows {
        text.push_str(&format!(
            "{:<22} {:<7} {:>7} {:>12.0} {:>14} {:>7}\n",
            r.array,
            r.mode,
            r.threads,
            r.segno_mb_per_s,
            r.reference_mb_per_s
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
            r.ratio()
                .map(|v| format!("{v:.2}×"))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

impl From<crate::array::ArrayError> for Failure {
    fn from(e: crate::array::ArrayError) -> Self {
        Self::new(array_code(&e), e.to_string())
    }
}

/// The exit code of an engine error: that of the array error it carries, 4 for an output
/// that exists, 5 for a run locked by another process, 1 otherwise.
fn train_code(e: &crate::train::TrainError) -> u8 {
    use crate::train::TrainError as E;
    match e {
        E::Array(a) => array_code(a),
        E::OutputExists { .. } => exit::CONFLICT,
        E::Lock(_) => exit::IO,
        _ => exit::INVALID,
    }
}

/// The exit code of an array error (see the README's table).
fn array_code(e: &crate::array::ArrayError) -> u8 {
    use crate::array::ArrayError as E;
    match e {
        E::NotFound { .. } => exit::NOT_FOUND,
        E::Exists { .. } => exit::CONFLICT,
        E::OverInput { .. } => exit::USAGE,
        E::Io { .. } | E::Write { .. } | E::Chunk { .. } | E::Read { .. } => exit::IO,
        E::Metadata { .. }
        | E::Unsupported { .. }
        | E::Invalid { .. }
        | E::OutOfBounds { .. }
        | E::Misaligned { .. } => exit::INVALID,
    }
}

fn join_dims<T: std::fmt::Display>(v: impl IntoIterator<Item = T>, sep: &str) -> String {
    v.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn array_info(path: &std::path::Path, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::array::{self, zarr};
    let a = array::open(path)?;
    let info = a.info();
    let (container, inner) = array::split_container_path(path);
    // Scale levels: of the group named, or of the multiscale group holding this array.
    let mut levels = zarr::scale_levels(&container, &inner).unwrap_or_default();
    let mut current = levels.first().map(|l| l.path.clone());
    if levels.is_empty() {
        if let Some((parent, name)) = inner.trim_matches('/').rsplit_once('/') {
            let siblings = zarr::scale_levels(&container, parent).unwrap_or_default();
            if siblings.iter().any(|l| l.path == name) {
                levels = siblings;
                current = Some(name.to_string());
            }
        } else if !inner.is_empty() {
            let siblings = zarr::scale_levels(&container, "").unwrap_or_default();
            if siblings.iter().any(|l| l.path == inner.trim_matches('/')) {
                levels = siblings;
                current = Some(inner.trim_matches('/').to_string());
            }
        }
    }
    let g = &info.geometry;
    if json {
        let level_json: Vec<Value> = levels
            .iter()
            .map(|l| {
                json!({
                    "path": l.path,
                    "voxel_size_nm": l.info.geometry.voxel_size.to_vec(),
                    "offset_nm": l.info.geometry.offset.to_vec(),
                    "shape": l.info.shape,
                })
            })
            .collect();
        emit_json(
            out,
            &json!({
                "path": info.path,
                "format": info.format,
                "data_type": info.data_type.name(),
                "shape": info.shape,
                "chunk_shape": info.chunk_shape,
                "shard_shape": info.shard_shape,
                "axes": g.axes.iter().map(|a| json!({"name": a.name, "spatial": a.spatial})).collect::<Vec<_>>(),
                "channels": info.channels(),
                "voxel_size_nm": g.voxel_size.to_vec(),
                "offset_nm": g.offset.to_vec(),
                "offset_as_stored": g.stored_offset,
                "on_voxel_grid": g.on_grid(),
                "offset_notes": g.offset_notes,
                "roi_nm": {"offset": info.roi.offset().to_vec(), "shape": info.roi.shape().to_vec()},
                "units": g.units,
                "codecs": info.codecs,
                "fill_value": info.fill_value,
                "metadata": g.source,
                "scale_levels": level_json,
                "current_level": current,
            }),
        )?;
        return Ok(exit::OK);
    }
    let axes = join_dims(
        g.axes.iter().map(|a| {
            if a.spatial {
                a.name.clone()
            } else {
                format!("{} (channel)", a.name)
            }
        }),
        ", ",
    );
    let mut text = format!(
        "{}\n  format        {}\n  data type     {}\n  shape         {}   (axes {axes})\n  chunks        {}\n",
        info.path,
        info.format,
        info.data_type,
        join_dims(&info.shape, " × "),
        join_dims(&info.chunk_shape, " × "),
    );
    if let Some(shard) = &info.shard_shape {
        text.push_str(&format!("  shards        {}\n", join_dims(shard, " × ")));
    }
    if info.channels() > 1 {
        text.push_str(&format!("  channels      {}\n", info.channels()));
    }
    text.push_str(&format!(
        "  voxel size    {} nm\n  offset        {} nm\n  region        {} nm\n  units         {}\n  codecs        {}\n  fill value    {}\n  geometry from {}\n",
        join_dims(g.voxel_size.iter(), " × "),
        join_dims(g.offset.iter(), ", "),
        info.roi,
        g.units.join(", "),
        info.codecs,
        info.fill_value,
        g.source,
    ));
    if g.stored_offset != g.offset.iter().map(|v| v as f64).collect::<Vec<_>>() {
        let stored: Vec<String> = g.stored_offset.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("  stored offset {}\n", stored.join(", ")));
    }
    for note in &g.offset_notes {
        text.push_str(&format!("  note          {note}\n"));
    }
    if !levels.is_empty() {
        text.push_str("  scale levels\n");
        for l in &levels {
            let mark = if current.as_deref() == Some(l.path.as_str()) {
                "*"
            } else {
                " "
            };
            text.push_str(&format!(
                "   {mark}{:<6} {:>16} nm   shape {}\n",
                l.path,
                join_dims(l.info.geometry.voxel_size.iter(), " × "),
                join_dims(&l.info.shape, " × "),
            ));
        }
    }
    emit(out, &text)?;
    Ok(exit::OK)
}

fn demo_data(args: &DemoDataArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let options = crate::demo::DemoOptions {
        seed: args.seed,
        size: args.size,
        overwrite: args.overwrite,
    };
    let started = std::time::Instant::now();
    let data = crate::demo::generate(&args.project, &options)?;
    let duration_secs = started.elapsed().as_secs_f64();
    if args.json {
        let arrays: Vec<Value> = data
            .arrays
            .iter()
            .map(|a| {
                json!({
                    "dataset": a.dataset,
                    "role": a.role,
                    "roi_nm": {"offset": a.roi.offset().to_vec(), "shape": a.roi.shape().to_vec()},
                    "voxel_size_nm": a.voxel_size.to_vec(),
                    "levels": a.levels,
                })
            })
            .collect();
        emit_json(
            out,
            &json!({
                "container": data.container.display().to_string(),
                "csv": data.csv.display().to_string(),
                "seed": args.seed,
                "size": args.size,
                "duration_secs": duration_secs,
                "arrays": arrays,
            }),
        )?;
    } else {
        let mut text = format!(
            "wrote {} in {duration_secs:.1} s\n",
            data.container.display()
        );
        for a in &data.arrays {
            text.push_str(&format!(
                "  {:<24} {:<9} {} nm voxels, region {}{}\n",
                a.dataset,
                a.role,
                join_dims(a.voxel_size.iter(), "×"),
                a.roi,
                if a.levels > 1 {
                    format!(", {} scale levels", a.levels)
                } else {
                    String::new()
                },
            ));
        }
        text.push_str(&format!("DataSplit CSV: {}\n", data.csv.display()));
        emit(out, &text)?;
    }
    Ok(exit::OK)
}

fn emit(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::new(exit::IO, format!("cannot write output: {e}")))
}

fn emit_json(out: &mut dyn Write, value: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
    emit(out, &format!("{text}\n"))
}

/// Loads a stored config named on the command line.
fn retrieve(
    project: &ProjectArgs,
    family: &str,
    name: &str,
) -> Result<(Family, AnyConfig), Failure> {
    let family = parse_family(family)?;
    let config = project.open()?.configs().retrieve(family, name)?;
    Ok((family, config))
}

fn info(json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let rt = crate::device::RuntimeInfo::query();
    let device = crate::device::choose_device(None)
        .map(|d| format!("{d:?}"))
        .unwrap_or_else(|e| e.to_string());
    if json {
        emit_json(
            out,
            &json!({
                "version": env!("CARGO_PKG_VERSION"),
                "cuda_available": rt.cuda_available,
                "cuda_devices": rt.cuda_devices,
                "cudnn_available": rt.cudnn_available,
                "cpu_threads": rt.cpu_threads,
                "default_device": device,
            }),
        )?;
    } else {
        emit(
            out,
            &format!(
                "segno {}\nlibtorch: {rt}\ndefault device: {device}\n",
                env!("CARGO_PKG_VERSION")
            ),
        )?;
    }
    Ok(exit::OK)
}

fn config(cmd: ConfigCommand, out: &mut dyn Write) -> Result<u8, Failure> {
    match cmd {
        ConfigCommand::List { family, project } => {
            let families = match family {
                Some(f) => vec![parse_family(&f)?],
                None => Family::ALL.to_vec(),
            };
            let project_dir = project.open()?;
            let store = project_dir.configs();
            let mut listing = Vec::new();
            for f in families {
                listing.push((f, store.names(f)?));
            }
            if project.json {
                let map: serde_json::Map<String, Value> = listing
                    .iter()
                    .map(|(f, names)| (f.dir_name().to_string(), json!(names)))
                    .collect();
                emit_json(out, &Value::Object(map))?;
            } else {
                let mut text = format!("project: {}\n", project_dir.root().display());
                for (f, names) in &listing {
                    text.push_str(&format!("{} ({}):\n", f.dir_name(), names.len()));
                    for n in names {
                        text.push_str(&format!("  {n}\n"));
                    }
                }
                emit(out, &text)?;
            }
            Ok(exit::OK)
        }
        ConfigCommand::Show {
            family,
            name,
            project,
        } => {
            let (_, config) = retrieve(&project, &family, &name)?;
            if project.json {
                emit_json(out, &config.to_document())?;
            } else {
                emit(out, &config.to_yaml())?;
            }
            Ok(exit::OK)
        }
        ConfigCommand::Validate {
            files,
            family,
            project,
        } => validate(files, family, &project, out),
        ConfigCommand::Import {
            paths,
            family,
            project,
        } => import(paths, family, &project, out),
        ConfigCommand::Describe { what, json } => describe(what.as_deref(), json, out),
        ConfigCommand::Export {
            family,
            name,
            output,
            force,
            project,
        } => {
            let (family, config) = retrieve(&project, &family, &name)?;
            let text = if project.json {
                serde_json::to_string_pretty(&config.to_document())
                    .map(|t| t + "\n")
                    .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?
            } else {
                config.to_yaml()
            };
            match output {
                None => emit(out, &text)?,
                Some(path) => {
                    if path.exists() && !force {
                        return Err(Failure::new(
                            exit::CONFLICT,
                            format!("{} exists; pass --force to replace it", path.display()),
                        ));
                    }
                    crate::store::atomic::write_atomic(&path, text.as_bytes(), true)?;
                    eprintln!("wrote {} {:?} to {}", family.noun(), name, path.display());
                }
            }
            Ok(exit::OK)
        }
    }
}

/// One checked or imported document, for reports.
struct Report {
    source: String,
    family: Option<Family>,
    name: Option<String>,
    outcome: Result<String, Failure>,
    /// Settings that are accepted but have no effect, and types Segno will not compute with.
    warnings: Vec<String>,
}

impl Report {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "source": self.source,
            "family": self.family.map(|f| f.dir_name()),
            "name": self.name.as_deref().map(crate::store::configs::short_name),
        });
        match &self.outcome {
            Ok(what) => {
                v["ok"] = json!(true);
                v["outcome"] = json!(what);
            }
            Err(f) => {
                v["ok"] = json!(false);
                v["error"] = json!(f.message);
                v["exit_code"] = json!(f.code);
            }
        }
        v["warnings"] = json!(self.warnings);
        v
    }

    fn to_text(&self) -> String {
        let what = match (&self.family, &self.name) {
            (Some(f), Some(n)) => {
                format!(" ({} {:?})", f.noun(), crate::store::configs::short_name(n))
            }
            _ => String::new(),
        };
        let mut text = match &self.outcome {
            Ok(o) => format!("{}{what}: {o}\n", self.source),
            Err(f) => format!("{}{what}: error: {}\n", self.source, f.message),
        };
        for w in &self.warnings {
            text.push_str(&format!("  warning: {w}\n"));
        }
        text
    }
}

fn finish(reports: &[Report], json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    if json {
        emit_json(
            out,
            &Value::Array(reports.iter().map(Report::to_json).collect()),
        )?;
    } else {
        let text: String = reports.iter().map(Report::to_text).collect();
        emit(out, &text)?;
        let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
        emit(
            out,
            &format!("{} ok, {failed} with errors\n", reports.len() - failed),
        )?;
    }
    // The most severe failure decides the exit code (I/O over conflicts over invalid).
    Ok(reports
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| f.code))
        .max()
        .unwrap_or(exit::OK))
}

fn load_file(path: &Path, family: Option<Family>) -> (Option<Family>, Result<AnyConfig, Failure>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                family,
                Err(Failure::new(
                    exit::IO,
                    format!("cannot read {}: {e}", path.display()),
                )),
            )
        }
    };
    let source = path.display().to_string();
    match AnyConfig::from_text(family, &text, &source) {
        Ok(c) => (Some(c.family()), Ok(c)),
        Err(e) => (family, Err(e.into())),
    }
}

/// Checks `path` as a DaCapo options file (`dacapo.yaml`) if it looks like one.
fn check_options_file(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    let source = path.display().to_string();
    let doc = crate::config::parse_document(&text, &source).ok()?;
    let map = doc.as_object()?;
    let looks_like_options = !map.contains_key(crate::config::TYPE_KEY)
        && (map.contains_key("runs_base_dir") || map.contains_key("compute_context"));
    if !looks_like_options {
        return None;
    }
    let outcome = crate::config::decode_document::<crate::config::OptionsConfig>(&doc, &source)
        .map(|_| "valid options file".to_string())
        .map_err(Failure::from);
    Some(Report {
        source,
        family: None,
        name: None,
        outcome,
        warnings: crate::config::compatibility_warnings(&doc),
    })
}

fn validate(
    files: Vec<PathBuf>,
    family: Option<String>,
    project: &ProjectArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let family = family.as_deref().map(parse_family).transpose()?;
    let mut reports = Vec::new();
    let store = project.open()?.configs();
    // The config's own problems, then (for a valid config) what its file name and the
    // files and arrays it names in the project say; warnings go with either.
    let check = |path: &Path, config: &AnyConfig| -> (Result<String, Failure>, Vec<String>) {
        let mut problems = config.problems();
        // The same name rules as import (a name must work as a file name everywhere).
        if let Err(e) = crate::store::configs::validate_name(config.family(), config.name()) {
            problems.push("name", e.to_string());
        }
        let mut warnings = crate::config::compatibility_warnings(&config.to_document());
        if problems.is_empty() {
            let project_check = store.check_file(path, config);
            problems = project_check.problems;
            warnings = project_check.warnings;
        }
        let outcome = if problems.is_empty() {
            Ok("valid".to_string())
        } else {
            Err(Failure::new(
                exit::INVALID,
                format!("{} problem(s):\n{problems}", problems.len()),
            ))
        };
        (outcome, warnings)
    };
    if files.is_empty() {
        let families = family.map_or(Family::ALL.to_vec(), |f| vec![f]);
        for f in families {
            for name in store.names(f)? {
                let path = store.path_of(f, &name);
                let (outcome, warnings) = match store.retrieve(f, &name) {
                    Ok(c) => check(&path, &c),
                    Err(e) => (Err(Failure::from(e)), Vec::new()),
                };
                reports.push(Report {
                    source: path.display().to_string(),
                    family: Some(f),
                    name: Some(name),
                    outcome,
                    warnings,
                });
            }
        }
    } else {
        for path in files {
            if family.is_none() {
                if let Some(report) = check_options_file(&path) {
                    reports.push(report);
                    continue;
                }
            }
            let (fam, loaded) = load_file(&path, family);
            let name = loaded.as_ref().ok().map(|c| c.name().to_string());
            let (outcome, warnings) = match loaded {
                Ok(c) => check(&path, &c),
                Err(e) => (Err(e), Vec::new()),
            };
            reports.push(Report {
                source: path.display().to_string(),
                family: fam,
                name,
                outcome,
                warnings,
            });
        }
    }
    finish(&reports, project.json, out)
}

fn import(
    paths: Vec<PathBuf>,
    family: Option<String>,
    project: &ProjectArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let family = family.as_deref().map(parse_family).transpose()?;
    let mut files = Vec::new();
    for p in &paths {
        files.extend(crate::store::config_files(p)?);
    }
    let store = project.open()?.configs();
    let mut reports = Vec::new();
    for (path, implied) in files {
        let imported = store.import_file(&path, family.or(implied));
        reports.push(Report {
            source: path.display().to_string(),
            family: imported.family,
            name: imported.name,
            warnings: imported.warnings,
            outcome: imported
                .outcome
                .map(|o| match o {
                    StoreOutcome::Written => "stored".to_string(),
                    StoreOutcome::Unchanged => "already stored (identical)".to_string(),
                })
                .map_err(Failure::from),
        });
    }
    finish(&reports, project.json, out)
}

fn field_json(f: &crate::config::FieldInfo) -> Value {
    json!({
        "key": f.key,
        "aliases": f.aliases,
        "required": f.required(),
        "default": f.default.map(|d| d()),
        "expected": (f.expected)(),
        "choices": f.choices,
        "help": f.help(),
        "no_effect": f.no_effect,
    })
}

/// A group and its types, one line each with the first sentence of the type's help.
fn group_text(group: &crate::config::TypeGroup) -> String {
    let mut text = format!("{} — {}\n", group.name, group.help);
    for t in group.types {
        let help = t.help();
        let first = help.split(". ").next().unwrap_or("").trim_end_matches('.');
        text.push_str(&format!("  {:<34} {first}\n", t.tag));
    }
    text
}

fn describe(what: Option<&str>, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let groups = crate::config::catalogue();
    match what {
        None => {
            if json {
                let v: Vec<Value> = groups
                    .iter()
                    .map(|g| json!({"group": g.name, "help": g.help, "types": g.types.iter().map(|t| t.tag).collect::<Vec<_>>()}))
                    .collect();
                return emit_json(out, &Value::Array(v)).map(|()| exit::OK);
            }
            let text: String = groups.iter().map(group_text).collect();
            emit(out, &text)?;
        }
        Some(name) => {
            if let Some(g) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)) {
                if json {
                    let v: Vec<Value> = g
                        .types
                        .iter()
                        .map(|t| json!({"type": t.tag, "help": t.help()}))
                        .collect();
                    return emit_json(out, &Value::Array(v)).map(|()| exit::OK);
                }
                let text = group_text(g);
                return emit(out, &text).map(|()| exit::OK);
            }
            let Some((group, t)) = crate::config::find_type(name) else {
                let all = groups
                    .iter()
                    .flat_map(|g| g.types.iter().map(|t| t.tag).chain([g.name]));
                let hint = crate::config::schema::closest(name, all)
                    .map(|b| format!(" (did you mean {b}?)"))
                    .unwrap_or_default();
                return Err(Failure::new(
                    exit::NOT_FOUND,
                    format!("no config type or group named {name:?}{hint}; run `segno config describe` for the list"),
                ));
            };
            if json {
                let v = json!({
                    "type": t.tag,
                    "group": group.name,
                    "help": t.help(),
                    "refused": t.refused,
                    "fields": t.fields.iter().map(field_json).collect::<Vec<_>>(),
                });
                return emit_json(out, &v).map(|()| exit::OK);
            }
            let mut text = format!("{} ({})\n  {}\n", t.tag, group.name, t.help());
            if let Some(why) = t.refused {
                text.push_str(&format!(
                    "  Accepted for compatibility; Segno does not compute with it: {why}.\n"
                ));
            }
            text.push('\n');
            for f in t.fields {
                let key = if f.aliases.is_empty() {
                    f.key.to_string()
                } else {
                    format!("{} (also {})", f.key, f.aliases.join(", "))
                };
                let default = match f.default {
                    None => "required".to_string(),
                    Some(d) => format!(
                        "default {}",
                        crate::config::to_yaml(&d()).trim_end().replace('\n', " ")
                    ),
                };
                let expected = if f.choices.is_empty() {
                    (f.expected)()
                } else {
                    format!("one of {}", f.choices.join(", "))
                };
                text.push_str(&format!(
                    "  {key}: {expected} — {default}\n      {}\n",
                    f.help()
                ));
                if let Some(why) = f.no_effect {
                    text.push_str(&format!(
                        "      No effect in Segno (accepted for compatibility): {why}.\n"
                    ));
                }
            }
            emit(out, &text)?;
        }
    }
    Ok(exit::OK)
}
