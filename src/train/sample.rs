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
    /// World points (nm) that training patches are centred on, when the dataset lists them.
    pub points: Option<Vec<Coordinate>>,
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
            let fail = |e: crate::array::ArrayError| {
                TrainError::Data(format!("dataset `{}`, {what}: {e}", c.name))
            };
            let array = open_config(&a, base).map_err(fail)?;
            array
                .info()
                .require_on_grid("training and validation")
                .map_err(fail)?;
            Ok::<_, TrainError>(array)
        };
        let raw = open(need(&c.raw_config, "raw")?, "raw")?;
        let gt = open(need(&c.gt_config, "gt")?, "gt")?;
        let mask = c.mask_config.clone().map(|m| open(m, "mask")).transpose()?;
        let gt_roi = gt.info().roi;
        if let Some(points) = &c.sample_points {
            if let Some((i, p)) = points
                .iter()
                .enumerate()
                .find(|(_, p)| !gt_roi.contains_point(p))
            {
                return Err(TrainError::Data(format!(
                    "dataset `{}`, sample_points[{i}]: the point {p} nm lies outside the ground truth region {gt_roi}",
                    c.name
                )));
            }
        }
        out.push(TrainDataset {
            name: c.name.clone(),
            weight: f64::from(c.weight.max(1)),
            raw,
            gt,
            mask,
            points: c.sample_points.clone().filter(|p| !p.is_empty()),
        });
    }
    if out.is_empty() {
        return Err(TrainError::Data(
            "the datasplit has no training datasets".into(),
        ));
    }
    Ok(out)
}

/// The dataset with its raw data cropped to the ground truth's region, grown outward to
/// the raw voxel grid (the trainer's `clip_raw`): raw beyond it reads as 0 in training.
pub fn clip_raw(d: TrainDataset) -> Result<TrainDataset, TrainError> {
    let fail = |e: String| TrainError::Data(format!("dataset `{}`, clip_raw: {e}", d.name));
    let info = d.raw.info();
    let vs = info.geometry.voxel_size;
    // Snap on the raw array's own lattice (its offset may be off the absolute grid).
    let origin = info.roi.offset();
    let gt = d.gt.info().roi;
    let relative = Roi::new(gt.offset() - origin, gt.shape())
        .and_then(|r| r.snap_to_grid(&vs, crate::geometry::SnapMode::Grow))
        .map_err(|e| fail(e.to_string()))?;
    let region = Roi::new(relative.offset() + origin, relative.shape())
        .map_err(|e| fail(e.to_string()))?
        .intersect(&info.roi);
    let name = format!("{} (clipped to the ground truth)", info.path);
    let TrainDataset {
        name: dataset,
        weight,
        raw,
        gt,
        mask,
        points,
    } = d;
    let raw = crate::array::transform::Crop::new(&name, raw, &region)
        .map_err(|e| TrainError::Data(format!("dataset `{dataset}`, clip_raw: {e}")))?;
    Ok(TrainDataset {
        name: dataset,
        weight,
        raw: Box::new(raw),
        gt,
        mask,
        points,
    })
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

/// How patch locations are chosen and which patches are rejected (the gunpowder
/// trainer's `sample_strategy`, `min_masked` and `gt_min_reject`).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRules {
    /// Where patch centres come from.
    pub strategy: Strategy,
    /// Least fraction of the output patch that must be annotated (mask > 0 in any channel).
    pub min_masked: f64,
    /// When set, the fraction of the output patch with non-zero ground truth must exceed it.
    pub gt_min_reject: Option<f64>,
}

impl Default for SamplingRules {
    fn default() -> Self {
        Self {
            strategy: Strategy::Reject,
            min_masked: 0.0,
            gt_min_reject: None,
        }
    }
}

/// Where patch centres are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Uniform over the ground-truth region, redrawn until the centre voxel is annotated
    /// (DaCapo v0.3.5; also `sample_strategy: reject`). Datasets listing `sample_points`
    /// are sampled at their points.
    Reject,
    /// Uniform over the annotated voxels directly (`integral_mask`): the same distribution
    /// as `Reject`, without redraws, so sparse masks train as well as dense ones.
    AnnotatedVoxels,
    /// Only at the datasets' `sample_points` (every training dataset must list some).
    SamplePoints,
}

impl Strategy {
    /// The strategy of a trainer's `sample_strategy` value.
    pub fn parse(value: Option<&str>) -> Result<Self, TrainError> {
        Ok(match value {
            None | Some("reject") => Strategy::Reject,
            Some("integral_mask") => Strategy::AnnotatedVoxels,
            Some("sample_points") => Strategy::SamplePoints,
            Some(other) => {
                return Err(TrainError::Data(format!(
                    "sample_strategy: `{other}` is not one of integral_mask, reject, sample_points"
                )))
            }
        })
    }
}

/// Per dataset, for [`Strategy::AnnotatedVoxels`]: how many annotated candidate centres
/// each z step of the sampling grid holds (the plane itself is read again when drawn).
#[derive(Debug, Clone, PartialEq)]
struct AnnotatedIndex {
    /// Candidate centre count per z step; cumulative.
    cumulative: Vec<u64>,
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
    /// Patch locations drawn until this one was accepted (1 = the first).
    pub attempts: u32,
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
    rules: SamplingRules,
    /// Per dataset, with [`Strategy::AnnotatedVoxels`]: where its annotated centres are.
    annotated: Vec<Option<AnnotatedIndex>>,
}

fn coord(v: &[i64]) -> Result<Coordinate, TrainError> {
    Coordinate::new(v).map_err(|e| TrainError::Data(e.to_string()))
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
    /// A sampler over `datasets` with `geometry`, augments, the task's predictor and the
    /// trainer's sampling `rules`.
    pub fn new(
        datasets: Vec<TrainDataset>,
        geometry: PatchGeometry,
        augmenter: Augmenter,
        predictor: Predictor,
        seed: u64,
        rules: SamplingRules,
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
            if rules.strategy == Strategy::SamplePoints && d.points.is_none() {
                return Err(TrainError::Data(format!(
                    "sample_strategy is sample_points, but dataset `{}` lists no sample_points",
                    d.name
                )));
            }
        }
        // A min_masked no patch can reach is refused now rather than after 1000 draws.
        let patch: f64 = geometry.output_size().iter().map(|v| v as f64).product();
        let reachable = datasets
            .iter()
            .map(|d| {
                let gt: f64 = d.gt.info().roi.shape().iter().map(|v| v as f64).product();
                (gt / patch).min(1.0)
            })
            .fold(0.0f64, f64::max);
        if rules.min_masked > reachable {
            return Err(TrainError::Data(format!(
                "min_masked {} cannot be met: the largest ground-truth region covers at most {:.1}% of an output patch ({} nm); lower min_masked",
                rules.min_masked,
                100.0 * reachable,
                geometry.output_size()
            )));
        }
        let shape: Vec<usize> = geometry.input_shape.iter().map(|v| v as usize).collect();
        let vs: Vec<f64> = geometry.out_vs.iter().map(|v| v as f64).collect();
        let margin: Vec<i64> = augmenter
            .margin(&shape, &vs)
            .iter()
            .map(|m| *m as i64)
            .collect();
        let margin = Coordinate::new(&margin).map_err(|e| TrainError::Data(e.to_string()))?;
        let mut sampler = Self {
            datasets,
            geometry,
            augmenter,
            predictor,
            seed,
            margin,
            rules,
            annotated: Vec::new(),
        };
        sampler.annotated = (0..sampler.datasets.len())
            .map(|i| sampler.annotated_index(i))
            .collect::<Result<_, _>>()?;
        Ok(sampler)
    }

    /// The sampling grid of patch offsets: the first offset and the number of steps per
    /// axis, so that patch centres are uniform over dataset `di`'s ground truth.
    fn offset_grid(&self, di: usize) -> Result<(Coordinate, Vec<i64>, Coordinate), TrainError> {
        let g = &self.geometry;
        let grid = g.raw_vs.lcm(&g.out_vs);
        let gt_roi = self.datasets[di].gt.info().roi;
        let out_size = g.output_size();
        let dims = grid.dims();
        let mut base = Vec::with_capacity(dims);
        let mut steps = Vec::with_capacity(dims);
        for a in 0..dims {
            let lo = gt_roi.begin()[a] - out_size[a] / 2;
            let hi = gt_roi.end()[a] - out_size[a] / 2;
            steps.push(((hi - lo) / grid[a]).max(1));
            base.push(lo.div_euclid(grid[a]) * grid[a]);
        }
        Ok((coord(&base)?, steps, grid))
    }

    /// The world position of the centre voxel of the output patch at `offset`.
    fn centre_of(&self, offset: &Coordinate) -> Coordinate {
        let g = &self.geometry;
        *offset + (g.output_shape / Coordinate::splat(2, g.output_shape.dims())) * g.out_vs
    }

    /// Reads whether the candidate centres of plane `z` (a step along the first axis) of
    /// dataset `di` are annotated, in row-major order of the other axes' steps.
    fn plane_annotated(&self, di: usize, z: i64) -> Result<Vec<bool>, TrainError> {
        let (base, steps, grid) = self.offset_grid(di)?;
        let g = &self.geometry;
        let dims = grid.dims();
        let mut first = base.to_vec();
        first[0] += z * grid[0];
        let first = self.centre_of(&coord(&first)?);
        let mut shape = vec![g.out_vs[0]];
        for a in 1..dims {
            shape.push((steps[a] - 1) * grid[a] + g.out_vs[a]);
        }
        let roi = Roi::new(first, coord(&shape)?).map_err(|e| TrainError::Data(e.to_string()))?;
        let d = &self.datasets[di];
        let stride: Vec<usize> = (0..dims)
            .map(|a| (grid[a] / g.out_vs[a]) as usize)
            .collect();
        let counts: Vec<usize> = (1..dims).map(|a| steps[a] as usize).collect();
        let n: usize = counts.iter().product();
        let mut out = vec![false; n];
        let gt_roi = d.gt.info().roi;
        let mask = match &d.mask {
            Some(m) => Some(with_channels(to_f32(m.read_filled(&roi, 0.0)?), dims)),
            None => None,
        };
        for (k, flag) in out.iter_mut().enumerate() {
            // Index of this candidate along the axes after the first.
            let mut rest = k;
            let mut idx = vec![0usize; dims];
            for a in (1..dims).rev() {
                idx[a] = (rest % counts[a - 1]) * stride[a];
                rest /= counts[a - 1];
            }
            *flag = match &mask {
                Some(m) => (0..m.shape()[0]).any(|c| {
                    let mut full = vec![c];
                    full.extend(&idx);
                    m[IxDyn(&full)] > 0.0
                }),
                None => {
                    let p: Vec<i64> = (0..dims)
                        .map(|a| roi.begin()[a] + idx[a] as i64 * g.out_vs[a])
                        .collect();
                    coord(&p).is_ok_and(|p| gt_roi.contains_point(&p))
                }
            };
        }
        Ok(out)
    }

    /// For [`Strategy::AnnotatedVoxels`]: counts dataset `di`'s annotated candidate centres
    /// per plane (datasets sampled at their points need none).
    fn annotated_index(&self, di: usize) -> Result<Option<AnnotatedIndex>, TrainError> {
        let d = &self.datasets[di];
        if self.rules.strategy != Strategy::AnnotatedVoxels || d.points.is_some() {
            return Ok(None);
        }
        let (_, steps, _) = self.offset_grid(di)?;
        let mut cumulative = Vec::with_capacity(steps[0] as usize);
        let mut total = 0u64;
        for z in 0..steps[0] {
            total += self.plane_annotated(di, z)?.iter().filter(|f| **f).count() as u64;
            cumulative.push(total);
        }
        if total == 0 {
            return Err(TrainError::Data(format!(
                "dataset `{}`: its mask annotates no voxel a patch could be centred on",
                d.name
            )));
        }
        Ok(Some(AnnotatedIndex { cumulative }))
    }

    /// The offset of a patch of dataset `di`: centred on one of its points, on an
    /// annotated voxel ([`Strategy::AnnotatedVoxels`]), or uniform over its ground truth.
    fn draw_offset(&self, di: usize, rng: &mut ChaCha8Rng) -> Result<Coordinate, TrainError> {
        let (base, steps, grid) = self.offset_grid(di)?;
        let dims = grid.dims();
        if let Some(points) = &self.datasets[di].points {
            let p = points[rng.gen_range(0..points.len())];
            let half = self.centre_of(&Coordinate::splat(0, dims));
            let o: Vec<i64> = (0..dims)
                .map(|a| (p[a] - half[a]).div_euclid(grid[a]) * grid[a])
                .collect();
            return coord(&o);
        }
        if let Some(index) = &self.annotated[di] {
            let total = index.cumulative.last().copied().unwrap_or(0);
            let k = rng.gen_range(0..total.max(1));
            let z = index.cumulative.partition_point(|c| *c <= k);
            let before = if z == 0 { 0 } else { index.cumulative[z - 1] };
            let plane = self.plane_annotated(di, z as i64)?;
            let flat = plane
                .iter()
                .enumerate()
                .filter(|(_, f)| **f)
                .nth((k - before) as usize)
                .map(|(i, _)| i)
                .ok_or_else(|| {
                    TrainError::Data(format!(
                        "dataset `{}`: its mask changed while training",
                        self.datasets[di].name
                    ))
                })?;
            let mut o = base.to_vec();
            o[0] += z as i64 * grid[0];
            let mut rest = flat;
            for a in (1..dims).rev() {
                let n = steps[a] as usize;
                o[a] += (rest % n) as i64 * grid[a];
                rest /= n;
            }
            return coord(&o);
        }
        let o: Vec<i64> = (0..dims)
            .map(|a| base[a] + rng.gen_range(0..steps[a]) * grid[a])
            .collect();
        coord(&o)
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
        // Why patches were rejected, for the error when none is accepted.
        let (mut unannotated, mut under_masked, mut under_gt) = (0u32, 0u32, 0u32);
        for attempt in 0..1000u32 {
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
            let offset = self.draw_offset(di, &mut rng)?;
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
                unannotated += 1;
                continue;
            }
            // The output patch within the read (which has margins for augments and targets).
            let read_pad = margin_c + g.gt_pad;
            let inner: Vec<ndarray::SliceInfoElem> = std::iter::once((..).into())
                .chain((0..dims).map(|a| {
                    let lo = read_pad[a] as isize;
                    ndarray::SliceInfoElem::Slice {
                        start: lo,
                        end: Some(lo + g.output_shape[a] as isize),
                        step: 1,
                    }
                }))
                .collect();
            if self.rules.min_masked > 0.0 {
                let patch = mask.slice(inner.as_slice());
                let spatial = patch.index_axis(Axis(0), 0).len().max(1);
                let annotated_voxels = patch
                    .lanes(Axis(0))
                    .into_iter()
                    .filter(|lane| lane.iter().any(|v| *v > 0.0))
                    .count();
                if (annotated_voxels as f64) < self.rules.min_masked * spatial as f64 {
                    under_masked += 1;
                    continue;
                }
            }
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
            if let Some(least) = self.rules.gt_min_reject {
                let patch = gt.slice(inner.as_slice());
                let spatial = patch.index_axis(Axis(0), 0).len().max(1);
                let labelled = patch
                    .lanes(Axis(0))
                    .into_iter()
                    .filter(|lane| lane.iter().any(|v| *v != 0))
                    .count();
                if labelled as f64 <= least * spatial as f64 {
                    under_gt += 1;
                    continue;
                }
            }
            // Raw is read once the patch is accepted.
            let raw = with_channels(to_f32(d.raw.read_filled(&raw_read, 0.0)?), dims);
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
                attempts: attempt + 1,
            });
        }
        Err(TrainError::Data(format!(
            "1000 patches in a row were rejected ({unannotated} with no annotated voxel at their centre, {under_masked} with less than min_masked {} of their voxels annotated, {under_gt} with at most gt_min_reject {} of their voxels labelled): check the datasets' masks, or lower min_masked / gt_min_reject",
            self.rules.min_masked,
            self.rules.gt_min_reject.map_or("-".to_string(), |v| v.to_string())
        )))
    }
}
