"""The studio: one process, one Dear PyGui event loop, one render worker thread between the loop and the engine.

Each frame the loop (1) takes the newest finished render from the worker and puts it on the canvas texture,
(2) submits the state's edit stack when it changed since the last submission, (3) handles painting, (4) refreshes
the panels when the state's layout changed, (5) draws the status bar.  Widgets only write into the
`StudioState`; the engine never sees a widget.  Each opened model keeps its own session (state, tabs, history):
File > Open model switches in place, and switching back finds everything as it was left.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import paths
from ..engine.analysis import FeatureHistory, tab_sigma
from ..engine.edits import DEFAULT_PSI, EditError, EditStack, multiplier, slider_for
from ..engine.engine import Engine
from ..engine.files import free_path
from ..engine.loaders import ModelLoadError
from ..engine.modeldata import DataError
from ..engine.plugins import PluginManager, apply_detectors, detecting, has_detectors
from ..engine.recipe import RecipeError, write_png
from .pacing import FramePacer
from .preview import PreviewSchedule
from .probe import ScrubBenchmark, write_probe
from .state import StudioState, TabDeletion
from .worker import RenderWorker

GIL_SWITCH_S = 0.0005  # see StudioApp.run
SUGGESTED_SIGMA = 15.0  # a sweep's suggested strength: at 10 sigma the bundled model's median channel changes its
# region by ~24 levels (sum over RGB, 0-255), clearly visible; 15 makes most channels' effect readable on a tile
GENERATOR_FILES = (".pkl", ".pt", ".pth", ".safetensors")
NO_DISPLAY = ("error: no display to open the studio on (DISPLAY is not set).\n"
              "  On a headless machine: xvfb-run -a ganstudio gui --screenshot shot.png\n"
              "  Or use the command line: ganstudio generate / render / info (ganstudio --help)")


def run_app(args) -> int:
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    try:
        engine = Engine.open(paths.model_to_open(args.model), args.data, device=args.device, half=args.half)
    except (ModelLoadError, paths.NoModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = StudioApp(engine, device=args.device, half=args.half)
    for name in args.tab or []:
        app.activate_tab(name)
    return app.run(screenshot=args.screenshot, frames=args.frames)


@dataclass
class Session:
    """One opened model's studio: its engine and everything the user did with it (kept while others are open)."""

    engine: Engine
    state: StudioState
    default_tab_layer: str
    histories: dict[str, FeatureHistory] = field(default_factory=dict)


def new_session(engine: Engine) -> Session:
    """A model's first session: seed 0 at the default psi, its saved directions and tabs (switched off)."""
    layers = {li.name: (li.resolution, li.channels) for li in engine.layers()}
    first = EditStack(seed=0, psi=DEFAULT_PSI, class_index=0 if engine.config.c_dim else None)
    state = StudioState(first, layers)
    state.set_directions(engine.data.load_directions())
    state.set_class_edits(engine.data.load_class_edits())
    for tab in engine.data.load_tabs(check=engine.renderer.check_tab):
        tab.active = False  # saved tabs come back switched off: the first image is the plain one
        state.stack.tabs.append(tab)
    if state.stack.tabs:
        state.active_tab = 0
    if engine.data.errors:
        state.say("; ".join(engine.data.errors), error=True)
    return Session(engine, state, engine.renderer.default_layer(min(16, engine.config.resolution)))


class StudioApp:
    def __init__(self, engine: Engine, device: str = "auto", half: bool = False):
        self.device, self.half = device, half
        self.session = new_session(engine)
        self.sessions: dict[str, Session] = {engine.model.sha256: self.session}
        self.features: dict[str, np.ndarray] = {}
        self.render_ms = 0.0
        self.render_fps = 0.0
        self._render_times: list[float] = []
        self._submitted = -1
        self._shown = -1
        self.preview = PreviewSchedule()
        self.preview_on = True  # View > Live preview: off shows exact frames only
        self._pending_saves: list[str] = []  # asked for while a preview was shown: written from its exact frame
        self._frame = self._shown_frame = 0
        self._log_latent_next = False
        self._opening: threading.Thread | None = None
        self._opened: tuple[str, Engine | None, str] | None = None  # (path, engine, error) from the loader thread
        self._switch_to: Session | None = None
        self._measuring: threading.Thread | None = None
        self._built: list[int | str] = []
        self.last: dict | None = None
        self.plugins = PluginManager(paths.plugin_dirs(engine.data.root))
        self.worker = RenderWorker(self._render_job)
        self.pacer = FramePacer()
        self.wake = threading.Event()  # set by background work that finished: the loop shows it at once

    @property
    def engine(self) -> Engine:
        return self.session.engine

    @property
    def state(self) -> StudioState:
        return self.session.state

    @property
    def default_tab_layer(self) -> str:
        return self.session.default_tab_layer

    @property
    def output_dir(self) -> Path:
        """Where the studio's outputs go unless the user types another path: the user data folder's output/ (never
        the current folder, which may be the checkout or the installation)."""
        return self.engine.data.root / "output"

    def activate_tab(self, name: str) -> None:
        for i, tab in enumerate(self.state.stack.tabs):
            if tab.name == name:
                tab.active = True
                self.state.active_tab = i
                self.state.touch()
                return
        self.state.say(f"no saved tab {name!r} (have: {', '.join(self.engine.data.tab_names())})", error=True)

    # -------------------------------------------------------------------------------------------- rendering

    def _render_job(self, payload: tuple[Engine, EditStack, tuple[str, ...], str | None, bool]) -> dict:
        """Runs on the worker thread: the engine call and the conversions, nothing that touches widgets."""
        engine, stack, capture, shown, preview = payload
        messages: list[str] = []

        def render(stack: EditStack, capture: tuple[str, ...] = ()):
            return engine.render(stack, capture=capture, preview=preview)

        if has_detectors(stack, shown):
            _, stack, messages = apply_detectors(render, stack, self.plugins, shown=shown)
        result = render(stack, capture=capture)  # served from the cache after the detector pass
        return {"image": result.uint8()[0], "ws": result.ws[0].cpu().numpy(), "stack": stack,
                "detected": {t.name: t.selection for t in detecting(stack, shown)},
                "features": {k: v[0].cpu().numpy() for k, v in result.features.items()},
                "ms": result.ms, "first_stage": result.first_stage, "messages": messages,
                "preview": result.preview, "own_classes": engine.renderer.own_classes(stack)}

    def _capture_layers(self) -> tuple[str, ...]:
        tab = self.state.tab
        if tab is not None:
            self._measure_std(tab.layers[0])
        return (tab.layers[0],) if tab else ()

    def _measure_std(self, layer: str) -> None:
        """A layer's channel statistics (strength in sigma), measured once per model on a background thread."""
        engine = self.engine
        if self._measuring is not None or engine.channel_std(layer, measure=False) is not None:
            return

        def measure() -> None:
            from .worker import lower_thread_priority

            lower_thread_priority()
            try:
                engine.channel_std(layer)
            except Exception as e:  # noqa: BLE001 - reported; the studio works without them
                self.state.say(f"could not measure {layer}'s statistics: {e}", error=True)
            self._measuring = None
            self.state.relayout()

        self._measuring = threading.Thread(target=measure, name="channel-std", daemon=True)
        self._measuring.start()

    def _pump(self) -> None:
        import dearpygui.dearpygui as dpg

        done = self.worker.poll()
        preview = done is not None and done.error is None and done.result["preview"]
        if done is not None and self.preview.takes(done.version, preview, self._shown):
            self._shown = done.version
            self._shown_frame = self._frame
            self.preview.shown(preview)
            if done.error is not None:
                self.state.say(f"render failed: {done.error}", error=True)
            else:
                r = done.result
                self.last = r
                self.features = r["features"]
                self.render_ms = r["ms"]
                now = time.perf_counter()
                self._render_times = [t for t in self._render_times if now - t < 1.0] + [now]
                self.render_fps = len(self._render_times)
                self.canvas.show(r["image"], self._overlay_map())
                self.attributes.show_own_classes(r["own_classes"])
                self._take_detected(r)
                if not r["preview"]:  # recordings, histories and saves take exact frames only
                    self.batch.record(r["image"])
                    if self.state.record_history:
                        self._record(r)
                    saves, self._pending_saves = self._pending_saves, []
                    for path in saves:
                        self.save_png(path)
                if self._log_latent_next and r["stack"].seed == self.state.stack.seed:
                    self._log_latent_next = False  # the latents log lists every image the studio generated
                    self.engine.data.log_latent(r["ws"], r["stack"].seed, tag="generated")
        now = time.monotonic()
        if self.state.version != self._submitted:
            self._submitted = self.state.version
            moving = dpg.is_mouse_button_down(dpg.mvMouseButton_Left) or dpg.is_mouse_button_down(
                dpg.mvMouseButton_Right)
            self._submit(self.preview.on_change(now, moving, self.previews_allowed))
        elif self.preview.exact_due(now, self._shown, self.state.version):
            self._submit(preview=False)

    @property
    def previews_allowed(self) -> bool:
        """Live previews: where the engine has them, switched on, and not while shown frames are recorded."""
        return self.preview_on and self.engine.preview_dtype is not None and not self.batch.records_frames

    def _submit(self, preview: bool) -> None:
        shown = self.state.tab.name if self.state.tab else None
        self.worker.submit(self.state.version, (self.engine, self.state.stack.copy(), self._capture_layers(),
                                                shown, preview))

    def _take_detected(self, r: dict) -> None:
        """Selections found by detectors come back with the result; show them on the state's tabs."""
        if r["messages"]:
            self.state.say("; ".join(r["messages"]), error=True)
        detected = r["detected"]  # only the tabs whose detector ran (plugins.detecting)
        for tab in self.state.stack.tabs:
            if tab.name in detected and tab.selection.shape == detected[tab.name].shape:
                tab.selection = detected[tab.name]  # not a new version: the image already shows it

    def _overlay_map(self) -> np.ndarray | None:
        ch, tab = self.state.overlay_channel, self.state.tab
        if ch is None or tab is None:
            return None
        f = self.features.get(tab.layers[0])
        return None if f is None or ch >= f.shape[0] else f[ch]

    def redraw_canvas(self) -> None:
        self.canvas.redraw(self._overlay_map())

    # -------------------------------------------------------------------------------------------- actions

    def push_previous(self) -> None:
        self.canvas.push_previous()

    def generate(self) -> None:
        self.push_previous()
        self.state.set_seed(random.randrange(2**31))
        self.state.relayout()
        self._log_latent_next = True

    def update(self) -> None:
        self.push_previous()
        self.state.touch()

    def toggle_previous(self) -> None:
        self.state.show_previous = not self.state.show_previous
        self.redraw_canvas()

    def set_base(self) -> None:
        if self.last is not None:
            self.state.stack.base = self.last["ws"].copy()
            self.state.touch()
            self.state.say("base set: the quality slider now interpolates toward this image")

    def reset_base(self) -> None:
        self.state.stack.base = self.engine.data.average_latent()
        self.state.touch()
        self.state.say("base reset to the average latent")

    def import_png(self, path: str) -> None:
        path = path.strip()
        try:
            recipe = self.engine.read_png(path)
        except (RecipeError, OSError) as e:
            self.state.say(str(e), error=True)
            return
        self.push_previous()
        before = self.state.tab.name if self.state.tab else None
        self.state.stack = recipe.stack
        names = [t.name for t in recipe.stack.tabs]
        self.state.active_tab = names.index(before) if before in names else (0 if names else None)
        known = self.engine.data.load_directions()
        if known and not recipe.stack.directions:
            self.state.set_directions(known)
        self.state.set_class_edits(self.engine.data.load_class_edits())  # the recipe's chosen values kept
        self.state.relayout()
        tabs = f"; its tabs: {', '.join(names)} (active: {names[self.state.active_tab]})" if names else ""
        self.state.say(f"imported {Path(path).name}" + (" (original GanStudio latent)" if recipe.legacy else "")
                       + tabs)

    def save_png(self, path: str) -> None:
        r = self.last
        if r is None:
            return
        if r["preview"]:  # never a preview in a file: written when the exact frame arrives (~150 ms)
            self._pending_saves.append(path)
            self.state.say(f"saving {Path(path).name} from the exact frame...")
            return
        recipe = self.engine.recipe(r["stack"], r["ws"])
        try:
            out = write_png(free_path(path), r["image"], recipe)
        except OSError as e:
            self.state.say(f"could not save: {e}", error=True)
            return
        self.state.say(f"saved {out}")

    def favourite(self) -> None:
        r = self.last
        if r is not None:
            name = f"favourite_{int(time.time() * 1000)}.png"
            self.save_png(str(self.engine.data.dir / "favourites" / name))
            self.engine.data.log_latent(r["ws"], r["stack"].seed, name, tag="favourite")

    def delete_tab(self) -> None:
        """Delete the active tab and its saved file (a shipped tab is hidden); Ctrl+Z brings both back."""
        tab = self.state.tab
        if tab is None:
            return
        try:
            had_file = self.engine.data.delete_tab(tab.name) is not None
        except (OSError, DataError) as e:
            self.state.say(f"could not delete the file of tab {tab.name!r}: {e}", error=True)
            return
        self.state.delete_tab(had_file)
        self.state.say(f"deleted tab {tab.name!r}" + (" and its file" if had_file else "") + " (Ctrl+Z undoes)")

    def undo(self) -> None:
        self._files_follow(self.state.undo(), restore=True)

    def redo(self) -> None:
        self._files_follow(self.state.redo(), restore=False)

    def _files_follow(self, action, restore: bool) -> None:
        """An undone or redone tab deletion takes the tab's file along."""
        if isinstance(action, TabDeletion) and action.had_file:
            try:
                if restore:
                    self.engine.data.restore_tab(action.tab)
                else:
                    self.engine.data.delete_tab(action.tab.name)
            except (OSError, DataError) as e:
                self.state.say(f"tab {action.tab.name!r}: {e}", error=True)
            else:
                self.state.say(f"tab {action.tab.name!r} {'restored' if restore else 'deleted again'}")

    def save_tab(self) -> None:
        tab = self.state.tab
        if tab is None:
            return
        try:
            path = self.engine.data.save_tab(tab)
            self.state.say(f"saved tab to {path}")
        except (OSError, DataError) as e:
            self.state.say(f"could not save the tab: {e}", error=True)
        self.state.relayout()  # the Spatial panel lists the saved tabs

    def history(self) -> FeatureHistory | None:
        tab = self.state.tab
        if tab is None:
            return None
        layer = tab.layers[0]
        histories = self.session.histories
        if layer not in histories:
            res, ch = self.state.layers[layer]
            histories[layer] = FeatureHistory(self.engine.data.dir / "history", layer, (ch, res, res))
        return histories[layer]

    def _record(self, r: dict) -> None:
        hist = self.history()
        if hist is not None and hist.layer in r["features"]:
            hist.append(r["features"][hist.layer], label=f"seed {r['stack'].seed}")

    def record_maps(self, maps: np.ndarray, label: str) -> None:
        """A batch job's feature maps of one image, recorded into the history of the layer it captured."""
        hist = self.history()
        if hist is not None and maps.shape == hist.shape:
            hist.append(maps, label=label)

    def refresh_panels(self) -> None:
        for panel in (self.generate_panel, self.attributes, self.spatial, self.fmaps, self.plugin_panel, self.batch):
            panel.refresh()

    # -------------------------------------------------------------------------------------------- strength

    def tab_std(self) -> tuple[float, np.ndarray] | None:
        """The active tab's activation scale (its channels' std, weighted) and its layer's stds, once measured."""
        tab = self.state.tab
        if tab is None:
            return None
        std = self.engine.channel_std(tab.layers[0], measure=False)
        return None if std is None else (tab_sigma(tab.weights[tab.layers[0]], std), std)

    def strength_text(self) -> str:
        tab = self.state.tab
        if tab is None:
            return ""
        text = f"x {tab.multiplier:.1f}   at {', '.join(tab.layers)}"
        known = self.tab_std()
        if known is not None and known[0] > 0:
            text += f"   = {tab.multiplier / known[0]:+.1f} sigma (its channels' std {known[0]:.3g})"
        return text

    def set_strength_sigma(self, sigmas: float) -> None:
        """Set the active tab's slider so that its multiplier is `sigmas` times its channels' std."""
        known = self.tab_std()
        if known is None or known[0] <= 0:
            raise EditError("give the tab channels and let it render once: the layer's statistics come with it")
        value = slider_for(sigmas * known[0])
        self.state.set_tab_value(value)
        got = multiplier(value) / known[0]
        self.state.say(f"slider {value:.1f}: x {multiplier(value):.2f} = {got:+.1f} sigma" +
                       ("" if abs(got - sigmas) < 0.05 else " (the original's slider law has no multiplier below 1)"))
        self.state.relayout()

    def suggested_sweep_value(self) -> float | None:
        tab = self.state.tab
        std = None if tab is None else self.engine.channel_std(tab.layers[0], measure=False)
        return None if std is None else slider_for(SUGGESTED_SIGMA * float(np.median(std)))

    def suggested_sweep_text(self) -> str:
        value = self.suggested_sweep_value()
        if value is None:
            return "suggested strength: add a tab and let it render once (its layer's statistics are measured)"
        return (f"suggested tab slider for a sweep at {self.state.tab.layers[0]}: {value:.0f} "
                f"(x {multiplier(value):.2f} = {SUGGESTED_SIGMA:.0f} sigma of its median channel)")

    # -------------------------------------------------------------------------------------------- keyboard

    def _see_activity(self, now: float) -> None:
        """Full frame rate while the mouse moves or a button is held, a render is due or shown, or the worker is
        busy; at rest the loop slows down (pacing.py).  Keys and the wheel mark activity in their handlers."""
        import dearpygui.dearpygui as dpg

        buttons = any(dpg.is_mouse_button_down(b) for b in (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right,
                                                             dpg.mvMouseButton_Middle))
        self.pacer.see_mouse(now, tuple(dpg.get_mouse_pos(local=False)), buttons)
        if self.state.version != self._shown or not self.worker.idle or not self.preview.settled:
            self.pacer.active(now)

    def _wheel(self, notches: float) -> None:
        self.pacer.active(time.monotonic())
        self.canvas.wheel(notches)

    def _typing(self) -> bool:
        """Whether keys go to text: a text or number field is being edited, or a file dialog is open (its name
        field is not one of our items).  Shortcuts act only when not."""
        import dearpygui.dearpygui as dpg

        if any(dpg.does_item_exist(d) and dpg.is_item_shown(d) for d in ("dlg_model", "dlg_png")):
            return True
        return any("Input" in dpg.get_item_type(item) and dpg.is_item_active(item) for item in dpg.get_all_items())

    def _key(self, key) -> None:
        import dearpygui.dearpygui as dpg

        if self._typing():
            return
        ctrl = dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)
        actions = {
            (dpg.mvKey_G, False): self.generate, (dpg.mvKey_U, False): self.update,
            (dpg.mvKey_Spacebar, False): self.toggle_previous, (dpg.mvKey_F, False): self.favourite,
            (dpg.mvKey_Z, True): self.undo,
            (dpg.mvKey_Y, True): self.redo,
            (dpg.mvKey_S, True): self.save_tab,
            (dpg.mvKey_R, False): lambda: setattr(self.state, "record_history", not self.state.record_history),
        }
        action = actions.get((key, ctrl))
        if action:
            action()

    # -------------------------------------------------------------------------------------------- layout

    def build(self) -> None:
        """Every widget of the current session; `teardown` removes them all again (a model switch rebuilds)."""
        import dearpygui.dearpygui as dpg

        from .canvas import Canvas
        from .panel_attributes import AttributesPanel
        from .panel_batch import BatchPanel
        from .panel_fmaps import FmapsPanel
        from .panel_generate import GeneratePanel
        from .panel_plugins import PluginsPanel
        from .panel_spatial import SpatialPanel
        from .statusbar import StatusBar

        existing = set(dpg.get_all_items())
        self.canvas = Canvas(self.state, self.engine.config.resolution,
                             pannable=self.engine.renderer.has_input_transform)
        self.generate_panel = GeneratePanel(self)
        self.attributes = AttributesPanel(self)
        self.spatial = SpatialPanel(self)
        self.fmaps = FmapsPanel(self)
        self.plugin_panel = PluginsPanel(self)
        self.batch = BatchPanel(self)
        self.statusbar = StatusBar(self)
        with dpg.window(tag="main", no_scrollbar=True):
            with dpg.menu_bar():
                with dpg.menu(label="File", tag="menu_file"):
                    dpg.add_menu_item(label="Open model...", callback=lambda: dpg.show_item("dlg_model"))
                    with dpg.menu(label="Recent models", tag="menu_recent"):
                        self._recent_items()
                    dpg.add_menu_item(label="Import PNG...", callback=lambda: dpg.show_item("dlg_png"))
                    dpg.add_menu_item(label="Save tab", shortcut="Ctrl+S", callback=self.save_tab)
                    dpg.add_menu_item(label="Favourite", shortcut="F", callback=self.favourite)
                    dpg.add_menu_item(label="Quit", callback=self.quit)
                with dpg.menu(label="Edit"):
                    dpg.add_menu_item(label="Undo", shortcut="Ctrl+Z", callback=self.undo)
                    dpg.add_menu_item(label="Redo", shortcut="Ctrl+Y", callback=self.redo)
                with dpg.menu(label="View"):
                    dpg.add_menu_item(label="Toggle previous", shortcut="Space", callback=self.toggle_previous)
                    if self.engine.preview_name is not None:
                        dpg.add_menu_item(label=f"Live preview in {self.engine.preview_name} while dragging",
                                          check=True, default_value=self.preview_on,
                                          callback=lambda s, v: setattr(self, "preview_on", bool(v)))
                with dpg.menu(label="Help"):
                    dpg.add_text("G generate, U update, Space previous, F favourite, R record,\n"
                                 "Ctrl+Z/Y undo/redo strokes, tab deletions and detectors, Ctrl+S save tab.\n"
                                 "Paint: left +1, right -1, ctrl erase; drag paints a rectangle.\n"
                                 "StyleGAN3: middle or Shift + left drag pans the picture.\n"
                                 "Shortcuts act when no text field is being edited (Enter or Escape ends it).")
            with dpg.group(horizontal=True):
                with dpg.group():
                    self.canvas.build()
                with dpg.child_window(width=-1, height=-40):
                    with dpg.tab_bar():
                        for label, panel in (("Generate", self.generate_panel), ("Attributes", self.attributes),
                                             ("Spatial", self.spatial), ("Feature maps", self.fmaps),
                                             ("Plugins", self.plugin_panel), ("Batch", self.batch)):
                            with dpg.tab(label=label, tag=f"tab_{label.split()[0].lower()}"):
                                panel.build()
            dpg.add_separator()
            self.statusbar.build()
        self._file_dialogs()
        self._quit_dialog()
        with dpg.handler_registry():
            dpg.add_key_press_handler(callback=lambda s, key: self._key(key))
            dpg.add_key_down_handler(callback=lambda s, a: self.pacer.active(time.monotonic()))
            dpg.add_mouse_wheel_handler(callback=lambda s, a: self._wheel(a))
        dpg.set_primary_window("main", True)
        self._built = [item for item in dpg.get_all_items() if item not in existing]
        self._layout_shown = self.state.layout

    def teardown(self) -> None:
        """Remove every widget, texture and handler `build` made."""
        import dearpygui.dearpygui as dpg

        for item in reversed(self._built):  # children before their parents, textures last
            if dpg.does_item_exist(item):
                dpg.delete_item(item)
        self._built = []

    def recent_models(self, most: int = 8) -> list[tuple[str, str]]:
        """(label, path) of the models opened lately that still exist, newest first; the label marks the one
        shown ("*") and the others open in this studio ("o": their work is kept)."""
        here = {s.engine.model_file for s in self.sessions.values()}
        out = []
        for entry in self.engine.models.recent():
            path = str(Path(str(entry.get("path", ""))).resolve())
            if Path(path).is_file() and path not in (p for _, p in out):
                mark = "* " if path == self.engine.model_file else ("o " if path in here else "  ")
                out.append((f"{mark}{Path(path).name}", path))
        return out[:most]

    def _recent_items(self) -> None:
        import dearpygui.dearpygui as dpg

        recent = self.recent_models()
        for label, path in recent:
            dpg.add_menu_item(label=label, user_data=path, parent="menu_recent",
                              callback=lambda s, a, u: self.open_model(u))
        if not recent:
            dpg.add_text("(none yet)", parent="menu_recent")

    def _file_dialogs(self) -> None:
        import dearpygui.dearpygui as dpg

        def picked(handler):
            return lambda sender, app_data: handler(app_data.get("file_path_name", ""))

        with dpg.file_dialog(tag="dlg_model", label="Open a generator (.pkl, .pt, .pth, .safetensors)", show=False,
                             width=680, height=440, default_path=str(Path(self.engine.model_file).parent),
                             callback=picked(self.open_model)):
            dpg.add_file_extension("Generators (*.pkl *.pt *.pth *.safetensors){.pkl,.pt,.pth,.safetensors}")
            for ext in GENERATOR_FILES:
                dpg.add_file_extension(ext)
        with dpg.file_dialog(tag="dlg_png", label="Import a PNG's recipe", show=False, width=680, height=440,
                             default_path=str(self.output_dir), callback=picked(self.import_png)):
            dpg.add_file_extension(".png")

    def _quit_dialog(self) -> None:
        import dearpygui.dearpygui as dpg

        with dpg.window(tag="dlg_quit", label="Unsaved tabs", modal=True, show=False, width=460, no_resize=True):
            dpg.add_text("", tag="dlg_quit_text", wrap=440)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Quit without saving", callback=lambda: dpg.stop_dearpygui())
                dpg.add_button(label="Cancel", callback=lambda: dpg.hide_item("dlg_quit"))

    def unsaved_tabs(self) -> list[str]:
        """Tabs of every open model that differ from their saved file (or were never saved) and hold an edit."""
        out = []
        for session in self.sessions.values():
            data = session.engine.data
            saved = set(data.tab_names())
            for tab in session.state.stack.tabs:
                if not np.any(tab.selection) and not tab.detector:
                    continue
                try:
                    same = tab.name in saved and data.load_tab(data.tab_path(tab.name)).to_json() == tab.to_json()
                except (DataError, OSError):
                    same = False
                if not same:
                    out.append(f"{tab.name} ({session.engine.model.name})")
        return out

    def quit(self) -> None:
        """Quit (File > Quit or the window's close button), asking first when a tab has unsaved work."""
        import dearpygui.dearpygui as dpg

        unsaved = self.unsaved_tabs()
        if not unsaved:
            dpg.stop_dearpygui()
            return
        dpg.set_value("dlg_quit_text", f"{len(unsaved)} tab(s) differ from their saved files: {', '.join(unsaved)}."
                                       "\nSave them with Ctrl+S, or quit without saving.")
        dpg.show_item("dlg_quit")

    # -------------------------------------------------------------------------------------------- models

    def open_model(self, path: str) -> None:
        """Switch to another generator in this process: loaded on a thread (the studio keeps running), then the
        widgets are rebuilt for it.  The current model's session (tabs, history, sliders) stays: opening it again
        brings it back as it was.  A file that is not a generator is refused with the loader's message."""
        path = path.strip()
        if not path:
            return
        if self._opening is not None:
            self.state.say("a model is being opened already", error=True)
            return
        if self.batch.thread is not None:
            self.state.say("a batch job is running: wait for it or cancel it before switching models", error=True)
            return
        if Path(path).suffix.lower() not in GENERATOR_FILES:
            self.state.say(f"{Path(path).name}: not a generator file (.pkl, .pt, .pth, .safetensors)", error=True)
            return
        for session in self.sessions.values():
            if session.engine.model_file == str(Path(path).resolve()):
                self._switch_to = session  # the loop switches between frames, never inside a callback
                return
        root = self.engine.data.root

        def load() -> None:
            try:
                self._opened = (path, Engine.open(path, root, device=self.device, half=self.half), "")
            except (ModelLoadError, OSError, EditError) as e:
                self._opened = (path, None, str(e))
            except Exception as e:  # a loader bug must not take the studio down
                self._opened = (path, None, f"{type(e).__name__}: {e}")

        self.state.say(f"opening {Path(path).name} ...")
        self._opening = threading.Thread(target=load, name="open-model", daemon=True)
        self._opening.start()

    def _take_opened(self) -> None:
        """Called every frame between frames: a model the loader thread finished opening (or a session chosen
        from Recent models) becomes the current session."""
        if self._switch_to is not None:
            session, self._switch_to = self._switch_to, None
            self._switch(session)
        if self._opened is None:
            return
        (path, engine, error), self._opened, self._opening = self._opened, None, None
        if engine is None:
            self.state.say(f"could not open {Path(path).name}: {error}", error=True)
            return
        session = self.sessions.get(engine.model.sha256)
        if session is None:
            session = self.sessions[engine.model.sha256] = new_session(engine)
        self._switch(session)

    def _switch(self, session: Session) -> None:
        import dearpygui.dearpygui as dpg

        if session is self.session:
            self.state.say(f"{self.engine.model.name} is open already")
            return
        before = self.engine.model.name
        self.worker.wait_idle(30)
        self.worker.poll()  # a result of the previous model is never shown on this one
        self.teardown()
        self.session = session
        self.last, self.features = None, {}
        self._submitted = self._shown = -1
        self.preview = PreviewSchedule()
        self._pending_saves = []  # (asked of the previous model's preview: never written from this one's frame)
        self.build()
        dpg.set_viewport_title(f"GAN Studio - {self.engine.model.name}")
        self.state.touch()
        self.state.say(f"opened {self.engine.model.name} ({self.engine.config.resolution} px); {before}'s tabs and "
                       "history are kept: File > Recent models goes back")

    # -------------------------------------------------------------------------------------------- loop
    def run(self, screenshot: str | None = None, frames: int = 30) -> int:
        import dearpygui.dearpygui as dpg

        # Three threads share the GIL: the event loop, the render worker and a batch job.  A thread waiting for it
        # gets it after at most the switch interval; a render re-takes it after each of its ~100 torch ops, so with
        # the default 5 ms a job running beside it held the shown renders to ~2/s (bench/gui.py).
        sys.setswitchinterval(GIL_SWITCH_S)
        dpg.create_context()
        try:
            self.build()
            dpg.create_viewport(title=f"GAN Studio - {self.engine.model.name}", width=1180, height=700,
                                x_pos=0, y_pos=0, decorated=os.environ.get("GANSTUDIO_UNDECORATED") is None,
                                disable_close=True)  # the window's close button asks about unsaved tabs too
            dpg.set_exit_callback(self.quit)
            dpg.setup_dearpygui()
            dpg.show_viewport()
            probe = os.environ.get("GANSTUDIO_PROBE")
            bench = ScrubBenchmark(self, os.environ["GANSTUDIO_BENCH"]) if os.environ.get("GANSTUDIO_BENCH") else None
            frame, shot_frame = 0, None
            # automation runs at full speed, except the benchmark's job at rest (timed as a user would see it)
            paced = bench is None and not screenshot
            while dpg.is_dearpygui_running():
                t_frame = time.monotonic()
                if bench is not None and bench.step():
                    break
                self._see_activity(t_frame)
                self._pump()
                self.canvas.handle_mouse()
                if self.canvas.panned:
                    self.canvas.panned = False
                    self.generate_panel.refresh()
                self.canvas.draw_grid()
                if self.state.layout != self._layout_shown:  # tabs or weights changed: every panel shows it
                    self._layout_shown = self.state.layout
                    self.refresh_panels()
                self.statusbar.update()
                self.batch.frame()
                if frame % 5 == 0:
                    self.fmaps.refresh()
                    self.spatial.show_strength()
                if frame % 60 == 0:
                    self.plugin_panel.poll_files()
                dpg.render_dearpygui_frame()
                self._take_opened()
                frame += 1
                self._frame = frame
                if paced or (bench is not None and bench.paced):
                    now = time.monotonic()
                    self.wake.wait(self.pacer.pause(now, now - t_frame))  # a finished job ends the rest early
                    self.wake.clear()
                if probe and (frame % 3 == 0 or self.pacer.idle(time.monotonic())):  # at rest: every frame
                    write_probe(self, probe, frame)
                if screenshot:
                    settled = (self._shown == self.state.version and self.preview.settled
                               and self._shown_frame < frame - 2)  # the exact frame, on its texture
                    if shot_frame is None and frame >= frames and settled:
                        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                        dpg.output_frame_buffer(file=screenshot)
                        shot_frame = frame
                    elif shot_frame is not None and (Path(screenshot).exists() or frame > shot_frame + 60):
                        break
        finally:
            self.worker.stop()
            if getattr(self, "batch", None) is not None:
                self.batch.stop()
            for thread in (self._measuring, self._opening):  # torch threads must end before the interpreter
                if thread is not None:
                    thread.join(timeout=60)
            dpg.destroy_context()
        return 0
