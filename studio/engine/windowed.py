"""Windowed batch synthesis: samples that share w and part at one layer only inside a box are computed only there.

An axis-aligned sweep or a feature-map combinatoric on a painted selection renders many images that equal one
shared base render everywhere except around the selection.  Each stage spreads a change by its receptive field
(per axis, inclusive pixel intervals):

    conv0  transposed 3x3 conv, stride 2, then the 4-tap FIR padded 1:   input i reaches outputs 2i-2 .. 2i+3
    conv1  3x3 conv padded 1:                                            input i reaches outputs  i-1 ..  i+1
    torgb  1x1 conv, plus the previous RGB image upsampled by the FIR:   image pixel i reaches   2i-1 .. 2i+2

So each stage is run on a crop of its input just wide enough that every output pixel kept has all its inputs
inside the crop (the crop's own zero padding never reaches it), and the result is pasted over the base.
`tests/test_windowed.py` checks the outcome against the dense batched render for every architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .network import Stage, SynthesisNetwork, SynthesisState

Interval = tuple[int, int]  # inclusive pixel range on one axis
Box = tuple[Interval, Interval]  # rows, columns


def _clip(iv: Interval, size: int) -> Interval:
    return max(iv[0], 0), min(iv[1], size - 1)


def _ceil_half(v: int) -> int:
    return -((-v) // 2)


def reach(kind: str, iv: Interval, size_out: int) -> Interval:
    """The output pixels that input pixels `iv` can change (see the module docstring)."""
    lo, hi = iv
    spread = {"conv0": (2 * lo - 2, 2 * hi + 3), "conv1": (lo - 1, hi + 1), "rgb_up": (2 * lo - 1, 2 * hi + 2)}
    return _clip(spread[kind], size_out)


def needs(kind: str, iv: Interval, size_in: int) -> Interval:
    """The input pixels that output pixels `iv` depend on: the inverse of `reach`."""
    a, b = iv
    deps = {"conv0": (_ceil_half(a - 3), (b + 2) // 2), "conv1": (a - 1, b + 1),
            "rgb_up": (_ceil_half(a - 2), (b + 1) // 2)}
    return _clip(deps[kind], size_in)


def _box(kind: str, fn, box: Box, size: int) -> Box:
    return fn(kind, box[0], size), fn(kind, box[1], size)


def union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0][0], b[0][0]), max(a[0][1], b[0][1])), (min(a[1][0], b[1][0]), max(a[1][1], b[1][1]))


def box_area(box: Box | None) -> int:
    return 0 if box is None else (box[0][1] - box[0][0] + 1) * (box[1][1] - box[1][0] + 1)


def support(t: Tensor) -> Box | None:
    """Bounding box of the pixels where any sample or channel of [N, C, H, W] is non-zero."""
    mask = t.detach().abs().amax(dim=(0, 1)) > 0
    if not bool(mask.any()):
        return None
    rows, cols = mask.any(dim=1).nonzero()[:, 0], mask.any(dim=0).nonzero()[:, 0]
    return (int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))


def _crop(t: Tensor, box: Box, origin: tuple[int, int] = (0, 0)) -> Tensor:
    (y0, y1), (x0, x1) = box
    return t[:, :, y0 - origin[0]:y1 - origin[0] + 1, x0 - origin[1]:x1 - origin[1] + 1]


@dataclass(frozen=True)
class Window:
    """How a windowed sample was computed: the stage where its batch parted, for each stage whose tabs differ
    across the batch the box covering all of them, the batch's size and the sample's slot.  A PNG's recipe records
    it, and its re-render crops and batches alike: a convolution's rounding depends on the shape of what it
    convolves (the crop, the batch size), not on the other samples' values, so this gives the same bits."""

    split: str
    boxes: dict[str, Box]
    batch: int = 1  # the size of the batch of crops it was computed in (the crops' convolutions round by it)
    slot: int = 0  # its place in that batch

    def at(self, slot: int) -> Window:
        return Window(self.split, self.boxes, self.batch, slot)

    def to_json(self) -> dict:
        return {"split": self.split, "boxes": {k: [list(b[0]), list(b[1])] for k, b in self.boxes.items()},
                "batch": self.batch, "slot": self.slot}

    @classmethod
    def from_json(cls, doc: object) -> Window:
        """A recorded window, its shape checked (a hostile recipe gets a ValueError); the model checks the rest."""
        if not isinstance(doc, dict) or not isinstance(doc.get("split"), str) or not isinstance(doc.get("boxes"), dict):
            raise ValueError("the window is not {split, boxes}")
        boxes = {}
        for name, box in list(doc["boxes"].items())[:1000]:
            ok = isinstance(box, list) and len(box) == 2 and all(
                isinstance(iv, list) and len(iv) == 2 and all(type(v) is int for v in iv) for iv in box)
            if not ok:
                raise ValueError(f"the window's box at {str(name)[:60]!r} is not [[top, bottom], [left, right]]")
            boxes[str(name)] = ((box[0][0], box[0][1]), (box[1][0], box[1][1]))
        batch, slot = doc.get("batch", 1), doc.get("slot", 0)
        if type(batch) is not int or type(slot) is not int:
            raise ValueError("the window's batch and slot are not integers")
        return cls(doc["split"], boxes, batch, slot)


@dataclass
class Patch:
    """Where the samples differ from the base: a box and the samples' values there [N, C, h, w]."""

    box: Box
    values: Tensor


def gather(base: Tensor, patch: Patch | None, box: Box, n: int) -> Tensor:
    """The n samples' values inside `box`: the base, with the patch pasted where it overlaps."""
    out = _crop(base, box).expand(n, -1, -1, -1).contiguous(memory_format=torch.channels_last)
    if patch is not None:
        overlap = (max(box[0][0], patch.box[0][0]), min(box[0][1], patch.box[0][1])), \
                  (max(box[1][0], patch.box[1][0]), min(box[1][1], patch.box[1][1]))
        if overlap[0][0] <= overlap[0][1] and overlap[1][0] <= overlap[1][1]:
            _crop(out, overlap, (box[0][0], box[1][0])).copy_(
                _crop(patch.values, overlap, (patch.box[0][0], patch.box[1][0])))
    return out


@dataclass
class Delta:
    """What a stage's tabs add: [N or 1, C, r, r]; per-sample deltas come with their support (None: all zero)."""

    values: Tensor
    per_sample: bool
    box: Box | None = None


def add_delta(base_x: Tensor, patch: Patch | None, delta: Delta, n: int) -> Patch | None:
    """Add a stage's tab delta. A delta shared by all samples is already in the base, so only the patch gets it;
    per-sample deltas widen the patch to their support."""
    if not delta.per_sample:
        if patch is not None:
            patch.values = patch.values + _crop(delta.values, patch.box)
        return patch
    box = union(patch.box if patch else None, delta.box)
    if box is None:
        return None
    return Patch(box, gather(base_x, patch, box, n) + _crop(delta.values, box))


def windowed_tail(synthesis: SynthesisNetwork, stages: list[Stage], base: list[SynthesisState], split: int,
                  ws: Tensor, noises: list[Tensor | None], deltas: list[Delta | None], n: int) -> Tensor:
    """Images [n, C, R, R] of samples that equal `base` (batch-1 states, one per stage, shared deltas included)
    up to stage `split`, where their per-sample deltas start; `deltas[j]` is stage j's Delta or None."""
    x_patch = add_delta(base[split].x, None, deltas[split], n) if deltas[split] is not None else None
    img_patch = shortcut_patch = None
    for j in range(split + 1, len(stages)):
        stage, prev, r = stages[j], base[j - 1], stages[j].resolution
        if stage.kind == "conv0" and x_patch is not None:
            out_box = _box("conv0", reach, x_patch.box, r)
            in_box = _box("conv0", needs, out_box, r // 2)
            origin = (2 * in_box[0][0], 2 * in_box[1][0])
            noise = _noise_crop(noises[j], ((origin[0], 2 * in_box[0][1] + 1), (origin[1], 2 * in_box[1][1] + 1)))
            s = synthesis.run_stage(stage, SynthesisState(n, gather(prev.x, x_patch, in_box, n)), ws, noise)
            x_patch = Patch(out_box, _crop(s.x, out_box, origin))
            shortcut_patch = Patch(out_box, _crop(s.shortcut, out_box, origin)) if s.shortcut is not None else None
        elif stage.kind == "conv1" and x_patch is not None:
            out_box = _box("conv1", reach, x_patch.box, r)
            in_box = _box("conv1", needs, out_box, r)
            shortcut = gather(prev.shortcut, shortcut_patch, in_box, n) if prev.shortcut is not None else None
            s = SynthesisState(n, gather(prev.x, x_patch, in_box, n), None, shortcut)
            s = synthesis.run_stage(stage, s, ws, _noise_crop(noises[j], in_box))
            origin = (in_box[0][0], in_box[1][0])
            x_patch, shortcut_patch = Patch(out_box, _crop(s.x, out_box, origin)), None
        elif stage.kind == "torgb" and (x_patch is not None or img_patch is not None):
            img_reach = _box("rgb_up", reach, img_patch.box, r) if img_patch is not None else None
            out_box = union(x_patch.box if x_patch is not None else None, img_reach)
            img_box = _box("rgb_up", needs, out_box, r // 2)
            x_box = (2 * img_box[0][0], 2 * img_box[0][1] + 1), (2 * img_box[1][0], 2 * img_box[1][1] + 1)
            img = gather(prev.img, img_patch, img_box, n) if prev.img is not None else None
            s = synthesis.run_stage(stage, SynthesisState(n, gather(prev.x, x_patch, x_box, n), img), ws, None)
            img_patch = Patch(out_box, _crop(s.img, out_box, (x_box[0][0], x_box[1][0])))
        if deltas[j] is not None:
            x_patch = add_delta(base[j].x, x_patch, deltas[j], n)
    size = stages[-1].resolution
    return gather(base[-1].img, img_patch, ((0, size - 1), (0, size - 1)), n).contiguous()


def _noise_crop(noise: Tensor | None, box: Box) -> Tensor | None:
    return None if noise is None else _crop(noise, box)
