//! Criteria for instance labelings (variation of information, split and merge) and the
//! deterministic dummy evaluator.

use super::*;

/// Conditional entropies (H(X|Y), H(Y|X)) in bits of a contingency table keyed by (x, y).
pub(super) fn split_merge(table: &HashMap<(u64, u64), u64>) -> (f64, f64) {
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
    let table = label_pairs(&test.view(), &truth.view(), None)?;
    Ok(split_merge(&table))
}

/// The contingency table of two label arrays: voxels per (test label, truth label), over the
/// voxels `mask` marks (same shape) or all. Tables of blocks add up to the table of their
/// union, which gives the same scores ([`instance_scores`]).
pub fn label_pairs(
    test: &ArrayViewD<'_, u64>,
    truth: &ArrayViewD<'_, u64>,
    mask: Option<&ArrayViewD<'_, bool>>,
) -> Result<HashMap<(u64, u64), u64>, EvaluateError> {
    if test.shape() != truth.shape() {
        return Err(EvaluateError::ShapeMismatch {
            test: test.shape().to_vec(),
            truth: truth.shape().to_vec(),
        });
    }
    if let Some(m) = mask.filter(|m| m.shape() != test.shape()) {
        return Err(EvaluateError::ShapeMismatch {
            test: test.shape().to_vec(),
            truth: m.shape().to_vec(),
        });
    }
    let mut table: HashMap<(u64, u64), u64> = HashMap::new();
    // Neighbouring voxels mostly share a label pair: count runs before touching the map.
    let mut run: Option<((u64, u64), u64)> = None;
    let mut count = |key: (u64, u64)| match &mut run {
        Some((k, n)) if *k == key => *n += 1,
        _ => {
            if let Some((k, n)) = run.replace((key, 1)) {
                *table.entry(k).or_default() += n;
            }
        }
    };
    let pairs = test.iter().copied().zip(truth.iter().copied());
    match mask {
        None => pairs.for_each(&mut count),
        Some(m) => pairs
            .zip(m.iter())
            .filter(|(_, k)| **k)
            .for_each(|(key, _)| count(key)),
    }
    if let Some((k, n)) = run {
        *table.entry(k).or_default() += n;
    }
    Ok(table)
}

/// Instance criteria `voi_split`, `voi_merge`, `voi` (their mean) of a contingency table
/// ([`label_pairs`]).
pub fn instance_scores(table: &HashMap<(u64, u64), u64>) -> Scores {
    let (split, merge) = split_merge(table);
    Scores {
        criteria: ["voi_split", "voi_merge", "voi"]
            .iter()
            .map(|c| c.to_string())
            .collect(),
        values: vec![split, merge, 0.5 * (split + merge)],
    }
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
    let mask = mask.map(|m| m.view());
    let table = label_pairs(&test.view(), &truth.view(), mask.as_ref())?;
    Ok(instance_scores(&table))
}

/// One step of the SplitMix64 generator.
pub(super) fn splitmix64(state: &mut u64) -> u64 {
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
