//! From the unpickler's arena to the value tree: tensor views gathered from their
//! storages (each storage read once and freed after its last tensor), shared nodes copied
//! within the node budget.

use super::*;

/// A tensor as pickled: a checked strided view of a storage, gathered after parsing.
#[derive(Debug, Clone)]
pub(super) struct TensorView {
    pub(super) key: String,
    pub(super) dtype: DType,
    /// Offset, sizes and strides in elements.
    pub(super) offset: usize,
    pub(super) shape: Vec<usize>,
    pub(super) stride: Vec<usize>,
    /// Bytes of the storage, as its persistent id declares.
    pub(super) storage_len: usize,
    /// Bytes of the gathered tensor.
    pub(super) out_len: usize,
}

impl TensorView {
    /// Whether the view is its whole storage in order, so the bytes can be moved.
    pub(super) fn is_whole_storage(&self) -> bool {
        self.offset == 0
            && self.out_len == self.storage_len
            && is_contiguous(&self.shape, &self.stride)
    }
}

/// Counts how often each node occurs in the final tree and enforces the tree limits.
pub(super) struct Walk {
    pub(super) uses: Vec<u32>,
    pub(super) nodes_left: usize,
    /// Tensor views and storages reachable from the root, each once.
    pub(super) tensors: Vec<Id>,
    /// Bytes of strings, bytes and tensors that occur more than once.
    pub(super) copied_bytes: usize,
}

impl Walk {
    pub(super) fn visit(
        &mut self,
        arena: &[Node],
        id: Id,
        depth: usize,
    ) -> Result<(), TorchPickleError> {
        if depth > MAX_DEPTH {
            return Err(TorchPickleError::LimitExceeded {
                reason: format!(
                    "values nest deeper than {MAX_DEPTH} levels (or a container contains itself)"
                ),
            });
        }
        self.nodes_left =
            self.nodes_left
                .checked_sub(1)
                .ok_or_else(|| TorchPickleError::LimitExceeded {
                    reason: "the value tree is too large (objects referenced many times)".into(),
                })?;
        let (Some(uses), Some(node)) = (self.uses.get_mut(id), arena.get(id)) else {
            return Ok(());
        };
        *uses = uses.saturating_add(1);
        let repeated = *uses > 1;
        let copy = |len: usize| if repeated { len } else { 0 };
        match node {
            Node::Str(s) => self.copied_bytes = self.copied_bytes.saturating_add(copy(s.len())),
            Node::Bytes(b) => self.copied_bytes = self.copied_bytes.saturating_add(copy(b.len())),
            Node::View(_) | Node::Storage(_) if !repeated => self.tensors.push(id),
            Node::List(items) | Node::Tuple(items) => {
                for &item in items {
                    self.visit(arena, item, depth + 1)?;
                }
            }
            Node::Dict(pairs) => {
                for &(k, v) in pairs {
                    self.visit(arena, k, depth + 1)?;
                    self.visit(arena, v, depth + 1)?;
                }
            }
            Node::Object(object) => {
                for &arg in &object.args {
                    self.visit(arena, arg, depth + 1)?;
                }
                if let Some(state) = object.state {
                    self.visit(arena, state, depth + 1)?;
                }
                for &item in &object.list_items {
                    self.visit(arena, item, depth + 1)?;
                }
                for &(k, v) in &object.dict_items {
                    self.visit(arena, k, depth + 1)?;
                    self.visit(arena, v, depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Builds the owned tree; the last occurrence of a payload moves it out of the arena.
/// Only called after [`Walk::visit`] has checked the depth and size of the same traversal.
pub(super) fn convert(arena: &mut [Node], uses: &mut [u32], id: Id) -> Value {
    let last = match uses.get_mut(id) {
        Some(n) => {
            *n = n.saturating_sub(1);
            *n == 0
        }
        None => true,
    };
    let Some(node) = arena.get_mut(id) else {
        return Value::None;
    };
    match node {
        Node::None => Value::None,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::Int(*i),
        Node::Float(f) => Value::Float(*f),
        Node::Str(s) => Value::Str(if last { mem::take(s) } else { s.clone() }),
        Node::Bytes(b) => Value::Bytes(if last { mem::take(b) } else { b.clone() }),
        // `finish` gathered every view reachable from the root.
        Node::View(_) => Value::None,
        Node::Tensor(t) => Value::Tensor(if last {
            TensorData {
                dtype: t.dtype,
                shape: mem::take(&mut t.shape),
                data: mem::take(&mut t.data),
            }
        } else {
            t.clone()
        }),
        Node::Global(g) => Value::Global {
            module: g.0.clone(),
            name: g.1.clone(),
        },
        Node::List(items) => {
            let items = items.clone();
            Value::List(convert_all(arena, uses, &items))
        }
        Node::Tuple(items) => {
            let items = items.clone();
            Value::Tuple(convert_all(arena, uses, &items))
        }
        Node::Dict(pairs) => {
            let pairs = pairs.clone();
            Value::Dict(convert_pairs(arena, uses, &pairs))
        }
        Node::Object(object) => {
            let class = object.class.clone();
            let args = object.args.clone();
            let state = object.state;
            let list_items = object.list_items.clone();
            let dict_items = object.dict_items.clone();
            let args = convert_all(arena, uses, &args);
            let state = state.map(|s| Box::new(convert(arena, uses, s)));
            let list_items = convert_all(arena, uses, &list_items);
            Value::Object {
                class,
                args,
                state,
                list_items,
                dict_items: convert_pairs(arena, uses, &dict_items),
            }
        }
        // A storage of a dtype without a tensor representation.
        Node::Storage(storage) => Value::Object {
            class: storage.class.clone(),
            args: vec![
                Value::Str(storage.key.clone()),
                Value::Str(storage.location.clone()),
                Value::Int(i64::try_from(storage.numel).unwrap_or(i64::MAX)),
            ],
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        },
    }
}

pub(super) fn convert_all(arena: &mut [Node], uses: &mut [u32], ids: &[Id]) -> Vec<Value> {
    ids.iter().map(|&i| convert(arena, uses, i)).collect()
}

pub(super) fn convert_pairs(
    arena: &mut [Node],
    uses: &mut [u32],
    pairs: &[(Id, Id)],
) -> Vec<(Value, Value)> {
    pairs
        .iter()
        .map(|&(k, v)| (convert(arena, uses, k), convert(arena, uses, v)))
        .collect()
}

/// Copies the elements of the view (`offset`, `shape`, `stride`, in elements of `elem` bytes)
/// of `src` into a contiguous buffer of `out_len` bytes; `None` if the view leaves `src`.
pub(super) fn gather(
    src: &[u8],
    elem: usize,
    offset: usize,
    shape: &[usize],
    stride: &[usize],
    out_len: usize,
) -> Option<Vec<u8>> {
    let bytes = |first: usize, count: usize| -> Option<&[u8]> {
        let start = first.checked_mul(elem)?;
        src.get(start..start.checked_add(count.checked_mul(elem)?)?)
    };
    let numel = out_len / elem.max(1);
    if is_contiguous(shape, stride) {
        return bytes(offset, numel).map(<[u8]>::to_vec);
    }
    let mut out = Vec::with_capacity(out_len);
    let Some((&inner, outer_shape)) = shape.split_last() else {
        return bytes(offset, 1).map(<[u8]>::to_vec);
    };
    let (&inner_stride, outer_stride) = stride.split_last()?;
    let mut index = vec![0usize; outer_shape.len()];
    loop {
        let mut base = offset;
        for (&i, &s) in index.iter().zip(outer_stride) {
            base = base.checked_add(i.checked_mul(s)?)?;
        }
        if inner_stride == 1 {
            out.extend_from_slice(bytes(base, inner)?);
        } else {
            for j in 0..inner {
                let at = base.checked_add(j.checked_mul(inner_stride)?)?;
                out.extend_from_slice(bytes(at, 1)?);
            }
        }
        // Advance the multi-index over the outer dimensions, last one fastest.
        let mut dim = index.len();
        loop {
            if dim == 0 {
                return Some(out);
            }
            dim -= 1;
            index[dim] += 1;
            if index[dim] < outer_shape[dim] {
                break;
            }
            index[dim] = 0;
        }
    }
}

/// Whether sizes and strides (in elements) describe a row-major contiguous layout.
pub(super) fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        match expected.checked_mul(d) {
            Some(next) => expected = next,
            None => return false,
        }
    }
    true
}
