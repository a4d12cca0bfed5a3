//! Using a trained run on new data: `predict` (a checkpoint over a region of any volume)
//! and `apply` (prediction and post-processing, with the checkpoint and parameters chosen
//! from the validation scores). Every input is read as the run's training read its raw
//! data. Post-processing a stored prediction alone is [`super::post_process`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{OpsError, RoiNm};
use crate::array::input::InputStep;
use crate::array::write::{self, WriteMode};
use crate::blockwise::{self, Checkpoint, InputOptions, LoadedModel, PredictionType};
use crate::config::{DataSplitConfig, RunConfig};
use crate::geometry::Roi;
use crate::store::layout::RunDir;
use crate::store::Project;
use crate::task::postprocess::PostProcessorParameters;
use crate::task::predictor::Predictor;
use crate::train::TrainError;

/// The checkpoint and post-processing parameters [`choose_settings`] settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplySettings {
    /// The checkpoint iteration.
    pub iteration: u64,
    /// The post-processing parameters.
    pub parameters: PostProcessorParameters,
    /// Where they came from, when chosen from the validation scores.
    pub chosen_by: Option<ChosenBy>,
}

/// The validation score a choice of checkpoint and parameters rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChosenBy {
    /// The validation dataset.
    pub dataset: String,
    /// The criterion (a full name or a metric averaged over channels).
    pub criterion: String,
    /// The best score.
    pub score: f64,
}

/// What to choose from, for [`choose_settings`]: anything given is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsRequest {
    /// Use this checkpoint iteration.
    pub iteration: Option<u64>,
    /// Use these post-processing parameters (by name, e.g. `threshold_0.5`).
    pub parameters: Option<String>,
    /// Choose by the scores on this validation dataset (default: the first).
    pub dataset: Option<String>,
    /// Choose by this criterion (default: the task's).
    pub criterion: Option<String>,
}

/// The names of `run`'s validation datasets, in order.
fn validation_dataset_names(run: &RunConfig) -> Vec<String> {
    match &run.datasplit_config {
        DataSplitConfig::TrainValidate(s) => s
            .validate_configs
            .iter()
            .map(|d| d.name().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Picks the iteration and parameters for applying `run`: those given, else the best on
/// the validation scores of the requested dataset by the requested criterion (a full
/// criterion name or a metric averaged over the channels). A malformed scores file is an
/// error naming it.
pub fn choose_settings(
    project: &Path,
    run: &RunConfig,
    predictor: &Predictor,
    request: &SettingsRequest,
) -> Result<ApplySettings, TrainError> {
    let grid = predictor.parameters();
    let given = request
        .parameters
        .as_deref()
        .map(|name| {
            PostProcessorParameters::from_name(name, &grid).ok_or_else(|| {
                TrainError::Data(format!(
                    "unknown post-processing parameters `{name}`; this task has: {}",
                    grid.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                ))
            })
        })
        .transpose()?;
    if let (Some(iteration), Some(parameters)) = (request.iteration, given.clone()) {
        return Ok(ApplySettings {
            iteration,
            parameters,
            chosen_by: None,
        });
    }
    let names = validation_dataset_names(run);
    let criterion = request
        .criterion
        .as_deref()
        .unwrap_or(predictor.default_criterion());
    let dataset = match request.dataset.as_deref() {
        Some(d) if names.iter().any(|n| n == d) => d.to_string(),
        Some(d) => {
            return Err(TrainError::Data(format!(
                "`{d}` is not a validation dataset of run `{}` ({})",
                run.name,
                names.join(", ")
            )))
        }
        None => names.first().cloned().ok_or_else(|| {
            TrainError::Data(format!(
                "run `{}` has no validation datasets: give --iteration and --parameters",
                run.name
            ))
        })?,
    };
    let param_names: Vec<String> = grid.iter().map(|p| p.name()).collect();
    let scores = crate::store::scores::read_scores(
        &RunDir::new(project, &run.name).validation_scores(),
        &predictor.criteria(),
        &param_names,
        &names,
    )?;
    // The best among what was not given (parameters off the grid: any scored parameters).
    let k = given
        .as_ref()
        .and_then(|p| param_names.iter().position(|n| *n == p.name()));
    let iteration = request.iteration;
    let keep = |i: u64, p: usize| iteration.is_none_or(|it| it == i) && k.is_none_or(|k| k == p);
    let (it, p, score) = scores.best_where(&dataset, criterion, keep).ok_or_else(|| {
        TrainError::Data(format!(
            "run `{}` has no validation score for `{criterion}` on `{dataset}`{}: validate it first (segno validate) or give --iteration and --parameters",
            run.name,
            iteration.map(|i| format!(" at iteration {i}")).unwrap_or_default()
        ))
    })?;
    Ok(ApplySettings {
        iteration: it,
        parameters: given.unwrap_or_else(|| grid[p].clone()),
        chosen_by: Some(ChosenBy {
            dataset,
            criterion: criterion.to_string(),
            score,
        }),
    })
}

/// Checks that `container/dataset` may be written by an operation reading `input` (see
/// [`write::check_destination`]) and returns how to write it: replacing what is there
/// with `overwrite`, continuing an unfinished block job there, else only into a new
/// dataset.
pub fn checked_output(
    container: &Path,
    dataset: &str,
    input: &Path,
    overwrite: bool,
) -> Result<WriteMode, OpsError> {
    let mode = if overwrite {
        WriteMode::Overwrite
    } else if blockwise::job::unfinished(&container.join(dataset)) {
        // The same command run again continues an interrupted job.
        WriteMode::Resume
    } else {
        WriteMode::CreateNew
    };
    write::check_destination(container, dataset, &[input], mode)?;
    Ok(mode)
}

/// Where a prediction reads and writes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictJob {
    /// The volume to predict (an array or multiscale group).
    pub input: PathBuf,
    /// The output zarr container.
    pub output: PathBuf,
    /// The region to predict (default: all the input covers with context).
    pub roi: Option<Roi>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// The largest network input per block, in voxels (default by device).
    pub max_block_input_voxels: Option<f64>,
    /// How to read the input.
    pub input_options: InputOptions,
    /// Replace an existing output.
    pub overwrite: bool,
    /// Worker processes on this machine (1: this process alone).
    pub workers: usize,
    /// Send the workers to a cluster instead (the command returns once they are queued).
    pub cluster: Option<super::job::ClusterLaunch>,
    /// Only prepare the job (output array, description, ledger) for workers started
    /// elsewhere (`segno job work`); predict nothing here.
    pub prepare_only: bool,
    /// The prediction's chunks and compression (post-processed outputs take the same
    /// compression and the prediction's chunks).
    pub format: blockwise::OutputFormat,
    /// The floating-point type the network computes in.
    pub precision: blockwise::Precision,
}

/// Options of [`predict`].
#[derive(Debug, Clone, PartialEq)]
pub struct PredictOptions {
    /// The run's name.
    pub run: String,
    /// Which of its checkpoints.
    pub checkpoint: Checkpoint,
    /// The output dataset (default `prediction_<run>_<iteration>`).
    pub dataset: Option<String>,
    /// The element type written.
    pub data_type: PredictionType,
    /// Input, output, region and device.
    pub job: PredictJob,
}

/// How a prediction's input was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputReport {
    /// The run dataset whose reading was repeated.
    pub read_as: String,
    /// The steps applied to the stored values.
    pub steps: Vec<InputStep>,
    /// The voxel size the network read, in nm.
    pub voxel_size_nm: Vec<i64>,
    /// `(scale, shift)` applied inside the network's input.
    pub scale_shift: [f32; 2],
    /// The scale level of a multiscale group that was read, if any.
    pub scale_level: Option<String>,
    /// Whether the steps came from the run's record (else from its configs as they are now).
    pub from_record: bool,
    /// Things the user should know (types accepted, resampling done).
    pub notes: Vec<String>,
    /// The steps in words.
    #[serde(skip)]
    pub description: String,
}

impl InputReport {
    fn of(input: &blockwise::PreparedInput) -> Self {
        Self {
            read_as: input.like.clone(),
            steps: input.transform.steps.clone(),
            voxel_size_nm: input.transform.voxel_size_nm.to_vec(),
            scale_shift: [input.scale_shift.0, input.scale_shift.1],
            scale_level: input.level.clone(),
            from_record: input.recorded,
            notes: input.notes.clone(),
            description: input.transform.describe(),
        }
    }
}

/// What [`predict`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionReport {
    /// The run's name.
    #[serde(skip)]
    pub run: String,
    /// The prediction array written.
    pub output: PathBuf,
    /// The checkpoint iteration used.
    pub iteration: u64,
    /// The region predicted.
    #[serde(skip)]
    pub roi: Roi,
    /// The same region in nm.
    pub roi_nm: RoiNm,
    /// Blocks in the region.
    pub blocks: usize,
    /// Blocks an earlier, interrupted prediction had finished.
    pub skipped: usize,
    /// Worker processes that shared the blocks (besides this one, which finishes what
    /// they leave).
    pub workers: usize,
    /// How the input was read.
    pub input: InputReport,
    /// Wall time.
    pub duration_secs: f64,
    /// The cluster jobs the blocks were sent to (then nothing was predicted here yet).
    pub submitted: Option<super::job::SubmittedReport>,
    /// With a precision other than float32: how far it is from float32 on the run's
    /// validation crops.
    pub precision: Option<blockwise::PrecisionCheck>,
}

/// Predicts `options.job.input` with a checkpoint of a run stored in `project`, block by
/// block, calling `progress(done, total)` as blocks finish. An unfinished prediction of the
/// same checkpoint and input is continued.
pub fn predict(
    project: &Project,
    options: &PredictOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PredictionReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let device = super::device(&options.job.device)?;
    let model = blockwise::load_model(project.root(), &run, &options.checkpoint, device)
        .map_err(OpsError::run(&run.name))?;
    let started = std::time::Instant::now();
    let mut report = predict_with(
        project.root(),
        &run,
        &model,
        &options.job,
        options.dataset.clone(),
        options.data_type,
        device,
        (false, None),
        progress,
    )?;
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The post-processing parameters a prediction's viewer should threshold at by default:
/// those apply would choose, else (no scores for them yet) DaCapo's default threshold 0,
/// else the first of the grid. A scores file that cannot be read is an error naming it.
fn viewer_defaults(project: &Path, run: &RunConfig) -> Result<serde_json::Value, OpsError> {
    crate::store::scores::read_stored_scores(&RunDir::new(project, &run.name))?;
    let Ok(predictor) = Predictor::from_task(&run.task_config) else {
        return Ok(serde_json::json!({"run": run.name}));
    };
    let chosen = choose_settings(project, run, &predictor, &SettingsRequest::default())
        .map(|c| c.parameters)
        .ok()
        .or_else(|| {
            let grid = predictor.parameters();
            grid.iter()
                .find(|p| p.name() == "threshold_0")
                .or(grid.first())
                .cloned()
        });
    let threshold = match &chosen {
        Some(PostProcessorParameters::Threshold { threshold, .. }) => Some(*threshold),
        _ => None,
    };
    Ok(
        serde_json::json!({"run": run.name, "parameters": chosen.map(|p| p.name()), "threshold": threshold}),
    )
}

/// A segmentation of a prediction that the prediction's workers go on to (see
/// `JobFile::then`): how, and into which dataset of the output container.
struct SegmentAfter<'a> {
    method: &'a blockwise::SegmentMethod,
    dataset: &'a str,
    mode: WriteMode,
}

/// Predicts `job.input` with a loaded model, reading it as the run's training read its raw
/// data: as one block job shared by this process, `job.workers` local worker processes or
/// a cluster job array. `reuse_finished` keeps a finished prediction made the same way.
#[allow(clippy::too_many_arguments)]
fn predict_with(
    project: &Path,
    run: &RunConfig,
    model: &LoadedModel,
    job: &PredictJob,
    dataset: Option<String>,
    data_type: PredictionType,
    device: tch::Device,
    (reuse_finished, segment_after): (bool, Option<&SegmentAfter<'_>>),
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PredictionReport, OpsError> {
    let fail = OpsError::run(&run.name);
    let input =
        blockwise::open_input(project, run, &job.input, &job.input_options).map_err(&fail)?;
    let (mut inference, roi) = blockwise::inference_for(
        run,
        input.array.as_ref(),
        job.roi,
        job.max_block_input_voxels,
        device,
    )
    .map_err(&fail)?;
    inference.normalisation = input.scale_shift;
    inference.precision = job.precision;
    let dataset = dataset.unwrap_or_else(|| format!("prediction_{}_{}", run.name, model.iteration));
    write::check_destination(&job.output, &dataset, &[&job.input], WriteMode::Resume)?;
    let output = blockwise::PredictOutput {
        container: &job.output,
        dataset: &dataset,
        data_type,
        about: viewer_defaults(project, run)?,
        overwrite: job.overwrite,
        input: &job.input,
        ledger: blockwise::ledger::LedgerSettings::default(),
        worker: serde_json::to_value(super::job::WorkerSpec {
            project: super::job::absolute(project),
            run: run.name.clone(),
            iteration: model.iteration,
            input: super::job::absolute(&job.input),
            like: job.input_options.like.clone(),
            resample: job.input_options.resample,
            accept_data_type: job.input_options.accept_data_type,
            input_shape_voxels: inference.input_shape.to_vec(),
            output_shape_voxels: inference.output_shape.to_vec(),
            device: job.device.clone(),
            precision: job.precision,
        })
        .map_err(|e| OpsError::Io(e.to_string()))?,
        reuse_finished,
        format: job.format.clone(),
        input_steps: serde_json::json!({
            "like": input.like,
            "steps": input.transform,
            "scale_shift": [input.scale_shift.0, input.scale_shift.1],
            "level": input.level,
        }),
    };
    let exists = |e| match e {
        e @ TrainError::OutputExists { .. } => OpsError::Engine(e),
        e => fail(e),
    };
    let mut prepared =
        blockwise::prepare_prediction(model, &inference, input.array.as_ref(), Some(roi), &output)
            .map_err(exists)?;
    if let Some(after) = segment_after {
        // The workers go on to segment once every block is predicted: the segmentation
        // job is prepared now and listed in the prediction's.
        let prediction = crate::array::open(&prepared.output())?;
        let segment = blockwise::segment::prepare_segment_job(
            prediction.as_ref(),
            after.method,
            &blockwise::SegmentOptions {
                compression: job.format.compression,
                ..Default::default()
            },
            (&job.output, after.dataset, after.mode),
        )
        .map_err(&fail)?;
        let next = super::job::absolute(&segment.output());
        if !prepared.then.contains(&next) {
            prepared.then.push(next);
            prepared.store().map_err(&fail)?;
        }
    }
    let total = prepared.grid.len();
    let done_before = prepared
        .ledger("status")
        .and_then(|l| l.done_count().map_err(|e| TrainError::Data(e.to_string())))
        .map_err(&fail)?;
    if done_before < total {
        // A new run of the job gives blocks that failed before another round of attempts.
        prepared
            .ledger("launcher")
            .and_then(|l| {
                l.grant_retries(total)
                    .map_err(|e| TrainError::Data(e.to_string()))
            })
            .map_err(&fail)?;
    }
    // A lower precision is measured against float32 before anything is predicted with it.
    let precision = if job.prepare_only {
        None
    } else {
        blockwise::precision_check(project, run, model.iteration, device, job.precision)
            .map_err(&fail)?
    };
    // A report of the prepared job before anything is predicted here.
    let queued =
        |workers: usize, submitted: Option<super::job::SubmittedReport>| PredictionReport {
            run: run.name.clone(),
            output: prepared.output(),
            iteration: model.iteration,
            roi: prepared.grid.roi,
            roi_nm: RoiNm::from(&prepared.grid.roi),
            blocks: total as usize,
            skipped: done_before as usize,
            workers,
            input: InputReport::of(&input),
            duration_secs: 0.0,
            submitted,
            precision: precision.clone(),
        };
    if job.prepare_only {
        return Ok(queued(0, None));
    }
    if let (Some(launch), true) = (&job.cluster, done_before < total) {
        let submitted = super::job::submit_workers(&prepared.output(), launch)?;
        return Ok(queued(launch.request.tasks as usize, Some(submitted)));
    }
    if job.workers > 1 && done_before < total {
        let failed =
            super::job::run_local_workers(&prepared.output(), job.workers, device, None, progress)?;
        for (worker, why) in failed {
            tracing::warn!("worker {worker} failed: {why}");
        }
    }
    // This process finishes what the workers left (all of it when there are none).
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pipelines = blockwise::cpu_pipelines(run, &inference, cpus, None);
    let iteration = model.iteration;
    let work = blockwise::work_prediction_parallel(
        &prepared,
        &|| {
            blockwise::load_model_as(
                project,
                run,
                &Checkpoint::Iteration(iteration),
                device,
                job.precision,
            )
        },
        pipelines,
        &inference,
        input.array.as_ref(),
        &blockwise::WorkOptions::sweeping(),
        progress,
    )
    .map_err(&fail)?;
    work.check_complete(&prepared).map_err(&fail)?;
    let report = blockwise::PredictReport {
        output: prepared.output(),
        roi: prepared.grid.roi,
        blocks: total as usize,
        skipped: done_before as usize,
        work,
    };
    Ok(PredictionReport {
        run: run.name.clone(),
        output: report.output,
        iteration: model.iteration,
        roi: report.roi,
        roi_nm: RoiNm::from(&report.roi),
        blocks: report.blocks,
        skipped: report.skipped,
        workers: job.workers.max(1),
        input: InputReport::of(&input),
        duration_secs: 0.0,
        submitted: None,
        precision,
    })
}

/// Options of [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOptions {
    /// The run's name.
    pub run: String,
    /// What is given of the checkpoint and parameters; the rest is chosen by the scores.
    pub settings: SettingsRequest,
    /// Input, output, region and device.
    pub job: PredictJob,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    /// The run's name.
    pub run: String,
    /// The checkpoint iteration used.
    pub iteration: u64,
    /// The post-processing parameters' name.
    pub parameters: String,
    /// The validation score the choice rests on (none when both were given).
    pub chosen_by: Option<ChosenBy>,
    /// The prediction array.
    pub prediction: PathBuf,
    /// The segmentation array.
    pub output: PathBuf,
    /// The region predicted.
    #[serde(skip)]
    pub roi: Roi,
    /// The same region in nm.
    pub roi_nm: RoiNm,
    /// Prediction blocks in the region.
    pub blocks: usize,
    /// Blocks an earlier, interrupted prediction had finished.
    pub skipped: usize,
    /// Segmentation chunks written.
    #[serde(skip)]
    pub chunks: usize,
    /// Non-zero segmentation voxels, per channel (one entry for label outputs).
    pub foreground_voxels: Vec<u64>,
    /// What each entry of `foreground_voxels` counts (a class, or `labelled`).
    #[serde(skip)]
    pub foreground_labels: Vec<String>,
    /// Voxels in the region.
    pub voxels: u64,
    /// How the input was read.
    pub input: InputReport,
    /// Wall time of the prediction.
    pub predict_secs: f64,
    /// Wall time of the post-processing.
    pub post_process_secs: f64,
    /// The cluster jobs the prediction was sent to (their finishing job post-processes).
    pub submitted: Option<super::job::SubmittedReport>,
    /// With a precision other than float32: how far it is from float32 on the run's
    /// validation crops.
    pub precision: Option<blockwise::PrecisionCheck>,
}

/// Applies a run stored in `project` to `options.job.input`: chooses the checkpoint and
/// post-processing parameters (see [`choose_settings`]), predicts into
/// `prediction_<run>_<iteration>` and post-processes into
/// `output_<run>_<iteration>_<parameters>`, both in the output container.
pub fn apply(
    project: &Project,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ApplyReport, OpsError> {
    let run = super::stored_run(project, &options.run)?;
    let fail = OpsError::run(&run.name);
    let predictor = Predictor::from_task(&run.task_config).map_err(|e| fail(e.into()))?;
    let settings =
        choose_settings(project.root(), &run, &predictor, &options.settings).map_err(&fail)?;
    let job = &options.job;
    let name = format!(
        "output_{}_{}_{}",
        run.name,
        settings.iteration,
        settings.parameters.name()
    );
    let segmentation = blockwise::SegmentMethod::for_task(&predictor, &settings.parameters);
    let prediction_path = job
        .output
        .join(format!("prediction_{}_{}", run.name, settings.iteration));
    // A segmentation this command set up for the prediction's workers is continued (or
    // reported, when they finished it).
    let mode = if !job.overwrite && segmentation_of(&prediction_path, &job.output.join(&name)) {
        write::check_destination(&job.output, &name, &[&job.input], WriteMode::Resume)?;
        WriteMode::Resume
    } else {
        checked_output(&job.output, &name, &job.input, job.overwrite)?
    };
    let device = super::device(&job.device)?;
    let model = blockwise::load_model(
        project.root(),
        &run,
        &Checkpoint::Iteration(settings.iteration),
        device,
    )
    .map_err(&fail)?;
    let started = std::time::Instant::now();
    // With several workers, they segment too once the prediction is done.
    let after = segmentation
        .as_ref()
        .filter(|_| (job.workers > 1 || job.cluster.is_some()) && !job.prepare_only)
        .map(|method| SegmentAfter {
            method,
            dataset: &name,
            mode,
        });
    let chained = after.is_some();
    let predicted = predict_with(
        project.root(),
        &run,
        &model,
        job,
        None,
        PredictionType::Float32,
        device,
        (true, after.as_ref()),
        progress,
    )?;
    let predict_secs = started.elapsed().as_secs_f64();
    if let Some(submitted) = predicted.submitted {
        return Ok(ApplyReport {
            run: run.name.clone(),
            iteration: settings.iteration,
            parameters: settings.parameters.name(),
            chosen_by: settings.chosen_by,
            prediction: predicted.output,
            output: job.output.join(&name),
            roi: predicted.roi,
            roi_nm: predicted.roi_nm,
            blocks: predicted.blocks,
            skipped: predicted.skipped,
            chunks: 0,
            foreground_voxels: Vec::new(),
            foreground_labels: Vec::new(),
            voxels: 0,
            input: predicted.input,
            predict_secs,
            post_process_secs: 0.0,
            submitted: Some(submitted),
            precision: predicted.precision,
        });
    }
    let prediction = crate::array::open(&predicted.output)?;
    let started = std::time::Instant::now();
    let post = blockwise::post_process_array(
        prediction.as_ref(),
        (&predictor, &settings.parameters),
        (
            &job.output,
            &name,
            if chained { WriteMode::Resume } else { mode },
        ),
        job.format.compression,
    )
    .map_err(&fail)?;
    let post_process_secs = started.elapsed().as_secs_f64();
    let voxels = predicted.roi.shape() / prediction.info().geometry.voxel_size;
    let classes = predictor.channel_names();
    let foreground_labels = (0..post.foreground.len())
        .map(|k| {
            if predictor.output_channels().is_some() {
                classes.get(k).cloned().unwrap_or_default()
            } else {
                "labelled".to_string()
            }
        })
        .collect();
    Ok(ApplyReport {
        run: run.name.clone(),
        iteration: settings.iteration,
        parameters: settings.parameters.name(),
        chosen_by: settings.chosen_by,
        prediction: predicted.output,
        output: post.output,
        roi: predicted.roi,
        roi_nm: predicted.roi_nm,
        blocks: predicted.blocks,
        skipped: predicted.skipped,
        chunks: post.chunks,
        foreground_voxels: post.foreground,
        foreground_labels,
        voxels: voxels.iter().map(|v| v as u64).product(),
        input: predicted.input,
        predict_secs,
        post_process_secs,
        submitted: None,
        precision: predicted.precision,
    })
}

/// Whether the prediction job at `prediction` lists the segmentation at `output` as the
/// job its workers take part in afterwards.
fn segmentation_of(prediction: &Path, output: &Path) -> bool {
    blockwise::JobFile::load(prediction)
        .ok()
        .flatten()
        .is_some_and(|j| j.then.contains(&super::job::absolute(output)))
}

/// What the app offers when applying a run: its checkpoints, its post-processing
/// parameters, and the choice `apply` makes by default with the score it rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyChoices {
    /// The run.
    pub run: String,
    /// Stored checkpoint iterations, oldest first.
    pub iterations: Vec<u64>,
    /// The task's post-processing parameters, by name.
    pub parameters: Vec<String>,
    /// Validation datasets to choose by.
    pub datasets: Vec<String>,
    /// The criterion chosen by default.
    pub criterion: String,
    /// What apply takes by default (none when the run has no scores yet).
    pub default: Option<(u64, String, Option<ChosenBy>)>,
    /// Why there is no default, when there is none.
    pub no_default: Option<String>,
    /// The run's raw voxel size the input must have (nm), when its training data says.
    pub voxel_size_nm: Option<Vec<i64>>,
}

/// The checkpoints, parameters and default choice for applying `run` (see
/// [`choose_settings`]).
pub fn apply_choices(project: &Project, run: &str) -> Result<ApplyChoices, OpsError> {
    let config = super::stored_run(project, run)?;
    let fail = OpsError::run(&config.name);
    let predictor = Predictor::from_task(&config.task_config).map_err(|e| fail(e.into()))?;
    let layout = RunDir::new(project.root(), &config.name);
    let datasets = validation_dataset_names(&config);
    let (default, no_default) = match choose_settings(
        project.root(),
        &config,
        &predictor,
        &SettingsRequest::default(),
    ) {
        Ok(s) => (Some((s.iteration, s.parameters.name(), s.chosen_by)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let voxel_size_nm = crate::store::run::read_record(layout.dir())
        .ok()
        .flatten()
        .and_then(|r| {
            r.input_for(None)
                .ok()
                .map(|i| i.transform.source_voxel_size_nm.to_vec())
        });
    Ok(ApplyChoices {
        run: config.name.clone(),
        iterations: layout.checkpoint_iterations(),
        parameters: predictor.parameters().iter().map(|p| p.name()).collect(),
        datasets,
        criterion: predictor.default_criterion().to_string(),
        default,
        no_default,
        voxel_size_nm,
    })
}
