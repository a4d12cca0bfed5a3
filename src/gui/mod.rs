//! The desktop app: a left navigation (Project · Configs · DataSplit · Runs · Apply ·
//! Viewer) over
//! one project directory, light and dark themes, recent projects remembered between
//! sessions. The app only calls the engine (config store, arrays, run records); it never
//! duplicates it.
//!
//! This file holds `SegnoApp`, which routes between the sections; `window` starts it (a
//! window, or a headless render) and `run_views` puts a run's data into the viewer.

pub mod apply_panel;
pub mod demo_view;
pub mod editor;
pub mod launcher;
pub mod live_bench;
pub mod project;
pub mod project_panel;
mod run_views;
pub mod runs_panel;
pub mod screenshot;
pub mod viewer;
pub mod viewer_bench;
pub mod viewer_start;
mod window;
pub mod wizard;

pub use window::{has_display, run, GuiOptions};

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
    /// A trained run applied to a volume as a block job.
    Apply,
    /// Arrays of the project.
    Viewer,
}

impl Section {
    /// Every section, in navigation order.
    pub const ALL: [Section; 6] = [
        Section::Project,
        Section::Configs,
        Section::DataSplit,
        Section::Runs,
        Section::Apply,
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
            Section::Apply => "Apply",
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
    /// GPU memory for the viewer's chunks in MiB.
    #[serde(default = "default_gpu_cache_mib")]
    pub gpu_cache_mib: u64,
}

fn default_gpu_cache_mib() -> u64 {
    crate::render::gpu_gather::DEFAULT_GPU_CACHE_BYTES >> 20
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
            gpu_cache_mib: default_gpu_cache_mib(),
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
    /// The Apply section (a run applied to a volume as a block job).
    pub apply: apply_panel::ApplyPanel,
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
            apply: apply_panel::ApplyPanel::default(),
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
            crate::render::gpu::install(rs, app.settings.gpu_cache_mib << 20);
            app.viewer.gpu_budget_bytes = app.settings.gpu_cache_mib << 20;
            app.viewer.use_gpu(true, true);
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
                self.viewer.project = Some(summary.root.clone());
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
            Some(project_panel::ProjectAction::GpuBudget(mib)) => {
                self.viewer.gpu_budget_bytes = mib << 20;
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
            Some(runs_panel::RunsAction::PredictHere(run)) => self.predict_here(&run),
            None => {}
        }
    }

    fn apply_section(&mut self, ui: &mut egui::Ui) {
        // The viewer's layers first, then the project's other arrays.
        let mut arrays: Vec<PathBuf> = self
            .viewer
            .state
            .layers
            .iter()
            .map(|l| l.source.clone())
            .collect();
        for a in &self.project_arrays {
            if !arrays.contains(a) {
                arrays.push(a.clone());
            }
        }
        match self.apply.ui(ui, self.project.as_ref(), &arrays) {
            Some(apply_panel::ApplyAction::Open {
                raw,
                prediction,
                segmentation,
            }) => self.view_applied(&raw, &prediction, &segmentation),
            Some(apply_panel::ApplyAction::DrawRegion { input }) => {
                self.show_input(&input);
                self.viewer.start_region(&self.apply.roi);
                self.settings.section = Section::Viewer;
            }
            Some(apply_panel::ApplyAction::Watch { input }) => {
                self.show_input(&input);
                self.message = Some("the Viewer shows the job's blocks as they finish".into());
            }
            None => {}
        }
    }

    /// Shows `input` in the viewer (the only layer) unless it is there already.
    fn show_input(&mut self, input: &std::path::Path) {
        let path = run_views::open_path(input);
        if !self.viewer.state.layers.iter().any(|l| l.source == path) {
            self.clear_viewer();
            self.viewer.validation = None;
            self.viewer.add_layer(&path);
            self.viewer.centre_on(0);
        }
    }

    fn viewer_section(&mut self, ui: &mut egui::Ui) {
        // The Apply section's job is drawn over the data; a region drawn for it goes back.
        // (A clone shares the block states.)
        if let Some(map) = self.apply.block_map() {
            self.viewer.block_map = Some(map.clone());
        }
        // Runs trained since the project opened are offered too.
        if let Some(p) = &self.project {
            let runs: Vec<String> = p.runs.iter().map(|r| r.name.clone()).collect();
            if runs != self.viewer.project_runs {
                self.viewer.project_runs = runs;
            }
        }
        self.viewer.ui(ui, &self.project_arrays);
        if let Some(roi) = self.viewer.take_region() {
            self.apply.roi = roi;
            self.settings.section = Section::Apply;
        }
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
                Section::Apply => self.apply_section(ui),
                Section::Viewer => self.viewer_section(ui),
            }
        });
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.settings);
    }
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
