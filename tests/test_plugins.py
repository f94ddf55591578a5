"""Detector plugins: discovery, reload, contained failures, resampling, run and run-and-modify."""

import time

import numpy as np
import pytest

from studio import paths
from studio.engine.edits import EditStack, SpatialTab
from studio.engine.engine import Engine
from studio.engine.plugins import PluginError, PluginManager, apply_detectors, coerce_params, run_plugin

GOOD = '''
NAME = "box"
PARAMS = {"layer": "b8.conv1", "size": 2}
def layers(params):
    return [params["layer"]]
def detect(features, image, params):
    m = np.zeros((32, 32), "float32")
    m[20:28, 8:24] = 1
    return m
import numpy as np
'''


@pytest.fixture
def engine(small_model, tmp_path):
    return Engine(small_model, tmp_path / "data")


def _write(folder, name, text):
    p = folder / f"{name}.py"
    p.write_text(text)
    return p


def test_discovery_reload_and_broken_files(tmp_path):
    _write(tmp_path, "good", GOOD)
    _write(tmp_path, "syntax", "def detect(:\n")
    _write(tmp_path, "nodetect", "X = 1\n")
    m = PluginManager(tmp_path)
    assert m.get("box").params == {"layer": "b8.conv1", "size": 2}
    for name in ("syntax", "nodetect"):
        with pytest.raises(PluginError, match="failed to load"):
            m.get(name)
    time.sleep(0.01)
    p = _write(tmp_path, "good", GOOD.replace('"size": 2', '"size": 5'))
    p.touch()
    import os
    os.utime(p, (time.time() + 5, time.time() + 5))
    assert "box" in m.refresh()
    assert m.get("box").params["size"] == 5
    p.unlink()
    m.refresh()
    with pytest.raises(PluginError, match="no plugin"):
        m.get("box")


def test_failures_are_contained(tmp_path):
    cases = {
        "raises": "def detect(f, i, p):\n    raise RuntimeError('oops')\n",
        "shape": "import numpy as np\ndef detect(f, i, p):\n    return np.zeros((2, 3, 4))\n",
        "nan": "import numpy as np\ndef detect(f, i, p):\n    return np.full((8, 8), np.nan)\n",
        "slow": "import time\ndef detect(f, i, p):\n    time.sleep(3)\n    return [[1.0]]\n",
        "none": "def detect(f, i, p):\n    return None\n",
    }
    for name, text in cases.items():
        _write(tmp_path, name, text)
    m = PluginManager(tmp_path)
    expected = {"raises": "oops", "shape": "2-D", "nan": "NaN", "slow": "time budget", "none": "2-D"}
    for name, words in expected.items():
        with pytest.raises(PluginError, match=words):
            run_plugin(m.get(name), {}, np.zeros((4, 4, 3), np.uint8), {}, 16, budget_s=0.5)


def test_resampling_and_param_types(tmp_path):
    _write(tmp_path, "good", GOOD)
    m = PluginManager(tmp_path)
    mask = run_plugin(m.get("box"), {}, np.zeros((4, 4, 3), np.uint8), {}, 16)
    assert mask.shape == (16, 16) and mask[10:14, 4:12].min() == 1 and mask[:8].max() == 0
    up = run_plugin(m.get("box"), {}, np.zeros((4, 4, 3), np.uint8), {}, 64)
    assert up.shape == (64, 64) and up.sum() == 8 * 16 * 4
    assert coerce_params(m.get("box"), {"size": "7"})["size"] == 7
    with pytest.raises(PluginError, match="not a int"):
        coerce_params(m.get("box"), {"size": "big"})


def test_spatial_map_plugin_ships_and_works(engine):
    m = PluginManager(paths.shipped("plugins"))
    plugin = m.get("spatial_map")
    r = engine.render(EditStack(seed=1), capture=("b16.conv0",))
    feats = {"b16.conv0": r.features["b16.conv0"][0].numpy()}
    params = coerce_params(plugin, {"channels": "1,2x3", "threshold": "0.6"})
    mask = run_plugin(plugin, feats, r.uint8()[0], params, 8)
    f = feats["b16.conv0"]
    s = f[1] + 2 * f[3]
    expected = ((s - s.min()) / (s.max() - s.min()) > 0.6).astype(np.float32)
    assert np.allclose(mask, expected.reshape(8, 2, 8, 2).mean(axis=(1, 3)))


def test_run_and_modify_edits_the_detected_region_in_two_passes(engine, tmp_path):
    _write(tmp_path, "good", GOOD)
    m = PluginManager(tmp_path)
    st = engine.renderer.layers["b16.conv0"]
    w = np.zeros(st.channels, np.float32)
    w[:8] = 1
    tab = SpatialTab("auto", ["b16.conv0"], np.zeros((16, 16), np.float32), {"b16.conv0": w}, value=60,
                     detector={"plugin": "box", "mode": "run_and_modify", "params": {}})
    stack = EditStack(seed=2, tabs=[tab])
    result, new_stack, messages = apply_detectors(engine.render, stack, m)
    assert messages == []
    assert new_stack.tabs[0].selection[10:14, 4:12].min() == 1 and not stack.tabs[0].selection.any()
    assert engine.renderer.stages[result.first_stage].name == "b16.conv0"  # pass 2 resumed from the cache
    plain = engine.render(EditStack(seed=2), use_cache=False).images
    manual = engine.render(new_stack, use_cache=False).images
    assert np.array_equal(result.uint8(), engine.render(new_stack, use_cache=False).uint8())
    assert (manual - plain).abs().sum() > 0
    # a switched-off tab edits nothing: its detector does not run, unless it is the tab the studio shows
    tab.active = False
    _, off_stack, _ = apply_detectors(engine.render, EditStack(seed=2, tabs=[tab]), m)
    assert not off_stack.tabs[0].selection.any()
    _, shown_stack, _ = apply_detectors(engine.render, EditStack(seed=2, tabs=[tab]), m, shown="auto")
    assert shown_stack.tabs[0].selection[10:14, 4:12].min() == 1
    tab.active = True
    # a broken detector leaves the tab as it was and is reported
    tab.detector = {"plugin": "missing", "mode": "run_and_modify"}
    result2, stack2, messages2 = apply_detectors(engine.render, EditStack(seed=2, tabs=[tab]), m)
    assert "no plugin" in messages2[0] and not stack2.tabs[0].selection.any()


@pytest.mark.parametrize("smooth", [0, 1, 2])
def test_detector_discovery_scores_exactly_the_masks_the_spatial_map_plugin_makes(smooth):
    """discover.py ranks settings by the masks it computes itself (vectorised over images); they must be the ones
    the shipped plugin then makes from the same settings, smoothing included."""
    from studio.portraits.discover import detector_masks

    plugin = PluginManager(paths.shipped("plugins")).get("spatial_map")
    rng = np.random.default_rng(smooth)
    features = rng.standard_normal((3, 5, 8, 8)).astype(np.float32)
    features[2] = 0.0  # a flat map selects nothing
    weights = np.array([0.5, 0, -1.0, 0.25, 0], np.float32)
    params = coerce_params(plugin, {"layer": "b8.conv0", "channels": "0.5x0,-1x2,0.25x3", "threshold": 0.55,
                                    "smooth": smooth})
    ours = detector_masks(features, weights, 0.55, 16, smooth)
    for n in range(3):
        theirs = run_plugin(plugin, {"b8.conv0": features[n]}, np.zeros((16, 16, 3), np.uint8), params, 8)
        assert np.array_equal(ours[n, ::2, ::2], theirs > 0.5), n
    assert ours[0].any() and not ours[2].any()
