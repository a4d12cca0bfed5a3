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
    // A config file needs no project (a run's voxel size is looked up when there is one).
    let opened = if Path::new(name).is_file() {
        project.open().ok()
    } else {
        Some(project.open()?)
    };
    let report =
        crate::ops::inspect::architecture_shapes(opened.as_ref(), name, input, voxel_size)?;
    print(out, &report, project.json)?;
    Ok(if report.valid {
        exit::OK
    } else {
        exit::INVALID
    })
}

pub(super) fn targets(args: &TargetsArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::ops::inspect::TargetsSource;
    let project;
    let source = match (&args.run, &args.task, &args.gt) {
        (Some(name), None, gt) => {
            project = args.project.open()?;
            TargetsSource::Run {
                project: &project,
                name,
                dataset: args.dataset.as_deref(),
                gt: gt.as_deref(),
                mask: args.mask.as_deref(),
            }
        }
        (None, Some(file), Some(gt)) => TargetsSource::TaskFile {
            file,
            gt,
            mask: args.mask.as_deref(),
        },
        (None, Some(_), None) => return Err(Failure::new(exit::USAGE, "--task needs --gt")),
        _ => return Err(Failure::new(exit::USAGE, "give --run RUN or --task FILE")),
    };
    let report = crate::ops::inspect::targets(source, &args.output, args.overwrite)?;
    print(out, &report, args.project.json)
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
    let report = crate::ops::weights::import_run(&project, &args.run, args.overwrite)?;
    print(out, &report, args.project.json)
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
                crate::ops::train::KeepValidation::BestAndLatest
            } else {
                crate::ops::train::KeepValidation::All
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
