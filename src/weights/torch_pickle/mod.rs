//! Reader for PyTorch checkpoints written by `torch.save` in the zip format (PyTorch >= 1.6),
//! without Python or libtorch.
//!
//! Such a file is a zip archive with one top-level folder (its name varies: `archive/`, the
//! file stem, ...). `<folder>/data.pkl` is a Python pickle (protocol 2 by default) of the saved
//! object; every tensor in it is a call `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, ...)` whose storage is a *persistent id* `('storage', torch.FloatStorage, key,
//! location, numel)`. The raw little-endian bytes of that storage are the archive entry
//! `<folder>/data/<key>`, and `<folder>/byteorder` says `little`. Dtypes without a legacy
//! storage class (`uint16`, float8, ...) use `torch.storage.UntypedStorage` and
//! `_rebuild_tensor_v3`, which takes the dtype (a global such as `torch.uint16`) as an extra
//! argument.
//!
//! [`read`] unpickles `data.pkl` into a [`Value`] tree, gathering every tensor's elements into a
//! contiguous [`TensorData`]; [`state_dict`] then finds the model weights in it. Classes this
//! module does not know become [`Value::Object`] rather than an error (a `set` is
//! `Object { class: ("builtins", "set"), args: [List(items)], .. }`). Each storage entry is read
//! once, after the whole pickle is parsed, and freed after its last tensor; a tensor that is its
//! whole storage takes the bytes without a copy.
//!
//! Everything a file says is checked: a hostile or damaged file yields a [`TorchPickleError`],
//! never a panic, and memory use stays bounded by the sizes of the data actually present in the
//! file (no allocation is sized by a length field alone).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::mem;
use std::path::{Path, PathBuf};

use thiserror::Error;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

/// Deepest nesting of containers accepted in the value tree (also catches self-references).
pub(super) const MAX_DEPTH: usize = 256;
/// Largest `data.pkl` accepted.
pub(super) const MAX_PICKLE_BYTES: u64 = 1 << 30;
/// Bytes of tensor data that may be produced beyond `TENSOR_BYTES_PER_STORAGE_BYTE` times the
/// storage bytes read: room for expanded (stride-0) views and values referenced twice.
pub(super) const EXTRA_TENSOR_BYTES: usize = 256 << 20;
/// Tensor bytes allowed per storage byte read (overlapping views of one storage).
pub(super) const TENSOR_BYTES_PER_STORAGE_BYTE: usize = 4;
/// Value-tree nodes allowed per pickle node, besides `EXTRA_NODES` (shared references are
/// expanded into copies).
pub(super) const NODES_PER_PICKLE_NODE: usize = 8;
/// Value-tree nodes allowed besides `NODES_PER_PICKLE_NODE` per pickle node.
pub(super) const EXTRA_NODES: usize = 1 << 16;
/// Largest number of nested `_rebuild_from_type_v2` calls followed.
pub(super) const MAX_REBUILD_NESTING: usize = 4;

mod archive;
mod decode;
mod error;
mod state_dict;
mod tensor;
#[cfg(test)]
mod tests;
mod unpickler;
mod value;

pub use archive::{read, read_plain};
pub use error::TorchPickleError;
pub use state_dict::{into_state_dict, state_dict};
pub use value::{DType, TensorData, Value};

use archive::*;
use decode::*;
use tensor::*;
use unpickler::*;
