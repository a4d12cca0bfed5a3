//! The Import page: DaCapo YAML files or folders of them into the project, one line of
//! outcome per file.

use super::*;

impl ConfigEditor {
    /// Imports every config file at `path` (a file or a folder) into `store`, one report
    /// line each. Returns whether anything was stored.
    pub fn import(&mut self, store: &ConfigStore, path: &std::path::Path) -> bool {
        self.import_report.clear();
        let files = match crate::store::config_files(path) {
            Ok(f) => f,
            Err(e) => {
                self.import_report.push(format!("error: {e}"));
                return false;
            }
        };
        let mut stored = false;
        for (file, family) in files {
            let shown = file.display();
            let imported = store.import_file(&file, family);
            let what = match (imported.family, &imported.name) {
                (Some(f), Some(n)) => format!("{} {n:?}", f.noun()),
                _ => String::new(),
            };
            let line = match imported.outcome {
                Ok(StoreOutcome::Written) => {
                    stored = true;
                    format!("{shown}: stored {what}")
                }
                Ok(StoreOutcome::Unchanged) => {
                    format!("{shown}: {what} already stored (identical)")
                }
                Err(e) => format!("{shown}: error: {e}"),
            };
            self.import_report.push(line);
        }
        if self.import_report.is_empty() {
            self.import_report
                .push(format!("{}: no YAML or JSON files found", path.display()));
        }
        stored
    }

    pub(super) fn import_page(&mut self, ui: &mut egui::Ui, store: &ConfigStore) -> bool {
        let mut changed = false;
        ui.label(
            "Import DaCapo config files (YAML or JSON), or folders of them: a folder named \
             after a family (tasks/, runs/, …) says what its files are; other files are \
             recognised by their contents. Files can also be dropped on the window.",
        );
        let mut target: Option<PathBuf> = None;
        ui.horizontal(|ui| {
            let l = ui.label("file or folder");
            ui.add(egui::TextEdit::singleline(&mut self.import_path).desired_width(420.0))
                .labelled_by(l.id);
            if ui.button("Import").clicked() && !self.import_path.trim().is_empty() {
                target = Some(PathBuf::from(self.import_path.trim()));
            }
            if ui.button("Choose files…").clicked() {
                if let Some(files) = rfd::FileDialog::new()
                    .add_filter("configs", &["yaml", "yml", "json"])
                    .pick_files()
                {
                    let mut report = Vec::new();
                    for f in files {
                        changed |= self.import(store, &f);
                        report.append(&mut self.import_report);
                    }
                    self.import_report = report;
                }
            }
            if ui.button("Choose folder…").clicked() {
                target = rfd::FileDialog::new().pick_folder();
            }
        });
        let dropped = crate::gui::dropped_paths(ui.ctx());
        if !dropped.is_empty() {
            let mut report = Vec::new();
            for f in dropped {
                changed |= self.import(store, &f);
                report.append(&mut self.import_report);
            }
            self.import_report = report;
        }
        if let Some(t) = target {
            changed |= self.import(store, &t);
        }
        for line in &self.import_report {
            if line.contains(": error: ") || line.starts_with("error: ") {
                ui.colored_label(problem_color(ui), line);
            } else {
                ui.label(line);
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Family;
    use crate::gui::editor::harness::harness;
    use crate::gui::editor::EditorTab;
    use egui_kittest::kittest::Queryable;

    #[test]
    fn the_import_page_alone_stores_good_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let project = crate::store::Project::open(dir.path().join("p")).unwrap();
        let import = dir.path().join("in");
        std::fs::create_dir_all(import.join("trainers")).unwrap();
        std::fs::write(
            import.join("trainers/t.yaml"),
            "__type__: GunpowderTrainerConfig\nname: t\nbatch_size: 2\nlearning_rate: 0.001\n",
        )
        .unwrap();
        std::fs::write(import.join("bad.yaml"), "__type__: NoSuchThing\nname: x\n").unwrap();
        let mut h = harness(project, EditorTab::Import);
        h.run();
        h.get_by_label("file or folder")
            .set_text_value_accesskit(&import.display().to_string());
        h.run_steps(2);
        h.get_all_by_label("Import").last().unwrap().click();
        h.run_steps(2);
        let report = h.state().editor.import_report.join("\n");
        assert!(
            report.contains("trainers/t.yaml: stored trainer \"t\""),
            "{report}"
        );
        assert!(report.contains("bad.yaml: error:"), "{report}");
        assert_eq!(
            h.state().project.configs().names(Family::Trainers).unwrap(),
            ["t"]
        );
    }
}
