"""PNGs carry recipes that re-create them; bad PNGs give clear errors and write nothing."""

import json

import numpy as np
import pytest

from studio.engine.edits import Direction, EditStack, SpatialTab
from studio.engine.engine import Engine
from studio.engine.recipe import RecipeError, _parse_recipe, legacy_trailer, read_recipe

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


def test_equal_ws_rows_are_stored_once_and_mixed_ws_in_full(engine, tmp_path):
    from PIL import Image

    plain = EditStack(seed=4, psi=0.7)
    path = engine.save_png(tmp_path / "plain.png", plain, engine.render(plain))
    doc = json.loads(Image.open(path).text["ganstudio"])
    assert doc["ws_rows"] == engine.config.num_ws and doc["ws"]["shape"] == [1, engine.config.w_dim]
    recipe = engine.read_png(path)
    assert recipe.ws.shape == (engine.config.num_ws, engine.config.w_dim)
    assert np.array_equal(recipe.ws, engine.render(plain).ws[0].numpy())
    cut = EditStack(seed=4, psi=0.2, cutoff=2)  # rows differ: stored in full
    doc = json.loads(Image.open(engine.save_png(tmp_path / "cut.png", cut, engine.render(cut))).text["ganstudio"])
    assert "ws_rows" not in doc and doc["ws"]["shape"][0] == engine.config.num_ws
    doc["ws"], doc["ws_rows"] = {"shape": [2, engine.config.w_dim], "f32": doc["ws"]["f32"]}, 3
    from studio.engine.recipe import _parse_recipe

    with pytest.raises(RecipeError, match="malformed"):
        _parse_recipe(json.dumps(doc), "bad.png")


@pytest.mark.parametrize("shape", [(64, 64, 3), (1, 5, 3), (9, 1, 3), (33, 17)])
def test_png_encoder_round_trips_through_pillow(shape, tmp_path):
    from PIL import Image

    from studio.engine.recipe import encode_png

    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    (tmp_path / "x.png").write_bytes(encode_png(image, {"ganstudio": "{\"a\": \"\u00e9\"}"}))
    back = Image.open(tmp_path / "x.png")
    assert np.array_equal(np.asarray(back), image) and back.text["ganstudio"] == '{"a": "\u00e9"}'


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


def test_the_recipe_records_a_reduced_precision_render():
    from studio.engine.recipe import recipe_json

    stack = EditStack(seed=1)
    ws = np.zeros((4, 8), np.float32)
    doc = recipe_json(stack, ws, "0" * 64, "m", "cuda", precision="fp16")
    assert doc["precision"] == "fp16" and "precision" not in recipe_json(stack, ws, "0" * 64, "m", "cpu")
    back = _parse_recipe(json.dumps(doc), "x.png")
    assert back.precision == "fp16" and back.model_path is None
