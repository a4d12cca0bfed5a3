//! A run's validation scores (`stats/validation_scores/<run>.json`): per validated
//! iteration, per dataset and post-processing parameter set, every criterion's value (JSON
//! `null` for a score that is not a finite number), and the error of each dataset that
//! could not be validated. The file lists its criteria, parameter and dataset names; a file
//! written for other names (the run's task or datasplit changed) is started afresh.

use std::path::Path;

use serde_json::{json, Value};

use super::layout::RunDir;
use super::StoreError;
use crate::task::evaluate::ValidationScores;

fn malformed(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, StoreError> {
    super::read_json_file(path, "JSON")
}

fn names(path: &Path, v: &Value, key: &str) -> Result<Vec<String>, StoreError> {
    v[key]
        .as_array()
        .ok_or_else(|| malformed(path, format!("`{key}` is not a list of names")))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| malformed(path, format!("`{key}` holds {x}, not a name")))
        })
        .collect()
}

/// Reads the scores at `path` into a store with these names; a missing file, or one
/// written for other names, gives an empty store. A file that is not a scores file is an
/// error naming it.
pub fn read_scores(
    path: &Path,
    criteria: &[String],
    parameters: &[String],
    datasets: &[String],
) -> Result<ValidationScores, StoreError> {
    let mut scores =
        ValidationScores::new(criteria.to_vec(), parameters.to_vec(), datasets.to_vec())
            .map_err(|e| malformed(path, e.to_string()))?;
    let Some(v) = read_json(path)? else {
        return Ok(scores);
    };
    if names(path, &v, "criteria")? != criteria
        || names(path, &v, "parameters")? != parameters
        || names(path, &v, "datasets")? != datasets
    {
        // Scored with other datasets or criteria (the run changed): start afresh.
        return Ok(scores);
    }
    let entries = v["iterations"]
        .as_array()
        .ok_or_else(|| malformed(path, "`iterations` is not a list"))?;
    for (n, it) in entries.iter().enumerate() {
        let iteration = it["iteration"].as_u64().ok_or_else(|| {
            malformed(
                path,
                format!("entry {n} of `iterations` has no iteration number"),
            )
        })?;
        let number = |x: &Value| match x {
            Value::Null => Ok(f64::NAN),
            x => x.as_f64().ok_or_else(|| {
                malformed(
                    path,
                    format!("iteration {iteration}: score {x} is neither a number nor null"),
                )
            }),
        };
        let list = |x: &Value, what: &str| {
            x.as_array().cloned().ok_or_else(|| {
                malformed(path, format!("iteration {iteration}: {what} is not a list"))
            })
        };
        let mut block = Vec::new();
        for d in list(&it["scores"], "`scores`")? {
            let mut per_dataset = Vec::new();
            for p in list(&d, "a dataset's scores")? {
                per_dataset.push(
                    list(&p, "a parameter set's scores")?
                        .iter()
                        .map(number)
                        .collect::<Result<Vec<f64>, _>>()?,
                );
            }
            block.push(per_dataset);
        }
        scores
            .add_iteration(iteration, block)
            .map_err(|e| malformed(path, e.to_string()))?;
        if let Some(errors) = it.get("errors") {
            let errors = errors.as_object().ok_or_else(|| {
                malformed(
                    path,
                    format!("iteration {iteration}: `errors` is not an object"),
                )
            })?;
            for (dataset, error) in errors {
                let error = error.as_str().ok_or_else(|| {
                    malformed(
                        path,
                        format!("iteration {iteration}: the error of `{dataset}` is not text"),
                    )
                })?;
                scores.add_failure(iteration, dataset, error);
            }
        }
    }
    Ok(scores)
}

fn nan_to_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// Writes validation scores to `path` atomically.
pub fn write_scores(path: &Path, scores: &ValidationScores) -> Result<(), StoreError> {
    let iterations: Vec<Value> = scores
        .iterations()
        .filter_map(|i| scores.block(i).map(|b| (i, b)))
        .map(|(i, b)| {
            let block: Vec<Vec<Vec<Value>>> = b
                .iter()
                .map(|d| {
                    d.iter()
                        .map(|p| p.iter().map(|x| nan_to_null(*x)).collect())
                        .collect()
                })
                .collect();
            let mut entry = json!({"iteration": i, "scores": block});
            if let Some(f) = scores.failures(i) {
                entry["errors"] = json!(f);
            }
            entry
        })
        .collect();
    let doc = json!({"criteria": scores.criteria(), "parameters": scores.parameters(), "datasets": scores.datasets(), "iterations": iterations});
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| malformed(path, e.to_string()))?;
    super::atomic::write_atomic(path, &text, true)
}

/// A run's stored validation scores with the names its file lists; `None` when the run has
/// none yet.
pub fn read_stored_scores(run: &RunDir) -> Result<Option<ValidationScores>, StoreError> {
    let path = run.validation_scores();
    let Some(v) = read_json(&path)? else {
        return Ok(None);
    };
    read_scores(
        &path,
        &names(&path, &v, "criteria")?,
        &names(&path, &v, "parameters")?,
        &names(&path, &v, "datasets")?,
    )
    .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scores_round_trip_with_nan_as_null_and_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path(), "r");
        let (c, p, d) = (names(&["voi"]), names(&["t0", "t1"]), names(&["a"]));
        let mut s = ValidationScores::new(c.clone(), p.clone(), d.clone()).unwrap();
        s.add_iteration(4, vec![vec![vec![0.5], vec![f64::NAN]]])
            .unwrap();
        s.add_failure(4, "a", "cannot read");
        write_scores(&run.validation_scores(), &s).unwrap();
        let text = std::fs::read_to_string(run.validation_scores()).unwrap();
        assert!(text.contains("null"), "{text}");
        let back = read_stored_scores(&run).unwrap().unwrap();
        assert_eq!(back.iterations().collect::<Vec<_>>(), vec![4]);
        assert_eq!(back.block(4).unwrap()[0][0], vec![0.5]);
        assert!(back.block(4).unwrap()[0][1][0].is_nan());
        assert_eq!(back.failures(4).unwrap()["a"], "cannot read");
        // Other names: an empty store, not an error.
        let other = read_scores(
            &run.validation_scores(),
            &names(&["mito__f1_score"]),
            &p,
            &d,
        )
        .unwrap();
        assert_eq!(other.iterations().count(), 0);
        assert!(read_stored_scores(&RunDir::new(tmp.path(), "none"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_malformed_scores_file_is_an_error_naming_it_and_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path(), "r");
        std::fs::create_dir_all(run.validation_scores().parent().unwrap()).unwrap();
        let head = r#""criteria": ["voi"], "parameters": ["t0"], "datasets": ["a"]"#;
        for (body, says) in [
            (
                format!(r#"{{{head}, "iterations": [{{"scores": [[[0.5]]]}}]}}"#),
                "entry 0 of `iterations` has no iteration number",
            ),
            (
                format!(r#"{{{head}, "iterations": [{{"iteration": 2, "scores": [[["x"]]]}}]}}"#),
                "iteration 2: score \"x\" is neither a number nor null",
            ),
            (
                r#"{"criteria": "voi"}"#.to_string(),
                "`criteria` is not a list",
            ),
            ("{".to_string(), "not JSON"),
        ] {
            std::fs::write(run.validation_scores(), body).unwrap();
            let e = read_stored_scores(&run).unwrap_err().to_string();
            assert!(e.contains("r.json") && e.contains(says), "{e}");
        }
    }
}
