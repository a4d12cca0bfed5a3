//! The Configs section: forms for every config family built from the data model's shapes
//! (one generic mechanism), validation at the field, a YAML view editable either way,
//! save / duplicate / rename / delete, a diff of two configs, import of DaCapo YAML files
//! or folders, and the run builder.

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
}

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
        };
        e.new_config(Family::Tasks);
        e
    }
}

/// The run builder's choices: config names per family, repetitions, iterations and the
/// naming template.
#[derive(Debug, Clone, PartialEq)]
pub struct RunBuilder {
    /// Chosen config names per family.
    pub chosen: BTreeMap<Family, Vec<String>>,
    /// Replicates of every combination.
    pub repetitions: u32,
    /// Iterations per run.
    pub num_iterations: u64,
    /// Validation interval per run.
    pub validation_interval: u64,
    /// Run naming template.
    pub template: String,
}

impl Default for RunBuilder {
    fn default() -> Self {
        Self {
            chosen: BTreeMap::new(),
            repetitions: 1,
            num_iterations: 10_000,
            validation_interval: 1_000,
            template: DEFAULT_RUN_NAME_TEMPLATE.to_string(),
        }
    }
}

/// The families a run builder combines.
const GRID_FAMILIES: [Family; 4] = [
    Family::Datasplits,
    Family::Tasks,
    Family::Architectures,
    Family::Trainers,
];

impl RunBuilder {
    /// The grid of the chosen configs, loaded from `store`, or why it cannot be made.
    pub fn grid(&self, store: &ConfigStore) -> Result<RunGrid, String> {
        let load = |family: Family| -> Result<Vec<AnyConfig>, String> {
            self.chosen
                .get(&family)
                .map(|names| {
                    names
                        .iter()
                        .map(|n| store.retrieve(family, n).map_err(|e| e.to_string()))
                        .collect()
                })
                .unwrap_or(Ok(Vec::new()))
        };
        let mut grid = RunGrid {
            datasplits: Vec::new(),
            tasks: Vec::new(),
            architectures: Vec::new(),
            trainers: Vec::new(),
            repetitions: self.repetitions,
            num_iterations: self.num_iterations,
            validation_interval: self.validation_interval,
            name_template: self.template.clone(),
        };
        for family in GRID_FAMILIES {
            for c in load(family)? {
                match c {
                    AnyConfig::Datasplit(c) => grid.datasplits.push(c),
                    AnyConfig::Task(c) => grid.tasks.push(c),
                    AnyConfig::Architecture(c) => grid.architectures.push(c),
                    AnyConfig::Trainer(c) => grid.trainers.push(c),
                    _ => {}
                }
            }
        }
        Ok(grid)
    }

    /// The runs the builder would save, each with what saving it would do, or the problems.
    pub fn preview(&self, store: &ConfigStore) -> Result<Vec<(RunConfig, String)>, String> {
        let grid = self.grid(store)?;
        let runs = grid.build().map_err(|p| p.to_string())?;
        Ok(runs
            .into_iter()
            .map(|r| {
                let what = match crate::store::configs::validate_name(Family::Runs, &r.name) {
                    Err(e) => format!("invalid name: {e}"),
                    Ok(()) => match store.retrieve(Family::Runs, &r.name) {
                        Ok(AnyConfig::Run(old)) if *old == r => "already stored".to_string(),
                        Ok(_) => "a different run has this name".to_string(),
                        Err(_) => "new".to_string(),
                    },
                };
                (r, what)
            })
            .collect())
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

/// A starting config of `family` for a project that has none, with what it is: a task for
/// the classes of the project's first datasplit, a small U-Net with its sizes, a trainer
/// with the usual augments. `None` for other families, or a task without a datasplit
/// whose classes can be told.
fn template_for(
    family: Family,
    store: &ConfigStore,
    names: &[(Family, Vec<String>)],
) -> Option<(AnyConfig, String)> {
    use crate::config::templates;
    match family {
        Family::Tasks => {
            let split = names_of(names, Family::Datasplits).iter().find_map(|n| {
                match store.retrieve(Family::Datasplits, n) {
                    Ok(AnyConfig::Datasplit(d)) => Some(d),
                    _ => None,
                }
            })?;
            let classes = templates::datasplit_classes(&split);
            if classes.is_empty() {
                return None;
            }
            Some((
                AnyConfig::Task(templates::task_template(&split)),
                format!(
                    "signed distances to {} (the classes of datasplit {})",
                    classes.join(", "),
                    split.name()
                ),
            ))
        }
        Family::Architectures => {
            let a = templates::architecture_template();
            let sizes = crate::ops::inspect::shapes(&a, None, None, None)
                .map(|r| r.text())
                .unwrap_or_else(|e| e.to_string());
            Some((
                AnyConfig::Architecture(a),
                format!("a small 3D U-Net: {sizes}"),
            ))
        }
        Family::Trainers => Some((
            AnyConfig::Trainer(templates::trainer_template()),
            "mirror/transpose, intensity scale and shift; learning rate 1e-4".to_string(),
        )),
        _ => None,
    }
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

    fn diff_page(
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

    fn import_page(&mut self, ui: &mut egui::Ui, store: &ConfigStore) -> bool {
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
        let dropped = super::dropped_paths(ui.ctx());
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

    fn builder_page(
        &mut self,
        ui: &mut egui::Ui,
        store: &ConfigStore,
        names: &[(Family, Vec<String>)],
    ) -> bool {
        let mut changed = false;
        ui.label(
            "One run per chosen datasplit × task × architecture × trainer × repetition. \
             Nothing is saved until you press Save.",
        );
        ui.columns(4, |cols| {
            for (col, family) in cols.iter_mut().zip(GRID_FAMILIES) {
                col.label(egui::RichText::new(family.dir_name()).strong());
                let list = names_of(names, family);
                if list.is_empty() {
                    col.label(format!("no stored {}", family.dir_name()));
                    if let Some((config, about)) = template_for(family, store, names) {
                        let label = format!("Store template {}", config.name());
                        if col.button(label).on_hover_text(about).clicked() {
                            match store.store(&config) {
                                Ok(_) => changed = true,
                                Err(e) => self.message = Some((true, e.to_string())),
                            }
                        }
                    }
                }
                let chosen = self.builder.chosen.entry(family).or_default();
                chosen.retain(|n| list.contains(n));
                for n in list {
                    let mut on = chosen.contains(n);
                    if col.checkbox(&mut on, n).changed() {
                        if on {
                            chosen.push(n.clone());
                        } else {
                            chosen.retain(|c| c != n);
                        }
                    }
                }
            }
        });
        ui.separator();
        egui::Grid::new("builder-settings").show(ui, |ui| {
            let l = ui.label("repetitions");
            ui.add(egui::DragValue::new(&mut self.builder.repetitions).range(1..=100))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("iterations");
            ui.add(egui::DragValue::new(&mut self.builder.num_iterations).range(1..=u64::MAX))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("validation interval");
            ui.add(egui::DragValue::new(&mut self.builder.validation_interval).range(1..=u64::MAX))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("naming template");
            let width = (ui.available_width() - 8.0).max(420.0);
            ui.add(egui::TextEdit::singleline(&mut self.builder.template).desired_width(width))
                .labelled_by(l.id)
                .on_hover_text(
                    "{datasplit}, {task}, {architecture}, {trainer} and {repetition} are \
                     replaced by the config names and the replicate index",
                );
            ui.end_row();
        });
        ui.separator();
        let fresh = self
            .preview
            .as_ref()
            .is_some_and(|(b, n, _)| *b == self.builder && n.as_slice() == names);
        if !fresh {
            let result = self.builder.preview(store);
            self.preview = Some((self.builder.clone(), names.to_vec(), result));
        }
        let preview = self
            .preview
            .as_ref()
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| Err(String::new()));
        match preview {
            Err(e) => {
                ui.colored_label(problem_color(ui), e);
            }
            Ok(runs) => {
                let new = runs.iter().filter(|(_, w)| w == "new").count();
                let blocked = runs
                    .iter()
                    .any(|(_, w)| w != "new" && w != "already stored");
                ui.label(format!("{} run(s), {new} new:", runs.len()));
                egui::ScrollArea::vertical()
                    .id_salt("builder-preview")
                    .max_height(260.0)
                    .show(ui, |ui| {
                        for (r, what) in &runs {
                            let line = format!("{}  ({what})", r.name);
                            if what == "new" || what == "already stored" {
                                ui.label(line);
                            } else {
                                ui.colored_label(problem_color(ui), line);
                            }
                        }
                    });
                let label = format!("Save {new} run(s)");
                if ui
                    .add_enabled(!blocked && new > 0, egui::Button::new(label))
                    .clicked()
                {
                    let mut saved = 0;
                    for (r, _) in runs {
                        match store.store(&AnyConfig::Run(Box::new(r))) {
                            Ok(StoreOutcome::Written) => saved += 1,
                            Ok(StoreOutcome::Unchanged) => {}
                            Err(e) => {
                                self.message = Some((true, e.to_string()));
                                break;
                            }
                        }
                    }
                    changed |= saved > 0;
                    self.preview = None;
                    if saved > 0 {
                        self.message = Some((false, format!("saved {saved} run(s)")));
                    }
                }
            }
        }
        self.show_message(ui);
        changed
    }
}

/// Draws widgets for a document following its shape; collects edits in place.
struct Form<'a> {
    problems: &'a [Problem],
    texts: &'a mut HashMap<String, String>,
}

impl Form<'_> {
    /// The problems found exactly at `path`.
    fn at(&self, path: &str) -> Vec<&Problem> {
        self.problems.iter().filter(|p| p.path == path).collect()
    }

    /// How many problems are at or below `path`.
    fn below(&self, path: &str) -> usize {
        self.problems
            .iter()
            .filter(|p| {
                path.is_empty()
                    || p.path == path
                    || p.path.starts_with(&format!("{path}."))
                    || p.path.starts_with(&format!("{path}["))
            })
            .count()
    }

    fn show_problems(&self, ui: &mut egui::Ui, path: &str) {
        for p in self.at(path) {
            ui.colored_label(problem_color(ui), &p.message);
        }
    }

    /// The document root: a union gets its type selector, a struct its fields.
    fn root(&mut self, ui: &mut egui::Ui, shape: &Shape, value: &mut Value) -> bool {
        match shape {
            Shape::Union { types, .. } => self.union(ui, types, value, "", "type"),
            Shape::Struct { fields, .. } => self.fields(ui, fields, value, ""),
            other => self.value(ui, other, value, "", "value", ""),
        }
    }

    /// A struct's fields, one row or block each, with help on hover and problems below.
    fn fields(
        &mut self,
        ui: &mut egui::Ui,
        fields: &[FieldInfo],
        value: &mut Value,
        path: &str,
    ) -> bool {
        if !value.is_object() {
            *value = schema::struct_skeleton(fields);
            return true;
        }
        let mut changed = false;
        for f in fields {
            let fpath = schema::child(path, f.key);
            let shape = (f.shape)();
            let help = f.help();
            let Some(map) = value.as_object_mut() else {
                break;
            };
            let slot = map
                .entry(f.key.to_string())
                .or_insert_with(|| match f.default {
                    Some(d) => d(),
                    None => shape.skeleton(),
                });
            let label = if f.required() {
                format!("{} *", f.key)
            } else {
                f.key.to_string()
            };
            if f.choices.is_empty() {
                changed |= self.value(ui, &shape, slot, &fpath, &label, &help);
            } else {
                let optional = matches!(shape, Shape::Optional(_));
                changed |= self.choice(ui, f.choices, optional, slot, &fpath, (&label, &help));
            }
        }
        // Keys the type does not know (the problems name them).
        if let Some(map) = value.as_object() {
            let known: Vec<&str> = fields.iter().map(|f| f.key).chain([TYPE_KEY]).collect();
            for k in map.keys().filter(|k| !known.contains(&k.as_str())) {
                ui.colored_label(problem_color(ui), format!("unknown field {k:?}"));
            }
        }
        changed
    }

    /// A text field with a fixed set of values: a list to choose from (with "none" for
    /// optional fields).
    fn choice(
        &mut self,
        ui: &mut egui::Ui,
        choices: &[&str],
        optional: bool,
        value: &mut Value,
        path: &str,
        (label, help): (&str, &str),
    ) -> bool {
        let current = match &*value {
            Value::String(s) => s.clone(),
            Value::Null => "none".to_string(),
            other => other.to_string(),
        };
        let mut chosen = value.clone();
        let r = egui::ComboBox::new(format!("choice:{path}"), label)
            .selected_text(current)
            .show_ui(ui, |ui| {
                if optional {
                    ui.selectable_value(&mut chosen, Value::Null, "none");
                }
                for c in choices {
                    ui.selectable_value(&mut chosen, Value::String(c.to_string()), *c);
                }
            });
        if !help.is_empty() {
            r.response.on_hover_text(help);
        }
        self.show_problems(ui, path);
        if chosen != *value {
            *value = chosen;
            return true;
        }
        false
    }

    /// A `__type__`-tagged union: the type selector, the type's help, then its fields.
    fn union(
        &mut self,
        ui: &mut egui::Ui,
        types: &'static [TypeInfo],
        value: &mut Value,
        path: &str,
        label: &str,
    ) -> bool {
        let mut changed = false;
        let current = value
            .get(TYPE_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut chosen = current.clone();
        ui.horizontal(|ui| {
            egui::ComboBox::new(format!("type:{path}"), label)
                .selected_text(if chosen.is_empty() {
                    "(choose)"
                } else {
                    chosen.as_str()
                })
                .show_ui(ui, |ui| {
                    for t in types {
                        ui.selectable_value(&mut chosen, t.tag.to_string(), t.tag)
                            .on_hover_text(t.help());
                    }
                });
        });
        self.show_problems(ui, &schema::child(path, TYPE_KEY));
        if chosen != current {
            if let Some(t) = types.iter().find(|t| t.tag == chosen) {
                *value = schema::switch_type(value, t);
                changed = true;
            }
        }
        if let Some(t) = types.iter().find(|t| t.tag == chosen) {
            let help = t.help();
            let first = help.split(". ").next().unwrap_or_default();
            ui.label(egui::RichText::new(first).weak());
            changed |= self.fields(ui, t.fields, value, path);
        }
        changed
    }

    /// One value of any shape, labelled `label`, with `help` on hover.
    fn value(
        &mut self,
        ui: &mut egui::Ui,
        shape: &Shape,
        value: &mut Value,
        path: &str,
        label: &str,
        help: &str,
    ) -> bool {
        let mut changed = false;
        match shape {
            Shape::Bool => {
                let mut b = value.as_bool().unwrap_or(false);
                let r = ui.checkbox(&mut b, label);
                let r = if help.is_empty() {
                    r
                } else {
                    r.on_hover_text(help)
                };
                if r.changed() || !value.is_boolean() {
                    *value = Value::Bool(b);
                    changed = true;
                }
                self.show_problems(ui, path);
            }
            Shape::Integer { .. } | Shape::Float | Shape::Text => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.clone().on_hover_text(help);
                    }
                    let width = match shape {
                        Shape::Text => ui.available_width().clamp(120.0, 320.0),
                        _ => 110.0,
                    };
                    changed |= self.scalar(ui, shape, value, path, (l.id, width));
                });
                self.show_problems(ui, path);
            }
            Shape::Coordinate => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.on_hover_text(help);
                    }
                    changed |= self.coordinate(ui, value, path);
                });
                self.show_problems(ui, path);
            }
            Shape::Optional(inner) => {
                let mut set = !value.is_null();
                let r = ui.checkbox(&mut set, format!("{label} (set)"));
                let r = if help.is_empty() {
                    r
                } else {
                    r.on_hover_text(help)
                };
                if r.changed() {
                    *value = if set { inner.skeleton() } else { Value::Null };
                    changed = true;
                }
                if !value.is_null() {
                    ui.indent(format!("opt:{path}"), |ui| {
                        changed |= self.value(ui, inner, value, path, label, help);
                    });
                } else {
                    self.show_problems(ui, path);
                }
            }
            Shape::Struct { fields, .. } => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    form.fields(ui, fields, value, path)
                });
            }
            Shape::Union { types, .. } => {
                let types: &'static [TypeInfo] = types;
                changed |= self.block(ui, path, label, help, |form, ui| {
                    form.union(ui, types, value, path, "type")
                });
            }
            Shape::List(inner) => {
                if !value.is_array() {
                    *value = Value::Array(Vec::new());
                    changed = true;
                }
                let n = value.as_array().map_or(0, Vec::len);
                let title = format!("{label} ({n})");
                changed |= self.block(ui, path, &title, help, |form, ui| {
                    let mut changed = false;
                    let mut remove = None;
                    if let Some(items) = value.as_array_mut() {
                        for (i, item) in items.iter_mut().enumerate() {
                            let ipath = schema::index(path, i);
                            ui.horizontal(|ui| {
                                if ui.small_button("Remove").on_hover_text(&ipath).clicked() {
                                    remove = Some(i);
                                }
                                ui.vertical(|ui| {
                                    changed |=
                                        form.value(ui, inner, item, &ipath, &format!("[{i}]"), "");
                                });
                            });
                        }
                        if let Some(i) = remove {
                            items.remove(i);
                            changed = true;
                        }
                        if ui.button(format!("Add to {label}")).clicked() {
                            items.push(inner.skeleton());
                            changed = true;
                        }
                    }
                    changed
                });
            }
            Shape::Map(inner) => {
                if !value.is_object() {
                    *value = Value::Object(Map::new());
                    changed = true;
                }
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    let mut remove = None;
                    if let Some(map) = value.as_object_mut() {
                        for (k, item) in map.iter_mut() {
                            let kpath = schema::child(path, k);
                            ui.horizontal(|ui| {
                                if ui.small_button("Remove").on_hover_text(&kpath).clicked() {
                                    remove = Some(k.clone());
                                }
                                ui.vertical(|ui| {
                                    changed |= form.value(ui, inner, item, &kpath, k, "");
                                });
                            });
                        }
                        if let Some(k) = remove {
                            map.remove(&k);
                            changed = true;
                        }
                        if ui.button(format!("Add to {label}")).clicked() {
                            let mut i = map.len();
                            while map.contains_key(&format!("new_{i}")) {
                                i += 1;
                            }
                            map.insert(format!("new_{i}"), inner.skeleton());
                            changed = true;
                        }
                    }
                    changed
                });
            }
            Shape::Tuple(shapes) => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    if value.as_array().map(Vec::len) != Some(shapes.len()) {
                        *value = Shape::Tuple(shapes.clone()).skeleton();
                        changed = true;
                    }
                    if let Some(items) = value.as_array_mut() {
                        for (i, (s, item)) in shapes.iter().zip(items.iter_mut()).enumerate() {
                            let ipath = schema::index(path, i);
                            changed |= form.value(ui, s, item, &ipath, &format!("[{i}]"), "");
                        }
                    }
                    changed
                });
            }
            Shape::Roi => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    if !Shape::Roi.fits(value) {
                        *value = Shape::Roi.skeleton();
                        changed = true;
                    }
                    if let Some(items) = value.as_array_mut() {
                        for (i, (name, item)) in
                            ["offset", "shape"].iter().zip(items.iter_mut()).enumerate()
                        {
                            let ipath = schema::index(path, i);
                            ui.horizontal(|ui| {
                                ui.label(*name);
                                changed |= form.coordinate(ui, item, &ipath);
                            });
                            form.show_problems(ui, &ipath);
                        }
                    }
                    changed
                });
            }
            Shape::Any => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.clone().on_hover_text(help);
                    }
                    let text = self
                        .texts
                        .entry(path.to_string())
                        .or_insert_with(|| crate::config::to_yaml(value).trim_end().to_string());
                    let r = ui
                        .add(
                            egui::TextEdit::multiline(text)
                                .code_editor()
                                .desired_rows(2),
                        )
                        .labelled_by(l.id);
                    if r.changed() {
                        if let Ok(v) = crate::config::parse_document(text, path) {
                            *value = v;
                            changed = true;
                        }
                    }
                });
                self.show_problems(ui, path);
            }
        }
        changed
    }

    /// A collapsible block for nested values; its header counts the problems inside.
    fn block(
        &mut self,
        ui: &mut egui::Ui,
        path: &str,
        label: &str,
        help: &str,
        body: impl FnOnce(&mut Self, &mut egui::Ui) -> bool,
    ) -> bool {
        let n = self.below(path);
        let title = if n > 0 {
            egui::RichText::new(format!("{label}  ({n} problem(s))")).color(problem_color(ui))
        } else {
            egui::RichText::new(label)
        };
        let r = egui::CollapsingHeader::new(title)
            .id_salt(format!("block:{path}"))
            .default_open(true)
            .show(ui, |ui| {
                let changed = body(self, ui);
                self.show_problems(ui, path);
                changed
            });
        if !help.is_empty() {
            r.header_response.on_hover_text(help);
        }
        r.body_returned.unwrap_or(false)
    }

    /// A number or string field `width` points wide, labelled by `label`; numbers keep
    /// the text as typed, and text that is not a number is kept as a string so that
    /// validation names the field.
    fn scalar(
        &mut self,
        ui: &mut egui::Ui,
        shape: &Shape,
        value: &mut Value,
        path: &str,
        (label, width): (egui::Id, f32),
    ) -> bool {
        let shown = match &*value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let text = self
            .texts
            .entry(path.to_string())
            .or_insert_with(|| shown.clone());
        if parse_scalar(shape, text) != *value {
            *text = shown;
        }
        let r = ui
            .add(egui::TextEdit::singleline(text).desired_width(width))
            .labelled_by(label);
        if r.changed() {
            *value = parse_scalar(shape, text);
            return true;
        }
        false
    }

    /// A coordinate as one small field per axis, with buttons to add or drop an axis.
    fn coordinate(&mut self, ui: &mut egui::Ui, value: &mut Value, path: &str) -> bool {
        let mut changed = false;
        if !value.is_array() {
            *value = Shape::Coordinate.skeleton();
            changed = true;
        }
        let Some(items) = value.as_array_mut() else {
            return changed;
        };
        let names = axis_names(items.len());
        for (i, item) in items.iter_mut().enumerate() {
            let l = ui.label(names.get(i).copied().unwrap_or("?"));
            let ipath = schema::index(path, i);
            // One short field per axis.
            let axis = (l.id, 56.0);
            changed |= self.scalar(ui, &Shape::Integer { min: i64::MIN }, item, &ipath, axis);
        }
        if items.len() < 4
            && ui
                .small_button("+axis")
                .on_hover_text("add an axis in front")
                .clicked()
        {
            let first = items
                .first()
                .cloned()
                .unwrap_or(Value::Number(Number::from(1)));
            items.insert(0, first);
            changed = true;
        }
        if items.len() > 1
            && ui
                .small_button("-axis")
                .on_hover_text("drop the first axis")
                .clicked()
        {
            items.remove(0);
            changed = true;
        }
        changed
    }
}

/// The document value of `text` typed into a field of `shape`: a number when it reads as
/// one, otherwise the text itself (which validation then reports at the field).
fn parse_scalar(shape: &Shape, text: &str) -> Value {
    let t = text.trim();
    match shape {
        Shape::Integer { .. } => t
            .parse::<i64>()
            .map(|v| Value::Number(Number::from(v)))
            .or_else(|_| t.parse::<u64>().map(|v| Value::Number(Number::from(v))))
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Shape::Float => match t.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text.to_string()),
        },
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
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
