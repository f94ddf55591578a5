"""The reduced-precision live preview: close to the exact frame, never in a file, shown while dragging only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.engine.edits import EditError, EditStack, SpatialTab
from studio.engine.network import Generator, GeneratorConfig
from studio.engine.precision import (
    PREVIEW_ENV,
    PREVIEW_MIN_PARAMS,
    PREVIEW_SKIP_LAST_FROM,
    cpu_bf16_native,
    preview_dtype,
    preview_generator,
)
from studio.engine.renderer import Renderer
from studio.gui.preview import PreviewSchedule
from tests.conftest import FIXTURES, random_generator, random_sg3

LEVEL = 1 / 127.5  # one of 255 grey levels in the generator's [-1, 1] output


def test_the_preview_dtype_follows_the_model_and_the_switch():
    small, sg3 = random_generator(), random_sg3()
    big = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=32, mapping_layers=1, channel_base=4096,
                                    channel_max=512)).eval()
    assert sum(p.numel() for p in big.synthesis.parameters()) >= PREVIEW_MIN_PARAMS
    assert preview_dtype(big, {PREVIEW_ENV: "off"}) is None
    assert preview_dtype(big, {}) == (torch.bfloat16 if cpu_bf16_native() else None)
    assert preview_dtype(small, {}) is None  # a small model shows exact frames only
    assert preview_dtype(sg3, {}) is None  # StyleGAN3 is slower in bf16
    assert preview_dtype(small, {PREVIEW_ENV: "bf16"}) == preview_dtype(sg3, {PREVIEW_ENV: "bf16"}) == torch.bfloat16


def edited(R: Renderer, layer: str, value: float) -> EditStack:
    st = R.layers[layer]
    sel = np.zeros((st.resolution, st.resolution), np.float32)
    sel[st.resolution // 2:, :] = 1
    w = np.zeros(st.channels, np.float32)
    w[:4] = 1
    return EditStack(seed=5, psi=0.7, tabs=[SpatialTab("t", [layer], sel, {layer: w}, value=value)])


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_a_stylegan2_preview_is_close_to_the_exact_frame_and_leaves_it_untouched(architecture):
    G = random_generator(architecture=architecture)
    R = Renderer(G)
    stack = edited(R, "b16.conv0", 3.0)
    before = R.render(stack, use_cache=False).images.clone()
    P = Renderer(preview_generator(G))
    preview = P.render(stack, capture=("b16.conv1",))
    assert preview.images.dtype == torch.float32 and preview.features["b16.conv1"].dtype == torch.float32
    assert torch.equal(R.render(stack, use_cache=False).images, before)  # the exact generator is not changed
    diff = (preview.images - before).abs()
    assert 0 < float(diff.max()) < 12 * LEVEL and float(diff.mean()) < 1.5 * LEVEL
    again = P.render(edited(R, "b16.conv0", 4.0))  # resumed from the preview's own cache
    assert R.stages[again.first_stage].name == "b16.conv0"


def test_a_stylegan2_preview_of_several_samples_matches_each_alone():
    G = random_generator()
    P = Renderer(preview_generator(G))
    stacks = [EditStack(seed=s, psi=0.7, noise_mode="random", noise_seed=s) for s in (1, 2)]
    batch = P.render_many(stacks).images
    for k, s in enumerate(stacks):
        assert torch.equal(batch[k:k + 1], P.render(s, use_cache=False).images)


@pytest.mark.parametrize("config", ["T", "R"])
def test_a_stylegan3_preview_is_close_to_the_exact_frame(config):
    G = random_sg3(config)
    R, P = Renderer(G), Renderer(preview_generator(G))
    layer = list(R.layers)[len(R.layers) // 2]
    stack = edited(R, layer, 2.0)
    exact = R.render(stack).images
    diff = (P.render(stack).images - exact).abs()  # bf16 through every layer: relative to the image's own spread
    assert float(diff.mean()) < 0.06 * float(exact.std()) and float(diff.max()) < 0.25 * float(exact.abs().max())


def test_the_engine_previews_for_the_screen_and_refuses_to_save_a_preview(monkeypatch, tmp_path):
    from studio.engine.engine import Engine

    monkeypatch.setenv(PREVIEW_ENV, "bf16")
    fixture = FIXTURES / "sg2ada_skip64.pkl"
    if not fixture.exists():
        pytest.skip(f"reference fixture missing at {fixture}")
    engine = Engine.open(fixture, tmp_path / "data")
    assert engine.preview_name == "bf16"
    stack = EditStack(seed=7, psi=0.7)
    exact, preview = engine.render(stack), engine.render(stack, preview=True)
    assert preview.preview and not exact.preview
    assert torch.equal(preview.ws, exact.ws)  # the same latent: only the synthesis is reduced
    with pytest.raises(EditError, match="screen only"):
        engine.save_png(tmp_path / "p.png", stack, preview)
    assert not (tmp_path / "p.png").exists()
    engine.save_png(tmp_path / "e.png", stack, exact)
    assert torch.equal(engine.render_recipe(engine.read_png(tmp_path / "e.png")).images, exact.images)
    monkeypatch.setenv(PREVIEW_ENV, "off")
    plain = Engine.open(fixture, tmp_path / "data")
    assert plain.preview_name is None and not plain.render(stack, preview=True).preview


def test_previews_while_moving_then_the_exact_frame_once_still():
    s = PreviewSchedule(settle_s=0.15)
    assert not s.on_change(10.0, moving=False, allowed=True)  # a click: exact at once
    assert s.on_change(10.05, moving=False, allowed=True)  # changes coming fast: a drag
    assert s.on_change(11.0, moving=True, allowed=True)  # a held button
    assert not s.on_change(11.05, moving=True, allowed=False)  # previews switched off (or recording)
    assert s.takes(3, preview=True, shown_version=2)
    s.shown(True)
    assert not s.exact_due(11.1, shown_version=3, version=3)  # still moving
    assert not s.exact_due(11.3, shown_version=2, version=3)  # the preview shown is not of the current state
    assert s.exact_due(11.3, shown_version=3, version=3)
    assert not s.exact_due(11.4, shown_version=3, version=3)  # asked once
    assert not s.takes(3, preview=True, shown_version=3)  # a preview never replaces its own exact frame...
    assert s.takes(3, preview=False, shown_version=3)  # ...the exact frame replaces its preview
    s.shown(False)
    assert s.settled and not s.takes(3, preview=False, shown_version=3)


def test_a_large_skip_model_previews_without_its_last_block(monkeypatch, tmp_path):
    from studio.engine.engine import Engine
    from studio.engine.loaders import load_model, save_model

    monkeypatch.setenv(PREVIEW_ENV, "bf16")
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=PREVIEW_SKIP_LAST_FROM, mapping_layers=1,
                                  channel_base=256, channel_max=8)).eval()
    engine = Engine(load_model(save_model(G, tmp_path / "big.safetensors")), tmp_path / "data")
    stack = edited(engine.renderer, "b16.conv0", 2.0)
    exact = engine.render(stack)
    preview = engine.render(stack, capture=("b16.conv0",), preview=True)
    assert preview.images.shape == exact.images.shape and torch.isfinite(preview.images).all()
    last = engine.renderer.stage_index(f"b{PREVIEW_SKIP_LAST_FROM}.conv0")
    assert engine._preview.stages[len(engine._preview._cache.states) - 1].name == "b128.torgb"
    assert len(engine._preview._cache.states) <= last  # the last block never ran
    again = engine.render(edited(engine.renderer, "b16.conv0", 3.0), preview=True)  # resumed from its cache
    assert engine.renderer.stages[again.first_stage].name == "b16.conv0"
    whole = engine.render(stack, capture=(f"b{PREVIEW_SKIP_LAST_FROM}.conv1",), preview=True)  # needs the last block
    assert len(engine._preview._cache.states) == len(engine.renderer.stages)
    assert float((whole.images - exact.images).abs().mean()) < 2 * LEVEL
