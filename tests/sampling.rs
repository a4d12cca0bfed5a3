//! The gunpowder trainer's sampling fields act: `min_masked`, `gt_min_reject`,
//! `sample_strategy` (reject / integral_mask / sample_points), `sample_points`, `clip_raw`
//! and `num_data_fetchers` each change what training sees, as their help says.

mod common;

use segno::array::write::{self, ArraySpec, WriteMode};
use segno::array::{ArrayData, DataType};
use segno::config::*;
use segno::geometry::{Coordinate, Roi};
use segno::train::run::setup;
use segno::train::sample::TrainingSample;

fn trainer(run: &mut RunConfig) -> &mut GunpowderTrainerConfig {
    match &mut run.trainer_config {
        TrainerConfig::Gunpowder(t) => t,
        TrainerConfig::Dummy(_) => unreachable!(),
    }
}

fn train_dataset(run: &mut RunConfig) -> &mut RawGTDatasetConfig {
    let DataSplitConfig::TrainValidate(split) = &mut run.datasplit_config else {
        unreachable!()
    };
    let DatasetConfig::RawGt(d) = &mut split.train_configs[0] else {
        unreachable!()
    };
    d
}

/// The tiny run on crop 1 (64 × 64 × 32 voxels at 8 nm), without augments so that patches
/// are read as stored.
fn run() -> RunConfig {
    let mut run = common::tiny_run("s", 10, 10, 0.01, common::demo_raw(0.0, 255.0));
    trainer(&mut run).augments.clear();
    run
}

fn samples(dir: &std::path::Path, run: &RunConfig, n: u64) -> Vec<TrainingSample> {
    let s = setup(dir, run, 5, tch::Device::Cpu).unwrap();
    (0..n).map(|i| s.sampler.sample(i).unwrap()).collect()
}

/// Fraction of the output patch's voxels where any channel of `a` is non-zero.
fn fraction<T: PartialEq + Default + Copy>(a: &ndarray::ArrayD<T>) -> f64 {
    let lanes = a.lanes(ndarray::Axis(0));
    let n = lanes.clone().into_iter().count();
    let on = lanes
        .into_iter()
        .filter(|l| l.iter().any(|v| *v != T::default()))
        .count();
    on as f64 / n as f64
}

/// The world position of a sample's output-patch centre voxel.
fn centre(s: &TrainingSample) -> Coordinate {
    let shape = s.output_roi.shape() / Coordinate::from([8, 8, 8]);
    s.output_roi.begin() + (shape / Coordinate::from([2, 2, 2])) * Coordinate::from([8, 8, 8])
}

#[test]
fn min_masked_and_gt_min_reject_reject_patches_with_too_little_annotation() {
    let dir = common::demo_data_project(64);
    let plain = samples(dir.path(), &run(), 40);
    let masked: Vec<f64> = plain.iter().map(|s| fraction(&s.mask)).collect();
    let labelled: Vec<f64> = plain.iter().map(|s| fraction(&s.gt)).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    // Without the rules some patches hang over the crop's edge or hold little mito.
    assert!(min(&masked) < 0.6, "{masked:?}");
    assert!(min(&labelled) < 0.015, "{labelled:?}");

    let mut strict = run();
    trainer(&mut strict).min_masked = Some(0.6);
    trainer(&mut strict).gt_min_reject = Some(0.015);
    let kept = samples(dir.path(), &strict, 20);
    for s in &kept {
        assert!(fraction(&s.mask) >= 0.6, "{}", fraction(&s.mask));
        assert!(fraction(&s.gt) > 0.015, "{}", fraction(&s.gt));
    }
    assert!(kept.iter().any(|s| s.attempts > 1));

    // A min_masked no patch can reach is refused before training, saying why.
    let mut impossible = run();
    train_dataset(&mut impossible).gt_config = Some(ArrayConfig::Crop(CropArrayConfig {
        name: "small".into(),
        source_array_config: Box::new(train_dataset(&mut run()).gt_config.clone().unwrap()),
        roi: Roi::new(Coordinate::from([0, 0, 0]), Coordinate::from([64, 64, 64])).unwrap(),
    }));
    trainer(&mut impossible).min_masked = Some(0.5);
    let err = setup(dir.path(), &impossible, 5, tch::Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("min_masked 0.5 cannot be met"), "{err}");
}

#[test]
fn integral_mask_draws_centres_from_annotated_voxels_only() {
    let dir = common::demo_data_project(64);
    // A mask annotating one 16³ box of crop 1 (3% of it).
    let crop = Roi::new(
        Coordinate::from([0, 0, 0]),
        Coordinate::from([512, 512, 256]),
    )
    .unwrap();
    let box_roi = Roi::new(
        Coordinate::from([160, 200, 64]),
        Coordinate::from([128, 128, 128]),
    )
    .unwrap();
    let mut values = ndarray::ArrayD::<u8>::zeros(vec![64, 64, 32]);
    values.slice_mut(ndarray::s![20..36, 25..41, 8..24]).fill(1);
    let spec = ArraySpec::new(DataType::U8, crop, Coordinate::from([8, 8, 8]), None);
    write::create(
        &dir.path().join("data/mask.zarr"),
        "crop1",
        &spec,
        WriteMode::Overwrite,
    )
    .unwrap()
    .write(&crop, &ArrayData::U8(values))
    .unwrap();
    let mut run = run();
    train_dataset(&mut run).mask_config = Some(ArrayConfig::Zarr(ZarrArrayConfig {
        name: "mask".into(),
        file_name: "data/mask.zarr".into(),
        dataset: "crop1".into(),
        snap_to_grid: None,
        axes: None,
        mode: Some("r".into()),
        ome_metadata: false,
    }));
    let rejecting = samples(dir.path(), &run, 20);
    let mean = |s: &[TrainingSample]| {
        s.iter().map(|x| f64::from(x.attempts)).sum::<f64>() / s.len() as f64
    };
    // Rejection sampling redraws about 30 times per patch here.
    assert!(mean(&rejecting) > 5.0, "{}", mean(&rejecting));
    trainer(&mut run).sample_strategy = Some("integral_mask".into());
    let direct = samples(dir.path(), &run, 20);
    for s in &direct {
        assert_eq!(s.attempts, 1);
        assert!(box_roi.contains_point(&centre(s)), "{}", centre(s));
    }
    // Both draw from the same annotated centres.
    for s in &rejecting {
        assert!(box_roi.contains_point(&centre(s)), "{}", centre(s));
    }
}

#[test]
fn sample_points_centre_patches_on_the_points() {
    let dir = common::demo_data_project(64);
    let points = vec![
        Coordinate::from([104, 200, 96]),
        Coordinate::from([400, 80, 160]),
    ];
    let mut run = run();
    train_dataset(&mut run).sample_points = Some(points.clone());
    let drawn = samples(dir.path(), &run, 20);
    for s in &drawn {
        assert!(points.contains(&centre(s)), "{}", centre(s));
    }
    assert!(drawn.iter().any(|s| centre(s) == points[0]));
    assert!(drawn.iter().any(|s| centre(s) == points[1]));
    // The strategy demands points on every training dataset; points outside the ground
    // truth are refused with their index.
    let mut strategy = self::run();
    trainer(&mut strategy).sample_strategy = Some("sample_points".into());
    let err = setup(dir.path(), &strategy, 5, tch::Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("lists no sample_points"), "{err}");
    train_dataset(&mut run).sample_points = Some(vec![Coordinate::from([8, 8, 900])]);
    let err = setup(dir.path(), &run, 5, tch::Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("sample_points[0]") && err.contains("outside"),
        "{err}"
    );
}

#[test]
fn clip_raw_zeroes_raw_data_beyond_the_ground_truth() {
    let dir = common::demo_data_project(64);
    // Crop 1 spans x 0–256 nm of the 512³ nm raw volume: count raw voxels of the patches
    // inside the volume but beyond the crop.
    let beyond = |samples: &[TrainingSample]| -> (usize, usize) {
        let mut zero = 0;
        let mut total = 0;
        for s in samples {
            let begin: Vec<i64> = (0..3)
                .map(|a| {
                    let input = s.raw.shape()[a + 1] as i64 * 8;
                    s.output_roi.begin()[a] - (input - s.output_roi.shape()[a]) / 2
                })
                .collect();
            for (i, v) in s.raw.indexed_iter() {
                let world: Vec<i64> = (0..3).map(|a| begin[a] + i[a + 1] as i64 * 8).collect();
                let inside = world.iter().all(|w| (0..512).contains(w));
                if inside && world[2] >= 256 {
                    total += 1;
                    zero += usize::from(*v == 0.0);
                }
            }
        }
        (zero, total)
    };
    let (zero, total) = beyond(&samples(dir.path(), &run(), 10));
    assert!(total > 0 && zero < total / 10, "{zero} of {total}");
    let mut clipped = run();
    trainer(&mut clipped).clip_raw = true;
    let (zero, total) = beyond(&samples(dir.path(), &clipped, 10));
    assert!(total > 0 && zero == total, "{zero} of {total}");
}

#[test]
fn num_data_fetchers_sets_the_loader_threads() {
    tch::set_num_threads(1);
    let dir = common::demo_data_project(64);
    let mut run = run();
    run.num_iterations = 1;
    trainer(&mut run).num_data_fetchers = 7;
    let report =
        segno::train::train_run(dir.path(), &run, segno::train::TrainOptions::default()).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(report.loader_threads, 7.min(cores));
    let mut one = run.clone();
    one.name = "one".into();
    trainer(&mut one).num_data_fetchers = 1;
    let report =
        segno::train::train_run(dir.path(), &one, segno::train::TrainOptions::default()).unwrap();
    assert_eq!(report.loader_threads, 1);
}
