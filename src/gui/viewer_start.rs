//! What the Viewer shows before it has any layer: the project's saved views (newest
//! first; the first is the last one saved) and its arrays, one click from the screen,
//! instead of an empty black panel.

use std::path::{Path, PathBuf};

use eframe::egui;

use super::viewer::Viewer;

/// The view states (`*.view.json`) saved at the top of `project`, newest first.
pub fn saved_views(project: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(project) else {
        return Vec::new();
    };
    let mut views: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".view.json"))
        })
        .map(|p| {
            let modified = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, p)
        })
        .collect();
    views.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    views.into_iter().map(|(_, p)| p).collect()
}

/// Draws the start page of an empty viewer: saved views to open and arrays to add.
pub fn ui(viewer: &mut Viewer, ui: &mut egui::Ui, arrays: &[PathBuf], views: &[PathBuf]) {
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading("Nothing to show yet");
        ui.label("Drop a zarr/N5 array or a saved view (.view.json) here, or pick one below.");
    });
    ui.add_space(12.0);
    let mut open = None;
    let mut add = None;
    egui::ScrollArea::vertical()
        .id_salt("viewer-start")
        .show(ui, |ui| {
            if !views.is_empty() {
                ui.label(egui::RichText::new("Saved views").strong());
                for (k, v) in views.iter().enumerate() {
                    let name = v
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let label = if k == 0 {
                        format!("Open view {name} (last saved)")
                    } else {
                        format!("Open view {name}")
                    };
                    if ui
                        .button(label)
                        .on_hover_text(v.display().to_string())
                        .clicked()
                    {
                        open = Some(v.clone());
                    }
                }
                ui.add_space(8.0);
            }
            if arrays.is_empty() {
                ui.weak("The project has no arrays yet.");
            } else {
                ui.label(egui::RichText::new("Project arrays").strong());
                for a in arrays {
                    if ui
                        .button(format!("Add {}", a.display()))
                        .on_hover_text("add as a layer")
                        .clicked()
                    {
                        add = Some(a.clone());
                    }
                }
            }
        });
    if let Some(v) = open {
        viewer.load_state(&v);
    }
    if let Some(a) = add {
        viewer.add_layer(&a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    #[test]
    fn an_empty_viewer_offers_the_projects_views_and_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        crate::demo::generate(
            p,
            &crate::demo::DemoOptions {
                seed: 1,
                size: 64,
                overwrite: false,
            },
        )
        .unwrap();
        let raw = p.join("data/synthetic.zarr/raw");
        // A saved view of the raw data.
        let mut v = Viewer::new(1 << 20);
        v.add_layer(&raw);
        v.state.save(&p.join("mine.view.json")).unwrap();
        let views = saved_views(p);
        assert_eq!(views, vec![p.join("mine.view.json")]);
        let arrays = vec![raw.clone()];
        let mut h = Harness::new_ui_state(
            move |ui, viewer: &mut Viewer| super::ui(viewer, ui, &arrays, &views),
            Viewer::new(1 << 20),
        );
        h.run();
        h.get_by_label("Nothing to show yet");
        h.get_by_label(&format!("Add {}", raw.display())).click();
        h.run();
        assert_eq!(h.state().state.layers.len(), 1);
        assert_eq!(h.state().state.layers[0].source, raw);
        h.get_by_label("Open view mine.view.json (last saved)")
            .click();
        h.run();
        assert_eq!(h.state().state.layers.len(), 1);
        assert_eq!(h.state().state.layers[0].name, "raw");
    }
}
