"""Everything the studio does, on StyleGAN3 models: tabs at named layers, capture, cache, batches, jobs, recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from studio.engine import jobs
from studio.engine.analysis import rank_channels, top_channels
from studio.engine.animate import collect_frames, write_animation
from studio.engine.edits import Direction, EditError, EditStack, SpatialTab, multiplier
from studio.engine.engine import Engine
from studio.engine.loaders import load_model, save_model
from studio.engine.recipe import read_recipe

from .conftest import random_generator, run_cli, run_job


@pytest.fixture
def engine(small_sg3, tmp_path):
    return Engine(small_sg3, tmp_path / "data")


def _tab(engine: Engine, layer: str | None = None, value: float = 60.0, channels=(2, 5)) -> SpatialTab:
    layer = layer or engine.renderer.default_layer(16)
    st = engine.renderer.layers[layer]
    sel = np.zeros((st.resolution, st.resolution), np.float32)
    sel[st.resolution // 2:st.resolution * 3 // 4, st.resolution // 4:st.resolution * 3 // 4] = 1
    w = np.zeros(st.channels, np.float32)
    w[list(channels)] = 1
    return SpatialTab("mouth", [layer], sel, {layer: w}, value=value)


def test_layers_are_named_as_nvlabs_with_rates_sizes_and_channels(engine):
    layers = engine.layers()
    assert layers[0].name == "input" and layers[0].margin == 10
    assert all(li.name.startswith("L") and li.size == int(li.name.split("_")[1]) for li in layers[1:])
    assert engine.renderer.default_layer(16).startswith("L0_") and engine.renderer.default_layer(32).startswith("L3_")
    assert "L8_32_3" not in engine.renderer.layers  # ToRGB is not a feature map to edit


def test_tab_edits_the_image_area_of_its_layer_exactly(engine):
    R = engine.renderer
    layer = R.default_layer(32)
    tab = _tab(engine, layer)
    r0 = R.render(EditStack(seed=2), capture=(layer,), use_cache=False)
    r1 = R.render(EditStack(seed=2, tabs=[tab]), capture=(layer,), use_cache=False)
    st = R.layers[layer]
    assert r1.features[layer].shape[-1] == st.resolution  # captured maps cover the image area
    d = (r1.features[layer] - r0.features[layer])[0]
    assert np.allclose(d[2].numpy(), tab.selection * multiplier(60), atol=1e-4)
    assert np.allclose(d[0].numpy(), 0, atol=1e-6)  # channels not chosen are untouched at that layer
    assert not torch.equal(r0.images, r1.images)


def test_margin_receives_nothing(engine):
    """The delta is the selection at the image area, zero in the margin: the full map differs only inside."""
    R = engine.renderer
    tab = _tab(engine, "input")
    st = R.layers[tab.layers[0]]
    delta = R._delta([[tab]], st)[0]
    m = st.margin
    assert delta.shape[-1] == st.size and float(delta.abs().sum()) > 0
    inner = delta[:, m:m + st.resolution, m:m + st.resolution]
    assert float(delta.abs().sum()) == pytest.approx(float(inner.abs().sum()))


def test_cache_resumes_at_the_edited_layer_and_is_bit_identical(engine):
    R = engine.renderer
    R.clear_cache()
    stack = EditStack(seed=4, psi=0.8)
    R.render(stack)
    layer = R.default_layer(32)
    for value in (10.0, 40.0, -30.0):
        tab = _tab(engine, layer, value=value)
        cached = R.render(stack.copy(tabs=[tab]))
        full = R.render(stack.copy(tabs=[tab]), use_cache=False)
        assert R.stages[cached.first_stage].name == layer
        assert torch.equal(cached.images, full.images)
    moved = stack.copy(translate=(0.1, 0.0))
    assert R.render(moved).first_stage == 0  # moving the input recomputes everything
    assert torch.equal(R.render(moved).images, R.render(moved, use_cache=False).images)


def test_shared_w_batch_and_mixed_batches_equal_single_renders(engine):
    R = engine.renderer
    stacks = [EditStack(seed=6, tabs=[_tab(engine, value=v)]) for v in (0.0, 20.0, -40.0, 80.0)]
    moves = [EditStack(seed=6, translate=(t, -t), rotate=10 * t) for t in (0.0, 0.1, 0.25)]
    for limit in (1, 64):  # one sample per part, and all in one
        R.batch_limit = limit
        for group in (stacks, moves):
            batch = R.render_many(group)
            singles = torch.cat([R.render(s, use_cache=False).images for s in group])
            assert batch.ws.shape[0] == 1 and torch.equal(batch.images, singles)
    mixed = [EditStack(seed=s, psi=0.7, rotate=5.0 * s) for s in range(3)]
    batch = R.render_many(mixed)
    # samples with different ws: each exactly as rendered alone (a batch job's PNG re-renders bit for bit)
    assert torch.equal(batch.images, torch.cat([R.render(s, use_cache=False).images for s in mixed]))


def test_batches_beyond_the_memory_limit_render_in_parts_with_the_same_result(engine, monkeypatch):
    from studio.engine.renderer import batch_limit

    R = engine.renderer
    monkeypatch.setenv("GANSTUDIO_MEMORY_BUDGET_GB", "0.001")
    assert batch_limit(R.G) == 1  # a budget below one render still renders, one sample at a time
    shared = [EditStack(seed=6, tabs=[_tab(engine, value=v)]) for v in (0.0, 20.0, -40.0, 80.0, 10.0)]
    mixed = [EditStack(seed=s, rotate=s) for s in range(5)]
    for stacks in (shared, mixed):
        whole = R.render_many(stacks)
        R.batch_limit = 2
        parts = R.render_many(stacks)
        R.batch_limit = 64
        assert parts.ws.shape == whole.ws.shape and torch.equal(parts.images, whole.images)
    R.batch_limit = 2
    layer = R.default_layer(16)
    early = R.render_many(mixed, until=layer)  # stopped early, nothing captured: no images, the ws of all five
    captured = R.render_many(mixed, capture=(layer,), until=layer)
    assert early.images is None and early.ws.shape[0] == 5 and captured.features[layer].shape[0] == 5


def test_translate_and_rotate_move_the_picture(engine):
    R = engine.renderer
    base = R.render(EditStack(seed=1), use_cache=False).images[0]
    res = base.shape[-1]
    shifted = R.render(EditStack(seed=1, translate=(0.25, 0.0)), use_cache=False).images[0]
    # translate x by a quarter image width: the picture's content moves right by res/4 pixels
    q = res // 4
    err_moved = (shifted[:, :, q:] - base[:, :, :-q]).abs().mean()
    err_still = (shifted - base).abs().mean()
    assert err_moved < 0.5 * err_still
    if engine.config.architecture == "R":  # config R is rotation-equivariant: a quarter turn is exact
        quarter = R.render(EditStack(seed=1, rotate=90.0), use_cache=False).images[0]
        assert torch.allclose(quarter, torch.rot90(base, 1, dims=(1, 2)), atol=1e-4)


def test_sg2_models_refuse_a_move(small_model):
    from studio.engine.renderer import Renderer

    with pytest.raises(EditError, match="StyleGAN3"):
        Renderer(small_model.generator).render(EditStack(seed=0, rotate=5.0))


def test_recipes_recreate_moved_and_edited_images(engine, tmp_path):
    stack = EditStack(seed=3, psi=0.7, translate=(0.125, -0.3), rotate=33.0, tabs=[_tab(engine)])
    result = engine.render(stack)
    path = engine.save_png(tmp_path / "a.png", stack, result)
    recipe = engine.read_png(path)
    assert recipe.stack.translate == (0.125, -0.3) and recipe.stack.rotate == 33.0
    again = engine.render_recipe(recipe).uint8()[0]
    assert np.array_equal(again, np.asarray(Image.open(path)))
    plain = engine.save_png(tmp_path / "b.png", EditStack(seed=3), engine.render(EditStack(seed=3)))
    assert engine.read_png(plain).stack.to_json()["version"] == 1  # no move: readable by older versions


def test_ranking_and_history_on_image_area_maps(engine, tmp_path):
    from studio.engine.analysis import FeatureHistory

    R = engine.renderer
    layer = R.default_layer(32)
    tab = _tab(engine, layer, value=200.0, channels=(3,))
    feats = R.render(EditStack(seed=0, tabs=[tab]), capture=(layer,), use_cache=False).features[layer][0].numpy()
    scores = rank_channels(feats, tab.selection, "cosine")
    assert top_channels(scores, 1) == [3]  # the pushed channel matches the selection best
    history = FeatureHistory(tmp_path / "hist", layer, feats.shape)
    history.append(feats, "seed 0")
    assert np.allclose(history.mean(), feats, atol=1e-2 * np.abs(feats).max())  # stored as float16


@pytest.mark.parametrize("kind", ["sweep", "fcomb", "new", "spectrum", "interp", "apply"])
def test_batch_jobs_write_recipes_that_recreate_their_files(engine, tmp_path, kind):
    direction = Direction("a", np.random.default_rng(0).normal(size=engine.config.w_dim).astype(np.float32), 1.5)
    stack = EditStack(seed=0, psi=0.7, tabs=[_tab(engine)], translate=(0.05, 0.0), directions=[direction])
    src = tmp_path / "src"
    src.mkdir()
    pngs = []
    for seed, rotate in ((3, 0.0), (4, 30.0)):
        s = EditStack(seed=seed, rotate=rotate)
        pngs.append(engine.save_png(src / f"s{seed}.png", s, engine.render(s)))
    job = {"sweep": lambda: jobs.axis_aligned_sweep(stack, 0, channels=[0, 1, 2]),
           "fcomb": lambda: jobs.fmap_combinatoric([stack], k=3),
           "new": lambda: jobs.new_latents(stack, 3, seed=2),
           "spectrum": lambda: jobs.attribute_spectrum(stack, 3),
           "interp": lambda: jobs.interpolate(engine, pngs, 3),
           "apply": lambda: jobs.apply_to_folder(engine, stack, src)}[kind]()
    folder, manifest, _ = run_job(job, engine, tmp_path / "out")
    assert manifest["status"] == "complete" and manifest["problems"] == []
    for name in manifest["files"]:
        again = engine.render_recipe(engine.read_png(folder / name)).uint8()[0]
        assert np.array_equal(again, np.asarray(Image.open(folder / name))), name


def test_detector_plugin_on_an_sg3_layer(engine, tmp_path):
    from studio import paths
    from studio.engine.plugins import PluginManager

    R = engine.renderer
    layer = R.default_layer(32)
    tab = _tab(engine, layer)
    tab.selection = np.zeros_like(tab.selection)
    tab.detector = {"plugin": "spatial_map", "mode": "run_and_modify",
                    "params": {"layer": layer, "channels": "1-4", "threshold": 0.6}}
    job = jobs.new_latents(EditStack(seed=0, tabs=[tab]), 2, seed=4)
    folder, manifest, _ = run_job(job, engine, tmp_path / "out", plugins=PluginManager(paths.shipped("plugins")))
    assert manifest["status"] == "complete" and manifest["problems"] == []
    for name in manifest["files"]:
        recipe = engine.read_png(folder / name)
        assert recipe.stack.tabs[0].selection.shape == (R.layers[layer].resolution,) * 2


def test_gif_and_mp4_of_a_pan(engine, tmp_path):
    frames = []
    for i in range(4):
        s = EditStack(seed=1, translate=(i / 8, 0.0))
        frames.append(engine.save_png(tmp_path / f"f{i}.png", s, engine.render(s)))
    images, problems = collect_frames([str(p) for p in frames])
    out = write_animation(images, tmp_path / "pan.gif", fps=8)
    assert problems == [] and out.stat().st_size > 0 and Image.open(out).n_frames == 4
    mp4 = write_animation(images, tmp_path / "pan.mp4", fps=8, upscale=8)
    assert mp4.stat().st_size > 0


def test_cli_info_generate_convert_on_sg3(tmp_path, small_sg3):
    src = small_sg3.path
    r = run_cli("info", str(src))
    assert r.returncode == 0 and "StyleGAN3-" in r.stdout and "input" in r.stdout and "36x36" in r.stdout
    r = run_cli("generate", "--model", str(src), "--seeds", "0-1", "--psi", "0.7", "--translate", "0.1,0.2",
                "--rotate", "15", "--out", str(tmp_path / "g"), "--data", str(tmp_path / "d"))
    assert r.returncode == 0, r.stderr
    stack = read_recipe(tmp_path / "g" / "seed0001.png").stack
    assert stack.translate == (0.1, 0.2) and stack.rotate == 15.0
    back = tmp_path / "back.safetensors"
    assert run_cli("convert", str(src), str(back)).returncode == 0
    z = torch.randn(2, small_sg3.config.z_dim)
    with torch.no_grad():
        assert torch.equal(load_model(back).generator(z), small_sg3.generator(z))


def test_own_format_keeps_the_family(tmp_path):
    G2 = random_generator()
    assert load_model(save_model(G2, tmp_path / "a.safetensors")).config.family == "stylegan2"
