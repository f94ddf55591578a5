"""Batch-job benchmark: images/s of each job, and the axis-aligned sweep of every channel at the 16x16 layer
against rendering the same images one by one from scratch, measured in the same run.

    python bench/jobs.py [--model M]
    python bench/jobs.py --ray [--model M]   # in-process vs a local Ray cluster of 1 and 2 workers
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio import paths  # noqa: E402
from studio.engine import jobs  # noqa: E402
from studio.engine.edits import Direction, EditStack, SpatialTab  # noqa: E402
from studio.engine.engine import Engine  # noqa: E402
from studio.engine.renderer import Renderer  # noqa: E402

ROUNDS = 3


@contextmanager
def dense_batches():
    """Jobs render densely (no windowing) inside: the baseline that shows what windowing adds."""
    original = Renderer.__init__

    def dense_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.windowed = False

    Renderer.__init__ = dense_init
    try:
        yield
    finally:
        Renderer.__init__ = original


def run_job(engine: Engine, job: jobs.Job, out: Path, backend=None) -> float:
    folder = None
    for p in job.run(engine, out, backend=backend):
        folder = p.folder
    return json.loads((folder / "manifest.json").read_text())["images_per_second"]


def ray_bench(eng: Engine, out: Path) -> None:
    """images/s in-process and on a local Ray cluster with 1 and 2 workers (same job, same files), the cluster's
    start-up, and the per-image overhead (seconds per image on Ray with 1 worker minus in-process)."""
    from studio.engine import distributed

    job = jobs.new_latents(EditStack(seed=0, psi=0.7), 256, seed=0)  # 8 chunks of 32: per-sample w, no sharing
    seconds, _ = distributed.connect(distributed.LOCAL, 2)
    print(f"local Ray cluster of 2 CPUs started in {seconds:.1f} s")
    configs = {"in-process": (0, None), "ray, 1 worker": (1, None), "ray, 2 workers": (2, None),
               "ray, 2 workers x 1 thread": (2, 1)}  # the driver's thread count each (same files), or one
    rates: dict[str, list[float]] = {name: [] for name in configs}
    starts = []
    try:
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            run_job(eng, jobs.new_latents(EditStack(seed=0, psi=0.7), 1, seed=0), out, distributed.ray_backend(eng, 1))
            starts.append(time.perf_counter() - t0)  # an actor's start and model load, and one image
            for name, (workers, threads) in configs.items():
                backend = distributed.ray_backend(eng, workers, threads=threads) if workers else None
                t0 = time.perf_counter()
                run_job(eng, job, out, backend)  # (actor start and model load included)
                rates[name].append(len(job.items) / (time.perf_counter() - t0))
    finally:
        distributed.shutdown()
    base = float(np.median(rates["in-process"]))
    print(f"new latents, {len(job.items)} images (PNG writing included), medians of {ROUNDS} rounds:")
    for name, r in rates.items():
        m = float(np.median(r))
        print(f"  {name:<26} {m:7.1f} images/s  ({m / base:.2f}x in-process)")
    one = float(np.median(rates["ray, 1 worker"]))
    print(f"  per-image overhead on Ray (1 worker vs in-process): {1000 * (1 / one - 1 / base):.1f} ms, of which an "
          f"actor's start and model load (a 1-image job) {float(np.median(starts)):.2f} s per job")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="default: the bundled model")
    ap.add_argument("--ray", action="store_true", help="in-process against a local Ray cluster")
    args = ap.parse_args()
    model = args.model or paths.bundled_model()
    if model is None:
        print("no bundled model here: pass --model")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        eng = Engine.open(model, out / "data")
        if args.ray:
            ray_bench(eng, out)
            return 0
        layer = eng.renderer.default_layer(16)
        st = eng.renderer.layers[layer]
        sel = np.zeros((16, 16), np.float32)
        sel[9:12, 5:11] = 1
        w = np.zeros(st.channels, np.float32)
        w[:4] = 1
        tab = SpatialTab("mouth", [layer], sel, {layer: w}, value=60)
        stack = EditStack(seed=7, psi=0.7, tabs=[tab])
        print(f"model {Path(model).name}, {eng.config.resolution}px, sweep layer {layer} ({st.channels} channels)")

        sweep = jobs.axis_aligned_sweep(stack, 0)
        whole = jobs.axis_aligned_sweep(stack.copy(tabs=[replace(tab, selection=np.ones_like(sel))]), 0)
        times: dict[str, list[float]] = {"job": [], "dense": [], "whole": [], "single": []}
        for _ in range(ROUNDS):  # interleaved rounds: this machine's speed drifts, so ratios are per round
            t0 = time.perf_counter()
            rate = run_job(eng, sweep, out)
            times["job"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_job(eng, whole, out)
            times["whole"].append(time.perf_counter() - t0)
            with dense_batches():
                t0 = time.perf_counter()
                run_job(eng, sweep, out)
                times["dense"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for item in sweep.items:  # the same images, one by one, from scratch (no cache, no batching)
                eng.renderer.render(item.stack, use_cache=False).uint8()
            times["single"].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        ratio = {k: float(np.median(np.array(times["single"]) / np.array(v))) for k, v in times.items()}
        n = len(sweep.items)
        print(f"axis sweep of {st.channels} channels, {n} images, medians of {ROUNDS} interleaved rounds:")
        print(f"  one by one from scratch (render only)      {med['single']:.2f} s  ({n / med['single']:.0f} images/s)")
        print(f"  job, 3x6 selection (with PNG writing)      {med['job']:.2f} s  ({rate} images/s) "
              f"-> {ratio['job']:.2f}x faster")
        print(f"  job, batches rendered densely              {med['dense']:.2f} s -> {ratio['dense']:.2f}x")
        print(f"  job, whole-image selection                 {med['whole']:.2f} s -> {ratio['whole']:.2f}x")

        dirs = [Direction("a", np.random.default_rng(0).normal(size=eng.config.w_dim).astype(np.float32), 1.5),
                Direction("b", np.random.default_rng(1).normal(size=eng.config.w_dim).astype(np.float32), -1.0)]
        s2 = stack.copy(directions=dirs)
        t2 = SpatialTab("other", [layer], sel, {layer: np.roll(w, 8)}, value=-50)
        plans = {
            "new latents (64)": jobs.new_latents(stack, 64, seed=0),
            "attribute spectrum (32)": jobs.attribute_spectrum(s2, 32, slide_past_zero=True),
            "attribute combinatoric k=5": jobs.attribute_combinatoric(s2, 5),
            "fmap combinatoric k=6, 2 tabs": jobs.fmap_combinatoric([stack.copy(tabs=[tab, t2])], 6),
        }
        for name, job in plans.items():
            print(f"{name:<32} {run_job(eng, job, out):8.1f} images/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
