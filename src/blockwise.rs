//! Block-by-block prediction over regions of any size: the output region is cut into
//! blocks of the network's evaluation output (the last block on each axis moved back so the
//! remainder is covered), each block is predicted with its context and written as whole
//! chunks of an OME-Zarr array, and finished blocks are recorded so an interrupted job
//! resumes where it stopped.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tch::nn;

use crate::array::write::{self, ArraySpec, WriteMode};
use crate::array::{ArrayData, ArraySource, DataType};
use crate::config::RunConfig;
use crate::geometry::{Roi, SnapMode};
use crate::nn::Model;
use crate::task::postprocess::PostProcessorParameters;
use crate::task::predictor::{Predictor, Segmentation};
use crate::train::checkpoint::{self, checkpoint_path};
use crate::train::validate::Inference;
use crate::train::TrainError;

/// A run's network with weights loaded, ready to predict.
pub struct LoadedModel {
    /// Keeps the parameters alive.
    pub vs: nn::VarStore,
    /// The network.
    pub model: Model,
    /// Number of output channels.
    pub channels: usize,
    /// The iteration whose weights were loaded.
    pub iteration: u64,
}

/// Which checkpoint to use.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    /// A given iteration.
    Iteration(u64),
    /// The latest checkpoint.
    Latest,
    /// The best iteration for `criterion` on validation dataset `dataset`.
    Best {
        /// The validation dataset.
        dataset: String,
        /// The criterion (e.g. `mito__f1_score`).
        criterion: String,
    },
}

/// Loads the network of `run` with the weights of `which`.
pub fn load_model(
    project: &Path,
    run: &RunConfig,
    which: &Which,
    device: tch::Device,
) -> Result<LoadedModel, TrainError> {
    let run_dir = project.join(&run.name);
    let iteration = match which {
        Which::Iteration(i) => *i,
        Which::Latest => checkpoint::latest_iteration(&run_dir).ok_or_else(|| {
            TrainError::Data(format!(
                "run `{}` has no checkpoint yet: train it first",
                run.name
            ))
        })?,
        Which::Best { dataset, criterion } => {
            let file = run_dir
                .join("checkpoints")
                .join(dataset.replace('/', "_"))
                .join(format!("{criterion}.json"));
            let text = std::fs::read_to_string(&file).map_err(|e| {
                TrainError::Data(format!(
                    "{}: {e} (no best checkpoint recorded for this dataset and criterion)",
                    file.display()
                ))
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TrainError::Data(format!("{}: {e}", file.display())))?;
            v["iteration"]
                .as_u64()
                .ok_or_else(|| TrainError::Data(format!("{}: no iteration", file.display())))?
        }
    };
    let head = crate::train::run::head_for(&run.task_config)?;
    let channels = head.channels as usize;
    let vs = nn::VarStore::new(device);
    let model = Model::new(&vs.root(), &run.architecture_config, &head)?;
    let path = checkpoint_path(&run_dir, iteration);
    if !path.is_file() {
        return Err(TrainError::Data(format!(
            "{}: no checkpoint for iteration {iteration}",
            path.display()
        )));
    }
    checkpoint::load(&path, &vs, None)?;
    Ok(LoadedModel {
        vs,
        model,
        channels,
        iteration,
    })
}

/// What [`predict`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictReport {
    /// The output array (container/dataset).
    pub output: PathBuf,
    /// The region predicted.
    pub roi: Roi,
    /// Blocks in the region.
    pub blocks: usize,
    /// Blocks skipped because an earlier run finished them.
    pub skipped: usize,
}

fn done_path(container: &Path, dataset: &str) -> PathBuf {
    container.join(dataset).join(".segno-done-blocks")
}

fn read_done(path: &Path) -> BTreeSet<String> {
    // One finished block per line; a torn last line (a crash mid-write) is ignored.
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| l.ends_with(';'))
                .map(|l| l.trim_end_matches(';').to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Predicts `roi` (default: the raw region minus the network's context) of `raw` with
/// `model` into `container/dataset` (float32, channels first, chunks = output blocks).
/// Raw values are scaled by `raw_scale` (e.g. 1/255 for uint8) before the run's
/// normalisation. Blocks finished by an earlier, interrupted call are skipped.
#[allow(clippy::too_many_arguments)]
pub fn predict(
    model: &LoadedModel,
    inference: &Inference,
    raw: &dyn ArraySource,
    raw_scale: f32,
    roi: Option<Roi>,
    container: &Path,
    dataset: &str,
    mut on_block: impl FnMut(usize, usize),
) -> Result<PredictReport, TrainError> {
    let context = inference.context();
    let raw_roi = raw.info().roi;
    let default = raw_roi
        .grow(&(-context), &(-context))
        .map_err(|e| TrainError::Data(e.to_string()))?;
    let roi = match roi {
        Some(r) => r
            .snap_to_grid(&inference.out_vs, SnapMode::Grow)
            .map_err(|e| TrainError::Data(e.to_string()))?
            .intersect(&default),
        None => default,
    };
    if roi.is_empty() {
        return Err(TrainError::Data(format!("nothing to predict: the region is empty once the network's context ({context} nm) is taken from the raw region {raw_roi}")));
    }
    let mut spec = ArraySpec::new(
        DataType::F32,
        roi,
        inference.out_vs,
        Some(model.channels as u64),
    );
    spec.chunk_voxels = Some(inference.output_shape.iter().map(|v| v as u64).collect());
    spec.attributes.insert(
        "segno_prediction".into(),
        serde_json::json!({"iteration": model.iteration}),
    );
    let writer = write::create(container, dataset, &spec, WriteMode::Resume)?;
    let existing = writer
        .attributes()
        .and_then(|a| a.get("segno_prediction"))
        .and_then(|v| v["iteration"].as_u64());
    if existing.is_some_and(|i| i != model.iteration) {
        return Err(TrainError::Data(format!(
            "{}/{dataset} holds a prediction of iteration {}, not {}: delete it or choose another output",
            container.display(),
            existing.unwrap_or_default(),
            model.iteration
        )));
    }
    let done_file = done_path(container, dataset);
    let done = read_done(&done_file);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&done_file)
        .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))?;
    let blocks = inference.blocks(&roi)?;
    let scaled = Inference {
        normalisation: (
            inference.normalisation.0 * raw_scale,
            inference.normalisation.1,
        ),
        ..inference.clone()
    };
    let pending: Vec<(usize, Roi)> = blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| !done.contains(&b.to_string()))
        .map(|(k, b)| (k, *b))
        .collect();
    let skipped = blocks.len() - pending.len();
    let mut finished = skipped;
    if skipped > 0 {
        on_block(finished, blocks.len());
    }
    // Three stages overlap: reading the next inputs, the network, writing the last outputs.
    type Input = (Roi, ndarray::ArrayD<f32>);
    type Output = (Roi, Vec<f32>, Vec<usize>);
    let channels = model.channels;
    let out_vs = inference.out_vs;
    std::thread::scope(|scope| -> Result<(), TrainError> {
        let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Result<Input, TrainError>>(2);
        let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Output>(2);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<(), TrainError>>();
        let scaled = &scaled;
        let pending = &pending;
        scope.spawn(move || {
            for (_, block) in pending {
                let item = scaled.read_input(raw, block).map(|x| (*block, x));
                let failed = item.is_err();
                if in_tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let writer = &writer;
        let log = &mut log;
        let done_file = &done_file;
        scope.spawn(move || {
            for (block, values, shape) in out_rx {
                let result = (|| -> Result<(), TrainError> {
                    let part = block.intersect(&roi);
                    let n = part.shape() / out_vs;
                    let src_off = (part.begin() - block.begin()) / out_vs;
                    let dims: Vec<usize> = std::iter::once(channels)
                        .chain(n.iter().map(|v| v as usize))
                        .collect();
                    let mut data = ndarray::ArrayD::<f32>::zeros(dims);
                    let ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..channels)
                        .chain(
                            (0..n.dims())
                                .map(|a| src_off[a] as usize..(src_off[a] + n[a]) as usize),
                        )
                        .collect();
                    crate::array::data::copy_sub_block(
                        &mut data,
                        &vec![0; ranges.len()],
                        &values,
                        &shape,
                        &ranges,
                    );
                    writer.write(&part, &ArrayData::F32(data))?;
                    writeln!(log, "{block};")
                        .and_then(|()| log.flush())
                        .map_err(|e| TrainError::Data(format!("{}: {e}", done_file.display())))
                })();
                let failed = result.is_err();
                if done_tx.send(result).is_err() || failed {
                    break;
                }
            }
        });
        let mut in_flight = 0usize;
        for item in in_rx {
            let (block, x) = item?;
            let (values, shape) = scaled.forward(&model.model, &x)?;
            if shape.first() != Some(&channels) {
                return Err(TrainError::Data(format!(
                    "the network produced {shape:?}, expected {channels} channels"
                )));
            }
            if out_tx.send((block, values, shape)).is_err() {
                break;
            }
            in_flight += 1;
            // Report blocks as they are written.
            while let Ok(r) = done_rx.try_recv() {
                r?;
                in_flight -= 1;
                finished += 1;
                on_block(finished, blocks.len());
            }
        }
        drop(out_tx);
        for r in done_rx.iter().take(in_flight) {
            r?;
            finished += 1;
            on_block(finished, blocks.len());
        }
        Ok(())
    })?;
    Ok(PredictReport {
        output: container.join(dataset),
        roi,
        blocks: blocks.len(),
        skipped,
    })
}

/// The scale that maps a raw element type to [0, 1] (uint8 ÷ 255, uint16 ÷ 65535, floats as they are).
pub fn raw_scale(dt: DataType) -> f32 {
    match dt {
        DataType::U8 => 1.0 / 255.0,
        DataType::U16 => 1.0 / 65535.0,
        _ => 1.0,
    }
}

/// What a post-processing pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcessReport {
    /// The output array.
    pub output: PathBuf,
    /// Chunks written.
    pub chunks: usize,
    /// Non-zero output voxels, per channel (one entry for label outputs).
    pub foreground: Vec<u64>,
}

/// Applies a point-wise post-processing `f` to a prediction chunk by chunk, in parallel,
/// into `container/dataset` (same region, voxel size and chunking; `channels` output
/// channels or none for label outputs).
fn map_chunks(
    prediction: &dyn ArraySource,
    data_type: DataType,
    channels: Option<u64>,
    attributes: serde_json::Value,
    container: &Path,
    dataset: &str,
    f: &(dyn Fn(&ndarray::ArrayD<f32>) -> Result<Segmentation, TrainError> + Sync),
) -> Result<PostProcessReport, TrainError> {
    use rayon::prelude::*;
    let info = prediction.info();
    let mut spec = ArraySpec::new(data_type, info.roi, info.geometry.voxel_size, channels);
    spec.chunk_voxels = Some(
        info.spatial_axes()
            .iter()
            .map(|&a| info.chunk_shape[a])
            .collect(),
    );
    spec.attributes
        .insert("segno_post_process".into(), attributes);
    let writer = write::create(container, dataset, &spec, WriteMode::Overwrite)?;
    let indices = write::grid_indices(&writer.chunk_grid_shape());
    let n_channels = channels.unwrap_or(1) as usize;
    let has_channel_axis = info.geometry.axes.iter().any(|a| !a.spatial);
    let counts = indices
        .par_iter()
        .map(|index| -> Result<Vec<u64>, TrainError> {
            let roi = writer.info().chunk_roi(index)?;
            let mut p = prediction.read(&roi)?.to_f32();
            if !has_channel_axis {
                p = p.insert_axis(ndarray::Axis(0));
            }
            let mut fg = vec![0u64; n_channels];
            let data = match f(&p)? {
                Segmentation::Binary(out) => {
                    for (c, lane) in out.outer_iter().enumerate().take(n_channels) {
                        fg[c] = lane.iter().filter(|v| **v != 0).count() as u64;
                    }
                    if channels.is_some() {
                        ArrayData::U8(out)
                    } else {
                        ArrayData::U8(out.index_axis_move(ndarray::Axis(0), 0))
                    }
                }
                Segmentation::Labels(out) => {
                    fg[0] = out.iter().filter(|v| **v != 0).count() as u64;
                    match data_type {
                        DataType::U8 => ArrayData::U8(out.mapv(|v| v.min(255) as u8)),
                        _ => ArrayData::U64(out),
                    }
                }
            };
            writer.write(&roi, &data)?;
            Ok(fg)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut foreground = vec![0u64; n_channels];
    for c in counts {
        for (a, b) in foreground.iter_mut().zip(c) {
            *a += b;
        }
    }
    Ok(PostProcessReport {
        output: container.join(dataset),
        chunks: indices.len(),
        foreground,
    })
}

/// Thresholds a prediction chunk by chunk, in parallel, into `container/dataset` (uint8,
/// same geometry and chunking): `prediction > threshold`.
pub fn threshold_array(
    prediction: &dyn ArraySource,
    threshold: f64,
    container: &Path,
    dataset: &str,
) -> Result<PostProcessReport, TrainError> {
    let info = prediction.info();
    let channels = info
        .geometry
        .axes
        .iter()
        .any(|a| !a.spatial)
        .then(|| info.channels());
    map_chunks(
        prediction,
        DataType::U8,
        channels,
        serde_json::json!({"threshold": threshold, "source": info.path}),
        container,
        dataset,
        &|p| {
            Ok(Segmentation::Binary(crate::task::postprocess::threshold(
                p, threshold,
            )))
        },
    )
}

/// Post-processes a prediction of `predictor`'s task with `parameters` into
/// `container/dataset`, chunk by chunk in parallel.
pub fn post_process_array(
    prediction: &dyn ArraySource,
    predictor: &Predictor,
    parameters: &PostProcessorParameters,
    container: &Path,
    dataset: &str,
) -> Result<PostProcessReport, TrainError> {
    let info = prediction.info();
    let want = predictor.head().channels as u64;
    if info.channels() != want {
        return Err(TrainError::Data(format!(
            "{}: the prediction has {} channel(s), the task predicts {want}",
            info.path,
            info.channels()
        )));
    }
    let channels = predictor.output_channels().map(|c| c as u64);
    if let PostProcessorParameters::Watershed { .. } = parameters {
        // Instances span chunks: the region is segmented in one piece.
        let p = prediction.read(&info.roi)?.to_f32();
        let Segmentation::Labels(labels) = predictor.post_process(&p, parameters)? else {
            return Err(TrainError::Data("the watershed produced no labels".into()));
        };
        let mut spec = ArraySpec::new(DataType::U64, info.roi, info.geometry.voxel_size, None);
        spec.chunk_voxels = Some(
            info.spatial_axes()
                .iter()
                .map(|&a| info.chunk_shape[a])
                .collect(),
        );
        spec.attributes.insert(
            "segno_post_process".into(),
            serde_json::json!({"parameters": parameters.name(), "source": info.path}),
        );
        let writer = write::create(container, dataset, &spec, WriteMode::Overwrite)?;
        let labelled = labels.iter().filter(|v| **v != 0).count() as u64;
        writer.write(&info.roi, &ArrayData::U64(labels))?;
        return Ok(PostProcessReport {
            output: container.join(dataset),
            chunks: write::grid_indices(&writer.chunk_grid_shape()).len(),
            foreground: vec![labelled],
        });
    }
    let data_type = match predictor {
        Predictor::OneHot { .. } => DataType::U8,
        _ if channels.is_some() => DataType::U8,
        _ => DataType::U64,
    };
    map_chunks(
        prediction,
        data_type,
        channels,
        serde_json::json!({"parameters": parameters.name(), "source": info.path}),
        container,
        dataset,
        &|p| Ok(predictor.post_process(p, parameters)?),
    )
}

/// The checkpoint and post-processing parameters [`choose`] settled on.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The checkpoint iteration.
    pub iteration: u64,
    /// The post-processing parameters.
    pub parameters: PostProcessorParameters,
    /// Where they came from: (validation dataset, criterion, score), if from the scores.
    pub basis: Option<(String, String, f64)>,
}

/// Picks the iteration and parameters for `apply`: those given, else the best on the
/// validation scores of `dataset` (default: the first validation dataset) by `criterion`
/// (a full criterion name or a metric averaged over the channels).
pub fn choose(
    project: &Path,
    run: &RunConfig,
    predictor: &Predictor,
    iteration: Option<u64>,
    parameters: Option<&str>,
    dataset: Option<&str>,
    criterion: Option<&str>,
) -> Result<Choice, TrainError> {
    let grid = predictor.parameters();
    let given = parameters
        .map(|name| {
            PostProcessorParameters::from_name(name, &grid).ok_or_else(|| {
                TrainError::Data(format!(
                    "unknown post-processing parameters `{name}`; this task has: {}",
                    grid.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                ))
            })
        })
        .transpose()?;
    if let (Some(iteration), Some(parameters)) = (iteration, given.clone()) {
        return Ok(Choice {
            iteration,
            parameters,
            basis: None,
        });
    }
    let names: Vec<String> = match &run.datasplit_config {
        crate::config::DataSplitConfig::TrainValidate(s) => s
            .validate_configs
            .iter()
            .map(|d| d.name().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let criterion = criterion.unwrap_or(predictor.default_criterion());
    let dataset = match dataset {
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
    let scores = crate::train::validate::read_scores(
        &crate::train::validate::scores_path(project, &run.name),
        &predictor.criteria(),
        &param_names,
        &names,
    )?;
    // The best among what was not given (parameters off the grid: any scored parameters).
    let k = given
        .as_ref()
        .and_then(|p| param_names.iter().position(|n| *n == p.name()));
    let keep = |i: u64, p: usize| iteration.is_none_or(|it| it == i) && k.is_none_or(|k| k == p);
    let (it, p, score) = scores.best_where(&dataset, criterion, keep).ok_or_else(|| {
        TrainError::Data(format!(
            "run `{}` has no validation score for `{criterion}` on `{dataset}`{}: validate it first (segno validate) or give --iteration and --parameters",
            run.name,
            iteration.map(|i| format!(" at iteration {i}")).unwrap_or_default()
        ))
    })?;
    Ok(Choice {
        iteration: it,
        parameters: given.unwrap_or_else(|| grid[p].clone()),
        basis: Some((dataset, criterion.to_string(), score)),
    })
}
