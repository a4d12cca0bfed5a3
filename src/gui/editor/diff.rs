//! The Diff page: two configs of a family side by side, line by line.

use super::*;

impl ConfigEditor {
    pub(super) fn diff_page(
        &mut self,
        ui: &mut egui::Ui,
        store: &ConfigStore,
        names: &[(Family, Vec<String>)],
    ) {
        let list = names_of(names, self.family).to_vec();
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("family")
                .selected_text(self.family.dir_name())
                .show_ui(ui, |ui| {
                    for f in Family::ALL {
                        ui.selectable_value(&mut self.family, f, f.dir_name());
                    }
                });
            for (label, slot) in [("left", &mut self.diff.0), ("right", &mut self.diff.1)] {
                egui::ComboBox::from_label(label)
                    .selected_text(slot.as_str())
                    .show_ui(ui, |ui| {
                        for n in &list {
                            ui.selectable_value(slot, n.clone(), n);
                        }
                    });
            }
        });
        if self.diff.0.is_empty() || self.diff.1.is_empty() {
            ui.label("Choose two configs to compare.");
            return;
        }
        let text = |name: &str| match store.retrieve(self.family, name) {
            Ok(c) => c.to_yaml(),
            Err(e) => format!("# {e}\n"),
        };
        let lines = line_diff(&text(&self.diff.0), &text(&self.diff.1));
        let changes = lines.iter().filter(|(k, _)| *k != ' ').count();
        ui.label(format!("{changes} changed line(s)"));
        egui::ScrollArea::vertical().id_salt("diff").show(ui, |ui| {
            for (kind, line) in &lines {
                let text = egui::RichText::new(format!("{kind} {line}")).monospace();
                let text = match kind {
                    '-' => text.color(egui::Color32::from_rgb(230, 90, 90)),
                    '+' => text.color(egui::Color32::from_rgb(90, 200, 110)),
                    _ => text,
                };
                ui.label(text);
            }
        });
    }
}

/// A unified line diff of two texts: (kind, line) with kind '-', '+' or ' '.
pub fn line_diff(a: &str, b: &str) -> Vec<(char, String)> {
    similar::TextDiff::from_lines(a, b)
        .iter_all_changes()
        .map(|c| {
            let kind = match c.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            (kind, c.value().trim_end_matches('\n').to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{AnyConfig, Family};
    use crate::gui::editor::harness::harness;
    use crate::gui::editor::EditorTab;
    use egui_kittest::kittest::Queryable;

    #[test]
    fn the_diff_page_alone_shows_the_changed_lines_of_two_stored_configs() {
        let dir = tempfile::tempdir().unwrap();
        let project = crate::store::Project::open(dir.path()).unwrap();
        for (name, lr) in [("a", 1e-4), ("b", 5e-4)] {
            let t = crate::config::templates::trainer(name, lr);
            project.configs().store(&AnyConfig::Trainer(t)).unwrap();
        }
        let mut h = harness(project, EditorTab::Diff);
        h.state_mut().editor.family = Family::Trainers;
        h.state_mut().editor.diff = ("a".into(), "b".into());
        h.run_steps(2);
        // The name and the learning rate differ.
        h.get_by_label("4 changed line(s)");
        h.get_by_label("- name: a");
        h.get_by_label("+ name: b");
        h.get_by_label("- learning_rate: 0.0001");
        h.get_by_label("+ learning_rate: 0.0005");
    }
}
