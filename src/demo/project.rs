//! The demo experiment: configs for learning signed distances to mitochondria and ER on
//! the synthetic data with a small U-Net, ready to train on a laptop CPU.

use std::collections::BTreeMap;

use crate::config::*;

/// A config for the finest level (`s0`) of the OME-NGFF image `image` in the project's
/// synthetic container (the level array itself, so that DaCapo opens it too).
pub fn zarr(name: &str, image: &str) -> ArrayConfig {
    ArrayConfig::Zarr(ZarrArrayConfig {
        name: name.into(),
        file_name: "data/synthetic.zarr".into(),
        dataset: format!("{image}/s0"),
        snap_to_grid: None,
        axes: None,
        mode: None,
        ome_metadata: false,
    })
}

/// The classes the demo learns.
pub const CLASSES: [&str; 2] = ["mito", "er"];

fn dataset(crop: &str) -> DatasetConfig {
    let mut sources = BTreeMap::new();
    for class in CLASSES {
        sources.insert(
            class.to_string(),
            ArrayConfig::Binarize(BinarizeArrayConfig {
                name: format!("synthetic_{crop}_{class}_8nm_binarized"),
                source_array_config: Box::new(zarr(
                    &format!("gt_synthetic_{crop}_{class}_uint64"),
                    &format!("labels/{crop}/{class}"),
                )),
                groupings: vec![(class.to_string(), vec![])],
                background: 0,
            }),
        );
    }
    DatasetConfig::RawGt(RawGTDatasetConfig {
        name: format!("synthetic_{crop}"),
        weight: 1,
        raw_config: Some(ArrayConfig::Intensities(IntensitiesArrayConfig {
            name: "raw_synthetic_uint8".into(),
            source_array_config: Box::new(zarr("raw_synthetic_s0", "raw")),
            min: 0.0,
            max: 255.0,
        })),
        gt_config: Some(ArrayConfig::Concat(ConcatArrayConfig {
            name: format!("synthetic_{crop}_mito_er_8nm_gt"),
            channels: CLASSES.iter().map(|c| c.to_string()).collect(),
            source_array_configs: sources,
            default_config: None,
        })),
        mask_config: None,
        sample_points: None,
    })
}

/// The demo run: `iterations` of training, validating every `validation_interval`.
pub fn demo_run(iterations: u64, validation_interval: u64) -> RunConfig {
    RunConfig {
        name: format!("demo_mito_er_{iterations}"),
        repetition: 0,
        num_iterations: iterations,
        validation_interval,
        task_config: TaskConfig::Distance(DistanceTaskConfig {
            name: "demo_distance_mito_er".into(),
            channels: CLASSES.iter().map(|c| c.to_string()).collect(),
            clip_distance: 40.0,
            tol_distance: 40.0,
            scale_factor: 40.0,
            mask_distances: true,
            clipmin: 0.05,
            clipmax: 0.95,
        }),
        architecture_config: crate::config::templates::small_unet("demo_unet_52", 52, 8),
        trainer_config: crate::config::templates::trainer("demo_trainer", 0.05),
        datasplit_config: DataSplitConfig::TrainValidate(TrainValidateDataSplitConfig {
            name: "synthetic_semantic_mito&er_8nm".into(),
            train_configs: vec![dataset("crop1")],
            validate_configs: vec![dataset("crop2")],
        }),
        start_config: None,
    }
}
