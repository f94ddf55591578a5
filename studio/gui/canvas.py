"""The canvas: the current image as a raw float texture (small models enlarged by an integer zoom, nearest; big
ones shown fitted, downscaled), the active tab's selection grid, painting with the mouse, the feature-map overlay,
and a view that zooms (mouse wheel, about the cursor) and pans (middle drag while zoomed in).  A small second view
shows the previous image.  Every position goes through `View`, so the grid of any layer is drawn and painted where
the image shows it at any zoom."""

from __future__ import annotations

from dataclasses import dataclass

import dearpygui.dearpygui as dpg
import numpy as np

from .state import StudioState

VIEW = 512  # the canvas is at most this many pixels on a side
MIN_SPAN = 1 / 32  # the deepest zoom shows 1/32 of the image's side
WHEEL_ZOOM = 1.25  # per wheel notch
MIN_LINE_PX = 3  # grid lines closer than this on screen are thinned out (a 1024 grid fitted into 512 px)
THUMB = 128
POSITIVE, NEGATIVE, POSITIVE_CB = (60, 220, 60), (230, 50, 50), (60, 120, 255)


def zoom_for(resolution: int) -> int:
    return max(1, VIEW // resolution)


def upscale(img: np.ndarray, zoom: int) -> np.ndarray:
    """Nearest-neighbour integer zoom (textures have no filter option, so the texture holds the zoomed image)."""
    return np.repeat(np.repeat(img, zoom, axis=0), zoom, axis=1) if zoom > 1 else img


def overlay_colours(fmap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One feature map -> (RGB colour, alpha) per cell: blue positive, red negative, alpha ~ |value|."""
    peak = float(np.abs(fmap).max()) or 1.0
    v = fmap / peak
    rgb = np.where(v[..., None] >= 0, np.array([0.2, 0.4, 1.0]), np.array([1.0, 0.15, 0.15]))
    return rgb.astype(np.float32), (np.abs(v) * 0.75).astype(np.float32)


@dataclass(frozen=True)
class View:
    """The square part of the image the canvas shows: its top-left corner (u0, v0) and side, in image fractions."""

    u0: float = 0.0
    v0: float = 0.0
    span: float = 1.0

    def to_canvas(self, u: float, v: float, size: float) -> tuple[float, float]:
        return (u - self.u0) / self.span * size, (v - self.v0) / self.span * size

    def to_image(self, x: float, y: float, size: float) -> tuple[float, float]:
        return self.u0 + x / size * self.span, self.v0 + y / size * self.span

    def _clamped(self, u0: float, v0: float, span: float) -> View:
        span = min(max(span, MIN_SPAN), 1.0)
        return View(min(max(u0, 0.0), 1.0 - span), min(max(v0, 0.0), 1.0 - span), span)

    def zoomed(self, factor: float, x: float, y: float, size: float) -> View:
        """Zoom in (factor > 1) or out about a canvas point: the image point under it stays under it."""
        u, v = self.to_image(x, y, size)
        span = min(max(self.span / factor, MIN_SPAN), 1.0)
        return self._clamped(u - x / size * span, v - y / size * span, span)

    def panned(self, dx: float, dy: float, size: float) -> View:
        """The image dragged by (dx, dy) canvas pixels."""
        return self._clamped(self.u0 - dx / size * self.span, self.v0 - dy / size * self.span, self.span)


class Canvas:
    def __init__(self, state: StudioState, resolution: int, pannable: bool = False):
        self.state = state
        self.pannable = pannable  # StyleGAN3: a middle (or Shift + left) drag moves the input
        self._pan: tuple[tuple[float, float], tuple[float, float]] | None = None  # (mouse start, translate start)
        self.panned = False
        self.res = resolution
        self.zoom = zoom_for(resolution)
        self.tex = resolution * self.zoom  # texture side: small images enlarged (nearest), big ones as they are
        self.size = min(self.tex, VIEW)  # side on screen: a 1024 px image is shown fitted (downscaled)
        self.view = View()
        self._view_pan: tuple[tuple[float, float], View] | None = None
        self.rgba = np.zeros((self.tex, self.tex, 4), np.float32)
        self.rgba[..., 3] = 1
        self.thumb = np.zeros((THUMB, THUMB, 4), np.float32)
        self.thumb[..., 3] = 1
        self.image: np.ndarray | None = None  # current uint8 HxWx3
        self.previous: np.ndarray | None = None
        self._drag: tuple[tuple[int, int], str] | None = None
        self._last_cell: tuple[int, int] | None = None
        self._drawn_cells: tuple | None = None

    def build(self) -> None:
        # raw textures read these numpy buffers every frame (zero-copy): write into them, never replace them
        self._flat = (self.rgba.reshape(-1), self.thumb.reshape(-1))
        with dpg.texture_registry():
            dpg.add_raw_texture(self.tex, self.tex, self._flat[0], format=dpg.mvFormat_Float_rgba, tag="tex_image")
            dpg.add_raw_texture(THUMB, THUMB, self._flat[1], format=dpg.mvFormat_Float_rgba, tag="tex_prev")
        with dpg.drawlist(width=self.size, height=self.size, tag="canvas"):
            dpg.draw_image("tex_image", (0, 0), (self.size, self.size), tag="canvas_image")
            dpg.add_draw_layer(tag="layer_grid")
            dpg.add_draw_layer(tag="layer_cells")
            dpg.add_draw_layer(tag="layer_drag")
        with dpg.group(horizontal=True):
            dpg.add_image("tex_prev", width=THUMB, height=THUMB, tag="thumb_prev")
            with dpg.group():
                dpg.add_text("previous image\n(Space: toggle)", color=(160, 160, 160))
                dpg.add_text("", tag="canvas_zoom", color=(160, 160, 160))
                dpg.add_button(label="Fit", tag="btn_fit", callback=lambda: self.set_view(View()))
        self.set_view(self.view)

    # -------------------------------------------------------------------------------------------- view

    def set_view(self, view: View) -> None:
        self.view = view
        dpg.configure_item("canvas_image", uv_min=(view.u0, view.v0), uv_max=(view.u0 + view.span,
                                                                              view.v0 + view.span))
        shown = self.size / view.span / self.res  # screen pixels per image pixel
        dpg.set_value("canvas_zoom", f"{shown:.2f} screen px per image px" + ("" if view.span == 1 else
                                                                               "  (middle drag pans)"))
        self._drawn_cells = None  # the grid moves with the view

    def wheel(self, notches: float) -> None:
        """Mouse wheel over the canvas: zoom about the cursor."""
        if dpg.is_item_hovered("canvas"):
            x, y = dpg.get_drawing_mouse_pos()
            self.set_view(self.view.zoomed(WHEEL_ZOOM ** notches, x, y, self.size))

    # -------------------------------------------------------------------------------------------- images

    def show(self, image: np.ndarray, fmap: np.ndarray | None) -> None:
        """Put a new image (uint8 HxWx3) on the canvas, with the overlay map if one is chosen."""
        self.image = image
        self.redraw(fmap)

    def push_previous(self) -> None:
        if self.image is not None:
            self.previous = self.image
            step = max(1, self.previous.shape[0] // THUMB)
            small = self.previous[::step, ::step]
            small = upscale(small, max(1, THUMB // small.shape[0]))[:THUMB, :THUMB]
            self.thumb[: small.shape[0], : small.shape[1], :3] = small / 255.0

    def redraw(self, fmap: np.ndarray | None) -> None:
        img = self.previous if self.state.show_previous and self.previous is not None else self.image
        if img is None:
            return
        rgb = img.astype(np.float32) / 255.0
        if fmap is not None and not self.state.show_previous:
            colour, alpha = overlay_colours(fmap)
            f = self.res // fmap.shape[0]
            colour, alpha = upscale(colour, f), upscale(alpha, f)[..., None]
            rgb = rgb * (1 - alpha) + colour * alpha
        self.rgba[..., :3] = upscale(rgb, self.zoom)

    # -------------------------------------------------------------------------------------------- grid

    def draw_grid(self) -> None:
        """Grid lines and the painted cells of the active tab (redrawn only when they change)."""
        st = self.state
        grid = st.tab_grid()
        tab = st.tab
        key = (grid, st.show_grid, st.colour_blind, id(tab.selection) if tab else None, self.view)
        if key == self._drawn_cells:
            return
        self._drawn_cells = key
        dpg.delete_item("layer_grid", children_only=True)
        dpg.delete_item("layer_cells", children_only=True)
        if grid is None or not st.show_grid:
            return
        view, size = self.view, self.size
        cell = size / grid / view.span  # a cell's side on screen
        step = max(1, int(np.ceil(MIN_LINE_PX / cell)))  # every step-th line, when lines would crowd
        for i in range(0, grid + 1, step):
            x, y = view.to_canvas(i / grid, i / grid, size)
            if 0 <= x <= size:
                dpg.draw_line((x, 0), (x, size), color=(255, 255, 255, 60), parent="layer_grid")
            if 0 <= y <= size:
                dpg.draw_line((0, y), (size, y), color=(255, 255, 255, 60), parent="layer_grid")
        sel = tab.selection
        peak = max(float(np.abs(sel).max()), 1.0)
        pos = POSITIVE_CB if st.colour_blind else POSITIVE
        for r, c in zip(*np.nonzero(sel), strict=True):
            x0, y0 = view.to_canvas(c / grid, r / grid, size)
            if x0 >= size or y0 >= size or x0 + cell <= 0 or y0 + cell <= 0:
                continue  # outside the view
            v = float(sel[r, c])
            strength = abs(v) / peak
            colour = (*(pos if v > 0 else NEGATIVE), int(90 + 165 * strength))
            inset = cell * (0.4 - 0.3 * strength)
            dpg.draw_rectangle((x0 + inset, y0 + inset), (x0 + cell - inset, y0 + cell - inset),
                               color=colour, fill=(*colour[:3], int(40 * strength)),
                               thickness=1 + 2 * strength, parent="layer_cells")

    # -------------------------------------------------------------------------------------------- painting

    def cell_at(self, pos: tuple[float, float]) -> tuple[int, int] | None:
        grid = self.state.tab_grid()
        if grid is None:
            return None
        u, v = self.view.to_image(pos[0], pos[1], self.size)
        r, c = int(np.floor(v * grid)), int(np.floor(u * grid))
        return min(max(r, 0), grid - 1), min(max(c, 0), grid - 1)

    def handle_mouse(self) -> None:
        """Press starts a stroke on a cell; release paints the rectangle between the two cells."""
        left = dpg.is_mouse_button_down(dpg.mvMouseButton_Left)
        right = dpg.is_mouse_button_down(dpg.mvMouseButton_Right)
        hovered = dpg.is_item_hovered("canvas")
        pos = dpg.get_drawing_mouse_pos() if hovered else None
        if self._drag is None and self._handle_view_pan(hovered, pos):
            return
        if self.pannable and self._drag is None and self._handle_pan(left, hovered, pos):
            return
        if self._drag is None:
            if hovered and (left or right):
                cell = self.cell_at(pos)
                if cell is not None:
                    ctrl = dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)
                    self._drag = (cell, "0" if ctrl else ("+" if left else "-"))
            return
        start, mode = self._drag
        end = self.cell_at(pos) if pos is not None else self._last_cell
        if end is not None:
            self._last_cell = end
            self._draw_drag(start, end)
        if not (left or right):
            self._drag = None
            dpg.delete_item("layer_drag", children_only=True)
            if end is not None:
                self.state.paint(start, end, mode)

    def _handle_view_pan(self, hovered: bool, pos) -> bool:
        """A middle drag while zoomed in moves the view (not the StyleGAN3 input)."""
        middle = dpg.is_mouse_button_down(dpg.mvMouseButton_Middle)
        if self._view_pan is None:
            if hovered and pos is not None and middle and self.view.span < 1:
                self._view_pan = (tuple(pos), self.view)
                return True
            return False
        if not middle:
            self._view_pan = None
            return True
        (x0, y0), start = self._view_pan
        mouse = dpg.get_drawing_mouse_pos()
        self.set_view(start.panned(mouse[0] - x0, mouse[1] - y0, self.size))
        return True

    def _handle_pan(self, left: bool, hovered: bool, pos) -> bool:
        """A middle or Shift + left drag pans the StyleGAN3 input: the picture follows the mouse."""
        middle = dpg.is_mouse_button_down(dpg.mvMouseButton_Middle)
        shift = dpg.is_key_down(dpg.mvKey_LShift) or dpg.is_key_down(dpg.mvKey_RShift)
        if self._pan is None:
            if hovered and pos is not None and (middle or (shift and left)):
                self._pan = (tuple(pos), self.state.stack.translate)
                return True
            return False
        if not (middle or left):
            self._pan = None
            self.panned = True  # the app refreshes the transform sliders
            return True
        mouse = dpg.get_drawing_mouse_pos()
        (x0, y0), (tx, ty) = self._pan
        scale = self.view.span / self.size  # image widths per canvas pixel
        self.state.set_move(translate=(tx + (mouse[0] - x0) * scale, ty + (mouse[1] - y0) * scale))
        return True

    def _draw_drag(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        grid = self.state.tab_grid()
        dpg.delete_item("layer_drag", children_only=True)
        r0, r1 = sorted((a[0], b[0]))
        c0, c1 = sorted((a[1], b[1]))
        p0 = self.view.to_canvas(c0 / grid, r0 / grid, self.size)
        p1 = self.view.to_canvas((c1 + 1) / grid, (r1 + 1) / grid, self.size)
        dpg.draw_rectangle(p0, p1, color=(255, 255, 0, 200), thickness=2, parent="layer_drag")
