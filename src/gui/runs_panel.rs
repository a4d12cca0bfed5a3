//! The Runs section: every run of the project with its task, state, progress and best
//! scores; start/stop/resume buttons; the monitor of the selected run (losses, validation
//! scores, log); and the buttons that show a run's data in the viewer.

use eframe::egui;

use super::launcher::{self, Launcher};
use super::project::ProjectSummary;

/// What the user asked of the Runs section in one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum RunsAction {
    /// Show the run's validation data in the viewer: an iteration and parameter set, or
    /// (both `None`) the latest validation.
    View {
        /// The run.
        run: String,
        /// The iteration, if one was picked.
        iteration: Option<u64>,
        /// The post-processing parameter set, if one was picked.
        parameters: Option<String>,
    },
    /// Show the targets and weights the run's task trains on, over its first crop.
    Targets(String),
    /// Show the run's latest checkpoint computing over its first validation volume (or the
    /// project's raw data), as a layer computed for what is on screen.
    PredictHere(String),
}

/// The Runs section's own state.
#[derive(Default)]
pub struct RunsPanel {
    /// Starts, stops and monitors trainers.
    pub launcher: Launcher,
}

impl RunsPanel {
    /// Draws the section for `project`; returns what the app must do.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: Option<&ProjectSummary>,
    ) -> Option<RunsAction> {
        ui.heading("Runs");
        egui::ScrollArea::both()
            .id_salt("runs-scroll")
            .show(ui, |ui| self.body(ui, project))
            .inner
    }

    fn body(&mut self, ui: &mut egui::Ui, project: Option<&ProjectSummary>) -> Option<RunsAction> {
        let Some(p) = project else {
            ui.label("Open a project first.");
            return None;
        };
        if p.runs.is_empty() {
            ui.label("No runs in this project.");
            return None;
        }
        let root = p.root.clone();
        let list: Vec<(String, u64)> = p
            .runs
            .iter()
            .map(|r| (r.name.clone(), r.iterations))
            .collect();
        self.launcher.refresh(&root, &list, false);
        if self.launcher.any_training() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs(1));
        }
        let mut action = None;
        let launcher = &mut self.launcher;
        egui::Grid::new("runs")
            .striped(true)
            .num_columns(8)
            .show(ui, |ui| {
                for h in ["run", "task", "status", "iterations", "best", "", "", ""] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for r in &p.runs {
                    ui.label(&r.name);
                    ui.label(&r.task);
                    let m = launcher.runs.get(&r.name);
                    let state = m
                        .map(launcher::RunMonitor::status)
                        .unwrap_or_else(|| "not started".into());
                    ui.label(state);
                    let done = m.map(|m| m.losses.len()).unwrap_or(0);
                    // Read with the rest of the run's state (once a second), not every frame.
                    let stored = m.is_some_and(|m| m.validated);
                    ui.label(format!("{done} / {}", r.iterations));
                    ui.label(r.best.join("\n"));
                    ui.horizontal(|ui| launcher.buttons(ui, &root, &r.name));
                    if ui
                        .add_enabled(stored, egui::Button::new("View"))
                        .on_hover_text(
                            "raw data, ground truth and the latest validation prediction and output",
                        )
                        .clicked()
                    {
                        action = Some(RunsAction::View {
                            run: r.name.clone(),
                            iteration: None,
                            parameters: None,
                        });
                    }
                    if ui
                        .button("Targets")
                        .on_hover_text(
                            "the targets and weights the run's task trains on for its first training crop, beside its raw data and ground truth",
                        )
                        .clicked()
                    {
                        action = Some(RunsAction::Targets(r.name.clone()));
                    }
                    if ui
                        .button("Predict here")
                        .on_hover_text(
                            "the latest checkpoint computing over the run's raw data in the viewer, for what is on screen (it follows new checkpoints while the run trains)",
                        )
                        .clicked()
                    {
                        action = Some(RunsAction::PredictHere(r.name.clone()));
                    }
                    ui.end_row();
                }
            });
        ui.separator();
        if let Some((run, iteration, parameters)) = self.launcher.monitor_ui(ui) {
            action = Some(RunsAction::View {
                run,
                iteration: Some(iteration),
                parameters: Some(parameters),
            });
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnyConfig;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    struct State {
        panel: RunsPanel,
        project: Option<ProjectSummary>,
        actions: Vec<RunsAction>,
    }

    fn harness(project: Option<ProjectSummary>) -> Harness<'static, State> {
        Harness::new_ui_state(
            |ui, s: &mut State| {
                if let Some(a) = s.panel.ui(ui, s.project.as_ref()) {
                    s.actions.push(a);
                }
            },
            State {
                panel: RunsPanel::default(),
                project,
                actions: Vec::new(),
            },
        )
    }

    #[test]
    fn the_runs_panel_lists_runs_and_asks_for_their_targets() {
        let dir = tempfile::tempdir().unwrap();
        let run = crate::demo::project::demo_run(20, 10);
        crate::store::Project::open(dir.path())
            .unwrap()
            .configs()
            .store(&AnyConfig::Run(Box::new(run.clone())))
            .unwrap();
        let project = ProjectSummary::load(dir.path()).unwrap();
        let mut h = harness(Some(project));
        h.run();
        h.get_by_label(&run.name);
        h.get_by_label("DistanceTaskConfig");
        h.get_by_label("not started");
        h.get_by_label("0 / 20");
        // Nothing validated yet: View is disabled, Targets asks for the run's targets.
        h.get_by_label("View").click();
        h.run();
        assert!(h.state().actions.is_empty());
        h.get_by_label("Targets").click();
        h.run();
        assert_eq!(
            h.state().actions,
            vec![RunsAction::Targets(run.name.clone())]
        );
    }

    #[test]
    fn without_a_project_the_runs_panel_asks_for_one() {
        let mut h = harness(None);
        h.run();
        h.get_by_label("Open a project first.");
    }
}
