//! What editors and `segno config describe` know about config types: each field's key,
//! aliases, default, help and the shape of its values, and skeleton documents built from them.

use super::*;

/// Describes one field of a config type: its key in files, accepted spellings, help text,
/// the kind of value expected and its default.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    /// Rust field name.
    pub name: &'static str,
    /// Key written to files (the DaCapo v0.3.x spelling).
    pub key: &'static str,
    /// Other spellings accepted on read (seed era / newer DaCapo dialects).
    pub aliases: &'static [&'static str],
    /// Raw help text (the field's doc comment); use [`FieldInfo::help`] for display.
    pub raw_help: &'static str,
    /// The Rust type of the field, for display.
    pub type_name: &'static str,
    /// Describes the values the field accepts ("a list of strings", …).
    pub expected: fn() -> String,
    /// The default value as a document tree; `None` when the field must be given.
    pub default: Option<fn() -> Value>,
    /// The form of the field's value, for editors that build widgets from the data model.
    pub shape: fn() -> Shape,
    /// For text fields with a fixed set of values: the values (checked by validation,
    /// offered as a list by editors); empty otherwise.
    pub choices: &'static [&'static str],
    /// For fields accepted for compatibility that change nothing in Segno: why. Validation
    /// warns when such a field is set to anything but its default.
    pub no_effect: Option<&'static str>,
}

impl FieldInfo {
    /// Whether the field has no default and must be given.
    pub fn required(&self) -> bool {
        self.default.is_none()
    }

    /// Help text with doc-comment indentation removed.
    pub fn help(&self) -> String {
        tidy_doc(self.raw_help)
    }
}

/// Describes one concrete config type of a tagged family (e.g. `ZarrArrayConfig`).
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo {
    /// The `__type__` tag (the DaCapo class name).
    pub tag: &'static str,
    /// Raw help text of the type; use [`TypeInfo::help`] for display.
    pub raw_help: &'static str,
    /// The type's fields in declaration order.
    pub fields: &'static [FieldInfo],
    /// The Rust type's name (`LocalTorchConfig` for the tag `LocalTorch`).
    pub rust_name: &'static str,
    /// The family enum and variant that hold it (`ArrayConfig::Zarr`); empty for types
    /// outside a family.
    pub variant: &'static str,
    /// For types Segno reads but refuses to train or compute with: why (validation warns).
    pub refused: Option<&'static str>,
}

impl TypeInfo {
    /// Help text with doc-comment indentation removed.
    pub fn help(&self) -> String {
        tidy_doc(self.raw_help)
    }
}

/// Joins doc-comment lines into readable text: trims each line, keeps paragraph breaks.
pub fn tidy_doc(raw: &str) -> String {
    let mut out = String::new();
    for line in raw.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push_str("\n\n");
            }
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out.trim_end().to_string()
}

/// The form of a config value, derived from the data model: what an editor shows a widget
/// for (a number box, a list with add/remove, a type selector over a tagged family, …).
#[derive(Debug, Clone)]
pub enum Shape {
    /// `true` or `false`.
    Bool,
    /// An integer; `min` is the smallest value the type can hold (0 for unsigned).
    Integer {
        /// Smallest representable value.
        min: i64,
    },
    /// A floating-point number.
    Float,
    /// A string.
    Text,
    /// A coordinate: 1 to 4 integers in z, y, x order.
    Coordinate,
    /// A region: `[offset, shape]`.
    Roi,
    /// The inner shape or null.
    Optional(Box<Shape>),
    /// A list of values of one shape.
    List(Box<Shape>),
    /// A mapping from names to values of one shape.
    Map(Box<Shape>),
    /// A fixed-length list with one shape per position.
    Tuple(Vec<Shape>),
    /// A config struct with named fields.
    Struct {
        /// Type name.
        name: &'static str,
        /// Its fields.
        fields: &'static [FieldInfo],
    },
    /// A `__type__`-tagged family of config structs.
    Union {
        /// Family name.
        name: &'static str,
        /// Its concrete types.
        types: &'static [TypeInfo],
    },
    /// Free-form data (edited as YAML text).
    Any,
}

impl Shape {
    /// A value of this shape to start from: defaults where the model has them, otherwise
    /// empty values (the first type of a union, no list elements, null for optionals).
    pub fn skeleton(&self) -> Value {
        match self {
            Shape::Bool => Value::Bool(false),
            Shape::Integer { min } => Value::Number(Number::from((*min).max(0))),
            Shape::Float => Value::Number(Number::from(0)),
            Shape::Text => Value::String(String::new()),
            Shape::Coordinate => Value::Array(vec![Value::Number(Number::from(1)); 3]),
            Shape::Roi => Value::Array(vec![
                Value::Array(vec![Value::Number(Number::from(0)); 3]),
                Value::Array(vec![Value::Number(Number::from(1)); 3]),
            ]),
            Shape::Optional(_) | Shape::Any => Value::Null,
            Shape::List(_) => Value::Array(Vec::new()),
            Shape::Map(_) => Value::Object(Map::new()),
            Shape::Tuple(items) => Value::Array(items.iter().map(Shape::skeleton).collect()),
            Shape::Struct { fields, .. } => struct_skeleton(fields),
            Shape::Union { types, .. } => match types.first() {
                Some(t) => type_skeleton(t),
                None => Value::Null,
            },
        }
    }

    /// Whether `value` has this shape's structure (kinds of values, list lengths, tags),
    /// without the semantic rules; used to keep compatible fields when a type changes.
    pub fn fits(&self, value: &Value) -> bool {
        match (self, value) {
            (Shape::Any, _) => true,
            (Shape::Optional(_), Value::Null) => true,
            (Shape::Optional(inner), v) => inner.fits(v),
            (Shape::Bool, Value::Bool(_)) => true,
            (Shape::Integer { min }, Value::Number(n)) => {
                n.as_i64().is_some_and(|v| v >= *min) || n.as_u64().is_some()
            }
            (Shape::Float, Value::Number(_)) => true,
            (Shape::Text, Value::String(_)) => true,
            (Shape::Coordinate, Value::Array(items)) => {
                (1..=4).contains(&items.len()) && items.iter().all(|v| v.as_i64().is_some())
            }
            (Shape::Roi, Value::Array(items)) => {
                items.len() == 2 && items.iter().all(|c| Shape::Coordinate.fits(c))
            }
            (Shape::List(inner), Value::Array(items)) => items.iter().all(|v| inner.fits(v)),
            (Shape::Map(inner), Value::Object(map)) => map.values().all(|v| inner.fits(v)),
            (Shape::Tuple(shapes), Value::Array(items)) => {
                shapes.len() == items.len() && shapes.iter().zip(items).all(|(s, v)| s.fits(v))
            }
            (Shape::Struct { .. }, Value::Object(_)) => true,
            (Shape::Union { types, .. }, Value::Object(map)) => map
                .get(crate::config::TYPE_KEY)
                .and_then(Value::as_str)
                .is_some_and(|tag| types.iter().any(|t| t.tag == tag)),
            _ => false,
        }
    }
}

/// A mapping with every field of `fields`: its default, or the skeleton of its shape.
pub fn struct_skeleton(fields: &[FieldInfo]) -> Value {
    let mut map = Map::new();
    for f in fields {
        let value = match f.default {
            Some(d) => d(),
            None => (f.shape)().skeleton(),
        };
        map.insert(f.key.to_string(), value);
    }
    Value::Object(map)
}

/// A new config of type `t`: its fields' defaults or skeletons, and its `__type__` tag.
pub fn type_skeleton(t: &TypeInfo) -> Value {
    let mut value = struct_skeleton(t.fields);
    if let Value::Object(map) = &mut value {
        map.insert(
            crate::config::TYPE_KEY.to_string(),
            Value::String(t.tag.to_string()),
        );
    }
    value
}

/// Turns `old` (a config of another type of the same family) into a config of type `to`,
/// keeping every field whose key `to` also has and whose value fits its shape there.
pub fn switch_type(old: &Value, to: &TypeInfo) -> Value {
    let mut value = type_skeleton(to);
    if let (Value::Object(new), Some(old)) = (&mut value, old.as_object()) {
        for f in to.fields {
            if let Some(v) = old.get(f.key) {
                if (f.shape)().fits(v) {
                    new.insert(f.key.to_string(), v.clone());
                }
            }
        }
    }
    value
}
