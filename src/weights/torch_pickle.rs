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
const MAX_DEPTH: usize = 256;
/// Largest `data.pkl` accepted.
const MAX_PICKLE_BYTES: u64 = 1 << 30;
/// Bytes of tensor data that may be produced beyond `TENSOR_BYTES_PER_STORAGE_BYTE` times the
/// storage bytes read: room for expanded (stride-0) views and values referenced twice.
const EXTRA_TENSOR_BYTES: usize = 256 << 20;
/// Tensor bytes allowed per storage byte read (overlapping views of one storage).
const TENSOR_BYTES_PER_STORAGE_BYTE: usize = 4;
/// Value-tree nodes allowed per pickle node, besides `EXTRA_NODES` (shared references are
/// expanded into copies).
const NODES_PER_PICKLE_NODE: usize = 8;
/// Value-tree nodes allowed besides `NODES_PER_PICKLE_NODE` per pickle node.
const EXTRA_NODES: usize = 1 << 16;
/// Largest number of nested `_rebuild_from_type_v2` calls followed.
const MAX_REBUILD_NESTING: usize = 4;

/// A Python value decoded from a checkpoint's pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// A Python `bool`.
    Bool(bool),
    /// A Python `int` that fits in 64 bits (larger ones are an error).
    Int(i64),
    /// A Python `float`.
    Float(f64),
    /// A Python `str`.
    Str(String),
    /// A Python `bytes` or `bytearray`.
    Bytes(Vec<u8>),
    /// A Python `list`.
    List(Vec<Value>),
    /// A Python `tuple`.
    Tuple(Vec<Value>),
    /// A Python `dict` or `collections.OrderedDict`, in insertion order (attributes set on
    /// the dict, such as a state dict's `_metadata`, are dropped).
    Dict(Vec<(Value, Value)>),
    /// A tensor or `nn.Parameter`, its elements already gathered from its storage
    /// (`requires_grad`, hooks and Python attributes set on it are dropped).
    Tensor(TensorData),
    /// A reference to a class or function that was not called, e.g. `torch.float32`.
    Global {
        /// The module, e.g. `torch` (Python 2's `__builtin__` is reported as `builtins`).
        module: String,
        /// The name inside the module, e.g. `float32`.
        name: String,
    },
    /// An instance of a class this reader does not interpret, e.g. `argparse.Namespace`, a
    /// numpy scalar, `torch.Size`, `builtins.set` or `collections.defaultdict`.
    Object {
        /// The class or factory function as `(module, name)`.
        class: (String, String),
        /// The arguments it was called with (`NEWOBJ_EX` keyword arguments follow as a
        /// [`Value::Dict`] when present).
        args: Vec<Value>,
        /// The state set by `BUILD` (often the instance `__dict__`), if any.
        state: Option<Box<Value>>,
        /// Items appended to it (list subclasses), in order.
        list_items: Vec<Value>,
        /// Items assigned into it (dict subclasses such as `defaultdict`), in order.
        dict_items: Vec<(Value, Value)>,
    },
}

impl Value {
    /// Looks up a string key in a [`Value::Dict`]; `None` for other values or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The entries of a [`Value::Dict`].
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            _ => None,
        }
    }

    /// The elements of a [`Value::List`] or [`Value::Tuple`].
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number in a [`Value::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number in a [`Value::Float`] or [`Value::Int`], as `f64`.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The tensor in a [`Value::Tensor`].
    pub fn as_tensor(&self) -> Option<&TensorData> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
            Value::Global { .. } => "global",
            Value::Object { .. } => "object",
        }
    }
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision (`torch.float16`, `HalfStorage`).
    F16,
    /// Brain floating point (`torch.bfloat16`, `BFloat16Storage`).
    BF16,
    /// `torch.float32` (`FloatStorage`).
    F32,
    /// `torch.float64` (`DoubleStorage`).
    F64,
    /// `torch.uint8` (`ByteStorage`).
    U8,
    /// `torch.int8` (`CharStorage`).
    I8,
    /// `torch.int16` (`ShortStorage`).
    I16,
    /// `torch.int32` (`IntStorage`).
    I32,
    /// `torch.int64` (`LongStorage`).
    I64,
    /// `torch.bool` (`BoolStorage`), one byte per element.
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// The dtype of a legacy storage class such as `FloatStorage`.
    fn from_storage_class(name: &str) -> Option<DType> {
        Some(match name {
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "ByteStorage" => DType::U8,
            "CharStorage" => DType::I8,
            "ShortStorage" => DType::I16,
            "IntStorage" => DType::I32,
            "LongStorage" => DType::I64,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// The dtype of a `torch.<name>` dtype global such as `torch.float32`.
    fn from_torch_name(name: &str) -> Option<DType> {
        Some(match name {
            "float16" | "half" => DType::F16,
            "bfloat16" => DType::BF16,
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "uint8" => DType::U8,
            "int8" => DType::I8,
            "int16" | "short" => DType::I16,
            "int32" | "int" => DType::I32,
            "int64" | "long" => DType::I64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

/// A tensor's elements, contiguous in row-major order and little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    /// Element type.
    pub dtype: DType,
    /// Size of each dimension; empty for a 0-d (scalar) tensor.
    pub shape: Vec<usize>,
    /// `numel() * dtype.size_in_bytes()` bytes, gathered from the storage by offset and strides.
    pub data: Vec<u8>,
}

impl TensorData {
    /// Number of elements: the product of the shape (1 for a 0-d tensor).
    pub fn numel(&self) -> usize {
        self.shape.iter().fold(1, |n, &d| n.saturating_mul(d))
    }

    /// The elements converted to `f32` (booleans become 0 or 1; wide integers and `f64` are
    /// rounded to the nearest `f32`).
    pub fn to_f32(&self) -> Vec<f32> {
        fn each<const N: usize>(data: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
            data.as_chunks::<N>().0.iter().map(|c| f(*c)).collect()
        }
        let d = self.data.as_slice();
        match self.dtype {
            DType::F16 => each(d, |b| half::f16::from_le_bytes(b).to_f32()),
            DType::BF16 => each(d, |b| half::bf16::from_le_bytes(b).to_f32()),
            DType::F32 => each(d, f32::from_le_bytes),
            DType::F64 => each(d, |b| f64::from_le_bytes(b) as f32),
            DType::U8 => each(d, |[b]| f32::from(b)),
            DType::I8 => each(d, |b| f32::from(i8::from_le_bytes(b))),
            DType::I16 => each(d, |b| f32::from(i16::from_le_bytes(b))),
            DType::I32 => each(d, |b| i32::from_le_bytes(b) as f32),
            DType::I64 => each(d, |b| i64::from_le_bytes(b) as f32),
            DType::Bool => each(d, |[b]| if b == 0 { 0.0 } else { 1.0 }),
        }
    }
}

/// Everything that can go wrong reading a checkpoint.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TorchPickleError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is a bare pickle: the legacy format of `torch.save` before PyTorch 1.6.
    #[error(
        "{} is in the legacy (pre-1.6, non-zip) torch.save format, which is not supported; \
         re-save it with torch.save(..., _use_new_zipfile_serialization=True)",
        path.display()
    )]
    LegacyFormat {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The file is not a readable zip archive (corrupt, truncated, or not a checkpoint).
    #[error(
        "{} is not a readable zip archive ({source}); if it was written by torch.save before \
         PyTorch 1.6, re-save it with torch.save(..., _use_new_zipfile_serialization=True)",
        path.display()
    )]
    NotZip {
        /// The checkpoint file.
        path: PathBuf,
        /// What the zip reader reported.
        #[source]
        source: ZipError,
    },
    /// An archive entry exists but could not be read (corrupt or damaged data).
    #[error("cannot read zip entry {entry}: {source}")]
    ZipEntry {
        /// Name of the entry.
        entry: String,
        /// What the zip reader reported.
        #[source]
        source: ZipError,
    },
    /// No `<folder>/data.pkl` entry: the archive is not a `torch.save` checkpoint.
    #[error("no <folder>/data.pkl entry in the archive; its first entries are {entries:?}")]
    MissingDataPkl {
        /// The first entry names of the archive (at most 20).
        entries: Vec<String>,
    },
    /// More than one top-level folder holds a `data.pkl`.
    #[error("the archive holds several checkpoints, in folders {folders:?}")]
    AmbiguousArchive {
        /// The folders that hold a `data.pkl`.
        folders: Vec<String>,
    },
    /// `<folder>/byteorder` names an order other than `little`.
    #[error(
        "the checkpoint's byte order is {found:?}; only little-endian checkpoints are supported"
    )]
    BigEndian {
        /// The content of the `byteorder` entry.
        found: String,
    },
    /// The pickle uses an opcode this reader does not implement.
    #[error("unsupported pickle opcode 0x{opcode:02x} ({}) at offset {offset}", opcode_name(*.opcode))]
    UnsupportedOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its offset in `data.pkl`.
        offset: usize,
    },
    /// An opcode needed more values than the pickle stack (above the last mark) holds.
    #[error("pickle stack underflow at offset {offset} (opcode {opcode})")]
    StackUnderflow {
        /// Name of the opcode.
        opcode: &'static str,
        /// Its offset in `data.pkl`.
        offset: usize,
    },
    /// The pickle is inconsistent: truncated, wrong argument types, unknown memo key, ...
    #[error("malformed pickle at offset {offset}: {reason}")]
    Malformed {
        /// Offset in `data.pkl` of the opcode being executed.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// An integer in the pickle does not fit in an `i64`.
    #[error("integer at offset {offset} does not fit in 64 bits")]
    IntegerTooLarge {
        /// Offset in `data.pkl` of the opcode.
        offset: usize,
    },
    /// A tensor refers to a storage that has no entry in the archive.
    #[error("storage entry {entry} is missing from the archive")]
    MissingStorage {
        /// Name of the missing archive entry.
        entry: String,
    },
    /// A storage entry holds fewer bytes than its tensors need.
    #[error("storage entry {entry} is truncated: {needed} bytes needed, {available} available")]
    TruncatedStorage {
        /// Name of the archive entry.
        entry: String,
        /// Bytes the pickle says the storage has.
        needed: u64,
        /// Bytes the entry holds.
        available: u64,
    },
    /// A tensor has an element type this reader does not support (complex, quantized, ...).
    #[error("unsupported tensor dtype {name}")]
    UnsupportedDtype {
        /// The storage class or dtype, e.g. `torch.ComplexFloatStorage` or `torch.uint16`.
        name: String,
    },
    /// The file asks for more memory or nesting than its actual content justifies.
    #[error("checkpoint rejected: {reason}")]
    LimitExceeded {
        /// Which limit and why.
        reason: String,
    },
    /// [`state_dict`] found no dict of tensors where it looked.
    #[error(
        "no state dict found: expected a dict of tensors, or a dict with one under \"model\" or \
         \"state_dict\"; the top-level value is a {top_kind} with keys {keys:?}"
    )]
    NoStateDict {
        /// What the top-level value is (`dict`, `list`, ...).
        top_kind: &'static str,
        /// The top-level keys when it is a dict.
        keys: Vec<String>,
    },
    /// No state dict was found, and the pickle calls functions or classes outside what this
    /// reader interprets (for example `posix.system`). They were never run: the reader only
    /// records such calls, so a hostile checkpoint is refused here with the calls named.
    #[error(
        "no state dict found; the checkpoint calls {}, which Segno does not run (it interprets \
         only torch's tensor-rebuilding functions and plain containers, never other pickle \
         globals)",
        globals.join(", ")
    )]
    RefusedGlobals {
        /// The uninterpreted callables as `module.name`, in the order found (at most 8).
        globals: Vec<String>,
    },
}

/// Reads a checkpoint written by `torch.save` (zip format) and returns the saved object.
pub fn read(path: &Path) -> Result<Value, TorchPickleError> {
    let io_error = |source| TorchPickleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let file_len = file.metadata().map_err(io_error)?.len();
    let mut first = [0u8; 1];
    let got = file.read(&mut first).map_err(io_error)?;
    // A legacy checkpoint is a bare pickle, which starts with the PROTO opcode.
    if got == 1 && first[0] == 0x80 {
        return Err(TorchPickleError::LegacyFormat {
            path: path.to_path_buf(),
        });
    }
    file.rewind().map_err(io_error)?;
    let archive =
        ZipArchive::new(BufReader::new(file)).map_err(|source| TorchPickleError::NotZip {
            path: path.to_path_buf(),
            source,
        })?;
    read_archive(archive, file_len)
}

fn read_archive<R: Read + Seek>(
    mut archive: ZipArchive<R>,
    file_len: u64,
) -> Result<Value, TorchPickleError> {
    let mut folders: Vec<String> = archive
        .file_names()
        .filter_map(|name| name.strip_suffix("/data.pkl"))
        .filter(|folder| !folder.is_empty() && !folder.contains('/'))
        .map(str::to_owned)
        .collect();
    folders.sort();
    folders.dedup();
    let folder = match folders.len() {
        0 => {
            return Err(TorchPickleError::MissingDataPkl {
                entries: archive.file_names().take(20).map(str::to_owned).collect(),
            });
        }
        1 => folders.swap_remove(0),
        _ => return Err(TorchPickleError::AmbiguousArchive { folders }),
    };

    if let Some(order) = read_entry(&mut archive, &format!("{folder}/byteorder"), 64, file_len)? {
        let order = String::from_utf8_lossy(&order);
        if order.trim() != "little" {
            return Err(TorchPickleError::BigEndian {
                found: order.trim().to_owned(),
            });
        }
    }

    let pickle_name = format!("{folder}/data.pkl");
    let pickle = read_entry(&mut archive, &pickle_name, MAX_PICKLE_BYTES + 1, file_len)?
        .ok_or_else(|| TorchPickleError::MissingDataPkl {
            entries: vec![pickle_name],
        })?;
    if pickle.len() as u64 > MAX_PICKLE_BYTES {
        return Err(TorchPickleError::LimitExceeded {
            reason: format!("data.pkl is larger than {MAX_PICKLE_BYTES} bytes"),
        });
    }
    let mut storages = ZipStorages {
        archive,
        folder,
        file_len,
        cache: HashMap::new(),
        loaded: 0,
    };
    unpickle(&pickle, &mut storages)
}

/// Reads the first `limit` bytes (or fewer) of entry `name`; `None` when there is no such
/// entry.
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
    file_len: u64,
) -> Result<Option<Vec<u8>>, TorchPickleError> {
    let entry_error = |source| TorchPickleError::ZipEntry {
        entry: name.to_owned(),
        source,
    };
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    // `torch.serialization.set_crc32_options(False)` makes torch.save write 0 for every
    // CRC-32; such stored (uncompressed) entries are read raw, without the check.
    let unchecked = {
        let raw = archive.by_index_raw(index).map_err(entry_error)?;
        raw.crc32() == 0 && raw.compression() == CompressionMethod::Stored
    };
    let entry = if unchecked {
        archive.by_index_raw(index)
    } else {
        archive.by_index(index)
    }
    .map_err(entry_error)?;
    // The declared size is only a hint: reserve no more than the archive itself holds.
    let reserve = entry.size().min(limit).min(file_len);
    let mut buf = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    // One byte more than wanted, so that an entry of exactly `limit` bytes is read to its end,
    // where the CRC-32 is checked.
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| entry_error(ZipError::Io(e)))?;
    buf.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Some(buf))
}

/// Source of storage bytes for persistent ids, cached by key.
trait StorageLoader {
    /// Makes sure the first `len` bytes of storage `key` are cached.
    fn ensure(&mut self, key: &str, len: usize) -> Result<(), TorchPickleError>;
    /// The cached bytes of storage `key`.
    fn bytes(&self, key: &str) -> Option<&[u8]>;
    /// Removes storage `key` from the cache, returning its bytes.
    fn take(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Total bytes of storage read so far.
    fn loaded_bytes(&self) -> usize;
}

struct ZipStorages<R> {
    archive: ZipArchive<R>,
    folder: String,
    file_len: u64,
    cache: HashMap<String, Vec<u8>>,
    loaded: usize,
}

impl<R: Read + Seek> StorageLoader for ZipStorages<R> {
    fn ensure(&mut self, key: &str, len: usize) -> Result<(), TorchPickleError> {
        if self.cache.get(key).is_some_and(|b| b.len() >= len) {
            return Ok(());
        }
        let entry = format!("{}/data/{}", self.folder, key);
        let bytes =
            read_entry(&mut self.archive, &entry, len as u64, self.file_len)?.ok_or_else(|| {
                TorchPickleError::MissingStorage {
                    entry: entry.clone(),
                }
            })?;
        if bytes.len() < len {
            return Err(TorchPickleError::TruncatedStorage {
                entry,
                needed: len as u64,
                available: bytes.len() as u64,
            });
        }
        let previous = self
            .cache
            .insert(key.to_owned(), bytes)
            .map_or(0, |b| b.len());
        self.loaded = self.loaded.saturating_add(len.saturating_sub(previous));
        Ok(())
    }

    fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.cache.get(key).map(Vec::as_slice)
    }

    fn take(&mut self, key: &str) -> Option<Vec<u8>> {
        self.cache.remove(key)
    }

    fn loaded_bytes(&self) -> usize {
        self.loaded
    }
}

/// A loader for bare pickles, which hold no tensors: any storage is refused.
struct NoStorages;

impl StorageLoader for NoStorages {
    fn ensure(&mut self, key: &str, _len: usize) -> Result<(), TorchPickleError> {
        Err(TorchPickleError::Malformed {
            offset: 0,
            reason: format!("a plain pickle refers to tensor storage `{key}`"),
        })
    }

    fn bytes(&self, _key: &str) -> Option<&[u8]> {
        None
    }

    fn take(&mut self, _key: &str) -> Option<Vec<u8>> {
        None
    }

    fn loaded_bytes(&self) -> usize {
        0
    }
}

/// Reads a bare Python pickle without tensors (protocols 2–5; e.g. DaCapo's training
/// statistics and validation scores files), with the same checks as [`read`].
pub fn read_plain(path: &Path) -> Result<Value, TorchPickleError> {
    let io_error = |source| TorchPickleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io_error)?.len();
    if len > MAX_PICKLE_BYTES {
        return Err(TorchPickleError::LimitExceeded {
            reason: format!("{} is larger than {MAX_PICKLE_BYTES} bytes", path.display()),
        });
    }
    let data = std::fs::read(path).map_err(io_error)?;
    unpickle(&data, &mut NoStorages)
}

/// Index of a node in the unpickler's arena.
type Id = usize;

/// A value while unpickling: containers refer to their items by arena index, so shared and
/// later-mutated objects behave as in Python, and nothing is copied until the final tree.
#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// A tensor whose storage has not been read yet.
    View(Box<TensorView>),
    /// A tensor gathered from its storage (only after parsing).
    Tensor(TensorData),
    Global(Box<(String, String)>),
    Object(Box<ObjectNode>),
    Storage(Box<StorageRef>),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "bool",
            Node::Int(_) => "int",
            Node::Float(_) => "float",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::View(_) | Node::Tensor(_) => "tensor",
            Node::Global(_) => "global",
            Node::Object(_) => "object",
            Node::Storage(_) => "storage",
        }
    }
}

#[derive(Debug)]
struct ObjectNode {
    class: (String, String),
    args: Vec<Id>,
    state: Option<Id>,
    list_items: Vec<Id>,
    dict_items: Vec<(Id, Id)>,
}

impl ObjectNode {
    fn new(class: (String, String), args: Vec<Id>) -> Self {
        ObjectNode {
            class,
            args,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }
}

/// A storage named by a persistent id.
#[derive(Debug, Clone)]
struct StorageRef {
    class: (String, String),
    kind: StorageKind,
    key: String,
    location: String,
    numel: u64,
}

#[derive(Debug, Clone)]
enum StorageKind {
    Typed(DType),
    Untyped,
    Unsupported,
}

impl StorageRef {
    /// Size in bytes, `None` on overflow.
    fn byte_len(&self) -> Option<u64> {
        match self.kind {
            StorageKind::Typed(d) => self.numel.checked_mul(d.size_in_bytes() as u64),
            StorageKind::Untyped | StorageKind::Unsupported => Some(self.numel),
        }
    }
}

/// Unpickles `data`, resolving storages through `loader`, into an owned value tree.
fn unpickle(data: &[u8], loader: &mut dyn StorageLoader) -> Result<Value, TorchPickleError> {
    let mut unpickler = Unpickler {
        data,
        pos: 0,
        op_offset: 0,
        op: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        loader,
        produced: 0,
    };
    let root = unpickler.run()?;
    unpickler.finish(root)
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and byte of the opcode being executed, for error messages.
    op_offset: usize,
    op: u8,
    arena: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    loader: &'a mut dyn StorageLoader,
    /// Tensor bytes produced so far (checked against the storage bytes read).
    produced: usize,
}

impl<'a> Unpickler<'a> {
    fn malformed(&self, reason: impl Into<String>) -> TorchPickleError {
        TorchPickleError::Malformed {
            offset: self.op_offset,
            reason: reason.into(),
        }
    }

    fn node(&self, id: Id) -> &Node {
        // Ids are only ever produced by `add`, so they are always in range.
        &self.arena[id]
    }

    fn add(&mut self, node: Node) -> Id {
        self.arena.push(node);
        self.arena.len() - 1
    }

    fn push(&mut self, node: Node) {
        let id = self.add(node);
        self.stack.push(id);
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Id, TorchPickleError> {
        let popped = if self.stack.len() > self.floor() {
            self.stack.pop()
        } else {
            None
        };
        popped.ok_or(TorchPickleError::StackUnderflow {
            opcode: opcode_name(self.op),
            offset: self.op_offset,
        })
    }

    fn top(&self) -> Result<Id, TorchPickleError> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.floor() => Ok(id),
            _ => Err(TorchPickleError::StackUnderflow {
                opcode: opcode_name(self.op),
                offset: self.op_offset,
            }),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, TorchPickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.malformed("MARK above the top of the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TorchPickleError> {
        let data = self.data;
        let end = self.pos.checked_add(n).filter(|&end| end <= data.len());
        let Some(end) = end else {
            return Err(self.malformed(format!(
                "pickle truncated: {n} bytes needed, {} left",
                data.len().saturating_sub(self.pos)
            )));
        };
        let bytes = &data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], TorchPickleError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, TorchPickleError> {
        Ok(self.array::<1>()?[0])
    }

    fn len_u32(&mut self) -> Result<usize, TorchPickleError> {
        let n = u32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))
    }

    fn len_u64(&mut self) -> Result<usize, TorchPickleError> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))
    }

    fn len_i32(&mut self) -> Result<usize, TorchPickleError> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed(format!("negative length {n}")))
    }

    /// The bytes up to the next newline, which is consumed too.
    fn line(&mut self) -> Result<&'a [u8], TorchPickleError> {
        let data = self.data;
        let rest = data.get(self.pos..).unwrap_or_default();
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.malformed("pickle truncated: newline expected"));
        };
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn text_line(&mut self) -> Result<String, TorchPickleError> {
        let line = self.line()?.to_vec();
        String::from_utf8(line).map_err(|_| self.malformed("line is not valid UTF-8"))
    }

    /// A decimal integer literal (INT, LONG, PUT, GET), with an optional trailing `L`.
    fn parse_int(&self, line: &[u8]) -> Result<i64, TorchPickleError> {
        let text = std::str::from_utf8(line)
            .map_err(|_| self.malformed("integer literal is not text"))?
            .trim();
        let text = text.strip_suffix('L').unwrap_or(text);
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.malformed(format!("bad integer literal {text:?}")));
        }
        text.parse().map_err(|_| TorchPickleError::IntegerTooLarge {
            offset: self.op_offset,
        })
    }

    fn memo_key_line(&mut self) -> Result<u64, TorchPickleError> {
        let line = self.line()?;
        let key = self.parse_int(line)?;
        u64::try_from(key).map_err(|_| self.malformed(format!("negative memo key {key}")))
    }

    fn put(&mut self, key: u64) -> Result<(), TorchPickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn get(&mut self, key: u64) -> Result<(), TorchPickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    fn push_str_or_bytes(&mut self, bytes: Vec<u8>) {
        let node = match String::from_utf8(bytes) {
            Ok(s) => Node::Str(s),
            Err(e) => Node::Bytes(e.into_bytes()),
        };
        self.push(node);
    }

    fn push_utf8(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?.to_vec();
        let s =
            String::from_utf8(bytes).map_err(|_| self.malformed("string is not valid UTF-8"))?;
        self.push(Node::Str(s));
        Ok(())
    }

    fn push_bytes(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?.to_vec();
        self.push(Node::Bytes(bytes));
        Ok(())
    }

    fn push_long(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?;
        let value = decode_long(bytes).ok_or(TorchPickleError::IntegerTooLarge {
            offset: self.op_offset,
        })?;
        self.push(Node::Int(value));
        Ok(())
    }

    fn push_global(&mut self, module: String, name: String) {
        // Python 2 module names, as Python's own unpickler maps them for protocols < 3.
        let module = match module.as_str() {
            "__builtin__" | "exceptions" => "builtins".to_owned(),
            "copy_reg" => "copyreg".to_owned(),
            _ => module,
        };
        self.push(Node::Global(Box::new((module, name))));
    }

    /// The items of a tuple (or list) node.
    fn items_of(&self, id: Id, what: &str) -> Result<Vec<Id>, TorchPickleError> {
        match self.node(id) {
            Node::Tuple(items) | Node::List(items) => Ok(items.clone()),
            other => Err(self.malformed(format!("{what} is a {}, not a tuple", other.kind()))),
        }
    }

    fn str_of(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    fn run(&mut self) -> Result<Id, TorchPickleError> {
        loop {
            self.op_offset = self.pos;
            self.op = self
                .take(1)
                .map_err(|_| self.malformed("pickle ended without STOP"))?[0];
            match self.op {
                0x80 => {
                    let protocol = self.u8()?;
                    if protocol > 5 {
                        return Err(self.malformed(format!("unsupported protocol {protocol}")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: framing is only a read-ahead hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() > self.floor() {
                        self.pop()?;
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'N' => self.push(Node::None),
                0x88 => self.push(Node::Bool(true)),
                0x89 => self.push(Node::Bool(false)),
                b'I' => {
                    let line = self.line()?;
                    let node = match line {
                        b"00" => Node::Bool(false),
                        b"01" => Node::Bool(true),
                        _ => Node::Int(self.parse_int(line)?),
                    };
                    self.push(node);
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.array()?);
                    self.push(Node::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Node::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.array()?);
                    self.push(Node::Int(v.into()));
                }
                b'L' => {
                    let line = self.line()?;
                    let v = self.parse_int(line)?;
                    self.push(Node::Int(v));
                }
                0x8a => {
                    let n = self.u8()?;
                    self.push_long(n.into())?;
                }
                0x8b => {
                    let n = self.len_i32()?;
                    self.push_long(n)?;
                }
                b'F' => {
                    let text = self.text_line()?;
                    let v = text
                        .trim()
                        .parse()
                        .map_err(|_| self.malformed(format!("bad float literal {text:?}")))?;
                    self.push(Node::Float(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.array()?);
                    self.push(Node::Float(v));
                }
                b'S' => {
                    let line = self.line()?;
                    let bytes = match line {
                        [q, inner @ .., last] if q == last && (*q == b'\'' || *q == b'"') => {
                            unescape_string(inner)
                        }
                        _ => None,
                    }
                    .ok_or_else(|| self.malformed("bad STRING literal"))?;
                    self.push_str_or_bytes(bytes);
                }
                b'T' => {
                    let n = self.len_i32()?;
                    let bytes = self.take(n)?.to_vec();
                    self.push_str_or_bytes(bytes);
                }
                b'U' => {
                    let n = self.u8()?;
                    let bytes = self.take(n.into())?.to_vec();
                    self.push_str_or_bytes(bytes);
                }
                b'X' => {
                    let n = self.len_u32()?;
                    self.push_utf8(n)?;
                }
                0x8c => {
                    let n = self.u8()?;
                    self.push_utf8(n.into())?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    self.push_utf8(n)?;
                }
                b'V' => {
                    let line = self.line()?;
                    let s = decode_raw_unicode_escape(line)
                        .ok_or_else(|| self.malformed("bad UNICODE literal"))?;
                    self.push(Node::Str(s));
                }
                b'B' => {
                    let n = self.len_u32()?;
                    self.push_bytes(n)?;
                }
                b'C' => {
                    let n = self.u8()?;
                    self.push_bytes(n.into())?;
                }
                0x8e | 0x96 => {
                    let n = self.len_u64()?;
                    self.push_bytes(n)?;
                }
                0x98 => {
                    self.top()?; // READONLY_BUFFER: no-op on the top value
                }
                b']' => self.push(Node::List(Vec::new())),
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b')' => self.push(Node::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(self.op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(&items)?;
                    self.push(Node::Dict(pairs));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(&items)?;
                    self.set_items(pairs)?;
                }
                0x8f => {
                    let items = self.add(Node::List(Vec::new()));
                    let set = ObjectNode::new(builtin("set"), vec![items]);
                    self.push(Node::Object(Box::new(set)));
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    self.add_items(items)?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let items = self.add(Node::List(items));
                    let set = ObjectNode::new(builtin("frozenset"), vec![items]);
                    self.push(Node::Object(Box::new(set)));
                }
                b'c' => {
                    let module = self.text_line()?;
                    let name = self.text_line()?;
                    self.push_global(module, name);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name))
                    else {
                        return Err(self.malformed("STACK_GLOBAL needs two strings"));
                    };
                    let (module, name) = (module.to_owned(), name.to_owned());
                    self.push_global(module, name);
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = self.items_of(args, "the argument list")?;
                    let id = self.call(callable, args, 0)?;
                    self.stack.push(id);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let args = self.items_of(args, "the argument list")?;
                    let id = self.call(class, args, 0)?;
                    let has_kwargs = matches!(self.node(kwargs), Node::Dict(d) if !d.is_empty());
                    if has_kwargs {
                        if let Node::Object(object) = &mut self.arena[id] {
                            object.args.push(kwargs);
                        }
                    }
                    self.stack.push(id);
                }
                b'i' => {
                    let module = self.text_line()?;
                    let name = self.text_line()?;
                    let args = self.pop_mark()?;
                    self.push_global(module, name);
                    let class = self.pop()?;
                    let id = self.call(class, args, 0)?;
                    self.stack.push(id);
                }
                b'o' => {
                    let mut items = self.pop_mark()?;
                    if items.is_empty() {
                        return Err(self.malformed("OBJ without a class"));
                    }
                    let class = items.remove(0);
                    let id = self.call(class, items, 0)?;
                    self.stack.push(id);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    // Python would call __setstate__ or update __dict__; only objects keep it
                    // (a dict's attributes, e.g. a state dict's `_metadata`, are dropped).
                    if let Node::Object(object) = &mut self.arena[target] {
                        object.state = Some(state);
                    }
                }
                b'p' => {
                    let key = self.memo_key_line()?;
                    self.put(key)?;
                }
                b'q' => {
                    let key = self.u8()?;
                    self.put(key.into())?;
                }
                b'r' => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.put(key.into())?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.put(key)?;
                }
                b'g' => {
                    let key = self.memo_key_line()?;
                    self.get(key)?;
                }
                b'h' => {
                    let key = self.u8()?;
                    self.get(key.into())?;
                }
                b'j' => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.get(key.into())?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent_load(pid)?;
                    self.push(Node::Storage(Box::new(storage)));
                }
                b'P' => {
                    return Err(
                        self.malformed("text persistent ids (PERSID) are not used by torch.save")
                    );
                }
                opcode => {
                    return Err(TorchPickleError::UnsupportedOpcode {
                        opcode,
                        offset: self.op_offset,
                    });
                }
            }
        }
    }

    fn pairs(&self, items: &[Id]) -> Result<Vec<(Id, Id)>, TorchPickleError> {
        let (pairs, rest) = items.as_chunks::<2>();
        if !rest.is_empty() {
            return Err(self.malformed("odd number of items for a dict"));
        }
        Ok(pairs.iter().map(|&[k, v]| (k, v)).collect())
    }

    fn append(&mut self, items: Vec<Id>) -> Result<(), TorchPickleError> {
        let target = self.top()?;
        match &mut self.arena[target] {
            Node::List(list) => list.extend(items),
            Node::Object(object) => object.list_items.extend(items),
            other => {
                let kind = other.kind();
                return Err(self.malformed(format!("cannot append to a {kind}")));
            }
        }
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<(Id, Id)>) -> Result<(), TorchPickleError> {
        let target = self.top()?;
        match &mut self.arena[target] {
            Node::Dict(dict) => dict.extend(pairs),
            Node::Object(object) => object.dict_items.extend(pairs),
            other => {
                let kind = other.kind();
                return Err(self.malformed(format!("cannot set items of a {kind}")));
            }
        }
        Ok(())
    }

    fn add_items(&mut self, items: Vec<Id>) -> Result<(), TorchPickleError> {
        let target = self.top()?;
        let list = match self.node(target) {
            Node::Object(object) if object.class == builtin("set") => object.args.first().copied(),
            _ => None,
        };
        match list.map(|id| &mut self.arena[id]) {
            Some(Node::List(list)) => list.extend(items),
            _ => return Err(self.malformed("ADDITEMS target is not a set")),
        }
        Ok(())
    }

    fn persistent_load(&self, pid: Id) -> Result<StorageRef, TorchPickleError> {
        let items = self.items_of(pid, "the persistent id")?;
        let fields: Vec<&Node> = items.iter().map(|&id| self.node(id)).collect();
        let [Node::Str(tag), Node::Global(class), Node::Str(key), Node::Str(location), Node::Int(numel)] =
            fields.as_slice()
        else {
            return Err(self.malformed(
                "persistent id is not ('storage', storage_type, key, location, numel)",
            ));
        };
        if tag != "storage" {
            return Err(self.malformed(format!("unknown persistent id kind {tag:?}")));
        }
        let numel = u64::try_from(*numel)
            .map_err(|_| self.malformed(format!("negative storage size {numel}")))?;
        let (module, name) = class.as_ref();
        let kind = if !module.starts_with("torch") {
            StorageKind::Unsupported
        } else if name == "UntypedStorage" {
            StorageKind::Untyped
        } else {
            DType::from_storage_class(name).map_or(StorageKind::Unsupported, StorageKind::Typed)
        };
        Ok(StorageRef {
            class: class.as_ref().clone(),
            kind,
            key: key.clone(),
            location: location.clone(),
            numel,
        })
    }

    /// Calls `callable(*args)` (REDUCE, NEWOBJ, INST, OBJ): the functions and classes that
    /// rebuild tensors and plain containers are interpreted, anything else becomes an object.
    fn call(
        &mut self,
        callable: Id,
        args: Vec<Id>,
        nesting: usize,
    ) -> Result<Id, TorchPickleError> {
        let Node::Global(global) = self.node(callable) else {
            let kind = self.node(callable).kind();
            return Err(self.malformed(format!("called a {kind}, not a class or function")));
        };
        let (module, name) = global.as_ref().clone();
        let special = match (module.as_str(), name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") => Some(self.rebuild_tensor(&args, false)?),
            ("torch._utils", "_rebuild_tensor_v3") => Some(self.rebuild_tensor(&args, true)?),
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args.first() {
                    Some(&data) if matches!(self.node(data), Node::View(_)) => return Ok(data),
                    _ => None,
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") if nesting < MAX_REBUILD_NESTING => {
                // (func, type, args, state): a tensor (subclass) with Python attributes.
                if let [func, _, inner, ..] = args[..] {
                    let inner = self.items_of(inner, "the rebuild arguments")?;
                    let id = self.call(func, inner, nesting + 1)?;
                    if matches!(self.node(id), Node::View(_)) {
                        return Ok(id);
                    }
                }
                None
            }
            ("collections", "OrderedDict") => match args[..] {
                [] => Some(Node::Dict(Vec::new())),
                [items] => self.dict_from_pairs(items).map(Node::Dict),
                _ => None,
            },
            ("_codecs", "encode") => self.codecs_encode(&args).map(Node::Bytes),
            ("builtins", "bytes" | "bytearray") => match args[..] {
                [] => Some(Node::Bytes(Vec::new())),
                [arg] if matches!(self.node(arg), Node::Bytes(_)) => return Ok(arg),
                _ => None,
            },
            _ => None,
        };
        let node = special
            .unwrap_or_else(|| Node::Object(Box::new(ObjectNode::new((module, name), args))));
        Ok(self.add(node))
    }

    /// The pairs of a list or tuple of 2-tuples, as `OrderedDict(items)` takes them.
    fn dict_from_pairs(&self, items: Id) -> Option<Vec<(Id, Id)>> {
        let (Node::List(items) | Node::Tuple(items)) = self.node(items) else {
            return None;
        };
        items
            .iter()
            .map(|&pair| match self.node(pair) {
                Node::Tuple(kv) | Node::List(kv) => match kv[..] {
                    [k, v] => Some((k, v)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// `_codecs.encode(text, encoding)`: how protocol 2 pickles `bytes`.
    fn codecs_encode(&self, args: &[Id]) -> Option<Vec<u8>> {
        let [text, encoding] = args else {
            return None;
        };
        let text = self.str_of(*text)?;
        match self.str_of(*encoding)?.to_ascii_lowercase().as_str() {
            "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect(),
            "utf-8" | "utf8" => Some(text.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn index_arg(&self, args: &[Id], at: usize, what: &str) -> Result<usize, TorchPickleError> {
        match args.get(at).map(|&id| self.node(id)) {
            Some(Node::Int(v)) => usize::try_from(*v)
                .map_err(|_| self.malformed(format!("tensor {what} {v} is negative"))),
            _ => Err(self.malformed(format!("tensor {what} is not an int"))),
        }
    }

    fn index_list_arg(
        &self,
        args: &[Id],
        at: usize,
        what: &str,
    ) -> Result<Vec<usize>, TorchPickleError> {
        let Some(&id) = args.get(at) else {
            return Err(self.malformed(format!("tensor {what} is missing")));
        };
        let items = self.items_of(id, &format!("the tensor {what}"))?;
        (0..items.len())
            .map(|i| self.index_arg(&items, i, what))
            .collect()
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
    /// or, with `explicit_dtype`, `_rebuild_tensor_v3(..., hooks, dtype[, metadata])`.
    fn rebuild_tensor(
        &mut self,
        args: &[Id],
        explicit_dtype: bool,
    ) -> Result<Node, TorchPickleError> {
        let storage = match args.first().map(|&id| self.node(id)) {
            Some(Node::Storage(storage)) => storage.as_ref().clone(),
            _ => return Err(self.malformed("tensor storage argument is not a storage")),
        };
        let offset = self.index_arg(args, 1, "storage offset")?;
        let shape = self.index_list_arg(args, 2, "size")?;
        let stride = self.index_list_arg(args, 3, "stride")?;
        let dtype = if explicit_dtype {
            match args.get(6).map(|&id| self.node(id)) {
                Some(Node::Global(g)) if g.0 == "torch" => DType::from_torch_name(&g.1)
                    .ok_or_else(|| TorchPickleError::UnsupportedDtype {
                        name: format!("torch.{}", g.1),
                    })?,
                _ => return Err(self.malformed("tensor dtype argument is not a torch dtype")),
            }
        } else {
            match storage.kind {
                StorageKind::Typed(dtype) => dtype,
                StorageKind::Untyped => DType::U8,
                StorageKind::Unsupported => {
                    return Err(TorchPickleError::UnsupportedDtype {
                        name: format!("{}.{}", storage.class.0, storage.class.1),
                    });
                }
            }
        };
        let view = self.plan_view(&storage, dtype, offset, shape, stride)?;
        Ok(Node::View(Box::new(view)))
    }

    fn limit(reason: String) -> TorchPickleError {
        TorchPickleError::LimitExceeded { reason }
    }

    /// Checks that a strided view lies inside its storage, without reading the storage yet.
    fn plan_view(
        &self,
        storage: &StorageRef,
        dtype: DType,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    ) -> Result<TensorView, TorchPickleError> {
        if shape.len() != stride.len() {
            return Err(self.malformed(format!(
                "tensor has {} sizes but {} strides",
                shape.len(),
                stride.len()
            )));
        }
        let elem = dtype.size_in_bytes();
        let too_large =
            |shape: &[usize]| Self::limit(format!("tensor of shape {shape:?} is too large"));
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| too_large(&shape))?;
        let out_len = numel.checked_mul(elem).ok_or_else(|| too_large(&shape))?;
        let storage_len = storage
            .byte_len()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Self::limit(format!("storage {} is too large", storage.key)))?;
        if numel > 0 {
            // Every dimension is >= 1 here, so the last element is at
            // offset + sum((size - 1) * stride).
            let needed = shape
                .iter()
                .zip(&stride)
                .try_fold(offset, |acc, (&d, &s)| {
                    acc.checked_add((d - 1).checked_mul(s)?)
                })
                .and_then(|last| last.checked_add(1)?.checked_mul(elem))
                .ok_or_else(|| too_large(&shape))?;
            if needed > storage_len {
                return Err(self.malformed(format!(
                    "tensor view (offset {offset}, shape {shape:?}, stride {stride:?}) needs \
                     {needed} bytes of storage {}, which has {storage_len}",
                    storage.key
                )));
            }
        }
        Ok(TensorView {
            key: storage.key.clone(),
            dtype,
            offset,
            shape,
            stride,
            storage_len,
            out_len,
        })
    }

    /// Accounts for `bytes` more bytes of tensor data; fails beyond what the storages read
    /// justify.
    fn charge(&mut self, bytes: usize) -> Result<(), TorchPickleError> {
        let allowed = self
            .loader
            .loaded_bytes()
            .saturating_mul(TENSOR_BYTES_PER_STORAGE_BYTE)
            .saturating_add(EXTRA_TENSOR_BYTES);
        let total = self.produced.saturating_add(bytes);
        if total > allowed {
            return Err(Self::limit(format!(
                "tensors would take {total} bytes, more than {allowed} allowed for {} bytes of \
                 storage",
                self.loader.loaded_bytes()
            )));
        }
        self.produced = total;
        Ok(())
    }

    /// Reads the storages of the tensors reachable from `root` and turns the arena into an
    /// owned tree, within the node, depth and byte limits.
    fn finish(mut self, root: Id) -> Result<Value, TorchPickleError> {
        self.stack = Vec::new();
        self.memo = HashMap::new();
        let mut walk = Walk {
            uses: vec![0; self.arena.len()],
            nodes_left: self
                .arena
                .len()
                .saturating_mul(NODES_PER_PICKLE_NODE)
                .saturating_add(EXTRA_NODES),
            tensors: Vec::new(),
            copied_bytes: 0,
        };
        walk.visit(&self.arena, root, 0)?;

        let mut views = Vec::with_capacity(walk.tensors.len());
        for &id in &walk.tensors {
            let view = match self.node(id) {
                Node::View(view) => view.as_ref().clone(),
                // A storage that is a value itself (not through a tensor): a 1-d tensor.
                Node::Storage(storage) => {
                    let (dtype, numel) = match storage.kind {
                        StorageKind::Typed(dtype) => (dtype, storage.numel),
                        StorageKind::Untyped => (DType::U8, storage.numel),
                        StorageKind::Unsupported => continue,
                    };
                    let numel = usize::try_from(numel)
                        .map_err(|_| Self::limit(format!("storage of {numel} elements")))?;
                    self.plan_view(storage, dtype, 0, vec![numel], vec![1])?
                }
                _ => continue,
            };
            let copies = walk.uses.get(id).map_or(0, |&n| n.saturating_sub(1));
            walk.copied_bytes = walk
                .copied_bytes
                .saturating_add(view.out_len.saturating_mul(copies as usize));
            views.push((id, view));
        }

        // One storage at a time: read it once, gather its views, then free it. The last view
        // that covers the whole storage takes its bytes instead of copying them.
        views.sort_by(|a, b| a.1.key.cmp(&b.1.key));
        for group in views.chunk_by(|a, b| a.1.key == b.1.key) {
            let Some((_, first)) = group.first() else {
                continue;
            };
            let key = first.key.as_str();
            if group.iter().any(|(_, v)| v.out_len > 0) {
                let len = group.iter().map(|(_, v)| v.storage_len).max().unwrap_or(0);
                self.loader.ensure(key, len)?;
            }
            for (i, (id, view)) in group.iter().enumerate() {
                self.charge(view.out_len)?;
                let taken = if i + 1 == group.len() && view.is_whole_storage() {
                    self.loader.take(key)
                } else {
                    None
                };
                let data = if view.out_len == 0 {
                    Vec::new()
                } else if let Some(mut bytes) = taken {
                    bytes.truncate(view.out_len);
                    bytes
                } else {
                    let elem = view.dtype.size_in_bytes();
                    self.loader
                        .bytes(key)
                        .and_then(|src| {
                            gather(
                                src,
                                elem,
                                view.offset,
                                &view.shape,
                                &view.stride,
                                view.out_len,
                            )
                        })
                        .ok_or_else(|| self.malformed(format!("storage {key} was not loaded")))?
                };
                self.arena[*id] = Node::Tensor(TensorData {
                    dtype: view.dtype,
                    shape: view.shape.clone(),
                    data,
                });
            }
            self.loader.take(key);
        }
        self.charge(walk.copied_bytes)?;
        Ok(convert(&mut self.arena, &mut walk.uses, root))
    }
}

/// A tensor as pickled: a checked strided view of a storage, gathered after parsing.
#[derive(Debug, Clone)]
struct TensorView {
    key: String,
    dtype: DType,
    /// Offset, sizes and strides in elements.
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
    /// Bytes of the storage, as its persistent id declares.
    storage_len: usize,
    /// Bytes of the gathered tensor.
    out_len: usize,
}

impl TensorView {
    /// Whether the view is its whole storage in order, so the bytes can be moved.
    fn is_whole_storage(&self) -> bool {
        self.offset == 0
            && self.out_len == self.storage_len
            && is_contiguous(&self.shape, &self.stride)
    }
}

/// Counts how often each node occurs in the final tree and enforces the tree limits.
struct Walk {
    uses: Vec<u32>,
    nodes_left: usize,
    /// Tensor views and storages reachable from the root, each once.
    tensors: Vec<Id>,
    /// Bytes of strings, bytes and tensors that occur more than once.
    copied_bytes: usize,
}

impl Walk {
    fn visit(&mut self, arena: &[Node], id: Id, depth: usize) -> Result<(), TorchPickleError> {
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
fn convert(arena: &mut [Node], uses: &mut [u32], id: Id) -> Value {
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

fn convert_all(arena: &mut [Node], uses: &mut [u32], ids: &[Id]) -> Vec<Value> {
    ids.iter().map(|&i| convert(arena, uses, i)).collect()
}

fn convert_pairs(arena: &mut [Node], uses: &mut [u32], pairs: &[(Id, Id)]) -> Vec<(Value, Value)> {
    pairs
        .iter()
        .map(|&(k, v)| (convert(arena, uses, k), convert(arena, uses, v)))
        .collect()
}

/// Copies the elements of the view (`offset`, `shape`, `stride`, in elements of `elem` bytes)
/// of `src` into a contiguous buffer of `out_len` bytes; `None` if the view leaves `src`.
fn gather(
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
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
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

/// A little-endian two's-complement integer (LONG1/LONG4), `None` if it needs over 64 bits.
fn decode_long(bytes: &[u8]) -> Option<i64> {
    let Some(&top) = bytes.last() else {
        return Some(0);
    };
    let negative = top & 0x80 != 0;
    let fill = if negative { 0xff } else { 0 };
    let (low, high) = bytes.split_at(bytes.len().min(8));
    if high.iter().any(|&b| b != fill) {
        return None;
    }
    let mut buf = [fill; 8];
    buf[..low.len()].copy_from_slice(low);
    let value = i64::from_le_bytes(buf);
    (value.is_negative() == negative).then_some(value)
}

/// Decodes the escapes of a Python 2 `repr` of a byte string (STRING opcode), quotes removed.
fn unescape_string(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        rest = tail;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let (&e, tail) = rest.split_first()?;
        rest = tail;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match rest.split_first() {
                        Some((&d @ b'0'..=b'7', tail)) => {
                            value = value * 8 + u32::from(d - b'0');
                            rest = tail;
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value & 0xff).ok()?);
            }
            b'x' => {
                let (hex, tail) = rest.split_at_checked(2)?;
                rest = tail;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes Python's `raw-unicode-escape` (UNICODE opcode): bytes are Latin-1 characters,
/// except `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes.
fn decode_raw_unicode_escape(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut backslashes = 0usize;
    while let Some(&c) = s.get(i) {
        i += 1;
        let digits = match c {
            b'u' if backslashes % 2 == 1 => 4,
            b'U' if backslashes % 2 == 1 => 8,
            _ => {
                backslashes = if c == b'\\' { backslashes + 1 } else { 0 };
                out.push(char::from(c));
                continue;
            }
        };
        out.pop(); // the backslash that starts the escape
        backslashes = 0;
        let hex = std::str::from_utf8(s.get(i..i + digits)?).ok()?;
        i += digits;
        out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
    }
    Some(out)
}

fn builtin(name: &str) -> (String, String) {
    ("builtins".to_owned(), name.to_owned())
}

/// The pickletools name of an opcode byte.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "not a pickle opcode",
    }
}

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
fn locate_state_dict(value: &Value) -> Result<Option<usize>, TorchPickleError> {
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
fn called_globals(value: &Value) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    /// A fixture record of expected.json, with panicking accessors for test code.
    #[derive(Debug, Clone, PartialEq)]
    struct Json(serde_json::Value);

    impl Json {
        fn parse(text: &str) -> Json {
            // Python's json writes non-finite floats as bare words; keep them as strings.
            let text = text
                .replace("-Infinity", "\"-inf\"")
                .replace("Infinity", "\"inf\"")
                .replace("NaN", "\"NaN\"");
            Json(serde_json::from_str(&text).expect("expected.json is valid JSON"))
        }

        fn get(&self, key: &str) -> Json {
            Json(
                self.0
                    .get(key)
                    .unwrap_or_else(|| panic!("no key {key:?} in {:?}", self.0))
                    .clone(),
            )
        }

        fn arr(&self) -> Vec<Json> {
            let a = self.0.as_array().expect("an array");
            a.iter().cloned().map(Json).collect()
        }

        fn str(&self) -> &str {
            self.0.as_str().expect("a string")
        }

        fn i64(&self) -> i64 {
            self.0.as_i64().expect("an integer")
        }

        fn f64(&self) -> f64 {
            match &self.0 {
                serde_json::Value::String(s) => s.parse().expect("a non-finite number"),
                v => v.as_f64().expect("a number"),
            }
        }
    }

    /// Folder of the fixtures written by `make_fixtures.py`, relative to the crate root.
    const FIXTURES: &str = "tests/fixtures/torch";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(FIXTURES)
            .join(name)
    }

    fn expected() -> Json {
        Json::parse(&std::fs::read_to_string(fixture("expected.json")).unwrap())
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Compares a tensor with a record written by make_fixtures.py, element by element.
    fn check_tensor(t: &TensorData, exp: &Json, what: &str) {
        assert_eq!(format!("{:?}", t.dtype), exp.get("dtype").str(), "{what}");
        let shape: Vec<usize> = exp
            .get("shape")
            .arr()
            .iter()
            .map(|d| d.i64() as usize)
            .collect();
        assert_eq!(t.shape, shape, "{what}");
        assert_eq!(t.numel(), shape.iter().product::<usize>(), "{what}");
        assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes(), "{what}");
        assert_eq!(hex(&t.data), exp.get("hex").str(), "{what}");
        let want: Vec<u32> = exp
            .get("f32")
            .arr()
            .iter()
            .map(|v| (v.f64() as f32).to_bits())
            .collect();
        let got: Vec<u32> = t.to_f32().iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "{what}");
    }

    fn check_state_dict(sd: &[(String, TensorData)], exp: &Json) {
        let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<String> = exp
            .arr()
            .iter()
            .map(|t| t.get("key").str().to_string())
            .collect();
        assert_eq!(keys, want);
        for ((key, tensor), exp) in sd.iter().zip(exp.arr()) {
            check_tensor(tensor, &exp, key);
        }
    }

    /// A file under the system temp folder, deleted on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir()
                .join(format!("torchpickle-test-{}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn zip_bytes(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(method);
        for (name, data) in entries {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// Reads a synthetic checkpoint through a temp file.
    fn read_zip(name: &str, entries: &[(&str, &[u8])]) -> Result<Value, TorchPickleError> {
        let file = TempFile::new(name, &zip_bytes(entries, CompressionMethod::Stored));
        read(&file.0)
    }

    /// All entries of a fixture archive.
    fn entries_of(name: &str) -> Vec<(String, Vec<u8>)> {
        let mut archive = ZipArchive::new(File::open(fixture(name)).unwrap()).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut f = archive.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().to_owned(), data)
            })
            .collect()
    }

    fn unpickle_bare(data: &[u8]) -> Result<Value, TorchPickleError> {
        struct NoStorages;
        impl StorageLoader for NoStorages {
            fn ensure(&mut self, key: &str, _: usize) -> Result<(), TorchPickleError> {
                Err(TorchPickleError::MissingStorage { entry: key.into() })
            }
            fn bytes(&self, _: &str) -> Option<&[u8]> {
                None
            }
            fn take(&mut self, _: &str) -> Option<Vec<u8>> {
                None
            }
            fn loaded_bytes(&self) -> usize {
                0
            }
        }
        unpickle(data, &mut NoStorages)
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn object(module: &str, name: &str, args: Vec<Value>) -> Value {
        Value::Object {
            class: (module.into(), name.into()),
            args,
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }

    fn with_state(mut value: Value, new_state: Value) -> Value {
        if let Value::Object { state, .. } = &mut value {
            *state = Some(Box::new(new_state));
        }
        value
    }

    fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> Value {
        Value::Tensor(TensorData {
            dtype: DType::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        })
    }

    // Pickle building blocks (protocol 2).
    fn p_str(text: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((text.len() as u32).to_le_bytes());
        v.extend(text.as_bytes());
        v
    }

    fn p_int(i: i64) -> Vec<u8> {
        match i32::try_from(i) {
            Ok(small) => [&b"J"[..], &small.to_le_bytes()].concat(),
            Err(_) => [&b"\x8a\x08"[..], &i.to_le_bytes()].concat(),
        }
    }

    fn p_global(module: &str, name: &str) -> Vec<u8> {
        format!("c{module}\n{name}\n").into_bytes()
    }

    /// `(('storage', torch.<class>, key, 'cpu', numel),)` loaded as a persistent id.
    fn storage_expr(class: &str, key: &str, numel: i64) -> Vec<u8> {
        let mut p = b"(".to_vec();
        p.extend(p_str("storage"));
        p.extend(p_global("torch", class));
        p.extend(p_str(key));
        p.extend(p_str("cpu"));
        p.extend(p_int(numel));
        p.extend(b"tQ");
        p
    }

    /// `_rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())`.
    fn tensor_expr(
        class: &str,
        key: &str,
        numel: i64,
        offset: i64,
        shape: &[i64],
        stride: &[i64],
    ) -> Vec<u8> {
        let mut p = p_global("torch._utils", "_rebuild_tensor_v2");
        p.push(b'(');
        p.extend(storage_expr(class, key, numel));
        p.extend(p_int(offset));
        p.push(b'(');
        shape.iter().for_each(|&d| p.extend(p_int(d)));
        p.extend(b"t(");
        stride.iter().for_each(|&d| p.extend(p_int(d)));
        p.extend(b"t\x89");
        p.extend(p_global("collections", "OrderedDict"));
        p.extend(b")RtR");
        p
    }

    /// A protocol-2 pickle of a dict with string keys and pickled values.
    fn dict_pickle(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut p = b"\x80\x02}(".to_vec();
        for (key, value) in entries {
            p.extend(p_str(key));
            p.extend(value);
        }
        p.extend(b"u.");
        p
    }

    /// `{'w': tensor}`.
    fn tensor_pickle(
        class: &str,
        key: &str,
        numel: i64,
        offset: i64,
        shape: &[i64],
        stride: &[i64],
    ) -> Vec<u8> {
        dict_pickle(&[("w", tensor_expr(class, key, numel, offset, shape, stride))])
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    // ---- fixtures written by real PyTorch ----

    #[test]
    fn plain_state_dict() {
        let exp = expected();
        let value = read(&fixture("plain_state_dict.pt")).unwrap();
        let sd = state_dict(&value).unwrap();
        check_state_dict(&sd, &exp.get("plain_state_dict.pt").get("tensors"));
        let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["0.weight", "0.bias", "2.weight", "2.bias"]);
        assert_eq!(sd[0].1.shape, [2, 1, 3, 3, 3]);
        assert_eq!(into_state_dict(value).unwrap(), sd);
    }

    #[test]
    fn dacapo_checkpoint() {
        let exp = expected();
        let exp = exp.get("dacapo_checkpoint.pt");
        let value = read(&fixture("dacapo_checkpoint.pt")).unwrap();
        let sd = state_dict(&value).unwrap();
        check_state_dict(&sd, &exp.get("model"));
        assert_eq!(value.get("iteration"), Some(&Value::Int(7)));

        let optimizer = value.get("optimizer").unwrap();
        let group = &optimizer.get("param_groups").unwrap().as_seq().unwrap()[0];
        assert_eq!(
            group.get("lr").and_then(Value::as_float),
            Some(exp.get("lr").f64())
        );
        let betas: Vec<f64> = exp.get("betas").arr().iter().map(Json::f64).collect();
        assert_eq!(
            group.get("betas"),
            Some(&Value::Tuple(betas.into_iter().map(Value::Float).collect()))
        );
        let params: Vec<Value> = exp
            .get("params")
            .arr()
            .iter()
            .map(|p| Value::Int(p.i64()))
            .collect();
        assert_eq!(group.get("params"), Some(&Value::List(params)));
        assert_eq!(group.get("amsgrad"), Some(&Value::Bool(false)));

        let state = optimizer.get("state").unwrap().as_dict().unwrap();
        assert_eq!(state.len(), exp.get("state").arr().len());
        for ((param, entry), exp) in state.iter().zip(exp.get("state").arr()) {
            assert_eq!(param, &Value::Int(exp.get("param").i64()));
            for field in ["step", "exp_avg", "exp_avg_sq"] {
                let tensor = entry.get(field).and_then(Value::as_tensor).unwrap();
                check_tensor(tensor, &exp.get(field), field);
            }
        }
        assert_eq!(into_state_dict(value).unwrap(), sd);
    }

    #[test]
    fn dtypes_views_and_shared_storage() {
        let exp = expected();
        let exp = exp.get("dtypes.pt");
        assert!(exp.get("sliced_storage_offset").i64() > 0);
        let value = read(&fixture("dtypes.pt")).unwrap();
        let sd = state_dict(&value).unwrap();
        check_state_dict(&sd, &exp.get("tensors"));

        let get = |key: &str| value.get(key).and_then(Value::as_tensor).unwrap();
        assert_eq!(get("scalar").shape, Vec::<usize>::new());
        assert_eq!(get("scalar").to_f32(), [3.25]);
        assert_eq!(get("empty").shape, [0, 3]);
        assert!(get("empty").data.is_empty());
        assert_eq!(get("transposed").shape, [6, 4]);
        assert_eq!(get("sliced").shape, [2, 3]);
        assert_eq!(get("expanded").to_f32(), [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        assert_eq!(get("shared_b").shape, [2, 3]);
        assert_eq!(
            get("shared_b").data,
            (4..10i32).flat_map(i32::to_le_bytes).collect::<Vec<_>>()
        );
        assert_eq!(get("i64").dtype, DType::I64);
        assert_eq!(get("bool").to_f32(), [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn objects_that_are_not_tensors() {
        let value = read(&fixture("misc_objects.pt")).unwrap();
        let get = |key: &str| value.get(key).unwrap_or_else(|| panic!("{key}"));

        let namespace = with_state(
            object("argparse", "Namespace", vec![]),
            Value::Dict(vec![(s("lr"), Value::Float(0.5)), (s("name"), s("unet"))]),
        );
        assert_eq!(get("namespace"), &namespace);

        let Value::Object { class, args, .. } = get("np_scalar") else {
            panic!("numpy scalar: {:?}", get("np_scalar"));
        };
        assert!(class.0.starts_with("numpy") && class.0.ends_with("multiarray"));
        assert_eq!(class.1, "scalar");
        assert_eq!(args[1], Value::Bytes(1.5f32.to_le_bytes().to_vec()));
        let Value::Object {
            class, args, state, ..
        } = &args[0]
        else {
            panic!("numpy dtype");
        };
        assert_eq!(class, &("numpy".to_owned(), "dtype".to_owned()));
        assert_eq!(args[0], s("f4"));
        assert!(state.is_some());

        let Value::Object {
            class,
            args,
            dict_items,
            ..
        } = get("defaultdict")
        else {
            panic!("defaultdict");
        };
        assert_eq!(class, &("collections".to_owned(), "defaultdict".to_owned()));
        assert_eq!(
            args,
            &[Value::Global {
                module: "builtins".into(),
                name: "list".into()
            }]
        );
        assert_eq!(dict_items, &[(s("a"), Value::List(vec![Value::Int(1)]))]);

        let size = object(
            "torch",
            "Size",
            vec![Value::Tuple(vec![Value::Int(2), Value::Int(3)])],
        );
        assert_eq!(get("size"), &size);
        let set = object(
            "builtins",
            "set",
            vec![Value::List(vec![Value::Int(1), Value::Int(2)])],
        );
        assert_eq!(get("set"), &set);
        let frozenset = object(
            "builtins",
            "frozenset",
            vec![Value::List(vec![Value::Int(3)])],
        );
        assert_eq!(get("frozenset"), &frozenset);
        assert_eq!(get("bytes"), &Value::Bytes(vec![0, 0xff, b'a', b'b']));
        assert_eq!(get("empty_bytes"), &Value::Bytes(vec![]));
        assert_eq!(get("param_with_attr"), &f32_tensor(vec![2], &[1.0, 2.0]));
        assert_eq!(get("tensor_with_attr"), &f32_tensor(vec![2], &[4.0, 5.0]));
        let nested = Value::List(vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Tuple(vec![Value::Int(1), Value::Float(2.5), s("s")]),
            Value::Dict(vec![(
                s("k"),
                Value::List(vec![Value::Int(1 << 40), Value::Int(-(1 << 40))]),
            )]),
        ]);
        assert_eq!(get("nested"), &nested);
        assert_eq!(get("unicode"), &s("h\u{e9}llo \u{2713}"));
        let dtype = Value::Global {
            module: "torch".into(),
            name: "float32".into(),
        };
        assert_eq!(get("dtype"), &dtype);
        // One list pickled once and referenced twice, filled after it was memoized.
        let same = Value::List(vec![Value::Int(1), s("two")]);
        assert_eq!(get("same_a"), &same);
        assert_eq!(get("same_b"), &same);

        let err = state_dict(&value).unwrap_err();
        let TorchPickleError::NoStateDict { top_kind, keys } = &err else {
            panic!("{err}");
        };
        assert_eq!(*top_kind, "dict");
        assert_eq!(keys[0], "namespace");
        assert!(err.to_string().contains("np_scalar"));
    }

    #[test]
    fn other_pickle_protocols_give_the_same_values() {
        let p2 = read(&fixture("misc_objects.pt")).unwrap();
        // Protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE, SHORT_BINBYTES,
        // EMPTY_SET/ADDITEMS, FROZENSET.
        assert_eq!(read(&fixture("misc_objects_p4.pt")).unwrap(), p2);
        // Protocol 1: INT for booleans, LONG, MARK ... TUPLE; argparse.Namespace goes through
        // copyreg._reconstructor instead of NEWOBJ.
        let p1 = read(&fixture("misc_objects_p1.pt")).unwrap();
        let (Value::Dict(p1), Value::Dict(p2)) = (p1, p2) else {
            panic!("not dicts");
        };
        assert_eq!(p1.len(), p2.len());
        for ((k1, v1), (k2, v2)) in p1.iter().zip(&p2) {
            assert_eq!(k1, k2);
            if k1 == &s("namespace") {
                let Value::Object { class, .. } = v1 else {
                    panic!("namespace");
                };
                assert_eq!(class, &("copyreg".to_owned(), "_reconstructor".to_owned()));
            } else {
                assert_eq!(v1, v2, "{k1:?}");
            }
        }
    }

    #[test]
    fn new_dtypes_use_untyped_storage_and_are_reported() {
        let err = read(&fixture("uint16.pt")).unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::UnsupportedDtype { name } if name == "torch.uint16"),
            "{err}"
        );
    }

    #[test]
    fn legacy_format_is_reported() {
        let err = read(&fixture("legacy.pt")).unwrap_err();
        assert!(
            matches!(err, TorchPickleError::LegacyFormat { .. }),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains("_use_new_zipfile_serialization=True"));
    }

    #[test]
    fn truncated_zip_is_reported() {
        let bytes = std::fs::read(fixture("plain_state_dict.pt")).unwrap();
        let file = TempFile::new("half.pt", &bytes[..bytes.len() / 2]);
        let err = read(&file.0).unwrap_err();
        assert!(matches!(err, TorchPickleError::NotZip { .. }), "{err}");
        let file = TempFile::new("empty.pt", b"");
        assert!(matches!(
            read(&file.0),
            Err(TorchPickleError::NotZip { .. })
        ));
        let missing = std::env::temp_dir().join("torchpickle-test-does-not-exist.pt");
        assert!(matches!(read(&missing), Err(TorchPickleError::Io { .. })));
    }

    #[test]
    fn folder_name_and_compression_do_not_matter() {
        let original = read(&fixture("dtypes.pt")).unwrap();
        let entries: Vec<(String, Vec<u8>)> = entries_of("dtypes.pt")
            .into_iter()
            .map(|(name, data)| (name.replacen("dtypes/", "archive/", 1), data))
            .collect();
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let file = TempFile::new("renamed.bin", &zip_bytes(&refs, method));
            assert_eq!(read(&file.0).unwrap(), original, "{method:?}");
        }
    }

    #[test]
    fn crc32_is_checked_unless_torch_left_it_out() {
        let exp = expected();
        let value = read(&fixture("no_crc32.pt")).unwrap();
        check_state_dict(
            &state_dict(&value).unwrap(),
            &exp.get("no_crc32.pt").get("tensors"),
        );

        let pickle = tensor_pickle("FloatStorage", "0", 4, 0, &[4], &[1]);
        let data = floats(&[1.0, 2.0, 3.0, 4.0]);
        let mut zip = zip_bytes(
            &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
            CompressionMethod::Stored,
        );
        let at = zip.windows(data.len()).position(|w| w == data).unwrap();
        zip[at + 5] ^= 1;
        let file = TempFile::new("badcrc.pt", &zip);
        let err = read(&file.0).unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::ZipEntry { entry, .. } if entry == "archive/data/0"),
            "{err}"
        );
    }

    #[test]
    fn unknown_opcode_is_reported() {
        let err = read_zip(
            "opcode.pt",
            &[
                ("archive/data.pkl", b"\x80\x02N\xff."),
                ("archive/byteorder", b"little"),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TorchPickleError::UnsupportedOpcode {
                    opcode: 0xff,
                    offset: 3
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("0xff"));
        // EXT1 is a real opcode, but the extension registry is not supported.
        let err = unpickle_bare(b"\x80\x02\x82\x01.").unwrap_err();
        assert!(err.to_string().contains("EXT1"), "{err}");
    }

    #[test]
    fn storage_errors_are_reported() {
        let pickle = tensor_pickle("FloatStorage", "0", 4, 0, &[4], &[1]);
        let err = read_zip("nostorage.pt", &[("archive/data.pkl", &pickle)]).unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::MissingStorage { entry } if entry == "archive/data/0"),
            "{err}"
        );

        let short = floats(&[1.0, 2.0]);
        let err = read_zip(
            "short.pt",
            &[("archive/data.pkl", &pickle), ("archive/data/0", &short)],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TorchPickleError::TruncatedStorage {
                    needed: 16,
                    available: 8,
                    ..
                }
            ),
            "{err}"
        );

        // A storage that claims 2^40 floats but holds 16 bytes: no huge allocation.
        let huge = tensor_pickle("FloatStorage", "0", 1 << 40, 0, &[4], &[1]);
        let data = floats(&[1.0, 2.0, 3.0, 4.0]);
        let err = read_zip(
            "huge.pt",
            &[("archive/data.pkl", &huge), ("archive/data/0", &data)],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TorchPickleError::TruncatedStorage { available: 16, .. }
            ),
            "{err}"
        );

        let ok = read_zip(
            "ok.pt",
            &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
        )
        .unwrap();
        assert_eq!(
            ok.get("w"),
            Some(&f32_tensor(vec![4], &[1.0, 2.0, 3.0, 4.0]))
        );

        let complex = tensor_pickle("ComplexFloatStorage", "0", 2, 0, &[2], &[1]);
        let err = read_zip(
            "complex.pt",
            &[("archive/data.pkl", &complex), ("archive/data/0", &data)],
        )
        .unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::UnsupportedDtype { name } if name == "torch.ComplexFloatStorage"),
            "{err}"
        );
    }

    #[test]
    fn each_storage_is_read_once() {
        let whole = tensor_expr("FloatStorage", "0", 4, 0, &[4], &[1]);
        let pickle = dict_pickle(&[
            ("a", [&whole[..], b"q\x00"].concat()),
            ("alias", b"h\x00".to_vec()),
            ("tied", whole),
            ("tail", tensor_expr("FloatStorage", "0", 4, 2, &[2], &[1])),
            ("raw", storage_expr("FloatStorage", "0", 4)),
            ("quantized", storage_expr("QInt8Storage", "1", 2)),
        ]);
        let data = floats(&[1.0, 2.0, 3.0, 4.0]);
        let zip = zip_bytes(
            &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
            CompressionMethod::Stored,
        );
        let mut storages = ZipStorages {
            archive: ZipArchive::new(Cursor::new(zip)).unwrap(),
            folder: "archive".into(),
            file_len: 1 << 20,
            cache: HashMap::new(),
            loaded: 0,
        };
        let value = unpickle(&pickle, &mut storages).unwrap();
        assert_eq!(storages.loaded, 16);
        assert!(storages.cache.is_empty());
        let all = f32_tensor(vec![4], &[1.0, 2.0, 3.0, 4.0]);
        for key in ["a", "alias", "tied", "raw"] {
            assert_eq!(value.get(key), Some(&all), "{key}");
        }
        assert_eq!(value.get("tail"), Some(&f32_tensor(vec![2], &[3.0, 4.0])));
        let quantized = object(
            "torch",
            "QInt8Storage",
            vec![s("1"), s("cpu"), Value::Int(2)],
        );
        assert_eq!(value.get("quantized"), Some(&quantized));
    }

    #[test]
    fn hostile_views_are_rejected() {
        let data = floats(&[1.0, 2.0, 3.0, 4.0]);
        let cases: [(&[i64], &[i64], i64); 4] = [
            (&[5], &[1], 0),                   // beyond the storage
            (&[2], &[1], 3),                   // offset pushes it beyond
            (&[2, 2], &[1], 0),                // sizes and strides disagree
            (&[1 << 30, 1 << 30], &[0, 0], 0), // 2^60 elements from one float
        ];
        for (shape, stride, offset) in cases {
            let pickle = tensor_pickle("FloatStorage", "0", 4, offset, shape, stride);
            let err = read_zip(
                "view.pt",
                &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
            )
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    TorchPickleError::Malformed { .. } | TorchPickleError::LimitExceeded { .. }
                ),
                "{shape:?} {stride:?}: {err}"
            );
        }
        // A large but legal expansion still works.
        let pickle = tensor_pickle("FloatStorage", "0", 4, 1, &[3, 2], &[0, 2]);
        let value = read_zip(
            "expand.pt",
            &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
        )
        .unwrap();
        assert_eq!(
            value.get("w"),
            Some(&f32_tensor(vec![3, 2], &[2.0, 4.0, 2.0, 4.0, 2.0, 4.0]))
        );
    }

    #[test]
    fn archive_layout_errors_are_reported() {
        let err = read_zip("nopkl.pt", &[("archive/data/0", b"x")]).unwrap_err();
        assert!(
            matches!(err, TorchPickleError::MissingDataPkl { .. }),
            "{err}"
        );

        let err = read_zip(
            "two.pt",
            &[("a/data.pkl", b"\x80\x02N."), ("b/data.pkl", b"\x80\x02N.")],
        )
        .unwrap_err();
        assert!(
            matches!(err, TorchPickleError::AmbiguousArchive { .. }),
            "{err}"
        );

        let err = read_zip(
            "big.pt",
            &[
                ("archive/data.pkl", b"\x80\x02N."),
                ("archive/byteorder", b"big"),
            ],
        )
        .unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::BigEndian { found } if found == "big"),
            "{err}"
        );

        // No byteorder entry (older writers): little-endian is assumed.
        let value = read_zip("noorder.pt", &[("my model/data.pkl", b"\x80\x02K\x05.")]).unwrap();
        assert_eq!(value, Value::Int(5));
    }

    #[test]
    fn a_checkpoint_calling_a_foreign_global_is_refused_with_the_global_named() {
        // `posix.system("touch pwned")` at the top level, as a hostile checkpoint would do.
        let mut call = b"\x80\x02".to_vec();
        call.extend(p_global("posix", "system"));
        call.extend(b"(");
        call.extend(p_str("touch pwned"));
        call.extend(b"tR.");
        let value = read_zip("hostile.pt", &[("archive/data.pkl", &call)]).unwrap();
        let err = state_dict(&value).unwrap_err();
        let TorchPickleError::RefusedGlobals { globals } = &err else {
            panic!("{err}");
        };
        assert_eq!(globals, &["posix.system".to_owned()]);
        assert!(err
            .to_string()
            .contains("calls posix.system, which Segno does not run"));
        assert!(into_state_dict(value).is_err());

        // The same call hidden under the key a state dict is looked for, next to a tensor.
        let mut nested = p_global("builtins", "eval");
        nested.extend(b"(");
        nested.extend(p_str("__import__('os').system('id')"));
        nested.extend(b"tR");
        let pickle = dict_pickle(&[
            ("model", nested),
            ("w", tensor_expr("FloatStorage", "0", 1, 0, &[1], &[1])),
        ]);
        let value = read_zip(
            "hidden.pt",
            &[
                ("archive/data.pkl", &pickle),
                ("archive/data/0", &1.0f32.to_le_bytes()),
            ],
        )
        .unwrap();
        let err = state_dict(&value).unwrap_err();
        assert!(
            matches!(&err, TorchPickleError::RefusedGlobals { globals } if globals == &["builtins.eval".to_owned()]),
            "{err}"
        );
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn state_dict_lookup() {
        let t = f32_tensor(vec![1], &[1.0]);
        let sd = Value::Dict(vec![(s("w"), t.clone())]);
        let nested = Value::Dict(vec![
            (s("epoch"), Value::Int(1)),
            (s("state_dict"), sd.clone()),
        ]);
        assert_eq!(state_dict(&nested).unwrap()[0].0, "w");
        assert_eq!(into_state_dict(nested).unwrap()[0].1.to_f32(), [1.0]);
        let err = state_dict(&Value::List(vec![])).unwrap_err();
        assert!(matches!(
            err,
            TorchPickleError::NoStateDict {
                top_kind: "list",
                ..
            }
        ));
        let mixed = Value::Dict(vec![(s("w"), t), (s("n"), Value::Int(1))]);
        let err = state_dict(&mixed).unwrap_err();
        let TorchPickleError::NoStateDict { keys, .. } = err else {
            panic!("{err}");
        };
        assert_eq!(keys, ["w", "n"]);
    }

    // ---- opcodes torch.save does not emit ----

    #[test]
    fn protocol_0_text_opcodes() {
        // pickle.dumps({'a': [1, -2.5, 'x\u20ac\n\\u', None, True, False],
        //   'b': (7, 2**40, -3), 'c': b'\x00ab', 'd': OrderedDict([('k', 1)]), 'e': {4},
        //   'f': ()}, protocol=0)
        let pickle = b"(dp0\nVa\np1\n(lp2\nI1\naF-2.5\naVx\\u20ac\\u000a\\u005cu\np3\naNaI01\naI00\nasVb\np4\n(I7\nL1099511627776L\nI-3\ntp5\nsVc\np6\nc_codecs\nencode\np7\n(V\\u0000ab\np8\nVlatin1\np9\ntp10\nRp11\nsVd\np12\nccollections\nOrderedDict\np13\n(tRp14\nVk\np15\nI1\nssVe\np16\nc__builtin__\nset\np17\n((lp18\nI4\natp19\nRp20\nsVf\np21\n(ts.";
        let value = unpickle_bare(pickle).unwrap();
        let want = Value::Dict(vec![
            (
                s("a"),
                Value::List(vec![
                    Value::Int(1),
                    Value::Float(-2.5),
                    s("x\u{20ac}\n\\u"),
                    Value::None,
                    Value::Bool(true),
                    Value::Bool(false),
                ]),
            ),
            (
                s("b"),
                Value::Tuple(vec![Value::Int(7), Value::Int(1 << 40), Value::Int(-3)]),
            ),
            (s("c"), Value::Bytes(b"\x00ab".to_vec())),
            (s("d"), Value::Dict(vec![(s("k"), Value::Int(1))])),
            (
                s("e"),
                object("builtins", "set", vec![Value::List(vec![Value::Int(4)])]),
            ),
            (s("f"), Value::Tuple(vec![])),
        ]);
        assert_eq!(value, want);
    }

    #[test]
    fn rarely_used_opcodes() {
        let pickle = [
            &b"\x80\x04("[..],
            b"S'a\\'b\\x41\\n\\101'\n",       // STRING with escapes
            b"U\x02hi",                       // SHORT_BINSTRING
            b"T\x03\x00\x00\x00\xff\xfe\x00", // BINSTRING, not UTF-8
            b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00ok", // BINUNICODE8
            b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x07", // BINBYTES8
            b"\x96\x01\x00\x00\x00\x00\x00\x00\x00\x08\x98", // BYTEARRAY8, READONLY_BUFFER
            b"B\x02\x00\x00\x00zz",           // BINBYTES
            b"\x8b\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00", // LONG4 1
            b"\x8a\x00",                      // LONG1 0
            b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\xff", // LONG1 -1
            b"\x8a\x02\x00\x80",              // LONG1 -32768
            b"M\xff\xff",                     // BININT2
            b"J\xff\xff\xff\xff",             // BININT -1
            b"F1e3\n",                        // FLOAT
            b"G\x3f\xe0\x00\x00\x00\x00\x00\x00", // BINFLOAT 0.5
            b"N20",                           // NONE DUP POP
            b"(K\x011",                       // MARK BININT1 POP_MARK
            b"]\x94(K\x01K\x02e",             // EMPTY_LIST MEMOIZE MARK .. APPENDS
            b"h\x00",                         // BINGET
            b"(K\x05l",                       // LIST
            b"(K\x01K\x02d",                  // DICT
            b"\x8f(K\x03\x90",                // EMPTY_SET ADDITEMS
            b"(K\x04\x91",                    // FROZENSET
            b"\x8c\x05torch\x8c\x07float32\x93", // STACK_GLOBAL
            b"g0\np7\nj\x07\x00\x00\x00r\x08\x00\x00\x000", // GET PUT LONG_BINGET LONG_BINPUT POP
            b"c__builtin__\nbytearray\n(B\x02\x00\x00\x00hitR", // bytearray(b'hi')
            b"cargparse\nNamespace\n)}(Vx\nK\x01u\x92", // NEWOBJ_EX with kwargs
            b"(K\x01imod\nname\n",            // INST
            b"(cmod\nC\nK\x02o",              // OBJ
            b"K\x01K\x02K\x03)\x85\x86\x87",  // TUPLE1/2/3
            b"t.",
        ]
        .concat();
        let value = unpickle_bare(&pickle).unwrap();
        let list12 = Value::List(vec![Value::Int(1), Value::Int(2)]);
        let want = Value::Tuple(vec![
            s("a'bA\nA"),
            s("hi"),
            Value::Bytes(vec![0xff, 0xfe, 0x00]),
            s("ok"),
            Value::Bytes(vec![7]),
            Value::Bytes(vec![8]),
            Value::Bytes(b"zz".to_vec()),
            Value::Int(1),
            Value::Int(0),
            Value::Int(-1),
            Value::Int(-32768),
            Value::Int(65535),
            Value::Int(-1),
            Value::Float(1000.0),
            Value::Float(0.5),
            Value::None,
            list12.clone(),
            list12.clone(),
            Value::List(vec![Value::Int(5)]),
            Value::Dict(vec![(Value::Int(1), Value::Int(2))]),
            object("builtins", "set", vec![Value::List(vec![Value::Int(3)])]),
            object(
                "builtins",
                "frozenset",
                vec![Value::List(vec![Value::Int(4)])],
            ),
            Value::Global {
                module: "torch".into(),
                name: "float32".into(),
            },
            list12,
            Value::Bytes(b"hi".to_vec()),
            object(
                "argparse",
                "Namespace",
                vec![Value::Dict(vec![(s("x"), Value::Int(1))])],
            ),
            object("mod", "name", vec![Value::Int(1)]),
            object("mod", "C", vec![Value::Int(2)]),
            Value::Tuple(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Tuple(vec![
                    Value::Int(3),
                    Value::Tuple(vec![Value::Tuple(vec![])]),
                ]),
            ]),
        ]);
        assert_eq!(value, want);
    }

    #[test]
    fn malformed_pickles_are_errors() {
        let underflow = unpickle_bare(b"\x80\x02a.").unwrap_err();
        assert!(
            matches!(
                underflow,
                TorchPickleError::StackUnderflow {
                    opcode: "APPEND",
                    offset: 2
                }
            ),
            "{underflow}"
        );
        // A value below the MARK cannot be popped.
        assert!(matches!(
            unpickle_bare(b"\x80\x02N(\x85."),
            Err(TorchPickleError::StackUnderflow { .. })
        ));
        let too_large = b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.";
        assert!(matches!(
            unpickle_bare(too_large),
            Err(TorchPickleError::IntegerTooLarge { offset: 2 })
        ));
        assert!(matches!(
            unpickle_bare(b"L123456789012345678901234567890L\n."),
            Err(TorchPickleError::IntegerTooLarge { offset: 0 })
        ));
        for bad in [
            &b"\x80\x02h\x05."[..],                // unknown memo key
            b"\x80\x02N",                          // no STOP
            b"\x80\x02X\xff\xff\xff\x7f",          // string longer than the pickle
            b"\x80\x02NK\x01K\x02s.",              // SETITEM on None
            b"\x80\x02e.",                         // APPENDS without MARK
            b"\x80\x02(K\x01d.",                   // DICT with an odd count
            b"\x80\x02N)R.",                       // calling None
            b"\x80\x02I12x\n.",                    // bad INT literal
            b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", // BINUNICODE not UTF-8
            b"\x80\x06N.",                         // protocol 6
            b"\x80\x02P0\n.",                      // text persistent id
        ] {
            let err = unpickle_bare(bad).unwrap_err();
            assert!(
                matches!(err, TorchPickleError::Malformed { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn hostile_structures_hit_limits_not_the_stack() {
        // A list that contains itself.
        let cycle = unpickle_bare(b"\x80\x02]q\x00h\x00a.");
        assert!(matches!(cycle, Err(TorchPickleError::LimitExceeded { .. })));
        // 100000 nested tuples.
        let deep = [&b"\x80\x02)"[..], &[0x85; 100_000], b"."].concat();
        assert!(matches!(
            unpickle_bare(&deep),
            Err(TorchPickleError::LimitExceeded { .. })
        ));
        // 2^60 references built by doubling.
        let laughs = [&b"\x80\x02N"[..], &b"2\x86".repeat(60), b"."].concat();
        assert!(matches!(
            unpickle_bare(&laughs),
            Err(TorchPickleError::LimitExceeded { .. })
        ));
        // Moderate sharing is expanded into copies.
        let shared = [&b"\x80\x02N"[..], &b"2\x86".repeat(4), b"."].concat();
        let Value::Tuple(items) = unpickle_bare(&shared).unwrap() else {
            panic!("tuple");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], items[1]);
    }

    #[test]
    fn damaged_pickles_never_panic() {
        // TORCHPICKLE_FUZZ=<n> runs n damaged copies of each fixture instead of 1000.
        let iterations: usize = std::env::var("TORCHPICKLE_FUZZ")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut damage = |bytes: &mut [u8]| {
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
        };
        for name in ["dacapo_checkpoint.pt", "dtypes.pt", "misc_objects_p4.pt"] {
            let file = std::fs::read(fixture(name)).unwrap();
            let folder = name.trim_end_matches(".pt");
            let mut storages = ZipStorages {
                archive: ZipArchive::new(Cursor::new(file.clone())).unwrap(),
                folder: folder.into(),
                file_len: file.len() as u64,
                cache: HashMap::new(),
                loaded: 0,
            };
            let entries = entries_of(name);
            let pickle = &entries
                .iter()
                .find(|(entry, _)| entry.ends_with("/data.pkl"))
                .unwrap()
                .1;
            assert!(unpickle(pickle, &mut storages).is_ok());
            for len in 0..pickle.len() {
                assert!(unpickle(&pickle[..len], &mut storages).is_err());
            }
            for _ in 0..iterations {
                let mut damaged = pickle.clone();
                damage(&mut damaged);
                let _ = unpickle(&damaged, &mut storages);
            }
            // Damage anywhere in the archive, storages and zip structures included.
            for _ in 0..iterations / 4 {
                let mut damaged = file.clone();
                damage(&mut damaged);
                let len = damaged.len() as u64;
                if let Ok(archive) = ZipArchive::new(Cursor::new(damaged)) {
                    let _ = read_archive(archive, len);
                }
            }
        }
    }

    #[test]
    fn conversions_to_f32() {
        let t = |dtype, data: Vec<u8>| TensorData {
            dtype,
            shape: vec![data.len() / DType::size_in_bytes(dtype)],
            data,
        };
        let f16: Vec<u8> = [1.5f32, -0.25]
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(t(DType::F16, f16).to_f32(), [1.5, -0.25]);
        let bf16: Vec<u8> = [3.0f32, -1.0]
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(t(DType::BF16, bf16).to_f32(), [3.0, -1.0]);
        assert_eq!(t(DType::F64, 0.5f64.to_le_bytes().to_vec()).to_f32(), [0.5]);
        assert_eq!(t(DType::U8, vec![0, 255]).to_f32(), [0.0, 255.0]);
        assert_eq!(t(DType::I8, vec![0x80]).to_f32(), [-128.0]);
        assert_eq!(
            t(DType::I16, (-300i16).to_le_bytes().to_vec()).to_f32(),
            [-300.0]
        );
        assert_eq!(
            t(DType::I32, (-7i32).to_le_bytes().to_vec()).to_f32(),
            [-7.0]
        );
        assert_eq!(
            t(DType::I64, (1i64 << 40).to_le_bytes().to_vec()).to_f32(),
            [1099511627776.0]
        );
        assert_eq!(t(DType::Bool, vec![0, 1, 2]).to_f32(), [0.0, 1.0, 1.0]);
        let scalar = TensorData {
            dtype: DType::F32,
            shape: vec![],
            data: 2.0f32.to_le_bytes().to_vec(),
        };
        assert_eq!(scalar.numel(), 1);
    }
}
