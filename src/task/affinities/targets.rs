//! Training targets computed from a label volume: affinities and local shape
//! descriptors (LSDs).

use std::collections::HashMap;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice, Zip};

use super::{c_strides, for_each_in_box, AffError};

/// Computes the affinity training target of a segmentation for a set of offsets.
///
/// The result has shape `(offsets.len(), seg.shape()...)`. With `s = seg + 1` if
/// `background_as_object` is set and `s = seg` otherwise, channel `c` holds
/// `1.0` at voxel `i` iff `i` and `i + offsets[c]` both lie inside the array,
/// `s[i] == s[i + offsets[c]]` and both are non-zero; every other entry is `0.0`.
/// Offsets may have any sign; an offset at least as long as an axis gives an
/// all-zero channel.
///
/// # Errors
/// [`AffError::OffsetDims`] if an offset does not have one entry per axis of `seg`.
pub fn affinity_target(
    seg: &ArrayViewD<u64>,
    offsets: &[Vec<i64>],
    background_as_object: bool,
) -> Result<ArrayD<f32>, AffError> {
    let ndim = seg.ndim();
    check_offsets(offsets, ndim)?;
    let mut shape = Vec::with_capacity(ndim + 1);
    shape.push(offsets.len());
    shape.extend_from_slice(seg.shape());
    let mut out = ArrayD::<f32>::zeros(IxDyn(&shape));
    for (mut channel, offset) in out.axis_iter_mut(Axis(0)).zip(offsets) {
        let Some((here, there)) = overlap_windows(seg.shape(), offset) else {
            continue;
        };
        let a = seg.slice_each_axis(|ax| here[ax.axis.index()]);
        let b = seg.slice_each_axis(|ax| there[ax.axis.index()]);
        let mut target = channel.slice_each_axis_mut(|ax| here[ax.axis.index()]);
        let zip = Zip::from(&mut target).and(&a).and(&b);
        if background_as_object {
            // `seg + 1` is never zero, so only equality matters.
            zip.for_each(|t, &x, &y| *t = f32::from(u8::from(x == y)));
        } else {
            zip.for_each(|t, &x, &y| *t = f32::from(u8::from(x == y && x != 0)));
        }
    }
    Ok(out)
}

/// Checks that every offset has `ndim` entries.
pub(crate) fn check_offsets(offsets: &[Vec<i64>], ndim: usize) -> Result<(), AffError> {
    match offsets.iter().position(|o| o.len() != ndim) {
        Some(index) => Err(AffError::OffsetDims {
            index,
            got: offsets[index].len(),
            expected: ndim,
        }),
        None => Ok(()),
    }
}

/// For an offset `o`, returns per axis the window of voxels `i` whose partner
/// `i + o` is inside the array, and the window of those partners; `None` if no
/// voxel has its partner inside.
fn overlap_windows(shape: &[usize], offset: &[i64]) -> Option<(Vec<Slice>, Vec<Slice>)> {
    let mut here = Vec::with_capacity(shape.len());
    let mut there = Vec::with_capacity(shape.len());
    for (&n, &o) in shape.iter().zip(offset) {
        let k = usize::try_from(o.unsigned_abs()).ok().filter(|&k| k < n)?;
        let (a, b) = if o >= 0 {
            (0..n - k, k..n)
        } else {
            (k..n, 0..n - k)
        };
        here.push(Slice::from(a));
        there.push(Slice::from(b));
    }
    Some((here, there))
}

/// Computes local shape descriptors (Sheridan et al. 2022) of a segmentation.
///
/// For every object (label id; 0 is background and skipped) the statistics of
/// the object's voxels inside a Gaussian window of standard deviation `sigma`
/// (world units, same unit as `voxel_size`; truncated at 3σ like
/// `scipy.ndimage.gaussian_filter(truncate=3)`, i.e. radius `round(3σ/voxel)`;
/// values outside the array count as not part of the object) are written to
/// the object's voxels. Channels, for `N` axes (10 for 3D, 6 for 2D):
/// * `0..N`: mean offset `mean − x` of the object's voxels from the voxel,
///   mapped by `offset/σ·0.5 + 0.5`;
/// * `N..2N`: variance per axis divided by σ² (variances clamped at ≥ 1e−3 first);
/// * next `N(N−1)/2`: Pearson correlations of axis pairs `(0,1), (0,2), (1,2)…`,
///   mapped by `·0.5 + 0.5`;
/// * last: size, the Gaussian-weighted count of object voxels divided by the total
///   Gaussian mass (the kernel is normalised to sum 1, as in the reference `lsd`
///   package), hence in `[0, 1]`.
///
/// All channels are 0 on background and clipped to `[0, 1]`. With `downsample`
/// `f > 1` the statistics are computed on the grid `seg[::f, ::f, …]` (voxel size
/// × f) and voxel `i` of an object reads the value of that object's statistics at
/// sub-grid position `i / f` (nearest upsampling). If an object has no mass at all
/// in that window (possible only with `f > 1`), its voxels there get offset 0.5,
/// variance 0, Pearson 0.5 and size 0.
///
/// The Gaussian filtering is separable and restricted to each object's bounding
/// box. Because the object mask is zero outside its box and results are only
/// needed inside it, the 1-D passes treat samples outside the box as zero, which
/// gives exactly the result of filtering the box grown by 3σ.
///
/// # Errors
/// [`AffError::VoxelSizeDims`] if `voxel_size` does not have one entry per axis;
/// [`AffError::InvalidParameter`] for a 0-dimensional `seg`, a non-positive or
/// non-finite `sigma` or voxel size, `downsample == 0`, or a Gaussian radius above
/// 10⁶ voxels; [`AffError::TooLarge`] if the output size overflows `usize`.
pub fn lsd_target(
    seg: &ArrayViewD<u64>,
    voxel_size: &[f64],
    sigma: f64,
    downsample: usize,
) -> Result<ArrayD<f32>, AffError> {
    let ndim = seg.ndim();
    if ndim == 0 {
        return Err(AffError::InvalidParameter(
            "lsd_target needs an array with at least one axis".into(),
        ));
    }
    if voxel_size.len() != ndim {
        return Err(AffError::VoxelSizeDims {
            got: voxel_size.len(),
            expected: ndim,
        });
    }
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(AffError::InvalidParameter(format!(
            "sigma must be positive and finite, got {sigma}"
        )));
    }
    if let Some(v) = voxel_size.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
        return Err(AffError::InvalidParameter(format!(
            "voxel sizes must be positive and finite, got {v}"
        )));
    }
    if downsample == 0 {
        return Err(AffError::InvalidParameter(
            "downsample must be at least 1".into(),
        ));
    }

    let shape = seg.shape().to_vec();
    let strides = c_strides(&shape);
    let volume: usize = shape.iter().product();
    let n_channels = 2 * ndim + ndim * (ndim - 1) / 2 + 1;
    let out_len = n_channels
        .checked_mul(volume)
        .ok_or_else(|| AffError::TooLarge(format!("{n_channels} x {volume} output values")))?;

    let sub_shape: Vec<usize> = shape.iter().map(|&n| n.div_ceil(downsample)).collect();
    let kernels = sub_shape
        .iter()
        .zip(voxel_size)
        .map(|(&len, &v)| AxisKernels::new(v * downsample as f64, sigma, len))
        .collect::<Result<Vec<_>, _>>()?;

    // Standard-layout copy of the labels, whatever the layout of the view.
    let labels: Vec<u64> = seg.iter().copied().collect();
    let mut out = vec![0f32; out_len];
    let mut mu = vec![0f64; ndim];
    let mut var = vec![0f64; ndim];
    let mut values = vec![0f32; n_channels];

    for (label, lo, hi) in label_boxes(&labels, &shape, &strides) {
        // Box on the sub-sampled grid covering `i / downsample` for all i in lo..hi.
        let sub_lo: Vec<usize> = lo.iter().map(|&l| l / downsample).collect();
        let sub_hi: Vec<usize> = hi.iter().map(|&h| (h - 1) / downsample + 1).collect();
        let dims: Vec<usize> = sub_hi.iter().zip(&sub_lo).map(|(h, l)| h - l).collect();
        let box_strides = c_strides(&dims);
        let full_sub_strides: Vec<usize> = strides.iter().map(|s| s * downsample).collect();

        let mut mask = vec![0f64; dims.iter().product()];
        let mut local = 0;
        for_each_in_box(&full_sub_strides, &sub_lo, &sub_hi, |flat, _| {
            mask[local] = f64::from(u8::from(labels[flat] == label));
            local += 1;
        });
        let moments = Moments::compute(mask, &dims, &kernels);

        for_each_in_box(&strides, &lo, &hi, |flat, index| {
            if labels[flat] != label {
                return;
            }
            let q: usize = index
                .iter()
                .zip(&sub_lo)
                .zip(&box_strides)
                .map(|((&i, &l), &s)| (i / downsample - l) * s)
                .sum();
            moments.descriptor(q, sigma, &mut mu, &mut var, &mut values);
            for (c, &v) in values.iter().enumerate() {
                out[c * volume + flat] = v;
            }
        });
    }

    let mut out_shape = Vec::with_capacity(ndim + 1);
    out_shape.push(n_channels);
    out_shape.extend_from_slice(&shape);
    ArrayD::from_shape_vec(IxDyn(&out_shape), out)
        .map_err(|e| AffError::ShapeMismatch(e.to_string()))
}

/// Bounding boxes `(label, lo, hi)` (half-open) of all non-zero labels, in
/// order of first appearance.
fn label_boxes(
    labels: &[u64],
    shape: &[usize],
    strides: &[usize],
) -> Vec<(u64, Vec<usize>, Vec<usize>)> {
    let mut boxes: Vec<(u64, Vec<usize>, Vec<usize>)> = Vec::new();
    let mut position: HashMap<u64, usize> = HashMap::new();
    let mut last: Option<(u64, usize)> = None;
    let zeros = vec![0usize; shape.len()];
    for_each_in_box(strides, &zeros, shape, |flat, index| {
        let label = labels[flat];
        if label == 0 {
            return;
        }
        let slot = match last {
            Some((l, slot)) if l == label => slot,
            _ => {
                let slot = *position.entry(label).or_insert_with(|| {
                    boxes.push((label, index.to_vec(), index.iter().map(|i| i + 1).collect()));
                    boxes.len() - 1
                });
                last = Some((label, slot));
                slot
            }
        };
        let (_, lo, hi) = &mut boxes[slot];
        for ((l, h), &i) in lo.iter_mut().zip(hi.iter_mut()).zip(index) {
            *l = (*l).min(i);
            *h = (*h).max(i + 1);
        }
    });
    boxes
}

/// Largest Gaussian radius (in voxels) accepted by [`lsd_target`].
const MAX_RADIUS: f64 = 1e6;

/// Truncated, normalised 1-D Gaussian kernels along one axis, multiplied by the
/// world-unit displacement to the power 0, 1 and 2.
struct AxisKernels {
    /// Radius of the stored kernels (at most the axis length − 1).
    radius: usize,
    /// `weights[p][δ + radius] = g(δ) · (δ · voxel)^p`, with `Σ_δ g(δ) = 1` over
    /// the full truncated radius.
    weights: [Vec<f64>; 3],
}

impl AxisKernels {
    fn new(voxel: f64, sigma: f64, axis_len: usize) -> Result<Self, AffError> {
        let sd = sigma / voxel;
        let full = (3.0 * sd + 0.5).floor();
        if full > MAX_RADIUS {
            return Err(AffError::InvalidParameter(format!(
                "sigma {sigma} gives a Gaussian radius of {full} voxels (voxel size {voxel}), \
                 more than {MAX_RADIUS}"
            )));
        }
        // `full` is a non-negative integer ≤ 1e6, so the cast is exact.
        let full = full as i64;
        let gauss = |d: i64| (-0.5 * (d as f64 / sd).powi(2)).exp();
        let norm: f64 = (-full..=full).map(gauss).sum();
        let radius = usize::try_from(full)
            .unwrap_or(0)
            .min(axis_len.saturating_sub(1));
        let r = radius as i64;
        let g: Vec<f64> = (-r..=r).map(|d| gauss(d) / norm).collect();
        let first: Vec<f64> = (-r..=r)
            .zip(&g)
            .map(|(d, w)| w * d as f64 * voxel)
            .collect();
        let second: Vec<f64> = (-r..=r)
            .zip(&g)
            .map(|(d, w)| w * (d as f64 * voxel).powi(2))
            .collect();
        Ok(Self {
            radius,
            weights: [g, first, second],
        })
    }
}

/// 1-D correlation `out[t] = Σ_δ kernel[δ + radius] · input[t + δ]` along `axis`
/// of a row-major box of shape `dims`, with zeros outside the box.
fn correlate_axis(
    input: &[f64],
    dims: &[usize],
    axis: usize,
    kernel: &[f64],
    radius: usize,
) -> Vec<f64> {
    let len = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = vec![0f64; input.len()];
    if len == 0 || inner == 0 {
        return out;
    }
    let block = len * inner;
    for (src_block, dst_block) in input.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
        for (t, dst) in dst_block.chunks_exact_mut(inner).enumerate() {
            let first = t.saturating_sub(radius);
            let last = (t + radius).min(len - 1);
            for s in first..=last {
                let w = kernel[s + radius - t];
                let src = &src_block[s * inner..(s + 1) * inner];
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d += w * x;
                }
            }
        }
    }
    out
}

/// Gaussian-weighted moments of an object mask over displacements δ (world
/// units) from each voxel: `Σ g(δ) m(x+δ)`, `Σ g(δ) m(x+δ) δ_d` and
/// `Σ g(δ) m(x+δ) δ_d δ_e`.
struct Moments {
    ndim: usize,
    count: Vec<f64>,
    first: Vec<Vec<f64>>,
    /// Indexed by `d * ndim + e` for `d <= e`; other entries are empty.
    second: Vec<Vec<f64>>,
}

impl Moments {
    /// Computes all moments with separable passes, sharing the partial results
    /// of earlier axes (19 passes in 3D instead of 30).
    fn compute(mask: Vec<f64>, dims: &[usize], kernels: &[AxisKernels]) -> Self {
        let ndim = dims.len();
        let mut level: Vec<(Vec<usize>, Vec<f64>)> = vec![(Vec::new(), mask)];
        for (axis, k) in kernels.iter().enumerate() {
            let mut next = Vec::with_capacity(level.len() * 3);
            // Consume the previous level so that each parent is freed as soon as
            // its children exist.
            for (powers, data) in level {
                let used: usize = powers.iter().sum();
                for (p, kernel) in k.weights.iter().enumerate().take(3 - used) {
                    let mut pw = powers.clone();
                    pw.push(p);
                    next.push((pw, correlate_axis(&data, dims, axis, kernel, k.radius)));
                }
            }
            level = next;
        }
        let mut moments = Self {
            ndim,
            count: Vec::new(),
            first: vec![Vec::new(); ndim],
            second: vec![Vec::new(); ndim * ndim],
        };
        for (powers, data) in level {
            let axes: Vec<usize> = powers
                .iter()
                .enumerate()
                .flat_map(|(axis, &p)| std::iter::repeat_n(axis, p))
                .collect();
            match axes[..] {
                [] => moments.count = data,
                [d] => moments.first[d] = data,
                [d, e] => moments.second[d * ndim + e] = data,
                _ => {}
            }
        }
        moments
    }

    /// Writes the mapped, clipped descriptor at box position `q` into `values`;
    /// `mu` and `var` are scratch buffers of length `ndim`.
    fn descriptor(
        &self,
        q: usize,
        sigma: f64,
        mu: &mut [f64],
        var: &mut [f64],
        values: &mut [f32],
    ) {
        let n = self.ndim;
        let count = self.count[q];
        let clip = |v: f64| v.clamp(0.0, 1.0) as f32;
        if count <= 0.0 {
            // No object mass in the window (only possible when downsampling).
            values[..n].fill(0.5);
            values[n..2 * n].fill(0.0);
            let last = values.len() - 1;
            values[2 * n..last].fill(0.5);
            values[last] = 0.0;
            return;
        }
        for (d, m) in mu.iter_mut().enumerate() {
            *m = self.first[d][q] / count;
        }
        for (d, v) in var.iter_mut().enumerate() {
            *v = (self.second[d * n + d][q] / count - mu[d] * mu[d]).max(1e-3);
        }
        let mut c = 0;
        for &m in mu.iter() {
            values[c] = clip(m / sigma * 0.5 + 0.5);
            c += 1;
        }
        for &v in var.iter() {
            values[c] = clip(v / (sigma * sigma));
            c += 1;
        }
        for d in 0..n {
            for e in d + 1..n {
                let cov = self.second[d * n + e][q] / count - mu[d] * mu[e];
                values[c] = clip(cov / (var[d] * var[e]).sqrt() * 0.5 + 0.5);
                c += 1;
            }
        }
        values[c] = clip(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2, Array3, Dimension};

    fn off(v: &[&[i64]]) -> Vec<Vec<i64>> {
        v.iter().map(|o| o.to_vec()).collect()
    }

    fn channel(a: &ArrayD<f32>, c: usize) -> Vec<f32> {
        a.index_axis(Axis(0), c).iter().copied().collect()
    }

    #[test]
    fn affinity_1d_by_hand() {
        let seg = arr1(&[1u64, 1, 2, 2, 0]).into_dyn();
        let affs = affinity_target(&seg.view(), &off(&[&[-1], &[1]]), false).unwrap();
        assert_eq!(affs.shape(), &[2, 5]);
        assert_eq!(channel(&affs, 0), vec![0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(channel(&affs, 1), vec![1.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn affinity_background_as_object() {
        let seg = arr1(&[0u64, 0, 2, 2, 0]).into_dyn();
        let offsets = off(&[&[-1], &[1]]);
        let plain = affinity_target(&seg.view(), &offsets, false).unwrap();
        assert_eq!(channel(&plain, 0), vec![0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(channel(&plain, 1), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
        let bg = affinity_target(&seg.view(), &offsets, true).unwrap();
        assert_eq!(channel(&bg, 0), vec![0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(channel(&bg, 1), vec![1.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn affinity_2d_by_hand() {
        let seg = arr2(&[[1u64, 1, 2], [1, 3, 2], [0, 0, 2]]).into_dyn();
        let offsets = off(&[&[-1, 0], &[0, -1], &[0, -2]]);
        let affs = affinity_target(&seg.view(), &offsets, false).unwrap();
        assert_eq!(affs.shape(), &[3, 3, 3]);
        // (-1, 0): compare with the row above.
        assert_eq!(
            channel(&affs, 0),
            vec![0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
        );
        // (0, -1): compare with the left neighbour.
        assert_eq!(
            channel(&affs, 1),
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        // (0, -2): compare with the voxel two to the left.
        assert_eq!(
            channel(&affs, 2),
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        let seg = arr2(&[[4u64, 5, 4]]).into_dyn();
        let affs = affinity_target(&seg.view(), &off(&[&[0, -2], &[0, 2]]), false).unwrap();
        assert_eq!(channel(&affs, 0), vec![0.0, 0.0, 1.0]);
        assert_eq!(channel(&affs, 1), vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn affinity_long_offsets_and_views() {
        let seg = arr1(&[1u64, 1, 1]).into_dyn();
        let affs = affinity_target(&seg.view(), &off(&[&[3], &[-7], &[0]]), false).unwrap();
        assert_eq!(channel(&affs, 0), vec![0.0; 3]);
        assert_eq!(channel(&affs, 1), vec![0.0; 3]);
        assert_eq!(channel(&affs, 2), vec![1.0; 3]);
        // A non-contiguous (transposed) view gives the same result as its copy.
        let seg = arr2(&[[1u64, 2], [1, 2], [3, 3]])
            .reversed_axes()
            .into_dyn();
        let offsets = off(&[&[0, -1], &[-1, 0]]);
        let a = affinity_target(&seg.view(), &offsets, false).unwrap();
        let b = affinity_target(&seg.as_standard_layout().view(), &offsets, false).unwrap();
        assert_eq!(a, b);
        assert_eq!(channel(&a, 0), vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn affinity_dimension_mismatch() {
        let seg = arr2(&[[1u64, 1]]).into_dyn();
        let err = affinity_target(&seg.view(), &off(&[&[0, 1], &[1]]), false).unwrap_err();
        assert_eq!(
            err,
            AffError::OffsetDims {
                index: 1,
                got: 1,
                expected: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "offset 1 has 1 entries, the array 2 spatial axes"
        );
    }

    /// Brute-force LSD at one voxel: explicit sum over the truncated Gaussian
    /// window with absolute world coordinates, following the definition.
    fn brute_lsd(seg: &ArrayViewD<u64>, vs: &[f64], sigma: f64, at: &[usize]) -> Vec<f64> {
        let n = seg.ndim();
        let label = seg[IxDyn(at)];
        let radius: Vec<i64> = vs
            .iter()
            .map(|v| (3.0 * sigma / v + 0.5).floor() as i64)
            .collect();
        let norm: f64 = vs
            .iter()
            .zip(&radius)
            .map(|(v, &r)| {
                (-r..=r)
                    .map(|d| (-0.5 * (d as f64 * v / sigma).powi(2)).exp())
                    .sum::<f64>()
            })
            .product();
        let mut count = 0.0;
        let mut sx = vec![0.0; n];
        let mut sxx = vec![vec![0.0; n]; n];
        let window: usize = radius.iter().map(|&r| (2 * r + 1) as usize).product();
        for k in 0..window {
            let mut rem = k;
            let mut delta = vec![0i64; n];
            for a in (0..n).rev() {
                let w = (2 * radius[a] + 1) as usize;
                delta[a] = (rem % w) as i64 - radius[a];
                rem /= w;
            }
            let pos: Vec<i64> = at.iter().zip(&delta).map(|(&p, &d)| p as i64 + d).collect();
            if pos
                .iter()
                .zip(seg.shape())
                .any(|(&p, &s)| p < 0 || p >= s as i64)
            {
                continue;
            }
            let idx: Vec<usize> = pos.iter().map(|&p| p as usize).collect();
            if seg[IxDyn(&idx)] != label {
                continue;
            }
            let g: f64 = delta
                .iter()
                .zip(vs)
                .map(|(&d, v)| (-0.5 * (d as f64 * v / sigma).powi(2)).exp())
                .product::<f64>()
                / norm;
            let x: Vec<f64> = idx.iter().zip(vs).map(|(&i, v)| i as f64 * v).collect();
            count += g;
            for a in 0..n {
                sx[a] += g * x[a];
                for b in 0..n {
                    sxx[a][b] += g * x[a] * x[b];
                }
            }
        }
        let x0: Vec<f64> = at.iter().zip(vs).map(|(&i, v)| i as f64 * v).collect();
        let mean: Vec<f64> = sx.iter().map(|s| s / count).collect();
        let cov = |a: usize, b: usize| sxx[a][b] / count - mean[a] * mean[b];
        let var: Vec<f64> = (0..n).map(|a| cov(a, a).max(1e-3)).collect();
        let mut out = Vec::new();
        for a in 0..n {
            out.push(((mean[a] - x0[a]) / sigma * 0.5 + 0.5).clamp(0.0, 1.0));
        }
        for v in &var {
            out.push((v / (sigma * sigma)).clamp(0.0, 1.0));
        }
        for a in 0..n {
            for b in a + 1..n {
                out.push((cov(a, b) / (var[a] * var[b]).sqrt() * 0.5 + 0.5).clamp(0.0, 1.0));
            }
        }
        out.push(count.clamp(0.0, 1.0));
        out
    }

    fn at(lsd: &ArrayD<f32>, index: &[usize]) -> Vec<f64> {
        let n = lsd.shape()[0];
        (0..n)
            .map(|c| {
                let mut full = vec![c];
                full.extend_from_slice(index);
                f64::from(lsd[IxDyn(&full)])
            })
            .collect()
    }

    fn assert_close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol,
                "channel {i}: {x} vs {y} (all: {a:?} vs {b:?})"
            );
        }
    }

    fn cube(size: usize, lo: usize, hi: usize, label: u64) -> ArrayD<u64> {
        Array3::from_shape_fn((size, size, size), |(z, y, x)| {
            u64::from([z, y, x].iter().all(|&c| (lo..hi).contains(&c))) * label
        })
        .into_dyn()
    }

    #[test]
    fn lsd_cube_centre() {
        let seg = cube(13, 4, 9, 7);
        let lsd = lsd_target(&seg.view(), &[1.0, 1.0, 1.0], 2.0, 1).unwrap();
        assert_eq!(lsd.shape(), &[10, 13, 13, 13]);
        let v = at(&lsd, &[6, 6, 6]);
        for c in [0, 1, 2, 6, 7, 8] {
            assert!((v[c] - 0.5).abs() < 1e-6, "channel {c}: {}", v[c]);
        }
        assert!((v[3] - v[4]).abs() < 1e-6 && (v[3] - v[5]).abs() < 1e-6);
        assert!(v[3] > 0.05 && v[3] < 1.0, "variance {}", v[3]);
        assert!(v[9] > 0.0 && v[9] < 1.0);
        assert_close(
            &v,
            &brute_lsd(&seg.view(), &[1.0; 3], 2.0, &[6, 6, 6]),
            1e-4,
        );
        // Off-centre voxels: offsets point towards the centre, Pearson non-trivial at
        // a corner.
        let corner = at(&lsd, &[4, 4, 4]);
        assert!(corner[0] > 0.5 && corner[1] > 0.5 && corner[2] > 0.5);
        assert_close(
            &corner,
            &brute_lsd(&seg.view(), &[1.0; 3], 2.0, &[4, 4, 4]),
            1e-4,
        );
        let edge = at(&lsd, &[4, 6, 8]);
        assert_close(
            &edge,
            &brute_lsd(&seg.view(), &[1.0; 3], 2.0, &[4, 6, 8]),
            1e-4,
        );
        // Background is all zero.
        for (index, &label) in seg.indexed_iter() {
            if label == 0 {
                assert!(at(&lsd, index.slice()).iter().all(|&x| x == 0.0));
            }
        }
    }

    #[test]
    fn lsd_matches_brute_force_on_irregular_objects() {
        let seg = Array3::from_shape_fn((9, 10, 11), |(z, y, x)| {
            if (z + y) % 7 == 0 {
                0
            } else {
                ((z * 3 + y * 5 + x * x) / 13 % 4) as u64 + 1
            }
        })
        .into_dyn();
        let vs = [2.0, 1.0, 1.5];
        let sigma = 2.5;
        let lsd = lsd_target(&seg.view(), &vs, sigma, 1).unwrap();
        for index in [[0, 0, 0], [4, 5, 6], [8, 9, 10], [2, 7, 3], [6, 1, 9]] {
            if seg[IxDyn(&index)] == 0 {
                continue;
            }
            assert_close(
                &at(&lsd, &index),
                &brute_lsd(&seg.view(), &vs, sigma, &index),
                1e-4,
            );
        }
    }

    #[test]
    fn lsd_anisotropic_voxel_size() {
        let seg = cube(13, 3, 10, 1);
        let iso = lsd_target(&seg.view(), &[1.0, 1.0, 1.0], 3.0, 1).unwrap();
        let aniso = lsd_target(&seg.view(), &[2.0, 1.0, 1.0], 3.0, 1).unwrap();
        let vi = at(&iso, &[6, 6, 6]);
        let va = at(&aniso, &[6, 6, 6]);
        // Stretching the cube along axis 0 increases the variance along axis 0
        // only; the other axes are unchanged and the centre stays symmetric.
        assert!(va[3] > vi[3] + 0.05, "{} vs {}", va[3], vi[3]);
        assert!((va[4] - vi[4]).abs() < 1e-6 && (va[5] - vi[5]).abs() < 1e-6);
        assert!((va[4] - va[5]).abs() < 1e-6);
        for c in [0, 1, 2, 6, 7, 8] {
            assert!((va[c] - 0.5).abs() < 1e-6);
        }
        assert_close(
            &va,
            &brute_lsd(&seg.view(), &[2.0, 1.0, 1.0], 3.0, &[6, 6, 6]),
            1e-4,
        );
        // A volume-filling object: the variance at the centre is the variance of
        // the truncated, sampled Gaussian, ≈ σ² for each axis.
        let full = ArrayD::from_elem(IxDyn(&[31, 31, 31]), 1u64);
        let lsd = lsd_target(&full.view(), &[2.0, 1.0, 1.0], 3.0, 1).unwrap();
        let v = at(&lsd, &[15, 15, 15]);
        let expected = |vs: f64| {
            let r = (3.0 * 3.0 / vs + 0.5).floor() as i64;
            let g = |d: i64| (-0.5 * (d as f64 * vs / 3.0).powi(2)).exp();
            let z: f64 = (-r..=r).map(g).sum();
            (-r..=r)
                .map(|d| g(d) * (d as f64 * vs).powi(2))
                .sum::<f64>()
                / z
                / 9.0
        };
        assert!(
            (v[3] - expected(2.0)).abs() < 1e-5,
            "{} {}",
            v[3],
            expected(2.0)
        );
        assert!((v[4] - expected(1.0)).abs() < 1e-5);
        assert!((v[3] - 1.0).abs() < 0.1 && (v[4] - 1.0).abs() < 0.05);
        assert!((v[9] - 1.0).abs() < 1e-6, "size {}", v[9]);
    }

    #[test]
    fn lsd_2d_channels_and_values() {
        let seg = arr2(&[
            [0u64, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 2, 2],
            [0, 1, 1, 1, 2, 2],
            [0, 0, 0, 0, 2, 2],
        ])
        .into_dyn();
        let lsd = lsd_target(&seg.view(), &[1.0, 1.0], 1.0, 1).unwrap();
        assert_eq!(lsd.shape(), &[6, 5, 6]);
        let centre = at(&lsd, &[2, 2]);
        assert!((centre[0] - 0.5).abs() < 1e-6 && (centre[1] - 0.5).abs() < 1e-6);
        assert!((centre[4] - 0.5).abs() < 1e-6);
        assert!((centre[2] - centre[3]).abs() < 1e-6);
        for index in [[2, 2], [1, 1], [3, 3], [2, 4], [4, 5]] {
            assert_close(
                &at(&lsd, &index),
                &brute_lsd(&seg.view(), &[1.0, 1.0], 1.0, &index),
                1e-4,
            );
        }
        assert!(at(&lsd, &[0, 0]).iter().all(|&x| x == 0.0));
        assert!(at(&lsd, &[4, 1]).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn lsd_1d_by_hand() {
        // Object [1, 1] at positions 1, 2 of a length-4 array, σ = 1, voxel 1:
        // radius 3, g(δ) ∝ exp(-δ²/2). At position 1 the window sees the object at
        // δ = 0 and δ = 1 with weights 1 and e^{-1/2}.
        let seg = arr1(&[0u64, 1, 1, 0]).into_dyn();
        let lsd = lsd_target(&seg.view(), &[1.0], 1.0, 1).unwrap();
        assert_eq!(lsd.shape(), &[3, 4]);
        let z: f64 = (-3i32..=3).map(|d| (-0.5 * f64::from(d * d)).exp()).sum();
        let w1 = (-0.5f64).exp();
        let count = (1.0 + w1) / z;
        let mean = w1 / (1.0 + w1);
        let var = w1 / (1.0 + w1) - mean * mean;
        let v: Vec<f64> = at(&lsd, &[1]);
        assert_close(&v, &[mean * 0.5 + 0.5, var, count], 1e-6);
        let v: Vec<f64> = at(&lsd, &[2]);
        assert_close(&v, &[-mean * 0.5 + 0.5, var, count], 1e-6);
        assert_eq!(at(&lsd, &[0]), vec![0.0; 3]);
    }

    #[test]
    fn lsd_downsampled_matches_subgrid() {
        let seg = Array3::from_shape_fn((10, 11, 12), |(z, y, x)| {
            1 + u64::from(z + y > 9) + 2 * u64::from(x > 6)
        })
        .into_dyn();
        let vs = [1.0, 1.0, 1.0];
        let lsd = lsd_target(&seg.view(), &vs, 2.0, 2).unwrap();
        assert_eq!(lsd.shape(), &[10, 10, 11, 12]);
        let sub = seg.slice_each_axis(|_| Slice::new(0, None, 2)).to_owned();
        let sub_lsd = lsd_target(&sub.view(), &[2.0, 2.0, 2.0], 2.0, 1).unwrap();
        let mut compared = 0;
        for (index, &label) in seg.indexed_iter() {
            let s = [index[0] / 2, index[1] / 2, index[2] / 2];
            if sub[IxDyn(&s)] == label {
                assert_close(&at(&lsd, index.slice()), &at(&sub_lsd, &s), 1e-6);
                compared += 1;
            }
        }
        assert!(compared > 1000);
    }

    #[test]
    fn lsd_errors() {
        let seg = ArrayD::<u64>::zeros(IxDyn(&[3, 3, 3]));
        let err = lsd_target(&seg.view(), &[1.0, 1.0], 1.0, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "voxel_size has 2 entries, the array 3 axes"
        );
        assert!(matches!(
            lsd_target(&seg.view(), &[1.0; 3], 0.0, 1),
            Err(AffError::InvalidParameter(_))
        ));
        assert!(matches!(
            lsd_target(&seg.view(), &[1.0, -1.0, 1.0], 1.0, 1),
            Err(AffError::InvalidParameter(_))
        ));
        assert!(matches!(
            lsd_target(&seg.view(), &[1.0; 3], 1.0, 0),
            Err(AffError::InvalidParameter(_))
        ));
        assert!(matches!(
            lsd_target(&seg.view(), &[1e-9; 3], 1.0, 1),
            Err(AffError::InvalidParameter(_))
        ));
        // All background: all zeros.
        let lsd = lsd_target(&seg.view(), &[1.0; 3], 1.0, 1).unwrap();
        assert!(lsd.iter().all(|&x| x == 0.0));
        let empty = ArrayD::<u64>::zeros(IxDyn(&[0, 4]));
        assert_eq!(
            lsd_target(&empty.view(), &[1.0, 1.0], 1.0, 1)
                .unwrap()
                .shape(),
            &[6, 0, 4]
        );
    }
}
