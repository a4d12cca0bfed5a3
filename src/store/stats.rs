//! Training statistics of a run: one JSON object per iteration
//! (`{"iteration", "loss", "time", "run_name"}`, DaCapo's fields) in
//! `stats/training_stats/<run>.jsonl`, rewritten atomically on every flush so a crash never
//! leaves a torn file and a reader (the monitor) always sees whole lines.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One training iteration's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    /// 0-based iteration.
    pub iteration: u64,
    /// The loss of that iteration.
    pub loss: f64,
    /// Seconds spent on forward, backward and the optimizer step.
    pub time: f64,
    /// The run's name.
    pub run_name: String,
}

/// Errors reading or writing statistics.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The stats file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A line is not a valid record.
    #[error("{path}, line {line}: {message}")]
    Malformed {
        /// The stats file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads a run's training statistics (empty when there are none yet).
pub fn read_training_stats(path: &Path) -> Result<Vec<IterationStats>, StatsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StatsError::Io {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let mut out: Vec<IterationStats> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let s: IterationStats = serde_json::from_str(line).map_err(|e| StatsError::Malformed {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        if out.last().is_some_and(|l| l.iteration >= s.iteration) {
            return Err(StatsError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!(
                    "iteration {} does not follow {}",
                    s.iteration,
                    out.last().map_or(0, |l| l.iteration)
                ),
            });
        }
        out.push(s);
    }
    Ok(out)
}

/// Writes all statistics atomically (temporary file, fsync, rename).
pub fn write_training_stats(path: &Path, stats: &[IterationStats]) -> Result<(), StatsError> {
    let mut text = String::with_capacity(stats.len() * 80);
    for s in stats {
        let line = serde_json::to_string(s).map_err(|e| StatsError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    crate::store::atomic::write_atomic(path, text.as_bytes(), true).map_err(|e| StatsError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The iteration training continues from: last recorded iteration + 1, or 0.
pub fn trained_until(stats: &[IterationStats]) -> u64 {
    stats.last().map_or(0, |s| s.iteration.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::RunDir;

    #[test]
    fn round_trip_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = RunDir::new(dir.path(), "run").training_stats();
        assert!(read_training_stats(&path).unwrap().is_empty());
        let stats: Vec<IterationStats> = (0..3)
            .map(|i| IterationStats {
                iteration: i,
                loss: 1.0 / (i + 1) as f64,
                time: 0.5,
                run_name: "run".into(),
            })
            .collect();
        write_training_stats(&path, &stats).unwrap();
        assert_eq!(read_training_stats(&path).unwrap(), stats);
        assert_eq!(trained_until(&stats), 3);
        std::fs::write(
            &path,
            "{\"iteration\": 0, \"loss\": 1.0, \"time\": 0.1, \"run_name\": \"r\"}\nnot json\n",
        )
        .unwrap();
        let err = read_training_stats(&path).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
