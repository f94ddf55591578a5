"""Batch panel: the original's Batch and Misc jobs from the studio's current state, run on a background thread
with progress and Cancel; animation of a run's frames; recording the frames shown while scrubbing."""

from __future__ import annotations

import threading
from pathlib import Path

import dearpygui.dearpygui as dpg

from ..engine import jobs
from ..engine.animate import collect_frames, write_animation
from ..engine.edits import EditError, parse_channel_list
from ..engine.files import free_path
from ..engine.recipe import RecipeError
from .worker import lower_thread_priority

JOBS = {
    "New latents": "new", "Attribute spectrum": "spectrum", "Attribute combinatoric": "acomb",
    "Attribute sequential": "aseq", "Fmap combinatoric": "fcomb", "New latent combinatoric": "nlcomb",
    "Fmap combinatoric on a folder": "fcomb_folder", "Fmap axis-aligned sweep": "axis",
    "Apply sliders and tabs to a folder": "apply", "Interpolate PNGs": "interp",
}


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

    def build(self) -> None:
        dpg.add_combo(list(JOBS), tag="bj_job", default_value="New latents", width=300)
        with dpg.group(horizontal=True):
            dpg.add_input_int(label="n", tag="bj_n", default_value=8, width=90, min_value=1, min_clamped=True)
            dpg.add_input_int(label="k", tag="bj_k", default_value=3, width=90, min_value=1, min_clamped=True)
            dpg.add_input_float(label="start", tag="bj_start", default_value=0.0, width=90, step=0)
        with dpg.group(horizontal=True):
            dpg.add_checkbox(label="slide past 0", tag="bj_past")
            dpg.add_combo(("lerp", "slerp"), tag="bj_method", default_value="lerp", width=80)
            dpg.add_input_text(label="channels", tag="bj_channels", hint="all", width=120)
        dpg.add_input_text(label="folder / PNGs", tag="bj_inputs", width=380, hint="folder, or PNGs separated by ;")
        dpg.add_input_text(label="output", tag="bj_out", width=380, default_value=str(self.app.output_dir / "batch"))
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

    def refresh(self) -> None:
        pass

    # -------------------------------------------------------------------------------------------- jobs

    def plan(self) -> jobs.Job:
        kind = JOBS[dpg.get_value("bj_job")]
        stack, eng = self.state.stack.copy(), self.app.engine
        n, k, start = dpg.get_value("bj_n"), dpg.get_value("bj_k"), dpg.get_value("bj_start")
        inputs = [s.strip() for s in dpg.get_value("bj_inputs").split(";") if s.strip()]
        if kind == "new":
            return jobs.new_latents(stack, n)
        if kind == "spectrum":
            return jobs.attribute_spectrum(stack, n, dpg.get_value("bj_past"))
        if kind in ("acomb", "aseq"):
            return jobs.attribute_combinatoric(stack, k, sequential=kind == "aseq")
        if kind == "fcomb":
            return jobs.fmap_combinatoric([stack], k, start)
        if kind == "nlcomb":
            return jobs.new_latent_combinatoric(stack, n, k, start)
        if kind == "axis":
            if self.state.tab is None:
                raise EditError("choose a tab: the sweep runs over its layer's channels")
            text = dpg.get_value("bj_channels").strip()
            tab = self.state.tab
            chans = sorted(parse_channel_list(text, tab.weights[tab.layers[0]].shape[0])) if text else None
            return jobs.axis_aligned_sweep(stack, self.state.active_tab, chans)
        if kind == "interp":
            return jobs.interpolate(eng, inputs, n, dpg.get_value("bj_method"))
        if not inputs:
            raise EditError("give a folder of PNGs")
        if kind == "apply":
            return jobs.apply_to_folder(eng, stack, inputs[0])
        return jobs.folder_combinatoric(eng, stack, inputs[0], k, start)

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

        def work() -> None:
            lower_thread_priority()  # the event loop and the render worker come first
            try:
                for p in job.run(self.app.engine, out, self.cancel, plugins=self.app.plugins):
                    self.progress = p
                    self.folder = p.folder
            except Exception as e:  # reported in the status bar; the studio keeps running
                self.error = f"batch job failed: {type(e).__name__}: {e}"

        self.thread = threading.Thread(target=work, name="batch-job", daemon=True)
        self.thread.start()
        self.state.say(f"{job.kind}: {len(job.items)} images")

    def frame(self) -> None:
        """Called every frame: progress bar, end of job, recording."""
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
                self.state.say(f"batch job {status}: {p.done if p else 0} images in {self.folder}")

    def stop(self) -> None:
        """Cancel a running job and wait for it: it ends after its current chunk."""
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(timeout=60)

    def record(self, image) -> None:
        if dpg.get_value("an_record"):
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
