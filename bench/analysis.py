"""Analysis benchmark: ranking 512 channels over 16 seeds, recording 1,000 images' maps into the disk-backed
history, and run-and-modify (detect, then edit) per image against a plain render, measured in one run.

    python bench/analysis.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio import paths  # noqa: E402
from studio.engine.analysis import FeatureHistory, rank_channels  # noqa: E402
from studio.engine.edits import EditStack  # noqa: E402
from studio.engine.engine import Engine  # noqa: E402
from studio.engine.network import Generator, GeneratorConfig  # noqa: E402
from studio.engine.plugins import PluginManager, apply_detectors  # noqa: E402
from studio.engine.renderer import Renderer  # noqa: E402


def main() -> int:
    torch.manual_seed(0)
    big = Renderer(Generator(GeneratorConfig(resolution=256, channel_base=16384, channel_max=512)).eval())
    stacks = [EditStack(seed=s, psi=0.7) for s in range(16)]
    sel = np.zeros((16, 16), np.float32)
    sel[9:12, 5:11] = 1
    t0 = time.perf_counter()
    feats = big.render_many(stacks, capture=("b16.conv0",), until="b16.conv0").features["b16.conv0"].numpy()
    t1 = time.perf_counter()
    for method in ("dot", "cosine", "iou"):
        rank_channels(feats, sel, method)
    t2 = time.perf_counter()
    print(f"rank 512 channels of b16.conv0 over 16 seeds (256px/512ch model): {t2 - t0:.2f} s "
          f"({t1 - t0:.2f} s rendering up to the layer, {(t2 - t1) / 3 * 1000:.1f} ms per ranking method)")

    eng = Engine.open(paths.bundled_model(), tempfile.mkdtemp(), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        layer = "b16.conv0"
        st = eng.renderer.layers[layer]
        hist = FeatureHistory(tmp, layer, (st.channels, st.resolution, st.resolution))
        t0 = time.perf_counter()
        for start in range(0, 1000, 50):
            r = eng.renderer.render_many([EditStack(seed=s) for s in range(start, start + 50)], capture=(layer,),
                                         until=layer)
            for i, m in enumerate(r.features[layer].numpy()):
                hist.append(m, f"seed {start + i}")
        t1 = time.perf_counter()
        size = (Path(tmp) / layer / "maps.f16").stat().st_size
        print(f"record {layer} of 1,000 images into the history: {t1 - t0:.2f} s ({1000 / (t1 - t0):.0f} images/s), "
              f"{size / 1e6:.1f} MB on disk, memory bounded to one image's maps plus the running sums")

    tab = eng.data.load_tab(eng.data.tab_path("mouth_open"))
    isolated, inline = PluginManager(paths.shipped("plugins")), PluginManager(paths.shipped("plugins"), inline=True)
    plain, auto, auto_inline = [], [], []
    for seed in range(30):  # interleaved, so machine noise hits all three alike
        stack = EditStack(seed=seed, psi=0.7, tabs=[tab])
        t0 = time.perf_counter()
        eng.render(EditStack(seed=seed, psi=0.7), use_cache=False)
        plain.append(time.perf_counter() - t0)
        for manager, times in ((isolated, auto), (inline, auto_inline)):
            eng.renderer.clear_cache()
            t0 = time.perf_counter()
            apply_detectors(eng.render, stack, manager)
            times.append(time.perf_counter() - t0)
    isolated.close()
    p, a, i = (statistics.median(x) * 1000 for x in (plain, auto, auto_inline))
    print(f"run-and-modify with mouth_open (bundled model): {a:.1f} ms per image vs {p:.1f} ms for a plain render "
          f"-> {a / p:.2f}x (the second pass resumes from the cache at the tab's layer)")
    print(f"detector in its worker process vs in-process (--inline-plugins): {a:.1f} vs {i:.1f} ms per image, "
          f"+{a - i:.1f} ms per call ({a / i:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
