"""Channel ranking and the disk-backed feature history."""

import numpy as np
import pytest

from studio.engine.analysis import FeatureHistory, rank_channels, top_channels


def test_ranking_methods_find_the_channel_that_matches_the_selection():
    rng = np.random.default_rng(0)
    sel = np.zeros((8, 8), np.float32)
    sel[5:7, 2:6] = 1
    f = rng.normal(0, 0.1, (6, 8, 8)).astype(np.float32)
    f[3] += sel  # channel 3 lights up exactly on the selection
    f[1] = 40 * rng.random((8, 8))  # channel 1 is big everywhere
    assert top_channels(rank_channels(f, sel, "dot"), 1) == [1]  # the original's score favours magnitude
    for method in ("cosine", "iou"):
        assert top_channels(rank_channels(f, sel, method), 1) == [3]
    up = np.repeat(np.repeat(sel, 2, 0), 2, 1)  # a selection painted at another grid is resampled
    assert top_channels(rank_channels(f, up, "cosine"), 1) == [3]
    assert top_channels(rank_channels(np.stack([f, f]), sel, "cosine"), 1) == [3]  # averaged over images


def test_history_is_on_disk_and_its_average_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(5, 4, 8, 8)).astype(np.float32)
    h = FeatureHistory(tmp_path, "b8.conv1", (4, 8, 8))
    for i, m in enumerate(maps):
        h.append(m, f"seed {i}")
    again = FeatureHistory(tmp_path, "b8.conv1", (4, 8, 8))  # reopened from disk
    assert len(again) == 5
    assert np.allclose(again.mean(), maps.mean(0), atol=1e-6)
    assert np.allclose(again.std(), maps.std(0), atol=1e-5)
    assert np.allclose(again.channel(2), maps[:, 2], atol=1e-2)  # stored as float16
    again.clear()
    assert len(FeatureHistory(tmp_path, "b8.conv1", (4, 8, 8))) == 0


def test_channel_std_is_the_layer_s_spread_and_is_kept_in_the_data_folder(small_model, tmp_path):
    import torch

    from studio.engine.analysis import channel_std, tab_sigma
    from studio.engine.edits import EditStack
    from studio.engine.engine import Engine

    eng = Engine(small_model, tmp_path / "data")
    std = channel_std(eng.renderer, "b16.conv0", n=6)
    maps = torch.cat([eng.render(EditStack(seed=s, psi=1.0), capture=("b16.conv0",)).features["b16.conv0"]
                      for s in range(6)]).double()
    direct = maps.permute(1, 0, 2, 3).reshape(maps.shape[1], -1).std(dim=1, unbiased=False).numpy()
    np.testing.assert_allclose(std, direct, rtol=1e-4)
    assert tab_sigma(np.eye(len(std))[3], std) == pytest.approx(std[3])
    assert tab_sigma(np.zeros(len(std)), std) == 0
    measured = eng.channel_std("b16.conv0")  # measured once, then read back from the data folder
    again = Engine(small_model, tmp_path / "data")
    assert again.channel_std("b16.conv0", measure=False) is not None
    np.testing.assert_allclose(again.channel_std("b16.conv0"), measured, rtol=1e-5)
    # a hostile or broken statistics file is reported and measured again, never trusted
    path = eng.data.dir / "stats" / "b16.conv0.json"
    for bad in ("{", '{"std": [1e999]}', '{"std": [1, 2]}', '{"std": "x"}'):
        path.write_text(bad)
        fresh = Engine(small_model, tmp_path / "data")
        assert fresh.channel_std("b16.conv0", measure=False) is None
        assert any("stats" in e or "b16.conv0.json" in e for e in fresh.data.errors)
        n = len(fresh.data.errors)
        assert fresh.channel_std("b16.conv0", measure=False) is None  # asked again (the studio asks per render)
        assert len(fresh.data.errors) == n  # the broken file is neither read nor reported again
