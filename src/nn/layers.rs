//! Building blocks: convolutions (2D/3D, plain or transposed), convolution passes with
//! optional batch norm, pooling, nearest upsampling and centre crops.

use tch::{nn, Tensor};

/// A 2D or 3D convolution (or transposed convolution) with bias.
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    padding: Vec<i64>,
    stride: Vec<i64>,
    transposed: bool,
    out_channels: i64,
}

impl Conv {
    /// Creates `weight` and `bias` under `path`. `same` pads by `k / 2` per axis.
    /// A transposed convolution has stride = kernel size (an upsampling by that factor).
    pub fn new(
        path: &nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: &[i64],
        same: bool,
        transposed: bool,
    ) -> Self {
        let k: i64 = kernel.iter().product();
        // Kaiming-normal, fan-in, ReLU gain (PyTorch computes a transposed convolution's
        // fan-in from its second weight dimension, the output channels).
        let fan_in = if transposed { c_out * k } else { c_in * k };
        let std = (2.0 / fan_in.max(1) as f64).sqrt();
        let mut shape = if transposed {
            vec![c_in, c_out]
        } else {
            vec![c_out, c_in]
        };
        shape.extend_from_slice(kernel);
        let weight = path.var(
            "weight",
            &shape,
            nn::Init::Randn {
                mean: 0.0,
                stdev: std,
            },
        );
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        let bias = path.var(
            "bias",
            &[c_out],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        Self {
            weight,
            bias,
            padding: kernel
                .iter()
                .map(|k| if same { k / 2 } else { 0 })
                .collect(),
            stride: if transposed {
                kernel.to_vec()
            } else {
                vec![1; kernel.len()]
            },
            transposed,
            out_channels: c_out,
        }
    }

    /// Number of output channels.
    pub fn out_channels(&self) -> i64 {
        self.out_channels
    }

    /// Applies the convolution to `(batch, channels, spatial…)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let n = self.padding.len();
        x.f_convolution(
            &self.weight,
            Some(&self.bias),
            self.stride.as_slice(),
            if self.transposed {
                vec![0; n]
            } else {
                self.padding.clone()
            }
            .as_slice(),
            vec![1; n].as_slice(),
            self.transposed,
            vec![0; n].as_slice(),
            1,
        )
    }
}

/// Batch normalisation over the channel axis.
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

impl BatchNorm {
    /// Creates the parameters and running statistics under `path`.
    pub fn new(path: &nn::Path, channels: i64) -> Self {
        Self {
            weight: path.var("weight", &[channels], nn::Init::Const(1.0)),
            bias: path.var("bias", &[channels], nn::Init::Const(0.0)),
            running_mean: path.zeros_no_train("running_mean", &[channels]),
            running_var: path.ones_no_train("running_var", &[channels]),
        }
    }

    /// Normalises with batch statistics (training) or the running ones.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        x.f_batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            0.1,
            1e-5,
            false,
        )
    }
}

/// A sequence of convolutions, each followed by [batch norm and] ReLU.
pub struct ConvPass {
    layers: Vec<(Conv, Option<BatchNorm>)>,
}

impl ConvPass {
    /// Creates the pass under `path / "conv_pass"`; layer `j` of DaCapo's sequential
    /// numbering is `conv_pass.<j>` (conv at 0, 2, … or 0, 3, … with batch norm).
    pub fn new(
        path: &nn::Path,
        c_in: i64,
        c_out: i64,
        kernels: &[Vec<i64>],
        same: bool,
        batch_norm: bool,
    ) -> Self {
        let p = path / "conv_pass";
        let step = if batch_norm { 3 } else { 2 };
        let mut layers = Vec::with_capacity(kernels.len());
        let mut c = c_in;
        for (i, k) in kernels.iter().enumerate() {
            let j = i * step;
            let conv = Conv::new(&(&p / j), c, c_out, k, same, false);
            let bn = batch_norm.then(|| BatchNorm::new(&(&p / (j + 1)), c_out));
            layers.push((conv, bn));
            c = c_out;
        }
        Self { layers }
    }

    /// Applies every layer.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let mut x = x.shallow_clone();
        for (conv, bn) in &self.layers {
            x = conv.forward(&x)?;
            if let Some(bn) = bn {
                x = bn.forward_t(&x, train)?;
            }
            x = x.f_relu()?;
        }
        Ok(x)
    }
}

/// Max-pooling with kernel = stride = `factor` over the spatial axes.
pub fn max_pool(x: &Tensor, factor: &[i64]) -> Result<Tensor, tch::TchError> {
    let zeros = vec![0i64; factor.len()];
    let ones = vec![1i64; factor.len()];
    match factor.len() {
        2 => x.f_max_pool2d(factor, factor, zeros.as_slice(), ones.as_slice(), false),
        _ => x.f_max_pool3d(factor, factor, zeros.as_slice(), ones.as_slice(), false),
    }
}

/// Nearest-neighbour upsampling by integer factors (every voxel repeated).
pub fn repeat_upsample(x: &Tensor, factor: &[i64]) -> Result<Tensor, tch::TchError> {
    let mut x = x.shallow_clone();
    for (i, f) in factor.iter().enumerate() {
        if *f > 1 {
            x = x.f_repeat_interleave_self_int(*f, Some(2 + i as i64), None::<i64>)?;
        }
    }
    Ok(x)
}

/// Crops the spatial axes of `x` centrally to `shape` (start at `(a − b) / 2`).
pub fn centre_crop(x: &Tensor, shape: &[i64]) -> Result<Tensor, tch::TchError> {
    let size = x.size();
    let mut x = x.shallow_clone();
    for (i, s) in shape.iter().enumerate() {
        let axis = 2 + i;
        let have = size[axis];
        if have != *s {
            x = x.f_narrow(axis as i64, (have - s) / 2, *s)?;
        }
    }
    Ok(x)
}

/// Spatial shape of a `(batch, channels, spatial…)` tensor.
pub fn spatial(x: &Tensor) -> Vec<i64> {
    x.size()[2..].to_vec()
}
