//! Per-channel binary segmentation criteria: overlap (Dice, Jaccard, precision, recall,
//! …), surface distances in world units and tolerance-based rates, optionally within a mask.

use serde::{Deserialize, Serialize};

use super::*;

/// `num / den`, NaN when `den` is 0.
pub(super) fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        f64::NAN
    } else {
        num / den
    }
}

/// Harmonic mean `2ab / (a + b)`, NaN when both are 0.
pub(super) fn harmonic(a: f64, b: f64) -> f64 {
    ratio(2.0 * a * b, a + b)
}

/// Count as f64 (exact up to 2^53).
pub(super) fn real(n: u64) -> f64 {
    n as f64
}

/// Distances (nm) from the scored foreground voxels of one array to the nearest foreground
/// voxel of the other, summed so that the sums of blocks add up to the sums of their union.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DistanceSums {
    /// Voxels counted.
    pub voxels: u64,
    /// Their known distances, summed.
    pub sum_nm: f64,
    /// Their distances clipped at the clip distance, summed (known for every voxel).
    pub sum_clipped_nm: f64,
    /// The largest known distance.
    pub max_nm: f64,
    /// Voxels farther than the tolerance.
    pub beyond_tolerance: u64,
    /// Voxels whose exact distance is unknown: no foreground voxel of the other array lies
    /// nearer to them than the edge of the context their block was read with (they are
    /// farther than the clip distance and the tolerance, so only the unclipped mean and the
    /// Hausdorff distance miss them).
    pub unknown: u64,
}

impl DistanceSums {
    /// Adds the sums of another block.
    pub fn add(&mut self, other: &Self) {
        self.voxels += other.voxels;
        self.sum_nm += other.sum_nm;
        self.sum_clipped_nm += other.sum_clipped_nm;
        self.max_nm = self.max_nm.max(other.max_nm);
        self.beyond_tolerance += other.beyond_tolerance;
        self.unknown += other.unknown;
    }

    /// The mean distance, NaN when a distance is unknown or nothing was counted.
    fn mean(&self) -> f64 {
        if self.unknown > 0 {
            f64::NAN
        } else {
            ratio(self.sum_nm, real(self.voxels))
        }
    }
}

/// The sufficient statistics of one channel's binary criteria over some voxels: counts
/// and distance sums that add up over blocks (see [`binary_criteria`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Voxels scored.
    pub voxels: u64,
    /// Of those, foreground in the test array.
    pub test: u64,
    /// Foreground in the truth.
    pub truth: u64,
    /// Foreground in both.
    pub both: u64,
    /// Distances from the scored test foreground to the truth's (false positives).
    pub test_to_truth: DistanceSums,
    /// Distances from the scored truth foreground to the test's (false negatives).
    pub truth_to_test: DistanceSums,
}

impl ChannelStats {
    /// Adds the statistics of another block.
    pub fn add(&mut self, other: &Self) {
        self.voxels += other.voxels;
        self.test += other.test;
        self.truth += other.truth;
        self.both += other.both;
        self.test_to_truth.add(&other.test_to_truth);
        self.truth_to_test.add(&other.truth_to_test);
    }

    /// The criteria (of [`BINARY_METRICS`]) that these statistics leave undefined because
    /// some distances are unknown.
    pub fn not_computed(&self) -> Vec<&'static str> {
        if self.test == 0 || self.truth == 0 {
            return Vec::new();
        }
        let (fp, fn_) = (
            self.test_to_truth.unknown > 0,
            self.truth_to_test.unknown > 0,
        );
        let mut out = Vec::new();
        if fp || fn_ {
            out.push("hausdorff");
        }
        if fp {
            out.push("mean_false_positive_distance");
        }
        if fn_ {
            out.push("mean_false_negative_distance");
        }
        if fp || fn_ {
            out.push("mean_false_distance");
        }
        out
    }
}

/// Where the voxels scored lie inside the array read for them (a block inside its
/// context), and on which sides the evaluated region goes on beyond what was read.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockContext {
    /// Per spatial axis, the scored voxels' index range in the array read.
    pub core: Vec<std::ops::Range<usize>>,
    /// Per spatial axis, whether the region goes on below and above the array read.
    pub open: Vec<(bool, bool)>,
}

impl BlockContext {
    /// Every voxel of an array of spatial shape `spatial` is scored and the region ends
    /// where it does.
    pub fn whole(spatial: &[usize]) -> Self {
        Self {
            core: spatial.iter().map(|&n| 0..n).collect(),
            open: vec![(false, false); spatial.len()],
        }
    }

    /// The smallest distance (nm) from a scored voxel to a voxel of the region that was not
    /// read (infinite when everything was read).
    fn reach_nm(&self, shape: &[usize], spacing: &[f64]) -> f64 {
        let mut reach = f64::INFINITY;
        for (a, ((below, above), core)) in self.open.iter().zip(&self.core).enumerate() {
            if *below {
                reach = reach.min((core.start + 1) as f64 * spacing[a]);
            }
            if *above {
                reach = reach.min((shape[a] - core.end + 1) as f64 * spacing[a]);
            }
        }
        reach
    }

    /// The distance (nm) from the voxel at `index` of the core to the nearest voxel that was
    /// not read: a distance up to it is exact.
    fn bound_nm(&self, index: &ndarray::IxDyn, shape: &[usize], spacing: &[f64]) -> f64 {
        let mut bound = f64::INFINITY;
        for (a, (below, above)) in self.open.iter().enumerate() {
            let i = self.core[a].start + index[a];
            if *below {
                bound = bound.min((i + 1) as f64 * spacing[a]);
            }
            if *above {
                bound = bound.min((shape[a] - i) as f64 * spacing[a]);
            }
        }
        bound
    }
}

/// `a` cut to the core of `context` (the spatial axes are its last ones).
fn core_of<'a, T>(a: &ArrayViewD<'a, T>, context: &BlockContext) -> ArrayViewD<'a, T> {
    let first = a.ndim() - context.core.len();
    let mut view = a.clone();
    for (i, range) in context.core.iter().enumerate() {
        view.slice_axis_inplace(Axis(first + i), ndarray::Slice::from(range.clone()));
    }
    view
}

/// Distances from the scored voxels of `from` (inside the core) to the features measured
/// by `distances` (the whole array read).
fn side_sums(
    from: &ArrayViewD<'_, bool>,
    distances: &ArrayD<f64>,
    spacing: &[f64],
    (clip, tol): (f64, f64),
    context: &BlockContext,
) -> DistanceSums {
    let shape = distances.shape().to_vec();
    let core = core_of(&distances.view(), context);
    let mut s = DistanceSums::default();
    for ((index, &d), _) in core.indexed_iter().zip(from.iter()).filter(|(_, f)| **f) {
        s.voxels += 1;
        let known = d.is_finite() && d <= context.bound_nm(&index, &shape, spacing);
        if known {
            s.sum_nm += d;
            s.sum_clipped_nm += d.min(clip);
            s.max_nm = s.max_nm.max(d);
            s.beyond_tolerance += u64::from(d > tol);
        } else {
            // Farther than the context reaches, hence than the clip and the tolerance.
            s.unknown += 1;
            s.sum_clipped_nm += clip;
            s.beyond_tolerance += 1;
        }
    }
    s
}

/// Distances to the voxels of `mask`, checked to have the mask's shape.
pub(super) fn distances(
    mask: &ArrayD<bool>,
    spacing: &[f64],
) -> Result<ArrayD<f64>, EvaluateError> {
    let d = distance_to_features(mask, spacing);
    if d.shape() != mask.shape() {
        return Err(EvaluateError::DistanceShape {
            expected: mask.shape().to_vec(),
            found: d.shape().to_vec(),
        });
    }
    Ok(d)
}

/// The statistics of one channel of equal-shape arrays over the core of `context` (and
/// where `mask` is true); distances are measured to every foreground voxel of the array
/// read. The context must reach at least the clip distance and the tolerance.
pub(super) fn channel_stats(
    test: &ArrayViewD<'_, u8>,
    truth: &ArrayViewD<'_, u8>,
    mask: Option<&ArrayViewD<'_, bool>>,
    spacing: &[f64],
    (clip, tol): (f64, f64),
    context: &BlockContext,
) -> Result<ChannelStats, EvaluateError> {
    let reach = context.reach_nm(test.shape(), spacing);
    if reach.is_finite() && reach <= clip.max(tol) {
        return Err(EvaluateError::ContextTooSmall {
            reach_nm: reach,
            needed_nm: clip.max(tol),
        });
    }
    let test_mask = test.map(|&v| v != 0);
    let truth_mask = truth.map(|&v| v != 0);
    // The scored foreground of each, over the core.
    let scored = |m: &ArrayD<bool>| -> ArrayD<bool> {
        let mut out = core_of(&m.view(), context).to_owned();
        if let Some(k) = mask {
            for (v, k) in out.iter_mut().zip(core_of(k, context).iter()) {
                *v = *v && *k;
            }
        }
        out
    };
    let (test_scored, truth_scored) = (scored(&test_mask), scored(&truth_mask));
    let voxels = match mask {
        Some(k) => core_of(k, context).iter().filter(|k| **k).count() as u64,
        None => core_of(test, context).len() as u64,
    };
    let count = |m: &ArrayD<bool>| m.iter().filter(|v| **v).count() as u64;
    let both = test_scored
        .iter()
        .zip(truth_scored.iter())
        .filter(|(p, t)| **p && **t)
        .count() as u64;
    let mut stats = ChannelStats {
        voxels,
        test: count(&test_scored),
        truth: count(&truth_scored),
        both,
        ..ChannelStats::default()
    };
    if stats.test > 0 {
        let to_truth = distances(&truth_mask, spacing)?;
        stats.test_to_truth = side_sums(
            &test_scored.view(),
            &to_truth,
            spacing,
            (clip, tol),
            context,
        );
    }
    if stats.truth > 0 {
        let to_test = distances(&test_mask, spacing)?;
        stats.truth_to_test = side_sums(
            &truth_scored.view(),
            &to_test,
            spacing,
            (clip, tol),
            context,
        );
    }
    Ok(stats)
}

/// The 21 binary criteria (in `BINARY_METRICS` order) of one channel's statistics. The
/// unclipped mean distances and the Hausdorff distance are NaN when a distance they need is
/// unknown (see [`ChannelStats::not_computed`]).
pub fn binary_criteria(s: &ChannelStats) -> [f64; 21] {
    let (n_p, n_t, n_tp, n_all) = (s.test, s.truth, s.both, s.voxels);
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
        return m;
    }
    let (fp_d, fn_d) = (&s.test_to_truth, &s.truth_to_test);

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
    let (fp_mean, fn_mean) = (fp_d.mean(), fn_d.mean());

    m[2] = if fp_d.unknown + fn_d.unknown > 0 {
        f64::NAN
    } else {
        fp_d.max_nm.max(fn_d.max_nm)
    };
    m[3] = fn_ / t;
    m[4] = ratio(fp, n_negative);
    m[6] = precision;
    m[7] = recall;
    m[8] = harmonic(precision, recall);
    m[9] = split + merge;
    m[10] = fp_mean;
    m[11] = fn_mean;
    m[12] = 0.5 * (fp_mean + fn_mean);
    m[13] = ratio(fp_d.sum_clipped_nm, real(fp_d.voxels));
    m[14] = ratio(fn_d.sum_clipped_nm, real(fn_d.voxels));
    m[15] = 0.5 * (m[13] + m[14]);
    m[16] = ratio(fp_tol, n_negative);
    m[17] = fn_tol / t;
    m[18] = precision_tol;
    m[19] = recall_tol;
    m[20] = harmonic(precision_tol, recall_tol);
    m
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
    let spatial = &test.shape()[test.ndim().saturating_sub(spacing.len())..];
    let context = BlockContext::whole(spatial);
    let stats = binary_stats(
        (&test.view(), &truth.view(), mask.map(|m| m.view()).as_ref()),
        spacing,
        channels,
        (clip_distance, tol_distance),
        &context,
    )?;
    Ok(binary_scores(
        &stats,
        (test.ndim() > spacing.len()).then_some(channels),
    ))
}

/// The per-channel statistics of [`binary_segmentation_masked`] over the core of `context`
/// (the whole array with [`BlockContext::whole`]): one entry for spatial-only arrays, one
/// per channel for arrays with a leading channel axis (`channels` names them).
pub fn binary_stats(
    (test, truth, mask): (
        &ArrayViewD<'_, u8>,
        &ArrayViewD<'_, u8>,
        Option<&ArrayViewD<'_, bool>>,
    ),
    spacing: &[f64],
    channels: &[String],
    (clip_distance, tol_distance): (f64, f64),
    context: &BlockContext,
) -> Result<Vec<ChannelStats>, EvaluateError> {
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
    let fits = context.core.len() == spatial.len()
        && context.open.len() == spatial.len()
        && context
            .core
            .iter()
            .zip(spatial)
            .all(|(r, &n)| r.start <= r.end && r.end <= n);
    if !fits {
        return Err(EvaluateError::ShapeMismatch {
            test: shape.clone(),
            truth: context.core.iter().map(|r| r.len()).collect(),
        });
    }
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
    let distances = (clip_distance, tol_distance);
    if test.ndim() == spacing.len() {
        if channels.len() > 1 {
            return Err(channel_count_error(1));
        }
        let stats = channel_stats(
            test,
            truth,
            mask_of(None)?.as_ref(),
            spacing,
            distances,
            context,
        )?;
        Ok(vec![stats])
    } else if test.ndim() == spacing.len() + 1 {
        let count = test.len_of(Axis(0));
        if channels.len() != count {
            return Err(channel_count_error(count));
        }
        check_unique("channel", channels)?;
        (0..count)
            .map(|c| {
                channel_stats(
                    &test.index_axis(Axis(0), c),
                    &truth.index_axis(Axis(0), c),
                    mask_of(Some(c))?.as_ref(),
                    spacing,
                    distances,
                    context,
                )
            })
            .collect()
    } else {
        Err(EvaluateError::DimensionMismatch {
            shape,
            spacing: spacing.to_vec(),
        })
    }
}

/// The binary criteria of per-channel statistics: plain names for one channel without
/// `channels`, `<channel>__<metric>` (channel-major) with them.
pub fn binary_scores(stats: &[ChannelStats], channels: Option<&[String]>) -> Scores {
    let mut scores = Scores::default();
    for (c, s) in stats.iter().enumerate() {
        let values = binary_criteria(s);
        match channels.and_then(|names| names.get(c)) {
            Some(name) => scores
                .criteria
                .extend(BINARY_METRICS.iter().map(|m| format!("{name}__{m}"))),
            None => scores
                .criteria
                .extend(BINARY_METRICS.iter().map(|m| m.to_string())),
        }
        scores.values.extend(values);
    }
    scores
}
