//! The DataSplit generator on the demo data: the array chains DaCapo's generator builds
//! (levels, resampling, binarised classes, masks for missing classes), the arrays they open
//! equal the demo's own datasplit, bad CSV lines and datasets are named, and
//! `segno datasplit` writes the same config as the library.

use std::path::Path;

use segno::array::open::open_config;
use segno::config::*;
use segno::datasplit::{generate, read_csv, GeneratorOptions};
use segno::geometry::Coordinate;

mod common;

fn options(resolution_out: i64) -> GeneratorOptions {
    let mut o = GeneratorOptions::new(
        "synthetic",
        Coordinate::from([8, 8, 8]),
        Coordinate::from([resolution_out; 3]),
    );
    o.binarize_gt = true;
    o
}

fn raw_gt(d: &DatasetConfig) -> (&ArrayConfig, &ArrayConfig, Option<&ArrayConfig>) {
    let DatasetConfig::RawGt(d) = d else {
        panic!("not a raw/gt dataset")
    };
    (
        d.raw_config.as_ref().unwrap(),
        d.gt_config.as_ref().unwrap(),
        d.mask_config.as_ref(),
    )
}

#[test]
fn the_demo_csv_gives_dacapos_chains_and_the_demo_datasplits_arrays() {
    let dir = common::demo_data_project(64);
    let specs = read_csv(&dir.path().join("data/synthetic.csv")).unwrap();
    let g = generate(&specs, &options(8), dir.path()).unwrap();
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    let c = &g.config;
    assert_eq!(c.name, "synthetic_semantic_mito&er_8nm");
    assert_eq!((c.train_configs.len(), c.validate_configs.len()), (2, 1));
    let (raw, gt, mask) = raw_gt(&c.train_configs[0]);
    // Raw: intensities over level s0 of the multiscale raw image (8 nm = the target).
    let ArrayConfig::Intensities(i) = raw else {
        panic!("{raw:?}")
    };
    assert_eq!(
        (i.name.as_str(), i.min, i.max),
        ("raw_synthetic_uint8", 0.0, 255.0)
    );
    let ArrayConfig::Zarr(z) = i.source_array_config.as_ref() else {
        panic!()
    };
    assert_eq!(
        (z.name.as_str(), z.dataset.as_str()),
        ("raw_synthetic_raw_uint8", "raw/s0")
    );
    // GT: mito then er, each binarised.
    let ArrayConfig::Concat(cat) = gt else {
        panic!("{gt:?}")
    };
    assert_eq!(cat.channels, vec!["mito", "er"]);
    assert_eq!(cat.name, "synthetic_labels/crop1/[mito&er]_mito_er_8nm_gt");
    let ArrayConfig::Binarize(b) = &cat.source_array_configs["er"] else {
        panic!()
    };
    assert_eq!(b.name, "synthetic_labels/crop1/[mito&er]_er_8nm_binarized");
    assert_eq!(b.groupings, vec![("er".to_string(), vec![])]);
    let ArrayConfig::Zarr(z) = b.source_array_config.as_ref() else {
        panic!()
    };
    assert_eq!(z.dataset, "labels/crop1/er/s0");
    assert!(mask.is_none(), "every target is annotated: no mask");
    // A valid config whose arrays hold what the demo's hand-written datasplit reads.
    let any = AnyConfig::Datasplit(DataSplitConfig::TrainValidate(c.clone()));
    assert!(any.problems().is_empty(), "{}", any.problems());
    let demo = segno::demo::project::demo_run(10, 5);
    let DataSplitConfig::TrainValidate(demo_split) = &demo.datasplit_config else {
        panic!()
    };
    let (demo_raw, demo_gt, _) = raw_gt(&demo_split.train_configs[0]);
    let ours = open_config(gt, dir.path()).unwrap();
    let theirs = open_config(demo_gt, dir.path()).unwrap();
    let roi = theirs.info().roi;
    assert_eq!(ours.info().roi, roi);
    assert_eq!(ours.read(&roi).unwrap(), theirs.read(&roi).unwrap());
    let ours = open_config(raw, dir.path()).unwrap();
    let theirs = open_config(demo_raw, dir.path()).unwrap();
    assert_eq!(ours.read(&roi).unwrap(), theirs.read(&roi).unwrap());
}

#[test]
fn coarser_targets_pick_a_level_or_resample() {
    let dir = common::demo_data_project(64);
    let specs = read_csv(&dir.path().join("data/synthetic.csv")).unwrap();
    let mut o = options(16);
    o.input_resolution = Coordinate::from([16, 16, 16]);
    let g = generate(&specs, &o, dir.path()).unwrap();
    let (raw, gt, _) = raw_gt(&g.config.train_configs[0]);
    // Raw has a 16 nm level: chosen, not resampled.
    let ArrayConfig::Intensities(i) = raw else {
        panic!()
    };
    let ArrayConfig::Zarr(z) = i.source_array_config.as_ref() else {
        panic!("{i:?}")
    };
    assert_eq!(
        (z.name.as_str(), z.dataset.as_str()),
        ("raw_synthetic_raw_s1_uint8", "raw/s1")
    );
    // The labels have only 8 nm: downsampled by 2.
    let ArrayConfig::Concat(cat) = gt else {
        panic!()
    };
    let ArrayConfig::Binarize(b) = &cat.source_array_configs["mito"] else {
        panic!()
    };
    let ArrayConfig::Resampled(r) = b.source_array_config.as_ref() else {
        panic!("{b:?}")
    };
    assert_eq!(r.downsample, Coordinate::from([2, 2, 2]));
    assert_eq!(r.upsample, Coordinate::from([1, 1, 1]));
    let opened = open_config(gt, dir.path()).unwrap();
    assert_eq!(
        opened.info().geometry.voxel_size,
        Coordinate::from([16, 16, 16])
    );
}

#[test]
fn missing_classes_and_paths_are_named_or_masked() {
    let dir = common::demo_data_project(64);
    let csv = dir.path().join("mixed.csv");
    let c = dir.path().join("data/synthetic.zarr");
    let c = c.display();
    std::fs::write(
        &csv,
        format!(
            "train,{c},raw,{c},labels/crop1/[mito&er]\ntrain,{c},raw,{c},labels/crop3/[mito]\n"
        ),
    )
    .unwrap();
    let specs = read_csv(&csv).unwrap();
    let e = generate(&specs, &options(8), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("labels/crop3/[mito]") && e.contains("\"er\""),
        "{e}"
    );
    // With a negative class: er is 0 in crop3, masked to where mito is annotated.
    let mut o = options(8);
    o.use_negative_class = true;
    let g = generate(&specs, &o, dir.path()).unwrap();
    let (_, gt, mask) = raw_gt(&g.config.train_configs[1]);
    let ArrayConfig::Concat(cat) = gt else {
        panic!()
    };
    let ArrayConfig::Constant(k) = &cat.source_array_configs["er"] else {
        panic!()
    };
    assert_eq!(k.constant, 0);
    let Some(ArrayConfig::Concat(m)) = mask else {
        panic!("{mask:?}")
    };
    assert!(
        matches!(m.source_array_configs["mito"], ArrayConfig::Constant(ref k) if k.constant == 1)
    );
    let opened = open_config(mask.unwrap(), dir.path()).unwrap();
    assert_eq!(opened.info().channels(), 2);
    // A path that does not exist is named with its dataset line.
    std::fs::write(&csv, format!("train,{c},raw,{c},labels/crop9/[mito]\n")).unwrap();
    let e = generate(&read_csv(&csv).unwrap(), &options(8), dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("crop9") && e.contains("no such array"), "{e}");
    // A non-integer resampling ratio is refused instead of mis-sampled.
    let mut o = options(8);
    o.input_resolution = Coordinate::from([12, 12, 12]);
    let e = generate(&specs, &o, dir.path()).unwrap_err().to_string();
    assert!(e.contains("whole factors"), "{e}");
}

#[test]
fn segno_datasplit_stores_the_generated_config() {
    let dir = common::demo_data_project(64);
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"));
        cmd.args([
            "datasplit",
            "--csv",
            "data/synthetic.csv",
            "--input-resolution",
            "8,8,8",
        ])
        .args(["--output-resolution", "8,8,8", "--binarize-gt", "-p"])
        .arg(dir.path())
        .args(extra)
        .current_dir(dir.path());
        cmd.output().unwrap()
    };
    let out = run(&["--store"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("synthetic_semantic_mito&er_8nm") && stdout.contains("stored"),
        "{stdout}"
    );
    let stored = segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .retrieve(Family::Datasplits, "synthetic_semantic_mito&er_8nm")
        .unwrap();
    let specs = read_csv(&dir.path().join("data/synthetic.csv")).unwrap();
    let g = generate(&specs, &options(8), dir.path()).unwrap();
    assert_eq!(
        stored,
        AnyConfig::Datasplit(DataSplitConfig::TrainValidate(g.config))
    );
    let again = run(&["--store"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already stored (identical)"));
    // Without --store the YAML is printed.
    let yaml = String::from_utf8_lossy(&run(&[]).stdout).to_string();
    assert!(
        yaml.contains("__type__: TrainValidateDataSplitConfig"),
        "{yaml}"
    );
    // A bad CSV line is named with its file and line.
    std::fs::write(
        dir.path().join("bad.csv"),
        "train,a.zarr,raw,a.zarr,[x]\nnope,a,b,c,d\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"));
    let out = cmd
        .args([
            "datasplit",
            "--csv",
            "bad.csv",
            "--input-resolution",
            "8,8,8",
            "--output-resolution",
            "8,8,8",
            "-p",
        ])
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("bad.csv:2:") && stderr.contains("`nope`"),
        "{stderr}"
    );
    let _ = Path::new(".");
}
