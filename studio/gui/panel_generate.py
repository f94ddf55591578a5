"""Generate panel: seed, Generate / Update, import a PNG's recipe, base image, previous, favourite, quality, noise."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from ..engine.edits import NOISE_MODES
from .widgets import tooltip


class GeneratePanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state

    def build(self) -> None:
        st = self.state
        with dpg.group(horizontal=True):
            dpg.add_input_int(label="seed", tag="seed", width=140, default_value=st.stack.seed or 0, min_value=0,
                              min_clamped=True, on_enter=True, callback=lambda s, a: self._seed(a))
            tooltip(dpg.add_button(label="Generate (G)", tag="btn_generate", callback=lambda: self.app.generate()),
                 "roll a new random seed and render it")
            tooltip(dpg.add_button(label="Update (U)", callback=lambda: self.app.update()),
                 "re-render the current latent with all sliders and tabs")
        dpg.add_slider_float(label="quality (psi)", tag="psi", min_value=0.0, max_value=1.5, width=260,
                             default_value=st.stack.psi, callback=lambda s, a: self._psi(a))
        tooltip("psi", "truncation: 0 = the average (or base) image, 1 = untruncated")
        dpg.add_combo(NOISE_MODES, label="noise", tag="noise", default_value=st.stack.noise_mode, width=120,
                      callback=lambda s, a: self._noise(a))
        with dpg.group(horizontal=True):
            tooltip(dpg.add_button(label="Set as base", callback=lambda: self.app.set_base()),
                 "truncate toward this image instead of the average")
            dpg.add_button(label="Reset base", callback=lambda: self.app.reset_base())
            tooltip(dpg.add_button(label="Toggle previous", callback=lambda: self.app.toggle_previous()), "Space")
            tooltip(dpg.add_button(label="Favourite (F)", callback=lambda: self.app.favourite()),
                 "copy to the model's favourites with its recipe")
        dpg.add_separator()
        dpg.add_text("Import a PNG (reads its recipe)")
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="import_path", width=300, hint="path/to/image.png", on_enter=True,
                               callback=lambda: self.app.import_png(dpg.get_value("import_path")))
            dpg.add_button(label="Import", tag="btn_import",
                           callback=lambda: self.app.import_png(dpg.get_value("import_path")))
        with dpg.group(horizontal=True):
            dpg.add_input_text(tag="save_path", width=300, default_value="portraits/image.png")
            dpg.add_button(label="Save PNG", callback=lambda: self.app.save_png(dpg.get_value("save_path")))

    def refresh(self) -> None:
        st = self.state.stack
        dpg.set_value("seed", st.seed if st.seed is not None else 0)
        dpg.set_value("psi", st.psi)
        dpg.set_value("noise", st.noise_mode)

    def _seed(self, value: int) -> None:
        self.app.push_previous()
        self.state.set_seed(value)

    def _psi(self, value: float) -> None:
        self.state.stack.psi = float(value)
        self.state.touch()

    def _noise(self, value: str) -> None:
        self.state.stack.noise_mode = value
        self.state.touch()

