//! One type for every task: what ground truth it reads, the head it puts on the network,
//! its targets and class-balanced weights, its loss, its post-processing grid and how the
//! results are scored. Training, validation and prediction all go through [`Predictor`],
//! so a task behaves the same everywhere. It is one file because each operation is one
//! `match` over the task kinds: a new task is added in one place.

use ndarray::{concatenate, ArrayD, Axis, Slice};
use tch::Tensor;

use super::affinities::{self, AffError};
use super::distance::{boundary_distance, ClassBalance, DistancePredictor};
use super::evaluate::{self, BINARY_METRICS};
use super::loss::{bce_with_logits, l1_sum, mse, WeightMode};
use super::postprocess::{self, PostProcessorParameters};
use super::TaskError;
use crate::config::TaskConfig;
use crate::nn::{Activation, HeadSpec};

/// How a task's ground truth is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtKind {
    /// One binary channel per class (non-zero is foreground).
    Binary,
    /// Label ids as stored (instances or class indices).
    Labels,
}

/// Labels and masks a class balance turns into weights (one independently balanced slab
/// per channel), for one part of a task's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceInput {
    /// Binary labels `(channels, spatial…)`.
    pub labels: ArrayD<u8>,
    /// The product of the masks, same shape.
    pub scale: ArrayD<f32>,
    /// How many times the resulting weight channels are repeated (LSDs share one weight).
    pub repeat: usize,
    /// Lower and upper clip of the class fractions.
    pub clip: (f64, f64),
}

/// A task's training targets for one patch, with what its weights are made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// The target `(channels, spatial…)`.
    pub target: ArrayD<f32>,
    /// The balanced parts of the weight, concatenated along channels in order; empty means
    /// weights of one everywhere.
    pub balance: Vec<BalanceInput>,
}

impl Targets {
    /// The same targets cropped by `pad` voxels on both sides of every spatial axis.
    pub fn cropped(&self, pad: &[usize]) -> Self {
        Self {
            target: crop_spatial(&self.target, pad),
            balance: self
                .balance
                .iter()
                .map(|b| BalanceInput {
                    labels: crop_spatial(&b.labels, pad),
                    scale: crop_spatial(&b.scale, pad),
                    repeat: b.repeat,
                    clip: b.clip,
                })
                .collect(),
        }
    }
}

/// `a` without `pad[i]` voxels on both sides of spatial axis `i` (axis 0 is channels).
pub fn crop_spatial<T: Clone>(a: &ArrayD<T>, pad: &[usize]) -> ArrayD<T> {
    let mut v = a.view();
    for (i, p) in pad.iter().enumerate() {
        let axis = Axis(i + 1);
        let n = v.shape()[i + 1];
        v.slice_axis_inplace(axis, Slice::from(*p..n.saturating_sub(*p).max(*p)));
    }
    v.to_owned()
}

/// A post-processed prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum Segmentation {
    /// Binary masks `(channels, spatial…)`.
    Binary(ArrayD<u8>),
    /// One label id per voxel `(spatial…)`.
    Labels(ArrayD<u64>),
}

impl Segmentation {
    /// Whether the stored array has a channel axis.
    pub fn has_channels(&self) -> bool {
        matches!(self, Segmentation::Binary(_))
    }
}

/// Everything a task needs at training, validation and prediction time.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictor {
    /// Signed distances to class boundaries, `tanh(d/σ)` (DistanceTask).
    Distance {
        /// Targets and the distance mask.
        distance: DistancePredictor,
        /// Class names, one channel each.
        channels: Vec<String>,
        /// Distances clipped at this many nm in the clipped metrics.
        clip_distance: f64,
        /// Tolerance (nm) of the with-tolerance metrics.
        tol_distance: f64,
    },
    /// Distances to instance boundaries inside objects, 0 outside (InnerDistanceTask).
    InnerDistance {
        /// σ of `tanh(d/σ)` in nm.
        scale_factor: f64,
        /// Class names, one channel each.
        channels: Vec<String>,
        /// Distances clipped at this many nm in the clipped metrics.
        clip_distance: f64,
        /// Tolerance (nm) of the with-tolerance metrics.
        tol_distance: f64,
    },
    /// Binary class maps and signed distances side by side, `2·C` channels (HotDistanceTask).
    HotDistance {
        /// Targets of the distance half and the distance mask.
        distance: DistancePredictor,
        /// Class names.
        channels: Vec<String>,
        /// Head kernel size.
        kernel_size: i64,
        /// Distances clipped at this many nm in the clipped metrics.
        clip_distance: f64,
        /// Tolerance (nm) of the with-tolerance metrics.
        tol_distance: f64,
    },
    /// Class probabilities from a label volume of class indices (OneHotTask).
    OneHot {
        /// Class names; label `i` is class `i`.
        classes: Vec<String>,
        /// Head kernel size.
        kernel_size: i64,
    },
    /// Affinities to neighbours at `offsets`, optionally with local shape descriptors, for
    /// instance segmentation by mutex watershed (AffinitiesTask).
    Affinities {
        /// Neighbour offsets in voxels, one channel each.
        offsets: Vec<Vec<i64>>,
        /// Local shape descriptors as auxiliary targets, if configured.
        lsds: Option<LsdSpec>,
        /// Label 0 is an object of its own.
        background_as_object: bool,
        /// Class-fraction clip of the affinity weights.
        clip: (f64, f64),
    },
    /// A predictor that learns zeros (DummyTask), for testing the plumbing.
    Dummy {
        /// Output channels.
        embedding_dims: i64,
    },
}

/// The local-shape-descriptor part of an affinities task.
#[derive(Debug, Clone, PartialEq)]
pub struct LsdSpec {
    /// σ = `voxels` · the largest voxel size.
    pub voxels: u32,
    /// Compute on a grid this many times coarser.
    pub downsample: usize,
    /// Weight of the LSD loss relative to the affinity loss.
    pub ratio: f64,
    /// Class-fraction clip of the LSD weights.
    pub clip: (f64, f64),
}

impl LsdSpec {
    /// σ in nm for a voxel size.
    pub fn sigma(&self, voxel_size: &[f64]) -> f64 {
        f64::from(self.voxels) * voxel_size.iter().copied().fold(0.0, f64::max)
    }
}

/// LSD channels for `dims` spatial axes: mean offset, variances, correlations, size.
pub fn lsd_channels(dims: usize) -> usize {
    dims + dims + dims * dims.saturating_sub(1) / 2 + 1
}

/// The mutex-watershed bias grid.
const BIASES: [f64; 5] = [0.1, 0.25, 0.5, 0.75, 0.9];

/// The largest region (voxels) the mutex watershed segments in one piece.
pub const MAX_WATERSHED_VOXELS: usize = 1 << 24;

fn binary_criteria(channels: &[String]) -> Vec<String> {
    channels
        .iter()
        .flat_map(|c| BINARY_METRICS.iter().map(move |m| format!("{c}__{m}")))
        .collect()
}

fn aff_error(e: AffError) -> TaskError {
    TaskError::Shape(e.to_string())
}

fn binary_labels(gt: &ArrayD<u64>) -> ArrayD<u8> {
    gt.mapv(|v| u8::from(v != 0))
}

fn head(channels: usize, kernel_size: i64, eval_activation: Activation) -> HeadSpec {
    HeadSpec {
        channels: channels as i64,
        kernel_size,
        eval_activation,
    }
}

impl Predictor {
    /// The predictor of a task config (a pretrained task uses its sub-task's).
    pub fn from_task(task: &TaskConfig) -> Result<Self, TaskError> {
        Ok(match task {
            TaskConfig::Distance(t) => Predictor::Distance {
                distance: DistancePredictor::new(
                    t.scale_factor,
                    t.mask_distances,
                    t.clipmin,
                    t.clipmax,
                ),
                channels: t.channels.clone(),
                clip_distance: t.clip_distance,
                tol_distance: t.tol_distance,
            },
            TaskConfig::InnerDistance(t) => Predictor::InnerDistance {
                scale_factor: t.scale_factor,
                channels: t.channels.clone(),
                clip_distance: t.clip_distance,
                tol_distance: t.tol_distance,
            },
            TaskConfig::HotDistance(t) => Predictor::HotDistance {
                distance: DistancePredictor::new(t.scale_factor, t.mask_distances, 0.05, 0.95),
                channels: t.channels.clone(),
                kernel_size: i64::from(t.kernel_size.unwrap_or(3)),
                clip_distance: t.clip_distance,
                tol_distance: t.tol_distance,
            },
            TaskConfig::OneHot(t) => Predictor::OneHot {
                classes: t.classes.clone(),
                kernel_size: i64::from(t.kernel_size.unwrap_or(3)),
            },
            TaskConfig::Dummy(t) => {
                if t.embedding_dims < 1 {
                    return Err(TaskError::Shape(format!(
                        "task `{}`: embedding_dims must be positive, got {}",
                        t.name, t.embedding_dims
                    )));
                }
                Predictor::Dummy {
                    embedding_dims: t.embedding_dims,
                }
            }
            TaskConfig::Pretrained(t) => Self::from_task(&t.sub_task_config)?,
            TaskConfig::Affinities(t) => Predictor::Affinities {
                offsets: t.neighborhood.iter().map(|o| o.to_vec()).collect(),
                lsds: t.lsds.then(|| LsdSpec {
                    voxels: t.num_lsd_voxels,
                    downsample: t.downsample_lsds.max(1) as usize,
                    ratio: t.lsds_to_affs_weight_ratio,
                    clip: (t.lsd_weight_clipmin, t.lsd_weight_clipmax),
                }),
                background_as_object: t.background_as_object,
                clip: (t.affs_weight_clipmin, t.affs_weight_clipmax),
            },
        })
    }

    /// The head the task puts on the backbone.
    pub fn head(&self) -> HeadSpec {
        match self {
            Predictor::Distance { channels, .. } | Predictor::InnerDistance { channels, .. } => {
                head(channels.len(), 1, Activation::Identity)
            }
            Predictor::HotDistance {
                channels,
                kernel_size,
                ..
            } => head(2 * channels.len(), *kernel_size, Activation::Identity),
            Predictor::OneHot {
                classes,
                kernel_size,
            } => head(classes.len(), *kernel_size, Activation::Softmax),
            Predictor::Affinities { offsets, lsds, .. } => {
                let dims = offsets.first().map_or(3, Vec::len);
                let extra = if lsds.is_some() {
                    lsd_channels(dims)
                } else {
                    0
                };
                head(offsets.len() + extra, 1, Activation::Sigmoid)
            }
            Predictor::Dummy { embedding_dims } => HeadSpec {
                channels: *embedding_dims,
                kernel_size: 1,
                eval_activation: Activation::Identity,
            },
        }
    }

    /// Channels of the post-processed output (`None`: one label per voxel, no channel axis).
    pub fn output_channels(&self) -> Option<usize> {
        match self {
            Predictor::Distance { channels, .. }
            | Predictor::InnerDistance { channels, .. }
            | Predictor::HotDistance { channels, .. } => Some(channels.len()),
            Predictor::OneHot { .. } | Predictor::Dummy { .. } | Predictor::Affinities { .. } => {
                None
            }
        }
    }

    /// The criterion `apply` picks the best iteration and parameters by when none is given:
    /// the F1 score averaged over the classes, or VOI for instances.
    pub fn default_criterion(&self) -> &'static str {
        match self {
            Predictor::Dummy { .. } => "frizz_level",
            Predictor::Affinities { .. } => "voi",
            _ => "f1_score",
        }
    }

    /// How the ground truth is read.
    pub fn gt_kind(&self) -> GtKind {
        match self {
            Predictor::Distance { .. } | Predictor::HotDistance { .. } => GtKind::Binary,
            Predictor::InnerDistance { .. }
            | Predictor::OneHot { .. }
            | Predictor::Affinities { .. }
            | Predictor::Dummy { .. } => GtKind::Labels,
        }
    }

    /// The number of channels the ground truth must have (`None`: any).
    pub fn gt_channels(&self) -> Option<usize> {
        match self {
            Predictor::Distance { channels, .. }
            | Predictor::InnerDistance { channels, .. }
            | Predictor::HotDistance { channels, .. } => Some(channels.len()),
            Predictor::OneHot { .. } | Predictor::Affinities { .. } => Some(1),
            Predictor::Dummy { .. } => None,
        }
    }

    /// Names of the ground-truth channels (for messages).
    pub fn channel_names(&self) -> Vec<String> {
        match self {
            Predictor::Distance { channels, .. }
            | Predictor::InnerDistance { channels, .. }
            | Predictor::HotDistance { channels, .. } => channels.clone(),
            Predictor::OneHot { classes, .. } => vec![format!("class ids {}", classes.join("/"))],
            Predictor::Affinities { .. } => vec!["instance ids".into()],
            Predictor::Dummy { .. } => Vec::new(),
        }
    }

    /// Extra ground truth (voxels per side) around the output patch the targets need to be
    /// right at the patch border.
    pub fn gt_padding(&self, out_vs: &[i64]) -> Vec<i64> {
        let grow = |sigma: f64| -> Vec<i64> {
            out_vs
                .iter()
                .map(|v| (sigma / *v as f64).floor() as i64)
                .collect()
        };
        match self {
            Predictor::Distance { distance, .. } | Predictor::HotDistance { distance, .. }
                if distance.mask_distances =>
            {
                grow(distance.scale_factor)
            }
            Predictor::InnerDistance { scale_factor, .. } => grow(*scale_factor),
            Predictor::Affinities { offsets, lsds, .. } => {
                // Every offset's partner inside the patch, and 3σ of context for LSDs.
                let vs: Vec<f64> = out_vs.iter().map(|v| *v as f64).collect();
                (0..out_vs.len())
                    .map(|a| {
                        let aff = offsets
                            .iter()
                            .map(|o| o.get(a).map_or(0, |v| v.abs()))
                            .max()
                            .unwrap_or(0);
                        let lsd = lsds
                            .as_ref()
                            .map_or(0, |l| (3.0 * l.sigma(&vs) / vs[a]).ceil() as i64);
                        aff.max(lsd)
                    })
                    .collect()
            }
            _ => vec![0; out_vs.len()],
        }
    }

    /// Targets for ground truth `gt` and annotation mask `mask` (both `(channels, spatial…)`,
    /// over the padded patch) at `voxel_size` nm.
    pub fn targets(
        &self,
        gt: &ArrayD<u64>,
        mask: &ArrayD<f32>,
        voxel_size: &[f64],
    ) -> Result<Targets, TaskError> {
        if gt.shape() != mask.shape() && !matches!(self, Predictor::Dummy { .. }) {
            return Err(TaskError::Shape(format!(
                "ground truth {:?} and mask {:?} differ in shape",
                gt.shape(),
                mask.shape()
            )));
        }
        Ok(match self {
            Predictor::Distance { distance, .. } => {
                let target = distance.target(gt, voxel_size);
                let scale = if distance.mask_distances {
                    distance.distance_mask(&target, mask, voxel_size)
                } else {
                    mask.clone()
                };
                Targets {
                    target,
                    balance: vec![BalanceInput {
                        labels: binary_labels(gt),
                        scale,
                        repeat: 1,
                        clip: (distance.clipmin, distance.clipmax),
                    }],
                }
            }
            Predictor::HotDistance { distance, .. } => {
                let dist = distance.target(gt, voxel_size);
                let scale = if distance.mask_distances {
                    distance.distance_mask(&dist, mask, voxel_size)
                } else {
                    mask.clone()
                };
                let hot = gt.mapv(|v| f32::from(u8::from(v != 0)));
                let target = concatenate(Axis(0), &[hot.view(), dist.view()])
                    .map_err(|e| TaskError::Shape(e.to_string()))?;
                let labels = binary_labels(gt);
                let clip = (distance.clipmin, distance.clipmax);
                Targets {
                    target,
                    balance: vec![
                        BalanceInput {
                            labels: labels.clone(),
                            scale: mask.clone(),
                            repeat: 1,
                            clip,
                        },
                        BalanceInput {
                            labels,
                            scale,
                            repeat: 1,
                            clip,
                        },
                    ],
                }
            }
            Predictor::InnerDistance { scale_factor, .. } => {
                let mut target = ArrayD::<f32>::zeros(gt.raw_dim());
                for c in 0..gt.shape()[0] {
                    let g = gt.index_axis(Axis(0), c);
                    // Boundaries between different ids (an object and background included).
                    let d = boundary_distance(&g, voxel_size, |x, y| x != y);
                    let mut t = target.index_axis_mut(Axis(0), c);
                    match d {
                        Some(d) => {
                            ndarray::Zip::from(&mut t)
                                .and(&g)
                                .and(&d)
                                .for_each(|o, l, d| {
                                    if *l != 0 {
                                        *o = (d / scale_factor).tanh() as f32;
                                    }
                                })
                        }
                        None => {
                            // One object fills the patch: as far inside as the patch can tell.
                            let far = g
                                .shape()
                                .iter()
                                .zip(voxel_size)
                                .map(|(n, v)| *n as f64 * v / 2.0)
                                .fold(f64::INFINITY, f64::min);
                            ndarray::Zip::from(&mut t).and(&g).for_each(|o, l| {
                                if *l != 0 {
                                    *o = (far / scale_factor).tanh() as f32;
                                }
                            });
                        }
                    }
                }
                Targets {
                    target,
                    balance: vec![BalanceInput {
                        labels: binary_labels(gt),
                        scale: mask.clone(),
                        repeat: 1,
                        clip: (0.05, 0.95),
                    }],
                }
            }
            Predictor::OneHot { classes, .. } => {
                let labels = gt.index_axis(Axis(0), 0);
                let mut target = ArrayD::<f32>::zeros(
                    std::iter::once(classes.len())
                        .chain(labels.shape().iter().copied())
                        .collect::<Vec<_>>(),
                );
                for (k, mut lane) in target.outer_iter_mut().enumerate() {
                    ndarray::Zip::from(&mut lane)
                        .and(&labels)
                        .for_each(|o, l| *o = f32::from(u8::from(*l == k as u64)));
                }
                Targets {
                    target,
                    balance: Vec::new(),
                }
            }
            Predictor::Affinities {
                offsets,
                lsds,
                background_as_object,
                clip,
            } => {
                let seg = gt.index_axis(Axis(0), 0);
                let aff = affinities::affinity_target(&seg, offsets, *background_as_object)
                    .map_err(aff_error)?;
                let m = mask.index_axis(Axis(0), 0);
                let per_offset: Vec<_> = offsets.iter().map(|_| m.view()).collect();
                let aff_scale = ndarray::stack(Axis(0), &per_offset)
                    .map_err(|e| TaskError::Shape(e.to_string()))?;
                let mut balance = vec![BalanceInput {
                    labels: aff.mapv(|v| u8::from(v > 0.5)),
                    scale: aff_scale,
                    repeat: 1,
                    clip: *clip,
                }];
                let target = match lsds {
                    Some(l) => {
                        let lsd = affinities::lsd_target(
                            &seg,
                            voxel_size,
                            l.sigma(voxel_size),
                            l.downsample,
                        )
                        .map_err(aff_error)?;
                        balance.push(BalanceInput {
                            labels: binary_labels(gt),
                            scale: mask.clone(),
                            repeat: lsd.shape()[0],
                            clip: l.clip,
                        });
                        concatenate(Axis(0), &[aff.view(), lsd.view()])
                            .map_err(|e| TaskError::Shape(e.to_string()))?
                    }
                    None => aff,
                };
                Targets { target, balance }
            }
            Predictor::Dummy { embedding_dims } => {
                let spatial = &gt.shape()[1..];
                Targets {
                    target: ArrayD::zeros(
                        std::iter::once(*embedding_dims as usize)
                            .chain(spatial.iter().copied())
                            .collect::<Vec<_>>(),
                    ),
                    balance: Vec::new(),
                }
            }
        })
    }

    /// How many class balances the weights need (one state per balanced part).
    pub fn balance_parts(&self) -> usize {
        match self {
            Predictor::Distance { .. } | Predictor::InnerDistance { .. } => 1,
            Predictor::HotDistance { .. } => 2,
            Predictor::Affinities { lsds, .. } => 1 + usize::from(lsds.is_some()),
            Predictor::OneHot { .. } | Predictor::Dummy { .. } => 0,
        }
    }

    /// The weights of `targets`, updating the class counts in `balances` (one per part,
    /// created on first use). Call in batch order so weights do not depend on thread timing.
    pub fn weights(
        &self,
        balances: &mut Vec<ClassBalance>,
        targets: &Targets,
    ) -> Result<ArrayD<f32>, TaskError> {
        if targets.balance.is_empty() {
            return Ok(ArrayD::from_elem(targets.target.raw_dim(), 1.0));
        }
        if balances.len() < targets.balance.len() {
            balances.resize(targets.balance.len(), ClassBalance::default());
        }
        let mut parts = Vec::new();
        for (b, input) in balances.iter_mut().zip(&targets.balance) {
            let w = b.weights(&input.labels, &input.scale, input.clip.0, input.clip.1)?;
            for _ in 0..input.repeat.max(1) {
                parts.push(w.clone());
            }
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let weight = concatenate(Axis(0), &views).map_err(|e| TaskError::Shape(e.to_string()))?;
        if weight.shape() != targets.target.shape() {
            return Err(TaskError::Shape(format!(
                "weights {:?} do not match targets {:?}",
                weight.shape(),
                targets.target.shape()
            )));
        }
        Ok(weight)
    }

    /// The training loss of a batch `(batch, channels, spatial…)`.
    pub fn loss(
        &self,
        prediction: &Tensor,
        target: &Tensor,
        weight: &Tensor,
    ) -> Result<Tensor, tch::TchError> {
        match self {
            Predictor::Distance { .. } | Predictor::InnerDistance { .. } => {
                mse(prediction, target, weight, WeightMode::Squared)
            }
            Predictor::HotDistance { channels, .. } => {
                let c = channels.len() as i64;
                let hot = bce_with_logits(
                    &prediction.f_narrow(1, 0, c)?,
                    &target.f_narrow(1, 0, c)?,
                    Some(&weight.f_narrow(1, 0, c)?),
                )?;
                let dist = mse(
                    &prediction.f_narrow(1, c, c)?,
                    &target.f_narrow(1, c, c)?,
                    &weight.f_narrow(1, c, c)?,
                    WeightMode::Squared,
                )?;
                hot.f_add(&dist)
            }
            Predictor::OneHot { .. } => {
                // Cross-entropy of the softmax over channels (DaCapo trains one-hot tasks with
                // an L1 "dummy" loss on logits, which does not learn probabilities).
                let log_p = prediction.f_log_softmax(1, tch::Kind::Float)?;
                log_p
                    .f_mul(target)?
                    .f_sum_dim_intlist(Some([1i64].as_slice()), false, tch::Kind::Float)?
                    .f_mean(None)?
                    .f_neg()
            }
            Predictor::Affinities { offsets, lsds, .. } => {
                // Weighted BCE on the affinities (DaCapo ignores the weights without LSDs,
                // which also trains unannotated voxels as background), plus the LSDs' MSE.
                let n = offsets.len() as i64;
                let affs = bce_with_logits(
                    &prediction.f_narrow(1, 0, n)?,
                    &target.f_narrow(1, 0, n)?,
                    Some(&weight.f_narrow(1, 0, n)?),
                )?;
                let Some(l) = lsds else {
                    return Ok(affs);
                };
                let m = prediction.size()[1] - n;
                let lsd = prediction
                    .f_narrow(1, n, m)?
                    .f_sigmoid()?
                    .f_sub(&target.f_narrow(1, n, m)?)?;
                let lsd = lsd
                    .f_mul(&lsd)?
                    .f_mul(&weight.f_narrow(1, n, m)?)?
                    .f_mean(None)?;
                affs.f_add(&lsd.f_mul_scalar(l.ratio)?)
            }
            Predictor::Dummy { .. } => l1_sum(prediction, target),
        }
    }

    /// The post-processing parameter grid validation sweeps.
    pub fn parameters(&self) -> Vec<PostProcessorParameters> {
        match self {
            Predictor::Distance { .. } | Predictor::HotDistance { .. } => {
                postprocess::threshold_grid()
            }
            // Inner distances are 0 outside objects: thresholds at and above it.
            Predictor::InnerDistance { .. } => [0.0, 0.1, 0.2]
                .iter()
                .enumerate()
                .map(|(id, t)| PostProcessorParameters::Threshold { id, threshold: *t })
                .collect(),
            Predictor::OneHot { .. } => vec![PostProcessorParameters::Argmax { id: 1 }],
            Predictor::Affinities { .. } => BIASES
                .iter()
                .enumerate()
                .map(|(id, bias)| PostProcessorParameters::Watershed { id, bias: *bias })
                .collect(),
            Predictor::Dummy { .. } => (1..=10)
                .enumerate()
                .map(|(id, min_size)| PostProcessorParameters::Dummy { id, min_size })
                .collect(),
        }
    }

    /// Post-processes `prediction` `(channels, spatial…)` with `parameters`.
    pub fn post_process(
        &self,
        prediction: &ArrayD<f32>,
        parameters: &PostProcessorParameters,
    ) -> Result<Segmentation, TaskError> {
        let wrong = || {
            TaskError::Shape(format!(
                "post-processing parameters {} do not belong to this task",
                parameters.name()
            ))
        };
        Ok(match (self, parameters) {
            (
                Predictor::Distance { .. } | Predictor::InnerDistance { .. },
                PostProcessorParameters::Threshold { threshold, .. },
            ) => Segmentation::Binary(postprocess::threshold(prediction, *threshold)),
            (
                Predictor::HotDistance { channels, .. },
                PostProcessorParameters::Threshold { threshold, .. },
            ) => {
                // The distance half decides; the hot half is a training aid.
                let c = channels.len();
                let dist = prediction
                    .slice_axis(Axis(0), Slice::from(c..2 * c))
                    .to_owned();
                Segmentation::Binary(postprocess::threshold(&dist, *threshold))
            }
            (Predictor::OneHot { .. }, PostProcessorParameters::Argmax { .. }) => {
                Segmentation::Labels(postprocess::argmax(prediction).mapv(u64::from))
            }
            (
                Predictor::Affinities { offsets, .. },
                PostProcessorParameters::Watershed { bias, .. },
            ) => {
                let voxels: usize = prediction.shape().iter().skip(1).product();
                if voxels > MAX_WATERSHED_VOXELS {
                    return Err(TaskError::Shape(format!(
                        "{voxels} voxels are too many to segment in one piece (at most {MAX_WATERSHED_VOXELS}); choose a smaller --roi"
                    )));
                }
                let view = prediction.view();
                let mut labels =
                    affinities::mutex_watershed(&view, offsets, *bias).map_err(aff_error)?;
                // Fragments whose mean affinity is below the bias are background.
                affinities::filter_fragments(&mut labels, &view, offsets.len(), *bias)
                    .map_err(aff_error)?;
                affinities::relabel_consecutive(&mut labels);
                Segmentation::Labels(labels)
            }
            (Predictor::Dummy { .. }, PostProcessorParameters::Dummy { min_size, .. }) => {
                Segmentation::Labels(ArrayD::from_elem(
                    prediction.index_axis(Axis(0), 0).raw_dim(),
                    *min_size as u64,
                ))
            }
            _ => return Err(wrong()),
        })
    }

    /// The names of the scores [`Predictor::evaluate`] returns, in order.
    pub fn criteria(&self) -> Vec<String> {
        match self {
            Predictor::Distance { channels, .. }
            | Predictor::InnerDistance { channels, .. }
            | Predictor::HotDistance { channels, .. } => binary_criteria(channels),
            Predictor::OneHot { classes, .. } => binary_criteria(classes),
            Predictor::Affinities { .. } => ["voi_split", "voi_merge", "voi"]
                .iter()
                .map(|c| c.to_string())
                .collect(),
            Predictor::Dummy { .. } => vec!["frizz_level".into(), "blipp_score".into()],
        }
    }

    /// Scores `output` against ground truth `gt` (`(channels, spatial…)` as read for this
    /// task) at `voxel_size` nm; values in [`Predictor::criteria`] order.
    pub fn evaluate(
        &self,
        output: &Segmentation,
        gt: &ArrayD<u64>,
        voxel_size: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, TaskError> {
        self.evaluate_masked(output, gt, None, voxel_size, seed)
    }

    /// [`Predictor::evaluate`] over the voxels where the ground truth is known: `mask` is
    /// `(1 or channels, spatial…)`, true where annotated (a dataset's mask, e.g. one that
    /// leaves out classes a crop did not annotate).
    pub fn evaluate_masked(
        &self,
        output: &Segmentation,
        gt: &ArrayD<u64>,
        mask: Option<&ArrayD<bool>>,
        voxel_size: &[f64],
        seed: u64,
    ) -> Result<Vec<f64>, TaskError> {
        // One spatial mask: voxels known in every channel.
        let spatial_mask = mask.map(|m| m.map_axis(Axis(0), |lane| lane.iter().all(|v| *v)));
        let shape_err = |e: evaluate::EvaluateError| TaskError::Shape(e.to_string());
        let wrong = || {
            TaskError::Shape(format!(
                "a {} output cannot be scored by this task",
                if output.has_channels() {
                    "binary"
                } else {
                    "label"
                }
            ))
        };
        match (self, output) {
            (
                Predictor::Distance {
                    channels,
                    clip_distance,
                    tol_distance,
                    ..
                }
                | Predictor::InnerDistance {
                    channels,
                    clip_distance,
                    tol_distance,
                    ..
                }
                | Predictor::HotDistance {
                    channels,
                    clip_distance,
                    tol_distance,
                    ..
                },
                Segmentation::Binary(out),
            ) => {
                let truth = binary_labels(gt);
                Ok(evaluate::binary_segmentation_masked(
                    out,
                    &truth,
                    mask,
                    voxel_size,
                    channels,
                    *clip_distance,
                    *tol_distance,
                )
                .map_err(shape_err)?
                .values)
            }
            (Predictor::OneHot { classes, .. }, Segmentation::Labels(out)) => {
                // Each class scored as a binary segmentation (DaCapo scores one-hot at random).
                let labels = gt.index_axis(Axis(0), 0);
                let per_class = |a: &ndarray::ArrayViewD<u64>| -> Result<ArrayD<u8>, TaskError> {
                    let views: Vec<ArrayD<u8>> = (0..classes.len())
                        .map(|k| a.mapv(|v| u8::from(v == k as u64)))
                        .collect();
                    let v: Vec<_> = views.iter().map(|x| x.view()).collect();
                    ndarray::stack(Axis(0), &v).map_err(|e| TaskError::Shape(e.to_string()))
                };
                let (t, g) = (per_class(&out.view())?, per_class(&labels)?);
                Ok(evaluate::binary_segmentation_masked(
                    &t,
                    &g,
                    spatial_mask.as_ref(),
                    voxel_size,
                    classes,
                    40.0,
                    40.0,
                )
                .map_err(shape_err)?
                .values)
            }
            (Predictor::Affinities { .. }, Segmentation::Labels(out)) => {
                let truth = gt.index_axis(Axis(0), 0).to_owned();
                Ok(
                    evaluate::instance_masked(out, &truth, spatial_mask.as_ref())
                        .map_err(shape_err)?
                        .values,
                )
            }
            (Predictor::Dummy { .. }, Segmentation::Labels(_)) => Ok(evaluate::dummy(seed).values),
            _ => Err(wrong()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn line(values: &[u64]) -> ArrayD<u64> {
        ArrayD::from_shape_vec(IxDyn(&[1, values.len()]), values.to_vec()).unwrap()
    }

    fn ones(n: usize) -> ArrayD<f32> {
        ArrayD::from_elem(IxDyn(&[1, n]), 1.0)
    }

    fn distance(channels: &[&str], mask_distances: bool) -> Predictor {
        Predictor::Distance {
            distance: DistancePredictor::new(4.0, mask_distances, 0.05, 0.95),
            channels: channels.iter().map(|c| c.to_string()).collect(),
            clip_distance: 40.0,
            tol_distance: 40.0,
        }
    }

    #[test]
    fn inner_distances_separate_touching_instances() {
        // Ids 1 1 2 2 2 0 at 4 nm: boundaries 1|2 (between voxels 1 and 2) and 2|0 (4|5).
        let p = Predictor::InnerDistance {
            scale_factor: 4.0,
            channels: vec!["cells".into()],
            clip_distance: 40.0,
            tol_distance: 40.0,
        };
        let t = p
            .targets(&line(&[1, 1, 2, 2, 2, 0]), &ones(6), &[4.0])
            .unwrap();
        let d = [6.0f64, 2.0, 2.0, 6.0, 2.0];
        let mut want: Vec<f32> = d.iter().map(|v| (v / 4.0).tanh() as f32).collect();
        want.push(0.0);
        assert_eq!(t.target.iter().copied().collect::<Vec<_>>(), want);
        // Weights balance objects (5 voxels) against background (1): counts (0,1) + 6.
        let mut balances = Vec::new();
        let w = p.weights(&mut balances, &t).unwrap();
        let (fg, bg) = (1.0 / (2.0 * 5.0 / 7.0), 1.0 / (2.0 * 1.0 / 7.0));
        assert!((w[[0, 0]] - fg as f32).abs() < 1e-6, "{w:?}");
        assert!((w[[0, 5]] - bg as f32).abs() < 1e-6, "{w:?}");
        // Thresholding above zero keeps the two objects apart.
        let Segmentation::Binary(out) = p.post_process(&t.target, &p.parameters()[0]).unwrap()
        else {
            panic!("binary output expected")
        };
        assert_eq!(out.iter().copied().collect::<Vec<_>>(), [1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn hot_distance_concatenates_classes_and_distances() {
        let p = Predictor::HotDistance {
            distance: DistancePredictor::new(4.0, false, 0.05, 0.95),
            channels: vec!["mito".into()],
            kernel_size: 3,
            clip_distance: 40.0,
            tol_distance: 40.0,
        };
        assert_eq!(p.head().channels, 2);
        assert_eq!(p.head().kernel_size, 3);
        let gt = line(&[0, 0, 1, 1, 1, 0]);
        let t = p.targets(&gt, &ones(6), &[4.0]).unwrap();
        assert_eq!(t.target.shape(), &[2, 6]);
        let hot: Vec<f32> = t.target.index_axis(Axis(0), 0).iter().copied().collect();
        assert_eq!(hot, [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        let want: Vec<f32> = [-6.0f64, -2.0, 2.0, 6.0, 2.0, -2.0]
            .iter()
            .map(|d| (d / 4.0).tanh() as f32)
            .collect();
        let dist: Vec<f32> = t.target.index_axis(Axis(0), 1).iter().copied().collect();
        assert_eq!(dist, want);
        let mut balances = Vec::new();
        let w = p.weights(&mut balances, &t).unwrap();
        assert_eq!(balances.len(), 2);
        assert_eq!(w.shape(), &[2, 6]);
        // Both halves: fg 3/7 → 7/6, bg 3/7 → 7/6 (counts start at (0, 1)).
        assert!(w.iter().all(|v| (v - 7.0 / 6.0).abs() < 1e-6), "{w:?}");
        // The post-processed output thresholds the distance half only.
        let Segmentation::Binary(out) = p.post_process(&t.target, &p.parameters()[1]).unwrap()
        else {
            panic!("binary output expected")
        };
        assert_eq!(out.shape(), &[1, 6]);
        assert_eq!(out.iter().copied().collect::<Vec<_>>(), [0, 0, 1, 1, 1, 0]);
        let scores = p
            .evaluate(&Segmentation::Binary(out), &gt, &[4.0], 0)
            .unwrap();
        let f1 = p
            .criteria()
            .iter()
            .position(|c| c == "mito__f1_score")
            .unwrap();
        assert_eq!(scores[f1], 1.0);
    }

    #[test]
    fn one_hot_targets_loss_and_scores() {
        let p = Predictor::OneHot {
            classes: vec!["bg".into(), "a".into(), "b".into()],
            kernel_size: 3,
        };
        let gt = line(&[0, 1, 2, 1]);
        let t = p.targets(&gt, &ones(4), &[4.0]).unwrap();
        assert_eq!(
            t.target.iter().copied().collect::<Vec<_>>(),
            [1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0.]
        );
        assert!(t.balance.is_empty());
        let mut balances = Vec::new();
        assert!(p
            .weights(&mut balances, &t)
            .unwrap()
            .iter()
            .all(|v| *v == 1.0));
        // Equal logits: cross-entropy = ln 3 per voxel.
        let zeros = Tensor::zeros([1, 3, 4], (tch::Kind::Float, tch::Device::Cpu));
        let target = Tensor::from_slice(t.target.as_slice().unwrap()).view([1, 3, 4]);
        let loss = p.loss(&zeros, &target, &zeros).unwrap().double_value(&[]);
        assert!((loss - 3f64.ln()).abs() < 1e-6, "{loss}");
        // Argmax of the target itself reproduces the labels and scores perfectly.
        let seg = p.post_process(&t.target, &p.parameters()[0]).unwrap();
        assert_eq!(
            seg,
            Segmentation::Labels(ArrayD::from_shape_vec(IxDyn(&[4]), vec![0, 1, 2, 1]).unwrap())
        );
        let scores = p.evaluate(&seg, &gt, &[4.0], 0).unwrap();
        assert_eq!(scores.len(), 3 * BINARY_METRICS.len());
        let f1 = p
            .criteria()
            .iter()
            .position(|c| c == "b__f1_score")
            .unwrap();
        assert_eq!(scores[f1], 1.0);
    }

    #[test]
    fn distance_targets_crop_and_balance() {
        let p = distance(&["mito"], false);
        let t = p
            .targets(&line(&[0, 0, 1, 1, 1, 0]), &ones(6), &[4.0])
            .unwrap()
            .cropped(&[1]);
        assert_eq!(t.target.shape(), &[1, 4]);
        assert_eq!(
            t.balance[0].labels.iter().copied().collect::<Vec<_>>(),
            [0, 1, 1, 1]
        );
        // A mismatching task/parameter pair is an error, not a wrong output.
        assert!(p
            .post_process(&t.target, &PostProcessorParameters::Argmax { id: 1 })
            .is_err());
        assert_eq!(p.gt_padding(&[4]), vec![0]);
        assert_eq!(distance(&["mito"], true).gt_padding(&[4]), vec![1]);
    }

    #[test]
    fn dummy_learns_zeros() {
        let p = Predictor::Dummy { embedding_dims: 2 };
        let t = p.targets(&line(&[3, 4, 5]), &ones(3), &[1.0]).unwrap();
        assert_eq!(t.target.shape(), &[2, 3]);
        assert!(t.target.iter().all(|v| *v == 0.0));
        assert_eq!(p.parameters().len(), 10);
        let seg = p.post_process(&t.target, &p.parameters()[4]).unwrap();
        assert_eq!(seg, Segmentation::Labels(ArrayD::from_elem(IxDyn(&[3]), 5)));
        let s = p.evaluate(&seg, &line(&[0, 0, 0]), &[1.0], 3).unwrap();
        assert_eq!(s, evaluate::dummy(3).values);
    }

    fn affinities(lsds: bool) -> Predictor {
        Predictor::Affinities {
            offsets: vec![vec![-1, 0], vec![0, -1]],
            lsds: lsds.then_some(LsdSpec {
                voxels: 1,
                downsample: 1,
                ratio: 1.0,
                clip: (0.05, 0.95),
            }),
            background_as_object: false,
            clip: (0.05, 0.95),
        }
    }

    fn square(values: &[u64], n: usize) -> ArrayD<u64> {
        ArrayD::from_shape_vec(IxDyn(&[1, n, n]), values.to_vec()).unwrap()
    }

    #[test]
    fn affinities_and_lsds_targets_weights_and_watershed() {
        // Two objects side by side (ids 1 | 2) with a background row.
        #[rustfmt::skip]
        let gt = square(&[
            1, 1, 2, 2,
            1, 1, 2, 2,
            1, 1, 2, 2,
            0, 0, 0, 0,
        ], 4);
        let mask = ArrayD::from_elem(IxDyn(&[1, 4, 4]), 1.0f32);
        let p = affinities(true);
        assert_eq!(p.head().channels, 2 + 6);
        assert_eq!(p.head().eval_activation, Activation::Sigmoid);
        // Padding: the largest offset (1) and 3σ = 3 voxels for the LSDs.
        assert_eq!(p.gt_padding(&[4, 4]), vec![3, 3]);
        let t = p.targets(&gt, &mask, &[4.0, 4.0]).unwrap();
        assert_eq!(t.target.shape(), &[8, 4, 4]);
        // Offset (0, -1): voxel (0, 1) and (0, 0) are both object 1; (0, 2) borders object 1.
        assert_eq!(t.target[[1, 0, 1]], 1.0);
        assert_eq!(t.target[[1, 0, 2]], 0.0);
        assert_eq!(t.target[[1, 0, 0]], 0.0);
        // Offset (-1, 0): the background row has no affinity.
        assert_eq!(t.target[[0, 3, 0]], 0.0);
        assert_eq!(t.target[[0, 1, 0]], 1.0);
        let mut balances = Vec::new();
        let w = p.weights(&mut balances, &t).unwrap();
        assert_eq!(balances.len(), 2);
        assert_eq!(w.shape(), &[8, 4, 4]);
        // Channel 1 has 6 positive affinities of 16: w = 1/(2·6/17) and 1/(2·10/17).
        assert!(
            (w[[1, 0, 1]] - 17.0 / 12.0).abs() < 1e-6,
            "{}",
            w[[1, 0, 1]]
        );
        assert!(
            (w[[1, 0, 0]] - 17.0 / 20.0).abs() < 1e-6,
            "{}",
            w[[1, 0, 0]]
        );
        // The LSD weights are the object/background balance, shared by the 6 channels.
        assert_eq!(w[[2, 0, 0]], w[[7, 0, 0]]);
        assert!((w[[2, 0, 0]] - 17.0 / 24.0).abs() < 1e-6);
        // The mutex watershed of the target affinities recovers the two objects; VOI 0.
        let params = p.parameters();
        assert_eq!(params.len(), 5);
        let seg = p.post_process(&t.target, &params[2]).unwrap();
        let Segmentation::Labels(labels) = &seg else {
            panic!("labels expected")
        };
        #[rustfmt::skip]
        let want = [
            1, 1, 2, 2,
            1, 1, 2, 2,
            1, 1, 2, 2,
            0, 0, 0, 0,
        ];
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), want);
        let scores = p.evaluate(&seg, &gt, &[4.0, 4.0], 0).unwrap();
        assert_eq!(p.criteria(), ["voi_split", "voi_merge", "voi"]);
        assert!(scores.iter().all(|v| v.abs() < 1e-12), "{scores:?}");
        // The loss is finite and positive on zero logits.
        let shape = [1i64, 8, 4, 4];
        let zeros = Tensor::zeros(shape, (tch::Kind::Float, tch::Device::Cpu));
        let target = Tensor::from_slice(t.target.as_slice().unwrap()).view(shape);
        let weight = Tensor::from_slice(w.as_standard_layout().as_slice().unwrap()).view(shape);
        let loss = p.loss(&zeros, &target, &weight).unwrap().double_value(&[]);
        assert!(loss.is_finite() && loss > 0.0, "{loss}");
        // Without LSDs the head has one channel per offset.
        assert_eq!(affinities(false).head().channels, 2);
    }
}
