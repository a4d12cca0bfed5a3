//! The Configs section: forms for every config family built from the data model's shapes
//! (one generic mechanism), validation at the field, a YAML view editable either way,
//! save / duplicate / rename / delete, a diff of two configs, import of DaCapo YAML files
//! or folders, and the run builder.
//!
//! This file holds the section's state and the Edit page; `form` draws a config as a form,
//! `builder`, `diff` and `import` are the other pages.

mod builder;
mod diff;
mod form;
mod import;

pub use builder::RunBuilder;
pub use diff::line_diff;

use form::Form;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use eframe::egui;
use serde_json::{Map, Number, Value};

use crate::config::schema::{self, FieldInfo, Shape, TypeInfo};
use crate::config::{
    AnyConfig, Family, Problem, RunConfig, RunGrid, DEFAULT_RUN_NAME_TEMPLATE, TYPE_KEY,
};
use crate::store::{ConfigStore, StoreOutcome};

/// Which page of the Configs section is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorTab {
    /// The form and YAML of one config.
    Edit,
    /// Two configs of a family side by side, line by line.
    Diff,
    /// Runs from datasplits × tasks × architectures × trainers.
    Builder,
    /// DaCapo YAML files or folders into the project.
    Import,
}

/// The state of the Configs section.
pub struct ConfigEditor {
    /// The page shown.
    pub tab: EditorTab,
    /// Family of the config being edited.
    pub family: Family,
    /// The stored name of the config being edited; `None` for a new, unsaved config.
    pub loaded: Option<String>,
    /// The document being edited.
    pub doc: Value,
    /// The document as last saved or loaded (for "unsaved changes" and Revert).
    saved: Option<Value>,
    /// `saved` decoded (once, not every frame).
    saved_config: Option<AnyConfig>,
    /// `doc` decoded, made again on every edit.
    current: Option<AnyConfig>,
    /// For a U-Net (or a run with one): its input, output and context sizes, or why its
    /// input is invalid; made again on every edit.
    pub shapes: Option<String>,
    /// The YAML view's text.
    pub yaml: String,
    /// Why the YAML text cannot be read, if it cannot.
    pub yaml_error: Option<String>,
    /// Every problem of the document, with its field path.
    pub problems: Vec<Problem>,
    /// Text of number fields as typed, by field path (so "1." stays while typing).
    texts: HashMap<String, String>,
    /// The outcome of the last action: (is an error, text).
    pub message: Option<(bool, String)>,
    /// The rename field.
    pub rename_to: String,
    confirm_delete: bool,
    /// The two configs compared in the Diff page.
    pub diff: (String, String),
    /// The Import page's path field.
    pub import_path: String,
    /// One line per imported file.
    pub import_report: Vec<String>,
    /// The run builder's choices.
    pub builder: RunBuilder,
    /// The last preview with the choices and stored names it was made from (made again
    /// only when they change, not every frame).
    preview: Option<PreviewCache>,
    /// The parts of stored runs offered by the run builder, with the stored names they
    /// were found from (looked up again only when the names change).
    run_parts: Option<RunPartsCache>,
}

/// The parts of stored runs and the stored names they were found from.
type RunPartsCache = (Vec<(Family, Vec<String>)>, Vec<builder::RunPart>);

/// A run builder preview and what it was made from.
type PreviewCache = (
    RunBuilder,
    Vec<(Family, Vec<String>)>,
    Result<Vec<(RunConfig, String)>, String>,
);

impl Default for ConfigEditor {
    fn default() -> Self {
        let mut e = Self {
            tab: EditorTab::Edit,
            family: Family::Tasks,
            loaded: None,
            doc: Value::Null,
            saved: None,
            saved_config: None,
            current: None,
            shapes: None,
            yaml: String::new(),
            yaml_error: None,
            problems: Vec::new(),
            texts: HashMap::new(),
            message: None,
            rename_to: String::new(),
            confirm_delete: false,
            diff: (String::new(), String::new()),
            import_path: String::new(),
            import_report: Vec::new(),
            builder: RunBuilder::default(),
            preview: None,
            run_parts: None,
        };
        e.new_config(Family::Tasks);
        e
    }
}

/// Problems of `doc` as a config of `family`: decoding problems, else validation problems.
pub fn document_problems(family: Family, doc: &Value) -> Vec<Problem> {
    checked(family, doc).1
}

/// The network sizes of a U-Net architecture (with a 1×1 head) or of a run's U-Net (with
/// its task's head), as text.
fn shapes_of(config: Option<&AnyConfig>) -> Option<String> {
    use crate::config::ArchitectureConfig;
    match config? {
        AnyConfig::Architecture(ArchitectureConfig::CnnectomeUnet(u)) => Some(format!(
            "{}\n(with a 1×1 prediction head; tasks with a larger head kernel trim kernel - 1 voxels more)",
            u.shape_report(None, None, 1).text()
        )),
        AnyConfig::Run(r) => {
            let ArchitectureConfig::CnnectomeUnet(u) = &r.architecture_config else {
                return None;
            };
            let head = crate::task::predictor::Predictor::from_task(&r.task_config)
                .map(|p| p.head().kernel_size)
                .unwrap_or(1);
            Some(u.shape_report(None, None, head).text())
        }
        _ => None,
    }
}

/// `doc` decoded as a config of `family` (when it decodes), with every problem of it.
fn checked(family: Family, doc: &Value) -> (Option<AnyConfig>, Vec<Problem>) {
    match AnyConfig::from_document(family, doc, "the form") {
        Ok(c) => {
            let mut p = c.problems().0;
            if let Err(e) = crate::store::configs::validate_name(family, c.name()) {
                p.push(Problem {
                    path: "name".into(),
                    message: e.to_string(),
                });
            }
            (Some(c), p)
        }
        Err(e) => (None, e.problems().to_vec()),
    }
}

/// The document of a new config of `family`: its first type's fields with defaults.
pub fn new_document(family: Family) -> Value {
    match family {
        Family::Runs => schema::struct_skeleton(RunConfig::FIELDS),
        f => f
            .types()
            .first()
            .map_or(Value::Object(Map::new()), schema::type_skeleton),
    }
}

/// The stored names of `family` in the project's list.
fn names_of(names: &[(Family, Vec<String>)], family: Family) -> &[String] {
    names
        .iter()
        .find(|(f, _)| *f == family)
        .map(|(_, l)| l.as_slice())
        .unwrap_or_default()
}

/// Axis names of a coordinate with `n` elements.
fn axis_names(n: usize) -> &'static [&'static str] {
    match n {
        1 => &["x"],
        2 => &["y", "x"],
        3 => &["z", "y", "x"],
        4 => &["c", "z", "y", "x"],
        _ => &[],
    }
}

fn problem_color(ui: &egui::Ui) -> egui::Color32 {
    ui.visuals().error_fg_color
}

impl ConfigEditor {
    /// Starts a new, unsaved config of `family`.
    pub fn new_config(&mut self, family: Family) {
        self.family = family;
        self.loaded = None;
        self.set_saved(None);
        self.set_doc(new_document(family));
        self.rename_to.clear();
        self.confirm_delete = false;
    }

    /// Opens the stored config `name` of `family`; a config that cannot be read is shown as
    /// its raw document with its problems.
    pub fn load(&mut self, store: &ConfigStore, family: Family, name: &str) {
        self.family = family;
        self.confirm_delete = false;
        let path = store.path_of(family, name);
        let doc = match store.retrieve(family, name) {
            Ok(c) => c.to_document(),
            Err(e) => {
                self.message = Some((true, e.to_string()));
                std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| crate::config::parse_document(&t, name).ok())
                    .unwrap_or(Value::Null)
            }
        };
        self.loaded = Some(name.to_string());
        self.rename_to = name.to_string();
        self.set_saved(Some(doc.clone()));
        self.set_doc(doc);
    }

    /// Replaces the document (from outside the form), refreshing the YAML and problems.
    pub fn set_doc(&mut self, doc: Value) {
        self.doc = doc;
        self.texts.clear();
        self.refresh(true);
    }

    fn refresh(&mut self, yaml_too: bool) {
        let (current, problems) = checked(self.family, &self.doc);
        self.problems = problems;
        if yaml_too {
            // The config's own dialect when it decodes, else the plain tree.
            self.yaml = match &current {
                Some(c) => c.to_yaml(),
                None => crate::config::to_yaml(&self.doc),
            };
            self.yaml_error = None;
        }
        self.shapes = shapes_of(current.as_ref());
        self.current = current;
    }

    /// Records `doc` as what is stored (or nothing, for a new config).
    fn set_saved(&mut self, doc: Option<Value>) {
        self.saved_config = doc
            .as_ref()
            .and_then(|d| AnyConfig::from_document(self.family, d, "the form").ok());
        self.saved = doc;
    }

    /// Whether the form differs from what is stored.
    pub fn unsaved(&self) -> bool {
        let Some(saved) = &self.saved else {
            return true;
        };
        // Compared as configs: the form fills in defaults the file may leave out.
        match (&self.saved_config, &self.current) {
            (Some(a), Some(b)) => a != b,
            _ => saved != &self.doc,
        }
    }

    /// The config name in the form.
    pub fn name(&self) -> String {
        self.doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Saves the form: refused (with the problems at their fields) while it has problems;
    /// a new config never replaces a stored one of the same name. Returns whether the
    /// store changed.
    pub fn save(&mut self, store: &ConfigStore) -> bool {
        if !self.problems.is_empty() {
            self.message = Some((
                true,
                format!(
                    "not saved: {} problem(s), shown at their fields",
                    self.problems.len()
                ),
            ));
            return false;
        }
        // Decoded with the last edit (no problems means it decoded).
        let Some(config) = self.current.clone() else {
            self.message = Some((true, "not saved: the form is not a config".into()));
            return false;
        };
        let name = config.name().to_string();
        let same_file = self.loaded.as_deref() == Some(name.as_str());
        let result = if same_file {
            store.replace(&config)
        } else {
            store.store(&config)
        };
        match result {
            Ok(outcome) => {
                let path = store.path_of(self.family, &name);
                self.message = Some((
                    false,
                    match outcome {
                        StoreOutcome::Written => format!("saved {}", path.display()),
                        StoreOutcome::Unchanged => format!("{} is up to date", path.display()),
                    },
                ));
                self.loaded = Some(name.clone());
                self.rename_to = name;
                self.set_saved(Some(config.to_document()));
                self.set_doc(config.to_document());
                true
            }
            Err(e) => {
                self.message = Some((true, format!("not saved: {e}")));
                false
            }
        }
    }

    /// Turns the form into an unsaved copy named `<name>_copy`.
    pub fn duplicate(&mut self) {
        let name = format!("{}_copy", self.name());
        if let Some(map) = self.doc.as_object_mut() {
            map.insert("name".into(), Value::String(name.clone()));
        }
        self.loaded = None;
        self.set_saved(None);
        self.refresh(true);
        self.message = Some((false, format!("copy {name:?} not saved yet")));
    }

    fn rename(&mut self, store: &ConfigStore) -> bool {
        let Some(old) = self.loaded.clone() else {
            self.message = Some((true, "save the config before renaming it".into()));
            return false;
        };
        if self.unsaved() {
            self.message = Some((true, "save or revert the changes before renaming".into()));
            return false;
        }
        let new = self.rename_to.trim().to_string();
        match store.rename(self.family, &old, &new) {
            Ok(c) => {
                self.message = Some((false, format!("renamed {old:?} to {new:?}")));
                self.load(store, c.family(), c.name());
                true
            }
            Err(e) => {
                self.message = Some((true, format!("not renamed: {e}")));
                false
            }
        }
    }

    fn delete(&mut self, store: &ConfigStore) -> bool {
        let Some(name) = self.loaded.clone() else {
            return false;
        };
        match store.delete(self.family, &name) {
            Ok(()) => {
                self.message = Some((false, format!("deleted {} {name:?}", self.family.noun())));
                self.new_config(self.family);
                true
            }
            Err(e) => {
                self.message = Some((true, format!("not deleted: {e}")));
                false
            }
        }
    }

    /// Draws the section; returns whether the project's configs changed on disk.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        store: &ConfigStore,
        names: &[(Family, Vec<String>)],
    ) -> bool {
        let mut changed = false;
        ui.horizontal(|ui| {
            for (tab, label) in [
                (EditorTab::Edit, "Edit"),
                (EditorTab::Diff, "Diff"),
                (EditorTab::Builder, "Run builder"),
                (EditorTab::Import, "Import"),
            ] {
                if ui.selectable_label(self.tab == tab, label).clicked() {
                    self.tab = tab;
                }
            }
        });
        ui.separator();
        match self.tab {
            EditorTab::Edit => changed |= self.edit_page(ui, store, names),
            EditorTab::Diff => self.diff_page(ui, store, names),
            EditorTab::Builder => changed |= self.builder_page(ui, store, names),
            EditorTab::Import => changed |= self.import_page(ui, store),
        }
        changed
    }

    fn edit_page(
        &mut self,
        ui: &mut egui::Ui,
        store: &ConfigStore,
        names: &[(Family, Vec<String>)],
    ) -> bool {
        let mut changed = false;
        let mut open = None;
        egui::Panel::left("config-list")
            .resizable(true)
            .default_size(190.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("config-list-scroll")
                    .show(ui, |ui| {
                        for (family, list) in names {
                            egui::CollapsingHeader::new(format!(
                                "{} ({})",
                                family.dir_name(),
                                list.len()
                            ))
                            .default_open(true)
                            .show(ui, |ui| {
                                for n in list {
                                    let on = self.family == *family
                                        && self.loaded.as_deref() == Some(n.as_str());
                                    if ui.selectable_label(on, n).clicked() {
                                        open = Some((*family, n.clone()));
                                    }
                                }
                                if ui.button(format!("New {}", family.noun())).clicked() {
                                    self.new_config(*family);
                                    self.message = None;
                                }
                            });
                        }
                    });
            });
        if let Some((family, name)) = open {
            self.message = None;
            self.load(store, family, &name);
        }
        egui::Panel::right("config-yaml")
            .resizable(true)
            .default_size(ui.available_width() * 0.4)
            .show(ui, |ui| {
                let yaml_label = ui.label(egui::RichText::new("YAML").strong());
                if let Some(e) = &self.yaml_error {
                    ui.colored_label(problem_color(ui), e);
                }
                egui::ScrollArea::both()
                    .id_salt("config-yaml-scroll")
                    .show(ui, |ui| {
                        // Long lines scroll instead of wrapping, so indentation stays readable.
                        let mut layouter =
                            |ui: &egui::Ui, text: &dyn egui::TextBuffer, _wrap: f32| {
                                let mut job = egui::text::LayoutJob::simple(
                                    text.as_str().to_owned(),
                                    egui::TextStyle::Monospace.resolve(ui.style()),
                                    ui.visuals().text_color(),
                                    f32::INFINITY,
                                );
                                job.wrap.max_width = f32::INFINITY;
                                ui.fonts_mut(|f| f.layout_job(job))
                            };
                        let r = ui
                            .add(
                                egui::TextEdit::multiline(&mut self.yaml)
                                    .code_editor()
                                    .layouter(&mut layouter)
                                    .desired_width(ui.available_width().max(360.0))
                                    .desired_rows(30),
                            )
                            .labelled_by(yaml_label.id);
                        if r.changed() {
                            match crate::config::parse_document(&self.yaml, "the YAML view") {
                                Ok(doc) => {
                                    self.doc = doc;
                                    self.texts.clear();
                                    self.yaml_error = None;
                                    self.refresh(false);
                                }
                                Err(e) => self.yaml_error = Some(e.to_string()),
                            }
                        }
                    });
            });
        egui::CentralPanel::default().show(ui, |ui| {
            changed |= self.toolbar(ui, store);
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt("config-form")
                .show(ui, |ui| {
                    let shape = match self.family {
                        Family::Runs => Shape::Struct {
                            name: "RunConfig",
                            fields: RunConfig::FIELDS,
                        },
                        f => Shape::Union {
                            name: f.noun(),
                            types: f.types(),
                        },
                    };
                    let mut doc = std::mem::take(&mut self.doc);
                    let edited = {
                        let mut form = Form {
                            problems: &self.problems,
                            texts: &mut self.texts,
                        };
                        form.root(ui, &shape, &mut doc)
                    };
                    self.doc = doc;
                    if edited {
                        self.refresh(true);
                    }
                    if let Some(shapes) = &self.shapes {
                        ui.separator();
                        ui.label(egui::RichText::new("Network sizes").strong());
                        ui.label(shapes);
                    }
                    if !self.problems.is_empty() {
                        ui.separator();
                        ui.colored_label(
                            problem_color(ui),
                            format!("{} problem(s); saving is blocked:", self.problems.len()),
                        );
                        for p in &self.problems {
                            ui.colored_label(problem_color(ui), p.to_string());
                        }
                    }
                });
        });
        changed
    }

    fn toolbar(&mut self, ui: &mut egui::Ui, store: &ConfigStore) -> bool {
        let mut changed = false;
        ui.horizontal_wrapped(|ui| {
            let title = match &self.loaded {
                Some(n) => format!("{} {n:?}", self.family.noun()),
                None => format!("new {}", self.family.noun()),
            };
            ui.label(egui::RichText::new(title).strong());
            if self.unsaved() {
                ui.label("(unsaved changes)");
            }
            let save = ui.add_enabled(self.problems.is_empty(), egui::Button::new("Save"));
            if save.clicked() {
                changed |= self.save(store);
            }
            if ui.button("Duplicate").clicked() {
                self.duplicate();
            }
            if self.saved.is_some() && ui.button("Revert").clicked() {
                if let Some(doc) = self.saved.clone() {
                    self.set_doc(doc);
                }
            }
        });
        if self.loaded.is_some() {
            ui.horizontal(|ui| {
                let l = ui.label("new name");
                ui.add(egui::TextEdit::singleline(&mut self.rename_to).desired_width(200.0))
                    .labelled_by(l.id);
                if ui.button("Rename").clicked() {
                    changed |= self.rename(store);
                }
                if self.confirm_delete {
                    if ui.button("Really delete").clicked() {
                        changed |= self.delete(store);
                        self.confirm_delete = false;
                    }
                    if ui.button("Keep").clicked() {
                        self.confirm_delete = false;
                    }
                } else if ui.button("Delete").clicked() {
                    self.confirm_delete = true;
                }
            });
        }
        self.show_message(ui);
        changed
    }

    fn show_message(&self, ui: &mut egui::Ui) {
        if let Some((error, text)) = &self.message {
            if *error {
                ui.colored_label(problem_color(ui), text);
            } else {
                ui.label(text);
            }
        }
    }
}

/// The Configs section alone in a test harness, on a project.
#[cfg(test)]
pub(crate) mod harness {
    use super::*;
    use egui_kittest::Harness;

    /// The section and the project it edits.
    pub(crate) struct Panel {
        /// The section.
        pub(crate) editor: ConfigEditor,
        /// The project.
        pub(crate) project: crate::store::Project,
    }

    /// Every family's stored names.
    pub(crate) fn names(store: &ConfigStore) -> Vec<(Family, Vec<String>)> {
        Family::ALL
            .iter()
            .map(|f| (*f, store.names(*f).unwrap_or_default()))
            .collect()
    }

    /// A harness drawing the section on `tab` of `project`.
    pub(crate) fn harness(
        project: crate::store::Project,
        tab: EditorTab,
    ) -> Harness<'static, Panel> {
        let editor = ConfigEditor {
            tab,
            ..ConfigEditor::default()
        };
        Harness::builder()
            .with_size(egui::Vec2::new(1400.0, 1400.0))
            .build_ui_state(
                |ui, p: &mut Panel| {
                    let store = p.project.configs();
                    let n = names(&store);
                    p.editor.ui(ui, &store, &n);
                },
                Panel { editor, project },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::form::parse_scalar;
    use super::*;

    #[test]
    fn typed_numbers_become_numbers_and_anything_else_stays_text_for_validation() {
        let int = Shape::Integer { min: 0 };
        assert_eq!(parse_scalar(&int, " 12 "), Value::from(12));
        assert_eq!(parse_scalar(&int, "1.5"), Value::from("1.5"));
        assert_eq!(parse_scalar(&Shape::Float, "1.5"), Value::from(1.5));
        assert_eq!(parse_scalar(&Shape::Float, "1e-3"), Value::from(0.001));
        assert_eq!(parse_scalar(&Shape::Float, "fast"), Value::from("fast"));
        assert_eq!(parse_scalar(&Shape::Text, "12"), Value::from("12"));
    }

    #[test]
    fn a_number_field_with_text_is_reported_at_the_field() {
        let mut doc = new_document(Family::Tasks);
        doc["name"] = "d".into();
        doc["channels"] = serde_json::json!(["mito"]);
        doc["clip_distance"] = "far".into();
        doc["tol_distance"] = 40.into();
        let problems = document_problems(Family::Tasks, &doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "clip_distance");
        assert!(problems[0]
            .message
            .contains("expected a number, found the string \"far\""));
    }

    #[test]
    fn the_line_diff_marks_removed_and_added_lines() {
        let d = line_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n");
        assert_eq!(
            d,
            vec![
                (' ', "a: 1".to_string()),
                ('-', "b: 2".to_string()),
                ('+', "b: 3".to_string())
            ]
        );
    }
}
