//! A restricted unpickler for the CAM files WSSS code bases write: `np.save` of a dict (a 0-d
//! object array whose data is a pickle) holding numpy arrays and torch tensors.
//!
//! It **executes nothing**. Python's pickle is a small stack machine whose `GLOBAL` /
//! `STACK_GLOBAL` opcodes import any callable and whose `REDUCE` calls it; here every global is
//! looked up in an allow-list the moment its opcode is read, and each allowed one is Rust code
//! that builds a value ([`Global`]): numpy's `_reconstruct`, `ndarray`, `dtype`, `scalar` and
//! `_frombuffer` (under numpy 1.x's `numpy.core.*` and numpy 2's `numpy._core.*`),
//! `_codecs.encode` (how protocol 2 stores bytes), `collections.OrderedDict`, and torch tensors
//! as the plain pickler writes them (`torch._utils._rebuild_tensor_v2` over
//! `torch.storage._load_from_bytes`, whose bytes are a legacy, non-zip `torch.save` stream,
//! parsed by [`legacy_storage`]). Any other global (`os.system`, `builtins.eval`, …) is refused,
//! naming it, before anything is built from it.
//!
//! Protocols 2–5 (numpy 2 writes 4, numpy 1.x 3, older 2), plus the mark-based containers of
//! protocol 1 and the text memo opcodes. Objects live in an arena, so a memo reference (`BINGET`)
//! costs one index and later mutations (`APPEND` to a memoised list) are seen by every holder,
//! as in Python. Bounds: [`MAX_DEPTH`] levels of nesting, [`MAX_MEMO`] memo entries, and a
//! budget of logical objects proportional to the pickle's length, so a "billion laughs" memo
//! bomb is refused as soon as it describes more objects than its bytes could honestly hold.
//! Every length is checked against the bytes left before anything is allocated for it.
//!
//! Why not a crate: candle's `pickle` (already a dependency, for checkpoints) reads protocol 2
//! only (no `FRAME`, `MEMOIZE`, `STACK_GLOBAL`, `SHORT_BINUNICODE` or bytes opcodes) and clones
//! memo entries whole; `serde-pickle` resolves no numpy or torch globals. Both stop at the
//! object tree, and the numpy/torch reconstruction is most of the work.

use crate::core::npy::{self, DType, NpyArray, NpyData};
use crate::{Error, Result};
use std::collections::HashMap;

/// Deepest nesting of containers accepted (a CAM dict nests 4 deep).
pub const MAX_DEPTH: u32 = 64;

/// Most memo entries accepted.
pub const MAX_MEMO: usize = 1 << 20;

/// Logical objects a pickle may describe (memo references counted as copies), on top of this
/// many per byte of pickle.
const NODES_BASE: u64 = 1 << 16;
const NODES_PER_BYTE: u64 = 4;

/// A value built from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict or `OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A numeric numpy array or torch tensor (C order).
    Array(NpyArray),
    /// A numpy object array (`np.save` of a dict is a 0-d one).
    Objects {
        shape: Vec<usize>,
        items: Vec<Value>,
    },
}

impl Value {
    /// A short description for error messages ("a dict", "an int 3", …).
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("a bool {b}"),
            Value::Int(i) => format!("an int {i}"),
            Value::Float(f) => format!("a float {f}"),
            Value::Str(s) => format!("a str {s:?}"),
            Value::Bytes(b) => format!("{} bytes", b.len()),
            Value::Tuple(v) => format!("a tuple of {}", v.len()),
            Value::List(v) => format!("a list of {}", v.len()),
            Value::Dict(v) => format!("a dict of {} keys", v.len()),
            Value::Array(a) => format!("an array {:?} of {}", a.shape, a.dtype().descr()),
            Value::Objects { shape, .. } => format!("an object array {shape:?}"),
        }
    }
}

/// The Python callables the reader knows how to build values with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `numpy.core.multiarray._reconstruct` (numpy 2: `numpy._core.multiarray`).
    Reconstruct,
    /// `numpy.ndarray`.
    Ndarray,
    /// `numpy.dtype`.
    Dtype,
    /// `numpy.core.multiarray.scalar`: a numpy scalar from its dtype and bytes.
    Scalar,
    /// `numpy.core.numeric._frombuffer` (protocol 5's in-band buffers).
    FromBuffer,
    /// `_codecs.encode`: protocol 2's spelling of a bytes object.
    CodecsEncode,
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensor,
    /// `torch.storage._load_from_bytes`: a storage saved by the legacy `torch.save`.
    LoadFromBytes,
    /// `torch.FloatStorage` etc. (only inside a legacy storage stream).
    Storage(DType),
}

/// The allowed global `module.name`, or `None`. `storages`: inside a legacy storage stream,
/// where only the torch storage classes are allowed.
fn allowed(module: &str, name: &str, storages: bool) -> Option<Global> {
    if storages {
        return storage_class(module, name);
    }
    let numpy_core =
        |sub: &str| module == format!("numpy.core.{sub}") || module == format!("numpy._core.{sub}");
    Some(match (module, name) {
        (_, "_reconstruct") if numpy_core("multiarray") => Global::Reconstruct,
        (_, "scalar") if numpy_core("multiarray") => Global::Scalar,
        (_, "_frombuffer") if numpy_core("numeric") => Global::FromBuffer,
        ("numpy", "ndarray") => Global::Ndarray,
        ("numpy", "dtype") => Global::Dtype,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch.storage", "_load_from_bytes") => Global::LoadFromBytes,
        _ => return None,
    })
}

/// A torch storage class (`torch.FloatStorage`, …): the only globals of a legacy stream.
fn storage_class(module: &str, name: &str) -> Option<Global> {
    if module != "torch" {
        return None;
    }
    Some(Global::Storage(match name {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        "ShortStorage" => DType::I16,
        "CharStorage" => DType::I8,
        "ByteStorage" => DType::U8,
        "BoolStorage" => DType::Bool,
        _ => return None,
    }))
}

/// Unpickle `bytes` (a whole pickle, up to its `STOP`). `name` (the file) is used in errors.
pub fn load(bytes: &[u8], name: &str) -> Result<Value> {
    let mut m = Machine::new(bytes, false);
    let fail =
        |m: &Machine, e: String| Error::input(name, format!("pickle: {e} (at byte {})", m.op_pos));
    let root = m.run().map_err(|e| fail(&m, e))?;
    let mut budget = m.budget;
    m.value(root, 0, &mut budget).map_err(|e| fail(&m, e))
}

/// Unpickle the data of an object `.npy` (`np.save` of a dict): the one object it holds.
pub fn load_npy_object(npy_bytes: &[u8], name: &str) -> Result<Option<Value>> {
    let Some(pickle) = NpyArray::pickled(npy_bytes, name)? else {
        return Ok(None);
    };
    let value = load(pickle, name).map_err(|e| match e {
        Error::Input {
            source_name,
            message,
        } if !message.contains("truncated") => Error::Input {
            source_name,
            message: format!(
                "{message}; a CAM this reader cannot take can be re-saved without a pickle: \
                 np.savez(f, keys=…, high_res=…)"
            ),
        },
        other => other,
    })?;
    match value {
        Value::Objects { shape, mut items } if shape.is_empty() && items.len() == 1 => {
            Ok(items.pop())
        }
        other => Err(Error::input(
            name,
            format!(
                "the pickle holds {}; expected the 0-d object array np.save writes",
                other.describe()
            ),
        )),
    }
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits (little-endian two's complement), as LONG1 writes it.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(Global),
    /// A numpy dtype; `None` is the object dtype.
    Dtype {
        dtype: Option<DType>,
        big: bool,
    },
    /// `_reconstruct(ndarray, (0,), b'b')`, waiting for its `BUILD` state.
    EmptyArray,
    Array(NpyArray),
    Objects {
        shape: Vec<usize>,
        items: Vec<usize>,
    },
    /// A torch storage, typed.
    Storage(NpyData),
    /// A legacy stream's persistent id for a storage: its key, type and element count.
    StorageRef {
        key: String,
        dtype: DType,
        numel: usize,
    },
}

struct Rec {
    node: Node,
    /// Logical object count (children counted through every reference).
    size: u64,
    depth: u32,
}

#[derive(Clone, Copy)]
enum Slot {
    Mark,
    Obj(usize),
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    op_pos: usize,
    arena: Vec<Rec>,
    stack: Vec<Slot>,
    memo: HashMap<u32, usize>,
    budget: u64,
    /// Inside a legacy torch storage stream: persistent ids and storage classes are allowed.
    legacy: bool,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8], legacy: bool) -> Self {
        Machine {
            bytes,
            pos: 0,
            op_pos: 0,
            arena: Vec::new(),
            stack: Vec::new(),
            memo: HashMap::new(),
            budget: NODES_BASE.saturating_add(NODES_PER_BYTE.saturating_mul(bytes.len() as u64)),
            legacy,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{what} of {n} bytes runs past the end of the {}-byte pickle (truncated?)",
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1, "an argument")?[0])
    }

    fn le(&mut self, n: usize) -> R<u64> {
        let b = self.take(n, "an argument")?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn len_arg(&mut self, n: usize) -> R<usize> {
        let v = self.le(n)?;
        usize::try_from(v).map_err(|_| format!("a length of {v} bytes"))
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
            .ok_or("a text argument without its newline")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "a text argument that is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }

    fn new_node(&mut self, node: Node) -> R<usize> {
        let (size, depth) = match &node {
            Node::Tuple(v) | Node::List(v) => self.sum(v.iter().copied())?,
            Node::Dict(v) => self.sum(v.iter().flat_map(|&(k, x)| [k, x]))?,
            Node::Objects { items, .. } => self.sum(items.iter().copied())?,
            _ => (1, 0),
        };
        self.arena.push(Rec { node, size, depth });
        Ok(self.arena.len() - 1)
    }

    /// Size and depth of a container holding `children`.
    fn sum(&self, children: impl Iterator<Item = usize>) -> R<(u64, u32)> {
        let (mut size, mut depth) = (1u64, 1u32);
        for c in children {
            size = size.saturating_add(self.arena[c].size);
            depth = depth.max(self.arena[c].depth + 1);
        }
        self.check(size, depth)?;
        Ok((size, depth))
    }

    fn check(&self, size: u64, depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "containers nested deeper than {MAX_DEPTH} levels (a CAM dict nests 4)"
            ));
        }
        if size > self.budget {
            return Err(format!(
                "memo references expand to more than {} objects for a {}-byte pickle (a memo bomb?)",
                self.budget,
                self.bytes.len()
            ));
        }
        Ok(())
    }

    /// Add `child` to container `parent` (after its creation): update size and depth.
    fn grow(&mut self, parent: usize, children: &[usize]) -> R<()> {
        let mut size = self.arena[parent].size;
        let mut depth = self.arena[parent].depth;
        for &c in children {
            size = size.saturating_add(self.arena[c].size);
            depth = depth.max(self.arena[c].depth.saturating_add(1));
        }
        self.check(size, depth)?;
        self.arena[parent].size = size;
        self.arena[parent].depth = depth;
        Ok(())
    }

    fn push(&mut self, node: Node) -> R<()> {
        let id = self.new_node(node)?;
        self.stack.push(Slot::Obj(id));
        Ok(())
    }

    fn pop(&mut self) -> R<usize> {
        match self.stack.pop() {
            Some(Slot::Obj(id)) => Ok(id),
            Some(Slot::Mark) => Err("an opcode found a MARK where it expected an object".into()),
            None => Err("an opcode found the stack empty".into()),
        }
    }

    fn top(&self) -> R<usize> {
        match self.stack.last() {
            Some(Slot::Obj(id)) => Ok(*id),
            _ => Err("an opcode expected an object on the stack".into()),
        }
    }

    fn pop_mark(&mut self) -> R<Vec<usize>> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or("an opcode expected a MARK on the stack")?;
        let items = self
            .stack
            .drain(at + 1..)
            .map(|s| match s {
                Slot::Obj(id) => id,
                Slot::Mark => unreachable!("rposition found the last mark"),
            })
            .collect();
        self.stack.pop();
        Ok(items)
    }

    fn memo_put(&mut self, key: u32) -> R<()> {
        let id = self.top()?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return Err(format!("more than {MAX_MEMO} memo entries"));
        }
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> R<()> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo entry {key} is read before it is written"))?;
        self.stack.push(Slot::Obj(id));
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> R<()> {
        match allowed(module, name, self.legacy) {
            Some(g) => self.push(Node::Global(g)),
            None => Err(format!(
                "refused global '{module}.{name}': only numpy arrays, torch tensors, dicts, lists \
                 and plain values are read, and nothing in the file is run"
            )),
        }
    }

    fn str_of(&self, id: usize) -> Option<&str> {
        match &self.arena[id].node {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Run to `STOP`; the id of the result.
    fn run(&mut self) -> R<usize> {
        loop {
            self.op_pos = self.pos;
            let op = self
                .u8()
                .map_err(|_| "the pickle ends without a STOP opcode")?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(format!("pickle protocol {v}; expected 2 to 5"));
                    }
                }
                0x95 => {
                    self.take(8, "a FRAME length")?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.stack.pop().ok_or("POP on an empty stack")?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(Slot::Obj(id));
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push(Node::Int(v as i64))?
                }
                b'K' => {
                    let v = self.le(1)?;
                    self.push(Node::Int(v as i64))?
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push(Node::Int(v as i64))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.len_arg(1)?
                    } else {
                        self.len_arg(4)?
                    };
                    let b = self.take(n, "a LONG")?;
                    if n <= 8 {
                        let mut v: i64 = 0;
                        for (i, &x) in b.iter().enumerate() {
                            v |= (x as i64) << (8 * i);
                        }
                        if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                            v -= 1i64 << (8 * n); // sign-extend
                        }
                        self.push(Node::Int(v))?
                    } else {
                        let b = b.to_vec();
                        self.push(Node::BigInt(b))?
                    }
                }
                b'G' => {
                    let b = self.take(8, "a BINFLOAT")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Node::Float(f64::from_be_bytes(a)))?
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        0x8c => self.len_arg(1)?,
                        b'X' => self.len_arg(4)?,
                        _ => self.len_arg(8)?,
                    };
                    let b = self.take(n, "a string")?;
                    let s = std::str::from_utf8(b).map_err(|_| "a str that is not UTF-8")?;
                    self.push(Node::Str(s.to_string()))?
                }
                b'C' | b'B' | 0x8e | 0x96 | b'U' | b'T' => {
                    let n = match op {
                        b'C' | b'U' => self.len_arg(1)?,
                        b'B' | b'T' => self.len_arg(4)?,
                        _ => self.len_arg(8)?,
                    };
                    let b = self.take(n, "a bytes object")?.to_vec();
                    self.push(Node::Bytes(b))?
                }
                b')' => self.push(Node::Tuple(Vec::new()))?,
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("TUPLE opcode on a short stack".into());
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items))?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items))?
                }
                b']' => self.push(Node::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?
                }
                b'}' => self.push(Node::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(&items)?;
                    self.push(Node::Dict(pairs))?
                }
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    let list = self.top()?;
                    self.grow(list, &items)?;
                    match &mut self.arena[list].node {
                        Node::List(v) => v.extend(items),
                        _ => return Err("APPEND to something that is not a list".into()),
                    }
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    let new = pairs(&items)?;
                    let dict = self.top()?;
                    self.grow(dict, &items)?;
                    match &mut self.arena[dict].node {
                        Node::Dict(v) => v.extend(new),
                        _ => return Err("SETITEM on something that is not a dict".into()),
                    }
                }
                b'q' => {
                    let k = self.le(1)? as u32;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = self.le(4)? as u32;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).map_err(|_| "memo overflow")?;
                    self.memo_put(k)?
                }
                b'p' => {
                    let k = self.line()?.trim().parse::<u32>().map_err(|_| "a bad PUT index")?;
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = self.le(1)? as u32;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = self.le(4)? as u32;
                    self.memo_get(k)?
                }
                b'g' => {
                    let k = self.line()?.trim().parse::<u32>().map_err(|_| "a bad GET index")?;
                    self.memo_get(k)?
                }
                b'c' | b'i' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    if op == b'i' {
                        // INST calls the class at once: never allowed.
                        return Err(format!(
                            "refused global '{module}.{name}' (INST): nothing in the file is run"
                        ));
                    }
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name))
                    else {
                        return Err("STACK_GLOBAL on values that are not strings".into());
                    };
                    let (module, name) = (module.to_string(), name.to_string());
                    self.global(&module, &name)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let node = self.call(callable, args)?;
                    self.push(node)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    self.build(obj, state)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let node = self.persistent(pid)?;
                    self.push(node)?
                }
                0x97 | 0x98 => {
                    return Err(
                        "an out-of-band buffer (pickle protocol 5 with buffer_callback); np.save \
                         writes buffers in-band"
                            .into(),
                    )
                }
                b'o' => return Err("the OBJ opcode (calls a class): nothing in the file is run".into()),
                0x92 => {
                    return Err("the NEWOBJ_EX opcode (calls a class): nothing in the file is run".into())
                }
                other => {
                    return Err(format!(
                        "opcode 0x{other:02x} is not read (expected a binary pickle, protocol 2 to 5, as np.save writes)"
                    ))
                }
            }
        }
    }

    fn tuple(&self, id: usize, what: &str) -> R<Vec<usize>> {
        match &self.arena[id].node {
            Node::Tuple(v) => Ok(v.clone()),
            _ => Err(format!("{what}: expected a tuple")),
        }
    }

    fn int(&self, id: usize, what: &str) -> R<i64> {
        match &self.arena[id].node {
            Node::Int(i) => Ok(*i),
            Node::Bool(b) => Ok(*b as i64),
            _ => Err(format!("{what}: expected an int")),
        }
    }

    fn usize_of(&self, id: usize, what: &str) -> R<usize> {
        let i = self.int(id, what)?;
        usize::try_from(i).map_err(|_| format!("{what}: {i} is negative"))
    }

    fn shape(&self, id: usize, what: &str) -> R<Vec<usize>> {
        self.tuple(id, what)?
            .into_iter()
            .map(|d| self.usize_of(d, what))
            .collect()
    }

    fn bytes_of(&self, id: usize, what: &str) -> R<&[u8]> {
        match &self.arena[id].node {
            Node::Bytes(b) => Ok(b),
            _ => Err(format!("{what}: expected bytes")),
        }
    }

    fn dtype_of(&self, id: usize, what: &str) -> R<(Option<DType>, bool)> {
        match &self.arena[id].node {
            Node::Dtype { dtype, big } => Ok((*dtype, *big)),
            _ => Err(format!("{what}: expected a numpy dtype")),
        }
    }

    /// `REDUCE` / `NEWOBJ`: call an allowed global.
    fn call(&mut self, callable: usize, args: usize) -> R<Node> {
        let Node::Global(g) = self.arena[callable].node else {
            return Err("REDUCE on something that is not an allowed global".into());
        };
        let a = self.tuple(args, "call arguments")?;
        let arg = |i: usize| {
            a.get(i)
                .copied()
                .ok_or_else(|| format!("{g:?} called with {} arguments", a.len()))
        };
        Ok(match g {
            Global::Reconstruct => {
                if !matches!(self.arena[arg(0)?].node, Node::Global(Global::Ndarray)) {
                    return Err("numpy _reconstruct of a class other than ndarray".into());
                }
                Node::EmptyArray
            }
            Global::Dtype => {
                let descr = self
                    .str_of(arg(0)?)
                    .ok_or("numpy.dtype of something that is not a str")?;
                if matches!(descr, "O" | "O8" | "O4") {
                    Node::Dtype {
                        dtype: None,
                        big: false,
                    }
                } else {
                    let (dtype, big) = npy::parse_descr(descr)?;
                    Node::Dtype {
                        dtype: Some(dtype),
                        big,
                    }
                }
            }
            Global::Scalar => {
                let (dtype, big) = self.dtype_of(arg(0)?, "numpy scalar")?;
                let dtype = dtype.ok_or("a numpy object scalar")?;
                let data = self.bytes_of(arg(1)?, "numpy scalar")?;
                if data.len() != dtype.size() {
                    return Err(format!(
                        "a numpy scalar of {} with {} bytes",
                        dtype.descr(),
                        data.len()
                    ));
                }
                let a = NpyArray::new(vec![], npy::decode_data(data, dtype, big))
                    .map_err(|e| e.to_string())?;
                match a.data {
                    NpyData::F64(v) => Node::Float(v[0]),
                    NpyData::F16(_) | NpyData::F32(_) => Node::Float(a.to_f32()[0] as f64),
                    _ => Node::Int(a.to_i64("numpy scalar").map_err(|e| e.to_string())?[0]),
                }
            }
            Global::FromBuffer => {
                let data = self.bytes_of(arg(0)?, "numpy _frombuffer")?;
                let (dtype, big) = self.dtype_of(arg(1)?, "numpy _frombuffer")?;
                let dtype = dtype.ok_or("numpy _frombuffer of objects")?;
                let shape = self.shape(arg(2)?, "numpy _frombuffer shape")?;
                let fortran = self.str_of(arg(3)?) == Some("F");
                Node::Array(array(data, dtype, big, shape, fortran)?)
            }
            Global::CodecsEncode => {
                let s = self
                    .str_of(arg(0)?)
                    .ok_or("_codecs.encode of something that is not a str")?;
                let enc = a.get(1).and_then(|&e| self.str_of(e)).unwrap_or("utf-8");
                if enc == "latin1" || enc == "latin-1" || enc == "iso-8859-1" {
                    let b = s
                        .chars()
                        .map(|c| u8::try_from(c as u32).map_err(|_| "a latin1 str above U+00FF"))
                        .collect::<std::result::Result<Vec<u8>, _>>()?;
                    Node::Bytes(b)
                } else {
                    return Err(format!("_codecs.encode to '{enc}'; expected latin1"));
                }
            }
            Global::OrderedDict => Node::Dict(Vec::new()),
            Global::RebuildTensor => self.rebuild_tensor(&a)?,
            Global::LoadFromBytes => {
                let b = self.bytes_of(arg(0)?, "torch _load_from_bytes")?;
                Node::Storage(legacy_storage(b)?)
            }
            Global::Ndarray | Global::Storage(_) => {
                return Err(format!("{g:?} called directly"));
            }
        })
    }

    fn rebuild_tensor(&self, a: &[usize]) -> R<Node> {
        if a.len() < 4 {
            return Err("torch _rebuild_tensor_v2 with fewer than 4 arguments".into());
        }
        let Node::Storage(storage) = &self.arena[a[0]].node else {
            return Err("torch _rebuild_tensor_v2 of something that is not a storage".into());
        };
        let offset = self.usize_of(a[1], "tensor storage offset")?;
        let size = self.shape(a[2], "tensor size")?;
        let stride = self.shape(a[3], "tensor stride")?;
        if size.len() != stride.len() {
            return Err(format!("a tensor of size {size:?} with stride {stride:?}"));
        }
        let numel = npy::element_count(&size).ok_or("a tensor size that overflows")?;
        if numel > storage.len() {
            return Err(format!(
                "a tensor of {numel} elements over a storage of {} (expanded views are not read)",
                storage.len()
            ));
        }
        // The largest storage index the view touches must be inside the storage.
        if numel > 0 {
            let last = size.iter().zip(&stride).try_fold(offset, |acc, (&n, &s)| {
                (n - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
            match last {
                Some(l) if l < storage.len() => {}
                _ => {
                    return Err(format!(
                        "a tensor view (offset {offset}, size {size:?}, stride {stride:?}) outside its storage of {}",
                        storage.len()
                    ))
                }
            }
        }
        let index = strided_indices(&size, &stride, offset);
        let data = gather(storage, &index);
        Ok(Node::Array(
            NpyArray::new(size, data).map_err(|e| e.to_string())?,
        ))
    }

    /// `BUILD`: set an object's state.
    fn build(&mut self, obj: usize, state: usize) -> R<()> {
        let node = match &self.arena[obj].node {
            Node::EmptyArray => {
                let s = self.tuple(state, "ndarray state")?;
                if s.len() != 5 {
                    return Err(format!("an ndarray state of {} items; expected 5", s.len()));
                }
                let shape = self.shape(s[1], "ndarray shape")?;
                let (dtype, big) = self.dtype_of(s[2], "ndarray dtype")?;
                let fortran = self.int(s[3], "ndarray fortran flag")? != 0;
                match dtype {
                    Some(dtype) => {
                        let data = self.bytes_of(s[4], "ndarray data")?;
                        Node::Array(array(data, dtype, big, shape, fortran)?)
                    }
                    None => {
                        let Node::List(items) = &self.arena[s[4]].node else {
                            return Err("an object array whose data is not a list".into());
                        };
                        let count = npy::element_count(&shape).ok_or("an overflowing shape")?;
                        if items.len() != count {
                            return Err(format!(
                                "an object array of shape {shape:?} with {} items",
                                items.len()
                            ));
                        }
                        let items = items.clone();
                        Node::Objects { shape, items }
                    }
                }
            }
            Node::Dtype { dtype, .. } => {
                let dtype = *dtype;
                let s = self.tuple(state, "dtype state")?;
                let order = s.get(1).and_then(|&o| self.str_of(o)).unwrap_or("|");
                Node::Dtype {
                    dtype,
                    big: order == ">",
                }
            }
            Node::Dict(_) => {
                let Node::Dict(extra) = &self.arena[state].node else {
                    return Err("BUILD of a dict with a state that is not a dict".into());
                };
                let extra = extra.clone();
                let flat: Vec<usize> = extra.iter().flat_map(|&(k, v)| [k, v]).collect();
                self.grow(obj, &flat)?;
                if let Node::Dict(v) = &mut self.arena[obj].node {
                    v.extend(extra);
                }
                return Ok(());
            }
            Node::Array(_) | Node::Objects { .. } => {
                return Err("BUILD of an array twice".into());
            }
            _ => return Err("BUILD of an object that takes no state".into()),
        };
        let (size, depth) = match &node {
            Node::Objects { items, .. } => self.sum(items.iter().copied())?,
            _ => (1, 0),
        };
        self.arena[obj] = Rec { node, size, depth };
        Ok(())
    }

    /// `BINPERSID` in a legacy storage stream: `('storage', type, key, location, numel, …)`.
    fn persistent(&mut self, pid: usize) -> R<Node> {
        if !self.legacy {
            return Err("a persistent id outside a torch storage stream".into());
        }
        let t = self.tuple(pid, "persistent id")?;
        if t.len() < 5 || self.str_of(t[0]) != Some("storage") {
            return Err(
                "a persistent id that is not ('storage', type, key, location, numel)".into(),
            );
        }
        let Node::Global(Global::Storage(dtype)) = self.arena[t[1]].node else {
            return Err("a storage of an unknown torch type".into());
        };
        let key = self
            .str_of(t[2])
            .ok_or("a storage key that is not a str")?
            .to_string();
        let numel = self.usize_of(t[4], "storage size")?;
        Ok(Node::StorageRef { key, dtype, numel })
    }

    /// The value of node `id`, checking depth and the object budget along the way.
    fn value(&self, id: usize, depth: u32, budget: &mut u64) -> R<Value> {
        if depth > MAX_DEPTH {
            return Err(format!("containers nested deeper than {MAX_DEPTH} levels"));
        }
        *budget = budget.checked_sub(1).ok_or(
            "memo references expand to more objects than the pickle's size allows (a memo bomb?)",
        )?;
        let all = |v: &[usize], budget: &mut u64| -> R<Vec<Value>> {
            v.iter()
                .map(|&c| self.value(c, depth + 1, budget))
                .collect()
        };
        Ok(match &self.arena[id].node {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::BigInt(_) => return Err("an integer wider than 64 bits".into()),
            Node::Float(f) => Value::Float(*f),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Bytes(b) => Value::Bytes(b.clone()),
            Node::Tuple(v) => Value::Tuple(all(v, budget)?),
            Node::List(v) => Value::List(all(v, budget)?),
            Node::Dict(v) => Value::Dict(
                v.iter()
                    .map(|&(k, x)| {
                        Ok((
                            self.value(k, depth + 1, budget)?,
                            self.value(x, depth + 1, budget)?,
                        ))
                    })
                    .collect::<R<_>>()?,
            ),
            Node::Array(a) => {
                // Each reference copies the array: charge its elements.
                *budget = budget
                    .checked_sub(a.len() as u64)
                    .ok_or("memo references copy arrays past the pickle's size (a memo bomb?)")?;
                Value::Array(a.clone())
            }
            Node::Objects { shape, items } => Value::Objects {
                shape: shape.clone(),
                items: all(items, budget)?,
            },
            Node::Global(g) => return Err(format!("a bare global {g:?} as a value")),
            Node::Dtype { .. } => return Err("a bare numpy dtype as a value".into()),
            Node::EmptyArray => return Err("an ndarray without its state".into()),
            Node::Storage(_) | Node::StorageRef { .. } => {
                return Err("a bare torch storage as a value".into())
            }
        })
    }
}

fn pairs(items: &[usize]) -> R<Vec<(usize, usize)>> {
    if items.len() % 2 != 0 {
        return Err("a dict with an odd number of keys and values".into());
    }
    Ok(items.chunks(2).map(|p| (p[0], p[1])).collect())
}

/// A numeric array of `shape` from raw `data`.
fn array(data: &[u8], dtype: DType, big: bool, shape: Vec<usize>, fortran: bool) -> R<NpyArray> {
    let count = npy::element_count(&shape).ok_or("an array shape that overflows")?;
    if count.checked_mul(dtype.size()) != Some(data.len()) {
        return Err(format!(
            "an array of shape {shape:?} ({}) with {} data bytes",
            dtype.descr(),
            data.len()
        ));
    }
    let mut values = npy::decode_data(data, dtype, big);
    if fortran && shape.len() > 1 {
        values = npy::fortran_to_c(values, &shape);
    }
    NpyArray::new(shape, values).map_err(|e| e.to_string())
}

/// Storage indices of a strided view, in C order.
fn strided_indices(size: &[usize], stride: &[usize], offset: usize) -> Vec<usize> {
    let mut out = vec![offset];
    for (&n, &s) in size.iter().zip(stride) {
        out = out
            .iter()
            .flat_map(|&base| (0..n).map(move |i| base + i * s))
            .collect();
    }
    out
}

fn gather(data: &NpyData, index: &[usize]) -> NpyData {
    fn g<T: Copy>(v: &[T], index: &[usize]) -> Vec<T> {
        index.iter().map(|&i| v[i]).collect()
    }
    match data {
        NpyData::Bool(v) => NpyData::Bool(g(v, index)),
        NpyData::I8(v) => NpyData::I8(g(v, index)),
        NpyData::U8(v) => NpyData::U8(g(v, index)),
        NpyData::I16(v) => NpyData::I16(g(v, index)),
        NpyData::U16(v) => NpyData::U16(g(v, index)),
        NpyData::I32(v) => NpyData::I32(g(v, index)),
        NpyData::U32(v) => NpyData::U32(g(v, index)),
        NpyData::I64(v) => NpyData::I64(g(v, index)),
        NpyData::U64(v) => NpyData::U64(g(v, index)),
        NpyData::F16(v) => NpyData::F16(g(v, index)),
        NpyData::F32(v) => NpyData::F32(g(v, index)),
        NpyData::F64(v) => NpyData::F64(g(v, index)),
    }
}

/// torch's legacy (non-zip) serialisation magic number, pickled as a LONG1.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// The one storage of a legacy `torch.save` stream (what `torch.storage._load_from_bytes`
/// reads): five pickles (magic number, protocol version 1001, system info, the storage as a
/// persistent id, the list of storage keys), then per key its element count (8 bytes, little
/// endian) and its raw little-endian elements.
pub fn legacy_storage(bytes: &[u8]) -> R<NpyData> {
    let mut pos = 0usize;
    let mut next = |what: &str| -> R<(Machine<'_>, usize)> {
        let mut m = Machine::new(&bytes[pos..], true);
        let root = m
            .run()
            .map_err(|e| format!("torch storage stream, {what}: {e}"))?;
        pos += m.pos;
        Ok((m, root))
    };
    let (m, magic) = next("magic number")?;
    if !matches!(&m.arena[magic].node, Node::BigInt(b) if b[..] == LEGACY_MAGIC) {
        return Err("a torch storage stream without the legacy magic number".into());
    }
    let (m, version) = next("protocol version")?;
    if !matches!(m.arena[version].node, Node::Int(1001)) {
        return Err("a torch storage stream whose protocol version is not 1001".into());
    }
    let (m, info) = next("system info")?;
    if let Node::Dict(entries) = &m.arena[info].node {
        for &(k, v) in entries {
            if m.str_of(k) == Some("little_endian") && matches!(m.arena[v].node, Node::Bool(false))
            {
                return Err("a big-endian torch storage stream".into());
            }
        }
    }
    let (m, root) = next("storage")?;
    let Node::StorageRef { key, dtype, numel } = &m.arena[root].node else {
        return Err("a torch storage stream that does not hold one storage".into());
    };
    let (key, dtype, numel) = (key.clone(), *dtype, *numel);
    let (m, keys) = next("storage keys")?;
    match &m.arena[keys].node {
        Node::List(v) if v.len() == 1 && m.str_of(v[0]) == Some(key.as_str()) => {}
        _ => return Err("a torch storage stream whose key list is not its one storage".into()),
    }
    let rest = &bytes[pos..];
    if rest.len() < 8 {
        return Err("a torch storage stream truncated before its data".into());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&rest[..8]);
    let stored = u64::from_le_bytes(n);
    if stored != numel as u64 {
        return Err(format!(
            "a torch storage of {stored} elements where its id says {numel}"
        ));
    }
    let body = &rest[8..];
    if numel.checked_mul(dtype.size()) != Some(body.len()) {
        return Err(format!(
            "a torch storage of {numel} {} elements with {} data bytes",
            dtype.descr(),
            body.len()
        ));
    }
    Ok(npy::decode_data(body, dtype, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        load(bytes, "t.pkl").unwrap_err().to_string()
    }

    #[test]
    fn plain_values_protocol_2_and_4() {
        // pickle.dumps({'a': [1, -2, 3.5, None, True], 'b': (b'xy', 'z')}, protocol=2)
        let p2 = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bq\x03c_codecs\nencode\nq\x04X\x02\x00\x00\x00xyq\x05X\x06\x00\x00\x00latin1q\x06\x86q\x07Rq\x08X\x01\x00\x00\x00zq\x09\x86q\x0au.";
        let v = load(p2, "p2").unwrap();
        let expect = Value::Dict(vec![
            (
                Value::Str("a".into()),
                Value::List(vec![
                    Value::Int(1),
                    Value::Int(-2),
                    Value::Float(3.5),
                    Value::None,
                    Value::Bool(true),
                ]),
            ),
            (
                Value::Str("b".into()),
                Value::Tuple(vec![Value::Bytes(b"xy".to_vec()), Value::Str("z".into())]),
            ),
        ]);
        assert_eq!(v, expect);
    }

    #[test]
    fn refuses_globals_by_name_before_calling() {
        let e = err(b"cos\nsystem\n(S'echo hi'\ntR.");
        assert!(e.contains("refused global 'os.system'"), "{e}");
        let e = err(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.");
        assert!(e.contains("refused global 'builtins.eval'"), "{e}");
        let e = err(b"\x80\x02csubprocess\nPopen\nq\x00.");
        assert!(e.contains("refused global 'subprocess.Popen'"), "{e}");
        // Storage classes are allowed only inside a legacy storage stream.
        let e = err(b"\x80\x02ctorch\nFloatStorage\nq\x00.");
        assert!(e.contains("refused global 'torch.FloatStorage'"), "{e}");
    }

    #[test]
    fn refuses_memo_bombs_and_deep_nesting() {
        // A list, then 40 times: a list of ten references to the previous one.
        let mut bomb = b"\x80\x04]\x94".to_vec();
        for i in 0..40u32 {
            bomb.push(b'(');
            for _ in 0..10 {
                bomb.push(b'j');
                bomb.extend_from_slice(&i.to_le_bytes());
            }
            bomb.extend_from_slice(b"l\x94");
        }
        bomb.push(b'.');
        let e = err(&bomb);
        assert!(e.contains("memo bomb"), "{e}");
        let mut deep = b"\x80\x04".to_vec();
        deep.extend(std::iter::repeat_n(b']', 100_000));
        deep.extend(std::iter::repeat_n(b'a', 99_999));
        deep.push(b'.');
        let e = err(&deep);
        assert!(e.contains("nested deeper"), "{e}");
    }

    #[test]
    fn truncated_and_forged_lengths() {
        let e = err(b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f");
        assert!(e.contains("runs past the end"), "{e}");
        let e = err(b"\x80\x04N");
        assert!(e.contains("without a STOP"), "{e}");
        let e = err(b"\x80\x04h\x05.");
        assert!(e.contains("memo entry 5"), "{e}");
    }
}
