"""rank / detect / edit on the command line (discover needs the bundled model's oracle: see test_bundled)."""

import numpy as np
from PIL import Image

from studio.engine.edits import SpatialTab
from studio.engine.engine import Engine
from studio.engine.recipe import read_recipe

from .conftest import run_cli


def test_rank_prints_the_channel_that_lights_up_in_the_box(small_model, tmp_path):
    m, d = str(small_model.path), str(tmp_path / "data")
    r = run_cli("rank", "--model", m, "--data", d, "--layer", "b8.conv1", "--box", "2:5,2:5", "--seeds", "0-3",
                "--top", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "cosine" in lines[0] and len(lines) == 4
    # the printed best channel is the best by the engine's own ranking over the same seeds
    eng = Engine(small_model, tmp_path / "data")
    from studio.engine.analysis import rank_channels
    from studio.engine.edits import EditStack

    stacks = [EditStack(seed=s, psi=0.7, noise_seed=s) for s in range(4)]
    f = eng.renderer.render_many(stacks, capture=("b8.conv1",)).features["b8.conv1"].numpy()
    sel = np.zeros((8, 8), np.float32)
    sel[2:5, 2:5] = 1
    assert int(lines[1].split()[0]) == int(np.argmax(rank_channels(f, sel, "cosine")))
    r = run_cli("rank", "--model", m, "--data", d, "--layer", "b8.conv1", "--seeds", "0")
    assert r.returncode == 2 and "give a selection" in r.stderr


def test_detect_writes_overlays_and_edit_auto_writes_recipes(small_model, tmp_path):
    m, d = str(small_model.path), str(tmp_path / "data")
    r = run_cli("detect", "--model", m, "--data", d, "--plugin", "spatial_map", "--param", "layer=b16.conv0",
                "--param", "channels=1-4", "--param", "threshold=0.6", "--seeds", "0-1", "--out", str(tmp_path / "det"))
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "det" / "seed0000.png").size == (64, 32) and "mask covers" in r.stdout
    eng = Engine(small_model, tmp_path / "data")
    w = np.zeros(eng.renderer.layers["b16.conv0"].channels, np.float32)
    w[:6] = 1
    eng.data.save_tab(SpatialTab("auto", ["b16.conv0"], np.zeros((16, 16), np.float32), {"b16.conv0": w}, 60,
                                 detector={"plugin": "spatial_map", "mode": "off",
                                           "params": {"layer": "b16.conv0", "channels": "1-4", "threshold": 0.6}}))
    r = run_cli("edit", "--model", m, "--data", d, "--tab", "auto", "--auto", "--seeds", "3", "--out",
                str(tmp_path / "ed"))
    assert r.returncode == 0, r.stderr
    recipe = read_recipe(tmp_path / "ed" / "seed0003_auto.png")
    assert recipe.stack.tabs[0].selection.any()  # the detected region is in the recipe
    again = eng.render_recipe(recipe).uint8()[0]
    assert np.array_equal(again, np.asarray(Image.open(tmp_path / "ed" / "seed0003_auto.png")))
    r = run_cli("detect", "--model", m, "--data", d, "--plugin", "nope", "--seeds", "0")
    assert r.returncode == 2 and "no plugin" in r.stderr
