//! Networks in libtorch: the CNNectome U-Net (2D and 3D), the dummy architecture, task
//! heads and the model that joins them.
//!
//! Parameter names follow DaCapo's state-dict keys (`unet.l_conv.0.conv_pass.0.weight`,
//! `prediction_head.weight`, …) so checkpoints can be exchanged. Weights are initialised as
//! DaCapo does: Kaiming-normal (fan-in, ReLU gain) for every convolution, PyTorch's uniform
//! default for biases.

mod layers;
mod unet;

pub use layers::{Conv, ConvPass};
pub use unet::UNet;

use tch::{nn, Tensor};

use crate::config::architectures::UNetShapeError;
use crate::config::{ArchitectureConfig, CNNectomeUNetConfig};
use crate::geometry::Coordinate;

/// Errors building or running a network.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// The architecture cannot take the given input shape.
    #[error(transparent)]
    Shape(#[from] UNetShapeError),
    /// The architecture config is unusable.
    #[error("architecture `{name}`: {message}")]
    Config {
        /// The architecture's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// libtorch reported an error (shape mismatch, out of memory, …).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// A backbone network: what an architecture config builds.
pub enum Backbone {
    /// The CNNectome U-Net.
    UNet(Box<UNet>),
    /// DaCapo's dummy: one 3×3×3 convolution.
    Dummy(Conv),
}

impl Backbone {
    /// Builds the backbone of `config` with its parameters under `path`.
    pub fn new(path: &nn::Path, config: &ArchitectureConfig) -> Result<Self, NnError> {
        match config {
            ArchitectureConfig::CnnectomeUnet(c) => {
                Ok(Backbone::UNet(Box::new(UNet::new(&(path / "unet"), c)?)))
            }
            ArchitectureConfig::Dummy(c) => Ok(Backbone::Dummy(Conv::new(
                &(path / "conv"),
                c.num_in_channels as i64,
                c.num_out_channels as i64,
                &[3, 3, 3],
                false,
                false,
            ))),
        }
    }

    /// Number of output feature maps.
    pub fn fmaps_out(&self) -> i64 {
        match self {
            Backbone::UNet(u) => u.fmaps_out(),
            Backbone::Dummy(c) => c.out_channels(),
        }
    }

    /// Runs the backbone on a `(batch, channels, spatial…)` tensor.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, NnError> {
        match self {
            Backbone::UNet(u) => u.forward_t(x, train),
            Backbone::Dummy(c) => Ok(c.forward(x)?),
        }
    }
}

/// What the task puts on top of the backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadSpec {
    /// Number of output channels of the task.
    pub channels: i64,
    /// Kernel size of the head convolution (1 for most tasks).
    pub kernel_size: i64,
    /// The activation applied when not training.
    pub eval_activation: Activation,
}

/// An activation the model applies to its output at prediction time (training sees logits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The raw head output (distances).
    Identity,
    /// Element-wise sigmoid (affinities, LSDs).
    Sigmoid,
    /// Softmax over the channel axis (one-hot class probabilities).
    Softmax,
}

/// Backbone + task head (+ evaluation activation): the trained network.
pub struct Model {
    backbone: Backbone,
    head: Conv,
    eval_activation: Activation,
    dims: usize,
}

impl Model {
    /// Builds a model under the root of `vs` (parameters `architecture.*` and
    /// `prediction_head.*`, as DaCapo names them).
    pub fn new(
        vs: &nn::Path,
        architecture: &ArchitectureConfig,
        head: &HeadSpec,
    ) -> Result<Self, NnError> {
        let backbone = Backbone::new(&(vs / "architecture"), architecture)?;
        let dims = match architecture {
            ArchitectureConfig::CnnectomeUnet(c) => c.input_shape.dims(),
            ArchitectureConfig::Dummy(_) => 3,
        };
        let k = vec![head.kernel_size; dims];
        let head_conv = Conv::new(
            &(vs / "prediction_head"),
            backbone.fmaps_out(),
            head.channels,
            &k,
            false,
            false,
        );
        Ok(Self {
            backbone,
            head: head_conv,
            eval_activation: head.eval_activation,
            dims,
        })
    }

    /// Number of spatial dimensions (2 or 3).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The activation applied to the output at prediction time.
    pub fn eval_activation(&self) -> Activation {
        self.eval_activation
    }

    /// Runs the network on `(batch, channels, spatial…)`; with `train` false the
    /// evaluation activation (if any) is applied.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, NnError> {
        let features = self.backbone.forward_t(x, train)?;
        let out = self.head.forward(&features)?;
        if train {
            return Ok(out);
        }
        Ok(match self.eval_activation {
            Activation::Identity => out,
            Activation::Sigmoid => out.f_sigmoid()?,
            Activation::Softmax => out.f_softmax(1, tch::Kind::Float)?,
        })
    }
}

/// The model's output shape for an input shape (voxels), from the closed-form rule:
/// the backbone's output minus what the head convolution trims.
pub fn model_output_shape(
    architecture: &ArchitectureConfig,
    head_kernel: i64,
    input: &Coordinate,
) -> Result<Coordinate, NnError> {
    let backbone = match architecture {
        ArchitectureConfig::CnnectomeUnet(c) => c.output_shape(input)?,
        ArchitectureConfig::Dummy(_) => *input - Coordinate::splat(2, input.dims()),
    };
    let out = backbone - Coordinate::splat(head_kernel - 1, input.dims());
    if !out.is_positive() {
        return Err(NnError::Config {
            name: architecture.name().to_string(),
            message: format!("the input {input} leaves no output voxels ({out})"),
        });
    }
    Ok(out)
}

/// Output voxel size of a U-Net: the input voxel size divided by every extra upsampling
/// factor.
pub fn output_voxel_size(
    config: &CNNectomeUNetConfig,
    input_voxel_size: &Coordinate,
) -> Coordinate {
    let mut vs = *input_voxel_size;
    for f in config.upsample_factors.iter().flatten() {
        if f.dims() == vs.dims() && f.is_positive() {
            vs /= *f;
        }
    }
    vs
}

/// Bytes of freed memory the C allocator keeps at the top of its heap instead of returning
/// it to the system (see [`keep_tensor_memory`]).
pub const KEPT_FREE_BYTES: i32 = 1 << 30;

/// Makes the C allocator that libtorch's tensors come from keep their memory for reuse:
/// large tensors are taken from the heap instead of fresh memory maps, and up to
/// [`KEPT_FREE_BYTES`] of freed memory stay with the process. Without it every forward pass
/// maps its large activations anew and the system zeroes them page by page — a third of
/// a CPU forward pass's time on the demo network went to page faults. Call it once at
/// start-up, before any tensor exists; it does nothing where the C library is not glibc.
pub fn keep_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before other threads
    // start allocating through it.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEPT_FREE_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CNNectomeUNetConfig;

    fn unet(input: [i64; 3], factors: &[[i64; 3]], padding: &str) -> CNNectomeUNetConfig {
        CNNectomeUNetConfig {
            name: "t".into(),
            input_shape: Coordinate::from(input),
            fmaps_out: 2,
            fmaps_in: 1,
            num_fmaps: 2,
            fmap_inc_factor: 2,
            downsample_factors: factors.iter().map(|f| Coordinate::from(*f)).collect(),
            kernel_size_down: None,
            kernel_size_up: None,
            eval_shape_increase: None,
            upsample_factors: None,
            constant_upsample: true,
            padding: padding.into(),
            use_attention: false,
            batch_norm: false,
        }
    }

    /// Runs a zero input through the network and returns the output's spatial shape.
    fn run(config: &CNNectomeUNetConfig, input: [i64; 3]) -> Vec<i64> {
        tch::set_num_threads(1);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let model = Model::new(
            &vs.root(),
            &ArchitectureConfig::CnnectomeUnet(config.clone()),
            &HeadSpec {
                channels: 3,
                kernel_size: 1,
                eval_activation: Activation::Identity,
            },
        )
        .unwrap();
        let x = Tensor::zeros(
            [1, 1, input[0], input[1], input[2]],
            (tch::Kind::Float, tch::Device::Cpu),
        );
        let y = tch::no_grad(|| model.forward_t(&x, false)).unwrap();
        assert_eq!(y.size()[..2], [1, 3]);
        y.size()[2..].to_vec()
    }

    fn closed(config: &CNNectomeUNetConfig, input: [i64; 3]) -> Vec<i64> {
        config
            .output_shape(&Coordinate::from(input))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn forward_shapes_match_the_closed_form() {
        // 2D-in-3D (1,4,4)×2 with (1,3,3) kernels: (2,132,132) → (2,16,16).
        let mut c = unet([2, 132, 132], &[[1, 4, 4], [1, 4, 4]], "valid");
        let k = vec![vec![Coordinate::from([1, 3, 3]); 2]; 3];
        c.kernel_size_down = Some(k.clone());
        c.kernel_size_up = Some(k[..2].to_vec());
        assert_eq!(run(&c, [2, 132, 132]), vec![2, 16, 16]);
        assert_eq!(closed(&c, [2, 132, 132]), vec![2, 16, 16]);
        // Two 2× levels, transposed convolutions and attention: 132 → 92 (on a thin slab).
        let mut c = unet([44, 44, 44], &[[2, 2, 2], [2, 2, 2]], "valid");
        assert_eq!(run(&c, [44, 44, 44]), closed(&c, [44, 44, 44]));
        c.constant_upsample = false;
        c.use_attention = true;
        c.batch_norm = true;
        assert_eq!(run(&c, [44, 44, 44]), closed(&c, [44, 44, 44]));
        assert_eq!(closed(&c, [132, 132, 132]), vec![92, 92, 92]);
        // Same padding really keeps the size, also with three levels (DaCapo gives 60).
        let c = unet([64, 64, 64], &[[2, 2, 2], [2, 2, 2], [2, 2, 2]], "same");
        assert_eq!(run(&c, [16, 16, 16]), vec![16, 16, 16]);
        // Extra upsampling (super-resolution): (2,2,2),(3,3,3),(3,3,3) + ×2: 216 → 68.
        let mut c = unet([216, 216, 216], &[[2, 2, 2], [3, 3, 3], [3, 3, 3]], "valid");
        c.upsample_factors = Some(vec![Coordinate::from([2, 2, 2])]);
        assert_eq!(closed(&c, [216, 216, 216]), vec![68, 68, 68]);
        c.num_fmaps = 1;
        c.fmap_inc_factor = 1;
        let small = c.nearest_valid_sizes(1, 120).1.unwrap();
        assert!(small < 216);
        assert_eq!(
            run(&c, [216, small, small]),
            closed(&c, [216, small, small])
        );
    }

    #[test]
    fn the_network_refuses_inputs_its_configuration_rejects() {
        tch::set_num_threads(1);
        let mut c = unet([172, 172, 172], &[[2, 2, 2]; 3], "valid");
        c.num_fmaps = 1;
        c.fmap_inc_factor = 1;
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let arch = ArchitectureConfig::CnnectomeUnet(c.clone());
        let head = HeadSpec {
            channels: 1,
            kernel_size: 1,
            eval_activation: Activation::Identity,
        };
        let model = Model::new(&vs.root(), &arch, &head).unwrap();
        // Every size between two valid ones (172, 180) and sizes too small for three levels.
        let rejected: Vec<[i64; 3]> = (173..180)
            .map(|z| [z, 172, 172])
            .chain([
                [172, 171, 172],
                [172, 172, 30],
                [60, 172, 172],
                [20, 20, 20],
            ])
            .collect();
        assert_eq!(rejected.len(), 11);
        for input in rejected {
            let closed = c.output_shape(&Coordinate::from(input)).unwrap_err();
            let x = Tensor::zeros(input, (tch::Kind::Float, tch::Device::Cpu)).unsqueeze(0);
            let x = x.unsqueeze(0);
            let err = tch::no_grad(|| model.forward_t(&x, false)).err().unwrap();
            assert_eq!(err.to_string(), closed.to_string(), "{input:?}");
        }
        // A valid size still runs.
        let x = Tensor::zeros([1, 1, 108, 100, 100], (tch::Kind::Float, tch::Device::Cpu));
        assert_eq!(
            tch::no_grad(|| model.forward_t(&x, false)).unwrap().size(),
            vec![1, 1, 16, 8, 8]
        );
    }

    #[test]
    fn two_dimensional_networks() {
        tch::set_num_threads(1);
        let mut c = unet([44, 44, 44], &[[2, 2, 2], [2, 2, 2]], "valid");
        c.input_shape = Coordinate::from([44, 44]);
        c.downsample_factors = vec![Coordinate::from([2, 2]); 2];
        c.use_attention = true;
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let arch = ArchitectureConfig::CnnectomeUnet(c.clone());
        let model = Model::new(
            &vs.root(),
            &arch,
            &HeadSpec {
                channels: 2,
                kernel_size: 3,
                eval_activation: Activation::Sigmoid,
            },
        )
        .unwrap();
        assert_eq!(model.dims(), 2);
        let x = Tensor::ones([2, 1, 44, 44], (tch::Kind::Float, tch::Device::Cpu));
        let y = tch::no_grad(|| model.forward_t(&x, false)).unwrap();
        let want = model_output_shape(&arch, 3, &Coordinate::from([44, 44])).unwrap();
        assert_eq!(y.size(), vec![2, 2, want[0], want[1]]);
        assert_eq!(want, Coordinate::from([2, 2]));
        // The evaluation sigmoid keeps outputs in (0, 1).
        let max = y.max().double_value(&[]);
        let min = y.min().double_value(&[]);
        assert!(min > 0.0 && max < 1.0, "{min} {max}");
    }

    #[test]
    fn parameter_names_follow_dacapo() {
        let mut c = unet([44, 44, 44], &[[2, 2, 2], [2, 2, 2]], "valid");
        c.batch_norm = true;
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _m = Model::new(
            &vs.root(),
            &ArchitectureConfig::CnnectomeUnet(c),
            &HeadSpec {
                channels: 1,
                kernel_size: 1,
                eval_activation: Activation::Identity,
            },
        )
        .unwrap();
        let names: std::collections::BTreeSet<String> = vs.variables().into_keys().collect();
        for key in [
            "architecture.unet.l_conv.0.conv_pass.0.weight",
            "architecture.unet.l_conv.0.conv_pass.1.running_mean",
            "architecture.unet.l_conv.2.conv_pass.3.bias",
            "architecture.unet.r_up.0.1.up.1.weight",
            "architecture.unet.r_conv.0.0.conv_pass.3.weight",
            "prediction_head.weight",
        ] {
            assert!(names.contains(key), "{key} missing from {names:?}");
        }
        // Kaiming-normal init: std ≈ sqrt(2 / fan_in) for the first convolution (fan-in 27).
        let w = vs.variables()["architecture.unet.l_conv.1.conv_pass.0.weight"].shallow_clone();
        let std = w.std(true).double_value(&[]);
        let want = (2.0f64 / (2.0 * 27.0)).sqrt();
        assert!((std - want).abs() < 0.15 * want, "std {std}, want {want}");
    }
}
