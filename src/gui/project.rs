//! What the app shows of a project, read through the engine's config store and run records.

use std::path::{Path, PathBuf};

use eframe::egui;

use crate::config::{AnyConfig, DataSplitConfig, Family, RunConfig};
use crate::store::layout::RunDir;
use crate::store::Project;

/// One run as the Runs section lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Run name.
    pub name: String,
    /// Task type (e.g. `DistanceTaskConfig`).
    pub task: String,
    /// Iterations configured.
    pub iterations: u64,
    /// The latest checkpoint written, if any.
    pub latest_checkpoint: Option<u64>,
    /// Best validation results, one line per (dataset, criterion) with a stored best.
    pub best: Vec<String>,
    /// The run's directory.
    pub dir: PathBuf,
}

/// A project's configs, datasplits, runs and arrays, read when it is opened.
pub struct ProjectSummary {
    /// The project directory.
    pub root: PathBuf,
    project: Project,
    /// Config names per family.
    pub configs: Vec<(Family, Vec<String>)>,
    /// DataSplits (stored or inside runs): name, training and validation dataset names.
    pub datasplits: Vec<(String, Vec<String>, Vec<String>)>,
    /// Runs.
    pub runs: Vec<RunSummary>,
    /// Zarr/N5 containers in the project (relative paths).
    pub arrays: Vec<String>,
}

fn dataset_names(split: &DataSplitConfig) -> (String, Vec<String>, Vec<String>) {
    match split {
        DataSplitConfig::TrainValidate(s) => (
            s.name.clone(),
            s.train_configs
                .iter()
                .map(|d| d.name().to_string())
                .collect(),
            s.validate_configs
                .iter()
                .map(|d| d.name().to_string())
                .collect(),
        ),
        other => (other.name().to_string(), Vec::new(), Vec::new()),
    }
}

/// Best (dataset, criterion) lines of the headline criteria (F1 per class and VOI) that the
/// run recorded; a best-checkpoint file that cannot be read gives a line naming it.
fn best_lines(run: &RunDir) -> Vec<String> {
    match run.bests() {
        Ok(bests) => bests
            .into_iter()
            .filter(|b| b.criterion.ends_with("f1_score") || b.criterion.starts_with("voi"))
            .map(|b| {
                format!(
                    "{} {} {:.3} @ {} ({})",
                    b.dataset,
                    b.criterion,
                    b.best.score.unwrap_or(f64::NAN),
                    b.best.iteration,
                    b.best.parameters
                )
            })
            .collect(),
        Err(e) => vec![format!("best checkpoints unreadable: {e}")],
    }
}

fn containers(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    // The project, its data folder and run folders, one level deep each.
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.ends_with("configs") && !p.ends_with("stats")),
        );
    }
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            let is_container = p.extension().is_some_and(|x| x == "zarr" || x == "n5");
            if p.is_dir() && is_container {
                if let Ok(rel) = p.strip_prefix(root) {
                    out.push(rel.display().to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

impl ProjectSummary {
    /// Reads the project at `path` (created if missing); the error names the path.
    pub fn load(path: &Path) -> Result<Self, String> {
        let project = Project::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let store = project.configs();
        let mut configs = Vec::new();
        for family in Family::ALL {
            let names = store
                .names(family)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            configs.push((family, names));
        }
        let mut runs = Vec::new();
        let mut datasplits = Vec::new();
        for (family, names) in &configs {
            for name in names {
                match (family, store.retrieve(*family, name)) {
                    (Family::Runs, Ok(AnyConfig::Run(r))) => {
                        datasplits.push(dataset_names(&r.datasplit_config));
                        runs.push(run_summary(project.root(), &r));
                    }
                    (Family::Datasplits, Ok(AnyConfig::Datasplit(d))) => {
                        datasplits.push(dataset_names(&d));
                    }
                    _ => {}
                }
            }
        }
        datasplits.sort();
        datasplits.dedup();
        Ok(Self {
            root: project.root().to_path_buf(),
            arrays: containers(project.root()),
            project,
            configs,
            datasplits,
            runs,
        })
    }

    /// The project store.
    pub fn store(&self) -> &Project {
        &self.project
    }

    /// The stored config as YAML, or why it cannot be shown.
    pub fn config_yaml(&self, family: Family, name: &str) -> String {
        match self.project.configs().retrieve(family, name) {
            Ok(c) => c.to_yaml(),
            Err(e) => format!("# {e}"),
        }
    }

    /// A few lines about the project.
    pub fn overview(&self, ui: &mut egui::Ui) {
        ui.label(egui::RichText::new(self.root.display().to_string()).strong());
        let counts: Vec<String> = self
            .configs
            .iter()
            .map(|(f, n)| format!("{} {}", n.len(), f.dir_name()))
            .collect();
        ui.label(counts.join(" · "));
        ui.label(format!("{} array containers", self.arrays.len()));
    }
}

fn run_summary(root: &Path, r: &RunConfig) -> RunSummary {
    let run = RunDir::new(root, &r.name);
    RunSummary {
        name: r.name.clone(),
        task: r.task_config.type_tag().to_string(),
        iterations: r.num_iterations,
        latest_checkpoint: run.latest_checkpoint(),
        best: best_lines(&run),
        dir: run.dir().to_path_buf(),
    }
}
