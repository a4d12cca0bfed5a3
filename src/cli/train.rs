//! `segno train`, `import-weights`, `import-run`, `export-weights`, `targets` and
//! `architecture shapes`.

use super::*;

pub(super) fn architecture_shapes(
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

pub(super) fn targets(args: &TargetsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn print_targets(
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

pub(super) fn export_weights(args: &ExportWeightsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn import_run(args: &ImportRunArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn import_weights(args: &ImportWeightsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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

pub(super) fn train(args: &TrainArgs, out: &mut dyn Write) -> Result<u8, Failure> {
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
