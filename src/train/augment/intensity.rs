//! Augments of raw intensities only: random contrast (scale and shift), gamma and noise
//! (Gaussian, speckle, Poisson, salt and pepper) as scikit-image draws them.

use super::*;

/// Standard normal variates by the Box–Muller transform.
#[derive(Debug, Default)]
pub(super) struct Gauss {
    pub(super) spare: Option<f64>,
}

impl Gauss {
    pub(super) fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> f64 {
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

/// Random contrast and brightness around the mean: `mean + (x − mean)·s + t`.
pub(super) fn intensity<R: Rng + ?Sized>(
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
pub(super) fn gamma<R: Rng + ?Sized>(raw: &mut ArrayD<f32>, low: f64, high: f64, rng: &mut R) {
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
pub(super) fn ln_factorial(k: f64) -> f64 {
    if k < 20.0 {
        (2..=(k as u64)).map(|i| (i as f64).ln()).sum()
    } else {
        k * k.ln() - k + 0.5 * (2.0 * PI * k).ln() + 1.0 / (12.0 * k) - 1.0 / (360.0 * k.powi(3))
    }
}

/// A Poisson variate with mean `lam` (Knuth below 10, Hörmann's PTRS above).
pub(super) fn poisson<R: Rng + ?Sized>(lam: f64, rng: &mut R) -> f64 {
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
pub(super) fn noise<R: Rng + ?Sized>(raw: &mut ArrayD<f32>, n: &NoiseParameters, rng: &mut R) {
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
