"""Edit stack semantics, spatial edits, feature capture, the render cache and shared-w batches."""

import numpy as np
import pytest
import torch

from studio.engine.edits import Direction, EditError, EditStack, Mix, SpatialTab, multiplier
from studio.engine.renderer import Renderer

from .conftest import random_generator


@pytest.fixture(scope="module")
def R():
    return Renderer(random_generator(resolution=32, seed=1))


def _tab(R, layer="b16.conv0", value=60.0, channels=(3, 7), box=(4, 10, 2, 12), name="t"):
    st = R.layers[layer]
    sel = np.zeros((st.resolution, st.resolution), np.float32)
    y0, y1, x0, x1 = box
    sel[y0:y1, x0:x1] = 1
    w = np.zeros(st.channels, np.float32)
    w[list(channels)] = 1
    return SpatialTab(name, [layer], sel, {layer: w}, value=value)


def test_slider_multiplier_is_the_originals():
    assert multiplier(0) == 0
    assert multiplier(92) == pytest.approx(99.48, abs=0.01)
    assert multiplier(-20) == pytest.approx(-np.e)


def test_truncation_toward_average_and_base(R):
    G = R.G
    ws1 = R.ws_for(EditStack(seed=3))
    assert torch.allclose(R.ws_for(EditStack(seed=3, psi=0.0)), G.w_avg.expand_as(ws1))
    base = np.random.RandomState(0).randn(G.cfg.num_ws, G.cfg.w_dim).astype(np.float32)
    half = R.ws_for(EditStack(seed=3, psi=0.5, base=base))
    assert torch.allclose(half, 0.5 * ws1 + 0.5 * torch.from_numpy(base), atol=1e-6)
    cut = R.ws_for(EditStack(seed=3, psi=0.0, cutoff=2))
    assert torch.allclose(cut[:2], G.w_avg.expand(2, -1)) and torch.equal(cut[2:], ws1[2:])


def test_directions_and_mix(R):
    d = np.random.RandomState(1).randn(R.G.cfg.w_dim).astype(np.float32)
    ws = R.ws_for(EditStack(seed=1))
    moved = R.ws_for(EditStack(seed=1, directions=[Direction("a", d, 2.0)]))
    assert torch.allclose(moved - ws, 2.0 * torch.from_numpy(d).expand_as(ws), atol=1e-5)
    other = np.zeros((R.G.cfg.num_ws, R.G.cfg.w_dim), np.float32)
    assert torch.allclose(R.ws_for(EditStack(seed=1, mix=Mix(other, 0.25))), 0.75 * ws, atol=1e-6)


def test_spatial_edit_is_the_formula(R):
    """delta = S * a * mu(v) lands on the layer's feature map exactly."""
    tab = _tab(R)
    base = R.render(EditStack(seed=2), capture=("b16.conv0",), use_cache=False)
    edited = R.render(EditStack(seed=2, tabs=[tab]), capture=("b16.conv0",), use_cache=False)
    delta = (edited.features["b16.conv0"] - base.features["b16.conv0"])[0]
    expected = torch.zeros_like(delta)
    expected[[3, 7], 4:10, 2:12] = multiplier(60.0)
    assert torch.allclose(delta, expected, atol=1e-4)


def test_edit_changes_pixels_mostly_inside_the_selection(R):
    tab = _tab(R, box=(2, 6, 2, 6), value=70)
    a = R.render(EditStack(seed=5), use_cache=False).images[0]
    b = R.render(EditStack(seed=5, tabs=[tab]), use_cache=False).images[0]
    diff = (a - b).abs().sum(0)
    inside = diff[4:12, 4:12].mean()
    outside = diff[20:, 20:].mean()
    assert inside > 5 * outside


def test_tab_on_several_layers_resamples_the_selection(R):
    tab = _tab(R)
    tab.layers = ["b16.conv0", "b8.conv1", "b32.conv0"]
    for layer in ("b8.conv1", "b32.conv0"):
        tab.weights[layer] = np.ones(R.layers[layer].channels, np.float32)
    r0 = R.render(EditStack(seed=2), capture=tuple(tab.layers), use_cache=False)
    r1 = R.render(EditStack(seed=2, tabs=[tab]), capture=tuple(tab.layers), use_cache=False)
    d8 = (r1.features["b8.conv1"] - r0.features["b8.conv1"])[0, 0]
    expected8 = tab.selection.reshape(8, 2, 8, 2).mean(axis=(1, 3)) * multiplier(60)
    assert np.allclose(d8.numpy(), expected8, atol=1e-4)


def test_cache_resumes_at_the_edited_layer_and_is_exact(R):
    R.clear_cache()
    stack = EditStack(seed=4, psi=0.8)
    R.render(stack)
    for value in (10.0, 40.0, -30.0):
        tab = _tab(R, value=value)
        cached = R.render(stack.copy(tabs=[tab]))
        full = R.render(stack.copy(tabs=[tab]), use_cache=False)
        assert R.stages[cached.first_stage].name == "b16.conv0"
        assert torch.equal(cached.images, full.images)
    again = R.render(stack.copy(tabs=[tab]))
    assert again.first_stage == len(R.stages)  # nothing changed: served entirely from the cache
    assert R.render(EditStack(seed=5)).first_stage == 0  # a new latent recomputes everything


def test_cache_notices_late_layer_latent_edits(R):
    R.clear_cache()
    stack = EditStack(seed=4)
    R.render(stack)
    ws = R.ws_for(stack).numpy().copy()
    ws[-1] += 0.5  # only the last toRGB reads the last w
    r = R.render(EditStack(seed=None, w=ws))
    assert R.stages[r.first_stage].name == "b32.torgb"
    assert torch.equal(r.images, R.render(EditStack(seed=None, w=ws), use_cache=False).images)


def test_shared_w_batch_equals_single_renders(R):
    stacks = [EditStack(seed=6, tabs=[_tab(R, value=v)]) for v in (0.0, 20.0, -40.0, 80.0)]
    batch = R.render_many(stacks)
    singles = torch.cat([R.render(s, use_cache=False).images for s in stacks])
    assert batch.ws.shape[0] == 1  # one shared w
    assert torch.allclose(batch.images, singles, atol=1e-5)


def test_batch_of_different_latents_and_random_noise(R):
    stacks = [EditStack(seed=s, noise_mode="random", noise_seed=s) for s in range(3)]
    batch = R.render_many(stacks)
    singles = torch.cat([R.render(s, use_cache=False).images for s in stacks])
    assert torch.allclose(batch.images, singles, atol=1e-5)
    again = R.render(stacks[1], use_cache=False).images
    assert torch.equal(again, R.render(stacks[1], use_cache=False).images)  # seeded noise is reproducible
    other = R.render(stacks[1].copy(noise_seed=99), use_cache=False).images
    assert not torch.equal(again, other)


def test_bad_tabs_are_refused_with_a_message(R):
    tab = _tab(R)
    tab.weights["b16.conv0"] = np.ones(3, np.float32)
    with pytest.raises(EditError, match="channels"):
        R.render(EditStack(seed=0, tabs=[tab]))
    tab2 = _tab(R)
    tab2.layers = ["b512.conv0"]
    with pytest.raises(EditError, match="no layer"):
        R.render(EditStack(seed=0, tabs=[tab2]))


@pytest.mark.parametrize("arch", ["orig", "resnet"])
def test_cache_exact_for_other_architectures(arch):
    R2 = Renderer(random_generator(resolution=32, architecture=arch))
    stack = EditStack(seed=1)
    R2.render(stack)
    tab = _tab(R2, layer="b16.conv1")
    cached = R2.render(stack.copy(tabs=[tab]))
    assert cached.first_stage > 0
    assert torch.equal(cached.images, R2.render(stack.copy(tabs=[tab]), use_cache=False).images)


def test_threads_rendering_one_generator_get_their_own_images():
    """The inference memos (network.Memo) are shared by every renderer of a generator: two threads rendering
    different latents at once (the studio's worker and a batch job) must each get exactly their own image."""
    import threading

    G = random_generator()
    stacks = [EditStack(seed=s, psi=0.7) for s in (1, 2)]
    expected = [Renderer(G).render(s, use_cache=False).images for s in stacks]
    wrong: list[int] = []

    def run(k: int) -> None:
        R = Renderer(G)
        for _ in range(40):
            if not torch.equal(R.render(stacks[k], use_cache=False).images, expected[k]):
                wrong.append(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
