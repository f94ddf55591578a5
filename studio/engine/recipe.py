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
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from .edits import EditError, EditStack, decode_array, encode_array
from .files import write_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECIPE_KEYWORD = "ganstudio"
RECIPE_FORMAT = "ganstudio-recipe"
RECIPE_VERSION = 1
LEGACY_MAGIC = b"dara"  # the original GanStudio's latent trailer ends with these four bytes


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

    def check_model(self, sha256: str, name: str = "") -> None:
        if self.model_sha256 and self.model_sha256 != sha256:
            raise RecipeError(
                f"this PNG was made with model {self.model_name or '?'} (sha256 {self.model_sha256[:12]}...), "
                f"not the loaded {name or 'model'} (sha256 {sha256[:12]}...)")


def recipe_json(stack: EditStack, ws: np.ndarray, model_sha256: str, model_name: str, device: str) -> dict:
    return {
        "format": RECIPE_FORMAT, "version": RECIPE_VERSION, "software": f"ganstudio {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"sha256": model_sha256, "name": model_name}, "device": device,
        "noise_mode": stack.noise_mode, "ws": encode_array(ws), "stack": stack.to_json(),
    }


def png_bytes(image: np.ndarray, recipe: dict | None) -> bytes:
    """Encode an HxWx3 uint8 image as PNG with the recipe in a compressed iTXt chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if recipe is not None:
        info.add_itxt(RECIPE_KEYWORD, json.dumps(recipe, separators=(",", ":")), zip=True)
    buf = BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(path: str | Path, image: np.ndarray, recipe: dict | None) -> Path:
    """Write atomically: a crash never leaves half a PNG."""
    return write_atomic(path, png_bytes(image, recipe))


# ------------------------------------------------------------------------------------------------ reading


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


def _itxt(payload: bytes) -> tuple[str, str]:
    key, rest = payload.split(b"\0", 1)
    flag, _method = rest[0], rest[1]
    _lang, rest = rest[2:].split(b"\0", 1)
    _tkey, text = rest.split(b"\0", 1)
    if flag:
        text = zlib.decompress(text)
    return key.decode("latin-1"), text.decode("utf-8")


def read_recipe(path: str | Path) -> Recipe:
    """The recipe of a PNG written by GAN Studio, or the latent of the original tool's trailer."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RecipeError(f"{path.name}: cannot read ({e.strerror})") from None
    chunks, trailer = _chunks(data, path.name)
    for ctype, payload in chunks:
        if ctype != b"iTXt":
            continue
        try:
            key, text = _itxt(payload)
        except (ValueError, IndexError, zlib.error):
            raise RecipeError(f"{path.name}: corrupt text chunk") from None
        if key == RECIPE_KEYWORD:
            return _parse_recipe(text, path.name)
    if trailer.endswith(LEGACY_MAGIC):
        return Recipe(EditStack(seed=None, w=parse_legacy_trailer(trailer)), None, None, legacy=True)
    raise RecipeError(f"{path.name}: no GAN Studio recipe (and no original GanStudio latent) in this PNG")


def _parse_recipe(text: str, name: str) -> Recipe:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{name}: the recipe is not valid JSON ({e.msg})") from None
    if not isinstance(d, dict) or d.get("format") != RECIPE_FORMAT:
        raise RecipeError(f"{name}: the text chunk is not a GAN Studio recipe")
    if int(d.get("version", 0)) > RECIPE_VERSION:
        raise RecipeError(f"{name}: recipe version {d['version']} needs a newer GAN Studio")
    try:
        stack = EditStack.from_json(d["stack"])
        ws = decode_array(d["ws"])
        model = d.get("model") or {}
        return Recipe(stack, ws, model.get("sha256"), model.get("name"), d.get("software"))
    except (EditError, KeyError, TypeError) as e:
        raise RecipeError(f"{name}: malformed recipe ({e})") from None


_FLOATS = re.compile(rb"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?(?::[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)+")


def parse_legacy_trailer(trailer: bytes) -> np.ndarray:
    """Latent from the original's trailer: [version][floats joined by ':'][16-byte md5][int32 length]['dara'].

    The float text is read from before the md5 and length fields; if that layout does not hold, the longest
    run of ':'-joined numbers anywhere in the trailer is used.
    """
    body = trailer[: -len(LEGACY_MAGIC)]
    for region in (body[:-20], body):
        runs = _FLOATS.findall(region)
        if runs:
            best = max(runs, key=len)
            values = np.array([float(v) for v in best.split(b":")], dtype=np.float32)
            if len(values) >= 8:
                return values
    raise RecipeError("the original GanStudio trailer holds no latent")


def legacy_trailer(w: np.ndarray, model_md5: bytes = b"\0" * 16, version: bytes = b"GANInterface 1.0") -> bytes:
    """The original tool's trailer for a latent (for interoperability tests and exports)."""
    text = version + b":".join(repr(float(v)).encode() for v in np.asarray(w, np.float32).ravel())
    return text + model_md5 + struct.pack("<i", len(text)) + LEGACY_MAGIC
