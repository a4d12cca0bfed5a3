//! The `segno` command line. `args` declares every command and option (clap); one file per
//! command group runs its commands and prints their reports as text or JSON; this module
//! dispatches, maps errors to exit codes and writes the output.

mod args;
mod bench;
mod config;
mod data;
mod demo;
mod job;
mod predict;
mod render;
mod train;

pub use args::*;
use bench::*;
use config::*;
use data::*;
use demo::*;
use predict::*;
use render::*;
use train::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::config::{AnyConfig, ConfigError, Family};
use crate::geometry::Coordinate;
use crate::store::{Project, StoreError};

/// Exit codes of `segno`, so scripts can tell failures apart.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// A config is malformed or invalid.
    pub const INVALID: u8 = 1;
    /// Bad command-line usage (reported by the argument parser).
    pub const USAGE: u8 = 2;
    /// A named config does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// A different config already exists under that name.
    pub const CONFLICT: u8 = 4;
    /// A file could not be read or written (including read-only projects).
    pub const IO: u8 = 5;
}

/// A failure of a command, with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code for the process.
    pub code: u8,
    /// Message for standard error.
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::new(store_code(&e), e.to_string())
    }
}

/// The exit code of a store error (see the README's table).
fn store_code(e: &StoreError) -> u8 {
    match e {
        StoreError::InvalidName { .. }
        | StoreError::InvalidConfig { .. }
        | StoreError::Config(_) => exit::INVALID,
        StoreError::NotFound { .. } => exit::NOT_FOUND,
        StoreError::Duplicate { .. } | StoreError::Taken { .. } => exit::CONFLICT,
        StoreError::ReadOnly { .. }
        | StoreError::NotADirectory { .. }
        | StoreError::Malformed { .. }
        | StoreError::Io { .. } => exit::IO,
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::new(exit::INVALID, e.to_string())
    }
}

fn parse_family(text: &str) -> Result<Family, Failure> {
    Family::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Family::ALL.iter().map(|f| f.dir_name()).collect();
        Failure::new(
            exit::USAGE,
            format!(
                "unknown config family {text:?}; use one of {}",
                names.join(", ")
            ),
        )
    })
}

/// Runs a parsed command line, printing results to stdout and errors to stderr.
pub fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let command = cli.command.unwrap_or(Command::Gui(GuiArgs {
        project: None,
        view: None,
        screenshot: None,
        size: [1280, 800],
        headless: false,
        section: None,
    }));
    match dispatch(command, &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let _ = out.flush();
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn dispatch(command: Command, out: &mut dyn Write) -> Result<u8, Failure> {
    match command {
        Command::Info(flag) => info(flag.json, out),
        Command::Config(cmd) => config(cmd, out),
        Command::Array(ArrayCommand::Info { path, json }) => array_info(&path, json, out),
        Command::DemoData(args) => demo_data(&args, out),
        Command::Train(args) => train(&args, out),
        Command::Demo(args) => demo(&args, out),
        Command::Predict(args) => predict(&args, out),
        Command::Apply(args) => apply(&args, out),
        Command::Job(JobCommand::Work(args)) => job::work(&args, out),
        Command::Job(JobCommand::Status { output, json }) => job::status(&output, json, out),
        Command::Job(JobCommand::Cancel { output, json }) => job::cancel(&output, json, out),
        Command::Job(JobCommand::Resume { output, json }) => job::resume(&output, json, out),
        Command::Gui(args) => {
            let report = crate::gui::run(crate::gui::GuiOptions {
                project: args.project,
                view: args.view,
                screenshot: args.screenshot,
                size: args.size,
                headless: args.headless,
                section: args.section,
            })
            .map_err(|e| Failure::new(exit::IO, e.to_string()))?;
            if let Some(line) = report {
                let _ = writeln!(out, "{line}");
            }
            Ok(exit::OK)
        }
        Command::ImportWeights(args) => import_weights(&args, out),
        Command::ImportRun(args) => import_run(&args, out),
        Command::ExportWeights(args) => export_weights(&args, out),
        Command::Neuroglancer(args) => neuroglancer(&args, out),
        Command::Datasplit(args) => datasplit(&args, out),
        Command::Validate(args) => validate_run(&args, out),
        Command::PostProcess(args) => post_process(&args, out),
        Command::Evaluate(args) => evaluate(&args, out),
        Command::Architecture(ArchitectureCommand::Shapes {
            name,
            input,
            voxel_size,
            project,
        }) => architecture_shapes(&name, input, voxel_size, &project, out),
        Command::Targets(args) => targets(&args, out),
        Command::Bench(BenchCommand::Arrays {
            size,
            dir,
            repeats,
            python,
            no_reference,
            json,
        }) => bench_arrays(size, dir, repeats, python, no_reference, json, out),
        Command::Bench(BenchCommand::Viewer(a)) => bench_viewer(&a, out),
        Command::Bench(BenchCommand::Live {
            dir,
            size,
            iterations,
            panel,
            json,
        }) => bench_live(
            &crate::gui::live_bench::LiveBenchOptions {
                dir,
                size,
                iterations,
                panel,
            },
            json,
            out,
        ),
        Command::Bench(BenchCommand::Blockwise {
            dir,
            size,
            slurm,
            partition,
            json,
        }) => {
            let report = crate::ops::job_bench::bench_blockwise(
                &crate::ops::job_bench::BlockwiseBenchOptions {
                    dir,
                    size,
                    slurm,
                    partition,
                },
            )?;
            print(out, &report, json)
        }
        Command::Bench(BenchCommand::Pipeline(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Pipeline, &a, out)
        }
        Command::Bench(BenchCommand::Model(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Model, &a, out)
        }
        Command::Bench(BenchCommand::Train(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Train, &a, out)
        }
        Command::Bench(BenchCommand::Predict(a)) => {
            bench_engine(crate::bench::engine::EngineMode::Predict, &a, out)
        }
    }
}

/// A run config stored in the project.
fn stored_run(project: &Project, name: &str) -> Result<crate::config::RunConfig, Failure> {
    Ok(crate::ops::stored_run(project, name)?)
}

impl From<crate::ops::OpsError> for Failure {
    fn from(e: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError as E;
        let code = match &e {
            E::Usage(_) => exit::USAGE,
            E::Invalid(_) | E::Config(_) => exit::INVALID,
            E::Array(a) => array_code(a),
            E::Store(s) => store_code(s),
            E::Engine(t) | E::Run { source: t, .. } => train_code(t),
            E::Exists(_) => exit::CONFLICT,
            E::Io(_) => exit::IO,
        };
        Self::new(code, e.to_string())
    }
}

impl From<crate::array::ArrayError> for Failure {
    fn from(e: crate::array::ArrayError) -> Self {
        Self::new(array_code(&e), e.to_string())
    }
}

/// The exit code of an engine error: that of the array error it carries, 4 for an output
/// that exists, 5 for a run locked by another process, 1 otherwise.
fn train_code(e: &crate::train::TrainError) -> u8 {
    use crate::train::TrainError as E;
    match e {
        E::Array(a) => array_code(a),
        E::OutputExists { .. } => exit::CONFLICT,
        E::Lock(_) => exit::IO,
        _ => exit::INVALID,
    }
}

/// The exit code of an array error (see the README's table).
fn array_code(e: &crate::array::ArrayError) -> u8 {
    use crate::array::ArrayError as E;
    match e {
        E::NotFound { .. } => exit::NOT_FOUND,
        E::Exists { .. } => exit::CONFLICT,
        E::OverInput { .. } => exit::USAGE,
        E::Io { .. } | E::Write { .. } | E::Chunk { .. } | E::Read { .. } => exit::IO,
        E::Metadata { .. }
        | E::Unsupported { .. }
        | E::Invalid { .. }
        | E::OutOfBounds { .. }
        | E::Misaligned { .. } => exit::INVALID,
    }
}

fn emit(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::new(exit::IO, format!("cannot write output: {e}")))
}

fn emit_json(out: &mut dyn Write, value: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
    emit(out, &format!("{text}\n"))
}

/// Loads a stored config named on the command line.
fn retrieve(
    project: &ProjectArgs,
    family: &str,
    name: &str,
) -> Result<(Family, AnyConfig), Failure> {
    let family = parse_family(family)?;
    let config = project.open()?.configs().retrieve(family, name)?;
    Ok((family, config))
}
