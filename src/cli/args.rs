//! The command line's arguments: every command and its options (clap). Declarations only,
//! so the command-line surface (and its help text) reads in one place; the benchmarks'
//! options are in `args/bench.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::Failure;

use crate::geometry::Coordinate;
use crate::store::Project;

mod bench;
pub use bench::*;

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
    /// Follow and take part in block jobs (`predict`, `apply`, `post-process` outputs and
    /// `evaluate --save` directories): progress, and the worker loop that local and cluster
    /// workers run.
    #[command(subcommand)]
    Job(JobCommand),
    /// Validate a checkpoint of a run on its validation datasets (scores and bests are stored).
    Validate(ValidateArgs),
    /// Threshold a prediction into a segmentation, chunk by chunk in parallel.
    PostProcess(PostProcessArgs),
    /// Score a segmentation against ground truth (DaCapo's 21 binary metrics per channel,
    /// or the variation of information of instances), over any region: in blocks shared by
    /// workers and resumable with --save.
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

/// `segno job …` sub-commands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Take part in the block job of OUTPUT as one worker: claim blocks, compute and
    /// write them, record them in the job's ledger, until none is left to take.
    Work(JobWorkArgs),
    /// Cancel the cluster jobs of the block job of OUTPUT; finished blocks stay recorded
    /// and the same command run again continues.
    Cancel {
        /// The job's output array (container.zarr/dataset).
        output: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Continue the block job of OUTPUT: failed blocks get another round; a job sent to a
    /// cluster is submitted again with the same resources, any other is finished here.
    Resume {
        /// The job's output array (container.zarr/dataset).
        output: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The progress of the block job of OUTPUT: blocks done, running, failed, throughput.
    Status {
        /// The job's output array (container.zarr/dataset).
        output: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `segno job work`.
#[derive(Debug, Args, Clone)]
pub struct JobWorkArgs {
    /// The job's output array (container.zarr/dataset).
    pub output: PathBuf,
    /// This worker's name in the ledger (letters, digits, `.`, `_`, `-`; default:
    /// host-pid).
    #[arg(long)]
    pub worker: Option<String>,
    /// Where in the job to start, as a fraction of its blocks (workers starting apart
    /// rarely ask for the same block).
    #[arg(long, default_value_t = 0.0, conflicts_with = "task")]
    pub start: f64,
    /// This worker is task I of N (1-based): it starts at fraction (I−1)/N of the blocks.
    #[arg(long, value_name = "I/N", value_parser = parse_task)]
    pub task: Option<(u32, u32)>,
    /// Stay until every block is done or given up, taking over blocks of workers that
    /// stopped (else leave when no block is left to take).
    #[arg(long)]
    pub sweep: bool,
    /// Compute device (default: the one the job was started for).
    #[arg(long)]
    pub device: Option<String>,
    /// CPU threads for the network (default: all).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `I/N` (task I of N, 1 ≤ I ≤ N).
fn parse_task(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: expected I/N, e.g. 3/8"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: I is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: N is not a number"))?;
    if i == 0 || i > n {
        return Err(format!("{text:?}: I must be between 1 and N"));
    }
    Ok((i, n))
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

pub(super) fn parse_coordinate(s: &str) -> Result<Coordinate, String> {
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
pub(super) fn parse_iteration(s: &str) -> Result<u64, String> {
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
    /// Segment into objects: the connected components of the voxels above --threshold
    /// (face-connected: 6 neighbours in 3D), uint64 ids.
    #[arg(long, conflicts_with = "run")]
    pub components: bool,
    /// Segmentations (--components, a run's mutex watershed): block size in voxels, whole
    /// output chunks per axis, e.g. 128,128,128 (default: chosen from the region).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub block_voxels: Option<Vec<u64>>,
    /// Segmentations: worker processes on this machine sharing the job (a threshold uses
    /// this process's threads).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub workers: usize,
    /// Chunk compression of the output (its chunks are the prediction's).
    #[arg(long, default_value = "blosc-lz4", value_parser = crate::array::write::Compression::NAMES)]
    pub compression: String,
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
    /// Score only this region, in world units, e.g. "[0:800, 0:800, 0:800]" (default: all
    /// both arrays cover).
    #[arg(long)]
    pub roi: Option<String>,
    /// Score in blocks of this many voxels, e.g. 128,128,128 (default: one piece up to
    /// 2^25 voxels, else blocks of whole chunks of the scored array).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub block_voxels: Option<Vec<u64>>,
    /// How far around each block distances are measured, in nm (default and least: the
    /// larger of --clip-distance and --tol-distance). The unclipped mean distances and the
    /// Hausdorff distance are reported only when every voxel's nearest foreground voxel
    /// lies within it.
    #[arg(long, value_name = "NM")]
    pub context_nm: Option<f64>,
    /// Keep the evaluation in this directory (its block ledger, then report.json): other
    /// workers (`segno job work DIR`) can share it, and the same command run again
    /// continues it.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// Start the evaluation kept in --save again instead of continuing it.
    #[arg(long)]
    pub overwrite: bool,
    /// Worker processes on this machine sharing the blocks.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// Where the workers run on a cluster (with --save on a shared file system).
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    /// Element type of the prediction: float32 (the network's values), float16 (each
    /// rounded to the nearest half: half the disk) or uint8 (DaCapo's:
    /// probabilities × 255, values in [−1, 1] mapped to [0, 255]; post-processing reads them
    /// back).
    #[arg(long, default_value = "float32", value_parser = ["float32", "float16", "uint8"])]
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
    /// The prediction's chunk shape in voxels, e.g. 64,64,64; must divide the network's
    /// output block on every axis (default: the block halved down to at most 128 voxels).
    #[arg(long, value_delimiter = ',', value_name = "Z,Y,X")]
    pub chunk: Option<Vec<u64>>,
    /// Chunk compression of the outputs.
    #[arg(long, default_value = "blosc-lz4", value_parser = crate::array::write::Compression::NAMES)]
    pub compression: String,
    /// The floating-point type the network computes in; bfloat16 and float16 report their
    /// largest difference from float32 on the run's validation crops.
    #[arg(long, default_value = "float32", value_parser = crate::blockwise::Precision::NAMES)]
    pub precision: String,
    /// Worker processes on this machine sharing the blocks: one per CUDA device when the
    /// device is a GPU, the CPU threads divided between them otherwise.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// Where the workers run on a cluster (instead of this machine).
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Project directory and output format.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Sending a block job's workers to a cluster as one job array.
#[derive(Debug, Args, Clone, Default)]
pub struct ClusterArgs {
    /// Submit the workers to Slurm as a job array (`sbatch --array`), then a job that
    /// finishes what they leave; the command returns once they are queued.
    #[arg(long, conflicts_with = "lsf")]
    pub slurm: bool,
    /// Submit the workers to LSF as a job array (`bsub -J name[1-N]`), then a finishing job.
    #[arg(long)]
    pub lsf: bool,
    /// Array tasks (workers) on the cluster.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub array: u32,
    /// Slurm partition or LSF queue (default: the scheduler's).
    #[arg(long, visible_alias = "queue")]
    pub partition: Option<String>,
    /// GPUs per task.
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// CPUs per task.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus: u32,
    /// Wall-time limit per task, in minutes (default: the queue's).
    #[arg(long, value_name = "MINUTES")]
    pub time: Option<u32>,
    /// Account / project to bill.
    #[arg(long)]
    pub account: Option<String>,
}

impl JobArgs {
    /// How the input volume is read.
    pub(super) fn input_options(&self) -> crate::blockwise::InputOptions {
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

pub(super) fn parse_section(s: &str) -> Result<crate::gui::Section, String> {
    crate::gui::Section::parse(s).ok_or_else(|| {
        format!("unknown section {s:?}; use project, configs, datasplit, runs or viewer")
    })
}

pub(super) fn parse_size(s: &str) -> Result<[u32; 2], String> {
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
