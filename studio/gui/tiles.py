"""A grid of labelled tiles: feature maps, a sweep's images.  One texture holds the tiles; each label is drawn
over its tile; a click on a tile calls back with its index (the sweep browser puts that channel into the tab)."""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg
import numpy as np

LABEL_COLOUR = (255, 255, 120, 255)
LABEL_BG = (0, 0, 0, 170)


def fit_tile(image: np.ndarray, cell: int) -> np.ndarray:
    """An [H, W, 3] float image in [0, 1] resized to cell x cell (nearest: maps stay blocky, as in the grid)."""
    h, w = image.shape[:2]
    rows = (np.arange(cell) * h // cell).clip(0, h - 1)
    cols = (np.arange(cell) * w // cell).clip(0, w - 1)
    return image[rows][:, cols]


class TileGrid:
    def __init__(self, tag: str, columns: int, rows: int, cell: int,
                 on_click: Callable[[int], None] | None = None):
        self.tag, self.columns, self.rows, self.cell = tag, columns, rows, cell
        self.on_click = on_click
        self.side = (columns * cell, rows * cell)
        self.pixels = np.zeros((self.side[1], self.side[0], 4), np.float32)
        self.pixels[..., 3] = 1
        self._flat = self.pixels.reshape(-1)
        self.labels: list[str] = []

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def build(self) -> None:
        with dpg.texture_registry():
            dpg.add_raw_texture(*self.side, self._flat, format=dpg.mvFormat_Float_rgba, tag=f"{self.tag}_tex")
        with dpg.drawlist(*self.side, tag=self.tag):
            dpg.draw_image(f"{self.tag}_tex", (0, 0), self.side)
            dpg.add_draw_node(tag=f"{self.tag}_labels")
        with dpg.item_handler_registry(tag=f"{self.tag}_handlers"):
            dpg.add_item_clicked_handler(callback=lambda: self._clicked())
        dpg.bind_item_handler_registry(self.tag, f"{self.tag}_handlers")

    def show(self, tiles: list[tuple[str, np.ndarray]]) -> None:
        """Up to `per_page` (label, [H, W, 3] float image in [0, 1]) tiles, row by row."""
        self.pixels[..., :3] = 0.1
        self.labels = [label for label, _ in tiles[:self.per_page]]
        dpg.delete_item(f"{self.tag}_labels", children_only=True)
        c = self.cell
        for i, (label, image) in enumerate(tiles[:self.per_page]):
            r, col = divmod(i, self.columns)
            self.pixels[r * c:(r + 1) * c, col * c:(col + 1) * c, :3] = fit_tile(image, c)
            if label:
                x, y = col * c + 1, r * c + 1
                dpg.draw_rectangle((x, y), (x + 7 * len(label) + 3, y + 13), fill=LABEL_BG, color=LABEL_BG,
                                   parent=f"{self.tag}_labels")
                dpg.draw_text((x + 2, y), label, size=13, color=LABEL_COLOUR, parent=f"{self.tag}_labels")

    def index_at(self, x: float, y: float) -> int | None:
        """The tile under a point given relative to the grid's top-left corner."""
        col, row = int(x // self.cell), int(y // self.cell)
        if not (0 <= col < self.columns and 0 <= row < self.rows):
            return None
        i = row * self.columns + col
        return i if i < len(self.labels) else None

    def _clicked(self) -> None:
        if self.on_click is None:
            return
        mx, my = dpg.get_mouse_pos(local=False)
        x0, y0 = dpg.get_item_rect_min(self.tag)
        i = self.index_at(mx - x0, my - y0)
        if i is not None:
            self.on_click(i)
