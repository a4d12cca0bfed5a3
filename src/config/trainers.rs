//! Trainer configs and the augmentations applied to training batches.

use std::collections::BTreeMap;

use super::check_name;
use super::schema::{child, index, Check, Problems};

config_enum! {
    /// How to train: batch size, learning rate, data loading and augmentations.
    TrainerConfig: named {
        /// Random, augmented patches from the training datasets (DaCapo's gunpowder trainer).
        Gunpowder(GunpowderTrainerConfig),
        /// Random-noise batches, for tests.
        Dummy(DummyTrainerConfig),
    }
}

config_struct! {
    /// Trains on random patches sampled from the training datasets (weighted by dataset
    /// weight), rejecting patches whose centre is not annotated or that hold too little
    /// annotation (`min_masked`, `gt_min_reject`), then applies the augmentations in
    /// order; optimiser RAdam with a learning-rate warm-up.
    GunpowderTrainerConfig {
        /// Name of this trainer.
        name: String,
        /// Samples per iteration.
        batch_size: u32 = 1,
        /// RAdam learning rate after warm-up.
        learning_rate: f64 = 0.001,
        /// Threads preparing batches in the background (0 counts as 1; at most the number
        /// of cores; `segno train --loader-threads` overrides it). Batches do not depend on it.
        num_data_fetchers: u32 = 5,
        /// Augmentations, applied in list order.
        augments: Vec<AugmentConfig> = Vec::new(),
        /// Save a snapshot of the batch and prediction every this many iterations (none when null).
        snapshot_interval: Option<u64> = None,
        /// Least fraction of an output patch's voxels that must be annotated (mask > 0 in
        /// any channel, or inside the ground truth's region without a mask); patches with
        /// less are drawn again. Null or 0: only the centre voxel must be annotated.
        min_masked: Option<f64> = Some(0.15),
        /// Crop the raw data to the ground-truth region (grown to the raw voxel grid)
        /// before sampling: the network's context beyond it reads as 0 in training.
        clip_raw: bool = false,
        /// Reject patches in which the fraction of voxels with non-zero ground truth is
        /// at most this (e.g. 0.01 to skip patches without any object); null: keep all.
        gt_min_reject: Option<f64> = None,
        /// Where patch centres come from: `reject` or null (uniform over the ground truth,
        /// drawn again until the centre voxel is annotated), `integral_mask` (uniform over
        /// the annotated voxels directly: the same patches without redraws, for sparse
        /// masks) or `sample_points` (only at the datasets' `sample_points`, which every
        /// training dataset must list). Datasets listing `sample_points` are always
        /// sampled at their points.
        sample_strategy: Option<String> { "integral_mask" | "reject" | "sample_points" } = None => newer,
    }
}

impl Check for GunpowderTrainerConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.batch_size == 0 {
            problems.push(&child(path, "batch_size"), "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            problems.push(
                &child(path, "learning_rate"),
                format!("must be a positive number, got {}", self.learning_rate),
            );
        }
        if self.snapshot_interval == Some(0) {
            problems.push(
                &child(path, "snapshot_interval"),
                "must be positive; use null for no snapshots",
            );
        }
        if let Some(m) = self.min_masked {
            if !(0.0..=1.0).contains(&m) {
                problems.push(
                    &child(path, "min_masked"),
                    format!("must lie in [0, 1], got {m}"),
                );
            }
        }
        if let Some(g) = self.gt_min_reject {
            if !(0.0..1.0).contains(&g) {
                problems.push(
                    &child(path, "gt_min_reject"),
                    format!("must lie in [0, 1) (a fraction of the patch), got {g}"),
                );
            }
        }
    }
}

config_struct! {
    /// Random-noise batches, for tests.
    #[refused = "Segno trains with the gunpowder trainer only; the dummy trainer's random batches exist for DaCapo's own tests"]
    DummyTrainerConfig {
        /// Name of this trainer.
        name: String,
        /// Samples per iteration.
        batch_size: u32 = 1,
        /// Learning rate.
        learning_rate: f64 = 0.001,
        /// Placeholder flag.
        mirror_augment ["mirror_augment", "dummy_attr"]: bool = false,
    }
}

impl Check for DummyTrainerConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}

config_enum! {
    /// One augmentation step applied to training batches.
    AugmentConfig {
        /// Smooth random deformation and rotation.
        Elastic(ElasticAugmentConfig),
        /// Random mirroring and axis transposition.
        Simple(SimpleAugmentConfig),
        /// Random gamma correction of intensities.
        Gamma(GammaAugmentConfig),
        /// Random contrast scale and brightness shift.
        Intensity(IntensityAugmentConfig),
        /// Fixed intensity mapping x·scale + shift (also applied when predicting).
        IntensityScaleShift(IntensityScaleShiftAugmentConfig),
        /// Random noise.
        Noise(NoiseAugmentConfig),
    }
}

fn check_probability(p: f64, path: &str, problems: &mut Problems) {
    if !(0.0..=1.0).contains(&p) {
        problems.push(
            &child(path, "augmentation_probability"),
            format!("must lie in [0, 1], got {p}"),
        );
    }
}

fn check_range(range: (f64, f64), key: &str, path: &str, problems: &mut Problems) {
    if !(range.0.is_finite() && range.1.is_finite()) || range.0 > range.1 {
        problems.push(
            &child(path, key),
            format!(
                "must be an interval [low, high] with low ≤ high, got [{}, {}]",
                range.0, range.1
            ),
        );
    }
}

config_struct! {
    /// Smooth random deformation on a grid of control points, plus a random rotation.
    ElasticAugmentConfig {
        /// Spacing of the control-point grid, in voxels, per axis.
        control_point_spacing: Vec<i64>,
        /// Standard deviation of control-point displacements, in nm, per axis.
        control_point_displacement_sigma: Vec<f64>,
        /// Rotation angle range [low, high) in radians, in the y–x plane.
        rotation_interval: (f64, f64),
        /// Compute the deformation on a grid downsampled by this factor (faster).
        subsample: u32 = 1,
        /// Use a uniformly random 3D rotation instead of rotation_interval.
        uniform_3d_rotation: bool = false,
        /// Probability of applying this augmentation to a sample.
        augmentation_probability: f64 = 1.0,
    }
}

impl Check for ElasticAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        let spath = child(path, "control_point_spacing");
        if self.control_point_spacing.is_empty() {
            problems.push(&spath, "needs one spacing per axis");
        }
        for (i, s) in self.control_point_spacing.iter().enumerate() {
            if *s <= 0 {
                problems.push(&index(&spath, i), format!("must be positive, got {s}"));
            }
        }
        let dpath = child(path, "control_point_displacement_sigma");
        if self.control_point_displacement_sigma.len() != self.control_point_spacing.len() {
            problems.push(
                &dpath,
                format!(
                    "has {} axes but control_point_spacing has {}",
                    self.control_point_displacement_sigma.len(),
                    self.control_point_spacing.len()
                ),
            );
        }
        for (i, s) in self.control_point_displacement_sigma.iter().enumerate() {
            if !(s.is_finite() && *s >= 0.0) {
                problems.push(&index(&dpath, i), format!("must be 0 or positive, got {s}"));
            }
        }
        check_range(self.rotation_interval, "rotation_interval", path, problems);
        if self.subsample == 0 {
            problems.push(&child(path, "subsample"), "must be at least 1");
        }
        check_probability(self.augmentation_probability, path, problems);
    }
}

config_struct! {
    /// Random mirroring (p = 0.5 per axis) and random transposition of the spatial axes.
    SimpleAugmentConfig {
        /// Probability of applying this augmentation to a sample.
        augmentation_probability: f64 = 1.0,
    }
}

impl Check for SimpleAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_probability(self.augmentation_probability, path, problems);
    }
}

config_struct! {
    /// Random gamma correction: intensities are raised to a power drawn from gamma_range.
    GammaAugmentConfig {
        /// Range [low, high] of the gamma exponent.
        gamma_range: (f64, f64),
    }
}

impl Check for GammaAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_range(self.gamma_range, "gamma_range", path, problems);
        if self.gamma_range.0 <= 0.0 {
            problems.push(
                &child(path, "gamma_range"),
                format!(
                    "gamma must be positive, got a low end of {}",
                    self.gamma_range.0
                ),
            );
        }
    }
}

config_struct! {
    /// Random contrast and brightness: x·a + b with a from scale and b from shift.
    IntensityAugmentConfig {
        /// Range [low, high] of the random contrast factor.
        scale: (f64, f64),
        /// Range [low, high] of the random additive shift.
        shift: (f64, f64),
        /// Clip to [0, 1] afterwards.
        clip: bool = true,
        /// Probability of applying this augmentation to a sample.
        augmentation_probability: f64 = 1.0,
    }
}

impl Check for IntensityAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_range(self.scale, "scale", path, problems);
        check_range(self.shift, "shift", path, problems);
        check_probability(self.augmentation_probability, path, problems);
    }
}

config_struct! {
    /// Deterministic intensity mapping x·scale + shift (e.g. scale 2, shift −1 maps [0, 1]
    /// to [−1, 1]); applied at prediction time too.
    IntensityScaleShiftAugmentConfig {
        /// Multiplier.
        scale: f64,
        /// Added after scaling.
        shift: f64,
    }
}

impl Check for IntensityScaleShiftAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if !self.scale.is_finite() || self.scale == 0.0 {
            problems.push(
                &child(path, "scale"),
                format!("must be a non-zero number, got {}", self.scale),
            );
        }
    }
}

config_struct! {
    /// Random noise (scikit-image `random_noise` options: mode, var, amount, …).
    NoiseAugmentConfig {
        /// Noise options, e.g. `{mode: gaussian, var: 0.01}`.
        kwargs: BTreeMap<String, serde_json::Value> = BTreeMap::new(),
    }
}

/// Noise kinds of scikit-image's `random_noise` (`localvar` with its default variance is
/// Gaussian noise of variance 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseMode {
    /// Additive Gaussian noise (`mean`, `var`).
    Gaussian,
    /// Multiplicative Gaussian noise (`mean`, `var`).
    Speckle,
    /// A fraction `amount` of voxels set to the maximum.
    Salt,
    /// A fraction `amount` of voxels set to the minimum.
    Pepper,
    /// Salt and pepper (`amount`, `salt_vs_pepper`).
    SaltPepper,
    /// Poisson noise of the intensities.
    Poisson,
}

/// A noise augment's options, checked: what training applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseParameters {
    /// The kind of noise.
    pub mode: NoiseMode,
    /// Mean of Gaussian and speckle noise.
    pub mean: f64,
    /// Variance of Gaussian and speckle noise.
    pub var: f64,
    /// Fraction of voxels salt and pepper replace.
    pub amount: f64,
    /// Fraction of salt among salt and pepper.
    pub salt_vs_pepper: f64,
    /// Clip the result to the input's range ([0, 1], or [-1, 1] when it has negatives).
    pub clip: bool,
}

/// A noise augment's `kwargs` as training applies them (scikit-image's defaults for those
/// not given), or what is wrong with them. The one place noise options are checked.
pub fn noise_parameters(
    kwargs: &BTreeMap<String, serde_json::Value>,
) -> Result<NoiseParameters, String> {
    use serde_json::Value;
    const MODES: &str = "gaussian, localvar, speckle, salt, pepper, s&p, poisson";
    let mode_name = match kwargs.get("mode") {
        None => "gaussian",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("mode must be a string, got {other}")),
    };
    let mode = match mode_name {
        // scikit-image's `localvar` with its default `local_vars` (0.01 everywhere), the
        // only form a config can give: Gaussian noise of mean 0 and variance 0.01.
        "gaussian" | "localvar" => NoiseMode::Gaussian,
        "speckle" => NoiseMode::Speckle,
        "salt" => NoiseMode::Salt,
        "pepper" => NoiseMode::Pepper,
        "s&p" => NoiseMode::SaltPepper,
        "poisson" => NoiseMode::Poisson,
        other => return Err(format!("unknown noise mode `{other}`; use one of {MODES}")),
    };
    if mode_name == "localvar" && kwargs.contains_key("local_vars") {
        return Err(
            "local_vars cannot be given in a config (scikit-image needs an array of \
             the image's shape); mode `localvar` uses its default variance of 0.01 \
             everywhere, or use mode `gaussian` with `var`"
                .into(),
        );
    }
    let allowed: &[&str] = match (mode_name, mode) {
        ("localvar", _) => &[],
        (_, NoiseMode::Gaussian | NoiseMode::Speckle) => &["mean", "var"],
        (_, NoiseMode::Salt | NoiseMode::Pepper) => &["amount"],
        (_, NoiseMode::SaltPepper) => &["amount", "salt_vs_pepper"],
        (_, NoiseMode::Poisson) => &[],
    };
    if let Some(key) = kwargs
        .keys()
        .find(|k| *k != "mode" && *k != "clip" && !allowed.contains(&k.as_str()))
    {
        return Err(format!(
            "keyword `{key}` is not allowed for mode `{mode_name}` (allowed: mode, clip{}{})",
            if allowed.is_empty() { "" } else { ", " },
            allowed.join(", ")
        ));
    }
    let number = |key: &str, default: f64| -> Result<f64, String> {
        match kwargs.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{key} must be a finite number, got {v}")),
        }
    };
    let parameters = NoiseParameters {
        mode,
        mean: number("mean", 0.0)?,
        var: number("var", 0.01)?,
        amount: number("amount", 0.05)?,
        salt_vs_pepper: number("salt_vs_pepper", 0.5)?,
        clip: match kwargs.get("clip") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("clip must be true or false, got {other}")),
        },
    };
    if parameters.var < 0.0 {
        return Err(format!("var must be 0 or positive, got {}", parameters.var));
    }
    for (key, value) in [
        ("amount", parameters.amount),
        ("salt_vs_pepper", parameters.salt_vs_pepper),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(format!("{key} must lie in [0, 1], got {value}"));
        }
    }
    Ok(parameters)
}

impl Check for NoiseAugmentConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if let Err(e) = noise_parameters(&self.kwargs) {
            problems.push(&child(path, "kwargs"), e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Validate;

    #[test]
    fn noise_options_are_checked_once_for_validation_and_training() {
        let problems = |kwargs: serde_json::Value| {
            let config = AugmentConfig::Noise(NoiseAugmentConfig {
                kwargs: serde_json::from_value(kwargs).unwrap(),
            });
            let mut p = Problems::default();
            config.validate("augments[0]", &mut p);
            p.iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect::<Vec<_>>()
        };
        // `localvar` was accepted here and refused by training; now both apply it as
        // scikit-image does without `local_vars`: variance 0.01 everywhere.
        assert!(problems(serde_json::json!({"mode": "localvar"})).is_empty());
        let kwargs = |text: &str| serde_json::from_str(text).unwrap();
        assert_eq!(
            noise_parameters(&kwargs(r#"{"mode": "localvar"}"#)),
            noise_parameters(&kwargs(r#"{"mode": "gaussian", "mean": 0.0, "var": 0.01}"#))
        );
        let said = problems(serde_json::json!({"mode": "localvar", "local_vars": 0.02}));
        assert_eq!(said.len(), 1);
        assert!(
            said[0].starts_with("augments[0].kwargs: local_vars cannot be given"),
            "{said:?}"
        );
        assert_eq!(
            problems(serde_json::json!({"mode": "salt", "var": 0.1})),
            vec!["augments[0].kwargs: keyword `var` is not allowed for mode `salt` (allowed: mode, clip, amount)"]
        );
        assert!(problems(serde_json::json!({"mode": "s&p", "amount": 0.1})).is_empty());
        let p = noise_parameters(
            &serde_json::from_str(r#"{"mode": "speckle", "var": 0.2, "clip": false}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(
            p,
            NoiseParameters {
                mode: NoiseMode::Speckle,
                mean: 0.0,
                var: 0.2,
                amount: 0.05,
                salt_vs_pepper: 0.5,
                clip: false
            }
        );
    }
}
