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
    let report = crate::ops::weights::export_weights(
        &project,
        &crate::ops::weights::ExportWeightsOptions {
            run: args.run.clone(),
            iteration: args.iteration,
            output: args.output.clone(),
            overwrite: args.overwrite,
        },
    )?;
    print(out, &report, args.project.json)
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
    let project = args.project.open()?;
    let report = crate::ops::weights::import_weights(
        &project,
        &crate::ops::weights::ImportWeightsOptions {
            run: args.run.clone(),
            weights: args.weights.clone(),
            iteration: args.iteration,
            partial: args.partial,
            overwrite: args.overwrite,
        },
    )?;
    print(out, &report, args.project.json)
}

pub(super) fn train(args: &TrainArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let project = args.project.open()?;
    let run = stored_run(&project, &args.run)?;
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
    let lines = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let name = run.name.clone();
    let report = crate::ops::train::train_stored_run(
        &project,
        crate::ops::train::TrainRunOptions {
            run: run.name.clone(),
            seed: args.seed,
            device: args.device.clone(),
            loader_threads: args.loader_threads,
            validate: !args.no_validation,
            keep_validation: if args.keep_validation == "best" {
                crate::train::KeepValidation::BestAndLatest
            } else {
                crate::train::KeepValidation::All
            },
            stop_after: args.iterations,
            stop: Some(stop_on_signals()?),
            on_start: Some(Box::new(move |device| {
                if lines {
                    eprintln!("run {name}: training on {device:?}");
                }
            })),
            on_iteration: Some(Box::new(move |i, loss| {
                progress.set_position(i + 1);
                progress.set_message(format!("{loss:.4}"));
                if lines && (i + 1) % 10 == 0 {
                    eprintln!("iteration {}: loss {loss:.5}", i + 1);
                }
            })),
        },
    )?;
    bar.finish_and_clear();
    print(out, &report, args.project.json)
}
