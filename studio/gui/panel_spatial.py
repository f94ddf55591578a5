"""Spatial panel: tabs (add at a layer, rename, delete, save, load), channel weights, the slider, painting options."""

from __future__ import annotations

import dearpygui.dearpygui as dpg
import numpy as np

from ..engine.edits import EditError, format_channel_list
from ..engine.modeldata import DataError
from .widgets import tooltip


class SpatialPanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state

    def _layer_labels(self) -> list[str]:
        return [f"{name}  ({res}x{res}, {ch} ch)" for name, (res, ch) in self.state.layers.items()]

    def build(self) -> None:
        st = self.state
        labels = self._layer_labels()
        default = next((lab for lab in labels if lab.startswith(self.app.default_tab_layer)), labels[0])
        with dpg.group(horizontal=True):
            dpg.add_combo(labels, tag="tab_layer", default_value=default, width=230)
            dpg.add_input_text(tag="tab_name", hint="tab name", width=110)
            dpg.add_button(label="Add tab", tag="btn_add_tab", callback=self._add)
        tooltip("tab_layer", "the feature map the new tab edits; its grid has the layer's resolution")
        dpg.add_listbox([], tag="tab_list", num_items=4, width=-1, callback=self._select)
        with dpg.group(horizontal=True):
            dpg.add_checkbox(label="active", tag="tab_active", callback=self._active)
            dpg.add_button(label="Rename", tag="btn_rename", callback=self._rename)
            dpg.add_button(label="Delete", tag="btn_delete_tab", callback=self.app.delete_tab)
            dpg.add_button(label="Save (Ctrl+S)", callback=lambda: self.app.save_tab())
        with dpg.group(horizontal=True):
            dpg.add_combo([], tag="tab_saved", width=180)
            dpg.add_button(label="Load", callback=self._load)
        dpg.add_separator()
        dpg.add_slider_float(label="", tag="tab_value", min_value=-200, max_value=200, width=300,
                             callback=self._value)
        dpg.add_text("", tag="tab_mult")
        tooltip("tab_value", "slider v: the edit is selection x channel weights x mu(v), mu(v) = sign(v) exp(|v|/20)")
        with dpg.group(horizontal=True):
            dpg.add_input_float(label="sigma", tag="tab_sigma", default_value=10.0, width=110, step=0, on_enter=True,
                                callback=self._sigma)
            dpg.add_button(label="Set strength", callback=self._sigma)
        tooltip("tab_sigma", "strength in units of the tab's channels' activation std (measured once per layer over "
                             "64 images, kept in the model's data folder): carries between models, unlike the raw "
                             "multiplier; the recipe keeps the exact slider value")
        dpg.add_text("channels (a,b,c  a-b  kxN)")
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="tab_weights", width=260, on_enter=True, callback=self._weights)
            dpg.add_button(label="Set", callback=self._weights)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Randomize", callback=self._randomize)
            dpg.add_button(label="Zero all", callback=lambda: self._set_weights(None))
            dpg.add_button(label="Clear selection", callback=self._clear_selection)
        with dpg.group(horizontal=True):
            tooltip(dpg.add_checkbox(label="no overlap", callback=lambda s, a: setattr(st, "overlap", not a)),
                 "paint cells to +1 / -1 instead of adding up")
            dpg.add_checkbox(label="colour-blind", callback=lambda s, a: setattr(st, "colour_blind", a))
            dpg.add_checkbox(label="grid", default_value=True, callback=lambda s, a: setattr(st, "show_grid", a))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Undo (Ctrl+Z)", callback=self.app.undo)
            dpg.add_button(label="Redo (Ctrl+Y)", callback=self.app.redo)
        dpg.add_text("non-zero weights (editable)")
        with dpg.table(tag="tab_table", header_row=True, height=150, scrollY=True, policy=dpg.mvTable_SizingFixedFit):
            dpg.add_table_column(label="channel")
            dpg.add_table_column(label="weight")
        self.refresh()

    def refresh(self) -> None:
        st = self.state
        dpg.configure_item("tab_list", items=[("* " if t.effective() else "  ") + t.name for t in st.stack.tabs])
        dpg.configure_item("tab_saved", items=self.app.engine.data.tab_names())
        tab = st.tab
        dpg.delete_item("tab_table", children_only=True, slot=1)
        if tab is None:
            dpg.set_value("tab_mult", "no tab: add one at a layer, then paint on the image")
            return
        dpg.set_value("tab_list", ("* " if tab.effective() else "  ") + tab.name)
        dpg.set_value("tab_active", tab.active)
        dpg.set_value("tab_value", tab.value)
        self.show_strength()
        w = tab.weights[tab.layers[0]]
        dpg.set_value("tab_weights", format_channel_list(w))
        for ch in np.flatnonzero(w)[:256]:
            with dpg.table_row(parent="tab_table"):
                dpg.add_text(str(ch))
                dpg.add_input_float(default_value=float(w[ch]), width=90, step=0, user_data=int(ch), on_enter=True,
                                    callback=self._edit_weight)

    def show_strength(self) -> None:
        """The multiplier and sigma line (also called now and then by the loop: the statistics arrive later)."""
        if self.state.tab is not None:
            dpg.set_value("tab_mult", self.app.strength_text())

    def _sigma(self) -> None:
        try:
            self.app.set_strength_sigma(dpg.get_value("tab_sigma"))
        except EditError as e:
            self.state.say(str(e), error=True)

    def _add(self) -> None:
        layer = dpg.get_value("tab_layer").split()[0]
        name = dpg.get_value("tab_name").strip() or f"tab_{layer}"
        self.state.add_tab(name, layer)  # every panel refreshes: the Plugins and Feature maps panels name it too

    def _select(self, sender, label: str) -> None:
        self.state.select_tab(label[2:])

    def _active(self, sender, value: bool) -> None:
        self.state.set_tab_active(value)

    def _rename(self) -> None:
        try:
            self.state.rename_tab(dpg.get_value("tab_name"))
        except EditError as e:
            self.state.say(str(e), error=True)

    def _load(self) -> None:
        name = dpg.get_value("tab_saved")
        if not name:
            return
        try:
            self.state.replace_tab(self.app.engine.data.load_tab(self.app.engine.data.tab_path(name)))
            self.state.say(f"loaded tab {name!r}")
        except DataError as e:
            self.state.say(str(e), error=True)

    def _value(self, sender, value: float) -> None:
        self.state.set_tab_value(value)
        self.show_strength()

    def _weights(self) -> None:
        if self.state.tab is None:
            return
        try:
            self.state.set_weights_text(dpg.get_value("tab_weights"))
            self.state.say(f"{int(np.count_nonzero(self.state.tab.weights[self.state.tab.layers[0]]))} channels set")
        except EditError as e:
            self.state.say(str(e), error=True)

    def _set_weights(self, values: np.ndarray | None) -> None:
        self.state.set_weights(values)

    def _randomize(self) -> None:
        if self.state.tab is not None:
            n = self.state.tab.weights[self.state.tab.layers[0]].shape[0]
            self._set_weights(np.random.default_rng().standard_normal(n))

    def _edit_weight(self, sender, value: float, channel: int) -> None:
        tab = self.state.tab
        w = tab.weights[tab.layers[0]].copy()
        w[channel] = value
        self._set_weights(w)

    def _clear_selection(self) -> None:
        tab = self.state.tab
        if tab is not None:
            self.state.paint((0, 0), (tab.selection.shape[0] - 1,) * 2, "0")
