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
        c_dim = self.app.engine.config.c_dim
        if c_dim:
            dpg.add_input_int(label=f"class (0-{c_dim - 1})", tag="class_index", width=140, min_value=0,
                              max_value=c_dim - 1, min_clamped=True, max_clamped=True, on_enter=True,
                              default_value=st.stack.class_index or 0, callback=lambda s, a: self._class(a))
            tooltip("class_index", "the class of this conditional model")
        dpg.add_slider_float(label="quality (psi)", tag="psi", min_value=0.0, max_value=1.5, width=260,
                             default_value=st.stack.psi, callback=lambda s, a: self._psi(a))
        tooltip("psi", "truncation: 0 = the average (or base) image, 1 = untruncated")
        dpg.add_combo(NOISE_MODES, label="noise", tag="noise", default_value=st.stack.noise_mode, width=120,
                      callback=lambda s, a: self._noise(a))
        if self.app.engine.renderer.has_input_transform:
            self._build_move()
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
            dpg.add_input_text(tag="save_path", width=300, default_value=str(self.app.output_dir / "image.png"))
            dpg.add_button(label="Save PNG", tag="btn_save_png",
                           callback=lambda: self.app.save_png(dpg.get_value("save_path")))
        dpg.add_separator()
        with dpg.group(horizontal=True):
            dpg.add_text("Model")
            tooltip(dpg.add_button(label="Open...", callback=lambda: dpg.show_item("dlg_model")),
                    "a generator file: .pkl (NVlabs, TensorFlow-era), .pt / .pth (rosinality), .safetensors")
        for k, (label, path) in enumerate(self.app.recent_models(5)):
            tooltip(dpg.add_button(label=label, tag=f"model_btn_{k}", user_data=path,
                                   callback=lambda s, a, u: self.app.open_model(u)),
                    f"{path}\n* shown, o open in this studio (its tabs and history kept)")

    def _build_move(self) -> None:
        """StyleGAN3's input transform (gen_images.py --translate / --rotate); a middle or Shift drag on the
        canvas pans too."""
        st = self.state.stack
        dpg.add_text("Input transform (StyleGAN3)")
        for axis, tag in ((0, "move_x"), (1, "move_y")):
            dpg.add_slider_float(label=f"translate {'xy'[axis]}", tag=tag, min_value=-1.0, max_value=1.0, width=260,
                                 default_value=st.translate[axis], callback=lambda s, a, axis=axis: self._move(axis, a))
        tooltip("move_x", "image widths; or drag the canvas with the middle button (or Shift + left)")
        dpg.add_slider_float(label="rotate (deg)", tag="move_rotate", min_value=-180.0, max_value=180.0, width=260,
                             default_value=st.rotate, callback=lambda s, a: self.state.set_move(rotate=a))
        dpg.add_button(label="Reset transform", tag="btn_move_reset", callback=self._reset_move)

    def refresh(self) -> None:
        st = self.state.stack
        dpg.set_value("seed", st.seed if st.seed is not None else 0)
        dpg.set_value("psi", st.psi)
        dpg.set_value("noise", st.noise_mode)
        if dpg.does_item_exist("class_index"):
            dpg.set_value("class_index", st.class_index or 0)
        if dpg.does_item_exist("move_x"):
            dpg.set_value("move_x", st.translate[0])
            dpg.set_value("move_y", st.translate[1])
            dpg.set_value("move_rotate", st.rotate)

    def _class(self, value: int) -> None:
        self.state.stack.class_index = int(value)
        self.state.touch()

    def _reset_move(self) -> None:
        self.state.set_move((0.0, 0.0), 0.0)
        self.refresh()

    def _move(self, axis: int, value: float) -> None:
        t = list(self.state.stack.translate)
        t[axis] = float(value)
        self.state.set_move(translate=(t[0], t[1]))

    def _seed(self, value: int) -> None:
        self.app.push_previous()
        self.state.set_seed(value)

    def _psi(self, value: float) -> None:
        self.state.stack.psi = float(value)
        self.state.touch()

    def _noise(self, value: str) -> None:
        self.state.stack.noise_mode = value
        self.state.touch()

