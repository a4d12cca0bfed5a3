//! The desktop app: a left navigation (Project · Configs · DataSplit · Runs · Viewer) over
//! one project directory, light and dark themes, recent projects remembered between
//! sessions. The app only calls the engine (config store, arrays, run records); it never
//! duplicates it.

pub mod demo_view;
pub mod editor;
pub mod launcher;
pub mod project;
pub mod project_panel;
pub mod runs_panel;
pub mod screenshot;
pub mod viewer;
pub mod viewer_bench;
pub mod viewer_start;
pub mod wizard;

use std::path::{Path, PathBuf};

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::store::layout::RunDir;

pub use project::{ProjectSummary, RunSummary};

/// Errors starting the app.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// The window or its renderer could not be created (no display, no GPU adapter …).
    #[error("cannot start the app: {0}")]
    Start(String),
}

/// The app's sections, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// Open or create a project; recent projects.
    Project,
    /// The configs of every family.
    Configs,
    /// DataSplits and their datasets.
    DataSplit,
    /// Runs with their progress and best scores.
    Runs,
    /// Arrays of the project.
    Viewer,
}

impl Section {
    /// Every section, in navigation order.
    pub const ALL: [Section; 5] = [
        Section::Project,
        Section::Configs,
        Section::DataSplit,
        Section::Runs,
        Section::Viewer,
    ];

    /// The section named `text` (its label, case-insensitive).
    pub fn parse(text: &str) -> Option<Section> {
        Section::ALL
            .into_iter()
            .find(|s| s.label().eq_ignore_ascii_case(text.trim()))
    }

    /// The label in the navigation (also its accessibility label).
    pub fn label(self) -> &'static str {
        match self {
            Section::Project => "Project",
            Section::Configs => "Configs",
            Section::DataSplit => "DataSplit",
            Section::Runs => "Runs",
            Section::Viewer => "Viewer",
        }
    }
}

/// What the app remembers between sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Recently opened projects, most recent first.
    pub recent: Vec<PathBuf>,
    /// Dark theme (else light).
    pub dark: bool,
    /// The section shown last.
    pub section: Section,
    /// The viewer's chunk cache budget in MiB.
    #[serde(default = "default_cache_mib")]
    pub cpu_cache_mib: u64,
}

fn default_cache_mib() -> u64 {
    (crate::render::cache::DEFAULT_CPU_CACHE_BYTES >> 20) as u64
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            recent: Vec::new(),
            dark: true,
            section: Section::Project,
            cpu_cache_mib: default_cache_mib(),
        }
    }
}

/// How many recent projects are remembered.
pub const MAX_RECENT: usize = 10;

impl Settings {
    /// Puts `path` first in the recent projects (once), keeping at most [`MAX_RECENT`].
    pub fn remember(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(MAX_RECENT);
    }
}

/// The validation datasets of a datasplit: name, and the zarr sources of raw and ground truth.
/// A validation dataset's name with the zarr sources of its raw data, ground truth and
/// (when it is a stored array) mask.
type ValidationDataset = (
    String,
    Option<(String, String)>,
    Option<(String, String)>,
    Option<(String, String)>,
);

fn validation_datasets(split: &crate::config::DataSplitConfig) -> Vec<ValidationDataset> {
    let crate::config::DataSplitConfig::TrainValidate(s) = split else {
        return Vec::new();
    };
    s.validate_configs
        .iter()
        .map(|d| match d {
            crate::config::DatasetConfig::RawGt(d) => (
                d.name.clone(),
                d.raw_config.as_ref().and_then(|a| a.zarr_source()),
                d.gt_config.as_ref().and_then(|a| a.zarr_source()),
                // A mask made from other arrays (ones over the ground truth, …) has no
                // array of its own to show.
                match &d.mask_config {
                    Some(m @ crate::config::ArrayConfig::Zarr(_)) => m.zarr_source(),
                    _ => None,
                },
            ),
            other => (other.name().to_string(), None, None, None),
        })
        .collect()
}

/// The array to open for `path`: an OME-Zarr scale level (`…/s0`) opens as its multiscale
/// group so the viewer gets every level.
fn open_path(path: &Path) -> PathBuf {
    let level = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() > 1 && n.starts_with('s') && n[1..].parse::<u32>().is_ok());
    match path.parent() {
        Some(parent) if level && crate::render::layer::open_layer(parent).is_ok() => {
            parent.to_path_buf()
        }
        _ => path.to_path_buf(),
    }
}

/// The storage key of [`Settings`].
const SETTINGS_KEY: &str = "segno-settings";

/// The app's state.
pub struct SegnoApp {
    /// Remembered between sessions.
    pub settings: Settings,
    /// The open project, if any.
    pub project: Option<ProjectSummary>,
    /// The Project section.
    pub project_panel: project_panel::ProjectPanel,
    /// The last error to show (opening a project, reading a config …).
    pub message: Option<String>,
    /// The Configs section.
    pub editor: editor::ConfigEditor,
    /// The volume viewer.
    pub viewer: viewer::Viewer,
    /// Arrays found in the open project's containers (full paths).
    project_arrays: Vec<PathBuf>,
    /// A screenshot to take once everything on screen has loaded, then quit.
    screenshot: Option<ScreenshotJob>,
    /// The DataSplit wizard.
    pub wizard: wizard::Wizard,
    /// The Runs section (starting, stopping and monitoring trainers).
    pub runs: runs_panel::RunsPanel,
}

/// Taking the window's screenshot for `segno gui --screenshot`.
struct ScreenshotJob {
    path: PathBuf,
    started: std::time::Instant,
    settled_frames: u32,
    requested: bool,
    result: std::sync::Arc<std::sync::Mutex<Option<Result<String, String>>>>,
}

impl SegnoApp {
    /// The app with `settings`, opening `project` if given.
    pub fn new(settings: Settings, project: Option<&Path>) -> Self {
        let mut app = Self {
            settings,
            project: None,
            project_panel: project_panel::ProjectPanel::default(),
            message: None,
            editor: editor::ConfigEditor::default(),
            viewer: viewer::Viewer::default(),
            project_arrays: Vec::new(),
            screenshot: None,
            wizard: wizard::Wizard::default(),
            runs: runs_panel::RunsPanel::default(),
        };
        app.viewer
            .cache()
            .set_budget((app.settings.cpu_cache_mib as usize) << 20);
        if let Some(p) = project {
            app.open(p);
        }
        app
    }

    /// Built by eframe: restores the settings from its storage.
    pub fn from_creation(cc: &eframe::CreationContext<'_>, project: Option<&Path>) -> Self {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default();
        let mut app = Self::new(settings, project);
        if let Some(rs) = &cc.wgpu_render_state {
            crate::render::gpu::install(rs);
            app.viewer.gpu = true;
        }
        app
    }

    /// Opens (or creates) the project at `path`; a failure is shown, nothing is lost.
    pub fn open(&mut self, path: &Path) {
        match ProjectSummary::load(path) {
            Ok(summary) => {
                self.settings.remember(path);
                self.project_panel.path_field = path.display().to_string();
                self.project_arrays = summary
                    .arrays
                    .iter()
                    .flat_map(|c| crate::render::layer::list_arrays(&summary.root.join(c), 6))
                    .collect();
                self.viewer.serve_root = Some(summary.root.clone());
                self.viewer.project_views = viewer_start::saved_views(&summary.root);
                self.message = None;
                self.editor = editor::ConfigEditor::default();
                // The Configs section opens on the project's first run (or other config).
                let first = summary
                    .configs
                    .iter()
                    .find_map(|(f, names)| names.first().map(|n| (*f, n.clone())));
                if let Some((family, name)) = first {
                    self.editor.load(&summary.store().configs(), family, &name);
                }
                self.project = Some(summary);
            }
            Err(e) => self.message = Some(e),
        }
    }

    fn navigation(&mut self, ui: &mut egui::Ui) {
        ui.add_space(8.0);
        ui.heading("Segno");
        ui.add_space(8.0);
        for section in Section::ALL {
            let selected = self.settings.section == section;
            if ui
                .add_sized(
                    [ui.available_width(), 28.0],
                    egui::Button::selectable(selected, section.label()),
                )
                .clicked()
            {
                self.settings.section = section;
            }
        }
        ui.with_layout(egui::Layout::bottom_up(egui::Align::Min), |ui| {
            ui.add_space(8.0);
            let label = if self.settings.dark {
                "Light theme"
            } else {
                "Dark theme"
            };
            if ui.button(label).clicked() {
                self.settings.dark = !self.settings.dark;
            }
        });
    }

    fn project_section(&mut self, ui: &mut egui::Ui) {
        let action = self
            .project_panel
            .ui(ui, self.project.as_ref(), &mut self.settings);
        match action {
            Some(project_panel::ProjectAction::Open(path)) => self.open(&path),
            Some(project_panel::ProjectAction::CacheBudget(mib)) => {
                self.viewer.cache().set_budget((mib as usize) << 20);
            }
            None => {}
        }
    }

    fn configs_section(&mut self, ui: &mut egui::Ui) {
        ui.heading("Configs");
        let Some(p) = &self.project else {
            ui.label("Open a project first.");
            return;
        };
        let store = p.store().configs();
        if self.editor.ui(ui, &store, &p.configs) {
            self.reload_project();
        }
    }

    /// Reads the open project again (after configs were saved or deleted).
    pub fn reload_project(&mut self) {
        let Some(root) = self.project.as_ref().map(|p| p.root.clone()) else {
            return;
        };
        match ProjectSummary::load(&root) {
            Ok(summary) => self.project = Some(summary),
            Err(e) => self.message = Some(e),
        }
    }

    fn datasplit_section(&mut self, ui: &mut egui::Ui) {
        ui.heading("DataSplit");
        let Some(p) = &self.project else {
            ui.label("Open a project first.");
            return;
        };
        let mut preview = None;
        let mut saved = false;
        egui::ScrollArea::vertical()
            .id_salt("datasplits")
            .show(ui, |ui| {
                if p.datasplits.is_empty() {
                    ui.label("No datasplits in this project.");
                }
                for (k, (name, train, validate)) in p.datasplits.iter().enumerate() {
                    egui::CollapsingHeader::new(name)
                        .id_salt(("datasplit", k))
                        .default_open(true)
                        .show(ui, |ui| {
                            ui.label(format!("train: {}", train.join(", ")));
                            ui.label(format!("validate: {}", validate.join(", ")));
                        });
                }
                ui.separator();
                ui.heading("New datasplit");
                let before = self.wizard.note.clone();
                preview = self.wizard.ui(ui, p.store());
                saved = self.wizard.note.is_some() && self.wizard.note != before;
            });
        if saved {
            // List the new datasplit.
            let root = p.root.clone();
            if let Ok(summary) = ProjectSummary::load(&root) {
                self.project = Some(summary);
            }
        }
        if let Some(paths) = preview {
            for path in &paths {
                self.viewer.add_layer(path);
            }
            if paths.len() > 1 {
                self.viewer.centre_on(self.viewer.state.layers.len() - 1);
            }
            self.settings.section = Section::Viewer;
        }
    }

    fn runs_section(&mut self, ui: &mut egui::Ui) {
        match self.runs.ui(ui, self.project.as_ref()) {
            Some(runs_panel::RunsAction::View {
                run,
                iteration,
                parameters,
            }) => self.view_iteration(&run, iteration, parameters),
            Some(runs_panel::RunsAction::Targets(run)) => self.view_targets(&run),
            None => {}
        }
    }

    /// Removes every layer and overlay from the viewer, keeping its view settings.
    fn clear_viewer(&mut self) {
        let mut state = self.viewer.state.clone();
        state.layers.clear();
        state.overlays.clear();
        state.selected_layer = None;
        self.viewer.set_state(state);
    }

    /// Writes the targets and weights of a run's task for its first training crop into
    /// `<run>/targets.zarr` and shows them in the viewer over the crop's raw data and
    /// ground truth.
    pub fn view_targets(&mut self, run: &str) {
        let Some(p) = &self.project else {
            return;
        };
        let root = p.root.clone();
        let config = match p
            .store()
            .configs()
            .retrieve(crate::config::Family::Runs, run)
        {
            Ok(crate::config::AnyConfig::Run(c)) => c,
            Ok(_) => return,
            Err(e) => {
                self.message = Some(e.to_string());
                return;
            }
        };
        let container = RunDir::new(&root, run).targets_container();
        let (report, dataset) =
            match crate::ops::inspect::write_run_targets(&root, &config, None, &container, true) {
                Ok(r) => r,
                Err(e) => {
                    self.message = Some(format!("targets of run {run:?}: {e}"));
                    return;
                }
            };
        self.clear_viewer();
        self.viewer.validation = None;
        let resolve = |source: (String, String)| project_array_path(&root, source);
        for source in [
            dataset.raw_config.as_ref().and_then(|a| a.zarr_source()),
            dataset.gt_config.as_ref().and_then(|a| a.zarr_source()),
        ]
        .into_iter()
        .flatten()
        {
            self.viewer.add_layer(&resolve(source));
        }
        self.viewer.add_layer(&report.target);
        let n = self.viewer.state.layers.len();
        self.viewer.state.layers[n - 1].name = format!("target ({})", dataset.name);
        self.viewer.centre_on(n - 1);
        self.viewer.add_layer(&report.weight);
        let n = self.viewer.state.layers.len();
        self.viewer.state.layers[n - 1].name = format!("weight ({})", dataset.name);
        self.viewer.state.layers[n - 1].visible = false;
        self.message = Some(format!(
            "targets of run {run} on {}: {}",
            dataset.name,
            report.target.display()
        ));
        self.settings.section = Section::Viewer;
    }

    /// Shows a run's validation in the viewer: the validation dataset's raw data and
    /// ground truth with the prediction and the output of `parameters` at `iteration`
    /// (the latest iteration and the first stored parameters when not given). The
    /// viewer's iteration slider and parameter choice then swap the prediction and output.
    pub fn view_iteration(
        &mut self,
        run: &str,
        iteration: Option<u64>,
        parameters: Option<String>,
    ) {
        let Some(p) = &self.project else {
            return;
        };
        let root = p.root.clone();
        let layout = RunDir::new(&root, run);
        let run_dir = layout.dir().to_path_buf();
        let iterations = layout.validated_iterations();
        let Some(latest) = iterations.last().copied() else {
            self.message = Some(format!("run {run:?} has no validation arrays yet"));
            return;
        };
        let config = match p
            .store()
            .configs()
            .retrieve(crate::config::Family::Runs, run)
        {
            Ok(crate::config::AnyConfig::Run(c)) => Some(c),
            _ => None,
        };
        // The validation dataset: the one validation wrote arrays for, with its sources.
        let datasets = config
            .as_ref()
            .map(|c| validation_datasets(&c.datasplit_config))
            .unwrap_or_default();
        let index = iterations
            .iter()
            .position(|i| Some(*i) == iteration)
            .unwrap_or(iterations.len() - 1);
        let it = iterations[index];
        let chosen = datasets
            .iter()
            .find(|d| layout.validation_prediction(it, &d.0).exists())
            .cloned()
            .or_else(|| {
                // Without the config: the first dataset of that iteration.
                layout
                    .validation_arrays(latest)
                    .into_iter()
                    .next()
                    .map(|a| (a.dataset, None, None, None))
            });
        let Some((dataset, raw, gt, mask)) = chosen else {
            self.message = Some(format!("no validation prediction of run {run:?} found"));
            return;
        };
        self.clear_viewer();
        let resolve = |source: (String, String)| project_array_path(&root, source);
        let raw = raw.map(resolve).or_else(|| {
            self.project_arrays
                .iter()
                .find(|p| p.file_name().is_some_and(|n| n == "raw"))
                .cloned()
        });
        if let Some(raw) = raw {
            self.viewer.add_layer(&raw);
        }
        let mut truth_layer = None;
        if let Some(gt) = gt.map(resolve) {
            self.viewer.add_layer(&gt);
            truth_layer = self.viewer.state.layers.last().map(|l| l.name.clone());
        }
        let mut mask_layer = None;
        if let Some(mask) = mask.map(resolve) {
            self.viewer.add_layer(&mask);
            if let Some(l) = self.viewer.state.layers.last_mut() {
                l.visible = false;
                mask_layer = Some(l.name.clone());
            }
        }
        let mut browse = viewer::ValidationBrowse {
            run: run.to_string(),
            run_dir: run_dir.clone(),
            dataset,
            iterations,
            index,
            parameters: Vec::new(),
            parameter: None,
            prediction_layer: String::new(),
            output_layer: None,
        };
        browse.parameters = browse.stored_parameters();
        browse.parameter = parameters
            .filter(|p| browse.parameters.contains(p))
            .or_else(|| browse.parameters.first().cloned());
        self.viewer.add_layer(&browse.prediction_path());
        let n = self.viewer.state.layers.len();
        browse.prediction_layer = self.viewer.state.layers[n - 1].name.clone();
        self.viewer.centre_on(n - 1);
        if let Some(out) = browse.output_path() {
            self.viewer.add_layer(&out);
            let n = self.viewer.state.layers.len();
            let name = format!("output {}", browse.parameter.clone().unwrap_or_default());
            self.viewer.state.layers[n - 1].name = name.clone();
            browse.output_layer = Some(name);
        }
        self.viewer.validation = Some(browse);
        // Errors against the ground truth, judged where it is known.
        if let Some(truth) = truth_layer {
            self.viewer.overlay_validation(&truth, mask_layer);
        }
        self.settings.section = Section::Viewer;
    }

    fn viewer_section(&mut self, ui: &mut egui::Ui) {
        self.viewer.ui(ui, &self.project_arrays);
    }
}

impl SegnoApp {
    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(job) = &mut self.screenshot else {
            return;
        };
        if job.requested {
            return;
        }
        ctx.request_repaint();
        if self.viewer.loading() {
            job.settled_frames = 0;
        } else {
            job.settled_frames += 1;
        }
        let timed_out = job.started.elapsed() > std::time::Duration::from_secs(120);
        if job.settled_frames < 5 && !timed_out {
            return;
        }
        job.requested = true;
        let path = job.path.clone();
        let result = std::sync::Arc::clone(&job.result);
        let c = ctx.clone();
        ctx.request_screenshot(move |image| {
            let [w, h] = image.size;
            let rgba: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_array()).collect();
            let r = screenshot::save_png(&path, w as u32, h as u32, &rgba).map(|()| {
                let note = if timed_out {
                    " (some chunks had not loaded after 120 s)"
                } else {
                    ""
                };
                format!(
                    "wrote {} ({w}×{h}, from the app window){note}",
                    path.display()
                )
            });
            if let Ok(mut slot) = result.lock() {
                *slot = Some(r);
            }
            c.send_viewport_cmd(egui::ViewportCommand::Close);
        });
    }
}

impl eframe::App for SegnoApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.screenshot_step(&ui.ctx().clone());
        ui.ctx().set_visuals(if self.settings.dark {
            egui::Visuals::dark()
        } else {
            egui::Visuals::light()
        });
        egui::Panel::left("navigation")
            .resizable(false)
            .exact_size(150.0)
            .show(ui, |ui| self.navigation(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            if let Some(m) = &self.message {
                ui.colored_label(ui.visuals().error_fg_color, m);
            }
            match self.settings.section {
                Section::Project => self.project_section(ui),
                Section::Configs => self.configs_section(ui),
                Section::DataSplit => self.datasplit_section(ui),
                Section::Runs => self.runs_section(ui),
                Section::Viewer => self.viewer_section(ui),
            }
        });
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
}

/// What `segno gui` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct GuiOptions {
    /// The project to open.
    pub project: Option<PathBuf>,
    /// A view state to show in the Viewer.
    pub view: Option<PathBuf>,
    /// Save a screenshot here once everything visible has loaded, then exit.
    pub screenshot: Option<PathBuf>,
    /// Window (or offscreen image) size in pixels.
    pub size: [u32; 2],
    /// Render the screenshot offscreen even when a display is available.
    pub headless: bool,
    /// The section to show first (the Viewer when a view or screenshot is asked for).
    pub section: Option<Section>,
}

/// Paths of the files and folders dropped on the window this frame.
pub fn dropped_paths(ctx: &egui::Context) -> Vec<PathBuf> {
    ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    })
}

/// Whether a display (X11 or Wayland) is available for a window.
pub fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The view `segno gui` starts with: the `--view` file, or else the project's raw array.
fn initial_view(options: &GuiOptions) -> Result<Option<crate::render::state::ViewState>, GuiError> {
    if let Some(v) = &options.view {
        return crate::render::state::ViewState::load(v)
            .map(Some)
            .map_err(|e| GuiError::Start(e.to_string()));
    }
    Ok(None)
}

/// Opens the app window (wgpu renderer) as `options` say; with a screenshot path and no
/// display (or `headless`), renders the view offscreen instead. Returns a report line for
/// screenshots.
pub fn run(options: GuiOptions) -> Result<Option<String>, GuiError> {
    let view = initial_view(&options)?;
    let first_section = options.section;
    if let Some(out) = &options.screenshot {
        let viewer = first_section.is_none_or(|s| s == Section::Viewer);
        if !viewer && (options.headless || !has_display()) {
            return Err(GuiError::Start(format!(
                "a screenshot of the {} section needs a display: run it under \
                 `xvfb-run -a -s \"-screen 0 1280x800x24\"`",
                first_section.map_or("Viewer", Section::label)
            )));
        }
        if options.headless || !has_display() {
            let state = match view {
                Some(v) => v,
                None => default_view(options.project.as_deref())?,
            };
            return screenshot::headless_screenshot(state, options.size, out)
                .map(Some)
                .map_err(GuiError::Start);
        }
    }
    let size = options.size;
    // A screenshot starts from default settings in a storage of its own: it is taken at the
    // size asked for (not the last session's window), looks the same on every machine, and
    // leaves the user's remembered settings alone.
    let scratch = match &options.screenshot {
        Some(_) => Some(tempfile::tempdir().map_err(|e| GuiError::Start(e.to_string()))?),
        None => None,
    };
    let native = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("Segno")
            .with_inner_size([size[0] as f32, size[1] as f32]),
        persist_window: scratch.is_none(),
        persistence_path: scratch.as_ref().map(|d| d.path().join("app.ron")),
        ..Default::default()
    };
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let job_result = std::sync::Arc::clone(&result);
    let project = options.project.clone();
    let screenshot = options.screenshot.clone();
    eframe::run_native(
        "Segno",
        native,
        Box::new(move |cc| {
            let mut app = SegnoApp::from_creation(cc, project.as_deref());
            if let Some(v) = view {
                app.viewer.set_state(v);
                app.settings.section = Section::Viewer;
            }
            if let Some(s) = first_section {
                app.settings.section = s;
            }
            if let Some(path) = screenshot {
                app.settings.section = first_section.unwrap_or(Section::Viewer);
                app.screenshot = Some(ScreenshotJob {
                    path,
                    started: std::time::Instant::now(),
                    settled_frames: 0,
                    requested: false,
                    result: job_result,
                });
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| GuiError::Start(e.to_string()))?;
    let outcome = result.lock().ok().and_then(|mut r| r.take());
    match outcome {
        Some(Ok(line)) => Ok(Some(line)),
        Some(Err(e)) => Err(GuiError::Start(e)),
        None if options.screenshot.is_some() => Err(GuiError::Start(
            "the window closed before the screenshot was taken".into(),
        )),
        None => Ok(None),
    }
}

/// A view of the project's first array named like raw data (or its first array).
fn default_view(project: Option<&Path>) -> Result<crate::render::state::ViewState, GuiError> {
    let Some(root) = project else {
        return Err(GuiError::Start(
            "--screenshot needs --view STATE.json or a project with arrays".into(),
        ));
    };
    let summary = ProjectSummary::load(root).map_err(GuiError::Start)?;
    let arrays: Vec<PathBuf> = summary
        .arrays
        .iter()
        .flat_map(|c| crate::render::layer::list_arrays(&root.join(c), 6))
        .collect();
    let pick = arrays
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "raw"))
        .or(arrays.first())
        .ok_or_else(|| GuiError::Start(format!("{}: no arrays to show", root.display())))?;
    let mut v = viewer::Viewer::default();
    v.add_layer(pick);
    Ok(v.state.clone())
}

/// The path of a config's `(container, dataset)` source, with a relative container read
/// from the project's root.
fn project_array_path(root: &Path, (container, dataset): (String, String)) -> PathBuf {
    let c = PathBuf::from(&container);
    let c = if c.is_absolute() { c } else { root.join(c) };
    open_path(&c.join(&dataset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_projects_are_unique_most_recent_first_and_bounded() {
        let mut s = Settings::default();
        for i in 0..12 {
            s.remember(Path::new(&format!("/p/{i}")));
        }
        s.remember(Path::new("/p/5"));
        assert_eq!(s.recent.len(), MAX_RECENT);
        assert_eq!(s.recent[0], PathBuf::from("/p/5"));
        assert_eq!(s.recent[1], PathBuf::from("/p/11"));
        assert_eq!(
            s.recent.iter().filter(|p| **p == Path::new("/p/5")).count(),
            1
        );
        // Settings survive a JSON round trip (what eframe's storage keeps).
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), s);
    }
}
