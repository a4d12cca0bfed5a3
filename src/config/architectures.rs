//! Architecture configs: the network backbone.

use crate::geometry::Coordinate;

use super::schema::{child, index, Check, Problems};
use super::{check_name, check_positive_coordinate};

config_enum! {
    /// The network backbone that maps input intensities to feature maps.
    ArchitectureConfig: named {
        /// The CNNectome U-Net (2D or 3D).
        CnnectomeUnet(CNNectomeUNetConfig),
        /// A single convolution, for tests.
        Dummy(DummyArchitectureConfig),
    }
}

config_struct! {
    /// The CNNectome U-Net: levels of convolutions joined by max-pool downsampling and
    /// upsampling with skip connections, optionally followed by extra upsampling stages
    /// for a finer output voxel size.
    CNNectomeUNetConfig {
        /// Name of this architecture.
        name: String,
        /// Training input patch size in voxels (spatial axes only, z, y, x).
        input_shape ["input_shape", "_input_shape"]: Coordinate,
        /// Number of feature maps the backbone outputs (the task head maps them to task channels).
        fmaps_out: u32,
        /// Number of input channels (1 for grey-scale EM).
        fmaps_in: u32,
        /// Number of feature maps at the top level.
        num_fmaps: u32,
        /// Feature maps grow by this factor at every level down.
        fmap_inc_factor: u32,
        /// Max-pool factor of every downsampling step (levels = number of entries + 1).
        downsample_factors: Vec<Coordinate>,
        /// Convolution kernel sizes per level on the way down (default: two 3×3×3 convolutions per level).
        kernel_size_down: Option<Vec<Vec<Coordinate>>> = None,
        /// Convolution kernel sizes per level on the way up (default: two 3×3×3 convolutions per level).
        kernel_size_up: Option<Vec<Vec<Coordinate>>> = None,
        /// Voxels added to input_shape when predicting (larger blocks, same network).
        eval_shape_increase ["_eval_shape_increase", "eval_shape_increase"]: Option<Coordinate> = None,
        /// Extra upsampling stages after the U-Net; the output voxel size is the input voxel size divided by their product.
        upsample_factors: Option<Vec<Coordinate>> = None,
        /// true: nearest-neighbour upsampling followed by a 1×1 convolution; false: transposed convolution.
        constant_upsample: bool = true,
        /// `valid` (no padding, the output is smaller than the input) or `same` (zero padding).
        padding: String = "valid".to_string(),
        /// Attention gates on the skip connections.
        use_attention: bool = false,
        /// Batch normalisation after every convolution.
        batch_norm: bool = false,
    }
}

impl Check for CNNectomeUNetConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        let dims = self.input_shape.dims();
        if !(2..=3).contains(&dims) {
            problems.push(
                &child(path, "input_shape"),
                format!("must have 2 or 3 axes, got {dims} ({})", self.input_shape),
            );
        }
        check_positive_coordinate(&self.input_shape, &child(path, "input_shape"), problems);
        for (key, v) in [
            ("fmaps_out", self.fmaps_out),
            ("fmaps_in", self.fmaps_in),
            ("num_fmaps", self.num_fmaps),
            ("fmap_inc_factor", self.fmap_inc_factor),
        ] {
            if v == 0 {
                problems.push(&child(path, key), "must be positive");
            }
        }
        let check_list = |key: &str, list: &[Coordinate], problems: &mut Problems| {
            for (i, c) in list.iter().enumerate() {
                let p = index(&child(path, key), i);
                if c.dims() != dims {
                    problems.push(
                        &p,
                        format!("has {} axes but input_shape has {dims}", c.dims()),
                    );
                }
                if c.iter().any(|v| v <= 0) {
                    problems.push(&p, format!("must be positive, got {c}"));
                }
            }
        };
        check_list("downsample_factors", &self.downsample_factors, problems);
        if let Some(up) = &self.upsample_factors {
            check_list("upsample_factors", up, problems);
        }
        let levels = self.downsample_factors.len() + 1;
        for (key, kernels, want) in [
            ("kernel_size_down", &self.kernel_size_down, levels),
            ("kernel_size_up", &self.kernel_size_up, levels - 1),
        ] {
            if let Some(kernels) = kernels {
                let kpath = child(path, key);
                if kernels.len() != want {
                    problems.push(
                        &kpath,
                        format!(
                            "has {} level(s) but the network has {want} ({} downsampling step(s))",
                            kernels.len(),
                            levels - 1
                        ),
                    );
                }
                for (l, level) in kernels.iter().enumerate() {
                    let lpath = index(&kpath, l);
                    if level.is_empty() {
                        problems.push(&lpath, "needs at least one convolution");
                    }
                    for (i, k) in level.iter().enumerate() {
                        let p = index(&lpath, i);
                        if k.dims() != dims {
                            problems.push(
                                &p,
                                format!("has {} axes but input_shape has {dims}", k.dims()),
                            );
                        }
                        if k.iter().any(|v| v <= 0) {
                            problems.push(&p, format!("kernel sizes must be positive, got {k}"));
                        }
                    }
                }
            }
        }
        if let Some(inc) = &self.eval_shape_increase {
            let p = child(path, "_eval_shape_increase");
            if inc.dims() != dims {
                problems.push(
                    &p,
                    format!("has {} axes but input_shape has {dims}", inc.dims()),
                );
            }
            if inc.iter().any(|v| v < 0) {
                problems.push(&p, format!("must not be negative, got {inc}"));
            }
        }
        if self.padding != "valid" && self.padding != "same" {
            problems.push(
                &child(path, "padding"),
                format!(
                    "`{}` is not a padding mode; use `valid` or `same`",
                    self.padding
                ),
            );
        }
    }
}

config_struct! {
    /// A single 3×3×3 convolution with a fixed input shape of (40, 20, 20), for tests.
    DummyArchitectureConfig {
        /// Name of this architecture.
        name: String,
        /// Number of input channels.
        num_in_channels ["num_in_channels", "_num_in_channels"]: u32,
        /// Number of output channels.
        num_out_channels ["num_out_channels", "_num_out_channels"]: u32,
    }
}

impl Check for DummyArchitectureConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        for (key, v) in [
            ("num_in_channels", self.num_in_channels),
            ("num_out_channels", self.num_out_channels),
        ] {
            if v == 0 {
                problems.push(&child(path, key), "must be positive");
            }
        }
    }
}
