"""The studio: one process, one Dear PyGui event loop, one render worker thread between the loop and the engine.

Each frame the loop (1) takes the newest finished render from the worker and puts it on the canvas texture,
(2) submits the state's edit stack when it changed since the last submission, (3) handles painting, (4) draws
the status bar.  Widgets only write into the `StudioState`; the engine never sees a widget.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from .. import paths
from ..engine.analysis import FeatureHistory
from ..engine.edits import DEFAULT_PSI, EditStack
from ..engine.engine import Engine
from ..engine.files import free_path
from ..engine.loaders import ModelLoadError
from ..engine.modeldata import DataError
from ..engine.plugins import PluginManager, apply_detectors, has_detectors
from ..engine.recipe import RecipeError, write_png
from .pacing import FramePacer
from .state import StudioState, TabDeletion
from .worker import RenderWorker

GIL_SWITCH_S = 0.0005  # see StudioApp.run
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
    app = StudioApp(engine)
    for name in args.tab or []:
        app.activate_tab(name)
    return app.run(screenshot=args.screenshot, frames=args.frames)


class StudioApp:
    def __init__(self, engine: Engine):
        self.engine = engine
        layers = {li.name: (li.resolution, li.channels) for li in engine.layers()}
        first = EditStack(seed=0, psi=DEFAULT_PSI, class_index=0 if engine.config.c_dim else None)
        self.state = StudioState(first, layers)
        self.default_tab_layer = engine.renderer.default_layer(min(16, engine.config.resolution))
        self.state.set_directions(engine.data.load_directions())
        for tab in engine.data.load_tabs(check=engine.renderer.check_tab):
            tab.active = False  # saved tabs come back switched off: the first image is the plain one
            self.state.stack.tabs.append(tab)
        if self.state.stack.tabs:
            self.state.active_tab = 0
        if engine.data.errors:
            self.state.say("; ".join(engine.data.errors), error=True)
        self.features: dict[str, np.ndarray] = {}
        self.render_ms = 0.0
        self.render_fps = 0.0
        self._render_times: list[float] = []
        self._submitted = -1
        self._shown = -1
        self._histories: dict[str, FeatureHistory] = {}
        self.plugins = PluginManager(paths.plugin_dirs(engine.data.root))
        self.worker = RenderWorker(self._render_job)
        self.pacer = FramePacer()

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

    def _render_job(self, payload: tuple[EditStack, tuple[str, ...]]) -> dict:
        """Runs on the worker thread: the engine call and the conversions, nothing that touches widgets."""
        stack, capture = payload
        messages: list[str] = []
        if has_detectors(stack):
            _, stack, messages = apply_detectors(self.engine.render, stack, self.plugins)
        result = self.engine.render(stack, capture=capture)  # served from the cache after the detector pass
        return {"image": result.uint8()[0], "ws": result.ws[0].cpu().numpy(), "stack": stack,
                "features": {k: v[0].cpu().numpy() for k, v in result.features.items()},
                "ms": result.ms, "first_stage": result.first_stage, "messages": messages}

    def _capture_layers(self) -> tuple[str, ...]:
        tab = self.state.tab
        return (tab.layers[0],) if tab else ()

    def _pump(self) -> None:
        done = self.worker.poll()
        if done is not None and done.version > self._shown:
            self._shown = done.version
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
                self._take_detected(r)
                self.batch.record(r["image"])
                if self.state.record_history:
                    self._record(r)
        if self.state.version != self._submitted:
            self._submitted = self.state.version
            self.worker.submit(self.state.version, (self.state.stack.copy(), self._capture_layers()))

    def _take_detected(self, r: dict) -> None:
        """Selections found by detectors come back with the result; show them on the state's tabs."""
        if r["messages"]:
            self.state.say("; ".join(r["messages"]), error=True)
        detected = {t.name: t.selection for t in r["stack"].tabs if t.detector and t.detector.get("mode") != "off"}
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
        self.generate_panel.refresh()
        self._log_latent_next = True

    def update(self) -> None:
        self.push_previous()
        self.state.touch()

    def toggle_previous(self) -> None:
        self.state.show_previous = not self.state.show_previous
        self.redraw_canvas()

    def set_base(self) -> None:
        if getattr(self, "last", None) is not None:
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
        self.state.stack = recipe.stack
        self.state.active_tab = 0 if recipe.stack.tabs else None
        known = self.engine.data.load_directions()
        if known and not recipe.stack.directions:
            self.state.set_directions(known)
        self.state.touch()
        self.refresh_panels()
        self.state.say(f"imported {Path(path).name}" + (" (original GanStudio latent)" if recipe.legacy else ""))

    def save_png(self, path: str) -> None:
        r = getattr(self, "last", None)
        if r is None:
            return
        recipe = self.engine.recipe(r["stack"], r["ws"])
        try:
            out = write_png(free_path(path), r["image"], recipe)
        except OSError as e:
            self.state.say(f"could not save: {e}", error=True)
            return
        self.state.say(f"saved {out}")

    def favourite(self) -> None:
        r = getattr(self, "last", None)
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
        self.refresh_panels()
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
        self.refresh_panels()

    def save_tab(self) -> None:
        tab = self.state.tab
        if tab is None:
            return
        try:
            path = self.engine.data.save_tab(tab)
            self.state.say(f"saved tab to {path}")
        except (OSError, DataError) as e:
            self.state.say(f"could not save the tab: {e}", error=True)
        self.spatial.refresh()

    def history(self) -> FeatureHistory | None:
        tab = self.state.tab
        if tab is None:
            return None
        layer = tab.layers[0]
        if layer not in self._histories:
            res, ch = self.state.layers[layer]
            self._histories[layer] = FeatureHistory(self.engine.data.dir / "history", layer, (ch, res, res))
        return self._histories[layer]

    def _record(self, r: dict) -> None:
        hist = self.history()
        if hist is not None and hist.layer in r["features"]:
            hist.append(r["features"][hist.layer], label=f"seed {r['stack'].seed}")

    def refresh_panels(self) -> None:
        for panel in (self.generate_panel, self.attributes, self.spatial, self.fmaps, self.plugin_panel):
            panel.refresh()

    # -------------------------------------------------------------------------------------------- keyboard

    def _see_activity(self, now: float) -> None:
        """Full frame rate while the mouse moves or a button is held, a render is due or shown, or the worker is
        busy; at rest the loop slows down (pacing.py).  Keys and the wheel mark activity in their handlers."""
        import dearpygui.dearpygui as dpg

        buttons = any(dpg.is_mouse_button_down(b) for b in (dpg.mvMouseButton_Left, dpg.mvMouseButton_Right,
                                                             dpg.mvMouseButton_Middle))
        self.pacer.see_mouse(now, tuple(dpg.get_mouse_pos(local=False)), buttons)
        if self.state.version != self._shown or not self.worker.idle:
            self.pacer.active(now)

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
        import dearpygui.dearpygui as dpg

        from .canvas import Canvas
        from .panel_attributes import AttributesPanel
        from .panel_batch import BatchPanel
        from .panel_fmaps import FmapsPanel
        from .panel_generate import GeneratePanel
        from .panel_plugins import PluginsPanel
        from .panel_spatial import SpatialPanel
        from .statusbar import StatusBar

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
                with dpg.menu(label="File"):
                    dpg.add_menu_item(label="Open model...", callback=lambda: dpg.show_item("dlg_model"))
                    dpg.add_menu_item(label="Import PNG...", callback=lambda: dpg.show_item("dlg_png"))
                    dpg.add_menu_item(label="Save tab", shortcut="Ctrl+S", callback=self.save_tab)
                    dpg.add_menu_item(label="Favourite", shortcut="F", callback=self.favourite)
                    dpg.add_menu_item(label="Quit", callback=lambda: dpg.stop_dearpygui())
                with dpg.menu(label="Edit"):
                    dpg.add_menu_item(label="Undo stroke", shortcut="Ctrl+Z", callback=lambda: self._key(dpg.mvKey_Z))
                    dpg.add_menu_item(label="Redo stroke", shortcut="Ctrl+Y", callback=lambda: self._key(dpg.mvKey_Y))
                with dpg.menu(label="View"):
                    dpg.add_menu_item(label="Toggle previous", shortcut="Space", callback=self.toggle_previous)
                with dpg.menu(label="Help"):
                    dpg.add_text("G generate, U update, Space previous, F favourite, R record,\n"
                                 "Ctrl+Z/Y undo/redo strokes and tab deletions, Ctrl+S save tab.\n"
                                 "Paint: left +1, right -1, ctrl erase; drag paints a rectangle.\n"
                                 "StyleGAN3: middle or Shift + left drag pans the picture.")
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
        with dpg.handler_registry():
            dpg.add_key_press_handler(callback=lambda s, key: self._key(key))
            dpg.add_key_down_handler(callback=lambda s, a: self.pacer.active(time.monotonic()))
            dpg.add_mouse_wheel_handler(callback=lambda s, a: self.pacer.active(time.monotonic()))
        dpg.set_primary_window("main", True)

    def _file_dialogs(self) -> None:
        import dearpygui.dearpygui as dpg

        def picked(handler):
            return lambda sender, app_data: handler(app_data.get("file_path_name", ""))

        with dpg.file_dialog(tag="dlg_model", show=False, width=640, height=420,
                             default_path=str(paths.shipped("models")), callback=picked(self.open_model)):
            for ext in (".safetensors", ".pkl", ".pt", ".pth"):
                dpg.add_file_extension(ext)
        with dpg.file_dialog(tag="dlg_png", show=False, width=640, height=420, callback=picked(self.import_png)):
            dpg.add_file_extension(".png")

    def open_model(self, path: str) -> None:
        """Switch model: check that it loads, then restart the studio on it (textures and layers change)."""
        from ..engine.loaders import load_model

        try:
            load_model(path)
        except ModelLoadError as e:
            self.state.say(str(e), error=True)
            return
        self.worker.stop()
        args = [sys.executable, "-m", "studio.cli", "gui", "--model", path, "--data", str(self.engine.data.root)]
        os.execv(sys.executable, args)

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
                                x_pos=0, y_pos=0, decorated=os.environ.get("GANSTUDIO_UNDECORATED") is None)
            dpg.setup_dearpygui()
            dpg.show_viewport()
            probe = os.environ.get("GANSTUDIO_PROBE")
            bench = ScrubBenchmark(self, os.environ["GANSTUDIO_BENCH"]) if os.environ.get("GANSTUDIO_BENCH") else None
            frame, shot_frame = 0, None
            paced = bench is None and not screenshot  # automation runs at full speed
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
                self.statusbar.update()
                self.batch.frame()
                if frame % 5 == 0:
                    self.fmaps.refresh()
                if frame % 60 == 0:
                    self.plugin_panel.poll_files()
                dpg.render_dearpygui_frame()
                frame += 1
                if paced:
                    now = time.monotonic()
                    time.sleep(self.pacer.pause(now, now - t_frame))
                if probe and (frame % 3 == 0 or self.pacer.idle(time.monotonic())):  # at rest: every frame
                    self._write_probe(probe, frame)
                if screenshot:
                    if shot_frame is None and frame >= frames and self._shown == self.state.version:
                        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                        dpg.output_frame_buffer(file=screenshot)
                        shot_frame = frame
                    elif shot_frame is not None and (Path(screenshot).exists() or frame > shot_frame + 60):
                        break
        finally:
            self.worker.stop()
            if getattr(self, "batch", None) is not None:
                self.batch.stop()
            dpg.destroy_context()
        return 0

    def _write_probe(self, path: str, frame: int) -> None:
        """State for GUI tests: what is shown, the last message, and where the widgets are on the screen."""
        import dearpygui.dearpygui as dpg

        tab = self.state.tab
        rects = {}
        for item in ("canvas", "tab_value", "tab_weights", "import_path", "btn_import", "btn_add_tab", "btn_generate",
                     "move_rotate", "btn_move_reset", "class_index", "save_path",
                     "tab_spatial", "tab_generate", "tab_batch", "bj_start_btn", "bj_out", "bj_n", "tab_feature",
                     "btn_save_png", "btn_rank", "btn_delete_tab"):
            if dpg.does_item_exist(item) and dpg.is_item_visible(item):
                rects[item] = [*dpg.get_item_rect_min(item), *dpg.get_item_rect_max(item)]
        image = self.canvas.image
        doc = {
            "frame": frame, "version": self.state.version, "shown": self._shown, "message": self.state.message,
            "error": self.state.message_is_error, "rects": rects, "grid": self.state.tab_grid(),
            "tab": None if tab is None else {"name": tab.name, "value": tab.value, "layer": tab.layers[0],
                                             "selection_sum": float(np.abs(tab.selection).sum()),
                                             "channels": int(np.count_nonzero(tab.weights[tab.layers[0]]))},
            "seed": self.state.stack.seed, "render_ms": self.render_ms, "class": self.state.stack.class_index,
            "translate": list(self.state.stack.translate), "rotate": self.state.stack.rotate,
            "ranked": [c for c, _ in self.state.ranked[:5]],
            "batch": None if self.batch.progress is None else {
                "done": self.batch.progress.done, "total": self.batch.progress.total,
                "folder": str(self.batch.progress.folder), "running": self.batch.thread is not None},
            "image_mean": None if image is None else float(image.mean()),
            "plugins_tab": dpg.get_value("pl_tab") if dpg.does_item_exist("pl_tab") else None,
        }
        if image is not None and getattr(self, "_probed_image", None) is not image:
            self._probed_image = image
            write_png(f"{path}.png", image, None)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)


class ScrubBenchmark:
    """Benchmark mode (GANSTUDIO_BENCH=out.json): drags a spatial tab's slider from the event loop, first alone,
    then while a batch job runs; records displayed renders per second and every loop iteration's duration."""

    PHASE_S = 6.0

    def __init__(self, app: StudioApp, out: str):
        self.app, self.out = app, out
        self.phase, self.t_phase, self.t_last = "wait", 0.0, None
        self.loops: dict[str, list[float]] = {"scrub": [], "scrub+batch": []}
        self.shown: dict[str, int] = {"scrub": 0, "scrub+batch": 0}
        self.renders_ms: list[float] = []
        self._last_shown = -1

    def _start_phase(self, name: str) -> None:
        self.phase, self.t_phase = name, time.perf_counter()

    def step(self) -> bool:
        """Called once per loop iteration; returns True when done."""
        app, now = self.app, time.perf_counter()
        if self.phase == "wait":
            if app._shown >= 0 and app._shown == app.state.version:
                layer = app.default_tab_layer
                tab = app.state.add_tab("bench", layer)
                res = tab.selection.shape[0]
                tab.selection = np.zeros((res, res), np.float32)
                tab.selection[res // 2: 3 * res // 4, res // 4: 3 * res // 4] = 1
                tab.weights[layer][:16] = 1
                self._start_phase("scrub")
            return False
        if self.t_last is not None:
            self.loops[self.phase].append((now - self.t_last) * 1000)
        self.t_last = now
        if app._shown != self._last_shown:
            self._last_shown = app._shown
            self.shown[self.phase] += 1
            self.renders_ms.append(app.render_ms)
        t = now - self.t_phase
        app.state.tab.value = float(60 + 40 * np.sin(2 * np.pi * t / 1.5))  # a continuous drag
        app.state.touch()
        if t > self.PHASE_S:
            if self.phase == "scrub":
                import dearpygui.dearpygui as dpg

                dpg.set_value("bj_job", "New latents")
                dpg.set_value("bj_n", 100_000)
                dpg.set_value("bj_out", str(Path(self.out).parent / "bench_batch"))
                app.batch.start()
                self._start_phase("scrub+batch")
                return False
            app.batch.cancel.set()
            self._write()
            return True
        return False

    def _write(self) -> None:
        doc = {}
        for phase, loops in self.loops.items():
            arr = np.array(loops[5:])  # skip the first frames of a phase
            doc[phase] = {"renders_per_s": round(self.shown[phase] / self.PHASE_S, 1),
                          "loop_ms_median": round(float(np.median(arr)), 2),
                          "loop_ms_p99": round(float(np.percentile(arr, 99)), 2),
                          "loop_ms_max": round(float(arr.max()), 2), "loops": len(arr)}
        doc["render_ms_median"] = round(float(np.median(self.renders_ms)), 2)
        Path(self.out).write_text(json.dumps(doc, indent=1))
