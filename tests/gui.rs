//! The app shell driven through its accessibility labels (egui_kittest, no display): the
//! navigation switches sections, a project's configs, datasplits and runs are listed, a
//! config's YAML is shown, a bad project path is reported without losing the open one.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use segno::config::AnyConfig;
use segno::gui::{Section, SegnoApp, Settings};
use segno::store::layout::RunDir;

mod common;

/// A project with the 64³ demo data and a trained-for-nothing demo run config.
fn project() -> tempfile::TempDir {
    let dir = common::demo_data_project(64);
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

/// Runs frames until the viewer has drawn everything visible.
fn settle_app(h: &mut Harness<'static, SegnoApp>) {
    for _ in 0..300 {
        h.run_steps(1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        if !h.state().viewer.loading() {
            h.run_steps(2);
            if !h.state().viewer.loading() {
                return;
            }
        }
    }
    panic!("the visible chunks did not load");
}

/// A wgpu harness of the app on `dir`'s project.
fn wgpu_harness(dir: &std::path::Path) -> Harness<'static, SegnoApp> {
    let path = dir.to_path_buf();
    Harness::builder()
        .with_size(egui::Vec2::new(900.0, 600.0))
        .wgpu()
        .build_eframe(move |cc| SegnoApp::from_creation(cc, Some(&path)))
}

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

/// The viewer in the app, drawn by wgpu on the software adapter: the xy panel's pixels
/// are what the CPU reference shading computes, with the labels in neuroglancer's colours.
#[test]
fn the_viewer_draws_raw_and_labels_with_wgpu() {
    use segno::render::colors::segment_color;
    use segno::render::slice::Plane;
    use segno::render::state::Layout;
    let dir = project();
    let data = dir.path().join("data/synthetic.zarr");
    let mut h = wgpu_harness(dir.path());
    assert!(
        h.state().viewer.uses_gpu(),
        "the wgpu pipeline is installed"
    );
    assert!(
        h.state().viewer.gathers_on_gpu(),
        "slices are gathered from chunks in GPU memory"
    );
    h.state_mut().settings.section = Section::Viewer;
    h.state_mut().viewer.add_layer(&data.join("raw"));
    h.state_mut()
        .viewer
        .add_layer(&data.join("labels/crop1/cells"));
    h.state_mut().viewer.state.layout = Layout::Xy;
    // Centre on the labelled crop.
    let crop = segno::array::open(&data.join("labels/crop1/cells")).unwrap();
    let centre = crop.info().roi.center();
    let centre2 = centre;
    h.state_mut().viewer.state.position_nm =
        segno::render::layer::WorldNm(std::array::from_fn(|a| centre.as_slice()[a] as f64 + 0.5));
    h.state_mut().viewer.state.zoom_nm_per_px = 1.5;
    h.state_mut().viewer.state.cross_hairs = false;
    settle_app(&mut h);
    let image = h.render().unwrap();
    if let Ok(p) = std::env::var("SEGNO_SAVE_RENDER") {
        image.save(p).unwrap();
    }
    let viewer = &h.state().viewer;
    let centre = centre2;
    // The panel was drawn from chunks held in GPU memory.
    let gpu = viewer.gpu_store_stats();
    assert!(
        gpu.chunks > 0 && gpu.bytes > 0 && gpu.bytes <= gpu.budget_bytes,
        "{gpu:?}"
    );
    // The statistics count them per layer.
    let rows = viewer.chunk_statistics();
    assert!(rows.iter().all(|r| r.on_gpu > 0), "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.on_gpu).sum::<usize>(), gpu.chunks);
    assert_eq!(rows.iter().map(|r| r.on_gpu_bytes).sum::<u64>(), gpu.bytes);
    let rect = viewer.panel_rects[&Plane::Xy];
    let (u, t) = viewer.panel_upload(Plane::Xy).unwrap();
    let mut checked = 0;
    let mut label_pixels = 0;
    for py in (0..t.height).step_by(7) {
        for px in (0..t.width).step_by(7) {
            // Skip the panel's name (top left) and the scale bar (bottom right).
            let text = (px < 40 && py < 24) || (px + 130 > t.width && py + 30 > t.height);
            if text {
                continue;
            }
            let expected = segno::render::shade::shade(&u, &t, px, py);
            let got = image
                .get_pixel(
                    rect.min.x.round() as u32 + px,
                    rect.min.y.round() as u32 + py,
                )
                .0;
            let diff = (0..3)
                .map(|k| (i32::from(got[k]) - i32::from(expected[k])).abs())
                .max()
                .unwrap();
            assert!(
                diff <= 2,
                "pixel ({px}, {py}): {got:?} vs {expected:?}; panel {rect:?}, origin {:?}, {}×{}",
                u.origin_size,
                t.width,
                t.height
            );
            checked += 1;
            // Where the cell labels show an object, its colour is neuroglancer's for that
            // id at α 0.5 over the raw grey.
            let values = viewer.values_at(Plane::Xy, f64::from(px), f64::from(py));
            let id: u64 = values[1].1.parse().unwrap_or(0);
            if id != 0 {
                let grey: f64 = values[0].1.parse().unwrap();
                let c = segment_color(0, id);
                for k in 0..3 {
                    let e = (grey * 0.5 + f64::from(c[k]) * 0.5).round();
                    assert!(
                        (f64::from(got[k]) - e).abs() <= 2.0,
                        "{got:?} at ({px}, {py})"
                    );
                }
                label_pixels += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    assert!(
        label_pixels > 10,
        "{label_pixels} label pixels; centre {centre:?}, status {}, values at the centre {:?}",
        viewer.layer_status(1),
        viewer.values_at(Plane::Xy, f64::from(t.width / 2), f64::from(t.height / 2))
    );
    // The side panel's chunk statistics show both memories.
    h.get_by_label("Chunk statistics").click();
    h.run();
    assert_eq!(h.query_all_by_label_contains("GPU memory: ").count(), 1);
    assert_eq!(h.query_all_by_label_contains("CPU cache: ").count(), 1);
}

/// A run's latest validation arrays open in the viewer from the Runs panel with the
/// validation dataset's raw data and ground truth; the iteration slider and the parameter
/// choice swap the prediction and output, and the threshold preview applies to the
/// prediction.
#[test]
fn the_runs_panel_opens_a_runs_validation_prediction_in_the_viewer() {
    use segno::array::write::{self, ArraySpec, WriteMode};
    use segno::render::state::LayerSettings;
    let dir = project();
    // What validation writes at iteration 10 (and an older iteration 5).
    let container = dir.path().join("demo_mito_er_20/validation.zarr");
    let roi = segno::geometry::Roi::new(
        segno::geometry::Coordinate::from([0, 0, 0]),
        segno::geometry::Coordinate::from([64, 64, 64]),
    )
    .unwrap();
    let vs = segno::geometry::Coordinate::from([8, 8, 8]);
    for it in [5, 10] {
        let spec = ArraySpec::new(segno::array::DataType::F32, roi, vs, Some(2));
        let path = format!("{it}/synthetic_crop2/prediction");
        write::create(&container, &path, &spec, WriteMode::CreateNew).unwrap();
        for p in ["threshold_0.1", "threshold_0.5"] {
            let spec = ArraySpec::new(segno::array::DataType::U8, roi, vs, Some(2));
            let path = format!("{it}/synthetic_crop2/output/{p}");
            write::create(&container, &path, &spec, WriteMode::CreateNew).unwrap();
        }
    }
    let mut h = harness(dir.path());
    h.run();
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("View").click();
    h.run_steps(8);
    assert_eq!(h.state().settings.section, Section::Viewer);
    let layers = |h: &Harness<'static, SegnoApp>| -> Vec<String> {
        h.state()
            .viewer
            .state
            .layers
            .iter()
            .map(|l| l.source.display().to_string())
            .collect()
    };
    let shown = layers(&h);
    assert_eq!(shown.len(), 4, "{shown:?}");
    // The raw scale level of the datasplit opens as its multiscale group.
    assert!(shown[0].ends_with("data/synthetic.zarr/raw"), "{shown:?}");
    assert!(
        shown[1].ends_with("data/synthetic.zarr/labels/crop2/er"),
        "{shown:?}"
    );
    assert!(
        shown[2].ends_with("validation.zarr/10/synthetic_crop2/prediction"),
        "{shown:?}"
    );
    assert!(
        shown[3].ends_with("validation.zarr/10/synthetic_crop2/output/threshold_0.1"),
        "{shown:?}"
    );
    // Two channels: drawn as a prediction, centred on it.
    assert!(matches!(
        h.state().viewer.state.layers[2].settings,
        LayerSettings::Prediction(_)
    ));
    assert_eq!(h.state().viewer.state.position_nm.0, [36.0, 36.0, 36.0]);
    // An error overlay of the ground truth against the prediction, thresholded at the
    // parameter set shown.
    let overlays = &h.state().viewer.state.overlays;
    assert_eq!(overlays.len(), 1, "{overlays:?}");
    assert_eq!(overlays[0].truth, h.state().viewer.state.layers[1].name);
    assert_eq!(
        overlays[0].prediction,
        h.state().viewer.state.layers[2].name
    );
    assert_eq!(overlays[0].threshold, 0.1);
    // The iteration slider goes back to iteration 5: prediction and output follow.
    h.get_by_label("iteration 10").set_value_accesskit(0.0);
    h.run_steps(3);
    let shown = layers(&h);
    assert!(
        shown[2].ends_with("validation.zarr/5/synthetic_crop2/prediction"),
        "{shown:?}"
    );
    assert!(
        shown[3].ends_with("5/synthetic_crop2/output/threshold_0.1"),
        "{shown:?}"
    );
    h.get_by_label("iteration 5");
    // Another parameter set's output.
    h.get_by_label("output parameters").click();
    h.run();
    h.get_by_label("threshold_0.5").click();
    h.run_steps(3);
    assert!(layers(&h)[3].ends_with("5/synthetic_crop2/output/threshold_0.5"));
    assert_eq!(
        h.state().viewer.state.layers[3].name,
        "output threshold_0.1"
    );
    assert_eq!(h.state().viewer.state.overlays[0].threshold, 0.5);
    // The threshold preview of the prediction, from the browse box.
    h.get_all_by_label("threshold preview")
        .next()
        .unwrap()
        .click();
    h.run_steps(2);
    match &h.state().viewer.state.layers[2].settings {
        LayerSettings::Prediction(s) => assert_eq!(s.threshold, Some(0.5)),
        other => panic!("{other:?}"),
    }
}

/// Colormaps, hidden layers feeding an error overlay, and the overlay's colours in the app
/// (wgpu): every sampled pixel is the CPU reference's, the overlay shows true positives
/// (mito inside cells) and false negatives (cells without mito), and the rest is viridis.
#[test]
fn the_viewer_draws_colormaps_and_the_error_overlay_with_wgpu() {
    use segno::render::colors::Colormap;
    use segno::render::slice::Plane;
    use segno::render::state::{overlay_colors, ErrorOverlay, LayerSettings, Layout};
    let dir = project();
    let data = dir.path().join("data/synthetic.zarr");
    let mut h = wgpu_harness(dir.path());
    {
        let app = h.state_mut();
        app.settings.section = Section::Viewer;
        let v = &mut app.viewer;
        v.add_layer(&data.join("raw"));
        v.add_layer(&data.join("labels/crop1/cells"));
        v.add_layer(&data.join("labels/crop1/mito"));
        if let LayerSettings::Image(s) = &mut v.state.layers[0].settings {
            s.colormap = Colormap::Viridis;
        }
        v.state.layers[1].visible = false;
        v.state.layers[2].visible = false;
        v.state.overlays.push(ErrorOverlay {
            truth: "labels/crop1/cells".into(),
            prediction: "labels/crop1/mito".into(),
            visible: true,
            instances: false,
            threshold: 0.5,
            alpha: 1.0,
            mask: None,
        });
        v.state.layout = Layout::Xy;
        v.state.cross_hairs = false;
        v.state.scale_bar = false;
        v.state.zoom_nm_per_px = 1.5;
        // The z slice with the most mito voxels, centred on them.
        let mito = segno::array::open(&data.join("labels/crop1/mito")).unwrap();
        let info = mito.info().clone();
        let labels = mito.read(&info.roi).unwrap().to_labels().unwrap();
        let vs = info.geometry.voxel_size;
        let off = info.geometry.offset;
        let (mut best, mut best_z) = (0, 0);
        for z in 0..labels.shape()[0] {
            let n = labels
                .index_axis(ndarray::Axis(0), z)
                .iter()
                .filter(|v| **v != 0)
                .count();
            if n > best {
                (best, best_z) = (n, z);
            }
        }
        let slice = labels.index_axis(ndarray::Axis(0), best_z);
        let (mut sy, mut sx) = (0.0, 0.0);
        for (i, v) in slice.indexed_iter() {
            if *v != 0 {
                sy += i[0] as f64;
                sx += i[1] as f64;
            }
        }
        let at = |a: usize, i: f64| off.as_slice()[a] as f64 + (i + 0.5) * vs.as_slice()[a] as f64;
        v.state.position_nm = segno::render::layer::WorldNm([
            at(0, best_z as f64),
            at(1, (sy / best as f64).floor()),
            at(2, (sx / best as f64).floor()),
        ]);
    }
    settle_app(&mut h);
    let image = h.render().unwrap();
    let viewer = &h.state().viewer;
    let rect = viewer.panel_rects[&Plane::Xy];
    let (u, t) = viewer.panel_upload(Plane::Xy).unwrap();
    let (mut tp, mut fn_, mut plain) = (0, 0, 0);
    for py in (24..t.height).step_by(5) {
        for px in (0..t.width).step_by(5) {
            let got = image
                .get_pixel(
                    rect.min.x.round() as u32 + px,
                    rect.min.y.round() as u32 + py,
                )
                .0;
            let expected = segno::render::shade::shade(&u, &t, px, py);
            let diff = (0..3)
                .map(|k| (i32::from(got[k]) - i32::from(expected[k])).abs())
                .max()
                .unwrap();
            assert!(diff <= 2, "pixel ({px}, {py}): {got:?} vs {expected:?}");
            if got[..3] == overlay_colors::TRUE_POSITIVE {
                tp += 1;
            } else if got[..3] == overlay_colors::FALSE_NEGATIVE {
                fn_ += 1;
            } else {
                let values = viewer.values_at(Plane::Xy, f64::from(px), f64::from(py));
                if let Ok(raw) = values[0].1.parse::<f64>() {
                    let e = Colormap::Viridis.rgb(raw / 255.0);
                    assert!((0..3).all(|k| (i32::from(got[k]) - i32::from(e[k])).abs() <= 2));
                    plain += 1;
                }
            }
        }
    }
    assert!(
        tp > 20 && fn_ > 200 && plain > 20,
        "tp {tp}, fn {fn_}, plain {plain}"
    );
}

/// The DataSplit wizard on the demo data: its CSV loaded, options set through the form, the
/// saved config is what `segno datasplit` generates from the same inputs; a pair whose
/// ground truth does not exist is flagged on its row and blocks saving.
#[test]
fn the_datasplit_wizard_saves_what_the_generator_makes() {
    use segno::config::{AnyConfig, DataSplitConfig, Family};
    let dir = project();
    let path = dir.path().to_path_buf();
    let mut h = Harness::builder()
        .with_size(egui::Vec2::new(1100.0, 2400.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)));
    h.run();
    h.get_by_label("DataSplit").click();
    h.run();
    h.state_mut().wizard.csv_path = "data/synthetic.csv".into();
    h.get_by_label("Load CSV").click();
    h.run();
    assert_eq!(h.state().wizard.rows.len(), 3);
    // Each row shows what its arrays hold.
    assert_eq!(
        h.query_all_by_label_contains("uint8 64×64×64 @ (8, 8, 8) nm from (0, 0, 0), 4 levels")
            .count(),
        3
    );
    h.get_by_label("binarize ground truth").click();
    h.run();
    assert!(h.state().wizard.binarize_gt);
    // A pair with a missing crop: flagged, and saving is refused.
    let c = dir.path().join("data/synthetic.zarr");
    h.state_mut().wizard.new_raw = c.join("raw").display().to_string();
    h.state_mut().wizard.new_gt = c.join("labels/crop7/[mito]").display().to_string();
    h.get_by_label("Add pair").click();
    h.run();
    h.get_by_label_contains("class mito:");
    let b = h.get_by_label("Save datasplit");
    b.click();
    h.run();
    let m = h.state().wizard.message.clone().unwrap_or_default();
    assert!(m.contains("crop7"), "{m:?} {:?}", h.state().wizard.note);
    // Without it, the datasplit is saved.
    h.state_mut().wizard.rows.pop();
    h.run();
    h.get_by_label("Save datasplit").click();
    h.run_steps(3);
    let note = h.state().wizard.note.clone().unwrap_or_default();
    assert!(
        note.contains("synthetic_semantic_mito&er_8nm saved"),
        "{note} {:?}",
        h.state().wizard.message
    );
    let store = segno::store::Project::open(dir.path()).unwrap();
    let stored = store
        .configs()
        .retrieve(Family::Datasplits, "synthetic_semantic_mito&er_8nm")
        .unwrap();
    let specs = segno::datasplit::read_csv(&dir.path().join("data/synthetic.csv")).unwrap();
    let mut o = segno::datasplit::GeneratorOptions::new(
        "synthetic",
        segno::geometry::Coordinate::from([8, 8, 8]),
        segno::geometry::Coordinate::from([8, 8, 8]),
    );
    o.binarize_gt = true;
    let expected = segno::datasplit::generate(&specs, &o, dir.path())
        .unwrap()
        .config;
    assert_eq!(
        stored,
        AnyConfig::Datasplit(DataSplitConfig::TrainValidate(expected))
    );
    // Its CSV is written too, and the new datasplit is listed.
    let csv = dir.path().join("data/synthetic_semantic_mito&er_8nm.csv");
    assert_eq!(segno::datasplit::read_csv(&csv).unwrap(), specs);
    // Listed next to the demo run's own datasplit of the same name.
    assert_eq!(
        h.query_all_by_label("synthetic_semantic_mito&er_8nm")
            .count(),
        2
    );
}

/// The app on `dir`'s project with its only run started (on the CPU) and monitored from
/// the Runs panel.
fn started_from_the_runs_panel(dir: &std::path::Path) -> Harness<'static, SegnoApp> {
    let mut h = harness(dir);
    h.state_mut().runs.launcher.segno_exe = assert_cmd::cargo::cargo_bin("segno");
    h.state_mut().runs.launcher.device = "cpu".into();
    h.run();
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("Start").click();
    h.get_by_label("Monitor").click();
    h.run();
    h
}

/// The Runs panel starts a run as a `segno train` process, plots its loss as it grows,
/// stops it, and resumes it to the end.
#[test]
fn the_runs_panel_starts_stops_and_resumes_training() {
    use segno::store::lock::RunState;
    let dir = common::demo_data_project(64);
    let run = segno::demo::project::demo_run(60, 20);
    segno::store::Project::open(dir.path())
        .unwrap()
        .configs()
        .store(&segno::config::AnyConfig::Run(Box::new(run)))
        .unwrap();
    let mut h = started_from_the_runs_panel(dir.path());
    let wait =
        |h: &mut Harness<'static, SegnoApp>, what: &str, done: &dyn Fn(&SegnoApp) -> bool| {
            let t0 = std::time::Instant::now();
            while !done(h.state()) {
                assert!(t0.elapsed().as_secs() < 240, "timed out waiting for {what}");
                std::thread::sleep(std::time::Duration::from_millis(200));
                h.run_steps(1);
            }
        };
    let monitor = |app: &SegnoApp| app.runs.launcher.runs.get("demo_mito_er_60").cloned();
    wait(&mut h, "the loss to be plotted", &|app| {
        monitor(app)
            .is_some_and(|m| matches!(m.state, RunState::Training { .. }) && m.losses.len() >= 2)
    });
    h.get_by_label_contains("iterations recorded");
    h.get_by_label("Stop").click();
    h.run();
    wait(&mut h, "the trainer to stop", &|app| {
        monitor(app).is_some_and(|m| !matches!(m.state, RunState::Training { .. }))
    });
    let stopped = monitor(h.state()).unwrap();
    assert_eq!(stopped.state, RunState::Stopped, "{:?}", stopped.log_tail);
    assert!(stopped.losses.len() < 60);
    // The trainer kept the iteration it reached as a checkpoint and says it stopped.
    let run_dir = dir.path().join("demo_mito_er_60");
    assert_eq!(
        RunDir::from_dir(&run_dir).latest_checkpoint(),
        Some(stopped.losses.len() as u64)
    );
    let status = std::fs::read_to_string(run_dir.join("train.status.json")).unwrap();
    assert!(status.contains("\"state\":\"stopped\""), "{status}");
    h.run();
    h.get_by_label("Resume").click();
    h.run();
    wait(&mut h, "the run to finish", &|app| {
        monitor(app).is_some_and(|m| m.state == RunState::Finished && m.losses.len() == 60)
    });
    // Validated at 20, 40 and 60: the best mean F1 over mito and ER is what the score
    // store says, and the monitor states it.
    h.run_steps(2);
    let m = monitor(h.state()).unwrap();
    let scores = m.scores.clone().expect("validation scores");
    assert_eq!(scores.iterations().collect::<Vec<_>>(), vec![20, 40, 60]);
    let (it, p, v) = scores.best_for("synthetic_crop2", "f1_score").unwrap();
    let best = h.state().runs.launcher.best("demo_mito_er_60").unwrap();
    assert_eq!(best, (it, scores.parameters()[p].clone(), v));
    h.get_by_label_contains(&format!(
        "best f1_score on synthetic_crop2: {v:.4} at iteration {it}"
    ));
    // The log shows the resumed trainer's summary.
    assert!(
        m.log_tail
            .iter()
            .any(|l| l.contains("trained to iteration 60")),
        "{:?}",
        m.log_tail
    );
    // The best F1 opens in the viewer at its iteration with its parameters' output.
    h.get_by_label("View best f1_score").click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().settings.section, Section::Viewer);
    let b = h
        .state()
        .viewer
        .validation
        .clone()
        .expect("a browsed validation");
    assert_eq!(
        (b.iteration(), b.parameter.clone()),
        (it, Some(scores.parameters()[p].clone()))
    );
    let sources: Vec<String> = h
        .state()
        .viewer
        .state
        .layers
        .iter()
        .map(|l| l.source.display().to_string())
        .collect();
    assert_eq!(sources.len(), 4, "{sources:?}");
    assert!(sources[2].ends_with(&format!("validation.zarr/{it}/synthetic_crop2/prediction")));
    assert!(sources[3].ends_with(&format!(
        "validation.zarr/{it}/synthetic_crop2/output/{}",
        scores.parameters()[p]
    )));
}

/// A run that fails shows "failed" with its error and the trainer's log; its config and
/// the project are untouched.
#[test]
fn a_run_that_fails_shows_failed_with_its_error_and_log() {
    use segno::store::lock::RunState;
    let dir = common::demo_data_project(64);
    let mut run = segno::demo::project::demo_run(20, 10);
    run.name = "broken".into();
    let mut doc = segno::config::Encode::encode(&run);
    let text = serde_json::to_string(&doc)
        .unwrap()
        .replace("labels/crop1/mito", "labels/crop9/mito");
    doc = serde_json::from_str(&text).unwrap();
    let run = match segno::config::AnyConfig::from_document(segno::config::Family::Runs, &doc, "t")
    {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let store = segno::store::Project::open(dir.path()).unwrap().configs();
    store.store(&run).unwrap();
    let before = std::fs::read(store.path_of(segno::config::Family::Runs, "broken")).unwrap();
    let mut h = started_from_the_runs_panel(dir.path());
    let t0 = std::time::Instant::now();
    loop {
        let state = h
            .state()
            .runs
            .launcher
            .runs
            .get("broken")
            .map(|m| m.state.clone());
        if matches!(state, Some(RunState::Failed { .. })) {
            break;
        }
        assert!(t0.elapsed().as_secs() < 120, "still {state:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        h.run_steps(1);
    }
    h.run_steps(2);
    h.get_by_label("failed");
    let m = h.state().runs.launcher.runs.get("broken").cloned().unwrap();
    let RunState::Failed { error } = &m.state else {
        unreachable!()
    };
    assert!(error.contains("crop9"), "{error}");
    h.get_by_label(&format!("error: {error}"));
    assert!(
        m.log_tail.iter().any(|l| l.contains("crop9")),
        "{:?}",
        m.log_tail
    );
    // Resume is offered; nothing saved was changed.
    h.get_by_label("Resume");
    assert_eq!(
        std::fs::read(store.path_of(segno::config::Family::Runs, "broken")).unwrap(),
        before
    );
}

/// A tall app harness (so every form field is on screen) on `dir`'s project.
fn tall_harness(dir: &std::path::Path) -> Harness<'static, SegnoApp> {
    let path = dir.to_path_buf();
    Harness::builder()
        .with_size(egui::Vec2::new(1400.0, 3000.0))
        .build_eframe(move |_cc| SegnoApp::new(Settings::default(), Some(&path)))
}

/// Types `text` into the last field labelled `label` (the most recently added one).
fn fill(h: &mut Harness<'static, SegnoApp>, label: &str, text: &str) {
    h.get_all_by_label(label)
        .last()
        .unwrap_or_else(|| panic!("no field {label:?}"))
        .set_text_value_accesskit(text);
    h.run_steps(2);
}

/// Clicks the last widget labelled `label`.
fn press(h: &mut Harness<'static, SegnoApp>, label: &str) {
    h.get_all_by_label(label)
        .last()
        .unwrap_or_else(|| panic!("no widget {label:?}"))
        .click();
    h.run_steps(2);
}

fn stored_yaml(dir: &std::path::Path, family: &str, name: &str) -> String {
    let path = dir
        .join("configs")
        .join(family)
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_config_forms_create_one_config_of_each_family() {
    let dir = common::demo_data_project(64);
    let mut h = tall_harness(dir.path());
    h.run();
    press(&mut h, "Configs");

    // A task: the type selector keeps the name when switching to another task type.
    press(&mut h, "New task");
    fill(&mut h, "name *", "mito_dist");
    press(&mut h, "type");
    press(&mut h, "OneHotTaskConfig");
    assert_eq!(h.state().editor.doc["__type__"], "OneHotTaskConfig");
    assert_eq!(h.state().editor.doc["name"], "mito_dist");
    press(&mut h, "type");
    press(&mut h, "DistanceTaskConfig");
    press(&mut h, "Add to channels *");
    fill(&mut h, "[0]", "mito");
    fill(&mut h, "clip_distance *", "80");
    // A value that is not a number is reported at its field and blocks saving.
    fill(&mut h, "tol_distance *", "far");
    h.get_by_label("expected a number, found the string \"far\"");
    assert!(egui_kittest::kittest::NodeT::accesskit_node(&h.get_by_label("Save")).is_disabled());
    press(&mut h, "Save");
    assert!(!dir.path().join("configs/tasks/mito_dist.yaml").exists());
    fill(&mut h, "tol_distance *", "40");
    assert!(
        h.state().editor.problems.is_empty(),
        "{:?}",
        h.state().editor.problems
    );
    press(&mut h, "Save");
    let yaml = stored_yaml(dir.path(), "tasks", "mito_dist");
    assert!(yaml.contains("__type__: DistanceTaskConfig"), "{yaml}");
    assert!(yaml.contains("channels:\n- mito\n"), "{yaml}");
    assert!(yaml.contains("clip_distance: 80"), "{yaml}");
    assert!(yaml.contains("tol_distance: 40"), "{yaml}");

    // An architecture: coordinates field by field, a list of coordinates.
    press(&mut h, "New architecture");
    fill(&mut h, "name *", "unet");
    for axis in ["z", "y", "x"] {
        h.get_all_by_label(axis)
            .next()
            .unwrap()
            .set_text_value_accesskit("44");
        h.run_steps(2);
    }
    fill(&mut h, "fmaps_in *", "1");
    fill(&mut h, "fmaps_out *", "4");
    fill(&mut h, "num_fmaps *", "4");
    fill(&mut h, "fmap_inc_factor *", "2");
    // A field with a fixed set of values is a list to choose from.
    press(&mut h, "padding");
    press(&mut h, "same");
    assert_eq!(h.state().editor.doc["padding"], "same");
    press(&mut h, "padding");
    press(&mut h, "valid");
    assert_eq!(h.state().editor.doc["padding"], "valid");
    press(&mut h, "Add to downsample_factors *");
    for axis in ["z", "y", "x"] {
        fill(&mut h, axis, "2");
    }
    assert!(
        h.state().editor.problems.is_empty(),
        "{:?}",
        h.state().editor.problems
    );
    press(&mut h, "Save");
    let yaml = stored_yaml(dir.path(), "architectures", "unet");
    assert!(yaml.contains("__type__: CNNectomeUNetConfig"), "{yaml}");
    assert!(
        yaml.contains("input_shape: !!python/tuple\n- 44\n- 44\n- 44\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("downsample_factors:\n- !!python/tuple\n  - 2\n  - 2\n  - 2\n"),
        "{yaml}"
    );

    // A trainer with its defaults.
    press(&mut h, "New trainer");
    fill(&mut h, "name *", "gp");
    press(&mut h, "Save");
    let yaml = stored_yaml(dir.path(), "trainers", "gp");
    assert!(yaml.contains("__type__: GunpowderTrainerConfig"), "{yaml}");
    assert!(yaml.contains("learning_rate: 0.001"), "{yaml}");

    // An array.
    press(&mut h, "New array");
    fill(&mut h, "name *", "raw");
    fill(&mut h, "file_name *", "data/synthetic.zarr");
    fill(&mut h, "dataset *", "raw");
    press(&mut h, "Save");
    let yaml = stored_yaml(dir.path(), "arrays", "raw");
    assert!(yaml.contains("__type__: ZarrArrayConfig"), "{yaml}");
    assert!(yaml.contains("file_name: data/synthetic.zarr"), "{yaml}");

    // A datasplit: nested lists of datasets with optional nested arrays.
    press(&mut h, "New datasplit");
    fill(&mut h, "name *", "split");
    for (list, crop) in [
        ("train_configs *", "crop1"),
        ("validate_configs *", "crop2"),
    ] {
        press(&mut h, &format!("Add to {list}"));
        fill(&mut h, "name *", crop);
        for (slot, name, dataset) in [
            ("raw_config (set)", format!("{crop}_raw"), "raw".to_string()),
            (
                "gt_config (set)",
                format!("{crop}_gt"),
                format!("labels/{crop}/mito"),
            ),
        ] {
            press(&mut h, slot);
            fill(&mut h, "name *", &name);
            fill(&mut h, "file_name *", "data/synthetic.zarr");
            fill(&mut h, "dataset *", &dataset);
        }
    }
    assert!(
        h.state().editor.problems.is_empty(),
        "{:?}",
        h.state().editor.problems
    );
    press(&mut h, "Save");
    let yaml = stored_yaml(dir.path(), "datasplits", "split");
    assert!(
        yaml.contains("__type__: TrainValidateDataSplitConfig"),
        "{yaml}"
    );
    assert!(yaml.contains("dataset: labels/crop2/mito"), "{yaml}");
    assert!(yaml.contains("name: crop1_raw"), "{yaml}");

    // Runs: the run builder makes the product of the chosen configs.
    press(&mut h, "Run builder");
    for name in ["split", "mito_dist", "unet", "gp"] {
        press(&mut h, name);
    }
    h.get_by_label("repetitions").set_value_accesskit(2.0);
    h.run_steps(2);
    fill(&mut h, "naming template", "{task}_{architecture}");
    h.get_by_label_contains("2 runs would be named \"mito_dist_unet\"; add {repetition}");
    fill(
        &mut h,
        "naming template",
        "{task}_{architecture}__{repetition}",
    );
    h.get_by_label("mito_dist_unet__0  (new)");
    h.get_by_label("mito_dist_unet__1  (new)");
    press(&mut h, "Save 2 run(s)");
    let yaml = stored_yaml(dir.path(), "runs", "mito_dist_unet__1");
    assert!(yaml.contains("repetition: 1"), "{yaml}");
    assert!(yaml.contains("num_iterations: 10000"), "{yaml}");
    assert!(yaml.contains("name: mito_dist\n"), "{yaml}");
    // Nothing is saved twice; the preview says so.
    h.get_by_label("mito_dist_unet__0  (already stored)");
}

#[test]
fn configs_are_edited_as_yaml_duplicated_compared_renamed_deleted_and_imported() {
    let dir = project();
    let mut h = tall_harness(dir.path());
    h.run();
    press(&mut h, "Configs");
    let store = segno::store::Project::open(dir.path()).unwrap().configs();
    let run = segno::demo::project::demo_run(20, 10);
    let trainer = run.trainer_config.name().to_string();
    store
        .store(&AnyConfig::Trainer(run.trainer_config.clone()))
        .unwrap();
    h.state_mut().reload_project();
    h.run_steps(2);
    press(&mut h, &trainer);
    // The YAML view edits the form.
    let yaml = h.state().editor.yaml.clone();
    assert!(yaml.contains("batch_size: 1\n"), "{yaml}");
    h.get_by_role(egui::accesskit::Role::MultilineTextInput)
        .set_text_value_accesskit(&yaml.replace("batch_size: 1\n", "batch_size: 4\n"));
    h.run_steps(2);
    assert_eq!(h.state().editor.doc["batch_size"], 4);
    assert_eq!(h.get_by_label("batch_size").value().as_deref(), Some("4"));
    // Broken YAML is reported and leaves the form as it was.
    h.get_by_role(egui::accesskit::Role::MultilineTextInput)
        .set_text_value_accesskit("batch_size: [");
    h.run_steps(2);
    assert!(h.state().editor.yaml_error.is_some());
    assert_eq!(h.state().editor.doc["batch_size"], 4);
    press(&mut h, "Save");
    assert!(stored_yaml(dir.path(), "trainers", &trainer).contains("batch_size: 4\n"));
    // Duplicate, save the copy, compare the two.
    press(&mut h, "Duplicate");
    press(&mut h, "Save");
    let copy = format!("{trainer}_copy");
    assert!(stored_yaml(dir.path(), "trainers", &copy).contains(&format!("name: {copy}\n")));
    press(&mut h, "Diff");
    h.state_mut().editor.family = segno::config::Family::Trainers;
    h.state_mut().editor.diff = (trainer.clone(), copy.clone());
    h.run_steps(2);
    h.get_by_label("2 changed line(s)");
    h.get_by_label(&format!("- name: {trainer}"));
    h.get_by_label(&format!("+ name: {copy}"));
    // Rename the copy, then delete it (after confirming).
    press(&mut h, "Edit");
    fill(&mut h, "new name", "other");
    press(&mut h, "Rename");
    let names = store.names(segno::config::Family::Trainers).unwrap();
    assert_eq!(names, vec![trainer.clone(), "other".to_string()]);
    assert!(stored_yaml(dir.path(), "trainers", "other").contains("name: other\n"));
    // Renaming onto a different stored config is refused and moves nothing.
    fill(&mut h, "new name", &trainer);
    press(&mut h, "Rename");
    h.get_by_label_contains("not renamed:");
    press(&mut h, "Delete");
    assert!(dir.path().join("configs/trainers/other.yaml").exists());
    press(&mut h, "Really delete");
    assert_eq!(
        store.names(segno::config::Family::Trainers).unwrap(),
        vec![trainer.clone()]
    );
    // Import a DaCapo folder: files are recognised by their folder; bad ones reported.
    let import = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(import.path().join("tasks")).unwrap();
    std::fs::write(
        import.path().join("tasks/imported.yaml"),
        "__type__: DistanceTaskConfig\nname: imported\nchannels: [er]\nclip_distance: 40\ntol_distance: 20\n",
    )
    .unwrap();
    std::fs::write(
        import.path().join("broken.yaml"),
        "__type__: NoSuchTask\nname: x\n",
    )
    .unwrap();
    press(&mut h, "Import");
    fill(
        &mut h,
        "file or folder",
        &import.path().display().to_string(),
    );
    h.get_all_by_label("Import").last().unwrap().click();
    h.run_steps(2);
    let report = h.state().editor.import_report.join("\n");
    assert!(
        report.contains("tasks/imported.yaml: stored task \"imported\""),
        "{report}"
    );
    assert!(report.contains("broken.yaml: error:"), "{report}");
    assert!(
        report.contains("unknown config type `NoSuchTask`"),
        "{report}"
    );
    assert!(stored_yaml(dir.path(), "tasks", "imported").contains("- er\n"));
}

/// A file or folder dropped on the window.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Array folders dropped on the DataSplit wizard: the first fills the raw field, each
/// further one is a ground-truth crop paired with it and inspected on its row.
#[test]
fn dropped_array_folders_become_raw_and_ground_truth_pairs() {
    let dir = project();
    let mut h = harness(dir.path());
    h.run();
    h.get_by_label("DataSplit").click();
    h.run();
    let c = dir.path().join("data/synthetic.zarr");
    let drop = |h: &mut Harness<'static, SegnoApp>, paths: &[std::path::PathBuf]| {
        for p in paths {
            h.input_mut()
                .dropped_files
                .push(std::sync::Arc::new(Dropped(p.clone())));
        }
        h.run_steps(2);
    };
    drop(&mut h, &[c.join("raw")]);
    assert_eq!(
        h.state().wizard.new_raw,
        c.join("raw").display().to_string()
    );
    assert!(h.state().wizard.rows.is_empty());
    drop(
        &mut h,
        &[c.join("labels/crop1/mito"), c.join("labels/crop2/er")],
    );
    let rows = &h.state().wizard.rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].spec.gt_dataset, "labels/crop1/mito");
    assert_eq!(rows[1].spec.gt_dataset, "labels/crop2/er");
    assert!(rows.iter().all(|r| r.spec.raw_dataset == "raw"));
    assert!(h.state().wizard.new_gt.is_empty());
}

#[test]
fn the_runs_panel_shows_a_runs_targets_over_its_training_crop() {
    let dir = project();
    let mut h = harness(dir.path());
    h.run();
    h.get_by_label("Runs").click();
    h.run();
    h.get_by_label("Targets").click();
    h.run_steps(8);
    assert_eq!(h.state().settings.section, Section::Viewer);
    let layers: Vec<(String, String, bool)> = h
        .state()
        .viewer
        .state
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.source.display().to_string(), l.visible))
        .collect();
    assert_eq!(layers.len(), 4, "{layers:?}");
    assert!(
        layers[0].1.ends_with("data/synthetic.zarr/raw"),
        "{layers:?}"
    );
    assert!(layers[1].1.contains("labels/crop1"), "{layers:?}");
    assert!(
        layers[2].1.ends_with("demo_mito_er_20/targets.zarr/target"),
        "{layers:?}"
    );
    assert_eq!(layers[2].0, "target (synthetic_crop1)");
    assert!(
        layers[3].1.ends_with("demo_mito_er_20/targets.zarr/weight"),
        "{layers:?}"
    );
    assert!(!layers[3].2, "the weights start hidden");
    // The arrays hold the task's targets over the crop's ground truth: one channel per
    // class, tanh distances within [-1, 1].
    let target =
        segno::array::open(&dir.path().join("demo_mito_er_20/targets.zarr/target")).unwrap();
    assert_eq!(target.info().channels(), 2);
    let gt =
        segno::array::open(&dir.path().join("data/synthetic.zarr/labels/crop1/mito/s0")).unwrap();
    assert_eq!(target.info().roi, gt.info().roi);
    let values = target.read(&target.info().roi).unwrap().to_f32();
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(values.iter().any(|v| *v > 0.0) && values.iter().any(|v| *v < 0.0));
}

/// The Run builder, built alone: a project whose only config is a datasplit gets a task
/// for its classes, a U-Net and a trainer from templates, and then a run.
#[test]
fn the_run_builder_offers_templates_when_a_project_has_only_a_datasplit() {
    use segno::config::{Family, TaskConfig};
    use segno::gui::editor::ConfigEditor;
    let dir = common::demo_data_project(64);
    let project = segno::store::Project::open(dir.path()).unwrap();
    let split = segno::demo::project::demo_run(10, 5).datasplit_config;
    project
        .configs()
        .store(&AnyConfig::Datasplit(split.clone()))
        .unwrap();
    struct State {
        editor: ConfigEditor,
        project: segno::store::Project,
    }
    let mut h = Harness::builder()
        .with_size(egui::Vec2::new(1400.0, 900.0))
        .build_ui_state(
            |ui, s: &mut State| {
                let store = s.project.configs();
                let names: Vec<(Family, Vec<String>)> = Family::ALL
                    .iter()
                    .map(|f| (*f, store.names(*f).unwrap()))
                    .collect();
                s.editor.ui(ui, &store, &names);
            },
            State {
                editor: ConfigEditor::default(),
                project,
            },
        );
    h.run();
    h.get_by_label("Run builder").click();
    h.run();
    h.get_by_label("no stored tasks");
    h.get_by_label("no stored architectures");
    h.get_by_label("no stored trainers");
    for template in [
        "Store template distance_mito_er",
        "Store template unet_small_76",
        "Store template default_trainer",
    ] {
        h.get_by_label(template).click();
        h.run();
    }
    let store = segno::store::Project::open(dir.path()).unwrap().configs();
    match store.retrieve(Family::Tasks, "distance_mito_er").unwrap() {
        AnyConfig::Task(TaskConfig::Distance(d)) => assert_eq!(d.channels, ["mito", "er"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.names(Family::Architectures).unwrap(),
        ["unet_small_76"]
    );
    assert_eq!(store.names(Family::Trainers).unwrap(), ["default_trainer"]);
    // With one of each chosen, the builder makes one run and saves it.
    for name in [
        split.name(),
        "distance_mito_er",
        "unet_small_76",
        "default_trainer",
    ] {
        h.get_by_label(name).click();
        h.run();
    }
    h.get_by_label("Save 1 run(s)").click();
    h.run();
    assert_eq!(store.names(Family::Runs).unwrap().len(), 1);
}

/// The Apply section's region is drawn in the viewer and handed back, and a job's blocks
/// are drawn over the data in their states' colours (wgpu).
#[test]
fn a_region_drawn_in_the_viewer_goes_to_apply_and_a_jobs_blocks_are_drawn_by_state() {
    use segno::blockwise::ledger::BlockMark;
    use segno::gui::viewer::BlockMap;
    use segno::render::layer::WorldNm;
    use segno::render::slice::Plane;
    use segno::render::state::Layout;
    let dir = project();
    let raw = dir.path().join("data/synthetic.zarr/raw");
    let mut h = wgpu_harness(dir.path());
    h.state_mut().settings.section = Section::Apply;
    h.run_steps(2);
    // The input folder dropped on the section.
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(raw.clone())));
    h.run_steps(2);
    assert_eq!(h.state().apply.input, raw.display().to_string());
    press(&mut h, "Draw in viewer");
    assert_eq!(h.state().settings.section, Section::Viewer);
    assert_eq!(h.state().viewer.state.layers.len(), 1);
    let bounds = h.state().viewer.layer_data(0).unwrap().levels[0].bounds_nm();
    let draft = h.state().viewer.region.clone().unwrap();
    assert_eq!((draft.begin_nm, draft.end_nm), bounds);
    // A box dragged in xy over the middle of the volume (snapped to whole voxels).
    let (b, e) = bounds;
    let at = |f: f64| WorldNm(std::array::from_fn(|a| b[a] + (e[a] - b[a]) * f + 0.3));
    h.state_mut()
        .viewer
        .region
        .as_mut()
        .unwrap()
        .span(Plane::Xy, &at(0.25), &at(0.75));
    let expected = h.state().viewer.region.as_ref().unwrap().roi_text();
    h.run_steps(2);
    press(&mut h, "Use for Apply");
    h.run_steps(2);
    assert_eq!(h.state().settings.section, Section::Apply);
    assert_eq!(h.state().apply.roi, expected);
    assert!(h.state().viewer.region.is_none());
    segno::geometry::Roi::parse_slices(&expected).unwrap();

    // A job of 2 × 2 blocks in y and x over the whole volume, one block deep in z: done,
    // running, failed, pending.
    let shape: Vec<i64> = (0..3).map(|a| (e[a] - b[a]) as i64).collect();
    let offset: Vec<i64> = (0..3).map(|a| b[a] as i64).collect();
    let block = vec![shape[0], shape[1] / 2, shape[2] / 2];
    let marks = vec![
        BlockMark::Done,
        BlockMark::Running,
        BlockMark::Failed,
        BlockMark::Pending,
    ];
    let map = BlockMap::new(&offset, &shape, &block, marks).unwrap();
    assert_eq!(map.counts(), [1, 2, 2]);
    // The app draws the Apply section's own job; this one is the viewer's alone.
    h.state_mut().settings.section = Section::Viewer;
    h.state_mut().viewer.state.layout = Layout::Xy;
    h.state_mut().viewer.state.cross_hairs = false;
    h.state_mut().viewer.state.position_nm = WorldNm(std::array::from_fn(|a| (b[a] + e[a]) / 2.0));
    h.run_steps(1);
    let rect = h.state().viewer.panel_rects[&Plane::Xy];
    let fit = (e[1] - b[1]).max(e[2] - b[2]) / f64::from(rect.width().min(rect.height()) - 20.0);
    h.state_mut().viewer.state.zoom_nm_per_px = fit;
    // (The app puts the Apply section's job here; it has none, so this one stays.)
    h.state_mut().viewer.block_map = Some(map);
    settle_app(&mut h);
    let image = h.render().unwrap();
    if let Ok(p) = std::env::var("SEGNO_SAVE_RENDER") {
        image.save(p).unwrap();
    }
    let viewer = &h.state().viewer;
    let rect = viewer.panel_rects[&Plane::Xy];
    let (u, t) = viewer.panel_upload(Plane::Xy).unwrap();
    let ppp = 1.0;
    // The centre of block (y, x) on screen, and the data's colour there.
    let sample = |fy: f64, fx: f64| {
        let y = b[1] + (e[1] - b[1]) * fy;
        let x = b[2] + (e[2] - b[2]) * fx;
        let px = (f64::from(rect.width()) / 2.0 + (x - (b[2] + e[2]) / 2.0) / fit) * ppp;
        let py = (f64::from(rect.height()) / 2.0 + (y - (b[1] + e[1]) / 2.0) / fit) * ppp;
        let expected = segno::render::shade::shade(&u, &t, px as u32, py as u32);
        let got = image
            .get_pixel(
                rect.min.x.round() as u32 + px as u32,
                rect.min.y.round() as u32 + py as u32,
            )
            .0;
        let d: [i32; 3] = std::array::from_fn(|k| i32::from(got[k]) - i32::from(expected[k]));
        d
    };
    // Done: greener; running: less blue (amber); failed: redder; pending: the data as is.
    let done = sample(0.25, 0.25);
    assert!(done[1] > 5 && done[1] > done[0], "{done:?}");
    let running = sample(0.25, 0.75);
    assert!(running[2] < -10, "{running:?}");
    let failed = sample(0.75, 0.25);
    assert!(failed[0] > 20 && failed[1] < 0, "{failed:?}");
    let pending = sample(0.75, 0.75);
    assert!(pending.iter().all(|d| d.abs() <= 2), "{pending:?}");
}
