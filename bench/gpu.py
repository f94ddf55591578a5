"""GPU benchmark, one script for a device session: batch-1 latency (fp32; fp16 with the models' conv clamping as
NVlabs runs it; bf16 autocast), the same replayed as a CUDA graph, shared-w sweep images/s, for a StyleGAN2
256 px / 512-channel model and a 1024 px model (channel_base 32768, channel_max 512), and StyleGAN3-T at 256 px;
NVlabs' own code on the same weights when a checkout is given; and the largest difference of our CUDA output
from our CPU fp32 output.  Every figure is a median of repeats after warm-up, with torch.cuda.synchronize.

    python bench/gpu.py [--nvlabs PATH_TO_STYLEGAN3_CHECKOUT] [--repeats 30] [--only sg2-256]
    python bench/gpu.py --device cpu --repeats 2 --only tiny   # smoke test of the script itself, no GPU

Goals on an H100/H200: 256/512 batch 1 <= 4 ms; shared-w sweep >= 5,000 images/s.
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

from studio.engine.edits import EditStack, SpatialTab  # noqa: E402
from studio.engine.network import Generator, GeneratorConfig, SynthesisState  # noqa: E402
from studio.engine.renderer import Renderer  # noqa: E402

SWEEP = 256  # images of the shared-w sweep (one tab, one channel each, + and -)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, repeats: int, device: torch.device) -> float:
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator, lazy modules
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def models(only: str | None) -> dict:
    """name -> (generator factory, why it is measured)."""
    from studio.engine.network_sg3 import CONFIGS, SG3Config
    from studio.engine.network_sg3 import Generator as SG3Generator

    def sg3():
        cfg = SG3Config(z_dim=512, w_dim=512, resolution=256, channel_base=32768, channel_max=512, **CONFIGS["T"])
        G = SG3Generator(cfg).eval().requires_grad_(False)
        with torch.no_grad():
            G.synthesis.design_filters()
        return G

    table = {
        "sg2-256": lambda: Generator(GeneratorConfig(resolution=256, channel_base=16384, channel_max=512,
                                                     conv_clamp=256.0)),
        "sg2-1024": lambda: Generator(GeneratorConfig(resolution=1024, channel_base=32768, channel_max=512,
                                                      conv_clamp=256.0)),
        "sg3t-256": sg3,
        "tiny": lambda: Generator(GeneratorConfig(z_dim=32, w_dim=32, resolution=32, mapping_layers=2,
                                                  channel_base=512, channel_max=64, conv_clamp=256.0)),
    }
    if only:
        return {k: v for k, v in table.items() if k in only.split(",")}
    return {k: v for k, v in table.items() if k != "tiny"}


def synthesis_fn(R: Renderer, ws: torch.Tensor):
    """Every stage once, from a fixed ws, constant noise: the fixed op sequence a CUDA graph can capture."""
    noise = [R.G.synthesis.stage_noise(stage, "const", ws.shape[0], None) for stage in R.stages]

    def run():
        s = SynthesisState(batch=ws.shape[0])
        for stage, n in zip(R.stages, noise, strict=True):
            s = R.G.synthesis.run_stage(stage, s, ws, n)
        return s.img

    return run


def graphed(fn, device: torch.device):
    """fn captured as a CUDA graph; returns the replay (or raises with the reason)."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def bench(name: str, make, device: torch.device, repeats: int, nvlabs: str | None) -> None:
    torch.manual_seed(0)
    G = make().eval().requires_grad_(False)
    cfg = G.cfg
    params = sum(p.numel() for p in G.parameters()) / 1e6
    print(f"\n== {name}: {cfg.resolution}px, {params:.1f}M params, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    cpu_R = Renderer(G)
    stack = EditStack(seed=1, psi=0.7)
    cpu_img = cpu_R.render(stack, use_cache=False).images if cfg.resolution <= 256 or device.type == "cpu" else None
    G = G.to(device)
    R = Renderer(G)
    ws = R.ws_for(stack)[None]
    with torch.no_grad():
        rows = {}
        rows["fp32"] = median_ms(lambda: R.render(stack, use_cache=False), repeats, device)
        if device.type == "cuda":
            R16 = Renderer(G, half=True)
            rows["fp16 (conv clamp 256)"] = median_ms(lambda: R16.render(stack, use_cache=False), repeats, device)

            def bf16():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return R.render(stack, use_cache=False)

            rows["bf16 autocast"] = median_ms(bf16, repeats, device)
            for label, ctx in (("fp32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
                try:
                    fn = synthesis_fn(R, ws)
                    if ctx is not None:
                        inner = fn

                        def fn(inner=inner, ctx=ctx):
                            with torch.autocast("cuda", dtype=ctx):
                                return inner()
                    rows[f"{label} as a CUDA graph"] = median_ms(graphed(fn, device), repeats, device)
                except Exception as e:  # noqa: BLE001 - a capture that fails is reported, the rest goes on
                    print(f"  CUDA graph {label}: not captured ({type(e).__name__}: {str(e)[:120]})")
        for label, ms in rows.items():
            print(f"  batch 1, {label:<26} {ms:8.2f} ms/image  ({rows['fp32'] / ms:.2f}x fp32)")
        if cpu_img is not None:
            diff = float((R.render(stack, use_cache=False).images.float().cpu() - cpu_img).abs().max())
            print(f"  max |ours on {device.type} - ours on the CPU, fp32| = {diff:.2e} (images in [-1, 1])")
        layer = R.default_layer(min(64, cfg.resolution))
        st = R.layers[layer]
        sel = np.zeros((st.resolution, st.resolution), np.float32)
        sel[st.resolution // 2:, st.resolution // 4: 3 * st.resolution // 4] = 1
        stacks = []
        for k in range(SWEEP):
            w = np.zeros(st.channels, np.float32)
            w[(k // 2) % st.channels] = 1.0 if k % 2 == 0 else -1.0
            stacks.append(EditStack(seed=1, psi=0.7, tabs=[SpatialTab("sweep", [layer], sel, {layer: w}, 60.0)]))
        ms = median_ms(lambda: R.render_many(stacks), max(2, repeats // 5), device)
        print(f"  shared-w sweep at {layer}: {SWEEP} images in {ms:.1f} ms = {SWEEP / ms * 1000:,.0f} images/s "
              f"(batch part {R.batch_limit})")
        if nvlabs and hasattr(cfg, "channel_base") and name.startswith("sg3"):
            nv_compare(G, ws, device, repeats, nvlabs, rows["fp32"])


def nv_compare(G, ws: torch.Tensor, device: torch.device, repeats: int, nvlabs: str, ours_ms: float) -> None:
    """NVlabs' StyleGAN3 synthesis on our weights (the same parameter names), same run."""
    try:
        sys.path.insert(0, nvlabs)
        from training.networks_stylegan3 import Generator as NVGenerator

        cfg = G.cfg
        theirs = NVGenerator(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                             img_channels=3, channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                             mapping_kwargs=dict(num_layers=2)).eval().requires_grad_(False).to(device)
        theirs.load_state_dict(G.state_dict())
        with torch.no_grad():
            ref = median_ms(lambda: theirs.synthesis(ws), repeats, device)
            diff = float((theirs.synthesis(ws) - G.synthesis(ws)).abs().max())
        print(f"  NVlabs' synthesis, batch 1 fp32 {ref:8.2f} ms/image: ours {ref / ours_ms:.2f}x theirs "
              f"(max |diff| {diff:.1e})")
    except Exception as e:  # noqa: BLE001 - a missing checkout or custom op build only skips the comparison
        print(f"  NVlabs' code not timed: {type(e).__name__}: {str(e)[:160]}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--only", help="comma-separated: sg2-256, sg2-1024, sg3t-256, tiny")
    ap.add_argument("--nvlabs", help="a checkout of NVlabs/stylegan3 for the reference timings")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured (use --device cpu --only tiny to check the script)")
        return 0
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, make in models(args.only).items():
        bench(name, make, device, args.repeats, args.nvlabs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
