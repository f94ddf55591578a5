"""StyleGAN3 checkpoints: the config from an NVlabs stylegan3 pickle's records, checked against what is stored.

The generator's init kwargs give the hyper-parameters; `SG3Config.layer_plan` derives every layer's geometry from
them, and each layer's stored attributes (sizes, sampling rates, cutoffs, filter taps, padding, channels, clamp)
must agree with that plan, so a file whose layers were built differently is named, not silently mis-rendered.
The filters themselves are the file's buffers.  Nothing from the file runs.
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from .checkpoint import ModelLoadError, attr, flatten, number
from .configs import sg3_config_from_dict
from .network_sg3 import LayerPlan, SG3Config
from .safe_pickle import PersistentRecord

TRAINING_ONLY_KWARGS = {"magnitude_ema_beta", "num_fp16_res", "w_avg_beta"}  # no effect on the output
SYNTHESIS_KWARGS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                    "last_stopband_rel", "margin_size", "output_scale", "conv_kernel", "filter_size",
                    "lrelu_upsampling", "use_radial_filters", "conv_clamp")
STORED_INTS = {"in_channels": "in_channels", "out_channels": "out_channels", "in_sampling_rate": "in_rate",
               "out_sampling_rate": "out_rate", "up_factor": "up_factor", "down_factor": "down_factor",
               "up_taps": "up_taps", "down_taps": "down_taps", "conv_kernel": "conv_kernel"}
STORED_FLOATS = {"in_cutoff": "in_cutoff", "out_cutoff": "out_cutoff", "in_half_width": "in_half_width",
                 "out_half_width": "out_half_width"}


def sg3_render_bytes(cfg: SG3Config) -> int:
    """Bytes of one batch-1 render with its stage cache: each layer's map (kept), and its largest temporary,
    the up-sampled map the leaky ReLU runs on."""
    plan = cfg.layer_plan()
    kept = plan[0].in_channels * plan[0].in_size**2  # the Fourier-feature input
    biggest = 0
    for p in plan:
        kept += p.out_channels * p.out_size**2
        tmp = p.out_channels * ((p.in_size + p.conv_kernel - 1) * p.up_factor + sum(p.padding[:2])) ** 2
        biggest = max(biggest, tmp, p.out_channels * p.in_channels * p.conv_kernel**2)
    return 4 * (kept + 3 * biggest)


def _int(v: object, what: str) -> int:
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelLoadError(f"{what} is not an integer ({type(v).__name__})")
    return v


def _square(v: object, what: str) -> int:
    """A size stored as an int or as NVlabs' [width, height] numpy array; only square maps are supported."""
    values = [v] if isinstance(v, (int, np.integer)) else list(np.asarray(v).reshape(-1)) if isinstance(
        v, np.ndarray) else None
    if not values or len(values) > 2 or len({_int(x, what) for x in values}) != 1:
        raise ModelLoadError(f"{what} {v!r} is not a square size")
    return _int(values[0], what)


def sg3_config(rec: PersistentRecord, mapping: PersistentRecord, synth: PersistentRecord) -> SG3Config:
    """The hyper-parameters of an NVlabs StyleGAN3 Generator record (its init kwargs, NVlabs' defaults else)."""
    kw = dict(rec.init_kwargs)
    mapping_kw = kw.pop("mapping_kwargs", {}) or {}
    if not isinstance(mapping_kw, dict):
        raise ModelLoadError("mapping_kwargs is not a dict")
    known = {"z_dim", "w_dim", "c_dim", "img_resolution", "img_channels", *SYNTHESIS_KWARGS, *TRAINING_ONLY_KWARGS}
    unknown = sorted(set(kw) - known) + sorted(set(mapping_kw) - {"num_layers", "lr_multiplier", "w_avg_beta"})
    if unknown:
        raise ModelLoadError(f"the StyleGAN3 generator has init arguments this loader does not know: {unknown[:6]}")
    d: dict = {k: kw[k] for k in SYNTHESIS_KWARGS if k in kw}
    for ours, theirs in (("z_dim", "z_dim"), ("w_dim", "w_dim"), ("c_dim", "c_dim"),
                         ("resolution", "img_resolution"), ("img_channels", "img_channels")):
        if theirs not in kw:
            raise ModelLoadError(f"the StyleGAN3 generator's init arguments lack {theirs}")
        d[ours] = kw[theirs]
    if "num_layers" in mapping_kw:
        d["mapping_layers"] = mapping_kw["num_layers"]
    fc0 = mapping.modules.get("fc0")
    if isinstance(fc0, PersistentRecord):
        d["mapping_lr_mul"] = number(attr(fc0, "bias_gain", mapping_kw.get("lr_multiplier", 0.01)),
                                     "mapping lr multiplier")
    d = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
    for k in ("first_cutoff", "first_stopband", "last_stopband_rel", "output_scale", "mapping_lr_mul"):
        if isinstance(d.get(k), int) and not isinstance(d.get(k), bool):
            d[k] = float(d[k])
    return sg3_config_from_dict(d)


def check_against_plan(cfg: SG3Config, synth: PersistentRecord) -> list[LayerPlan]:
    """Every stored layer's attributes equal the plan's (names, sizes, rates, cutoffs, taps, padding, clamp)."""
    plan = cfg.layer_plan()
    names = [p.name for p in plan]
    stored_names = [n for n in synth.modules if n != "input"]
    if stored_names != names:
        raise ModelLoadError(f"the synthesis layers are {stored_names[:4]}...; the config implies {names[:4]}...")
    for p in plan:
        layer = synth.modules[p.name]
        if not isinstance(layer, PersistentRecord):
            raise ModelLoadError(f"{p.name} is not a network layer")
        for key, ours in STORED_INTS.items():
            if key in layer.state and _int(layer.state[key], f"{p.name}.{key}") != getattr(p, ours):
                raise ModelLoadError(f"{p.name}: stored {key} {layer.state[key]!r}, the config implies "
                                     f"{getattr(p, ours)}")
        for key, ours in STORED_FLOATS.items():
            if key in layer.state and not math.isclose(number(layer.state[key], f"{p.name}.{key}"),
                                                        getattr(p, ours), rel_tol=1e-9, abs_tol=1e-12):
                raise ModelLoadError(f"{p.name}: stored {key} {layer.state[key]!r}, the config implies "
                                     f"{getattr(p, ours)}")
        for key, ours in (("in_size", p.in_size), ("out_size", p.out_size)):
            if key in layer.state and _square(layer.state[key], f"{p.name}.{key}") != ours:
                raise ModelLoadError(f"{p.name}: stored {key} {layer.state[key]!r}, the config implies {ours}")
        padding = layer.state.get("padding")
        if padding is not None and (not isinstance(padding, (list, tuple)) or
                                    [_int(v, f"{p.name}.padding") for v in padding] != list(p.padding)):
            raise ModelLoadError(f"{p.name}: stored padding {padding!r}, the config implies {list(p.padding)}")
        if bool(layer.state.get("is_torgb", p.is_torgb)) != p.is_torgb or bool(
                layer.state.get("down_radial", p.down_radial)) != p.down_radial:
            raise ModelLoadError(f"{p.name}: stored ToRGB / radial-filter flags differ from the config's")
        clamp = layer.state.get("conv_clamp", cfg.conv_clamp)
        if (clamp is None) != (cfg.conv_clamp is None) or (
                clamp is not None and number(clamp, f"{p.name}.conv_clamp") != cfg.conv_clamp):
            raise ModelLoadError(f"{p.name}: conv_clamp {clamp!r} differs from the config's {cfg.conv_clamp}")
    return plan


def read_sg3(rec: PersistentRecord, mapping: PersistentRecord, synth: PersistentRecord
             ) -> tuple[SG3Config, dict[str, Tensor]]:
    """(config, NVlabs-named state dict) of a StyleGAN3 generator record."""
    cfg = sg3_config(rec, mapping, synth)
    first = check_against_plan(cfg, synth)[0]  # the Fourier-feature input is the first layer's input
    inp = synth.modules.get("input")
    if not isinstance(inp, PersistentRecord):
        raise ModelLoadError("the synthesis network has no input layer")
    size, rate, bandwidth = first.in_size, first.in_rate, first.in_cutoff
    if "size" in inp.state and _square(inp.state["size"], "input.size") != size or (
            "sampling_rate" in inp.state and number(inp.state["sampling_rate"], "input.sampling_rate") != rate) or (
            "bandwidth" in inp.state and not math.isclose(number(inp.state["bandwidth"], "input.bandwidth"),
                                                          bandwidth, rel_tol=1e-9)):
        raise ModelLoadError(f"the input layer's size / rate / bandwidth differ from the config's "
                             f"({size}, {rate}, {bandwidth:g})")
    for key, ours in (("num_layers", cfg.num_layers), ("num_critical", cfg.num_critical),
                      ("margin_size", cfg.margin_size)):
        if key in synth.state and _int(synth.state[key], f"synthesis.{key}") != ours:
            raise ModelLoadError(f"synthesis {key} is {synth.state[key]!r}, the config implies {ours}")
    if "output_scale" in synth.state and number(synth.state["output_scale"], "output_scale") != cfg.output_scale:
        raise ModelLoadError(f"synthesis output_scale {synth.state['output_scale']!r} differs from the config's")
    return cfg, flatten(rec)
