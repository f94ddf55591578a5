"""Small helpers shared by the panels."""

from __future__ import annotations

import dearpygui.dearpygui as dpg


def tooltip(item, text: str):
    """Attach a hover tooltip to an item; returns the item, so it can wrap the item's creation."""
    with dpg.tooltip(item):
        dpg.add_text(text, wrap=420)
    return item
