"""Write NVlabs-format network pickles from our Generator, for loader tests of layouts the fixture lacks.

Mirrors what stylegan2-ada-pytorch pickles: persistent objects `_reconstruct_persistent_obj(meta)` holding each
module's __dict__ (parameters, buffers, submodules, init kwargs as EasyDicts, numpy float64 attributes).
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import torch

from studio.engine.network import Generator


@contextmanager
def fake_modules(modules: dict[str, types.ModuleType]):
    """Register modules (and their parent packages) in sys.modules for the duration, then restore what was there."""
    names = {n for full in modules for n in [".".join(full.split(".")[:i + 1]) for i in range(full.count(".") + 1)]}
    saved = {k: sys.modules.get(k) for k in names}
    sys.modules.update({n: types.ModuleType(n) for n in names - set(modules)})
    sys.modules.update(modules)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@contextmanager
def fake_nvlabs_modules():
    """Temporarily register `torch_utils.persistence` and `dnnlib.util` so pickle can name their globals."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
        raise AssertionError("never called by the safe loader")

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__ = util.__name__
    EasyDict.__qualname__ = "EasyDict"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = EasyDict
    with fake_modules({"torch_utils.persistence": persistence, "dnnlib.util": util}):
        yield persistence, util


class _Persistent:
    def __init__(self, fn, class_name, state):
        self.fn, self.meta = fn, {"type": "class", "version": 6, "module_src": "raise SystemExit('never run')",
                                  "class_name": class_name, "state": state}

    def __reduce__(self):
        return self.fn, (self.meta,)


def _record(module: torch.nn.Module, fn, class_name: str, extra: dict | None = None) -> _Persistent:
    state = {
        "training": False,
        "_parameters": OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": OrderedDict((k, v) for k, v in module._buffers.items()),
        "_modules": OrderedDict(),
    }
    for name, sub in module._modules.items():
        state["_modules"][name] = _record(sub, fn, type(sub).__name__)
    for attr in ("conv_clamp", "weight_gain", "bias_gain"):
        if hasattr(module, attr):
            v = getattr(module, attr)
            state[attr] = np.float64(v) if isinstance(v, float) and attr != "conv_clamp" else v
    state.update(extra or {})
    return _Persistent(fn, class_name, state)


def nvlabs_pickle(G: Generator, flat_kwargs: bool = False) -> bytes:
    """Pickle `G` the way stylegan2-ada-pytorch (nested kwargs) or stylegan3's StyleGAN2 (flat) does."""
    cfg = G.cfg
    with fake_nvlabs_modules() as (persistence, util):
        syn = util.EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=0,
                            conv_clamp=cfg.conv_clamp, architecture=cfg.architecture)
        kwargs = util.EasyDict(z_dim=cfg.z_dim, w_dim=cfg.w_dim, c_dim=cfg.c_dim, img_resolution=cfg.resolution,
                               img_channels=cfg.img_channels,
                               mapping_kwargs=util.EasyDict(num_layers=cfg.mapping_layers))
        if flat_kwargs:
            kwargs.update(syn)
        else:
            kwargs["synthesis_kwargs"] = syn
        rec = _record(G, persistence._reconstruct_persistent_obj, "Generator",
                      {"_init_args": (), "_init_kwargs": kwargs})
        snapshot = {"training_set_kwargs": None, "G": rec, "D": None, "G_ema": rec, "augment_pipe": None}
        return pickle.dumps(snapshot, protocol=4)
