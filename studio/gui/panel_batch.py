"""Batch panel: the original's Batch and Misc jobs from the studio's current state, run on a background thread
with progress and Cancel; animation of a run's frames; recording the frames shown while scrubbing; below them the
sweep browser (its own widget) for the last axis sweep."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import dearpygui.dearpygui as dpg

from ..engine import jobs
from ..engine.animate import collect_frames, write_animation
from ..engine.edits import EditError
from ..engine.files import free_path
from ..engine.jobspecs import JOB_SPECS, PARAM_HELP, JobArgs, job_spec
from ..engine.recipe import RecipeError
from .sweep_browser import SweepBrowser
from .widgets import tooltip
from .worker import lower_thread_priority

HISTORY_QUEUE = 64  # feature maps waiting for the event loop to record them (the job waits when it is full)


class BatchPanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.thread: threading.Thread | None = None
        self.cancel = threading.Event()
        self.progress = None
        self.folder: Path | None = None
        self.error: str | None = None
        self.recording: list = []
        self.features: queue.Queue = queue.Queue(HISTORY_QUEUE)  # (name, maps) from the job to the history
        self.browser = SweepBrowser(self.state)
        self.ray_started = False  # a local Ray cluster this studio started (stopped when the studio ends)

    def build(self) -> None:
        d = JobArgs()
        dpg.add_combo([spec.label for spec in JOB_SPECS], tag="bj_job", default_value=JOB_SPECS[0].label, width=300,
                      callback=lambda: self.show_params())
        dpg.add_text("", tag="bj_help", wrap=560, color=(160, 160, 160))
        fields = {
            "n": lambda: dpg.add_input_int(label="n", tag="bj_n", default_value=d.n, width=110, min_value=1,
                                           min_clamped=True),
            "k": lambda: dpg.add_input_int(label="k", tag="bj_k", default_value=d.k, width=110, min_value=1,
                                           min_clamped=True),
            "start": lambda: dpg.add_input_float(label="start", tag="bj_start", default_value=d.start, width=110,
                                                 step=0),
            "past_zero": lambda: dpg.add_checkbox(label="slide past 0", tag="bj_past_zero"),
            "method": lambda: dpg.add_combo(("lerp", "slerp"), label="method", tag="bj_method",
                                            default_value=d.method, width=110),
            "channels": lambda: dpg.add_input_text(label="channels", tag="bj_channels", hint="all", width=160),
            "rng_seed": lambda: dpg.add_input_text(label="rng seed", tag="bj_rng_seed", hint="random", width=110),
            "folder": lambda: dpg.add_input_text(label="folder", tag="bj_folder_in", width=380, hint="folder of PNGs"),
            "inputs": lambda: dpg.add_input_text(label="PNGs", tag="bj_inputs", width=380,
                                                 hint="PNGs separated by ;"),
        }
        for name, add in fields.items():
            with dpg.group(tag=f"bj_row_{name}", show=False):
                tooltip(add(), PARAM_HELP[name])
                if name == "channels":
                    dpg.add_text("", tag="bj_suggest", color=(160, 160, 160), wrap=560)
                    tooltip(dpg.add_button(label="Use suggested strength", callback=self._use_suggested),
                            "set the active tab's slider to the suggested sweep strength")
        dpg.add_input_text(label="output", tag="bj_out", width=380, default_value=str(self.app.output_dir / "batch"))
        tooltip("bj_out", "each run writes a new folder in here (PNGs with recipes, manifest.json)")
        dpg.add_input_text(label="Ray", tag="bj_ray", width=200, hint="this process")
        tooltip("bj_ray", "render on a Ray cluster (pip install 'ganstudio[ray]'): 'local' starts one on this "
                          "machine (kept for the next jobs), host:port joins a running one; the files are the same")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Start", tag="bj_start_btn", callback=self.start)
            dpg.add_button(label="Cancel", callback=lambda: self.cancel.set())
        dpg.add_progress_bar(tag="bj_progress", width=380, overlay="idle")
        dpg.add_text("", tag="bj_folder", wrap=560)
        dpg.add_separator()
        dpg.add_text("Animation")
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="an_out", width=220, default_value=str(self.app.output_dir / "animation.gif"))
            dpg.add_input_float(label="fps", tag="an_fps", default_value=8, width=80, step=0)
            dpg.add_checkbox(label="ping-pong", tag="an_pingpong", default_value=True)
            # a 64 px model's GIF at 64x64 is a thumbnail: by default frames are enlarged to about 256 px
            dpg.add_input_int(label="upscale", tag="an_upscale", width=80, min_value=1, max_value=16,
                              min_clamped=True, max_clamped=True,
                              default_value=max(1, 256 // self.app.engine.config.resolution))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Animate last run", callback=self.animate_run)
            dpg.add_checkbox(label="record shown frames", tag="an_record",
                             callback=lambda s, a: self.recording.clear() if a else None)
            dpg.add_button(label="Save recording", callback=self.save_recording)
        dpg.add_separator()
        self.browser.build()
        self.show_params()

    def refresh(self) -> None:
        self.show_params()

    def show_params(self) -> None:
        """Only the chosen job's parameters are shown (each with its tooltip), and its description."""
        spec = job_spec(dpg.get_value("bj_job"))
        dpg.set_value("bj_help", spec.help)
        for name in PARAM_HELP:
            dpg.configure_item(f"bj_row_{name}", show=name in spec.params)
        if "channels" in spec.params:
            dpg.set_value("bj_suggest", self.app.suggested_sweep_text())

    def _use_suggested(self) -> None:
        value = self.app.suggested_sweep_value()
        if value is None:
            self.state.say("add a tab and let it render once: its layer's statistics are measured then", error=True)
            return
        self.state.set_tab_value(value)
        self.state.relayout()
        self.state.say(f"tab slider set to {value:.1f} for the sweep")

    def job_args(self) -> JobArgs:
        seed = dpg.get_value("bj_rng_seed").strip()
        try:
            rng_seed = int(seed) if seed else None
        except ValueError:
            raise EditError(f"rng seed {seed!r} is not a whole number") from None
        return JobArgs(n=dpg.get_value("bj_n"), k=dpg.get_value("bj_k"), start=dpg.get_value("bj_start"),
                       past_zero=dpg.get_value("bj_past_zero"), channels=dpg.get_value("bj_channels"),
                       folder=dpg.get_value("bj_folder_in"),
                       inputs=[p.strip() for p in dpg.get_value("bj_inputs").split(";") if p.strip()],
                       method=dpg.get_value("bj_method"), rng_seed=rng_seed, tab_index=self.state.active_tab)

    # -------------------------------------------------------------------------------------------- jobs

    def plan(self) -> jobs.Job:
        spec = job_spec(dpg.get_value("bj_job"))
        return spec.build(self.app.engine, self.state.stack.copy(), self.job_args())

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            self.state.say("a batch job is already running", error=True)
            return
        try:
            job = self.plan()
        except (EditError, RecipeError, OSError) as e:
            self.state.say(str(e), error=True)
            return
        for p in job.problems:
            self.state.say(f"skipped: {p}", error=True)
        self.cancel.clear()
        self.progress, self.error = None, None
        out = dpg.get_value("bj_out")
        tab = self.state.tab
        capture = tab.layers[0] if self.state.record_history and tab is not None else None
        address = dpg.get_value("bj_ray").strip()
        engine, plugins = self.app.engine, self.app.plugins

        def work() -> None:
            lower_thread_priority()  # the event loop and the render worker come first
            try:
                backend = None
                if address:
                    from ..engine import distributed

                    seconds, started = distributed.connect(address)
                    self.ray_started = self.ray_started or started
                    backend = distributed.ray_backend(engine, None, plugins, capture)
                for p in job.run(engine, out, self.cancel, plugins=plugins, capture=capture, backend=backend,
                                 on_features=lambda name, maps: self.features.put((name, maps))):
                    self.progress = p
                    self.folder = p.folder
            except Exception as e:  # reported in the status bar; the studio keeps running
                self.error = f"batch job failed: {type(e).__name__}: {e}"
            finally:
                self.app.wake.set()

        self.thread = threading.Thread(target=work, name="batch-job", daemon=True)
        self.thread.start()
        self.state.say(f"{job.kind}: {len(job.items)} images" +
                       (f", recording {capture} into the history" if capture else "") +
                       (f", on Ray ({address})" if address else ""))

    def frame(self) -> None:
        """Called every frame: progress bar, recorded feature maps, end of job."""
        for _ in range(HISTORY_QUEUE):
            try:
                name, maps = self.features.get_nowait()
            except queue.Empty:
                break
            self.app.record_maps(maps, name)
        p = self.progress
        if p is not None:
            dpg.set_value("bj_progress", p.done / max(p.total, 1))
            dpg.configure_item("bj_progress", overlay=f"{p.done}/{p.total}")
            dpg.set_value("bj_folder", str(p.folder))
        if self.thread is not None and not self.thread.is_alive():
            self.thread = None
            if self.error:
                self.state.say(self.error, error=True)
            else:
                status = "cancelled" if self.cancel.is_set() else "done"
                self.state.say(f"batch job {status}: {p.done if p else 0} of {p.total if p else 0} images "
                               f"in {self.folder}")
                if self.folder is not None and (self.folder / "contact_sheet.png").exists():
                    self.browser.browse(self.folder)

    def stop(self) -> None:
        """Cancel a running job and wait for it: it ends after its current chunk."""
        self.cancel.set()
        while self.thread is not None and self.thread.is_alive():  # a job blocked on a full history queue
            try:
                self.features.get(timeout=0.1)
            except queue.Empty:
                pass
        self.thread = None
        if self.ray_started:
            from ..engine import distributed

            distributed.shutdown()

    @property
    def records_frames(self) -> bool:
        """'record shown frames' is ticked (the studio then shows exact frames only)."""
        return bool(dpg.get_value("an_record"))

    def record(self, image) -> None:
        if self.records_frames:
            self.recording.append(image)

    # -------------------------------------------------------------------------------------------- animation

    def _write(self, frames, problems: list[str] | None = None) -> None:
        try:
            out = write_animation(frames, free_path(dpg.get_value("an_out")), fps=dpg.get_value("an_fps"),
                                  use_pingpong=dpg.get_value("an_pingpong"), upscale=dpg.get_value("an_upscale"))
            skipped = f"; skipped {len(problems)}: {'; '.join(problems[:3])}" if problems else ""
            self.state.say(f"wrote {out} ({len(frames)} frames){skipped}", error=bool(problems))
        except (EditError, OSError) as e:
            self.state.say(str(e), error=True)

    def animate_run(self) -> None:
        if self.folder is None:
            self.state.say("run a batch job first", error=True)
            return
        frames, problems = collect_frames([self.folder])
        self._write(frames, problems)

    def save_recording(self) -> None:
        if not self.recording:
            self.state.say("nothing recorded: tick 'record shown frames' and move a slider", error=True)
            return
        self._write(list(self.recording))
