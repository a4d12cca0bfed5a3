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
        padding: String { "valid" | "same" } = "valid".to_string(),
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
        if self.downsample_factors.is_empty() {
            problems.push(
                &child(path, "downsample_factors"),
                "needs at least one downsampling factor, e.g. [(2, 2, 2)]: a U-Net without one has no levels",
            );
        }
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
        // An unknown padding is reported by the field's choices; without a known padding
        // the shapes cannot be checked.
        let padding_known = self.padding == "valid" || self.padding == "same";
        if padding_known && (2..=3).contains(&dims) && self.input_shape.is_positive() {
            check_unet_shapes(self, path, problems);
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

/// Why a U-Net cannot process an input of a given size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UNetShapeError {
    /// The config itself is inconsistent (mismatched axes, wrong number of kernel levels).
    #[error("the architecture is inconsistent: {0}")]
    Inconsistent(String),
    /// The feature map became empty (too small an input for this many convolutions).
    #[error("axis {axis}: the input size {input} is too small: the feature map shrinks to {size} at level {level}")]
    TooSmall {
        /// Spatial axis (0 = z).
        axis: usize,
        /// The input size on that axis, in voxels.
        input: i64,
        /// The level where the map vanished.
        level: usize,
        /// The size it shrank to.
        size: i64,
    },
    /// A feature map entering a max-pool is not divisible by the pooling factor.
    #[error("axis {axis}: the input size {input} does not fit: at level {level} the feature map of size {size} is not divisible by the downsampling factor {factor}")]
    NotDivisible {
        /// Spatial axis (0 = z).
        axis: usize,
        /// The input size on that axis, in voxels.
        input: i64,
        /// The level of the max-pool.
        level: usize,
        /// The feature map size entering it.
        size: i64,
        /// The pooling factor on that axis.
        factor: i64,
    },
}

impl CNNectomeUNetConfig {
    /// Number of levels (downsampling steps + 1).
    pub fn levels(&self) -> usize {
        self.downsample_factors.len() + 1
    }

    fn kernel_shrink(&self, kernels: Option<&Vec<Coordinate>>, axis: usize, same: bool) -> i64 {
        if same {
            return 0;
        }
        match kernels {
            Some(ks) => ks.iter().map(|k| k.get(axis).unwrap_or(3) - 1).sum(),
            // The default pass: two convolutions of size 3.
            None => 4,
        }
    }

    fn down_kernels(&self, level: usize) -> Option<&Vec<Coordinate>> {
        self.kernel_size_down.as_ref().and_then(|k| k.get(level))
    }

    fn up_kernels(&self, level: usize) -> Option<&Vec<Coordinate>> {
        self.kernel_size_up.as_ref().and_then(|k| k.get(level))
    }

    fn check_consistent(&self) -> Result<(), UNetShapeError> {
        let dims = self.input_shape.dims();
        let bad = |what: String| Err(UNetShapeError::Inconsistent(what));
        if self
            .downsample_factors
            .iter()
            .chain(self.upsample_factors.iter().flatten())
            .any(|f| f.dims() != dims || !f.is_positive())
        {
            return bad("factors must be positive with one entry per input axis".into());
        }
        for (key, kernels, want) in [
            ("kernel_size_down", &self.kernel_size_down, self.levels()),
            ("kernel_size_up", &self.kernel_size_up, self.levels() - 1),
        ] {
            if let Some(k) = kernels {
                if k.len() != want
                    || k.iter()
                        .flatten()
                        .any(|k| k.dims() != dims || !k.is_positive())
                {
                    return bad(format!(
                        "{key} needs {want} level(s) of positive kernels with {dims} axes"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Output size on one axis for an input of `input` voxels (see [`Self::output_shape`]).
    fn output_size(&self, axis: usize, input: i64) -> Result<i64, UNetShapeError> {
        let same = self.padding == "same";
        let last = self.levels() - 1;
        let too_small = |level: usize, size: i64| UNetShapeError::TooSmall {
            axis,
            input,
            level,
            size,
        };
        // Down path: shrink by the convolutions, then pool.
        let mut size = input;
        for level in 0..=last {
            size -= self.kernel_shrink(self.down_kernels(level), axis, same);
            if size <= 0 {
                return Err(too_small(level, size));
            }
            if level < last {
                let factor = self.downsample_factors[level][axis];
                if size % factor != 0 {
                    return Err(UNetShapeError::NotDivisible {
                        axis,
                        input,
                        level,
                        size,
                        factor,
                    });
                }
                size /= factor;
            }
        }
        // Up path: upsample, crop to a multiple of the remaining downsampling (keeps the
        // network translation-equivariant), then shrink by the convolutions.
        for level in (0..last).rev() {
            size *= self.downsample_factors[level][axis];
            let total: i64 = self.downsample_factors[level..]
                .iter()
                .map(|f| f[axis])
                .product();
            let shrink = self.kernel_shrink(self.up_kernels(level), axis, same);
            let cropped = (size - shrink).div_euclid(total) * total + shrink;
            if cropped != size {
                if cropped <= shrink {
                    return Err(too_small(level, cropped - shrink));
                }
                size = cropped;
            }
            size -= shrink;
            if size <= 0 {
                return Err(too_small(level, size));
            }
        }
        // Extra upsampling stages: always valid convolutions with the last up kernels.
        for factor in self.upsample_factors.iter().flatten() {
            let kernels = self.kernel_size_up.as_ref().and_then(|k| k.last());
            size = size * factor[axis] - self.kernel_shrink(kernels, axis, false);
            if size <= 0 {
                return Err(too_small(last + 1, size));
            }
        }
        Ok(size)
    }

    /// The network's output shape (voxels, at the output voxel size) for an input of
    /// `input` voxels, or why that input does not fit. With `valid` padding every
    /// convolution shrinks the map; with `same` padding the output equals the input, which
    /// must be divisible by the product of the downsampling factors.
    pub fn output_shape(&self, input: &Coordinate) -> Result<Coordinate, UNetShapeError> {
        self.check_consistent()?;
        if input.dims() != self.input_shape.dims() {
            return Err(UNetShapeError::Inconsistent(format!(
                "the input {input} has {} axes, the network {}",
                input.dims(),
                self.input_shape.dims()
            )));
        }
        let sizes = input
            .iter()
            .enumerate()
            .map(|(axis, s)| self.output_size(axis, s))
            .collect::<Result<Vec<i64>, _>>()?;
        Coordinate::new(&sizes).map_err(|e| UNetShapeError::Inconsistent(e.to_string()))
    }

    /// The valid input sizes on `axis` nearest to `size`: the largest valid size below (if
    /// any) and the smallest valid size at or above it.
    ///
    /// Valid sizes are `a + p·b` for whole `b` from some smallest `b` on: `p` is the product
    /// of the downsampling factors and `a` what the convolutions above the bottom level take
    /// away (each level's shrink times the factors above it). So the candidates are found by
    /// arithmetic, and the smallest valid `b` by a binary search, whatever the factors.
    pub fn nearest_valid_sizes(&self, axis: usize, size: i64) -> (Option<i64>, Option<i64>) {
        if self.check_consistent().is_err() || axis >= self.input_shape.dims() {
            return (None, None);
        }
        let same = self.padding == "same";
        let last = self.levels() - 1;
        let (mut a, mut p) = (0i64, 1i64);
        for level in 0..last {
            let shrink = self.kernel_shrink(self.down_kernels(level), axis, same);
            let step = shrink
                .checked_mul(p)
                .and_then(|x| a.checked_add(x))
                .zip(p.checked_mul(self.downsample_factors[level][axis]));
            match step {
                Some((next_a, next_p)) => (a, p) = (next_a, next_p),
                // No size an i64 can hold passes the pooling levels.
                None => return (None, None),
            }
        }
        let at = |b: i64| b.checked_mul(p).and_then(|x| x.checked_add(a));
        let ok = |b: i64| at(b).is_some_and(|s| s > 0 && self.output_size(axis, s).is_ok());
        // Validity is monotone in b: the largest candidate below is valid or none is.
        let below = size
            .checked_sub(1)
            .and_then(|s| s.checked_sub(a))
            .map(|d| d.div_euclid(p))
            .filter(|&b| ok(b))
            .and_then(at);
        let Some(first) = size.checked_sub(a).map(|d| -(-d).div_euclid(p)) else {
            return (below, None);
        };
        let first = first.max(0);
        if ok(first) {
            return (below, at(first));
        }
        // Smallest valid b above `first`: double the step until valid, then bisect. Sizes
        // stay within 2^53 (the largest coordinate Segno accepts).
        let (mut lo, mut step) = (first, 1i64);
        let mut hi = loop {
            let Some(b) = first
                .checked_add(step)
                .filter(|&b| at(b).is_some_and(|s| s <= 1 << 53))
            else {
                return (below, None);
            };
            if ok(b) {
                break b;
            }
            lo = b;
            step = step.saturating_mul(2);
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (below, at(hi))
    }
}

/// A U-Net's sizes for one input: what `segno architecture shapes` prints and the config
/// editor shows while a U-Net is edited.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShapeReport {
    /// The network input (voxels).
    pub input_voxels: Coordinate,
    /// The network output (voxels), when the input is valid.
    pub output_voxels: Option<Coordinate>,
    /// Context per side between input and output, in input voxels.
    pub context_voxels: Option<Vec<f64>>,
    /// The evaluation input (input + `_eval_shape_increase`) and its output, if set.
    pub eval_voxels: Option<(Coordinate, Option<Coordinate>)>,
    /// The input voxel size (nm), when known.
    pub input_voxel_size_nm: Option<Coordinate>,
    /// The output voxel size (nm): the input's divided by the extra upsampling.
    pub output_voxel_size_nm: Option<Coordinate>,
    /// Context per side in nm, when the voxel size is known.
    pub context_nm: Option<Vec<f64>>,
    /// The prediction head's kernel size the output includes.
    pub head_kernel: i64,
    /// Why the input is invalid, with the nearest valid sizes.
    pub error: Option<String>,
}

impl ShapeReport {
    /// One or two lines of text.
    pub fn text(&self) -> String {
        let mut t = format!("input {} voxels", self.input_voxels);
        match (&self.output_voxels, &self.error) {
            (Some(o), _) => {
                t.push_str(&format!(", output {o} voxels"));
                if let Some(c) = &self.context_voxels {
                    t.push_str(&format!("; context {c:?} voxels per side"));
                }
            }
            (None, Some(e)) => t.push_str(&format!(": {e}")),
            (None, None) => {}
        }
        if let (Some(i), Some(o)) = (&self.input_voxel_size_nm, &self.output_voxel_size_nm) {
            t.push_str(&format!("; voxel size {i} nm in, {o} nm out"));
            if let Some(c) = &self.context_nm {
                t.push_str(&format!(" (context {c:?} nm)"));
            }
        }
        if let Some((e, out)) = &self.eval_voxels {
            match out {
                Some(o) => t.push_str(&format!("\nevaluation input {e}, output {o} voxels")),
                None => t.push_str(&format!("\nevaluation input {e} is invalid")),
            }
        }
        t
    }
}

impl CNNectomeUNetConfig {
    /// The sizes of this U-Net with a prediction head of kernel `head_kernel` for `input`
    /// (default: its `input_shape`) at `voxel_size_nm` (when known).
    pub fn shape_report(
        &self,
        input: Option<Coordinate>,
        voxel_size_nm: Option<Coordinate>,
        head_kernel: i64,
    ) -> ShapeReport {
        let input = input.unwrap_or(self.input_shape);
        let trim = head_kernel.max(1) - 1;
        let out_of = |i: &Coordinate| -> Result<Coordinate, String> {
            let o = self.output_shape(i).map_err(|e| {
                let mut msg = e.to_string();
                if let UNetShapeError::TooSmall { axis, input, .. }
                | UNetShapeError::NotDivisible { axis, input, .. } = e
                {
                    if let (b, Some(a)) = self.nearest_valid_sizes(axis, input) {
                        msg.push_str(&match b {
                            Some(b) => format!("; nearest valid sizes on that axis: {b} or {a}"),
                            None => format!("; the smallest valid size on that axis is {a}"),
                        });
                    }
                }
                msg
            })?;
            let o = o - Coordinate::splat(trim, o.dims());
            if !o.is_positive() {
                return Err(format!(
                    "the input {i} leaves no output voxels after the head"
                ));
            }
            Ok(o)
        };
        // Extra upsampling: output voxels are this much smaller than input voxels.
        let up: Vec<f64> = (0..input.dims())
            .map(|a| {
                self.upsample_factors
                    .iter()
                    .flatten()
                    .map(|f| f.get(a).unwrap_or(1) as f64)
                    .product()
            })
            .collect();
        let (output, error) = match out_of(&input) {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(e)),
        };
        let context_voxels = output.map(|o| {
            (0..input.dims())
                .map(|a| (input[a] as f64 - o[a] as f64 / up[a]) / 2.0)
                .collect::<Vec<f64>>()
        });
        let output_vs = voxel_size_nm.map(|vs| {
            let mut v = vs;
            for f in self.upsample_factors.iter().flatten() {
                if f.dims() == v.dims() && f.is_positive() {
                    v /= *f;
                }
            }
            v
        });
        let context_nm = match (&context_voxels, &voxel_size_nm) {
            (Some(c), Some(vs)) => {
                Some(c.iter().zip(vs.iter()).map(|(c, v)| c * v as f64).collect())
            }
            _ => None,
        };
        let eval_voxels = self
            .eval_shape_increase
            .filter(|inc| inc.dims() == input.dims())
            .and_then(|inc| input.checked_add(&inc).ok())
            .map(|e| (e, out_of(&e).ok()));
        ShapeReport {
            input_voxels: input,
            output_voxels: output,
            context_voxels,
            eval_voxels,
            input_voxel_size_nm: voxel_size_nm,
            output_voxel_size_nm: output_vs,
            context_nm,
            head_kernel,
            error,
        }
    }
}

fn check_unet_shapes(unet: &CNNectomeUNetConfig, path: &str, problems: &mut Problems) {
    if unet.check_consistent().is_err() {
        return; // the field checks above already report it
    }
    let mut check = |key: &str, shape: &Coordinate| {
        if let Err(e) = unet.output_shape(shape) {
            let mut msg = e.to_string();
            if let UNetShapeError::TooSmall { axis, input, .. }
            | UNetShapeError::NotDivisible { axis, input, .. } = e
            {
                match unet.nearest_valid_sizes(axis, input) {
                    (Some(b), Some(a)) => {
                        msg.push_str(&format!("; nearest valid sizes on that axis: {b} or {a}"))
                    }
                    (None, Some(a)) => {
                        msg.push_str(&format!("; the smallest valid size on that axis is {a}"))
                    }
                    _ => {}
                }
            }
            problems.push(&child(path, key), msg);
        }
    };
    check("input_shape", &unet.input_shape);
    if let Some(inc) = &unet.eval_shape_increase {
        if inc.dims() == unet.input_shape.dims() {
            if let Ok(eval) = unet.input_shape.checked_add(inc) {
                check("_eval_shape_increase", &eval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Validate;

    fn unet(factors: &[[i64; 3]], kernel: Option<[i64; 3]>, padding: &str) -> CNNectomeUNetConfig {
        let levels = factors.len() + 1;
        let kernels = kernel.map(|k| vec![vec![Coordinate::from(k); 2]; levels]);
        CNNectomeUNetConfig {
            name: "u".into(),
            input_shape: Coordinate::from([132, 132, 132]),
            fmaps_out: 12,
            fmaps_in: 1,
            num_fmaps: 12,
            fmap_inc_factor: 2,
            downsample_factors: factors.iter().map(|f| Coordinate::from(*f)).collect(),
            kernel_size_down: kernels.clone(),
            kernel_size_up: kernels.map(|mut k| {
                k.pop();
                k
            }),
            eval_shape_increase: None,
            upsample_factors: None,
            constant_upsample: true,
            padding: padding.into(),
            use_attention: false,
            batch_norm: false,
        }
    }

    fn out(net: &CNNectomeUNetConfig, s: [i64; 3]) -> Result<[i64; 3], UNetShapeError> {
        let c = net.output_shape(&Coordinate::from(s))?;
        Ok([c[0], c[1], c[2]])
    }

    #[test]
    fn output_shapes_match_dacapo() {
        let three = unet(&[[2, 2, 2]; 3], None, "valid");
        for (i, o) in [(172, 80), (180, 88), (188, 96), (244, 152), (260, 168)] {
            assert_eq!(out(&three, [i; 3]), Ok([o; 3]), "{i}");
        }
        assert!(matches!(
            out(&three, [173, 172, 172]),
            Err(UNetShapeError::NotDivisible {
                axis: 0,
                input: 173,
                level: 0,
                size: 169,
                factor: 2
            })
        ));

        let mut cosem = unet(&[[2, 2, 2], [3, 3, 3], [3, 3, 3]], None, "valid");
        cosem.upsample_factors = Some(vec![Coordinate::from([2, 2, 2])]);
        assert_eq!(out(&cosem, [216; 3]), Ok([68; 3]));
        assert_eq!(out(&cosem, [288; 3]), Ok([212; 3]));

        let flat = unet(&[[1, 4, 4], [1, 4, 4]], Some([1, 3, 3]), "valid");
        assert_eq!(out(&flat, [2, 132, 132]), Ok([2, 16, 16]));
        assert_eq!(out(&flat, [10, 164, 164]), Ok([10, 48, 48]));

        let two = unet(&[[2, 2, 2]; 2], None, "valid");
        assert_eq!(out(&two, [132; 3]), Ok([92; 3]));
        assert_eq!(
            out(&unet(&[[2, 2, 2]; 2], None, "same"), [64; 3]),
            Ok([64; 3])
        );
        // Same padding keeps the size (DaCapo crops 64 to 60 here, a defect).
        let same3 = unet(&[[2, 2, 2]; 3], None, "same");
        assert_eq!(out(&same3, [64; 3]), Ok([64; 3]));
        assert_eq!(out(&same3, [96; 3]), Ok([96; 3]));
        assert!(out(&same3, [100; 3]).is_err());
    }

    #[test]
    fn nearest_valid_sizes_equal_a_scan_and_stay_quick_with_huge_factors() {
        let scan = |net: &CNNectomeUNetConfig, axis: usize, size: i64| {
            let ok = |s: i64| s > 0 && net.output_size(axis, s).is_ok();
            (
                (1..=2000).map(|d| size - d).find(|&s| ok(s)),
                (0..=2000).map(|d| size + d).find(|&s| ok(s)),
            )
        };
        for (factors, kernel, padding) in [
            (&[[2, 2, 2]; 2][..], None, "valid"),
            (&[[2, 3, 2], [3, 2, 2]][..], Some([3, 5, 3]), "valid"),
            (&[[2, 2, 2]; 3][..], None, "same"),
        ] {
            let net = unet(factors, kernel, padding);
            for size in [1, 7, 20, 64, 99, 100, 101, 173, 260, 513] {
                assert_eq!(
                    net.nearest_valid_sizes(1, size),
                    scan(&net, 1, size),
                    "{padding} {size}"
                );
            }
        }
        // Factors of 2160 give a period of 2160^2 voxels; a scan over it took seconds.
        let net = unet(&[[2, 2160, 2]; 2], None, "valid");
        let (below, above) = net.nearest_valid_sizes(1, 132);
        assert_eq!(below, None);
        let above = above.unwrap();
        assert!(net.output_size(1, above).is_ok());
        // The smallest valid size: one period less fails, and sizes are a + p·b.
        assert!(net.output_size(1, above - 2160 * 2160).is_err());
        assert_eq!((above - 4 - 4 * 2160) % (2160 * 2160), 0);
        let (below, _) = net.nearest_valid_sizes(1, above + 5);
        assert_eq!(below, Some(above));
    }

    #[test]
    fn invalid_input_shapes_are_reported_with_nearest_valid_sizes() {
        let mut net = unet(&[[2, 2, 2]; 3], None, "valid");
        net.input_shape = Coordinate::from([172, 173, 172]);
        net.eval_shape_increase = Some(Coordinate::from([72, 72, 72]));
        assert_eq!(net.nearest_valid_sizes(1, 173), (Some(172), Some(180)));
        let mut problems = Problems::default();
        net.validate("architecture_config", &mut problems);
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            vec![
                "architecture_config.input_shape: axis 1: the input size 173 does not fit: at level 0 the feature map of size 169 is not divisible by the downsampling factor 2; nearest valid sizes on that axis: 172 or 180",
                "architecture_config._eval_shape_increase: axis 1: the input size 245 does not fit: at level 0 the feature map of size 241 is not divisible by the downsampling factor 2; nearest valid sizes on that axis: 244 or 252",
            ]
        );
        // Too small an input.
        assert!(matches!(
            out(&net, [20, 172, 172]),
            Err(UNetShapeError::TooSmall { axis: 0, .. })
        ));
        // 100 → 8 is the smallest: 172 → 80 minus nine steps of 8.
        assert_eq!(net.nearest_valid_sizes(0, 20), (None, Some(100)));
        assert_eq!(out(&net, [100, 172, 172]), Ok([8, 80, 80]));
    }
}
