//! The desktop app: a left navigation (Project · Configs · DataSplit · Runs · Viewer) over
//! one project directory, light and dark themes, recent projects remembered between
//! sessions. The app only calls the engine (config store, arrays, run records); it never
//! duplicates it.

mod project;
pub mod viewer;

use std::path::{Path, PathBuf};

use eframe::egui;
use serde::{Deserialize, Serialize};

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            recent: Vec::new(),
            dark: true,
            section: Section::Project,
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
    /// The text of the project path field.
    path_field: String,
    /// The last error to show (opening a project, reading a config …).
    pub message: Option<String>,
    /// The config shown in the Configs section, with its YAML (read once when selected).
    selected_config: Option<(crate::config::Family, String, String)>,
    /// The volume viewer.
    pub viewer: viewer::Viewer,
    /// Arrays found in the open project's containers (full paths).
    project_arrays: Vec<PathBuf>,
}

impl SegnoApp {
    /// The app with `settings`, opening `project` if given.
    pub fn new(settings: Settings, project: Option<&Path>) -> Self {
        let mut app = Self {
            settings,
            project: None,
            path_field: String::new(),
            message: None,
            selected_config: None,
            viewer: viewer::Viewer::default(),
            project_arrays: Vec::new(),
        };
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
                self.path_field = path.display().to_string();
                self.project_arrays = summary
                    .arrays
                    .iter()
                    .flat_map(|c| crate::render::layer::list_arrays(&summary.root.join(c), 6))
                    .collect();
                self.project = Some(summary);
                self.message = None;
                self.selected_config = None;
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
        ui.heading("Project");
        ui.horizontal(|ui| {
            ui.label("Directory");
            ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .desired_width(420.0)
                    .hint_text("a DaCapo/Segno project directory"),
            );
            if ui.button("Open").clicked() && !self.path_field.trim().is_empty() {
                let p = PathBuf::from(self.path_field.trim());
                self.open(&p);
            }
            if ui.button("Browse…").clicked() {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    self.open(&dir);
                }
            }
        });
        ui.separator();
        if let Some(p) = &self.project {
            p.overview(ui);
        }
        ui.separator();
        ui.label(egui::RichText::new("Recent projects").strong());
        let mut open = None;
        for r in &self.settings.recent {
            if ui.link(r.display().to_string()).clicked() {
                open = Some(r.clone());
            }
        }
        if self.settings.recent.is_empty() {
            ui.label("none yet");
        }
        if let Some(p) = open {
            self.open(&p);
        }
    }

    fn configs_section(&mut self, ui: &mut egui::Ui) {
        ui.heading("Configs");
        let Some(p) = &self.project else {
            ui.label("Open a project first.");
            return;
        };
        let mut select = None;
        ui.columns(2, |cols| {
            egui::ScrollArea::vertical()
                .id_salt("config-list")
                .show(&mut cols[0], |ui| {
                    for (family, names) in &p.configs {
                        egui::CollapsingHeader::new(format!("{} ({})", family.noun(), names.len()))
                            .default_open(true)
                            .show(ui, |ui| {
                                for n in names {
                                    let on = self
                                        .selected_config
                                        .as_ref()
                                        .is_some_and(|(f, name, _)| f == family && name == n);
                                    if ui.selectable_label(on, n).clicked() {
                                        select = Some((*family, n.clone()));
                                    }
                                }
                            });
                    }
                });
            match &self.selected_config {
                Some((_, _, text)) => {
                    egui::ScrollArea::vertical()
                        .id_salt("config-yaml")
                        .show(&mut cols[1], |ui| {
                            ui.add(
                                egui::TextEdit::multiline(&mut text.as_str())
                                    .code_editor()
                                    .desired_width(f32::INFINITY),
                            );
                        });
                }
                None => {
                    cols[1].label("Select a config to see its YAML.");
                }
            }
        });
        if let Some((family, name)) = select {
            let text = p.config_yaml(family, &name);
            self.selected_config = Some((family, name, text));
        }
    }

    fn datasplit_section(&self, ui: &mut egui::Ui) {
        ui.heading("DataSplit");
        let Some(p) = &self.project else {
            ui.label("Open a project first.");
            return;
        };
        if p.datasplits.is_empty() {
            ui.label("No datasplits in this project.");
        }
        for (name, train, validate) in &p.datasplits {
            egui::CollapsingHeader::new(name)
                .default_open(true)
                .show(ui, |ui| {
                    ui.label(format!("train: {}", train.join(", ")));
                    ui.label(format!("validate: {}", validate.join(", ")));
                });
        }
    }

    fn runs_section(&self, ui: &mut egui::Ui) {
        ui.heading("Runs");
        let Some(p) = &self.project else {
            ui.label("Open a project first.");
            return;
        };
        if p.runs.is_empty() {
            ui.label("No runs in this project.");
            return;
        }
        egui::Grid::new("runs")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for h in ["run", "task", "iterations", "latest checkpoint", "best"] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for r in &p.runs {
                    ui.label(&r.name);
                    ui.label(&r.task);
                    ui.label(r.iterations.to_string());
                    ui.label(
                        r.latest_checkpoint
                            .map(|i| i.to_string())
                            .unwrap_or_else(|| "not started".into()),
                    );
                    ui.label(r.best.join("\n"));
                    ui.end_row();
                }
            });
    }

    fn viewer_section(&mut self, ui: &mut egui::Ui) {
        self.viewer.ui(ui, &self.project_arrays);
    }
}

impl eframe::App for SegnoApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
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

/// Opens the app window (wgpu renderer), with `project` open if given.
pub fn run(project: Option<PathBuf>) -> Result<(), GuiError> {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        viewport: egui::ViewportBuilder::default()
            .with_title("Segno")
            .with_inner_size([1280.0, 800.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Segno",
        options,
        Box::new(move |cc| Ok(Box::new(SegnoApp::from_creation(cc, project.as_deref())))),
    )
    .map_err(|e| GuiError::Start(e.to_string()))
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
