"""Feature-map analysis: rank channels by similarity to a selection; record maps across images on disk.

Ranking methods (F_c the channel's map at the selection's grid, S the selection):
    dot      sum_hw F_c * S                       the original's signed, unnormalised score
    cosine   <F_c, S> / (|F_c| |S|)               scale-free: high-magnitude channels no longer win by size
    iou      IoU(F_c > t_c, S > 0), t_c = the channel's top-`IOU_QUANTILE` value (GAN Dissection's rule)
    magnitude sum_hw |F_c|                        the original's "sort by magnitude"
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .edits import resample_grid
from .files import write_text_atomic
from .network import normalize_2nd_moment

RANK_METHODS = ("dot", "cosine", "iou", "magnitude")
IOU_QUANTILE = 0.8  # a channel's map is "on" where it exceeds its own 80th percentile


def rank_channels(features: np.ndarray, selection: np.ndarray, method: str = "cosine") -> np.ndarray:
    """Scores [C] for features [C,H,W] (or [N,C,H,W], averaged over N) against a selection grid."""
    if method not in RANK_METHODS:
        raise ValueError(f"rank method must be one of {RANK_METHODS}")
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 3:
        f = f[None]
    sel = resample_grid(np.asarray(selection, np.float32), f.shape[-1]).astype(np.float64)
    flat = f.reshape(f.shape[0], f.shape[1], -1)
    s = sel.ravel()
    if method == "dot":
        scores = flat @ s
    elif method == "magnitude":
        scores = np.abs(flat).sum(-1)
    elif method == "cosine":
        norms = np.linalg.norm(flat, axis=-1) * (np.linalg.norm(s) + 1e-12)
        scores = (flat @ s) / np.maximum(norms, 1e-12)
    else:
        on = flat > np.quantile(flat, IOU_QUANTILE, axis=-1, keepdims=True)
        target = s > 0
        inter = (on & target).sum(-1)
        union = (on | target).sum(-1)
        scores = inter / np.maximum(union, 1)
    return scores.mean(0)


def top_channels(scores: np.ndarray, n: int) -> list[int]:
    """Indices of the n highest scores, best first."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:n]]


class FeatureHistory:
    """Feature maps of one layer recorded across images, on disk, with bounded memory.

    Maps are appended as float16 to `maps.f16` (one [C,H,W] record each); `index.json` lists the records;
    the per-channel running sums (float64) give an exact mean and std without reading the records back.
    """

    def __init__(self, folder: str | Path, layer: str, shape: tuple[int, int, int]):
        self.dir = Path(folder) / layer
        self.layer, self.shape = layer, tuple(shape)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index_path = self.dir / "index.json"
        self.entries: list[dict] = []
        self._sum = np.zeros(self.shape, np.float64)
        self._sq = np.zeros(self.shape, np.float64)
        if self._index_path.exists():
            doc = json.loads(self._index_path.read_text())
            if tuple(doc["shape"]) == self.shape:
                self.entries = doc["entries"]
                self._sum = np.load(self.dir / "sum.npy")
                self._sq = np.load(self.dir / "sq.npy")

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, maps: np.ndarray, label: str = "") -> None:
        maps = np.asarray(maps, np.float32).reshape(self.shape)
        with open(self.dir / "maps.f16", "ab") as f:
            f.write(maps.astype(np.float16).tobytes())
        self._sum += maps
        self._sq += maps.astype(np.float64) ** 2
        self.entries.append({"label": label})
        np.save(self.dir / "sum.npy", self._sum)
        np.save(self.dir / "sq.npy", self._sq)
        write_text_atomic(self._index_path, json.dumps({"shape": list(self.shape), "entries": self.entries}))

    def channel(self, c: int) -> np.ndarray:
        """One channel's map for every recorded image: [N, H, W] (read through a memory map)."""
        if not self.entries:
            return np.zeros((0, *self.shape[1:]), np.float32)
        mm = np.memmap(self.dir / "maps.f16", dtype=np.float16, mode="r", shape=(len(self.entries), *self.shape))
        return np.asarray(mm[:, c], dtype=np.float32)

    def mean(self) -> np.ndarray:
        return (self._sum / max(len(self.entries), 1)).astype(np.float32)

    def std(self) -> np.ndarray:
        n = max(len(self.entries), 1)
        return np.sqrt(np.maximum(self._sq / n - (self._sum / n) ** 2, 0)).astype(np.float32)

    def clear(self) -> None:
        for name in ("maps.f16", "sum.npy", "sq.npy", "index.json"):
            (self.dir / name).unlink(missing_ok=True)
        self.entries = []
        self._sum[:] = 0
        self._sq[:] = 0


def rank_by_masks(features: np.ndarray, masks: np.ndarray, method: str = "cosine") -> np.ndarray:
    """Scores [C] of features [N,C,h,w] against a different selection per image (masks [N,H,W]), averaged."""
    return np.mean([rank_channels(f, m_, method) for f, m_ in zip(features, _masks_to(masks, features.shape[-1]),
                                                                       strict=True)], axis=0)


def _masks_to(masks: np.ndarray, size: int) -> np.ndarray:
    n, h, _ = masks.shape
    if h == size:
        return masks.astype(np.float32)
    f = h // size
    return masks.reshape(n, size, f, size, f).mean(axis=(2, 4)).astype(np.float32)


STD_SAMPLES = 64  # images a layer's channel statistics are measured over
STD_CHUNK = 16


def channel_std(renderer, layer: str, n: int = STD_SAMPLES, psi: float = 1.0) -> np.ndarray:
    """Each channel's standard deviation at `layer` over `n` images (seeds 0..n-1, untruncated, constant noise;
    every position of the layer's map counts): the unit a tab's strength can be given in, so that "+4 sigma"
    means about the same on any model (the raw multiplier depends on each model's activation scale)."""
    from .edits import EditStack

    total = sq = 0.0
    count = 0
    for start in range(0, n, STD_CHUNK):
        stacks = [EditStack(seed=s, psi=psi) for s in range(start, min(n, start + STD_CHUNK))]
        f = renderer.render_many(stacks, capture=(layer,), until=layer).features[layer].double()
        total = total + f.sum(dim=(0, 2, 3))
        sq = sq + (f * f).sum(dim=(0, 2, 3))
        count += f.shape[0] * f.shape[2] * f.shape[3]
    mean = total / count
    return ((sq / count - mean * mean).clamp(min=0).sqrt()).float().cpu().numpy()


def tab_sigma(weights: np.ndarray, std: np.ndarray) -> float:
    """The activation scale of a tab's channels: their std weighted by |weight| (0 when no channel is set)."""
    w = np.abs(np.asarray(weights, np.float64))
    return float((w * std).sum() / w.sum()) if w.sum() > 0 else 0.0


def affine_fit(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Least-squares affine map from z (2nd-moment normalised, as the mapping network reads it) to w.

    Returns (solution, R^2): the solution's rows are the weights per normalised z coordinate, its last row the bias;
    R^2 = 1 - |residual|^2 / |w - mean(w)|^2, 1 when w is an affine function of z.
    """
    x = torch.cat([normalize_2nd_moment(z), torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], 1)
    solution = torch.linalg.lstsq(x, w).solution
    unexplained = (x @ solution - w).square().sum() / (w - w.mean(0)).square().sum()
    return solution, float(1.0 - unexplained)
