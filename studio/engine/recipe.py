"""PNGs that re-create themselves: a versioned JSON recipe in an iTXt chunk, and the original tool's trailer.

The recipe holds the model's hash and name, the whole edit stack, the exact float32 ws that were rendered,
the noise mode and the software version.  Re-rendering from the stored ws with the stored tabs reproduces the
pixels on the same device type.  Reading never trusts the file: PNG structure and chunk CRCs are checked and
every failure is a RecipeError that says what is wrong.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from .edits import EditError, EditStack, decode_array, encode_array
from .files import write_atomic
from .windowed import Window

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECIPE_KEYWORD = "ganstudio"
RECIPE_FORMAT = "ganstudio-recipe"
RECIPE_VERSION = 1
LEGACY_MAGIC = b"dara"  # the original GanStudio's latent trailer ends with these four bytes
MAX_PNG_BYTES = 256 << 20  # a PNG larger than this is not read for its recipe
MAX_TEXT_COMPRESSED = 8 << 20  # one text chunk as stored
MAX_TEXT_BYTES = 32 << 20  # one text chunk inflated (a recipe of 18x512 ws with many tabs is ~1 MB)
MAX_TRAILER_BYTES = 4 << 20
MAX_PIXELS = 64 << 20  # images decoded with Pillow (64 megapixels, 8k x 8k)


class RecipeError(ValueError):
    """A PNG cannot give a recipe (not a PNG, corrupt, truncated, no recipe, other model)."""


@dataclass
class Recipe:
    stack: EditStack
    ws: np.ndarray | None  # exact rendered ws [num_ws, w_dim]; None for a legacy latent
    model_sha256: str | None
    model_name: str | None = None
    software: str | None = None
    legacy: bool = False  # read from the original tool's trailer (w only)
    source: str = ""  # the file it was read from (named in error messages)
    model_path: str | None = None  # where the model was opened from when the PNG was written
    window: Window | None = None  # a windowed batch sample: the crops its re-render must use
    precision: str = "fp32"  # "fp16": rendered with --half (CUDA), which its re-render needs too

    def check_model(self, sha256: str, name: str = "") -> None:
        if self.model_sha256 and self.model_sha256 != sha256:
            raise RecipeError(
                f"this PNG was made with model {self.model_name or '?'} (sha256 {self.model_sha256[:12]}...), "
                f"not the loaded {name or 'model'} (sha256 {sha256[:12]}...)")


def recipe_json(stack: EditStack, ws: np.ndarray, model_sha256: str, model_name: str, device: str,
                model_path: str | None = None, window: Window | None = None, precision: str = "fp32") -> dict:
    """The recipe; ws whose rows are all equal (no mixing or cutoff) are stored as one row and a count.  A sample
    of a windowed batch records its window (without it the re-render would differ in a few pixels by a level)."""
    ws = np.asarray(ws, np.float32)
    rows = {"ws": encode_array(ws)}
    if ws.ndim == 2 and ws.shape[0] > 1 and (ws == ws[:1]).all():
        rows = {"ws": encode_array(ws[:1]), "ws_rows": ws.shape[0]}
    model = {"sha256": model_sha256, "name": model_name, **({"path": model_path} if model_path else {})}
    return {
        "format": RECIPE_FORMAT, "version": RECIPE_VERSION, "software": f"ganstudio {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model, "device": device, **({"precision": precision} if precision != "fp32" else {}),
        "noise_mode": stack.noise_mode, **rows, "stack": stack.to_json(),
        **({"window": window.to_json()} if window is not None else {}),
    }


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def encode_png(image: np.ndarray, texts: dict[str, str] | None = None) -> bytes:
    """An HxWx3 (or HxW) uint8 image as an 8-bit PNG, rows "Up"-filtered and deflated, with compressed iTXt
    chunks; written directly (about 3x faster than Pillow for the small images of a batch job)."""
    image = np.ascontiguousarray(image, np.uint8)
    h, w = image.shape[:2]
    colour = {2: 0, 3: 2}[image.ndim]
    rows = image.reshape(h, -1)
    up = np.empty_like(rows)
    up[0] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=up[1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    raw = np.concatenate([np.full((h, 1), 2 if h > 1 else 0, np.uint8), up if h > 1 else rows], axis=1)
    out = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))]
    for key, text in (texts or {}).items():
        payload = key.encode("latin-1") + b"\0\1\0\0\0" + zlib.compress(text.encode("utf-8"))
        out.append(_chunk(b"iTXt", payload))
    out += [_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)), _chunk(b"IEND", b"")]
    return b"".join(out)


def png_bytes(image: np.ndarray, recipe: dict | None) -> bytes:
    """Encode an HxWx3 uint8 image as PNG with the recipe in a compressed iTXt chunk."""
    texts = {RECIPE_KEYWORD: json.dumps(recipe, separators=(",", ":"))} if recipe is not None else None
    return encode_png(image, texts)


def write_png(path: str | Path, image: np.ndarray, recipe: dict | None) -> Path:
    """Write atomically: a crash never leaves half a PNG."""
    return write_atomic(path, png_bytes(image, recipe))


# ------------------------------------------------------------------------------------------------ reading


def read_image(path: str | Path) -> np.ndarray:
    """The pixels of an image file as uint8 RGB [H, W, 3]; decompression bombs, over-large images and broken
    files are a RecipeError naming the file."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise RecipeError(f"{path.name}: {w}x{h} pixels is over the limit of {MAX_PIXELS >> 20} megapixels")
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError:
        raise RecipeError(f"{path.name}: refused as a decompression bomb (too many pixels)") from None
    except (OSError, ValueError, SyntaxError, struct.error, zlib.error) as e:
        raise RecipeError(f"{path.name}: not readable as an image ({type(e).__name__}: {str(e)[:120]})") from None


def _chunks(data: bytes, name: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """PNG chunks (type, payload) up to IEND with CRCs checked, and the bytes after IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise RecipeError(f"{name}: not a PNG file")
    pos, out = len(PNG_SIGNATURE), []
    while True:
        if pos + 8 > len(data):
            raise RecipeError(f"{name}: truncated PNG (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise RecipeError(f"{name}: truncated PNG (chunk {ctype!r} cut off)")
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise RecipeError(f"{name}: corrupt PNG (bad CRC in chunk {ctype.decode('latin-1')!r})")
        out.append((ctype, payload))
        pos = end
        if ctype == b"IEND":
            return out, data[pos:]


def inflate_bounded(data: bytes, limit: int, what: str) -> bytes:
    """zlib-inflate at most `limit` bytes; a stream that would inflate further is refused (zlib bombs)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as e:
        raise RecipeError(f"{what}: corrupt compressed text ({e})") from None
    if d.unconsumed_tail:
        raise RecipeError(f"{what}: a text chunk inflates to more than {limit >> 20} MB; refused")
    return out


def _itxt(payload: bytes, name: str) -> tuple[str, str]:
    if len(payload) > MAX_TEXT_COMPRESSED:
        raise RecipeError(f"{name}: a text chunk of {len(payload) >> 20} MB; refused")
    key, rest = payload.split(b"\0", 1)
    flag, _method = rest[0], rest[1]
    _lang, rest = rest[2:].split(b"\0", 1)
    _tkey, text = rest.split(b"\0", 1)
    if flag:
        text = inflate_bounded(text, MAX_TEXT_BYTES, name)
    elif len(text) > MAX_TEXT_BYTES:
        raise RecipeError(f"{name}: an over-long text chunk; refused")
    return key.decode("latin-1"), text.decode("utf-8")


def read_recipe(path: str | Path) -> Recipe:
    """The recipe of a PNG written by GAN Studio, or the latent of the original tool's trailer."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PNG_BYTES:
            raise RecipeError(f"{path.name}: a {size >> 20} MB file is too large to be a recipe PNG")
        data = path.read_bytes()
    except OSError as e:
        raise RecipeError(f"{path.name}: cannot read ({e.strerror})") from None
    chunks, trailer = _chunks(data, path.name)
    for ctype, payload in chunks:
        if ctype != b"iTXt":
            continue
        try:
            key, text = _itxt(payload, path.name)
        except (ValueError, IndexError, UnicodeDecodeError):
            raise RecipeError(f"{path.name}: corrupt text chunk") from None
        if key == RECIPE_KEYWORD:
            return _parse_recipe(text, path.name)
    if trailer.endswith(LEGACY_MAGIC):
        if len(trailer) > MAX_TRAILER_BYTES:
            raise RecipeError(f"{path.name}: an over-long trailer after the PNG; refused")
        try:
            w = parse_legacy_trailer(trailer)
        except RecipeError as e:
            raise RecipeError(f"{path.name}: {e}") from None
        return Recipe(EditStack(seed=None, w=w), None, None, legacy=True, source=path.name)
    raise RecipeError(f"{path.name}: no GAN Studio recipe (and no original GanStudio latent) in this PNG")


def _parse_recipe(text: str, name: str) -> Recipe:
    try:
        d = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{name}: the recipe is not valid JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:
        raise RecipeError(f"{name}: the recipe is not valid JSON ({str(e)[:80]})") from None
    if not isinstance(d, dict) or d.get("format") != RECIPE_FORMAT:
        raise RecipeError(f"{name}: the text chunk is not a GAN Studio recipe")
    version = d.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise RecipeError(f"{name}: recipe version {str(version)[:20]!r} is not an integer")
    if version < 1:
        raise RecipeError(f"{name}: recipe version {version} is not a GAN Studio recipe version")
    if version > RECIPE_VERSION:
        raise RecipeError(f"{name}: recipe version {version} needs a newer GAN Studio")
    try:
        stack = EditStack.from_json(d["stack"])
        ws = decode_array(d["ws"])
        if "ws_rows" in d:
            rows = d["ws_rows"]
            if isinstance(rows, bool) or not isinstance(rows, int) or ws.ndim != 2 or ws.shape[0] != 1 \
                    or not 1 <= rows <= 64:
                raise EditError(f"ws_rows {rows} does not fit ws of shape {list(ws.shape)}")
            ws = np.repeat(ws, rows, axis=0)
        if ws.ndim != 2:
            raise EditError(f"ws must be [num_ws, w_dim], got shape {list(ws.shape)}")
        model = d.get("model") or {}
        if not isinstance(model, dict):
            raise EditError("model must be an object")
        sha, model_name, software = model.get("sha256"), model.get("name"), d.get("software")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise EditError("model sha256 is not a hex digest")
        path = model.get("path")
        window = Window.from_json(d["window"]) if "window" in d else None
        precision = d.get("precision", "fp32")
        if precision not in ("fp32", "fp16"):
            raise EditError(f"precision {str(precision)[:20]!r} is not fp32 or fp16")
        return Recipe(stack, ws, sha, _short_str(model_name), _short_str(software), source=name,
                      model_path=path if isinstance(path, str) and 0 < len(path) <= 4096 else None, window=window,
                      precision=precision)
    except (EditError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise RecipeError(f"{name}: malformed recipe ({str(e)[:200]})") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a recipe may hold")


def _short_str(v: object) -> str | None:
    return None if v is None else str(v)[:200]


_FLOAT = rb"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FLOAT_FULL = re.compile(_FLOAT + rb"\Z")
_FLOAT_HEAD = re.compile(_FLOAT)
_FLOAT_TAIL = re.compile(_FLOAT + rb"\Z")
MAX_FLOAT_TEXT = 40


def _float_run(text: bytes) -> list[float]:
    """The longest run of ':'-joined numbers in `text`, in one pass over its ':'-separated tokens (the first and
    last number of a run may be glued to other text, as the version string is)."""
    best: list[float] = []
    run: list[float] = []
    for tok in text.split(b":"):
        if len(tok) <= MAX_FLOAT_TEXT and _FLOAT_FULL.match(tok):
            run.append(float(tok))
            continue
        head = _FLOAT_HEAD.match(tok[:MAX_FLOAT_TEXT])
        if run and head:
            run.append(float(head.group()))
        if len(run) > len(best):
            best = run
        tail = _FLOAT_TAIL.search(tok[-MAX_FLOAT_TEXT:])
        run = [float(tail.group())] if tail else []
    return run if len(run) > len(best) else best


def parse_legacy_trailer(trailer: bytes) -> np.ndarray:
    """Latent from the original's trailer: [version][floats joined by ':'][16-byte md5][int32 length]['dara'].

    The float text is the `length` bytes before the md5; if that layout does not hold, the longest run of
    ':'-joined numbers anywhere in the trailer is used.  Linear in the trailer's length.
    """
    body = trailer[: -len(LEGACY_MAGIC)]
    regions = [body]
    if len(body) >= 20:
        (length,) = struct.unpack("<i", body[-4:])
        if 0 < length <= len(body) - 20:
            regions.insert(0, body[-20 - length:-20])
    for region in regions:
        values = np.array(_float_run(region), dtype=np.float64)
        if len(values) >= 8 and (np.abs(values) <= np.finfo(np.float32).max).all():
            return values.astype(np.float32)
    raise RecipeError("the original GanStudio trailer holds no latent")


def legacy_trailer(w: np.ndarray, model_md5: bytes = b"\0" * 16, version: bytes = b"GANInterface 1.0") -> bytes:
    """The original tool's trailer for a latent (for interoperability tests and exports)."""
    text = version + b":".join(repr(float(v)).encode() for v in np.asarray(w, np.float32).ravel())
    return text + model_md5 + struct.pack("<i", len(text)) + LEGACY_MAGIC
