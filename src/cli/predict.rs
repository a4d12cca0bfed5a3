//! `segno predict`, `apply`, `validate`, `post-process` and `evaluate`: options parsed
//! into the `ops` calls, their reports printed.

use super::*;
use crate::blockwise::Checkpoint;
use crate::ops::apply::{self, SettingsRequest};
use crate::ops::post_process::{self as post, PostProcessMethod};

/// Runs a block job `job` with a progress bar of its blocks (hidden for JSON output and
/// without a terminal).
pub(super) fn with_block_bar<T>(
    json: bool,
    job: impl FnOnce(&mut dyn FnMut(usize, usize)) -> Result<T, crate::ops::OpsError>,
) -> Result<T, Failure> {
    let bar = indicatif::ProgressBar::new(0);
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let result = job(&mut |k, n| {
        bar.set_length(n as u64);
        bar.set_position(k as u64);
    });
    bar.finish_and_clear();
    Ok(result?)
}

/// The compression called `name` (one of [`crate::array::write::Compression::NAMES`]).
fn compression(name: &str) -> Result<crate::array::write::Compression, Failure> {
    crate::array::write::Compression::parse(name).ok_or_else(|| {
        Failure::new(
            exit::USAGE,
            format!(
                "--compression {name}: expected one of {}",
                crate::array::write::Compression::NAMES.join(", ")
            ),
        )
    })
}

impl JobArgs {
    /// The job these arguments describe.
    fn job(&self) -> Result<apply::PredictJob, Failure> {
        let roi = self
            .roi
            .as_deref()
            .map(crate::geometry::Roi::parse_slices)
            .transpose()
            .map_err(|e| Failure::new(exit::USAGE, format!("--roi: {e}")))?;
        Ok(apply::PredictJob {
            input: self.input.clone(),
            output: self.output.clone(),
            roi,
            device: self.device.clone(),
            max_block_input_voxels: self.max_block_input,
            input_options: self.input_options(),
            overwrite: self.overwrite,
            workers: self.workers as usize,
            cluster: self.cluster.launch(super::job::finishing_command()),
            prepare_only: false,
            format: crate::blockwise::OutputFormat {
                chunk_voxels: self.chunk.clone(),
                compression: compression(&self.compression)?,
            },
            precision: crate::blockwise::Precision::parse(&self.precision).ok_or_else(|| {
                Failure::new(
                    exit::USAGE,
                    format!(
                        "--precision {}: expected one of {}",
                        self.precision,
                        crate::blockwise::Precision::NAMES.join(", ")
                    ),
                )
            })?,
        })
    }
}

pub(super) fn validate_run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let project = args.project.open()?;
    let report = crate::ops::validate::validate_run(
        &project,
        &crate::ops::validate::ValidateOptions {
            run: args.run.clone(),
            iteration: args.iteration,
            device: args.device.clone(),
        },
    )?;
    print(out, &report, args.project.json)
}

pub(super) fn post_process(args: &PostProcessArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let (project, method) = match &args.run {
        Some(name) => (
            Some(
                ProjectArgs {
                    project: args.project.clone(),
                    json: args.json,
                }
                .open()?,
            ),
            PostProcessMethod::Run {
                name: name.clone(),
                parameters: args.parameters.clone(),
            },
        ),
        None if args.components => (None, PostProcessMethod::Components(args.threshold)),
        None => (None, PostProcessMethod::Threshold(args.threshold)),
    };
    let report = post::post_process(
        project.as_ref(),
        &post::PostProcessOptions {
            input: args.input.clone(),
            output: args.output.clone(),
            dataset: args.dataset.clone(),
            method,
            overwrite: args.overwrite,
            block_voxels: args.block_voxels.clone(),
            workers: args.workers,
            compression: compression(&args.compression)?,
        },
    )?;
    print(out, &report, args.json)
}

pub(super) fn evaluate(args: &EvaluateArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let roi = args
        .roi
        .as_deref()
        .map(crate::geometry::Roi::parse_slices)
        .transpose()
        .map_err(|e| Failure::new(exit::USAGE, format!("--roi: {e}")))?;
    let options = crate::ops::evaluate::EvaluateOptions {
        test: args.output.clone(),
        truth: args.gt.clone(),
        mask: args.mask.clone(),
        instance: args.instance,
        channels: args.channels.clone(),
        clip_distance_nm: args.clip_distance,
        tolerance_nm: args.tol_distance,
        roi,
        context_nm: args.context_nm,
        block_voxels: args.block_voxels.clone(),
        save: args.save.clone(),
        overwrite: args.overwrite,
        workers: args.workers as usize,
        cluster: args.cluster.launch(super::job::finishing_command()),
    };
    let report = with_block_bar(args.json, |progress| {
        crate::ops::evaluate::evaluate_arrays(&options, progress)
    })?;
    print(out, &report, args.json)
}

pub(super) fn predict(args: &PredictArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let checkpoint = match (&args.iteration, &args.best) {
        (Some(_), Some(_)) => {
            return Err(Failure::new(
                exit::USAGE,
                "give --iteration or --best, not both",
            ))
        }
        (Some(i), None) => Checkpoint::Iteration(*i),
        (None, Some(b)) => {
            let Some((dataset, criterion)) = b.split_once(':') else {
                return Err(Failure::new(
                    exit::USAGE,
                    format!("--best takes DATASET:CRITERION, got `{b}`"),
                ));
            };
            Checkpoint::Best {
                dataset: dataset.into(),
                criterion: criterion.into(),
            }
        }
        (None, None) => Checkpoint::Latest,
    };
    let options = apply::PredictOptions {
        run: args.run.clone(),
        checkpoint,
        dataset: args.dataset.clone(),
        data_type: match args.output_dtype.as_str() {
            "uint8" => crate::blockwise::PredictionType::Uint8,
            "float16" => crate::blockwise::PredictionType::Float16,
            _ => crate::blockwise::PredictionType::Float32,
        },
        job: args.job.job()?,
    };
    let project = args.job.project.open()?;
    let report = with_block_bar(args.job.project.json, |progress| {
        apply::predict(&project, &options, progress)
    })?;
    print(out, &report, args.job.project.json)
}

pub(super) fn apply(args: &ApplyArgs, out: &mut dyn Write) -> Result<u8, Failure> {
    let options = apply::ApplyOptions {
        run: args.run.clone(),
        settings: SettingsRequest {
            iteration: args.iteration,
            parameters: args.parameters.clone(),
            dataset: args.validation_dataset.clone(),
            criterion: args.criterion.clone(),
        },
        job: args.job.job()?,
    };
    let project = args.job.project.open()?;
    let report = with_block_bar(args.job.project.json, |progress| {
        apply::apply(&project, &options, progress)
    })?;
    print(out, &report, args.job.project.json)
}
