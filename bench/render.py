"""Render benchmark: full renders, cached re-renders after an edit at each resolution, shared-w batches.

Every figure is a median over repeats, and every cached figure is printed as a ratio to the full render and to
"the stages from L on, timed separately" (running those stages directly, without the cache's bookkeeping),
both measured in the same run.

    python bench/render.py                 # 256 px / 512 channels random weights + the bundled model
    python bench/render.py --quick         # a tiny model, for a smoke test
    python bench/render.py --sg3 [--nvlabs PATH]   # StyleGAN3-T and -R at 256 px with NVlabs' default channels;
                                           # with a checkout of NVlabs/stylegan3 (and scipy), its reference path
                                           # is timed on the same weights in the same run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studio import paths  # noqa: E402
from studio.engine.edits import EditStack, SpatialTab  # noqa: E402
from studio.engine.loaders import load_model  # noqa: E402
from studio.engine.network import Generator, GeneratorConfig, SynthesisState  # noqa: E402
from studio.engine.precision import (  # noqa: E402
    DTYPE_NAMES,
    PREVIEW_ENV,
    PREVIEW_SKIP_LAST_FROM,
    cpu_bf16_native,
    preview_dtype,
    preview_generator,
    preview_stop,
)
from studio.engine.renderer import Renderer  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def edit_tab(R: Renderer, layer: str, value: float) -> SpatialTab:
    st = R.layers[layer]
    sel = np.zeros((st.resolution, st.resolution), np.float32)
    sel[st.resolution // 2:, st.resolution // 4: 3 * st.resolution // 4] = 1
    w = np.zeros(st.channels, np.float32)
    w[: max(1, st.channels // 8)] = 1
    return SpatialTab("bench", [layer], sel, {layer: w}, value=value)


def tail_ms(R: Renderer, start: int, ws: torch.Tensor, repeats: int) -> float:
    """The stages from `start` on, run directly from a prepared state (no cache keys, no deltas)."""
    s = SynthesisState(batch=1)
    with torch.no_grad():
        for stage in R.stages[:start]:
            s = R.G.synthesis.run_stage(stage, s, ws, R.G.synthesis.stage_noise(stage, "const", 1, None))

        def run():
            t = s
            for stage in R.stages[start:]:
                t = R.G.synthesis.run_stage(stage, t, ws, R.G.synthesis.stage_noise(stage, "const", 1, None))

        return median_ms(run, repeats)


def conv_floor_ms(G: Generator, repeats: int) -> float:
    """The machine's floor for this network: the same convolutions (and 2x FIR upsamplings) with fixed,
    precomputed weights, nothing else. The reference code cannot do less work than this."""
    import torch.nn.functional as F

    from studio.engine.network import fir_filter, fir_filter2d

    ops = []
    for stage in G.synthesis.stages:
        layer = G.synthesis.layer(stage)
        if layer is None:
            continue
        w = layer.weight.detach().clone()
        res_in = stage.resolution // 2 if layer.up else stage.resolution
        ops.append((torch.randn(1, w.shape[1], res_in, res_in), w, layer.up))
    f = fir_filter()

    def run():
        with torch.no_grad():
            for x, w, up in ops:
                if up:
                    fir_filter2d(F.conv_transpose2d(x, w.transpose(0, 1), stride=2), f, padding=1, gain=4.0)
                else:
                    F.conv2d(x, w, padding=1)

    return median_ms(run, repeats)


def preview_renderer(G) -> tuple[Renderer | None, str]:
    """The studio's live-preview renderer for G on this CPU (None where the studio shows exact frames only)."""
    dtype = preview_dtype(G, {PREVIEW_ENV: "bf16" if cpu_bf16_native() else "off"})
    if dtype is None:
        return None, "no native bf16 on this CPU: the studio previews nothing (exact frames only)"
    if preview_dtype(G, {}) is None:
        print("(the studio shows this model's exact frames only (precision.preview_dtype); timed here as if it "
              "previewed)")
    return Renderer(preview_generator(G, dtype)), DTYPE_NAMES[dtype]


def fresh_stacks(start: int = 1000):
    """An endless supply of new seeds: a full render is of a new w (nothing kept from the previous one)."""
    seed = start
    while True:
        seed += 1
        yield EditStack(seed=seed, psi=0.7)


def full_ms(R: Renderer, repeats: int) -> float:
    stacks = fresh_stacks()
    return median_ms(lambda: R.render(next(stacks), use_cache=False), repeats)


def preview_lines(R: Renderer, P: Renderer, label: str, stack: EditStack, full: float, repeats: int) -> float:
    """The preview's full render against the exact one; returns its ms."""
    pfull = full_ms(P, repeats)
    exact, preview = R.render(stack, use_cache=False).images, P.render(stack, use_cache=False).images
    diff = (exact - preview).abs()
    print(f"{label} preview, full render     {pfull:8.1f} ms/image  = {full / pfull:.2f}x faster than fp32 (same "
          f"run); |preview - exact| max {float(diff.max()):.3f} ({float(diff.max()) * 127.5:.1f} of 255 levels), "
          f"mean {float(diff.mean()) * 127.5:.2f} levels")
    return pfull


def cached_ms(R: Renderer, stack: EditStack, layer: str, repeats: int, until: str | None = None) -> float:
    """A re-render after an edit at `layer`, resumed from the cache (the image without the edit is cached)."""
    R.render(stack, until=until)  # fill the cache with the unedited image; each edit then resumes at `layer`
    values = iter(np.linspace(10, 80, 10_000))

    def cached():
        out = R.render(stack.copy(tabs=[edit_tab(R, layer, float(next(values)))]), until=until)
        assert R.stages[out.first_stage].name == layer

    return median_ms(cached, repeats)


def bench_model(name: str, G: Generator, repeats: int, batch: int) -> None:
    R = Renderer(G)
    cfg = G.cfg
    print(f"\n== {name}: {cfg.resolution}px, channel_max {cfg.channel_max}, "
          f"{sum(p.numel() for p in G.parameters()) / 1e6:.1f}M params, torch threads {torch.get_num_threads()}")
    P, label = preview_renderer(G)
    stack = EditStack(seed=1, psi=0.7)
    full = full_ms(R, repeats)
    floor = conv_floor_ms(G, repeats)
    print(f"full render (new w), batch 1    {full:8.1f} ms/image  = {full / floor:.2f}x the plain-convolution floor "
          f"({floor:.1f} ms, same run)")
    if P is not None:
        preview_lines(R, P, label, stack, full, repeats)
    else:
        print(f"preview: {label}")
    ws = R.ws_for(stack)[None]
    print("edit at layer      cached ms   x full   stages-from-L ms   cached / stages-from-L"
          + (f"   {label} preview ms  fp32 / preview" if P is not None else ""))
    for res in cfg.block_resolutions[1:]:
        layer = f"b{res}.conv0"
        start = [s.name for s in R.stages].index(layer)
        c = cached_ms(R, stack, layer, repeats)
        t = tail_ms(R, start, ws, repeats)
        line = f"{layer:<16} {c:10.1f} {c / full:8.2f}x {t:14.1f}      {c / t:8.2f}x"
        if P is not None:
            pc = cached_ms(P, stack, layer, repeats)
            line += f"   {pc:14.1f}  {c / pc:8.2f}x"
        print(line)
    if P is not None:
        layer = R.default_layer(min(16, cfg.resolution))
        c, pc = cached_ms(R, stack, layer, repeats), cached_ms(P, stack, layer, repeats)
        print(f"{label} preview, re-render from {layer}: {pc:.1f} ms vs fp32 {c:.1f} ms = {c / pc:.2f}x faster "
              f"(same run)")
        until = preview_stop(G)
        if until is not None:
            ps = cached_ms(P, stack, layer, repeats, until=until)
            print(f"{label} preview without the last block (the studio's, >= {PREVIEW_SKIP_LAST_FROM} px skip "
                  f"models), re-render from {layer}: {ps:.1f} ms = {c / ps:.2f}x faster than fp32 (same run)")
    stacks = [EditStack(seed=1, psi=0.7, tabs=[edit_tab(R, R.default_layer(min(16, cfg.resolution)), v)])
              for v in np.linspace(-80, 80, batch)]
    one_by_one = median_ms(lambda: [R.render(s, use_cache=False) for s in stacks], max(2, repeats // 3))
    bn = median_ms(lambda: R.render_many(stacks), max(2, repeats // 3))
    print(f"shared-w batch of {batch}: {batch / bn * 1000:7.1f} images/s vs one by one {batch / one_by_one * 1000:6.1f}"
          f" images/s  -> {one_by_one / bn:.2f}x")
    mixed = [EditStack(seed=s, psi=0.7) for s in range(min(batch, 8))]
    mixed_one_by_one = median_ms(lambda: [R.render(s, use_cache=False) for s in mixed], max(2, repeats // 3))
    bm = median_ms(lambda: R.render_many(mixed), max(2, repeats // 3))
    print(f"different-w batch of {len(mixed)}: {len(mixed) / bm * 1000:6.1f} images/s (each sample alone)"
          f"  -> {mixed_one_by_one / bm:.2f}x one by one")


def sg3_pair(config: str, resolution: int, nvlabs: str | None):
    """(ours, NVlabs' or None, why not) with the same random weights: NVlabs' default channels for the config
    (T: channel_base 32768, channel_max 512; R: 65536, 1024, 1x1 convs, radial filters)."""
    from studio.engine.network_sg3 import CONFIGS, SG3Config
    from studio.engine.network_sg3 import Generator as SG3Generator

    base, cmax = (32768, 512) if config == "T" else (65536, 1024)
    cfg = SG3Config(z_dim=512, w_dim=512, resolution=resolution, channel_base=base, channel_max=cmax,
                    **CONFIGS[config])
    ours = SG3Generator(cfg).eval().requires_grad_(False)
    theirs, why = None, ""
    if nvlabs:
        try:
            sys.path.insert(0, nvlabs)
            from training.networks_stylegan3 import Generator as NVGenerator

            theirs = NVGenerator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                                 channel_base=base, channel_max=cmax, conv_kernel=CONFIGS[config]["conv_kernel"],
                                 use_radial_filters=CONFIGS[config]["use_radial_filters"],
                                 mapping_kwargs=dict(num_layers=2)).eval().requires_grad_(False)
            ours.load_state_dict(theirs.state_dict())  # the same names: their weights and filters in ours
        except Exception as e:  # noqa: BLE001 - a missing checkout or scipy only skips the comparison
            theirs, why = None, f"{type(e).__name__}: {e}"
    else:
        why = "no --nvlabs checkout given"
    if theirs is None:
        with torch.no_grad():
            ours.synthesis.design_filters()
    return ours, theirs, why


def bench_sg3(name: str, G, theirs, why: str, repeats: int, batch: int) -> None:
    R = Renderer(G)
    cfg = G.cfg
    print(f"\n== {name}: {cfg.resolution}px StyleGAN3-{cfg.architecture}, channel_base {cfg.channel_base}, "
          f"channel_max {cfg.channel_max}, {sum(p.numel() for p in G.parameters()) / 1e6:.1f}M params, "
          f"torch threads {torch.get_num_threads()}")
    stack = EditStack(seed=1, psi=0.7)
    ws = R.ws_for(stack)[None]
    full = full_ms(R, repeats)
    line = f"full render, batch 1            {full:8.1f} ms/image"
    if theirs is not None:
        with torch.no_grad():
            ref = median_ms(lambda: theirs.synthesis(ws), repeats)
            diff = float((theirs.synthesis(ws) - G.synthesis(ws)).abs().max())
        line += (f"  = {ref / full:.2f}x faster than NVlabs' reference path ({ref:.1f} ms, same run; "
                 f"max |diff| {diff:.1e})")
    else:
        line += f"  (NVlabs' reference path not timed: {why})"
    print(line)
    P, label = preview_renderer(G)
    if P is not None:
        preview_lines(R, P, label, stack, full, repeats)
    else:
        print(f"preview: {label}")
    layer = list(R.layers)[len(R.layers) // 2]
    start = [s.name for s in R.stages].index(layer)
    c = cached_ms(R, stack, layer, repeats)
    t = tail_ms(R, start, ws, repeats)
    print(f"edit at {layer} (middle): cached {c:.1f} ms = {c / full:.2f}x full, {c / t:.2f}x the layers from there "
          f"on ({t:.1f} ms)")
    if P is not None:
        pc = cached_ms(P, stack, layer, repeats)
        print(f"{label} preview, re-render from {layer}: {pc:.1f} ms vs fp32 {c:.1f} ms = {c / pc:.2f}x faster "
              f"(same run)")
    stacks = [EditStack(seed=1, psi=0.7, tabs=[edit_tab(R, layer, v)]) for v in np.linspace(-80, 80, batch)]
    b1 = median_ms(lambda: R.render(stacks[0], use_cache=False), repeats)
    bn = median_ms(lambda: R.render_many(stacks), 1)
    print(f"shared-w batch of {batch} (dense: no windows for StyleGAN3; {R.batch_limit} samples per part: "
          f"Renderer.batch_limit): {batch / bn * 1000:6.2f} images/s vs batch 1 {1000 / b1:6.2f} images/s -> "
          f"{b1 * batch / bn:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny model, few repeats (smoke test)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--sg3", action="store_true", help="the StyleGAN3 rows only")
    ap.add_argument("--sg3-resolution", type=int, default=256)
    ap.add_argument("--nvlabs", help="a checkout of NVlabs/stylegan3: time its reference path on the same weights")
    ap.add_argument("--batch", type=int, default=32, help="images in the shared-w batch rows")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.sg3:
        for config in ("T", "R"):
            ours, theirs, why = sg3_pair(config, args.sg3_resolution, args.nvlabs)
            bench_sg3(f"random StyleGAN3-{config}", ours, theirs, why, max(2, args.repeats // 2), args.batch)
        return 0
    if args.quick:
        cfg = GeneratorConfig(z_dim=32, w_dim=32, resolution=32, mapping_layers=2, channel_base=512, channel_max=64)
        bench_model("tiny random", Generator(cfg).eval(), repeats=2, batch=4)
        return 0
    big = GeneratorConfig(resolution=256, channel_base=16384, channel_max=512, conv_clamp=256.0)  # 24.8M params
    bench_model("random 256px / 512 channels (reference: ~350 ms/image)", Generator(big).eval(), args.repeats,
                args.batch)
    bundled = paths.bundled_model()
    if bundled is not None:
        bench_model(f"bundled model {bundled.name}", load_model(bundled).generator, args.repeats * 3,
                    args.batch)
    else:
        from studio.train.gan import PRESETS

        bench_model("bundled model's config (random weights; model not in this checkout)",
                    Generator(GeneratorConfig(**PRESETS["cpu64"].generator)).eval(), args.repeats * 3,
                    args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
