//! Training a tiny U-Net on the synthetic demo data: the loss falls, and a run stopped and
//! resumed ends with the same statistics and weights as one trained in a single go.

use std::collections::BTreeMap;
use std::path::Path;

mod common;

use segno::config::*;
use segno::demo::project::zarr;
use segno::demo::{self, DemoOptions};
use segno::geometry::Coordinate;
use segno::store::layout::RunDir;
use segno::store::stats;
use segno::train::{self, TrainOptions};

fn dataset(crop: &str) -> DatasetConfig {
    common::mito_dataset(crop, common::demo_raw(0.0, 255.0))
}

fn run_config(name: &str, iterations: u64, interval: u64, lr: f64) -> RunConfig {
    common::tiny_run(name, iterations, interval, lr, common::demo_raw(0.0, 255.0))
}

fn project(dir: &Path) {
    demo::generate(
        dir,
        &DemoOptions {
            seed: 1,
            size: 64,
            overwrite: false,
        },
    )
    .unwrap();
}

fn options(stop_after: Option<u64>) -> TrainOptions {
    TrainOptions {
        seed: Some(7),
        device: tch::Device::Cpu,
        loader_threads: Some(2),
        stop_after,
        ..TrainOptions::default()
    }
}

#[test]
fn the_loss_falls_on_synthetic_data() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let run = run_config("falls", 150, 150, 0.5);
    let report = train::train_run(dir.path(), &run, options(None)).unwrap();
    assert_eq!(report.trained_until, 150);
    assert_eq!(report.checkpoints, vec![150]);
    let history =
        stats::read_training_stats(&RunDir::new(dir.path(), "falls").training_stats()).unwrap();
    assert_eq!(history.len(), 150);
    let mean = |s: &[stats::IterationStats]| s.iter().map(|x| x.loss).sum::<f64>() / s.len() as f64;
    let first = mean(&history[..20]);
    let last = mean(&history[130..]);
    eprintln!("loss: first 20 mean {first:.4}, last 20 mean {last:.4}");
    // Measured: 0.171 → 0.118 (×0.69) with this seed.
    assert!(
        last < 0.8 * first,
        "the loss did not fall by 20%: {first} → {last}"
    );

    // Validation at the last iteration: every threshold scored, outputs and bests written.
    assert_eq!(report.validations.len(), 1);
    let v = &report.validations[0];
    assert_eq!(v.iteration, 150);
    assert_eq!(
        v.parameters,
        vec!["threshold_-0.2", "threshold_0", "threshold_0.2"]
    );
    assert_eq!(v.datasets, vec!["synthetic_crop2"]);
    assert_eq!(v.criteria.len(), 21);
    let at = |name: &str| v.criteria.iter().position(|c| c == name).unwrap();
    let dice = v.scores[0][1][at("mito__dice")];
    let recall = v.scores[0][1][at("mito__recall")];
    eprintln!("validation at 150: dice {dice:.3}, recall {recall:.3}");
    assert!(dice.is_finite() && (0.0..=1.0).contains(&dice), "{dice}");
    let run_dir = dir.path().join("falls");
    let gt_roi = segno::array::open(&dir.path().join("data/synthetic.zarr/labels/crop2/mito"))
        .unwrap()
        .info()
        .roi;
    for p in [
        "validation.zarr/150/synthetic_crop2/prediction",
        "validation.zarr/150/synthetic_crop2/output/threshold_0",
    ] {
        let a = segno::array::open(&run_dir.join(p)).unwrap();
        assert_eq!(a.info().roi, gt_roi, "{p}");
    }
    let best: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("checkpoints/synthetic_crop2/mito__f1_score.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(best["iteration"], 150);
    let scores: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("stats/validation_scores/falls.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(scores["iterations"][0]["iteration"], 150);
}

#[test]
fn a_stopped_and_resumed_run_equals_an_uninterrupted_one() {
    tch::set_num_threads(1);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    project(a.path());
    project(b.path());
    let run = run_config("resume", 16, 8, 0.05);
    let straight = train::train_run(a.path(), &run, options(None)).unwrap();
    assert_eq!(straight.checkpoints, vec![8, 16]);
    // Stop after 11 iterations (not a checkpoint interval): iteration 11 is kept as a
    // checkpoint and the resumed run continues from it.
    let first = train::train_run(b.path(), &run, options(Some(11))).unwrap();
    assert_eq!(first.trained_until, 11);
    assert_eq!(first.checkpoints, vec![8, 11]);
    // Only the interval checkpoint was validated.
    assert_eq!(
        first
            .validations
            .iter()
            .map(|v| v.iteration)
            .collect::<Vec<_>>(),
        vec![8]
    );
    let resumed = train::train_run(b.path(), &run, options(None)).unwrap();
    assert_eq!(resumed.resumed_from, Some(11));
    assert_eq!(resumed.trained_until, 16);
    let sa = stats::read_training_stats(&RunDir::new(a.path(), "resume").training_stats()).unwrap();
    let sb = stats::read_training_stats(&RunDir::new(b.path(), "resume").training_stats()).unwrap();
    let la: Vec<f64> = sa.iter().map(|s| s.loss).collect();
    let lb: Vec<f64> = sb.iter().map(|s| s.loss).collect();
    assert_eq!(la, lb);
    let wa: BTreeMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(RunDir::from_dir(&a.path().join("resume")).checkpoint(16))
            .unwrap()
            .into_iter()
            .collect();
    let wb: BTreeMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(RunDir::from_dir(&b.path().join("resume")).checkpoint(16))
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    for (k, t) in &wa {
        let diff = (t - &wb[k]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "{k}");
    }
}

/// Trains `run` in a fresh demo project with the default seed and returns the final
/// checkpoint's bytes, the losses and the seed used.
fn train_fresh(run: &RunConfig, busy: bool) -> (Vec<u8>, Vec<f64>, u64) {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keep the other core busy while this one trains.
    let spinner = busy.then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        })
    });
    let report = train::train_run(
        dir.path(),
        run,
        TrainOptions {
            seed: None,
            loader_threads: Some(if busy { 1 } else { 3 }),
            ..TrainOptions::default()
        },
    )
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = spinner {
        s.join().unwrap();
    }
    let run_dir = dir.path().join(&run.name);
    let record = segno::store::run::read_record(&run_dir).unwrap().unwrap();
    assert_eq!(record.seed, report.seed);
    let bytes = std::fs::read(RunDir::from_dir(&run_dir).checkpoint(run.num_iterations)).unwrap();
    let losses = stats::read_training_stats(&RunDir::new(dir.path(), &run.name).training_stats())
        .unwrap()
        .iter()
        .map(|s| s.loss)
        .collect();
    (bytes, losses, report.seed)
}

#[test]
fn repetitions_differ_and_the_same_run_reproduces_under_load() {
    tch::set_num_threads(1);
    let run = run_config("rep", 6, 6, 0.05);
    let (quiet, quiet_losses, seed) = train_fresh(&run, false);
    assert_eq!(seed, train::run::default_seed(&run));
    let (busy, busy_losses, _) = train_fresh(&run, true);
    assert_eq!(quiet_losses, busy_losses);
    assert!(quiet == busy, "the checkpoints of two trainings differ");
    // Another repetition of the same configuration gets another seed and trains differently.
    let mut second = run.clone();
    second.repetition = 1;
    let (other, other_losses, other_seed) = train_fresh(&second, false);
    assert_ne!(other_seed, seed);
    assert_ne!(other_losses, quiet_losses);
    assert!(other != quiet, "repetitions 0 and 1 trained identically");
}

#[test]
fn a_run_resumes_with_its_recorded_seed_and_refuses_another() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let run = run_config("seeded", 4, 2, 0.05);
    let opts = |seed: Option<u64>, stop_after: Option<u64>| TrainOptions {
        seed,
        stop_after,
        loader_threads: Some(1),
        ..TrainOptions::default()
    };
    let first = train::train_run(dir.path(), &run, opts(Some(11), Some(2))).unwrap();
    assert_eq!(first.seed, 11);
    let err = train::train_run(dir.path(), &run, opts(Some(12), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trained with seed 11") && err.contains("--seed 12"),
        "{err}"
    );
    // Without a seed the recorded one is used.
    let resumed = train::train_run(dir.path(), &run, opts(None, None)).unwrap();
    assert_eq!((resumed.seed, resumed.trained_until), (11, 4));
}

#[test]
fn bad_runs_fail_before_training_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    // A datasplit pointing at a missing array.
    let mut run = run_config("bad", 4, 2, 0.01);
    if let DataSplitConfig::TrainValidate(s) = &mut run.datasplit_config {
        if let DatasetConfig::RawGt(d) = &mut s.train_configs[0] {
            d.gt_config = Some(zarr("missing", "labels/crop9/mito"));
        }
    }
    let err = train::train_run(dir.path(), &run, options(None)).unwrap_err();
    assert!(err.to_string().contains("crop9"), "{err}");
    // An input shape the U-Net cannot take.
    let mut run = run_config("bad", 4, 2, 0.01);
    if let ArchitectureConfig::CnnectomeUnet(u) = &mut run.architecture_config {
        u.input_shape = Coordinate::from([51, 52, 52]);
    }
    let err = train::train_run(dir.path(), &run, options(None)).unwrap_err();
    assert!(err.to_string().contains("axis 0"), "{err}");
    // Ground truth at another voxel size than the network's output (crop3 is at 4 nm).
    let mut run = run_config("bad", 4, 2, 0.01);
    if let DataSplitConfig::TrainValidate(s) = &mut run.datasplit_config {
        s.train_configs = vec![dataset("crop3")];
    }
    let err = train::train_run(dir.path(), &run, options(None)).unwrap_err();
    assert!(err.to_string().contains("voxel size"), "{err}");
    assert!(!dir.path().join("bad").exists());
    assert!(!RunDir::new(dir.path(), "bad").training_stats().exists());
    // A checkpoint from another architecture is refused before training continues.
    let run = run_config("other", 2, 2, 0.01);
    train::train_run(dir.path(), &run, options(None)).unwrap();
    let mut bigger = run_config("other", 4, 2, 0.01);
    if let ArchitectureConfig::CnnectomeUnet(u) = &mut bigger.architecture_config {
        u.num_fmaps = 6;
    }
    let before = std::fs::read(RunDir::from_dir(&dir.path().join("other")).checkpoint(2)).unwrap();
    let err = train::train_run(dir.path(), &bigger, options(None)).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    assert_eq!(
        std::fs::read(RunDir::from_dir(&dir.path().join("other")).checkpoint(2)).unwrap(),
        before
    );
}

#[test]
fn segno_train_killed_mid_run_resumes_to_the_same_result() {
    use segno::store::Project;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        project(dir);
        let p = Project::open(dir).unwrap();
        p.configs()
            .store(&AnyConfig::Run(Box::new(run_config("cli", 12, 4, 0.05))))
            .unwrap();
    }
    let segno = assert_cmd::cargo::cargo_bin("segno");
    let train = |dir: &Path| {
        let mut c = std::process::Command::new(&segno);
        c.args([
            "train", "--run", "cli", "--seed", "3", "--device", "cpu", "--json", "-p",
        ])
        .arg(dir);
        c.env("OMP_NUM_THREADS", "1");
        c
    };
    // Uninterrupted.
    let out = train(a.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trained_until"], 12);
    assert_eq!(v["checkpoints"], serde_json::json!([4, 8, 12]));
    // Killed with SIGKILL once the first checkpoint exists, then started again.
    let mut child = train(b.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = RunDir::from_dir(&b.path().join("cli")).checkpoint(4);
    let t0 = std::time::Instant::now();
    while !first.exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // While it trains, a second trainer of the same run is refused, naming the process.
    let second = train(b.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("being trained by process {}", child.id())),
        "{stderr}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    assert!(first.exists());
    // The killed trainer's lock is left behind; the next trainer takes it over.
    assert!(b.path().join("cli/train.lock").exists());
    let done_before = RunDir::from_dir(&b.path().join("cli"))
        .latest_checkpoint()
        .unwrap();
    assert!(
        done_before < 12,
        "the run finished before it could be killed"
    );
    let out = train(b.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resumed_from"], done_before);
    assert!(
        !b.path().join("cli/train.lock").exists(),
        "released at the end"
    );
    let la: Vec<f64> = stats::read_training_stats(&RunDir::new(a.path(), "cli").training_stats())
        .unwrap()
        .iter()
        .map(|s| s.loss)
        .collect();
    let lb: Vec<f64> = stats::read_training_stats(&RunDir::new(b.path(), "cli").training_stats())
        .unwrap()
        .iter()
        .map(|s| s.loss)
        .collect();
    assert_eq!(la.len(), 12);
    assert_eq!(la, lb);
    let wa = std::fs::read(RunDir::from_dir(&a.path().join("cli")).checkpoint(12)).unwrap();
    let wb = std::fs::read(RunDir::from_dir(&b.path().join("cli")).checkpoint(12)).unwrap();
    assert!(wa == wb, "the final checkpoints differ");
}

#[test]
fn segno_train_stopped_by_sigterm_keeps_its_iteration_and_resumes_exactly() {
    use segno::store::Project;
    use std::io::BufRead;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        project(dir);
        Project::open(dir)
            .unwrap()
            .configs()
            .store(&AnyConfig::Run(Box::new(run_config("term", 30, 15, 0.05))))
            .unwrap();
    }
    let segno = assert_cmd::cargo::cargo_bin("segno");
    let train = |dir: &Path| {
        let mut c = std::process::Command::new(&segno);
        c.args(["train", "--run", "term", "--device", "cpu", "--json", "-p"])
            .arg(dir)
            .env("OMP_NUM_THREADS", "1");
        c
    };
    let out = train(a.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stop the second trainer with SIGTERM (what the app's Stop sends) once it reported
    // iteration 10: it finishes the iteration it is in and keeps it as a checkpoint.
    let mut child = train(b.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    for line in std::io::BufReader::new(stderr).lines() {
        if line.unwrap().starts_with("iteration 10:") {
            break;
        }
    }
    // SAFETY: signals the child process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interrupted"], true);
    let reached = v["trained_until"].as_u64().unwrap();
    assert!((10..15).contains(&reached), "stopped at {reached}");
    assert_eq!(v["checkpoints"], serde_json::json!([reached]));
    let run_dir = b.path().join("term");
    assert_eq!(
        RunDir::from_dir(&run_dir).latest_checkpoint(),
        Some(reached)
    );
    let status: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("train.status.json")).unwrap())
            .unwrap();
    assert_eq!(status["state"], "stopped");
    assert_eq!(
        segno::store::lock::run_state(&run_dir, 30),
        segno::store::lock::RunState::Stopped
    );
    // Resumed, it ends exactly where the uninterrupted trainer did.
    let out = train(b.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resumed_from"], reached);
    let losses = |dir: &Path| -> Vec<f64> {
        stats::read_training_stats(&RunDir::new(dir, "term").training_stats())
            .unwrap()
            .iter()
            .map(|s| s.loss)
            .collect()
    };
    assert_eq!(losses(a.path()).len(), 30);
    assert_eq!(losses(a.path()), losses(b.path()));
    let wa = std::fs::read(RunDir::from_dir(&a.path().join("term")).checkpoint(30)).unwrap();
    let wb = std::fs::read(RunDir::from_dir(&run_dir).checkpoint(30)).unwrap();
    assert!(wa == wb, "the final checkpoints differ");
}

#[test]
fn segno_demo_trains_validates_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let run = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"))
            .args([
                "demo",
                "--size",
                "64",
                "--iterations",
                "20",
                "--validation-interval",
                "10",
                "--json",
                "-p",
            ])
            .arg(&project)
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["run"], "demo_mito_er_20");
    assert_eq!(v["iterations"], 20);
    // A view of raw, crop 2's mito labels, the prediction with the error overlay against
    // them, and the segmentation (hidden) for `segno gui --view`.
    let view = segno::render::state::ViewState::load(&project.join("demo.view.json")).unwrap();
    assert_eq!(
        v["view"],
        project.join("demo.view.json").display().to_string()
    );
    let names: Vec<(&str, bool)> = view
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.visible))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], ("raw", true));
    assert!(
        names[1].1
            && matches!(
                view.layers[1].settings,
                segno::render::state::LayerSettings::Segmentation(_)
            ),
        "{names:?}"
    );
    assert!(view.layers[1].source.ends_with("labels/crop2/mito"));
    assert!(
        names[2].1 && names[2].0.starts_with("prediction_"),
        "{names:?}"
    );
    assert!(
        !names[3].1 && names[3].0.starts_with("output_"),
        "{names:?}"
    );
    assert_eq!(view.overlays.len(), 1);
    let overlay = &view.overlays[0];
    assert_eq!(
        (overlay.truth.as_str(), overlay.prediction.as_str()),
        (names[1].0, names[2].0)
    );
    assert!(overlay.visible);
    // Thresholded where the applied post-processing thresholded.
    let applied = v["applied"]["parameters"].as_str().unwrap();
    let t: f32 = applied.strip_prefix("threshold_").unwrap().parse().unwrap();
    assert_eq!(overlay.threshold, t);
    // Centred on the crop.
    let crop = segno::array::open(&project.join("data/synthetic.zarr/labels/crop2/mito"))
        .unwrap()
        .info()
        .roi;
    for a in 0..3 {
        let p = view.position_nm.0[a];
        let (b, e) = (
            crop.offset()[a] as f64,
            (crop.offset()[a] + crop.shape()[a]) as f64,
        );
        assert!((b..e).contains(&p), "axis {a}: {p} outside {crop}");
    }
    let rows = v["validations"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["iteration"], 20);
    let f1 = rows[1]["mito"]["f1_score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&f1), "{f1}");
    // The best checkpoint and threshold by mean F1 over mito and ER were applied.
    let scores: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("stats/validation_scores/demo_mito_er_20.json"))
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = scores["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let (fm, fe) = (
        names.iter().position(|c| *c == "mito__f1_score").unwrap(),
        names.iter().position(|c| *c == "er__f1_score").unwrap(),
    );
    let mut best = (0u64, 0usize, f64::NEG_INFINITY);
    for it in scores["iterations"].as_array().unwrap() {
        for (p, vals) in it["scores"][0].as_array().unwrap().iter().enumerate() {
            let m = 0.5 * (vals[fm].as_f64().unwrap() + vals[fe].as_f64().unwrap());
            if m > best.2 {
                best = (it["iteration"].as_u64().unwrap(), p, m);
            }
        }
    }
    let applied = &v["applied"];
    assert_eq!(applied["iteration"], best.0);
    assert_eq!(
        applied["parameters"],
        scores["parameters"][best.1].as_str().unwrap()
    );
    assert!((applied["chosen_by"]["score"].as_f64().unwrap() - best.2).abs() < 1e-12);
    // The segmentation is the prediction thresholded, and its counts are reported.
    let threshold: f32 = applied["parameters"]
        .as_str()
        .unwrap()
        .trim_start_matches("threshold_")
        .parse()
        .unwrap();
    let pred = segno::array::open(std::path::Path::new(
        applied["prediction"].as_str().unwrap(),
    ))
    .unwrap();
    let seg =
        segno::array::open(std::path::Path::new(applied["output"].as_str().unwrap())).unwrap();
    assert_eq!(seg.info().roi, pred.info().roi);
    let p = pred.read(&pred.info().roi).unwrap().to_f32();
    let o = seg.read(&seg.info().roi).unwrap().to_f32();
    assert_eq!(p.shape(), o.shape());
    assert_eq!(p.shape()[0], 2);
    assert!(p
        .iter()
        .zip(o.iter())
        .all(|(p, o)| (*o == 1.0) == (*p > threshold)));
    for c in 0..2 {
        let n = o
            .index_axis(ndarray::Axis(0), c)
            .iter()
            .filter(|v| **v != 0.0)
            .count();
        assert_eq!(applied["foreground_voxels"][c], n as u64);
    }
    assert_eq!(applied["voxels"], 48 * 48 * 48);
    // Unknown parameters or validation datasets are refused with what is available.
    let apply = |extra: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("segno"))
            .args(["apply", "-r", "demo_mito_er_20", "--output"])
            .arg(dir.path().join("out.zarr"))
            .arg("--input")
            .arg(project.join("data/synthetic.zarr/raw"))
            .arg("-p")
            .arg(&project)
            .args(extra)
            .output()
            .unwrap()
    };
    let bad = apply(&["--parameters", "bias_0.5"]);
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        msg.contains("`bias_0.5`") && msg.contains("threshold_-0.2, threshold_0, threshold_0.2"),
        "{msg}"
    );
    let bad = apply(&["--validation-dataset", "nope"]);
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && msg.contains("synthetic_crop2"),
        "{msg}"
    );
    assert!(!dir.path().join("out.zarr").exists());
    // The configs are in the project, and a second demo reuses the finished run.
    assert!(project.join("configs/runs/demo_mito_er_20.yaml").is_file());
    let again = run();
    assert!(again.status.success());
    let v2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v2["validations"], v["validations"]);
}

#[test]
fn segno_predict_blockwise_matches_validation_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let segno = assert_cmd::cargo::cargo_bin("segno");
    let cmd = |args: &[&str]| {
        let out = std::process::Command::new(&segno)
            .args(args)
            .env("OMP_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let p = project.to_str().unwrap();
    cmd(&[
        "demo",
        "--size",
        "128",
        "--iterations",
        "10",
        "--validation-interval",
        "10",
        "--json",
        "-p",
        p,
    ]);
    let raw = format!("{p}/data/synthetic.zarr/raw");
    let output = format!("{p}/out.zarr");
    // The whole volume (1024 nm) less the network's context (8 voxels of 8 nm): 896 nm per
    // axis. By default that is one block (as large as the region; memory allows it) ...
    let auto = cmd(&[
        "predict",
        "-r",
        "demo_mito_er_10",
        "--input",
        &raw,
        "--output",
        &format!("{p}/auto.zarr"),
        "--json",
        "-p",
        p,
    ]);
    assert_eq!(auto["blocks"], 1, "{auto}");
    // ... and with blocks kept to the run's evaluation block (76³ in, 60³ = 480 nm out), two
    // blocks per axis, the last moved back to end at the region's end.
    let args = [
        "predict",
        "-r",
        "demo_mito_er_10",
        "--best",
        "synthetic_crop2:mito__f1_score",
        "--input",
        &raw,
        "--output",
        &output,
        "--max-block-input",
        "1",
        "--json",
        "-p",
        p,
    ];
    let v = cmd(&args);
    assert_eq!(v["iteration"], 10);
    let blocks = v["blocks"].as_u64().unwrap();
    assert_eq!(blocks, 8, "{v}");
    assert_eq!(v["skipped"], 0);
    let pred = segno::array::open(&project.join("out.zarr/prediction_demo_mito_er_10_10")).unwrap();
    assert_eq!(pred.info().channels(), 2);
    assert_eq!(
        pred.info().roi,
        segno::geometry::Roi::new(
            Coordinate::from([64, 64, 64]),
            Coordinate::from([896, 896, 896])
        )
        .unwrap()
    );
    // Where both exist, the blockwise prediction equals validation's prediction of crop2.
    let val = segno::array::open(
        &project.join("demo_mito_er_10/validation.zarr/10/synthetic_crop2/prediction"),
    )
    .unwrap();
    let common = val.info().roi.intersect(&pred.info().roi);
    let a = val.read(&common).unwrap().to_f64();
    let b = pred.read(&common).unwrap().to_f64();
    let max_diff = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(max_diff < 1e-4, "max difference {max_diff}");
    // One large block predicts what the small ones do.
    let whole = segno::array::open(&project.join("auto.zarr/prediction_demo_mito_er_10_10"))
        .unwrap()
        .read(&pred.info().roi)
        .unwrap()
        .to_f64();
    let tiled = pred.read(&pred.info().roi).unwrap().to_f64();
    let max_diff = whole
        .iter()
        .zip(tiled.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(
        max_diff < 1e-4,
        "one block vs tiles: max difference {max_diff}"
    );
    // Interrupted after one block: a second call only does the rest.
    common::interrupt_job(&project.join("out.zarr/prediction_demo_mito_er_10_10"), 1);
    let v2 = cmd(&args);
    assert_eq!(v2["skipped"], 1);
    assert_eq!(v2["blocks"], blocks);
    let b2 = pred.read(&common).unwrap().to_f64();
    assert_eq!(b, b2);

    // Thresholding matches validation's output at the same threshold.
    let pred_path = format!("{p}/out.zarr/prediction_demo_mito_er_10_10");
    let v = cmd(&[
        "post-process",
        "--input",
        &pred_path,
        "--output",
        &output,
        "--threshold",
        "0.2",
        "--json",
    ]);
    let seg = segno::array::open(Path::new(v["output"].as_str().unwrap())).unwrap();
    assert_eq!(seg.info().data_type, segno::array::DataType::U8);
    let val_out = segno::array::open(
        &project.join("demo_mito_er_10/validation.zarr/10/synthetic_crop2/output/threshold_0.2"),
    )
    .unwrap();
    let x = seg.read(&common).unwrap().to_f64();
    let y = val_out.read(&common).unwrap().to_f64();
    let differ = x.iter().zip(y.iter()).filter(|(a, b)| a != b).count();
    assert!(
        differ * 10_000 <= x.len(),
        "{differ} of {} voxels differ",
        x.len()
    );
    let total: u64 = v["foreground_voxels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert!(total > 0);
    // Re-validating the checkpoint gives the scores training stored.
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("stats/validation_scores/demo_mito_er_10.json"))
            .unwrap(),
    )
    .unwrap();
    let r = cmd(&[
        "validate",
        "-r",
        "demo_mito_er_10",
        "--iteration",
        "10",
        "--device",
        "cpu",
        "--json",
        "-p",
        p,
    ]);
    assert_eq!(r["iteration"], 10);
    let dice = r["results"][0]["parameters"][1]["scores"]["mito__dice"]
        .as_f64()
        .unwrap();
    let criteria = stored["criteria"].as_array().unwrap();
    let at = criteria.iter().position(|c| c == "mito__dice").unwrap();
    let stored_dice = stored["iterations"][0]["scores"][0][1][at]
        .as_f64()
        .unwrap();
    assert!((dice - stored_dice).abs() < 1e-9, "{dice} vs {stored_dice}");

    // Evaluating ground truth against itself: perfect scores.
    let gt = format!("{p}/data/synthetic.zarr/labels/crop2/mito");
    let e = cmd(&["evaluate", "--output", &gt, "--gt", &gt, "--json"]);
    assert_eq!(e["scores"]["dice"], 1.0);
    assert_eq!(e["scores"]["hausdorff"], 0.0);
    assert_eq!(e["scores"]["false_positive_rate"], 0.0);
    // Instance scores: cells against themselves have no split or merge; cells against the
    // mitochondria (each one object in its own cell, the rest background) both split and merge.
    let cells = format!("{p}/data/synthetic.zarr/labels/crop2/cells");
    let e = cmd(&[
        "evaluate",
        "--instance",
        "--output",
        &cells,
        "--gt",
        &cells,
        "--json",
    ]);
    assert_eq!(e["scores"]["voi_split"], 0.0);
    assert_eq!(e["scores"]["voi_merge"], 0.0);
    let e = cmd(&[
        "evaluate",
        "--instance",
        "--output",
        &gt,
        "--gt",
        &cells,
        "--json",
    ]);
    let (split, merge, voi) = (
        e["scores"]["voi_split"].as_f64().unwrap(),
        e["scores"]["voi_merge"].as_f64().unwrap(),
        e["scores"]["voi"].as_f64().unwrap(),
    );
    assert!(split > 0.0 && merge > 0.0, "{split} {merge}");
    assert!((voi - 0.5 * (split + merge)).abs() < 1e-12);
}
