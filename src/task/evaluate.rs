//! Evaluation of post-processed predictions against ground truth: per-channel binary
//! segmentation criteria (overlap, surface distances in world units, tolerance-based rates),
//! variation of information between instance labelings, a deterministic dummy evaluator,
//! criterion metadata, and a store of validation scores with best-iteration selection.

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, Axis};
use thiserror::Error;

use super::edt::distance_to_features;

/// Errors raised by the evaluators and the validation-score store.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvaluateError {
    /// Test and truth arrays differ in shape.
    #[error("test shape {test:?} differs from truth shape {truth:?}")]
    ShapeMismatch {
        /// Shape of the test array.
        test: Vec<usize>,
        /// Shape of the truth array.
        truth: Vec<usize>,
    },
    /// The arrays have neither as many axes as the voxel size nor one more (a channel axis).
    #[error(
        "array shape {shape:?} does not fit voxel size {spacing:?}: expected {} spatial axes, \
         optionally after one channel axis",
        spacing.len()
    )]
    DimensionMismatch {
        /// Shape of the arrays.
        shape: Vec<usize>,
        /// Voxel size per spatial axis.
        spacing: Vec<f64>,
    },
    /// The voxel size is empty or has a non-finite or non-positive entry.
    #[error("voxel size {0:?} must have at least one axis, every entry finite and positive")]
    InvalidSpacing(Vec<f64>),
    /// A distance parameter is negative or NaN.
    #[error("{name} = {value} must be a non-negative number")]
    InvalidDistance {
        /// Parameter name (`clip_distance` or `tol_distance`).
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The number of channel names does not match the number of channels.
    #[error(
        "{} channel names {names:?} for arrays of shape {shape:?} with {channels} channel(s)",
        names.len()
    )]
    ChannelCount {
        /// The channel names given.
        names: Vec<String>,
        /// Shape of the arrays.
        shape: Vec<usize>,
        /// Number of channels in the arrays.
        channels: usize,
    },
    /// A name occurs twice where names must be unique.
    #[error("duplicate {kind} name {name:?}")]
    DuplicateName {
        /// What the name names (channel, criterion, parameter, dataset).
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A criterion name without known metadata.
    #[error("unknown criterion {0:?}")]
    UnknownCriterion(String),
    /// A score block whose nesting does not match the store's datasets, parameters, criteria.
    #[error("score block for iteration {iteration} has {found} {level}, expected {expected}")]
    BlockShape {
        /// Iteration the block was given for.
        iteration: u64,
        /// The level of the block that is wrong, e.g. `criteria in dataset 0, parameter 1`.
        level: String,
        /// Expected length at that level.
        expected: usize,
        /// Length found at that level.
        found: usize,
    },
    /// The distance transform returned an array of a different shape than its input.
    #[error("distance transform returned shape {found:?} for a mask of shape {expected:?}")]
    DistanceShape {
        /// Shape of the mask.
        expected: Vec<usize>,
        /// Shape of the returned distances.
        found: Vec<usize>,
    },
}

/// Metadata of one criterion: its direction, value bounds and whether its best is tracked.
#[derive(Debug, Clone, PartialEq)]
pub struct CriterionInfo {
    /// The criterion name as asked for (possibly `channel__metric`).
    pub name: String,
    /// Whether larger values are better.
    pub higher_is_better: bool,
    /// Lower and (if any) upper bound of the values.
    pub bounds: (f64, Option<f64>),
    /// Whether the best value over iterations is stored and reported.
    pub store_best: bool,
}

impl CriterionInfo {
    /// Whether `candidate` is strictly better than `incumbent` (false if either is NaN).
    pub fn is_better(&self, candidate: f64, incumbent: f64) -> bool {
        if self.higher_is_better {
            candidate > incumbent
        } else {
            candidate < incumbent
        }
    }
}

/// Metadata of a criterion; `channel__metric` has the metadata of `metric`. `None` if unknown.
pub fn criterion_info(name: &str) -> Option<CriterionInfo> {
    let metric = name.rsplit_once("__").map_or(name, |(_, metric)| metric);
    let (higher_is_better, upper, store_best) = match metric {
        "dice" | "jaccard" => (true, Some(1.0), false),
        "hausdorff" => (false, None, false),
        "false_negative_rate"
        | "false_negative_rate_with_tolerance"
        | "false_positive_rate"
        | "false_positive_rate_with_tolerance"
        | "false_discovery_rate" => (false, Some(1.0), false),
        "voi" | "voi_split" | "voi_merge" => (false, Some(1.0), true),
        "mean_false_positive_distance"
        | "mean_false_negative_distance"
        | "mean_false_distance"
        | "mean_false_positive_distance_clipped"
        | "mean_false_negative_distance_clipped"
        | "mean_false_distance_clipped" => (false, None, false),
        "precision"
        | "precision_with_tolerance"
        | "recall"
        | "recall_with_tolerance"
        | "f1_score_with_tolerance" => (true, Some(1.0), false),
        "f1_score" | "frizz_level" => (true, Some(1.0), true),
        "blipp_score" => (false, Some(1.0), true),
        _ => return None,
    };
    Some(CriterionInfo {
        name: name.to_string(),
        higher_is_better,
        bounds: (0.0, upper),
        store_best,
    })
}

/// The binary-segmentation criteria, in the order they are reported per channel.
pub const BINARY_METRICS: [&str; 21] = [
    "dice",
    "jaccard",
    "hausdorff",
    "false_negative_rate",
    "false_positive_rate",
    "false_discovery_rate",
    "precision",
    "recall",
    "f1_score",
    "voi",
    "mean_false_positive_distance",
    "mean_false_negative_distance",
    "mean_false_distance",
    "mean_false_positive_distance_clipped",
    "mean_false_negative_distance_clipped",
    "mean_false_distance_clipped",
    "false_positive_rate_with_tolerance",
    "false_negative_rate_with_tolerance",
    "precision_with_tolerance",
    "recall_with_tolerance",
    "f1_score_with_tolerance",
];

/// Named criterion values of one evaluation; `criteria` and `values` have the same order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// Criterion names.
    pub criteria: Vec<String>,
    /// Criterion values (NaN where undefined).
    pub values: Vec<f64>,
}

impl Scores {
    /// The value of the criterion called `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.criteria
            .iter()
            .position(|c| c == name)
            .and_then(|i| self.values.get(i).copied())
    }
}

/// `num / den`, NaN when `den` is 0.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::NAN
    } else {
        num / den
    }
}

/// Harmonic mean `2ab / (a + b)`, NaN when both are 0.
fn harmonic(a: f64, b: f64) -> f64 {
    ratio(2.0 * a * b, a + b)
}

/// Count as f64 (exact up to 2^53).
fn real(n: u64) -> f64 {
    n as f64
}

/// Statistics of distances over the voxels of a mask.
struct DistanceStats {
    mean: f64,
    mean_clipped: f64,
    max: f64,
    beyond_tolerance: u64,
}

impl DistanceStats {
    /// Statistics of `distances` over the voxels where `mask` is true (at least one).
    fn over(mask: &ArrayD<bool>, distances: &ArrayD<f64>, clip: f64, tol: f64) -> Self {
        let (mut n, mut sum, mut sum_clipped, mut max, mut beyond) = (0u64, 0.0, 0.0, 0.0, 0u64);
        for (_, &d) in mask.iter().zip(distances.iter()).filter(|(m, _)| **m) {
            n += 1;
            sum += d;
            sum_clipped += d.min(clip);
            max = f64::max(max, d);
            beyond += u64::from(d > tol);
        }
        DistanceStats {
            mean: ratio(sum, real(n)),
            mean_clipped: ratio(sum_clipped, real(n)),
            max,
            beyond_tolerance: beyond,
        }
    }
}

/// Distances to the voxels of `mask`, checked to have the mask's shape.
fn distances(mask: &ArrayD<bool>, spacing: &[f64]) -> Result<ArrayD<f64>, EvaluateError> {
    let d = distance_to_features(mask, spacing);
    if d.shape() != mask.shape() {
        return Err(EvaluateError::DistanceShape {
            expected: mask.shape().to_vec(),
            found: d.shape().to_vec(),
        });
    }
    Ok(d)
}

/// The 21 binary criteria (in `BINARY_METRICS` order) of one channel of equal-shape arrays.
fn binary_channel(
    test: &ArrayViewD<'_, u8>,
    truth: &ArrayViewD<'_, u8>,
    mask: Option<&ArrayViewD<'_, bool>>,
    spacing: &[f64],
    clip: f64,
    tol: f64,
) -> Result<[f64; 21], EvaluateError> {
    let known: Vec<bool> = match mask {
        Some(m) => m.iter().copied().collect(),
        None => Vec::new(),
    };
    let counted = |i: usize| known.is_empty() || known[i];
    let (mut n_p, mut n_t, mut n_tp, mut n_all) = (0u64, 0u64, 0u64, 0u64);
    for (i, (&p, &t)) in test.iter().zip(truth.iter()).enumerate() {
        if !counted(i) {
            continue;
        }
        let (p, t) = (p != 0, t != 0);
        n_all += 1;
        n_p += u64::from(p);
        n_t += u64::from(t);
        n_tp += u64::from(p && t);
    }
    let n = real(n_all);
    let (n_fp, n_fn) = (n_p - n_tp, n_t - n_tp);
    let n_union = n_p + n_fn;
    let n_negative = n - real(n_t);
    let (p, t, tp, fp, fn_) = (real(n_p), real(n_t), real(n_tp), real(n_fp), real(n_fn));

    let mut m = [f64::NAN; 21];
    m[0] = ratio(2.0 * tp, p + t);
    m[1] = ratio(tp, real(n_union));
    m[5] = ratio(fp, p);
    if n_p == 0 || n_t == 0 {
        m[2] = if n_p == 0 && n_t == 0 { 0.0 } else { f64::NAN };
        return Ok(m);
    }

    let test_mask = test.map(|&v| v != 0);
    let truth_mask = truth.map(|&v| v != 0);
    let to_truth = distances(&truth_mask, spacing)?;
    let to_test = distances(&test_mask, spacing)?;
    // Statistics over the scored voxels only.
    let scored = |m: &ArrayD<bool>| -> ArrayD<bool> {
        if known.is_empty() {
            m.clone()
        } else {
            let mut out = m.clone();
            for (v, k) in out.iter_mut().zip(&known) {
                *v = *v && *k;
            }
            out
        }
    };
    // Over test voxels, distances to truth (false positives); and the converse.
    let fp_d = DistanceStats::over(&scored(&test_mask), &to_truth, clip, tol);
    let fn_d = DistanceStats::over(&scored(&truth_mask), &to_test, clip, tol);

    let precision = tp / p;
    let recall = tp / t;
    let mut table = HashMap::new();
    for (key, count) in [
        ((1, 1), n_tp),
        ((1, 0), n_fp),
        ((0, 1), n_fn),
        ((0, 0), n_all - n_union),
    ] {
        if count > 0 {
            table.insert(key, count);
        }
    }
    let (split, merge) = split_merge(&table);

    let fp_tol = real(fp_d.beyond_tolerance);
    let fn_tol = real(fn_d.beyond_tolerance);
    let tp_tol = real(n_union) - fn_tol - fp_tol;
    let precision_tol = ratio(tp_tol, tp_tol + fp_tol);
    let recall_tol = ratio(tp_tol, tp_tol + fn_tol);

    m[2] = fp_d.max.max(fn_d.max);
    m[3] = fn_ / t;
    m[4] = ratio(fp, n_negative);
    m[6] = precision;
    m[7] = recall;
    m[8] = harmonic(precision, recall);
    m[9] = split + merge;
    m[10] = fp_d.mean;
    m[11] = fn_d.mean;
    m[12] = 0.5 * (fp_d.mean + fn_d.mean);
    m[13] = fp_d.mean_clipped;
    m[14] = fn_d.mean_clipped;
    m[15] = 0.5 * (fp_d.mean_clipped + fn_d.mean_clipped);
    m[16] = ratio(fp_tol, n_negative);
    m[17] = fn_tol / t;
    m[18] = precision_tol;
    m[19] = recall_tol;
    m[20] = harmonic(precision_tol, recall_tol);
    Ok(m)
}

/// Binary-segmentation criteria (`BINARY_METRICS`) of `test` against `truth` (non-zero is
/// foreground). Spatial-only arrays give plain names (`channels` may hold at most one name);
/// arrays with a leading channel axis give `<channel>__<metric>`, channel-major.
pub fn binary_segmentation(
    test: &ArrayD<u8>,
    truth: &ArrayD<u8>,
    spacing: &[f64],
    channels: &[String],
    clip_distance: f64,
    tol_distance: f64,
) -> Result<Scores, EvaluateError> {
    binary_segmentation_masked(
        test,
        truth,
        None,
        spacing,
        channels,
        clip_distance,
        tol_distance,
    )
}

/// [`binary_segmentation`] where only the voxels a `mask` marks are scored (the ground truth
/// is known there): counts, rates and distance statistics cover those voxels only
/// (distances are still measured to every foreground voxel). The mask has the arrays' shape,
/// or their spatial shape (one mask for every channel, also with a leading axis of 1).
pub fn binary_segmentation_masked(
    test: &ArrayD<u8>,
    truth: &ArrayD<u8>,
    mask: Option<&ArrayD<bool>>,
    spacing: &[f64],
    channels: &[String],
    clip_distance: f64,
    tol_distance: f64,
) -> Result<Scores, EvaluateError> {
    if test.shape() != truth.shape() {
        return Err(EvaluateError::ShapeMismatch {
            test: test.shape().to_vec(),
            truth: truth.shape().to_vec(),
        });
    }
    if spacing.is_empty() || spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(EvaluateError::InvalidSpacing(spacing.to_vec()));
    }
    for (name, value) in [
        ("clip_distance", clip_distance),
        ("tol_distance", tol_distance),
    ] {
        if value.is_nan() || value < 0.0 {
            return Err(EvaluateError::InvalidDistance { name, value });
        }
    }
    let shape = test.shape().to_vec();
    let channel_count_error = |channels_found: usize| EvaluateError::ChannelCount {
        names: channels.to_vec(),
        shape: shape.clone(),
        channels: channels_found,
    };
    let spatial = &shape[shape.len().saturating_sub(spacing.len())..];
    // The mask of channel `c` (or of every channel).
    let mask_of =
        |c: Option<usize>| -> Result<Option<ndarray::ArrayViewD<'_, bool>>, EvaluateError> {
            let Some(m) = mask else { return Ok(None) };
            let view = if m.shape() == shape.as_slice() {
                match c {
                    Some(c) => m.index_axis(Axis(0), c),
                    None => m.view(),
                }
            } else if m.shape() == spatial {
                m.view()
            } else if m.ndim() == spatial.len() + 1
                && m.shape()[0] == 1
                && &m.shape()[1..] == spatial
            {
                m.index_axis(Axis(0), 0)
            } else {
                return Err(EvaluateError::ShapeMismatch {
                    test: shape.clone(),
                    truth: m.shape().to_vec(),
                });
            };
            Ok(Some(view))
        };
    let mut scores = Scores::default();
    if test.ndim() == spacing.len() {
        if channels.len() > 1 {
            return Err(channel_count_error(1));
        }
        let values = binary_channel(
            &test.view(),
            &truth.view(),
            mask_of(None)?.as_ref(),
            spacing,
            clip_distance,
            tol_distance,
        )?;
        scores.criteria = BINARY_METRICS.iter().map(|m| m.to_string()).collect();
        scores.values = values.to_vec();
    } else if test.ndim() == spacing.len() + 1 {
        let count = test.len_of(Axis(0));
        if channels.len() != count {
            return Err(channel_count_error(count));
        }
        check_unique("channel", channels)?;
        for (c, name) in channels.iter().enumerate() {
            let values = binary_channel(
                &test.index_axis(Axis(0), c),
                &truth.index_axis(Axis(0), c),
                mask_of(Some(c))?.as_ref(),
                spacing,
                clip_distance,
                tol_distance,
            )?;
            scores
                .criteria
                .extend(BINARY_METRICS.iter().map(|m| format!("{name}__{m}")));
            scores.values.extend(values);
        }
    } else {
        return Err(EvaluateError::DimensionMismatch {
            shape,
            spacing: spacing.to_vec(),
        });
    }
    Ok(scores)
}

/// Conditional entropies (H(X|Y), H(Y|X)) in bits of a contingency table keyed by (x, y).
fn split_merge(table: &HashMap<(u64, u64), u64>) -> (f64, f64) {
    let mut x_counts: HashMap<u64, u64> = HashMap::new();
    let mut y_counts: HashMap<u64, u64> = HashMap::new();
    let mut total = 0u64;
    for (&(x, y), &n) in table {
        *x_counts.entry(x).or_default() += n;
        *y_counts.entry(y).or_default() += n;
        total += n;
    }
    if total == 0 {
        return (f64::NAN, f64::NAN);
    }
    // Sum in key order so the result does not depend on hash order.
    let mut entries: Vec<_> = table.iter().filter(|(_, &n)| n > 0).collect();
    entries.sort_unstable_by_key(|(&key, _)| key);
    let total = real(total);
    let (mut split, mut merge) = (0.0, 0.0);
    for (&(x, y), &n) in entries {
        let n_xy = real(n);
        let n_x = real(x_counts.get(&x).copied().unwrap_or(n));
        let n_y = real(y_counts.get(&y).copied().unwrap_or(n));
        let p_xy = n_xy / total;
        // -p log2(p_xy / p_y) = p log2(n_y / n_xy) >= 0.
        split += p_xy * (n_y / n_xy).log2();
        merge += p_xy * (n_x / n_xy).log2();
    }
    (split, merge)
}

/// Variation of information (split, merge) = (H(test|truth), H(truth|test)) in bits over all
/// voxels; every label, 0 included, is an ordinary segment. NaN for arrays without voxels.
pub fn variation_of_information(
    test: &ArrayD<u64>,
    truth: &ArrayD<u64>,
) -> Result<(f64, f64), EvaluateError> {
    if test.shape() != truth.shape() {
        return Err(EvaluateError::ShapeMismatch {
            test: test.shape().to_vec(),
            truth: truth.shape().to_vec(),
        });
    }
    let mut table: HashMap<(u64, u64), u64> = HashMap::new();
    // Neighbouring voxels mostly share a label pair: count runs before touching the map.
    let mut run: Option<((u64, u64), u64)> = None;
    for key in test.iter().copied().zip(truth.iter().copied()) {
        match &mut run {
            Some((k, n)) if *k == key => *n += 1,
            _ => {
                if let Some((k, n)) = run.replace((key, 1)) {
                    *table.entry(k).or_default() += n;
                }
            }
        }
    }
    if let Some((k, n)) = run {
        *table.entry(k).or_default() += n;
    }
    Ok(split_merge(&table))
}

/// Instance criteria `voi_split`, `voi_merge`, `voi` (their mean) of label arrays.
pub fn instance(test: &ArrayD<u64>, truth: &ArrayD<u64>) -> Result<Scores, EvaluateError> {
    instance_masked(test, truth, None)
}

/// [`instance`] over the voxels `mask` marks (same shape as the arrays) only.
pub fn instance_masked(
    test: &ArrayD<u64>,
    truth: &ArrayD<u64>,
    mask: Option<&ArrayD<bool>>,
) -> Result<Scores, EvaluateError> {
    let (split, merge) = match mask {
        None => variation_of_information(test, truth)?,
        Some(m) => {
            if m.shape() != test.shape() {
                return Err(EvaluateError::ShapeMismatch {
                    test: test.shape().to_vec(),
                    truth: m.shape().to_vec(),
                });
            }
            // The scored voxels only, as flat arrays.
            let pick = |a: &ArrayD<u64>| -> ArrayD<u64> {
                let v: Vec<u64> = a
                    .iter()
                    .zip(m.iter())
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect();
                ArrayD::from_shape_vec(ndarray::IxDyn(&[v.len()]), v)
                    .unwrap_or_else(|_| ArrayD::zeros(ndarray::IxDyn(&[0])))
            };
            variation_of_information(&pick(test), &pick(truth))?
        }
    };
    Ok(Scores {
        criteria: ["voi_split", "voi_merge", "voi"]
            .iter()
            .map(|c| c.to_string())
            .collect(),
        values: vec![split, merge, 0.5 * (split + merge)],
    })
}

/// One step of the SplitMix64 generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Dummy criteria `frizz_level` and `blipp_score`, deterministic in `seed`, each in [0, 1).
pub fn dummy(seed: u64) -> Scores {
    let mut state = seed;
    // The top 53 bits over 2^53: exactly representable and below 1.
    let mut unit = || (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
    let frizz = unit();
    let blipp = unit();
    Scores {
        criteria: vec!["frizz_level".to_string(), "blipp_score".to_string()],
        values: vec![frizz, blipp],
    }
}

/// Error if `names` has a repeated entry.
fn check_unique(kind: &'static str, names: &[String]) -> Result<(), EvaluateError> {
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
    criteria: Vec<String>,
    /// Post-processing parameter-set names, in block order.
    parameters: Vec<String>,
    /// Validation dataset names, in block order.
    datasets: Vec<String>,
    /// Blocks by iteration, in ascending iteration order.
    iterations: Vec<(u64, ScoreBlock)>,
    /// Datasets that failed to validate, by iteration: dataset → error.
    failures: std::collections::BTreeMap<u64, std::collections::BTreeMap<String, String>>,
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
    fn dataset_criterion(&self, dataset: &str, criterion: &str) -> Option<(usize, usize)> {
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
fn cell(block: &ScoreBlock, d: usize, p: usize, c: usize) -> Option<f64> {
    block.get(d)?.get(p)?.get(c).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    const L3: f64 = 1.584_962_500_721_156_2; // log2(3)

    fn u8s(shape: &[usize], values: Vec<u8>) -> ArrayD<u8> {
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape fits values")
    }

    fn u64s(values: &[u64]) -> ArrayD<u64> {
        ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).expect("1-D")
    }

    /// A 1-D mask of length `n` that is 1 on `on`.
    fn line(n: usize, on: std::ops::Range<usize>) -> Vec<u8> {
        (0..n).map(|i| u8::from(on.contains(&i))).collect()
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        if expected.is_nan() {
            assert!(actual.is_nan(), "{what}: expected NaN, got {actual}");
        } else {
            let tol = 1e-12 * expected.abs().max(1.0);
            assert!(
                (actual - expected).abs() <= tol,
                "{what}: expected {expected}, got {actual}"
            );
        }
    }

    /// Compares all 21 binary criteria of a single-channel evaluation.
    fn assert_binary(scores: &Scores, expected: [f64; 21]) {
        assert_eq!(scores.criteria, BINARY_METRICS.map(String::from).to_vec());
        for ((name, &actual), expected) in BINARY_METRICS.iter().zip(&scores.values).zip(expected) {
            assert_close(actual, expected, name);
        }
    }

    fn binary(
        shape: &[usize],
        test: Vec<u8>,
        truth: Vec<u8>,
        spacing: &[f64],
        clip: f64,
        tol: f64,
    ) -> Scores {
        binary_segmentation(
            &u8s(shape, test),
            &u8s(shape, truth),
            spacing,
            &[],
            clip,
            tol,
        )
        .expect("valid inputs")
    }

    #[test]
    fn line_1x1x10_all_metrics() {
        // T = x 2..6 = {2,3,4,5}, P = x 4..8 = {4,5,6,7}, spacing (1, 1, 4): x steps are 4 nm.
        // #T = #P = 4, TP = {4,5} = 2, FP = {6,7} = 2, FN = {2,3} = 2, union 6, N_T = 10-4 = 6.
        // EDT_T over P: 0, 0, 4, 8; EDT_P over T: 8 (2->4), 4 (3->4), 0, 0.
        // VOI: table (test,truth) (1,1)=2 (1,0)=2 (0,1)=2 (0,0)=4, marginals 4/6 on both sides:
        // split = .2·log2(4/2) + .2·log2(6/2) + .2·log2(4/2) + .4·log2(6/4)
        //       = .4 + .2·L3 + .4·(L3-1) = .6·L3; merge likewise .6·L3; voi = 1.2·L3.
        // clip 5: P -> (0+0+4+5)/4 = 2.25, T -> (5+4+0+0)/4 = 2.25.
        // tol 4: FP_tol = #{8} = 1, FN_tol = #{8} = 1, TP_tol = 6-1-1 = 4 -> P = R = 4/5.
        let s = binary(
            &[1, 1, 10],
            line(10, 4..8),
            line(10, 2..6),
            &[1.0, 1.0, 4.0],
            5.0,
            4.0,
        );
        assert_binary(
            &s,
            [
                0.5,       // dice 2·2/(4+4)
                1.0 / 3.0, // jaccard 2/6
                8.0,       // hausdorff max(8, 8)
                0.5,       // FNR 2/4
                1.0 / 3.0, // FPR 2/6
                0.5,       // FDR 2/4
                0.5,       // precision 2/4
                0.5,       // recall 2/4
                0.5,       // f1
                1.2 * L3,  // voi
                3.0,       // mean FP distance (0+0+4+8)/4
                3.0,       // mean FN distance (8+4+0+0)/4
                3.0,       // mean false distance
                2.25,      // clipped FP
                2.25,      // clipped FN
                2.25,      // clipped mean
                1.0 / 6.0, // FPR with tolerance 1/6
                0.25,      // FNR with tolerance 1/4
                0.8,       // precision with tolerance 4/5
                0.8,       // recall with tolerance 4/5
                0.8,       // f1 with tolerance
            ],
        );
        // The x spacing is what scales the distances: with 1 nm voxels the Hausdorff is 2.
        let iso = binary(
            &[1, 1, 10],
            line(10, 4..8),
            line(10, 2..6),
            &[1.0, 1.0, 1.0],
            5.0,
            4.0,
        );
        assert_close(
            iso.get("hausdorff").unwrap_or(f64::NAN),
            2.0,
            "isotropic hausdorff",
        );
        assert_close(
            iso.get("mean_false_distance").unwrap_or(f64::NAN),
            0.75,
            "iso mean",
        );
        // Binary voi agrees with the general VOI on the 0/1 labelings.
        let to64 = |v: Vec<u8>| u64s(&v.into_iter().map(u64::from).collect::<Vec<_>>());
        let (split, merge) =
            variation_of_information(&to64(line(10, 4..8)), &to64(line(10, 2..6))).expect("1-D");
        assert_close(split, 0.6 * L3, "split");
        assert_close(merge, 0.6 * L3, "merge");
    }

    #[test]
    fn one_dimensional_truth_covers_everything() {
        // 1-D, spacing 2 nm: T = {0,1,2} (all voxels, so N_T = 0), P = {0}.
        // TP = 1, FP = 0, FN = 2, union 3. EDT_T over P: 0; EDT_P over T: 0, 2, 4.
        // VOI: (1,1)=1, (0,1)=2; split = 1/3·log2 3 + 2/3·log2(3/2) = L3 - 2/3; merge = 0.
        // clip 3: T -> (0+2+3)/3 = 5/3. tol 2: FN_tol = #{4} = 1, FP_tol = 0, TP_tol = 3-1 = 2.
        let s = binary(&[3], vec![1, 0, 0], vec![1, 1, 1], &[2.0], 3.0, 2.0);
        assert_binary(
            &s,
            [
                0.5,            // dice 2/(1+3)
                1.0 / 3.0,      // jaccard 1/3
                4.0,            // hausdorff max(0, 4)
                2.0 / 3.0,      // FNR 2/3
                f64::NAN,       // FPR: N_T = 0
                0.0,            // FDR 0/1
                1.0,            // precision 1/1
                1.0 / 3.0,      // recall 1/3
                0.5,            // f1 2·(1/3)/(4/3)
                L3 - 2.0 / 3.0, // voi (= binary entropy of 1/3)
                0.0,            // mean FP distance
                2.0,            // mean FN distance (0+2+4)/3
                1.0,            // mean false distance
                0.0,            // clipped FP
                5.0 / 3.0,      // clipped FN
                5.0 / 6.0,      // clipped mean
                f64::NAN,       // FPR with tolerance: N_T = 0
                1.0 / 3.0,      // FNR with tolerance 1/3
                1.0,            // precision with tolerance 2/2
                2.0 / 3.0,      // recall with tolerance 2/3
                0.8,            // f1 with tolerance 2·(2/3)/(5/3)
            ],
        );
    }

    #[test]
    fn two_dimensional_anisotropic_row_and_column() {
        // 3×3, spacing (y 2, x 1). T = row 0, P = column 0; TP = {(0,0)}, FP = FN = 2,
        // union 5, N_T = 6. EDT_T over P: 0, 2, 4 (rows are 2 nm apart); EDT_P over T: 0, 1, 2.
        // VOI: (1,1)=1 (1,0)=2 (0,1)=2 (0,0)=4, marginals 3/6 on both sides:
        // split = 1/9·log2 3 + 2/9·log2 3 + 2/9·log2(3/2) + 4/9·log2(3/2) = L3 - 2/3 = merge.
        // clip 1.5: P -> (0+1.5+1.5)/3 = 1, T -> (0+1+1.5)/3 = 5/6.
        // tol 1: FP_tol = #{2,4} = 2, FN_tol = #{2} = 1, TP_tol = 5-1-2 = 2: P 2/4, R 2/3.
        let row = vec![1, 1, 1, 0, 0, 0, 0, 0, 0];
        let column = vec![1, 0, 0, 1, 0, 0, 1, 0, 0];
        let s = binary(&[3, 3], column.clone(), row.clone(), &[2.0, 1.0], 1.5, 1.0);
        assert_binary(
            &s,
            [
                1.0 / 3.0,            // dice 2/6
                0.2,                  // jaccard 1/5
                4.0,                  // hausdorff max(4, 2)
                2.0 / 3.0,            // FNR 2/3
                1.0 / 3.0,            // FPR 2/6
                2.0 / 3.0,            // FDR 2/3
                1.0 / 3.0,            // precision
                1.0 / 3.0,            // recall
                1.0 / 3.0,            // f1
                2.0 * L3 - 4.0 / 3.0, // voi
                2.0,                  // mean FP distance (0+2+4)/3
                1.0,                  // mean FN distance (0+1+2)/3
                1.5,                  // mean false distance
                1.0,                  // clipped FP
                5.0 / 6.0,            // clipped FN
                11.0 / 12.0,          // clipped mean
                1.0 / 3.0,            // FPR with tolerance 2/6
                1.0 / 3.0,            // FNR with tolerance 1/3
                0.5,                  // precision with tolerance 2/4
                2.0 / 3.0,            // recall with tolerance 2/3
                4.0 / 7.0,            // f1 with tolerance 2·(1/2·2/3)/(7/6)
            ],
        );
        // Swapping the axis sizes swaps which side is far: mean FP 1, mean FN 2.
        let swapped = binary(&[3, 3], column, row, &[1.0, 2.0], 1.5, 1.0);
        assert_close(swapped.values[10], 1.0, "swapped mean FP");
        assert_close(swapped.values[11], 2.0, "swapped mean FN");
    }

    #[test]
    fn three_dimensional_anisotropic_disjoint_points() {
        // Shape (2,1,3), spacing (z 3, y 1, x 2): T = {(0,0,0)}, P = {(1,0,2)}.
        // Distance sqrt((1·3)² + (2·2)²) = 5. TP = 0, FP = FN = 1, union 2, N_T = 5, n = 6.
        // VOI: (1,0)=1 (0,1)=1 (0,0)=4, marginals 1/5 on both sides:
        // split = 1/6·log2 5 + 1/6·log2 1 + 4/6·log2(5/4) = merge.
        let mut truth = vec![0; 6];
        truth[0] = 1;
        let mut test = vec![0; 6];
        test[5] = 1;
        let voi = 2.0 * (5f64.log2() / 6.0 + 2.0 / 3.0 * 1.25f64.log2());
        // tol 5 (not exceeded, 5 > 5 is false): FP_tol = FN_tol = 0, TP_tol = 2.
        let s = binary(
            &[2, 1, 3],
            test.clone(),
            truth.clone(),
            &[3.0, 1.0, 2.0],
            3.0,
            5.0,
        );
        assert_binary(
            &s,
            [
                0.0,      // dice
                0.0,      // jaccard
                5.0,      // hausdorff
                1.0,      // FNR 1/1
                0.2,      // FPR 1/5
                1.0,      // FDR 1/1
                0.0,      // precision
                0.0,      // recall
                f64::NAN, // f1: precision = recall = 0
                voi,      // voi
                5.0,      // mean FP distance
                5.0,      // mean FN distance
                5.0,      // mean false distance
                3.0,      // clipped FP min(5, 3)
                3.0,      // clipped FN
                3.0,      // clipped mean
                0.0,      // FPR with tolerance 0/5
                0.0,      // FNR with tolerance 0/1
                1.0,      // precision with tolerance 2/2
                1.0,      // recall with tolerance 2/2
                1.0,      // f1 with tolerance
            ],
        );
        // tol 4.9: FP_tol = FN_tol = 1, TP_tol = 2-1-1 = 0.
        let s = binary(
            &[2, 1, 3],
            test.clone(),
            truth.clone(),
            &[3.0, 1.0, 2.0],
            3.0,
            4.9,
        );
        assert_close(s.values[16], 0.2, "FPR tol 1/5");
        assert_close(s.values[17], 1.0, "FNR tol 1/1");
        assert_close(s.values[18], 0.0, "precision tol");
        assert_close(s.values[19], 0.0, "recall tol");
        assert!(s.values[20].is_nan(), "f1 tol with P = R = 0");
        // The per-axis voxel sizes matter: (z 2, y 1, x 3) gives sqrt(2² + 6²) = sqrt 40.
        let s = binary(&[2, 1, 3], test, truth, &[2.0, 1.0, 3.0], 3.0, 5.0);
        assert_close(s.values[2], 40f64.sqrt(), "hausdorff with other spacing");
    }

    #[test]
    fn empty_masks() {
        let nan = f64::NAN;
        // Both empty: dice and jaccard 0/0, Hausdorff 0, everything else NaN.
        let s = binary(&[4], vec![0; 4], vec![0; 4], &[1.0], 1.0, 1.0);
        let mut expected = [nan; 21];
        expected[2] = 0.0;
        assert_binary(&s, expected);
        // No voxels at all behaves the same.
        let s = binary(&[0], vec![], vec![], &[1.0], 1.0, 1.0);
        assert_binary(&s, expected);
        // Only truth: dice 0/(0+1), jaccard 0/1, Hausdorff undefined, FDR 0/0.
        let s = binary(&[4], vec![0; 4], vec![0, 1, 0, 0], &[1.0], 1.0, 1.0);
        let mut expected = [nan; 21];
        expected[0] = 0.0;
        expected[1] = 0.0;
        assert_binary(&s, expected);
        // Only test: as above but FDR = 1/1.
        let s = binary(&[4], vec![0, 1, 0, 0], vec![0; 4], &[1.0], 1.0, 1.0);
        expected[5] = 1.0;
        assert_binary(&s, expected);
    }

    #[test]
    fn two_channels_named_channel_major() {
        // Shape (2 channels, 1, 4), spacing (1, 1). "mito": identical {0,1}; "er": T {0}, P {3}.
        let test = u8s(&[2, 1, 4], vec![1, 1, 0, 0, 0, 0, 0, 1]);
        let truth = u8s(&[2, 1, 4], vec![1, 1, 0, 0, 1, 0, 0, 0]);
        let names = vec!["mito".to_string(), "er".to_string()];
        let s = binary_segmentation(&test, &truth, &[1.0, 1.0], &names, 2.0, 1.0).expect("valid");
        assert_eq!(s.criteria.len(), 42);
        assert_eq!(s.values.len(), 42);
        assert_eq!(s.criteria[0], "mito__dice");
        assert_eq!(s.criteria[1], "mito__jaccard");
        assert_eq!(s.criteria[20], "mito__f1_score_with_tolerance");
        assert_eq!(s.criteria[21], "er__dice");
        assert_eq!(s.criteria[41], "er__f1_score_with_tolerance");
        let get = |name: &str| s.get(name).unwrap_or(f64::NAN);
        assert_close(get("mito__dice"), 1.0, "mito dice");
        assert_close(get("mito__hausdorff"), 0.0, "mito hausdorff");
        assert_close(get("mito__voi"), 0.0, "mito voi");
        assert_close(get("er__dice"), 0.0, "er dice");
        assert_close(get("er__hausdorff"), 3.0, "er hausdorff: x 0 to x 3");
        // Channel 1 matches its own single-channel evaluation.
        let alone = binary(
            &[1, 4],
            vec![0, 0, 0, 1],
            vec![1, 0, 0, 0],
            &[1.0, 1.0],
            2.0,
            1.0,
        );
        for (a, b) in alone.values.iter().zip(&s.values[21..]) {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
        }
    }

    #[test]
    fn binary_input_errors() {
        let a = u8s(&[2, 1, 4], vec![0; 8]);
        let one = vec!["mito".to_string()];
        let err = binary_segmentation(&a, &a, &[1.0, 1.0], &one, 1.0, 1.0).unwrap_err();
        assert!(matches!(
            err,
            EvaluateError::ChannelCount { channels: 2, .. }
        ));
        assert!(err.to_string().contains("[2, 1, 4]"), "{err}");
        let two = vec!["mito".to_string(), "er".to_string()];
        let err = binary_segmentation(&a, &a, &[1.0, 1.0, 1.0], &two, 1.0, 1.0).unwrap_err();
        assert!(matches!(
            err,
            EvaluateError::ChannelCount { channels: 1, .. }
        ));
        let same = vec!["mito".to_string(), "mito".to_string()];
        let err = binary_segmentation(&a, &a, &[1.0, 1.0], &same, 1.0, 1.0).unwrap_err();
        assert!(matches!(
            err,
            EvaluateError::DuplicateName {
                kind: "channel",
                ..
            }
        ));
        let b = u8s(&[2, 4], vec![0; 8]);
        let err = binary_segmentation(&a, &b, &[1.0, 1.0], &two, 1.0, 1.0).unwrap_err();
        assert!(err.to_string().contains("[2, 1, 4]") && err.to_string().contains("[2, 4]"));
        let err = binary_segmentation(&a, &a, &[1.0], &two, 1.0, 1.0).unwrap_err();
        assert!(
            matches!(err, EvaluateError::DimensionMismatch { .. }),
            "{err}"
        );
        for spacing in [
            vec![],
            vec![1.0, 0.0],
            vec![f64::NAN, 1.0],
            vec![1.0, f64::INFINITY],
        ] {
            let err = binary_segmentation(&a, &a, &spacing, &two, 1.0, 1.0).unwrap_err();
            assert!(matches!(err, EvaluateError::InvalidSpacing(_)), "{err}");
        }
        let err = binary_segmentation(&a, &a, &[1.0, 1.0], &two, -1.0, 1.0).unwrap_err();
        assert!(matches!(
            err,
            EvaluateError::InvalidDistance {
                name: "clip_distance",
                ..
            }
        ));
        let err = binary_segmentation(&a, &a, &[1.0, 1.0], &two, 1.0, f64::NAN).unwrap_err();
        assert!(matches!(
            err,
            EvaluateError::InvalidDistance {
                name: "tol_distance",
                ..
            }
        ));
    }

    #[test]
    fn voi_identical_and_relabelled_is_zero() {
        let truth = u64s(&[1, 1, 2, 2, 3]);
        assert_eq!(variation_of_information(&truth, &truth), Ok((0.0, 0.0)));
        let relabelled = u64s(&[5, 5, 7, 7, 0]);
        assert_eq!(
            variation_of_information(&relabelled, &truth),
            Ok((0.0, 0.0))
        );
    }

    #[test]
    fn voi_split_and_merge_of_halved_object() {
        // Truth object 1 (half the voxels) is split into two halves by the test labels:
        // split = H(test|truth) = 1 bit × 1/2 of the voxels = 0.5; merge = 0.
        let truth = u64s(&[1, 1, 1, 1, 2, 2, 2, 2]);
        let test = u64s(&[1, 1, 3, 3, 2, 2, 2, 2]);
        let (split, merge) = variation_of_information(&test, &truth).expect("same shape");
        assert_close(split, 0.5, "split");
        assert_close(merge, 0.0, "merge");
        // Exchanging the roles turns the split into a merge.
        let (split, merge) = variation_of_information(&truth, &test).expect("same shape");
        assert_close(split, 0.0, "split");
        assert_close(merge, 0.5, "merge");
    }

    #[test]
    fn voi_label_zero_is_ordinary() {
        // Test is all 0, truth has 0 and 1 half each: merge = H(truth|test) = 1 bit, split = 0.
        let (split, merge) =
            variation_of_information(&u64s(&[0, 0, 0, 0]), &u64s(&[0, 0, 1, 1])).expect("1-D");
        assert_close(split, 0.0, "split");
        assert_close(merge, 1.0, "merge");
    }

    #[test]
    fn voi_edge_cases() {
        let err = variation_of_information(&u64s(&[1, 2]), &u64s(&[1])).unwrap_err();
        assert!(
            err.to_string().contains("[2]") && err.to_string().contains("[1]"),
            "{err}"
        );
        let (split, merge) = variation_of_information(&u64s(&[]), &u64s(&[])).expect("same");
        assert!(split.is_nan() && merge.is_nan());
        // Large labels (no +1 shift, so no overflow).
        let big = u64s(&[u64::MAX, u64::MAX, 0]);
        assert_eq!(variation_of_information(&big, &big), Ok((0.0, 0.0)));
    }

    #[test]
    fn instance_voi_is_the_average() {
        // Truth [1,1,2,2], test [1,2,2,2]: table (test,truth) (1,1)=1 (2,1)=1 (2,2)=2.
        // split = H(test|truth) = 1/4·log2(2/1) + 1/4·log2(2/1) + 2/4·log2(2/2) = 0.5.
        // merge = H(truth|test) = 1/4·log2(1/1) + 1/4·log2(3/1) + 2/4·log2(3/2)
        //       = 0.75·L3 - 0.5.
        // voi = (0.5 + 0.75·L3 - 0.5) / 2 = 0.375·L3.
        let s = instance(&u64s(&[1, 2, 2, 2]), &u64s(&[1, 1, 2, 2])).expect("same shape");
        assert_eq!(s.criteria, vec!["voi_split", "voi_merge", "voi"]);
        assert_close(s.values[0], 0.5, "voi_split");
        assert_close(s.values[1], 0.75 * L3 - 0.5, "voi_merge");
        assert_close(s.values[2], 0.375 * L3, "voi");
        assert!(instance(&u64s(&[1]), &u64s(&[1, 2])).is_err());
    }

    #[test]
    fn dummy_is_deterministic_and_in_unit_interval() {
        let a = dummy(42);
        assert_eq!(a, dummy(42));
        assert_eq!(a.criteria, vec!["frizz_level", "blipp_score"]);
        assert_ne!(a.values, dummy(43).values);
        assert_ne!(a.values[0], a.values[1]);
        for seed in [0, 1, 42, u64::MAX] {
            for v in dummy(seed).values {
                assert!((0.0..1.0).contains(&v), "{v}");
            }
        }
    }

    #[test]
    fn criterion_metadata() {
        let f1 = criterion_info("mito__f1_score").expect("known");
        assert_eq!(
            f1,
            CriterionInfo {
                name: "mito__f1_score".to_string(),
                higher_is_better: true,
                bounds: (0.0, Some(1.0)),
                store_best: true,
            }
        );
        let h = criterion_info("hausdorff").expect("known");
        assert!(!h.higher_is_better && !h.store_best);
        assert_eq!(h.bounds, (0.0, None));
        let d = criterion_info("er__mean_false_distance_clipped").expect("known");
        assert_eq!(d.bounds, (0.0, None));
        assert!(!d.higher_is_better);
        for name in ["voi", "a__voi", "voi_split", "voi_merge", "blipp_score"] {
            let i = criterion_info(name).expect("known");
            assert!(!i.higher_is_better && i.store_best, "{name}");
        }
        let frizz = criterion_info("frizz_level").expect("known");
        assert!(frizz.higher_is_better && frizz.store_best);
        for name in [
            "precision_with_tolerance",
            "recall",
            "f1_score_with_tolerance",
            "jaccard",
        ] {
            let i = criterion_info(name).expect("known");
            assert!(i.higher_is_better && !i.store_best, "{name}");
        }
        for name in ["false_positive_rate_with_tolerance", "false_discovery_rate"] {
            let i = criterion_info(name).expect("known");
            assert!(!i.higher_is_better && !i.store_best && i.bounds == (0.0, Some(1.0)));
        }
        // Every binary metric is known; only voi and f1_score keep a best.
        let stored: Vec<&str> = BINARY_METRICS
            .iter()
            .copied()
            .filter(|m| criterion_info(m).expect("known").store_best)
            .collect();
        assert_eq!(stored, vec!["f1_score", "voi"]);
        assert_eq!(
            criterion_info("a__b__dice").map(|i| i.higher_is_better),
            Some(true)
        );
        assert_eq!(criterion_info("nonsense"), None);
        assert_eq!(criterion_info("mito__"), None);
        assert!(h.is_better(1.0, 2.0) && !f1.is_better(1.0, 2.0) && !f1.is_better(f64::NAN, 0.0));
    }

    const NAN: f64 = f64::NAN;

    fn store() -> ValidationScores {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ValidationScores::new(
            names(&["dice", "voi", "f1_score"]),
            names(&["t0.5", "t0.7"]),
            names(&["crop1", "crop2"]),
        )
        .expect("valid names")
    }

    /// A block for `store()`: NaN except the given `(dataset, parameter, criterion)` cells.
    fn block(cells: &[((usize, usize, usize), f64)]) -> ScoreBlock {
        let mut b = vec![vec![vec![NAN; 3]; 2]; 2];
        for &((d, p, c), v) in cells {
            b[d][p][c] = v;
        }
        b
    }

    #[test]
    fn best_iteration_skips_nan_and_follows_direction() {
        let mut s = store();
        // (crop1, t0.5): dice NaN, .7, .9, NaN; voi .5, NaN, .2, .3; f1 .8, .8, .6, NaN.
        for (it, dice, voi, f1) in [
            (300, 0.9, 0.2, 0.6),
            (100, NAN, 0.5, 0.8),
            (400, NAN, 0.3, NAN),
            (200, 0.7, NAN, 0.8),
        ] {
            let b = block(&[((0, 0, 0), dice), ((0, 0, 1), voi), ((0, 0, 2), f1)]);
            s.add_iteration(it, b).expect("shape fits");
        }
        assert_eq!(s.iterations().collect::<Vec<_>>(), vec![100, 200, 300, 400]);
        assert_eq!(s.best_iteration("crop1", "t0.5", "dice"), Some((300, 0.9)));
        assert_eq!(s.best_iteration("crop1", "t0.5", "voi"), Some((300, 0.2)));
        // Tie at 0.8 between 100 and 200: the earliest wins (even though 200 came later).
        assert_eq!(
            s.best_iteration("crop1", "t0.5", "f1_score"),
            Some((100, 0.8))
        );
        // All NaN, or unknown names: nothing.
        assert_eq!(s.best_iteration("crop1", "t0.7", "dice"), None);
        assert_eq!(s.best_iteration("crop3", "t0.5", "dice"), None);
        assert_eq!(s.best_iteration("crop1", "t0.9", "dice"), None);
        assert_eq!(s.best_iteration("crop1", "t0.5", "hausdorff"), None);
        assert_eq!(s.value(200, "crop1", "t0.5", "dice"), Some(0.7));
        assert_eq!(s.value(250, "crop1", "t0.5", "dice"), None);
        // Replacing iteration 200 with a better dice.
        s.add_iteration(200, block(&[((0, 0, 0), 0.95)]))
            .expect("shape fits");
        assert_eq!(s.iterations().count(), 4);
        assert_eq!(s.best_iteration("crop1", "t0.5", "dice"), Some((200, 0.95)));
        assert_eq!(
            s.best_iteration("crop1", "t0.5", "f1_score"),
            Some((100, 0.8))
        );
    }

    #[test]
    fn overall_best_across_parameters() {
        let mut s = store();
        // crop1 f1: t0.5 [.5, .6], t0.7 [.7, NaN] -> (100, t0.7, .7).
        // crop2 voi: t0.5 [.3, .2], t0.7 [.2, .4] -> tie at .2, iteration 100 comes first.
        s.add_iteration(
            100,
            block(&[
                ((0, 0, 2), 0.5),
                ((0, 1, 2), 0.7),
                ((1, 0, 1), 0.3),
                ((1, 1, 1), 0.2),
            ]),
        )
        .expect("shape fits");
        s.add_iteration(
            200,
            block(&[
                ((0, 0, 2), 0.6),
                ((0, 1, 2), NAN),
                ((1, 0, 1), 0.2),
                ((1, 1, 1), 0.4),
            ]),
        )
        .expect("shape fits");
        assert_eq!(s.overall_best("crop1", "f1_score"), Some((100, 1, 0.7)));
        assert_eq!(s.overall_best("crop2", "voi"), Some((100, 1, 0.2)));
        assert_eq!(s.overall_best("crop2", "dice"), None);
        assert_eq!(s.overall_best("crop9", "voi"), None);
        // Table: every dataset × store_best criterion (voi, f1_score), dataset-major.
        let table = s.best_table();
        let entry = |dataset: &str, criterion: &str, best| BestEntry {
            dataset: dataset.to_string(),
            criterion: criterion.to_string(),
            best,
        };
        assert_eq!(
            table,
            vec![
                entry("crop1", "voi", None),
                entry("crop1", "f1_score", Some((100, 1, 0.7))),
                entry("crop2", "voi", Some((100, 1, 0.2))),
                entry("crop2", "f1_score", None),
            ]
        );
    }

    #[test]
    fn store_shape_and_name_errors() {
        let mut s = store();
        let err = s.add_iteration(5, vec![vec![vec![0.0; 3]; 2]]).unwrap_err();
        assert_eq!(
            err,
            EvaluateError::BlockShape {
                iteration: 5,
                level: "datasets".to_string(),
                expected: 2,
                found: 1,
            }
        );
        let mut ragged = block(&[]);
        ragged[1].pop();
        let err = s.add_iteration(5, ragged).unwrap_err();
        assert!(err.to_string().contains("parameters in dataset 1"), "{err}");
        let mut ragged = block(&[]);
        ragged[1][1].push(0.0);
        let err = s.add_iteration(5, ragged).unwrap_err();
        assert!(
            err.to_string()
                .contains("4 criteria in dataset 1, parameter 1, expected 3"),
            "{err}"
        );
        assert_eq!(s.iterations().count(), 0);
        assert!(s.block(5).is_none());
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = ValidationScores::new(names(&["dice"]), names(&["a", "a"]), names(&["c"]));
        assert!(matches!(
            err,
            Err(EvaluateError::DuplicateName {
                kind: "parameter",
                ..
            })
        ));
        let err = ValidationScores::new(names(&["mito__dice", "bogus"]), names(&[]), names(&[]));
        assert_eq!(
            err,
            Err(EvaluateError::UnknownCriterion("bogus".to_string()))
        );
    }

    #[test]
    fn best_for_a_metric_averages_the_channels() {
        let mut s = ValidationScores::new(
            vec!["a__f1_score".into(), "b__f1_score".into(), "a__dice".into()],
            vec!["t0".into(), "t1".into()],
            vec!["crop".into()],
        )
        .unwrap();
        // Iteration 10: t0 mean 0.5, t1 mean 0.6; iteration 20: t0 mean 0.7 (a NaN dice
        // does not matter), t1 has a NaN F1 and is skipped.
        s.add_iteration(10, vec![vec![vec![0.4, 0.6, 0.1], vec![0.9, 0.3, 0.2]]])
            .unwrap();
        s.add_iteration(
            20,
            vec![vec![vec![0.8, 0.6, f64::NAN], vec![f64::NAN, 1.0, 0.3]]],
        )
        .unwrap();
        let (it, p, v) = s.best_for("crop", "f1_score").unwrap();
        assert_eq!((it, p), (20, 0));
        assert!((v - 0.7).abs() < 1e-12);
        // A full name picks that column only: a__f1_score is best at 10/t1 (0.9).
        assert_eq!(s.best_for("crop", "a__f1_score"), Some((10, 1, 0.9)));
        assert_eq!(s.best_for("crop", "a__dice"), Some((20, 1, 0.3)));
        assert_eq!(s.best_for("crop", "voi"), None);
        assert_eq!(s.best_for("other", "f1_score"), None);
        assert_eq!(
            s.best_where("crop", "f1_score", |i, _| i == 10),
            Some((10, 1, 0.6))
        );
    }
}
