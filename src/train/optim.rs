//! RAdam (as PyTorch implements it) with DaCapo's linear learning-rate warm-up. The
//! optimizer's moments live in plain tensors we own, so a checkpoint can store and
//! restore them exactly (libtorch's optimizers cannot be saved from Rust).

use std::collections::BTreeMap;

use tch::{nn, Tensor};

/// Learning rate at `step` (0-based): warm-up from 1% to 100% of `base` over 1000 steps.
pub fn warmup_lr(base: f64, step: u64) -> f64 {
    base * (0.01 + 0.99 * (step.min(1000) as f64) / 1000.0)
}

/// Moments of one parameter.
pub struct Moments {
    /// First moment (exp_avg).
    pub exp_avg: Tensor,
    /// Second moment (exp_avg_sq).
    pub exp_avg_sq: Tensor,
}

/// RAdam over every trainable variable of a var store (β = (0.9, 0.999), ε = 1e−8, no
/// weight decay).
pub struct RAdam {
    params: BTreeMap<String, Tensor>,
    /// Moments by parameter name.
    pub moments: BTreeMap<String, Moments>,
    /// Steps taken so far.
    pub step: u64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl RAdam {
    /// An optimizer for the trainable variables of `vs`, with zero moments.
    pub fn new(vs: &nn::VarStore) -> Self {
        let mut params = BTreeMap::new();
        let mut moments = BTreeMap::new();
        for (name, t) in vs.variables() {
            if t.requires_grad() {
                moments.insert(
                    name.clone(),
                    Moments {
                        exp_avg: t.zeros_like(),
                        exp_avg_sq: t.zeros_like(),
                    },
                );
                params.insert(name, t);
            }
        }
        Self {
            params,
            moments,
            step: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for p in self.params.values_mut() {
            p.zero_grad();
        }
    }

    /// One update with learning rate `lr` from the gradients now held by the parameters.
    pub fn step(&mut self, lr: f64) -> Result<(), tch::TchError> {
        self.step += 1;
        let t = self.step as f64;
        let (b1, b2) = (self.beta1, self.beta2);
        let bias1 = 1.0 - b1.powf(t);
        let bias2 = 1.0 - b2.powf(t);
        let rho_inf = 2.0 / (1.0 - b2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bias2;
        tch::no_grad(|| -> Result<(), tch::TchError> {
            for (name, p) in self.params.iter_mut() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let Some(m) = self.moments.get_mut(name) else {
                    continue;
                };
                let _ = m
                    .exp_avg
                    .f_mul_scalar_(b1)?
                    .f_add_(&g.f_mul_scalar(1.0 - b1)?)?;
                let _ = m
                    .exp_avg_sq
                    .f_mul_scalar_(b2)?
                    .f_add_(&g.f_mul(&g)?.f_mul_scalar(1.0 - b2)?)?;
                let m_hat = m.exp_avg.f_div_scalar(bias1)?;
                let update = if rho_t > 5.0 {
                    let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt();
                    let denom = m.exp_avg_sq.f_sqrt()?.f_add_scalar(self.eps)?;
                    m_hat.f_mul_scalar(rect * bias2.sqrt())?.f_div(&denom)?
                } else {
                    m_hat
                };
                let _ = p.f_sub_(&update.f_mul_scalar(lr)?)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_then_flat() {
        assert!((warmup_lr(1.0, 0) - 0.01).abs() < 1e-12);
        assert!((warmup_lr(1.0, 500) - 0.505).abs() < 1e-12);
        assert_eq!(warmup_lr(2.0, 1000), 2.0);
        assert_eq!(warmup_lr(2.0, 5000), 2.0);
    }

    #[test]
    fn radam_matches_the_reference_update() {
        // One scalar parameter x with loss x², so the gradient is 2x. Reference: the
        // RAdam update written out in f64 (rectified only once rho_t > 5, i.e. step 6+).
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let x = vs.root().var("x", &[1], nn::Init::Const(1.0));
        let mut opt = RAdam::new(&vs);
        let (mut xr, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        let lr = 0.1;
        for step in 1..=8 {
            opt.zero_grad();
            let loss = (&x * &x).sum(tch::Kind::Float);
            loss.backward();
            opt.step(lr).unwrap();
            let g = 2.0 * xr;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            let t = step as f64;
            let (b1, b2) = (1.0 - 0.9f64.powf(t), 1.0 - 0.999f64.powf(t));
            let rho_inf = 2.0 / 0.001 - 1.0;
            let rho_t = rho_inf - 2.0 * t * 0.999f64.powf(t) / b2;
            let m_hat = m / b1;
            xr -= if rho_t > 5.0 {
                let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                    / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                    .sqrt();
                lr * m_hat * rect * b2.sqrt() / (v.sqrt() + 1e-8)
            } else {
                lr * m_hat
            };
            let got = x.double_value(&[0]);
            assert!((got - xr).abs() < 1e-5, "step {step}: {got} vs {xr}");
        }
        assert_eq!(opt.step, 8);
    }
}
