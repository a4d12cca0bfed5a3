//! The machinery shared by every config type: decoding from a generic document tree with
//! problems collected per field path, encoding back to a tree, validation hooks, and the
//! field descriptions (key, aliases, help text) that editors show.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as YamlValue;

use crate::geometry::{Coordinate, Roi};

mod checks;
mod codecs;
mod fields;
#[macro_use]
mod macros;
mod yaml;

use checks::plural;
pub use checks::*;
pub use fields::*;
pub use yaml::*;

/// One problem found in a config document, located by its field path
/// (for example `architecture_config.downsample_factors[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted/indexed path of the offending field; empty for the document root.
    pub path: String,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// An ordered collection of [`Problem`]s; decoding and validation append to it instead of
/// stopping at the first one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records one problem at `path`.
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// True when no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of recorded problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Iterates over the recorded problems in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Path of a named child field below `path`.
pub fn child(path: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (path.is_empty(), simple) {
        (true, true) => key.to_string(),
        (true, false) => format!("[{key:?}]"),
        (false, true) => format!("{path}.{key}"),
        (false, false) => format!("{path}[{key:?}]"),
    }
}

/// Path of the `index`-th element below `path`.
pub fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Short description of a document value for "expected X, found Y" messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("a list of {} element(s)", a.len()),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Decoding from a generic document tree, recording every problem with its field path.
pub trait Decode: Sized {
    /// What a valid value looks like, for messages ("a list of integers", …).
    fn expected() -> String;

    /// The form of this type's values, for editors; free-form unless a type says more.
    fn shape() -> Shape {
        Shape::Any
    }

    /// Decodes `value` found at `path`; returns `None` after recording at least one problem.
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self>;
}

/// Encoding to a generic document tree in the DaCapo v0.3.x dialect.
pub trait Encode {
    /// The document tree of this value (mappings with alphabetically sorted keys).
    fn encode(&self) -> Value;

    /// The YAML tree of this value: as [`Encode::encode`], but values that DaCapo types as
    /// Python tuples (coordinates, pairs, regions) carry the `python/tuple` tag, so that
    /// PyYAML reads them back as tuples and DaCapo's duplicate checks compare equal.
    fn encode_yaml(&self) -> YamlValue {
        json_to_yaml(&self.encode())
    }
}

/// Semantic validation: records every violated rule with its field path.
pub trait Validate {
    /// Checks this value (and everything it contains) found at `path`.
    fn validate(&self, _path: &str, _problems: &mut Problems) {}
}

/// The type-specific rules of one config type, called after its fields are validated.
pub trait Check {
    /// Records problems of this config found at `path`; the default has no rules.
    fn check(&self, _path: &str, _problems: &mut Problems) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AnyConfig, Family, TaskConfig};

    fn task_type(tag: &str) -> &'static TypeInfo {
        TaskConfig::TYPES
            .iter()
            .find(|t| t.tag == tag)
            .unwrap_or_else(|| panic!("no task type {tag}"))
    }

    #[test]
    fn value_descriptions_pluralise_their_noun() {
        assert_eq!(<Vec<String>>::expected(), "a list of strings");
        assert_eq!(<Vec<Vec<String>>>::expected(), "a list of lists of strings");
        assert_eq!(
            <Vec<Coordinate>>::expected(),
            "a list of coordinates (a list of 1 to 4 integers, z, y, x order)"
        );
        assert_eq!(
            <Vec<u32>>::expected(),
            "a list of non-negative integers (at most 4294967295)"
        );
        assert_eq!(
            <Vec<crate::config::DatasetConfig>>::expected(),
            "a list of mappings with a `__type__` tag (DatasetConfig)"
        );
        assert_eq!(
            <Vec<Option<String>>>::expected(),
            "a list of strings or null"
        );
    }

    #[test]
    fn fields_with_fixed_values_are_checked_against_them() {
        let arch = crate::config::ArchitectureConfig::TYPES
            .iter()
            .find(|t| t.tag == "CNNectomeUNetConfig")
            .unwrap();
        let padding = arch.fields.iter().find(|f| f.key == "padding").unwrap();
        assert_eq!(padding.choices, ["valid", "same"]);
        let run = crate::demo::project::demo_run(20, 10);
        let mut doc = Encode::encode(&run.architecture_config);
        doc["padding"] = "vaild".into();
        let arch = AnyConfig::from_document(Family::Architectures, &doc, "a").unwrap();
        let problems = arch.problems();
        assert_eq!(problems.len(), 1, "{problems}");
        assert_eq!(problems.0[0].path, "padding");
        assert_eq!(
            problems.0[0].message,
            "`vaild` is not one of: valid, same (did you mean `valid`?)"
        );
        // Optional fields with fixed values accept null.
        let mut problems = Problems::default();
        check_choice(&Value::Null, &["r", "a"], "mode", &mut problems);
        assert!(problems.is_empty());
    }

    #[test]
    fn shapes_follow_the_data_model() {
        let t = task_type("AffinitiesTaskConfig");
        let shape = |key: &str| (t.fields.iter().find(|f| f.key == key).unwrap().shape)();
        assert!(matches!(shape("name"), Shape::Text));
        assert!(matches!(shape("lsds"), Shape::Bool));
        assert!(matches!(shape("num_lsd_voxels"), Shape::Integer { min: 0 }));
        assert!(matches!(shape("lsds_to_affs_weight_ratio"), Shape::Float));
        match shape("neighborhood") {
            Shape::List(inner) => assert!(matches!(*inner, Shape::Coordinate)),
            other => panic!("{other:?}"),
        }
        let run = crate::config::RunConfig::FIELDS;
        let task = run.iter().find(|f| f.key == "task_config").unwrap();
        match (task.shape)() {
            Shape::Union { name, types } => {
                assert_eq!(name, "TaskConfig");
                assert_eq!(types.len(), TaskConfig::TYPES.len());
            }
            other => panic!("{other:?}"),
        }
        let start = run.iter().find(|f| f.key == "start_config").unwrap();
        assert!(
            matches!((start.shape)(), Shape::Optional(inner) if matches!(*inner, Shape::Union { .. }))
        );
    }

    #[test]
    fn a_skeleton_has_every_field_with_defaults_and_the_type_tag() {
        let doc = type_skeleton(task_type("AffinitiesTaskConfig"));
        assert_eq!(doc["__type__"], "AffinitiesTaskConfig");
        assert_eq!(doc["name"], "");
        assert_eq!(doc["neighborhood"], serde_json::json!([]));
        assert_eq!(doc["num_lsd_voxels"], 10);
        assert_eq!(doc["lsds"], false);
        // Filling in the required values makes it a valid task.
        let mut doc = doc;
        doc["name"] = "affs".into();
        doc["neighborhood"] = serde_json::json!([[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
        let task = AnyConfig::from_document(Family::Tasks, &doc, "t").unwrap();
        assert!(task.problems().is_empty(), "{}", task.problems());
        // Every type of every family has a skeleton of its own type that decodes or
        // reports problems at paths (never a crash).
        for family in Family::ALL {
            for t in family.types() {
                let doc = type_skeleton(t);
                if let Err(e) = AnyConfig::from_document(family, &doc, t.tag) {
                    assert!(!e.problems().is_empty(), "{}", t.tag);
                }
            }
        }
    }

    #[test]
    fn switching_type_keeps_the_fields_both_types_have_and_that_fit() {
        let mut doc = type_skeleton(task_type("DistanceTaskConfig"));
        doc["name"] = "mito".into();
        doc["channels"] = serde_json::json!(["mito"]);
        let other = switch_type(&doc, task_type("OneHotTaskConfig"));
        assert_eq!(other["__type__"], "OneHotTaskConfig");
        assert_eq!(other["name"], "mito");
        assert_eq!(other["classes"], serde_json::json!([]));
        assert!(other.get("clip_distance").is_none());
        // A value of the wrong kind for the new type's field is replaced by its default.
        let mut doc = type_skeleton(task_type("AffinitiesTaskConfig"));
        doc["name"] = 3.into();
        let back = switch_type(&doc, task_type("DistanceTaskConfig"));
        assert_eq!(back["name"], "");
    }
}
