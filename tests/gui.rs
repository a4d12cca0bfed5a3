//! The app shell driven through its accessibility labels (egui_kittest, no display): the
//! navigation switches sections, a project's configs, datasplits and runs are listed, a
//! config's YAML is shown, a bad project path is reported without losing the open one.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use segno::config::AnyConfig;
use segno::gui::{Section, SegnoApp, Settings};

/// A project with the 64³ demo data and a trained-for-nothing demo run config.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    segno::demo::generate(
        dir.path(),
        &segno::demo::DemoOptions {
            seed: 1,
            size: 64,
            overwrite: false,
        },
    )
    .unwrap();
    let run = segno::demo::project::demo_run(20, 10);
    segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .store(&AnyConfig::Run(Box::new(run)))
        .unwrap();
    dir
}

fn harness(dir: &std::path::Path) -> Harness<'static, SegnoApp> {
    let path = dir.to_path_buf();
    Harness::builder()
        .with_size(egui::Vec2::new(1100.0, 700.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)))
}

use eframe::egui;

#[test]
fn the_navigation_shows_configs_datasplits_and_runs_of_the_project() {
    let dir = project();
    let mut h = harness(dir.path());
    h.run();
    assert_eq!(h.state().settings.section, Section::Project);
    assert_eq!(h.state().settings.recent, vec![dir.path().to_path_buf()]);
    // Runs: the demo run with its task and no checkpoint yet.
    h.get_by_label("Runs").click();
    h.run();
    assert_eq!(h.state().settings.section, Section::Runs);
    h.get_by_label("demo_mito_er_20");
    h.get_by_label("DistanceTaskConfig");
    h.get_by_label("not started");
    // DataSplit: the run's datasplit with its crops.
    h.get_by_label("DataSplit").click();
    h.run();
    h.get_by_label("train: synthetic_crop1");
    h.get_by_label("validate: synthetic_crop2");
    // Configs: the run is listed; selecting it shows its YAML.
    h.get_by_label("Configs").click();
    h.run();
    h.get_by_label("demo_mito_er_20").click();
    h.run();
    let yaml = h.get_by_role(egui::accesskit::Role::MultilineTextInput);
    let text = yaml.value().unwrap_or_default();
    assert!(text.contains("name: demo_mito_er_20"), "{text}");
    assert!(text.contains("__type__: DistanceTaskConfig"), "{text}");
}

#[test]
fn a_bad_project_path_is_reported_and_the_open_project_kept() {
    let dir = project();
    let mut h = harness(dir.path());
    h.run();
    // A file is not a project directory.
    let file = dir.path().join("data/synthetic.csv");
    h.state_mut().open(&file);
    h.run();
    let message = h.state().message.clone().unwrap_or_default();
    assert!(message.contains("synthetic.csv"), "{message}");
    assert_eq!(
        h.state().project.as_ref().map(|p| p.root.clone()),
        Some(dir.path().to_path_buf())
    );
    h.get_by_label_contains("synthetic.csv");
    // The theme toggle flips the visuals.
    assert!(h.state().settings.dark);
    h.get_by_label("Light theme").click();
    h.run();
    assert!(!h.state().settings.dark);
}
