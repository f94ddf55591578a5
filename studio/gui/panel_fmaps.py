"""Feature maps panel: rank the active tab's layer by similarity to the selection, overlay a channel, view many,
record maps across images (disk-backed), view one channel across history, the historical average."""

from __future__ import annotations

import dearpygui.dearpygui as dpg
import numpy as np

from ..engine.analysis import RANK_METHODS, rank_channels, top_channels
from .canvas import overlay_colours, upscale
from .widgets import tooltip

GRID_SIDE = 4  # maps shown as a 4x4 grid
GRID_PX = 256


class FmapsPanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.grid = np.zeros((GRID_PX, GRID_PX, 4), np.float32)
        self.grid[..., 3] = 1
        self._flat = self.grid.reshape(-1)

    def build(self) -> None:
        with dpg.texture_registry():
            dpg.add_raw_texture(GRID_PX, GRID_PX, self._flat, format=dpg.mvFormat_Float_rgba, tag="tex_fmaps")
        dpg.add_text("", tag="fm_layer")
        with dpg.group(horizontal=True):
            dpg.add_combo(RANK_METHODS, tag="fm_method", default_value=self.state.rank_method, width=110,
                          callback=lambda s, a: setattr(self.state, "rank_method", a))
            dpg.add_button(label="Rank by selection", tag="btn_rank", callback=self.rank)
        tooltip("fm_method", "dot: the original's sum F*S (favours big channels); cosine: shape only; "
                          "iou: overlap of the channel's top 20% with the selection; magnitude: sum |F|")
        with dpg.group(horizontal=True):
            dpg.add_input_int(tag="fm_topn", default_value=5, width=90, min_value=1, min_clamped=True)
            dpg.add_button(label="Add top N to channels", callback=self._add_top)
            dpg.add_button(label="Clear overlay", callback=lambda: self._overlay(None))
        dpg.add_child_window(tag="fm_ranked", height=120)
        with dpg.group(horizontal=True):
            dpg.add_button(label="View top 16", callback=self.view_top)
            dpg.add_checkbox(label="record history (R)", tag="fm_record",
                             callback=lambda s, a: setattr(self.state, "record_history", a))
            dpg.add_text("", tag="fm_history")
        with dpg.group(horizontal=True):
            dpg.add_input_int(tag="fm_channel", default_value=0, width=90, min_value=0, min_clamped=True)
            dpg.add_button(label="Channel across history", callback=self.view_history)
            dpg.add_button(label="Historical average", callback=self.view_average)
        dpg.add_image("tex_fmaps", width=GRID_PX, height=GRID_PX)

    def refresh(self) -> None:
        tab = self.state.tab
        dpg.set_value("fm_layer", f"layer: {tab.layers[0]}" if tab else "layer: add a tab to choose one")
        hist = self.app.history()
        dpg.set_value("fm_history", f"{len(hist)} recorded" if hist is not None else "")

    def _features(self) -> np.ndarray | None:
        tab = self.state.tab
        if tab is None:
            self.state.say("add a tab first: its layer is the one analysed", error=True)
            return None
        f = self.app.features.get(tab.layers[0])
        if f is None:
            self.state.say("no feature maps yet for this layer: press Update", error=True)
        return f

    def rank(self) -> None:
        f, tab = self._features(), self.state.tab
        if f is None:
            return
        if not np.any(tab.selection):
            self.state.say("paint a selection first: channels are ranked by similarity to it", error=True)
            return
        scores = rank_channels(f, tab.selection, self.state.rank_method)
        self.state.ranked = [(c, float(scores[c])) for c in top_channels(scores, 24)]
        dpg.delete_item("fm_ranked", children_only=True)
        for c, s in self.state.ranked:
            dpg.add_button(label=f"ch {c:4d}   {s:+.3f}", parent="fm_ranked", user_data=c,
                           callback=lambda s_, a, u: self._overlay(u))
        self.state.say(f"ranked {f.shape[0]} channels by {self.state.rank_method}")

    def _overlay(self, channel: int | None) -> None:
        self.state.overlay_channel = channel
        dpg.set_value("fm_channel", channel or 0)
        self.app.redraw_canvas()

    def _add_top(self) -> None:
        tab = self.state.tab
        if tab is None or not self.state.ranked:
            return
        added = self.state.add_top_channels(dpg.get_value("fm_topn"))
        self.state.say(f"added channels {', '.join(map(str, added))}" if added else "the top channels are set already")
        self.app.spatial.refresh()

    def _show(self, maps: list[np.ndarray]) -> None:
        self.grid[..., :3] = 0.1
        cell = GRID_PX // GRID_SIDE
        for i, m in enumerate(maps[: GRID_SIDE * GRID_SIDE]):
            colour, alpha = overlay_colours(m)
            tile = upscale(colour * alpha[..., None] / 0.75, max(1, cell // m.shape[0]))[:cell, :cell]
            r, c = divmod(i, GRID_SIDE)
            self.grid[r * cell:r * cell + tile.shape[0], c * cell:c * cell + tile.shape[1], :3] = tile

    def view_top(self) -> None:
        f = self._features()
        if f is not None:
            chans = [c for c, _ in self.state.ranked] or list(range(f.shape[0]))
            self._show([f[c] for c in chans])

    def view_history(self) -> None:
        hist = self.app.history()
        if hist is None or not len(hist):
            self.state.say("nothing recorded yet: tick 'record history' and generate images", error=True)
            return
        self._show(list(hist.channel(dpg.get_value("fm_channel"))[-GRID_SIDE * GRID_SIDE:]))

    def view_average(self) -> None:
        hist = self.app.history()
        if hist is None or not len(hist):
            self.state.say("nothing recorded yet", error=True)
            return
        mean = hist.mean()
        chans = [c for c, _ in self.state.ranked] or list(range(mean.shape[0]))
        self._show([mean[c] for c in chans])
        self.state.say(f"historical average over {len(hist)} images (top-ranked channels)")
