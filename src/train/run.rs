//! The training loop of a run: build the model, resume from the latest checkpoint (model,
//! optimizer, schedule and class-balance state), stream batches from loader threads, step
//! RAdam, flush statistics and write checkpoints at every validation interval and at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ndarray::ArrayD;
use tch::{nn, Kind, Tensor};

use super::augment::Augmenter;
use super::checkpoint;
use super::loader::stack;
pub use super::loader::{Batch, BatchLoader};
use super::optim::{warmup_lr, RAdam};
use super::record::check_record;
pub use super::record::{dataset_inputs, default_seed, resolve_seed, run_record};
use super::sample::{open_datasets, PatchGeometry, Sampler};
use super::snapshot;
use super::validate::{open_validation, validate, Inference, ValidationOutcome};
use super::TrainError;
use crate::config::{
    ArchitectureConfig, DataSplitConfig, InitialWeightsConfig, RunConfig, StartConfig, TaskConfig,
    TrainerConfig,
};
use crate::geometry::Coordinate;
use crate::nn::{model_output_shape, output_voxel_size, HeadSpec, Model};
use crate::store::layout::RunDir;
use crate::store::stats::{self, IterationStats};
use crate::task::distance::ClassBalance;
use crate::task::predictor::Predictor;

/// How to train.
pub struct TrainOptions {
    /// Seed of weight initialisation and sampling; `None`: the seed the run recorded when
    /// it started, else [`default_seed`] (from the run's name and repetition).
    pub seed: Option<u64>,
    /// Where the network runs.
    pub device: tch::Device,
    /// Batch-loading threads; `None`: the trainer's `num_data_fetchers`, at most the
    /// number of cores.
    pub loader_threads: Option<usize>,
    /// Stop after this many iterations in this call (the run can be resumed later).
    pub stop_after: Option<u64>,
    /// Called after every iteration with (iteration, loss).
    pub on_iteration: Option<Box<dyn FnMut(u64, f64) + Send>>,
    /// Set (e.g. by a SIGTERM or Ctrl-C handler) to stop after the current iteration; the
    /// iteration reached is saved as a checkpoint first.
    pub stop: Option<Arc<AtomicBool>>,
    /// Validate at every validation interval (checkpoints are written either way).
    pub validate: bool,
    /// Which iterations' validation arrays (predictions, outputs) are kept.
    pub keep_validation: KeepValidation,
    /// Affinity validation crops larger than this (voxels) are segmented block by block.
    pub max_watershed_voxels: usize,
}

/// Which validation arrays a run keeps (scores are always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepValidation {
    /// Every validated iteration's (DaCapo's behaviour).
    #[default]
    All,
    /// The latest iteration's and those of the best iterations per dataset and criterion.
    BestAndLatest,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            seed: None,
            device: tch::Device::Cpu,
            loader_threads: None,
            stop_after: None,
            on_iteration: None,
            stop: None,
            validate: true,
            keep_validation: KeepValidation::All,
            max_watershed_voxels: crate::task::predictor::MAX_WATERSHED_VOXELS,
        }
    }
}

/// What a call to [`train_run`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// The seed the run trained with.
    pub seed: u64,
    /// Whether training was asked to stop (signal or [`TrainOptions::stop`]) before its end.
    pub interrupted: bool,
    /// Batch-loading threads used.
    pub loader_threads: usize,
    /// The iteration training got to (the next one to run).
    pub trained_until: u64,
    /// The checkpoint training resumed from, if any.
    pub resumed_from: Option<u64>,
    /// Where the initial weights came from when the run started afresh from another
    /// run's checkpoint or a pretrained task's weights (file and tensors loaded).
    pub initial_weights: Option<(PathBuf, usize)>,
    /// The loss of the last iteration run in this call.
    pub last_loss: Option<f64>,
    /// Checkpoints written in this call.
    pub checkpoints: Vec<u64>,
    /// Validations run in this call, in order.
    pub validations: Vec<ValidationOutcome>,
    /// Validations that failed as a whole (the scores could not be stored), with the error.
    pub validation_errors: Vec<(u64, String)>,
}

/// The checkpoint file a start config names: `criterion` is an iteration of the other run,
/// or a criterion whose best iteration that run recorded (on any validation dataset, the
/// first in name order), or a DaCapo checkpoint file `checkpoints/<criterion>`.
pub fn start_checkpoint(project: &Path, start: &StartConfig) -> Result<PathBuf, TrainError> {
    let other = RunDir::new(project, &start.run);
    if !other.dir().is_dir() {
        return Err(TrainError::Data(format!(
            "start_config: run `{}` has no directory {} in this project",
            start.run,
            other.dir().display()
        )));
    }
    if let Ok(i) = start.criterion.parse::<u64>() {
        for path in [
            other.checkpoint(i),
            other.checkpoints_dir().join(&start.criterion),
        ] {
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let dacapo = other.dacapo_named_checkpoint(&start.criterion);
    if dacapo.is_file() {
        return Ok(dacapo);
    }
    let bests = other
        .bests()
        .map_err(|e| TrainError::Data(format!("start_config: {e}")))?;
    if let Some(b) = bests.iter().find(|b| b.criterion == start.criterion) {
        return Ok(other.checkpoint(b.best.iteration));
    }
    Err(TrainError::Data(format!(
        "start_config: run `{}` has no checkpoint for `{}` (an iteration number, or a criterion it recorded a best iteration for)",
        start.run, start.criterion
    )))
}

/// Sets a fresh network's weights from the run's start config (the parameters whose names
/// and shapes match; the rest keep their initialisation) or a pretrained task's weights
/// file (every parameter), if either is configured.
fn load_initial_weights(
    project: &Path,
    run: &RunConfig,
    vs: &nn::VarStore,
) -> Result<Option<(PathBuf, usize)>, TrainError> {
    let fail =
        |e: crate::weights::WeightsError| TrainError::Data(format!("run `{}`: {e}", run.name));
    if let TaskConfig::Pretrained(t) = &run.task_config {
        let path = project.join(&t.weights);
        let state = crate::weights::read_state_dict(&path).map_err(fail)?;
        let report = crate::weights::load_into(vs, &state, &path, false).map_err(fail)?;
        return Ok(Some((path, report.loaded)));
    }
    match &run.start_config {
        None => Ok(None),
        Some(InitialWeightsConfig::Start(start)) => {
            let path = start_checkpoint(project, start)?;
            let state = crate::weights::read_state_dict(&path).map_err(fail)?;
            let report = crate::weights::load_into(vs, &state, &path, true).map_err(fail)?;
            Ok(Some((path, report.loaded)))
        }
        Some(InitialWeightsConfig::Cosem(c)) => Err(TrainError::Data(format!(
            "run `{}`: COSEM checkpoint {}/{} is not downloaded by Segno; download it and bring it in with `segno import-weights` (or point a pretrained task at the file)",
            run.name, c.run, c.criterion
        ))),
    }
}

/// The first item of a `(batch, …)` tensor as an array.
fn first_of_batch(t: &Tensor) -> Result<ArrayD<f32>, TrainError> {
    let first = t.f_detach()?.f_get(0)?.f_to_device(tch::Device::Cpu)?;
    let shape: Vec<usize> = first.size().iter().map(|n| *n as usize).collect();
    let values = Vec::<f32>::try_from(first.f_flatten(0, -1)?)?;
    ArrayD::from_shape_vec(shape, values).map_err(|e| TrainError::Data(e.to_string()))
}

/// The checkpoint entry holding the class counts of balanced weight part `k`.
fn balance_key(k: usize) -> String {
    if k == 0 {
        "class_balance".into()
    } else {
        format!("class_balance_{k}")
    }
}

/// Everything a run needs, built and checked before any training starts.
pub struct Setup {
    /// Makes the training samples.
    pub sampler: Arc<Sampler>,
    /// The task's head.
    pub head: HeadSpec,
    /// Samples per batch.
    pub batch_size: usize,
    /// The trainer's learning rate.
    pub learning_rate: f64,
    /// The validation datasets.
    pub validation: Vec<super::sample::TrainDataset>,
    /// Prediction shapes and normalisation.
    pub inference: Inference,
    /// The task.
    pub predictor: Predictor,
    /// Snapshot every this many iterations.
    pub snapshot_interval: Option<u64>,
    /// Raw voxel size (nm).
    pub raw_vs: Coordinate,
    /// Raw context around the output patch (nm).
    pub context: Coordinate,
    /// Batch-loading threads the trainer asks for (`num_data_fetchers`).
    pub loader_threads: usize,
}

/// The prediction head a task puts on the backbone.
pub fn head_for(task: &TaskConfig) -> Result<HeadSpec, TrainError> {
    Ok(Predictor::from_task(task)?.head())
}

/// Opens and checks everything `run` needs to train (datasets, shapes, task, augments).
pub fn setup(
    project: &Path,
    run: &RunConfig,
    seed: u64,
    device: tch::Device,
) -> Result<Setup, TrainError> {
    let predictor = Predictor::from_task(&run.task_config)
        .map_err(|e| TrainError::Data(format!("run `{}`: {e}", run.name)))?;
    let head = predictor.head();
    let TrainerConfig::Gunpowder(trainer) = &run.trainer_config else {
        return Err(TrainError::Data(format!(
            "run `{}`: only GunpowderTrainerConfig trainers are supported",
            run.name
        )));
    };
    let ArchitectureConfig::CnnectomeUnet(unet) = &run.architecture_config else {
        return Err(TrainError::Data(format!(
            "run `{}`: only CNNectomeUNet architectures can be trained",
            run.name
        )));
    };
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        return Err(TrainError::Data(format!(
            "run `{}`: only TrainValidateDataSplitConfig datasplits are supported",
            run.name
        )));
    };
    let mut datasets = open_datasets(&split.train_configs, project)?;
    if trainer.clip_raw {
        datasets = datasets
            .into_iter()
            .map(super::sample::clip_raw)
            .collect::<Result<_, _>>()?;
    }
    let raw_vs = datasets[0].raw.info().geometry.voxel_size;
    if raw_vs.dims() != unet.input_shape.dims() {
        return Err(TrainError::Data(format!(
            "the raw data has {} spatial axes, the network {}",
            raw_vs.dims(),
            unet.input_shape.dims()
        )));
    }
    let out_vs = output_voxel_size(unet, &raw_vs);
    let output_shape = model_output_shape(
        &run.architecture_config,
        head.kernel_size,
        &unet.input_shape,
    )?;
    let gt_pad = Coordinate::new(&predictor.gt_padding(&out_vs.to_vec()))
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let geometry = PatchGeometry {
        raw_vs,
        out_vs,
        input_shape: unet.input_shape,
        output_shape,
        gt_pad,
    };
    let context = geometry.context()?;
    let augmenter = Augmenter::new(&trainer.augments, raw_vs.dims())?;
    for d in &datasets {
        let c = d.gt.info().channels() as usize;
        if let Some(want) = predictor.gt_channels().filter(|w| *w != c) {
            return Err(TrainError::Data(format!(
                "dataset `{}`: the ground truth has {c} channel(s), the task needs {want} ({})",
                d.name,
                predictor.channel_names().join(", ")
            )));
        }
        let fin = d.raw.info().channels();
        if fin != u64::from(unet.fmaps_in) {
            return Err(TrainError::Data(format!(
                "dataset `{}`: raw has {fin} channel(s), the network expects fmaps_in = {}",
                d.name, unet.fmaps_in
            )));
        }
    }
    let validation = open_validation(project, &split.validate_configs)?;
    for d in &validation {
        if d.raw.info().geometry.voxel_size != raw_vs || d.gt.info().geometry.voxel_size != out_vs {
            return Err(TrainError::Data(format!(
                "validation dataset `{}`: voxel sizes raw {} / gt {} differ from training's {raw_vs} / {out_vs}",
                d.name,
                d.raw.info().geometry.voxel_size,
                d.gt.info().geometry.voxel_size
            )));
        }
    }
    // Validation predicts with the larger evaluation block when one is configured.
    let inference = Inference::for_run(run, raw_vs, device)?;
    let rules = super::sample::SamplingRules {
        strategy: super::sample::Strategy::parse(trainer.sample_strategy.as_deref())?,
        min_masked: trainer.min_masked.unwrap_or(0.0),
        gt_min_reject: trainer.gt_min_reject,
    };
    let sampler = Sampler::new(
        datasets,
        geometry,
        augmenter,
        predictor.clone(),
        seed,
        rules,
    )?;
    Ok(Setup {
        sampler: Arc::new(sampler),
        head,
        batch_size: trainer.batch_size.max(1) as usize,
        learning_rate: trainer.learning_rate,
        validation,
        inference,
        predictor,
        snapshot_interval: trainer.snapshot_interval,
        raw_vs,
        context,
        loader_threads: trainer.num_data_fetchers.max(1) as usize,
    })
}

/// Whether the checkpoint of `iteration` is due a validation: every
/// `validation_interval` iterations and at the run's last iteration (never iteration 0).
fn validation_due(run: &RunConfig, iteration: u64) -> bool {
    iteration > 0
        && (iteration.is_multiple_of(run.validation_interval.max(1))
            || iteration == run.num_iterations)
}

/// Validates `model` (holding the weights of `iteration`) and records the outcome in
/// `validations` or, when validation fails, `errors` (validation never ends a run); then
/// prunes the validation arrays when the run keeps the best and latest only.
#[allow(clippy::too_many_arguments)]
fn validate_into(
    validations: &mut Vec<ValidationOutcome>,
    errors: &mut Vec<(u64, String)>,
    project: &Path,
    run: &RunConfig,
    iteration: u64,
    model: &Model,
    setup: &Setup,
    (max_watershed_voxels, keep): (usize, KeepValidation),
) -> Result<(), TrainError> {
    match validate(
        project,
        &run.name,
        iteration,
        model,
        &setup.inference,
        &setup.validation,
        &setup.predictor,
        max_watershed_voxels,
    ) {
        Ok(outcome) => {
            for (d, e) in &outcome.errors {
                eprintln!("validation of {d} at iteration {iteration} failed: {e}");
            }
            validations.push(outcome);
            if keep == KeepValidation::BestAndLatest {
                super::validate::prune_validation_arrays(project, &run.name, iteration)?;
            }
        }
        Err(e) => {
            eprintln!("validation at iteration {iteration} failed: {e}");
            tracing::warn!("validation at iteration {iteration} failed: {e}");
            errors.push((iteration, e.to_string()));
        }
    }
    Ok(())
}

/// Trains `run` of the project at `project` from wherever it stopped (see the module docs).
pub fn train_run(
    project: &Path,
    run: &RunConfig,
    mut options: TrainOptions,
) -> Result<TrainReport, TrainError> {
    let layout = RunDir::new(project, &run.name);
    let run_dir = layout.dir().to_path_buf();
    // Fail fast when another process trains the run (the lock is taken below, once the
    // run is known to be trainable, so that a bad run writes nothing).
    crate::store::lock::check_free(&run_dir)?;
    let seed = resolve_seed(&run_dir, run, options.seed)?;
    let setup = setup(project, run, seed, options.device)?;
    let record = run_record(project, run, seed)?;
    // Nothing is written before the run is ours.
    let _lock = crate::store::lock::RunLock::acquire(&run_dir)?;
    let write_record = check_record(&run_dir, &record, layout.latest_checkpoint().is_some())?;
    let stats_path = layout.training_stats();
    let mut history = stats::read_training_stats(&stats_path)?;
    let mut last_stats_write = std::time::Instant::now();

    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(options.device);
    let model = Model::new(&vs.root(), &run.architecture_config, &setup.head)?;
    let mut optimizer = RAdam::new(&vs);
    let mut balances: Vec<ClassBalance> = Vec::new();

    // Checkpoints that were due a validation but never finished it (a kill or a full disk
    // between the checkpoint and its scores) are validated first, oldest first.
    let (mut validations, mut validation_errors) = (Vec::new(), Vec::new());
    if options.validate && !setup.validation.is_empty() {
        let pending = super::validate::unvalidated_iterations(
            project,
            &run.name,
            &layout.checkpoint_iterations(),
            |i| validation_due(run, i),
        )?;
        for i in pending {
            checkpoint::load(&layout.checkpoint(i), &vs, None)?;
            validate_into(
                &mut validations,
                &mut validation_errors,
                project,
                run,
                i,
                &model,
                &setup,
                (options.max_watershed_voxels, options.keep_validation),
            )?;
        }
    }

    // Resume: continue from the latest checkpoint; statistics beyond it are dropped.
    let mut resumed_from = None;
    let mut initial_weights = None;
    let start;
    match layout.latest_checkpoint() {
        Some(latest) => {
            let extra = checkpoint::load(&layout.checkpoint(latest), &vs, Some(&mut optimizer))?;
            for k in 0.. {
                let Some(b) = extra.get(&balance_key(k)) else {
                    break;
                };
                let v: Vec<f64> = Vec::<f64>::try_from(b)?;
                balances.push(ClassBalance::from_vec(&v));
            }
            history.retain(|s| s.iteration < latest);
            start = latest;
            resumed_from = Some(latest);
        }
        None => {
            // No checkpoint: statistics without weights are worthless; start afresh.
            history.clear();
            start = 0;
            initial_weights = load_initial_weights(project, run, &vs)?;
        }
    }
    let end = match options.stop_after {
        Some(n) => start.saturating_add(n).min(run.num_iterations),
        None => run.num_iterations,
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut report = TrainReport {
        seed,
        interrupted: false,
        loader_threads: options
            .loader_threads
            .unwrap_or_else(|| setup.loader_threads.min(cores))
            .max(1),
        trained_until: start,
        resumed_from,
        initial_weights,
        last_loss: None,
        checkpoints: Vec::new(),
        validations,
        validation_errors,
    };
    if start >= end {
        return Ok(report);
    }
    // Training starts: from here a stopped trainer counts as "stopped".
    if write_record {
        crate::store::run::write_record(&run_dir, &record)
            .map_err(|e| TrainError::Data(e.to_string()))?;
    }
    crate::store::lock::record_status(&run_dir, "training", None);

    let mut loader = BatchLoader::start(
        setup.sampler.clone(),
        setup.batch_size,
        start,
        end,
        report.loader_threads,
    );
    let predictor = &setup.predictor;
    let stop_requested = || {
        options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    };
    let result = (|| -> Result<(), TrainError> {
        for i in start..end {
            let batch = loader.next(i)?;
            let t0 = Instant::now();
            let mut raws = Vec::new();
            let mut targets = Vec::new();
            let mut weights = Vec::new();
            let mut kept = None;
            for (k, s) in batch.samples.into_iter().enumerate() {
                if k == 0 && snapshot::is_due(setup.snapshot_interval, i) {
                    kept = Some(s.clone());
                }
                // Class balance in batch order, so the weights do not depend on thread timing.
                let w = predictor.weights(&mut balances, &s.targets)?;
                raws.push(s.raw);
                targets.push(s.targets.target);
                weights.push(w);
            }
            let keep = snapshot::is_due(setup.snapshot_interval, i)
                .then(|| (kept.take(), weights.first().cloned()));
            let raw = stack(raws, options.device)?;
            let target = stack(targets, options.device)?;
            let weight = stack(weights, options.device)?;
            optimizer.zero_grad();
            let prediction = model.forward_t(&raw, true)?;
            let loss = predictor.loss(&prediction, &target, &weight)?;
            if let Some((Some(sample), Some(w))) = keep {
                let gradients = Tensor::f_run_backward(&[&loss], &[&prediction], true, false)?;
                let g = gradients
                    .first()
                    .ok_or_else(|| TrainError::Data("no loss gradient for the snapshot".into()))?;
                snapshot::write_snapshot(
                    &run_dir,
                    i,
                    &sample,
                    snapshot::NetworkArrays {
                        weight: w,
                        prediction: first_of_batch(&prediction)?,
                        gradients: first_of_batch(g)?,
                    },
                    setup.raw_vs,
                    setup.inference.out_vs,
                    setup.context,
                )?;
            }
            loss.f_backward()?;
            optimizer.step(warmup_lr(setup.learning_rate, i))?;
            let loss_value = loss.f_double_value(&[])?;
            if !loss_value.is_finite() {
                return Err(TrainError::Data(format!(
                    "the loss became {loss_value} at iteration {i}; lower the learning rate"
                )));
            }
            history.push(IterationStats {
                iteration: i,
                loss: loss_value,
                time: t0.elapsed().as_secs_f64(),
                run_name: run.name.clone(),
            });
            report.last_loss = Some(loss_value);
            report.trained_until = i + 1;
            if let Some(cb) = options.on_iteration.as_mut() {
                cb(i, loss_value);
            }
            let validate_now = validation_due(run, i + 1);
            // Stopping (asked to, or at the end of `stop_after`) keeps the iteration
            // reached as a checkpoint, so a resume continues exactly from here.
            let stopping = stop_requested() && i + 1 < end;
            let checkpoint_now = validate_now || stopping || i + 1 == end;
            // Also every few seconds, for monitors that plot the loss while it trains.
            if checkpoint_now
                || (i + 1) % 100 == 0
                || last_stats_write.elapsed().as_secs_f64() > 2.0
            {
                stats::write_training_stats(&stats_path, &history)?;
                last_stats_write = std::time::Instant::now();
            }
            if checkpoint_now {
                let mut extra = BTreeMap::new();
                for (k, b) in balances.iter().enumerate() {
                    extra.insert(
                        balance_key(k),
                        Tensor::from_slice(&b.to_vec()).to_kind(Kind::Double),
                    );
                }
                checkpoint::save(&layout.checkpoint(i + 1), &vs, &optimizer, &extra)?;
                report.checkpoints.push(i + 1);
                if validate_now && !setup.validation.is_empty() && options.validate {
                    validate_into(
                        &mut report.validations,
                        &mut report.validation_errors,
                        project,
                        run,
                        i + 1,
                        &model,
                        &setup,
                        (options.max_watershed_voxels, options.keep_validation),
                    )?;
                }
            }
            if stopping {
                report.interrupted = true;
                break;
            }
        }
        Ok(())
    })();
    drop(loader);
    result?;
    Ok(report)
}
