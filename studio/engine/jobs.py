"""Batch jobs: the original's Batch and Misc menus as cancellable iterators with progress.

Every job is planned as a list of `Item`s (an output name and an edit stack), then rendered in chunks: items that
share one w (sweeps, combinatorics) run the layers before the first edited one once and batch the rest with
shared modulated weights.  Each run writes into a new folder: PNGs with their recipes, written atomically, and a
`manifest.json` saying what ran, with which parameters, what was written and how it ended (complete, cancelled,
failed).  A cancelled or failed job leaves only complete files.

    for progress in job.run(cancel_event):   # the CLI shows a bar; the studio a progress bar and Cancel
        ...
"""

from __future__ import annotations

import errno
import itertools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .edits import EditError, EditStack, SpatialTab, multiplier, slerp
from .engine import Engine
from .files import write_atomic, write_text_atomic
from .plugins import PluginManager, apply_detectors, has_detectors
from .recipe import RecipeError, encode_png, png_bytes, read_image, read_recipe
from .renderer import Renderer, to_uint8

CHUNK = 32  # images rendered per batch


@dataclass
class Item:
    name: str  # output file name (without folder)
    stack: EditStack
    label: str = ""  # what the contact sheet prints under its tile (e.g. "89+": channel 89, positive)

    def to_json(self) -> dict:
        """One line of a plan (plan.jsonl), and what a Ray worker receives."""
        return {"name": self.name, "label": self.label, "stack": self.stack.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> Item:
        """An item read back from a plan or a payload, checked as data: a bare .png file name, a short label."""
        name = str(d["name"])
        if Path(name).name != name or not name.endswith(".png"):
            raise EditError(f"bad file name {name!r}")
        return cls(name, EditStack.from_json(d["stack"]), str(d.get("label", ""))[:MAX_LABEL])


@dataclass
class Progress:
    done: int
    total: int
    folder: Path
    last: Path | None = None
    message: str = ""


class DiskFullError(OSError):
    """The output disk (or the process's file size limit) is full; the file being written was removed."""


PLAN_FILE = "plan.jsonl"
MAX_LABEL = 12  # characters under a contact-sheet tile
MANIFEST = "manifest.json"
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


@dataclass
class Job:
    """A planned batch: what to render and where; `run` renders it."""

    kind: str
    items: list[Item]
    params: dict
    problems: list[str] = field(default_factory=list)  # per-input problems found while planning
    contact_sheet: bool = False

    def run(self, engine: Engine, out_root: str | Path, cancel: threading.Event | None = None,
            plugins: PluginManager | None = None, folder: Path | None = None, capture: str | None = None,
            on_features: Callable[[str, np.ndarray], None] | None = None,
            backend: Backend | None = None) -> Iterator[Progress]:
        """Render the items into a new folder (or, resuming, into `folder`, skipping the files already there).

        The manifest is rewritten atomically after every chunk, so it always lists the files on disk; it ends
        "complete", "cancelled", "interrupted" (Ctrl-C, SIGTERM) or "failed" (with the error).  One item that
        cannot be rendered is recorded under its file name in "failed" and the others go on.  Tabs that own a
        detector are detected per image when `plugins` is given (their recipes then hold the detected selection,
        so every PNG re-creates itself without the plugin).  With `capture` (a layer), `on_features(name, maps)`
        receives each written image's feature maps there ([C, H, W]; the studio records them into its history).
        `backend` renders the chunks elsewhere (`distributed.ray_backend`: a Ray cluster); the files, the manifest
        and the progress are made here the same way, whoever rendered."""
        resuming = folder is not None
        folder = folder if resuming else _new_folder(Path(out_root), self.kind)
        if backend is None:
            backend = local_backend(engine, plugins, capture)
        if resuming:
            manifest = json.loads((folder / MANIFEST).read_text())
            done = set(manifest["files"])
            todo = [it for it in self.items if it.name not in done]
            manifest.update(status="running", resumed=manifest.get("resumed", 0) + 1)
        else:
            manifest = {"job": self.kind, "params": self.params, "model": {"sha256": engine.model.sha256,
                        "name": engine.model.name}, "started": _now(), "status": "running",
                        "planned": len(self.items), "plan": PLAN_FILE, "wants_contact_sheet": self.contact_sheet,
                        "files": [], "failed": {},
                        "problems": list(self.problems)}
            plan = "".join(json.dumps(it.to_json()) + "\n" for it in self.items)
            write_atomic(folder / PLAN_FILE, plan.encode())
            todo = list(self.items)
        write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
        thumbs: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        written = 0
        chunks = backend(todo, self.contact_sheet)
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    manifest["status"] = "cancelled" if len(manifest["files"]) < len(self.items) else "complete"
                    break
                try:
                    chunk, out = next(chunks)
                except StopIteration:
                    manifest["status"] = "complete"
                    break
                for w in out.written:
                    _write_png_file(folder / w.name, w.png)
                    manifest["files"].append(w.name)
                    manifest["failed"].pop(w.name, None)
                    written += 1
                    if self.contact_sheet and w.image is not None:
                        thumbs[w.name] = w.image
                    if on_features is not None and w.maps is not None:
                        on_features(w.name, w.maps)
                manifest["failed"].update(out.failed)
                manifest["problems"].extend(out.problems)
                write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
                yield Progress(len(manifest["files"]), len(self.items), folder, folder / chunk[-1].name)
        except DiskFullError as e:
            manifest["status"] = "failed"
            manifest["error"] = str(e)
            raise
        except Exception as e:
            manifest["status"] = "failed"
            manifest["error"] = f"{type(e).__name__}: {e}"
            raise
        except BaseException:  # KeyboardInterrupt (Ctrl-C, or SIGTERM in the CLI), SystemExit
            manifest["status"] = "interrupted"
            _remove_temp_files(folder)  # a write cut short between its temp file and its rename
            listed = set(manifest["files"])  # a file renamed into place just before the interrupt is listed too
            manifest["files"].extend(it.name for it in todo
                                     if it.name not in listed and _complete_png(folder / it.name))
            raise
        finally:
            chunks.close()  # a backend still rendering stops (its workers are told to)
            order = {it.name: i for i, it in enumerate(self.items)}  # the plan's order, whoever finished first
            manifest["files"].sort(key=lambda name: order.get(name, len(order)))
            seconds = time.perf_counter() - t0
            manifest.update(finished=_now(), seconds=round(seconds, 3),
                            images_per_second=round(written / max(seconds, 1e-9), 2))
            try:
                if self.contact_sheet and manifest["status"] == "complete":
                    labels = {it.name: it.label for it in self.items}
                    sheet = [(labels.get(name) or name, img)
                             for name, img in _sheet_images(folder, [it.name for it in self.items], thumbs)]
                    if sheet:
                        write_atomic(folder / "contact_sheet.png", encode_png(contact_sheet(sheet)), durable=False)
                        manifest["contact_sheet"] = "contact_sheet.png"
                write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
            except OSError as e:  # a full disk may refuse even the manifest; say so, keep the first error
                print(f"warning: could not update {folder / MANIFEST}: {e}", file=sys.stderr)


@dataclass
class Written:
    """One rendered image of a chunk, encoded as the PNG file it becomes (recipe included)."""

    name: str
    png: bytes
    image: np.ndarray | None = None  # the pixels, when a contact sheet wants them
    maps: np.ndarray | None = None  # the captured layer's maps [C, H, W], when asked


@dataclass
class ChunkOutput:
    written: list[Written]
    failed: dict[str, str] = field(default_factory=dict)  # file name -> why it could not be rendered
    problems: list[str] = field(default_factory=list)


# (items to render, keep the images?) -> (chunk, its output) as chunks finish, in any order; closing it stops it
Backend = Callable[[list[Item], bool], Iterator[tuple[list[Item], ChunkOutput]]]


def render_chunk(engine: Engine, renderer: Renderer, chunk: list[Item], plugins: PluginManager | None = None,
                 capture: str | None = None, keep_images: bool = False) -> ChunkOutput:
    """Render one chunk and encode each image with its recipe: the same bytes in this process or in a worker."""
    log: dict = {"failed": {}, "problems": []}
    out = []
    for item, image, ws, window, maps in _render_items(renderer, chunk, plugins, log, (capture,) if capture else ()):
        png = png_bytes(image, engine.recipe(item.stack, ws, window))
        out.append(Written(item.name, png, image if keep_images else None, maps))
    return ChunkOutput(out, log["failed"], log["problems"])


def local_backend(engine: Engine, plugins: PluginManager | None = None, capture: str | None = None) -> Backend:
    """Chunks rendered here, in plan order, with a renderer of their own (its own cache: the studio's renderer
    keeps working meanwhile)."""
    def chunks(todo: list[Item], keep_images: bool) -> Iterator[tuple[list[Item], ChunkOutput]]:
        renderer = Renderer(engine.renderer.G)
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            yield chunk, render_chunk(engine, renderer, chunk, plugins, capture, keep_images)

    return chunks


def _write_png_file(path: Path, data: bytes) -> None:
    """Atomic write; a full disk or file size limit becomes a DiskFullError (the temp file is gone)."""
    try:
        write_atomic(path, data, durable=False)
    except OSError as e:
        if e.errno in DISK_FULL:
            err = DiskFullError(f"disk full while writing {path.name} ({e.strerror}); the files listed in the "
                                "manifest are complete: free some space and resume with --resume")
            err.errno = e.errno
            raise err from None
        raise


def _sheet_images(folder: Path, names: list[str], thumbs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The images of a contact sheet, in planned order: this run's from memory, a resumed run's from disk."""
    out = []
    for name in names:
        if name in thumbs:
            out.append((name, thumbs[name]))
        elif (folder / name).is_file():
            try:
                out.append((name, read_image(folder / name)))
            except RecipeError:
                continue
    return out


def _render_items(renderer: Renderer, chunk: list[Item], plugins: PluginManager | None, manifest: dict,
                  capture: tuple[str, ...] = ()):
    """(item, uint8 image, ws, window, captured maps or None) for every item of the chunk that renders; when the
    chunk fails, each item is rendered alone, and one that fails alone is recorded under its name in
    manifest["failed"] and ["problems"]."""
    try:
        done, result = _render_group(renderer, chunk, plugins, manifest["problems"], capture)
        images, ws = to_uint8(result.images), result.ws.cpu().numpy()
        maps = result.features[capture[0]].cpu().numpy() if capture and capture[0] in result.features else None
        return [(it, images[i], ws[min(i, ws.shape[0] - 1)], result.window(i), None if maps is None else maps[i])
                for i, it in enumerate(done)]
    except EditError as e:
        if len(chunk) == 1:
            manifest["failed"][chunk[0].name] = str(e)
            manifest["problems"].append(f"{chunk[0].name}: {e}")
            return []
    return [out for item in chunk for out in _render_items(renderer, [item], plugins, manifest, capture)]


def _render_group(renderer: Renderer, chunk: list[Item], plugins: PluginManager | None, problems: list[str],
                  capture: tuple[str, ...] = ()):
    if plugins is not None and any(has_detectors(it.stack) for it in chunk):
        chunk, result = _render_detected(renderer, chunk, plugins, problems, capture)
    else:
        result = _render_chunk(renderer, chunk, capture)
    return chunk, result


def _complete_png(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        read_recipe(path)
        return True
    except RecipeError:
        return False


def _remove_temp_files(folder: Path) -> None:
    """Half-written temp files (`.NAME.XXXX.tmp`) of a write that was cut short."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def read_items(folder: Path) -> list[Item]:
    """The planned items of a batch folder, checked as data, without touching the folder (the sweep browser)."""
    try:
        lines = (folder / PLAN_FILE).read_text().splitlines()
    except (OSError, ValueError) as e:
        raise EditError(f"{folder} is not a batch folder ({e})") from None
    return _plan_items(folder, lines)


def _plan_items(folder: Path, lines: list[str]) -> list[Item]:
    items = []
    for i, line in enumerate(lines):
        try:
            items.append(Item.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise EditError(f"{folder / PLAN_FILE} line {i + 1}: {e}") from None
    return items


def read_plan(folder: Path) -> tuple[dict, Job]:
    """The manifest and the planned job of a batch folder (for --resume); the files are checked as data."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        lines = (folder / PLAN_FILE).read_text().splitlines()
    except (OSError, ValueError, AttributeError) as e:
        raise EditError(f"{folder} is not a batch folder that can be resumed ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise EditError(f"{folder / MANIFEST} is not a batch manifest")
    items = _plan_items(folder, lines)
    # what is really on disk, whatever the manifest says (files land after its last update on SIGKILL or a power
    # cut): a planned file counts as done when its recipe reads back; anything else is rendered again
    manifest["files"] = [it.name for it in items if _complete_png(folder / it.name)]
    _remove_temp_files(folder)
    manifest.setdefault("failed", {})
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))
    job = Job(str(manifest.get("job", "resumed")), items, dict(manifest.get("params") or {}),
              contact_sheet=manifest.get("wants_contact_sheet") is True)
    return manifest, job


def _render_chunk(renderer: Renderer, chunk: list[Item], capture: tuple[str, ...] = ()):
    if len({it.stack.noise_mode for it in chunk}) > 1:
        raise EditError("a batch must use one noise mode")
    return renderer.render_many([it.stack for it in chunk], capture)


def _render_detected(renderer: Renderer, chunk: list[Item], plugins: PluginManager, problems: list[str],
                     capture: tuple[str, ...] = ()):
    """One image at a time: detect, then edit (run and modify); items come back with the detected selections."""
    import torch

    from .renderer import RenderResult

    done, images, ws, maps = [], [], [], []
    for item in chunk:
        result, final, messages = apply_detectors(renderer.render, item.stack, plugins)
        problems.extend(f"{item.name}: {m}" for m in messages)
        for tab in final.tabs:
            tab.detector = None  # the recipe keeps the detected selection itself
        if capture:
            result = renderer.render(final, capture=capture)  # the cache serves all but the captured stage
            maps.append(result.features[capture[0]])
        done.append(Item(item.name, final))
        images.append(result.images)
        ws.append(result.ws)
    features = {capture[0]: torch.cat(maps)} if capture else {}
    return done, RenderResult(torch.cat(images), torch.cat(ws), features)


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _new_folder(root: Path, kind: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in itertools.count():
        folder = root / f"{kind}_{stamp}{'' if k == 0 else f'_{k}'}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


LABEL_H = 12  # pixels of the label band under each tile


def contact_sheet(items: list[tuple[str, np.ndarray]], columns: int = 16) -> np.ndarray:
    """The images side by side in rows, each with its label printed under it (a sweep's tile says its channel
    and sign, "89+"), for scanning a sweep at a glance."""
    from PIL import Image, ImageDraw

    h, w = items[0][1].shape[:2]
    rows = -(-len(items) // columns)
    cell_h, cell_w = h + LABEL_H + 2, w + 2
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(items):
        r, c = divmod(i, columns)
        canvas.paste(Image.fromarray(np.ascontiguousarray(img, np.uint8)), (c * cell_w, r * cell_h))
        draw.text((c * cell_w + 2, r * cell_h + h), str(label)[:MAX_LABEL], fill=(230, 230, 230))
    return np.asarray(canvas)


# ------------------------------------------------------------------------------------------------ planning


def _tag(i: int) -> str:
    return f"{i:04d}"


def new_latents(stack: EditStack, n: int, seed: int | None = None) -> Job:
    """n new images with the current sliders and tabs (random seeds; reproducible with `seed`)."""
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, n)]
    items = [Item(f"{_tag(i)}_seed{s}.png", stack.copy(seed=s, z=None, w=None, noise_seed=s))
             for i, s in enumerate(seeds)]
    return Job("new_latents", items, {"n": n, "seed": seed, "seeds": seeds})


def attribute_spectrum(stack: EditStack, n: int, slide_past_zero: bool = False) -> Job:
    """n frames from the sliders' values to zero (or on through zero to their negatives)."""
    _need_sliders(stack)
    end = -1.0 if slide_past_zero else 0.0
    items = []
    for i, f in enumerate(np.linspace(1.0, end, n)):
        s = stack.copy()
        for d in s.directions:
            d.strength *= float(f)
        items.append(Item(f"{_tag(i)}_x{f:+.3f}.png", s))
    return Job("attribute_spectrum", items, {"n": n, "slide_past_zero": slide_past_zero})


def _need_sliders(stack: EditStack) -> list[int]:
    active = [i for i, d in enumerate(stack.directions) if d.strength]
    if not active:
        raise EditError("move at least one attribute slider first")
    return active


def _steps(value: float, k: int) -> list[float]:
    """k steps up to `value`: value*1/k, ..., value (k = 1 gives the value itself; never divides by zero)."""
    if k < 1:
        raise EditError("steps must be at least 1")
    return [value * (j + 1) / k for j in range(k)]


def attribute_combinatoric(stack: EditStack, k: int, sequential: bool = False) -> Job:
    """k steps per non-zero slider: every combination, or one attribute at a time (the others at zero)."""
    active = _need_sliders(stack)
    items = []
    if sequential:
        for a in active:
            for v in _steps(stack.directions[a].strength, k):
                s = stack.copy()
                for i, d in enumerate(s.directions):
                    d.strength = v if i == a else 0.0
                items.append(Item(f"{_tag(len(items))}_{_safe(s.directions[a].name)}{v:+.2f}.png", s))
    else:
        for combo in itertools.product(*[_steps(stack.directions[a].strength, k) for a in active]):
            s = stack.copy()
            for a, v in zip(active, combo, strict=True):
                s.directions[a].strength = v
            label = "_".join(f"{_safe(s.directions[a].name)}{v:+.2f}" for a, v in zip(active, combo, strict=True))
            items.append(Item(f"{_tag(len(items))}_{label}.png", s))
    return Job("attribute_sequential" if sequential else "attribute_combinatoric", items, {"k": k})


def _active_tabs(stack: EditStack) -> list[int]:
    tabs = [i for i, t in enumerate(stack.tabs) if t.active and t.value != 0]
    if not tabs:
        raise EditError("activate a tab with a non-zero slider first")
    return tabs


def fmap_combinatoric(stacks: list[EditStack], k: int, start: float = 0.0, kind: str = "fmap_combinatoric",
                      labels: list[str] | None = None) -> Job:
    """For each stack: k values of each active tab's slider from `start` to its value, both included (k = 1: the
    value alone), every combination: start 0, value 20, k 5 gives 0, 5, 10, 15, 20 (the unedited frame first)."""
    if k < 1:
        raise EditError("steps must be at least 1")
    items = []
    for n, stack in enumerate(stacks):
        tabs = _active_tabs(stack)
        ranges = [list(np.linspace(start, stack.tabs[t].value, k)) if k > 1 else [stack.tabs[t].value]
                  for t in tabs]
        for combo in itertools.product(*ranges):
            s = stack.copy()
            for t, v in zip(tabs, combo, strict=True):
                s.tabs[t].value = float(v)
            label = "_".join(f"{_safe(s.tabs[t].name)}{v:+.0f}" for t, v in zip(tabs, combo, strict=True))
            prefix = labels[n] if labels else _tag(n)
            items.append(Item(f"{prefix}_{_tag(len(items))}_{label}.png", s))
    return Job(kind, items, {"k": k, "start": start, "latents": len(stacks)})


def axis_aligned_sweep(stack: EditStack, tab_index: int, channels: list[int] | None = None) -> Job:
    """For each channel: the active tab with one-hot +1 then -1 weights (selection and slider kept).

    Files `{ch}_p_...png` / `{ch}_n_...png`; the tab's own weights are left as they were; contact sheet included.
    """
    tab = stack.tabs[tab_index]
    if not np.any(tab.selection):
        raise EditError(f"tab {tab.name!r}: paint a selection first")
    if tab.value == 0:
        raise EditError(f"tab {tab.name!r}: move its slider away from zero first")
    layer = tab.layers[0]
    n_ch = tab.weights[layer].shape[0]
    channels = list(range(n_ch)) if channels is None else channels
    bad = [c for c in channels if not 0 <= c < n_ch]
    if bad:
        raise EditError(f"channels {bad[:5]} do not exist at {layer} ({n_ch} channels)")
    others = [t for i, t in enumerate(stack.tabs) if i != tab_index]
    items = []
    for ch in channels:
        for sign, tag in ((1.0, "p"), (-1.0, "n")):
            w = np.zeros(n_ch, np.float32)
            w[ch] = sign
            probe = SpatialTab(tab.name, [layer], tab.selection, {layer: w}, tab.value, True)
            items.append(Item(f"{ch}_{tag}_{_safe(tab.name)}.png", stack.copy(tabs=[*others, probe]),
                              f"{ch}{'+' if sign > 0 else '-'}"))
    job = Job("axis_aligned", items, {"tab": tab.name, "layer": layer, "channels": channels,
                                      "value": tab.value, "multiplier": multiplier(tab.value)})
    job.contact_sheet = True
    return job


def read_folder(engine: Engine, folder: str | Path) -> tuple[list[tuple[str, EditStack]], list[str]]:
    """The recipes of every PNG in a folder (this model's only); problems are reported per file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EditError(f"{folder} is not a folder")
    good, problems = [], []
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for p in files:
        if p.suffix.lower() != ".png":
            problems.append(f"{p.name}: not a PNG, skipped")
            continue
        try:
            good.append((p.stem, engine.read_png(p).stack))
        except RecipeError as e:
            problems.append(str(e))
    if not files:
        problems.append(f"{folder}: the folder is empty")
    return good, problems


def new_latent_combinatoric(stack: EditStack, n: int, k: int, start: float = 0.0, seed: int | None = None) -> Job:
    """The fmap combinatoric for n new latents (random seeds; reproducible with `seed`)."""
    latents = [it.stack for it in new_latents(stack, n, seed).items]
    return fmap_combinatoric(latents, k, start, "new_latent_combinatoric")


def folder_combinatoric(engine: Engine, stack: EditStack, folder: str | Path, k: int, start: float = 0.0) -> Job:
    """The fmap combinatoric for the latent of every PNG in a folder (files named after their source)."""
    found, problems = read_folder(engine, folder)
    stacks = [stack.copy(seed=s.seed, z=s.z, w=s.w, noise_seed=s.noise_seed) for _, s in found]
    job = fmap_combinatoric(stacks, k, start, "fmap_folder_combinatoric", labels=[name for name, _ in found])
    job.problems = problems
    return job


def apply_to_folder(engine: Engine, stack: EditStack, folder: str | Path) -> Job:
    """Every PNG of a folder re-rendered with its own latent and the current sliders and tabs."""
    found, problems = read_folder(engine, folder)
    items = []
    for name, src in found:
        s = stack.copy(seed=src.seed, z=src.z, w=src.w, class_index=src.class_index, noise_seed=src.noise_seed)
        items.append(Item(f"{name}.png", s))
    return Job("apply_to_folder", items, {"folder": str(folder)}, problems)


def interpolate(engine: Engine, pngs: list[str | Path], n: int, method: str = "lerp") -> Job:
    """n images between each consecutive pair of PNGs, in w (lerp or slerp), through the whole list."""
    if len(pngs) < 2:
        raise EditError("interpolation needs at least two PNGs")
    if method not in ("lerp", "slerp"):
        raise EditError("method must be lerp or slerp")
    recipes = [engine.read_png(p) for p in pngs]
    ws = [r.ws if r.ws is not None else engine.renderer.ws_for(r.stack).cpu().numpy() for r in recipes]
    noise = recipes[0].stack
    items = []
    for k, (a, b) in enumerate(zip(ws, ws[1:], strict=False)):
        last = k == len(ws) - 2
        for t in np.linspace(0, 1, n, endpoint=last):  # segments share their end points once
            w = slerp(a, b, float(t)) if method == "slerp" else (a * (1 - t) + b * t).astype(np.float32)
            stack = EditStack(seed=None, w=w, noise_mode=noise.noise_mode, noise_seed=noise.noise_seed)
            items.append(Item(f"{_tag(len(items))}_t{k + t:.3f}.png", stack))
    return Job("interpolate", items, {"pngs": [str(p) for p in pngs], "n": n, "method": method})


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
