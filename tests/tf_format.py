"""Write TensorFlow-era StyleGAN2 pickles from our Generator, for loader tests of layouts the fixture lacks.

The layout of the original repository's `(G, D, Gs)` tuple of `dnnlib.tflib.network.Network` states, with the
variable table of NVlabs' legacy.py inverted (TF dense [in, out], conv [kh, kw, in, out], up-sampling convs and
Skip flipped, `mod_bias` = affine bias - 1, `noise{k}` per conv layer, `ToRGB_lod{n}` for orig).
"""

from __future__ import annotations

import math
import pickle
import types
from contextlib import contextmanager

import numpy as np

from studio.engine.network import Generator

from .nvlabs_format import fake_modules

BUILD_SRC = "import os\nos.system('touch GANSTUDIO_TF_TEST_RAN')\n"


@contextmanager
def fake_tflib():
    """Register `dnnlib.tflib.network.Network` so that pickle can name it."""
    mod = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __init__(self, state):
            self.state = state

        def __getstate__(self):
            return self.state

    Network.__module__ = mod.__name__
    Network.__qualname__ = "Network"
    mod.Network = Network
    with fake_modules({"dnnlib.tflib.network": mod}):
        yield Network


def _conv(w: np.ndarray, flip: bool = False) -> np.ndarray:
    w = w.transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return np.ascontiguousarray(w[::-1, ::-1] if flip else w)


def tf_variables(G: Generator) -> tuple[list, list]:
    """(mapping variables, synthesis variables) of G in the TF layout."""
    sd = {k: v.detach().numpy() for k, v in G.state_dict().items()}
    cfg = G.cfg
    mapping = []
    if cfg.c_dim:
        mapping += [("LabelEmbed/weight", sd["mapping.embed.weight"].T), ("LabelEmbed/bias", sd["mapping.embed.bias"])]
    for i in range(cfg.mapping_layers):
        mapping += [(f"Dense{i}/weight", sd[f"mapping.fc{i}.weight"].T), (f"Dense{i}/bias", sd[f"mapping.fc{i}.bias"])]
    synthesis = []

    def layer(name: str, key: str, flip: bool = False, noise: bool = True) -> None:
        synthesis.extend([(f"{name}/weight", _conv(sd[f"{key}.weight"], flip)), (f"{name}/bias", sd[f"{key}.bias"]),
                          (f"{name}/mod_weight", sd[f"{key}.affine.weight"].T),
                          (f"{name}/mod_bias", sd[f"{key}.affine.bias"] - 1)])
        if noise:
            synthesis.append((f"{name}/noise_strength", sd[f"{key}.noise_strength"]))

    noises = []
    for r in cfg.block_resolutions:
        b = f"synthesis.b{r}"
        if r == 4:
            synthesis.append(("4x4/Const/const", sd[f"{b}.const"][None]))
            layer("4x4/Conv", f"{b}.conv1")
            noises.append(sd[f"{b}.conv1.noise_const"])
        else:
            layer(f"{r}x{r}/Conv0_up", f"{b}.conv0", flip=True)
            layer(f"{r}x{r}/Conv1", f"{b}.conv1")
            noises += [sd[f"{b}.conv0.noise_const"], sd[f"{b}.conv1.noise_const"]]
            if cfg.architecture == "resnet":
                synthesis.append((f"{r}x{r}/Skip/weight", _conv(sd[f"{b}.skip.weight"], flip=True)))
        if f"{b}.torgb.weight" in sd:
            name = f"ToRGB_lod{int(math.log2(cfg.resolution // r))}" if cfg.architecture == "orig" else f"{r}x{r}/ToRGB"
            layer(name, f"{b}.torgb", noise=False)
        elif cfg.architecture == "orig":  # TF orig networks keep a ToRGB per level; only the last one is used
            rng = np.random.RandomState(r)
            ch = cfg.channels(r)
            synthesis += [(f"ToRGB_lod{int(math.log2(cfg.resolution // r))}/weight",
                           rng.randn(1, 1, ch, cfg.img_channels).astype(np.float32))]
    synthesis = [(f"noise{i}", n[None, None]) for i, n in enumerate(noises)] + synthesis
    return mapping, synthesis


def tf_pickle(G: Generator, extra_kwargs: dict | None = None, build_func: str = "G_main",
              synthesis_func: str = "G_synthesis_stylegan2", build_src: str = BUILD_SRC, omit: tuple = ()) -> bytes:
    """(G, D, Gs) with G and Gs holding G's weights (D empty), protocol 3, as the TF repository wrote them."""
    cfg = G.cfg
    kwargs = dict(num_channels=cfg.img_channels, resolution=cfg.resolution, label_size=cfg.c_dim,
                  latent_size=cfg.z_dim, dlatent_size=cfg.w_dim, fmap_base=cfg.channel_base // 2,
                  fmap_max=cfg.channel_max, mapping_layers=cfg.mapping_layers, architecture=cfg.architecture,
                  **({"conv_clamp": cfg.conv_clamp} if cfg.conv_clamp is not None else {}), **(extra_kwargs or {}))
    kwargs = {k: v for k, v in kwargs.items() if k not in omit}
    mapping_vars, synthesis_vars = tf_variables(G)
    with fake_tflib() as Network:
        def net(name, func, variables, components=None):
            return Network(dict(version=4, name=name, static_kwargs=kwargs, components=components or {},
                                build_module_src=build_src, build_func_name=func, variables=variables))
        def gen(name):
            return net(name, build_func, [("dlatent_avg", G.mapping.w_avg.numpy().copy())], dict(
                mapping=net("G_mapping", "G_mapping", mapping_vars),
                synthesis=net("G_synthesis", synthesis_func, synthesis_vars + [("lod", np.float32(0))])))
        return pickle.dumps((gen("G"), net("D", "D_main", []), gen("Gs")), protocol=3)
