//! Tests of the augments: determinism per seed, geometry moved together, and DaCapo's
//! parameter semantics.

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
    let raw = ArrayD::from_shape_vec(IxDyn(&[1, 1, 5]), vec![2.0f32, 2.5, 3.0, 3.5, 4.0]).unwrap();
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
    let big = |s: &[usize]| -> Vec<usize> { s.iter().zip(&m).map(|(n, m)| n + 2 * m).collect() };
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
    let big = |s: &[usize]| -> Vec<usize> { s.iter().zip(&m).map(|(n, m)| n + 2 * m).collect() };
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
    assert!(Augmenter::new(&[noise_cfg(json!({"mode": "gaussian", "amount": 0.1}))], 2).is_err());
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
