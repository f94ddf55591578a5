"""Feature maps panel: rank the active tab's layer by similarity to the selection, overlay a channel, view many
(the top ranked or a typed channel list), record maps across images (disk-backed; batch jobs record too), view
one channel across history, the historical average, reset.  Every tile says what it shows; a click on a channel's
tile overlays it on the image."""

from __future__ import annotations

import dearpygui.dearpygui as dpg
import numpy as np

from ..engine.analysis import RANK_METHODS, rank_channels, top_channels
from ..engine.edits import EditError, parse_channel_list
from .canvas import overlay_colours
from .tiles import TileGrid
from .widgets import tooltip

GRID_SIDE = 4  # maps shown as a 4x4 grid
GRID_CELL = 64


class FmapsPanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.tiles = TileGrid("fm_grid", GRID_SIDE, GRID_SIDE, GRID_CELL, on_click=self._clicked)
        self.shown_channels: list[int] = []  # the channel of each tile (none for history tiles)

    def build(self) -> None:
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
            tooltip(dpg.add_button(label="Reset history", callback=self.reset_history),
                    "forget every map recorded at this layer")
        with dpg.group(horizontal=True):
            dpg.add_input_int(tag="fm_channel", default_value=0, width=90, min_value=0, min_clamped=True)
            dpg.add_button(label="Channel across history", callback=self.view_history)
            dpg.add_button(label="Historical average", callback=self.view_average)
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="fm_list", width=160, hint="e.g. 3,89,100-104", on_enter=True,
                               callback=self.view_list)
            tooltip(dpg.add_button(label="View channels", callback=self.view_list),
                    "the typed channels' maps of this image (empty: the tab's weighted channels)")
        self.tiles.build()

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

    def _show(self, maps: list[np.ndarray], labels: list[str], channels: list[int] | None = None) -> None:
        tiles = []
        for label, m in zip(labels, maps[:self.tiles.per_page], strict=False):
            colour, alpha = overlay_colours(m)
            tiles.append((label, colour * alpha[..., None] / 0.75))
        self.tiles.show(tiles)
        self.shown_channels = list(channels or [])[:len(tiles)]

    def _clicked(self, index: int) -> None:
        if index < len(self.shown_channels):
            self._overlay(self.shown_channels[index])

    def _show_channels(self, maps: np.ndarray, chans: list[int], what: str) -> None:
        chans = chans[:self.tiles.per_page]
        self._show([maps[c] for c in chans], [f"ch {c}" for c in chans], chans)
        self.state.say(f"{what}: channels {', '.join(map(str, chans))} (click a tile to overlay it)")

    def view_top(self) -> None:
        f = self._features()
        if f is not None:
            chans = [c for c, _ in self.state.ranked] or list(range(f.shape[0]))
            self._show_channels(f, chans, "top ranked" if self.state.ranked else "first maps (not ranked yet)")

    def view_list(self) -> None:
        f, tab = self._features(), self.state.tab
        if f is None:
            return
        text = dpg.get_value("fm_list").strip()
        try:
            chans = sorted(parse_channel_list(text, f.shape[0])) if text else \
                [int(c) for c in np.flatnonzero(tab.weights[tab.layers[0]])]
        except EditError as e:
            self.state.say(str(e), error=True)
            return
        if not chans:
            self.state.say("type channels (e.g. 3,89,100-104) or give the tab weights", error=True)
            return
        self._show_channels(f, chans, "typed" if text else "the tab's channels")

    def view_history(self) -> None:
        hist = self.app.history()
        if hist is None or not len(hist):
            self.state.say("nothing recorded yet: tick 'record history' and generate images", error=True)
            return
        c = dpg.get_value("fm_channel")
        if c >= hist.shape[0]:
            self.state.say(f"channel {c} does not exist at {hist.layer} ({hist.shape[0]} channels)", error=True)
            return
        k = self.tiles.per_page
        first = max(0, len(hist) - k)
        labels = [str(e.get("label", ""))[:10] or f"#{first + i}" for i, e in enumerate(hist.entries[first:])]
        self._show(list(hist.channel(c)[first:]), labels)
        self.state.say(f"channel {c} over the last {len(labels)} of {len(hist)} recorded images")

    def view_average(self) -> None:
        hist = self.app.history()
        if hist is None or not len(hist):
            self.state.say("nothing recorded yet", error=True)
            return
        mean = hist.mean()
        chans = [c for c, _ in self.state.ranked] or list(range(mean.shape[0]))
        self._show_channels(mean, chans, f"historical average over {len(hist)} images")

    def reset_history(self) -> None:
        hist = self.app.history()
        if hist is not None:
            n = len(hist)
            hist.clear()
            self.state.say(f"history of {hist.layer} reset ({n} records removed)")
            self.refresh()
