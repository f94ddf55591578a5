"""PNGs carry recipes that re-create them; bad PNGs give clear errors and write nothing."""

import json

import numpy as np
import pytest

from studio.engine.edits import Direction, EditStack, SpatialTab
from studio.engine.engine import Engine
from studio.engine.recipe import RecipeError, legacy_trailer, read_recipe

from .conftest import run_cli


@pytest.fixture
def engine(small_model, tmp_path):
    return Engine(small_model, tmp_path / "data")


def _rich_stack(engine):
    st = engine.renderer.layers["b16.conv0"]
    sel = np.zeros((16, 16), np.float32)
    sel[3:9, 5:11] = 1
    sel[2, 2] = -1
    w = np.zeros(st.channels, np.float32)
    w[[1, 4]] = [1.0, -0.5]
    d = np.random.RandomState(0).randn(engine.config.w_dim).astype(np.float32)
    return EditStack(seed=11, psi=0.6, directions=[Direction("smile", d, 1.5)], noise_mode="random", noise_seed=3,
                     tabs=[SpatialTab("mouth", ["b16.conv0"], sel, {"b16.conv0": w}, value=75)])


def test_png_recipe_recreates_pixels(engine, tmp_path):
    stack = _rich_stack(engine)
    result = engine.render(stack)
    path = engine.save_png(tmp_path / "a.png", stack, result)
    recipe = engine.read_png(path)
    assert recipe.model_sha256 == engine.model.sha256
    assert np.array_equal(recipe.ws, result.ws[0].numpy())
    assert recipe.stack.tabs[0].value == 75 and recipe.stack.directions[0].strength == 1.5
    again = engine.render_recipe(recipe)
    assert np.array_equal(again.uint8(), result.uint8())
    assert np.array_equal(engine.render(recipe.stack, use_cache=False).uint8(), result.uint8())


def test_recipe_json_is_versioned_and_exact(engine, tmp_path):
    from PIL import Image

    stack = _rich_stack(engine)
    result = engine.render(stack)
    path = engine.save_png(tmp_path / "b.png", stack, result)
    doc = json.loads(Image.open(path).text["ganstudio"])
    assert doc["format"] == "ganstudio-recipe" and doc["version"] == 1
    assert doc["software"].startswith("ganstudio ") and doc["noise_mode"] == "random"
    assert doc["model"]["sha256"] == engine.model.sha256


def test_png_from_another_model_names_both_hashes(engine, tmp_path, ref_model):
    stack = EditStack(seed=1)
    path = engine.save_png(tmp_path / "c.png", stack, engine.render(stack))
    other = Engine(ref_model, tmp_path / "data")
    with pytest.raises(RecipeError) as e:
        other.read_png(path)
    assert engine.model.sha256[:12] in str(e.value) and ref_model.sha256[:12] in str(e.value)


def test_broken_pngs(engine, tmp_path):
    stack = EditStack(seed=1)
    good = engine.save_png(tmp_path / "good.png", stack, engine.render(stack)).read_bytes()
    cases = {
        "truncated.png": good[: len(good) // 2],
        "notpng.png": b"GIF89a not a png",
        "flipped.png": good[:60] + bytes([good[60] ^ 0xFF]) + good[61:],
        "empty.png": b"",
    }
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name in [*cases, "plain.png"]:
        with pytest.raises(RecipeError) as e:
            read_recipe(tmp_path / name)
        assert name in str(e.value)


def test_original_trailer_is_imported(engine, tmp_path):
    from PIL import Image

    w = np.random.RandomState(2).randn(engine.config.w_dim).astype(np.float32)
    path = tmp_path / "orig.png"
    Image.new("RGB", (8, 8)).save(path)
    path.write_bytes(path.read_bytes() + legacy_trailer(w))
    recipe = engine.read_png(path)
    assert recipe.legacy and recipe.stack.w.shape == (engine.config.num_ws, engine.config.w_dim)
    assert np.allclose(recipe.stack.w[0], w, atol=1e-6)
    engine.render_recipe(recipe)  # renders


def test_cli_render_reports_bad_files_and_keeps_going(engine, tmp_path):
    stack = EditStack(seed=2)
    good = engine.save_png(tmp_path / "in" / "good.png", stack, engine.render(stack))
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    r = run_cli("render", "--model", str(engine.model.path), "--data", str(tmp_path / "data"), "--out", str(out),
                "--check", "--quiet", str(bad), str(good))
    assert r.returncode == 1
    assert "bad.png" in r.stderr and "identical to" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
