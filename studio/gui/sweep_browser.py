"""Sweep browser: an axis sweep's tiles from its folder, a page at a time; clicking a tile puts its channel, with its
sign, into the sweep's tab of the studio state."""

from __future__ import annotations

from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np

from ..engine import jobs
from ..engine.edits import EditError
from ..engine.recipe import RecipeError, read_image
from .tiles import TileGrid

SWEEP_COLUMNS, SWEEP_ROWS, SWEEP_CELL = 8, 4, 56  # a page of the sweep browser: 32 tiles


class SweepBrowser:
    def __init__(self, state):
        self.state = state
        self.tiles = TileGrid("sweep_grid", SWEEP_COLUMNS, SWEEP_ROWS, SWEEP_CELL, on_click=self._take_channel)
        self.items: list[jobs.Item] = []  # the shown sweep's items (labels like "89+")
        self.folder: Path | None = None
        self.page = 0

    def build(self) -> None:
        dpg.add_text("Sweep browser: click a tile to put its channel, with its sign, into the active tab")
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="sw_folder", width=300, hint="an axis sweep's folder (the last run's by default)",
                               on_enter=True, callback=lambda: self.browse(Path(dpg.get_value("sw_folder"))))
            dpg.add_button(label="<", callback=lambda: self._page(-1))
            dpg.add_button(label=">", callback=lambda: self._page(1))
            dpg.add_text("", tag="sw_page")
        self.tiles.build()

    def browse(self, folder: Path) -> None:
        """Show an axis sweep's tiles, labelled with channel and sign, from its folder's plan."""
        try:
            items = jobs.read_items(folder)
        except EditError as e:
            self.state.say(str(e), error=True)
            return
        self.items = [item for item in items if _sweep_channel(item.label) is not None]
        if not self.items:
            self.state.say(f"{folder} holds no axis sweep (tiles labelled like 89+)", error=True)
            return
        self.folder, self.page = folder, 0
        dpg.set_value("sw_folder", str(folder))
        self._show_page()

    def _page(self, step: int) -> None:
        pages = max(1, -(-len(self.items) // self.tiles.per_page))
        self.page = (self.page + step) % pages
        self._show_page()

    def _show_page(self) -> None:
        if self.folder is None:
            return
        k = self.tiles.per_page
        shown = self.items[self.page * k:(self.page + 1) * k]
        tiles = []
        for item in shown:
            try:
                image = read_image(self.folder / item.name).astype(np.float32) / 255
            except RecipeError:
                image = np.zeros((SWEEP_CELL, SWEEP_CELL, 3), np.float32)  # not written (cancelled, failed)
            tiles.append((item.label, image))
        self.tiles.show(tiles)
        pages = -(-len(self.items) // k)
        dpg.set_value("sw_page", f"page {self.page + 1}/{pages}, {len(self.items)} tiles")

    def _take_channel(self, index: int) -> None:
        """The clicked tile's channel, with its sign, goes into the sweep's tab (its selection and slider): the
        tab of that name at that layer if the studio has one, else a new tab made from the sweep's."""
        item = self.items[self.page * self.tiles.per_page + index]
        channel, sign = _sweep_channel(item.label)
        try:
            probe = item.stack.tabs[-1]  # the sweep puts its one-hot tab last
            self.state.take_sweep_tab(probe, channel, sign)
        except (EditError, IndexError) as e:
            self.state.say(f"this sweep's tile cannot be used: {e}", error=True)
            return
        self.state.say(f"channel {channel} ({'+' if sign > 0 else '-'}) set in tab {self.state.tab.name!r}")


def _sweep_channel(label: str) -> tuple[int, float] | None:
    """A sweep tile's label ("89+", "12-") as (channel, sign)."""
    if len(label) < 2 or label[-1] not in "+-" or not label[:-1].isdigit():
        return None
    return int(label[:-1]), 1.0 if label[-1] == "+" else -1.0
