//! The DataSplit wizard: add raw + ground-truth pairs (typed, by dialog, dropped, or from
//! DaCapo's CSV), inspect each (type, shape, voxel size, offset, levels, classes, every
//! problem on its row), choose the generator's options, preview a crop in the viewer, and
//! save the config (and its CSV) made by the same generator as `segno datasplit`.

use std::path::{Path, PathBuf};

use eframe::egui;

use crate::config::{AnyConfig, DataSplitConfig};
use crate::datasplit::{self, DatasetSpec, GeneratorOptions, Inspection, Role};
use crate::geometry::Coordinate;

/// A dataset row: its spec and what inspecting it found.
pub struct Row {
    /// The raw + ground-truth pair.
    pub spec: DatasetSpec,
    /// What its arrays hold and what is wrong.
    pub inspection: Inspection,
}

/// The wizard's state.
pub struct Wizard {
    /// The datasets.
    pub rows: Vec<Row>,
    /// The CSV path field.
    pub csv_path: String,
    /// New pair: raw path field (`container.zarr/dataset`).
    pub new_raw: String,
    /// New pair: ground-truth path field (`container.zarr/labels/crop/[a&b]`).
    pub new_gt: String,
    /// New pair: training or validation.
    pub new_role: Role,
    /// The datasplit's name prefix.
    pub name: String,
    /// Input (raw) resolution field, `z,y,x` nm.
    pub input_resolution: String,
    /// Output (ground truth) resolution field.
    pub output_resolution: String,
    /// Targets field (comma-separated; empty: the first dataset's classes).
    pub targets: String,
    /// Binarise ground truth.
    pub binarize_gt: bool,
    /// Allow a negative class.
    pub use_negative_class: bool,
    /// Raw value mapped to 0.
    pub raw_min: f64,
    /// Raw value mapped to 1.
    pub raw_max: f64,
    /// Largest validation crop (0: no limit).
    pub max_validation_voxels: u64,
    /// The last problem (a CSV that does not parse, invalid options …).
    pub message: Option<String>,
    /// The last success (what was saved where).
    pub note: Option<String>,
}

impl Default for Wizard {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            csv_path: String::new(),
            new_raw: String::new(),
            new_gt: String::new(),
            new_role: Role::Train,
            name: "datasplit".into(),
            input_resolution: "8,8,8".into(),
            output_resolution: "8,8,8".into(),
            targets: String::new(),
            binarize_gt: false,
            use_negative_class: false,
            raw_min: 0.0,
            raw_max: 255.0,
            max_validation_voxels: 0,
            message: None,
            note: None,
        }
    }
}

/// Parses `z,y,x` (nm) for the field named `field`.
fn coordinate(text: &str, field: &str) -> Result<Coordinate, String> {
    let values: Result<Vec<i64>, _> = text.split(',').map(|v| v.trim().parse::<i64>()).collect();
    let values = values.map_err(|_| format!("{field}: `{text}` is not z,y,x in whole nm"))?;
    Coordinate::new(&values).map_err(|e| format!("{field}: {e}"))
}

impl Wizard {
    fn targets_list(&self) -> Option<Vec<String>> {
        let t: Vec<String> = self
            .targets
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        (!t.is_empty()).then_some(t)
    }

    /// Re-inspects every row (after the separator or targets changed, or files appeared).
    pub fn reinspect(&mut self, base: &Path) {
        let targets = self.targets_list();
        for r in &mut self.rows {
            r.inspection = datasplit::inspect(&r.spec, base, "&", targets.as_deref());
        }
    }

    /// Adds the datasets of a CSV file; a file that does not parse is reported, nothing added.
    pub fn load_csv(&mut self, path: &Path, base: &Path) {
        match datasplit::read_csv(path) {
            Ok(specs) => {
                if let Some(stem) = path.file_stem() {
                    self.name = stem.to_string_lossy().into_owned();
                }
                let targets = self.targets_list();
                for spec in specs {
                    let inspection = datasplit::inspect(&spec, base, "&", targets.as_deref());
                    self.rows.push(Row { spec, inspection });
                }
                self.message = None;
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Adds one pair from array paths (`…/x.zarr/raw`, `…/x.zarr/labels/crop1/[mito]`).
    pub fn add_pair(&mut self, raw: &str, gt: &str, role: Role, base: &Path) {
        let (rc, rd) = crate::array::split_container_path(Path::new(raw.trim()));
        let (gc, gd) = crate::array::split_container_path(Path::new(gt.trim()));
        if rd.is_empty() || gd.is_empty() {
            self.message = Some(format!(
                "give the raw and ground-truth arrays as container.zarr/path (got `{raw}` and `{gt}`)"
            ));
            return;
        }
        let spec = DatasetSpec {
            role,
            raw_container: rc.display().to_string(),
            raw_dataset: rd,
            gt_container: gc.display().to_string(),
            gt_dataset: gd,
        };
        let inspection = datasplit::inspect(&spec, base, "&", self.targets_list().as_deref());
        self.rows.push(Row { spec, inspection });
        self.message = None;
    }

    /// The generator's options from the fields, or the first invalid field.
    pub fn options(&self) -> Result<GeneratorOptions, String> {
        let mut o = GeneratorOptions::new(
            self.name.trim(),
            coordinate(&self.input_resolution, "input resolution")?,
            coordinate(&self.output_resolution, "output resolution")?,
        );
        o.targets = self.targets_list();
        o.binarize_gt = self.binarize_gt;
        o.use_negative_class = self.use_negative_class;
        o.raw_min = self.raw_min;
        o.raw_max = self.raw_max;
        o.max_validation_volume_size =
            (self.max_validation_voxels > 0).then_some(self.max_validation_voxels);
        Ok(o)
    }

    /// Generates the datasplit, stores it in `project` and writes its CSV next to the
    /// project's data (`<project>/data/<name>.csv`). Refuses while a row has problems.
    pub fn save(&mut self, project: &crate::store::Project) {
        self.note = None;
        if let Some(r) = self.rows.iter().find(|r| !r.inspection.problems.is_empty()) {
            self.message = Some(format!(
                "fix the dataset `{}` first: {}",
                r.spec.to_csv_line(),
                r.inspection.problems.join("; ")
            ));
            return;
        }
        let specs: Vec<DatasetSpec> = self.rows.iter().map(|r| r.spec.clone()).collect();
        if specs.is_empty() {
            self.message = Some("add datasets first".into());
            return;
        }
        let result = self.options().and_then(|o| {
            datasplit::generate(&specs, &o, project.root()).map_err(|e| e.to_string())
        });
        let generated = match result {
            Ok(g) => g,
            Err(e) => {
                self.message = Some(e);
                return;
            }
        };
        let config = AnyConfig::Datasplit(DataSplitConfig::TrainValidate(generated.config.clone()));
        let problems = config.problems();
        if !problems.is_empty() {
            self.message = Some(format!("the datasplit is invalid: {problems}"));
            return;
        }
        match project.configs().store(&config) {
            Ok(outcome) => {
                let csv: PathBuf = project
                    .root()
                    .join("data")
                    .join(format!("{}.csv", generated.config.name));
                let csv_note = match std::fs::create_dir_all(project.root().join("data"))
                    .map_err(|e| e.to_string())
                    .and_then(|()| datasplit::write_csv(&specs, &csv).map_err(|e| e.to_string()))
                {
                    Ok(()) => format!("; CSV {}", csv.display()),
                    Err(e) => format!("; the CSV could not be written: {e}"),
                };
                let what = match outcome {
                    crate::store::StoreOutcome::Written => "saved",
                    crate::store::StoreOutcome::Unchanged => "already saved (identical)",
                };
                let mut note = format!("datasplit {} {what}{csv_note}", generated.config.name);
                for w in &generated.warnings {
                    note.push_str(&format!("\nwarning: {w}"));
                }
                self.note = Some(note);
                self.message = None;
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Draws the wizard. Returns array paths to preview in the viewer when asked.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &crate::store::Project,
    ) -> Option<Vec<PathBuf>> {
        let base = project.root().to_path_buf();
        let mut preview = None;
        // CSV files dropped on the window are imported.
        let dropped = super::dropped_paths(ui.ctx());
        for p in dropped
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        {
            self.load_csv(p, &base);
        }
        // Dropped array folders fill the raw field, then the ground-truth field; a complete
        // pair is added.
        for p in dropped.iter().filter(|p| p.is_dir()) {
            let text = p.display().to_string();
            if self.new_raw.trim().is_empty() {
                self.new_raw = text;
            } else {
                self.new_gt = text;
                let (raw, gt, role) = (self.new_raw.clone(), self.new_gt.clone(), self.new_role);
                self.add_pair(&raw, &gt, role, &base);
                // The raw stays for the next crop dropped.
                if self.message.is_none() {
                    self.new_gt.clear();
                }
            }
        }
        ui.label(egui::RichText::new("1 · Datasets").strong());
        ui.horizontal(|ui| {
            let l = ui.label("CSV path");
            ui.add(egui::TextEdit::singleline(&mut self.csv_path).desired_width(300.0))
                .labelled_by(l.id);
            if ui.button("Load CSV").clicked() && !self.csv_path.trim().is_empty() {
                let p = crate::array::open::resolve_path(&base, self.csv_path.trim());
                self.load_csv(&p, &base);
            }
            if ui.button("Browse CSV…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("CSV", &["csv"])
                    .pick_file()
                {
                    self.load_csv(&p, &base);
                }
            }
        });
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("new dataset:")
                .selected_text(match self.new_role {
                    Role::Train => "train",
                    Role::Val => "val",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.new_role, Role::Train, "train");
                    ui.selectable_value(&mut self.new_role, Role::Val, "val");
                });
            ui.weak("(or drop the raw and ground-truth folders on the window)");
        });
        for (label, hint, slot, button) in [
            ("raw", "x.zarr/raw", &mut self.new_raw, "Raw…"),
            (
                "ground truth",
                "x.zarr/labels/crop1/[mito&er]",
                &mut self.new_gt,
                "Ground truth…",
            ),
        ] {
            ui.horizontal(|ui| {
                let l = ui.add_sized([90.0, 20.0], egui::Label::new(label));
                ui.add_sized(
                    [360.0, 20.0],
                    egui::TextEdit::singleline(slot).hint_text(hint),
                )
                .labelled_by(l.id);
                if ui.button(button).clicked() {
                    if let Some(p) = rfd::FileDialog::new().set_directory(&base).pick_folder() {
                        *slot = p.display().to_string();
                    }
                }
            });
        }
        if ui.button("Add pair").clicked() {
            let (raw, gt, role) = (self.new_raw.clone(), self.new_gt.clone(), self.new_role);
            self.add_pair(&raw, &gt, role, &base);
        }
        let mut remove = None;
        // The two path columns share the width left by the role and button columns; long
        // paths are elided, with the whole path on hover.
        let path_width = ((ui.available_width() - 260.0) / 2.0).max(160.0);
        egui::Grid::new("wizard-rows")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                let role_header = ui.label(egui::RichText::new("role").strong()).id;
                for h in ["raw", "ground truth", "", ""] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for (i, r) in self.rows.iter_mut().enumerate() {
                    egui::ComboBox::from_id_salt(("role", i))
                        .selected_text(match r.spec.role {
                            Role::Train => "train",
                            Role::Val => "val",
                        })
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut r.spec.role, Role::Train, "train");
                            ui.selectable_value(&mut r.spec.role, Role::Val, "val");
                        })
                        .response
                        .labelled_by(role_header);
                    ui.vertical(|ui| {
                        ui.set_width(path_width);
                        path_label(
                            ui,
                            &format!("{}/{}", r.spec.raw_container, r.spec.raw_dataset),
                        );
                        if let Some(s) = &r.inspection.raw {
                            ui.weak(s.to_string());
                        }
                    });
                    ui.vertical(|ui| {
                        ui.set_width(path_width);
                        path_label(
                            ui,
                            &format!("{}/{}", r.spec.gt_container, r.spec.gt_dataset),
                        );
                        for (c, s) in &r.inspection.classes {
                            match s {
                                Some(s) => ui.weak(format!("{c}: {s}")),
                                None => ui.weak(format!("{c}: —")),
                            };
                        }
                        for p in &r.inspection.problems {
                            ui.colored_label(ui.visuals().error_fg_color, p);
                        }
                    });
                    if ui
                        .button("Preview")
                        .on_hover_text("raw and ground truth in the viewer")
                        .clicked()
                    {
                        let mut paths =
                            vec![
                                crate::array::open::resolve_path(&base, &r.spec.raw_container)
                                    .join(r.spec.raw_dataset.trim_matches('/')),
                            ];
                        if let Ok(classes) = r.spec.classes("&", None) {
                            for (_, ds) in classes {
                                paths.push(
                                    crate::array::open::resolve_path(&base, &r.spec.gt_container)
                                        .join(ds),
                                );
                            }
                        }
                        preview = Some(paths);
                    }
                    if ui
                        .small_button("x")
                        .on_hover_text("remove the dataset")
                        .clicked()
                    {
                        remove = Some(i);
                    }
                    ui.end_row();
                }
            });
        if let Some(i) = remove {
            self.rows.remove(i);
        }
        ui.separator();
        ui.label(egui::RichText::new("2 · Options").strong());
        egui::Grid::new("wizard-options")
            .num_columns(2)
            .show(ui, |ui| {
                for (label, field, hint) in [
                    ("name", &mut self.name, ""),
                    ("input resolution (nm)", &mut self.input_resolution, "z,y,x"),
                    (
                        "output resolution (nm)",
                        &mut self.output_resolution,
                        "z,y,x",
                    ),
                    ("targets", &mut self.targets, "the first dataset's classes"),
                ] {
                    let l = ui.label(label);
                    ui.add(egui::TextEdit::singleline(field).hint_text(hint))
                        .labelled_by(l.id);
                    ui.end_row();
                }
                let l = ui.label("raw min / max");
                ui.horizontal(|ui| {
                    ui.add(egui::DragValue::new(&mut self.raw_min))
                        .labelled_by(l.id);
                    ui.add(egui::DragValue::new(&mut self.raw_max))
                        .labelled_by(l.id);
                });
                ui.end_row();
                let l = ui.label("largest validation crop (voxels, 0 = any)");
                ui.add(egui::DragValue::new(&mut self.max_validation_voxels))
                    .labelled_by(l.id);
                ui.end_row();
            });
        ui.checkbox(&mut self.binarize_gt, "binarize ground truth");
        ui.checkbox(&mut self.use_negative_class, "allow a negative class");
        if let Err(e) = self.options() {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.separator();
        ui.horizontal(|ui| {
            let ok = self.options().is_ok() && !self.rows.is_empty();
            if ui
                .add_enabled(ok, egui::Button::new("Save datasplit"))
                .clicked()
            {
                self.save(project);
            }
            if ui.button("Re-check").clicked() {
                self.reinspect(&base);
            }
        });
        if let Some(m) = &self.message {
            ui.colored_label(ui.visuals().error_fg_color, m);
        }
        if let Some(n) = &self.note {
            ui.label(n);
        }
        preview
    }
}

/// A path on one line, elided when it does not fit, whole on hover.
fn path_label(ui: &mut egui::Ui, path: &str) {
    ui.add(egui::Label::new(path).truncate())
        .on_hover_text(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    struct Panel {
        wizard: Wizard,
        project: crate::store::Project,
    }

    #[test]
    fn the_wizard_alone_pairs_typed_paths_and_saves_the_generated_datasplit() {
        let dir = tempfile::tempdir().unwrap();
        crate::demo::generate(
            dir.path(),
            &crate::demo::DemoOptions {
                seed: 1,
                size: 64,
                overwrite: false,
            },
        )
        .unwrap();
        let project = crate::store::Project::open(dir.path()).unwrap();
        let mut h = Harness::builder()
            .with_size(egui::Vec2::new(1200.0, 1200.0))
            .build_ui_state(
                |ui, p: &mut Panel| {
                    p.wizard.ui(ui, &p.project);
                },
                Panel {
                    wizard: Wizard::default(),
                    project,
                },
            );
        h.run();
        let fill = |h: &mut Harness<'_, Panel>, label: &str, text: &str| {
            h.get_all_by_label(label)
                .last()
                .unwrap_or_else(|| panic!("no field {label:?}"))
                .set_text_value_accesskit(text);
            h.run_steps(2);
        };
        let c = "data/synthetic.zarr";
        h.state_mut().wizard.new_raw = format!("{c}/raw");
        h.state_mut().wizard.new_gt = format!("{c}/labels/crop1/[mito&er]");
        h.get_by_label("Add pair").click();
        h.run_steps(2);
        assert_eq!(
            h.state().wizard.rows.len(),
            1,
            "{:?}",
            h.state().wizard.message
        );
        // The row shows what the raw array holds.
        h.get_by_label_contains("uint8 64×64×64 @ (8, 8, 8) nm");
        fill(&mut h, "name", "typed");
        h.get_by_label("Save datasplit").click();
        h.run_steps(2);
        let note = h.state().wizard.note.clone().unwrap_or_default();
        assert!(note.contains("typed_semantic_mito&er_8nm saved"), "{note}");
        // What was saved is what the generator makes of the same row.
        let w = &h.state().wizard;
        let expected = crate::datasplit::generate(
            &[w.rows[0].spec.clone()],
            &w.options().unwrap(),
            dir.path(),
        )
        .unwrap()
        .config;
        let stored = h
            .state()
            .project
            .configs()
            .retrieve(
                crate::config::Family::Datasplits,
                "typed_semantic_mito&er_8nm",
            )
            .unwrap();
        assert_eq!(
            stored,
            AnyConfig::Datasplit(DataSplitConfig::TrainValidate(expected))
        );
    }
}
