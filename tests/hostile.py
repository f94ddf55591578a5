"""A corpus of hostile and broken files, built the way an attacker would, and a runner that opens each one in a
forked child of a warmed-up process, measuring its peak memory and time.

Each case is (name, target, filename, data): `target` says which entry point opens it (load_model, read_recipe,
render, read_image, trailer).  The runner (`python -m tests.hostile CATEGORY`) prints one JSON line per case:
outcome ("refused" with the message, "loaded", or "crash" with a traceback), seconds, peak RSS in MB, whether a
clean model loaded bit-identically afterwards (the process was not poisoned) and whether a marker file that
hostile code would create exists.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import resource
import struct
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from studio.engine.recipe import LEGACY_MAGIC, PNG_SIGNATURE, encode_png

MARKER = Path(tempfile.gettempdir()) / "ganstudio-hostile-marker"

# ------------------------------------------------------------------------------------------------ opcode helpers


def su(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def glob(module: str, name: str) -> bytes:
    """STACK_GLOBAL of module.name."""
    return su(module) + su(name) + b"\x93"


def binint(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


P4 = b"\x80\x04"


def legacy_storage_blob(values: np.ndarray, kind: str = "FloatStorage", numel: int | None = None,
                        magic: int = 0x1950A86A20F9469CFC6C, little: bool = True, cut: int = 0) -> bytes:
    """Torch's legacy torch.save bytes of one storage (what Storage.__reduce__ embeds in an NVlabs pickle)."""
    out = pickle.dumps(magic, protocol=2) + pickle.dumps(1001, protocol=2)
    out += pickle.dumps({"protocol_version": 1001, "little_endian": little,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    n = len(values) if numel is None else numel
    out += b"\x80\x02(" + b"X\x07\x00\x00\x00storage" + b"ctorch\n" + kind.encode() + b"\n" + \
        b"X\x01\x00\x00\x00k" + b"X\x03\x00\x00\x00cpu" + binint(n) + b"Nt" + b"Q."
    out += pickle.dumps(["k"], protocol=2)
    out += struct.pack("<q", n) + np.asarray(values, "<f4").tobytes()
    return out[:len(out) - cut] if cut else out


def tensor_pickle(blob: bytes, offset: int, size: tuple, stride: tuple, wrap_in_dict: bool = True) -> bytes:
    """A protocol-4 pickle of {'G_ema': <tensor rebuilt from blob>} using the allowed torch functions."""
    def ints(xs):
        return b"(" + b"".join(binint(x) for x in xs) + b"t"
    storage = glob("torch.storage", "_load_from_bytes") + b"B" + struct.pack("<I", len(blob)) + blob + b"\x85R"
    body = glob("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + binint(offset) + ints(size) + \
        ints(stride) + b"\x89" + glob("collections", "OrderedDict") + b")R" + b"tR"
    if wrap_in_dict:
        body = b"}" + su("G_ema") + body + b"s"
    return P4 + body + b"."


# ------------------------------------------------------------------------------------------------ pickles


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def pickle_cases(clean: bytes) -> list[tuple[str, str, str, bytes]]:
    cases: list[tuple[str, str, bytes]] = []
    add = lambda name, data: cases.append((name, "load_model", "x.pkl", data))  # noqa: E731
    touch = f"touch {MARKER}"
    # code execution through every door
    add("os.system", pickle.dumps({"G_ema": _Reduce(os.system, (touch,))}))
    add("eval", pickle.dumps(_Reduce(eval, (f"__import__('os').system('{touch}')",))))
    add("exec-global-proto0", b"cbuiltins\nexec\n(Vimport os; os.system('" + touch.encode() + b"')\ntR.")
    add("getattr-chain", P4 + glob("builtins", "getattr") + b"(" + glob("os", "path") + su("join") + b"tR.")
    add("import", P4 + glob("builtins", "__import__") + b"(" + su("os") + b"tR.")
    add("subprocess", pickle.dumps(_Reduce(__import__("subprocess").call, (["touch", str(MARKER)],))))
    add("inst-opcode", b"(S'" + touch.encode() + b"'\nios\nsystem\n.")
    add("obj-opcode", b"(cos\nsystem\nS'" + touch.encode() + b"'\no.")
    add("persid", b"P0\n.")
    add("ext-opcode", b"\x80\x02\x82\x01.")
    add("newobj-ex", P4 + glob("builtins", "object") + b")}\x92.")
    add("torch-load-global", P4 + glob("torch", "load") + b"(" + su("x") + b"tR.")
    add("numpy-load", P4 + glob("numpy", "load") + b"(" + su("x") + b"tR.")
    add("tf-build-src", P4 + glob("dnnlib.tflib.network", "Network") + b")\x81}" + su("build_module_src") +
        su("import os; os.system('" + touch + "')") + b"sb\x85.")
    # BUILD on allowed callables and classes: the poisoning of torch's tensor rebuild
    for name, (mod, fn) in {"defaults-rebuild": ("torch._utils", "_rebuild_tensor_v2"),
                            "defaults-param": ("torch._utils", "_rebuild_parameter"),
                            "defaults-storage": ("torch.storage", "_load_from_bytes"),
                            "dict-ordereddict": ("collections", "OrderedDict"),
                            "dict-dtype": ("numpy", "dtype")}.items():
        add(f"build-on-{name}", P4 + glob(mod, fn) + b"}" + su("__defaults__") + b"(" + b"\x89N" + b"t" +
            b"sb" + b"}" + su("x") + b"K\x01s" + b"\x86.")
    add("build-on-dict", P4 + b"}}" + su("a") + b"K\x01sb.")
    add("build-on-list", P4 + b"]}b.")
    add("newobj-function", P4 + glob("torch._utils", "_rebuild_tensor_v2") + b")\x81.")
    # numpy dtypes that are not plain numbers
    dt = glob("numpy", "dtype")
    for code in ("O8", "V8", "U10", "S4", "M8", "m8", "f4,f4", "i4x"):
        add(f"dtype-{code}", P4 + dt + b"(" + su(code) + b"\x89\x88tR.")
    fields_state = b"(K\x03" + su("|") + b"N(" + su("x") + b"t}" + su("x") + b"(" + dt + b"(" + su("f4") + \
        b"\x89\x88tR" + b"\x8a\x06\x00\x00\x00\x00\x00\x01tsJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    add("dtype-fields-offset-2^40", P4 + dt + b"(" + su("V8") + b"\x89\x88tR" + fields_state + b".")
    add("dtype-build-fields", P4 + dt + b"(" + su("f4") + b"\x89\x88tR" + fields_state + b".")
    add("dtype-odd-state", P4 + dt + b"(" + su("f4") + b"\x89\x88tR" + su("evil") + b"b.")
    scalar = glob("numpy._core.multiarray", "scalar")
    add("scalar-short-bytes", P4 + scalar + b"(" + dt + b"(" + su("f8") + b"\x89\x88tR" + b"C\x03abc" + b"tR.")
    add("scalar-object", P4 + scalar + b"(" + dt + b"(" + su("O8") + b"\x89\x88tR" + b"C\x08" + b"\0" * 8 + b"tR.")
    rec = glob("numpy.core.multiarray", "_reconstruct")
    nd = glob("numpy", "ndarray")

    def array(shape: bytes, code: str, raw: bytes) -> bytes:
        return rec + b"(" + nd + b"K\x00\x85C\x01btR" + b"(K\x01" + shape + dt + b"(" + su(code) + \
            b"\x89\x88tR\x89" + b"B" + struct.pack("<I", len(raw)) + raw + b"tb"
    add("array-short-data", P4 + array(b"(K\x10K\x10t", "f4", b"\0" * 12) + b".")
    add("array-huge-shape", P4 + array(b"(J\xff\xff\xff\x7fJ\xff\xff\xff\x7ft", "f4", b"\0" * 8) + b".")
    add("array-negative-dim", P4 + array(b"(J\xff\xff\xff\xffK\x02t", "f4", b"\0" * 8) + b".")
    add("array-built-twice", P4 + array(b"(K\x02t", "f4", b"\0" * 8)[:-1] + b"(K\x01(K\x02t" + dt + b"(" +
        su("f4") + b"\x89\x88tR\x89C\x08" + b"\0" * 8 + b"tbb.")
    # memory: memo, stack, nesting, DAGs, huge claims
    add("memo-2^28", b"\x80\x04N" + b"r" + struct.pack("<I", 1 << 28) + b".")
    add("memo-get-unset", b"\x80\x04j" + struct.pack("<I", 12345) + b".")
    add("binbytes8-2^60", b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"ab.")
    add("binunicode-claim", b"\x80\x04X" + struct.pack("<I", 1 << 31) + b"ab.")
    add("long4-claim", b"\x80\x04\x8b" + struct.pack("<i", 1 << 30) + b"\0" * 100 + b".")
    add("marks-100k", b"\x80\x04" + b"(" * 100_000 + b"N.")
    add("nested-lists-100k", b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b".")
    add("nested-dicts-deep", b"\x80\x04" + b"}" + (su("k") + b"}") * 5000 + b"s" * 5000 + b".")
    dag = b"\x80\x04]\x94" + b"".join(b"(h" + bytes([i]) + b"h" + bytes([i]) + b"l\x94" for i in range(60)) + b"."
    add("list-dag-2^60", dag)
    tdag = b"\x80\x04)\x94" + b"".join(b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86\x94" for i in range(60))
    add("tuple-dag-as-dict-key", tdag + b"}" + b"h\x3c" + b"Ns.")
    add("tuple-dag-in-set", tdag + b"\x8f(h\x3c\x90.")
    add("unhashable-key", b"\x80\x04}]Ns.")
    add("stack-underflow", b"\x80\x04R.")
    add("odd-setitems", b"\x80\x04}(NNNu.")
    add("append-to-tuple", b"\x80\x04)Na.")
    add("setitem-on-list", b"\x80\x04]NNs.")
    add("no-stop", b"\x80\x04N")
    add("empty", b"")
    add("unknown-opcode", b"\x80\x04\xff.")
    add("int-line-huge", b"I" + b"9" * 100_000 + b"\n.")
    add("float-line-junk", b"Fnan-ish\n.")
    # persistent records
    persist = glob("torch_utils.persistence", "_reconstruct_persistent_obj")

    def record(class_name: bytes, state: bytes = b"}") -> bytes:
        return persist + b"}" + su("type") + su("class") + b"s" + su("class_name") + class_name + b"s" + \
            su("state") + state + b"s" + b"\x85R"
    npy_name = rec + b"(" + nd + b"K\x00\x85C\x01btR" + b"(K\x01(K\x01t" + dt + b"(" + su("f4") + \
        b"\x89\x88tR\x89C\x04\0\0\0\0tb"
    add("record-class-name-array", P4 + b"}" + su("G_ema") + record(npy_name) + b"s.")
    add("record-class-name-long", P4 + b"}" + su("G_ema") + record(su("A" * 200)) + b"s.")
    add("record-state-list", P4 + b"}" + su("G_ema") + record(su("Generator"), b"]") + b"s.")
    add("record-type-not-class", P4 + b"}" + su("G_ema") + persist + b"}" + su("type") + su("fn") + b"s\x85R" +
        b"s.")
    add("record-no-synthesis", P4 + b"}" + su("G_ema") + record(su("Generator")) + b"s.")
    add("G_ema-is-int", P4 + b"}" + su("G_ema") + b"K\x05s.")
    add("not-a-dict", P4 + b"K\x05.")
    # modules shared in a DAG: 40 levels of a record whose two children are the same record
    mods = b"\x94"
    level = persist + b"}" + su("type") + su("class") + b"s" + su("class_name") + su("M") + b"s" + su("state") + \
        b"}" + su("_modules") + b"}" + su("mapping") + b"h%cs" + su("synthesis") + b"h%cs" + \
        b"ss\x85R\x94"
    levels = [level.replace(b"%c", bytes([i])) for i in range(40)]
    body = record(su("Leaf")) + mods + b"0" + b"0".join(levels)
    add("record-dag-2^40", P4 + b"}" + su("G_ema") + body + b"s.")
    # a record that holds itself: its _modules dict (memo 0) gets the record (memo 1) after the REDUCE
    cyc = P4 + b"}" + su("G_ema") + persist + b"}" + su("type") + su("class") + b"s" + su("class_name") + \
        su("G") + b"s" + su("state") + b"}" + su("_modules") + b"}\x94" + b"ss\x85R\x94" + \
        b"h\x00" + su("mapping") + b"h\x01s" + su("synthesis") + b"h\x01s0" + b"s."
    add("record-cycle", cyc)
    # tensors: storages, offsets, strides
    vals = np.arange(16, dtype=np.float32)
    blob = legacy_storage_blob(vals)
    add("tensor-offset-out-of-range", tensor_pickle(blob, 1 << 20, (4,), (1,)))
    add("tensor-extent-out-of-range", tensor_pickle(blob, 10, (4, 4), (4, 1)))
    add("tensor-zero-stride", tensor_pickle(blob, 0, (100_000, 100_000), (0, 0)))
    add("tensor-overlapping-stride", tensor_pickle(blob, 0, (4000, 4000), (1, 1)))
    add("tensor-negative-offset", tensor_pickle(blob, -4, (4,), (1,)))
    add("tensor-negative-stride", tensor_pickle(blob, 8, (4,), (-1,)))
    add("tensor-stride-rank", tensor_pickle(blob, 0, (4, 4), (4,)))
    add("tensor-huge-dims", tensor_pickle(blob, 0, (1 << 30, 1 << 30), (1, 1)))
    add("storage-numel-lies", tensor_pickle(legacy_storage_blob(vals, numel=1 << 30), 0, (4,), (1,)))
    add("storage-truncated", tensor_pickle(legacy_storage_blob(vals, cut=20), 0, (4,), (1,)))
    add("storage-bad-magic", tensor_pickle(legacy_storage_blob(vals, magic=1234), 0, (4,), (1,)))
    add("storage-big-endian", tensor_pickle(legacy_storage_blob(vals, little=False), 0, (4,), (1,)))
    add("storage-unknown-type", tensor_pickle(legacy_storage_blob(vals, kind="ComplexFloatStorage"), 0, (4,),
                                              (1,)))
    add("storage-os-global", tensor_pickle(legacy_storage_blob(vals).replace(b"ctorch\nFloatStorage\n",
                                                                             b"cos\nsystem\n"), 0, (4,), (1,)))
    reuse = P4 + b"}" + su("G_ema") + b"]" + b"(" + b"".join(
        tensor_pickle(blob, 0, (16,), (1,), wrap_in_dict=False)[2:-1] for _ in range(2)) + b"e" + b"s."
    add("tensor-reuse-ok", reuse)
    # a real snapshot, broken: truncations and byte flips (either a clear refusal or a correct load)
    for cut in (1, 100, 1000, len(clean) // 3, len(clean) // 2, len(clean) - 1):
        add(f"clean-cut-{cut}", clean[:cut])
    rng = np.random.default_rng(0)
    for i in range(24):
        data = bytearray(clean)
        for pos in rng.integers(0, len(data), size=1 + i % 4):
            data[pos] = int(rng.integers(0, 256))
        add(f"clean-flip-{i}", bytes(data))
    return cases


# ------------------------------------------------------------------------------------------------ torch zips


def torch_zip(entries: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def zip_cases(clean_pt: bytes) -> list[tuple[str, str, str, bytes]]:
    cases = []
    add = lambda name, data: cases.append((name, "load_model", "x.pt", data))  # noqa: E731
    touch = f"touch {MARKER}"
    add("zip-os-system", torch_zip({"archive/data.pkl": pickle.dumps({"g_ema": _Reduce(os.system, (touch,))})}))
    add("zip-no-data-pkl", torch_zip({"archive/other": b"x"}))
    add("not-a-zip", b"PK\x03\x04 this is not a zip")
    add("legacy-torch-format", b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.")

    def pid_pickle(numel: int, key: str = "0", size=(4,), stride=(1,), offset=0) -> bytes:
        def ints(xs):
            return b"(" + b"".join(binint(x) for x in xs) + b"t"
        pid = b"(" + su("storage") + glob("torch", "FloatStorage") + su(key) + su("cpu") + binint(numel) + \
            b"tQ"
        t = glob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + binint(offset) + ints(size) + ints(stride) + \
            b"\x89" + glob("collections", "OrderedDict") + b")RtR"
        return P4 + b"}" + su("g_ema") + b"}" + su("style.1.weight") + t + b"ss."
    data = np.arange(4, dtype="<f4").tobytes()
    add("zip-missing-storage", torch_zip({"archive/data.pkl": pid_pickle(4, key="7"), "archive/data/0": data}))
    add("zip-storage-short", torch_zip({"archive/data.pkl": pid_pickle(1 << 20), "archive/data/0": data}))
    add("zip-zero-stride-151M", torch_zip({"archive/data.pkl": pid_pickle(4, size=(12288, 12288), stride=(0, 0)),
                                           "archive/data/0": data}))
    add("zip-offset-outside", torch_zip({"archive/data.pkl": pid_pickle(4, offset=100), "archive/data/0": data}))
    add("zip-deflate-bomb", torch_zip({"archive/data.pkl": pid_pickle(1 << 26),
                                       "archive/data/0": b"\0" * (1 << 28)}, zipfile.ZIP_DEFLATED))
    add("zip-big-endian", torch_zip({"archive/data.pkl": pid_pickle(4), "archive/data/0": data,
                                     "archive/byteorder": b"big"}))
    # a zip whose central directory claims a huge member
    z = bytearray(torch_zip({"archive/data.pkl": pid_pickle(4), "archive/data/0": data}))
    cd = z.rfind(b"PK\x01\x02")
    z[cd + 24:cd + 28] = struct.pack("<I", 0xFFFFFFF0)
    add("zip-size-lies", bytes(z))
    add("zip-g_ema-not-dict", torch_zip({"archive/data.pkl": pickle.dumps({"g_ema": 5})}))
    add("zip-g_ema-empty", torch_zip({"archive/data.pkl": pickle.dumps({"g_ema": {}})}))
    for cut in (10, len(clean_pt) // 2, len(clean_pt) - 30):
        add(f"clean-pt-cut-{cut}", clean_pt[:cut])
    return cases


# ------------------------------------------------------------------------------------------------ safetensors


def safetensors_bytes(header: dict | bytes, body: bytes = b"", header_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if header_len is None else header_len
    return struct.pack("<Q", n) + raw + body


def own_meta(cfg: dict) -> dict:
    return {"format": "ganstudio-generator", "version": "1", "config": json.dumps(cfg)}


def safetensors_cases(clean_own: bytes) -> list[tuple[str, str, str, bytes]]:
    cases = []
    add = lambda name, data: cases.append((name, "load_model", "x.safetensors", data))  # noqa: E731
    small = {"z_dim": 32, "w_dim": 32, "resolution": 32, "mapping_layers": 2, "channel_base": 512,
             "channel_max": 64}
    add("header-len-huge", safetensors_bytes({}, header_len=1 << 40))
    add("header-len-past-file", safetensors_bytes({}, header_len=100))
    add("header-not-json", safetensors_bytes(b"{not json"))
    add("header-list", safetensors_bytes(b"[1,2]"))
    add("meta-not-strings", safetensors_bytes({"__metadata__": {"format": 5}}))
    t = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    meta = own_meta(small)
    add("tensor-past-file", safetensors_bytes({"__metadata__": meta, "a": t}, b"\0" * 8))
    add("tensor-size-mismatch", safetensors_bytes({"__metadata__": meta, "a": {**t, "shape": [1 << 30]}},
                                                  b"\0" * 16))
    add("tensor-negative-shape", safetensors_bytes({"__metadata__": meta, "a": {**t, "shape": [-4]}}, b"\0" * 16))
    add("tensor-unknown-dtype", safetensors_bytes({"__metadata__": meta, "a": {**t, "dtype": "F8_E4M3"}}))
    add("tensor-overlap", safetensors_bytes({"__metadata__": meta, "a": t, "b": t}, b"\0" * 16))
    add("not-own-format", safetensors_bytes({"a": t}, b"\0" * 16))
    for name, cfg in {"channel-max-4096": {**small, "channel_max": 4096, "channel_base": 1 << 20},
                      "resolution-2^20": {**small, "resolution": 1 << 20},
                      "resolution-not-pow2": {**small, "resolution": 48},
                      "z-dim-string": {**small, "z_dim": "32"}, "z-dim-bool": {**small, "z_dim": True},
                      "clamp-nan": {**small, "conv_clamp": float("nan")},
                      "lr-negative": {**small, "mapping_lr_mul": -1.0},
                      "arch-evil": {**small, "architecture": "__import__('os')"},
                      "config-list": [1, 2]}.items():
        add(f"config-{name}", safetensors_bytes({"__metadata__": own_meta(cfg)}))
    add("config-not-json", safetensors_bytes({"__metadata__": {"format": "ganstudio-generator", "config": "{"}}))
    # a clean file with NaN weights
    n = int.from_bytes(clean_own[:8], "little")
    header = json.loads(clean_own[8:8 + n])
    name = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")
    b0 = 8 + n + header[name]["data_offsets"][0]
    nan = bytearray(clean_own)
    nan[b0:b0 + 4] = struct.pack("<f", float("nan"))
    add("weights-nan", bytes(nan))
    for cut in (4, 12, len(clean_own) // 2, len(clean_own) - 1):
        add(f"clean-own-cut-{cut}", clean_own[:cut])
    return cases


# ------------------------------------------------------------------------------------------------ PNGs and recipes


def png_with_text(text: bytes, key: bytes = b"ganstudio", compressed: bool = True) -> bytes:
    """A valid 8x8 PNG with one iTXt chunk whose payload is `text` (deflated when `compressed`)."""
    png = encode_png(np.zeros((8, 8, 3), np.uint8))
    body = zlib.compress(text, 9) if compressed else text
    payload = key + b"\0" + (b"\1" if compressed else b"\0") + b"\0\0\0" + body
    chunk = struct.pack(">I", len(payload)) + b"iTXt" + payload + struct.pack(">I", zlib.crc32(b"iTXt" + payload))
    return png[:33] + chunk + png[33:]


def f32(a) -> dict:
    a = np.asarray(a, "<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode()}


def recipe_cases(good: dict) -> list[tuple[str, str, str, bytes]]:
    """`good` is a valid recipe of the model the runner renders with; each case breaks one field."""
    cases = []
    add = lambda name, data, target="render": cases.append((name, target, "x.png", data))  # noqa: E731

    def variant(**changes) -> bytes:
        d = json.loads(json.dumps(good))
        for path, value in changes.items():
            *head, last = path.split("__")
            node = d
            for k in head:
                node = node[k]
            node[last] = value
        return png_with_text(json.dumps(d).encode())

    def raw_json(text: str) -> bytes:
        return png_with_text(text.encode())
    add("not-png", b"GIF89a....")
    add("truncated-png", png_with_text(b"{}")[:40])
    bad = bytearray(png_with_text(json.dumps(good).encode()))
    bad[40] ^= 0xFF
    add("bad-crc", bytes(bad))
    add("zlib-bomb-1GB", png_with_text(b" " * (1 << 30)))
    add("text-uncompressed-40MB", png_with_text(b" " * (40 << 20), compressed=False))
    add("recipe-not-json", raw_json("{nope"))
    add("recipe-deep-json", raw_json("[" * 100_000 + "]" * 100_000))
    for v in ("abc", None, "NaN", 1e308, -1, 2.5):
        add(f"version-{v}", variant(version=v))
    stack = "stack__"
    for v in (float("inf"), -1, 2**40, "7", 1.5, True):
        add(f"seed-{v}", variant(**{stack + "seed": v}))
    add("seed-Infinity-literal", raw_json(json.dumps(good).replace('"seed": 0', '"seed": Infinity')))
    for v in (float("nan"), float("inf"), "x", None):
        add(f"psi-{v}", variant(**{stack + "psi": v}))
    add("noise-seed-huge", variant(**{stack + "noise_seed": 2**70}))
    add("noise-mode-evil", variant(**{stack + "noise_mode": "evil"}))
    add("cutoff-negative", variant(**{stack + "cutoff": -5}))
    ws = np.frombuffer(base64.b64decode(good["ws"]["f32"]), "<f4").reshape(good["ws"]["shape"])
    nan_ws = ws.copy()
    nan_ws[0, 0] = np.nan
    add("ws-nan", variant(ws=f32(nan_ws)))
    add("ws-wrong-shape", variant(ws=f32(np.zeros((3, 7)))))
    add("ws-huge-shape", variant(ws={"shape": [1 << 20, 1 << 20], "f32": ""}))
    add("ws-b64-mismatch", variant(ws={"shape": [4], "f32": "AAAA"}))
    add("ws-not-b64", variant(ws={"shape": [1], "f32": "!!!!!!!!"}))
    add("ws-rows-huge", variant(ws=f32(ws[:1]), ws_rows=10**9))
    add("ws-rows-string", variant(ws=f32(ws[:1]), ws_rows="3"))
    add("model-not-dict", variant(model=[1]))
    add("model-sha-junk", variant(model={"sha256": "../../etc/passwd"}))
    add("stack-not-dict", variant(stack=5))
    add("stack-version-nan", raw_json(json.dumps(good).replace('"version": 1, "seed"', '"version": NaN, "seed"')))
    tab = {"name": "t", "layers": ["b8.conv0"], "selection": f32(np.ones((8, 8))),
           "weights": {"b8.conv0": f32(np.ones(64))}, "value": 10.0}
    add("tab-unknown-layer", variant(**{stack + "tabs": [{**tab, "layers": ["b999.conv0"],
                                                        "weights": {"b999.conv0": f32(np.ones(64))}}]}))
    add("tab-grid-3x3", variant(**{stack + "tabs": [{**tab, "selection": f32(np.ones((3, 3)))}]}))
    add("tab-grid-not-square", variant(**{stack + "tabs": [{**tab, "selection": f32(np.ones((8, 4)))}]}))
    add("tab-weights-length", variant(**{stack + "tabs": [{**tab, "weights": {"b8.conv0": f32(np.ones(7))}}]}))
    add("tab-value-1e308", variant(**{stack + "tabs": [{**tab, "value": 1e308}]}))
    add("tab-value-nan", variant(**{stack + "tabs": [{**tab, "value": float("nan")}]}))
    add("tab-weights-inf", variant(**{stack + "tabs": [{**tab, "weights": {"b8.conv0": f32(np.full(64, 1e38))},
                                                      "value": 900.0}]}))
    add("tab-detector-string", variant(**{stack + "tabs": [{**tab, "detector": "evil"}]}))
    add("tabs-not-list", variant(**{stack + "tabs": {"a": 1}}))
    d = {"name": "d", "vector": f32(np.full(32, np.nan)), "strength": 1.0}
    add("direction-nan", variant(**{stack + "directions": [d]}))
    add("direction-wrong-shape", variant(**{stack + "directions": [{**d, "vector": f32(np.ones(5))}]}))
    add("direction-strength-inf", variant(**{stack + "directions": [{**d, "vector": f32(np.ones(32)),
                                                                    "strength": "Infinity"}]}))
    add("direction-strength-huge", variant(**{stack + "directions": [{**d, "vector": f32(np.ones(32)),
                                                                     "strength": 1e30}]}))
    add("mix-method-evil", variant(**{stack + "mix": {"w": f32(ws), "t": 0.5, "method": "evil"}}))
    add("mix-t-nan", variant(**{stack + "mix": {"w": f32(ws), "t": float("nan")}}))
    add("z-wrong-shape", variant(**{stack + "z": f32(np.ones(3))}))
    add("base-nan", variant(**{stack + "base": f32(nan_ws)}))
    # the window a windowed batch sample records (replayed crop by crop on re-render)
    add("window-not-dict", variant(window=[1, 2]))
    add("window-split-unknown", variant(window={"split": "b999.conv0", "boxes": {}}))
    add("window-split-torgb", variant(window={"split": "b8.torgb", "boxes": {}}))
    add("window-box-outside", variant(window={"split": "b8.conv0", "boxes": {"b8.conv0": [[0, 99], [0, 3]]}}))
    add("window-box-negative", variant(window={"split": "b8.conv0", "boxes": {"b8.conv0": [[-4, 2], [0, 3]]}}))
    add("window-box-inverted", variant(window={"split": "b8.conv0", "boxes": {"b8.conv0": [[5, 2], [0, 3]]}}))
    add("window-box-floats", variant(window={"split": "b8.conv0", "boxes": {"b8.conv0": [[0.5, 2], [0, 3]]}}))
    add("window-box-before-split", variant(window={"split": "b16.conv0", "boxes": {"b8.conv0": [[0, 2], [0, 3]]}}))
    add("window-many-boxes", variant(window={"split": "b8.conv0", "boxes": {f"l{i}": [[0, 1], [0, 1]]
                                                                           for i in range(100_000)}}))
    add("hint-model-path-huge", variant(model={**good["model"], "path": "x" * 100_000}))
    add("hint-model-path-number", variant(model={**good["model"], "path": 5}))
    add("precision-evil", variant(precision="fp8"))
    add("precision-number", variant(precision=16))
    # Pillow: a decompression bomb (100,000 x 100,000 pixels in a few KB) and broken image data
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = PNG_SIGNATURE + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * (1 << 20))
    bomb += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    bomb += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    add("pillow-bomb", bomb, "read_image")
    add("pillow-garbage", PNG_SIGNATURE + b"\0" * 64, "read_image")
    # the original tool's trailer: backtracking regexes took 19 s for 1,000 digits
    for n in (1000, 4000, 100_000):
        add(f"trailer-{n}-digits", encode_png(np.zeros((8, 8, 3), np.uint8)) + b"1" * n + b"dara", "render")
    add("trailer-colons", encode_png(np.zeros((8, 8, 3), np.uint8)) + b"1:" * 200_000 + b"dara", "render")
    add("trailer-inf", encode_png(np.zeros((8, 8, 3), np.uint8)) + b":".join([b"1e999"] * 64) + b"dara", "render")
    add("trailer-length-lies", encode_png(np.zeros((8, 8, 3), np.uint8)) + b"0.5:" * 20 + b"\0" * 16 +
        struct.pack("<i", 1 << 30) + LEGACY_MAGIC, "render")
    return cases


# ------------------------------------------------------------------------------------------------ runner


def _open(target: str, path: Path, model_path: Path | None):
    from studio.engine.recipe import parse_legacy_trailer, read_image, read_recipe

    if target == "load_model":
        from studio.engine.loaders import load_model
        return load_model(path)
    if target == "read_recipe":
        return read_recipe(path)
    if target == "read_image":
        return read_image(path)
    if target == "trailer":
        return parse_legacy_trailer(path.read_bytes())
    if target == "render":
        from studio.engine.engine import Engine
        eng = Engine.open(model_path, data_root=path.parent / "data")
        recipe = eng.read_png(path)
        return eng.render_recipe(recipe).uint8()
    raise ValueError(target)


def _state_digest(model) -> str:
    import hashlib
    h = hashlib.sha256()
    for k, v in sorted(model.generator.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    return h.hexdigest()


def run_case(case, workdir: Path, clean_path: Path, clean_digest: str, model_path: Path | None) -> dict:
    """Open one case in a forked child; returns its outcome, time, peak RSS and whether the child stayed clean."""
    name, target, filename, data = case
    read_fd, write_fd = os.pipe()
    path = workdir / f"{abs(hash(name))}-{filename}"
    path.write_bytes(data)
    MARKER.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: open the file, then check that a clean model still loads bit-identically
        os.close(read_fd)
        from studio.engine.edits import EditError
        from studio.engine.loaders import ModelLoadError, load_model
        from studio.engine.recipe import RecipeError
        result: dict = {}
        try:
            _open(target, path, model_path)
            result["outcome"] = "loaded"
        except (ModelLoadError, RecipeError, EditError) as e:
            result["outcome"] = "refused"
            result["message"] = str(e)[:300]
        except BaseException:  # noqa: BLE001 - anything else is a crash the test reports
            result["outcome"] = "crash"
            result["message"] = traceback.format_exc()[-1500:]
        result["seconds"] = time.perf_counter() - t0
        try:
            after = load_model(clean_path)
            t = torch.load(io.BytesIO(_weights_only_blob()), weights_only=True)
            result["clean_after"] = _state_digest(after) == clean_digest and torch.equal(t, torch.arange(4.0))
        except Exception as e:  # noqa: BLE001
            result["clean_after"] = False
            result["message"] = result.get("message", "") + f" | clean load failed: {e}"
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    deadline = time.time() + 30
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.time() > deadline:
            os.kill(pid, 9)
            os.wait4(pid, 0)
            os.close(read_fd)
            return {"name": name, "outcome": "timeout", "seconds": 30.0, "rss_mb": 0, "clean_after": False}
        time.sleep(0.005)
    with os.fdopen(read_fd, "rb") as f:
        raw = f.read()
    path.unlink(missing_ok=True)
    result = json.loads(raw) if raw else {"outcome": "crash", "message": f"child died with status {status}"}
    result.update(name=name, target=target, rss_mb=usage.ru_maxrss / 1024, marker=MARKER.exists())
    return result


def _weights_only_blob() -> bytes:
    buf = io.BytesIO()
    torch.save(torch.arange(4.0), buf)
    return buf.getvalue()


def network_cases() -> list[tuple[str, str, str, bytes]]:
    """StyleGAN3 and TensorFlow pickles, broken: truncations, byte flips, code in the build source, cyclic or
    malformed components and variables."""
    from .conftest import random_generator
    from .tf_format import fake_tflib, tf_pickle

    cases: list[tuple[str, str, str, bytes]] = []
    add = lambda name, data: cases.append((name, "load_model", "x.pkl", data))  # noqa: E731
    sg3 = (Path(__file__).parent / "fixtures" / "sg3r_c2_16.pkl").read_bytes()
    tf = tf_pickle(random_generator())
    rng = np.random.default_rng(1)
    for tag, clean in (("sg3", sg3), ("tf", tf)):
        for cut in (100, len(clean) // 3, len(clean) - 1):
            add(f"{tag}-cut-{cut}", clean[:cut])
        for i in range(10):
            data = bytearray(clean)
            for pos in rng.integers(0, len(data), size=1 + i % 3):
                data[pos] = int(rng.integers(0, 256))
            add(f"clean-flip-{tag}-{i}", bytes(data))
    code = f"import os\nos.system('touch {MARKER}')\n"
    add("tf-loads-code-in-build-src", tf_pickle(random_generator(), build_src=code))  # loads; the code never runs
    add("tf-code-in-build-src-unknown-kwarg", tf_pickle(random_generator(), build_src=code, extra_kwargs={"x": 1}))
    with fake_tflib() as Network:
        def net(**state):
            return Network({"version": 4, "name": "Gs", "static_kwargs": {}, "components": {},
                            "build_func_name": "G_main", "variables": [], **state})
        loop = net()
        loop.state["components"] = {"mapping": loop, "synthesis": loop}
        add("tf-cyclic-components", pickle.dumps((loop,), protocol=3))

        def gs(**state):
            return net(components={"mapping": net(name="G_mapping"), "synthesis": net(name="G_synthesis")}, **state)
        add("tf-variables-dict", pickle.dumps((gs(variables={"a": 1}),), protocol=3))
        add("tf-variable-not-array", pickle.dumps((gs(variables=[("dlatent_avg", "x" * 100)]),), protocol=3))
        add("tf-version-3", pickle.dumps((gs(version=3),), protocol=3))
        add("tf-kwargs-list", pickle.dumps((gs(static_kwargs=[1, 2]),), protocol=3))
        add("tf-no-synthesis-layers", pickle.dumps((gs(),), protocol=3))
        add("tf-stylegan1", pickle.dumps((gs(build_func_name="G_style"),), protocol=3))
    return cases


def build(category: str, workdir: Path) -> tuple[list, Path, Path | None]:
    """The cases of one category, the clean model file checked after each, and the model recipes render with."""
    from studio.engine.engine import Engine
    from studio.engine.loaders import save_model

    from .conftest import random_generator
    from .nvlabs_format import nvlabs_pickle

    G = random_generator()
    clean_pkl = workdir / "clean.pkl"
    clean_pkl.write_bytes(nvlabs_pickle(G))
    own = save_model(G, workdir / "clean.safetensors")
    if category == "pickles":
        return pickle_cases(clean_pkl.read_bytes()), clean_pkl, None
    if category == "zips":
        from .test_loaders import _to_rosinality
        buf = io.BytesIO()
        torch.save({"g_ema": _to_rosinality(G), "latent_avg": G.mapping.w_avg.clone()}, buf)
        return zip_cases(buf.getvalue()), clean_pkl, None
    if category == "safetensors":
        return safetensors_cases(own.read_bytes()), clean_pkl, None
    if category == "networks":
        return network_cases(), clean_pkl, None
    if category == "pngs":
        eng = Engine.open(own, data_root=workdir / "data")
        from studio.engine.edits import EditStack
        from studio.engine.recipe import read_recipe
        res = eng.render(EditStack(seed=0, psi=0.7))
        good_png = eng.save_png(workdir / "good.png", EditStack(seed=0, psi=0.7), res)
        from studio.engine.recipe import RECIPE_KEYWORD, _chunks, _itxt
        chunks, _ = _chunks(good_png.read_bytes(), "good")
        text = next(_itxt(p, "good")[1] for t, p in chunks if t == b"iTXt" and _itxt(p, "good")[0] == RECIPE_KEYWORD)
        read_recipe(good_png)
        return recipe_cases(json.loads(text)), clean_pkl, own
    raise ValueError(category)


def main(category: str) -> None:
    from studio.engine.loaders import load_model

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cases, clean, model = build(category, workdir)
        digest = _state_digest(load_model(clean))
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"base_rss_mb": base_rss, "cases": len(cases)}), flush=True)
        for case in cases:
            print(json.dumps(run_case(case, workdir, clean, digest, model)), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
