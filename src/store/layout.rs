//! The layout of a run directory, in one place. Every file a run owns is named here: its
//! checkpoints (`checkpoints/iterations/<i>.safetensors`), the best iteration per validation
//! dataset and criterion (`checkpoints/<dataset>/<criterion>.json`), the statistics the
//! project keeps for it (`stats/training_stats/<run>.jsonl`,
//! `stats/validation_scores/<run>.json`), the trainer's lock and status files, the record of
//! how it was trained (`run.json`), snapshots, validation arrays
//! (`validation.zarr/<i>/<dataset>/prediction`, `…/output/<parameters>`), the targets view,
//! the trainer's log and the cluster job record. The layout follows DaCapo's `runs_base_dir` where DaCapo has
//! the file. Code elsewhere asks a [`RunDir`] for a path or a reading instead of spelling a
//! path out.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// The file that marks `validation.zarr/<iteration>` as being written: present from the
/// start of an iteration's validation until its scores are stored. Iterations marked so are
/// not shown and are validated again when training resumes.
pub const INCOMPLETE_MARKER: &str = ".segno-incomplete";

/// The best iteration recorded for one validation dataset and criterion
/// (`checkpoints/<dataset>/<criterion>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    /// The checkpoint's iteration.
    pub iteration: u64,
    /// The post-processing parameter set that scored best (its name).
    pub parameters: String,
    /// The score; `None` when it was not a finite number (stored as JSON `null`).
    pub score: Option<f64>,
}

/// One best-checkpoint file with the dataset and criterion it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct BestRecord {
    /// The validation dataset's directory name (its name with `/` replaced by `_`).
    pub dataset: String,
    /// The criterion (`voi`, `mito__f1_score`, …).
    pub criterion: String,
    /// What the file records.
    pub best: BestCheckpoint,
}

/// The validation arrays one dataset got at one iteration, as keys inside
/// [`RunDir::validation_container`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationArrays {
    /// The dataset's directory name (its name with `/` replaced by `_`).
    pub dataset: String,
    /// The prediction's key.
    pub prediction: String,
    /// Every post-processed output: (parameter-set name, key), in name order.
    pub outputs: Vec<(String, String)>,
}

/// A run's directory inside a project, and the project-level files kept for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    project: PathBuf,
    name: String,
    dir: PathBuf,
}

/// The directory name a dataset gets under `checkpoints/` and `validation.zarr/<i>/`: its
/// name with `/` replaced by `_`.
pub fn dataset_key(dataset: &str) -> String {
    dataset.replace('/', "_")
}

impl RunDir {
    /// The run named `name` of the project at `project` (`<project>/<name>`).
    pub fn new(project: &Path, name: &str) -> Self {
        RunDir {
            project: project.to_path_buf(),
            name: name.to_string(),
            dir: project.join(name),
        }
    }

    /// The run whose directory is `dir`; its project is the parent directory.
    pub fn from_dir(dir: &Path) -> Self {
        let project = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        RunDir {
            project,
            name,
            dir: dir.to_path_buf(),
        }
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The project holding the run.
    pub fn project(&self) -> &Path {
        &self.project
    }

    /// The run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory of the per-iteration checkpoints.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.dir.join("checkpoints").join("iterations")
    }

    /// The checkpoint file of `iteration`.
    pub fn checkpoint(&self, iteration: u64) -> PathBuf {
        self.checkpoints_dir()
            .join(format!("{iteration}.safetensors"))
    }

    /// The files of `checkpoints/iterations/` named `<number><suffix>`, with the number, by
    /// number.
    fn numbered_checkpoints(&self, suffix: &str) -> Vec<(u64, PathBuf)> {
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(self.checkpoints_dir())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let number = e.file_name().to_str()?.strip_suffix(suffix)?.parse().ok()?;
                Some((number, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Every iteration with a checkpoint, ascending.
    pub fn checkpoint_iterations(&self) -> Vec<u64> {
        self.numbered_checkpoints(".safetensors")
            .into_iter()
            .map(|(i, _)| i)
            .collect()
    }

    /// The highest iteration with a checkpoint.
    pub fn latest_checkpoint(&self) -> Option<u64> {
        self.checkpoint_iterations().last().copied()
    }

    /// DaCapo's checkpoints in the run directory: `(iteration, file)` for every file of
    /// `checkpoints/iterations/` whose whole name is a number, by iteration.
    pub fn dacapo_checkpoints(&self) -> Vec<(u64, PathBuf)> {
        self.numbered_checkpoints("")
            .into_iter()
            .filter(|(_, path)| path.is_file())
            .collect()
    }

    /// A checkpoint file DaCapo names by criterion: `checkpoints/<name>`.
    pub fn dacapo_named_checkpoint(&self, name: &str) -> PathBuf {
        self.dir.join("checkpoints").join(name)
    }

    /// The file recording the best iteration for `dataset` and `criterion`.
    pub fn best_file(&self, dataset: &str, criterion: &str) -> PathBuf {
        self.dir
            .join("checkpoints")
            .join(dataset_key(dataset))
            .join(format!("{criterion}.json"))
    }

    /// The best iteration recorded for `dataset` and `criterion`; `None` when none is
    /// recorded, an error naming the file when it cannot be read or is malformed.
    pub fn read_best(
        &self,
        dataset: &str,
        criterion: &str,
    ) -> Result<Option<BestCheckpoint>, StoreError> {
        read_best_file(&self.best_file(dataset, criterion))
    }

    /// Records the best iteration for `dataset` and `criterion` (atomically).
    pub fn write_best(
        &self,
        dataset: &str,
        criterion: &str,
        best: &BestCheckpoint,
    ) -> Result<(), StoreError> {
        let path = self.best_file(dataset, criterion);
        let score = best.score.filter(|s| s.is_finite());
        let doc = BestCheckpoint {
            score,
            ..best.clone()
        };
        let text = serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::Malformed {
            path: path.clone(),
            message: e.to_string(),
        })?;
        super::atomic::write_atomic(&path, &text, true)
    }

    /// Every best-checkpoint file of the run, by dataset and then criterion name. A file
    /// that cannot be read or parsed is an error naming it.
    pub fn bests(&self) -> Result<Vec<BestRecord>, StoreError> {
        let mut out = Vec::new();
        let root = self.dir.join("checkpoints");
        for dataset in sorted_entries(&root)? {
            if !dataset.is_dir() || dataset.ends_with("iterations") {
                continue;
            }
            let dataset_name = file_name(&dataset);
            for file in sorted_entries(&dataset)? {
                if file.extension().is_none_or(|e| e != "json") || !file.is_file() {
                    continue;
                }
                let Some(best) = read_best_file(&file)? else {
                    continue;
                };
                out.push(BestRecord {
                    dataset: dataset_name.clone(),
                    criterion: file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    best,
                });
            }
        }
        Ok(out)
    }

    /// The run's training statistics (`<project>/stats/training_stats/<run>.jsonl`).
    pub fn training_stats(&self) -> PathBuf {
        self.project
            .join("stats/training_stats")
            .join(format!("{}.jsonl", self.name))
    }

    /// The run's validation scores (`<project>/stats/validation_scores/<run>.json`).
    pub fn validation_scores(&self) -> PathBuf {
        self.project
            .join("stats/validation_scores")
            .join(format!("{}.json", self.name))
    }

    /// DaCapo's training statistics file of the run (no extension).
    pub fn dacapo_training_stats(&self) -> PathBuf {
        self.project.join("stats/training_stats").join(&self.name)
    }

    /// DaCapo's validation scores file of the run (no extension).
    pub fn dacapo_validation_scores(&self) -> PathBuf {
        self.project
            .join("stats/validation_scores")
            .join(&self.name)
    }

    /// The trainer's lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("train.lock")
    }

    /// The log of trainers started by the app or on a cluster (their standard output and
    /// error).
    pub fn train_log(&self) -> PathBuf {
        self.dir.join("train.log")
    }

    /// The file recording how the last trainer ended.
    pub fn status_file(&self) -> PathBuf {
        self.dir.join("train.status.json")
    }

    /// The record of how the run was trained (seed, input steps).
    pub fn record_file(&self) -> PathBuf {
        self.dir.join("run.json")
    }

    /// The cluster job record.
    pub fn cluster_record(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    /// The container training snapshots are written to.
    pub fn snapshot_container(&self) -> PathBuf {
        self.dir.join("snapshot.zarr")
    }

    /// The container `segno targets` and the Runs panel write a training crop's targets to.
    pub fn targets_container(&self) -> PathBuf {
        self.dir.join("targets.zarr")
    }

    /// The container validation predictions and outputs are written to.
    pub fn validation_container(&self) -> PathBuf {
        self.dir.join("validation.zarr")
    }

    /// The group of one iteration's validation arrays.
    pub fn validation_iteration(&self, iteration: u64) -> PathBuf {
        self.validation_container().join(iteration.to_string())
    }

    /// The marker of an iteration whose validation has not finished.
    pub fn validation_incomplete_marker(&self, iteration: u64) -> PathBuf {
        self.validation_iteration(iteration).join(INCOMPLETE_MARKER)
    }

    /// The key (inside the validation container) of `dataset`'s prediction at `iteration`.
    pub fn validation_prediction_key(iteration: u64, dataset: &str) -> String {
        format!("{iteration}/{}/prediction", dataset_key(dataset))
    }

    /// The key of `dataset`'s output post-processed with the parameter set `parameters` at
    /// `iteration`; with an empty `parameters`, the group of all outputs.
    pub fn validation_output_key(iteration: u64, dataset: &str, parameters: &str) -> String {
        format!("{iteration}/{}/output/{parameters}", dataset_key(dataset))
    }

    /// The path of `dataset`'s prediction at `iteration`.
    pub fn validation_prediction(&self, iteration: u64, dataset: &str) -> PathBuf {
        self.validation_container()
            .join(Self::validation_prediction_key(iteration, dataset))
    }

    /// The path of `dataset`'s output with the parameter set `parameters` at `iteration`.
    pub fn validation_output(&self, iteration: u64, dataset: &str, parameters: &str) -> PathBuf {
        self.validation_container()
            .join(Self::validation_output_key(iteration, dataset, parameters))
    }

    /// The iterations whose validation arrays are complete, ascending.
    pub fn validated_iterations(&self) -> Vec<u64> {
        let mut its: Vec<u64> = std::fs::read_dir(self.validation_container())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir() && !e.path().join(INCOMPLETE_MARKER).exists())
            .filter_map(|e| e.file_name().to_string_lossy().parse::<u64>().ok())
            .collect();
        its.sort_unstable();
        its
    }

    /// The validation arrays stored for `iteration`, per dataset in name order (empty when
    /// the iteration has none or its validation has not finished).
    pub fn validation_arrays(&self, iteration: u64) -> Vec<ValidationArrays> {
        let group = self.validation_iteration(iteration);
        if group.join(INCOMPLETE_MARKER).exists() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for dataset in sorted_entries(&group).unwrap_or_default() {
            if !dataset.is_dir() {
                continue;
            }
            let name = file_name(&dataset);
            let outputs = sorted_entries(&dataset.join("output"))
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.is_dir())
                .map(|p| {
                    let params = file_name(&p);
                    let key = Self::validation_output_key(iteration, &name, &params);
                    (params, key)
                })
                .collect();
            out.push(ValidationArrays {
                prediction: Self::validation_prediction_key(iteration, &name),
                dataset: name,
                outputs,
            });
        }
        out
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The entries of `dir` sorted by path; a missing directory has none.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    Ok(paths)
}

fn read_best_file(path: &Path) -> Result<Option<BestCheckpoint>, StoreError> {
    super::read_json_file(
        path,
        "a best-checkpoint record ({\"iteration\", \"parameters\", \"score\"})",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_documented_layout() {
        let run = RunDir::new(Path::new("/p"), "r1");
        assert_eq!(run.dir(), Path::new("/p/r1"));
        assert_eq!(
            run.checkpoint(12),
            Path::new("/p/r1/checkpoints/iterations/12.safetensors")
        );
        assert_eq!(
            run.best_file("crop/a", "voi"),
            Path::new("/p/r1/checkpoints/crop_a/voi.json")
        );
        assert_eq!(
            run.training_stats(),
            Path::new("/p/stats/training_stats/r1.jsonl")
        );
        assert_eq!(
            run.validation_scores(),
            Path::new("/p/stats/validation_scores/r1.json")
        );
        assert_eq!(
            run.validation_prediction(4, "crop/a"),
            Path::new("/p/r1/validation.zarr/4/crop_a/prediction")
        );
        assert_eq!(
            run.validation_output(4, "c", "threshold_0.5"),
            Path::new("/p/r1/validation.zarr/4/c/output/threshold_0.5")
        );
        assert_eq!(RunDir::from_dir(Path::new("/p/r1")), run);
    }

    #[test]
    fn checkpoints_bests_and_validation_arrays_are_listed_from_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path(), "r");
        std::fs::create_dir_all(run.checkpoints_dir()).unwrap();
        for name in ["10.safetensors", "2.safetensors", "x.safetensors", "7"] {
            std::fs::write(run.checkpoints_dir().join(name), b"").unwrap();
        }
        assert_eq!(run.checkpoint_iterations(), vec![2, 10]);
        assert_eq!(run.latest_checkpoint(), Some(10));
        assert_eq!(run.dacapo_checkpoints().len(), 1);
        assert_eq!(run.dacapo_checkpoints()[0].0, 7);

        let best = BestCheckpoint {
            iteration: 10,
            parameters: "threshold_0.5".into(),
            score: Some(0.75),
        };
        run.write_best("crop/1", "mito__f1_score", &best).unwrap();
        let nan = BestCheckpoint {
            score: Some(f64::NAN),
            ..best.clone()
        };
        run.write_best("crop/1", "voi", &nan).unwrap();
        assert_eq!(
            run.read_best("crop/1", "mito__f1_score").unwrap(),
            Some(best.clone())
        );
        let text = std::fs::read_to_string(run.best_file("crop/1", "voi")).unwrap();
        assert!(text.contains("\"score\": null"), "{text}");
        let all = run.bests().unwrap();
        assert_eq!(
            all.iter()
                .map(|b| (b.dataset.as_str(), b.criterion.as_str(), b.best.score))
                .collect::<Vec<_>>(),
            vec![
                ("crop_1", "mito__f1_score", Some(0.75)),
                ("crop_1", "voi", None)
            ]
        );
        assert_eq!(run.read_best("crop/1", "other").unwrap(), None);

        std::fs::write(run.best_file("crop/1", "voi"), b"{\"iteration\": \"ten\"}").unwrap();
        let err = run.bests().unwrap_err().to_string();
        assert!(
            err.contains("voi.json") && err.contains("best-checkpoint"),
            "{err}"
        );

        for key in [
            "3/b/prediction",
            "3/b/output/t_0.5",
            "3/a/prediction",
            "3/a/output/t_0.5",
            "3/a/output/t_0.1",
            "5/a/prediction",
        ] {
            std::fs::create_dir_all(run.validation_container().join(key)).unwrap();
        }
        std::fs::write(run.validation_incomplete_marker(5), b"").unwrap();
        assert_eq!(run.validated_iterations(), vec![3]);
        assert!(run.validation_arrays(5).is_empty());
        let arrays = run.validation_arrays(3);
        assert_eq!(arrays.len(), 2);
        assert_eq!(arrays[0].dataset, "a");
        assert_eq!(arrays[0].prediction, "3/a/prediction");
        assert_eq!(
            arrays[0].outputs,
            vec![
                ("t_0.1".to_string(), "3/a/output/t_0.1".to_string()),
                ("t_0.5".to_string(), "3/a/output/t_0.5".to_string())
            ]
        );
        assert_eq!(arrays[1].outputs.len(), 1);
    }
}
