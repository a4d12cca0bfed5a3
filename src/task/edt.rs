//! Exact Euclidean distance transforms of N-dimensional boolean volumes with anisotropic
//! voxel sizes, by the separable algorithm of Felzenszwalb & Huttenlocher (lower envelope of
//! parabolas, one pass per axis, linear time). No maintained crate covers anisotropic N-D
//! volumes, which every target and metric here needs.

use ndarray::{ArrayD, Axis, Zip};

/// Squared distance transform of one line: `f[i]` holds 0 at features, infinity elsewhere
/// (or an earlier pass's squared distances); `out[k]` receives the squared distance (with
/// sample spacing `s`) at position `k · step` to the nearest feature.
fn line(f: &[f64], s: f64, step: usize, v: &mut Vec<usize>, z: &mut Vec<f64>, out: &mut [f64]) {
    let n = f.len();
    v.clear();
    z.clear();
    let s2 = s * s;
    // Positions with a finite value are parabola vertices.
    for q in 0..n {
        if !f[q].is_finite() {
            continue;
        }
        loop {
            let Some(&p) = v.last() else {
                v.push(q);
                z.push(f64::NEG_INFINITY);
                break;
            };
            // Intersection of the parabolas rooted at p and q (in index units).
            let x = ((f[q] + s2 * (q * q) as f64) - (f[p] + s2 * (p * p) as f64))
                / (2.0 * s2 * (q as f64 - p as f64));
            if let Some(&zk) = z.last() {
                if x <= zk {
                    v.pop();
                    z.pop();
                    continue;
                }
            }
            v.push(q);
            z.push(x);
            break;
        }
    }
    if v.is_empty() {
        out.iter_mut().for_each(|x| *x = f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (i, o) in out.iter_mut().enumerate() {
        let q = (i * step) as f64;
        while k + 1 < v.len() && z[k + 1] < q {
            k += 1;
        }
        let d = (q - v[k] as f64) * s;
        *o = d * d + f[v[k]];
    }
}

/// One separable pass along `axis`: the lanes of `input` (loaded by `load`) transformed and
/// kept at every `step`-th position.
fn pass<T>(
    input: &ArrayD<T>,
    axis: usize,
    spacing: f64,
    step: usize,
    load: impl Fn(&T) -> f64,
) -> ArrayD<f64> {
    let n = input.shape()[axis];
    let mut shape = input.shape().to_vec();
    shape[axis] = n.div_ceil(step);
    let mut output = ArrayD::<f64>::zeros(shape);
    let (mut v, mut z) = (Vec::new(), Vec::new());
    let (mut src, mut dst) = (Vec::with_capacity(n), vec![0.0; n.div_ceil(step)]);
    Zip::from(input.lanes(Axis(axis)))
        .and(output.lanes_mut(Axis(axis)))
        .for_each(|lane, mut out| {
            src.clear();
            src.extend(lane.iter().map(&load));
            line(&src, spacing, step, &mut v, &mut z, &mut dst);
            Zip::from(&mut out).and(&dst[..]).for_each(|a, b| *a = *b);
        });
    output
}

/// Squared distances (world units²) from the voxels at every `step`-th position along each
/// axis (indices 0, step, 2·step, …; the output has `ceil(n / step)` voxels per axis) to the
/// nearest voxel where `features` is true; infinity where there is none. Cheaper than the
/// full transform followed by subsampling: each pass keeps only the positions the next
/// ones need.
pub fn squared_distance_at_steps(
    features: &ArrayD<bool>,
    spacing: &[f64],
    step: usize,
) -> ArrayD<f64> {
    let ndim = features.ndim();
    let step = step.max(1);
    let s = |axis: usize| spacing.get(axis).copied().unwrap_or(1.0);
    if ndim == 0 {
        return features.mapv(|f| if f { 0.0 } else { f64::INFINITY });
    }
    // The innermost (contiguous) axis first, read straight from the features.
    let last = ndim - 1;
    let mut d = pass(features, last, s(last), step, |f| {
        if *f {
            0.0
        } else {
            f64::INFINITY
        }
    });
    for axis in (0..last).rev() {
        d = pass(&d, axis, s(axis), step, |x| *x);
    }
    d
}

/// Squared distances (world units²) from every voxel to the nearest voxel where `features`
/// is true; infinity everywhere when there is none. `spacing` gives the voxel size per axis.
pub fn squared_distance_to_features(features: &ArrayD<bool>, spacing: &[f64]) -> ArrayD<f64> {
    squared_distance_at_steps(features, spacing, 1)
}

/// Euclidean distance (world units) from every voxel to the nearest voxel where `features`
/// is true (0 on features); `f64::INFINITY` everywhere when there is no feature voxel.
pub fn distance_to_features(features: &ArrayD<bool>, spacing: &[f64]) -> ArrayD<f64> {
    let mut d = squared_distance_to_features(features, spacing);
    d.mapv_inplace(f64::sqrt);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Dimension, IxDyn};

    fn brute(features: &ArrayD<bool>, spacing: &[f64]) -> ArrayD<f64> {
        let feats: Vec<Vec<usize>> = features
            .indexed_iter()
            .filter(|(_, f)| **f)
            .map(|(i, _)| i.slice().to_vec())
            .collect();
        ArrayD::from_shape_fn(features.raw_dim(), |i| {
            feats
                .iter()
                .map(|f| {
                    f.iter()
                        .zip(i.slice())
                        .zip(spacing)
                        .map(|((a, b), s)| ((*a as f64 - *b as f64) * s).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        })
    }

    #[test]
    fn matches_brute_force_on_anisotropic_volumes() {
        let shape = [5usize, 7, 6];
        let mut seed = 12345u64;
        let features = ArrayD::from_shape_fn(IxDyn(&shape), |_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33).is_multiple_of(11)
        });
        let spacing = [40.0, 4.0, 7.0];
        let fast = distance_to_features(&features, &spacing);
        let slow = brute(&features, &spacing);
        for (a, b) in fast.iter().zip(slow.iter()) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn distances_at_steps_equal_the_full_transform_subsampled() {
        let shape = [9usize, 8, 11];
        let mut seed = 99u64;
        let features = ArrayD::from_shape_fn(IxDyn(&shape), |_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33).is_multiple_of(17)
        });
        let spacing = [2.0, 0.5, 1.5];
        let full = brute(&features, &spacing);
        for step in [2usize, 3] {
            let d = squared_distance_at_steps(&features, &spacing, step);
            let want_shape: Vec<usize> = shape.iter().map(|n| n.div_ceil(step)).collect();
            assert_eq!(d.shape(), want_shape.as_slice());
            for (idx, v) in d.indexed_iter() {
                let at: Vec<usize> = idx.slice().iter().map(|i| i * step).collect();
                let want = full[IxDyn(&at)];
                assert!(
                    (v.sqrt() - want).abs() < 1e-9,
                    "{at:?}: {} vs {want}",
                    v.sqrt()
                );
            }
        }
    }

    #[test]
    fn a_single_point_and_no_points() {
        let mut f = ArrayD::from_elem(IxDyn(&[1, 1, 5]), false);
        f[[0, 0, 1]] = true;
        let d = distance_to_features(&f, &[1.0, 1.0, 2.0]);
        assert_eq!(
            d.iter().copied().collect::<Vec<_>>(),
            vec![2.0, 0.0, 2.0, 4.0, 6.0]
        );
        let none = distance_to_features(&ArrayD::from_elem(IxDyn(&[3, 3]), false), &[1.0, 1.0]);
        assert!(none.iter().all(|v| v.is_infinite()));
    }
}
