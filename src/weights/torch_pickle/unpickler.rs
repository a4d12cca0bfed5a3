//! The pickle machine: protocol 2–5 opcodes into an arena of nodes, with the tensor
//! rebuilding calls torch uses and nothing else called. It is one file because it is one
//! `match` over the opcodes and the state they share.

use super::*;

/// Index of a node in the unpickler's arena.
pub(super) type Id = usize;

/// A value while unpickling: containers refer to their items by arena index, so shared and
/// later-mutated objects behave as in Python, and nothing is copied until the final tree.
#[derive(Debug)]
pub(super) enum Node {
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
    pub(super) fn kind(&self) -> &'static str {
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
pub(super) struct ObjectNode {
    pub(super) class: (String, String),
    pub(super) args: Vec<Id>,
    pub(super) state: Option<Id>,
    pub(super) list_items: Vec<Id>,
    pub(super) dict_items: Vec<(Id, Id)>,
}

impl ObjectNode {
    pub(super) fn new(class: (String, String), args: Vec<Id>) -> Self {
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
pub(super) struct StorageRef {
    pub(super) class: (String, String),
    pub(super) kind: StorageKind,
    pub(super) key: String,
    pub(super) location: String,
    pub(super) numel: u64,
}

#[derive(Debug, Clone)]
pub(super) enum StorageKind {
    Typed(DType),
    Untyped,
    Unsupported,
}

impl StorageRef {
    /// Size in bytes, `None` on overflow.
    pub(super) fn byte_len(&self) -> Option<u64> {
        match self.kind {
            StorageKind::Typed(d) => self.numel.checked_mul(d.size_in_bytes() as u64),
            StorageKind::Untyped | StorageKind::Unsupported => Some(self.numel),
        }
    }
}

/// Unpickles `data`, resolving storages through `loader`, into an owned value tree.
pub(super) fn unpickle(
    data: &[u8],
    loader: &mut dyn StorageLoader,
) -> Result<Value, TorchPickleError> {
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

pub(super) struct Unpickler<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    /// Offset and byte of the opcode being executed, for error messages.
    pub(super) op_offset: usize,
    pub(super) op: u8,
    pub(super) arena: Vec<Node>,
    pub(super) stack: Vec<Id>,
    /// Stack lengths at each open MARK.
    pub(super) marks: Vec<usize>,
    pub(super) memo: HashMap<u64, Id>,
    pub(super) loader: &'a mut dyn StorageLoader,
    /// Tensor bytes produced so far (checked against the storage bytes read).
    pub(super) produced: usize,
}

impl<'a> Unpickler<'a> {
    pub(super) fn malformed(&self, reason: impl Into<String>) -> TorchPickleError {
        TorchPickleError::Malformed {
            offset: self.op_offset,
            reason: reason.into(),
        }
    }

    pub(super) fn node(&self, id: Id) -> &Node {
        // Ids are only ever produced by `add`, so they are always in range.
        &self.arena[id]
    }

    pub(super) fn add(&mut self, node: Node) -> Id {
        self.arena.push(node);
        self.arena.len() - 1
    }

    pub(super) fn push(&mut self, node: Node) {
        let id = self.add(node);
        self.stack.push(id);
    }

    pub(super) fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self) -> Result<Id, TorchPickleError> {
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

    pub(super) fn top(&self) -> Result<Id, TorchPickleError> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.floor() => Ok(id),
            _ => Err(TorchPickleError::StackUnderflow {
                opcode: opcode_name(self.op),
                offset: self.op_offset,
            }),
        }
    }

    pub(super) fn pop_mark(&mut self) -> Result<Vec<Id>, TorchPickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        if mark > self.stack.len() {
            return Err(self.malformed("MARK above the top of the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], TorchPickleError> {
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

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], TorchPickleError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(super) fn u8(&mut self) -> Result<u8, TorchPickleError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn len_u32(&mut self) -> Result<usize, TorchPickleError> {
        let n = u32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))
    }

    pub(super) fn len_u64(&mut self) -> Result<usize, TorchPickleError> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed("length does not fit in memory"))
    }

    pub(super) fn len_i32(&mut self) -> Result<usize, TorchPickleError> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed(format!("negative length {n}")))
    }

    /// The bytes up to the next newline, which is consumed too.
    pub(super) fn line(&mut self) -> Result<&'a [u8], TorchPickleError> {
        let data = self.data;
        let rest = data.get(self.pos..).unwrap_or_default();
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(self.malformed("pickle truncated: newline expected"));
        };
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    pub(super) fn text_line(&mut self) -> Result<String, TorchPickleError> {
        let line = self.line()?.to_vec();
        String::from_utf8(line).map_err(|_| self.malformed("line is not valid UTF-8"))
    }

    /// A decimal integer literal (INT, LONG, PUT, GET), with an optional trailing `L`.
    pub(super) fn parse_int(&self, line: &[u8]) -> Result<i64, TorchPickleError> {
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

    pub(super) fn memo_key_line(&mut self) -> Result<u64, TorchPickleError> {
        let line = self.line()?;
        let key = self.parse_int(line)?;
        u64::try_from(key).map_err(|_| self.malformed(format!("negative memo key {key}")))
    }

    pub(super) fn put(&mut self, key: u64) -> Result<(), TorchPickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    pub(super) fn get(&mut self, key: u64) -> Result<(), TorchPickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    pub(super) fn push_str_or_bytes(&mut self, bytes: Vec<u8>) {
        let node = match String::from_utf8(bytes) {
            Ok(s) => Node::Str(s),
            Err(e) => Node::Bytes(e.into_bytes()),
        };
        self.push(node);
    }

    pub(super) fn push_utf8(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?.to_vec();
        let s =
            String::from_utf8(bytes).map_err(|_| self.malformed("string is not valid UTF-8"))?;
        self.push(Node::Str(s));
        Ok(())
    }

    pub(super) fn push_bytes(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?.to_vec();
        self.push(Node::Bytes(bytes));
        Ok(())
    }

    pub(super) fn push_long(&mut self, n: usize) -> Result<(), TorchPickleError> {
        let bytes = self.take(n)?;
        let value = decode_long(bytes).ok_or(TorchPickleError::IntegerTooLarge {
            offset: self.op_offset,
        })?;
        self.push(Node::Int(value));
        Ok(())
    }

    pub(super) fn push_global(&mut self, module: String, name: String) {
        // Python 2 module names, as Python's own unpickler maps them for protocols < 3.
        let module = match module.as_str() {
            "__builtin__" | "exceptions" => "builtins".to_owned(),
            "copy_reg" => "copyreg".to_owned(),
            _ => module,
        };
        self.push(Node::Global(Box::new((module, name))));
    }

    /// The items of a tuple (or list) node.
    pub(super) fn items_of(&self, id: Id, what: &str) -> Result<Vec<Id>, TorchPickleError> {
        match self.node(id) {
            Node::Tuple(items) | Node::List(items) => Ok(items.clone()),
            other => Err(self.malformed(format!("{what} is a {}, not a tuple", other.kind()))),
        }
    }

    pub(super) fn str_of(&self, id: Id) -> Option<&str> {
        match self.node(id) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn run(&mut self) -> Result<Id, TorchPickleError> {
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

    pub(super) fn pairs(&self, items: &[Id]) -> Result<Vec<(Id, Id)>, TorchPickleError> {
        let (pairs, rest) = items.as_chunks::<2>();
        if !rest.is_empty() {
            return Err(self.malformed("odd number of items for a dict"));
        }
        Ok(pairs.iter().map(|&[k, v]| (k, v)).collect())
    }

    pub(super) fn append(&mut self, items: Vec<Id>) -> Result<(), TorchPickleError> {
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

    pub(super) fn set_items(&mut self, pairs: Vec<(Id, Id)>) -> Result<(), TorchPickleError> {
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

    pub(super) fn add_items(&mut self, items: Vec<Id>) -> Result<(), TorchPickleError> {
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

    pub(super) fn persistent_load(&self, pid: Id) -> Result<StorageRef, TorchPickleError> {
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
    pub(super) fn call(
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
    pub(super) fn dict_from_pairs(&self, items: Id) -> Option<Vec<(Id, Id)>> {
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
    pub(super) fn codecs_encode(&self, args: &[Id]) -> Option<Vec<u8>> {
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

    pub(super) fn index_arg(
        &self,
        args: &[Id],
        at: usize,
        what: &str,
    ) -> Result<usize, TorchPickleError> {
        match args.get(at).map(|&id| self.node(id)) {
            Some(Node::Int(v)) => usize::try_from(*v)
                .map_err(|_| self.malformed(format!("tensor {what} {v} is negative"))),
            _ => Err(self.malformed(format!("tensor {what} is not an int"))),
        }
    }

    pub(super) fn index_list_arg(
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
    pub(super) fn rebuild_tensor(
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

    pub(super) fn limit(reason: String) -> TorchPickleError {
        TorchPickleError::LimitExceeded { reason }
    }

    /// Checks that a strided view lies inside its storage, without reading the storage yet.
    pub(super) fn plan_view(
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
    pub(super) fn charge(&mut self, bytes: usize) -> Result<(), TorchPickleError> {
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
    pub(super) fn finish(mut self, root: Id) -> Result<Value, TorchPickleError> {
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
