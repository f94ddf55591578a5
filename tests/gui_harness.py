"""Run the real studio in a subprocess on its own Xvfb display and drive it with xdotool."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

NEEDS = ("Xvfb", "xdotool")


def require_display_tools() -> None:
    missing = [t for t in NEEDS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"GUI test needs {', '.join(missing)} (apt-get install xvfb xdotool)")


class Xvfb:
    def __init__(self):
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                                     pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(w)
        with os.fdopen(r) as f:
            self.display = f":{f.readline().strip()}"

    def close(self) -> None:
        _kill_group(self.proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


class Studio:
    """The app under test: started with a probe file it refreshes every few frames."""

    def __init__(self, tmp: Path, model: Path, data: Path, *extra: str, env: dict[str, str] | None = None):
        require_display_tools()
        self.x = Xvfb()
        self.probe_path = tmp / "probe.json"
        self.probe_path.unlink(missing_ok=True)  # a probe left by an earlier studio in this folder is not ours
        self.env = {**os.environ, "DISPLAY": self.x.display, "GANSTUDIO_PROBE": str(self.probe_path),
                    "GANSTUDIO_UNDECORATED": "1", **(env or {})}
        self.log = open(tmp / "studio.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "gui", "--model", str(model),
                                      "--data", str(data), *extra], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=Path(__file__).resolve().parent.parent)

    def close(self) -> None:
        _kill_group(self.proc)
        self.x.close()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------------------------------------- probe

    def probe(self) -> dict:
        try:
            return json.loads(self.probe_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def wait(self, pred, timeout: float = 60, what: str = "condition") -> dict:
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the studio exited ({self.proc.returncode}) waiting for {what}")
            p = self.probe()
            if p and pred(p):
                return p
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; last probe: {self.probe()}")

    def settled(self, timeout: float = 60) -> dict:
        """Wait until the newest state's exact frame has been rendered and shown (and a few frames have passed)."""
        p = self.wait(lambda p: p.get("shown") == p.get("version") and p.get("image_mean") is not None
                      and not p.get("preview"), timeout, "render")
        return self.wait(lambda q: q["frame"] >= p["frame"] + 6 and q.get("shown") == q.get("version")
                         and not q.get("preview"), timeout, "frames")

    def image(self) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.open(f"{self.probe_path}.png").convert("RGB")).astype(np.int32)

    def centre(self, item: str) -> tuple[int, int]:
        x0, y0, x1, y1 = self.wait(lambda p: item in p.get("rects", {}), 20, item)["rects"][item]
        return (x0 + x1) // 2, (y0 + y1) // 2

    # -------------------------------------------------------------------------------------------- input

    def xdo(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=20)
        time.sleep(0.15)

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.xdo("mousemove", str(x), str(y))
        self.xdo("mousedown", str(button))  # held as a finger holds it (~0.15 s), not a 1 ms synthetic click
        self.xdo("mouseup", str(button))

    def drag(self, a: tuple[int, int], b: tuple[int, int], button: int = 1) -> None:
        self.xdo("mousemove", str(a[0]), str(a[1]))
        self.xdo("mousedown", str(button))
        for t in (0.33, 0.66, 1.0):
            self.xdo("mousemove", str(int(a[0] + (b[0] - a[0]) * t)), str(int(a[1] + (b[1] - a[1]) * t)))
        self.xdo("mouseup", str(button))

    def type_into(self, item: str, text: str) -> None:
        x0, y0, x1, y1 = self.wait(lambda p: item in p.get("rects", {}), 20, item)["rects"][item]
        self.click(x0 + min(60, (x1 - x0) // 3), (y0 + y1) // 2)  # the text part (input ints have +/- at the right)
        self.xdo("key", "End")
        self.xdo("key", "--repeat", "120", "--delay", "2", "BackSpace")
        self.xdo("type", "--delay", "15", text)
        self.xdo("key", "Return")


def screenshot(app: Studio, path: Path, timeout: float = 20) -> Path:
    """The whole window as the studio draws it (written by the app itself, through its probe)."""
    Path(f"{app.probe_path}.shot").write_text(str(path))
    end = time.time() + timeout
    while time.time() < end and not path.exists():
        time.sleep(0.1)
    time.sleep(0.3)
    return path


def save_png(app: Studio, path: Path, timeout: float = 20) -> Path:
    """Save the shown image from the Generate tab's Save PNG button, as a user would; waits for the file."""
    app.click(*app.centre("tab_generate"))
    app.type_into("save_path", str(path))
    app.click(*app.centre("btn_save_png"))
    app.wait(lambda p: path.is_file(), timeout, "PNG saved")
    return path


def click_until(app: Studio, item: str, pred, what: str, tries: int = 3) -> dict:
    """Click an item until the probe satisfies `pred` (a click that lands while a big model's slow frames are
    resting can be missed, as a hurried human click can); only for clicks that are safe to repeat."""
    for k in range(tries):
        app.click(*app.centre(item))
        try:
            return app.wait(pred, 10, what)
        except AssertionError:
            if k == tries - 1:
                raise
    raise AssertionError("unreachable")
