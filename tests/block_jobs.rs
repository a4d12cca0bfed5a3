//! Predictions and post-processing as block jobs shared by many workers: local worker
//! processes, a worker killed mid-job (kill -9) and the same command run again, and job
//! arrays on a real Slurm (the single-node cluster `scripts/slurm-local.sh` starts; without
//! it the Slurm test is skipped unless SEGNO_TEST_SLURM=required, as in CI). Every output
//! is compared bit for bit with the single-process one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

mod common;

fn segno(args: &[&str]) -> (i32, serde_json::Value, String) {
    common::segno_json(args)
}

fn values(path: &Path) -> Vec<f32> {
    common::array_values(path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn trained_project() -> tempfile::TempDir {
    common::trained_quick_project()
}

/// `segno predict` of the demo raw volume into `out/<dataset>` in small blocks.
fn predict_args<'a>(p: &'a Path, out: &'a Path, dataset: &'a str) -> Vec<&'a str> {
    vec![
        "predict",
        "-r",
        "quick",
        "--iteration",
        "4",
        "--device",
        "cpu",
        "--input",
        s_static(p.join("data/synthetic.zarr/raw")),
        "--output",
        s(out),
        "--dataset",
        dataset,
        "--max-block-input",
        "30000",
        "-p",
        s(p),
    ]
}

/// `segno apply` of `(run, iteration, parameters)` in project `p` to the demo raw volume
/// into the container `out`, in small blocks on the CPU, with `extra` options.
fn apply_demo(
    p: &Path,
    (run, iteration, parameters): (&str, &str, &str),
    out: &Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let raw = p.join("data/synthetic.zarr/raw");
    let mut args = vec![
        "apply",
        "-r",
        run,
        "--iteration",
        iteration,
        "--parameters",
        parameters,
        "--device",
        "cpu",
        "--input",
        s(&raw),
        "--output",
        s(out),
        "--max-block-input",
        "30000",
        "-p",
        s(p),
    ];
    args.extend(extra);
    segno(&args)
}

/// A path as a `&'static str` (tests only: leaks the string).
fn s_static(p: PathBuf) -> &'static str {
    Box::leak(p.into_os_string().into_string().unwrap().into_boxed_str())
}

/// The worker names in a job's done records.
fn done_workers(prediction: &Path) -> std::collections::BTreeSet<String> {
    let dir = prediction.join(".segno-job/ledger/done");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            v["worker"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn local_workers_share_a_job_and_a_killed_worker_loses_nothing() {
    let dir = trained_project();
    let p = dir.path();
    let out = p.join("out.zarr");
    // The single-process reference.
    let (code, v, err) = segno(&predict_args(p, &out, "one"));
    assert_eq!(code, 0, "{err}");
    let blocks = v["blocks"].as_u64().unwrap();
    assert!(blocks >= 8, "{v}");
    let reference = values(&out.join("one"));

    // Two worker processes: the same values, bit for bit, and both took blocks.
    let mut args = predict_args(p, &out, "two");
    args.extend(["--workers", "2"]);
    let (code, v, err) = segno(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["workers"], 2, "{v}");
    assert_eq!(values(&out.join("two")), reference);
    assert_eq!(common::done_blocks(&out.join("two")).len() as u64, blocks);
    let workers = done_workers(&out.join("two"));
    assert!(workers.len() >= 2, "{workers:?}");

    // kill -9 mid-job: every block the ledger lists is fully written; the same command
    // run again does only the rest and the result equals the uninterrupted one.
    let killed = out.join("killed");
    let mut child = Command::cargo_bin("segno")
        .unwrap()
        .args(predict_args(p, &out, "killed"))
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let done_dir = killed.join(".segno-job/ledger/done");
    loop {
        let n = std::fs::read_dir(&done_dir).map(|d| d.count()).unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no block done");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let listed = common::done_blocks(&killed);
    assert!(
        (listed.len() as u64) < blocks,
        "all {blocks} blocks were done before the kill"
    );
    // Each listed block holds the reference's values.
    let reader = segno::array::open(&killed).unwrap();
    let reference_array = segno::array::open(&out.join("one")).unwrap();
    let job: serde_json::Value =
        serde_json::from_slice(&std::fs::read(killed.join(".segno-job/job.json")).unwrap())
            .unwrap();
    let grid: segno::blockwise::BlockGrid = serde_json::from_value(job["grid"].clone()).unwrap();
    for k in &listed {
        let roi = grid.written(*k);
        assert_eq!(
            reader.read(&roi).unwrap().to_f32(),
            reference_array.read(&roi).unwrap().to_f32(),
            "block {k} is listed but not fully written"
        );
    }
    let (code, v, err) = segno(&predict_args(p, &out, "killed"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["skipped"].as_u64().unwrap(), listed.len() as u64, "{v}");
    assert_eq!(values(&killed), reference);
    let (code, status, err) = segno(&["job", "status", s(&killed)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["complete"], true, "{status}");
    assert_eq!(status["blocks"]["done"].as_u64().unwrap(), blocks);
}

#[test]
fn an_interrupted_post_processing_is_continued_by_the_same_command() {
    let (_dir, out) = predicted_project();
    let pred = out.join("pred");
    let post = |dataset: &str| {
        segno(&[
            "post-process",
            "--input",
            s(&pred),
            "--output",
            s(&out),
            "--dataset",
            dataset,
            "--threshold",
            "0.0",
        ])
    };
    let (code, v, err) = post("whole");
    assert_eq!(code, 0, "{err}");
    let whole = values(&out.join("whole"));
    let foreground = v["foreground_voxels"].clone();
    assert_eq!(
        foreground[0].as_u64().unwrap(),
        whole.iter().filter(|v| **v != 0.0).count() as u64
    );
    // The same post-processing, interrupted: the same command continues it.
    let (code, _, err) = post("part");
    assert_eq!(code, 0, "{err}");
    let part = out.join("part");
    // Interrupted after one block (or, for a job of one block, before it was recorded).
    let total = common::done_blocks(&part).len();
    common::interrupt_job(&part, usize::from(total > 1));
    let (code, v, err) = post("part");
    assert_eq!(code, 0, "{err}");
    assert_eq!(values(&part), whole);
    assert_eq!(v["foreground_voxels"], foreground);
    // Finished: refused.
    let (code, _, err) = post("part");
    assert_eq!(code, 4, "{err}");
}

fn slurm() -> bool {
    common::slurm_available()
}

/// What the workers of the job of `output` logged, all files joined.
fn job_logs(output: &Path) -> String {
    std::fs::read_dir(output.join(".segno-job/logs"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Waits until the scheduler no longer lists `ids` (they ended, however).
fn wait_gone(ids: &[&str], secs: u64) {
    let t0 = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j", &ids.join(",")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if text.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "jobs still queued after {secs} s: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_slurm_job_array_applies_a_run_as_one_process_would() {
    if !slurm() {
        return;
    }
    let dir = trained_project();
    let p = dir.path();
    let apply =
        |out: &Path, extra: &[&str]| apply_demo(p, ("quick", "4", "threshold_0"), out, extra);
    let local = p.join("local.zarr");
    let (code, v, err) = apply(&local, &[]);
    assert_eq!(code, 0, "{err}");
    let prediction = PathBuf::from(v["prediction"].as_str().unwrap());
    let output = PathBuf::from(v["output"].as_str().unwrap());
    let names = (
        prediction.file_name().unwrap().to_owned(),
        output.file_name().unwrap().to_owned(),
    );

    // Four array tasks and the finishing job: the same arrays, bit for bit.
    let cluster = p.join("cluster.zarr");
    let slurm = [
        "--slurm",
        "--array",
        "4",
        "--cpus",
        "1",
        "--partition",
        "debug",
    ];
    let (code, v, err) = apply(&cluster, &slurm);
    assert_eq!(code, 0, "{err}");
    let submitted = &v["submitted"];
    let (array, finish) = (
        submitted["array_id"].as_str().unwrap().to_string(),
        submitted["finish_id"].as_str().unwrap().to_string(),
    );
    wait_gone(&[&array, &finish], 600);
    let c_pred = cluster.join(&names.0);
    let c_out = cluster.join(&names.1);
    let logs = job_logs(&c_pred);
    assert!(c_out.exists(), "no output; logs:\n{logs}");
    assert_eq!(values(&c_pred), values(&prediction), "logs:\n{logs}");
    assert_eq!(values(&c_out), values(&output));
    let workers = done_workers(&c_pred);
    assert!(
        workers
            .iter()
            .any(|w| w.starts_with(&format!("slurm-{array}-"))),
        "{workers:?}"
    );

    // One array task cancelled mid-way, the finishing job too: the same command run again
    // completes the job and redoes only the blocks the ledger does not list.
    let again = p.join("again.zarr");
    let (code, v, err) = apply(&again, &slurm);
    assert_eq!(code, 0, "{err}");
    let array = v["submitted"]["array_id"].as_str().unwrap().to_string();
    let finish = v["submitted"]["finish_id"].as_str().unwrap().to_string();
    let a_pred = again.join(&names.0);
    let t0 = Instant::now();
    while !a_pred.join(".segno-job/ledger/done").is_dir() || common::done_blocks(&a_pred).is_empty()
    {
        assert!(t0.elapsed() < Duration::from_secs(300), "no block done");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("scancel")
        .args([format!("{array}_2"), finish.clone()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_gone(&[&array, &finish], 600);
    let listed = common::done_blocks(&a_pred).len();
    let (code, v, err) = apply(&again, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["skipped"].as_u64().unwrap(), listed as u64, "{v}");
    assert_eq!(values(&a_pred), values(&prediction));
    assert_eq!(values(&again.join(&names.1)), values(&output));
}

#[test]
fn the_apply_section_runs_a_local_job_to_the_end_and_opens_it_in_the_viewer() {
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;
    use segno::gui::{Section, SegnoApp, Settings};
    let dir = trained_project();
    let path = dir.path().to_path_buf();
    let mut h = Harness::builder()
        .with_size(eframe::egui::Vec2::new(1300.0, 900.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)));
    h.state_mut().apply.segno_exe = assert_cmd::cargo::cargo_bin("segno");
    h.run();
    h.get_by_label("Apply").click();
    h.run();
    // The run has no validation scores: Start waits for a checkpoint and parameters.
    assert!(!h.state().apply.running());
    let raw = dir.path().join("data/synthetic.zarr/raw");
    h.get_by_label("input")
        .set_text_value_accesskit(raw.to_str().unwrap());
    h.run_steps(2);
    let out = dir.path().join("applied.zarr");
    {
        let apply = &mut h.state_mut().apply;
        apply.output = out.display().to_string();
        apply.iteration = Some(4);
        apply.parameters = Some("threshold_0".into());
        apply.device = "cpu".into();
        apply.workers = 2;
    }
    h.run_steps(2);
    assert_eq!(h.state().apply.input, raw.display().to_string());
    h.get_by_label("Start").click();
    h.run_steps(2);
    assert!(h.state().apply.running());
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while h.state().apply.running() {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "still running: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        h.run_steps(1);
        if let Some(p) = h.state().apply.progress() {
            if seen.last() != Some(&p) {
                seen.push(p);
            }
        }
    }
    let message = h.state().apply.message.clone();
    assert!(h.state().apply.finished_ok(), "{message:?} {seen:?}");
    // Progress was shown up to every block done.
    let (done, total) = *seen.last().unwrap();
    assert_eq!(done, total, "{seen:?}");
    assert!(total >= 1, "{seen:?}");
    // The result is in the viewer next to the raw data.
    h.run_steps(2);
    let app = h.state();
    assert_eq!(app.settings.section, Section::Viewer);
    let sources: Vec<PathBuf> = app
        .viewer
        .state
        .layers
        .iter()
        .map(|l| l.source.clone())
        .collect();
    assert_eq!(sources.len(), 3, "{sources:?}");
    assert_eq!(sources[0], raw);
    assert_eq!(sources[1], out.join("prediction_quick_4"));
    assert_eq!(sources[2], out.join("output_quick_4_threshold_0"));
    // The same values as `segno apply` in one process.
    let (code, v, err) = segno(&[
        "apply",
        "-r",
        "quick",
        "--iteration",
        "4",
        "--parameters",
        "threshold_0",
        "--device",
        "cpu",
        "--input",
        s(&raw),
        "--output",
        s(&dir.path().join("one.zarr")),
        "-p",
        s(dir.path()),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        values(&out.join("output_quick_4_threshold_0")),
        values(Path::new(v["output"].as_str().unwrap()))
    );
}

/// Voronoi cells of `seeds` random points in an `n`³ volume (ids 1…), with a background
/// slab at the low y end: many objects crossing every block face.
fn voronoi(n: usize, seeds: usize, seed: u64) -> ndarray::ArrayD<u64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let points: Vec<[f64; 3]> = (0..seeds)
        .map(|_| [0, 1, 2].map(|_| rng.gen_range(0.0..n as f64)))
        .collect();
    ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[n, n, n]), |ix| {
        if ix[1] < 3 {
            return 0;
        }
        let d = |p: &[f64; 3]| (0..3).map(|a| (p[a] - ix[a] as f64).powi(2)).sum::<f64>();
        let nearest = (0..seeds)
            .min_by(|a, b| d(&points[*a]).total_cmp(&d(&points[*b])))
            .unwrap_or(0);
        nearest as u64 + 1
    })
}

/// Writes `data` as a float32 array `container/dataset` in `chunk`³ chunks at 4 nm.
fn write_prediction(container: &Path, dataset: &str, data: ndarray::ArrayD<f32>, chunk: u64) {
    use segno::array::write::{self, ArraySpec, WriteMode};
    let spatial = &data.shape()[data.ndim() - 3..];
    let vs = segno::geometry::Coordinate::from([4, 4, 4]);
    let shape: Vec<i64> = spatial.iter().map(|v| *v as i64 * 4).collect();
    let roi = segno::geometry::Roi::new(
        segno::geometry::Coordinate::from([0, 0, 0]),
        segno::geometry::Coordinate::new(&shape).unwrap(),
    )
    .unwrap();
    let channels = (data.ndim() == 4).then(|| data.shape()[0] as u64);
    let mut spec = ArraySpec::new(segno::array::DataType::F32, roi, vs, channels);
    spec.chunk_voxels = Some(vec![chunk; 3]);
    let w = write::create(container, dataset, &spec, WriteMode::CreateNew).unwrap();
    w.write(&roi, &segno::array::ArrayData::F32(data)).unwrap();
}

/// Every label of the array at `path`.
fn labels(path: &Path) -> ndarray::ArrayD<u64> {
    let a = segno::array::open(path).unwrap();
    let roi = a.info().roi;
    a.read(&roi).unwrap().to_labels().unwrap()
}

/// Whether two segmentations are the same partition of the voxels (equal up to
/// relabelling, background kept as 0), and how many objects they have.
fn same_partition(a: &ndarray::ArrayD<u64>, b: &ndarray::ArrayD<u64>) -> usize {
    let mut forward = std::collections::HashMap::new();
    let mut backward = std::collections::HashMap::new();
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(*x == 0, *y == 0, "background differs");
        assert_eq!(*forward.entry(*x).or_insert(*y), *y, "{x} is split");
        assert_eq!(*backward.entry(*y).or_insert(*x), *x, "{y} merges objects");
    }
    forward.keys().filter(|k| **k != 0).count()
}

#[test]
fn a_mutex_watershed_shared_by_two_worker_processes_equals_the_one_piece_result() {
    use segno::blockwise::segment::{self, SegmentMethod, SegmentOptions};
    use segno::blockwise::JobFile;
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("p.zarr");
    let n = 48;
    let truth = voronoi(n, 40, 3);
    let offsets = vec![
        vec![-1, 0, 0],
        vec![0, -1, 0],
        vec![0, 0, -1],
        vec![-4, 0, 0],
        vec![0, -4, 0],
        vec![0, 0, -4],
    ];
    // Affinities as a network would give them: the target blurred towards noise.
    let target = segno::task::affinities::affinity_target(&truth.view(), &offsets, false).unwrap();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(11);
    let affs = target.mapv(|t| 0.75 * t + 0.25 * rand::Rng::gen_range(&mut rng, 0.0f32..1.0));
    write_prediction(&container, "affs", affs, 16);
    let prediction = segno::array::open(&container.join("affs")).unwrap();
    let method = SegmentMethod::MutexWatershed {
        offsets,
        bias: 0.5,
        context_voxels: 8,
    };
    // One piece, in this process.
    let whole_options = SegmentOptions {
        max_one_piece_voxels: u64::MAX,
        ..SegmentOptions::default()
    };
    segment::segment_array(
        prediction.as_ref(),
        &method,
        &whole_options,
        (
            &container,
            "whole",
            segno::array::write::WriteMode::CreateNew,
        ),
        &|_, _| {},
    )
    .unwrap();
    // 16³ blocks: 27 of them, shared by two `segno job work` processes started together.
    let options = SegmentOptions {
        max_one_piece_voxels: 4096,
        ..SegmentOptions::default()
    };
    let job = segment::prepare_segment_job(
        prediction.as_ref(),
        &method,
        &options,
        (
            &container,
            "blocks",
            segno::array::write::WriteMode::CreateNew,
        ),
    )
    .unwrap();
    assert_eq!(job.grid.len(), 27);
    let output = container.join("blocks");
    let workers: Vec<_> = ["w1", "w2"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Command::cargo_bin("segno")
                .unwrap()
                .args([
                    "job",
                    "work",
                    s(&output),
                    "--worker",
                    name,
                    "--threads",
                    "1",
                ])
                .args(["--start", &format!("{}", i as f64 / 2.0), "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in workers {
        let w = w.wait_with_output().unwrap();
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    }
    let whole = labels(&container.join("whole"));
    let blocks = labels(&output);
    // The same objects (VOI 0 against each other and against the truth).
    let objects = same_partition(&whole, &blocks);
    assert_eq!(objects, 40);
    let scores = segno::task::evaluate::instance(&blocks, &truth).unwrap();
    assert!(scores.values.iter().all(|v| v.abs() < 1e-12), "{scores:?}");
    // Both workers segmented blocks; the job is complete through all its stages.
    let fragments_by: std::collections::BTreeSet<String> =
        std::fs::read_dir(output.join(".segno-job/ledger-fragments/done"))
            .unwrap()
            .map(|e| {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
                v["worker"].as_str().unwrap().to_string()
            })
            .collect();
    assert_eq!(fragments_by.len(), 2, "{fragments_by:?}");
    let (code, status, err) = segno(&["job", "status", s(&output)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["complete"], true);
    let stages: Vec<(String, u64, u64)> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["done"].as_u64().unwrap(),
                s["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        vec![
            ("fragments".into(), 27, 27),
            ("faces".into(), 27, 27),
            ("merge".into(), 1, 1),
            ("relabel".into(), 27, 27)
        ]
    );
    assert!(JobFile::load(&output).unwrap().is_some());
}

#[test]
fn connected_components_by_local_workers_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("p.zarr");
    let n = 40;
    let truth = voronoi(n, 25, 5);
    // A distance-like prediction: positive inside objects, negative on their borders.
    let inside = ndarray::ArrayD::from_shape_fn(truth.raw_dim(), |ix| {
        let l = truth[&ix];
        let border = (0..3).any(|a| {
            let mut j = ix.clone();
            (ix[a] + 1 < n) && {
                j[a] += 1;
                truth[&j] != l
            }
        });
        if l == 0 || border {
            -0.5f32
        } else {
            0.5
        }
    });
    write_prediction(&container, "dist", inside, 8);
    let pred = container.join("dist");
    let post = |dataset: &str, extra: &[&str]| {
        let mut args = vec![
            "post-process",
            "--input",
            s(&pred),
            "--output",
            s(&container),
            "--dataset",
            dataset,
            "--components",
            "--threshold",
            "0",
        ];
        args.extend_from_slice(extra);
        segno(&args)
    };
    let (code, one, err) = post("one", &["--block-voxels", "16,16,16"]);
    assert_eq!(code, 0, "{err}");
    let (code, two, err) = post("two", &["--block-voxels", "16,16,16", "--workers", "2"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = post("piece", &["--block-voxels", "40,40,40"]);
    assert_eq!(code, 0, "{err}");
    // Bit-identical whoever did the blocks; the same objects as one piece.
    assert_eq!(
        labels(&container.join("one")),
        labels(&container.join("two"))
    );
    assert_eq!(one["foreground_voxels"], two["foreground_voxels"]);
    let objects = same_partition(
        &labels(&container.join("one")),
        &labels(&container.join("piece")),
    );
    assert!(objects > 10, "{objects} objects");
    // Options that only segmentations have are refused for a threshold.
    let (code, _, err) = segno(&[
        "post-process",
        "--input",
        s(&pred),
        "--output",
        s(&container),
        "--workers",
        "2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--workers"), "{err}");
}

#[test]
fn apply_with_workers_predicts_and_segments_with_them_as_one_process_would() {
    use segno::config::AnyConfig;
    let dir = common::demo_data_project(64);
    let p = dir.path();
    let mut run = common::tiny_run("affs", 2, 2, 0.05, common::demo_raw(0.0, 255.0));
    run.task_config = common::affinities_task(false);
    segno::store::Project::open(p)
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run)))
        .unwrap();
    let (code, _, err) = segno(&[
        "train",
        "-r",
        "affs",
        "--no-validation",
        "--device",
        "cpu",
        "-p",
        s(p),
    ]);
    assert_eq!(code, 0, "{err}");
    let apply = |out: &Path, extra: &[&str]| apply_demo(p, ("affs", "2", "bias_0.5"), out, extra);
    let (code, one, err) = apply(&p.join("one.zarr"), &[]);
    assert_eq!(code, 0, "{err}");
    let (code, two, err) = apply(&p.join("two.zarr"), &["--workers", "2"]);
    assert_eq!(code, 0, "{err}");
    let output = PathBuf::from(two["output"].as_str().unwrap());
    assert_eq!(
        labels(&PathBuf::from(one["output"].as_str().unwrap())),
        labels(&output)
    );
    assert_eq!(one["foreground_voxels"], two["foreground_voxels"]);
    // The worker processes segmented (the prediction's job lists the segmentation), not
    // the command that started them.
    let prediction = PathBuf::from(two["prediction"].as_str().unwrap());
    let job = segno::blockwise::JobFile::load(&prediction)
        .unwrap()
        .unwrap();
    assert_eq!(job.then, vec![segno::ops::job::absolute(&output)]);
    let relabelled_by: Vec<String> = std::fs::read_dir(output.join(".segno-job/ledger/done"))
        .unwrap()
        .map(|e| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            v["worker"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        !relabelled_by.is_empty()
            && relabelled_by
                .iter()
                .all(|w| w.ends_with("-1") || w.ends_with("-2")),
        "{relabelled_by:?}"
    );
    // The same command again: everything is there, nothing is redone.
    let (code, again, err) = apply(&p.join("two.zarr"), &["--workers", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["foreground_voxels"], two["foreground_voxels"]);
}

/// Writes `data` as a uint64 label array `container/dataset` in `chunk`³ chunks at 4 nm.
fn write_labels(container: &Path, dataset: &str, data: ndarray::ArrayD<u64>, chunk: u64) {
    use segno::array::write::{self, ArraySpec, WriteMode};
    let vs = segno::geometry::Coordinate::from([4, 4, 4]);
    let shape: Vec<i64> = data.shape().iter().map(|v| *v as i64 * 4).collect();
    let roi = segno::geometry::Roi::new(
        segno::geometry::Coordinate::from([0, 0, 0]),
        segno::geometry::Coordinate::new(&shape).unwrap(),
    )
    .unwrap();
    let mut spec = ArraySpec::new(segno::array::DataType::U64, roi, vs, None);
    spec.chunk_voxels = Some(vec![chunk; 3]);
    let w = write::create(container, dataset, &spec, WriteMode::CreateNew).unwrap();
    w.write(&roi, &segno::array::ArrayData::U64(data)).unwrap();
}

/// Asserts two reports' scores agree: the same criteria, equal within 1e-12 relative
/// (sums of blocks are added in another order), undefined in both or in neither — except
/// the criteria `b` lists as not computed.
fn assert_same_scores(a: &serde_json::Value, b: &serde_json::Value) {
    let skipped: Vec<&str> = b["not_computed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["criterion"].as_str().unwrap())
        .collect();
    let (a, b) = (
        a["scores"].as_object().unwrap(),
        b["scores"].as_object().unwrap(),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, x) in a {
        let y = &b[name];
        if skipped.contains(&name.as_str()) {
            assert!(y.is_null(), "{name}: {y}");
            continue;
        }
        match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{name}: one piece {x}, blocks {y}"
            ),
            _ => assert_eq!(x, y, "{name}"),
        }
    }
}

#[test]
fn an_evaluation_shared_by_two_workers_gives_the_one_piece_scores_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("e.zarr");
    // Two different Voronoi labelings; binary scores take the odd cells as foreground.
    let odd = |l: ndarray::ArrayD<u64>| l.mapv(|v| if v % 2 == 1 { v } else { 0 });
    write_labels(&c, "truth", odd(voronoi(40, 30, 5)), 8);
    write_labels(&c, "test", odd(voronoi(40, 30, 6)), 8);
    let (test, truth) = (c.join("test"), c.join("truth"));
    let eval = |extra: &[&str]| {
        let mut args = vec!["evaluate", "--output", s(&test), "--gt", s(&truth)];
        args.extend_from_slice(extra);
        segno(&args)
    };
    let (code, one, err) = eval(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(one["blocks"], 1);
    assert_eq!(one["not_computed"], serde_json::json!([]));
    let save = dir.path().join("scores");
    let shared = [
        "--block-voxels",
        "16,16,16",
        "--workers",
        "2",
        "--save",
        s_static(save.clone()),
    ];
    let (code, two, err) = eval(&shared);
    assert_eq!(code, 0, "{err}");
    assert_eq!(two["blocks"], 27);
    assert_same_scores(&one, &two);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(save.join("report.json")).unwrap()).unwrap();
    assert_eq!(kept["scores"], two["scores"]);
    let (code, status, err) = segno(&["job", "status", s(&save)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status["complete"], true);
    assert!(done_workers(&save).iter().all(|w| !w.is_empty()));

    // Interrupted after 10 blocks: the same command scores only the other 17, and the
    // report is the same.
    common::interrupt_job(&save, 10);
    std::fs::remove_file(save.join("report.json")).unwrap();
    let (code, again, err) = eval(&shared);
    assert_eq!(code, 0, "{err}");
    assert_eq!(again["scores"], two["scores"]);
    assert_eq!(common::done_blocks(&save).len(), 27);

    // A tight clip distance gives a small context: distances beyond it are named, not
    // guessed; with context reaching the whole volume every criterion is computed.
    let tight = ["--clip-distance", "8", "--tol-distance", "8"];
    let (code, one_tight, err) = eval(&tight);
    assert_eq!(code, 0, "{err}");
    let mut blocked = tight.to_vec();
    blocked.extend(["--block-voxels", "16,16,16"]);
    let (code, b_tight, err) = eval(&blocked);
    assert_eq!(code, 0, "{err}");
    assert_same_scores(&one_tight, &b_tight);
    let missing = b_tight["not_computed"].as_array().unwrap();
    assert!(
        missing.iter().any(|n| n["criterion"] == "hausdorff"),
        "{b_tight}"
    );
    assert!(one_tight["scores"]["hausdorff"].as_f64().unwrap() > 8.0);
    blocked.extend(["--context-nm", "200"]);
    let (code, b_wide, err) = eval(&blocked);
    assert_eq!(code, 0, "{err}");
    assert_eq!(b_wide["not_computed"], serde_json::json!([]));
    assert_same_scores(&one_tight, &b_wide);

    // Instance scores from summed contingency tables equal the one-piece ones exactly.
    let (code, one_i, err) = eval(&["--instance"]);
    assert_eq!(code, 0, "{err}");
    let (code, two_i, err) = eval(&["--instance", "--block-voxels", "16,16,16", "--workers", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(one_i["scores"], two_i["scores"]);
    assert!(one_i["scores"]["voi"].as_f64().unwrap() > 0.5);
}

#[test]
fn a_slurm_job_array_evaluates_as_one_process_would() {
    if !slurm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("e.zarr");
    write_labels(&c, "truth", voronoi(32, 20, 7), 8);
    write_labels(&c, "test", voronoi(32, 20, 8), 8);
    let (test, truth) = (c.join("test"), c.join("truth"));
    let (code, one, err) = segno(&["evaluate", "--output", s(&test), "--gt", s(&truth)]);
    assert_eq!(code, 0, "{err}");
    let save = dir.path().join("scores");
    let (code, v, err) = segno(&[
        "evaluate",
        "--output",
        s(&test),
        "--gt",
        s(&truth),
        "--block-voxels",
        "16,16,16",
        "--save",
        s(&save),
        "--slurm",
        "--array",
        "2",
        "--cpus",
        "1",
        "--partition",
        "debug",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["submitted"]["blocks"], 8);
    assert_eq!(v["scores"], serde_json::json!({}));
    let (array, finish) = (
        v["submitted"]["array_id"].as_str().unwrap().to_string(),
        v["submitted"]["finish_id"].as_str().unwrap().to_string(),
    );
    wait_gone(&[&array, &finish], 600);
    let report = save.join("report.json");
    let logs = job_logs(&save);
    assert!(report.is_file(), "no report; logs:\n{logs}");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_same_scores(&one, &kept);
    let workers = done_workers(&save);
    assert!(
        workers
            .iter()
            .any(|w| w.starts_with(&format!("slurm-{array}-"))),
        "{workers:?}"
    );
}

/// A trained project with `segno predict` of its demo raw volume (iteration 4, small
/// blocks) in `out.zarr/pred`; also the container.
fn predicted_project() -> (tempfile::TempDir, PathBuf) {
    let dir = trained_project();
    let out = dir.path().join("out.zarr");
    let (code, _, err) = segno(&predict_args(dir.path(), &out, "pred"));
    assert_eq!(code, 0, "{err}");
    (dir, out)
}

#[test]
fn a_live_prediction_computes_what_segno_predict_writes_one_forward_pass_per_block() {
    use segno::array::ArraySource;
    use segno::blockwise::live::LivePrediction;
    let (dir, out) = predicted_project();
    let p = dir.path();
    let stored = segno::array::open(&out.join("pred")).unwrap();
    let project = segno::store::Project::open(p).unwrap();
    let run = segno::ops::stored_run(&project, "quick").unwrap();
    let live = LivePrediction::open(
        p,
        &run,
        &segno::blockwise::Checkpoint::Iteration(4),
        &p.join("data/synthetic.zarr/raw"),
        &segno::blockwise::InputOptions::default(),
        tch::Device::Cpu,
    )
    .unwrap();
    assert_eq!(live.iteration(), 4);
    assert_eq!(live.info().roi, stored.info().roi);
    assert_eq!(
        live.info().geometry.voxel_size,
        stored.info().geometry.voxel_size
    );
    assert_eq!(live.info().shape, stored.info().shape);
    let blocks = live.grid().len();
    assert!(blocks >= 8, "{blocks} blocks");
    // Every z slice in turn, as the viewer reads them: each block is computed once.
    let roi = stored.info().roi;
    let vs = stored.info().geometry.voxel_size;
    let mut worst = 0f32;
    let mut z = roi.begin()[0];
    while z < roi.end()[0] {
        let slab = segno::geometry::Roi::new(
            segno::geometry::Coordinate::from([z, roi.begin()[1], roi.begin()[2]]),
            segno::geometry::Coordinate::from([vs[0], roi.shape()[1], roi.shape()[2]]),
        )
        .unwrap();
        let a = live.read(&slab).unwrap().to_f32();
        let b = stored.read(&slab).unwrap().to_f32();
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.iter().zip(b.iter()) {
            worst = worst.max((x - y).abs());
        }
        z += vs[0];
    }
    assert!(worst <= 1e-5, "largest difference {worst}");
    let stats = live.stats();
    assert_eq!(stats.computed, blocks, "{stats:?}");
    assert_eq!((stats.failed, stats.in_flight), (0, 0));
    // Read again: nothing computed.
    let all = live.read(&roi).unwrap();
    assert_eq!(live.stats().computed, blocks);
    // Two threads computing side by side (a copy of the network each, one intra-op thread
    // each) give the same values (up to the order of sums), each block computed once.
    let lanes = LivePrediction::open(
        p,
        &run,
        &segno::blockwise::Checkpoint::Iteration(4),
        &p.join("data/synthetic.zarr/raw"),
        &segno::blockwise::InputOptions::default(),
        tch::Device::Cpu,
    )
    .unwrap()
    .with_lanes(p, &run, 2, 1)
    .unwrap();
    assert_eq!(lanes.lanes(), 2);
    let halves: Vec<segno::geometry::Roi> = {
        let mid = roi.begin()[2] + (roi.shape()[2] / vs[2] / 2) * vs[2];
        vec![
            segno::geometry::Roi::new(
                roi.begin(),
                segno::geometry::Coordinate::from([
                    roi.shape()[0],
                    roi.shape()[1],
                    mid - roi.begin()[2],
                ]),
            )
            .unwrap(),
            segno::geometry::Roi::new(
                segno::geometry::Coordinate::from([roi.begin()[0], roi.begin()[1], mid]),
                segno::geometry::Coordinate::from([
                    roi.shape()[0],
                    roi.shape()[1],
                    roi.end()[2] - mid,
                ]),
            )
            .unwrap(),
        ]
    };
    std::thread::scope(|scope| {
        for half in &halves {
            let lanes = &lanes;
            scope.spawn(move || lanes.read(half).unwrap());
        }
    });
    let side_by_side = lanes.read(&roi).unwrap().to_f32();
    let all = all.to_f32();
    assert_eq!(side_by_side.shape(), all.shape());
    let worst = side_by_side
        .iter()
        .zip(all.iter())
        .fold(0f32, |w, (a, b)| w.max((a - b).abs()));
    assert!(worst <= 1e-6, "largest difference {worst}");
    assert_eq!(lanes.stats().computed, blocks);

    // A checkpoint that does not exist is refused when the layer is opened.
    let e = LivePrediction::open(
        p,
        &run,
        &segno::blockwise::Checkpoint::Iteration(999),
        &p.join("data/synthetic.zarr/raw"),
        &segno::blockwise::InputOptions::default(),
        tch::Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("999"), "{e}");

    // A checkpoint of another network: quick's weights under a run with twice its
    // feature maps.
    let mut wide = run.clone();
    wide.name = "wide".into();
    if let segno::config::ArchitectureConfig::CnnectomeUnet(u) = &mut wide.architecture_config {
        u.num_fmaps *= 2;
    }
    project
        .configs()
        .store(&segno::config::AnyConfig::Run(Box::new(wide.clone())))
        .unwrap();
    let from = segno::store::layout::RunDir::new(p, "quick").checkpoint(4);
    let to = segno::store::layout::RunDir::new(p, "wide").checkpoint(4);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(&from, &to).unwrap();
    let open = |run: &segno::config::RunConfig, raw: &Path| {
        LivePrediction::open(
            p,
            run,
            &segno::blockwise::Checkpoint::Iteration(4),
            raw,
            &segno::blockwise::InputOptions::default(),
            tch::Device::Cpu,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let raw = p.join("data/synthetic.zarr/raw");
    let e = open(&wide, &raw);
    assert!(
        e.contains("wide/checkpoints/iterations/4") && e.contains("does not fit this model"),
        "{e}"
    );
    // Raw data at another voxel size, or with two channels.
    let other = p.join("other.zarr");
    let write = |name: &str, vs: i64, channels: Option<u64>| {
        use segno::array::write::{self, ArraySpec, WriteMode};
        let roi = segno::geometry::Roi::new(
            segno::geometry::Coordinate::from([0, 0, 0]),
            segno::geometry::Coordinate::from([48 * vs, 48 * vs, 48 * vs]),
        )
        .unwrap();
        let spec = ArraySpec::new(
            segno::array::DataType::U8,
            roi,
            segno::geometry::Coordinate::from([vs, vs, vs]),
            channels,
        );
        write::create(&other, name, &spec, WriteMode::CreateNew).unwrap();
        other.join(name)
    };
    let e = open(&run, &write("fine", 4, None));
    assert!(
        e.contains("no scale level at (8, 8, 8) nm") && e.contains("(4, 4, 4) nm"),
        "{e}"
    );
    let e = open(&run, &write("two", 8, Some(2)));
    assert!(
        e.contains("2 channel(s)") && e.contains("trained on 1"),
        "{e}"
    );
    let flat = {
        use segno::array::write::{self, ArraySpec, WriteMode};
        let roi = segno::geometry::Roi::new(
            segno::geometry::Coordinate::from([0, 0]),
            segno::geometry::Coordinate::from([384, 384]),
        )
        .unwrap();
        let spec = ArraySpec::new(
            segno::array::DataType::U8,
            roi,
            segno::geometry::Coordinate::from([8, 8]),
            None,
        );
        write::create(&other, "flat", &spec, WriteMode::CreateNew).unwrap();
        other.join("flat")
    };
    let e = open(&run, &flat);
    assert!(
        e.contains("has 2 spatial axes; the run's raw data") && e.contains("has 3"),
        "{e}"
    );
}

#[test]
fn add_prediction_in_the_viewer_computes_a_checkpoint_over_a_raw_layer() {
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;
    use segno::gui::{Section, SegnoApp, Settings};
    use segno::render::slice::{PixelValue, Plane};
    let (dir, out) = predicted_project();
    let p = dir.path();
    let raw = p.join("data/synthetic.zarr/raw");
    let path = p.to_path_buf();
    let mut h = Harness::builder()
        .with_size(eframe::egui::Vec2::new(1300.0, 900.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)));
    h.run();
    h.get_by_label("Viewer").click();
    h.run();
    assert_eq!(h.state().settings.section, Section::Viewer);
    h.state_mut().viewer.add_layer(&raw);
    h.state_mut().viewer.add_layer(&out.join("pred"));
    h.run_steps(2);
    h.get_by_label("Add prediction…").click();
    h.run_steps(2);
    // The run and its latest checkpoint over the raw layer are chosen by default.
    h.get_by_label("Add prediction").click();
    h.run_steps(2);
    // Wait for the network and the visible blocks.
    let settle = |h: &mut Harness<'static, SegnoApp>| {
        let t0 = Instant::now();
        loop {
            h.run_steps(1);
            let v = &h.state().viewer;
            if v.cache().wait_idle(Duration::from_millis(50)) && !v.loading() {
                h.run_steps(2);
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "still loading");
        }
    };
    settle(&mut h);
    let layer_names = |h: &Harness<'static, SegnoApp>| -> Vec<String> {
        h.state()
            .viewer
            .state
            .layers
            .iter()
            .map(|l| l.name.clone())
            .collect()
    };
    let names = layer_names(&h);
    assert_eq!(names, vec!["raw", "pred", "quick @ 4"]);
    let compare = |h: &Harness<'static, SegnoApp>| -> (usize, usize) {
        let v = &h.state().viewer;
        let (mut same, mut differ) = (0, 0);
        for y in (100..500).step_by(37) {
            for x in (100..700).step_by(41) {
                let (x, y) = (f64::from(x), f64::from(y));
                if let (Some(PixelValue::Float(a)), Some(PixelValue::Float(b))) = (
                    v.pixel_value(Plane::Xy, 1, x, y),
                    v.pixel_value(Plane::Xy, 2, x, y),
                ) {
                    if a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-5) {
                        same += 1;
                    } else {
                        differ += 1;
                    }
                }
            }
        }
        (same, differ)
    };
    let (same, differ) = compare(&h);
    assert!(same > 20 && differ == 0, "{same} equal, {differ} differ");
    let status = h.state().viewer.layer_status(2);
    assert!(status.contains("s/block on cpu"), "{status}");
    // The previous checkpoint: other values.
    h.get_by_label("latest").click();
    h.run_steps(2);
    h.get_by_label("<").click();
    h.run_steps(2);
    settle(&mut h);
    assert_eq!(h.state().viewer.state.layers[2].name, "quick @ 2");
    let (_, differ) = compare(&h);
    assert!(differ > 0, "iteration 2 shows iteration 4's values");
    // Its segmentation, as a layer of its own.
    h.get_by_label("Add segmentation").click();
    h.run_steps(2);
    settle(&mut h);
    let names = layer_names(&h);
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[3].starts_with("quick @ 2 · threshold_"), "{names:?}");
    assert!(matches!(
        h.state().viewer.pixel_value(Plane::Xy, 3, 300.0, 300.0),
        Some(PixelValue::Float(_))
    ));

    // From the Runs section: the run's latest checkpoint over its validation raw data.
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("Predict here").click();
    h.run_steps(2);
    assert_eq!(h.state().settings.section, Section::Viewer);
    settle(&mut h);
    let names = layer_names(&h);
    assert_eq!(
        names.last().map(String::as_str),
        Some("quick @ 4"),
        "{names:?}"
    );
    let model = h
        .state()
        .viewer
        .state
        .layers
        .last()
        .unwrap()
        .model
        .clone()
        .unwrap();
    assert_eq!(model.iteration, None);
    assert!(model.raw.ends_with("data/synthetic.zarr/raw"), "{model:?}");
    assert!(h
        .state()
        .viewer
        .layer_status(names.len() - 1)
        .contains("computed"));
}

#[test]
fn a_model_layer_computes_the_stored_predictions_values_for_what_is_on_screen() {
    use segno::gui::viewer::Viewer;
    use segno::ops::live::LiveSource;
    use segno::render::layer::WorldNm;
    use segno::render::slice::{PixelValue, Plane};
    // Composes the 64-pixel xy panel until nothing is loading.
    let settle = |v: &mut Viewer, plane: Plane| {
        for _ in 0..50 {
            v.compose_panel(plane, [64, 64]);
            assert!(v.cache().wait_idle(Duration::from_secs(60)));
            v.compose_panel(plane, [64, 64]);
            if !v.loading() {
                return;
            }
        }
        panic!("the viewer never finished loading");
    };
    let (dir, out) = predicted_project();
    let p = dir.path();
    let raw = p.join("data/synthetic.zarr/raw");
    let mut v = Viewer::new(64 << 20);
    v.add_layer(&raw);
    v.add_layer(&out.join("pred"));
    let source = |iteration| LiveSource {
        project: p.to_path_buf(),
        run: "quick".into(),
        iteration,
        raw: raw.clone(),
        segmentation: None,
    };
    v.add_model_layer(source(Some(4)));
    // The network opens on a thread of its own; the layer says so meanwhile.
    assert_eq!(v.layer_status(2), "opening the network…");
    assert!(v.loading());
    assert!(v.wait_models(Duration::from_secs(60)));
    assert_eq!(v.state.layers[2].name, "quick @ 4");
    let blocks = v.live_prediction(2).unwrap().grid().len();
    assert!(
        v.layer_status(2)
            .contains(&format!("computed 0 of {blocks} blocks")),
        "{}",
        v.layer_status(2)
    );
    // The panel (64 pixels) spans the predicted region at its centre.
    let d = v.layer_data(1).unwrap().clone();
    let (b, e) = d.levels[0].bounds_nm();
    let vs = d.levels[0].voxel_size_nm;
    v.state.position_nm = WorldNm(std::array::from_fn(|a| {
        ((e[a] + b[a]) / 2.0 / vs[a]).floor() * vs[a] + vs[a] / 2.0
    }));
    v.state.zoom_nm_per_px = (e[1] - b[1]).max(e[2] - b[2]) / 64.0;
    v.state.cross_hairs = false;
    settle(&mut v, Plane::Xy);
    let mut compared = 0;
    for y in (1..64).step_by(5) {
        for x in (1..64).step_by(5) {
            let (x, y) = (f64::from(x), f64::from(y));
            match (
                v.pixel_value(Plane::Xy, 1, x, y),
                v.pixel_value(Plane::Xy, 2, x, y),
            ) {
                (Some(PixelValue::Float(a)), Some(PixelValue::Float(b))) => {
                    assert_eq!(a.len(), b.len());
                    for (a, b) in a.iter().zip(&b) {
                        assert!(
                            (a - b).abs() <= 1e-5,
                            "({x}, {y}): stored {a}, computed {b}"
                        );
                    }
                    compared += 1;
                }
                (a, b) => assert_eq!(a, b, "({x}, {y})"),
            }
        }
    }
    assert!(compared > 100, "{compared} pixels compared");
    // Only the blocks the slice crosses were computed, each once.
    let computed = v.live_prediction(2).unwrap().stats().computed;
    let counts = v.live_prediction(2).unwrap().grid().counts();
    assert!(
        computed >= 1 && computed <= counts[1] * counts[2],
        "{computed} blocks of a {counts:?} grid"
    );
    let status = v.layer_status(2);
    assert!(
        status.contains(&format!("computed {computed} of {blocks} blocks"))
            && status.contains("s/block on cpu"),
        "{status}"
    );

    // A neuroglancer export leaves the computed layer out (it has no array to read).
    let (state, _) = v.neuroglancer("http://127.0.0.1:9000/", p);
    let exported: Vec<&str> = state["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(exported, vec!["raw", "pred"]);

    // Another checkpoint: other values, named after it; going back shows the first one's
    // values again without computing anything.
    let values = |v: &Viewer| -> Vec<f32> {
        (1..64)
            .step_by(5)
            .flat_map(|y| {
                (1..64)
                    .step_by(5)
                    .map(move |x| (f64::from(x), f64::from(y)))
            })
            .filter_map(|(x, y)| match v.pixel_value(Plane::Xy, 2, x, y) {
                Some(PixelValue::Float(c)) => Some(c[0]),
                _ => None,
            })
            .collect()
    };
    let at_4 = values(&v);
    let live_4 = v.live_prediction(2).unwrap().clone();
    v.set_model_iteration(2, Some(2));
    assert!(v.wait_models(Duration::from_secs(60)));
    assert_eq!(v.state.layers[2].name, "quick @ 2");
    assert_eq!(v.live_prediction(2).unwrap().iteration(), 2);
    settle(&mut v, Plane::Xy);
    let at_2 = values(&v);
    assert_eq!(at_2.len(), at_4.len());
    assert!(
        at_2.iter().zip(&at_4).any(|(a, b)| (a - b).abs() > 1e-4),
        "iterations 2 and 4 computed the same values"
    );
    v.set_model_iteration(2, Some(4));
    assert_eq!(v.state.layers[2].name, "quick @ 4");
    assert!(std::sync::Arc::ptr_eq(
        v.live_prediction(2).unwrap(),
        &live_4
    ));
    settle(&mut v, Plane::Xy);
    assert_eq!(values(&v), at_4);
    assert_eq!(live_4.stats().computed, computed);

    // Its segmentation: every block thresholded as the run post-processes, from the same
    // computed blocks (nothing computed again).
    v.add_segmentation_layer(2);
    assert!(v.wait_models(Duration::from_secs(60)));
    let name = v.state.layers[3].name.clone();
    let threshold: f32 = name
        .rsplit_once("threshold_")
        .and_then(|(_, t)| t.parse().ok())
        .unwrap_or_else(|| panic!("{name}"));
    assert!(name.starts_with("quick @ 4 · threshold_"), "{name}");
    settle(&mut v, Plane::Xy);
    let mut checked = 0;
    for y in (1..64).step_by(5) {
        for x in (1..64).step_by(5) {
            let (x, y) = (f64::from(x), f64::from(y));
            if let (Some(PixelValue::Float(p)), Some(PixelValue::Float(s))) = (
                v.pixel_value(Plane::Xy, 1, x, y),
                v.pixel_value(Plane::Xy, 3, x, y),
            ) {
                // Values at the threshold itself could round either way.
                if (p[0] - threshold).abs() > 1e-4 {
                    assert_eq!(
                        s[0],
                        f32::from(u8::from(p[0] > threshold)),
                        "({x}, {y}): {p:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "{checked}");
    assert_eq!(live_4.stats().computed, computed);
    assert!(std::sync::Arc::ptr_eq(
        v.live_prediction(3).unwrap(),
        &live_4
    ));

    // Exported for neuroglancer with the computed blocks written out: both computed layers
    // are in the state, pointing at arrays in the project that hold exactly the blocks the
    // viewer computed; the blocks it did not compute hold 0.
    let (state, _, written) = v
        .neuroglancer_with_computed("http://127.0.0.1:9000/", p)
        .unwrap();
    let layers = state["layers"].as_array().unwrap();
    let exported: Vec<&str> = layers.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(exported, vec!["raw", "pred", "quick @ 4", name.as_str()]);
    assert_eq!(written.len(), 2);
    let computed_keys = live_4.computed_keys();
    assert_eq!(computed_keys.len() as u64, computed);
    for (_, w) in &written {
        assert_eq!(w.blocks_written, computed);
        assert_eq!(w.blocks_total, blocks);
    }
    assert_eq!(
        written[0].1.path,
        p.join("exports/neuroglancer.zarr/quick_4")
    );
    assert_eq!(
        layers[2]["source"].as_str(),
        Some("zarr://http://127.0.0.1:9000/exports/neuroglancer.zarr/quick_4")
    );
    // The thresholded segmentation (channels of 0 and 1) is drawn as a prediction.
    let seg_source = layers[3]["source"].as_str().unwrap();
    assert!(
        seg_source.starts_with(
            "zarr://http://127.0.0.1:9000/exports/neuroglancer.zarr/quick_4_threshold_"
        ),
        "{seg_source}"
    );
    let stored = segno::render::layer::open_layer(&written[0].1.path).unwrap();
    let stored = &stored.levels[0].source;
    let live_info = segno::array::ArraySource::info(live_4.as_ref()).clone();
    assert_eq!(stored.info().roi, live_info.roi);
    assert_eq!(
        stored.info().geometry.voxel_size,
        live_info.geometry.voxel_size
    );
    let grid = live_4.grid();
    let k = computed_keys[0];
    let roi = grid.block(k).intersect(&live_info.roi);
    assert_eq!(
        stored.read(&roi).unwrap(),
        segno::array::ArraySource::read(live_4.as_ref(), &roi).unwrap()
    );
    if let Some(other) = (0..grid.len()).find(|k| !computed_keys.contains(k)) {
        let roi = grid.block(other).intersect(&live_info.roi);
        assert!(stored
            .read(&roi)
            .unwrap()
            .to_f32()
            .iter()
            .all(|v| *v == 0.0));
        assert_eq!(
            live_4.stats().computed,
            computed,
            "nothing was computed to export"
        );
    }
    // Written again (after more blocks were computed, say), the arrays are replaced.
    let (_, _, again) = v
        .neuroglancer_with_computed("http://127.0.0.1:9000/", p)
        .unwrap();
    assert_eq!(again[0].1, written[0].1);

    // A checkpoint that does not exist: the layer says so, the viewer goes on.
    v.add_model_layer(source(Some(999)));
    assert!(v.wait_models(Duration::from_secs(60)));
    let status = v.layer_status(4);
    assert!(
        status.starts_with("error:") && status.contains("999"),
        "{status}"
    );
    settle(&mut v, Plane::Xy);
    assert!(matches!(
        v.pixel_value(Plane::Xy, 2, 30.0, 30.0),
        Some(PixelValue::Float(_))
    ));
}

#[test]
fn bench_live_reports_its_figures_as_json_alone() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let (code, v, err) = segno(&[
        "bench",
        "live",
        "--dir",
        s(&project),
        "--size",
        "64",
        "--iterations",
        "2",
        "--panel",
        "96x96",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["device"], "cpu");
    let computed = v["blocks_computed"].as_u64().unwrap();
    assert!(
        computed >= 1 && computed <= v["blocks_total"].as_u64().unwrap(),
        "{v}"
    );
    let (open, first, full) = (
        v["open_ms"].as_f64().unwrap(),
        v["first_block_ms"].as_f64().unwrap(),
        v["full_panel_ms"].as_f64().unwrap(),
    );
    assert!(open <= first && first <= full, "{v}");
    assert!(v["ratio"].as_f64().unwrap() > 0.0, "{v}");
    let jumped = |k: &str| v[k].as_u64().unwrap();
    assert!(jumped("jumps_blocks_shown_at_end") >= 1, "{v}");
    assert!(
        jumped("jumps_blocks_computed") <= v["blocks_total"].as_u64().unwrap(),
        "{v}"
    );
    // What it prepared went to stderr.
    assert!(err.contains("preparing the demo project"), "{err}");
}

/// `segno bench viewer` on a 128³ volume kept in `volume`, one jump, with `more` options.
fn bench_viewer(volume: &Path, more: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "bench",
        "viewer",
        "--dir",
        s(volume),
        "--size",
        "128",
        "--jumps",
        "1",
    ];
    args.extend_from_slice(more);
    segno(&args)
}

#[test]
fn bench_viewer_pans_again_with_a_model_layer_computing() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    let demo = dir.path().join("demo");
    let (code, v, err) = bench_viewer(
        &volume,
        &[
            "--image",
            "160x100",
            "--frames",
            "6",
            "--model",
            s(&demo),
            "--model-iterations",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let m = &v["model"];
    assert_eq!(m["layer"], "demo_mito_er_2 @ 2", "{v}");
    assert_eq!(m["device"], "cpu");
    let ms: Vec<f64> = (0..3).map(|i| m["frame_ms"][i].as_f64().unwrap()).collect();
    assert!(ms[0] > 0.0 && ms[0] <= ms[1] && ms[1] <= ms[2], "{m}");
    let without = v["frame_ms"][0].as_f64().unwrap();
    let ratio = m["frame_ratio"].as_f64().unwrap();
    assert!((ratio - ms[0] / without).abs() < 1e-9, "{v}");
    assert!(m["frames_computing"].as_u64().unwrap() <= 6, "{m}");
    // An unchanged frame's GPU time by step.
    let u = &v["unchanged_frame"];
    for k in [
        "upload_ms",
        "draw_ms",
        "readback_ms",
        "recolour_ms",
        "draw_one_layer_ms",
        "draw_no_layer_ms",
        "clear_only_ms",
    ] {
        let ms = u[k].as_f64().unwrap_or(-1.0);
        assert!(ms >= 0.0 && ms.is_finite(), "{k}: {u}");
    }
    // Preparing the volume and the project went to stderr; stdout held only the JSON.
    assert!(
        err.contains("preparing the model layer's demo project"),
        "{err}"
    );
}

#[test]
fn bench_viewer_matrix_runs_every_layout_layer_count_and_image_size() {
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    let (code, v, err) = bench_viewer(&volume, &["--frames", "3", "--matrix"]);
    assert_eq!(code, 0, "{err}");
    let runs = v["runs"].as_array().unwrap();
    let seen: Vec<(String, u64, u64, u64, f64)> = runs
        .iter()
        .map(|r| {
            (
                r["layout"].as_str().unwrap().to_string(),
                r["layers"].as_u64().unwrap(),
                r["image"][0].as_u64().unwrap(),
                r["image"][1].as_u64().unwrap(),
                r["pixels_per_point"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for (w, h, ppp) in [(1280, 800, 1.0), (3840, 2160, 1.0), (3840, 2160, 2.0)] {
        for layout in ["xy", "4panel"] {
            for layers in [1, 3] {
                expected.push((layout.to_string(), layers, w, h, ppp));
            }
        }
    }
    assert_eq!(seen, expected);
    for r in runs {
        // The CPU time per frame by thread group adds up, the main thread's above 0.
        let t = &r["cpu_threads_ms"];
        let group = |k: &str| t[k].as_f64().unwrap();
        assert!(group("main_ms") > 0.0, "{t}");
        for k in ["readers_ms", "other_ms", "driver_ms", "readback_ms"] {
            assert!(group(k) >= 0.0, "{k}: {t}");
        }
        let ms: Vec<f64> = (0..3).map(|i| r["frame_ms"][i].as_f64().unwrap()).collect();
        let p95 = r["frame_p95_ms"].as_f64().unwrap();
        assert!(ms[1] <= p95 && p95 <= ms[2], "{r}");
        assert!((r["p95_fps"].as_f64().unwrap() - 1e3 / p95).abs() < 1e-9);
        assert!(r["cpu_ms"].as_f64().unwrap() > 0.0, "{r}");
        // The 3D panel is drawn in 4panel only: its first image, and its planes once the
        // view settled.
        let four = r["layout"] == "4panel";
        for key in ["three_d_first_ms", "three_d_settled_ms"] {
            assert_eq!(r[key].as_f64().unwrap() > 0.0, four, "{key}: {r}");
        }
        // The same frames composed on the CPU, side by side, and the ratio of medians.
        let composed = r["composed"]["frame_ms"][0].as_f64().unwrap();
        let speedup = r["speedup"].as_f64().unwrap();
        assert!((speedup - composed / ms[0]).abs() < 1e-9, "{r}");
        assert!(
            r["composed"]["jump_ms"].as_array().unwrap().len() == 1,
            "{r}"
        );
        // A jump's slices are complete no later than everything it reads has settled; a
        // jump to a place already read is timed to its complete frame too.
        for f in [r, &r["composed"]] {
            let complete = f["jump_ms"][0].as_f64().unwrap();
            let settled = f["jump_settled_ms"][0].as_f64().unwrap();
            assert!(complete > 0.0 && complete <= settled, "{f}");
            let cached = f["jump_cached_ms"].as_array().unwrap();
            assert_eq!(cached.len(), 1, "{f}");
            assert!(cached[0].as_f64().unwrap() > 0.0, "{f}");
        }
        // The GPU time split into uploads and drawing, each within it.
        for f in [r, &r["composed"]] {
            let (gpu, up, draw) = (
                f["gpu_ms"].as_f64().unwrap(),
                f["gpu_upload_ms"].as_f64().unwrap(),
                f["gpu_draw_ms"].as_f64().unwrap(),
            );
            assert!(up >= 0.0 && draw > 0.0 && up.min(draw) <= gpu, "{f}");
        }
        // Gathered frames drew from chunks in GPU memory, within its budget.
        let store = &r["gpu_store"];
        assert!(store["chunks"].as_u64().unwrap() > 0, "{r}");
        assert!(store["bytes"].as_u64().unwrap() <= store["budget_bytes"].as_u64().unwrap());
        // Pixels per frame count the layers drawn: xy draws one panel.
        if r["layout"] == "xy" {
            let px = r["image"][0].as_u64().unwrap()
                * r["image"][1].as_u64().unwrap()
                * r["layers"].as_u64().unwrap();
            assert_eq!(r["pixels_per_frame"].as_u64().unwrap(), px);
        }
    }
    // Each larger screen against 1280x800's run of its layout and layers.
    let ratios = v["cpu_ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), 8, "{ratios:?}");
    for c in ratios {
        let ms = |k: &str, i: usize| c[k][i].as_f64().unwrap();
        let base = runs
            .iter()
            .find(|r| {
                r["image"][0] == 1280 && r["layout"] == c["layout"] && r["layers"] == c["layers"]
            })
            .unwrap();
        let t = &base["cpu_threads_ms"];
        let app = ["main_ms", "readers_ms", "other_ms"]
            .iter()
            .map(|k| t[*k].as_f64().unwrap())
            .sum::<f64>();
        assert!((ms("app_ms", 1) - app).abs() < 1e-9, "{c}");
        assert!((c["app_ratio"].as_f64().unwrap() - ms("app_ms", 0) / app).abs() < 1e-9);
        assert!(ms("all_ms", 0) >= ms("app_ms", 0), "{c}");
    }
    // Every chunk a run reads was written once: the 128³ volume has 8 chunks of 64³ per
    // array at its finest level and 1 at its second, written as the runs came to need them.
    let written: usize = err
        .lines()
        .filter_map(|l| l.strip_prefix("writing "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(written, 9, "{err}");
    let (code, _, err) = bench_viewer(&volume, &["--frames", "1", "--layout", "4panel"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("writing "), "{err}");
    // --matrix with --model is refused by name.
    let (code, _, err) = segno(&["bench", "viewer", "--matrix", "--model", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--model"), "{err}");
}
