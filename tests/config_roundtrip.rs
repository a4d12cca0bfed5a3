//! Every config type survives value → YAML → value, and DaCapo-written files load with
//! the right values in all three dialects.

use std::collections::BTreeSet;

use segno::config::{
    decode_document, parse_document, schema::Decode, to_yaml, AnyConfig, ArchitectureConfig,
    ArrayConfig, AugmentConfig, DataSplitConfig, DatasetConfig, Encode, Family,
    InitialWeightsConfig, OptionsConfig, TaskConfig, TrainerConfig, Validate,
};
use segno::geometry::Coordinate;
use serde_json::Value;

const ZARR: &str =
    "{__type__: ZarrArrayConfig, name: src, file_name: /data/a.zarr, dataset: raw/s0}";

/// One document per concrete type, each setting every field to a non-default value.
fn samples() -> Vec<(&'static str, String)> {
    let z = ZARR;
    vec![
        ("ZarrArrayConfig", "{__type__: ZarrArrayConfig, name: a, file_name: /data/a.n5, dataset: volumes/raw, snap_to_grid: [8, 8, 8], _axes: [c, z, y, x], mode: r, ome_metadata: true}".into()),
        ("BinarizeArrayConfig", format!("{{__type__: BinarizeArrayConfig, name: b, source_array_config: {z}, groupings: [[mito, [1, 2]], [er, []]], background: 7}}")),
        ("ResampledArrayConfig", format!("{{__type__: ResampledArrayConfig, name: r, source_array_config: {z}, upsample: [1, 2, 2], downsample: [2, 1, 1], interp_order: true}}")),
        ("IntensitiesArrayConfig", format!("{{__type__: IntensitiesArrayConfig, name: i, source_array_config: {z}, min: 10.5, max: 200.0}}")),
        ("MissingAnnotationsMaskConfig", format!("{{__type__: MissingAnnotationsMaskConfig, name: m, source_array_config: {z}, groupings: [[mito, [3]]]}}")),
        ("OnesArrayConfig", format!("{{__type__: OnesArrayConfig, name: o, source_array_config: {z}}}")),
        ("ConstantArrayConfig", format!("{{__type__: ConstantArrayConfig, name: c, source_array_config: {z}, constant: 0}}")),
        ("ConcatArrayConfig", format!("{{__type__: ConcatArrayConfig, name: cc, channels: [mito, er], source_array_configs: {{mito: {z}}}, default_config: {{__type__: ConstantArrayConfig, name: zero, source_array_config: {z}, constant: 0}}}}")),
        ("LogicalOrArrayConfig", format!("{{__type__: LogicalOrArrayConfig, name: l, source_array_config: {z}}}")),
        ("CropArrayConfig", format!("{{__type__: CropArrayConfig, name: cr, source_array_config: {z}, roi: [[0, 8, 16], [80, 160, 160]]}}")),
        ("MergeInstancesArrayConfig", format!("{{__type__: MergeInstancesArrayConfig, name: mi, source_array_configs: [{z}, {z}]}}")),
        ("DVIDArrayConfig", "{__type__: DVIDArrayConfig, name: d, source: [emdata.example.org, a1b2, grayscale]}".into()),
        ("SumArrayConfig", format!("{{__type__: SumArrayConfig, name: s, source_array_configs: [{z}]}}")),
        ("TiffArrayConfig", "{__type__: TiffArrayConfig, name: t, file_name: /data/s.tif, offset: [0, 0, 0], voxel_size: [40, 4, 4], axis_names: [z, y, x], units: [nm, nm, nm]}".into()),
        ("DummyArrayConfig", "{__type__: DummyArrayConfig, name: dummy}".into()),
        ("RawGTDatasetConfig", format!("{{__type__: RawGTDatasetConfig, name: 'crop1/[mito&er]', weight: 3, raw_config: {z}, gt_config: {z}, mask_config: {z}, sample_points: [[8, 8, 8], [16, 16, 16]]}}")),
        ("DummyDatasetConfig", "{__type__: DummyDatasetConfig, name: dd, weight: 2, raw_config: {__type__: DummyArrayConfig, name: other}}".into()),
        ("TrainValidateDataSplitConfig", format!("{{__type__: TrainValidateDataSplitConfig, name: tv, train_configs: [{{__type__: RawGTDatasetConfig, name: t1, raw_config: {z}, gt_config: {z}}}], validate_configs: [{{__type__: RawGTDatasetConfig, name: v1, raw_config: {z}, gt_config: {z}}}]}}")),
        ("SimpleDataSplitConfig", "{__type__: SimpleDataSplitConfig, name: simple, path: /data/cells.zarr, train_group_name: tr, validate_group_name: va, raw_name: em, gt_name: gt, mask_name: m}".into()),
        ("DummyDataSplitConfig", "{__type__: DummyDataSplitConfig, name: ds, train_config: {__type__: DummyDatasetConfig, name: x}}".into()),
        ("CNNectomeUNetConfig", "{__type__: CNNectomeUNetConfig, name: unet, input_shape: [2, 132, 132], fmaps_out: 12, fmaps_in: 2, num_fmaps: 8, fmap_inc_factor: 3, downsample_factors: [[1, 2, 2], [1, 2, 2]], kernel_size_down: [[[1, 3, 3], [1, 3, 3]], [[1, 3, 3]], [[1, 3, 3]]], kernel_size_up: [[[1, 3, 3]], [[1, 1, 1]]], _eval_shape_increase: [0, 72, 72], upsample_factors: [[1, 2, 2]], constant_upsample: false, padding: same, use_attention: true, batch_norm: true}".into()),
        ("DummyArchitectureConfig", "{__type__: DummyArchitectureConfig, name: da, num_in_channels: 2, num_out_channels: 3}".into()),
        ("DistanceTaskConfig", "{__type__: DistanceTaskConfig, name: dist, channels: [mito, er], clip_distance: 40.0, tol_distance: 30.0, scale_factor: 80.0, mask_distances: false, clipmin: 0.1, clipmax: 0.9}".into()),
        ("OneHotTaskConfig", "{__type__: OneHotTaskConfig, name: oh, classes: [bg, mito], kernel_size: 1}".into()),
        ("AffinitiesTaskConfig", "{__type__: AffinitiesTaskConfig, name: aff, neighborhood: [[1, 0, 0], [0, 1, 0], [0, 0, -3]], lsds: true, num_lsd_voxels: 5, downsample_lsds: 2, lsds_to_affs_weight_ratio: 0.5, affs_weight_clipmin: 0.1, affs_weight_clipmax: 0.8, lsd_weight_clipmin: 0.2, lsd_weight_clipmax: 0.7, background_as_object: true}".into()),
        ("InnerDistanceTaskConfig", "{__type__: InnerDistanceTaskConfig, name: inner, channels: [cell], clip_distance: 10.0, tol_distance: 5.0, scale_factor: 20.0}".into()),
        ("HotDistanceTaskConfig", "{__type__: HotDistanceTaskConfig, name: hot, channels: [mito], clip_distance: 40.0, tol_distance: 40.0, scale_factor: 80.0, mask_distances: true, kernel_size: 3}".into()),
        ("PretrainedTaskConfig", "{__type__: PretrainedTaskConfig, name: pre, weights: /ckpt/model.pt, sub_task_config: {__type__: OneHotTaskConfig, name: oh, classes: [a, b]}}".into()),
        ("DummyTaskConfig", "{__type__: DummyTaskConfig, name: dt, embedding_dims: 4, detection_threshold: 0.25}".into()),
        ("GunpowderTrainerConfig", "{__type__: GunpowderTrainerConfig, name: gp, batch_size: 4, learning_rate: 0.0002, num_data_fetchers: 2, augments: [{__type__: SimpleAugmentConfig, augmentation_probability: 0.5}], snapshot_interval: 500, min_masked: 0.05, clip_raw: true, gt_min_reject: 0.01, sample_strategy: reject}".into()),
        ("DummyTrainerConfig", "{__type__: DummyTrainerConfig, name: dtr, batch_size: 2, learning_rate: 0.1, mirror_augment: true}".into()),
        ("ElasticAugmentConfig", "{__type__: ElasticAugmentConfig, control_point_spacing: [100, 100, 100], control_point_displacement_sigma: [10.0, 10.0, 10.0], rotation_interval: [0.0, 1.5707963267948966], subsample: 8, uniform_3d_rotation: true, augmentation_probability: 0.75}".into()),
        ("SimpleAugmentConfig", "{__type__: SimpleAugmentConfig, augmentation_probability: 0.25}".into()),
        ("GammaAugmentConfig", "{__type__: GammaAugmentConfig, gamma_range: [0.5, 2.0]}".into()),
        ("IntensityAugmentConfig", "{__type__: IntensityAugmentConfig, scale: [0.25, 1.75], shift: [-0.5, 0.35], clip: false, augmentation_probability: 0.9}".into()),
        ("IntensityScaleShiftAugmentConfig", "{__type__: IntensityScaleShiftAugmentConfig, scale: 2.0, shift: -1.0}".into()),
        ("NoiseAugmentConfig", "{__type__: NoiseAugmentConfig, kwargs: {mode: gaussian, var: 0.01}}".into()),
        ("StartConfig", "{__type__: StartConfig, run: previous_run, criterion: '200000'}".into()),
        ("CosemStartConfig", "{__type__: CosemStartConfig, run: setup04, criterion: '1820500'}".into()),
    ]
}

/// Decodes, checks validity, encodes to YAML, decodes again and compares; also checks
/// that the encoding writes back every key of the sample (no field is lost).
fn round_trip<T: Decode + Encode + Validate + PartialEq + std::fmt::Debug>(tag: &str, text: &str) {
    let doc = parse_document(text, tag).unwrap();
    let value: T = decode_document(&doc, tag).unwrap_or_else(|e| panic!("{tag}: {e}"));
    let yaml = to_yaml(&value.encode());
    let doc2 = parse_document(&yaml, tag).unwrap();
    let again: T =
        decode_document(&doc2, tag).unwrap_or_else(|e| panic!("{tag} re-read: {e}\n{yaml}"));
    assert_eq!(value, again, "{tag} changed in a YAML round trip:\n{yaml}");
    // Every key and value of the sample is written back.
    assert_subset(&doc, &doc2, tag);
}

/// The checks of one tagged family, instantiated for its enum type.
#[derive(Clone, Copy)]
struct FamilyChecks {
    types: &'static [segno::config::TypeInfo],
    round_trip: fn(&str, &str),
    yaml: fn(&str, &str) -> String,
}

fn checks<T: Decode + Encode + Validate + PartialEq + std::fmt::Debug>(
    types: &'static [segno::config::TypeInfo],
) -> FamilyChecks {
    FamilyChecks {
        types,
        round_trip: round_trip::<T>,
        yaml: sample_yaml::<T>,
    }
}

/// Every tagged family.
fn families() -> [FamilyChecks; 8] {
    [
        checks::<ArrayConfig>(ArrayConfig::TYPES),
        checks::<DatasetConfig>(DatasetConfig::TYPES),
        checks::<DataSplitConfig>(DataSplitConfig::TYPES),
        checks::<ArchitectureConfig>(ArchitectureConfig::TYPES),
        checks::<TaskConfig>(TaskConfig::TYPES),
        checks::<TrainerConfig>(TrainerConfig::TYPES),
        checks::<AugmentConfig>(AugmentConfig::TYPES),
        checks::<InitialWeightsConfig>(InitialWeightsConfig::TYPES),
    ]
}

/// The family that has the type `tag`.
fn family_of(tag: &str) -> FamilyChecks {
    families()
        .into_iter()
        .find(|f| f.types.iter().any(|t| t.tag == tag))
        .unwrap_or_else(|| panic!("{tag} belongs to no family"))
}

#[test]
fn every_config_type_round_trips_through_yaml() {
    let samples = samples();
    let mut covered = BTreeSet::new();
    for (tag, text) in &samples {
        (family_of(tag).round_trip)(tag, text);
        covered.insert(*tag);
    }
    // Every concrete type of every family has a sample.
    for family in families() {
        for t in family.types {
            assert!(
                covered.contains(t.tag),
                "no round-trip sample for {}",
                t.tag
            );
        }
    }
    assert_eq!(covered.len(), 39);
}

fn run_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dacapo-v0.3.5/runs/peer_run_bench_132_f1.yaml"
    ))
    .unwrap()
}

#[test]
fn run_and_options_round_trip() {
    let run = AnyConfig::from_text(None, &run_text(), "run").unwrap();
    let again = AnyConfig::from_text(Some(Family::Runs), &run.to_yaml(), "again").unwrap();
    assert_eq!(run, again);

    let options = "{type: files, runs_base_dir: /scratch/runs, compute_context: {type: Bsub, config: {queue: gpu_a100, num_gpus: 2, num_cpus: 12, billing: cellmap, distribute_workers: true}}, mongo_db_host: null, mongo_db_name: null}";
    round_trip::<OptionsConfig>("options", options);
    let local = "{type: files, runs_base_dir: runs, compute_context: {type: LocalTorch, config: {_device: 'cuda:1', distribute_workers: false, oom_limit: 2.0}}, mongo_db_host: null, mongo_db_name: null}";
    round_trip::<OptionsConfig>("options", local);
}

/// A real file written by DaCapo v0.3.5 (PyYAML, `!!python/tuple`, anchors) loads with
/// the right values, and writing it back keeps every key and value DaCapo wrote.
#[test]
fn dacapo_v035_run_file_loads_with_the_right_values() {
    let AnyConfig::Run(run) = AnyConfig::from_text(None, &run_text(), "run").unwrap() else {
        panic!("not a run");
    };
    assert_eq!(run.name, "peer_run_bench_132_f1");
    assert_eq!(run.num_iterations, 15);
    assert_eq!(run.validation_interval, 15);
    assert_eq!(run.repetition, 0);
    assert!(run.start_config.is_none());
    let ArchitectureConfig::CnnectomeUnet(unet) = &run.architecture_config else {
        panic!("not a U-Net");
    };
    assert_eq!(unet.input_shape, Coordinate::from([132, 132, 132]));
    assert_eq!(
        unet.eval_shape_increase,
        Some(Coordinate::from([16, 16, 16]))
    );
    assert_eq!(
        unet.downsample_factors,
        vec![Coordinate::from([2, 2, 2]), Coordinate::from([2, 2, 2])]
    );
    assert_eq!(
        (unet.num_fmaps, unet.fmaps_out, unet.fmap_inc_factor),
        (12, 24, 2)
    );
    assert!(unet.constant_upsample && !unet.batch_norm && !unet.use_attention);
    let TaskConfig::Distance(task) = &run.task_config else {
        panic!("not a distance task");
    };
    assert_eq!(task.channels, vec!["labels".to_string()]);
    assert_eq!(
        (task.clip_distance, task.tol_distance, task.scale_factor),
        (80.0, 80.0, 160.0)
    );
    let TrainerConfig::Gunpowder(trainer) = &run.trainer_config else {
        panic!("not a gunpowder trainer");
    };
    assert_eq!(trainer.learning_rate, 0.0001);
    assert_eq!(trainer.min_masked, Some(0.05));
    assert_eq!(trainer.augments.len(), 5);
    let AugmentConfig::Elastic(elastic) = &trainer.augments[1] else {
        panic!("second augment is not elastic");
    };
    assert_eq!(
        elastic.rotation_interval,
        (0.0, std::f64::consts::FRAC_PI_2)
    );
    assert_eq!(elastic.control_point_spacing, vec![100, 100, 100]);
    let DataSplitConfig::TrainValidate(split) = &run.datasplit_config else {
        panic!("not a train/validate split");
    };
    let DatasetConfig::RawGt(train) = &split.train_configs[0] else {
        panic!("not a raw/gt dataset");
    };
    assert_eq!(train.name, "peer_train_[labels]_['labels']_8nm");
    let Some(ArrayConfig::Binarize(gt)) = &train.gt_config else {
        panic!("gt is not binarized");
    };
    assert_eq!(gt.groupings, vec![("labels".to_string(), vec![])]);
    let ArrayConfig::Zarr(src) = gt.source_array_config.as_ref() else {
        panic!("gt source is not zarr");
    };
    assert_eq!(src.file_name, "PEER_DIR/data/train.zarr");
    assert_eq!(src.mode.as_deref(), Some("a"));

    // Every key/value DaCapo wrote is written back unchanged (we may add newer keys).
    let original = parse_document(&run_text(), "run").unwrap();
    let written = AnyConfig::Run(run).to_document();
    assert_subset(&original, &written, "");
}

fn assert_subset(original: &Value, written: &Value, path: &str) {
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b.get(k).unwrap_or_else(|| panic!("{path}.{k} was dropped"));
                assert_subset(v, w, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: list length changed");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_subset(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{path}: number changed");
        }
        _ => assert_eq!(original, written, "{path} changed"),
    }
}

#[test]
fn every_file_of_a_dacapo_config_folder_loads() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dacapo-v0.3.5");
    let mut loaded = 0;
    for family in Family::ALL {
        let dir = std::path::Path::new(root).join(family.dir_name());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let config = AnyConfig::from_text(Some(family), &text, &path.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.family(), family);
            assert!(
                config.problems().is_empty(),
                "{}: {}",
                path.display(),
                config.problems()
            );
            // The file is named after the config.
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                config.name(),
                "{}",
                path.display()
            );
            loaded += 1;
        }
    }
    assert_eq!(loaded, 8);
    let options = std::fs::read_to_string(format!("{root}/dacapo.yaml")).unwrap();
    let options: OptionsConfig = decode_document(
        &parse_document(&options, "dacapo.yaml").unwrap(),
        "dacapo.yaml",
    )
    .unwrap();
    assert_eq!(options.store_type, "files");
    assert_eq!(options.runs_base_dir, "PEER_DIR/runs");
    let segno::config::ComputeContextConfig::LocalTorch(local) = options.compute_context else {
        panic!("not LocalTorch");
    };
    assert_eq!(local.device.as_deref(), Some("cpu"));
    assert_eq!(local.distribute_workers, Some(false));
    assert_eq!(local.oom_limit, Some(4.2));
}

/// Hand-written files in the seed-era dialect (no newer keys, letter axes).
#[test]
fn seed_era_documents_load() {
    let arch = "__type__: CNNectomeUNetConfig\nname: seed_unet\ninput_shape: !!python/tuple [216, 216, 216]\n_eval_shape_increase: !!python/tuple [72, 72, 72]\nfmaps_in: 1\nfmaps_out: 72\nnum_fmaps: 12\nfmap_inc_factor: 6\ndownsample_factors:\n- !!python/tuple [2, 2, 2]\n- !!python/tuple [3, 3, 3]\n- !!python/tuple [3, 3, 3]\nconstant_upsample: true\nupsample_factors:\n- !!python/tuple [2, 2, 2]\nkernel_size_down: null\nkernel_size_up: null\npadding: valid\nuse_attention: false\n";
    let AnyConfig::Architecture(ArchitectureConfig::CnnectomeUnet(unet)) =
        AnyConfig::from_text(None, arch, "seed_unet.yaml").unwrap()
    else {
        panic!("not a U-Net");
    };
    assert!(!unet.batch_norm, "seed era has no batch norm");
    assert_eq!(
        unet.upsample_factors,
        Some(vec![Coordinate::from([2, 2, 2])])
    );
    assert_eq!(unet.fmap_inc_factor, 6);

    let aug = "__type__: GunpowderTrainerConfig\nname: cosem\nbatch_size: 1\nlearning_rate: 0.0001\nnum_data_fetchers: 20\nsnapshot_interval: 10000\nmin_masked: 0.05\nclip_raw: false\naugments:\n- __type__: SimpleAugmentConfig\n- __type__: GammaAugmentConfig\n  gamma_range: !!python/tuple [0.5, 2.0]\n";
    let AnyConfig::Trainer(TrainerConfig::Gunpowder(t)) =
        AnyConfig::from_text(Some(Family::Trainers), aug, "cosem.yaml").unwrap()
    else {
        panic!("not a gunpowder trainer");
    };
    assert_eq!(t.num_data_fetchers, 20);
    assert_eq!(t.snapshot_interval, Some(10000));
    let AugmentConfig::Simple(simple) = &t.augments[0] else {
        panic!()
    };
    assert_eq!(simple.augmentation_probability, 1.0, "default probability");
}

/// Hand-written newer-dialect (2025) documents: underscored keys and trainer fields on the run.
#[test]
fn newer_dialect_documents_load() {
    let run = r#"
architecture_config:
  __type__: CNNectomeUNetConfig
  name: head_unet
  _input_shape: [132, 132, 132]
  fmaps_in: 1
  fmaps_out: 12
  num_fmaps: 12
  fmap_inc_factor: 2
  downsample_factors: [[2, 2, 2]]
task_config: {__type__: AffinitiesTaskConfig, name: affs, neighborhood: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
trainer_config: {__type__: GunpowderTrainerConfig, name: gp, augments: [], min_masked: 0.15, clip_raw: true, sample_strategy: integral_mask}
datasplit_config: {__type__: SimpleDataSplitConfig, name: cells3d, path: cells3d.zarr}
name: head_run
repetition: 1
num_iterations: 100
batch_size: 8
num_workers: 4
validation_interval: 50
snapshot_interval: 25
start_config: null
learning_rate: 0.0005
"#;
    let AnyConfig::Run(run) = AnyConfig::from_text(None, run, "head_run.yaml").unwrap() else {
        panic!("not a run");
    };
    let ArchitectureConfig::CnnectomeUnet(unet) = &run.architecture_config else {
        panic!()
    };
    assert_eq!(unet.input_shape, Coordinate::from([132, 132, 132]));
    let TrainerConfig::Gunpowder(t) = &run.trainer_config else {
        panic!()
    };
    assert_eq!(t.batch_size, 8);
    assert_eq!(t.num_data_fetchers, 4);
    assert_eq!(t.snapshot_interval, Some(25));
    assert_eq!(t.learning_rate, 0.0005);
    assert_eq!(t.sample_strategy.as_deref(), Some("integral_mask"));
    let DataSplitConfig::Simple(s) = &run.datasplit_config else {
        panic!()
    };
    assert_eq!(
        (s.train_group_name.as_str(), s.validate_group_name.as_str()),
        ("train", "test")
    );
    // Written back in the v0.3.x shape: the trainer fields live in the trainer.
    let doc = AnyConfig::Run(run).to_document();
    assert!(doc.get("batch_size").is_none());
    assert_eq!(doc["trainer_config"]["batch_size"], 8);
    assert_eq!(
        doc["architecture_config"]["input_shape"],
        serde_json::json!([132, 132, 132])
    );

    let dummy =
        "{__type__: DummyArchitectureConfig, name: d, _num_in_channels: 1, _num_out_channels: 2}";
    let AnyConfig::Architecture(ArchitectureConfig::Dummy(d)) =
        AnyConfig::from_text(None, dummy, "d").unwrap()
    else {
        panic!()
    };
    assert_eq!((d.num_in_channels, d.num_out_channels), (1, 2));
}

/// Hand-written DaCapo-style documents for the families not covered above, with values.
#[test]
fn handwritten_family_documents_load_with_values() {
    let array = "__type__: ConcatArrayConfig\nname: gt_concat\nchannels: [mito, er]\nsource_array_configs:\n  mito:\n    __type__: BinarizeArrayConfig\n    name: mito_bin\n    groupings: [!!python/tuple [mito, [3, 4, 5]]]\n    source_array_config: {__type__: ZarrArrayConfig, name: labels, file_name: /data/hela.zarr, dataset: labels/crop6/all/s0, mode: r, snap_to_grid: !!python/tuple [4, 4, 4], _axes: null}\ndefault_config: null\n";
    let AnyConfig::Array(ArrayConfig::Concat(c)) = AnyConfig::from_text(None, array, "a").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.channels, vec!["mito", "er"]);
    let ArrayConfig::Binarize(b) = &c.source_array_configs["mito"] else {
        panic!()
    };
    assert_eq!(b.groupings, vec![("mito".to_string(), vec![3, 4, 5])]);
    assert_eq!(b.background, 0);
    let ArrayConfig::Zarr(z) = b.source_array_config.as_ref() else {
        panic!()
    };
    assert_eq!(z.snap_to_grid, Some(Coordinate::from([4, 4, 4])));
    assert!(!z.ome_metadata);

    let task = "__type__: DistanceTaskConfig\nname: dist_mito\nchannels: [mito]\nclip_distance: 40\ntol_distance: 40\n";
    let AnyConfig::Task(TaskConfig::Distance(t)) = AnyConfig::from_text(None, task, "t").unwrap()
    else {
        panic!()
    };
    assert_eq!(t.scale_factor, 1.0, "spec default");
    assert!(t.mask_distances);
    assert_eq!((t.clipmin, t.clipmax), (0.05, 0.95));
    assert_eq!(t.clip_distance, 40.0, "ints accepted for floats");

    let hot = "{__type__: HotDistanceTaskConfig, name: hot, channels: [mito], clip_distance: 40, tol_distance: 40}";
    let AnyConfig::Task(TaskConfig::HotDistance(h)) = AnyConfig::from_text(None, hot, "h").unwrap()
    else {
        panic!()
    };
    assert!(
        !h.mask_distances,
        "hot distance defaults to no distance masking"
    );
    assert_eq!(h.kernel_size, None);

    let split = "{__type__: SimpleDataSplitConfig, name: cells3d, path: cells3d.zarr}";
    let AnyConfig::Datasplit(DataSplitConfig::Simple(s)) =
        AnyConfig::from_text(None, split, "s").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (
            s.raw_name.as_str(),
            s.gt_name.as_str(),
            s.mask_name.as_str()
        ),
        ("raw", "labels", "mask")
    );

    let unet_defaults = "{__type__: CNNectomeUNetConfig, name: u, input_shape: [68, 68, 68], fmaps_in: 1, fmaps_out: 12, num_fmaps: 12, fmap_inc_factor: 2, downsample_factors: [[2, 2, 2]]}";
    let AnyConfig::Architecture(ArchitectureConfig::CnnectomeUnet(u)) =
        AnyConfig::from_text(None, unet_defaults, "u").unwrap()
    else {
        panic!()
    };
    assert!(u.constant_upsample);
    assert_eq!(u.padding, "valid");
    assert!(!u.batch_norm);
    assert_eq!(u.eval_shape_increase, None);

    let trainer =
        "{__type__: GunpowderTrainerConfig, name: t, batch_size: 2, learning_rate: 0.001}";
    let AnyConfig::Trainer(TrainerConfig::Gunpowder(g)) =
        AnyConfig::from_text(None, trainer, "t").unwrap()
    else {
        panic!()
    };
    assert_eq!(g.num_data_fetchers, 5);
    assert_eq!(g.min_masked, Some(0.15));
    assert!(g.augments.is_empty() && !g.clip_raw && g.snapshot_interval.is_none());
}

#[test]
fn written_yaml_is_sorted_and_tagged_like_dacapo() {
    let text =
        "{__type__: DistanceTaskConfig, name: d, channels: [a], clip_distance: 1, tol_distance: 1}";
    let config = AnyConfig::from_text(None, text, "d").unwrap();
    let yaml = config.to_yaml();
    let keys: Vec<&str> = yaml
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            "__type__",
            "channels",
            "clip_distance",
            "clipmax",
            "clipmin",
            "mask_distances",
            "name",
            "scale_factor",
            "tol_distance"
        ]
    );
    assert!(yaml.starts_with("__type__: DistanceTaskConfig\n"));
}

/// Every field of every type has help text for editors, and keys/aliases are unambiguous.
#[test]
fn every_field_has_help_and_unambiguous_keys() {
    let mut fields = 0;
    for group in segno::config::catalogue() {
        for t in group.types {
            assert!(!t.help().is_empty(), "{} has no help", t.tag);
            let mut keys = BTreeSet::new();
            for f in t.fields {
                assert!(!f.help().is_empty(), "{}.{} has no help", t.tag, f.key);
                assert!(!(f.expected)().is_empty());
                for k in std::iter::once(f.key).chain(f.aliases.iter().copied()) {
                    assert!(keys.insert(k), "{}: key {k} is used twice", t.tag);
                }
                fields += 1;
            }
        }
    }
    assert!(fields > 150, "only {fields} fields described");
    // Defaults are the spec's.
    let (_, distance) = segno::config::find_type("DistanceTaskConfig").unwrap();
    let default_of = |key: &str| {
        distance
            .fields
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.default)
            .map(|d| d())
    };
    assert_eq!(default_of("scale_factor"), Some(serde_json::json!(1.0)));
    assert_eq!(default_of("mask_distances"), Some(serde_json::json!(true)));
    assert_eq!(default_of("clipmax"), Some(serde_json::json!(0.95)));
    assert_eq!(default_of("channels"), None, "channels is required");
}

/// Decodes a sample as `T` and returns its YAML text as Segno writes it.
fn sample_yaml<T: Decode + Encode + Validate>(tag: &str, text: &str) -> String {
    let doc = parse_document(text, tag).unwrap();
    let value: T = decode_document(&doc, tag).unwrap();
    segno::config::schema::to_yaml_text(&value.encode_yaml())
}

/// With `SEGNO_EXPORT_SAMPLES_TO=DIR`, writes every sample as Segno encodes it to
/// `DIR/<type>.yaml`, so that DaCapo itself can be asked to read them
/// (`scripts/dacapo-interop.sh`). Without the variable it only checks the encoding.
#[test]
fn export_samples_for_dacapo() {
    let target = std::env::var_os("SEGNO_EXPORT_SAMPLES_TO");
    let mut files = vec![(
        "RunConfig".to_string(),
        AnyConfig::from_text(None, &run_text(), "run")
            .unwrap()
            .to_yaml(),
    )];
    for (tag, text) in samples() {
        let yaml = (family_of(tag).yaml)(tag, &text);
        assert!(yaml.contains(&format!("__type__: {tag}\n")), "{yaml}");
        files.push((tag.to_string(), yaml));
    }
    if let Some(dir) = &target {
        let dir = std::path::Path::new(dir);
        std::fs::create_dir_all(dir).unwrap();
        for (tag, yaml) in &files {
            std::fs::write(dir.join(format!("{tag}.yaml")), yaml).unwrap();
        }
    }
}

/// Segno writes DaCapo's files back with the same keys and structure, tags included:
/// tuples carry `!!python/tuple`, lists do not (numbers compared by value: DaCapo may write
/// `255` for a float field). Keys of newer DaCapo versions are left out at their defaults.
#[test]
fn written_files_match_dacapo_tags() {
    fn normalise(v: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
        use serde_yaml_ng::Value as Y;
        match v {
            Y::Number(n) => Y::from(n.as_f64().unwrap()),
            Y::Sequence(items) => Y::Sequence(items.into_iter().map(normalise).collect()),
            Y::Mapping(m) => Y::Mapping(m.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
            Y::Tagged(mut t) => {
                t.value = normalise(std::mem::replace(&mut t.value, Y::Null));
                Y::Tagged(t)
            }
            other => other,
        }
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dacapo-v0.3.5");
    let mut compared = 0;
    for family in Family::ALL {
        for entry in std::fs::read_dir(std::path::Path::new(root).join(family.dir_name())).unwrap()
        {
            let path = entry.unwrap().path();
            let theirs_text = std::fs::read_to_string(&path).unwrap();
            let ours_text = AnyConfig::from_text(Some(family), &theirs_text, "x")
                .unwrap()
                .to_yaml();
            let theirs: serde_yaml_ng::Value = serde_yaml_ng::from_str(&theirs_text).unwrap();
            let ours: serde_yaml_ng::Value = serde_yaml_ng::from_str(&ours_text).unwrap();
            assert_eq!(
                normalise(ours),
                normalise(theirs),
                "{}:\n{ours_text}",
                path.display()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 8);
    // A file without tuples is byte-identical to DaCapo's.
    let task = std::fs::read_to_string(format!("{root}/tasks/peer_distance_task.yaml")).unwrap();
    assert_eq!(
        AnyConfig::from_text(None, &task, "t").unwrap().to_yaml(),
        task
    );
}
