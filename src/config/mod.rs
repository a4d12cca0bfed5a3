//! The config data model: every DaCapo config type, with defaults, help texts, validation
//! that reports every problem by field path, and DaCapo-compatible YAML/JSON.
//!
//! Documents are read in any of the three DaCapo dialects (seed era, v0.3.x, newer) and
//! written in the v0.3.x dialect: tagged families carry a `__type__` key naming the DaCapo
//! class, keys are sorted, and `!!python/tuple` tags are accepted on read. Unlike DaCapo,
//! an unknown key or type is an error, not silently ignored.

#[macro_use]
pub mod schema;

pub mod architectures;
pub mod arrays;
pub mod datasplits;
pub mod options;
pub mod runs;
pub mod tasks;
pub mod templates;
pub mod trainers;

use std::fmt;

use serde_json::Value;

pub use architectures::{
    ArchitectureConfig, CNNectomeUNetConfig, DummyArchitectureConfig, ShapeReport,
};
pub use arrays::*;
pub use datasplits::*;
pub use options::{BsubConfig, ComputeContextConfig, LocalTorchConfig, OptionsConfig};
pub use runs::{
    expand_run_name, CosemStartConfig, InitialWeightsConfig, RunConfig, RunGrid, StartConfig,
    DEFAULT_RUN_NAME_TEMPLATE,
};
pub use schema::{Decode, Encode, FieldInfo, Problem, Problems, Shape, TypeInfo, Validate};
pub use tasks::*;
pub use trainers::*;

use crate::geometry::Coordinate;

/// The key holding the concrete type name in tagged config documents.
pub const TYPE_KEY: &str = "__type__";

/// Errors reading or checking a config document.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not valid YAML/JSON.
    #[error("{source_name}: not valid YAML or JSON: {message}")]
    Syntax {
        /// File name (or other label) of the document.
        source_name: String,
        /// The parser's description, with line and column.
        message: String,
    },
    /// The document holds nothing.
    #[error("{source_name}: the document is empty")]
    Empty {
        /// File name (or other label) of the document.
        source_name: String,
    },
    /// The document has the wrong shape or values; every problem is listed.
    #[error("{source_name}: {} problem(s):\n{problems}", problems.len())]
    Invalid {
        /// File name (or other label) of the document.
        source_name: String,
        /// Every problem found, each with its field path.
        problems: Problems,
    },
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] error (empty for other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => &problems.0,
            _ => &[],
        }
    }
}

/// Checks a config's `name` (nested names may contain any printable characters).
pub(crate) fn check_name(name: &str, path: &str, problems: &mut Problems) {
    let npath = schema::child(path, "name");
    if name.trim().is_empty() {
        problems.push(&npath, "must not be empty");
    } else if name.chars().any(char::is_control) {
        problems.push(&npath, format!("{name:?} contains control characters"));
    }
}

/// Checks that every component of a size-like coordinate is positive.
pub(crate) fn check_positive_coordinate(c: &Coordinate, path: &str, problems: &mut Problems) {
    if c.iter().any(|v| v <= 0) {
        problems.push(path, format!("must be positive on every axis, got {c}"));
    }
}

/// The deepest nesting of mappings and lists a config may have (DaCapo's configs nest
/// about ten levels deep); deeper documents are refused before they are parsed.
pub const MAX_NESTING: usize = 64;

/// The largest config document, in bytes (16 MiB).
pub const MAX_CONFIG_BYTES: usize = 16 << 20;

/// An upper estimate of how deeply `text` nests YAML (block indentation and `- ` markers)
/// and flow (`[`, `{`) collections, in one linear pass.
fn nesting_depth(text: &str) -> usize {
    let mut deepest = 0;
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start_matches([' ', '\t']);
        if flow == 0 && !trimmed.is_empty() && !trimmed.starts_with('#') {
            let indent = line.len() - trimmed.len();
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            let mut rest = trimmed;
            let mut dashes = 0;
            while let Some(r) = rest
                .strip_prefix('-')
                .filter(|r| r.is_empty() || r.starts_with(' '))
            {
                dashes += 1;
                rest = r.trim_start_matches(' ');
            }
            deepest = deepest.max(indents.len() + dashes);
        }
        let mut quote = None;
        let mut previous = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if matches!(previous, ' ' | '[' | '{' | ',' | ':') => {
                    quote = Some(c)
                }
                (None, '#') if previous == ' ' => break,
                (None, '[' | '{') => {
                    flow += 1;
                    deepest = deepest.max(indents.len() + flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    deepest
}

/// Parses YAML (or JSON, which is read as YAML) into a document tree, dropping YAML tags
/// such as `!!python/tuple` (tuples become lists). Documents larger than
/// [`MAX_CONFIG_BYTES`] or nested deeper than [`MAX_NESTING`] are refused.
pub fn parse_document(text: &str, source_name: &str) -> Result<Value, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::Syntax {
            source_name: source_name.to_string(),
            message: format!(
                "the document has {} bytes, more than the {} MiB a config may have",
                text.len(),
                MAX_CONFIG_BYTES >> 20
            ),
        });
    }
    let depth = nesting_depth(text);
    if depth > MAX_NESTING {
        return Err(ConfigError::Syntax {
            source_name: source_name.to_string(),
            message: format!(
                "the document nests {depth} levels deep, more than the {MAX_NESTING} a config may have"
            ),
        });
    }
    // The YAML parser drops `!!` tags it does not know; Python object tags must not be
    // read as the plain value under them, so they are refused by line.
    let mut tag_problems = Problems::default();
    for (n, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("!!python/") {
            let tag: String = rest[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '[' | '{' | ',' | ']' | '}'))
                .collect();
            let quoted = rest[..i].matches(['"', '\'']).count() % 2 == 1;
            if !quoted && !matches!(tag.as_str(), "!!python/tuple" | "!!python/list") {
                tag_problems.push(
                    "",
                    format!(
                        "line {}: the YAML tag `{tag}` is not supported: Segno reads plain YAML values (and `!!python/tuple`), not Python objects; write this value as a plain mapping, list, number or string",
                        n + 1
                    ),
                );
            }
            rest = &rest[i + tag.len().max(1)..];
        }
    }
    if !tag_problems.is_empty() {
        return Err(ConfigError::Invalid {
            source_name: source_name.to_string(),
            problems: tag_problems,
        });
    }
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
    let mut problems = Problems::default();
    let doc = yaml_to_tree(yaml, "", &mut problems);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            source_name: source_name.to_string(),
            problems,
        });
    }
    if doc.is_null() {
        return Err(ConfigError::Empty {
            source_name: source_name.to_string(),
        });
    }
    Ok(doc)
}

fn yaml_to_tree(value: serde_yaml_ng::Value, path: &str, problems: &mut Problems) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                match serde_json::Number::from_f64(f) {
                    Some(num) => Value::Number(num),
                    None => {
                        problems.push(path, format!("{f} is not a finite number"));
                        Value::Null
                    }
                }
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| yaml_to_tree(v, &schema::index(path, i), problems))
                .collect(),
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        problems.push(
                            path,
                            format!("mapping keys must be plain text, found {other:?}"),
                        );
                        continue;
                    }
                };
                let child = yaml_to_tree(v, &schema::child(path, &key), problems);
                out.insert(key, child);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            // PyYAML's tuples are lists; other Python tags would build Python objects,
            // which a config file cannot hold here.
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = name.strip_prefix("tag:yaml.org,2002:").unwrap_or(name);
            let plain = matches!(
                name,
                "python/tuple"
                    | "python/list"
                    | "str"
                    | "int"
                    | "float"
                    | "bool"
                    | "null"
                    | "seq"
                    | "map"
            );
            if !plain {
                problems.push(
                    path,
                    format!(
                        "the YAML tag `!{name}` is not supported: Segno reads plain YAML values (and `!!python/tuple`), not Python objects; write this value as a plain mapping, list, number or string"
                    ),
                );
                return Value::Null;
            }
            yaml_to_tree(tagged.value, path, problems)
        }
    }
}

/// Writes a document tree as block-style YAML with sorted keys (DaCapo's layout), without
/// tuple tags; use [`Encode::encode_yaml`] with [`schema::to_yaml_text`] to get them.
pub fn to_yaml(doc: &Value) -> String {
    schema::to_yaml_text(&schema::json_to_yaml(doc))
}

/// Decodes and validates a document as a `T`, reporting every problem with its path.
pub fn decode_document<T: Decode + Validate>(
    doc: &Value,
    source_name: &str,
) -> Result<T, ConfigError> {
    let mut problems = Problems::default();
    let decoded = T::decode(doc, "", &mut problems);
    match decoded {
        Some(value) if problems.is_empty() => {
            value.validate("", &mut problems);
            if problems.is_empty() {
                Ok(value)
            } else {
                Err(ConfigError::Invalid {
                    source_name: source_name.to_string(),
                    problems,
                })
            }
        }
        _ => Err(ConfigError::Invalid {
            source_name: source_name.to_string(),
            problems,
        }),
    }
}

/// Decodes a document as a `T` without the semantic checks (shape and types only), so a
/// config that is well-formed but not yet valid can still be opened and fixed.
pub fn decode_document_unchecked<T: Decode>(
    doc: &Value,
    source_name: &str,
) -> Result<T, ConfigError> {
    let mut problems = Problems::default();
    match T::decode(doc, "", &mut problems) {
        Some(value) if problems.is_empty() => Ok(value),
        _ => Err(ConfigError::Invalid {
            source_name: source_name.to_string(),
            problems,
        }),
    }
}

/// The kinds of config that are stored by name in a project, one directory each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Runs (`configs/runs`).
    Runs,
    /// Tasks (`configs/tasks`).
    Tasks,
    /// Architectures (`configs/architectures`).
    Architectures,
    /// Trainers (`configs/trainers`).
    Trainers,
    /// DataSplits (`configs/datasplits`).
    Datasplits,
    /// Arrays (`configs/arrays`).
    Arrays,
}

impl Family {
    /// Every family, in display order.
    pub const ALL: [Family; 6] = [
        Family::Runs,
        Family::Tasks,
        Family::Architectures,
        Family::Trainers,
        Family::Datasplits,
        Family::Arrays,
    ];

    /// Directory name below `configs/` (also the CLI spelling).
    pub fn dir_name(self) -> &'static str {
        match self {
            Family::Runs => "runs",
            Family::Tasks => "tasks",
            Family::Architectures => "architectures",
            Family::Trainers => "trainers",
            Family::Datasplits => "datasplits",
            Family::Arrays => "arrays",
        }
    }

    /// Singular noun for messages ("run", "task", …).
    pub fn noun(self) -> &'static str {
        match self {
            Family::Runs => "run",
            Family::Tasks => "task",
            Family::Architectures => "architecture",
            Family::Trainers => "trainer",
            Family::Datasplits => "datasplit",
            Family::Arrays => "array",
        }
    }

    /// Parses a family from its directory name or singular noun (case-insensitive).
    pub fn parse(text: &str) -> Option<Family> {
        let t = text.to_ascii_lowercase();
        Family::ALL
            .into_iter()
            .find(|f| f.dir_name() == t || f.noun() == t)
    }

    /// Guesses the family of an untyped document: runs are untagged mappings with a
    /// `task_config`; tagged documents are recognised by their `__type__`.
    pub fn detect(doc: &Value) -> Option<Family> {
        let map = doc.as_object()?;
        if map.contains_key("task_config") || map.contains_key("architecture_config") {
            return Some(Family::Runs);
        }
        let tag = map.get(TYPE_KEY)?.as_str()?;
        let has = |types: &[TypeInfo]| types.iter().any(|t| t.tag == tag);
        [
            (Family::Tasks, TaskConfig::TYPES),
            (Family::Architectures, ArchitectureConfig::TYPES),
            (Family::Trainers, TrainerConfig::TYPES),
            (Family::Datasplits, DataSplitConfig::TYPES),
            (Family::Arrays, ArrayConfig::TYPES),
        ]
        .into_iter()
        .find(|(_, types)| has(types))
        .map(|(f, _)| f)
    }

    /// The concrete types of this family (empty for runs, which are untagged).
    pub fn types(self) -> &'static [TypeInfo] {
        match self {
            Family::Runs => &[],
            Family::Tasks => TaskConfig::TYPES,
            Family::Architectures => ArchitectureConfig::TYPES,
            Family::Trainers => TrainerConfig::TYPES,
            Family::Datasplits => DataSplitConfig::TYPES,
            Family::Arrays => ArrayConfig::TYPES,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// A config of any stored family.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // small trees of settings, never hot
pub enum AnyConfig {
    /// A run.
    Run(Box<RunConfig>),
    /// A task.
    Task(TaskConfig),
    /// An architecture.
    Architecture(ArchitectureConfig),
    /// A trainer.
    Trainer(TrainerConfig),
    /// A datasplit.
    Datasplit(DataSplitConfig),
    /// An array.
    Array(ArrayConfig),
}

impl AnyConfig {
    /// The family this config is stored in.
    pub fn family(&self) -> Family {
        match self {
            AnyConfig::Run(_) => Family::Runs,
            AnyConfig::Task(_) => Family::Tasks,
            AnyConfig::Architecture(_) => Family::Architectures,
            AnyConfig::Trainer(_) => Family::Trainers,
            AnyConfig::Datasplit(_) => Family::Datasplits,
            AnyConfig::Array(_) => Family::Arrays,
        }
    }

    /// The config's name (its file name in the store).
    pub fn name(&self) -> &str {
        match self {
            AnyConfig::Run(c) => &c.name,
            AnyConfig::Task(c) => c.name(),
            AnyConfig::Architecture(c) => c.name(),
            AnyConfig::Trainer(c) => c.name(),
            AnyConfig::Datasplit(c) => c.name(),
            AnyConfig::Array(c) => c.name(),
        }
    }

    /// The document tree in the v0.3.x dialect.
    pub fn to_document(&self) -> Value {
        match self {
            AnyConfig::Run(c) => c.encode(),
            AnyConfig::Task(c) => c.encode(),
            AnyConfig::Architecture(c) => c.encode(),
            AnyConfig::Trainer(c) => c.encode(),
            AnyConfig::Datasplit(c) => c.encode(),
            AnyConfig::Array(c) => c.encode(),
        }
    }

    /// YAML text in the v0.3.x dialect, with `!!python/tuple` tags where DaCapo has tuples.
    pub fn to_yaml(&self) -> String {
        let tree = match self {
            AnyConfig::Run(c) => c.encode_yaml(),
            AnyConfig::Task(c) => c.encode_yaml(),
            AnyConfig::Architecture(c) => c.encode_yaml(),
            AnyConfig::Trainer(c) => c.encode_yaml(),
            AnyConfig::Datasplit(c) => c.encode_yaml(),
            AnyConfig::Array(c) => c.encode_yaml(),
        };
        schema::to_yaml_text(&tree)
    }

    /// Every validation problem of this config (empty when it is valid).
    pub fn problems(&self) -> Problems {
        let mut problems = Problems::default();
        match self {
            AnyConfig::Run(c) => c.validate("", &mut problems),
            AnyConfig::Task(c) => c.validate("", &mut problems),
            AnyConfig::Architecture(c) => c.validate("", &mut problems),
            AnyConfig::Trainer(c) => c.validate("", &mut problems),
            AnyConfig::Datasplit(c) => c.validate("", &mut problems),
            AnyConfig::Array(c) => c.validate("", &mut problems),
        }
        problems
    }

    /// Decodes a document of `family` (shape and types only; see [`AnyConfig::problems`]
    /// for the semantic checks). Newer-dialect run documents are lifted first.
    pub fn from_document(
        family: Family,
        doc: &Value,
        source_name: &str,
    ) -> Result<Self, ConfigError> {
        Ok(match family {
            Family::Runs => {
                let lifted = runs::lift_run_dialect(doc.clone());
                AnyConfig::Run(Box::new(decode_document_unchecked(&lifted, source_name)?))
            }
            Family::Tasks => AnyConfig::Task(decode_document_unchecked(doc, source_name)?),
            Family::Architectures => {
                AnyConfig::Architecture(decode_document_unchecked(doc, source_name)?)
            }
            Family::Trainers => AnyConfig::Trainer(decode_document_unchecked(doc, source_name)?),
            Family::Datasplits => {
                AnyConfig::Datasplit(decode_document_unchecked(doc, source_name)?)
            }
            Family::Arrays => AnyConfig::Array(decode_document_unchecked(doc, source_name)?),
        })
    }

    /// Parses YAML/JSON text of `family` (or of the detected family when `None`).
    pub fn from_text(
        family: Option<Family>,
        text: &str,
        source_name: &str,
    ) -> Result<Self, ConfigError> {
        let doc = parse_document(text, source_name)?;
        let family = match family.or_else(|| Family::detect(&doc)) {
            Some(f) => f,
            None => {
                let mut problems = Problems::default();
                problems.push(
                    "",
                    "cannot tell which kind of config this is: expected a run (with task_config, \
                     architecture_config, …) or a mapping with a known `__type__`",
                );
                if let Some(tag) = doc.get(TYPE_KEY).and_then(Value::as_str) {
                    let all = Family::ALL
                        .iter()
                        .flat_map(|f| f.types().iter().map(|t| t.tag));
                    let mut msg = format!("unknown config type `{tag}`");
                    if let Some(best) = schema::closest(tag, all) {
                        msg.push_str(&format!(" (did you mean `{best}`?)"));
                    }
                    problems = Problems::default();
                    problems.push(TYPE_KEY, msg);
                }
                return Err(ConfigError::Invalid {
                    source_name: source_name.to_string(),
                    problems,
                });
            }
        };
        Self::from_document(family, &doc, source_name)
    }
}

/// One group of config types in the [`catalogue`].
#[derive(Debug, Clone, Copy)]
pub struct TypeGroup {
    /// Group name ("tasks", "augments", …).
    pub name: &'static str,
    /// What the group is for.
    pub help: &'static str,
    /// The concrete types of the group.
    pub types: &'static [TypeInfo],
}

const RUN_TYPES: &[TypeInfo] = &[TypeInfo {
    tag: "RunConfig",
    raw_help: RunConfig::HELP,
    fields: RunConfig::FIELDS,
    rust_name: "RunConfig",
    variant: "",
    refused: RunConfig::REFUSED,
}];

const OPTION_TYPES: &[TypeInfo] = &[
    TypeInfo {
        tag: "OptionsConfig",
        raw_help: OptionsConfig::HELP,
        fields: OptionsConfig::FIELDS,
        rust_name: "OptionsConfig",
        variant: "",
        refused: OptionsConfig::REFUSED,
    },
    TypeInfo {
        tag: "LocalTorch",
        raw_help: LocalTorchConfig::HELP,
        fields: LocalTorchConfig::FIELDS,
        rust_name: "LocalTorchConfig",
        variant: "",
        refused: LocalTorchConfig::REFUSED,
    },
    TypeInfo {
        tag: "Bsub",
        raw_help: BsubConfig::HELP,
        fields: BsubConfig::FIELDS,
        rust_name: "BsubConfig",
        variant: "",
        refused: BsubConfig::REFUSED,
    },
];

/// Every config type with its fields and help texts, grouped as in a DaCapo project; what
/// `segno config describe` prints and what config editors build their forms from.
pub fn catalogue() -> [TypeGroup; 10] {
    [
        TypeGroup {
            name: "runs",
            help: "Experiments: task + architecture + trainer + datasplit.",
            types: RUN_TYPES,
        },
        TypeGroup {
            name: "tasks",
            help: "What the network learns and how results are scored.",
            types: TaskConfig::TYPES,
        },
        TypeGroup {
            name: "architectures",
            help: "Network backbones.",
            types: ArchitectureConfig::TYPES,
        },
        TypeGroup {
            name: "trainers",
            help: "How to train.",
            types: TrainerConfig::TYPES,
        },
        TypeGroup {
            name: "augments",
            help: "Augmentations inside a trainer.",
            types: AugmentConfig::TYPES,
        },
        TypeGroup {
            name: "datasplits",
            help: "Training and validation data.",
            types: DataSplitConfig::TYPES,
        },
        TypeGroup {
            name: "datasets",
            help: "Volumes inside a datasplit.",
            types: DatasetConfig::TYPES,
        },
        TypeGroup {
            name: "arrays",
            help: "Voxel data sources and lazy transforms.",
            types: ArrayConfig::TYPES,
        },
        TypeGroup {
            name: "starts",
            help: "Initial weights of a run.",
            types: InitialWeightsConfig::TYPES,
        },
        TypeGroup {
            name: "options",
            help: "The options file (dacapo.yaml) and its compute contexts.",
            types: OPTION_TYPES,
        },
    ]
}

/// Warnings about a config document (as [`schema::Encode::encode`] gives it, or an
/// options file): fields set to something other than their default that have no effect in
/// Segno, and types Segno reads but refuses to compute with. Each names the field path.
pub fn compatibility_warnings(doc: &Value) -> Vec<String> {
    fn fields_of(
        map: &serde_json::Map<String, Value>,
        fields: &[FieldInfo],
        path: &str,
        out: &mut Vec<String>,
    ) {
        for f in fields {
            let Some(why) = f.no_effect else { continue };
            let value = std::iter::once(f.key)
                .chain(f.aliases.iter().copied())
                .find_map(|k| map.get(k));
            let default = f.default.map(|d| d());
            if let Some(v) = value {
                if Some(v) != default.as_ref() && !v.is_null() {
                    out.push(format!(
                        "{}: set to {}, but has no effect in Segno: {why}",
                        schema::child(path, f.key),
                        schema::describe(v)
                    ));
                }
            }
        }
    }
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(tag) = map.get(TYPE_KEY).and_then(Value::as_str) {
                    if let Some((_, t)) = find_type(tag) {
                        if let Some(why) = t.refused {
                            let at = if path.is_empty() {
                                tag.to_string()
                            } else {
                                format!("{path} ({tag})")
                            };
                            out.push(format!("{at}: accepted for compatibility, but {why}"));
                        }
                        fields_of(map, t.fields, path, out);
                    }
                }
                for (k, child) in map {
                    walk(child, &schema::child(path, k), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &schema::index(path, i), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    // An options file: its own fields and its compute context's.
    if let Some(map) = doc.as_object() {
        if !map.contains_key(TYPE_KEY) && map.contains_key("runs_base_dir") {
            fields_of(map, OptionsConfig::FIELDS, "", &mut out);
            if let Some(cc) = map.get("compute_context").and_then(Value::as_object) {
                let fields = match cc.get("type").and_then(Value::as_str) {
                    Some("LocalTorch") => LocalTorchConfig::FIELDS,
                    Some("Bsub") => BsubConfig::FIELDS,
                    _ => &[],
                };
                if let Some(config) = cc.get("config").and_then(Value::as_object) {
                    fields_of(config, fields, "compute_context.config", &mut out);
                }
            }
            return out;
        }
    }
    walk(doc, "", &mut out);
    out
}

/// Finds a type of the [`catalogue`] by its tag (case-insensitive), with its group.
pub fn find_type(tag: &str) -> Option<(TypeGroup, TypeInfo)> {
    catalogue().into_iter().find_map(|g| {
        g.types
            .iter()
            .find(|t| t.tag.eq_ignore_ascii_case(tag))
            .map(|t| (g, *t))
    })
}
