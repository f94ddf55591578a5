"""Plugins panel: the detector plugins found in plugins/ (reloaded when their files change) and the active tab's
detector: which plugin, its parameters, and the mode (off / run / run and modify)."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from ..engine.plugins import DETECTOR_MODES, PluginError


class PluginsPanel:
    def __init__(self, app):
        self.app = app
        self.state = app.state
        self.manager = app.plugins

    def build(self) -> None:
        dpg.add_text("", tag="pl_list", wrap=560)
        dpg.add_separator()
        dpg.add_text("", tag="pl_tab")
        with dpg.group(horizontal=True):
            dpg.add_combo([], tag="pl_plugin", width=180, callback=lambda: self._changed())
            dpg.add_combo(DETECTOR_MODES, tag="pl_mode", default_value="off", width=150,
                          callback=lambda: self._changed())
        dpg.add_group(tag="pl_params")
        dpg.add_text("", tag="pl_doc", wrap=560, color=(160, 160, 160))
        self.refresh()

    def refresh(self) -> None:
        lines = []
        for p in self.manager.plugins.values():
            lines.append(f"{p.name}: {'BROKEN - ' + p.error if p.error else 'ok'}")
        dpg.set_value("pl_list", "\n".join(lines) or f"no plugins in {', '.join(map(str, self.manager.folders))}")
        dpg.configure_item("pl_plugin", items=[p.name for p in self.manager.plugins.values() if not p.error])
        tab = self.state.tab
        dpg.delete_item("pl_params", children_only=True)
        if tab is None:
            dpg.set_value("pl_tab", "add a tab: a detector fills its selection automatically")
            return
        det = tab.detector or {}
        dpg.set_value("pl_tab", f"detector of tab {tab.name!r}")
        dpg.set_value("pl_plugin", det.get("plugin", ""))
        dpg.set_value("pl_mode", det.get("mode", "off"))
        try:
            plugin = self.manager.get(det["plugin"]) if det.get("plugin") else None
        except PluginError as e:
            self.state.say(str(e), error=True)
            plugin = None
        if plugin is None:
            dpg.set_value("pl_doc", "")
            return
        dpg.set_value("pl_doc", plugin.doc)
        given = det.get("params", {})
        for key, default in plugin.params.items():
            dpg.add_input_text(label=key, default_value=str(given.get(key, default)), width=260, parent="pl_params",
                               on_enter=True, user_data=key, callback=lambda s, a, u: self._param(u, a))

    def _changed(self) -> None:
        tab = self.state.tab
        if tab is None:
            return
        name = dpg.get_value("pl_plugin")
        det = dict(tab.detector or {})
        if det.get("plugin") != name:
            det["params"] = {}
        det.update(plugin=name, mode=dpg.get_value("pl_mode"))
        if self.state.set_detector(det if name else None):
            self.state.say(f"the detector now fills the selection of {tab.name!r}; Ctrl+Z brings the painted one back")

    def _param(self, key: str, value: str) -> None:
        tab = self.state.tab
        if tab is not None and tab.detector:
            self.state.set_detector({**tab.detector, "params": {**tab.detector.get("params", {}), key: value}})

    def poll_files(self) -> None:
        """Reload plugins whose files changed (called about once a second)."""
        changed = self.manager.refresh()
        if changed:
            self.state.say(f"reloaded plugin(s): {', '.join(changed)}")
            self.state.touch()
            self.refresh()
