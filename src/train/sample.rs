//! Random training samples: a dataset chosen by weight, an output patch whose centre is
//! uniform over the dataset's ground truth, raw read with the network's context, zero
//! beyond the data, patches rejected until their centre is annotated, augmented, and turned
//! into targets. Sample `i` of a run depends only on the seed and `i`, so training is
//! reproducible whatever the number of loader threads, and a resumed run sees the same
//! batches as an uninterrupted one.

use std::path::Path;

use ndarray::{ArrayD, Axis, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::augment::{Augmenter, Sample};
use super::TrainError;
use crate::array::open::open_config;
use crate::array::{ArrayData, ArraySource};
use crate::config::DatasetConfig;
use crate::geometry::{Coordinate, Roi};
use crate::task::predictor::{crop_spatial, GtKind, Predictor};

/// One training dataset, opened.
pub struct TrainDataset {
    /// The dataset's name.
    pub name: String,
    /// Relative sampling weight.
    pub weight: f64,
    /// Raw intensities (normalised as the config says).
    pub raw: Box<dyn ArraySource>,
    /// Ground truth, one channel per class.
    pub gt: Box<dyn ArraySource>,
    /// Where the ground truth is annotated (all of its region when absent).
    pub mask: Option<Box<dyn ArraySource>>,
}

/// Opens the datasets of a datasplit (relative paths against `base`), checking that raw
/// voxel sizes agree and ground truth sits at `out_vs`.
pub fn open_datasets(
    configs: &[DatasetConfig],
    base: &Path,
) -> Result<Vec<TrainDataset>, TrainError> {
    let mut out = Vec::new();
    for cfg in configs {
        let DatasetConfig::RawGt(c) = cfg else {
            return Err(TrainError::Data(format!(
                "dataset `{}`: dummy datasets cannot be trained on",
                cfg.name()
            )));
        };
        let need = |a: &Option<crate::config::ArrayConfig>, what: &str| {
            a.clone().ok_or_else(|| {
                TrainError::Data(format!("dataset `{}` has no {what}_config", c.name))
            })
        };
        let open = |a: crate::config::ArrayConfig, what: &str| {
            open_config(&a, base)
                .map_err(|e| TrainError::Data(format!("dataset `{}`, {what}: {e}", c.name)))
        };
        let raw = open(need(&c.raw_config, "raw")?, "raw")?;
        let gt = open(need(&c.gt_config, "gt")?, "gt")?;
        let mask = c.mask_config.clone().map(|m| open(m, "mask")).transpose()?;
        out.push(TrainDataset {
            name: c.name.clone(),
            weight: f64::from(c.weight.max(1)),
            raw,
            gt,
            mask,
        });
    }
    if out.is_empty() {
        return Err(TrainError::Data(
            "the datasplit has no training datasets".into(),
        ));
    }
    Ok(out)
}

/// Patch geometry of a run, in world units and voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchGeometry {
    /// Raw voxel size (nm).
    pub raw_vs: Coordinate,
    /// Output (ground-truth) voxel size (nm).
    pub out_vs: Coordinate,
    /// Network input shape (voxels).
    pub input_shape: Coordinate,
    /// Network output shape (voxels).
    pub output_shape: Coordinate,
    /// Extra ground truth per side around the output patch, for distance masks (voxels).
    pub gt_pad: Coordinate,
}

impl PatchGeometry {
    /// World size of the input patch.
    pub fn input_size(&self) -> Coordinate {
        self.raw_vs * self.input_shape
    }

    /// World size of the output patch.
    pub fn output_size(&self) -> Coordinate {
        self.out_vs * self.output_shape
    }

    /// The context between input and output patches (world, per side); must be on the
    /// raw voxel grid.
    pub fn context(&self) -> Result<Coordinate, TrainError> {
        let diff = self.input_size() - self.output_size();
        let two = Coordinate::splat(2, diff.dims());
        if !diff.is_non_negative() || !diff.is_multiple_of(&(self.raw_vs * two)) {
            return Err(TrainError::Data(format!(
                "the input patch {} nm and the output patch {} nm are not concentric on the {} nm voxel grid",
                self.input_size(),
                self.output_size(),
                self.raw_vs
            )));
        }
        Ok(diff / two)
    }
}

/// A sample ready for training: network input, targets with what their weights are made
/// of (class balancing runs in batch order), and the ground truth and mask for snapshots.
#[derive(Debug, Clone)]
pub struct TrainingSample {
    /// Index of the dataset it came from.
    pub dataset: usize,
    /// The output patch's world region.
    pub output_roi: Roi,
    /// Network input `(c_in, spatial…)`.
    pub raw: ArrayD<f32>,
    /// Ground truth `(c, spatial…)` on the output patch, as the task reads it.
    pub gt: ArrayD<u64>,
    /// Annotation mask `(c, spatial…)` on the output patch.
    pub mask: ArrayD<f32>,
    /// Targets on the output patch.
    pub targets: crate::task::predictor::Targets,
}

/// Draws samples for a run.
pub struct Sampler {
    datasets: Vec<TrainDataset>,
    geometry: PatchGeometry,
    augmenter: Augmenter,
    predictor: Predictor,
    seed: u64,
    /// Extra voxels per side the augments need (per spatial axis).
    margin: Coordinate,
}

fn to_f32(d: ArrayData) -> ArrayD<f32> {
    d.to_f32()
}

fn with_channels<T: Clone>(a: ArrayD<T>, dims: usize) -> ArrayD<T> {
    if a.ndim() == dims {
        a.insert_axis(Axis(0))
    } else {
        a
    }
}

impl Sampler {
    /// A sampler over `datasets` with `geometry`, augments and the task's predictor.
    pub fn new(
        datasets: Vec<TrainDataset>,
        geometry: PatchGeometry,
        augmenter: Augmenter,
        predictor: Predictor,
        seed: u64,
    ) -> Result<Self, TrainError> {
        geometry.context()?;
        for d in &datasets {
            let rv = d.raw.info().geometry.voxel_size;
            let gv = d.gt.info().geometry.voxel_size;
            if rv != geometry.raw_vs {
                return Err(TrainError::Data(format!(
                    "dataset `{}`: raw voxel size {rv} differs from the first dataset's {}",
                    d.name, geometry.raw_vs
                )));
            }
            if gv != geometry.out_vs {
                return Err(TrainError::Data(format!("dataset `{}`: ground truth voxel size {gv} is not the network's output voxel size {}", d.name, geometry.out_vs)));
            }
        }
        let shape: Vec<usize> = geometry.input_shape.iter().map(|v| v as usize).collect();
        let vs: Vec<f64> = geometry.out_vs.iter().map(|v| v as f64).collect();
        let margin: Vec<i64> = augmenter
            .margin(&shape, &vs)
            .iter()
            .map(|m| *m as i64)
            .collect();
        let margin = Coordinate::new(&margin).map_err(|e| TrainError::Data(e.to_string()))?;
        Ok(Self {
            datasets,
            geometry,
            augmenter,
            predictor,
            seed,
            margin,
        })
    }

    /// The datasets sampled from.
    pub fn datasets(&self) -> &[TrainDataset] {
        &self.datasets
    }

    /// The predictor (its class-balance state is applied by the caller in batch order).
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// A reproducible random generator for sample `index`.
    fn rng(&self, index: u64) -> ChaCha8Rng {
        let mut z = self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
    }

    /// Draws sample number `index`.
    pub fn sample(&self, index: u64) -> Result<TrainingSample, TrainError> {
        let mut rng = self.rng(index);
        let g = &self.geometry;
        let dims = g.raw_vs.dims();
        let total: f64 = self.datasets.iter().map(|d| d.weight).sum();
        let vs_f: Vec<f64> = g.out_vs.iter().map(|v| v as f64).collect();
        let context = g.context()?;
        let out_size = g.output_size();
        let margin_c = self.margin;
        for _attempt in 0..1000 {
            // Dataset by weight.
            let mut pick = rng.gen::<f64>() * total;
            let mut di = 0;
            for (i, d) in self.datasets.iter().enumerate() {
                if pick < d.weight {
                    di = i;
                    break;
                }
                pick -= d.weight;
                di = i;
            }
            let d = &self.datasets[di];
            let gt_roi = d.gt.info().roi;
            // Output patch whose centre voxel lies inside the ground truth (on its grid).
            let grid = g.raw_vs.lcm(&g.out_vs);
            let mut offset = Vec::with_capacity(dims);
            for a in 0..dims {
                let lo = gt_roi.begin()[a] - out_size[a] / 2;
                let hi = gt_roi.end()[a] - out_size[a] / 2;
                let steps = ((hi - lo) / grid[a]).max(1);
                let s = rng.gen_range(0..steps);
                offset.push((lo + s * grid[a]).div_euclid(grid[a]) * grid[a]);
            }
            let offset = Coordinate::new(&offset).map_err(|e| TrainError::Data(e.to_string()))?;
            let out_roi =
                Roi::new(offset, out_size).map_err(|e| TrainError::Data(e.to_string()))?;
            let raw_roi = out_roi
                .grow(&context, &context)
                .map_err(|e| TrainError::Data(e.to_string()))?;
            let raw_read = raw_roi
                .grow(&(margin_c * g.raw_vs), &(margin_c * g.raw_vs))
                .map_err(|e| TrainError::Data(e.to_string()))?;
            let gt_extra = (margin_c + g.gt_pad) * g.out_vs;
            let gt_read = out_roi
                .grow(&gt_extra, &gt_extra)
                .map_err(|e| TrainError::Data(e.to_string()))?;
            let mask = match &d.mask {
                Some(m) => with_channels(to_f32(m.read_filled(&gt_read, 0.0)?), dims),
                None => {
                    // Annotated wherever the ground truth has data.
                    let shape: Vec<usize> = (gt_read.shape() / g.out_vs)
                        .iter()
                        .map(|v| v as usize)
                        .collect();
                    let begin = gt_read.begin();
                    let mut m = ArrayD::<f32>::zeros(IxDyn(&shape));
                    // Voxel i lies in the ground truth where begin + i·vs ∈ [gt begin, gt end).
                    let ceil_div = |a: i64, b: i64| -(-a).div_euclid(b);
                    let inside: Vec<ndarray::SliceInfoElem> = (0..dims)
                        .map(|a| {
                            let n = shape[a] as i64;
                            let lo =
                                ceil_div(gt_roi.begin()[a] - begin[a], g.out_vs[a]).clamp(0, n);
                            let hi = ceil_div(gt_roi.end()[a] - begin[a], g.out_vs[a]).clamp(lo, n);
                            ndarray::SliceInfoElem::Slice {
                                start: lo as isize,
                                end: Some(hi as isize),
                                step: 1,
                            }
                        })
                        .collect();
                    m.slice_mut(inside.as_slice()).fill(1.0);
                    m.insert_axis(Axis(0))
                }
            };
            // Reject patches whose centre voxel is not annotated.
            let centre: Vec<usize> = mask.shape()[1..].iter().map(|n| n / 2).collect();
            let mut centre_idx = vec![0usize];
            centre_idx.extend(&centre);
            let annotated = (0..mask.shape()[0]).any(|c| {
                centre_idx[0] = c;
                mask[IxDyn(&centre_idx)] > 0.0
            });
            if !annotated {
                continue;
            }
            let raw = with_channels(to_f32(d.raw.read_filled(&raw_read, 0.0)?), dims);
            let gt = with_channels(
                d.gt.read_filled(&gt_read, 0.0)?
                    .to_labels()
                    .map_err(|e| TrainError::Data(format!("dataset `{}`, gt: {e}", d.name)))?
                    .mapv(|v| match self.predictor.gt_kind() {
                        GtKind::Binary => u64::from(v != 0),
                        GtKind::Labels => v,
                    }),
                dims,
            );
            let mask = if mask.shape()[0] == 1 && gt.shape()[0] > 1 {
                let views: Vec<_> = (0..gt.shape()[0])
                    .map(|_| mask.index_axis(Axis(0), 0))
                    .collect();
                ndarray::stack(Axis(0), &views).map_err(|e| TrainError::Data(e.to_string()))?
            } else {
                mask
            };
            let raw_shape: Vec<usize> = g.input_shape.iter().map(|v| v as usize).collect();
            let gt_shape: Vec<usize> = (g.output_shape + g.gt_pad * 2)
                .iter()
                .map(|v| v as usize)
                .collect();
            let augmented = self.augmenter.apply(
                Sample { raw, gt, mask },
                &raw_shape,
                &gt_shape,
                &vs_f,
                &mut rng,
            )?;
            // IntensityScaleShift is one of the augments: `raw` is already normalised.
            let raw = augmented.raw;
            let targets = self
                .predictor
                .targets(&augmented.gt, &augmented.mask, &vs_f)
                .map_err(|e| TrainError::Data(format!("dataset `{}`: {e}", d.name)))?;
            let pad: Vec<usize> = g.gt_pad.iter().map(|v| v as usize).collect();
            return Ok(TrainingSample {
                dataset: di,
                output_roi: out_roi,
                raw,
                gt: crop_spatial(&augmented.gt, &pad),
                mask: crop_spatial(&augmented.mask, &pad),
                targets: targets.cropped(&pad),
            });
        }
        Err(TrainError::Data("1000 random patches in a row had no annotated voxel at their centre: check the datasets' masks".into()))
    }
}
