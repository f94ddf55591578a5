"""Status bar: model, device, whether the frame shown is a live preview or exact, render time, frames per second,
the last message (an error in red for a while), and on hover the whole message with the recent ones (the log)."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

ERROR_RED_S = 10.0  # an error stays red this long (it may be fixed by then), then reads like any message
SHOWN_CHARS = 110  # of the message on the bar; hover shows all of it
LOG_SHOWN = 15  # recent messages in the hover log


class StatusBar:
    def __init__(self, app):
        self.app = app

    def build(self) -> None:
        with dpg.group(horizontal=True):
            dpg.add_text(f"{self.app.engine.model.name}", color=(200, 200, 120))
            dpg.add_text(f"| {self.app.engine.device}", color=(160, 160, 160))
            dpg.add_text("", tag="status_precision")
            dpg.add_text("", tag="status_ms")
            dpg.add_text("", tag="status_fps")
            dpg.add_text("", tag="status_msg")
            with dpg.tooltip("status_msg"):
                dpg.add_text("", tag="status_log", wrap=700)

    def update(self) -> None:
        app, st = self.app, self.app.state
        preview = app.preview.shown_preview
        dpg.set_value("status_precision", f"| preview ({app.engine.preview_name})" if preview else "| exact")
        dpg.configure_item("status_precision", color=(240, 200, 90) if preview else (160, 200, 160))
        dpg.set_value("status_ms", f"| {app.render_ms:5.1f} ms/render")
        dpg.set_value("status_fps", f"| {app.render_fps:4.1f} renders/s | {dpg.get_frame_rate():4.0f} fps |")
        text = st.message if len(st.message) <= SHOWN_CHARS else st.message[:SHOWN_CHARS - 3] + "..."
        dpg.set_value("status_msg", text)
        red = st.message_is_error and time.monotonic() - st.message_time < ERROR_RED_S
        dpg.configure_item("status_msg", color=(255, 90, 90) if red else (200, 200, 200))
        if dpg.is_item_hovered("status_msg"):
            recent = st.log[-LOG_SHOWN:]
            dpg.set_value("status_log", "\n".join(f"{t}  {'error: ' if e else ''}{m}" for t, m, e in recent))
