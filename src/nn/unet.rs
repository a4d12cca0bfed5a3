//! The CNNectome U-Net, as DaCapo builds it (algorithms.md §3), with `same` padding meaning
//! what it says: the output has the input's size.

use tch::{nn, Tensor};

use super::layers::{centre_crop, max_pool, repeat_upsample, spatial, Conv, ConvPass};
use super::NnError;
use crate::config::CNNectomeUNetConfig;

/// Upsampling on the way up: nearest repeat + 1×1 conv, or a transposed conv; then ReLU.
struct Upsample {
    factor: Vec<i64>,
    conv: Conv,
    transposed: bool,
}

impl Upsample {
    fn new(path: &nn::Path, c_in: i64, c_out: i64, factor: &[i64], constant: bool) -> Self {
        let up = path / "up";
        if constant {
            let one = vec![1; factor.len()];
            Self {
                factor: factor.to_vec(),
                conv: Conv::new(&(&up / 1), c_in, c_out, &one, false, false),
                transposed: false,
            }
        } else {
            Self {
                factor: factor.to_vec(),
                conv: Conv::new(&(&up / 0), c_in, c_out, factor, false, true),
                transposed: true,
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let x = if self.transposed {
            self.conv.forward(x)?
        } else {
            self.conv.forward(&repeat_upsample(x, &self.factor)?)?
        };
        x.f_relu()
    }
}

/// An attention gate on a skip connection (algorithms.md §3.7).
struct AttentionGate {
    w_g: [Conv; 2],
    w_x: [Conv; 2],
    psi: [Conv; 2],
    factor: Vec<i64>,
}

impl AttentionGate {
    fn new(path: &nn::Path, f_g: i64, f_l: i64, f_int: i64, factor: &[i64]) -> Self {
        let one = vec![1; factor.len()];
        let c = |p: nn::Path, i: i64, o: i64| Conv::new(&p, i, o, &one, false, false);
        Self {
            // DaCapo's names: W_g and psi are ConvPasses, W_x a ConvPass followed by a
            // max-pool (psi's sigmoids sit at 1 and 3 of its sequence).
            w_g: [
                c(path / "W_g" / "conv_pass" / 0, f_g, f_int),
                c(path / "W_g" / "conv_pass" / 1, f_int, f_int),
            ],
            w_x: [
                c(path / "W_x" / 0 / "conv_pass" / 0, f_l, f_int),
                c(path / "W_x" / 0 / "conv_pass" / 1, f_int, f_int),
            ],
            psi: [
                c(path / "psi" / "conv_pass" / 0, f_int, 1),
                c(path / "psi" / "conv_pass" / 2, 1, 1),
            ],
            factor: factor.to_vec(),
        }
    }

    fn forward(&self, g: &Tensor, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let g1 = self.w_g[1].forward(&self.w_g[0].forward(g)?)?;
        let x1 = max_pool(
            &self.w_x[1].forward(&self.w_x[0].forward(x)?)?,
            &self.factor,
        )?;
        // Zero-pad g1 to x1's size; an odd difference puts the extra voxel at the start.
        let (gs, xs) = (spatial(&g1), spatial(&x1));
        let mut pad = Vec::with_capacity(2 * gs.len());
        for i in (0..gs.len()).rev() {
            let d = (xs[i] - gs[i]).max(0);
            pad.push(d - d / 2);
            pad.push(d / 2);
        }
        let g1 = g1.f_constant_pad_nd(pad.as_slice())?;
        let psi = (g1 + x1).f_relu()?;
        let psi = self.psi[0].forward(&psi)?.f_sigmoid()?;
        let psi = self.psi[1].forward(&psi)?.f_sigmoid()?;
        let target = spatial(x);
        let psi = match target.len() {
            2 => psi.f_upsample_bilinear2d(target.as_slice(), true, None, None)?,
            _ => psi.f_upsample_trilinear3d(target.as_slice(), true, None, None, None)?,
        };
        x.f_mul(&psi)
    }
}

/// The CNNectome U-Net.
pub struct UNet {
    l_conv: Vec<ConvPass>,
    r_up: Vec<Upsample>,
    r_conv: Vec<ConvPass>,
    attention: Vec<AttentionGate>,
    extra: Vec<(Upsample, ConvPass)>,
    downsample: Vec<Vec<i64>>,
    /// Per up level: (product of the factors from this level down, convolution shrink).
    crop: Vec<(Vec<i64>, Vec<i64>)>,
    fmaps_out: i64,
    /// The configuration, whose closed-form shape rule every input must pass.
    config: CNNectomeUNetConfig,
}

fn default_kernels(levels: usize, dims: usize) -> Vec<Vec<Vec<i64>>> {
    vec![vec![vec![3; dims]; 2]; levels]
}

impl UNet {
    /// Builds the network of `config` with its parameters under `path` (`unet`).
    pub fn new(path: &nn::Path, config: &CNNectomeUNetConfig) -> Result<Self, NnError> {
        // The closed-form shape check validates factors and kernels.
        config.output_shape(&config.input_shape)?;
        let dims = config.input_shape.dims();
        let levels = config.levels();
        let bad = |message: String| NnError::Config {
            name: config.name.clone(),
            message,
        };
        if !["valid", "same"].contains(&config.padding.as_str()) {
            return Err(bad(format!(
                "padding must be `valid` or `same`, got `{}`",
                config.padding
            )));
        }
        let same = config.padding == "same";
        let as_vecs =
            |k: &Option<Vec<Vec<crate::geometry::Coordinate>>>, n: usize| -> Vec<Vec<Vec<i64>>> {
                match k {
                    Some(k) => k
                        .iter()
                        .map(|level| level.iter().map(|c| c.to_vec()).collect())
                        .collect(),
                    None => default_kernels(n, dims),
                }
            };
        let k_down = as_vecs(&config.kernel_size_down, levels);
        let k_up = as_vecs(&config.kernel_size_up, levels - 1);
        let n = config.num_fmaps as i64;
        let f = config.fmap_inc_factor as i64;
        let fmaps = |level: usize| n * f.pow(level as u32);
        let downsample: Vec<Vec<i64>> = config
            .downsample_factors
            .iter()
            .map(|c| c.to_vec())
            .collect();
        // Unwrapped U-Net keys are `unet.*`; with extra upsampling it becomes `unet.0.*`.
        let extra_stages = config.upsample_factors.as_ref().map_or(0, Vec::len);
        let u = if extra_stages > 0 {
            path / 0
        } else {
            path.clone()
        };

        let mut l_conv = Vec::with_capacity(levels);
        for (level, kernels) in k_down.iter().enumerate() {
            let c_in = if level == 0 {
                config.fmaps_in as i64
            } else {
                fmaps(level - 1)
            };
            l_conv.push(ConvPass::new(
                &(&u / "l_conv" / level),
                c_in,
                fmaps(level),
                kernels,
                same,
                config.batch_norm,
            ));
        }
        let mut r_up = Vec::new();
        let mut r_conv = Vec::new();
        let mut attention = Vec::new();
        let mut crop = Vec::new();
        for level in 0..levels - 1 {
            let up_in = fmaps(level + 1);
            let up_out = if level == 0 {
                fmaps(level + 1)
            } else {
                fmaps(level)
            };
            r_up.push(Upsample::new(
                &(&u / "r_up" / 0 / level),
                up_in,
                up_out,
                &downsample[level],
                config.constant_upsample,
            ));
            // The top level outputs fmaps_out maps; its attention gate is as wide.
            let c_out = if level == 0 {
                config.fmaps_out as i64
            } else {
                fmaps(level)
            };
            r_conv.push(ConvPass::new(
                &(&u / "r_conv" / 0 / level),
                fmaps(level) + up_out,
                c_out,
                &k_up[level],
                same,
                config.batch_norm,
            ));
            if config.use_attention {
                let f_int = c_out;
                attention.push(AttentionGate::new(
                    &(&u / "attention" / 0 / level),
                    up_in,
                    fmaps(level),
                    f_int,
                    &downsample[level],
                ));
            }
            let product: Vec<i64> = (0..dims)
                .map(|a| downsample[level..].iter().map(|d| d[a]).product())
                .collect();
            let shrink: Vec<i64> = (0..dims)
                .map(|a| {
                    if same {
                        0
                    } else {
                        k_up[level].iter().map(|k| k[a] - 1).sum()
                    }
                })
                .collect();
            crop.push((product, shrink));
        }
        let fmaps_out = config.fmaps_out as i64;
        let last_up = k_up
            .last()
            .cloned()
            .unwrap_or_else(|| vec![vec![3; dims]; 2]);
        let mut extra = Vec::new();
        for (i, factor) in config.upsample_factors.iter().flatten().enumerate() {
            let up = Upsample::new(
                &(path / (1 + 2 * i)),
                fmaps_out,
                fmaps_out,
                &factor.to_vec(),
                true,
            );
            let pass = ConvPass::new(
                &(path / (2 + 2 * i)),
                fmaps_out,
                fmaps_out,
                &last_up,
                false,
                config.batch_norm,
            );
            extra.push((up, pass));
        }
        Ok(Self {
            l_conv,
            r_up,
            r_conv,
            attention,
            extra,
            downsample,
            crop,
            fmaps_out,
            config: config.clone(),
        })
    }

    /// Number of output feature maps.
    pub fn fmaps_out(&self) -> i64 {
        self.fmaps_out
    }

    /// Runs the network on `(batch, fmaps_in, spatial…)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, NnError> {
        // Refuse what the configuration's shape rule refuses (a map not divisible by a
        // pooling factor, or shrinking to nothing) instead of silently cropping.
        let input = crate::geometry::Coordinate::new(&spatial(x)).map_err(|e| NnError::Config {
            name: self.config.name.clone(),
            message: format!("input {:?}: {e}", x.size()),
        })?;
        self.config.output_shape(&input)?;
        let levels = self.l_conv.len();
        let mut skips = Vec::with_capacity(levels);
        let mut h = x.shallow_clone();
        for (level, pass) in self.l_conv.iter().enumerate() {
            h = pass.forward_t(&h, train)?;
            if level + 1 < levels {
                skips.push(h.shallow_clone());
                h = max_pool(&h, &self.downsample[level])?;
            }
        }
        for level in (0..levels - 1).rev() {
            let g = h;
            let mut up = self.r_up[level].forward(&g)?;
            // crop_to_factor: keep the network translation-equivariant.
            let (product, shrink) = &self.crop[level];
            let s = spatial(&up);
            let target: Vec<i64> = s
                .iter()
                .zip(product.iter().zip(shrink))
                .map(|(s, (f, c))| (s - c).div_euclid(*f) * f + c)
                .collect();
            if target.iter().zip(shrink).any(|(t, c)| t <= c) {
                return Err(NnError::Config {
                    name: "unet".into(),
                    message: format!("the feature map {s:?} is too small at level {level}"),
                });
            }
            if target != s {
                up = centre_crop(&up, &target)?;
            }
            let skip = match self.attention.get(level) {
                Some(gate) => gate.forward(&g, &skips[level])?,
                None => skips[level].shallow_clone(),
            };
            let skip = centre_crop(&skip, &spatial(&up))?;
            h = self.r_conv[level].forward_t(&Tensor::f_cat(&[skip, up], 1)?, train)?;
        }
        for (up, pass) in &self.extra {
            h = pass.forward_t(&up.forward(&h)?, train)?;
        }
        Ok(h)
    }
}
