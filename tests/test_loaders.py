"""Loading what users have: NVlabs pickles (safely), rosinality checkpoints, the own format."""

import pickle

import numpy as np
import pytest
import torch

from studio.engine.loaders import ModelLoadError, build_generator, load_model, save_model
from studio.engine.safe_pickle import UnsafePickleError, safe_load

from .conftest import random_generator
from .nvlabs_format import fake_nvlabs_modules, nvlabs_pickle


def _same_outputs(G1, G2, psi=0.7):
    z = torch.randn(3, G1.cfg.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return torch.equal(G1(z, psi=psi), G2(z, psi=psi))


def test_reference_pickle_reads_hyperparameters(ref_model):
    cfg = ref_model.config
    assert (cfg.resolution, cfg.z_dim, cfg.w_dim, cfg.mapping_layers) == (64, 128, 128, 2)
    assert (cfg.channel_base, cfg.channel_max, cfg.architecture, cfg.conv_clamp) == (4096, 128, "skip", 256.0)
    assert ref_model.source_format == "nvlabs-pickle"


@pytest.mark.parametrize("arch", ["skip", "orig", "resnet"])
@pytest.mark.parametrize("flat", [False, True])
def test_nvlabs_pickles_of_every_architecture_and_kwargs_layout(tmp_path, arch, flat):
    G = random_generator(architecture=arch)
    path = tmp_path / "net.pkl"
    path.write_bytes(nvlabs_pickle(G, flat_kwargs=flat))
    m = load_model(path)
    assert m.config.architecture == arch
    assert _same_outputs(G, m.generator)


def test_conditional_pickle(tmp_path):
    G = random_generator(c_dim=3)
    path = tmp_path / "cond.pkl"
    path.write_bytes(nvlabs_pickle(G))
    m = load_model(path)
    assert m.config.c_dim == 3
    c = torch.eye(3)
    z = torch.randn(3, 32)
    with torch.no_grad():
        assert torch.equal(G(z, c), m.generator(z, c))


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(ModelLoadError) as e:
        load_model(path)
    assert "refusing to load" in str(e.value) and "system" in str(e.value)
    assert not marker.exists()


def test_embedded_module_source_is_never_executed(tmp_path):
    G = random_generator()
    data = nvlabs_pickle(G)
    assert b"never run" in data  # the module_src travels in the file ...
    path = tmp_path / "net.pkl"
    path.write_bytes(data)
    load_model(path)  # ... and loading it does not raise SystemExit


def test_broken_tensorflow_and_stylegan3_records_are_named(tmp_path):
    # (Network(),) with an empty state: the shape of an old TensorFlow pickle's (G, D, Gs)
    tf = b"\x80\x04\x8c\x14dnnlib.tflib.network\x8c\x07Network\x93)\x81}b\x85."
    (tmp_path / "tf.pkl").write_bytes(tf)
    with pytest.raises(ModelLoadError, match="TensorFlow"):
        load_model(tmp_path / "tf.pkl")
    with pytest.raises(UnsafePickleError, match="TensorFlow"):
        safe_load(b"\x80\x04\x8c\x0ftensorflow.core\x8c\x03Var\x93.")

    with fake_nvlabs_modules() as (persistence, _):
        from .nvlabs_format import _Persistent
        syn = _Persistent(persistence._reconstruct_persistent_obj, "SynthesisNetwork",
                          {"_modules": {"input": None, "L0_36_512": None}})
        mp = _Persistent(persistence._reconstruct_persistent_obj, "MappingNetwork", {"_modules": {}})
        g = _Persistent(persistence._reconstruct_persistent_obj, "Generator",
                        {"_modules": {"synthesis": syn, "mapping": mp}})
        data = pickle.dumps({"G_ema": g}, protocol=4)
    path = tmp_path / "sg3.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="StyleGAN3 generator.s init arguments lack"):
        load_model(path)


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    (tmp_path / "trunc.pkl").write_bytes(nvlabs_pickle(random_generator())[:5000])
    (tmp_path / "text.safetensors").write_text("hello")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    for name in ("trunc.pkl", "text.safetensors", "model.onnx", "missing.pkl"):
        with pytest.raises(ModelLoadError) as e:
            load_model(tmp_path / name)
        assert name in str(e.value)


def _to_rosinality(G) -> dict:
    """Our NVlabs-named weights under rosinality/stylegan2-pytorch's names (inverse of the loader's table)."""
    sd = G.state_dict()
    out = {"input.input": sd["synthesis.b4.const"][None]}
    for i in range(G.cfg.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]

    def styled(src, dst, noise):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        out[f"noises.{noise}"] = sd[f"{src}.noise_const"][None, None]

    def rgb(src, dst):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, 3, 1, 1)

    styled("synthesis.b4.conv1", "conv1", "noise_0")
    rgb("synthesis.b4.torgb", "to_rgb1")
    for k, res in enumerate(G.cfg.block_resolutions[1:]):
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}", f"noise_{2 * k + 1}")
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", f"noise_{2 * k + 2}")
        rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
    return out


def test_rosinality_checkpoint_with_and_without_latent_avg(tmp_path):
    import argparse

    G = random_generator(conv_clamp=None)
    with_avg = tmp_path / "with.pt"
    torch.save({"g_ema": _to_rosinality(G), "latent_avg": G.w_avg.clone(), "args": argparse.Namespace(size=32)},
               with_avg)
    m = load_model(with_avg)
    assert m.source_format == "rosinality" and _same_outputs(G, m.generator)

    without = tmp_path / "without.pt"
    torch.save({"g_ema": _to_rosinality(G), "args": argparse.Namespace(size=32)}, without)
    m2 = load_model(without)
    assert any("estimated from 10,000 samples" in n for n in m2.notes)
    assert _same_outputs(G, m2.generator, psi=1.0)
    m3 = load_model(without)
    assert torch.equal(m2.generator.w_avg, m3.generator.w_avg)  # fixed seed: the same estimate every time


def test_own_format_roundtrip_fp32_and_fp16(tmp_path, ref_model):
    p32 = save_model(ref_model.generator, tmp_path / "m32.safetensors")
    assert _same_outputs(ref_model.generator, load_model(p32).generator)
    p16 = save_model(ref_model.generator, tmp_path / "m16.safetensors", half=True)
    assert p16.stat().st_size < 0.6 * p32.stat().st_size
    assert load_model(p16).config == ref_model.config


def test_build_generator_rejects_wrong_shapes():
    G = random_generator()
    sd = G.state_dict()
    sd["synthesis.b8.conv0.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(ModelLoadError, match="shape"):
        build_generator(G.cfg, sd)
    del sd["mapping.w_avg"]
    with pytest.raises(ModelLoadError, match="missing"):
        build_generator(G.cfg, sd)


def test_convert_cli(tmp_path, ref_paths):
    from .conftest import run_cli

    out = tmp_path / "conv.safetensors"
    r = run_cli("convert", str(ref_paths[0]), str(out))
    assert r.returncode == 0, r.stderr
    m = load_model(out)
    assert m.source_format == "ganstudio" and "converted from sg2ada_skip64.pkl" in m.notes[0]
    z = torch.from_numpy(ref_paths[1]["z"])
    with torch.no_grad():
        img = m.generator(z, psi=0.7).numpy()
    assert np.abs(img - ref_paths[1]["img_G_forward"]).max() < 1e-5


def test_models_over_the_memory_budget_are_refused_with_the_figures(tmp_path, monkeypatch):
    path = save_model(random_generator(), tmp_path / "m.safetensors")
    with pytest.raises(ModelLoadError, match=r"168,931 parameters.*memory budget is 1\.0 MB.*--memory-budget"):
        load_model(path, budget=1 << 20)  # the file fits in 1 MB, the weights and a render do not
    with pytest.raises(ModelLoadError, match="over the memory budget"):
        load_model(path, budget=1000)  # the file alone is larger
    monkeypatch.setenv("GANSTUDIO_MEMORY_BUDGET_GB", "0.001")
    with pytest.raises(ModelLoadError, match="memory budget"):
        load_model(path)
    monkeypatch.setenv("GANSTUDIO_MEMORY_BUDGET_GB", "nan")
    with pytest.raises(ModelLoadError, match="positive number of GB"):
        load_model(path)
    monkeypatch.delenv("GANSTUDIO_MEMORY_BUDGET_GB")
    assert load_model(path).config.resolution == 32
