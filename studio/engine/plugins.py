"""Detector plugins: plain Python files in plugins/ that turn feature maps into a mask.

The API (see plugins/README.md):

    NAME = "spatial_map"                          # shown in the studio (default: the file name)
    PARAMS = {"layer": "b16.conv0", "threshold": 0.5, ...}   # defaults; their types are the parameters' types
    def layers(params) -> list[str]               # the feature maps it needs (or a LAYERS list)
    def detect(features, image, params) -> mask   # features: {layer: float32 [C,H,W]}, image: uint8 [H,W,3]
                                                  # mask: 2-D array, any resolution, values in [-1, 1]

The studio resamples the mask to each tab's grid.  Plugins are discovered at start, reloaded when their file
changes, and run in-process with every failure contained: an exception, a wrong shape, NaN, or a run over its
time budget gives a clear message and leaves the tab as it was.
"""

from __future__ import annotations

import importlib.util
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .edits import EditStack

DEFAULT_BUDGET_S = 2.0
DETECTOR_MODES = ("off", "run", "run_and_modify")


class PluginError(Exception):
    """A plugin failed; the message names the plugin and what went wrong."""


@dataclass
class Plugin:
    name: str
    path: Path
    mtime: float
    module: ModuleType | None = None
    error: str | None = None  # set when the file could not be loaded
    params: dict = field(default_factory=dict)
    doc: str = ""

    def needed_layers(self, params: dict) -> list[str]:
        fn = getattr(self.module, "layers", None)
        layers = fn(params) if callable(fn) else getattr(self.module, "LAYERS", [])
        return [str(x) for x in layers]


def load_plugin(path: Path) -> Plugin:
    """Import one plugin file under a private module name; a broken file gives a Plugin with `error` set."""
    plugin = Plugin(path.stem, path, path.stat().st_mtime)
    try:
        spec = importlib.util.spec_from_file_location(f"ganstudio_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "detect", None)):
            raise PluginError("it defines no detect(features, image, params) function")
        plugin.module = module
        plugin.name = str(getattr(module, "NAME", path.stem))
        plugin.params = dict(getattr(module, "PARAMS", {}))
        plugin.doc = (module.__doc__ or "").strip()
    except Exception as e:  # a plugin file may raise anything while importing
        plugin.error = f"{path.name}: {type(e).__name__}: {e}"
    return plugin


class PluginManager:
    """The plugins of one folder, reloaded when their files change."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.plugins: dict[str, Plugin] = {}
        self.refresh()

    def refresh(self) -> list[str]:
        """Load new and changed files, drop deleted ones; returns the names that were (re)loaded."""
        changed = []
        files = {p.stem: p for p in sorted(self.folder.glob("*.py")) if not p.name.startswith("_")} \
            if self.folder.is_dir() else {}
        by_file = {p.path.stem: p for p in self.plugins.values()}
        for stem, path in files.items():
            old = by_file.get(stem)
            if old is None or old.mtime != path.stat().st_mtime:
                new = load_plugin(path)
                if old is not None:
                    self.plugins.pop(old.name, None)
                self.plugins[new.name] = new
                changed.append(new.name)
        for name in [n for n, p in self.plugins.items() if p.path.stem not in files]:
            del self.plugins[name]
        return changed

    def get(self, name: str) -> Plugin:
        plugin = self.plugins.get(name)
        if plugin is None:
            raise PluginError(f"no plugin named {name!r} in {self.folder}")
        if plugin.error:
            raise PluginError(f"plugin {name!r} failed to load: {plugin.error}")
        return plugin


def coerce_params(plugin: Plugin, given: dict | None) -> dict:
    """The plugin's defaults overridden by `given`, each converted to its default's type."""
    params = dict(plugin.params)
    for k, v in (given or {}).items():
        default = plugin.params.get(k)
        try:
            if isinstance(default, bool):
                params[k] = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
            elif isinstance(default, (int, float)) and not isinstance(v, (int, float)):
                params[k] = type(default)(v)
            else:
                params[k] = v
        except (TypeError, ValueError):
            raise PluginError(
                f"plugin {plugin.name!r}: parameter {k}={v!r} is not a {type(default).__name__}") from None
    return params


def resample_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Any 2-D mask -> size x size: area averaging down, nearest up."""
    t = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
    if t.shape[-1] >= size and t.shape[-2] >= size:
        out = F.adaptive_avg_pool2d(t, size)
    else:
        out = F.interpolate(t, size=(size, size), mode="nearest")
    return out[0, 0].numpy()


def run_plugin(plugin: Plugin, features: dict[str, np.ndarray], image: np.ndarray, params: dict,
               grid: int, budget_s: float = DEFAULT_BUDGET_S) -> np.ndarray:
    """Run a detector with a time budget and check what it returns; -> float32 [grid, grid] in [-1, 1]."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["mask"] = plugin.module.detect(features, image, params)
        except Exception as e:
            box["error"] = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_tb(e.__traceback__)[-2:])

    worker = threading.Thread(target=call, name=f"plugin-{plugin.name}", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        raise PluginError(f"plugin {plugin.name!r} ran over its time budget of {budget_s:g} s; result discarded")
    if "error" in box:
        raise PluginError(f"plugin {plugin.name!r} raised {box['error'].strip()}")
    mask = box.get("mask")
    try:
        mask = np.asarray(mask, dtype=np.float32)
    except (TypeError, ValueError):
        raise PluginError(f"plugin {plugin.name!r} returned {type(mask).__name__}, not an array") from None
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise PluginError(f"plugin {plugin.name!r} returned shape {mask.shape}; a 2-D mask is needed")
    if not np.all(np.isfinite(mask)):
        raise PluginError(f"plugin {plugin.name!r} returned NaN or infinite values")
    return np.clip(resample_mask(mask, grid), -1, 1)


def has_detectors(stack: EditStack) -> bool:
    return any(t.detector and t.detector.get("mode", "off") != "off" for t in stack.tabs)


def apply_detectors(render, stack: EditStack, manager: PluginManager, budget_s: float = DEFAULT_BUDGET_S):
    """Render with every tab that owns a detector: returns (result, new stack, messages).

    `render(stack, capture=...)` is an Engine's or a Renderer's render (the cache makes the second pass cheap).

    mode "run": render, detect, update the tab's selection (shown from the next render on).
    mode "run_and_modify": render without those tabs' edits, detect, re-render with the edits on the detected
    selection: one image, two passes, the second resumed from the cache at the first edited layer.
    Failures leave the tab as it was and are reported in the messages.
    """
    stack = stack.copy()
    owners = [t for t in stack.tabs if t.detector and t.detector.get("mode", "off") != "off"]
    messages: list[str] = []
    if not owners:
        return render(stack), stack, messages
    needed: dict[int, tuple[Plugin, dict]] = {}
    for tab in owners:
        try:
            plugin = manager.get(tab.detector["plugin"])
            needed[id(tab)] = (plugin, coerce_params(plugin, tab.detector.get("params")))
        except PluginError as e:
            messages.append(f"tab {tab.name!r}: {e}")
    layers = tuple(sorted({layer for p, prm in needed.values() for layer in p.needed_layers(prm)}))
    modify = [t for t in owners if t.detector["mode"] == "run_and_modify" and id(t) in needed]
    saved_active = {id(t): t.active for t in modify}
    for t in modify:
        t.active = False
    try:
        first = render(stack, capture=layers)
    finally:
        for t in modify:
            t.active = saved_active[id(t)]
    image = first.uint8()[0]
    feats = {k: v[0].detach().cpu().numpy() for k, v in first.features.items()}
    failed: set[int] = set()
    for tab in owners:
        if id(tab) not in needed:
            continue
        plugin, params = needed[id(tab)]
        try:
            tab.selection = run_plugin(plugin, feats, image, params, tab.selection.shape[0], budget_s)
        except PluginError as e:
            messages.append(f"tab {tab.name!r}: {e}")
            failed.add(id(tab))
    if not modify:
        return first, stack, messages
    # no fresh mask, no edit: a failed detector's tab is left out of this render (and left as it was)
    render_stack = stack.copy(tabs=[t for t in stack.tabs if id(t) not in failed or t not in modify])
    return render(render_stack), stack, messages
