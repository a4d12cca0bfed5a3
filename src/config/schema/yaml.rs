//! YAML in DaCapo's v0.3.x dialect: sorted keys, and tuples tagged `!!python/tuple` so
//! PyYAML reads them back as tuples.

use super::*;

/// The tag DaCapo's YAML files put on tuples (written `!!python/tuple` by [`to_yaml_text`]).
pub(super) const TUPLE_TAG: &str = "python/tuple";

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

pub(super) fn strip_tags(value: &mut YamlValue) {
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
