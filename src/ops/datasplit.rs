//! `segno datasplit`: a DataSplit config generated from a CSV of datasets (DaCapo's
//! `DataSplitGenerator`), checked like any config and stored in the project when asked.

use std::path::Path;

use serde::Serialize;

use super::configs::stored_text;
use super::OpsError;
use crate::config::{AnyConfig, DataSplitConfig};
use crate::datasplit::{generate, read_csv, GeneratorOptions};
use crate::store::Project;

/// What the generator made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasplitReport {
    /// The datasplit's name.
    pub name: String,
    /// How storing went (`stored`, `already stored (identical)`), when asked to store.
    pub stored: Option<&'static str>,
    /// Resampling beyond the limits, small crops, …, each naming its dataset.
    pub warnings: Vec<String>,
    /// Number of training datasets.
    pub train: usize,
    /// Number of validation datasets.
    pub validate: usize,
    /// The config as YAML.
    pub yaml: String,
}

/// The datasplit name a CSV file gives when none is chosen: its stem.
pub fn default_name(csv: &Path) -> String {
    csv.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "datasplit".into())
}

/// Generates the datasplit `options` describe from the datasets listed in `csv` (paths
/// relative to `project`'s directory), refuses it when the result is not a valid config, and
/// stores it in the project when `store` is set.
pub fn generate_datasplit(
    project: &Project,
    csv: &Path,
    options: &GeneratorOptions,
    store: bool,
) -> Result<DatasplitReport, OpsError> {
    let specs = read_csv(csv).map_err(|e| OpsError::Invalid(e.to_string()))?;
    let generated =
        generate(&specs, options, project.root()).map_err(|e| OpsError::Invalid(e.to_string()))?;
    let config = AnyConfig::Datasplit(DataSplitConfig::TrainValidate(generated.config.clone()));
    let problems = config.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        return Err(OpsError::Invalid(format!(
            "the generated datasplit is invalid: {}",
            lines.join("; ")
        )));
    }
    let stored = if store {
        Some(stored_text(project.configs().store(&config)?))
    } else {
        None
    };
    Ok(DatasplitReport {
        name: generated.config.name.clone(),
        stored,
        warnings: generated.warnings,
        train: generated.config.train_configs.len(),
        validate: generated.config.validate_configs.len(),
        yaml: config.to_yaml(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_is_the_csv_stem() {
        assert_eq!(default_name(Path::new("/a/b/cells.csv")), "cells");
        assert_eq!(default_name(Path::new("/")), "datasplit");
    }

    #[test]
    fn a_csv_that_does_not_exist_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project::open(dir.path().join("p")).unwrap();
        let csv = dir.path().join("none.csv");
        let options = GeneratorOptions::new(
            "x",
            crate::geometry::Coordinate::from([4, 4, 4]),
            crate::geometry::Coordinate::from([4, 4, 4]),
        );
        let e = generate_datasplit(&project, &csv, &options, true).unwrap_err();
        assert!(matches!(e, OpsError::Invalid(_)));
        assert!(e.to_string().contains("none.csv"), "{e}");
        assert!(project
            .configs()
            .names(crate::config::Family::Datasplits)
            .unwrap()
            .is_empty());
    }
}
