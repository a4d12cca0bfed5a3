//! Starting configs for a project that has a datasplit but no task, architecture or
//! trainer yet (a datasplit made with the wizard): what the Run builder offers, so a new
//! user can build a first run without writing configs.

use crate::geometry::Coordinate;

use super::{
    ArchitectureConfig, ArrayConfig, AugmentConfig, CNNectomeUNetConfig, DataSplitConfig,
    DatasetConfig, DistanceTaskConfig, GunpowderTrainerConfig, IntensityAugmentConfig,
    IntensityScaleShiftAugmentConfig, SimpleAugmentConfig, TaskConfig, TrainerConfig,
};

/// The class names of an array of ground truth: the channels of a concatenation or the
/// groups of a binarisation, through crops and resamplings; `None` when it has none.
fn gt_classes(gt: &ArrayConfig) -> Option<Vec<String>> {
    match gt {
        ArrayConfig::Concat(c) => Some(c.channels.clone()),
        ArrayConfig::Binarize(b) => Some(b.groupings.iter().map(|(n, _)| n.clone()).collect()),
        ArrayConfig::Crop(c) => gt_classes(&c.source_array_config),
        ArrayConfig::Resampled(r) => gt_classes(&r.source_array_config),
        _ => None,
    }
}

/// The classes the ground truth of `split`'s first training dataset provides (empty when
/// they cannot be told from the configs).
pub fn datasplit_classes(split: &DataSplitConfig) -> Vec<String> {
    let DataSplitConfig::TrainValidate(s) = split else {
        return Vec::new();
    };
    s.train_configs
        .iter()
        .find_map(|d| match d {
            DatasetConfig::RawGt(d) => d.gt_config.as_ref().and_then(gt_classes),
            _ => None,
        })
        .unwrap_or_default()
}

/// A distance task predicting every class of `split` (signed distances, as CellMap's
/// models do), named after them.
pub fn task_template(split: &DataSplitConfig) -> TaskConfig {
    let classes = datasplit_classes(split);
    let name = if classes.is_empty() {
        "distance".to_string()
    } else {
        format!("distance_{}", classes.join("_"))
    };
    TaskConfig::Distance(DistanceTaskConfig {
        name,
        channels: classes,
        clip_distance: 40.0,
        tol_distance: 40.0,
        scale_factor: 40.0,
        mask_distances: true,
        clipmin: 0.05,
        clipmax: 0.95,
    })
}

/// A small 3D U-Net named `name`: one downsampling by 2, `fmaps` feature maps, an
/// `input_voxels`³ input (which must be a valid size) and evaluation blocks 24 voxels
/// larger per axis.
pub fn small_unet(name: &str, input_voxels: i64, fmaps: u32) -> ArchitectureConfig {
    ArchitectureConfig::CnnectomeUnet(CNNectomeUNetConfig {
        name: name.into(),
        input_shape: Coordinate::from([input_voxels; 3]),
        fmaps_out: fmaps,
        fmaps_in: 1,
        num_fmaps: fmaps,
        fmap_inc_factor: 2,
        downsample_factors: vec![Coordinate::from([2, 2, 2])],
        kernel_size_down: None,
        kernel_size_up: None,
        eval_shape_increase: Some(Coordinate::from([24, 24, 24])),
        upsample_factors: None,
        constant_upsample: true,
        padding: "valid".into(),
        use_attention: false,
        batch_norm: false,
    })
}

/// The architecture offered: [`small_unet`] with a 76³ input and 12 feature maps, which a
/// CPU trains at a few iterations per second.
pub fn architecture_template() -> ArchitectureConfig {
    small_unet("unet_small_76", 76, 12)
}

/// A trainer with the usual augments: mirror/transpose, intensity scale and shift, and the
/// [0, 1] → [−1, 1] mapping the network reads.
pub fn trainer_template() -> TrainerConfig {
    trainer("default_trainer", 1e-4)
}

/// A trainer named `name` with the usual augments (see [`trainer_template`]) and learning
/// rate `learning_rate`.
pub fn trainer(name: &str, learning_rate: f64) -> TrainerConfig {
    TrainerConfig::Gunpowder(GunpowderTrainerConfig {
        name: name.into(),
        batch_size: 1,
        learning_rate,
        num_data_fetchers: 2,
        augments: vec![
            AugmentConfig::Simple(SimpleAugmentConfig {
                augmentation_probability: 1.0,
            }),
            AugmentConfig::Intensity(IntensityAugmentConfig {
                scale: (0.9, 1.1),
                shift: (-0.05, 0.05),
                clip: true,
                augmentation_probability: 0.5,
            }),
            AugmentConfig::IntensityScaleShift(IntensityScaleShiftAugmentConfig {
                scale: 2.0,
                shift: -1.0,
            }),
        ],
        snapshot_interval: None,
        min_masked: None,
        clip_raw: false,
        gt_min_reject: None,
        sample_strategy: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnyConfig;

    #[test]
    fn the_templates_are_valid_and_the_task_predicts_the_datasplits_classes() {
        let run = crate::demo::project::demo_run(10, 5);
        assert_eq!(datasplit_classes(&run.datasplit_config), ["mito", "er"]);
        let task = task_template(&run.datasplit_config);
        match &task {
            TaskConfig::Distance(d) => {
                assert_eq!(d.channels, ["mito", "er"]);
                assert_eq!(d.name, "distance_mito_er");
            }
            other => panic!("{other:?}"),
        }
        for config in [
            AnyConfig::Task(task),
            AnyConfig::Architecture(architecture_template()),
            AnyConfig::Trainer(trainer_template()),
        ] {
            assert!(config.problems().is_empty(), "{:?}", config.problems());
        }
    }
}
