//! Finding the model weights in a decoded checkpoint: a plain state dict, or the `model` /
//! `state_dict` entry of a training checkpoint, refusing globals it does not interpret.

use super::*;

/// Finds the model weights in a checkpoint: the top-level dict if all its values are tensors,
/// else its `"model"` or `"state_dict"` entry if that is one; keys in stored order.
pub fn state_dict(value: &Value) -> Result<Vec<(String, TensorData)>, TorchPickleError> {
    let value = match value {
        // An object holding the dicts as its state (DaCapo 0.3.5's `Weights`).
        Value::Object {
            state: Some(state), ..
        } if state.as_dict().is_some() => state.as_ref(),
        other => other,
    };
    let items = match locate_state_dict(value)? {
        None => value.as_dict(),
        Some(index) => value
            .as_dict()
            .and_then(|d| d.get(index))
            .and_then(|(_, v)| v.as_dict()),
    };
    Ok(items
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_tensor()?.clone())))
        .collect())
}

/// Like [`state_dict`], but moves the tensors out of `value` instead of copying them.
pub fn into_state_dict(value: Value) -> Result<Vec<(String, TensorData)>, TorchPickleError> {
    let value = match value {
        Value::Object {
            state: Some(state), ..
        } if state.as_dict().is_some() => *state,
        other => other,
    };
    let index = locate_state_dict(&value)?;
    let Value::Dict(mut items) = value else {
        return Ok(Vec::new());
    };
    if let Some(index) = index {
        match items.get_mut(index) {
            Some((_, inner @ Value::Dict(_))) => {
                let Value::Dict(inner) = mem::replace(inner, Value::None) else {
                    return Ok(Vec::new());
                };
                items = inner;
            }
            _ => return Ok(Vec::new()),
        }
    }
    Ok(items
        .into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Some((k, t)),
            _ => None,
        })
        .collect())
}

/// `None` if `value` itself is a state dict, `Some(i)` if its `i`-th entry is.
pub(super) fn locate_state_dict(value: &Value) -> Result<Option<usize>, TorchPickleError> {
    fn is_state_dict(value: &Value) -> bool {
        value.as_dict().is_some_and(|items| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|(k, v)| matches!((k, v), (Value::Str(_), Value::Tensor(_))))
        })
    }
    if is_state_dict(value) {
        return Ok(None);
    }
    let items = value.as_dict().unwrap_or_default();
    for name in ["model", "state_dict"] {
        let found = items
            .iter()
            .position(|(k, v)| k.as_str() == Some(name) && is_state_dict(v));
        if let Some(index) = found {
            return Ok(Some(index));
        }
    }
    let globals = called_globals(value);
    if !globals.is_empty() {
        return Err(TorchPickleError::RefusedGlobals { globals });
    }
    Err(TorchPickleError::NoStateDict {
        top_kind: value.kind(),
        keys: items
            .iter()
            .map(|(k, _)| match k {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                other => format!("<{}>", other.kind()),
            })
            .collect(),
    })
}

/// The calls of classes or functions that a checkpoint holding no state dict makes near its
/// top level (three levels deep, at most 8), except the containers that plain checkpoints hold
/// (`set`, `frozenset`, `collections.defaultdict`, `argparse.Namespace`, numpy and torch
/// objects), as `module.name`.
pub(super) fn called_globals(value: &Value) -> Vec<String> {
    const MAX_GLOBALS: usize = 8;
    fn plain(module: &str, name: &str) -> bool {
        matches!(
            (module, name),
            (
                "builtins" | "__builtin__",
                "set" | "frozenset" | "slice" | "complex"
            ) | (
                "collections",
                "defaultdict" | "OrderedDict" | "Counter" | "deque"
            ) | ("argparse", "Namespace")
        ) || module == "torch"
            || module.starts_with("torch.")
            || module == "numpy"
            || module.starts_with("numpy.")
    }
    fn walk(value: &Value, depth: usize, found: &mut Vec<String>) {
        if depth > 3 || found.len() >= MAX_GLOBALS {
            return;
        }
        let children: Vec<&Value> = match value {
            Value::List(items) | Value::Tuple(items) => items.iter().collect(),
            Value::Dict(items) => items.iter().flat_map(|(k, v)| [k, v]).collect(),
            Value::Object {
                class: (module, name),
                args,
                state,
                list_items,
                dict_items,
            } => {
                let called = format!("{module}.{name}");
                if !plain(module, name) && !found.contains(&called) {
                    found.push(called);
                }
                args.iter()
                    .chain(state.as_deref())
                    .chain(list_items)
                    .chain(dict_items.iter().flat_map(|(k, v)| [k, v]))
                    .collect()
            }
            _ => Vec::new(),
        };
        for child in children {
            walk(child, depth + 1, found);
        }
    }
    let mut found = Vec::new();
    walk(value, 0, &mut found);
    found.truncate(MAX_GLOBALS);
    found
}
