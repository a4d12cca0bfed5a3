//! `post-process`: a stored prediction into a segmentation — by a run's chosen parameters,
//! a threshold, or connected components — as block jobs over its whole region.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::apply::{checked_output, choose_settings, SettingsRequest};
use super::OpsError;
use crate::array::write;
use crate::blockwise;
use crate::store::Project;
use crate::task::predictor::Predictor;

/// How [`post_process`] turns a prediction into a segmentation.
#[derive(Debug, Clone, PartialEq)]
pub enum PostProcessMethod {
    /// `prediction > threshold`, per channel.
    Threshold(f64),
    /// Objects: the connected components of `prediction > threshold` (one channel).
    Components(f64),
    /// The task of a run stored in the project, with the named parameters (default: those
    /// apply would choose from the scores).
    Run {
        /// The run's name.
        name: String,
        /// The parameters' name (e.g. `threshold_0.5`).
        parameters: Option<String>,
    },
}

/// Options of [`post_process`].
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessOptions {
    /// The prediction array.
    pub input: PathBuf,
    /// The output container.
    pub output: PathBuf,
    /// The output dataset (default `output_<input>_<parameters>`).
    pub dataset: Option<String>,
    /// How.
    pub method: PostProcessMethod,
    /// Replace an existing output.
    pub overwrite: bool,
    /// Segmentations: block size in voxels (whole chunks per axis).
    pub block_voxels: Option<Vec<u64>>,
    /// Segmentations: worker processes on this machine (1: this process's threads).
    pub workers: usize,
    /// Chunk compression of the output (its chunks are the prediction's).
    pub compression: write::Compression,
}

/// What [`post_process`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostProcessReport {
    /// The segmentation written.
    pub output: PathBuf,
    /// Chunks written.
    pub chunks: usize,
    /// Non-zero voxels per channel (one entry for label outputs).
    pub foreground_voxels: Vec<u64>,
    /// Wall time.
    pub duration_secs: f64,
}

/// The name a prediction is known by in default output names: its dataset, or for a scale
/// level (`…/s0`) its image's.
fn prediction_name(input: &Path) -> String {
    let base = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prediction".into());
    if base == "s0" {
        input
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(base)
    } else {
        base
    }
}

/// Post-processes the prediction at `options.input` into a segmentation, chunk by chunk.
/// With a run, its task's post-processing with the given parameters (which need no
/// scores) or those apply would choose; `project` must then be given.
pub fn post_process(
    project: Option<&Project>,
    options: &PostProcessOptions,
) -> Result<PostProcessReport, OpsError> {
    let prediction = crate::array::open(&options.input)?;
    let base = prediction_name(&options.input);
    let started = std::time::Instant::now();
    let segment_options = blockwise::SegmentOptions {
        block_voxels: options.block_voxels.clone(),
        compression: options.compression,
        ..blockwise::SegmentOptions::default()
    };
    let point_wise = |what: &str| -> Result<(), OpsError> {
        if options.workers > 1 || options.block_voxels.is_some() {
            return Err(OpsError::Usage(format!(
                "--workers and --block-voxels apply to segmentations (--components, a run's mutex watershed); {what} runs on this process's threads"
            )));
        }
        Ok(())
    };
    let report = match &options.method {
        PostProcessMethod::Run { name, parameters } => {
            let project = project.ok_or_else(|| {
                OpsError::Usage(format!("post-processing by run `{name}` needs its project"))
            })?;
            let run = super::stored_run(project, name)?;
            let fail = OpsError::run(&run.name);
            let predictor = Predictor::from_task(&run.task_config).map_err(|e| fail(e.into()))?;
            // Given parameters need no scores (post-processing does not use the iteration).
            let request = SettingsRequest {
                iteration: parameters.as_ref().map(|_| 0),
                parameters: parameters.clone(),
                ..SettingsRequest::default()
            };
            let settings = choose_settings(project.root(), &run, &predictor, &request)
                .map_err(OpsError::Engine)?;
            let dataset = options
                .dataset
                .clone()
                .unwrap_or_else(|| format!("output_{base}_{}", settings.parameters.name()));
            let mode =
                checked_output(&options.output, &dataset, &options.input, options.overwrite)?;
            match blockwise::SegmentMethod::for_task(&predictor, &settings.parameters) {
                Some(method) => segment(
                    prediction.as_ref(),
                    &method,
                    &segment_options,
                    (&options.output, &dataset, mode),
                    options.workers,
                )?,
                None => {
                    point_wise(&settings.parameters.name())?;
                    blockwise::post_process_array(
                        prediction.as_ref(),
                        (&predictor, &settings.parameters),
                        (&options.output, &dataset, mode),
                        options.compression,
                    )?
                }
            }
        }
        PostProcessMethod::Components(threshold) => {
            let method = blockwise::SegmentMethod::Components {
                threshold: *threshold,
            };
            let dataset = options
                .dataset
                .clone()
                .unwrap_or_else(|| format!("output_{base}_{}", method.name()));
            let mode =
                checked_output(&options.output, &dataset, &options.input, options.overwrite)?;
            segment(
                prediction.as_ref(),
                &method,
                &segment_options,
                (&options.output, &dataset, mode),
                options.workers,
            )?
        }
        PostProcessMethod::Threshold(threshold) => {
            let dataset = options
                .dataset
                .clone()
                .unwrap_or_else(|| format!("output_{base}_threshold_{threshold}"));
            let mode =
                checked_output(&options.output, &dataset, &options.input, options.overwrite)?;
            point_wise("a threshold")?;
            blockwise::threshold_array(
                prediction.as_ref(),
                *threshold,
                (&options.output, &dataset, mode),
                options.compression,
            )?
        }
    };
    Ok(PostProcessReport {
        output: report.output,
        chunks: report.chunks,
        foreground_voxels: report.foreground,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

/// Segments `prediction` by `method` into `output`: in this process, or with `workers`
/// worker processes on this machine sharing the job (this process then finishes
/// whatever they left).
fn segment(
    prediction: &dyn crate::array::ArraySource,
    method: &blockwise::SegmentMethod,
    options: &blockwise::SegmentOptions,
    output: (&Path, &str, crate::array::write::WriteMode),
    workers: usize,
) -> Result<blockwise::PostProcessReport, OpsError> {
    if workers <= 1 {
        return Ok(blockwise::segment_array(
            prediction,
            method,
            options,
            output,
            &|_, _| {},
        )?);
    }
    let job = blockwise::segment::prepare_segment_job(prediction, method, options, output)?;
    let failed = super::job::run_local_workers(
        &job.output(),
        workers,
        tch::Device::Cpu,
        None,
        &mut |_, _| {},
    )?;
    for (name, why) in &failed {
        tracing::warn!("worker {name} failed: {why}");
    }
    let work = blockwise::segment::work_segment(
        &job,
        &blockwise::WorkOptions::sweeping(),
        rayon::current_num_threads(),
        &|_, _| {},
    )?;
    Ok(blockwise::segment::finished_segment_report(&job, &work)?)
}
