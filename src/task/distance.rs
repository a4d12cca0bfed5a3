//! Signed-distance targets (DistanceTask): `tanh(d / σ)` of the signed distance to the
//! nearest object boundary, with class-balanced weights and optional masking of voxels
//! whose distance the crop cannot know.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use super::edt::{distance_to_features, squared_distance_at_steps};
use super::TaskError;

/// Class-balancing state: the class counts seen so far, per channel (DaCapo's
/// `moving_class_counts`; accumulated over the whole training).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassBalance {
    /// Per channel, per class (background, foreground): (voxels of the class, voxels seen).
    counts: Vec<[(f64, f64); 2]>,
}

impl ClassBalance {
    /// The counts as a flat list (channel-major: bg num, bg den, fg num, fg den), for
    /// checkpoints.
    pub fn to_vec(&self) -> Vec<f64> {
        self.counts
            .iter()
            .flat_map(|c| [c[0].0, c[0].1, c[1].0, c[1].1])
            .collect()
    }

    /// Restores counts saved with [`ClassBalance::to_vec`].
    pub fn from_vec(values: &[f64]) -> Self {
        Self {
            counts: values
                .chunks_exact(4)
                .map(|c| [(c[0], c[1]), (c[2], c[3])])
                .collect(),
        }
    }

    /// Weights for binary labels `y` (one channel per leading index) under `scale`
    /// (the product of the masks): `scale · 1 / (2 · clip(fraction of the class so far))`,
    /// 0 for a class absent from this channel.
    pub fn weights(
        &mut self,
        y: &ArrayD<u8>,
        scale: &ArrayD<f32>,
        clipmin: f64,
        clipmax: f64,
    ) -> Result<ArrayD<f32>, TaskError> {
        if y.shape() != scale.shape() || y.ndim() < 2 {
            return Err(TaskError::Shape(format!(
                "labels {:?} and masks {:?} must have one shape with a channel axis",
                y.shape(),
                scale.shape()
            )));
        }
        let channels = y.shape()[0];
        if self.counts.len() != channels {
            self.counts = vec![[(0.0, 1.0); 2]; channels];
        }
        let mut out = ArrayD::<f32>::zeros(y.raw_dim());
        for c in 0..channels {
            let yc = y.index_axis(Axis(0), c);
            let sc = scale.index_axis(Axis(0), c);
            let m: f64 = sc.iter().map(|v| *v as f64).sum();
            let mut present = [0usize; 2];
            for (label, s) in yc.iter().zip(sc.iter()) {
                if *label > 1 {
                    return Err(TaskError::Shape(format!(
                        "distance targets need binary labels, found {label}"
                    )));
                }
                if *s != 0.0 {
                    present[*label as usize] += 1;
                }
            }
            let counts = &mut self.counts[c];
            let mut w = [0.0f64; 2];
            for k in 0..2 {
                counts[k].1 += m;
                if present[k] > 0 {
                    counts[k].0 += present[k] as f64;
                    let frac = (counts[k].0 / counts[k].1).clamp(clipmin, clipmax);
                    w[k] = 1.0 / (2.0 * frac);
                }
            }
            let mut oc = out.index_axis_mut(Axis(0), c);
            ndarray::Zip::from(&mut oc)
                .and(&yc)
                .and(&sc)
                .for_each(|o, l, s| *o = s * w[*l as usize] as f32);
        }
        Ok(out)
    }
}

/// Makes signed-distance targets and their weights for binary ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct DistancePredictor {
    /// σ of `tanh(d / σ)`, in nm.
    pub scale_factor: f64,
    /// Mask voxels nearer to the crop border than to an object boundary.
    pub mask_distances: bool,
    /// Lower clip of class fractions in the balance.
    pub clipmin: f64,
    /// Upper clip of class fractions in the balance.
    pub clipmax: f64,
    /// Class counts seen so far.
    pub balance: ClassBalance,
}

/// Distance (nm) of every voxel to the nearest boundary between neighbours `x`, `y` for
/// which `differ(x, y)`, measured on the doubled grid of DaCapo's targets (a boundary lies
/// half-way between two voxels, so a voxel next to one is at vs/2). `None` without any
/// boundary.
pub fn boundary_distance<T: Copy>(
    labels: &ArrayViewD<T>,
    voxel_size: &[f64],
    differ: impl Fn(T, T) -> bool,
) -> Option<ArrayD<f64>> {
    let shape = labels.shape().to_vec();
    let doubled: Vec<usize> = shape.iter().map(|n| (2 * n).saturating_sub(1)).collect();
    let mut boundary = ArrayD::from_elem(IxDyn(&doubled), false);
    let mut any = false;
    for (axis, &n) in shape.iter().enumerate() {
        if n < 2 {
            continue;
        }
        let a = labels.slice_axis(Axis(axis), Slice::from(..-1));
        let b = labels.slice_axis(Axis(axis), Slice::from(1..));
        // Boundary positions of this axis: odd along it, even along the others.
        let mut between = boundary.slice_each_axis_mut(|d| {
            if d.axis.index() == axis {
                Slice::new(1, None, 2)
            } else {
                Slice::new(0, None, 2)
            }
        });
        ndarray::Zip::from(&mut between)
            .and(&a)
            .and(&b)
            .for_each(|o, x, y| {
                if differ(*x, *y) {
                    *o = true;
                    any = true;
                }
            });
    }
    if !any {
        return None;
    }
    let half: Vec<f64> = voxel_size.iter().map(|v| v / 2.0).collect();
    // Only the even positions (voxel centres) are needed.
    let mut d = squared_distance_at_steps(&boundary, &half, 2);
    d.mapv_inplace(f64::sqrt);
    Some(d)
}

/// The signed distance (nm) of every voxel of one binary channel to the nearest boundary
/// between foreground (non-zero) and background: positive inside, negative outside; a
/// voxel next to a boundary is at ±vs/2. Without any boundary: ±min(shape · vs / 2).
pub fn signed_distance<T: Copy + PartialEq + Default>(
    labels: &ArrayViewD<T>,
    voxel_size: &[f64],
) -> ArrayD<f64> {
    let zero = T::default();
    match boundary_distance(labels, voxel_size, |x, y| (x != zero) != (y != zero)) {
        Some(mut d) => {
            ndarray::Zip::from(&mut d).and(labels).for_each(|o, l| {
                if *l == zero {
                    *o = -*o;
                }
            });
            d
        }
        None => {
            let d = labels
                .shape()
                .iter()
                .zip(voxel_size)
                .map(|(n, v)| *n as f64 * v / 2.0)
                .fold(f64::INFINITY, f64::min);
            let sign = if labels.iter().any(|v| *v != zero) {
                1.0
            } else {
                -1.0
            };
            ArrayD::from_elem(labels.raw_dim(), sign * d)
        }
    }
}

impl DistancePredictor {
    /// A predictor with the task's parameters.
    pub fn new(scale_factor: f64, mask_distances: bool, clipmin: f64, clipmax: f64) -> Self {
        Self {
            scale_factor,
            mask_distances,
            clipmin,
            clipmax,
            balance: ClassBalance::default(),
        }
    }

    /// `tanh(signed distance / σ)` per channel of `gt` (channel axis first, non-zero is
    /// foreground).
    pub fn target<T: Copy + PartialEq + Default>(
        &self,
        gt: &ArrayD<T>,
        voxel_size: &[f64],
    ) -> ArrayD<f32> {
        let mut out = ArrayD::<f32>::zeros(gt.raw_dim());
        for c in 0..gt.shape()[0] {
            let d = signed_distance(&gt.index_axis(Axis(0), c), voxel_size);
            let sigma = self.scale_factor;
            out.index_axis_mut(Axis(0), c)
                .assign(&d.mapv(|v| (v / sigma).tanh() as f32));
        }
        out
    }

    /// Zeroes the mask where the crop border (or the mask's edge) is nearer, in tanh space
    /// with a 0.05 margin and a 0.8 cap, than the object boundary the target measures.
    pub fn distance_mask(
        &self,
        target: &ArrayD<f32>,
        mask: &ArrayD<f32>,
        voxel_size: &[f64],
    ) -> ArrayD<f32> {
        let mut out = mask.clone();
        for c in 0..mask.shape()[0] {
            let m = mask.index_axis(Axis(0), c);
            // Distance of every voxel to the nearest masked-out voxel, beyond the crop included.
            let padded_shape: Vec<usize> = m.shape().iter().map(|n| n + 2).collect();
            let mut outside = ArrayD::from_elem(IxDyn(&padded_shape), true);
            outside
                .slice_each_axis_mut(|_| Slice::new(1, Some(-1), 1))
                .zip_mut_with(&m, |o, v| *o = *v == 0.0);
            let d = distance_to_features(&outside, voxel_size);
            let inner = d.slice_each_axis(|_| Slice::new(1, Some(-1), 1));
            let t = target.index_axis(Axis(0), c);
            let sigma = self.scale_factor;
            ndarray::Zip::from(out.index_axis_mut(Axis(0), c))
                .and(&t)
                .and(&inner)
                .for_each(|o, t, d| {
                    let b = (d / sigma).tanh();
                    let known = ((t.abs() as f64) + 0.05).min(0.8);
                    if known >= b {
                        *o = 0.0;
                    }
                });
        }
        out
    }

    /// Balanced weights for `gt` under `mask` (both channel axis first).
    pub fn weight(
        &mut self,
        gt: &ArrayD<u8>,
        target: &ArrayD<f32>,
        mask: &ArrayD<f32>,
        voxel_size: &[f64],
    ) -> Result<ArrayD<f32>, TaskError> {
        let scale = if self.mask_distances {
            self.distance_mask(target, mask, voxel_size)
        } else {
            mask.clone()
        };
        self.balance.weights(gt, &scale, self.clipmin, self.clipmax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(values: &[u8]) -> ArrayD<u8> {
        ArrayD::from_shape_vec(IxDyn(&[1, values.len()]), values.to_vec()).unwrap()
    }

    #[test]
    fn signed_distances_on_a_line() {
        // 0 0 1 1 1 0 at 4 nm: boundaries between voxels 1|2 and 4|5.
        let d = signed_distance(&line(&[0, 0, 1, 1, 1, 0]).index_axis(Axis(0), 0), &[4.0]);
        assert_eq!(
            d.iter().copied().collect::<Vec<_>>(),
            vec![-6.0, -2.0, 2.0, 6.0, 2.0, -2.0]
        );
        // No boundary: ±min(shape · vs / 2) = 6 · 4 / 2 = 12.
        let d = signed_distance(&line(&[1, 1, 1, 1, 1, 1]).index_axis(Axis(0), 0), &[4.0]);
        assert!(d.iter().all(|v| *v == 12.0));
        let d = signed_distance(&line(&[0, 0]).index_axis(Axis(0), 0), &[4.0]);
        assert!(d.iter().all(|v| *v == -4.0));
    }

    #[test]
    fn targets_are_tanh_of_the_distance() {
        let p = DistancePredictor::new(4.0, false, 0.05, 0.95);
        let t = p.target(&line(&[0, 0, 1, 1, 1, 0]), &[4.0]);
        let want: Vec<f32> = [-6.0f64, -2.0, 2.0, 6.0, 2.0, -2.0]
            .iter()
            .map(|d| (d / 4.0).tanh() as f32)
            .collect();
        assert_eq!(t.iter().copied().collect::<Vec<_>>(), want);
    }

    #[test]
    fn balanced_weights_accumulate_over_calls() {
        let mut b = ClassBalance::default();
        let y = line(&[0, 0, 0, 1]);
        let ones = ArrayD::from_elem(IxDyn(&[1, 4]), 1.0f32);
        // Counts start at (0, 1). First call: den = 1 + 4 = 5; fg 1/5 → w = 1/(2·0.2) = 2.5;
        // bg 3/5 → 1/(2·0.6) = 5/6.
        let w = b.weights(&y, &ones, 0.05, 0.95).unwrap();
        let got: Vec<f32> = w.iter().copied().collect();
        assert!(
            (got[0] - 5.0 / 6.0).abs() < 1e-6 && (got[3] - 2.5).abs() < 1e-6,
            "{got:?}"
        );
        // Second call, all background: den = 9, bg 7/9 → 1/(2·7/9) = 9/14.
        let w = b.weights(&line(&[0, 0, 0, 0]), &ones, 0.05, 0.95).unwrap();
        assert!((w[[0, 0]] - 9.0 / 14.0).abs() < 1e-6);
        // Masked voxels get no weight and do not count.
        let mut half = ones.clone();
        half[[0, 0]] = 0.0;
        let w = b.weights(&line(&[1, 0, 0, 1]), &half, 0.05, 0.95).unwrap();
        assert_eq!(w[[0, 0]], 0.0);
        // Non-binary labels are refused.
        assert!(b.weights(&line(&[0, 2, 0, 0]), &ones, 0.05, 0.95).is_err());
    }

    #[test]
    fn distance_mask_drops_voxels_nearer_the_crop_border() {
        // A 1×9 crop with one object in the middle: near the crop ends the border (≤ 1
        // voxel away) is nearer than the object boundary, so those voxels are masked.
        let p = DistancePredictor::new(8.0, true, 0.05, 0.95);
        let gt = line(&[0, 0, 0, 0, 1, 0, 0, 0, 0]);
        let t = p.target(&gt, &[4.0]);
        let m = p.distance_mask(&t, &ArrayD::from_elem(IxDyn(&[1, 9]), 1.0), &[4.0]);
        let v: Vec<f32> = m.iter().copied().collect();
        assert_eq!(v[0], 0.0);
        assert_eq!(v[8], 0.0);
        assert_eq!(v[4], 1.0);
    }
}
