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
    let dir = trained_project();
    let p = dir.path();
    let out = p.join("out.zarr");
    let (code, _, err) = segno(&predict_args(p, &out, "pred"));
    assert_eq!(code, 0, "{err}");
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
    let apply = |out: &Path, extra: &[&str]| {
        let mut args = vec![
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
            s_static(p.join("data/synthetic.zarr/raw")),
            "--output",
            s_static(out.to_path_buf()),
            "--max-block-input",
            "30000",
            "-p",
            s(p),
        ];
        args.extend(extra);
        segno(&args)
    };
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
    let logs = std::fs::read_dir(c_pred.join(".segno-job/logs"))
        .map(|d| {
            d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
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
