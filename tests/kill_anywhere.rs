//! Kill anywhere, many times: `segno train` and `segno predict` are killed with SIGKILL at
//! random moments, resumed each time, and must end exactly where an uninterrupted run
//! ends: the same losses, checkpoint bytes and validation scores, the same prediction.
//!
//! `SEGNO_KILLS` sets how many kills each part makes (default 20; `scripts/kill-anywhere.sh`
//! runs more), `SEGNO_KILL_SEED` the seed of the moments (printed, so a failure repeats).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use segno::config::AnyConfig;
use segno::store::layout::RunDir;
use segno::store::Project;

fn kills() -> usize {
    std::env::var("SEGNO_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

fn rng() -> rand_chacha::ChaCha8Rng {
    let seed = std::env::var("SEGNO_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261205u64);
    eprintln!("SEGNO_KILL_SEED={seed}");
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

fn segno(args: &[&str], project: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("segno"));
    c.args(args).arg("-p").arg(project).arg("--json");
    c.env("OMP_NUM_THREADS", "1");
    c.stdout(std::process::Stdio::piped());
    c.stderr(std::process::Stdio::piped());
    c
}

/// Runs `command` to the end; returns its duration, exit code and stderr.
fn run(mut command: Command) -> (Duration, i32, String) {
    let t = Instant::now();
    let out = command.output().unwrap();
    (
        t.elapsed(),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `make()`'s command again and again, killing each start with SIGKILL at a random
/// moment within `span`, until one finishes by itself; returns how many were killed.
fn kill_until_done(span: Duration, rng: &mut impl Rng, make: impl Fn() -> Command) -> usize {
    let mut killed = 0;
    loop {
        let at = Duration::from_secs_f64(rng.gen_range(0.0..span.as_secs_f64()));
        let mut child = make().spawn().unwrap();
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return killed;
            }
            if started.elapsed() >= at {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(killed < 1000, "no progress after {killed} kills");
    }
}

fn project(dir: &Path) {
    segno::demo::generate(
        dir,
        &segno::demo::DemoOptions {
            seed: 1,
            size: 64,
            overwrite: false,
        },
    )
    .unwrap();
    let run = common::tiny_run("killed", 8, 2, 0.05, common::demo_raw(0.0, 255.0));
    Project::open(dir)
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run)))
        .unwrap();
}

#[test]
fn train_and_predict_killed_at_random_moments_end_as_uninterrupted_runs() {
    let a = tempfile::tempdir().unwrap();
    project(a.path());
    let mut rng = rng();
    let train = ["train", "-r", "killed", "--device", "cpu"];

    // Uninterrupted.
    let (reference, code, err) = run(segno(&train, a.path()));
    assert_eq!(code, 0, "{err}");
    let losses = |p: &Path| -> Vec<(u64, u64)> {
        segno::store::stats::read_training_stats(&RunDir::new(p, "killed").training_stats())
            .unwrap()
            .iter()
            .map(|s| (s.iteration, s.loss.to_bits()))
            .collect()
    };
    let scores = |p: &Path| {
        let s = segno::store::scores::read_stored_scores(&RunDir::new(p, "killed"))
            .unwrap()
            .unwrap();
        s.iterations()
            .map(|i| {
                let bits: Vec<u64> = s
                    .block(i)
                    .unwrap()
                    .iter()
                    .flatten()
                    .flatten()
                    .map(|x| x.to_bits())
                    .collect();
                (i, bits)
            })
            .collect::<Vec<_>>()
    };
    let ra = a.path().join("killed");
    let checkpoints = RunDir::from_dir(&ra).checkpoint_iterations();
    assert_eq!(checkpoints, vec![2, 4, 6, 8]);
    let sa = scores(a.path());
    assert_eq!(sa.iter().map(|s| s.0).collect::<Vec<_>>(), checkpoints);

    // Rounds on fresh copies: each killed again and again at random moments across the
    // run's duration until a start finishes by itself, then compared bit for bit with the
    // uninterrupted run (losses, checkpoint bytes, validation scores and arrays).
    let n = kills();
    let (mut killed, mut rounds) = (0, 0);
    while killed < n {
        let b = tempfile::tempdir().unwrap();
        project(b.path());
        killed += kill_until_done(reference.mul_f64(1.1), &mut rng, || segno(&train, b.path()));
        rounds += 1;
        let rb = b.path().join("killed");
        assert_eq!(losses(b.path()).len(), 8);
        assert_eq!(losses(a.path()), losses(b.path()), "round {rounds}");
        assert_eq!(RunDir::from_dir(&rb).checkpoint_iterations(), checkpoints);
        for i in &checkpoints {
            let path = |r: &Path| RunDir::from_dir(r).checkpoint(*i);
            assert!(
                std::fs::read(path(&ra)).unwrap() == std::fs::read(path(&rb)).unwrap(),
                "round {rounds}: checkpoint {i} differs"
            );
        }
        assert_eq!(scores(b.path()), sa, "round {rounds}");
        assert_eq!(
            RunDir::from_dir(&rb).validated_iterations(),
            checkpoints,
            "round {rounds}: every validation is complete"
        );
    }
    eprintln!("train: {killed} kills in {rounds} rounds (uninterrupted run {reference:?})");

    // Predict: the same, killed mid-job.
    let predict = |p: &Path| {
        let raw = p.join("data/synthetic.zarr/raw");
        let out = p.join("out.zarr");
        segno(
            &[
                "predict",
                "-r",
                "killed",
                "--device",
                "cpu",
                "--input",
                raw.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "--dataset",
                "prediction",
                "--max-block-input",
                "30000",
            ],
            p,
        )
    };
    let (reference, code, err) = run(predict(a.path()));
    assert_eq!(code, 0, "{err}");
    let values = |p: &Path| -> Vec<u32> {
        let arr = segno::array::open(&p.join("out.zarr/prediction")).unwrap();
        let roi = arr.info().roi;
        arr.read(&roi)
            .unwrap()
            .to_f32()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    let expected = values(a.path());
    let (mut killed, mut rounds) = (0, 0);
    while killed < n / 2 {
        // The trained run of the first project, predicted again into a fresh output.
        let _ = std::fs::remove_dir_all(a.path().join("out.zarr"));
        killed += kill_until_done(reference.mul_f64(1.1), &mut rng, || predict(a.path()));
        rounds += 1;
        assert_eq!(values(a.path()), expected, "round {rounds}");
    }
    eprintln!("predict: {killed} kills in {rounds} rounds (uninterrupted run {reference:?})");
}
