"""Windowed batches (samples computed only where they can differ) equal dense batches and single renders."""

import json

import numpy as np
import pytest
import torch

from studio.engine.edits import EditStack, SpatialTab
from studio.engine.renderer import Renderer
from studio.engine.windowed import Window, needs, reach

from .conftest import random_generator


def _tab(R, layer, box, channel, value=70.0, name="t"):
    st = R.layers[layer]
    sel = np.zeros((st.resolution, st.resolution), np.float32)
    y0, y1, x0, x1 = box
    sel[y0:y1, x0:x1] = 1
    w = np.zeros(st.channels, np.float32)
    w[channel] = 1
    return SpatialTab(name, [layer], sel, {layer: w}, value=value)


def _both(R, stacks):
    """Dense and windowed batch renders; each dense sample is bit-identical to its single render, and each
    windowed one to its replay from the window it records (what a PNG's re-render does)."""
    R.windowed = False
    dense = R.render_many(stacks).images
    R.windowed = True
    result = R.render_many(stacks)
    for i, s in enumerate(stacks):
        assert torch.equal(dense[i], R.render(s, use_cache=False).images[0])
        window = result.window(i)
        assert window is not None and window == Window.from_json(json.loads(json.dumps(window.to_json())))
        replay = R.synthesize(R.ws_for(s)[None], [s.tabs], [s.noise_seed], s.noise_mode, use_cache=False,
                              window=window)
        assert torch.equal(replay.images[0], result.images[i])
    return dense, result.images


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
@pytest.mark.parametrize("layer,box", [
    ("b16.conv0", (6, 9, 5, 11)),  # inside
    ("b16.conv0", (0, 3, 13, 16)),  # a corner
    ("b8.conv1", (0, 8, 3, 4)),  # a full-height column
    ("b32.conv1", (30, 32, 0, 32)),  # the last rows of the last block
])
def test_windowed_equals_dense(architecture, layer, box):
    R = Renderer(random_generator(resolution=32, architecture=architecture, seed=2))
    stacks = [EditStack(seed=5, psi=0.8, tabs=[_tab(R, layer, box, ch, value=v)])
              for ch in range(3) for v in (60.0, -60.0)]
    dense, windowed = _both(R, stacks)
    assert (dense - windowed).abs().max() < 2e-5
    assert (dense[0] - dense[1]).abs().max() > 0.05  # the edits do change the images
    single = R.render(stacks[3], use_cache=False).images[0]
    assert (single - windowed[3]).abs().max() < 2e-5


def test_shared_and_per_sample_tabs_at_several_layers():
    """A tab all samples share (in the base), per-sample tabs at two layers, a sample without edits, random noise
    with one seed."""
    R = Renderer(random_generator(resolution=32, architecture="skip", seed=3))
    shared = _tab(R, "b32.conv0", (20, 26, 4, 9), 1, value=50.0, name="shared")
    stacks = [EditStack(seed=9, noise_mode="random", noise_seed=4,
                        tabs=[shared, _tab(R, "b8.conv0", (2, 4, 2, 5), ch, name="a"),
                              _tab(R, "b16.conv1", (10, 12, 1, 15), ch + 1, value=-40.0, name="b")])
              for ch in range(4)]
    stacks.append(EditStack(seed=9, noise_mode="random", noise_seed=4, tabs=[shared]))
    dense, windowed = _both(R, stacks)
    assert (dense - windowed).abs().max() < 2e-5
    # a second batch with the same base is served from the memoised base and is still right
    dense2, windowed2 = _both(R, stacks[::-1])
    assert (dense2 - windowed2).abs().max() < 2e-5


def test_wide_selections_run_densely(monkeypatch):
    """A selection over most of the layer gains nothing from windows: the batch runs densely, same images."""
    import studio.engine.renderer as renderer

    R = Renderer(random_generator(resolution=32, seed=6))
    stacks = [EditStack(seed=2, tabs=[_tab(R, "b16.conv0", (0, 16, 1, 16), ch)]) for ch in range(3)]
    R.windowed = False
    dense = R.render_many(stacks).images
    R.windowed = True
    monkeypatch.setattr(renderer, "windowed_tail", None)  # would fail if called
    assert (R.render_many(stacks).images - dense).abs().max() == 0


def test_zero_deltas_give_the_base():
    R = Renderer(random_generator(resolution=32, seed=4))
    stacks = [EditStack(seed=1, tabs=[_tab(R, "b16.conv0", (3, 6, 3, 6), ch, value=0.0)]) for ch in range(3)]
    stacks[0].tabs[0].weights["b16.conv0"][:] = 0  # a different (all-zero) tab: the samples part, nothing changes
    windowed = R.render_many(stacks).images
    plain = R.render(EditStack(seed=1), use_cache=False).images
    assert (windowed - plain).abs().max() < 2e-5


@pytest.mark.parametrize("kind,up", [("conv0", True), ("conv1", False), ("rgb_up", True)])
def test_reach_and_needs_are_inverse_bounds(kind, up):
    """Every output reached from input i needs i; every output's inputs reach it (checked by brute force)."""
    size_in = 8
    size_out = 2 * size_in if up else size_in
    for i in range(size_in):
        lo, hi = reach(kind, (i, i), size_out)
        for j in range(size_out):
            a, b = needs(kind, (j, j), size_in)
            assert (lo <= j <= hi) == (a <= i <= b)


def test_reach_matches_the_network():
    """Perturb one input pixel of a real conv0 and torgb stage: the changed outputs lie inside `reach`."""
    R = Renderer(random_generator(resolution=32, architecture="skip", seed=5))
    G, stages = R.G.synthesis, R.stages
    ws = R.ws_for(EditStack(seed=0))[None]
    from studio.engine.network import SynthesisState

    idx = [s.name for s in stages].index("b16.conv0")
    s = SynthesisState(1)
    with torch.no_grad():
        for st in stages[:idx]:
            s = G.run_stage(st, s, ws, G.const_noise(st))
        bumped = SynthesisState(1, s.x.clone(), s.img.clone())
        bumped.x[:, :, 3, 5] += 1.0
        for kind, stage in (("conv0", stages[idx]),):
            a = G.run_stage(stage, s, ws, G.const_noise(stage)).x
            b = G.run_stage(stage, bumped, ws, G.const_noise(stage)).x
            changed = ((a - b).abs().amax(dim=(0, 1)) > 0).nonzero()
            rows, cols = reach(kind, (3, 3), 16), reach(kind, (5, 5), 16)
            assert changed[:, 0].min() >= rows[0] and changed[:, 0].max() <= rows[1]
            assert changed[:, 1].min() >= cols[0] and changed[:, 1].max() <= cols[1]
            assert changed[:, 0].max() - changed[:, 0].min() == rows[1] - rows[0]  # and the bound is tight
