"""The process a detector plugin runs in: `python -m studio.engine.plugin_worker`, one per plugin file.

It imports the plugin and answers requests on its stdin/stdout.  Every message is a frame: a 4-byte big-endian
length, a JSON header, then the raw bytes of the arrays the header lists (`{"arrays": [{"name", "dtype",
"shape"}]}`, float32 or uint8 only, C order).  No pickle crosses the pipe in either direction, so the host never
unpickles what a plugin returns.  The plugin's own prints go to stderr; the protocol keeps the real stdout.

Requests: {"cmd": "load", "path"} -> {"ok", "name", "params", "doc"}; {"cmd": "layers", "params"} -> {"ok",
"layers"}; {"cmd": "detect", "params", arrays: features (named "f:<layer>") and "image"} -> {"ok", arrays: "mask"}.
A failure answers {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import traceback
import types
from typing import Any, BinaryIO

import numpy as np

MAX_HEADER = 1 << 20
MAX_ARRAY_BYTES = 1 << 30
WIRE_DTYPES = {"float32": np.float32, "uint8": np.uint8}


class ProtocolError(Exception):
    """A frame on the pipe is malformed or over its limits."""


def write_frame(out: BinaryIO, header: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
    """One frame: the header (with the arrays' layout added) and their bytes."""
    arrays = arrays or {}
    blobs = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    header = {**header, "arrays": [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape)}
                                   for k, v in blobs.items()]}
    raw = json.dumps(header).encode()
    out.write(struct.pack(">I", len(raw)) + raw)
    for v in blobs.values():
        out.write(memoryview(v).cast("B"))
    out.flush()


def read_exact(src: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        block = src.read(left)
        if not block:
            raise EOFError("the pipe closed")
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def read_frame(src: BinaryIO, max_bytes: int = MAX_ARRAY_BYTES) -> tuple[dict, dict[str, np.ndarray]]:
    """A frame -> (header, arrays); every size is checked before anything is read into memory."""
    (n,) = struct.unpack(">I", read_exact(src, 4))
    if n > MAX_HEADER:
        raise ProtocolError(f"a header of {n} bytes")
    try:
        header = json.loads(read_exact(src, n))
    except ValueError:
        raise ProtocolError("a header that is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise ProtocolError("a header that is not an object")
    arrays, total = {}, 0
    for spec in header.get("arrays", []):
        if not isinstance(spec, dict) or spec.get("dtype") not in WIRE_DTYPES or not isinstance(spec.get("name"), str):
            raise ProtocolError("an array of unknown type")
        shape = spec.get("shape")
        if not isinstance(shape, list) or len(shape) > 4 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 20 for d in shape):
            raise ProtocolError(f"an array of shape {str(shape)[:40]}")
        dtype = np.dtype(WIRE_DTYPES[spec["dtype"]])
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        total += nbytes
        if total > max_bytes:
            raise ProtocolError(f"arrays of over {max_bytes >> 20} MB")
        arrays[spec["name"]] = np.frombuffer(read_exact(src, nbytes), dtype).reshape(shape)
    return header, arrays


def describe_error(e: BaseException) -> str:
    """What a plugin raised, with the last two frames of its traceback."""
    return f"{type(e).__name__}: {e}\n" + "".join(traceback.format_tb(e.__traceback__)[-2:])


def import_plugin(path: str) -> tuple[Any, dict]:
    """Import a plugin file under a private module name -> (module, {"ok", "name", "params", "doc"}); used in
    the worker, and in the host for --inline-plugins."""
    # compiled and run from its source: no __pycache__ is written beside it (the shipped plugins lie inside the
    # installation, which the studio never writes), and an edited file is never shadowed by stale bytecode
    module = types.ModuleType(f"ganstudio_plugin_{os.path.basename(path)[:-3]}")
    module.__file__ = path
    with open(path, "rb") as f:
        source = f.read()
    exec(compile(source, path, "exec"), module.__dict__)
    if not callable(getattr(module, "detect", None)):
        raise ValueError("it defines no detect(features, image, params) function")
    params = dict(getattr(module, "PARAMS", {}))
    json.dumps(params)  # the defaults must be plain data
    info = {"ok": True, "name": str(getattr(module, "NAME", os.path.basename(path)[:-3])), "params": params,
            "doc": (module.__doc__ or "").strip()}
    return module, info


def serve(src: BinaryIO, out: BinaryIO) -> None:
    module = None
    while True:
        try:
            header, arrays = read_frame(src)
        except EOFError:
            return
        cmd = header.get("cmd")
        try:
            if cmd == "load":
                module, info = import_plugin(str(header["path"]))
                write_frame(out, info)
            elif module is None:
                write_frame(out, {"ok": False, "error": "no plugin loaded"})
            elif cmd == "layers":
                fn = getattr(module, "layers", None)
                layers = fn(header["params"]) if callable(fn) else getattr(module, "LAYERS", [])
                write_frame(out, {"ok": True, "layers": [str(x) for x in layers]})
            elif cmd == "detect":
                feats = {k[2:]: v for k, v in arrays.items() if k.startswith("f:")}
                mask = module.detect(feats, arrays["image"], header["params"])
                try:
                    mask = np.asarray(mask, dtype=np.float32)
                except (TypeError, ValueError):
                    write_frame(out, {"ok": False, "error": f"returned {type(mask).__name__}, not an array"})
                    continue
                write_frame(out, {"ok": True}, {"mask": mask})
            else:
                write_frame(out, {"ok": False, "error": f"unknown request {cmd!r}"})
        except Exception as e:  # a plugin may raise anything; the worker answers and goes on
            write_frame(out, {"ok": False, "error": describe_error(e)})


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the plugin's prints go to stderr
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, protocol_out)


if __name__ == "__main__":
    main()
