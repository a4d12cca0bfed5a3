//! Shared fixtures of the integration tests.

/// A project holding the `size`³ demo data (seed 1), without runs.
#[allow(dead_code)]
pub fn demo_data_project(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    segno::demo::generate(
        dir.path(),
        &segno::demo::DemoOptions {
            seed: 1,
            size,
            overwrite: false,
        },
    )
    .unwrap();
    dir
}

/// Raw intensities of the demo data (`data/synthetic.zarr/raw/s0`) mapped from
/// `[min, max]` to [0, 1].
#[allow(dead_code)]
pub fn demo_raw(min: f64, max: f64) -> segno::config::ArrayConfig {
    use segno::config::*;
    ArrayConfig::Intensities(IntensitiesArrayConfig {
        name: "raw_norm".into(),
        source_array_config: Box::new(segno::demo::project::zarr("raw", "raw")),
        min,
        max,
    })
}

/// A dataset of the demo data: `raw` with the binarised mitochondria of crop `crop`.
#[allow(dead_code)]
pub fn mito_dataset(crop: &str, raw: segno::config::ArrayConfig) -> segno::config::DatasetConfig {
    use segno::config::*;
    DatasetConfig::RawGt(RawGTDatasetConfig {
        name: format!("synthetic_{crop}"),
        weight: 1,
        raw_config: Some(raw),
        gt_config: Some(ArrayConfig::Binarize(BinarizeArrayConfig {
            name: format!("{crop}_mito"),
            source_array_config: Box::new(segno::demo::project::zarr(
                "mito",
                &format!("labels/{crop}/mito"),
            )),
            groupings: vec![("mito".into(), vec![])],
            background: 0,
        })),
        mask_config: None,
        sample_points: None,
    })
}

/// A tiny U-Net learning distances to mitochondria on crop 1 of the demo data, validated
/// on crop 2, with raw data read through `raw`.
#[allow(dead_code)]
pub fn tiny_run(
    name: &str,
    iterations: u64,
    interval: u64,
    lr: f64,
    raw: segno::config::ArrayConfig,
) -> segno::config::RunConfig {
    use segno::config::*;
    use segno::geometry::Coordinate;
    RunConfig {
        name: name.into(),
        repetition: 0,
        num_iterations: iterations,
        validation_interval: interval,
        task_config: TaskConfig::Distance(DistanceTaskConfig {
            name: "dist".into(),
            channels: vec!["mito".into()],
            clip_distance: 40.0,
            tol_distance: 40.0,
            scale_factor: 40.0,
            mask_distances: true,
            clipmin: 0.05,
            clipmax: 0.95,
        }),
        architecture_config: ArchitectureConfig::CnnectomeUnet(CNNectomeUNetConfig {
            name: "tiny".into(),
            input_shape: Coordinate::from([52, 52, 52]),
            fmaps_out: 4,
            fmaps_in: 1,
            num_fmaps: 4,
            fmap_inc_factor: 2,
            downsample_factors: vec![Coordinate::from([2, 2, 2])],
            kernel_size_down: None,
            kernel_size_up: None,
            eval_shape_increase: None,
            upsample_factors: None,
            constant_upsample: true,
            padding: "valid".into(),
            use_attention: false,
            batch_norm: false,
        }),
        trainer_config: TrainerConfig::Gunpowder(GunpowderTrainerConfig {
            name: "trainer".into(),
            batch_size: 1,
            learning_rate: lr,
            num_data_fetchers: 2,
            augments: vec![
                AugmentConfig::Simple(SimpleAugmentConfig {
                    augmentation_probability: 1.0,
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
        }),
        datasplit_config: DataSplitConfig::TrainValidate(TrainValidateDataSplitConfig {
            name: "split".into(),
            train_configs: vec![mito_dataset("crop1", raw.clone())],
            validate_configs: vec![mito_dataset("crop2", raw)],
        }),
        start_config: None,
    }
}

/// Copies the directory tree `from` to `to`.
#[allow(dead_code)]
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file (not directory) under `dir`, recursively, sorted.
#[allow(dead_code)]
pub fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The production part of source file `path`: nothing for a file of tests alone
/// (`tests.rs`, `fixtures.rs`), else the text before its inline test module (which sits at
/// the end of a file).
#[allow(dead_code)]
pub fn production_code<'a>(path: &std::path::Path, text: &'a str) -> &'a str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name == "tests.rs" || name == "fixtures.rs" {
        return "";
    }
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    }
}
