//! Random augmentation of training samples with DaCapo's semantics: mirroring and transposition,
//! elastic deformation with rotation, random contrast, gamma, a fixed scale/shift and noise.
//! `simple`, `intensity` and `elastic` hold the augments themselves; this file checks the
//! configs and applies them in order.
//! Geometric augments move raw, ground truth and mask together; every random draw comes from
//! the caller's seeded generator, so a seed fixes the result.

use std::f64::consts::PI;

use ndarray::{ArrayD, Axis, IxDyn, Slice};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::trainers::{noise_parameters, NoiseMode, NoiseParameters};
use crate::config::{AugmentConfig, ElasticAugmentConfig, Problems, Validate};

mod elastic;
mod intensity;
mod simple;
#[cfg(test)]
mod tests;

pub use elastic::elastic_margin;
use elastic::*;
use intensity::*;
use simple::*;

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

/// Uniform draw in `[low, high)` (exactly `low` when the interval is empty).
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.gen::<f64>()
}
