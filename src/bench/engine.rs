//! Engine benchmarks against DaCapo 0.3.5 on the same data and configuration, in one run.
//!
//! A benchmark project holds the synthetic data and one run: a distance task on
//! mitochondria, a CNNectome U-Net (DaCapo's tutorial widths or a lighter "bench" net, two
//! ×2 downsamplings, valid convolutions), the gunpowder trainer with mirror/transpose,
//! elastic (with rotation), intensity, gamma and scale/shift augments. Segno times it
//! in-process; DaCapo times the same run config, written in its own YAML dialect, through
//! `scripts/bench/dacapo_bench.py` in DaCapo's Python environment.
//!
//! * `pipeline`: batches per second of the batch pipeline alone (sampling, augments,
//!   targets, weights) with the same number of worker threads.
//! * `model`: forward + backward + optimiser step per second on random input, and
//!   evaluation-forward output voxels per second.
//! * `train`: training iterations per second end to end (pipeline and network together);
//!   Segno's rate is also given as a fraction of its own model-only rate.
//! * `predict`: output voxels per second predicting the whole raw volume block by block.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tch::Tensor;

use super::BenchError;
use crate::config::*;
use crate::geometry::Coordinate;
use crate::nn::Model;
use crate::store::layout::RunDir;
use crate::train::optim::{warmup_lr, RAdam};
use crate::train::run::{setup, BatchLoader};
use crate::train::{self, checkpoint, TrainOptions};

/// What to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineMode {
    /// The batch pipeline alone.
    Pipeline,
    /// The network alone.
    Model,
    /// Training end to end.
    Train,
    /// Blockwise prediction.
    Predict,
}

impl EngineMode {
    /// The mode's name on the command line and in DaCapo's driver.
    pub fn name(self) -> &'static str {
        match self {
            EngineMode::Pipeline => "pipeline",
            EngineMode::Model => "model",
            EngineMode::Train => "train",
            EngineMode::Predict => "predict",
        }
    }
}

/// The network of the benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchNet {
    /// 12 feature maps ×2 per level, 24 out (≈0.2 M parameters).
    Bench,
    /// DaCapo's tutorial widths: 12 feature maps ×5 per level, 72 out (≈3.6 M parameters).
    Spec,
}

/// Options of an engine benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineBenchOptions {
    /// The benchmark project (data and run are made there once).
    pub dir: PathBuf,
    /// Edge of the synthetic raw volume in voxels.
    pub size: usize,
    /// Edge of the network's training input in voxels.
    pub input: i64,
    /// Which network.
    pub net: BenchNet,
    /// Timed iterations (batches, blocks are all of the volume).
    pub iterations: u64,
    /// Untimed iterations first.
    pub warmup: u64,
    /// Compute and loader threads.
    pub threads: usize,
    /// Python of DaCapo's environment (default `~/segno-peer/.venv/bin/python`).
    pub python: Option<PathBuf>,
    /// Also run DaCapo.
    pub reference: bool,
}

/// One measured figure, by Segno and (if run) by DaCapo.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What is measured.
    pub name: String,
    /// Unit of the values (higher is better).
    pub unit: String,
    /// Segno's value.
    pub segno: f64,
    /// DaCapo's value on the same work.
    pub dacapo: Option<f64>,
    /// The ratio Segno aims for (Segno ÷ DaCapo, or as stated in `name`).
    pub target: Option<f64>,
}

impl Figure {
    /// Segno ÷ DaCapo.
    pub fn ratio(&self) -> Option<f64> {
        self.dacapo.filter(|d| *d > 0.0).map(|d| self.segno / d)
    }
}

fn other(e: impl std::fmt::Display) -> BenchError {
    BenchError::Other(e.to_string())
}

/// The benchmark run: DaCapo's peer configuration on the synthetic mitochondria.
pub fn bench_run(options: &EngineBenchOptions) -> RunConfig {
    let (num_fmaps, inc, fmaps_out) = match options.net {
        BenchNet::Bench => (12, 2, 24),
        BenchNet::Spec => (12, 5, 72),
    };
    let e = options.input;
    let mut run = crate::demo::project::demo_run(1, 1);
    run.name = format!(
        "bench_{}_{e}",
        match options.net {
            BenchNet::Bench => "bench",
            BenchNet::Spec => "spec",
        }
    );
    run.task_config = TaskConfig::Distance(DistanceTaskConfig {
        name: "bench_distance_mito".into(),
        channels: vec!["mito".into()],
        clip_distance: 80.0,
        tol_distance: 80.0,
        scale_factor: 160.0,
        mask_distances: true,
        clipmin: 0.05,
        clipmax: 0.95,
    });
    run.architecture_config = ArchitectureConfig::CnnectomeUnet(CNNectomeUNetConfig {
        name: format!("bench_unet_{e}"),
        input_shape: Coordinate::from([e, e, e]),
        fmaps_out,
        fmaps_in: 1,
        num_fmaps,
        fmap_inc_factor: inc,
        downsample_factors: vec![Coordinate::from([2, 2, 2]), Coordinate::from([2, 2, 2])],
        kernel_size_down: None,
        kernel_size_up: None,
        eval_shape_increase: Some(Coordinate::from([16, 16, 16])),
        upsample_factors: None,
        constant_upsample: true,
        padding: "valid".into(),
        use_attention: false,
        batch_norm: false,
    });
    run.trainer_config = TrainerConfig::Gunpowder(GunpowderTrainerConfig {
        name: "bench_trainer".into(),
        batch_size: 1,
        learning_rate: 1e-4,
        num_data_fetchers: options.threads.max(1) as u32,
        augments: vec![
            AugmentConfig::Simple(SimpleAugmentConfig {
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Elastic(ElasticAugmentConfig {
                control_point_spacing: vec![100, 100, 100],
                control_point_displacement_sigma: vec![10.0, 10.0, 10.0],
                rotation_interval: (0.0, std::f64::consts::FRAC_PI_2),
                subsample: 8,
                uniform_3d_rotation: true,
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Intensity(IntensityAugmentConfig {
                scale: (0.25, 1.75),
                shift: (-0.5, 0.35),
                clip: true,
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Gamma(GammaAugmentConfig {
                gamma_range: (0.5, 2.0),
            }),
            AugmentConfig::IntensityScaleShift(IntensityScaleShiftAugmentConfig {
                scale: 2.0,
                shift: -1.0,
            }),
        ],
        snapshot_interval: None,
        min_masked: Some(0.05),
        clip_raw: false,
        gt_min_reject: None,
        sample_strategy: None,
    });
    if let DataSplitConfig::TrainValidate(split) = &mut run.datasplit_config {
        split.name = "bench_synthetic_mito_8nm".into();
        split.validate_configs.clear();
        for d in &mut split.train_configs {
            if let DatasetConfig::RawGt(r) = d {
                r.gt_config = Some(ArrayConfig::Binarize(BinarizeArrayConfig {
                    name: "bench_crop1_mito_binarized".into(),
                    source_array_config: Box::new(crate::demo::project::zarr(
                        "gt_crop1_mito_uint64",
                        "labels/crop1/mito",
                    )),
                    groupings: vec![("mito".into(), vec![])],
                    background: 0,
                }));
            }
        }
    }
    run
}

/// Makes the data (once), stores the run and writes it for DaCapo; returns the run and
/// the path of its DaCapo YAML.
fn prepare(options: &EngineBenchOptions) -> Result<(RunConfig, PathBuf), BenchError> {
    let dir = &options.dir;
    if !dir.join("data/synthetic.zarr/raw").exists() {
        crate::demo::generate(
            dir,
            &crate::demo::DemoOptions {
                seed: 0,
                size: options.size,
                overwrite: false,
            },
        )
        .map_err(other)?;
    }
    let run = bench_run(options);
    let project = crate::store::Project::open(dir).map_err(other)?;
    let configs = project.configs();
    let any = AnyConfig::Run(Box::new(run.clone()));
    if configs.store(&any).is_err() {
        configs.delete(Family::Runs, &run.name).map_err(other)?;
        configs.store(&any).map_err(other)?;
    }
    let yaml = dir.join(format!("{}.dacapo.yaml", run.name));
    crate::store::atomic::write_atomic(&yaml, any.to_yaml().as_bytes(), true).map_err(other)?;
    Ok((run, yaml))
}

/// Removes what an earlier benchmark trained, so training starts afresh.
fn clear_run(dir: &Path, run: &RunConfig) -> Result<(), BenchError> {
    for p in [
        dir.join(&run.name),
        RunDir::new(dir, &run.name).training_stats(),
    ] {
        if p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(other)?;
        } else if p.is_file() {
            std::fs::remove_file(&p).map_err(other)?;
        }
    }
    Ok(())
}

fn segno_pipeline(options: &EngineBenchOptions, run: &RunConfig) -> Result<f64, BenchError> {
    let s = setup(&options.dir, run, 0, tch::Device::Cpu).map_err(other)?;
    let (w, n) = (options.warmup, options.iterations.max(1));
    let mut loader = BatchLoader::start(s.sampler.clone(), s.batch_size, 0, w + n, options.threads);
    let mut balances = Vec::new();
    let mut started = Instant::now();
    for i in 0..w + n {
        if i == w {
            started = Instant::now();
        }
        let batch = loader.next(i).map_err(other)?;
        for sample in &batch.samples {
            s.predictor
                .weights(&mut balances, &sample.targets)
                .map_err(other)?;
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// (iterations/s of forward + backward + step, evaluation output voxels/s).
fn segno_model(options: &EngineBenchOptions, run: &RunConfig) -> Result<(f64, f64), BenchError> {
    let predictor =
        crate::task::predictor::Predictor::from_task(&run.task_config).map_err(other)?;
    let head = predictor.head();
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = Model::new(&vs.root(), &run.architecture_config, &head).map_err(other)?;
    let mut optimizer = RAdam::new(&vs);
    let e = options.input;
    let out = crate::nn::model_output_shape(
        &run.architecture_config,
        head.kernel_size,
        &Coordinate::from([e, e, e]),
    )
    .map_err(other)?;
    let opts = (tch::Kind::Float, tch::Device::Cpu);
    let x = Tensor::randn([1, 1, e, e, e], opts);
    let t = Tensor::randn([1, head.channels, out[0], out[1], out[2]], opts).tanh();
    let wt = Tensor::ones([1, head.channels, out[0], out[1], out[2]], opts);
    let (w, n) = (options.warmup, options.iterations.max(1));
    let mut started = Instant::now();
    for i in 0..w + n {
        if i == w {
            started = Instant::now();
        }
        optimizer.zero_grad();
        let p = model.forward_t(&x, true).map_err(other)?;
        let loss = predictor.loss(&p, &t, &wt).map_err(other)?;
        loss.f_backward().map_err(other)?;
        optimizer.step(warmup_lr(1e-4, i)).map_err(other)?;
    }
    let train_rate = n as f64 / started.elapsed().as_secs_f64();
    // Evaluation forward at the evaluation input.
    let inference = crate::train::validate::Inference::for_run(
        run,
        Coordinate::from([8, 8, 8]),
        tch::Device::Cpu,
    )
    .map_err(other)?;
    let ei = inference.input_shape;
    let xe = Tensor::randn([1, 1, ei[0], ei[1], ei[2]], opts);
    let voxels: f64 = inference.output_shape.iter().map(|v| v as f64).product();
    let evals = n.max(2);
    let _ = tch::no_grad(|| model.forward_t(&xe, false)).map_err(other)?;
    let started = Instant::now();
    for _ in 0..evals {
        let _ = tch::no_grad(|| model.forward_t(&xe, false)).map_err(other)?;
    }
    Ok((
        train_rate,
        voxels * evals as f64 / started.elapsed().as_secs_f64(),
    ))
}

fn segno_train(options: &EngineBenchOptions, run: &RunConfig) -> Result<f64, BenchError> {
    clear_run(&options.dir, run)?;
    let (w, n) = (options.warmup, options.iterations.max(1));
    let mut run = run.clone();
    run.num_iterations = w + n;
    run.validation_interval = w + n;
    let times: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let record = times.clone();
    let result = train::train_run(
        &options.dir,
        &run,
        TrainOptions {
            seed: Some(0),
            device: tch::Device::Cpu,
            loader_threads: Some(options.threads),
            stop_after: None,
            on_iteration: Some(Box::new(move |_, _| {
                if let Ok(mut t) = record.lock() {
                    t.push(Instant::now());
                }
            })),
            stop: None,
            validate: true,
            keep_validation: Default::default(),
            max_watershed_voxels: crate::task::predictor::MAX_WATERSHED_VOXELS,
        },
    );
    clear_run(&options.dir, &run)?;
    result.map_err(other)?;
    let t = times.lock().map_err(other)?;
    // From the end of the warm-up to the end of the last iteration.
    let (first, last) = match (w.checked_sub(1), t.last()) {
        (Some(k), Some(last)) => (t.get(k as usize).copied(), *last),
        _ => (None, Instant::now()),
    };
    let first = first.ok_or_else(|| other("give at least one warm-up iteration"))?;
    Ok(n as f64 / (last - first).as_secs_f64())
}

/// (output voxels/s, output voxels) predicting the whole raw volume.
fn segno_predict(options: &EngineBenchOptions, run: &RunConfig) -> Result<(f64, f64), BenchError> {
    clear_run(&options.dir, run)?;
    let head = crate::train::run::head_for(&run.task_config).map_err(other)?;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    Model::new(&vs.root(), &run.architecture_config, &head).map_err(other)?;
    let run_dir = options.dir.join(&run.name);
    checkpoint::save(
        &RunDir::from_dir(&run_dir).checkpoint(0),
        &vs,
        &RAdam::new(&vs),
        &Default::default(),
    )
    .map_err(other)?;
    let model = crate::blockwise::load_model(
        &options.dir,
        run,
        &crate::blockwise::Checkpoint::Iteration(0),
        tch::Device::Cpu,
    )
    .map_err(other)?;
    let raw_path = options.dir.join("data/synthetic.zarr/raw/s0");
    let input = crate::blockwise::open_input(&options.dir, run, &raw_path, &Default::default())
        .map_err(other)?;
    let raw = input.array;
    let (mut inference, roi) =
        crate::blockwise::inference_for(run, raw.as_ref(), None, None, tch::Device::Cpu)
            .map_err(other)?;
    inference.normalisation = input.scale_shift;
    let out = options.dir.join("bench_predict.zarr");
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(other)?;
    }
    let started = Instant::now();
    let report = crate::blockwise::predict(
        &model,
        &inference,
        raw.as_ref(),
        Some(roi),
        &crate::blockwise::PredictOutput {
            container: &out,
            dataset: "prediction",
            data_type: Default::default(),
            about: serde_json::json!({}),
            overwrite: true,
            input: &raw_path,
            input_steps: serde_json::json!({}),
            ledger: Default::default(),
            worker: serde_json::Value::Null,
            reuse_finished: false,
            format: Default::default(),
        },
        |_, _| {},
    )
    .map_err(other)?;
    let secs = started.elapsed().as_secs_f64();
    let voxels: f64 = (report.roi.shape() / inference.out_vs)
        .iter()
        .map(|v| v as f64)
        .product();
    clear_run(&options.dir, run)?;
    std::fs::remove_dir_all(&out).map_err(other)?;
    Ok((voxels / secs, voxels))
}

fn default_python() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("segno-peer/.venv/bin/python")
}

/// Runs DaCapo's driver for `mode` and returns its JSON report.
fn dacapo(
    options: &EngineBenchOptions,
    yaml: &Path,
    mode: EngineMode,
) -> Result<Value, BenchError> {
    let python = options.python.clone().unwrap_or_else(default_python);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/dacapo_bench.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(&script)
        .arg("--run")
        .arg(yaml)
        .arg("--project")
        .arg(&options.dir)
        .args(["--mode", mode.name()])
        .args(["--iterations", &options.iterations.max(1).to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--threads", &options.threads.max(1).to_string()])
        .arg("--work")
        .arg(options.dir.join("dacapo_work"));
    if mode == EngineMode::Predict {
        cmd.arg("--predict-input")
            .arg(options.dir.join("data/synthetic.zarr"))
            .arg("raw/s0")
            .arg("--predict-output")
            .arg(options.dir.join("dacapo_predict"));
    }
    let out = cmd.output().map_err(|e| {
        BenchError::Peer(format!(
            "{}: {e} (install DaCapo as ../shared/peer-bench describes, or pass --python)",
            python.display()
        ))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        return Err(BenchError::Peer(format!(
            "{} {} failed:\n{}",
            script.display(),
            mode.name(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| BenchError::Peer(format!("no JSON report from {}", script.display())))?;
    serde_json::from_str(line).map_err(|e| BenchError::Peer(format!("{e}: {line}")))
}

fn number(v: &Value, key: &str) -> Result<f64, BenchError> {
    v[key]
        .as_f64()
        .ok_or_else(|| BenchError::Peer(format!("the report has no `{key}`: {v}")))
}

/// Runs the benchmark `mode` (Segno, then DaCapo on the same run unless disabled).
pub fn bench_engine(
    mode: EngineMode,
    options: &EngineBenchOptions,
) -> Result<Vec<Figure>, BenchError> {
    let (run, yaml) = prepare(options)?;
    tch::set_num_threads(options.threads.max(1) as i32);
    let reference = |m| -> Result<Option<Value>, BenchError> {
        if options.reference {
            dacapo(options, &yaml, m).map(Some)
        } else {
            Ok(None)
        }
    };
    let figure = |name: &str, unit: &str, segno: f64, dacapo: Option<f64>, target| Figure {
        name: name.into(),
        unit: unit.into(),
        segno,
        dacapo,
        target,
    };
    Ok(match mode {
        EngineMode::Pipeline => {
            let s = segno_pipeline(options, &run)?;
            let d = reference(mode)?;
            let d = d.map(|v| number(&v, "batches_per_sec")).transpose()?;
            vec![figure("batch pipeline alone", "batches/s", s, d, Some(5.0))]
        }
        EngineMode::Model => {
            let (t, e) = segno_model(options, &run)?;
            let d = reference(mode)?;
            let dt = d
                .as_ref()
                .map(|v| number(v, "iterations_per_sec"))
                .transpose()?;
            let de = d
                .as_ref()
                .map(|v| number(v, "eval_voxels_per_sec"))
                .transpose()?;
            vec![
                figure("forward + backward + step", "iterations/s", t, dt, None),
                figure("evaluation forward", "output voxels/s", e, de, None),
            ]
        }
        EngineMode::Train => {
            let s = segno_train(options, &run)?;
            let (m, _) = segno_model(options, &run)?;
            let d = reference(mode)?;
            let d = d.map(|v| number(&v, "iterations_per_sec")).transpose()?;
            vec![
                figure("training end to end", "iterations/s", s, d, None),
                figure(
                    "Segno training ÷ Segno model alone",
                    "fraction",
                    s / m,
                    None,
                    Some(0.9),
                ),
            ]
        }
        EngineMode::Predict => {
            let (s, _) = segno_predict(options, &run)?;
            let d = reference(mode)?;
            let d = d.map(|v| number(&v, "output_voxels_per_sec")).transpose()?;
            vec![figure(
                "blockwise prediction",
                "output voxels/s",
                s,
                d,
                Some(1.5),
            )]
        }
    })
}
