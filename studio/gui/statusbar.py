"""Status bar: model, device, render time, frames per second, the last message (errors in red)."""

from __future__ import annotations

import dearpygui.dearpygui as dpg


class StatusBar:
    def __init__(self, app):
        self.app = app

    def build(self) -> None:
        with dpg.group(horizontal=True):
            dpg.add_text(f"{self.app.engine.model.name}", color=(200, 200, 120))
            dpg.add_text(f"| {self.app.engine.device}", color=(160, 160, 160))
            dpg.add_text("", tag="status_ms")
            dpg.add_text("", tag="status_fps")
            dpg.add_text("", tag="status_msg")

    def update(self) -> None:
        app, st = self.app, self.app.state
        dpg.set_value("status_ms", f"| {app.render_ms:5.1f} ms/render")
        dpg.set_value("status_fps", f"| {app.render_fps:4.1f} renders/s | {dpg.get_frame_rate():4.0f} fps |")
        dpg.set_value("status_msg", st.message)
        dpg.configure_item("status_msg", color=(255, 90, 90) if st.message_is_error else (200, 200, 200))
