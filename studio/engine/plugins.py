"""Detector plugins: plain Python files in plugins/ that turn feature maps into a mask.

The API (see plugins/README.md):

    NAME = "spatial_map"                          # shown in the studio (default: the file name)
    PARAMS = {"layer": "b16.conv0", "threshold": 0.5, ...}   # defaults; their types are the parameters' types
    def layers(params) -> list[str]               # the feature maps it needs (or a LAYERS list)
    def detect(features, image, params) -> mask   # features: {layer: float32 [C,H,W]}, image: uint8 [H,W,3]
                                                  # mask: 2-D array, any resolution, values in [-1, 1]

Each plugin file runs in a worker process of its own (`plugin_worker.py`), fed by pipes with raw arrays (no
pickle), so a plugin that loops, holds the GIL, leaks memory, exits or crashes is stopped at its budget (time per
call, time to import, memory) and the host goes on with a clear message; the worker is started again on the next
call.  `inline=True` (the CLI's and studio's --inline-plugins, for debugging) imports plugins in-process instead,
where only the time budget of a call is enforced (by abandoning the call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .edits import EditStack, detector_on
from .plugin_worker import ProtocolError, describe_error, import_plugin, read_frame, write_frame

DEFAULT_BUDGET_S = 2.0
IMPORT_BUDGET_S = 10.0
DEFAULT_MEMORY_MB = 1024
DETECTOR_MODES = ("off", "run", "run_and_modify")
INLINE_ENV = "GANSTUDIO_INLINE_PLUGINS"
MEMORY_ENV = "GANSTUDIO_PLUGIN_MEMORY_MB"
MAX_MASK_SIDE = 8192
POLL_S = 0.01


class PluginError(Exception):
    """A plugin failed; the message names the plugin and what went wrong."""


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux /proc; None where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class Worker:
    """One plugin file's worker process: started on demand, killed when it breaks a budget."""

    def __init__(self, path: Path, memory_mb: float):
        self.path = path
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.lock = threading.Lock()  # one request at a time (the render worker and a CLI loop share it)

    def _spawn(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        limit = int((self.memory_mb + 1024) * 2**20)

        def limits() -> None:  # a backstop under the host's RSS watch: allocations past it fail in the plugin
            import resource
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            except (ValueError, OSError):
                pass
        self.proc = subprocess.Popen([sys.executable, "-m", "studio.engine.plugin_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=package_root,
                                     preexec_fn=limits if os.name == "posix" else None)

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        self.proc = None

    def load(self) -> dict:
        """Start the worker and import the plugin under the import budget; -> NAME, PARAMS, doc."""
        with self.lock:
            self.stop()
            self._spawn()
            header, _ = self._exchange({"cmd": "load", "path": str(self.path)}, {}, IMPORT_BUDGET_S, "importing")
            self.info = header
            return header

    def request(self, header: dict, arrays: dict[str, np.ndarray], budget_s: float, what: str
                ) -> tuple[dict, dict[str, np.ndarray]]:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:  # stopped at a budget before: start afresh
                self._spawn()
                self._exchange({"cmd": "load", "path": str(self.path)}, {}, IMPORT_BUDGET_S, "importing")
            return self._exchange(header, arrays, budget_s, what)

    def _exchange(self, header: dict, arrays: dict[str, np.ndarray], budget_s: float, what: str
                  ) -> tuple[dict, dict[str, np.ndarray]]:
        proc = self.proc
        box: dict[str, Any] = {}

        def talk() -> None:
            try:
                write_frame(proc.stdin, header, arrays)
                box["reply"] = read_frame(proc.stdout)
            except (EOFError, OSError, ValueError, ProtocolError) as e:
                box["error"] = e

        t = threading.Thread(target=talk, name=f"plugin-pipe-{self.path.stem}", daemon=True)
        t.start()
        deadline = time.perf_counter() + budget_s
        peak = 0.0
        while t.is_alive():
            t.join(POLL_S)
            rss = _rss_mb(proc.pid) or 0.0
            peak = max(peak, rss)
            if rss > self.memory_mb:
                self.stop()
                t.join(1)
                raise PluginError(f"used {rss:.0f} MB while {what}, over its memory budget of "
                                  f"{self.memory_mb:.0f} MB; stopped")
            if time.perf_counter() > deadline and t.is_alive():
                self.stop()
                t.join(1)
                raise PluginError(f"ran over its time budget of {budget_s:g} s while {what}; stopped, "
                                  "result discarded")
        if "error" in box:
            code = proc.poll()
            if code is None:
                try:
                    code = proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    code = None
            self.stop()
            if isinstance(box["error"], ProtocolError):
                raise PluginError(f"sent a malformed reply while {what} ({box['error']})")
            raise PluginError(f"exited (status {code}) while {what}" if code is not None else
                              f"stopped answering while {what}")
        reply, out = box["reply"]
        if not reply.get("ok"):
            raise PluginError(f"raised {str(reply.get('error', 'an error'))[:1500].strip()}")
        return reply, out


@dataclass
class Plugin:
    name: str
    path: Path
    mtime: float
    module: Any = None  # inline mode: the imported module
    worker: Worker | None = None  # isolated mode: its worker process
    error: str | None = None  # set when the file could not be loaded
    params: dict = field(default_factory=dict)
    doc: str = ""
    layer_cache: dict = field(default_factory=dict)  # params (JSON) -> layers: one round trip saved per call

    def needed_layers(self, params: dict, budget_s: float = DEFAULT_BUDGET_S) -> list[str]:
        if self.worker is not None:
            key = json.dumps(params, sort_keys=True, default=str)
            if key in self.layer_cache:
                return list(self.layer_cache[key])
            try:
                reply, _ = self.worker.request({"cmd": "layers", "params": params}, {}, budget_s, "listing layers")
            except PluginError as e:
                raise PluginError(f"plugin {self.name!r} {e}") from None
            layers = reply.get("layers")
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers) or len(layers) > 256:
                raise PluginError(f"plugin {self.name!r}: layers() must return a list of layer names")
            if len(self.layer_cache) < 1024:
                self.layer_cache[key] = list(layers)
            return layers
        fn = getattr(self.module, "layers", None)
        layers = fn(params) if callable(fn) else getattr(self.module, "LAYERS", [])
        return [str(x) for x in layers]

    def detect(self, features: dict[str, np.ndarray], image: np.ndarray, params: dict, budget_s: float) -> Any:
        """The plugin's raw mask (checked by run_plugin)."""
        if self.worker is not None:
            arrays = {f"f:{k}": np.asarray(v, np.float32) for k, v in features.items()}
            arrays["image"] = np.asarray(image, np.uint8)
            try:
                _, out = self.worker.request({"cmd": "detect", "params": params}, arrays, budget_s, "detecting")
            except PluginError as e:
                raise PluginError(f"plugin {self.name!r} {e}") from None
            if "mask" not in out:
                raise PluginError(f"plugin {self.name!r} returned no mask")
            return out["mask"]
        return _detect_inline(self, features, image, params, budget_s)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()


def _detect_inline(plugin: Plugin, features: dict, image: np.ndarray, params: dict, budget_s: float) -> Any:
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["mask"] = plugin.module.detect(features, image, params)
        except Exception as e:
            box["error"] = describe_error(e)

    worker = threading.Thread(target=call, name=f"plugin-{plugin.name}", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        raise PluginError(f"plugin {plugin.name!r} ran over its time budget of {budget_s:g} s; result discarded")
    if "error" in box:
        raise PluginError(f"plugin {plugin.name!r} raised {box['error'].strip()}")
    return box.get("mask")


def memory_budget_mb() -> float:
    try:
        return float(os.environ.get(MEMORY_ENV, DEFAULT_MEMORY_MB))
    except ValueError:
        return DEFAULT_MEMORY_MB


def load_plugin(path: Path, inline: bool = False) -> Plugin:
    """Load one plugin file (in its worker process, or in-process when `inline`); a broken file gives a Plugin
    with `error` set."""
    plugin = Plugin(path.stem, path, path.stat().st_mtime)
    try:
        if inline:
            plugin.module, info = import_plugin(str(path))
        else:
            plugin.worker = Worker(path, memory_budget_mb())
            info = plugin.worker.load()
        plugin.name = str(info.get("name") or path.stem)[:100]
        plugin.params = dict(info.get("params") or {})
        plugin.doc = str(info.get("doc") or "").strip()[:4000]
    except Exception as e:  # a plugin file may raise anything while importing
        if plugin.worker is not None:
            plugin.worker.stop()
            plugin.worker = None
        plugin.error = f"{path.name}: {e}" if isinstance(e, PluginError) else f"{path.name}: {type(e).__name__}: {e}"
    return plugin


class PluginManager:
    """The plugins of some folders (a file in an earlier folder shadows one of the same name in a later: the
    user's plugins, then the shipped ones), reloaded when their files change."""

    def __init__(self, folders: str | Path | list[Path], inline: bool | None = None):
        self.folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
        self.inline = os.environ.get(INLINE_ENV) == "1" if inline is None else inline
        self.plugins: dict[str, Plugin] = {}
        self.refresh()

    @property
    def folder(self) -> Path:
        """The first folder (the user's): where new plugins go."""
        return self.folders[0]

    def refresh(self) -> list[str]:
        """Load new and changed files, drop deleted ones; returns the names that were (re)loaded."""
        changed = []
        files: dict[str, Path] = {}
        for folder in reversed(self.folders):
            if folder.is_dir():
                files.update({p.stem: p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")})
        by_file = {p.path.stem: p for p in self.plugins.values()}
        for stem, path in files.items():
            old = by_file.get(stem)
            if old is None or old.path != path or old.mtime != path.stat().st_mtime:
                new = load_plugin(path, self.inline)
                if old is not None:
                    old.close()
                    self.plugins.pop(old.name, None)
                self.plugins[new.name] = new
                changed.append(new.name)
        for name in [n for n, p in self.plugins.items() if p.path.stem not in files]:
            self.plugins.pop(name).close()
        return changed

    def get(self, name: str) -> Plugin:
        plugin = self.plugins.get(name)
        if plugin is None:
            raise PluginError(f"no plugin named {name!r} in {', '.join(map(str, self.folders))}")
        if plugin.error:
            raise PluginError(f"plugin {name!r} failed to load: {plugin.error}")
        return plugin

    def close(self) -> None:
        for p in self.plugins.values():
            p.close()


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
    """Run a detector within its budgets and check what it returns; -> float32 [grid, grid] in [-1, 1]."""
    mask = plugin.detect(features, image, params, budget_s)
    try:
        mask = np.array(mask, dtype=np.float32)  # a copy: the host owns what it keeps
    except (TypeError, ValueError):
        raise PluginError(f"plugin {plugin.name!r} returned {type(mask).__name__}, not an array") from None
    if mask.ndim != 2 or min(mask.shape) < 1 or max(mask.shape) > MAX_MASK_SIDE:
        raise PluginError(f"plugin {plugin.name!r} returned shape {mask.shape}; a 2-D mask is needed")
    if not np.all(np.isfinite(mask)):
        raise PluginError(f"plugin {plugin.name!r} returned NaN or infinite values")
    return np.clip(resample_mask(mask, grid), -1, 1)


def detecting(stack: EditStack, shown: str | None = None) -> list:
    """The tabs whose detector runs: switched on and owning a detector that is not off.  A switched-off tab edits
    nothing, so its detector would change no pixel; `shown` names one that detects anyway (the studio's selected
    tab, whose mask the user watches before switching it on)."""
    return [t for t in stack.tabs if detector_on(t.detector)
            and (t.active or t.name == shown)]


def has_detectors(stack: EditStack, shown: str | None = None) -> bool:
    return bool(detecting(stack, shown))


def apply_detectors(render, stack: EditStack, manager: PluginManager, budget_s: float = DEFAULT_BUDGET_S,
                    shown: str | None = None):
    """Render with every tab that owns a detector: returns (result, new stack, messages).

    `render(stack, capture=...)` is an Engine's or a Renderer's render (the cache makes the second pass cheap).

    mode "run": render, detect, update the tab's selection (shown from the next render on).
    mode "run_and_modify": render without those tabs' edits, detect, re-render with the edits on the detected
    selection: one image, two passes, the second resumed from the cache at the first edited layer.
    Failures leave the tab as it was and are reported in the messages.  Only switched-on tabs detect (and the
    one named `shown`, see `detecting`).
    """
    stack = stack.copy()
    owners = detecting(stack, shown)
    messages: list[str] = []
    if not owners:
        return render(stack), stack, messages
    needed: dict[int, tuple[Plugin, dict]] = {}
    wanted: set[str] = set()
    for tab in owners:
        try:
            plugin = manager.get(tab.detector["plugin"])
            params = coerce_params(plugin, tab.detector.get("params"))
            wanted.update(plugin.needed_layers(params, budget_s))
            needed[id(tab)] = (plugin, params)
        except PluginError as e:
            messages.append(f"tab {tab.name!r}: {e}")
    layers = tuple(sorted(wanted))
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
