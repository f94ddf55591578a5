"""Studio benchmark under Xvfb: the CPU an idle studio uses (its process's CPU time over 10 s at rest, after
start-up), then the live scrub: the real app drags a spatial tab's slider for 6 s, then for 6 s more while a batch
job renders in the background. Prints displayed renders per second and the event loop's iteration times (median,
p99, max): the loop must never wait on the model.  Last, an axis-aligned sweep started from the studio's Batch
panel at rest, against the same plan (read from its folder) run in this plain process, as the CLI runs it.

    python bench/gui.py [--model M] [--scrub-only]

Where the studio has a live preview (bf16 on this CPU), the scrub is run a second time with previews off
(GANSTUDIO_PREVIEW=off), in the same run: the ratio is the preview's gain as a user sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


IDLE_SETTLE_S = 8.0
IDLE_MEASURE_S = 10.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(cmd: list[str], env: dict) -> float:
    """Percent of one core the studio uses at rest, measured after it settled."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(IDLE_SETTLE_S)
        if proc.poll() is not None:
            raise RuntimeError(f"the studio exited with {proc.returncode}")
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(IDLE_MEASURE_S)
        return 100 * (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    from tests.gui_harness import Xvfb

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="default: the bundled model")
    ap.add_argument("--scrub-only", action="store_true", help="no idle measurement, no job: the scrub phases only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        x = Xvfb()
        try:
            cmd = [sys.executable, "-m", "studio.cli", "gui", "--data", str(Path(tmp) / "data")]
            if args.model:
                cmd += ["--model", args.model]
            env = {**os.environ, "DISPLAY": x.display}
            if not args.scrub_only:
                idle = idle_cpu(cmd, env)
                print(f"idle studio: {idle:.1f}% of one core (CPU time over {IDLE_MEASURE_S:.0f} s at rest)",
                      flush=True)
            job = {} if not args.scrub_only else {"GANSTUDIO_BENCH_JOB": "0"}
            doc = bench_run(cmd, {**env, **job}, out)
            exact = bench_run(cmd, {**env, "GANSTUDIO_BENCH_JOB": "0", "GANSTUDIO_PREVIEW": "off"},
                              Path(tmp) / "exact.json") if doc["scrub"]["previews"] else None
        finally:
            x.close()
        if doc is None:
            return 1
        if not args.scrub_only:
            folders = [Path(f) for f in doc["job"]["folders"]]  # they live in this temporary folder
            plain = [plain_job(folders[0], args.model) for _ in folders]
            inside = [json.loads((f / "manifest.json").read_text())["seconds"] for f in folders]
    print(f"render (worker thread): median {doc['render_ms_median']} ms")
    for label, run in (("", doc), ("previews off: ", exact)):
        if run is None:
            continue
        for phase in ("scrub", "scrub+batch"):
            d = run[phase]
            print(f"{label}{phase:<12} {d['renders_per_s']:5.1f} renders/s shown ({d['previews']} of {d['renders']} "
                  f"previews), {d['loops_per_s']:5.1f} frames/s; event loop: median {d['loop_ms_median']} ms, "
                  f"p99 {d['loop_ms_p99']} ms, max {d['loop_ms_max']} ms over {d['loops']} iterations")
    if exact is not None:
        gain = doc["scrub"]["renders_per_s"] / max(exact["scrub"]["renders_per_s"], 1e-9)
        print(f"live preview: {gain:.2f}x the renders/s of exact frames while scrubbing (same run)")
    if args.scrub_only:
        return 0
    studio_s, cli_s, n = median(doc["job"]["seconds"]), median([t for t, _ in plain]), plain[0][1]
    print(f"axis sweep of {n} images (median of {len(plain)}): from the studio {studio_s:.2f} s, the same plan in "
          f"a plain process {cli_s:.2f} s: studio/plain {studio_s / cli_s:.2f}x (the job's own rendering and writing "
          f"in the studio {median(inside):.2f} s; the rest is its start and the loop seeing its end)")
    return 0


def bench_run(cmd: list[str], env: dict, out: Path) -> dict | None:
    """One benchmark run of the real app (ScrubBenchmark); its JSON, or None after printing why not."""
    r = subprocess.run(cmd, cwd=ROOT, env={**env, "GANSTUDIO_BENCH": str(out)}, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0 or not out.exists():
        print(r.stdout, r.stderr)
        return None
    return json.loads(out.read_text())


def plain_job(folder: Path, model: str | None) -> tuple[float, int]:
    """The studio's job, re-planned from its folder and run here without a studio (what `ganstudio batch` does)."""
    import tempfile as tf

    from studio import paths
    from studio.engine import jobs
    from studio.engine.engine import Engine

    _, job = jobs.read_plan(folder)
    with tf.TemporaryDirectory() as tmp:
        eng = Engine.open(paths.model_to_open(model), Path(tmp) / "data")
        t0 = time.perf_counter()
        for _ in job.run(eng, Path(tmp) / "out"):
            pass
        return time.perf_counter() - t0, len(job.items)


if __name__ == "__main__":
    raise SystemExit(main())
