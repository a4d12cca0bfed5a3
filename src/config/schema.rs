//! The machinery shared by every config type: decoding from a generic document tree with
//! problems collected per field path, encoding back to a tree, validation hooks, and the
//! field descriptions (key, aliases, help text) that editors show.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as YamlValue;

use crate::geometry::{Coordinate, Roi};

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

/// The tag DaCapo's YAML files put on tuples (written `!!python/tuple` by [`to_yaml_text`]).
const TUPLE_TAG: &str = "python/tuple";

/// Converts a document tree to a YAML tree without tags.
pub fn json_to_yaml(value: &Value) -> YamlValue {
    match value {
        Value::Null => YamlValue::Null,
        Value::Bool(b) => YamlValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                YamlValue::from(i)
            } else if let Some(u) = n.as_u64() {
                YamlValue::from(u)
            } else {
                YamlValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => YamlValue::String(s.clone()),
        Value::Array(items) => YamlValue::Sequence(items.iter().map(json_to_yaml).collect()),
        Value::Object(map) => sorted_mapping(map.iter().map(|(k, v)| (k.clone(), json_to_yaml(v)))),
    }
}

/// A YAML mapping with its keys in sorted order (PyYAML's default layout).
pub fn sorted_mapping(entries: impl Iterator<Item = (String, YamlValue)>) -> YamlValue {
    let sorted: BTreeMap<String, YamlValue> = entries.collect();
    YamlValue::Mapping(
        sorted
            .into_iter()
            .map(|(k, v)| (YamlValue::String(k), v))
            .collect(),
    )
}

/// A YAML sequence tagged as a Python tuple.
pub fn tuple_yaml(items: Vec<YamlValue>) -> YamlValue {
    YamlValue::Tagged(Box::new(serde_yaml_ng::value::TaggedValue {
        tag: serde_yaml_ng::value::Tag::new(TUPLE_TAG),
        value: YamlValue::Sequence(items),
    }))
}

/// Writes a YAML tree as block-style text with DaCapo's `!!python/tuple` tags. The text is
/// parsed back to make sure the tags landed only on tuple nodes; if not (a string holding
/// the tag text), the tags are left out, which DaCapo also reads.
pub fn to_yaml_text(tree: &YamlValue) -> String {
    let local = serde_yaml_ng::to_string(tree).unwrap_or_default();
    let tagged = local.replace("!python/tuple", "!!python/tuple");
    let mut plain = tree.clone();
    strip_tags(&mut plain);
    let reparsed = serde_yaml_ng::from_str::<YamlValue>(&tagged)
        .ok()
        .map(|mut v| {
            strip_tags(&mut v);
            v
        });
    if reparsed.as_ref() == Some(&plain) {
        tagged
    } else {
        serde_yaml_ng::to_string(&plain).unwrap_or_default()
    }
}

fn strip_tags(value: &mut YamlValue) {
    match value {
        YamlValue::Tagged(tagged) => {
            let mut inner = std::mem::replace(&mut tagged.value, YamlValue::Null);
            strip_tags(&mut inner);
            *value = inner;
        }
        YamlValue::Sequence(items) => items.iter_mut().for_each(strip_tags),
        YamlValue::Mapping(map) => map.values_mut().for_each(strip_tags),
        _ => {}
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

fn mismatch<T: Decode>(value: &Value, path: &str, problems: &mut Problems) {
    problems.push(
        path,
        format!("expected {}, found {}", T::expected(), describe(value)),
    );
}

impl Decode for bool {
    fn expected() -> String {
        "true or false".into()
    }
    fn shape() -> Shape {
        Shape::Bool
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => {
                mismatch::<Self>(value, path, problems);
                None
            }
        }
    }
}

impl Encode for bool {
    fn encode(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! int_codec {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl Decode for $t {
            fn expected() -> String {
                $what.into()
            }
            fn shape() -> Shape {
                Shape::Integer { min: i64::try_from(<$t>::MIN).unwrap_or(i64::MIN) }
            }
            fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
                let parsed = match value {
                    Value::Number(n) => n
                        .as_i64()
                        .and_then(|v| <$t>::try_from(v).ok())
                        .or_else(|| n.as_u64().and_then(|v| <$t>::try_from(v).ok())),
                    _ => None,
                };
                if parsed.is_none() {
                    mismatch::<Self>(value, path, problems);
                }
                parsed
            }
        }
        impl Encode for $t {
            fn encode(&self) -> Value {
                Value::Number(Number::from(*self))
            }
        }
        impl Validate for $t {}
    )*};
}

int_codec!(
    i64 => "an integer",
    u32 => "a non-negative integer (at most 4294967295)",
    u64 => "a non-negative integer",
);

impl Decode for f64 {
    fn expected() -> String {
        "a number".into()
    }
    fn shape() -> Shape {
        Shape::Float
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        match value.as_f64() {
            Some(v) => Some(v),
            None => {
                mismatch::<Self>(value, path, problems);
                None
            }
        }
    }
}

impl Encode for f64 {
    fn encode(&self) -> Value {
        Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
}

impl Decode for String {
    fn expected() -> String {
        "a string".into()
    }
    fn shape() -> Shape {
        Shape::Text
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::String(s) => Some(s.clone()),
            _ => {
                mismatch::<Self>(value, path, problems);
                None
            }
        }
    }
}

impl Encode for String {
    fn encode(&self) -> Value {
        Value::String(self.clone())
    }
}

impl Decode for Value {
    fn expected() -> String {
        "any value".into()
    }
    fn decode(value: &Value, _path: &str, _problems: &mut Problems) -> Option<Self> {
        Some(value.clone())
    }
}

impl Encode for Value {
    fn encode(&self) -> Value {
        self.clone()
    }
}

impl<T: Decode> Decode for Option<T> {
    fn expected() -> String {
        format!("{} or null", T::expected())
    }
    fn shape() -> Shape {
        Shape::Optional(Box::new(T::shape()))
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            _ => T::decode(value, path, problems).map(Some),
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self) -> Value {
        self.as_ref().map_or(Value::Null, Encode::encode)
    }
    fn encode_yaml(&self) -> YamlValue {
        self.as_ref().map_or(YamlValue::Null, Encode::encode_yaml)
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Some(v) = self {
            v.validate(path, problems);
        }
    }
}

impl<T: Decode> Decode for Box<T> {
    fn expected() -> String {
        T::expected()
    }
    fn shape() -> Shape {
        T::shape()
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        T::decode(value, path, problems).map(Box::new)
    }
}

impl<T: Encode> Encode for Box<T> {
    fn encode(&self) -> Value {
        (**self).encode()
    }
    fn encode_yaml(&self) -> YamlValue {
        (**self).encode_yaml()
    }
}

impl<T: Validate> Validate for Box<T> {
    fn validate(&self, path: &str, problems: &mut Problems) {
        (**self).validate(path, problems);
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn expected() -> String {
        format!("a list of {}", plural(&T::expected()))
    }
    fn shape() -> Shape {
        Shape::List(Box::new(T::shape()))
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        let Value::Array(items) = value else {
            mismatch::<Self>(value, path, problems);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match T::decode(item, &index(path, i), problems) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self) -> Value {
        Value::Array(self.iter().map(Encode::encode).collect())
    }
    fn encode_yaml(&self) -> YamlValue {
        YamlValue::Sequence(self.iter().map(Encode::encode_yaml).collect())
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (i, v) in self.iter().enumerate() {
            v.validate(&index(path, i), problems);
        }
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn expected() -> String {
        format!("a mapping from names to {}", plural(&T::expected()))
    }
    fn shape() -> Shape {
        Shape::Map(Box::new(T::shape()))
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        let Value::Object(map) = value else {
            mismatch::<Self>(value, path, problems);
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in map {
            match T::decode(v, &child(path, k), problems) {
                Some(v) => {
                    out.insert(k.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

impl<T: Encode> Encode for BTreeMap<String, T> {
    fn encode(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.clone(), v.encode())).collect())
    }
    fn encode_yaml(&self) -> YamlValue {
        sorted_mapping(self.iter().map(|(k, v)| (k.clone(), v.encode_yaml())))
    }
}

impl<T: Validate> Validate for BTreeMap<String, T> {
    fn validate(&self, path: &str, problems: &mut Problems) {
        for (k, v) in self {
            v.validate(&child(path, k), problems);
        }
    }
}

macro_rules! tuple_codec {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t: Decode),+> Decode for ($($t,)+) {
            fn expected() -> String {
                let parts: Vec<String> = vec![$($t::expected()),+];
                format!("a list of {} elements ({})", $n, parts.join(", "))
            }
            fn shape() -> Shape {
                Shape::Tuple(vec![$($t::shape()),+])
            }
            fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
                match value {
                    Value::Array(items) if items.len() == $n => {
                        let decoded = ($($t::decode(&items[$i], &index(path, $i), problems),)+);
                        Some(($(decoded.$i?,)+))
                    }
                    _ => {
                        mismatch::<Self>(value, path, problems);
                        None
                    }
                }
            }
        }
        impl<$($t: Encode),+> Encode for ($($t,)+) {
            fn encode(&self) -> Value {
                Value::Array(vec![$(self.$i.encode()),+])
            }
            fn encode_yaml(&self) -> YamlValue {
                tuple_yaml(vec![$(self.$i.encode_yaml()),+])
            }
        }
        impl<$($t: Validate),+> Validate for ($($t,)+) {
            fn validate(&self, path: &str, problems: &mut Problems) {
                $(self.$i.validate(&index(path, $i), problems);)+
            }
        }
    };
}

tuple_codec!(2; A 0, B 1);
tuple_codec!(3; A 0, B 1, C 2);

impl Validate for bool {}
impl Validate for f64 {}
impl Validate for String {}
impl Validate for Value {}

impl Decode for Coordinate {
    fn expected() -> String {
        "a coordinate (a list of 1 to 4 integers, z, y, x order)".into()
    }
    fn shape() -> Shape {
        Shape::Coordinate
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        let ints = match value {
            Value::Array(items) if (1..=4).contains(&items.len()) => items
                .iter()
                .map(Value::as_i64)
                .collect::<Option<Vec<i64>>>(),
            _ => None,
        };
        match ints.map(Coordinate::try_from) {
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                problems.push(path, e.to_string());
                None
            }
            None => {
                // Name the element that is not a whole number, quoting it.
                if let Value::Array(items) = value {
                    if let Some((axis, bad)) =
                        items.iter().enumerate().find(|(_, v)| v.as_i64().is_none())
                    {
                        let shown = match bad {
                            Value::Number(n) => n.to_string(),
                            other => describe(other),
                        };
                        problems.push(
                            path,
                            format!(
                                "expected {}, found {} whose element {axis} is {shown}, not a whole number of voxels or nm",
                                Self::expected(),
                                serde_json::to_string(value).unwrap_or_default()
                            ),
                        );
                        return None;
                    }
                }
                mismatch::<Self>(value, path, problems);
                None
            }
        }
    }
}

impl Encode for Coordinate {
    fn encode(&self) -> Value {
        Value::Array(
            self.iter()
                .map(|v| Value::Number(Number::from(v)))
                .collect(),
        )
    }
    fn encode_yaml(&self) -> YamlValue {
        tuple_yaml(self.iter().map(YamlValue::from).collect())
    }
}

impl Validate for Coordinate {}

impl Decode for Roi {
    fn expected() -> String {
        "a region: a list of two coordinates [offset, shape]".into()
    }
    fn shape() -> Shape {
        Shape::Roi
    }
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Self> {
        let (offset, shape) = <(Coordinate, Coordinate)>::decode(value, path, problems)?;
        match Roi::new(offset, shape) {
            Ok(roi) => Some(roi),
            Err(e) => {
                problems.push(path, e.to_string());
                None
            }
        }
    }
}

impl Encode for Roi {
    fn encode(&self) -> Value {
        Value::Array(vec![self.offset().encode(), self.shape().encode()])
    }
    fn encode_yaml(&self) -> YamlValue {
        tuple_yaml(vec![
            self.offset().encode_yaml(),
            self.shape().encode_yaml(),
        ])
    }
}

impl Validate for Roi {}

/// The plural of a value description: "a list of strings" → "lists of strings", "a
/// coordinate (…)" → "coordinates (…)", "a string or null" → "strings or null".
fn plural(expected: &str) -> String {
    let s = expected
        .strip_prefix("a ")
        .or_else(|| expected.strip_prefix("an "))
        .unwrap_or(expected);
    // The noun is the word before the first qualifier.
    let end = [" (", " with ", " or ", " of ", " from ", ": "]
        .iter()
        .filter_map(|sep| s.find(sep))
        .min()
        .unwrap_or(s.len());
    let (head, rest) = s.split_at(end);
    if head.ends_with('s') || head.ends_with("(s)") {
        return s.to_string();
    }
    format!("{head}s{rest}")
}

/// Expects a mapping at `path`, recording a problem naming `what` otherwise.
pub fn expect_map<'a>(
    value: &'a Value,
    path: &str,
    problems: &mut Problems,
    what: &str,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => {
            problems.push(
                path,
                format!("expected a mapping ({what}), found {}", describe(value)),
            );
            None
        }
    }
}

/// Records a problem for every key of `map` that is not a known field key or alias
/// (`__type__` is always allowed), suggesting the closest known key.
pub fn check_unknown_keys(
    map: &Map<String, Value>,
    fields: &[FieldInfo],
    type_name: &str,
    path: &str,
    problems: &mut Problems,
) {
    for key in map.keys() {
        if key == super::TYPE_KEY {
            continue;
        }
        let known = fields
            .iter()
            .any(|f| f.key == key || f.aliases.contains(&key.as_str()));
        if !known {
            let mut msg = format!("unknown key `{key}` for {type_name}");
            if let Some(best) = closest(key, fields.iter().map(|f| f.key)) {
                msg.push_str(&format!(" (did you mean `{best}`?)"));
            }
            let keys: Vec<&str> = fields.iter().map(|f| f.key).collect();
            msg.push_str(&format!("; known keys: {}", keys.join(", ")));
            problems.push(&child(path, key), msg);
        }
    }
}

/// The candidate closest to `word` by edit distance, if it is plausibly a typo of it.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(3) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Records a problem when `value` is a string outside `choices` (no rule when `choices`
/// is empty; null is always allowed, for optional fields).
pub fn check_choice(value: &Value, choices: &[&str], path: &str, problems: &mut Problems) {
    if choices.is_empty() {
        return;
    }
    if let Value::String(v) = value {
        if !choices.contains(&v.as_str()) {
            let mut msg = format!("`{v}` is not one of: {}", choices.join(", "));
            if let Some(best) = closest(v, choices.iter().copied()) {
                msg.push_str(&format!(" (did you mean `{best}`?)"));
            }
            problems.push(path, msg);
        }
    }
}

/// Decodes the field stored under `key` (or one of its `aliases`) of `map`; a missing
/// field takes `default`, or is reported as missing when there is none.
pub fn decode_field<T: Decode>(
    map: &Map<String, Value>,
    key: &str,
    aliases: &[&str],
    path: &str,
    problems: &mut Problems,
    default: Option<fn() -> T>,
) -> Option<T> {
    let present: Vec<&str> = std::iter::once(key)
        .chain(aliases.iter().copied())
        .filter(|k| map.contains_key(*k))
        .collect();
    match present.as_slice() {
        [] => match default {
            Some(make) => Some(make()),
            None => {
                problems.push(
                    &child(path, key),
                    format!("missing required field `{key}` ({})", T::expected()),
                );
                None
            }
        },
        [k] => T::decode(&map[*k], &child(path, k), problems),
        [first, second, ..] => {
            problems.push(
                &child(path, key),
                format!("both `{first}` and `{second}` are given for the same field; keep one"),
            );
            None
        }
    }
}

/// Defines a config struct together with its decoder, encoder, validator and field table.
///
/// Each field is `name: Type` (required) or `name: Type = default`; `name ["key", "alias"…]`
/// sets the key used in files and other accepted spellings; `= default => newer` marks a
/// field of newer DaCapo versions that is only written when it differs from its default,
/// so files stay identical to what DaCapo v0.3.x writes. Doc comments become help text.
macro_rules! config_struct {
    (
        $(#[doc = $sdoc:literal])*
        $(#[refused = $refused:literal])?
        $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $(#[no_effect = $no_effect:literal])?
                $field:ident $([$key:literal $(, $alias:literal)*])? : $ty:ty $({ $($choice:literal)|+ })? $(= $default:expr)? $(=> $newer:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The fields of this config type, in declaration order.
            pub const FIELDS: &'static [$crate::config::schema::FieldInfo] = &[
                $($crate::config::schema::FieldInfo {
                    name: stringify!($field),
                    key: config_key!($field $(, $key)?),
                    aliases: &[$($($alias),*)?],
                    raw_help: concat!($($fdoc, "\n",)* ""),
                    type_name: stringify!($ty),
                    expected: <$ty as $crate::config::schema::Decode>::expected,
                    default: config_default_value!($ty; $($default)?),
                    shape: <$ty as $crate::config::schema::Decode>::shape,
                    choices: &[$($($choice),+)?],
                    no_effect: config_option!($($no_effect)?),
                },)*
            ];

            /// Help text of this config type (its doc comment).
            pub const HELP: &'static str = concat!($($sdoc, "\n",)* "");

            /// Why Segno refuses to compute with this type, if it does.
            pub const REFUSED: Option<&'static str> = config_option!($($refused)?);
        }

        impl $crate::config::schema::Decode for $name {
            fn expected() -> String {
                format!("a {} mapping", stringify!($name))
            }

            fn shape() -> $crate::config::schema::Shape {
                $crate::config::schema::Shape::Struct { name: stringify!($name), fields: Self::FIELDS }
            }

            fn decode(
                value: &serde_json::Value,
                path: &str,
                problems: &mut $crate::config::schema::Problems,
            ) -> Option<Self> {
                let map = $crate::config::schema::expect_map(value, path, problems, stringify!($name))?;
                $crate::config::schema::check_unknown_keys(map, Self::FIELDS, stringify!($name), path, problems);
                $(
                    let $field = $crate::config::schema::decode_field::<$ty>(
                        map,
                        config_key!($field $(, $key)?),
                        &[$($($alias),*)?],
                        path,
                        problems,
                        config_default!($ty; $($default)?),
                    );
                )*
                Some(Self { $($field: $field?,)* })
            }
        }

        impl $crate::config::schema::Encode for $name {
            fn encode(&self) -> serde_json::Value {
                let mut map = serde_json::Map::new();
                $(
                    if config_written!(self.$field; $ty; $($default)?; $($newer)?) {
                        map.insert(
                            config_key!($field $(, $key)?).to_string(),
                            $crate::config::schema::Encode::encode(&self.$field),
                        );
                    }
                )*
                serde_json::Value::Object(map)
            }

            fn encode_yaml(&self) -> serde_yaml_ng::Value {
                let mut entries = Vec::new();
                $(
                    if config_written!(self.$field; $ty; $($default)?; $($newer)?) {
                        entries.push((
                            config_key!($field $(, $key)?).to_string(),
                            $crate::config::schema::Encode::encode_yaml(&self.$field),
                        ));
                    }
                )*
                $crate::config::schema::sorted_mapping(entries.into_iter())
            }
        }

        impl $crate::config::schema::Validate for $name {
            fn validate(&self, path: &str, problems: &mut $crate::config::schema::Problems) {
                $(
                    let fpath = $crate::config::schema::child(path, config_key!($field $(, $key)?));
                    $crate::config::schema::Validate::validate(&self.$field, &fpath, problems);
                    $crate::config::schema::check_choice(
                        &$crate::config::schema::Encode::encode(&self.$field),
                        &[$($($choice),+)?],
                        &fpath,
                        problems,
                    );
                )*
                $crate::config::schema::Check::check(self, path, problems);
            }
        }
    };
}

macro_rules! config_option {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

macro_rules! config_key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $key:literal) => {
        $key
    };
}

/// Whether a field is written: always, except fields marked `=> newer` (keys only newer
/// DaCapo versions know, which older versions reject as differences) at their default.
macro_rules! config_written {
    ($value:expr; $ty:ty; $($default:expr)?;) => {
        true
    };
    ($value:expr; $ty:ty; $default:expr; newer) => {{
        let default: $ty = $default;
        $value != default
    }};
}

macro_rules! config_default_value {
    ($ty:ty;) => {
        None
    };
    ($ty:ty; $default:expr) => {
        Some(
            (|| {
                let value: $ty = $default;
                $crate::config::schema::Encode::encode(&value)
            }) as fn() -> serde_json::Value,
        )
    };
}

macro_rules! config_default {
    ($ty:ty;) => {
        None::<fn() -> $ty>
    };
    ($ty:ty; $default:expr) => {
        Some((|| $default) as fn() -> $ty)
    };
}

/// Defines a tagged config family (an enum over config structs, tagged by `__type__` with
/// the struct's name), with decoding, encoding, validation and the type table.
macro_rules! config_enum {
    (
        $(#[doc = $edoc:literal])*
        $name:ident: named {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident($ty:ident)
            ),* $(,)?
        }
    ) => {
        config_enum! {
            $(#[doc = $edoc])*
            $name {
                $(
                    $(#[doc = $vdoc])*
                    $variant($ty)
                ),*
            }
        }

        impl $name {
            /// The config's name.
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$variant(c) => &c.name,)*
                }
            }
        }
    };
    (
        $(#[doc = $edoc:literal])*
        $name:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident($ty:ident)
            ),* $(,)?
        }
    ) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)] // small trees of settings, never hot
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                $variant($ty),
            )*
        }

        impl $name {
            /// Every concrete type of this family with its tag, help text and fields.
            pub const TYPES: &'static [$crate::config::schema::TypeInfo] = &[
                $($crate::config::schema::TypeInfo {
                    tag: stringify!($ty),
                    raw_help: $ty::HELP,
                    fields: $ty::FIELDS,
                    rust_name: stringify!($ty),
                    variant: concat!(stringify!($name), "::", stringify!($variant)),
                    refused: $ty::REFUSED,
                },)*
            ];

            /// The `__type__` tag of this value (the DaCapo class name).
            pub fn type_tag(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($ty),)*
                }
            }

        }


        impl $crate::config::schema::Decode for $name {
            fn expected() -> String {
                format!("a mapping with a `__type__` tag ({})", stringify!($name))
            }

            fn shape() -> $crate::config::schema::Shape {
                $crate::config::schema::Shape::Union { name: stringify!($name), types: Self::TYPES }
            }

            fn decode(
                value: &serde_json::Value,
                path: &str,
                problems: &mut $crate::config::schema::Problems,
            ) -> Option<Self> {
                let map = $crate::config::schema::expect_map(value, path, problems, stringify!($name))?;
                let tags: &[&str] = &[$(stringify!($ty)),*];
                let tag_path = $crate::config::schema::child(path, $crate::config::TYPE_KEY);
                let tag = match map.get($crate::config::TYPE_KEY) {
                    Some(serde_json::Value::String(tag)) => tag.as_str(),
                    Some(other) => {
                        problems.push(&tag_path, format!(
                            "expected a type name string, found {}",
                            $crate::config::schema::describe(other)
                        ));
                        return None;
                    }
                    None => {
                        problems.push(&tag_path, format!(
                            "missing `__type__` tag saying which kind of {} this is; one of: {}",
                            stringify!($name), tags.join(", ")
                        ));
                        return None;
                    }
                };
                $(
                    if tag == stringify!($ty) {
                        return <$ty as $crate::config::schema::Decode>::decode(value, path, problems)
                            .map(Self::$variant);
                    }
                )*
                let mut msg = format!("unknown {} type `{tag}`", stringify!($name));
                if let Some(best) = $crate::config::schema::closest(tag, tags.iter().copied()) {
                    msg.push_str(&format!(" (did you mean `{best}`?)"));
                }
                msg.push_str(&format!("; known types: {}", tags.join(", ")));
                problems.push(&tag_path, msg);
                None
            }
        }

        impl $crate::config::schema::Encode for $name {
            fn encode(&self) -> serde_json::Value {
                let (tag, mut value) = match self {
                    $(Self::$variant(c) => (stringify!($ty), $crate::config::schema::Encode::encode(c)),)*
                };
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert($crate::config::TYPE_KEY.to_string(), serde_json::Value::String(tag.to_string()));
                }
                value
            }

            fn encode_yaml(&self) -> serde_yaml_ng::Value {
                let (tag, value) = match self {
                    $(Self::$variant(c) => (stringify!($ty), $crate::config::schema::Encode::encode_yaml(c)),)*
                };
                match value {
                    serde_yaml_ng::Value::Mapping(map) => $crate::config::schema::sorted_mapping(
                        map.into_iter()
                            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
                            .chain(std::iter::once((
                                $crate::config::TYPE_KEY.to_string(),
                                serde_yaml_ng::Value::String(tag.to_string()),
                            ))),
                    ),
                    other => other,
                }
            }
        }

        impl $crate::config::schema::Validate for $name {
            fn validate(&self, path: &str, problems: &mut $crate::config::schema::Problems) {
                match self {
                    $(Self::$variant(c) => $crate::config::schema::Validate::validate(c, path, problems),)*
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(c: $ty) -> Self {
                    Self::$variant(c)
                }
            }
        )*
    };
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
