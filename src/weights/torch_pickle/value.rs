//! The values a checkpoint's pickle decodes to: Python objects as a tree ([`Value`]) and
//! tensors as contiguous little-endian data ([`TensorData`]) with their [`DType`].

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

    pub(super) fn kind(&self) -> &'static str {
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
    pub(super) fn from_storage_class(name: &str) -> Option<DType> {
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
    pub(super) fn from_torch_name(name: &str) -> Option<DType> {
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
