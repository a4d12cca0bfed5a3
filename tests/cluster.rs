//! Runs submitted to a real Slurm (the single-node cluster `scripts/slurm-local.sh`
//! starts): from the Runs panel to a finished run, and a cancelled job that stops its
//! trainer. Without Slurm these tests are skipped, unless SEGNO_TEST_SLURM=required (as in
//! CI), where a missing Slurm fails them. LSF is exercised through stand-in `bsub`, `bjobs`
//! and `bkill` scripts that check the arguments Segno passes and answer as LSF does.

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use segno::cluster::{self, JobRequest, JobState, Scheduler};
use segno::gui::{SegnoApp, Settings};
use segno::store::lock::{run_state, RunState};

mod common;

fn slurm() -> bool {
    common::slurm_available()
}

fn project_with_run(iterations: u64, interval: u64) -> (tempfile::TempDir, String) {
    let dir = common::demo_data_project(64);
    let run = segno::demo::project::demo_run(iterations, interval);
    let name = run.name.clone();
    segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .store(&segno::config::AnyConfig::Run(Box::new(run)))
        .unwrap();
    (dir, name)
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed().as_secs() < secs,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_run_submitted_to_slurm_from_the_runs_panel_trains_to_the_end() {
    if !slurm() {
        return;
    }
    let (dir, run) = project_with_run(20, 20);
    let path = dir.path().to_path_buf();
    let mut h = Harness::builder()
        .with_size(eframe::egui::Vec2::new(1200.0, 900.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)));
    h.state_mut().runs.launcher.segno_exe = assert_cmd::cargo::cargo_bin("segno");
    h.state_mut().runs.launcher.device = "cpu".into();
    h.run();
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("run trainers on").click();
    h.run();
    h.get_by_label("Slurm").click();
    h.run();
    h.get_by_label("partition")
        .set_text_value_accesskit("debug");
    h.get_by_label("CPUs").set_value_accesskit(1.0);
    h.run_steps(2);
    let request = match &h.state().runs.launcher.target {
        segno::gui::launcher::Target::Cluster(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        request,
        JobRequest {
            scheduler: Scheduler::Slurm,
            queue: "debug".into(),
            gpus: 0,
            cpus: 1,
            account: String::new(),
        }
    );
    h.get_by_label("Start").click();
    h.run_steps(2);
    let job = cluster::recorded_job(&dir.path().join(&run))
        .unwrap()
        .expect("the job is recorded");
    assert_eq!(job.scheduler, Scheduler::Slurm);
    // The scheduler's view of the job is shown while it is queued or running.
    let label = |h: &mut Harness<'static, SegnoApp>| {
        h.run_steps(1);
        h.state()
            .runs
            .launcher
            .runs
            .get(&run)
            .map(|m| m.status())
            .unwrap_or_default()
    };
    let mut seen = Vec::new();
    wait_for("the job to finish", 240, || {
        let l = label(&mut h);
        if seen.last() != Some(&l) {
            seen.push(l.clone());
        }
        l == "finished"
    });
    assert!(
        seen.iter()
            .any(|l| l.ends_with(&format!("(Slurm job {})", job.job_id))),
        "{seen:?}"
    );
    assert_eq!(run_state(&dir.path().join(&run), 20), RunState::Finished);
    let log = std::fs::read_to_string(dir.path().join(&run).join("train.log")).unwrap();
    assert!(log.contains("trained to iteration 20"), "{log}");
    let state = cluster::status(&job).unwrap();
    assert!(
        matches!(state, JobState::Completed | JobState::Gone),
        "{state:?}"
    );
}

#[test]
fn a_cancelled_slurm_job_stops_its_trainer() {
    if !slurm() {
        return;
    }
    let (dir, run) = project_with_run(5000, 1000);
    let request = JobRequest {
        scheduler: Scheduler::Slurm,
        queue: "debug".into(),
        gpus: 0,
        cpus: 1,
        account: "lab".into(),
    };
    let exe = assert_cmd::cargo::cargo_bin("segno");
    let job = cluster::submit(
        &request,
        dir.path(),
        &run,
        &exe,
        &["--device".into(), "cpu".into()],
    )
    .unwrap();
    let run_dir = dir.path().join(&run);
    wait_for("the trainer to start", 120, || {
        matches!(run_state(&run_dir, 5000), RunState::Training { .. })
    });
    assert_eq!(cluster::status(&job).unwrap(), JobState::Running);
    cluster::cancel(&job).unwrap();
    wait_for("the job to end", 120, || {
        !cluster::status(&job).unwrap().active()
            && !matches!(run_state(&run_dir, 5000), RunState::Training { .. })
    });
    assert!(matches!(
        cluster::status(&job).unwrap(),
        JobState::Cancelled | JobState::Gone
    ));
    assert_ne!(run_state(&run_dir, 5000), RunState::Finished);
    // A partition that does not exist is refused with the scheduler's message.
    let bad = JobRequest {
        queue: "no_such_partition".into(),
        ..request
    };
    let e = cluster::submit(
        &bad,
        dir.path(),
        &run,
        &exe,
        &["--device".into(), "cpu".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("invalid partition"), "{e}");
}

/// LSF's commands as shell scripts that record their arguments (LSF itself cannot be
/// installed here): `bsub` answers as LSF does, `bjobs` reports the state in a file,
/// `bkill` marks the job ended.
fn fake_lsf(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let state = dir.join("state");
    std::fs::write(&state, "PEND\n").unwrap();
    for (name, body) in [
        (
            "bsub",
            "printf '%s\\n' \"$@\" > \"$D/calls\"; echo 'Job <77> is submitted to queue <short>.'",
        ),
        ("bjobs", "echo \"$*\" >> \"$D/bjobs.log\"; cat \"$D/state\""),
        (
            "bkill",
            "echo \"$*\" > \"$D/bkill.log\"; echo EXIT > \"$D/state\"",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\nD='{}'\n{body}\n", dir.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn lsf_jobs_are_submitted_followed_and_killed_with_lsfs_commands() {
    let bin = tempfile::tempdir().unwrap();
    fake_lsf(bin.path());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.path().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    std::env::set_var("PATH", std::env::join_paths(dirs).unwrap());
    assert!(cluster::available(Scheduler::Lsf));

    let (dir, run) = project_with_run(20, 20);
    let request = JobRequest {
        scheduler: Scheduler::Lsf,
        queue: "short".into(),
        gpus: 1,
        cpus: 3,
        account: "cellmap".into(),
    };
    let exe = std::path::PathBuf::from("/opt/segno/bin/segno");
    let job = cluster::submit(
        &request,
        dir.path(),
        &run,
        &exe,
        &["--device".into(), "cuda".into()],
    )
    .unwrap();
    assert_eq!(job.job_id, "77");
    assert_eq!(
        cluster::recorded_job(&dir.path().join(&run)).unwrap(),
        Some(job.clone())
    );
    let calls = std::fs::read_to_string(bin.path().join("calls")).unwrap();
    let args: Vec<&str> = calls.lines().collect();
    let project = std::path::absolute(dir.path()).unwrap();
    let log = project.join(&run).join("train.log").display().to_string();
    let project = project.display().to_string();
    assert_eq!(
        args,
        [
            "-J",
            &format!("segno-train-{run}"),
            "-q",
            "short",
            "-n",
            "3",
            "-gpu",
            "num=1",
            "-P",
            "cellmap",
            "-o",
            &log,
            "-e",
            &log,
            "/opt/segno/bin/segno",
            "train",
            "-r",
            &run,
            "--device",
            "cuda",
            "-p",
            &project,
        ]
    );
    assert_eq!(cluster::status(&job).unwrap(), JobState::Pending);
    std::fs::write(bin.path().join("state"), "RUN\n").unwrap();
    assert_eq!(cluster::status(&job).unwrap(), JobState::Running);
    let bjobs = std::fs::read_to_string(bin.path().join("bjobs.log")).unwrap();
    assert_eq!(bjobs.lines().last(), Some("-noheader -o stat 77"));
    cluster::cancel(&job).unwrap();
    assert_eq!(
        std::fs::read_to_string(bin.path().join("bkill.log"))
            .unwrap()
            .trim(),
        "77"
    );
    assert_eq!(
        cluster::status(&job).unwrap(),
        JobState::Failed("exit".into())
    );
}
