"""The README's pictures from the real studio on the bundled model under Xvfb.

    python scripts/screenshot.py            # docs/screenshot.png: the Spatial panel with mouth_open switched on
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from PIL import ImageGrab

    from studio import paths
    from tests.gui_harness import Studio

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
    with tempfile.TemporaryDirectory() as tmp:
        with Studio(Path(tmp), paths.bundled_model(), Path(tmp) / "data", "--tab", "mouth_open") as app:
            app.settled()
            app.click(*app.centre("tab_spatial"))
            app.settled()
            ImageGrab.grab(xdisplay=app.x.display).crop((0, 0, 1180, 700)).save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
