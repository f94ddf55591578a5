"""Reduced-precision live preview: the synthesis network in bf16 on CPUs that compute it natively (oneDNN with
AVX-512 BF16 or AMX), the exact fp32 path everywhere else.

A preview generator is a copy of the model whose synthesis weights are cast to bf16 once (autocast would cast
them again on every call, which costs most of the gain); the mapping network stays fp32, so a preview and its exact
frame share the same ws.  Previews are for the screen only: what is saved, exported, batched or written into a
recipe comes from the fp32 generator.
"""

from __future__ import annotations

import copy
import os

import torch

from .network import Generator, ReducedWeights, SynthesisLayer

PREVIEW_ENV = "GANSTUDIO_PREVIEW"  # "off": never preview; "bf16": preview in bf16 always (even where emulated)
# Below this many synthesis parameters a preview gains little (bench/render.py: the bundled 1.1M-parameter model
# 1.05-1.2x, its frames take ~5 ms anyway): such models show exact frames only, unless previews are forced
PREVIEW_MIN_PARAMS = 5_000_000
PREVIEW_DTYPE = torch.bfloat16
PREVIEW_SKIP_LAST_FROM = 256  # px: live previews of skip-architecture models this large skip their last block
DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def cpu_bf16_native() -> bool:
    """Whether oneDNN runs bf16 convolutions natively on this CPU (elsewhere bf16 is emulated and slower)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def preview_dtype(G: Generator, environ: dict[str, str] | None = None) -> torch.dtype | None:
    """The dtype G's live previews render in, or None where previews would not be faster: on a GPU (the exact
    frame is fast enough), on a CPU without native bf16 (emulated bf16 is slower), for a small model (it gains
    little) and for StyleGAN3 (its filtered resampling is slower in bf16 on this CPU: bench/render.py --sg3 measured
    0.89x for T and 0.58x for R at 128 px).  GANSTUDIO_PREVIEW=bf16 previews any model on a CPU."""
    choice = (environ if environ is not None else os.environ).get(PREVIEW_ENV, "auto").strip().lower()
    if choice == "off" or G.w_avg.device.type != "cpu":
        return None
    if choice == "bf16":
        return PREVIEW_DTYPE
    params = sum(p.numel() for p in G.synthesis.parameters())
    if cpu_bf16_native() and G.cfg.family == "stylegan2" and params >= PREVIEW_MIN_PARAMS:
        return PREVIEW_DTYPE
    return None


def preview_generator(G: Generator, dtype: torch.dtype = PREVIEW_DTYPE) -> Generator:
    """A copy of G for live previews.  StyleGAN2: every modulated conv gets its kernel in `dtype`
    (network.ReducedWeights); the mapping, the affines and the RGB path stay fp32.  StyleGAN3: every layer
    after the Fourier input is cast to `dtype`, and the ws it reads with it."""
    P = copy.deepcopy(G).eval().requires_grad_(False)
    layers = [m for m in P.synthesis.modules() if isinstance(m, SynthesisLayer)]
    if layers:
        for layer in layers:
            layer.reduced = ReducedWeights.of(layer.weight, dtype)
    else:
        for name in P.synthesis.layer_names:
            getattr(P.synthesis, name).to(dtype)
        P.synthesis.w_dtype = dtype
    return P


def preview_stop(G: Generator, capture: tuple[str, ...] = ()) -> str | None:
    """The stage a preview stops after: for a skip-architecture StyleGAN2 of PREVIEW_SKIP_LAST_FROM px or more, the
    last block but one's torgb (the last block is a third to a half of the work), unless a layer to capture comes
    after it; otherwise None (the whole network)."""
    cfg = G.cfg
    if cfg.family != "stylegan2" or cfg.architecture != "skip" or cfg.resolution < PREVIEW_SKIP_LAST_FROM:
        return None
    names = [stage.name for stage in G.synthesis.stages]
    until = f"b{cfg.resolution // 2}.torgb"
    if any(names.index(name) > names.index(until) for name in capture):
        return None
    return until
