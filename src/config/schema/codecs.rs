//! Decoding, encoding and validation of the value types configs are built from: booleans,
//! integers, floats, strings, options, lists, maps, tuples, coordinates and regions.

use super::*;

pub(super) fn mismatch<T: Decode>(value: &Value, path: &str, problems: &mut Problems) {
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
