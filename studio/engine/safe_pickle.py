"""A pickle interpreter of our own for checkpoints from anywhere: data in, never code.

`pickle.Unpickler` with a `find_class` allow-list still calls the allowed callables with whatever arguments the
file gives, and its BUILD opcode sets attributes on anything (a function's `__defaults__`, a dtype's fields).
This module reads the opcodes itself, like torch's weights-only unpickler:

- GLOBAL / STACK_GLOBAL resolve to *tokens* of a short allow-list, never to the real objects;
- REDUCE / NEWOBJ call a token's own handler, which checks its arguments against a schema first
  (tensor rebuild: storage exists, offset + extent inside it, sane shape, non-overlapping strides;
  numpy: plain numeric dtypes only, byte length = shape x itemsize);
- BUILD only fills the project's own stub records (persistent network objects, numpy arrays and dtypes,
  EasyDicts, TF networks, argparse namespaces); on anything else it is refused;
- limits on memo entries, stack and mark depth, object count, nesting and bytes, so that a small file can
  neither exhaust memory nor time.  Shared references stay shared (memo GET is a reference, never a copy).

After the opcodes run, one pass turns the stubs into plain values (numpy arrays, torch tensors, dicts), each
object visited once, so a DAG of shared records never re-expands.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class UnsafePickleError(ValueError):
    """The file is refused: it asks for something outside the allow-list or breaks a limit; nothing was run."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what one file may make the interpreter do."""

    memo_entries: int = 2_000_000
    stack_depth: int = 1_000_000
    mark_depth: int = 10_000
    objects: int = 20_000_000  # containers, items and scalars created
    nesting: int = 120  # depth of containers in the result
    tensor_elements: int = 4_000_000_000
    string_bytes: int = 1 << 31


DEFAULT_LIMITS = Limits()

# ------------------------------------------------------------------------------------------------ stub records


@dataclass(eq=False)
class PersistentRecord:
    """Inert stand-in for an NVlabs persistent network object: its class name and state dict, no code."""

    class_name: str
    state: dict
    version: int | None = None

    @property
    def params(self) -> dict:
        return dict(self.state.get("_parameters") or {})

    @property
    def buffers(self) -> dict:
        return dict(self.state.get("_buffers") or {})

    @property
    def modules(self) -> dict:
        return dict(self.state.get("_modules") or {})

    @property
    def init_kwargs(self) -> dict:
        kw = self.state.get("_init_kwargs") or {}
        return dict(kw) if isinstance(kw, dict) else {}


@dataclass(eq=False)
class TFNetworkRecord:
    """Inert stand-in for a TensorFlow-era `dnnlib.tflib.network.Network`: its pickled state dict."""

    state: dict = field(default_factory=dict)


@dataclass(eq=False)
class NamespaceRecord:
    """What `argparse.Namespace` becomes (rosinality checkpoints keep their training args in one)."""

    values: dict = field(default_factory=dict)


class EasyDict(dict):
    """What `dnnlib.util.EasyDict` becomes: a plain dict."""


PLAIN_DTYPES = {
    "b1": np.bool_, "i1": np.int8, "i2": np.int16, "i4": np.int32, "i8": np.int64,
    "u1": np.uint8, "u2": np.uint16, "u4": np.uint32, "u8": np.uint64,
    "f2": np.float16, "f4": np.float32, "f8": np.float64, "c8": np.complex64, "c16": np.complex128,
}


@dataclass(eq=False)
class _DType:
    """A numpy dtype under construction: a plain numeric type code and its byte order, nothing else."""

    code: str
    byteorder: str = "="

    def dtype(self) -> np.dtype:
        dt = np.dtype(PLAIN_DTYPES[self.code])
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" else dt

    def build(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")):
            raise UnsafePickleError("refusing a numpy dtype with an unexpected state")
        _ver, order, subarray, names, fields, elsize, alignment, flags = state[:8]
        if subarray is not None or names is not None or fields is not None:
            raise UnsafePickleError("refusing a numpy dtype with fields or sub-arrays (plain numbers only)")
        if elsize not in (-1, 0) or alignment not in (-1, 0) or not isinstance(flags, int) or flags & ~0xFF:
            raise UnsafePickleError("refusing a numpy dtype with a custom size, alignment or flags")
        self.byteorder = order


@dataclass(eq=False)
class _Array:
    """A numpy array under construction; BUILD gives it shape, dtype and bytes (checked)."""

    value: np.ndarray | None = None

    def build(self, state: Any, limits: Limits) -> None:
        if self.value is not None:
            raise UnsafePickleError("a numpy array is built twice")
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafePickleError("refusing a numpy array with an unexpected state")
        _ver, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType):
            raise UnsafePickleError("a numpy array's dtype is not a plain numeric dtype")
        shape = _check_shape(shape, limits)
        dt = dtype.dtype()
        if isinstance(raw, str):  # protocol-2 pickles written under Python 2 carry latin-1 text
            raw = raw.encode("latin-1")
        if not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("refusing a numpy array whose data is not raw bytes")
        if len(raw) != math.prod(shape) * dt.itemsize:
            raise UnsafePickleError(f"numpy array of shape {list(shape)} {dt} needs "
                                    f"{math.prod(shape) * dt.itemsize} bytes, the file gives {len(raw)}")
        arr = np.frombuffer(raw, dtype=dt).reshape(shape, order="F" if fortran else "C")
        self.value = arr.astype(arr.dtype.newbyteorder("="), copy=True)


@dataclass(eq=False)
class Storage:
    """A torch storage read from the file: a flat numpy array of its element type."""

    data: np.ndarray

    @property
    def numel(self) -> int:
        return int(self.data.size)


STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def stored_itemsize(dtype: Any) -> int:
    """Bytes per element as stored in a file; "bfloat16" (which numpy lacks) is 2."""
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def decode_little_endian(raw: bytes | memoryview, dtype: Any) -> np.ndarray:
    """Little-endian bytes -> a flat numpy array of its own (torch storages, safetensors); "bfloat16" is
    widened to float32 exactly."""
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).copy()


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def itemsize(self) -> int:
        return stored_itemsize(STORAGE_DTYPES[self.name])


def _storage_from_bytes(kind: _StorageType, raw: bytes) -> Storage:
    return Storage(decode_little_endian(raw, STORAGE_DTYPES[kind.name]))


# ------------------------------------------------------------------------------------------------ checks


def _check_int(v: Any, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise UnsafePickleError(f"{what} must be an integer in [{lo}, {hi}], got {_short(v)}")
    return v


def _check_shape(shape: Any, limits: Limits) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 16:
        raise UnsafePickleError(f"refusing an array shape {_short(shape)}")
    dims = tuple(_check_int(s, "an array dimension", 0, limits.tensor_elements) for s in shape)
    if math.prod(dims) > limits.tensor_elements:
        raise UnsafePickleError(f"refusing an array of shape {list(dims)}: over {limits.tensor_elements:,} elements")
    return dims


def check_strides(size: tuple[int, ...], stride: tuple[int, ...], offset: int, numel: int) -> None:
    """Refuse zero or overlapping strides and views reaching outside their storage of `numel` elements."""
    if len(stride) != len(size):
        raise UnsafePickleError(f"tensor stride {list(stride)} does not fit its size {list(size)}")
    if math.prod(size) == 0:
        if offset > numel:
            raise UnsafePickleError(f"tensor offset {offset} is outside its storage of {numel} elements")
        return
    reach = 0  # the largest element offset the dimensions so far can address
    for n, st in sorted(((n, st) for n, st in zip(size, stride, strict=True) if n > 1), key=lambda p: p[1]):
        if st <= reach:
            raise UnsafePickleError(f"tensor strides {list(stride)} for size {list(size)} overlap "
                                    "(zero or repeated strides are refused)")
        reach += (n - 1) * st
    if offset + reach + 1 > numel:
        raise UnsafePickleError(f"tensor of size {list(size)} at offset {offset} reaches element "
                                f"{offset + reach} of a storage of {numel}")


def _short(v: Any) -> str:
    text = type(v).__name__ if isinstance(v, (bytes, bytearray, dict, list)) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------------------------ allowed callables


@dataclass(frozen=True)
class _Global:
    """A token for an allowed global; `kind` selects its handler."""

    kind: str
    name: str


ALLOWED_GLOBALS: dict[tuple[str, str], str] = {
    ("collections", "OrderedDict"): "ordered_dict",
    ("dnnlib.util", "EasyDict"): "easy_dict",
    ("dnnlib", "EasyDict"): "easy_dict",
    ("numpy", "dtype"): "np_dtype",
    ("numpy", "ndarray"): "np_ndarray",
    ("numpy.core.multiarray", "scalar"): "np_scalar",
    ("numpy._core.multiarray", "scalar"): "np_scalar",
    ("numpy.core.multiarray", "_reconstruct"): "np_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "np_reconstruct",
    ("torch._utils", "_rebuild_tensor_v2"): "rebuild_tensor",
    ("torch._utils", "_rebuild_parameter"): "rebuild_parameter",
    ("torch.storage", "_load_from_bytes"): "storage_from_bytes",
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): "persistent_obj",
    ("dnnlib.tflib.network", "Network"): "tf_network",
    ("argparse", "Namespace"): "namespace",
}
STORAGE_GLOBALS = {("torch", name): name for name in STORAGE_DTYPES}
STYLEGAN1_MODULES = ("dnnlib.tflib", "tensorflow")


def _refuse_global(module: str, name: str) -> UnsafePickleError:
    if module.startswith(STYLEGAN1_MODULES):
        return UnsafePickleError(f"a TensorFlow pickle that needs '{module}.{name}', which GAN Studio does not read")
    return UnsafePickleError(
        f"refusing to load '{module}.{name}' from the pickle: GAN Studio only accepts the tensors and "
        "settings of StyleGAN networks and never runs code from a file")


# ------------------------------------------------------------------------------------------------ the interpreter


HASHABLE_SCALARS = (str, bytes, int, float, bool, type(None))


class PickleMachine:
    """Runs the opcodes of one pickle over a byte buffer; `persistent` resolves BINPERSID ids (or refuses)."""

    def __init__(self, data: bytes | memoryview, pos: int = 0, limits: Limits = DEFAULT_LIMITS,
                 persistent=None, storages_allowed: bool = False, tensor_budget: int | None = None):
        self.data = memoryview(data)
        # tensors are copied out of storages: all of them together may not exceed twice the file's bytes
        self.tensor_budget = 2 * len(self.data) + (1 << 16) if tensor_budget is None else tensor_budget
        self.pos = pos
        self.limits = limits
        self.persistent = persistent
        self.storages_allowed = storages_allowed
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.objects = 0

    # -- reading ----------------------------------------------------------------------------------------------
    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise UnsafePickleError(f"truncated pickle: {n} bytes wanted at offset {self.pos}, "
                                    f"{len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def _line(self) -> bytes:
        end = bytes(self.data[self.pos:self.pos + 4096]).find(b"\n")
        if end < 0:
            raise UnsafePickleError(f"truncated or over-long text line in the pickle at offset {self.pos}")
        line = bytes(self._take(end + 1))[:-1]
        return line

    def _u(self, fmt: str) -> int:
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    # -- stack ------------------------------------------------------------------------------------------------
    def _push(self, v: Any) -> None:
        self.objects += 1
        if len(self.stack) >= self.limits.stack_depth or self.objects > self.limits.objects:
            raise UnsafePickleError("the pickle exceeds the interpreter's stack or object limit")
        self.stack.append(v)

    def _pop(self) -> Any:
        if not self.stack:
            raise UnsafePickleError("malformed pickle: stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise UnsafePickleError("malformed pickle: stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.marks:
            raise UnsafePickleError("malformed pickle: no MARK")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _memo_put(self, idx: int, value: Any) -> None:
        if idx < 0 or (idx not in self.memo and len(self.memo) >= self.limits.memo_entries):
            raise UnsafePickleError(f"the pickle's memo exceeds {self.limits.memo_entries:,} entries")
        self.memo[idx] = value

    def _memo_get(self, idx: int) -> Any:
        if idx not in self.memo:
            raise UnsafePickleError(f"malformed pickle: memo entry {idx} was never stored")
        return self.memo[idx]

    def _text(self, n: int) -> str:
        if n > self.limits.string_bytes:
            raise UnsafePickleError("the pickle holds an over-long string")
        try:
            return str(self._take(n), "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise UnsafePickleError("malformed pickle: a string is not UTF-8") from None

    # -- the loop ---------------------------------------------------------------------------------------------
    def load(self) -> Any:
        """Run until STOP; returns the result with stubs still in it (see `resolve`)."""
        ops = self._ops()
        while True:
            if self.pos >= len(self.data):
                raise UnsafePickleError("truncated pickle (no STOP opcode)")
            code = self.data[self.pos]
            self.pos += 1
            if code == 0x2E:  # STOP
                return self._pop()
            handler = ops.get(code)
            if handler is None:
                raise UnsafePickleError(f"refusing pickle opcode {bytes([code])!r} at offset {self.pos - 1}")
            handler()

    def _ops(self) -> dict[int, Any]:
        s = self
        return {
            0x80: lambda: s._u("<B"),  # PROTO
            0x95: lambda: s._u("<Q"),  # FRAME (framing is only a hint)
            0x28: s._op_mark,  # MARK
            0x30: s._pop,  # POP
            0x31: s._pop_mark,  # POP_MARK
            0x32: lambda: s._push(s._top()),  # DUP
            0x4E: lambda: s._push(None),  # NONE
            0x88: lambda: s._push(True),  # NEWTRUE
            0x89: lambda: s._push(False),  # NEWFALSE
            0x4B: lambda: s._push(s._u("<B")),  # BININT1
            0x4D: lambda: s._push(s._u("<H")),  # BININT2
            0x4A: lambda: s._push(s._u("<i")),  # BININT
            0x8A: lambda: s._push(s._long(s._u("<B"))),  # LONG1
            0x8B: lambda: s._push(s._long(s._u("<i"))),  # LONG4
            0x49: s._op_int,  # INT
            0x4C: s._op_long,  # LONG
            0x47: lambda: s._push(s._u(">d")),  # BINFLOAT
            0x46: s._op_float,  # FLOAT
            0x58: lambda: s._push(s._text(s._u("<I"))),  # BINUNICODE
            0x8C: lambda: s._push(s._text(s._u("<B"))),  # SHORT_BINUNICODE
            0x8D: lambda: s._push(s._text(s._u("<Q"))),  # BINUNICODE8
            0x56: lambda: s._push(s._line().decode("raw_unicode_escape")),  # UNICODE
            0x42: lambda: s._push(bytes(s._take(s._u("<I")))),  # BINBYTES
            0x43: lambda: s._push(bytes(s._take(s._u("<B")))),  # SHORT_BINBYTES
            0x8E: lambda: s._push(bytes(s._take(s._u("<Q")))),  # BINBYTES8
            0x54: lambda: s._push(str(s._take(s._u("<i")), "latin-1")),  # BINSTRING
            0x55: lambda: s._push(str(s._take(s._u("<B")), "latin-1")),  # SHORT_BINSTRING
            0x29: lambda: s._push(()),  # EMPTY_TUPLE
            0x85: lambda: s._push((s._pop(),)),  # TUPLE1
            0x86: lambda: s._push(tuple(reversed([s._pop(), s._pop()]))),  # TUPLE2
            0x87: lambda: s._push(tuple(reversed([s._pop(), s._pop(), s._pop()]))),  # TUPLE3
            0x74: lambda: s._push(tuple(s._pop_mark())),  # TUPLE
            0x5D: lambda: s._push([]),  # EMPTY_LIST
            0x6C: lambda: s._push(list(s._pop_mark())),  # LIST
            0x7D: lambda: s._push({}),  # EMPTY_DICT
            0x64: lambda: s._push(s._dict_from(s._pop_mark())),  # DICT
            0x8F: lambda: s._push(set()),  # EMPTY_SET
            0x91: lambda: s._push(frozenset(s._hashable(s._pop_mark()))),  # FROZENSET
            0x61: s._op_append,  # APPEND
            0x65: s._op_appends,  # APPENDS
            0x73: s._op_setitem,  # SETITEM
            0x75: s._op_setitems,  # SETITEMS
            0x90: s._op_additems,  # ADDITEMS
            0x70: lambda: s._memo_put(s._int_line(), s._top()),  # PUT
            0x71: lambda: s._memo_put(s._u("<B"), s._top()),  # BINPUT
            0x72: lambda: s._memo_put(s._u("<I"), s._top()),  # LONG_BINPUT
            0x94: lambda: s._memo_put(len(s.memo), s._top()),  # MEMOIZE
            0x67: lambda: s._push(s._memo_get(s._int_line())),  # GET
            0x68: lambda: s._push(s._memo_get(s._u("<B"))),  # BINGET
            0x6A: lambda: s._push(s._memo_get(s._u("<I"))),  # LONG_BINGET
            0x63: s._op_global,  # GLOBAL
            0x93: s._op_stack_global,  # STACK_GLOBAL
            0x52: s._op_reduce,  # REDUCE
            0x81: s._op_newobj,  # NEWOBJ
            0x62: s._op_build,  # BUILD
            0x51: s._op_binpersid,  # BINPERSID
        }

    def _op_mark(self) -> None:
        if len(self.marks) >= self.limits.mark_depth:
            raise UnsafePickleError("the pickle nests too deeply")
        self.marks.append(self.stack)
        self.stack = []

    def _long(self, n: int) -> int:
        if not 0 <= n <= 64:
            raise UnsafePickleError(f"refusing a {n}-byte integer in the pickle")
        return int.from_bytes(self._take(n), "little", signed=True)

    def _int_line(self) -> int:
        line = self._line()
        if len(line) > 20:
            raise UnsafePickleError("refusing an over-long integer in the pickle")
        try:
            return int(line)
        except ValueError:
            raise UnsafePickleError("malformed integer in the pickle") from None

    def _op_int(self) -> None:
        start = self.pos
        line = self._line()
        if line in (b"00", b"01"):  # protocol 0 writes booleans as INT 00 / 01
            self._push(line == b"01")
            return
        self.pos = start
        self._push(self._int_line())

    def _op_long(self) -> None:
        line = self._line().rstrip(b"L")
        if len(line) > 40:
            raise UnsafePickleError("refusing an over-long integer in the pickle")
        try:
            self._push(int(line))
        except ValueError:
            raise UnsafePickleError("malformed integer in the pickle") from None

    def _op_float(self) -> None:
        try:
            self._push(float(self._line()))
        except ValueError:
            raise UnsafePickleError("malformed float in the pickle") from None

    def _hashable(self, items: list[Any]) -> list[Any]:
        """Dict keys and set items: scalars or flat tuples of scalars (hashing nested shared tuples is
        exponential in their depth)."""
        for k in items:
            flat = k if isinstance(k, tuple) and len(k) <= 16 else (k,)
            if not all(isinstance(v, HASHABLE_SCALARS) for v in flat):
                raise UnsafePickleError(f"refusing a {type(k).__name__} as a dict key or set item")
        return items

    def _dict_from(self, items: list[Any]) -> dict:
        if len(items) % 2:
            raise UnsafePickleError("malformed pickle: odd number of dict items")
        return dict(zip(self._hashable(items[0::2]), items[1::2], strict=True))

    def _target(self, kind: type, op: str) -> Any:
        """The container an APPEND/SETITEM-style opcode fills: it must be a plain `kind`."""
        target = self._top()
        if not isinstance(target, kind):
            raise UnsafePickleError(f"refusing {op} on a {type(target).__name__}")
        return target

    def _op_append(self) -> None:
        v = self._pop()
        self._target(list, "APPEND").append(v)

    def _op_appends(self) -> None:
        items = self._pop_mark()
        self._target(list, "APPENDS").extend(items)

    def _op_setitem(self) -> None:
        v, k = self._pop(), self._pop()
        self._target(dict, "SETITEM")[self._hashable([k])[0]] = v

    def _op_setitems(self) -> None:
        items = self._pop_mark()
        self._target(dict, "SETITEMS").update(self._dict_from(items))

    def _op_additems(self) -> None:
        items = self._pop_mark()
        self._target(set, "ADDITEMS").update(self._hashable(items))

    # -- globals and calls ------------------------------------------------------------------------------------
    def _resolve_global(self, module: Any, name: Any) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise UnsafePickleError("malformed pickle: a global named by non-strings")
        kind = ALLOWED_GLOBALS.get((module, name))
        if kind is None and self.storages_allowed:
            storage = STORAGE_GLOBALS.get((module, name))
            if storage is not None:
                return _Global("storage_type", storage)
        if kind is None:
            raise _refuse_global(module, name)
        return _Global(kind, f"{module}.{name}")

    def _op_global(self) -> None:
        module = self._line().decode("utf-8", "replace")
        name = self._line().decode("utf-8", "replace")
        self._push(self._resolve_global(module, name))

    def _op_stack_global(self) -> None:
        name, module = self._pop(), self._pop()
        self._push(self._resolve_global(module, name))

    def _op_reduce(self) -> None:
        args, fn = self._pop(), self._pop()
        if not isinstance(fn, _Global) or not isinstance(args, tuple):
            raise UnsafePickleError(f"refusing to call a {type(fn).__name__} from the pickle")
        self._push(self._call(fn, args))

    def _op_newobj(self) -> None:
        args, cls = self._pop(), self._pop()
        if not isinstance(cls, _Global) or args != ():
            raise UnsafePickleError("refusing NEWOBJ on anything but an allowed class without arguments")
        made = {"easy_dict": EasyDict, "tf_network": TFNetworkRecord, "namespace": NamespaceRecord,
                "ordered_dict": OrderedDict}.get(cls.kind)
        if made is None:
            raise UnsafePickleError(f"refusing to instantiate {cls.name} from the pickle")
        self._push(made())

    def _op_build(self) -> None:
        state = self._pop()
        target = self._top()
        if isinstance(target, _Array):
            target.build(state, self.limits)
        elif isinstance(target, _DType):
            target.build(state)
        elif isinstance(target, TFNetworkRecord) and isinstance(state, dict) and not target.state:
            target.state = state
        elif isinstance(target, NamespaceRecord) and isinstance(state, dict):
            target.values.update(state)
        elif isinstance(target, EasyDict) and isinstance(state, dict):
            target.update(state)
        else:
            raise UnsafePickleError(f"refusing BUILD on a {type(target).__name__} (only GAN Studio's own "
                                    "records take a state)")

    def _op_binpersid(self) -> None:
        pid = self._pop()
        if self.persistent is None:
            raise UnsafePickleError("refusing a pickle with persistent ids (not a network pickle)")
        self._push(self.persistent(pid))

    def _call(self, fn: _Global, args: tuple) -> Any:
        kind = fn.kind
        if kind == "ordered_dict":
            if args == ():
                return OrderedDict()
            if len(args) == 1 and isinstance(args[0], list) and all(
                    isinstance(p, tuple) and len(p) == 2 for p in args[0]):
                return OrderedDict(self._dict_from([x for p in args[0] for x in p]))
        elif kind == "np_dtype":
            if 1 <= len(args) <= 3 and isinstance(args[0], str) and all(isinstance(a, bool) for a in args[1:]):
                code = args[0]
                if code not in PLAIN_DTYPES:
                    raise UnsafePickleError(f"refusing numpy dtype {code!r} (plain numeric dtypes only)")
                return _DType(code)
        elif kind == "np_scalar":
            if len(args) == 2 and isinstance(args[0], _DType) and isinstance(args[1], (bytes, str)):
                raw = args[1].encode("latin-1") if isinstance(args[1], str) else args[1]
                dt = args[0].dtype()
                if len(raw) != dt.itemsize:
                    raise UnsafePickleError(f"a numpy {dt} scalar needs {dt.itemsize} bytes, the file gives "
                                            f"{len(raw)}")
                return np.frombuffer(raw, dtype=dt)[0].astype(dt.newbyteorder("="))
        elif kind == "np_reconstruct":
            if len(args) == 3 and isinstance(args[0], _Global) and args[0].kind == "np_ndarray":
                return _Array()
        elif kind == "rebuild_tensor":
            return self._rebuild_tensor(args)
        elif kind == "rebuild_parameter":
            if len(args) in (3, 4) and isinstance(args[0], torch.Tensor) and isinstance(args[1], bool):
                _check_hooks(args[2])
                return args[0]
        elif kind == "storage_from_bytes":
            if len(args) == 1 and isinstance(args[0], bytes):
                return load_legacy_storage(args[0], self.limits)
        elif kind == "persistent_obj":
            if len(args) == 1 and isinstance(args[0], dict):
                return _persistent_record(args[0])
        raise UnsafePickleError(f"refusing a call of {fn.name} with arguments that do not fit its schema")

    def _rebuild_tensor(self, args: tuple) -> torch.Tensor:
        if len(args) not in (6, 7) or not isinstance(args[0], Storage):
            raise UnsafePickleError("refusing a tensor rebuild without a storage read from the file")
        storage, offset, size, stride, requires_grad, hooks = args[:6]
        offset = _check_int(offset, "a tensor's storage offset")
        size = _check_shape(size, self.limits)
        if not isinstance(stride, tuple):
            raise UnsafePickleError("a tensor's stride is not a tuple")
        stride = tuple(_check_int(s, "a tensor stride", 0, self.limits.tensor_elements) for s in stride)
        if not isinstance(requires_grad, bool):
            raise UnsafePickleError("a tensor's requires_grad is not a bool")
        _check_hooks(hooks)
        if len(args) == 7 and args[6] is not None and args[6] != {} and not isinstance(args[6], dict):
            raise UnsafePickleError("refusing tensor metadata")
        check_strides(size, stride, offset, storage.numel)
        flat = storage.data
        self.tensor_budget -= math.prod(size) * flat.itemsize
        if self.tensor_budget < 0:
            raise UnsafePickleError("the pickle's tensors re-use their storages to claim more memory than the "
                                    "file holds")
        view = np.lib.stride_tricks.as_strided(
            flat[offset:], shape=size, strides=[s * flat.itemsize for s in stride]) if flat.size else \
            np.zeros(size, flat.dtype)
        return torch.from_numpy(np.array(view, copy=True))


def _check_hooks(hooks: Any) -> None:
    if not (hooks is None or (isinstance(hooks, dict) and not hooks)):
        raise UnsafePickleError("refusing a tensor with backward hooks")


def _persistent_record(meta: dict) -> PersistentRecord:
    if meta.get("type") != "class":
        raise UnsafePickleError("unexpected persistent object record in the pickle")
    name, state, version = meta.get("class_name"), meta.get("state"), meta.get("version")
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 100:
        raise UnsafePickleError("a persistent record's class name is not a plain identifier")
    if state is None:
        state = {}
    if not isinstance(state, dict) or (version is not None and not isinstance(version, int)):
        raise UnsafePickleError(f"persistent record {name}: malformed state")
    return PersistentRecord(class_name=name, state=state, version=version)


# ------------------------------------------------------------------------------------------------ torch storages

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def _storage_pid(pid: Any) -> tuple[_StorageType, str, int]:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise UnsafePickleError("refusing a persistent id that is not a torch storage")
    _tag, kind, key, _location, numel = pid[:5]
    if not isinstance(kind, _Global) or kind.kind != "storage_type":
        raise UnsafePickleError("a storage of unknown element type")
    if not isinstance(key, str) or len(key) > 64:
        raise UnsafePickleError("a storage key is not a short string")
    if len(pid) == 6 and pid[5] is not None:
        raise UnsafePickleError("refusing a storage view")
    return _StorageType(kind.name), key, _check_int(numel, "a storage size")


def load_legacy_storage(blob: bytes, limits: Limits = DEFAULT_LIMITS) -> Storage:
    """A storage from torch's legacy `torch.save` bytes (what `Storage.__reduce__` writes into a pickle)."""
    pos = 0

    def next_pickle(**kw) -> Any:
        nonlocal pos
        vm = PickleMachine(blob, pos, limits, **kw)
        out = vm.load()
        pos = vm.pos
        return resolve(out, limits)

    if next_pickle() != LEGACY_MAGIC or next_pickle() != LEGACY_PROTOCOL:
        raise UnsafePickleError("a tensor storage in an unknown torch format")
    info = next_pickle()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise UnsafePickleError("a tensor storage from a big-endian machine or of unknown layout")
    found: dict[str, tuple[_StorageType, int]] = {}

    def pid(p: Any) -> str:
        kind, key, numel = _storage_pid(p)
        found[key] = (kind, numel)
        return key

    root = next_pickle(persistent=pid, storages_allowed=True)
    keys = next_pickle()
    if not (isinstance(root, str) and isinstance(keys, list) and keys == [root] and root in found):
        raise UnsafePickleError("a pickled tensor storage must hold exactly one storage")
    kind, numel = found[root]
    if pos + 8 > len(blob):
        raise UnsafePickleError("truncated tensor storage")
    (stored,) = struct.unpack("<q", blob[pos:pos + 8])
    nbytes = stored * kind.itemsize
    if stored != numel or stored < 0 or pos + 8 + nbytes != len(blob):
        raise UnsafePickleError(f"a tensor storage claims {stored} elements but holds "
                                f"{max(len(blob) - pos - 8, 0)} bytes")
    return _storage_from_bytes(kind, blob[pos + 8:])


def load_torch_zip(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A `torch.save` zip archive (data.pkl + data/<key> storages) read by the interpreter, weights only."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise UnsafePickleError(f"not a readable torch zip archive ({e})") from None
    if len(infos) > 100_000:
        raise UnsafePickleError("a torch archive with too many entries")
    by_name = {i.filename: i for i in infos}
    pkl = [n for n in by_name if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise UnsafePickleError("a zip archive that is not a torch checkpoint (no data.pkl)")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = by_name.get(prefix + "byteorder")
    if byteorder is not None and _read_entry(archive, byteorder, 16, len(data)) != b"little":
        raise UnsafePickleError("a big-endian torch checkpoint")

    def pid(p: Any) -> Storage:
        kind, key, numel = _storage_pid(p)
        info = by_name.get(f"{prefix}data/{key}")
        if info is None:
            raise UnsafePickleError(f"storage {key!r} is missing from the archive")
        raw = _read_entry(archive, info, numel * kind.itemsize, len(data))
        if len(raw) != numel * kind.itemsize:
            raise UnsafePickleError(f"storage {key!r} claims {numel} elements but holds {len(raw)} bytes")
        return _storage_from_bytes(kind, raw)

    cache: dict[Any, Storage] = {}

    def cached_pid(p: Any) -> Storage:
        key = p[2] if isinstance(p, tuple) and len(p) > 2 and isinstance(p[2], str) else None
        if key is not None and key in cache:
            return cache[key]
        st = pid(p)
        if key is not None:
            cache[key] = st
        return st

    body = _read_entry(archive, by_name[pkl[0]], len(data), len(data))
    vm = PickleMachine(body, 0, limits, persistent=cached_pid, storages_allowed=True,
                       tensor_budget=2 * len(data) + (1 << 16))
    return _guarded(lambda: resolve(vm.load(), limits))


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, most: int, file_size: int) -> bytes:
    """One archive member, refusing one that claims more bytes than wanted or than the file holds."""
    if info.file_size > most or (info.compress_type == zipfile.ZIP_STORED and info.file_size > file_size) \
            or info.file_size > 64 * max(info.compress_size, 1):
        raise UnsafePickleError(f"archive member {info.filename} claims {info.file_size} bytes")
    try:
        with archive.open(info) as f:
            raw = f.read(most + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise UnsafePickleError(f"archive member {info.filename} is corrupt ({e})") from None
    if len(raw) > most:
        raise UnsafePickleError(f"archive member {info.filename} holds more than it claims")
    return raw


# ------------------------------------------------------------------------------------------------ resolving


def resolve(root: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Replace stubs by plain values (numpy arrays and dtypes); each object visited once, nesting bounded."""
    done: dict[int, Any] = {}
    keep: list[Any] = []  # keeps ids stable while resolving

    def go(x: Any, depth: int) -> Any:
        if depth > limits.nesting:
            raise UnsafePickleError(f"the pickle nests objects more than {limits.nesting} deep")
        if isinstance(x, (str, bytes, int, float, bool, complex, type(None), np.generic, torch.Tensor, Storage)):
            return x
        key = id(x)
        if key in done:
            return done[key]
        keep.append(x)
        if isinstance(x, _Array):
            if x.value is None:
                raise UnsafePickleError("a numpy array without data")
            done[key] = x.value
        elif isinstance(x, _DType):
            done[key] = x.dtype()
        elif isinstance(x, _Global):
            raise UnsafePickleError(f"the pickle holds the callable {x.name} as data")
        elif isinstance(x, dict):
            out = type(x)() if isinstance(x, (OrderedDict, EasyDict)) else {}
            done[key] = out
            for k, v in x.items():
                out[go(k, depth + 1)] = go(v, depth + 1)
        elif isinstance(x, list):
            out = []
            done[key] = out
            out.extend(go(v, depth + 1) for v in x)
        elif isinstance(x, tuple):
            done[key] = tuple(go(v, depth + 1) for v in x)
        elif isinstance(x, (set, frozenset)):
            done[key] = type(x)(go(v, depth + 1) for v in x)
        elif isinstance(x, PersistentRecord):
            rec = PersistentRecord(x.class_name, {}, x.version)
            done[key] = rec
            rec.state = go(x.state, depth + 1)
        elif isinstance(x, TFNetworkRecord):
            rec = TFNetworkRecord()
            done[key] = rec
            rec.state = go(x.state, depth + 1)
        elif isinstance(x, NamespaceRecord):
            rec = NamespaceRecord()
            done[key] = rec
            rec.values = go(x.values, depth + 1)
        else:
            raise UnsafePickleError(f"unexpected {type(x).__name__} in the pickle")
        return done[key]

    return go(root, 0)


def _guarded(run) -> Any:
    try:
        return run()
    except UnsafePickleError:
        raise
    except (RecursionError, MemoryError, OverflowError, TypeError, ValueError, struct.error) as e:
        raise UnsafePickleError(f"malformed pickle ({type(e).__name__}: {str(e)[:120]})") from None


def safe_load(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Interpret a pickle with the allow-list and limits; raises UnsafePickleError naming what was refused."""
    return _guarded(lambda: resolve(PickleMachine(data, 0, limits).load(), limits))
