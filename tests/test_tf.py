"""TensorFlow-era StyleGAN2 pickles: the shared fixture exactly, and every layout the TF code wrote."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from studio.engine.loaders import ModelLoadError, load_model

from .conftest import FIXTURES, random_generator
from .tf_format import tf_pickle

TF_PKL = FIXTURES / "tf_sg2_32.pkl"


def test_fixture_seeds_are_exact_and_its_build_code_never_runs(tmp_path, monkeypatch):
    if not TF_PKL.exists():
        pytest.skip(f"fixture missing at {TF_PKL}")
    monkeypatch.chdir(tmp_path)  # the fixture's build_module_src would `touch GANSTUDIO_TF_PICKLE_RAN` here
    m = load_model(TF_PKL)
    assert not os.listdir(tmp_path)
    assert m.source_format == "tensorflow-pickle" and m.config.architecture == "skip"
    assert (m.config.z_dim, m.config.w_dim, m.config.mapping_layers, m.config.resolution) == (64, 64, 3, 32)
    ref = np.load(FIXTURES / "tf_sg2_32_ref.npz")
    G = m.generator
    for seed in range(4):
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, 64)).float()
        with torch.no_grad():
            img = G(z, psi=0.7, noise_mode="const")
        got = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
        assert np.array_equal(got, ref[f"seed{seed}_uint8"])


@pytest.mark.parametrize("arch,kw", [("skip", {}), ("orig", {}), ("resnet", {}), ("skip", {"c_dim": 3}),
                                     ("resnet", {"mapping_hidden": 48, "conv_clamp": None}),
                                     ("orig", {"resolution": 16, "c_dim": 2, "embed_features": 24})])
def test_every_tf_layout_loads_to_the_same_network(tmp_path, monkeypatch, arch, kw):
    monkeypatch.chdir(tmp_path)
    res = kw.pop("resolution", 32)
    G = random_generator(resolution=res, architecture=arch, **kw)
    (tmp_path / "net.pkl").write_bytes(tf_pickle(G))
    m = load_model(tmp_path / "net.pkl")
    assert m.config.architecture == arch and m.config.c_dim == G.cfg.c_dim
    assert (m.config.mapping_hidden or 32) == (G.cfg.mapping_hidden or 32)
    assert m.config.conv_clamp == G.cfg.conv_clamp
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(1))
    c = torch.eye(G.cfg.c_dim)[[0, 1, 0]] if G.cfg.c_dim else None
    with torch.no_grad():
        assert torch.equal(m.generator(z, c, psi=0.7), G(z, c, psi=0.7))
    assert set(os.listdir(tmp_path)) == {"net.pkl"}


def test_unknown_builds_are_named(tmp_path):
    G = random_generator()
    cases = [
        (tf_pickle(G, extra_kwargs={"fancy_new_option": 3}), "unknown TensorFlow build arguments.*fancy_new_option"),
        (tf_pickle(G, extra_kwargs={"resample_kernel": [1, 2, 1]}), "resample_kernel"),
        (tf_pickle(G, build_func="G_style", synthesis_func="G_synthesis"), "StyleGAN \\(version 1\\)"),
        (tf_pickle(G, build_func="G_progressive_gan"), "not the StyleGAN2 generator"),
    ]
    for i, (data, message) in enumerate(cases):
        path = tmp_path / f"case{i}.pkl"
        path.write_bytes(data)
        with pytest.raises(ModelLoadError, match=message):
            load_model(path)


def test_a_missing_variable_is_named(tmp_path):
    data = tf_pickle(random_generator())
    data = data.replace(b"16x16/Conv1/mod_bias", b"16x16/Conv1/mod_bia_")  # same length: the pickle stays valid
    (tmp_path / "net.pkl").write_bytes(data)
    with pytest.raises(ModelLoadError, match="16x16/Conv1/mod_bias"):
        load_model(tmp_path / "net.pkl")


def test_orig_without_build_arguments_reads_everything_from_the_variables(tmp_path):
    G = random_generator(resolution=16, architecture="orig")
    (tmp_path / "net.pkl").write_bytes(tf_pickle(G, omit=("resolution", "architecture", "fmap_base", "fmap_max",
                                                          "latent_size", "dlatent_size", "mapping_layers")))
    m = load_model(tmp_path / "net.pkl")
    assert m.config.architecture == "orig" and m.config.resolution == 16
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(m.generator(z), G(z))
