"""TensorFlow-era StyleGAN2 pickles: (G, D, Gs) of `dnnlib.tflib.network.Network` states, read as plain data.

The safe interpreter turns each Network into a `TFNetworkRecord` whose state holds `static_kwargs`, `components`
(mapping, synthesis) and `variables` = [(name, numpy array)].  `build_module_src` is a string of Python that the
stock loader would execute: here it is never even looked at.  The variables map onto network.py's names as
NVlabs' `legacy.py` maps them (TF layouts: dense [in, out]; conv [kh, kw, in, out], `Conv0_up` and `Skip`
flipped in both spatial axes; `mod_bias` is the affine bias minus 1; `ToRGB_lod{n}` names mean the orig
architecture, whose only used ToRGB is the last).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .checkpoint import ModelLoadError, channel_layout
from .configs import config_from_dict
from .network import Generator, GeneratorConfig, fir_filter
from .safe_pickle import TFNetworkRecord

KNOWN_STATIC_KWARGS = {
    "latent_size", "label_size", "dlatent_size", "resolution", "num_channels", "fmap_base", "fmap_max",
    "num_fp16_res", "conv_clamp", "architecture", "resample_kernel", "use_noise", "nonlinearity", "mapping_layers",
    "label_fmaps", "mapping_fmaps", "mapping_nonlinearity", "mapping_lrmul", "w_avg_beta",
    # used only while training or building the TF graph:
    "truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning", "fused_modconv",
}
REQUIRED_VALUES = {"resample_kernel": [1, 3, 3, 1], "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu",
                   "use_noise": True}
TF_ARCHITECTURES = ("skip", "orig", "resnet")


def find_gs(data: object) -> TFNetworkRecord:
    """The generator's moving average `Gs` of a (G, D, Gs) tuple (or a lone Network)."""
    nets = [x for x in data if isinstance(x, TFNetworkRecord)] if isinstance(data, tuple) else [data]
    if not nets or not all(isinstance(n, TFNetworkRecord) for n in nets):
        raise ModelLoadError("not a TensorFlow network pickle")
    named = [n for n in nets if n.state.get("name") == "Gs"]
    return named[0] if named else nets[-1]


def _component(net: TFNetworkRecord, name: str) -> TFNetworkRecord:
    comp = net.state.get("components", {}).get(name) if isinstance(net.state.get("components"), dict) else None
    if not isinstance(comp, TFNetworkRecord):
        raise ModelLoadError(f"the TensorFlow generator has no {name} network")
    return comp


def collect_variables(net: TFNetworkRecord, prefix: str = "", depth: int = 0) -> dict[str, np.ndarray]:
    """Every variable of the network and its components, named `component/.../variable`."""
    if depth > 8:
        raise ModelLoadError("TensorFlow components nested too deeply")
    out: dict[str, np.ndarray] = {}
    variables = net.state.get("variables", [])
    if not isinstance(variables, (list, tuple)):
        raise ModelLoadError(f"{prefix or 'Gs'}: variables is not a list")
    for entry in variables:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], (np.ndarray, np.generic))):
            raise ModelLoadError(f"{prefix or 'Gs'}: a variable that is not (name, array)")
        out[prefix + entry[0]] = np.asarray(entry[1])
    components = net.state.get("components", {})
    if not isinstance(components, dict):
        raise ModelLoadError(f"{prefix or 'Gs'}: components is not a dict")
    for name, comp in components.items():
        if not isinstance(name, str) or not isinstance(comp, TFNetworkRecord):
            raise ModelLoadError(f"{prefix or 'Gs'}: component {name!r} is not a network")
        out.update(collect_variables(comp, f"{prefix}{name}/", depth + 1))
    return out


def static_kwargs(gs: TFNetworkRecord) -> dict:
    """The build arguments, checked: unknown ones and values this generator cannot honour are refused."""
    kw = gs.state.get("static_kwargs", {})
    if not isinstance(kw, dict):
        raise ModelLoadError("static_kwargs is not a dict")
    unknown = sorted(str(k) for k in set(kw) - KNOWN_STATIC_KWARGS)
    if unknown:
        raise ModelLoadError(f"unknown TensorFlow build arguments {unknown[:6]} (a StyleGAN2 variant this loader "
                             "does not know)")
    for key, needed in REQUIRED_VALUES.items():
        if key in kw and kw[key] is not None and (list(kw[key]) if key == "resample_kernel" else kw[key]) != needed:
            raise ModelLoadError(f"{key}={kw[key]!r} is not supported (only {needed!r})")
    return kw


def read_tf(data: object) -> tuple[GeneratorConfig, dict[str, Tensor], list[str]]:
    """(config, network.py state dict, notes) of a TensorFlow StyleGAN2 pickle."""
    gs = find_gs(data)
    version = gs.state.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 4:
        raise ModelLoadError(f"TensorFlow network pickle version {version!r}; version 4 or later is read")
    func = gs.state.get("build_func_name")
    synth_func = _component(gs, "synthesis").state.get("build_func_name")
    if func == "G_style" or synth_func == "G_synthesis":
        raise ModelLoadError(f"a StyleGAN (version 1) generator ({func} / {synth_func}): GAN Studio reads "
                             "StyleGAN2 and StyleGAN3 generators")
    if func not in (None, "G_main"):
        raise ModelLoadError(f"a TensorFlow network built by {func!r}, not the StyleGAN2 generator G_main")
    kw = static_kwargs(gs)
    tf = collect_variables(gs)
    if "mapping/LabelConcat/weight" in tf:
        raise ModelLoadError("a conditional generator of the original StyleGAN2 code (LabelConcat): only "
                             "stylegan2-ada's LabelEmbed conditioning is read")
    arch = kw.get("architecture") or "skip"
    blocks = [int(m.group(1)) for n in tf if (m := re.fullmatch(r"synthesis/(\d+)x\1/Conv1?/weight", n))]
    resolution = max(blocks, default=4)
    for name in list(tf):
        m = re.fullmatch(r"synthesis/ToRGB_lod(\d+)/(.*)", name)
        if m:
            r = resolution // 2 ** min(int(m.group(1)), 16)
            tf[f"synthesis/{r}x{r}/ToRGB/{m.group(2)}"] = tf[name]
            arch = "orig"
    if arch not in TF_ARCHITECTURES:
        raise ModelLoadError(f"architecture {arch!r} is not one of {TF_ARCHITECTURES}")
    cfg = _config(kw, tf, arch)
    state = _state(cfg, tf)
    notes = [f"Gs from a TensorFlow StyleGAN2 pickle; {arch}, {cfg.resolution}px (its build code was not run)"]
    return cfg, state, notes


def _config(kw: dict, tf: dict[str, np.ndarray], arch: str) -> GeneratorConfig:
    def shape(name: str) -> tuple[int, ...]:
        if name not in tf:
            raise ModelLoadError(f"the TensorFlow generator has no variable {name}")
        return tf[name].shape

    blocks = sorted(int(m.group(1)) for n in tf if (m := re.fullmatch(r"synthesis/(\d+)x\1/Conv1?/weight", n)))
    if not blocks or blocks[0] != 4:
        raise ModelLoadError("no synthesis/4x4/Conv layer: not a StyleGAN2 synthesis network")
    resolution = blocks[-1]
    channels = {4: shape("synthesis/4x4/Conv/weight")[3]}
    channels.update({r: shape(f"synthesis/{r}x{r}/Conv1/weight")[3] for r in blocks[1:]})
    base, cmax = channel_layout(channels, resolution)
    dense = sorted(int(m.group(1)) for n in tf if (m := re.fullmatch(r"mapping/Dense(\d+)/weight", n)))
    if not dense:
        raise ModelLoadError("no mapping/Dense0 layer")
    embed = shape("mapping/LabelEmbed/weight")[1] if "mapping/LabelEmbed/weight" in tf else 0
    c_dim = shape("mapping/LabelEmbed/weight")[0] if embed else 0
    clamp = kw.get("conv_clamp")
    return config_from_dict(dict(
        z_dim=shape("mapping/Dense0/weight")[0] - embed, w_dim=shape(f"mapping/Dense{dense[-1]}/weight")[1],
        c_dim=c_dim, resolution=resolution, img_channels=shape(f"synthesis/{resolution}x{resolution}/ToRGB/bias")[0],
        mapping_layers=len(dense), mapping_lr_mul=float(kw.get("mapping_lrmul", 0.01)),
        mapping_hidden=shape("mapping/Dense0/weight")[1] if len(dense) > 1 else None,
        embed_features=embed or None, channel_base=base, channel_max=cmax, architecture=arch,
        conv_clamp=float(clamp) if clamp is not None else None))


def _conv(a: np.ndarray, flip: bool = False) -> np.ndarray:
    """TF conv weight [kh, kw, in, out] -> [out, in, kh, kw] (flipped for TF's transposed/up-sampling convs)."""
    return (a[::-1, ::-1] if flip else a).transpose(3, 2, 0, 1)


def _state(cfg: GeneratorConfig, tf: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """network.py's state dict, each tensor from its TF variable (the rule per name: see the module docstring)."""
    def conv_layer(prefix: str, src: str, noise: int | None, flip: bool = False) -> dict[str, Callable]:
        rules = {
            f"{prefix}.weight": lambda: _conv(tf[f"{src}/weight"], flip),
            f"{prefix}.bias": lambda: tf[f"{src}/bias"],
            f"{prefix}.affine.weight": lambda: tf[f"{src}/mod_weight"].T,
            f"{prefix}.affine.bias": lambda: tf[f"{src}/mod_bias"] + 1,
        }
        if noise is not None:
            rules[f"{prefix}.noise_const"] = lambda: tf[f"synthesis/noise{noise}"][0, 0]
            rules[f"{prefix}.noise_strength"] = lambda: tf[f"{src}/noise_strength"]
            rules[f"{prefix}.resample_filter"] = fir_filter
        return rules

    rules: dict[str, Callable] = {"mapping.w_avg": lambda: tf["dlatent_avg"]}
    for i in range(cfg.mapping_layers):
        rules[f"mapping.fc{i}.weight"] = lambda i=i: tf[f"mapping/Dense{i}/weight"].T
        rules[f"mapping.fc{i}.bias"] = lambda i=i: tf[f"mapping/Dense{i}/bias"]
    if cfg.c_dim:
        rules["mapping.embed.weight"] = lambda: tf["mapping/LabelEmbed/weight"].T
        rules["mapping.embed.bias"] = lambda: tf["mapping/LabelEmbed/bias"]
    for r in cfg.block_resolutions:
        k = int(np.log2(r))
        b = f"synthesis.b{r}"
        rules[f"{b}.resample_filter"] = fir_filter
        if r == 4:
            rules[f"{b}.const"] = lambda: tf["synthesis/4x4/Const/const"][0]
            rules.update(conv_layer(f"{b}.conv1", "synthesis/4x4/Conv", 0))
        else:
            rules.update(conv_layer(f"{b}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * k - 5, flip=True))
            rules.update(conv_layer(f"{b}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * k - 4))
            rules[f"{b}.skip.weight"] = lambda r=r: _conv(tf[f"synthesis/{r}x{r}/Skip/weight"], flip=True)
            rules[f"{b}.skip.resample_filter"] = fir_filter
        rules.update(conv_layer(f"{b}.torgb", f"synthesis/{r}x{r}/ToRGB", None))
    with torch.device("meta"):
        wanted = Generator(cfg).state_dict()
    state = {}
    for key in wanted:
        if key not in rules:
            raise ModelLoadError(f"no TensorFlow variable maps to {key}")
        try:
            value = rules[key]()
        except KeyError as e:
            raise ModelLoadError(f"the TensorFlow generator lacks the variable {e.args[0]} (for {key})") from None
        if isinstance(value, np.ndarray):
            if value.dtype.kind != "f":
                raise ModelLoadError(f"{key}: the TensorFlow variable is {value.dtype}, not floating point")
            value = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
        state[key] = value
    return state
