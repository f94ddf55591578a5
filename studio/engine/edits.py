"""The edit stack: one object that fully describes an image, and its JSON form (the PNG recipe's core).

    ws = mapping(z(seed), class)                 -- or an explicit latent w
    ws = base.lerp(ws, psi)  on the first `cutoff` layers   (base = w_avg or a chosen base latent)
    ws = lerp/slerp(ws, mix.w, mix.t)            -- optional interpolation toward another latent
    ws = ws + t_j * (m_j[target] - m_j[own])     -- class edits: m_j the attribute's class means in w, own the
                                                    class a linear discriminant reads in the untruncated ws
    ws = ws + sum_k alpha_k * d_k                -- attribute directions
    x_L = x_L + sum_tabs S[h,w] * a[c] * mu(v)   -- spatial feature-map edits ("tabs") at their layers
    mu(v) = sign(v) * exp(|v| / 20)              -- the original's slider multiplier (v = 92 gives ~100)
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

NOISE_MODES = ("const", "random", "none")
SLIDER_SCALE = 20.0
DEFAULT_PSI = 0.7  # truncation of new images in the studio and the CLI (one default for both)
STACK_VERSION = 3  # 2: the StyleGAN3 input transform, 3: class edits (each written only when used: older files stay 1)
MAX_TRANSLATE = 100.0  # image widths
MAX_ROTATE = 1e6  # degrees
MAX_SEED = 2**32 - 1  # numpy.random.RandomState takes seeds in [0, 2^32)
MAX_SLIDER = 1000.0  # mu(1000) = e^50 ~ 5e21, still finite in float32
MAX_ARRAY_ELEMENTS = 1 << 24
MAX_GRID = 4096
MAX_CLASSES = 256


class EditError(ValueError):
    """An edit stack, tab or channel list is malformed; the message says where."""


# ------------------------------------------------------------------------------------------------ arrays


def encode_array(a: np.ndarray) -> dict:
    """Exact float32 array -> {"shape", "f32": base64 little-endian}."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "f32": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict) -> np.ndarray:
    """{"shape", "f32"} -> float32 array; refuses odd shapes, sizes that do not match, and NaN or infinity."""
    if not isinstance(d, dict) or not isinstance(d.get("f32"), str) or not isinstance(d.get("shape"), list):
        raise EditError("bad array in recipe: expected {shape: [...], f32: base64}")
    shape = d["shape"]
    if len(shape) > 4 or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in shape) \
            or math.prod(shape) > MAX_ARRAY_ELEMENTS:
        raise EditError(f"bad array in recipe: shape {str(shape)[:60]}")
    if len(d["f32"]) != 4 * math.ceil(4 * math.prod(shape) / 3):
        raise EditError(f"bad array in recipe: {len(d['f32'])} base64 characters for shape {shape}")
    try:
        raw = base64.b64decode(d["f32"], validate=True)
    except ValueError as e:
        raise EditError(f"bad array in recipe: {e}") from None
    a = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    if not np.isfinite(a).all():
        raise EditError(f"array of shape {shape} in the recipe holds NaN or infinite values")
    return a


def finite_number(v: object, what: str, bound: float = 1e6) -> float:
    """A finite float within +-bound (booleans and strings refused): for psi, strengths, slider values."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise EditError(f"{what} must be a number, got {str(v)[:40]!r}")
    f = float(v)
    if not math.isfinite(f) or abs(f) > bound:
        raise EditError(f"{what} must be a finite number within +-{bound:g}, got {f!r}")
    return f


def bounded_int(v: object, what: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi] (floats with an integer value accepted; booleans, NaN and strings refused)."""
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise EditError(f"{what} must be an integer in [{lo}, {hi}], got {str(v)[:40]!r}")
    return int(v)


def array_digest(*arrays: np.ndarray | None) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=np.float32).tobytes())
        h.update(b"|" if a is None else str(a.shape).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ slider


def multiplier(v: float) -> float:
    """The original's slider law mu(v) = sign(v) * exp(|v|/20); mu(0) = 0."""
    if v == 0:
        return 0.0
    return math.copysign(math.exp(abs(v) / SLIDER_SCALE), v)


def slider_for(mult: float) -> float:
    """Inverse of `multiplier` for |mult| >= 1 (0 maps to 0)."""
    if mult == 0:
        return 0.0
    return math.copysign(SLIDER_SCALE * math.log(max(abs(mult), 1.0)), mult)


# ------------------------------------------------------------------------------------------------ channel lists

_ITEM = re.compile(r"^\s*(?:(?P<k>[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*[xX]\s*)?(?P<a>\d+)(?:\s*-\s*(?P<b>\d+))?\s*$")


def parse_channel_list(text: str, num_channels: int | None = None) -> dict[int, float]:
    """Parse the original's list syntax: `a,b,c`, ranges `a-b`, weighted `kxN` -> {channel: weight}.

    Weights of a repeated channel add up. Raises EditError naming the bad item or an out-of-range channel.
    """
    out: dict[int, float] = {}
    for item in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        m = _ITEM.match(item)
        if not m:
            raise EditError(f"cannot read {item!r}: use a, a-b or kxN (e.g. 3,10-12,-2x45)")
        k = float(m["k"]) if m["k"] else 1.0
        a = int(m["a"])
        b = int(m["b"]) if m["b"] else a
        if b < a:
            raise EditError(f"range {item!r} goes backwards")
        for ch in range(a, b + 1):
            if num_channels is not None and ch >= num_channels:
                raise EditError(f"channel {ch} does not exist (this layer has {num_channels})")
            out[ch] = out.get(ch, 0.0) + k
    return out


def format_channel_list(weights: np.ndarray) -> str:
    """Non-zero weights as the list syntax (`N` for weight 1, `kxN` otherwise)."""
    parts = []
    for ch in np.flatnonzero(weights):
        k = float(weights[ch])
        parts.append(str(ch) if k == 1 else f"{k:g}x{ch}")
    return ",".join(parts)


# ------------------------------------------------------------------------------------------------ selections


def resample_grid(sel: np.ndarray, size: int) -> np.ndarray:
    """Resample a square selection to `size`: mean pooling down, pixel copy up (the original's rule)."""
    h = sel.shape[0]
    if h == size:
        return sel.astype(np.float32, copy=False)
    if h > size:
        f = h // size
        return sel.reshape(size, f, size, f).mean(axis=(1, 3)).astype(np.float32)
    f = size // h
    return np.repeat(np.repeat(sel, f, axis=0), f, axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------------------ dataclasses


DIRECTION_LIMIT = 3.0  # a direction slider's end in the studio: the original's -30..30 divided by 10


@dataclass
class Direction:
    """An attribute direction in w-space and how far to move along it: ws += strength * vector."""

    name: str
    vector: np.ndarray  # [w_dim] (all layers) or [num_ws, w_dim]
    strength: float = 0.0

    def to_json(self) -> dict:
        return {"name": self.name, "vector": encode_array(self.vector), "strength": self.strength}

    @classmethod
    def from_json(cls, d: dict) -> Direction:
        return cls(str(d["name"])[:200], decode_array(d["vector"]), d.get("strength", 0.0))  # checked by validate


def untruncate(w: np.ndarray, center: np.ndarray, psi: float) -> np.ndarray:
    """The latent a truncated w came from: center + (w - center) / psi (psi 0 keeps w: it is the centre)."""
    return w if psi == 0 else center + (w - center) / psi


def nearest_class(w: np.ndarray, means: np.ndarray, center: np.ndarray, psi: float) -> int:
    """The class whose mean lies nearest to the untruncated w [w_dim] (the same as the nearest mean truncated as w)."""
    return int(np.argmin(np.square(means - untruncate(w, center, psi)[None]).sum(1)))


def lda_reader(ws: np.ndarray, labels: np.ndarray, means: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Linear discriminant scores [K, w_dim + 1] (weights, then bias): argmax_k of W_k . w + b_k is the class of w
    under Gaussian classes with one shared covariance (its diagonal raised by ridge * its mean variance) and the
    samples' class frequencies as priors.  It reads a class from w far better than the nearest mean when w varies
    most along other attributes (the bundled model's bangs: 73% against 52% of held-out samples)."""
    resid = (ws - means[labels]).astype(np.float64)
    cov = resid.T @ resid / len(ws)
    cov += ridge * np.trace(cov) / len(cov) * np.eye(len(cov))
    weights = np.linalg.solve(cov, means.T.astype(np.float64)).T  # [K, w_dim] = means @ inv(cov)
    prior = np.bincount(labels, minlength=len(means)) / len(labels)
    bias = -0.5 * (weights * means).sum(1) + np.log(prior)
    return np.concatenate([weights, bias[:, None]], 1).astype(np.float32)


@dataclass
class ClassEdit:
    """Move an image into one value of a categorical attribute: ws += strength * (means[target] - means[own]).

    `means` [K, w_dim] are the class means of w (one per value, from labelled samples); `own` is read from the image's
    own w, untruncated, by the linear discriminant `reader` [K, w_dim + 1] (or by the nearest class mean when there is
    none), so an image already of the target class does not move.  One global direction cannot carry every class of
    a w that clusters them into the target; the step between the two means can."""

    attribute: str
    values: list[str]
    means: np.ndarray  # [K, w_dim]
    target: str | None = None  # None: off
    strength: float = 1.0
    reader: np.ndarray | None = None  # [K, w_dim + 1]: class scores W w + b

    @property
    def effective(self) -> bool:
        return self.target is not None and self.strength != 0

    def aim(self, target: str | None, strength: float | None = None) -> None:
        """Point the edit at one of its values (None: off); strength None keeps the current one."""
        if target is not None and target not in self.values:
            raise EditError(f"{self.attribute} has no value {target!r} (have: {', '.join(self.values)})")
        self.target = target
        if strength is not None:
            self.strength = float(strength)

    def own(self, w: np.ndarray, center: np.ndarray, psi: float) -> int:
        """The value an image whose (first) w is `w`, truncated toward `center` by `psi`, reads as."""
        if self.reader is None:
            return nearest_class(w, self.means, center, psi)
        w0 = untruncate(w, center, psi)
        return int(np.argmax(self.reader[:, :-1] @ w0 + self.reader[:, -1]))

    def step(self, w: np.ndarray, center: np.ndarray, psi: float) -> np.ndarray:
        """The offset this edit adds to that image."""
        if not self.effective:
            return np.zeros(self.means.shape[1], np.float32)
        own = self.own(w, center, psi)
        return (self.strength * (self.means[self.values.index(self.target)] - self.means[own])).astype(np.float32)

    @classmethod
    def fit(cls, attribute: str, values: list[str], ws: np.ndarray, labels: np.ndarray) -> ClassEdit:
        """Class means and the discriminant reader from labelled latents: ws [N, w_dim], labels [N] value indices
        (every value needs samples)."""
        counts = np.bincount(labels, minlength=len(values))[:len(values)]
        if (counts == 0).any():
            missing = [v for v, c in zip(values, counts, strict=True) if c == 0]
            raise EditError(f"class edit {attribute!r}: no samples of {', '.join(missing)}")
        means = np.stack([ws[labels == k].mean(0) for k in range(len(values))]).astype(np.float32)
        return cls(attribute, list(values), means, reader=lda_reader(ws, labels, means))

    def digest(self) -> tuple:
        return (self.attribute, array_digest(self.means, self.reader), self.target, self.strength) \
            if self.effective else ()

    def to_json(self) -> dict:
        return {"attribute": self.attribute, "values": list(self.values), "means": encode_array(self.means),
                "reader": None if self.reader is None else encode_array(self.reader),
                "target": self.target, "strength": self.strength}

    @classmethod
    def from_json(cls, d: dict) -> ClassEdit:
        if not isinstance(d, dict) or not isinstance(d.get("values"), list):
            raise EditError("class edit must be an object with attribute, values, means, target and strength")
        try:
            edit = cls(str(d["attribute"])[:200], [str(v)[:200] for v in d["values"][:MAX_CLASSES + 1]],
                       decode_array(d["means"]), None if d.get("target") is None else str(d["target"])[:200],
                       d.get("strength", 1.0), None if d.get("reader") is None else decode_array(d["reader"]))
        except (KeyError, TypeError, AttributeError) as e:
            raise EditError(f"class edit is missing or has a bad field: {e}") from None
        edit.validate()
        return edit

    def validate(self) -> None:
        """2..MAX_CLASSES distinct values, one mean (and reader) row per value, a target among them; strength
        normalised."""
        k = len(self.values)
        if not 2 <= k <= MAX_CLASSES or len(set(self.values)) != k:
            raise EditError(f"class edit {self.attribute!r}: needs 2 to {MAX_CLASSES} distinct values, got {k}")
        if self.means.ndim != 2 or self.means.shape[0] != k:
            raise EditError(f"class edit {self.attribute!r}: means must be [{k}, w_dim], got {list(self.means.shape)}")
        if self.reader is not None and self.reader.shape != (k, self.means.shape[1] + 1):
            raise EditError(f"class edit {self.attribute!r}: reader must be [{k}, {self.means.shape[1] + 1}], got "
                            f"{list(self.reader.shape)}")
        if not np.isfinite(self.means).all() or (self.reader is not None and not np.isfinite(self.reader).all()):
            raise EditError(f"class edit {self.attribute!r}: means or reader hold NaN or infinite values")
        if self.target is not None and self.target not in self.values:
            raise EditError(f"class edit {self.attribute!r}: target {self.target[:40]!r} is not one of its values")
        self.strength = finite_number(self.strength, f"class edit {self.attribute[:40]!r} strength")


def detector_on(detector: dict | None) -> bool:
    """Whether a tab's detector setting runs (a plugin in mode "run" or "run_and_modify", not "off")."""
    return bool(detector) and detector.get("mode", "off") != "off"


@dataclass
class SpatialTab:
    """A spatial feature-map edit: delta[c,h,w] = S[h,w] * a[c] * mu(v), added at each of its layers.

    `selection` is the painted grid at the resolution of the first layer; other layers see it resampled.
    """

    name: str
    layers: list[str]
    selection: np.ndarray  # [H, W]
    weights: dict[str, np.ndarray]  # layer -> [C]
    value: float = 0.0
    active: bool = True
    detector: dict | None = None  # plugin name, params, mode (filled in by the detector machinery)

    @property
    def multiplier(self) -> float:
        return multiplier(self.value)

    def effective(self) -> bool:
        return self.active and self.value != 0 and bool(np.any(self.selection)) and any(
            np.any(w) for w in self.weights.values())

    def digest(self, layer: str) -> str:
        """What this tab contributes at `layer`, as a hash (render cache key)."""
        if not self.effective() or layer not in self.weights:
            return ""
        return array_digest(self.selection, self.weights[layer]) + f"{self.value!r}"

    def to_json(self) -> dict:
        return {
            "name": self.name, "layers": list(self.layers), "selection": encode_array(self.selection),
            "weights": {k: encode_array(v) for k, v in self.weights.items()}, "value": self.value,
            "active": self.active, "detector": self.detector,
        }

    @classmethod
    def from_json(cls, d: dict) -> SpatialTab:
        try:
            tab = cls(
                name=str(d["name"]), layers=[str(x) for x in d["layers"]], selection=decode_array(d["selection"]),
                weights={str(k): decode_array(v) for k, v in d["weights"].items()},
                value=d.get("value", 0),
                active=bool(d.get("active", True)), detector=d.get("detector"),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise EditError(f"tab is missing or has a bad field: {e}") from None
        if tab.detector is not None and not isinstance(tab.detector, dict):
            raise EditError(f"tab {tab.name!r}: detector must be an object")
        tab.validate()
        return tab

    def validate(self) -> None:
        """Model-independent checks: a square power-of-two grid, finite numbers, weights at its layers; the
        slider value is normalised to a float."""
        sel = self.selection
        n = sel.shape[0] if sel.ndim == 2 else 0
        if sel.ndim != 2 or sel.shape[0] != sel.shape[1] or not 1 <= n <= MAX_GRID or n & (n - 1):
            raise EditError(f"tab {self.name!r}: selection must be a square power-of-two grid, got {sel.shape}")
        if not self.layers or set(self.weights) - set(self.layers):
            raise EditError(f"tab {self.name!r}: weights must belong to its layers {self.layers}")
        self.value = finite_number(self.value, f"tab {self.name!r} slider value", MAX_SLIDER)
        if not np.isfinite(sel).all() or not all(np.isfinite(w).all() for w in self.weights.values()):
            raise EditError(f"tab {self.name!r}: selection or weights hold NaN or infinite values")


@dataclass
class Mix:
    """Interpolate toward another latent: ws = lerp/slerp(ws, w, t)."""

    w: np.ndarray  # [num_ws, w_dim]
    t: float
    method: str = "lerp"

    def to_json(self) -> dict:
        return {"w": encode_array(self.w), "t": self.t, "method": self.method}

    @classmethod
    def from_json(cls, d: dict) -> Mix:
        method = str(d.get("method", "lerp"))
        if method not in ("lerp", "slerp"):
            raise EditError(f"interpolation method must be lerp or slerp, got {method[:20]!r}")
        return cls(decode_array(d["w"]), d["t"], method)  # t is checked by EditStack.validate


@dataclass
class EditStack:
    """Everything that determines an image (with the model)."""

    seed: int | None = 0
    z: np.ndarray | None = None  # explicit z [z_dim]; overrides seed
    w: np.ndarray | None = None  # explicit raw latent [num_ws, w_dim]; overrides z and seed
    class_index: int | None = None
    psi: float = 1.0  # (a recipe without psi means none; new images in the studio and CLI start at DEFAULT_PSI)
    cutoff: int | None = None
    base: np.ndarray | None = None  # truncation centre [num_ws, w_dim]; None = the model's w_avg
    mix: Mix | None = None
    directions: list[Direction] = field(default_factory=list)
    class_edits: list[ClassEdit] = field(default_factory=list)
    noise_mode: str = "const"
    noise_seed: int = 0
    tabs: list[SpatialTab] = field(default_factory=list)
    translate: tuple[float, float] = (0.0, 0.0)  # StyleGAN3 input transform: image widths (gen_images --translate)
    rotate: float = 0.0  # degrees, counter-clockwise (gen_images --rotate)

    def __post_init__(self) -> None:
        if self.noise_mode not in NOISE_MODES:
            raise EditError(f"noise mode must be one of {NOISE_MODES}, got {self.noise_mode!r}")
        if self.seed is None and self.z is None and self.w is None:
            raise EditError("an edit stack needs a seed, a z or a w")

    def validate(self) -> None:
        """Every number finite and in range, every array finite (model-independent; the renderer checks shapes);
        numbers are normalised to int / float.  Raises EditError naming the field."""
        if self.seed is not None:
            self.seed = bounded_int(self.seed, "seed", 0, MAX_SEED)
        self.noise_seed = bounded_int(self.noise_seed, "noise seed", 0, MAX_SEED)
        if self.class_index is not None:
            self.class_index = bounded_int(self.class_index, "class", 0, 1_000_000)
        if self.cutoff is not None:
            self.cutoff = bounded_int(self.cutoff, "truncation cutoff", 0, 1024)
        self.psi = finite_number(self.psi, "psi (truncation)", 1e3)
        for name, a in (("z", self.z), ("w", self.w), ("base", self.base), ("mix w", self.mix and self.mix.w)):
            if a is not None and not np.isfinite(np.asarray(a, np.float64)).all():
                raise EditError(f"{name} holds NaN or infinite values")
        if self.mix is not None:
            self.mix.t = finite_number(self.mix.t, "interpolation t", 1e3)
        for d in self.directions:
            d.strength = finite_number(d.strength, f"direction {d.name[:40]!r} strength")
            if d.strength and not np.isfinite(d.vector).all():
                raise EditError(f"direction {d.name!r} holds NaN or infinite values")
        for edit in self.class_edits:
            edit.validate()
        for tab in self.tabs:
            tab.validate()
        if not isinstance(self.translate, (tuple, list)) or len(self.translate) != 2:
            raise EditError("translate must be two numbers (x, y)")
        self.translate = tuple(finite_number(v, "translate", MAX_TRANSLATE) for v in self.translate)
        self.rotate = finite_number(self.rotate, "rotate", MAX_ROTATE)

    @property
    def transformed(self) -> bool:
        """Whether the input transform moves the image (StyleGAN3 models only)."""
        return self.translate != (0.0, 0.0) or self.rotate != 0.0

    def copy(self, **changes) -> EditStack:
        """A copy with some fields replaced (lists copied, arrays shared: arrays are never mutated in place)."""
        new = replace(self, **changes)
        if "directions" not in changes:
            new.directions = [replace(d) for d in self.directions]
        if "class_edits" not in changes:
            new.class_edits = [replace(e, values=list(e.values)) for e in self.class_edits]
        if "tabs" not in changes:
            new.tabs = [replace(t, weights=dict(t.weights), layers=list(t.layers)) for t in self.tabs]
        return new

    @property
    def version(self) -> int:
        """The oldest stack version that holds everything this stack uses (what an older reader can render)."""
        return 3 if any(e.effective for e in self.class_edits) else 2 if self.transformed else 1

    def to_json(self) -> dict:
        opt = lambda a: None if a is None else encode_array(a)  # noqa: E731
        used = [e.to_json() for e in self.class_edits if e.effective]
        return {
            "version": self.version, "seed": self.seed, "z": opt(self.z), "w": opt(self.w),
            "class_index": self.class_index, "psi": self.psi, "cutoff": self.cutoff, "base": opt(self.base),
            "mix": self.mix.to_json() if self.mix else None,
            "directions": [d.to_json() for d in self.directions], "noise_mode": self.noise_mode,
            "noise_seed": self.noise_seed, "tabs": [t.to_json() for t in self.tabs],
            **({"translate": list(self.translate), "rotate": self.rotate} if self.transformed else {}),
            **({"class_edits": used} if used else {}),
        }

    @classmethod
    def from_json(cls, d: dict) -> EditStack:
        if not isinstance(d, dict):
            raise EditError("edit stack must be a JSON object")
        if bounded_int(d.get("version", 0), "edit stack version", 0, 1 << 30) > STACK_VERSION:
            raise EditError(f"edit stack version {d.get('version')} is newer than this GAN Studio understands")
        opt = lambda k: None if d.get(k) is None else decode_array(d[k])  # noqa: E731
        for key in ("directions", "tabs", "class_edits"):
            if not isinstance(d.get(key, []), list) or len(d.get(key, [])) > 10_000:
                raise EditError(f"{key} must be a list")
        try:
            stack = cls(  # numbers as the file gives them: validate() below checks and normalises them
                seed=d.get("seed"), z=opt("z"), w=opt("w"), class_index=d.get("class_index"),
                psi=d.get("psi", 1.0), cutoff=d.get("cutoff"), base=opt("base"),
                mix=Mix.from_json(d["mix"]) if d.get("mix") else None,
                directions=[Direction.from_json(x) for x in d.get("directions", [])],
                class_edits=[ClassEdit.from_json(x) for x in d.get("class_edits", [])],
                noise_mode=str(d.get("noise_mode", "const")), noise_seed=d.get("noise_seed", 0),
                tabs=[SpatialTab.from_json(x) for x in d.get("tabs", [])],
                translate=tuple(d.get("translate", (0.0, 0.0))), rotate=d.get("rotate", 0.0),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, EditError):
                raise
            raise EditError(f"malformed edit stack: {type(e).__name__}: {str(e)[:120]}") from None
        stack.validate()
        return stack


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """z for a seed exactly as NVlabs generate.py: RandomState(seed).randn(1, z_dim) (float64)."""
    return np.random.RandomState(seed).randn(1, z_dim)[0]


def parse_seeds(text: str) -> list[int]:
    """'0-7,12' -> [0..7, 12]."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise EditError(f"cannot read seed {part!r}: use e.g. 0-7,12")
        a, b = int(m[1]), int(m[2] or m[1])
        if b < a:
            raise EditError(f"seed range {part!r} goes backwards")
        seeds.extend(range(a, b + 1))
    return seeds


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation per row (falls back to lerp for parallel rows)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na = a64 / np.linalg.norm(a64, axis=-1, keepdims=True)
    nb = b64 / np.linalg.norm(b64, axis=-1, keepdims=True)
    omega = np.arccos(np.clip((na * nb).sum(-1, keepdims=True), -1, 1))
    so = np.sin(omega)
    safe = so > 1e-6
    wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, so, 1), 1 - t)
    wb = np.where(safe, np.sin(t * omega) / np.where(safe, so, 1), t)
    return (wa * a64 + wb * b64).astype(np.float32)
