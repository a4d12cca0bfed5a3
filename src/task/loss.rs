//! Training losses on libtorch tensors `(batch, channels, spatial…)`. Reductions are plain
//! means over every element, as in DaCapo (so the scale depends on the masked fraction).

use tch::{Reduction, Tensor};

/// How the weights enter a squared error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightMode {
    /// DaCapo's MSE: `mean((w·p − w·t)²) = mean(w² (p − t)²)`.
    Squared,
    /// `mean(w (p − t)²)`: the weight scales the squared error linearly.
    Linear,
}

/// Weighted mean squared error.
pub fn mse(
    prediction: &Tensor,
    target: &Tensor,
    weight: &Tensor,
    mode: WeightMode,
) -> Result<Tensor, tch::TchError> {
    let diff = prediction.f_sub(target)?;
    let sq = diff.f_mul(&diff)?;
    let w = match mode {
        WeightMode::Squared => weight.f_mul(weight)?,
        WeightMode::Linear => weight.shallow_clone(),
    };
    sq.f_mul(&w)?.f_mean(None)
}

/// `mean(BCEWithLogits(p, t) · w)` (weights all ones reproduce DaCapo's unweighted loss).
pub fn bce_with_logits(
    prediction: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
) -> Result<Tensor, tch::TchError> {
    let per = prediction.f_binary_cross_entropy_with_logits(
        target,
        None::<Tensor>,
        None::<Tensor>,
        Reduction::None,
    )?;
    match weight {
        Some(w) => per.f_mul(w)?.f_mean(None),
        None => per.f_mean(None),
    }
}

/// DaCapo's dummy loss: `Σ |p − t|` (weights ignored).
pub fn l1_sum(prediction: &Tensor, target: &Tensor) -> Result<Tensor, tch::TchError> {
    prediction.f_sub(target)?.f_abs()?.f_sum(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn hand_computed_losses() {
        let p = t(&[1.0, 2.0, 0.0, -1.0]);
        let y = t(&[0.0, 2.0, 1.0, 1.0]);
        let w = t(&[2.0, 1.0, 0.5, 0.0]);
        // (p − t)² = 1, 0, 1, 4; w² = 4, 1, 0.25, 0 → (4 + 0 + 0.25 + 0) / 4 = 1.0625.
        let m = mse(&p, &y, &w, WeightMode::Squared)
            .unwrap()
            .double_value(&[]);
        assert!((m - 1.0625).abs() < 1e-6, "{m}");
        // Linear: (2 + 0 + 0.5 + 0) / 4 = 0.625.
        let m = mse(&p, &y, &w, WeightMode::Linear)
            .unwrap()
            .double_value(&[]);
        assert!((m - 0.625).abs() < 1e-6, "{m}");
        // BCE with logits at p = 0: log 2 per element.
        let b = bce_with_logits(&t(&[0.0, 0.0]), &t(&[1.0, 0.0]), None)
            .unwrap()
            .double_value(&[]);
        assert!((b - std::f64::consts::LN_2).abs() < 1e-6, "{b}");
        // p = 2, t = 1: max(2,0) − 2 + log(1 + e^−2) = 0.126928; weighted by 3 and 0 → mean 0.190392.
        let b = bce_with_logits(&t(&[2.0, 2.0]), &t(&[1.0, 1.0]), Some(&t(&[3.0, 0.0])))
            .unwrap()
            .double_value(&[]);
        assert!((b - 3.0 * 0.126_928_011 / 2.0).abs() < 1e-6, "{b}");
        assert_eq!(
            l1_sum(&p, &y).unwrap().double_value(&[]),
            1.0 + 0.0 + 1.0 + 2.0
        );
    }
}
