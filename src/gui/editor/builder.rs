//! The run builder: runs from chosen datasplits × tasks × architectures × trainers ×
//! repetitions, previewed before anything is saved, with templates and the parts of stored
//! runs offered where a family has no stored config.

use super::*;

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
pub(super) const GRID_FAMILIES: [Family; 4] = [
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

/// A starting config of `family` for a project that has none, with what it is: a task for
/// the classes of the project's first datasplit, a small U-Net with its sizes, a trainer
/// with the usual augments. `None` for other families, or a task without a datasplit
/// whose classes can be told.
pub(super) fn template_for(
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
    pub(super) fn builder_page(
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
        let fresh = self
            .run_parts
            .as_ref()
            .is_some_and(|(n, _)| n.as_slice() == names);
        if !fresh {
            self.run_parts = Some((names.to_vec(), run_parts(store, names)));
        }
        let parts = self
            .run_parts
            .as_ref()
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
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
                // Parts of stored runs that are not stored on their own.
                for part in parts.iter().filter(|p| p.config.family() == family) {
                    let label = format!("Store {} from run {}", part.config.name(), part.run);
                    let hover = format!(
                        "stores this {} of run {} as its own config, so it can be combined",
                        family.noun(),
                        part.run
                    );
                    if col.button(label).on_hover_text(hover).clicked() {
                        match store.store(&part.config) {
                            Ok(_) => changed = true,
                            Err(e) => self.message = Some((true, e.to_string())),
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

/// A datasplit, task, architecture or trainer inside a stored run whose name is not stored
/// in its family.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunPart {
    /// The config.
    pub(super) config: AnyConfig,
    /// The first run (by name) it was found in.
    pub(super) run: String,
}

/// The parts of the stored runs whose names are not stored in their family, once per
/// family and name (runs whose file does not load are skipped).
pub(super) fn run_parts(store: &ConfigStore, names: &[(Family, Vec<String>)]) -> Vec<RunPart> {
    let mut out: Vec<RunPart> = Vec::new();
    for run in names_of(names, Family::Runs) {
        let Ok(AnyConfig::Run(r)) = store.retrieve(Family::Runs, run) else {
            continue;
        };
        let r = *r;
        let parts = [
            AnyConfig::Datasplit(r.datasplit_config),
            AnyConfig::Task(r.task_config),
            AnyConfig::Architecture(r.architecture_config),
            AnyConfig::Trainer(r.trainer_config),
        ];
        for config in parts {
            let family = config.family();
            let stored = names_of(names, family).iter().any(|n| n == config.name());
            let listed = out
                .iter()
                .any(|p| p.config.family() == family && p.config.name() == config.name());
            if !stored && !listed {
                out.push(RunPart {
                    config,
                    run: run.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui::editor::harness::{harness, names};
    use egui_kittest::kittest::Queryable;

    #[test]
    fn the_builder_offers_the_parts_of_stored_runs_and_builds_a_run_from_them() {
        let dir = tempfile::tempdir().unwrap();
        let project = crate::store::Project::open(dir.path()).unwrap();
        let run = crate::demo::project::demo_run(10, 5);
        project
            .configs()
            .store(&AnyConfig::Run(Box::new(run.clone())))
            .unwrap();
        let parts = run_parts(&project.configs(), &names(&project.configs()));
        let found: Vec<(Family, &str)> = parts
            .iter()
            .map(|p| (p.config.family(), p.config.name()))
            .collect();
        assert_eq!(
            found,
            [
                (Family::Datasplits, run.datasplit_config.name()),
                (Family::Tasks, "demo_distance_mito_er"),
                (Family::Architectures, "demo_unet_52"),
                (Family::Trainers, "demo_trainer"),
            ]
        );
        let mut h = harness(project, EditorTab::Builder);
        h.run();
        let labels = [
            format!(
                "Store {} from run {}",
                run.datasplit_config.name(),
                run.name
            ),
            format!("Store demo_distance_mito_er from run {}", run.name),
            format!("Store demo_unet_52 from run {}", run.name),
            format!("Store demo_trainer from run {}", run.name),
        ];
        for label in &labels {
            h.get_by_label(label).click();
            h.run();
        }
        let store = h.state().project.configs();
        assert_eq!(
            store.names(Family::Tasks).unwrap(),
            ["demo_distance_mito_er"]
        );
        assert_eq!(store.names(Family::Trainers).unwrap(), ["demo_trainer"]);
        // Stored now: no longer offered.
        assert!(h.query_by_label(&labels[1]).is_none());
        for name in [
            run.datasplit_config.name(),
            "demo_distance_mito_er",
            "demo_unet_52",
            "demo_trainer",
        ] {
            h.get_by_label(name).click();
            h.run();
        }
        // The same parts with the builder's settings give the run's own combination.
        let preview = h.state().editor.builder.preview(&store).unwrap();
        assert_eq!(preview.len(), 1);
        let (built, _) = &preview[0];
        assert_eq!(built.task_config, run.task_config);
        assert_eq!(built.architecture_config, run.architecture_config);
        assert_eq!(built.trainer_config, run.trainer_config);
        assert_eq!(built.datasplit_config, run.datasplit_config);
    }
}
