//! Random augmentation of training samples with DaCapo's semantics: mirroring and transposition,
//! elastic deformation with rotation, random contrast, gamma, a fixed scale/shift and noise.
//! Geometric augments move raw, ground truth and mask together; every random draw comes from
//! the caller's seeded generator, so a seed fixes the result.

use std::f64::consts::PI;

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::trainers::{noise_parameters, NoiseMode, NoiseParameters};
use crate::config::{AugmentConfig, ElasticAugmentConfig, Problems, Validate};

/// One training sample before targets are computed (channels first, then z, y, x or y, x).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Network input patch `(c_in, spatial…)`, larger than `gt` by a context on each side.
    pub raw: ArrayD<f32>,
    /// Labels on the output patch `(c_gt, spatial…)`, concentric with `raw`.
    pub gt: ArrayD<u64>,
    /// Annotation mask with the shape of `gt`: 1 = annotated, 0 = unknown.
    pub mask: ArrayD<f32>,
}

/// Why an augment could not be configured or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AugmentError {
    /// The number of spatial dimensions is neither 2 nor 3.
    #[error("augmentation supports 2 or 3 spatial dimensions, got {dims}")]
    Dims {
        /// The requested number of spatial dimensions.
        dims: usize,
    },
    /// The configuration of one augment is invalid.
    #[error("augment {index} ({augment}): {problem}")]
    Config {
        /// Position of the augment in the list.
        index: usize,
        /// Kind of augment, e.g. `elastic`.
        augment: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The sample or the shapes passed with it do not fit the augmenter.
    #[error("augmenting a sample: {problem}")]
    Input {
        /// What is wrong.
        problem: String,
    },
}

/// One validated augment.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Elastic(ElasticAugmentConfig),
    Simple {
        p: f64,
    },
    Gamma {
        low: f64,
        high: f64,
    },
    Intensity {
        scale: (f64, f64),
        shift: (f64, f64),
        clip: bool,
        p: f64,
    },
    ScaleShift {
        scale: f64,
        shift: f64,
    },
    Noise(NoiseParameters),
}

/// The configured augments, in order, for samples with a fixed number of spatial dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmenter {
    ops: Vec<Op>,
    dims: usize,
}

fn config_error(index: usize, augment: &'static str, problem: impl Into<String>) -> AugmentError {
    AugmentError::Config {
        index,
        augment,
        problem: problem.into(),
    }
}

fn input_error(problem: impl Into<String>) -> AugmentError {
    AugmentError::Input {
        problem: problem.into(),
    }
}

/// The first problem the config's own rules (`crate::config::trainers`) find in an augment,
/// as an error of the augment at `index`: training checks exactly what `config validate`
/// checks.
fn config_problem(config: &AugmentConfig, index: usize) -> Result<(), AugmentError> {
    let mut problems = Problems::default();
    config.validate("", &mut problems);
    match problems.iter().next() {
        None => Ok(()),
        Some(p) => Err(config_error(
            index,
            augment_name(config),
            if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            },
        )),
    }
}

fn augment_name(config: &AugmentConfig) -> &'static str {
    match config {
        AugmentConfig::Elastic(_) => "elastic",
        AugmentConfig::Simple(_) => "simple",
        AugmentConfig::Gamma(_) => "gamma",
        AugmentConfig::Intensity(_) => "intensity",
        AugmentConfig::IntensityScaleShift(_) => "intensity_scale_shift",
        AugmentConfig::Noise(_) => "noise",
    }
}

/// What only the data can tell about an elastic augment: whether it has an entry per spatial
/// axis, and whether a uniform 3D rotation has three axes to turn.
fn check_elastic(
    cfg: &ElasticAugmentConfig,
    dims: usize,
    index: usize,
) -> Result<(), AugmentError> {
    const NAME: &str = "elastic";
    if cfg.control_point_spacing.len() != dims {
        return Err(config_error(
            index,
            NAME,
            format!(
                "control_point_spacing has {} entries, the data has {dims} spatial axes",
                cfg.control_point_spacing.len()
            ),
        ));
    }
    if cfg.uniform_3d_rotation && dims != 3 {
        return Err(config_error(
            index,
            NAME,
            format!("uniform_3d_rotation needs 3 spatial axes, the data has {dims}"),
        ));
    }
    Ok(())
}

/// The combined `(scale, shift)` of all IntensityScaleShift augments, in order, for prediction.
pub fn input_normalisation(augments: &[AugmentConfig]) -> (f32, f32) {
    let (mut scale, mut shift) = (1.0f64, 0.0f64);
    for augment in augments {
        if let AugmentConfig::IntensityScaleShift(c) = augment {
            scale *= c.scale;
            shift = shift * c.scale + c.shift;
        }
    }
    (scale as f32, shift as f32)
}

/// Whether two voxel sizes count as equal.
fn same_size(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// A usable voxel size: positive and finite, else 1.
fn voxel_or_one(v: Option<&f64>) -> f64 {
    match v {
        Some(v) if v.is_finite() && *v > 0.0 => *v,
        _ => 1.0,
    }
}

/// Largest `a·|cos θ| + b·|sin θ|` over θ in `[low, high]`.
fn max_rotated_extent(low: f64, high: f64, a: f64, b: f64) -> f64 {
    let width = high - low;
    if width.is_nan() || width >= PI || low.abs() > 1e6 || high.abs() > 1e6 {
        return a.hypot(b);
    }
    let f = |t: f64| a * t.cos().abs() + b * t.sin().abs();
    let phi = b.atan2(a);
    let mut best = f(low).max(f(high));
    let k0 = (low / PI).floor() as i64 - 1;
    let k1 = (high / PI).ceil() as i64 + 1;
    for k in k0..=k1 {
        for c in [phi + k as f64 * PI, -phi + k as f64 * PI] {
            if c >= low && c <= high {
                best = best.max(f(c));
            }
        }
    }
    best
}

/// Extra voxels per side (per spatial axis) an elastic augment needs around an output of `shape`.
pub fn elastic_margin(
    config: &ElasticAugmentConfig,
    shape: &[usize],
    voxel_size_nm: &[f64],
) -> Vec<usize> {
    // Worst-case rotation over the configured interval (any rotation for uniform 3D) plus 3σ
    // of displacement. Axes of equal voxel size and extent get the same margin, so they stay
    // transposable. Missing or invalid voxel sizes count as 1.
    let d = shape.len();
    let vs: Vec<f64> = (0..d).map(|a| voxel_or_one(voxel_size_nm.get(a))).collect();
    // Half extents of the output in world units, measured between outermost voxel centres.
    let half: Vec<f64> = (0..d)
        .map(|a| shape[a].saturating_sub(1) as f64 / 2.0 * vs[a])
        .collect();
    let (low, high) = config.rotation_interval;
    let (low, high) = if low.is_finite() && high.is_finite() {
        (low.min(high), low.max(high))
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    };
    let reach: Vec<f64> = if config.uniform_3d_rotation && d == 3 {
        let norm = half.iter().map(|h| h * h).sum::<f64>().sqrt();
        vec![norm; d]
    } else if d >= 2 {
        let (y, x) = (d - 2, d - 1);
        let mut r = half.clone();
        r[y] = max_rotated_extent(low, high, half[y], half[x]);
        r[x] = max_rotated_extent(low, high, half[x], half[y]);
        r
    } else {
        half.clone()
    };
    let raw: Vec<usize> = (0..d)
        .map(|a| {
            let sigma = config
                .control_point_displacement_sigma
                .get(a)
                .copied()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0);
            let need = (reach[a] - half[a]) / vs[a] + 3.0 * sigma / vs[a];
            (need - 1e-9).ceil().max(0.0) as usize
        })
        .collect();
    (0..d)
        .map(|a| {
            (0..d)
                .filter(|&b| shape[b] == shape[a] && same_size(vs[a], vs[b]))
                .map(|b| raw[b])
                .max()
                .unwrap_or(raw[a])
        })
        .collect()
}

impl Augmenter {
    /// Validates `configs` for data with `dims` spatial axes (2 or 3).
    pub fn new(configs: &[AugmentConfig], dims: usize) -> Result<Self, AugmentError> {
        if dims != 2 && dims != 3 {
            return Err(AugmentError::Dims { dims });
        }
        let mut ops = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            config_problem(config, index)?;
            let op = match config {
                AugmentConfig::Elastic(c) => {
                    check_elastic(c, dims, index)?;
                    Op::Elastic(c.clone())
                }
                AugmentConfig::Simple(c) => Op::Simple {
                    p: c.augmentation_probability,
                },
                AugmentConfig::Gamma(c) => Op::Gamma {
                    low: c.gamma_range.0,
                    high: c.gamma_range.1,
                },
                AugmentConfig::Intensity(c) => Op::Intensity {
                    scale: c.scale,
                    shift: c.shift,
                    clip: c.clip,
                    p: c.augmentation_probability,
                },
                AugmentConfig::IntensityScaleShift(c) => Op::ScaleShift {
                    scale: c.scale,
                    shift: c.shift,
                },
                AugmentConfig::Noise(c) => Op::Noise(
                    noise_parameters(&c.kwargs).map_err(|e| config_error(index, "noise", e))?,
                ),
            };
            ops.push(op);
        }
        Ok(Self { ops, dims })
    }

    /// Margin of each elastic augment (None for the others), given the final raw shape.
    fn stage_margins(&self, raw_shape: &[usize], voxel_size_nm: &[f64]) -> Vec<Option<Vec<usize>>> {
        let mut shape = raw_shape.to_vec();
        let mut out = vec![None; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate().rev() {
            if let Op::Elastic(cfg) = op {
                let m = elastic_margin(cfg, &shape, voxel_size_nm);
                for (s, m) in shape.iter_mut().zip(&m) {
                    *s = s.saturating_add(m.saturating_mul(2));
                }
                out[i] = Some(m);
            }
        }
        out
    }

    /// Extra voxels per side (per spatial axis) the sampler must read around raw and gt for these augments.
    pub fn margin(&self, raw_shape: &[usize], voxel_size_nm: &[f64]) -> Vec<usize> {
        let mut total = vec![0usize; raw_shape.len()];
        for m in self
            .stage_margins(raw_shape, voxel_size_nm)
            .iter()
            .flatten()
        {
            for (t, m) in total.iter_mut().zip(m) {
                *t = t.saturating_add(*m);
            }
        }
        total
    }

    /// Applies every augment in order to a sample read with `margin` extra voxels per side; returns the sample at `raw_shape` / `gt_shape` (spatial).
    pub fn apply(
        &self,
        sample: Sample,
        raw_shape: &[usize],
        gt_shape: &[usize],
        voxel_size_nm: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> Result<Sample, AugmentError> {
        let d = self.dims;
        if raw_shape.len() != d || gt_shape.len() != d || voxel_size_nm.len() != d {
            return Err(input_error(format!(
                "raw_shape, gt_shape and voxel_size_nm need {d} entries, got {}, {} and {}",
                raw_shape.len(),
                gt_shape.len(),
                voxel_size_nm.len()
            )));
        }
        if let Some(v) = voxel_size_nm.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(input_error(format!(
                "voxel sizes must be positive, got {v}"
            )));
        }
        if raw_shape.iter().chain(gt_shape).any(|n| *n == 0) {
            return Err(input_error(format!(
                "raw_shape {raw_shape:?} and gt_shape {gt_shape:?} must not be empty"
            )));
        }
        if raw_shape.iter().zip(gt_shape).any(|(r, g)| g > r) {
            return Err(input_error(format!(
                "gt_shape {gt_shape:?} is larger than raw_shape {raw_shape:?}"
            )));
        }
        for (name, shape) in [
            ("raw", sample.raw.shape()),
            ("gt", sample.gt.shape()),
            ("mask", sample.mask.shape()),
        ] {
            if shape.len() != d + 1 {
                return Err(input_error(format!(
                    "{name} has shape {shape:?}; expected channels plus {d} spatial axes"
                )));
            }
        }
        if sample.gt.shape() != sample.mask.shape() {
            return Err(input_error(format!(
                "mask shape {:?} differs from gt shape {:?}",
                sample.mask.shape(),
                sample.gt.shape()
            )));
        }
        let stages = self.stage_margins(raw_shape, voxel_size_nm);
        let margin = self.margin(raw_shape, voxel_size_nm);
        let want_raw: Vec<usize> = raw_shape
            .iter()
            .zip(&margin)
            .map(|(n, m)| n.saturating_add(m.saturating_mul(2)))
            .collect();
        let want_gt: Vec<usize> = gt_shape
            .iter()
            .zip(&margin)
            .map(|(n, m)| n.saturating_add(m.saturating_mul(2)))
            .collect();
        if sample.raw.shape()[1..] != want_raw[..] || sample.gt.shape()[1..] != want_gt[..] {
            return Err(input_error(format!(
                "expected spatial shapes raw {want_raw:?} and gt {want_gt:?} (requested shapes plus a margin of {margin:?} per side), got raw {:?} and gt {:?}",
                &sample.raw.shape()[1..],
                &sample.gt.shape()[1..]
            )));
        }
        let mut s = sample;
        for (op, stage) in self.ops.iter().zip(&stages) {
            s = match op {
                Op::Elastic(cfg) => {
                    let m = stage.clone().unwrap_or_else(|| vec![0; d]);
                    elastic(s, cfg, &m, voxel_size_nm, rng)?
                }
                Op::Simple { p } => simple(s, *p, voxel_size_nm, rng),
                Op::Gamma { low, high } => {
                    gamma(&mut s.raw, *low, *high, rng);
                    s
                }
                Op::Intensity {
                    scale,
                    shift,
                    clip,
                    p,
                } => {
                    intensity(&mut s.raw, *scale, *shift, *clip, *p, rng);
                    s
                }
                Op::ScaleShift { scale, shift } => {
                    s.raw
                        .mapv_inplace(|v| (f64::from(v) * scale + shift) as f32);
                    s
                }
                Op::Noise(n) => {
                    noise(&mut s.raw, n, rng);
                    s
                }
            };
        }
        Ok(Sample {
            raw: crop_centre(s.raw, raw_shape)?,
            gt: crop_centre(s.gt, gt_shape)?,
            mask: crop_centre(s.mask, gt_shape)?,
        })
    }
}

/// The array in standard (row-major) layout.
fn standard<T: Clone>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// Crops the spatial axes (all but the first) of `a` to `target` around the centre.
fn crop_centre<T: Clone>(mut a: ArrayD<T>, target: &[usize]) -> Result<ArrayD<T>, AugmentError> {
    if a.ndim() != target.len() + 1 {
        return Err(input_error(format!(
            "cannot crop shape {:?} to spatial shape {target:?}",
            a.shape()
        )));
    }
    for (i, &t) in target.iter().enumerate() {
        let n = a.shape()[i + 1];
        if n < t {
            return Err(input_error(format!(
                "cannot crop shape {:?} to spatial shape {target:?}",
                a.shape()
            )));
        }
        let off = (n - t) / 2;
        a.slice_axis_inplace(Axis(i + 1), Slice::from(off..off + t));
    }
    Ok(standard(a))
}

/// Standard normal variates by the Box–Muller transform.
#[derive(Debug, Default)]
struct Gauss {
    spare: Option<f64>,
}

impl Gauss {
    fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - rng.gen::<f64>();
        let u2 = rng.gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }
}

/// Uniform draw in `[low, high)` (exactly `low` when the interval is empty).
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.gen::<f64>()
}

/// Random mirroring of each spatial axis and transposition among interchangeable axes.
fn simple<R: Rng + ?Sized>(s: Sample, p: f64, vs: &[f64], rng: &mut R) -> Sample {
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

/// Random contrast and brightness around the mean: `mean + (x − mean)·s + t`.
fn intensity<R: Rng + ?Sized>(
    raw: &mut ArrayD<f32>,
    scale: (f64, f64),
    shift: (f64, f64),
    clip: bool,
    p: f64,
    rng: &mut R,
) {
    if rng.gen::<f64>() >= p {
        return;
    }
    let s = uniform(rng, scale.0, scale.1);
    let t = uniform(rng, shift.0, shift.1);
    if raw.is_empty() {
        return;
    }
    let mean = raw.iter().map(|&v| f64::from(v)).sum::<f64>() / raw.len() as f64;
    raw.mapv_inplace(|v| {
        let y = mean + (f64::from(v) - mean) * s + t;
        (if clip { y.clamp(0.0, 1.0) } else { y }) as f32
    });
}

/// Random gamma correction of the min–max normalised sample.
fn gamma<R: Rng + ?Sized>(raw: &mut ArrayD<f32>, low: f64, high: f64, rng: &mut R) {
    let signed = |g: f64| if g >= 1.0 { g - 1.0 } else { -(1.0 / g - 1.0) };
    let u = uniform(rng, signed(low), signed(high));
    let g = if u >= 0.0 { u + 1.0 } else { 1.0 / (1.0 - u) };
    let min = f64::from(raw.iter().copied().fold(f32::INFINITY, f32::min));
    let max = f64::from(raw.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let range = max - min;
    if !(range.is_finite() && range > 1e-3) {
        return;
    }
    raw.mapv_inplace(|v| (min + range * ((f64::from(v) - min) / range).powf(g)) as f32);
}

/// `ln(k!)` for a whole number `k ≥ 0`.
fn ln_factorial(k: f64) -> f64 {
    if k < 20.0 {
        (2..=(k as u64)).map(|i| (i as f64).ln()).sum()
    } else {
        k * k.ln() - k + 0.5 * (2.0 * PI * k).ln() + 1.0 / (12.0 * k) - 1.0 / (360.0 * k.powi(3))
    }
}

/// A Poisson variate with mean `lam` (Knuth below 10, Hörmann's PTRS above).
fn poisson<R: Rng + ?Sized>(lam: f64, rng: &mut R) -> f64 {
    if lam.is_nan() {
        return f64::NAN;
    }
    if lam <= 0.0 {
        return 0.0;
    }
    if lam > 1e15 {
        return lam.round();
    }
    if lam < 10.0 {
        let limit = (-lam).exp();
        let mut k = 0.0;
        let mut prod = rng.gen::<f64>();
        while prod > limit && k < 1000.0 {
            k += 1.0;
            prod *= rng.gen::<f64>();
        }
        return k;
    }
    let slam = lam.sqrt();
    let loglam = lam.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    for _ in 0..1000 {
        let u = rng.gen::<f64>() - 0.5;
        let v = rng.gen::<f64>();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lam + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + inv_alpha.ln() - (a / (us * us) + b).ln() <= -lam + k * loglam - ln_factorial(k)
        {
            return k;
        }
    }
    lam.round()
}

/// scikit-image `random_noise` on the whole raw sample.
fn noise<R: Rng + ?Sized>(raw: &mut ArrayD<f32>, n: &NoiseParameters, rng: &mut R) {
    let low_clip = if raw.iter().any(|&v| v < 0.0) {
        -1.0
    } else {
        0.0
    };
    match n.mode {
        NoiseMode::Gaussian | NoiseMode::Speckle => {
            let sd = n.var.sqrt();
            let mut g = Gauss::default();
            let speckle = n.mode == NoiseMode::Speckle;
            for v in raw.iter_mut() {
                let x = f64::from(*v);
                let e = n.mean + sd * g.next(rng);
                *v = (if speckle { x + x * e } else { x + e }) as f32;
            }
        }
        NoiseMode::Salt | NoiseMode::Pepper | NoiseMode::SaltPepper => {
            let q = match n.mode {
                NoiseMode::Salt => 1.0,
                NoiseMode::Pepper => 0.0,
                _ => n.salt_vs_pepper,
            };
            for v in raw.iter_mut() {
                let flipped = rng.gen::<f64>() < n.amount;
                let salted = rng.gen::<f64>() < q;
                if flipped {
                    *v = if salted { 1.0 } else { low_clip as f32 };
                }
            }
        }
        NoiseMode::Poisson => {
            let mut values: Vec<f64> = raw.iter().map(|&v| f64::from(v)).collect();
            values.sort_by(f64::total_cmp);
            values.dedup_by(|a, b| a == b);
            let levels = 2f64.powf((values.len().max(1) as f64).log2().ceil());
            // Data with negative values is moved into [0, 1] first, as scikit-image does.
            let old_max = f64::from(raw.iter().copied().fold(f32::NEG_INFINITY, f32::max));
            let rescale = low_clip < 0.0 && old_max + 1.0 > 0.0;
            for v in raw.iter_mut() {
                let mut x = f64::from(*v);
                if rescale {
                    x = (x + 1.0) / (old_max + 1.0);
                }
                let mut y = poisson(x * levels, rng) / levels;
                if rescale {
                    y = y * (old_max + 1.0) - 1.0;
                }
                *v = y as f32;
            }
        }
    }
    if n.clip {
        raw.mapv_inplace(|v| v.clamp(low_clip as f32, 1.0));
    }
}

/// Spatial shape lifted to (z, y, x), with z = 1 for 2D data.
fn lift(spatial: &[usize]) -> [usize; 3] {
    match spatial {
        [y, x] => [1, *y, *x],
        [z, y, x] => [*z, *y, *x],
        _ => [1, 1, 1],
    }
}

/// Adds `w` to the weight of control point `idx`.
fn add_weight(ws: &mut Vec<(usize, f64)>, idx: usize, w: f64) {
    match ws.iter_mut().find(|(i, _)| *i == idx) {
        Some(entry) => entry.1 += w,
        None => ws.push((idx, w)),
    }
}

/// Catmull-Rom weights of `n` control points (ends repeated) at control coordinate `t`.
fn catmull_rom(n: usize, t: f64) -> Vec<(usize, f64)> {
    if n <= 1 {
        return vec![(0, 1.0)];
    }
    let last = n - 1;
    let t = t.clamp(0.0, last as f64);
    let i = (t.floor() as usize).min(last - 1);
    let f = t - i as f64;
    let (f2, f3) = (f * f, f * f * f);
    let w = [
        (-f3 + 2.0 * f2 - f) / 2.0,
        (3.0 * f3 - 5.0 * f2 + 2.0) / 2.0,
        (-3.0 * f3 + 4.0 * f2 + f) / 2.0,
        (f3 - f2) / 2.0,
    ];
    let mut out = Vec::with_capacity(4);
    for (k, wk) in w.iter().enumerate() {
        let idx = (i + k).saturating_sub(1).min(last);
        add_weight(&mut out, idx, *wk);
    }
    out
}

/// Per output index along one axis of length `len`, the weights of the `n` control points:
/// Catmull-Rom on a grid subsampled by `subsample`, then linear up to full resolution.
fn axis_weights(len: usize, n: usize, subsample: usize) -> Vec<Vec<(usize, f64)>> {
    let to_control = |pos: f64, span: usize| {
        if span <= 1 {
            0.0
        } else {
            pos * n.saturating_sub(1) as f64 / (span - 1) as f64
        }
    };
    let sub_len = if subsample > 1 && len > 1 {
        ((len - 1).div_ceil(subsample) + 1).min(len)
    } else {
        len
    };
    if sub_len == len {
        return (0..len)
            .map(|i| catmull_rom(n, to_control(i as f64, len)))
            .collect();
    }
    (0..len)
        .map(|i| {
            let u = i as f64 * (sub_len - 1) as f64 / (len - 1) as f64;
            let u0 = (u.floor() as usize).min(sub_len - 2);
            let fr = u - u0 as f64;
            let mut ws = Vec::with_capacity(8);
            for (k, wk) in [(u0, 1.0 - fr), (u0 + 1, fr)] {
                for (idx, w) in catmull_rom(n, to_control(k as f64, sub_len)) {
                    add_weight(&mut ws, idx, w * wk);
                }
            }
            ws
        })
        .collect()
}

/// Output-to-source rotation in voxel coordinates, (z, y, x) order.
fn rotation<R: Rng + ?Sized>(
    cfg: &ElasticAugmentConfig,
    vs: &[f64; 3],
    rng: &mut R,
) -> [[f64; 3]; 3] {
    let world = if cfg.uniform_3d_rotation {
        // Shoemake's uniformly random unit quaternion.
        let (u1, u2, u3) = (rng.gen::<f64>(), rng.gen::<f64>(), rng.gen::<f64>());
        let (a, b) = ((1.0 - u1).sqrt(), u1.sqrt());
        let (x, y) = (a * (2.0 * PI * u2).sin(), a * (2.0 * PI * u2).cos());
        let (z, w) = (b * (2.0 * PI * u3).sin(), b * (2.0 * PI * u3).cos());
        [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - w * z),
                2.0 * (x * z + w * y),
            ],
            [
                2.0 * (x * y + w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - w * x),
            ],
            [
                2.0 * (x * z - w * y),
                2.0 * (y * z + w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ]
    } else {
        let (low, high) = cfg.rotation_interval;
        let theta = uniform(rng, low, high);
        let (s, c) = theta.sin_cos();
        [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]
    };
    let mut r = [[0.0; 3]; 3];
    for a in 0..3 {
        for b in 0..3 {
            r[a][b] = world[a][b] * vs[b] / vs[a];
        }
    }
    r
}

/// Flat offsets and weights of the (up to 8) in-bounds voxels for linear interpolation at `q`.
fn linear_taps(q: &[f64; 3], dims: &[usize; 3]) -> ([(usize, f64); 8], usize) {
    let mut taps = [(0usize, 0.0f64); 8];
    let mut count = 0;
    let base = [q[0].floor(), q[1].floor(), q[2].floor()];
    let frac = [q[0] - base[0], q[1] - base[1], q[2] - base[2]];
    'corners: for corner in 0..8usize {
        let mut w = 1.0;
        let mut off = 0usize;
        for a in 0..3 {
            let bit = (corner >> (2 - a)) & 1;
            let wa = if bit == 1 { frac[a] } else { 1.0 - frac[a] };
            let i = base[a] + bit as f64;
            if wa == 0.0 || !(i >= 0.0 && i < dims[a] as f64) {
                continue 'corners;
            }
            w *= wa;
            off = off * dims[a] + i as usize;
        }
        taps[count] = (off, w);
        count += 1;
    }
    (taps, count)
}

/// Flat offset of the voxel nearest to `q`, if inside `dims`.
fn nearest(q: &[f64; 3], dims: &[usize; 3]) -> Option<usize> {
    let mut off = 0usize;
    for a in 0..3 {
        let i = q[a].round();
        if !(i >= 0.0 && i < dims[a] as f64) {
            return None;
        }
        off = off * dims[a] + i as usize;
    }
    Some(off)
}

/// Elastic deformation plus rotation; shrinks every spatial axis by `2·margin`.
fn elastic<R: Rng + ?Sized>(
    s: Sample,
    cfg: &ElasticAugmentConfig,
    margin: &[usize],
    voxel_size_nm: &[f64],
    rng: &mut R,
) -> Result<Sample, AugmentError> {
    let d = margin.len();
    let shrink = |shape: &[usize]| -> Result<Vec<usize>, AugmentError> {
        shape[1..]
            .iter()
            .zip(margin)
            .map(|(n, m)| {
                m.checked_mul(2)
                    .and_then(|mm| n.checked_sub(mm))
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        input_error(format!(
                            "shape {shape:?} is too small for an elastic margin of {margin:?}"
                        ))
                    })
            })
            .collect()
    };
    let raw_out_sp = shrink(s.raw.shape())?;
    let gt_out_sp = shrink(s.gt.shape())?;
    if rng.gen::<f64>() >= cfg.augmentation_probability {
        return Ok(Sample {
            raw: crop_centre(s.raw, &raw_out_sp)?,
            gt: crop_centre(s.gt, &gt_out_sp)?,
            mask: crop_centre(s.mask, &gt_out_sp)?,
        });
    }
    let lifted = 3 - d;
    let at = |v: &[f64], a: usize, default: f64| {
        if a < lifted {
            default
        } else {
            v.get(a - lifted).copied().unwrap_or(default)
        }
    };
    let vs = [0, 1, 2].map(|a| voxel_or_one(Some(&at(voxel_size_nm, a, 1.0))));
    let spacing_i: Vec<f64> = cfg
        .control_point_spacing
        .iter()
        .map(|s| *s as f64)
        .collect();
    let spacing = [0, 1, 2].map(|a| at(&spacing_i, a, 1.0).max(1.0));
    let sigma = [0, 1, 2].map(|a| at(&cfg.control_point_displacement_sigma, a, 0.0) / vs[a]);
    let raw_in = lift(&s.raw.shape()[1..]);
    let gt_in = lift(&s.gt.shape()[1..]);
    let raw_out = lift(&raw_out_sp);
    let gt_out = lift(&gt_out_sp);
    let (nc, ngc) = (s.raw.shape()[0], s.gt.shape()[0]);

    // Control-point displacements (voxels), truncated at 3σ.
    let controls = [0, 1, 2].map(|a| {
        if a < lifted {
            1
        } else {
            ((raw_out[a] as f64 / spacing[a]).round() as usize).max(1) + 1
        }
    });
    let n_controls = controls[0] * controls[1] * controls[2];
    let mut gauss = Gauss::default();
    let mut control_values: [Option<Vec<f64>>; 3] = [None, None, None];
    for (a, slot) in control_values.iter_mut().enumerate() {
        if sigma[a] > 0.0 {
            *slot = Some(
                (0..n_controls)
                    .map(|_| gauss.next(rng).clamp(-3.0, 3.0) * sigma[a])
                    .collect(),
            );
        }
    }
    let rot = rotation(cfg, &vs, rng);

    // Separable interpolation of the control grid: x, then y, kept per control z; z per slice.
    let sub = cfg.subsample.max(1) as usize;
    let wz = axis_weights(raw_out[0], controls[0], sub);
    let wy = axis_weights(raw_out[1], controls[1], sub);
    let wx = axis_weights(raw_out[2], controls[2], sub);
    let [cz, cy, cx] = controls;
    let [_, yo, xo] = raw_out;
    let plane = yo * xo;
    let partial: [Option<Vec<f64>>; 3] = control_values.map(|values| {
        values.map(|c| {
            let mut b = vec![0.0; cz * cy * xo];
            for row in 0..cz * cy {
                for (px, ws) in wx.iter().enumerate() {
                    b[row * xo + px] = ws.iter().map(|(k, w)| w * c[row * cx + k]).sum();
                }
            }
            let mut a = vec![0.0; cz * plane];
            for i in 0..cz {
                for (py, ws) in wy.iter().enumerate() {
                    for &(j, w) in ws {
                        let src = &b[(i * cy + j) * xo..(i * cy + j + 1) * xo];
                        let dst = &mut a[i * plane + py * xo..i * plane + (py + 1) * xo];
                        for (o, v) in dst.iter_mut().zip(src) {
                            *o += w * v;
                        }
                    }
                }
            }
            a
        })
    });

    // Row-major data (copied once if an earlier augment left strided views).
    let (raw_std, gt_std, mask_std) = (standard(s.raw), standard(s.gt), standard(s.mask));
    let layout = || input_error("elastic input is not contiguous".to_string());
    let raw_data = raw_std.as_slice().ok_or_else(layout)?;
    let gt_data = gt_std.as_slice().ok_or_else(layout)?;
    let mask_data = mask_std.as_slice().ok_or_else(layout)?;
    let vol_in = raw_in.iter().product::<usize>();
    let vol_out = raw_out.iter().product::<usize>();
    let gvol_in = gt_in.iter().product::<usize>();
    let gvol_out = gt_out.iter().product::<usize>();
    let mut raw_res = vec![0.0f32; nc * vol_out];
    let mut gt_res = vec![0u64; ngc * gvol_out];
    let mut mask_res = vec![0.0f32; ngc * gvol_out];
    let centre = |n: usize| (n as f64 - 1.0) / 2.0;
    let c_in = raw_in.map(centre);
    let c_out = raw_out.map(centre);
    let off_in = [0, 1, 2].map(|a| ((raw_in[a] - gt_in[a].min(raw_in[a])) / 2) as f64);
    let off_out = [0, 1, 2].map(|a| (raw_out[a] - gt_out[a].min(raw_out[a])) / 2);
    let inside_gt = |p: usize, a: usize| p.checked_sub(off_out[a]).filter(|g| *g < gt_out[a]);
    let mut slice: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (pz, wz_row) in wz.iter().enumerate() {
        for (a, field) in partial.iter().enumerate() {
            if let Some(field) = field {
                let dst = &mut slice[a];
                dst.clear();
                dst.resize(plane, 0.0);
                for &(i, w) in wz_row {
                    for (o, v) in dst.iter_mut().zip(&field[i * plane..(i + 1) * plane]) {
                        *o += w * v;
                    }
                }
                // Catmull-Rom can overshoot the control values a little: keep within the margin.
                let limit = 3.0 * sigma[a];
                for o in dst.iter_mut() {
                    *o = o.clamp(-limit, limit);
                }
            }
        }
        let gz = inside_gt(pz, 0);
        for py in 0..yo {
            let gy = inside_gt(py, 1);
            for px in 0..xo {
                let idx = py * xo + px;
                let rel = [
                    pz as f64 - c_out[0],
                    py as f64 - c_out[1],
                    px as f64 - c_out[2],
                ];
                let q = [0, 1, 2].map(|a| {
                    let disp = slice[a].get(idx).copied().unwrap_or(0.0);
                    c_in[a] + rot[a][0] * rel[0] + rot[a][1] * rel[1] + rot[a][2] * rel[2] + disp
                });
                let (taps, count) = linear_taps(&q, &raw_in);
                let out_idx = pz * plane + idx;
                for c in 0..nc {
                    let base = c * vol_in;
                    let acc: f64 = taps[..count]
                        .iter()
                        .map(|(o, w)| w * f64::from(raw_data[base + o]))
                        .sum();
                    raw_res[c * vol_out + out_idx] = acc as f32;
                }
                if let (Some(gz), Some(gy), Some(gx)) = (gz, gy, inside_gt(px, 2)) {
                    let qg = [q[0] - off_in[0], q[1] - off_in[1], q[2] - off_in[2]];
                    if let Some(src) = nearest(&qg, &gt_in) {
                        let dst = (gz * gt_out[1] + gy) * gt_out[2] + gx;
                        for c in 0..ngc {
                            gt_res[c * gvol_out + dst] = gt_data[c * gvol_in + src];
                            mask_res[c * gvol_out + dst] = mask_data[c * gvol_in + src];
                        }
                    }
                }
            }
        }
    }
    let with_channels = |c: usize, sp: &[usize]| -> Vec<usize> {
        std::iter::once(c).chain(sp.iter().copied()).collect()
    };
    let shape_error = |e: ndarray::ShapeError| input_error(format!("elastic output: {e}"));
    Ok(Sample {
        raw: ArrayD::from_shape_vec(IxDyn(&with_channels(nc, &raw_out_sp)), raw_res)
            .map_err(shape_error)?,
        gt: ArrayD::from_shape_vec(IxDyn(&with_channels(ngc, &gt_out_sp)), gt_res)
            .map_err(shape_error)?,
        mask: ArrayD::from_shape_vec(IxDyn(&with_channels(ngc, &gt_out_sp)), mask_res)
            .map_err(shape_error)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::f64::consts::PI;

    use ndarray::{ArrayD, Axis, IxDyn, Slice};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::{json, Value};

    use super::*;
    use crate::config::{
        GammaAugmentConfig, IntensityAugmentConfig, IntensityScaleShiftAugmentConfig,
        NoiseAugmentConfig, SimpleAugmentConfig,
    };

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// A deterministic pseudo-random value in [0, 1) for index `i`.
    fn hash01(i: usize) -> f32 {
        let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    fn crop(a: &ArrayD<f32>, target: &[usize]) -> ArrayD<f32> {
        let mut v = a.view();
        for (i, &t) in target.iter().enumerate() {
            let off = (v.shape()[i + 1] - t) / 2;
            v.slice_axis_inplace(Axis(i + 1), Slice::from(off..off + t));
        }
        v.to_owned()
    }

    /// gt = raw channel 0 > 0.5 on the centre crop of `gt_shape`, mask all ones.
    fn thresholded(raw: ArrayD<f32>, gt_shape: &[usize]) -> Sample {
        let gt = crop(&raw, gt_shape)
            .index_axis(Axis(0), 0)
            .mapv(|v| u64::from(v > 0.5))
            .insert_axis(Axis(0));
        let mask = gt.mapv(|_| 1.0f32);
        Sample { raw, gt, mask }
    }

    /// Fraction of gt voxels that differ from the threshold of raw's centre crop.
    fn mismatch(s: &Sample) -> f64 {
        let expect = thresholded(s.raw.clone(), &s.gt.shape()[1..]).gt;
        let bad = expect
            .iter()
            .zip(s.gt.iter())
            .filter(|(a, b)| a != b)
            .count();
        bad as f64 / s.gt.len() as f64
    }

    fn ramp(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| i as f32 / n as f32).collect()).unwrap()
    }

    fn raw_only(raw: ArrayD<f32>) -> Sample {
        let spatial = &raw.shape()[1..];
        let mut shape = vec![1];
        shape.extend_from_slice(spatial);
        Sample {
            raw,
            gt: ArrayD::zeros(IxDyn(&shape)),
            mask: ArrayD::zeros(IxDyn(&shape)),
        }
    }

    fn run(
        configs: &[AugmentConfig],
        s: Sample,
        raw: &[usize],
        gt: &[usize],
        vs: &[f64],
        seed: u64,
    ) -> Sample {
        let aug = Augmenter::new(configs, raw.len()).unwrap();
        aug.apply(s, raw, gt, vs, &mut rng(seed)).unwrap()
    }

    fn elastic_cfg(spacing: Vec<i64>, sigma: Vec<f64>, rot: (f64, f64)) -> ElasticAugmentConfig {
        ElasticAugmentConfig {
            control_point_spacing: spacing,
            control_point_displacement_sigma: sigma,
            rotation_interval: rot,
            subsample: 1,
            uniform_3d_rotation: false,
            augmentation_probability: 1.0,
        }
    }

    fn noise_cfg(kwargs: Value) -> AugmentConfig {
        let map: BTreeMap<String, Value> = match kwargs {
            Value::Object(m) => m.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        AugmentConfig::Noise(NoiseAugmentConfig { kwargs: map })
    }

    #[test]
    fn intensity_exact_values() {
        let raw = ArrayD::from_shape_vec(IxDyn(&[1, 2, 2]), vec![0.0, 0.1, 0.2, 0.3]).unwrap();
        let cfg = |clip| {
            AugmentConfig::Intensity(IntensityAugmentConfig {
                scale: (2.0, 2.0),
                shift: (0.1, 0.1),
                clip,
                augmentation_probability: 1.0,
            })
        };
        // mean 0.15: x' = 0.15 + (x − 0.15)·2 + 0.1 = 2x − 0.05.
        let out = run(
            &[cfg(false)],
            raw_only(raw.clone()),
            &[2, 2],
            &[2, 2],
            &[1.0, 1.0],
            1,
        );
        for (o, e) in out.raw.iter().zip([-0.05f32, 0.15, 0.35, 0.55]) {
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
        let out = run(
            &[cfg(true)],
            raw_only(raw.clone()),
            &[2, 2],
            &[2, 2],
            &[1.0, 1.0],
            1,
        );
        for (o, e) in out.raw.iter().zip([0.0f32, 0.15, 0.35, 0.55]) {
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
        let never = AugmentConfig::Intensity(IntensityAugmentConfig {
            scale: (2.0, 2.0),
            shift: (0.1, 0.1),
            clip: true,
            augmentation_probability: 0.0,
        });
        let out = run(
            &[never],
            raw_only(raw.clone()),
            &[2, 2],
            &[2, 2],
            &[1.0, 1.0],
            1,
        );
        assert_eq!(out.raw, raw);
    }

    #[test]
    fn scale_shift_exact_and_input_normalisation() {
        let a = AugmentConfig::IntensityScaleShift(IntensityScaleShiftAugmentConfig {
            scale: 2.0,
            shift: -1.0,
        });
        let b = AugmentConfig::IntensityScaleShift(IntensityScaleShiftAugmentConfig {
            scale: 0.5,
            shift: 0.25,
        });
        let raw = ArrayD::from_shape_vec(IxDyn(&[1, 1, 3]), vec![0.0, 0.5, 1.0]).unwrap();
        let out = run(
            std::slice::from_ref(&a),
            raw_only(raw.clone()),
            &[1, 3],
            &[1, 3],
            &[1.0, 1.0],
            0,
        );
        assert_eq!(
            out.raw.iter().copied().collect::<Vec<_>>(),
            vec![-1.0, 0.0, 1.0]
        );
        let simple = AugmentConfig::Simple(SimpleAugmentConfig {
            augmentation_probability: 0.0,
        });
        assert_eq!(input_normalisation(&[]), (1.0, 0.0));
        // (x·2 − 1)·0.5 + 0.25 = x − 0.25.
        assert_eq!(
            input_normalisation(&[a.clone(), simple, b.clone()]),
            (1.0, -0.25)
        );
        let out = run(&[a, b], raw_only(raw), &[1, 3], &[1, 3], &[1.0, 1.0], 0);
        assert_eq!(
            out.raw.iter().copied().collect::<Vec<_>>(),
            vec![-0.25, 0.25, 0.75]
        );
    }

    #[test]
    fn gamma_squares_normalised_ramp() {
        let raw =
            ArrayD::from_shape_vec(IxDyn(&[1, 1, 5]), vec![2.0f32, 2.5, 3.0, 3.5, 4.0]).unwrap();
        let cfg = |g: (f64, f64)| AugmentConfig::Gamma(GammaAugmentConfig { gamma_range: g });
        let out = run(
            &[cfg((2.0, 2.0))],
            raw_only(raw.clone()),
            &[1, 5],
            &[1, 5],
            &[1.0, 1.0],
            3,
        );
        for (o, x) in out.raw.iter().zip(raw.iter()) {
            let e = 2.0 + 2.0 * ((x - 2.0) / 2.0).powi(2);
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
        // gamma 0.5 maps to the signed scale −1, i.e. γ = 1/(1+1) = 0.5.
        let out = run(
            &[cfg((0.5, 0.5))],
            raw_only(raw.clone()),
            &[1, 5],
            &[1, 5],
            &[1.0, 1.0],
            3,
        );
        for (o, x) in out.raw.iter().zip(raw.iter()) {
            let e = 2.0 + 2.0 * ((x - 2.0) / 2.0).sqrt();
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
        // A range across 1 gives exponents on both sides, all within [0.5, 2].
        let aug = Augmenter::new(&[cfg((0.5, 2.0))], 2).unwrap();
        let mut r = rng(9);
        for _ in 0..20 {
            let out = aug
                .apply(raw_only(raw.clone()), &[1, 5], &[1, 5], &[1.0, 1.0], &mut r)
                .unwrap();
            let mid = (out.raw[[0, 0, 2]] - 2.0) / 2.0;
            let g = mid.ln() / 0.5f32.ln();
            assert!((0.5 - 1e-4..=2.0 + 1e-4).contains(&g), "{g}");
        }
        let flat = ArrayD::from_elem(IxDyn(&[1, 2, 2]), 0.7f32);
        let out = run(
            &[cfg((2.0, 2.0))],
            raw_only(flat.clone()),
            &[2, 2],
            &[2, 2],
            &[1.0, 1.0],
            3,
        );
        assert_eq!(out.raw, flat);
    }

    fn hashed(shape: &[usize]) -> ArrayD<f32> {
        let n: usize = shape.iter().product();
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(hash01).collect()).unwrap()
    }

    #[test]
    fn simple_keeps_gt_aligned() {
        let simple = AugmentConfig::Simple(SimpleAugmentConfig {
            augmentation_probability: 1.0,
        });
        let aug = Augmenter::new(std::slice::from_ref(&simple), 3).unwrap();
        let mut r = rng(5);
        let base = thresholded(hashed(&[2, 12, 12, 12]), &[8, 8, 8]);
        let mut changed = 0;
        for _ in 0..40 {
            let out = aug
                .apply(
                    base.clone(),
                    &[12, 12, 12],
                    &[8, 8, 8],
                    &[4.0, 4.0, 4.0],
                    &mut r,
                )
                .unwrap();
            assert_eq!(mismatch(&out), 0.0);
            changed += usize::from(out.raw != base.raw);
        }
        assert!(changed > 30);
        // 2D with a context that differs per axis: y and x cannot be swapped for gt, so only mirroring.
        let aug = Augmenter::new(&[simple], 2).unwrap();
        let base = thresholded(hashed(&[1, 10, 10]), &[6, 4]);
        for _ in 0..20 {
            let out = aug
                .apply(base.clone(), &[10, 10], &[6, 4], &[4.0, 4.0], &mut r)
                .unwrap();
            assert_eq!(out.gt.shape(), &[1, 6, 4]);
            assert_eq!(mismatch(&out), 0.0);
        }
    }

    #[test]
    fn simple_never_swaps_anisotropic_z() {
        let n = 6;
        let raw = ArrayD::from_shape_fn(IxDyn(&[1, n, n, n]), |i| {
            (i[1] * 100 + i[2] * 10 + i[3]) as f32
        });
        let base = raw_only(raw);
        let aug = Augmenter::new(
            &[AugmentConfig::Simple(SimpleAugmentConfig {
                augmentation_probability: 1.0,
            })],
            3,
        )
        .unwrap();
        let z_kept = |s: &Sample| {
            s.raw.indexed_iter().all(|(i, v)| {
                let z = (*v as usize) / 100;
                z == i[1] || z == n - 1 - i[1]
            })
        };
        let mut r = rng(11);
        for _ in 0..40 {
            let out = aug
                .apply(
                    base.clone(),
                    &[n, n, n],
                    &[n, n, n],
                    &[40.0, 4.0, 4.0],
                    &mut r,
                )
                .unwrap();
            assert!(z_kept(&out));
        }
        let swapped = (0..40).any(|_| {
            let out = aug
                .apply(
                    base.clone(),
                    &[n, n, n],
                    &[n, n, n],
                    &[4.0, 4.0, 4.0],
                    &mut r,
                )
                .unwrap();
            !z_kept(&out)
        });
        assert!(swapped, "isotropic data should sometimes have z transposed");
    }

    #[test]
    fn elastic_without_deformation_is_identity_after_crop() {
        let still = AugmentConfig::Elastic(elastic_cfg(vec![5, 5], vec![0.0, 0.0], (0.0, 0.0)));
        let mut skipped = elastic_cfg(vec![5, 5], vec![4.0, 4.0], (PI / 4.0, PI / 4.0));
        skipped.augmentation_probability = 0.0;
        let configs = [still, AugmentConfig::Elastic(skipped)];
        let aug = Augmenter::new(&configs, 2).unwrap();
        let (raw_shape, gt_shape) = ([20, 24], [12, 16]);
        let m = aug.margin(&raw_shape, &[4.0, 4.0]);
        assert!(m.iter().all(|m| *m > 0));
        let big_raw: Vec<usize> = raw_shape.iter().zip(&m).map(|(n, m)| n + 2 * m).collect();
        let big_gt: Vec<usize> = gt_shape.iter().zip(&m).map(|(n, m)| n + 2 * m).collect();
        let raw = hashed(&[2, big_raw[0], big_raw[1]]);
        let gt = hashed(&[2, big_gt[0], big_gt[1]]).mapv(|v| (v * 200.0) as u64);
        let mask = gt.mapv(|v| (v % 2) as f32);
        let s = Sample {
            raw: raw.clone(),
            gt: gt.clone(),
            mask: mask.clone(),
        };
        let out = aug
            .apply(s, &raw_shape, &gt_shape, &[4.0, 4.0], &mut rng(1))
            .unwrap();
        assert_eq!(out.raw, crop(&raw, &raw_shape));
        assert_eq!(
            out.gt.mapv(|v| v as f32),
            crop(&gt.mapv(|v| v as f32), &gt_shape)
        );
        assert_eq!(out.mask, crop(&mask, &gt_shape));

        // 3D, subsampled field, margin 0: exactly the input.
        let mut cfg = elastic_cfg(vec![4, 4, 4], vec![0.0; 3], (0.0, 0.0));
        cfg.subsample = 2;
        let s = thresholded(hashed(&[1, 7, 9, 8]), &[3, 5, 4]);
        let out = run(
            &[AugmentConfig::Elastic(cfg)],
            s.clone(),
            &[7, 9, 8],
            &[3, 5, 4],
            &[40.0, 4.0, 4.0],
            2,
        );
        assert_eq!(out, s);
    }

    #[test]
    fn elastic_rotation_by_90_degrees_moves_pixel() {
        let rot = AugmentConfig::Elastic(elastic_cfg(
            vec![4, 4],
            vec![0.0, 0.0],
            (PI / 2.0, PI / 2.0),
        ));
        let aug = Augmenter::new(std::slice::from_ref(&rot), 2).unwrap();
        assert_eq!(aug.margin(&[9, 9], &[1.0, 1.0]), vec![0, 0]);
        // Output p shows source c + R(p − c) with R = [[cos, −sin], [sin, cos]] on (y, x), c = 4:
        // source (2, 5) appears at output (5, 6).
        let mut raw = ArrayD::<f32>::zeros(IxDyn(&[1, 9, 9]));
        raw[[0, 2, 5]] = 1.0;
        let mut gt = ArrayD::<u64>::zeros(IxDyn(&[1, 5, 5]));
        gt[[0, 0, 3]] = 7;
        let mask = ArrayD::<f32>::ones(IxDyn(&[1, 5, 5]));
        let out = aug
            .apply(
                Sample { raw, gt, mask },
                &[9, 9],
                &[5, 5],
                &[1.0, 1.0],
                &mut rng(0),
            )
            .unwrap();
        for ((_, y, x), v) in out
            .raw
            .indexed_iter()
            .map(|(i, v)| ((i[0], i[1], i[2]), *v))
        {
            let e = if (y, x) == (5, 6) { 1.0 } else { 0.0 };
            assert!((v - e).abs() < 1e-6, "({y}, {x}) = {v}");
        }
        for (i, v) in out.gt.indexed_iter() {
            assert_eq!(*v, if (i[1], i[2]) == (3, 4) { 7 } else { 0 });
        }
        assert!(out.mask.iter().all(|v| *v == 1.0));

        // 3D: the same in-plane rotation, z untouched.
        let rot = AugmentConfig::Elastic(elastic_cfg(
            vec![4, 4, 4],
            vec![0.0; 3],
            (PI / 2.0, PI / 2.0),
        ));
        let mut raw = ArrayD::<f32>::zeros(IxDyn(&[1, 5, 9, 9]));
        raw[[0, 1, 2, 5]] = 1.0;
        let out = run(
            &[rot],
            raw_only(raw),
            &[5, 9, 9],
            &[5, 9, 9],
            &[40.0, 4.0, 4.0],
            0,
        );
        for (i, v) in out.raw.indexed_iter() {
            let e = if (i[1], i[2], i[3]) == (1, 5, 6) {
                1.0
            } else {
                0.0
            };
            assert!((v - e).abs() < 1e-6, "{i:?} = {v}");
        }
    }

    fn smooth(shape: &[usize]) -> ArrayD<f32> {
        ArrayD::from_shape_fn(IxDyn(shape), |i| {
            let sp: Vec<f64> = ndarray::Dimension::slice(&i)
                .iter()
                .skip(1)
                .map(|v| *v as f64)
                .collect();
            let v = match sp.as_slice() {
                [y, x] => (y / 9.0).sin() * (x / 11.0 + 0.3).cos(),
                [z, y, x] => (z / 7.0 + 0.5).sin() * (y / 9.0).sin() + (x / 11.0).cos() * 0.5,
                _ => 0.0,
            };
            (0.5 + 0.5 * v) as f32
        })
    }

    #[test]
    fn elastic_keeps_gt_aligned() {
        let cfg = elastic_cfg(vec![10, 10], vec![8.0, 8.0], (0.0, 2.0 * PI));
        let configs = [AugmentConfig::Elastic(cfg)];
        let aug = Augmenter::new(&configs, 2).unwrap();
        let (raw_shape, gt_shape, vs) = ([48, 48], [32, 32], [4.0, 4.0]);
        let m = aug.margin(&raw_shape, &vs);
        let s = thresholded(
            smooth(&[1, raw_shape[0] + 2 * m[0], raw_shape[1] + 2 * m[1]]),
            &[gt_shape[0] + 2 * m[0], gt_shape[1] + 2 * m[1]],
        );
        let mut r = rng(21);
        for _ in 0..4 {
            let out = aug
                .apply(s.clone(), &raw_shape, &gt_shape, &vs, &mut r)
                .unwrap();
            assert_eq!(out.raw.shape(), &[1, 48, 48]);
            assert!(mismatch(&out) < 0.02, "{}", mismatch(&out));
            assert_eq!(
                out.raw.iter().filter(|v| **v == 0.0).count(),
                0,
                "read outside the source"
            );
        }

        let mut cfg = elastic_cfg(vec![6, 6, 6], vec![80.0, 8.0, 8.0], (0.0, 0.0));
        cfg.uniform_3d_rotation = true;
        cfg.subsample = 2;
        let aug = Augmenter::new(&[AugmentConfig::Elastic(cfg)], 3).unwrap();
        let (raw_shape, gt_shape, vs) = ([12, 20, 20], [8, 12, 12], [40.0, 4.0, 4.0]);
        let m = aug.margin(&raw_shape, &vs);
        let big =
            |s: &[usize]| -> Vec<usize> { s.iter().zip(&m).map(|(n, m)| n + 2 * m).collect() };
        let mut shape = vec![1];
        shape.extend(big(&raw_shape));
        let s = thresholded(smooth(&shape), &big(&gt_shape));
        for _ in 0..3 {
            let out = aug
                .apply(s.clone(), &raw_shape, &gt_shape, &vs, &mut r)
                .unwrap();
            assert!(mismatch(&out) < 0.02, "{}", mismatch(&out));
            assert_eq!(
                out.raw.iter().filter(|v| **v == 0.0).count(),
                0,
                "read outside the source"
            );
        }
    }

    #[test]
    fn elastic_margin_covers_rotation_and_displacement() {
        let cfg = elastic_cfg(vec![10, 10], vec![0.0, 0.0], (PI / 4.0, PI / 4.0));
        // Half extent 49.5 rotated by 45° reaches 49.5·√2 = 70.0: 20.5 voxels more.
        assert_eq!(elastic_margin(&cfg, &[100, 100], &[4.0, 4.0]), vec![21, 21]);
        let cfg = elastic_cfg(vec![10, 10], vec![0.0, 0.0], (0.0, 0.1));
        let m = elastic_margin(&cfg, &[100, 100], &[4.0, 4.0]);
        assert!(m[0] > 0 && m[0] < 6, "{m:?}");
        // 3σ displacement: σ = 8 nm at 4 nm voxels → 6 voxels.
        let cfg = elastic_cfg(vec![10, 10], vec![8.0, 8.0], (0.0, 0.0));
        assert_eq!(elastic_margin(&cfg, &[100, 100], &[4.0, 4.0]), vec![6, 6]);
        // Unequal sigmas on interchangeable axes: equalised.
        let cfg = elastic_cfg(vec![10, 10], vec![8.0, 4.0], (0.0, 0.0));
        assert_eq!(elastic_margin(&cfg, &[100, 100], &[4.0, 4.0]), vec![6, 6]);
        // In-plane rotation leaves z alone; uniform 3D rotation can reach the half diagonal.
        let cfg = elastic_cfg(vec![10, 10, 10], vec![0.0; 3], (0.0, PI));
        assert_eq!(
            elastic_margin(&cfg, &[10, 10, 10], &[4.0, 1.0, 1.0]),
            vec![0, 2, 2]
        );
        // … unless z is interchangeable with y and x (same voxel size and extent).
        assert_eq!(
            elastic_margin(&cfg, &[10, 10, 10], &[1.0; 3]),
            vec![2, 2, 2]
        );
        let mut cfg = cfg;
        cfg.uniform_3d_rotation = true;
        // 4.5·√3 − 4.5 = 3.29.
        assert_eq!(
            elastic_margin(&cfg, &[10, 10, 10], &[1.0; 3]),
            vec![4, 4, 4]
        );
        // Two elastic augments: margins add up.
        let e = AugmentConfig::Elastic(elastic_cfg(vec![10, 10], vec![8.0, 8.0], (0.0, 0.0)));
        let aug = Augmenter::new(&[e.clone(), e], 2).unwrap();
        assert_eq!(aug.margin(&[100, 100], &[4.0, 4.0]), vec![12, 12]);
    }

    #[test]
    fn noise_gaussian_has_requested_std() {
        let raw = ArrayD::from_elem(IxDyn(&[1, 100, 100]), 0.5f32);
        let out = run(
            &[noise_cfg(json!({"mode": "gaussian", "var": 0.01}))],
            raw_only(raw),
            &[100, 100],
            &[100, 100],
            &[1.0, 1.0],
            4,
        );
        let n = out.raw.len() as f64;
        let mean = out.raw.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        let sd = (out
            .raw
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert!((sd - 0.1).abs() < 0.01, "{sd}");
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        // Default mode is gaussian too.
        let raw = ArrayD::from_elem(IxDyn(&[1, 10, 10]), 0.5f32);
        let out = run(
            &[noise_cfg(json!({}))],
            raw_only(raw.clone()),
            &[10, 10],
            &[10, 10],
            &[1.0, 1.0],
            4,
        );
        assert_ne!(out.raw, raw);
        // Speckle is multiplicative: zeros stay zero.
        let zeros = ArrayD::<f32>::zeros(IxDyn(&[1, 10, 10]));
        let out = run(
            &[noise_cfg(json!({"mode": "speckle"}))],
            raw_only(zeros.clone()),
            &[10, 10],
            &[10, 10],
            &[1.0, 1.0],
            4,
        );
        assert_eq!(out.raw, zeros);
    }

    #[test]
    fn noise_salt_and_pepper_changes_amount() {
        let raw = ArrayD::from_elem(IxDyn(&[1, 100, 100]), 0.5f32);
        let out = run(
            &[noise_cfg(json!({"mode": "s&p", "amount": 0.1}))],
            raw_only(raw.clone()),
            &[100, 100],
            &[100, 100],
            &[1.0, 1.0],
            8,
        );
        let salt = out.raw.iter().filter(|v| **v == 1.0).count() as f64 / 1e4;
        let pepper = out.raw.iter().filter(|v| **v == 0.0).count() as f64 / 1e4;
        assert!((salt + pepper - 0.1).abs() < 0.01, "{salt} {pepper}");
        assert!(
            (salt - 0.05).abs() < 0.01 && (pepper - 0.05).abs() < 0.01,
            "{salt} {pepper}"
        );
        assert!(out.raw.iter().all(|v| [0.0, 0.5, 1.0].contains(v)));
        // Pepper on data with negative values uses −1.
        let neg = ArrayD::from_elem(IxDyn(&[1, 10, 10]), -0.5f32);
        let out = run(
            &[noise_cfg(json!({"mode": "pepper", "amount": 1.0}))],
            raw_only(neg),
            &[10, 10],
            &[10, 10],
            &[1.0, 1.0],
            8,
        );
        assert!(out.raw.iter().all(|v| *v == -1.0));
        let out = run(
            &[noise_cfg(json!({"mode": "salt", "amount": 1.0}))],
            raw_only(raw),
            &[100, 100],
            &[100, 100],
            &[1.0, 1.0],
            8,
        );
        assert!(out.raw.iter().all(|v| *v == 1.0));
    }

    #[test]
    fn noise_poisson_keeps_levels_and_mean() {
        // 3 distinct values → 4 levels: out = Poisson(4x)/4, clipped to [0, 1].
        let raw = ArrayD::from_shape_fn(IxDyn(&[1, 60, 60]), |i| [0.0f32, 0.25, 0.5][i[2] % 3]);
        let out = run(
            &[noise_cfg(json!({"mode": "poisson", "clip": false}))],
            raw_only(raw.clone()),
            &[60, 60],
            &[60, 60],
            &[1.0, 1.0],
            8,
        );
        assert!(out.raw.iter().all(|v| (v * 4.0).fract() == 0.0));
        let mean = |a: &ArrayD<f32>| a.iter().map(|v| f64::from(*v)).sum::<f64>() / a.len() as f64;
        assert!((mean(&out.raw) - 0.25).abs() < 0.02, "{}", mean(&out.raw));
        assert!(out
            .raw
            .iter()
            .zip(raw.iter())
            .all(|(o, r)| *r != 0.0 || *o == 0.0));
        // Many levels: PTRS branch, mean kept.
        let fine = ramp(&[1, 40, 40]).mapv(|v| 0.25 + 0.5 * v);
        let out = run(
            &[noise_cfg(json!({"mode": "poisson"}))],
            raw_only(fine.clone()),
            &[40, 40],
            &[40, 40],
            &[1.0, 1.0],
            8,
        );
        assert!((mean(&out.raw) - mean(&fine)).abs() < 0.01);
        assert!(out.raw.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn same_seed_same_output_different_seed_different() {
        let mut elastic = elastic_cfg(vec![8, 8, 8], vec![40.0, 8.0, 8.0], (0.0, PI));
        elastic.subsample = 2;
        let configs = [
            AugmentConfig::Simple(SimpleAugmentConfig {
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Elastic(elastic),
            AugmentConfig::Intensity(IntensityAugmentConfig {
                scale: (0.8, 1.2),
                shift: (-0.1, 0.1),
                clip: true,
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Gamma(GammaAugmentConfig {
                gamma_range: (0.7, 1.5),
            }),
            noise_cfg(json!({"mode": "gaussian", "var": 0.001})),
        ];
        let aug = Augmenter::new(&configs, 3).unwrap();
        let (raw_shape, gt_shape, vs) = ([8, 16, 16], [4, 8, 8], [40.0, 4.0, 4.0]);
        let m = aug.margin(&raw_shape, &vs);
        let big =
            |s: &[usize]| -> Vec<usize> { s.iter().zip(&m).map(|(n, m)| n + 2 * m).collect() };
        let mut shape = vec![1];
        shape.extend(big(&raw_shape));
        let s = thresholded(smooth(&shape), &big(&gt_shape));
        let a = aug
            .apply(s.clone(), &raw_shape, &gt_shape, &vs, &mut rng(42))
            .unwrap();
        let b = aug
            .apply(s.clone(), &raw_shape, &gt_shape, &vs, &mut rng(42))
            .unwrap();
        let c = aug
            .apply(s, &raw_shape, &gt_shape, &vs, &mut rng(43))
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a.raw, c.raw);
        assert_eq!(a.raw.shape(), &[1, 8, 16, 16]);
        assert_eq!(a.gt.shape(), &[1, 4, 8, 8]);
    }

    #[test]
    fn bad_configs_are_errors() {
        let e = |spacing: Vec<i64>, sigma: Vec<f64>| {
            AugmentConfig::Elastic(elastic_cfg(spacing, sigma, (0.0, 1.0)))
        };
        assert!(matches!(
            Augmenter::new(&[e(vec![10, 10], vec![1.0, 1.0])], 3),
            Err(AugmentError::Config {
                index: 0,
                augment: "elastic",
                ..
            })
        ));
        assert!(matches!(
            Augmenter::new(&[e(vec![10, 10, 10], vec![1.0, 1.0])], 3),
            Err(AugmentError::Config { .. })
        ));
        assert!(matches!(
            Augmenter::new(&[e(vec![10, 0, 10], vec![1.0; 3])], 3),
            Err(AugmentError::Config { .. })
        ));
        let mut u = elastic_cfg(vec![10, 10], vec![1.0, 1.0], (0.0, 1.0));
        u.uniform_3d_rotation = true;
        assert!(Augmenter::new(&[AugmentConfig::Elastic(u)], 2).is_err());
        assert!(matches!(
            Augmenter::new(&[], 4),
            Err(AugmentError::Dims { dims: 4 })
        ));
        let ok = noise_cfg(json!({"mode": "gaussian"}));
        let err = Augmenter::new(&[ok, noise_cfg(json!({"mode": "blur"}))], 2).unwrap_err();
        assert!(matches!(
            err,
            AugmentError::Config {
                index: 1,
                augment: "noise",
                ..
            }
        ));
        assert!(err.to_string().contains("blur"), "{err}");
        // Accepted as `config validate` accepts it, and refused with the same words.
        assert!(Augmenter::new(&[noise_cfg(json!({"mode": "localvar"}))], 2).is_ok());
        let kwargs = json!({"mode": "localvar", "local_vars": 0.02});
        let err = Augmenter::new(&[noise_cfg(kwargs.clone())], 2).unwrap_err();
        assert!(matches!(err, AugmentError::Config { .. }), "{err}");
        let said = noise_parameters(&serde_json::from_value(kwargs).unwrap()).unwrap_err();
        assert!(err.to_string().contains(&said), "{err}");
        assert!(
            Augmenter::new(&[noise_cfg(json!({"mode": "gaussian", "amount": 0.1}))], 2).is_err()
        );
        assert!(Augmenter::new(&[noise_cfg(json!({"var": -1.0}))], 2).is_err());
        assert!(Augmenter::new(&[noise_cfg(json!({"mode": 3}))], 2).is_err());
        assert!(Augmenter::new(
            &[AugmentConfig::Gamma(GammaAugmentConfig {
                gamma_range: (0.0, 1.0)
            })],
            2
        )
        .is_err());
        let p = AugmentConfig::Simple(SimpleAugmentConfig {
            augmentation_probability: 1.5,
        });
        assert!(Augmenter::new(&[p], 2).is_err());
    }

    #[test]
    fn bad_samples_are_errors() {
        let e = AugmentConfig::Elastic(elastic_cfg(vec![4, 4], vec![8.0, 8.0], (0.0, 0.0)));
        let aug = Augmenter::new(&[e], 2).unwrap();
        let s = thresholded(smooth(&[1, 10, 10]), &[6, 6]);
        // Not enlarged by the margin.
        let err = aug
            .apply(s.clone(), &[10, 10], &[6, 6], &[4.0, 4.0], &mut rng(0))
            .unwrap_err();
        assert!(matches!(err, AugmentError::Input { .. }), "{err}");
        assert!(aug
            .apply(s.clone(), &[10, 10, 10], &[6, 6], &[4.0, 4.0], &mut rng(0))
            .is_err());
        assert!(aug
            .apply(s.clone(), &[4, 4], &[0, 0], &[4.0, 4.0], &mut rng(0))
            .is_err());
        assert!(aug
            .apply(s.clone(), &[4, 4], &[6, 6], &[4.0, 4.0], &mut rng(0))
            .is_err());
        assert!(aug
            .apply(s, &[4, 4], &[0, 0], &[0.0, 4.0], &mut rng(0))
            .is_err());
        let plain = Augmenter::new(&[], 2).unwrap();
        let wrong_mask = Sample {
            raw: ArrayD::zeros(IxDyn(&[1, 4, 4])),
            gt: ArrayD::zeros(IxDyn(&[1, 4, 4])),
            mask: ArrayD::zeros(IxDyn(&[1, 3, 4])),
        };
        assert!(plain
            .apply(wrong_mask, &[4, 4], &[4, 4], &[1.0, 1.0], &mut rng(0))
            .is_err());
        let no_channels = Sample {
            raw: ArrayD::zeros(IxDyn(&[4, 4])),
            gt: ArrayD::zeros(IxDyn(&[1, 4, 4])),
            mask: ArrayD::zeros(IxDyn(&[1, 4, 4])),
        };
        assert!(plain
            .apply(no_channels, &[4, 4], &[4, 4], &[1.0, 1.0], &mut rng(0))
            .is_err());
    }

    #[test]
    fn random_configs_and_shapes_never_fail() {
        let mut r = rng(7);
        for it in 0..300 {
            let d = if r.gen::<bool>() { 2 } else { 3 };
            let mut cfgs = Vec::new();
            for _ in 0..r.gen_range(0..4) {
                let k = r.gen_range(0..6);
                cfgs.push(match k {
                    0 => AugmentConfig::Elastic(ElasticAugmentConfig {
                        control_point_spacing: (0..d).map(|_| r.gen_range(1..8)).collect(),
                        control_point_displacement_sigma: (0..d)
                            .map(|_| r.gen_range(0.0..10.0))
                            .collect(),
                        rotation_interval: (r.gen_range(-7.0..0.0), r.gen_range(0.0..7.0)),
                        subsample: r.gen_range(1..4),
                        uniform_3d_rotation: d == 3 && r.gen::<bool>(),
                        augmentation_probability: r.gen(),
                    }),
                    1 => AugmentConfig::Simple(crate::config::SimpleAugmentConfig {
                        augmentation_probability: r.gen(),
                    }),
                    2 => {
                        // The config's rules (low ≤ high) hold for training too.
                        let (a, b): (f64, f64) = (r.gen_range(0.1..3.0), r.gen_range(0.1..3.0));
                        AugmentConfig::Gamma(crate::config::GammaAugmentConfig {
                            gamma_range: (a.min(b), a.max(b)),
                        })
                    }
                    3 => AugmentConfig::Intensity(crate::config::IntensityAugmentConfig {
                        scale: (0.5, 1.5),
                        shift: (-0.2, 0.2),
                        clip: r.gen(),
                        augmentation_probability: r.gen(),
                    }),
                    4 => AugmentConfig::IntensityScaleShift(
                        crate::config::IntensityScaleShiftAugmentConfig {
                            scale: 2.0,
                            shift: -1.0,
                        },
                    ),
                    _ => {
                        let modes = ["gaussian", "speckle", "salt", "pepper", "s&p", "poisson"];
                        let mut kw = std::collections::BTreeMap::new();
                        kw.insert("mode".to_string(), Value::from(modes[r.gen_range(0..6)]));
                        AugmentConfig::Noise(NoiseAugmentConfig { kwargs: kw })
                    }
                });
            }
            let aug = Augmenter::new(&cfgs, d).unwrap();
            let raw_shape: Vec<usize> = (0..d).map(|_| r.gen_range(1..9)).collect();
            let gt_shape: Vec<usize> = raw_shape.iter().map(|n| r.gen_range(1..=*n)).collect();
            let vs: Vec<f64> = (0..d)
                .map(|_| [1.0, 4.0, 40.0][r.gen_range(0..3)])
                .collect();
            let m = aug.margin(&raw_shape, &vs);
            let big = |c: usize, s: &[usize]| -> Vec<usize> {
                std::iter::once(c)
                    .chain(s.iter().zip(&m).map(|(n, m)| n + 2 * m))
                    .collect()
            };
            let (c, cg) = (r.gen_range(0..3), r.gen_range(0..3));
            let n: usize = big(c, &raw_shape).iter().product();
            let raw = ArrayD::from_shape_vec(
                IxDyn(&big(c, &raw_shape)),
                (0..n)
                    .map(|i| ((i * 37) % 11) as f32 / 10.0 - if it % 2 == 0 { 0.5 } else { 0.0 })
                    .collect(),
            )
            .unwrap();
            let gt = ArrayD::from_elem(IxDyn(&big(cg, &gt_shape)), 1u64);
            let mask = ArrayD::from_elem(IxDyn(&big(cg, &gt_shape)), 1.0f32);
            let out = aug
                .apply(Sample { raw, gt, mask }, &raw_shape, &gt_shape, &vs, &mut r)
                .unwrap();
            assert_eq!(&out.raw.shape()[1..], &raw_shape[..]);
            assert_eq!(&out.gt.shape()[1..], &gt_shape[..]);
        }
    }
}
