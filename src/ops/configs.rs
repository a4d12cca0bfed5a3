//! The project's configs as the command line offers them: listing, checking files or
//! stored configs against the schema and the project, importing files, exporting a stored
//! config, and loading a config file. Checking and importing report per document, so one bad
//! file does not hide the verdict on the others.

use std::path::{Path, PathBuf};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::OpsError;
use crate::config::{AnyConfig, Family};
use crate::store::{ConfigStore, Project, StoreOutcome};

/// The stored config names of some families.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigListing {
    /// The project's directory.
    pub project: PathBuf,
    /// Each family asked for, with its names sorted.
    pub families: Vec<(Family, Vec<String>)>,
}

impl Serialize for ConfigListing {
    /// An object from each family's directory name to its names.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.families.len()))?;
        for (f, names) in &self.families {
            map.serialize_entry(f.dir_name(), names)?;
        }
        map.end()
    }
}

/// Lists the configs of `families` (all when empty) stored in `project`.
pub fn list_configs(project: &Project, families: &[Family]) -> Result<ConfigListing, OpsError> {
    let store = project.configs();
    let families = if families.is_empty() {
        Family::ALL.to_vec()
    } else {
        families.to_vec()
    };
    let mut listing = Vec::new();
    for f in families {
        listing.push((f, store.names(f)?));
    }
    Ok(ConfigListing {
        project: project.root().to_path_buf(),
        families: listing,
    })
}

/// The verdict on one checked or imported document.
#[derive(Debug)]
pub struct DocumentReport {
    /// The file (or stored config's file) the document came from.
    pub source: String,
    /// Its family, when known.
    pub family: Option<Family>,
    /// Its name, when it could be read.
    pub name: Option<String>,
    /// What happened (`valid`, `stored`, …) or why it failed.
    pub outcome: Result<String, OpsError>,
    /// Settings that are accepted but have no effect, and types Segno will not compute with.
    pub warnings: Vec<String>,
}

/// Reads the config file `path` as `family` (or the family its `type` names).
pub fn load_file(path: &Path, family: Option<Family>) -> Result<AnyConfig, OpsError> {
    load(path, family).1
}

/// Like [`load_file`], with the family known even when the file is not a valid config.
fn load(path: &Path, family: Option<Family>) -> (Option<Family>, Result<AnyConfig, OpsError>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                family,
                Err(OpsError::Io(format!("cannot read {}: {e}", path.display()))),
            )
        }
    };
    let source = path.display().to_string();
    match AnyConfig::from_text(family, &text, &source) {
        Ok(c) => (Some(c.family()), Ok(c)),
        Err(e) => (family, Err(e.into())),
    }
}

/// Checks `path` as a DaCapo options file (`dacapo.yaml`) if it looks like one.
fn check_options_file(path: &Path) -> Option<DocumentReport> {
    let text = std::fs::read_to_string(path).ok()?;
    let source = path.display().to_string();
    let doc = crate::config::parse_document(&text, &source).ok()?;
    let map = doc.as_object()?;
    let looks_like_options = !map.contains_key(crate::config::TYPE_KEY)
        && (map.contains_key("runs_base_dir") || map.contains_key("compute_context"));
    if !looks_like_options {
        return None;
    }
    let outcome = crate::config::decode_document::<crate::config::OptionsConfig>(&doc, &source)
        .map(|_| "valid options file".to_string())
        .map_err(OpsError::from);
    Some(DocumentReport {
        source,
        family: None,
        name: None,
        outcome,
        warnings: crate::config::compatibility_warnings(&doc),
    })
}

/// The config's own problems, then (for a valid config) what its file name and the files
/// and arrays it names in the project say; warnings go with either.
fn check(
    store: &ConfigStore,
    path: &Path,
    config: &AnyConfig,
) -> (Result<String, OpsError>, Vec<String>) {
    let mut problems = config.problems();
    // The same name rules as import (a name must work as a file name everywhere).
    if let Err(e) = crate::store::configs::validate_name(config.family(), config.name()) {
        problems.push("name", e.to_string());
    }
    let mut warnings = crate::config::compatibility_warnings(&config.to_document());
    if problems.is_empty() {
        let project_check = store.check_file(path, config);
        problems = project_check.problems;
        warnings = project_check.warnings;
    }
    let outcome = if problems.is_empty() {
        Ok("valid".to_string())
    } else {
        Err(OpsError::Invalid(format!(
            "{} problem(s):\n{problems}",
            problems.len()
        )))
    };
    (outcome, warnings)
}

/// Checks config files (`files`), or every stored config of `family` (all families when
/// `None`) when no file is given. A file that looks like a DaCapo options file is checked
/// as one unless a family is given.
pub fn check_configs(
    project: &Project,
    files: &[PathBuf],
    family: Option<Family>,
) -> Result<Vec<DocumentReport>, OpsError> {
    let store = project.configs();
    let mut reports = Vec::new();
    if files.is_empty() {
        let families = family.map_or(Family::ALL.to_vec(), |f| vec![f]);
        for f in families {
            for name in store.names(f)? {
                let path = store.path_of(f, &name);
                let (outcome, warnings) = match store.retrieve(f, &name) {
                    Ok(c) => check(&store, &path, &c),
                    Err(e) => (Err(OpsError::from(e)), Vec::new()),
                };
                reports.push(DocumentReport {
                    source: path.display().to_string(),
                    family: Some(f),
                    name: Some(name),
                    outcome,
                    warnings,
                });
            }
        }
        return Ok(reports);
    }
    for path in files {
        if family.is_none() {
            if let Some(report) = check_options_file(path) {
                reports.push(report);
                continue;
            }
        }
        let (fam, loaded) = load(path, family);
        let name = loaded.as_ref().ok().map(|c| c.name().to_string());
        let (outcome, warnings) = match loaded {
            Ok(c) => check(&store, path, &c),
            Err(e) => (Err(e), Vec::new()),
        };
        reports.push(DocumentReport {
            source: path.display().to_string(),
            family: fam,
            name,
            outcome,
            warnings,
        });
    }
    Ok(reports)
}

/// Imports config files and directories of them (a directory's family folders imply the
/// family) into `project`, each as `family` when given.
pub fn import_configs(
    project: &Project,
    paths: &[PathBuf],
    family: Option<Family>,
) -> Result<Vec<DocumentReport>, OpsError> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(crate::store::config_files(p)?);
    }
    let store = project.configs();
    Ok(files
        .into_iter()
        .map(|(path, implied)| {
            let imported = store.import_file(&path, family.or(implied));
            DocumentReport {
                source: path.display().to_string(),
                family: imported.family,
                name: imported.name,
                warnings: imported.warnings,
                outcome: imported
                    .outcome
                    .map(|o| stored_text(o).to_string())
                    .map_err(OpsError::from),
            }
        })
        .collect())
}

/// How a store outcome is reported.
pub fn stored_text(outcome: StoreOutcome) -> &'static str {
    match outcome {
        StoreOutcome::Written => "stored",
        StoreOutcome::Unchanged => "already stored (identical)",
    }
}

/// The format a config is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// YAML, as stored.
    Yaml,
    /// Pretty-printed JSON.
    Json,
}

/// A stored config as text, and where it was written (if a file was asked for).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportReport {
    /// The config's family directory name.
    pub family: &'static str,
    /// The config's name.
    pub name: String,
    /// The exported text.
    pub text: String,
    /// The file written, if any.
    pub written: Option<PathBuf>,
}

/// Exports the stored config `family`/`name` as `format`, to `output` when given (an
/// existing file is replaced only with `force`).
pub fn export_config(
    project: &Project,
    family: Family,
    name: &str,
    format: ConfigFormat,
    output: Option<&Path>,
    force: bool,
) -> Result<ExportReport, OpsError> {
    let config = project.configs().retrieve(family, name)?;
    let text = match format {
        ConfigFormat::Json => serde_json::to_string_pretty(&config.to_document())
            .map(|t| t + "\n")
            .map_err(|e| OpsError::Io(format!("cannot encode JSON: {e}")))?,
        ConfigFormat::Yaml => config.to_yaml(),
    };
    if let Some(path) = output {
        if path.exists() && !force {
            return Err(OpsError::Exists(format!(
                "{} exists; pass --force to replace it",
                path.display()
            )));
        }
        crate::store::atomic::write_atomic(path, text.as_bytes(), true)
            .map_err(|e| OpsError::Io(format!("{}: {e}", path.display())))?;
    }
    Ok(ExportReport {
        family: family.dir_name(),
        name: name.to_string(),
        text,
        written: output.map(Path::to_path_buf),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAINER: &str =
        "__type__: GunpowderTrainerConfig\nname: t1\nbatch_size: 2\nlearning_rate: 0.0001\n";

    #[test]
    fn check_import_list_and_export_report_per_document() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open(dir.path().join("p")).unwrap();
        let good = dir.path().join("t1.yaml");
        std::fs::write(&good, TRAINER).unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "__type__: GunpowderTrainerConfig\nname: t2\nlearning_rate: fast\n",
        )
        .unwrap();
        let missing = dir.path().join("missing.yaml");

        let reports = check_configs(
            &project,
            &[good.clone(), bad.clone(), missing.clone()],
            None,
        )
        .unwrap();
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[0].outcome.as_ref().unwrap(), "valid");
        assert_eq!(reports[0].family, Some(Family::Trainers));
        assert_eq!(reports[0].name.as_deref(), Some("t1"));
        let e = reports[1].outcome.as_ref().unwrap_err().to_string();
        assert!(e.contains("learning_rate"), "{e}");
        assert!(matches!(reports[2].outcome, Err(OpsError::Io(_))));

        let imported = import_configs(&project, std::slice::from_ref(&good), None).unwrap();
        assert_eq!(imported[0].outcome.as_ref().unwrap(), "stored");
        let again = import_configs(&project, &[good], None).unwrap();
        assert_eq!(
            again[0].outcome.as_ref().unwrap(),
            "already stored (identical)"
        );

        let listing = list_configs(&project, &[Family::Trainers]).unwrap();
        assert_eq!(
            listing.families,
            vec![(Family::Trainers, vec!["t1".to_string()])]
        );
        assert_eq!(
            serde_json::to_string(&listing).unwrap(),
            r#"{"trainers":["t1"]}"#
        );
        // The stored trainer checks as valid in the project too.
        let stored = check_configs(&project, &[], Some(Family::Trainers)).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].outcome.is_ok());

        let out = dir.path().join("out.yaml");
        let report = export_config(
            &project,
            Family::Trainers,
            "t1",
            ConfigFormat::Yaml,
            Some(&out),
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), report.text);
        assert!(
            report.text.contains("learning_rate: 0.0001"),
            "{}",
            report.text
        );
        let refused = export_config(
            &project,
            Family::Trainers,
            "t1",
            ConfigFormat::Json,
            Some(&out),
            false,
        );
        assert!(matches!(refused, Err(OpsError::Exists(_))));
        let json = export_config(
            &project,
            Family::Trainers,
            "t1",
            ConfigFormat::Json,
            Some(&out),
            true,
        )
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["learning_rate"], serde_json::json!(0.0001));
        assert_eq!(json.written.as_deref(), Some(out.as_path()));
    }
}
