//! Exact Euclidean distance transforms of N-dimensional boolean volumes with anisotropic
//! voxel sizes, by the separable algorithm of Felzenszwalb & Huttenlocher (lower envelope of
//! parabolas, one pass per axis, linear time). No maintained crate covers anisotropic N-D
//! volumes, which every target and metric here needs.

use ndarray::{ArrayD, Axis, Zip};

/// Squared distance transform of one line in place: `f[i]` holds 0 at features and
/// infinity elsewhere on input, the squared distance to the nearest feature (with sample
/// spacing `s`) on output.
fn line(f: &mut [f64], s: f64, v: &mut Vec<usize>, z: &mut Vec<f64>, out: &mut Vec<f64>) {
    let n = f.len();
    v.clear();
    z.clear();
    out.clear();
    out.resize(n, f64::INFINITY);
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
        f.iter_mut().for_each(|x| *x = f64::INFINITY);
        return;
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while k + 1 < v.len() && z[k + 1] < q as f64 {
            k += 1;
        }
        let d = (q as f64 - v[k] as f64) * s;
        *o = d * d + f[v[k]];
    }
    f.copy_from_slice(out);
}

/// Squared distances (world units²) from every voxel to the nearest voxel where `features`
/// is true; infinity everywhere when there is none. `spacing` gives the voxel size per axis.
pub fn squared_distance_to_features(features: &ArrayD<bool>, spacing: &[f64]) -> ArrayD<f64> {
    let mut d = features.mapv(|f| if f { 0.0 } else { f64::INFINITY });
    let (mut v, mut z, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for axis in 0..d.ndim() {
        let s = spacing.get(axis).copied().unwrap_or(1.0);
        for mut lane in d.lanes_mut(Axis(axis)) {
            buf.clear();
            buf.extend(lane.iter().copied());
            line(&mut buf, s, &mut v, &mut z, &mut out);
            Zip::from(&mut lane).and(&buf[..]).for_each(|a, b| *a = *b);
        }
    }
    d
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
