"""The studio's one state object. Widgets write into it; the app turns it into render requests.

Nothing here imports Dear PyGui: painting, undo and tab management are plain functions of the state and are
tested headless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..engine.edits import ClassEdit, Direction, EditError, EditStack, SpatialTab, detector_on, parse_channel_list

LOG_SIZE = 200  # messages kept for the status bar's log


@dataclass
class Stroke:
    """One painting action on a tab's selection, for undo/redo."""

    tab: str
    before: np.ndarray
    after: np.ndarray


@dataclass
class DetectorChange:
    """Choosing a detector for a tab that has a painted selection, for undo: undo puts the painting and the
    previous detector back (a detector never overwrites a painted selection without a way back)."""

    tab: str
    before: dict | None
    after: dict | None
    selection: np.ndarray


@dataclass
class TabDeletion:
    """Deleting a tab, for undo/redo: where it was, the tab itself, and whether its saved file went with it."""

    index: int
    tab: SpatialTab
    had_file: bool = False


Action = Stroke | TabDeletion | DetectorChange


@dataclass
class StudioState:
    stack: EditStack
    layers: dict[str, tuple[int, int]]  # layer -> (resolution, channels)
    active_tab: int | None = None
    overlap: bool = True  # values accumulate; False caps cells at +-1 ("no selection overlap")
    colour_blind: bool = False
    show_grid: bool = True
    overlay_channel: int | None = None
    show_previous: bool = False
    rank_method: str = "cosine"
    ranked: list[tuple[int, float]] = field(default_factory=list)
    record_history: bool = False
    message: str = ""
    message_is_error: bool = False
    version: int = 0  # bumped by every change that needs a new render
    layout: int = 0  # bumped by every change the panels show (tabs added, renamed, weights): they refresh
    message_time: float = 0.0  # when the message was said (monotonic)
    log: list[tuple[str, str, bool]] = field(default_factory=list)  # (clock time, message, error)
    undo_stack: list[Action] = field(default_factory=list)
    redo_stack: list[Action] = field(default_factory=list)

    # -------------------------------------------------------------------------------------------- basics

    def touch(self) -> None:
        self.version += 1

    def relayout(self) -> None:
        """A change every panel shows (the loop refreshes them all once): a new render too."""
        self.layout += 1
        self.touch()

    def say(self, text: str, error: bool = False) -> None:
        """The status line's message; every message is also kept in `log` (newest last, the last LOG_SIZE)."""
        self.message, self.message_is_error = text, error
        self.message_time = time.monotonic()
        self.log.append((time.strftime("%H:%M:%S"), text, error))
        del self.log[:-LOG_SIZE]

    @property
    def tab(self) -> SpatialTab | None:
        tabs = self.stack.tabs
        if self.active_tab is None or not 0 <= self.active_tab < len(tabs):
            return None
        return tabs[self.active_tab]

    def tab_grid(self) -> int | None:
        """Resolution of the active tab's selection grid."""
        tab = self.tab
        return None if tab is None else tab.selection.shape[0]

    # -------------------------------------------------------------------------------------------- latent

    def set_seed(self, seed: int) -> None:
        self.stack.seed, self.stack.z, self.stack.w = int(seed), None, None
        self.stack.noise_seed = int(seed)
        self.touch()

    def set_directions(self, directions: list[Direction]) -> None:
        strengths = {d.name: d.strength for d in self.stack.directions}
        self.stack.directions = [Direction(d.name, d.vector, strengths.get(d.name, 0.0)) for d in directions]
        self.touch()

    def set_direction_strength(self, name: str, strength: float) -> None:
        for d in self.stack.directions:
            if d.name == name:
                d.strength = float(strength)
        self.touch()

    def set_class_edits(self, edits: list[ClassEdit]) -> None:
        """The model's categorical attributes, switched off; an edit in use (from a recipe or the sliders) stays as it
        is, its own class means included, so an imported image renders as its recipe says."""
        used = {e.attribute: e for e in self.stack.class_edits if e.effective}
        known = {e.attribute for e in edits}
        self.stack.class_edits = [used.get(e.attribute) or replace(e, values=list(e.values), target=None, strength=1.0)
                                  for e in edits] + [e for a, e in used.items() if a not in known]
        self.touch()

    def set_class_target(self, attribute: str, target: str | None, strength: float | None = None) -> None:
        """Move the image into one value of an attribute (None: leave it as it is)."""
        for e in self.stack.class_edits:
            if e.attribute == attribute:
                e.aim(target, strength)
        self.touch()

    def set_move(self, translate: tuple[float, float] | None = None, rotate: float | None = None) -> None:
        """The StyleGAN3 input transform: translate in image widths, rotate in degrees."""
        if translate is not None:
            self.stack.translate = (float(translate[0]), float(translate[1]))
        if rotate is not None:
            self.stack.rotate = float(rotate)
        self.touch()

    def combined_direction(self, name: str) -> Direction:
        """sum_k alpha_k a_k of the current sliders, saved as a new attribute (the original's "combine")."""
        total = sum((d.strength * d.vector for d in self.stack.directions if d.strength), np.zeros(1, np.float32))
        if not np.any(total):
            raise ValueError("move at least one attribute slider before combining")
        return Direction(name, np.asarray(total, np.float32), 0.0)

    # -------------------------------------------------------------------------------------------- tabs

    def add_tab(self, name: str, layer: str) -> SpatialTab:
        res, channels = self.layers[layer]
        names = {t.name for t in self.stack.tabs}
        base, k = name, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        tab = SpatialTab(name, [layer], np.zeros((res, res), np.float32), {layer: np.zeros(channels, np.float32)})
        self.stack.tabs.append(tab)
        self.active_tab = len(self.stack.tabs) - 1
        self.relayout()
        return tab

    def replace_tab(self, tab: SpatialTab) -> None:
        """Add a loaded tab, replacing one of the same name."""
        for i, t in enumerate(self.stack.tabs):
            if t.name == tab.name:
                self.stack.tabs[i] = tab
                self.active_tab = i
                break
        else:
            self.stack.tabs.append(tab)
            self.active_tab = len(self.stack.tabs) - 1
        self.relayout()

    def select_tab(self, name: str) -> None:
        for i, t in enumerate(self.stack.tabs):
            if t.name == name:
                self.active_tab = i
        self.relayout()

    def set_tab_active(self, active: bool) -> None:
        if self.tab is not None:
            self.tab.active = bool(active)
            self.relayout()

    def set_tab_value(self, value: float) -> None:
        if self.tab is not None:
            self.tab.value = float(value)
            self.touch()

    def set_channel(self, channel: int, weight: float) -> None:
        """One channel's weight in the active tab's first layer (the sweep browser: a clicked tile's channel)."""
        tab = self.tab
        if tab is None:
            raise EditError("add a tab first")
        w = tab.weights[tab.layers[0]].copy()
        if not 0 <= channel < w.shape[0]:
            raise EditError(f"channel {channel} does not exist at {tab.layers[0]} ({w.shape[0]} channels)")
        w[channel] = weight
        tab.weights[tab.layers[0]] = w
        self.relayout()

    def take_sweep_tab(self, probe: SpatialTab, channel: int, sign: float) -> None:
        """A sweep tile's channel and sign into the sweep's tab: the tab of that name at that layer (made active),
        else a new tab with the sweep's selection and slider."""
        layer = probe.layers[0]
        if layer not in self.layers:
            raise EditError(f"the sweep's layer {layer} is not a layer of this model")
        for i, t in enumerate(self.stack.tabs):
            if t.name == probe.name and t.layers[0] == layer:
                self.active_tab = i
                t.active = True  # the user picked a tile to see its edit
                break
        else:
            tab = self.add_tab(probe.name, layer)
            tab.selection, tab.value, tab.active = probe.selection.copy(), probe.value, True
        self.set_channel(channel, sign)

    def set_weights(self, values: np.ndarray | None) -> None:
        """All weights of the active tab's first layer (None: zero)."""
        tab = self.tab
        if tab is None:
            return
        layer = tab.layers[0]
        tab.weights[layer] = np.zeros_like(tab.weights[layer]) if values is None else values.astype(np.float32)
        self.relayout()

    def set_detector(self, detector: dict | None) -> bool:
        """The active tab's detector; when it switches one on over a painted selection, the change is undoable
        (the painting comes back with the previous detector).  Returns whether it was recorded for undo."""
        tab = self.tab
        if tab is None:
            return False
        before = tab.detector
        recorded = detector_on(detector) and not detector_on(before) and bool(np.any(tab.selection))
        if recorded:
            self.undo_stack.append(DetectorChange(tab.name, before, detector, tab.selection.copy()))
            self.redo_stack.clear()
        tab.detector = detector
        self.relayout()
        return recorded

    def rename_tab(self, new: str) -> None:
        """Rename the active tab; its strokes stay undoable; a name another tab holds is refused."""
        tab, new = self.tab, new.strip()
        if tab is None or not new or new == tab.name:
            return
        if any(t.name == new for t in self.stack.tabs):
            raise EditError(f"a tab named {new!r} exists already")
        for stroke in (*self.undo_stack, *self.redo_stack):
            if isinstance(stroke, Stroke | DetectorChange) and stroke.tab == tab.name:
                stroke.tab = new
        tab.name = new
        self.relayout()

    def add_top_channels(self, n: int) -> list[int]:
        """Weight 1 for the `n` best-ranked channels the active tab's first layer does not weight yet."""
        tab = self.tab
        if tab is None:
            return []
        layer = tab.layers[0]
        w = tab.weights[layer].copy()
        added = [c for c, _ in self.ranked if w[c] == 0][:max(int(n), 0)]
        w[added] = 1
        tab.weights[layer] = w
        self.relayout()
        return added

    def delete_tab(self, had_file: bool = False) -> TabDeletion | None:
        """Remove the active tab (undoable: Ctrl+Z puts it back where it was)."""
        if self.tab is None:
            return None
        deletion = TabDeletion(self.active_tab, self.tab, had_file)
        self._delete(deletion)
        self.undo_stack.append(deletion)
        self.redo_stack.clear()
        return deletion

    def _delete(self, d: TabDeletion) -> None:
        del self.stack.tabs[d.index]
        self.active_tab = (len(self.stack.tabs) - 1) if self.stack.tabs else None
        self.relayout()

    def set_weights_text(self, text: str) -> None:
        """Channel weights from the list syntax (`a,b,c`, `a-b`, `kxN`) for the tab's first layer."""
        tab = self.tab
        layer = tab.layers[0]
        parsed = parse_channel_list(text, self.layers[layer][1])
        w = np.zeros(self.layers[layer][1], np.float32)
        for ch, k in parsed.items():
            w[ch] = k
        tab.weights[layer] = w
        self.relayout()

    # -------------------------------------------------------------------------------------------- painting

    def paint(self, cell0: tuple[int, int], cell1: tuple[int, int], mode: str) -> None:
        """Paint the rectangle between two cells: mode '+' adds 1, '-' subtracts 1, '0' erases."""
        tab = self.tab
        if tab is None:
            return
        before = tab.selection.copy()
        sel = before.copy()
        (r0, c0), (r1, c1) = cell0, cell1
        rs = slice(min(r0, r1), max(r0, r1) + 1)
        cs = slice(min(c0, c1), max(c0, c1) + 1)
        if mode == "0":
            sel[rs, cs] = 0
        else:
            step = 1.0 if mode == "+" else -1.0
            sel[rs, cs] += step
            if not self.overlap:
                sel[rs, cs] = np.clip(sel[rs, cs], -1, 1)
        if np.array_equal(sel, before):
            return
        tab.selection = sel
        self.undo_stack.append(Stroke(tab.name, before, sel))
        self.redo_stack.clear()
        self.touch()

    def _apply_stroke(self, stroke: Action, undo: bool) -> bool:
        if isinstance(stroke, TabDeletion):
            if undo:
                self.stack.tabs.insert(min(stroke.index, len(self.stack.tabs)), stroke.tab)
                self.active_tab = min(stroke.index, len(self.stack.tabs) - 1)
                self.relayout()
            elif stroke.tab in self.stack.tabs:
                self._delete(TabDeletion(self.stack.tabs.index(stroke.tab), stroke.tab))
            return True
        for i, t in enumerate(self.stack.tabs):
            if t.name != stroke.tab:
                continue
            if isinstance(stroke, DetectorChange):
                t.detector = stroke.before if undo else stroke.after
                if undo:
                    t.selection = stroke.selection.copy()
            else:
                t.selection = (stroke.before if undo else stroke.after).copy()
            self.active_tab = i
            self.relayout()
            return True
        return False

    def undo(self) -> Action | None:
        """Undo the last stroke or tab deletion; returns it (the app restores a deleted tab's file)."""
        if self.undo_stack:
            stroke = self.undo_stack.pop()
            if self._apply_stroke(stroke, undo=True):
                self.redo_stack.append(stroke)
                return stroke
        return None

    def redo(self) -> Action | None:
        if self.redo_stack:
            stroke = self.redo_stack.pop()
            if self._apply_stroke(stroke, undo=False):
                self.undo_stack.append(stroke)
                return stroke
        return None
