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

/// The blocks a prediction's job ledger lists as done, sorted.
#[allow(dead_code)]
pub fn done_blocks(prediction: &std::path::Path) -> Vec<u64> {
    let dir = prediction.join(".segno-job/ledger/done");
    let mut blocks: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    blocks.sort_unstable();
    blocks
}

/// Makes a finished prediction look interrupted after `keep` blocks: the ledger's other
/// done records and their claims are removed, as if their workers had never reached them.
#[allow(dead_code)]
pub fn interrupt_job(prediction: &std::path::Path, keep: usize) {
    let ledger = prediction.join(".segno-job/ledger");
    let done = done_blocks(prediction);
    assert!(done.len() > keep, "{} blocks", done.len());
    for block in &done[keep..] {
        std::fs::remove_file(ledger.join("done").join(block.to_string())).unwrap();
        for entry in std::fs::read_dir(ledger.join("claims")).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.split('.').next() == Some(&block.to_string()) {
                std::fs::remove_file(entry.path()).unwrap();
            }
        }
    }
}

/// Runs the `segno` binary with `args` and `--json` (one libtorch thread): exit code,
/// the JSON it printed (null if none) and its stderr.
#[allow(dead_code)]
pub fn segno_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    use assert_cmd::cargo::CommandCargoExt;
    let out = std::process::Command::cargo_bin("segno")
        .unwrap()
        .args(args)
        .arg("--json")
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every value of the array at `path`, as f32.
#[allow(dead_code)]
pub fn array_values(path: &std::path::Path) -> Vec<f32> {
    let a = segno::array::open(path).unwrap();
    let roi = a.info().roi;
    a.read(&roi).unwrap().to_f32().iter().copied().collect()
}

/// Whether Slurm is here to test against; a missing Slurm fails the caller when
/// SEGNO_TEST_SLURM=required (as in CI) and skips it otherwise.
#[allow(dead_code)]
pub fn slurm_available() -> bool {
    if segno::cluster::available(segno::cluster::Scheduler::Slurm) {
        return true;
    }
    assert_ne!(
        std::env::var("SEGNO_TEST_SLURM").as_deref(),
        Ok("required"),
        "sbatch is not on PATH; start Slurm with scripts/slurm-local.sh"
    );
    eprintln!("skipped: no Slurm here (scripts/slurm-local.sh starts one)");
    false
}

/// A project on the 64³ demo data with a run `quick` (distance task, tiny U-Net) trained
/// for 4 iterations on the CPU.
#[allow(dead_code)]
pub fn trained_quick_project() -> tempfile::TempDir {
    let dir = demo_data_project(64);
    let p = dir.path();
    let run = tiny_run("quick", 4, 2, 0.05, demo_raw(0.0, 255.0));
    segno::store::Project::open(p)
        .unwrap()
        .configs()
        .store(&segno::config::AnyConfig::Run(Box::new(run)))
        .unwrap();
    let (code, _, err) = segno_json(&[
        "train",
        "-r",
        "quick",
        "--no-validation",
        "--device",
        "cpu",
        "-p",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    dir
}

/// An affinities task over the three nearest neighbours (with local shape descriptors
/// when `lsds`), DaCapo's defaults otherwise.
#[allow(dead_code)]
pub fn affinities_task(lsds: bool) -> segno::config::TaskConfig {
    use segno::config::{AffinitiesTaskConfig, TaskConfig};
    use segno::geometry::Coordinate;
    TaskConfig::Affinities(AffinitiesTaskConfig {
        name: "affs".into(),
        neighborhood: vec![
            Coordinate::from([1, 0, 0]),
            Coordinate::from([0, 1, 0]),
            Coordinate::from([0, 0, 1]),
        ],
        lsds,
        num_lsd_voxels: 2,
        downsample_lsds: 2,
        lsds_to_affs_weight_ratio: 1.0,
        affs_weight_clipmin: 0.05,
        affs_weight_clipmax: 0.95,
        lsd_weight_clipmin: 0.05,
        lsd_weight_clipmax: 0.95,
        background_as_object: false,
    })
}

/// `segno predict` of run `quick` in project `p` from `input` into `out/<dataset>` on the
/// CPU in small blocks, with `extra` options.
#[allow(dead_code)]
pub fn predict_quick(
    p: &std::path::Path,
    input: &std::path::Path,
    (out, dataset): (&std::path::Path, &str),
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let path = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let mut args: Vec<String> = [
        "predict",
        "-r",
        "quick",
        "--device",
        "cpu",
        "--input",
        &path(input),
        "--output",
        &path(out),
        "--dataset",
        dataset,
        "--max-block-input",
        "30000",
        "-p",
        &path(p),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    segno_json(&refs)
}
