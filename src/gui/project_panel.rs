//! The Project section: open a project by path, folder dialog or dropped folder; its
//! overview; the viewer's chunk-cache budget; the recent projects.

use std::path::PathBuf;

use eframe::egui;

use super::project::ProjectSummary;
use super::Settings;

/// What the user asked of the Project section in one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectAction {
    /// Open (or create) the project at this directory.
    Open(PathBuf),
    /// The viewer's chunk-cache budget changed to this many MiB.
    CacheBudget(u64),
    /// The viewer's GPU memory for chunks changed (MiB).
    GpuBudget(u64),
}

/// The Project section's own state.
#[derive(Debug, Clone, Default)]
pub struct ProjectPanel {
    /// The text of the directory field.
    pub path_field: String,
}

impl ProjectPanel {
    /// Draws the section for `project` (when one is open), editing `settings` in place;
    /// returns what the app must do.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: Option<&ProjectSummary>,
        settings: &mut Settings,
    ) -> Option<ProjectAction> {
        let mut action = None;
        ui.heading("Project");
        // A folder dropped on the window opens as the project.
        if let Some(d) = super::dropped_paths(ui.ctx())
            .into_iter()
            .find(|p| p.is_dir())
        {
            action = Some(ProjectAction::Open(d));
        }
        ui.horizontal(|ui| {
            ui.label("Directory");
            ui.add(
                egui::TextEdit::singleline(&mut self.path_field)
                    .desired_width(420.0)
                    .hint_text("a DaCapo/Segno project directory"),
            );
            if ui.button("Open").clicked() && !self.path_field.trim().is_empty() {
                action = Some(ProjectAction::Open(PathBuf::from(self.path_field.trim())));
            }
            if ui.button("Browse…").clicked() {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    action = Some(ProjectAction::Open(dir));
                }
            }
        });
        ui.separator();
        if let Some(p) = project {
            p.overview(ui);
        }
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Viewer chunk cache");
            let r = ui.add(
                egui::DragValue::new(&mut settings.cpu_cache_mib)
                    .range(64..=1 << 20)
                    .suffix(" MiB"),
            );
            if r.changed() {
                action = Some(ProjectAction::CacheBudget(settings.cpu_cache_mib));
            }
        });
        ui.horizontal(|ui| {
            ui.label("Viewer GPU memory for chunks");
            let r = ui.add(
                egui::DragValue::new(&mut settings.gpu_cache_mib)
                    .range(16..=1 << 20)
                    .suffix(" MiB"),
            );
            if r.changed() {
                action = Some(ProjectAction::GpuBudget(settings.gpu_cache_mib));
            }
        });
        ui.separator();
        ui.label(egui::RichText::new("Recent projects").strong());
        for r in &settings.recent {
            if ui.link(r.display().to_string()).clicked() {
                action = Some(ProjectAction::Open(r.clone()));
            }
        }
        if settings.recent.is_empty() {
            ui.label("none yet");
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    struct State {
        panel: ProjectPanel,
        project: Option<ProjectSummary>,
        settings: Settings,
        actions: Vec<ProjectAction>,
    }

    fn harness(state: State) -> Harness<'static, State> {
        Harness::new_ui_state(
            |ui, s: &mut State| {
                if let Some(a) = s.panel.ui(ui, s.project.as_ref(), &mut s.settings) {
                    s.actions.push(a);
                }
            },
            state,
        )
    }

    #[test]
    fn the_project_panel_opens_typed_and_recent_projects_and_shows_the_open_one() {
        let dir = tempfile::tempdir().unwrap();
        let project = ProjectSummary::load(dir.path()).unwrap();
        let root = project.root.display().to_string();
        let recent = PathBuf::from("/data/older-project");
        let settings = Settings {
            recent: vec![recent.clone()],
            ..Settings::default()
        };
        let mut h = harness(State {
            panel: ProjectPanel::default(),
            project: Some(project),
            settings,
            actions: Vec::new(),
        });
        h.run();
        // The open project's overview.
        h.get_by_label(&root);
        h.get_by_label("0 array containers");
        // A recent project opens on a click.
        h.get_by_label("/data/older-project").click();
        h.run();
        assert_eq!(h.state().actions, vec![ProjectAction::Open(recent)]);
        // A typed directory opens with Open; an empty field does nothing.
        h.get_by_label("Open").click();
        h.run();
        assert_eq!(h.state().actions.len(), 1);
        h.state_mut().panel.path_field = " /data/typed ".into();
        h.get_by_label("Open").click();
        h.run();
        assert_eq!(
            h.state().actions.last(),
            Some(&ProjectAction::Open(PathBuf::from("/data/typed")))
        );
    }

    #[test]
    fn without_a_project_or_recent_ones_the_panel_says_so() {
        let mut h = harness(State {
            panel: ProjectPanel::default(),
            project: None,
            settings: Settings {
                recent: Vec::new(),
                ..Settings::default()
            },
            actions: Vec::new(),
        });
        h.run();
        h.get_by_label("none yet");
        assert!(h.state().actions.is_empty());
    }
}
