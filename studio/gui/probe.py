"""Automation of the real app: the probe GUI tests read (GANSTUDIO_PROBE=state.json) and the benchmark driver
bench/gui.py runs (GANSTUDIO_BENCH=out.json).  Both only read the app, except the benchmark's own slider drag."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np

from ..engine.recipe import write_png


def write_probe(app, path: str, frame: int) -> None:
    """State for GUI tests: what is shown, the last message, and where the widgets are on the screen."""
    tab = app.state.tab
    rects = {}
    for item in ("canvas", "tab_value", "tab_weights", "import_path", "btn_import", "btn_add_tab", "btn_generate",
                 "move_rotate", "btn_move_reset", "class_index", "save_path",
                 "tab_spatial", "tab_generate", "tab_batch", "bj_start_btn", "bj_out", "bj_n", "tab_feature",
                 "btn_save_png", "btn_rank", "btn_delete_tab", "bj_ray", "sweep_grid", "fm_grid", "tab_sigma",
                 "fm_list", "tab_attributes", "class_target_0",
                 "model_btn_0", "model_btn_1", "model_btn_2", "btn_rename", "tab_name", "sw_folder"):
        state = dpg.get_item_state(item) if dpg.does_item_exist(item) else {}
        if state.get("visible") and "rect_min" in state:  # (not every kind of item reports both)
            rects[item] = [*state["rect_min"], *state["rect_max"]]
    image = app.canvas.image
    doc = {
        "frame": frame, "version": app.state.version, "shown": app._shown, "preview": app.preview.shown_preview,
        "previews_shown": app.preview.previews_shown, "status_precision": dpg.get_value("status_precision"),
        "message": app.state.message,
        "error": app.state.message_is_error, "rects": rects, "grid": app.state.tab_grid(),
        "tab": None if tab is None else {"name": tab.name, "value": tab.value, "layer": tab.layers[0],
                                         "selection_sum": float(np.abs(tab.selection).sum()),
                                         "cells": [[int(r), int(c)] for r, c in np.argwhere(tab.selection)[:16]],
                                         "channels": int(np.count_nonzero(tab.weights[tab.layers[0]]))},
        "seed": app.state.stack.seed, "render_ms": app.render_ms, "class": app.state.stack.class_index,
        "translate": list(app.state.stack.translate), "rotate": app.state.stack.rotate,
        "ranked": [c for c, _ in app.state.ranked[:5]],
        "class_edits": [[e.attribute, e.target, e.strength] for e in app.state.stack.class_edits],
        "class_reads": [dpg.get_value(f"class_own_{i}") for i in range(len(app.state.stack.class_edits))
                        if dpg.does_item_exist(f"class_own_{i}")],
        "batch": None if app.batch.progress is None else {
            "done": app.batch.progress.done, "total": app.batch.progress.total,
            "folder": str(app.batch.progress.folder), "running": app.batch.thread is not None},
        "image_mean": None if image is None else float(image.mean()),
        "plugins_tab": dpg.get_value("pl_tab") if dpg.does_item_exist("pl_tab") else None,
        "view": [app.canvas.view.u0, app.canvas.view.v0, app.canvas.view.span], "canvas_size": app.canvas.size,
        "texture": app.canvas.tex, "model": app.engine.model.name,
        "model_hash_dir": str(app.engine.data.dir.relative_to(app.engine.data.root)),
        "sessions": [s.engine.model.name for s in app.sessions.values()],
        "tabs": [t.name for t in app.state.stack.tabs], "undo": len(app.state.undo_stack),
        "history": None if app.history() is None else len(app.history()),
        "sweep_labels": list(app.batch.browser.tiles.labels),
        "model_buttons": {f"model_btn_{k}": dpg.get_item_label(f"model_btn_{k}") for k in range(3)
                          if dpg.does_item_exist(f"model_btn_{k}")}, "fmap_labels": list(app.fmaps.tiles.labels),
        "weights": None if tab is None else {int(c): float(tab.weights[tab.layers[0]][c])
                                             for c in np.flatnonzero(tab.weights[tab.layers[0]])[:32]},
    }
    if image is not None and getattr(app, "_probed_image", None) is not image:
        app._probed_image = image
        write_png(f"{path}.png", image, None)
    request = Path(f"{path}.shot")  # a test asks for a screenshot: the path to write is in the file
    if request.exists():
        target = request.read_text().strip()
        request.unlink()
        dpg.output_frame_buffer(file=target)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


class ScrubBenchmark:
    """Benchmark mode (GANSTUDIO_BENCH=out.json): drags a spatial tab's slider from the event loop, first alone,
    then while a batch job runs; records displayed renders per second (and how many were live previews) and every
    loop iteration's duration; then, at rest, times an axis-aligned sweep started from the Batch panel (not with
    GANSTUDIO_BENCH_JOB=0)."""

    PHASE_S = 6.0
    JOB_CHANNELS = "0-127"  # the axis sweep timed at rest: every channel of the bundled b16.conv0, 256 images
    JOB_RUNS = 3  # (the median is quoted: this machine is noisy)

    def __init__(self, app, out: str):
        self.app, self.out = app, out
        self.phase, self.t_phase, self.t_last = "wait", 0.0, None
        self.loops: dict[str, list[float]] = {"scrub": [], "scrub+batch": []}
        self.shown: dict[str, int] = {"scrub": 0, "scrub+batch": 0}
        self.previews: dict[str, int] = {"scrub": 0, "scrub+batch": 0}
        self.with_job = os.environ.get("GANSTUDIO_BENCH_JOB", "1") != "0"
        self.renders_ms: list[float] = []
        self._last_shown = -1
        self.job: dict = {}

    @property
    def paced(self) -> bool:
        """The job is timed in a studio at rest: its loop paced as when a user waits for a job."""
        return self.phase in ("drain", "job")

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
                tab.value = 60.0
                self._start_phase("scrub")
            return False
        if self.phase == "drain":  # the batch job ends after its chunk; then the studio rests
            if app.batch.thread is None and app.worker.idle and now - self.t_phase > 1.0 and not self.with_job:
                self._write()
                return True
            if app.batch.thread is None and app.worker.idle and now - self.t_phase > 1.0:
                dpg.set_value("bj_job", "Fmap axis-aligned sweep")
                dpg.set_value("bj_channels", self.JOB_CHANNELS)
                app.batch.show_params()
                app.batch.start()
                self._start_phase("job")
            return False
        if self.phase == "job":  # a job started from the studio at rest: how long it takes (bench/gui.py
            if app.batch.thread is None:  # runs the same plan from its folder in a plain process)
                self.job.setdefault("seconds", []).append(round(now - self.t_phase, 3))
                self.job.setdefault("folders", []).append(str(app.batch.folder))
                if len(self.job["seconds"]) == self.JOB_RUNS:
                    self._write()
                    return True
                app.batch.start()
                self._start_phase("job")
            return False
        if self.t_last is not None:
            self.loops[self.phase].append((now - self.t_last) * 1000)
        self.t_last = now
        if app._shown != self._last_shown:
            self._last_shown = app._shown
            self.shown[self.phase] += 1
            self.previews[self.phase] += int(app.preview.shown_preview)
            self.renders_ms.append(app.render_ms)
        t = now - self.t_phase
        app.state.tab.value = float(60 + 40 * np.sin(2 * np.pi * t / 1.5))  # a continuous drag
        app.state.touch()
        if t > self.PHASE_S:
            if self.phase == "scrub":
                dpg.set_value("bj_job", "New latents")
                dpg.set_value("bj_n", 100_000)
                dpg.set_value("bj_out", str(Path(self.out).parent / "bench_batch"))
                app.batch.show_params()
                app.batch.start()
                self._start_phase("scrub+batch")
                return False
            app.batch.cancel.set()
            app.state.tab.value = 60.0
            app.state.touch()
            self._start_phase("drain")
        return False

    def _write(self) -> None:
        doc = {}
        for phase, loops in self.loops.items():
            arr = np.array(loops[5:])  # skip the first frames of a phase
            doc[phase] = {"renders_per_s": round(self.shown[phase] / self.PHASE_S, 1),
                          "previews": self.previews[phase], "renders": self.shown[phase],
                          "loops_per_s": round(len(loops) / self.PHASE_S, 1),
                          "loop_ms_median": round(float(np.median(arr)), 2),
                          "loop_ms_p99": round(float(np.percentile(arr, 99)), 2),
                          "loop_ms_max": round(float(arr.max()), 2), "loops": len(arr)}
        doc["render_ms_median"] = round(float(np.median(self.renders_ms)), 2)
        doc["job"] = self.job
        Path(self.out).write_text(json.dumps(doc, indent=1))
