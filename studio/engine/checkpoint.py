"""What every checkpoint reader shares: the error it raises and helpers over the records of a pickle."""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from .safe_pickle import PersistentRecord


class ModelLoadError(Exception):
    """A checkpoint could not be loaded; the message says why and what was found."""


def channel_layout(channels: dict[int, int], resolution: int) -> tuple[int, int]:
    """(channel_base, channel_max) that reproduce channels[res] = min(base // res, max) for every block."""
    cmax = max(channels.values())
    below = [(res, ch) for res, ch in channels.items() if ch < cmax]
    base = below[0][0] * below[0][1] if below else cmax * resolution
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise ModelLoadError(f"non-standard channel layout {channels}")
    return base, cmax


def flatten(record: PersistentRecord, prefix: str = "", seen: set[int] | None = None) -> dict[str, Tensor]:
    """The record tree's tensors by dotted name; a record met twice (a shared or cyclic module) is refused."""
    seen = set() if seen is None else seen
    if id(record) in seen or len(seen) > 100_000:
        raise ModelLoadError(f"module {prefix.rstrip('.') or 'G'} appears more than once in the network tree")
    seen.add(id(record))
    out: dict[str, Tensor] = {}
    for name, t in {**record.params, **record.buffers}.items():
        if t is not None:
            if not isinstance(name, str) or not isinstance(t, Tensor):
                raise ModelLoadError(f"{prefix}{name}: a parameter that is not a tensor")
            out[prefix + name] = t.detach()
    for name, sub in record.modules.items():
        if isinstance(sub, PersistentRecord) and isinstance(name, str):
            out.update(flatten(sub, f"{prefix}{name}.", seen))
    return out


def number(v: object, what: str) -> float:
    if isinstance(v, (np.generic, np.ndarray)) and np.size(v) == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ModelLoadError(f"{what} is not a finite number ({type(v).__name__})")
    return float(v)


def attr(record: PersistentRecord, name: str, default=None):
    """A plain attribute of a pickled module (its __dict__ entry)."""
    return record.state.get(name, default)


def check_fields(known: dict, ranges: dict[str, tuple[int, int]], optional: tuple[str, ...] = ()) -> None:
    """Each integer field present lies in its range (booleans are not integers); `optional` ones may be None."""
    for key, (lo, hi) in ranges.items():
        v = known.get(key)
        if v is None and key in optional:
            continue
        if key in known and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
            raise ModelLoadError(f"config {key}={v!r} is not an integer in [{lo}, {hi}]")


def check_positive(known: dict, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Each number field present is positive and finite (booleans are not numbers); `optional` ones may be None."""
    for key in keys:
        v = known.get(key)
        if key in known and not (v is None and key in optional) and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
            raise ModelLoadError(f"config {key}={v!r} is not a positive finite number")
