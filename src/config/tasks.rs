//! Task configs: what the network learns to predict and how it is scored.

use crate::geometry::Coordinate;

use super::check_name;
use super::schema::{child, index, Check, Problems};

config_enum! {
    /// What to learn: decides the prediction head, the training target and weights, the
    /// loss, the post-processing and the evaluation.
    TaskConfig: named {
        /// Signed distance to each class boundary (semantic segmentation).
        Distance(DistanceTaskConfig),
        /// One channel per class id, argmax post-processing.
        OneHot(OneHotTaskConfig),
        /// Affinities to neighbouring voxels (instance segmentation), optionally with local shape descriptors.
        Affinities(AffinitiesTaskConfig),
        /// Distance to the inside boundary of each object.
        InnerDistance(InnerDistanceTaskConfig),
        /// A binary mask channel plus a distance channel per class.
        HotDistance(HotDistanceTaskConfig),
        /// Another task whose head starts from pretrained weights.
        Pretrained(PretrainedTaskConfig),
        /// A placeholder task for tests.
        Dummy(DummyTaskConfig),
    }
}

fn check_channels(channels: &[String], key: &str, path: &str, problems: &mut Problems) {
    let cpath = child(path, key);
    if channels.is_empty() {
        problems.push(&cpath, "needs at least one class");
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in channels.iter().enumerate() {
        if c.trim().is_empty() {
            problems.push(&index(&cpath, i), "the class name must not be empty");
        } else if !seen.insert(c.as_str()) {
            problems.push(
                &index(&cpath, i),
                format!("class `{c}` appears more than once"),
            );
        }
    }
}

fn check_positive_f64(value: f64, key: &str, path: &str, problems: &mut Problems) {
    if !(value.is_finite() && value > 0.0) {
        problems.push(
            &child(path, key),
            format!("must be a positive number, got {value}"),
        );
    }
}

/// Checks the distance fields every distance-like task has.
fn check_distances(clip: f64, tol: f64, scale: f64, path: &str, problems: &mut Problems) {
    check_positive_f64(clip, "clip_distance", path, problems);
    check_positive_f64(tol, "tol_distance", path, problems);
    check_positive_f64(scale, "scale_factor", path, problems);
}

fn check_clip_pair(min: (f64, &str), max: (f64, &str), path: &str, problems: &mut Problems) {
    for (v, key) in [min, max] {
        if !(0.0..=1.0).contains(&v) {
            problems.push(&child(path, key), format!("must lie in [0, 1], got {v}"));
        }
    }
    if min.0 >= max.0 {
        problems.push(
            &child(path, max.1),
            format!("must be greater than {} ({} ≥ {})", min.1, min.0, max.0),
        );
    }
}

fn check_kernel(kernel: Option<u32>, path: &str, problems: &mut Problems) {
    if let Some(k) = kernel {
        if k == 0 || k % 2 == 0 {
            problems.push(
                &child(path, "kernel_size"),
                format!("must be an odd positive number, got {k}"),
            );
        }
    }
}

config_struct! {
    /// Predicts, per class, tanh(signed distance to the class boundary / scale_factor);
    /// thresholding the prediction gives the segmentation.
    DistanceTaskConfig {
        /// Name of this task.
        name: String,
        /// Class names, one output channel each, in the ground truth's channel order.
        channels: Vec<String>,
        /// Distances (nm) are capped at this in the "clipped" evaluation metrics.
        clip_distance: f64,
        /// Errors closer than this (nm) to the true boundary are tolerated in evaluation.
        tol_distance: f64,
        /// nm; target = tanh(distance / scale_factor). Typical: 10–20 × the voxel size.
        scale_factor: f64 = 1.0,
        /// Zero the loss weight where the true distance cannot be known inside the crop.
        mask_distances: bool = true,
        /// Lower clip of the class frequency used to balance the loss weights.
        clipmin: f64 = 0.05,
        /// Upper clip of the class frequency used to balance the loss weights.
        clipmax: f64 = 0.95,
    }
}

impl Check for DistanceTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_channels(&self.channels, "channels", path, problems);
        check_distances(
            self.clip_distance,
            self.tol_distance,
            self.scale_factor,
            path,
            problems,
        );
        check_clip_pair(
            (self.clipmin, "clipmin"),
            (self.clipmax, "clipmax"),
            path,
            problems,
        );
    }
}

config_struct! {
    /// Predicts one channel per class id; the post-processor takes the argmax.
    OneHotTaskConfig {
        /// Class names for label ids 0, 1, … in order.
        classes: Vec<String>,
        /// Name of this task.
        name: String,
        /// Kernel size of the prediction head's convolution (default 3).
        kernel_size: Option<u32> = None,
    }
}

impl Check for OneHotTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_channels(&self.classes, "classes", path, problems);
        check_kernel(self.kernel_size, path, problems);
    }
}

config_struct! {
    /// Predicts for every voxel whether it belongs to the same object as its neighbours at
    /// the given offsets; mutex watershed turns affinities into instances.
    AffinitiesTaskConfig {
        /// Name of this task.
        name: String,
        /// Neighbour offsets in voxels, e.g. [[1,0,0],[0,1,0],[0,0,1]]; one output channel each.
        neighborhood: Vec<Coordinate>,
        /// Also predict local shape descriptors (10 channels in 3D, 6 in 2D) as an auxiliary task.
        lsds: bool = false,
        /// LSD Gaussian sigma in voxels of the largest voxel size.
        num_lsd_voxels: u32 = 10,
        /// Downsampling factor used when computing LSDs.
        downsample_lsds: u32 = 1,
        /// Weight of the LSD loss relative to the affinity loss.
        lsds_to_affs_weight_ratio: f64 = 1.0,
        /// Lower clip of the class frequency for affinity weights.
        affs_weight_clipmin: f64 = 0.05,
        /// Upper clip of the class frequency for affinity weights.
        affs_weight_clipmax: f64 = 0.95,
        /// Lower clip of the foreground frequency for LSD weights.
        lsd_weight_clipmin: f64 = 0.05,
        /// Upper clip of the foreground frequency for LSD weights.
        lsd_weight_clipmax: f64 = 0.95,
        /// Treat background as one more object (background voxels get affinity 1 to each other).
        background_as_object: bool = false,
    }
}

impl Check for AffinitiesTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        let npath = child(path, "neighborhood");
        if self.neighborhood.is_empty() {
            problems.push(&npath, "needs at least one offset");
        }
        if let Some(first) = self.neighborhood.first() {
            for (i, off) in self.neighborhood.iter().enumerate() {
                if off.dims() != first.dims() {
                    problems.push(
                        &index(&npath, i),
                        format!(
                            "has {} axes but the first offset has {}",
                            off.dims(),
                            first.dims()
                        ),
                    );
                }
                if off.iter().all(|v| v == 0) {
                    problems.push(&index(&npath, i), "an all-zero offset is not a neighbour");
                }
            }
        }
        if self.num_lsd_voxels == 0 {
            problems.push(&child(path, "num_lsd_voxels"), "must be positive");
        }
        if self.downsample_lsds == 0 {
            problems.push(&child(path, "downsample_lsds"), "must be positive");
        }
        if !(self.lsds_to_affs_weight_ratio.is_finite() && self.lsds_to_affs_weight_ratio >= 0.0) {
            problems.push(
                &child(path, "lsds_to_affs_weight_ratio"),
                format!(
                    "must be 0 or positive, got {}",
                    self.lsds_to_affs_weight_ratio
                ),
            );
        }
        check_clip_pair(
            (self.affs_weight_clipmin, "affs_weight_clipmin"),
            (self.affs_weight_clipmax, "affs_weight_clipmax"),
            path,
            problems,
        );
        check_clip_pair(
            (self.lsd_weight_clipmin, "lsd_weight_clipmin"),
            (self.lsd_weight_clipmax, "lsd_weight_clipmax"),
            path,
            problems,
        );
    }
}

config_struct! {
    /// Predicts the distance to the inside boundary of each object, per class.
    InnerDistanceTaskConfig {
        /// Name of this task.
        name: String,
        /// Class names, one output channel each.
        channels: Vec<String>,
        /// Distances (nm) are capped at this in the "clipped" evaluation metrics.
        clip_distance: f64,
        /// Errors closer than this (nm) to the true boundary are tolerated in evaluation.
        tol_distance: f64,
        /// nm; target = tanh(distance / scale_factor).
        scale_factor: f64 = 1.0,
    }
}

impl Check for InnerDistanceTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_channels(&self.channels, "channels", path, problems);
        check_distances(
            self.clip_distance,
            self.tol_distance,
            self.scale_factor,
            path,
            problems,
        );
    }
}

config_struct! {
    /// Predicts, per class, a binary mask channel and a tanh distance channel
    /// (2 × classes outputs: the binary block first, then the distance block).
    HotDistanceTaskConfig {
        /// Name of this task.
        name: String,
        /// Class names.
        channels: Vec<String>,
        /// Distances (nm) are capped at this in the "clipped" evaluation metrics.
        clip_distance: f64,
        /// Errors closer than this (nm) to the true boundary are tolerated in evaluation.
        tol_distance: f64,
        /// nm; target = tanh(distance / scale_factor).
        scale_factor: f64 = 1.0,
        /// Zero the loss weight where the true distance cannot be known inside the crop.
        mask_distances: bool = false,
        /// Kernel size of the prediction head's convolution (default 3).
        kernel_size: Option<u32> = None,
    }
}

impl Check for HotDistanceTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        check_channels(&self.channels, "channels", path, problems);
        check_distances(
            self.clip_distance,
            self.tol_distance,
            self.scale_factor,
            path,
            problems,
        );
        check_kernel(self.kernel_size, path, problems);
    }
}

config_struct! {
    /// Uses another task's components, with model weights loaded from a checkpoint first.
    PretrainedTaskConfig {
        /// Name of this task.
        name: String,
        /// The task whose predictor, loss, post-processor and evaluator are used.
        sub_task_config: Box<TaskConfig>,
        /// Checkpoint file whose model weights are loaded after building the model.
        weights: String,
    }
}

impl Check for PretrainedTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.weights.trim().is_empty() {
            problems.push(&child(path, "weights"), "must name a checkpoint file");
        }
    }
}

config_struct! {
    /// A placeholder task for tests (predicts zeros, random scores).
    DummyTaskConfig {
        /// Name of this task.
        name: String,
        /// Number of embedding dimensions.
        embedding_dims: i64,
        /// Detection threshold (DaCapo's dummy task keeps it without using it).
        #[no_effect = "the dummy task predicts zeros and scores randomly whatever the threshold"]
        detection_threshold: f64,
    }
}

impl Check for DummyTaskConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
    }
}
