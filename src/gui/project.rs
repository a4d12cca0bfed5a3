//! What the app shows of a project, read through the engine's config store and run records.

use std::path::{Path, PathBuf};

use eframe::egui;

use crate::config::{AnyConfig, DataSplitConfig, Family, RunConfig};
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

/// Best (dataset, criterion) lines recorded under `<run>/checkpoints/<dataset>/<criterion>.json`.
fn best_lines(run_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(datasets) = std::fs::read_dir(run_dir.join("checkpoints")) else {
        return out;
    };
    let mut datasets: Vec<PathBuf> = datasets.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    datasets.sort();
    for d in datasets
        .iter()
        .filter(|d| d.is_dir() && !d.ends_with("iterations"))
    {
        let Ok(files) = std::fs::read_dir(d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let Some(criterion) = f.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            // Only the headline criteria: F1 per class and VOI.
            if !(criterion.ends_with("f1_score") || criterion.starts_with("voi")) {
                continue;
            }
            let Some(v) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            else {
                continue;
            };
            let dataset = d.file_name().and_then(|s| s.to_str()).unwrap_or("");
            out.push(format!(
                "{dataset} {criterion} {:.3} @ {} ({})",
                v["score"].as_f64().unwrap_or(f64::NAN),
                v["iteration"],
                v["parameters"].as_str().unwrap_or("")
            ));
        }
    }
    out
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
    let dir = root.join(&r.name);
    RunSummary {
        name: r.name.clone(),
        task: r.task_config.type_tag().to_string(),
        iterations: r.num_iterations,
        latest_checkpoint: crate::train::checkpoint::latest_iteration(&dir),
        best: best_lines(&dir),
        dir,
    }
}
