//! `segno predict`, `apply`, `validate`, `post-process` and `evaluate`.

use super::*;

pub(super) fn validate_run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn post_process(args: &PostProcessArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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
pub(super) fn binary_scores(
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

pub(super) fn evaluate(args: &EvaluateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn predict(args: &PredictArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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
pub(super) fn checked_output(
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
pub(super) struct Predicted {
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
pub(super) fn predict_with(
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

pub(super) fn apply(args: &ApplyArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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
