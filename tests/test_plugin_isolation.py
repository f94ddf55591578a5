"""Detector plugins run in worker processes: a plugin that loops, hogs the GIL, leaks, exits, crashes or prints
is stopped at its budget with a clear message, and the host (and the next call) goes on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from studio.engine.plugins import PluginError, PluginManager, run_plugin

GOOD = '''
NAME = "{name}"
PARAMS = {{"k": 1.0}}
import numpy as np
def detect(features, image, params):
    return np.ones((4, 4), np.float32) * params["k"]
'''

BAD_DETECT = {
    "loop": "while True:\n        pass",
    "gil": "import re\n    re.match(r'(a+)+$', 'a' * 40 + 'b')\n    return np.ones((4, 4))",
    "leak": "KEEP.append(np.ones(64 << 20))  # 512 MB a call, never freed\n    return np.ones((4, 4))",
    "huge_mask": "return np.zeros((100000, 100000), np.float32)",  # 40 GB
    "exit": "import os\n    os._exit(7)",
    "segfault": "import ctypes\n    ctypes.string_at(0)",
    "prints": "print('hello on stdout' * 1000)\n    return np.ones((4, 4))",
    "string": "return 'mask'",
    "nan": "return np.full((4, 4), np.nan)",
    "raises": "raise RuntimeError('boom')",
}
BAD_IMPORT = {
    "import_loop": "while True:\n    pass",
    "import_exit": "import sys\nsys.exit(3)",
    "import_raises": "raise ImportError('no such thing')",
}


def _write(folder: Path, name: str, detect_body: str | None = None, top: str = "") -> None:
    body = detect_body or "return np.ones((4, 4))"
    (folder / f"{name}.py").write_text(f"import numpy as np\nKEEP = []\n{top}\nNAME = '{name}'\n"
                                       f"def detect(features, image, params):\n    {body}\n")


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("GANSTUDIO_PLUGIN_MEMORY_MB", "600")
    for name, body in BAD_DETECT.items():
        _write(tmp_path, name, body)
    (tmp_path / "good.py").write_text(GOOD.format(name="good"))
    m = PluginManager(tmp_path, inline=False)
    yield m
    m.close()


IMAGE = np.zeros((8, 8, 3), np.uint8)


def _call(m, name, budget=1.0):
    return run_plugin(m.get(name), {"b8.conv0": np.ones((4, 8, 8), np.float32)}, IMAGE, {"k": 1.0}, 8, budget_s=budget)


@pytest.mark.parametrize("name,expect", [
    ("loop", "time budget"), ("gil", "time budget"), ("huge_mask", "MemoryError|memory budget"),
    ("exit", "exited \\(status 7\\)"), ("segfault", "exited \\(status -11\\)"),
    ("string", "returned str, not an array"),
    ("nan", "NaN"), ("raises", "RuntimeError: boom"),
])
def test_bad_detectors_are_stopped_and_the_next_call_works(manager, name, expect):
    ticks = []
    stop = threading.Event()

    def host_loop():  # the host's own work must keep running while the plugin misbehaves
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)
    t = threading.Thread(target=host_loop)
    t.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(PluginError, match=expect):
            _call(manager, name)
    finally:
        stop.set()
        t.join()
    assert time.perf_counter() - t0 < 4
    gaps = np.diff([t0, *ticks, time.perf_counter()])
    assert gaps.max() < 0.2, f"the host stalled {gaps.max():.2f} s"
    assert _call(manager, "good").mean() == 1.0  # other plugins unaffected


def test_leaking_plugin_is_stopped_at_its_memory_budget(manager):
    messages = []
    for _ in range(4):
        try:
            _call(manager, "leak", budget=5)
        except PluginError as e:
            messages.append(str(e))
    assert messages and "memory budget of 600 MB" in messages[0]
    assert _call(manager, "good").mean() == 1.0


def test_prints_do_not_break_the_pipe(manager):
    assert _call(manager, "prints").shape == (8, 8)


@pytest.mark.parametrize("name,body", list(BAD_IMPORT.items()))
def test_bad_imports_are_contained(tmp_path, name, body, monkeypatch):
    monkeypatch.setattr("studio.engine.plugins.IMPORT_BUDGET_S", 2.0)
    (tmp_path / f"{name}.py").write_text(body + "\n")
    (tmp_path / "good.py").write_text(GOOD.format(name="good"))
    t0 = time.perf_counter()
    m = PluginManager(tmp_path, inline=False)
    try:
        assert time.perf_counter() - t0 < 8
        with pytest.raises(PluginError, match="failed to load"):
            m.get(name)
        assert run_plugin(m.get("good"), {}, IMAGE, {"k": 1.0}, 4).shape == (4, 4)
    finally:
        m.close()


def test_inline_mode_runs_in_process(tmp_path):
    (tmp_path / "good.py").write_text(GOOD.format(name="good"))
    m = PluginManager(tmp_path, inline=True)
    assert m.get("good").worker is None and m.get("good").module is not None
    assert run_plugin(m.get("good"), {}, IMAGE, {"k": 0.5}, 4).mean() == 0.5
