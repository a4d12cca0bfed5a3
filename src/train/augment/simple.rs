//! Mirroring and transposition (DaCapo's SimpleAugment): each spatial axis flipped and
//! interchangeable axes (equal voxel sizes) permuted, raw, ground truth and mask together.

use super::*;

/// Random mirroring of each spatial axis and transposition among interchangeable axes.
pub(super) fn simple<R: Rng + ?Sized>(s: Sample, p: f64, vs: &[f64], rng: &mut R) -> Sample {
    if rng.gen::<f64>() >= p {
        return s;
    }
    let Sample {
        mut raw,
        mut gt,
        mut mask,
    } = s;
    let d = vs.len();
    for a in 0..d {
        if rng.gen::<f64>() < 0.5 {
            raw.invert_axis(Axis(a + 1));
            gt.invert_axis(Axis(a + 1));
            mask.invert_axis(Axis(a + 1));
        }
    }
    let interchangeable = |a: usize, b: usize| {
        same_size(vs[a], vs[b])
            && raw.shape()[a + 1] == raw.shape()[b + 1]
            && gt.shape()[a + 1] == gt.shape()[b + 1]
            && mask.shape()[a + 1] == mask.shape()[b + 1]
    };
    let mut perm: Vec<usize> = (0..d).collect();
    let mut assigned = vec![false; d];
    for a in 0..d {
        if assigned[a] {
            continue;
        }
        let group: Vec<usize> = (a..d)
            .filter(|&b| !assigned[b] && interchangeable(a, b))
            .collect();
        let mut shuffled = group.clone();
        for i in (1..shuffled.len()).rev() {
            let j = rng.gen_range(0..=i);
            shuffled.swap(i, j);
        }
        for (&pos, &src) in group.iter().zip(&shuffled) {
            assigned[pos] = true;
            perm[pos] = src;
        }
    }
    if perm.iter().enumerate().any(|(i, p)| i != *p) {
        let axes: Vec<usize> = std::iter::once(0)
            .chain(perm.iter().map(|p| p + 1))
            .collect();
        raw = raw.permuted_axes(axes.as_slice());
        gt = gt.permuted_axes(axes.as_slice());
        mask = mask.permuted_axes(axes.as_slice());
    }
    // Views only: the next augment or the final crop copies what it needs.
    Sample { raw, gt, mask }
}
