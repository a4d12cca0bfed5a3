//! The store of validation scores: a block of scores per iteration, dataset, parameter set
//! and criterion, read and written as JSON, with the best iteration per criterion.

use super::*;

/// Error if `names` has a repeated entry.
pub(super) fn check_unique(kind: &'static str, names: &[String]) -> Result<(), EvaluateError> {
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(EvaluateError::DuplicateName {
                kind,
                name: name.clone(),
            });
        }
    }
    Ok(())
}

/// Scores of one iteration, indexed `[dataset][parameter][criterion]` (NaN where failed).
pub type ScoreBlock = Vec<Vec<Vec<f64>>>;

/// Overall best of one criterion on one dataset, as listed by [`ValidationScores::best_table`].
#[derive(Debug, Clone, PartialEq)]
pub struct BestEntry {
    /// Dataset name.
    pub dataset: String,
    /// Criterion name.
    pub criterion: String,
    /// `(iteration, parameter index, value)`; `None` when no iteration has a number.
    pub best: Option<(u64, usize, f64)>,
}

/// Validation scores over iterations for fixed datasets, parameter sets and criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationScores {
    /// Criterion names, in block order.
    pub(super) criteria: Vec<String>,
    /// Post-processing parameter-set names, in block order.
    pub(super) parameters: Vec<String>,
    /// Validation dataset names, in block order.
    pub(super) datasets: Vec<String>,
    /// Blocks by iteration, in ascending iteration order.
    pub(super) iterations: Vec<(u64, ScoreBlock)>,
    /// Datasets that failed to validate, by iteration: dataset → error.
    pub(super) failures:
        std::collections::BTreeMap<u64, std::collections::BTreeMap<String, String>>,
}

impl ValidationScores {
    /// An empty store; names must be unique and every criterion known to [`criterion_info`].
    pub fn new(
        criteria: Vec<String>,
        parameters: Vec<String>,
        datasets: Vec<String>,
    ) -> Result<Self, EvaluateError> {
        check_unique("criterion", &criteria)?;
        check_unique("parameter", &parameters)?;
        check_unique("dataset", &datasets)?;
        if let Some(unknown) = criteria.iter().find(|c| criterion_info(c).is_none()) {
            return Err(EvaluateError::UnknownCriterion(unknown.clone()));
        }
        Ok(ValidationScores {
            criteria,
            parameters,
            datasets,
            iterations: Vec::new(),
            failures: std::collections::BTreeMap::new(),
        })
    }

    /// Records that `dataset` could not be validated at `iteration`, and why (its scores
    /// in the block are NaN).
    pub fn add_failure(&mut self, iteration: u64, dataset: &str, error: &str) {
        self.failures
            .entry(iteration)
            .or_default()
            .insert(dataset.to_string(), error.to_string());
    }

    /// The datasets that failed to validate at `iteration`, with their errors.
    pub fn failures(&self, iteration: u64) -> Option<&std::collections::BTreeMap<String, String>> {
        self.failures.get(&iteration)
    }

    /// The latest iteration where some dataset failed to validate, with its failures.
    pub fn last_failure(&self) -> Option<(u64, &std::collections::BTreeMap<String, String>)> {
        self.failures.iter().next_back().map(|(i, f)| (*i, f))
    }

    /// Criterion names, in block order.
    pub fn criteria(&self) -> &[String] {
        &self.criteria
    }

    /// Parameter-set names, in block order.
    pub fn parameters(&self) -> &[String] {
        &self.parameters
    }

    /// Dataset names, in block order.
    pub fn datasets(&self) -> &[String] {
        &self.datasets
    }

    /// The iterations with scores, ascending.
    pub fn iterations(&self) -> impl Iterator<Item = u64> + '_ {
        self.iterations.iter().map(|(i, _)| *i)
    }

    /// The score block of `iteration`, if stored.
    pub fn block(&self, iteration: u64) -> Option<&ScoreBlock> {
        self.iterations
            .binary_search_by_key(&iteration, |(i, _)| *i)
            .ok()
            .and_then(|k| self.iterations.get(k))
            .map(|(_, block)| block)
    }

    /// Stores the block of `iteration`, replacing any block stored for it.
    pub fn add_iteration(
        &mut self,
        iteration: u64,
        block: ScoreBlock,
    ) -> Result<(), EvaluateError> {
        let shape_error =
            |level: String, expected: usize, found: usize| EvaluateError::BlockShape {
                iteration,
                level,
                expected,
                found,
            };
        if block.len() != self.datasets.len() {
            return Err(shape_error(
                "datasets".to_string(),
                self.datasets.len(),
                block.len(),
            ));
        }
        for (d, per_dataset) in block.iter().enumerate() {
            if per_dataset.len() != self.parameters.len() {
                return Err(shape_error(
                    format!("parameters in dataset {d}"),
                    self.parameters.len(),
                    per_dataset.len(),
                ));
            }
            for (p, per_parameter) in per_dataset.iter().enumerate() {
                if per_parameter.len() != self.criteria.len() {
                    return Err(shape_error(
                        format!("criteria in dataset {d}, parameter {p}"),
                        self.criteria.len(),
                        per_parameter.len(),
                    ));
                }
            }
        }
        match self
            .iterations
            .binary_search_by_key(&iteration, |(i, _)| *i)
        {
            Ok(k) => self.iterations[k].1 = block,
            Err(k) => self.iterations.insert(k, (iteration, block)),
        }
        // Scores stored again replace the failures of an earlier attempt.
        self.failures.remove(&iteration);
        Ok(())
    }

    /// The stored value, if any, by names.
    pub fn value(
        &self,
        iteration: u64,
        dataset: &str,
        parameter: &str,
        criterion: &str,
    ) -> Option<f64> {
        let (d, c) = self.dataset_criterion(dataset, criterion)?;
        let p = self.parameters.iter().position(|n| n == parameter)?;
        self.block(iteration).and_then(|b| cell(b, d, p, c))
    }

    /// Indices of a dataset and a criterion by name.
    pub(super) fn dataset_criterion(
        &self,
        dataset: &str,
        criterion: &str,
    ) -> Option<(usize, usize)> {
        let d = self.datasets.iter().position(|n| n == dataset)?;
        let c = self.criteria.iter().position(|n| n == criterion)?;
        Some((d, c))
    }

    /// Best `(iteration, value)` of a criterion for one dataset and parameter set, by the
    /// criterion's direction; NaNs skipped, the earliest iteration wins ties.
    pub fn best_iteration(
        &self,
        dataset: &str,
        parameter: &str,
        criterion: &str,
    ) -> Option<(u64, f64)> {
        let (d, c) = self.dataset_criterion(dataset, criterion)?;
        let p = self.parameters.iter().position(|n| n == parameter)?;
        let info = criterion_info(criterion)?;
        let mut best: Option<(u64, f64)> = None;
        for (iteration, block) in &self.iterations {
            let Some(v) = cell(block, d, p, c).filter(|v| !v.is_nan()) else {
                continue;
            };
            if best.is_none_or(|(_, b)| info.is_better(v, b)) {
                best = Some((*iteration, v));
            }
        }
        best
    }

    /// Best `(iteration, parameter index, value)` of a criterion on a dataset over all
    /// parameter sets and iterations; NaNs and missing values skipped, the first in
    /// (iteration, parameter) order wins ties.
    pub fn overall_best(&self, dataset: &str, criterion: &str) -> Option<(u64, usize, f64)> {
        let (d, c) = self.dataset_criterion(dataset, criterion)?;
        let info = criterion_info(criterion)?;
        let mut best: Option<(u64, usize, f64)> = None;
        for (iteration, block) in &self.iterations {
            for p in 0..self.parameters.len() {
                let Some(v) = cell(block, d, p, c).filter(|v| !v.is_nan()) else {
                    continue;
                };
                if best.is_none_or(|(_, _, b)| info.is_better(v, b)) {
                    best = Some((*iteration, p, v));
                }
            }
        }
        best
    }

    /// The overall best for every dataset and every criterion with `store_best`, dataset-major.
    pub fn best_table(&self) -> Vec<BestEntry> {
        let stored: Vec<&String> = self
            .criteria
            .iter()
            .filter(|c| criterion_info(c).is_some_and(|i| i.store_best))
            .collect();
        self.datasets
            .iter()
            .flat_map(|dataset| {
                stored.iter().map(move |criterion| BestEntry {
                    dataset: dataset.clone(),
                    criterion: criterion.to_string(),
                    best: self.overall_best(dataset, criterion),
                })
            })
            .collect()
    }

    /// The best (iteration, parameter index, value) on `dataset` for `criterion`, which is
    /// either a full criterion name (`mito__f1_score`) or a metric (`f1_score`) standing for
    /// the mean over every channel that has it. NaN values are skipped; ties go to the
    /// earliest iteration and the first parameters.
    pub fn best_for(&self, dataset: &str, criterion: &str) -> Option<(u64, usize, f64)> {
        self.best_where(dataset, criterion, |_, _| true)
    }

    /// [`ValidationScores::best_for`] among the (iteration, parameter index) pairs `keep`
    /// accepts.
    pub fn best_where(
        &self,
        dataset: &str,
        criterion: &str,
        keep: impl Fn(u64, usize) -> bool,
    ) -> Option<(u64, usize, f64)> {
        let d = self.datasets.iter().position(|n| n == dataset)?;
        let columns: Vec<usize> = match self.criteria.iter().position(|n| n == criterion) {
            Some(c) => vec![c],
            None => self
                .criteria
                .iter()
                .enumerate()
                .filter(|(_, n)| n.rsplit_once("__").is_some_and(|(_, m)| m == criterion))
                .map(|(c, _)| c)
                .collect(),
        };
        if columns.is_empty() {
            return None;
        }
        let info = criterion_info(criterion)?;
        let mut best: Option<(u64, usize, f64)> = None;
        for (iteration, block) in &self.iterations {
            for p in 0..self.parameters.len() {
                if !keep(*iteration, p) {
                    continue;
                }
                let values: Option<Vec<f64>> =
                    columns.iter().map(|c| cell(block, d, p, *c)).collect();
                let Some(values) = values else { continue };
                let v = values.iter().sum::<f64>() / values.len() as f64;
                if v.is_nan() {
                    continue;
                }
                if best.is_none_or(|(_, _, b)| info.is_better(v, b)) {
                    best = Some((*iteration, p, v));
                }
            }
        }
        best
    }
}

/// `block[d][p][c]`, if present.
pub(super) fn cell(block: &ScoreBlock, d: usize, p: usize, c: usize) -> Option<f64> {
    block.get(d)?.get(p)?.get(c).copied()
}
