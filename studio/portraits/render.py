"""Procedural anime-style head-and-shoulders portraits with pixel-exact part masks and labels.

Drawn with Pillow at `SUPERSAMPLE` times the target size, then box-filtered down (anti-aliasing).  The part label
map is drawn with the same shapes in the same order, and each output pixel takes the part that covers most of
its supersampled block.  Deterministic: the same parameters give the same pixels.

Every portrait is a function of a parameter set, and `params_from_z` derives the parameters from a Gaussian z,
so the bundled generator can be trained to reproduce render(params_from_z(z)) from the same z.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4

PARTS = ("background", "skin", "hair", "left_eye", "right_eye", "mouth", "cheeks", "hairband", "clothes")
PART_INDEX = {name: i for i, name in enumerate(PARTS)}

HAIR_COLOURS = {
    "black": (38, 32, 44),
    "brown": (112, 70, 42),
    "blonde": (236, 204, 118),
    "red": (192, 52, 42),
    "blue": (58, 98, 204),
    "pink": (242, 142, 184),
    "silver": (200, 202, 218),
    "green": (66, 160, 88),
}
EYE_COLOURS = {
    "blue": (40, 110, 230),
    "green": (40, 170, 80),
    "brown": (120, 70, 30),
    "red": (210, 30, 40),
    "purple": (140, 60, 200),
    "gold": (230, 170, 20),
}
SKIN_TONES = ((255, 226, 206), (247, 208, 180), (224, 176, 140), (255, 236, 228))
HAIRBAND_COLOURS = ((220, 40, 60), (250, 250, 250), (30, 30, 40), (250, 210, 40))
HAIR_LENGTHS = ("short", "medium", "long")
BANGS = ("full", "parted", "none")
MOUTHS = ("closed", "smile", "open")

# categorical attributes the oracle predicts, with their classes
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair_colour": tuple(HAIR_COLOURS),
    "hair_length": HAIR_LENGTHS,
    "bangs": BANGS,
    "eye_colour": tuple(EYE_COLOURS),
    "mouth": MOUTHS,
    "blush": ("off", "on"),
    "hairband": ("off", "on"),
    "background": ("dark", "light"),
}


@dataclass
class PortraitParams:
    hair_colour: int = 0
    hair_length: int = 1
    bangs: int = 0
    eye_colour: int = 0
    mouth: int = 0
    openness: float = 0.0  # 0..1, how far an open mouth is open
    blush: int = 0
    hairband: int = 0
    hairband_colour: int = 0
    background: int = 1  # 0 dark, 1 light
    bg_hue: float = 0.5
    skin: int = 0
    face_x: float = 0.0  # jitter in canvas units
    face_y: float = 0.0
    face_w: float = 0.24
    face_h: float = 0.29
    eye_size: float = 1.0
    clothes_hue: float = 0.0

    def labels(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in ATTRIBUTES}

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ parameters

# How z sets the parameters. An attribute with more than two classes takes one z coordinate per class and picks the
# largest: the argmax of i.i.d. coordinates gives every class the same probability, and raising one coordinate moves
# a sample toward that class from whichever class it is in. (Bins of a single coordinate, the first layout, put the
# classes on a line, so the model learned them on a line in w and no direction reached a middle class from both
# sides.) Binary attributes take the sign of one coordinate; continuous ones scale Phi(z_i) to a range.
_CLASS_COUNTS = {
    "hair_colour": len(HAIR_COLOURS),
    "hair_length": len(HAIR_LENGTHS),
    "bangs": len(BANGS),
    "eye_colour": len(EYE_COLOURS),
    "mouth": len(MOUTHS),
    "hairband_colour": len(HAIRBAND_COLOURS),
    "skin": len(SKIN_TONES),
}
_BINARY = ("blush", "hairband", "background")
_RANGES = {
    "openness": (0.35, 1.0),
    "bg_hue": (0.0, 1.0),
    "face_x": (-0.04, 0.04),
    "face_y": (-0.03, 0.03),
    "face_w": (0.27, 0.32),
    "face_h": (0.32, 0.37),
    "eye_size": (0.85, 1.2),
    "clothes_hue": (0.0, 1.0),
}


# how each parameter is read from its coordinates: k >= 2 classes (argmax over k), 1: binary (sign of one),
# 0: continuous (Phi of one)
Z_KINDS = {**_CLASS_COUNTS, **dict.fromkeys(_BINARY, 1), **dict.fromkeys(_RANGES, 0)}


def _z_layout() -> dict[str, slice]:
    """Which z coordinates (after normalisation) set each parameter."""
    layout, start = {}, 0
    for name, kind in Z_KINDS.items():
        width = max(kind, 1)
        layout[name] = slice(start, start + width)
        start += width
    return layout


Z_LAYOUT = _z_layout()
Z_LAYOUT_VERSION = 2  # 1: every attribute from bins of one coordinate
Z_USED = max(s.stop for s in Z_LAYOUT.values())


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def label_arrays(params: list[PortraitParams]) -> dict[str, np.ndarray]:
    """Per attribute, the value index of each of these portraits (their labels(), as arrays)."""
    return {k: np.array([p.labels()[k] for p in params]) for k in ATTRIBUTES}


def params_from_z(z: np.ndarray) -> PortraitParams:
    """Deterministic parameters from a Gaussian z (the first Z_USED dims after StyleGAN's 2nd-moment normalisation).

    Attributes with k > 2 classes: argmax over their k coordinates; binary: z_i > 0; continuous: a + (b - a) Phi(z_i).
    """
    z = np.asarray(z, dtype=np.float64).ravel()
    z = z / np.sqrt(np.mean(z**2) + 1e-8)
    if len(z) < Z_USED:
        raise ValueError(f"the renderer needs a z of at least {Z_USED} dims, got {len(z)}")
    values: dict = {name: int(np.argmax(z[Z_LAYOUT[name]])) for name in _CLASS_COUNTS}
    values.update({name: int(z[Z_LAYOUT[name].start] > 0) for name in _BINARY})
    values.update({name: float(a + (b - a) * _phi(z[Z_LAYOUT[name].start])) for name, (a, b) in _RANGES.items()})
    return PortraitParams(**values)


# ------------------------------------------------------------------------------------------------ drawing


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _mix(a: tuple, b: tuple, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))


class _Canvas:
    """Draws each shape into the RGB image and the label map at once."""

    def __init__(self, size: int, bg: tuple):
        self.s = size
        self.img = Image.new("RGB", (size, size), bg)
        self.lab = Image.new("L", (size, size), PART_INDEX["background"])
        self.d = ImageDraw.Draw(self.img)
        self.dl = ImageDraw.Draw(self.lab)

    def p(self, x: float, y: float) -> tuple[float, float]:
        return x * self.s, y * self.s

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        return [(cx - rx) * self.s, (cy - ry) * self.s, (cx + rx) * self.s, (cy + ry) * self.s]

    def ellipse(self, cx, cy, rx, ry, fill, part: str | None, outline=None, width=0):
        self.d.ellipse(self.box(cx, cy, rx, ry), fill=fill, outline=outline, width=width)
        if part:
            self.dl.ellipse(self.box(cx, cy, rx, ry), fill=PART_INDEX[part])

    def polygon(self, pts, fill, part: str | None, outline=None, width=0):
        xy = [self.p(x, y) for x, y in pts]
        self.d.polygon(xy, fill=fill)
        if outline is not None and width:
            self.d.line(xy + xy[:1], fill=outline, width=width, joint="curve")
        if part:
            self.dl.polygon(xy, fill=PART_INDEX[part])

    def arc_band(self, cx, cy, rx, ry, a0, a1, thick, fill, part: str | None):
        pts_out = [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(a0, a1, 24)]
        pts_in = [(cx + (rx - thick) * math.cos(t), cy + (ry - thick) * math.sin(t)) for t in np.linspace(a1, a0, 24)]
        self.polygon(pts_out + pts_in, fill, part)


def _face_outline(cx: float, cy: float, fw: float, fh: float) -> list[tuple[float, float]]:
    """Anime face: round forehead and cheeks narrowing to a soft pointed chin."""
    pts = [
        (cx + fw * math.cos(t), cy - 0.15 * fh + fh * 0.85 * math.sin(t)) for t in np.linspace(math.pi, 2 * math.pi, 20)
    ]
    pts += [
        (cx + fw, cy + 0.25 * fh),
        (cx + 0.62 * fw, cy + 0.78 * fh),
        (cx + 0.15 * fw, cy + fh),
        (cx - 0.15 * fw, cy + fh),
        (cx - 0.62 * fw, cy + 0.78 * fh),
        (cx - fw, cy + 0.25 * fh),
    ]
    return pts


def draw_portrait(p: PortraitParams, size: int = 64, supersample: int = SUPERSAMPLE) -> tuple[np.ndarray, np.ndarray]:
    """-> (image uint8 [size,size,3], part labels uint8 [size,size] indexing PARTS)."""
    S = size * supersample
    bg = _hsv(p.bg_hue, 0.35, 0.92 if p.background else 0.32)
    c = _Canvas(S, bg)
    hair = HAIR_COLOURS[list(HAIR_COLOURS)[p.hair_colour]]
    hair_dark = _mix(hair, (0, 0, 0), 0.35)
    hair_light = _mix(hair, (255, 255, 255), 0.3)
    skin = SKIN_TONES[p.skin]
    skin_shade = _mix(skin, (120, 60, 60), 0.18)
    line = (70, 40, 40)
    cx, cy, fw, fh = 0.5 + p.face_x, 0.44 + p.face_y, p.face_w, p.face_h

    # back hair (behind everything of the head)
    drop = {0: 0.45, 1: 0.85, 2: 1.25}[p.hair_length]
    width = {0: 1.12, 1: 1.22, 2: 1.32}[p.hair_length]
    c.ellipse(cx, cy - 0.12 * fh, fw * width, fh * 0.98, hair, "hair")
    if p.hair_length > 0:
        c.polygon(
            [
                (cx - fw * width, cy - 0.1 * fh),
                (cx + fw * width, cy - 0.1 * fh),
                (cx + fw * (width + 0.08), cy + fh * drop),
                (cx - fw * (width + 0.08), cy + fh * drop),
            ],
            hair,
            "hair",
        )

    # neck and clothes
    c.polygon(
        [
            (cx - 0.28 * fw, cy + 0.6 * fh),
            (cx + 0.28 * fw, cy + 0.6 * fh),
            (cx + 0.3 * fw, cy + 1.35 * fh),
            (cx - 0.3 * fw, cy + 1.35 * fh),
        ],
        skin_shade,
        "skin",
    )
    clothes = _hsv(p.clothes_hue, 0.45, 0.6)
    c.ellipse(cx, cy + 1.62 * fh, fw * 1.7, fh * 0.5, clothes, "clothes")
    if p.hair_length == 2:  # long hair falls over the shoulders
        for side in (-1, 1):
            x0 = cx + side * fw * 0.95
            c.polygon(
                [
                    (x0, cy + 0.2 * fh),
                    (x0 + side * 0.3 * fw, cy + 0.2 * fh),
                    (x0 + side * 0.42 * fw, cy + 1.45 * fh),
                    (x0 - side * 0.05 * fw, cy + 1.35 * fh),
                ],
                hair,
                "hair",
            )

    # face
    c.polygon(_face_outline(cx, cy, fw, fh), skin, "skin", outline=line, width=max(1, supersample // 2))

    # blush
    if p.blush:
        blush = _mix(skin, (255, 90, 120), 0.55)
        for side in (-1, 1):
            c.ellipse(cx + side * fw * 0.55, cy + 0.36 * fh, fw * 0.2, fh * 0.075, blush, "cheeks")

    # eyes
    ey = cy + 0.12 * fh
    ew, eh = 0.06 * p.eye_size, 0.075 * p.eye_size
    iris = EYE_COLOURS[list(EYE_COLOURS)[p.eye_colour]]
    for side, part in ((-1, "left_eye"), (1, "right_eye")):
        ex = cx + side * fw * 0.45
        c.ellipse(ex, ey, ew, eh, (255, 255, 255), part)
        c.ellipse(ex, ey + 0.1 * eh, ew * 0.8, eh * 0.88, iris, part)
        c.ellipse(ex, ey + 0.2 * eh, ew * 0.38, eh * 0.45, _mix(iris, (0, 0, 0), 0.6), part)
        c.ellipse(ex - 0.3 * ew, ey - 0.3 * eh, ew * 0.25, ew * 0.25, (255, 255, 255), part)
        c.arc_band(ex, ey + 0.1 * eh, ew * 1.15, eh * 1.1, math.pi * 1.15, math.pi * 1.85, 0.014, (30, 20, 30), part)
        c.arc_band(ex, ey - 1.0 * eh, ew * 1.0, eh * 0.45, math.pi * 1.2, math.pi * 1.8, 0.008, hair_dark, None)

    # mouth
    my, mw = cy + 0.58 * fh, 0.06
    inside, tongue = (150, 30, 45), (235, 110, 120)
    if p.mouth == 0:
        c.ellipse(cx, my, mw * 0.8, 0.01, (190, 80, 90), "mouth")
    elif p.mouth == 1:
        pts = [(cx + mw * math.cos(t), my - 0.004 + 0.032 * math.sin(t)) for t in np.linspace(0, math.pi, 16)]
        c.polygon(pts, inside, "mouth")
        c.ellipse(cx, my + 0.016, mw * 0.5, 0.01, tongue, "mouth")
    else:
        oh = 0.02 + 0.05 * p.openness
        c.ellipse(cx, my + oh * 0.3, mw * 0.85, oh, inside, "mouth")
        c.ellipse(cx, my + oh * 0.85, mw * 0.55, oh * 0.4, tongue, "mouth")

    # front hair: top cap (its lower edge is the hairline) and bangs, always above the brows
    top = cy - 0.6 * fh
    c.ellipse(cx, cy - 0.64 * fh, fw * 1.08, fh * 0.38, hair, "hair")
    if p.bangs == 0:  # full fringe with a jagged edge
        tips = np.linspace(cx - fw, cx + fw, 7)
        pts = (
            [(cx - fw * 1.05, top)]
            + [(x, cy - (0.24 if i % 2 else 0.4) * fh) for i, x in enumerate(tips)]
            + [(cx + fw * 1.05, top)]
        )
        c.polygon(pts, hair, "hair")
    elif p.bangs == 1:  # parted: two sweeps leaving the middle of the forehead free
        for side in (-1, 1):
            c.polygon(
                [
                    (cx + side * 0.05 * fw, top - 0.1 * fh),
                    (cx + side * fw * 1.05, top),
                    (cx + side * fw * 0.98, cy + 0.05 * fh),
                    (cx + side * 0.6 * fw, cy - 0.28 * fh),
                ],
                hair,
                "hair",
            )
    c.arc_band(
        cx - 0.2 * fw, cy - 0.45 * fh, fw * 0.6, fh * 0.35, math.pi * 1.2, math.pi * 1.6, 0.012, hair_light, None
    )

    # hairband across the top of the head
    if p.hairband:
        band = HAIRBAND_COLOURS[p.hairband_colour]
        c.arc_band(cx, cy - 0.3 * fh, fw * 1.12, fh * 0.78, math.pi * 1.08, math.pi * 1.92, 0.045, band, "hairband")

    img = np.asarray(c.img.resize((size, size), Image.Resampling.BOX))
    labels = _majority(np.asarray(c.lab), supersample)
    return img, labels


def _majority(lab: np.ndarray, f: int) -> np.ndarray:
    """Each output pixel takes the part that covers most of its f x f block."""
    h = lab.shape[0] // f
    blocks = lab.reshape(h, f, h, f).transpose(0, 2, 1, 3).reshape(h, h, f * f)
    counts = np.stack([(blocks == k).sum(-1) for k in range(len(PARTS))], -1)
    return counts.argmax(-1).astype(np.uint8)


def render_z(z: np.ndarray, size: int = 64) -> tuple[np.ndarray, np.ndarray, PortraitParams]:
    p = params_from_z(z)
    img, lab = draw_portrait(p, size)
    return img, lab, p


def render_dataset(zs: np.ndarray, size: int = 64) -> tuple[np.ndarray, np.ndarray, list[PortraitParams]]:
    """Images [N,size,size,3], labels [N,size,size] and parameters for each z row."""
    imgs = np.empty((len(zs), size, size, 3), np.uint8)
    labs = np.empty((len(zs), size, size), np.uint8)
    params = []
    for i, z in enumerate(zs):
        imgs[i], labs[i], p = render_z(z, size)
        params.append(p)
    return imgs, labs, params
