"""Live-scrub benchmark of the studio: the real app under Xvfb drags a spatial tab's slider for 6 s, then for
6 s more while a batch job renders in the background. Prints displayed renders per second and the event loop's
iteration times (median, p99, max): the loop must never wait on the model.

    python bench/gui.py [--model M]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from tests.gui_harness import Xvfb

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="default: the bundled model")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        x = Xvfb()
        try:
            cmd = [sys.executable, "-m", "studio.cli", "gui", "--data", str(Path(tmp) / "data")]
            if args.model:
                cmd += ["--model", args.model]
            r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "DISPLAY": x.display, "GANSTUDIO_BENCH": str(out)},
                               capture_output=True, text=True, timeout=300)
        finally:
            x.close()
        if r.returncode != 0 or not out.exists():
            print(r.stdout, r.stderr)
            return 1
        doc = json.loads(out.read_text())
    print(f"render (worker thread): median {doc['render_ms_median']} ms")
    for phase in ("scrub", "scrub+batch"):
        d = doc[phase]
        print(f"{phase:<12} {d['renders_per_s']:5.1f} renders/s shown   event loop: median {d['loop_ms_median']} ms, "
              f"p99 {d['loop_ms_p99']} ms, max {d['loop_ms_max']} ms over {d['loops']} iterations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
