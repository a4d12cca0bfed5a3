//! Per-channel binary segmentation criteria: overlap (Dice, Jaccard, precision, recall,
//! …), surface distances in world units and tolerance-based rates, optionally within a mask.

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

/// Statistics of distances over the voxels of a mask.
pub(super) struct DistanceStats {
    pub(super) mean: f64,
    pub(super) mean_clipped: f64,
    pub(super) max: f64,
    pub(super) beyond_tolerance: u64,
}

impl DistanceStats {
    /// Statistics of `distances` over the voxels where `mask` is true (at least one).
    pub(super) fn over(mask: &ArrayD<bool>, distances: &ArrayD<f64>, clip: f64, tol: f64) -> Self {
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

/// The 21 binary criteria (in `BINARY_METRICS` order) of one channel of equal-shape arrays.
pub(super) fn binary_channel(
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
