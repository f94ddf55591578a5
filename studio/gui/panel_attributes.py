"""Attributes panel: one slider per attribute direction of the model's data folder (w += alpha * d), and per
categorical attribute a value to move the image into with its strength (w += t * (mean[value] - mean[own]))."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from ..engine.edits import DIRECTION_LIMIT


class AttributesPanel:
    LIMIT = DIRECTION_LIMIT
    CLASS_LIMIT = 2.0  # a class edit's strength: 1 = the step between the two class means
    KEEP = "(as it is)"

    def __init__(self, app):
        self.app = app
        self.state = app.state

    def build(self) -> None:
        dpg.add_text("Set a value (the step between the class means of w)")
        with dpg.group(tag="class_list"):
            pass
        dpg.add_separator()
        dpg.add_text("Directions")
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="attr_filter", hint="filter", width=160,
                               callback=lambda s, a: dpg.set_value("attr_list", a))
            dpg.add_button(label="Reset", callback=self._reset)
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="attr_combine_name", hint="name", width=160)
            dpg.add_button(label="Combine into new", callback=self._combine)
        with dpg.filter_set(tag="attr_list"):
            pass
        self.refresh()

    def refresh(self) -> None:
        dpg.delete_item("attr_list", children_only=True)
        if not self.state.stack.directions:
            dpg.add_text("This model's data folder has no attribute directions.", parent="attr_list",
                         filter_key="")
        for d in self.state.stack.directions:
            dpg.add_slider_float(label=d.name, filter_key=d.name, parent="attr_list", width=220,
                                 min_value=-self.LIMIT, max_value=self.LIMIT, default_value=d.strength,
                                 user_data=d.name, callback=lambda s, a, u: self.state.set_direction_strength(u, a))
        self._refresh_classes()

    def _refresh_classes(self) -> None:
        dpg.delete_item("class_list", children_only=True)
        if not self.state.stack.class_edits:
            dpg.add_text("This model's data folder has no class means (classes.json).", parent="class_list")
        for i, e in enumerate(self.state.stack.class_edits):
            with dpg.group(horizontal=True, parent="class_list"):
                dpg.add_combo([self.KEEP, *e.values], default_value=e.target or self.KEEP, width=110,
                              tag=f"class_target_{i}", user_data=e.attribute,
                              callback=lambda s, a, u: self.state.set_class_target(u, None if a == self.KEEP else a))
                dpg.add_slider_float(label=e.attribute, width=110, min_value=0.0, max_value=self.CLASS_LIMIT,
                                     default_value=e.strength, user_data=e.attribute, tag=f"class_strength_{i}",
                                     callback=lambda s, a, u: self._set_class_strength(u, a))
                dpg.add_text("", tag=f"class_own_{i}", color=(150, 150, 150))

    def show_own_classes(self, own: dict[str, str]) -> None:
        """What the shown image reads as, per attribute (before its class edits), beside each value box."""
        for i, e in enumerate(self.state.stack.class_edits):
            if dpg.does_item_exist(f"class_own_{i}"):
                dpg.set_value(f"class_own_{i}", f"(reads {own[e.attribute]})" if e.attribute in own else "")

    def _set_class_strength(self, attribute: str, strength: float) -> None:
        edit = next(e for e in self.state.stack.class_edits if e.attribute == attribute)
        self.state.set_class_target(attribute, edit.target, strength)

    def _reset(self) -> None:
        for d in self.state.stack.directions:
            d.strength = 0.0
        for e in self.state.stack.class_edits:
            e.target, e.strength = None, 1.0
        self.state.touch()
        self.refresh()

    def _combine(self) -> None:
        name = dpg.get_value("attr_combine_name").strip() or "combined"
        try:
            direction = self.state.combined_direction(name)
        except ValueError as e:
            self.state.say(str(e), error=True)
            return
        self.app.engine.data.add_direction(direction)
        self.state.set_directions(self.app.engine.data.load_directions())
        self.refresh()
        self.state.say(f"saved attribute {name!r}")
