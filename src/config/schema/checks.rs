//! Helpers the config types' decoders share: mappings expected, unknown keys reported with
//! the closest known key, choices checked, and fields decoded with their defaults.

use super::*;

/// The plural of a value description: "a list of strings" → "lists of strings", "a
/// coordinate (…)" → "coordinates (…)", "a string or null" → "strings or null".
pub(super) fn plural(expected: &str) -> String {
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
        if key == crate::config::TYPE_KEY {
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

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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
