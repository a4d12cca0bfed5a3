//! Run configs (one experiment: task + architecture + trainer + datasplit + iterations)
//! and start configs (initial weights from another run).

use super::architectures::ArchitectureConfig;
use super::check_name;
use super::datasplits::DataSplitConfig;
use super::schema::{child, Check, Problems};
use super::tasks::TaskConfig;
use super::trainers::TrainerConfig;

config_enum! {
    /// Where the initial weights of a run come from (DaCapo's StartConfig family).
    InitialWeightsConfig {
        /// A checkpoint of another run in the same project.
        Start(StartConfig),
        /// A published COSEM checkpoint.
        Cosem(CosemStartConfig),
    }
}

config_struct! {
    /// Starts from a checkpoint of another run: `checkpoints/<criterion>` if it exists,
    /// else `checkpoints/iterations/<criterion>`.
    StartConfig {
        /// Name of the run to take the weights from.
        run: String,
        /// Checkpoint key: a criterion name or an iteration number (as text, e.g. "200000").
        criterion: String,
    }
}

impl Check for StartConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.run.trim().is_empty() {
            problems.push(&child(path, "run"), "must name a run");
        }
        if self.criterion.trim().is_empty() {
            problems.push(
                &child(path, "criterion"),
                "must name a criterion or an iteration",
            );
        }
    }
}

config_struct! {
    /// Starts from a published COSEM checkpoint; output channels are matched by class name.
    CosemStartConfig {
        /// COSEM setup name, e.g. "setup04".
        run: String,
        /// Checkpoint iteration, e.g. "1820500".
        criterion: String,
    }
}

impl Check for CosemStartConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        if self.run.trim().is_empty() {
            problems.push(&child(path, "run"), "must name a COSEM setup");
        }
        if self.criterion.trim().is_empty() {
            problems.push(
                &child(path, "criterion"),
                "must name a checkpoint iteration",
            );
        }
    }
}

config_struct! {
    /// One experiment: train `architecture_config` on `datasplit_config` for `task_config`
    /// with `trainer_config` for `num_iterations`, validating every `validation_interval`.
    RunConfig {
        /// Name of the run; also the name of its directory in the project.
        name: String,
        /// Replicate index of otherwise identical runs.
        repetition: u32 = 0,
        /// Train until this many iterations are done.
        num_iterations: u64,
        /// Save a checkpoint and validate every this many iterations.
        validation_interval: u64 = 1000,
        /// What to learn.
        task_config: TaskConfig,
        /// The network backbone.
        architecture_config: ArchitectureConfig,
        /// How to train.
        trainer_config: TrainerConfig,
        /// The training and validation data.
        datasplit_config: DataSplitConfig,
        /// Initial weights (random initialisation when null).
        start_config: Option<InitialWeightsConfig> = None,
    }
}

/// The largest iteration number a run can reach or a command can name: 2^53, the largest
/// integer that the statistics and score files (JSON numbers) and plots hold exactly.
pub const MAX_ITERATION: u64 = 1 << 53;

impl Check for RunConfig {
    fn check(&self, path: &str, problems: &mut Problems) {
        check_name(&self.name, path, problems);
        if self.num_iterations == 0 {
            problems.push(&child(path, "num_iterations"), "must be at least 1");
        }
        if self.num_iterations > MAX_ITERATION {
            problems.push(
                &child(path, "num_iterations"),
                format!(
                    "{} is beyond the limit of 2^53 = {MAX_ITERATION} iterations",
                    self.num_iterations
                ),
            );
        }
        if self.validation_interval == 0 {
            problems.push(&child(path, "validation_interval"), "must be at least 1");
        }
    }
}

/// Keys of a newer DaCapo run document that belong to the trainer in our model, with the
/// trainer key each one moves to.
const RUN_LEVEL_TRAINER_KEYS: [(&str, &str); 4] = [
    ("batch_size", "batch_size"),
    ("learning_rate", "learning_rate"),
    ("snapshot_interval", "snapshot_interval"),
    ("num_workers", "num_data_fetchers"),
];

/// Rewrites a run document of the newer DaCapo dialect, where batch size, learning rate,
/// snapshot interval and data workers are run fields, into the v0.3.x shape where they
/// belong to the trainer. Values already present in the trainer win. Other documents are
/// returned unchanged.
pub fn lift_run_dialect(mut doc: serde_json::Value) -> serde_json::Value {
    let Some(run) = doc.as_object_mut() else {
        return doc;
    };
    let moved: Vec<(&str, serde_json::Value)> = RUN_LEVEL_TRAINER_KEYS
        .iter()
        .filter_map(|(from, to)| run.remove(*from).map(|v| (*to, v)))
        .collect();
    if moved.is_empty() {
        return doc;
    }
    if let Some(serde_json::Value::Object(trainer)) = run.get_mut("trainer_config") {
        for (key, value) in moved {
            if value.is_null() && key != "snapshot_interval" {
                continue;
            }
            trainer.entry(key.to_string()).or_insert(value);
        }
    }
    doc
}

/// The naming template a run builder starts with: DaCapo's `<datasplit>_<task>_…` names.
pub const DEFAULT_RUN_NAME_TEMPLATE: &str =
    "{datasplit}_{task}_{architecture}_{trainer}__{repetition}";

/// The placeholders a run naming template may use.
pub const RUN_NAME_PLACEHOLDERS: [&str; 5] =
    ["datasplit", "task", "architecture", "trainer", "repetition"];

/// The choices a run builder combines: one run per datasplit × task × architecture ×
/// trainer × repetition, named by a template.
#[derive(Debug, Clone, PartialEq)]
pub struct RunGrid {
    /// DataSplits to train on.
    pub datasplits: Vec<DataSplitConfig>,
    /// Tasks to learn.
    pub tasks: Vec<TaskConfig>,
    /// Architectures to train.
    pub architectures: Vec<ArchitectureConfig>,
    /// Trainers to train with.
    pub trainers: Vec<TrainerConfig>,
    /// Replicates of every combination (repetition 0 … repetitions-1).
    pub repetitions: u32,
    /// Iterations of every run.
    pub num_iterations: u64,
    /// Checkpoint and validation interval of every run.
    pub validation_interval: u64,
    /// Run names: `{datasplit}`, `{task}`, `{architecture}`, `{trainer}` and
    /// `{repetition}` are replaced by the combination's config names and replicate index.
    pub name_template: String,
}

impl RunGrid {
    /// How many values each naming placeholder takes in the grid.
    fn sizes(&self) -> [(&'static str, usize); 5] {
        [
            ("datasplit", self.datasplits.len()),
            ("task", self.tasks.len()),
            ("architecture", self.architectures.len()),
            ("trainer", self.trainers.len()),
            ("repetition", self.repetitions as usize),
        ]
    }

    /// How many runs the grid makes.
    pub fn count(&self) -> usize {
        self.sizes().iter().map(|(_, n)| n).product()
    }

    /// The runs of the grid in a fixed order (datasplit, task, architecture, trainer,
    /// repetition), or every problem found: an empty choice, a bad template, two runs with
    /// the same name, or a run that fails validation.
    pub fn build(&self) -> Result<Vec<RunConfig>, Problems> {
        let mut problems = Problems::default();
        for (placeholder, n) in &self.sizes()[..4] {
            if *n == 0 {
                let key = format!("{placeholder}s");
                problems.push(&key, format!("choose at least one of the {key}"));
            }
        }
        if self.repetitions == 0 {
            problems.push("repetitions", "must be at least 1");
        }
        if let Err(e) = expand_run_name(&self.name_template, &[]) {
            problems.push("name_template", e);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut runs = Vec::with_capacity(self.count());
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for d in &self.datasplits {
            for t in &self.tasks {
                for a in &self.architectures {
                    for tr in &self.trainers {
                        for rep in 0..self.repetitions {
                            let rep_text = rep.to_string();
                            let values = [
                                ("datasplit", d.name()),
                                ("task", t.name()),
                                ("architecture", a.name()),
                                ("trainer", tr.name()),
                                ("repetition", rep_text.as_str()),
                            ];
                            let name =
                                expand_run_name(&self.name_template, &values).map_err(|e| {
                                    let mut p = Problems::default();
                                    p.push("name_template", e);
                                    p
                                })?;
                            *seen.entry(name.clone()).or_default() += 1;
                            runs.push(RunConfig {
                                name,
                                repetition: rep,
                                num_iterations: self.num_iterations,
                                validation_interval: self.validation_interval,
                                task_config: t.clone(),
                                architecture_config: a.clone(),
                                trainer_config: tr.clone(),
                                datasplit_config: d.clone(),
                                start_config: None,
                            });
                        }
                    }
                }
            }
        }
        for (name, n) in seen.iter().filter(|(_, n)| **n > 1) {
            let missing: Vec<String> = self
                .varying()
                .into_iter()
                .filter(|p| !self.name_template.contains(&format!("{{{p}}}")))
                .map(|p| format!("{{{p}}}"))
                .collect();
            problems.push(
                "name_template",
                format!(
                    "{n} runs would be named {name:?}; add {} to the template",
                    missing.join(" or ")
                ),
            );
        }
        for (i, run) in runs.iter().enumerate() {
            let mut found = Problems::default();
            super::schema::Validate::validate(run, "", &mut found);
            for p in found.iter() {
                problems.push(
                    &format!("runs[{i}] ({}){}", run.name, with_dot(&p.path)),
                    p.message.clone(),
                );
            }
        }
        if problems.is_empty() {
            Ok(runs)
        } else {
            Err(problems)
        }
    }

    /// The placeholders whose value differs between the grid's runs.
    fn varying(&self) -> Vec<&'static str> {
        self.sizes()
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(p, _)| p)
            .collect()
    }
}

fn with_dot(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(".{path}")
    }
}

/// Fills a run naming template: every `{placeholder}` is replaced by its value in
/// `values`; a placeholder without a value stays as it is. Unknown placeholders and
/// unbalanced braces are errors naming what was found.
pub fn expand_run_name(template: &str, values: &[(&str, &str)]) -> Result<String, String> {
    if template.trim().is_empty() {
        return Err("the naming template is empty".into());
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("unmatched `}}` in {template:?}"));
        }
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("unmatched `{{` in {template:?}"));
        };
        let key = &after[..close];
        if !RUN_NAME_PLACEHOLDERS.contains(&key) {
            return Err(format!(
                "unknown placeholder {{{key}}} in {template:?}; use {}",
                RUN_NAME_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(key);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed_task(t: &TaskConfig, name: &str) -> TaskConfig {
        let mut t = t.clone();
        if let TaskConfig::Distance(c) = &mut t {
            c.name = name.to_string();
        }
        t
    }

    fn grid() -> RunGrid {
        let run = crate::demo::project::demo_run(20, 10);
        RunGrid {
            datasplits: vec![run.datasplit_config.clone()],
            tasks: vec![
                renamed_task(&run.task_config, "dist_a"),
                renamed_task(&run.task_config, "dist_b"),
            ],
            architectures: vec![run.architecture_config.clone()],
            trainers: vec![run.trainer_config.clone()],
            repetitions: 2,
            num_iterations: 500,
            validation_interval: 100,
            name_template: "{task}_{trainer}__{repetition}".into(),
        }
    }

    #[test]
    fn the_grid_is_the_cartesian_product_in_order_with_names_from_the_template() {
        let g = grid();
        assert_eq!(g.count(), 4);
        let runs = g.build().unwrap();
        let trainer = g.trainers[0].name().to_string();
        let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
        assert_eq!(
            names,
            vec![
                format!("dist_a_{trainer}__0"),
                format!("dist_a_{trainer}__1"),
                format!("dist_b_{trainer}__0"),
                format!("dist_b_{trainer}__1"),
            ]
        );
        assert_eq!(runs[1].repetition, 1);
        assert_eq!(runs[2].task_config.name(), "dist_b");
        assert!(runs
            .iter()
            .all(|r| r.num_iterations == 500 && r.validation_interval == 100));
    }

    #[test]
    fn a_template_that_names_two_runs_alike_is_refused_with_the_placeholder_to_add() {
        let mut g = grid();
        g.name_template = "{task}".into();
        let problems = g.build().unwrap_err();
        let text = problems.to_string();
        assert_eq!(problems.len(), 2, "{text}");
        assert!(
            text.contains("2 runs would be named \"dist_a\"; add {repetition}"),
            "{text}"
        );
        g.name_template = "{task}_{seed}".into();
        let text = g.build().unwrap_err().to_string();
        assert!(
            text.contains("name_template: unknown placeholder {seed}"),
            "{text}"
        );
        g.name_template = "{task".into();
        assert!(g.build().unwrap_err().to_string().contains("unmatched `{`"));
        g.name_template = "{task}".into();
        g.tasks.clear();
        g.repetitions = 0;
        let text = g.build().unwrap_err().to_string();
        assert!(
            text.contains("tasks: choose at least one of the tasks"),
            "{text}"
        );
        assert!(text.contains("repetitions: must be at least 1"), "{text}");
    }

    #[test]
    fn names_that_are_not_valid_run_names_are_reported_per_run() {
        let mut g = grid();
        g.name_template = "{task}\u{1}".into();
        g.repetitions = 1;
        let problems = g.build().unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems.0[0].path, "runs[0] (dist_a\u{1}).name");
        assert!(problems.0[0].message.contains("control characters"));
    }
}
