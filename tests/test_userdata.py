"""The user's data folder over the shipped one, an older version's folder picked up, and models found by hash."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from studio import paths
from studio.engine.edits import Direction, EditStack, SpatialTab
from studio.engine.engine import Engine
from studio.engine.files import sha256_file
from studio.engine.loaders import save_model
from studio.engine.modeldata import ModelData
from studio.engine.modelindex import ModelIndex

from .conftest import random_generator, run_cli

SHA = "ab" * 32


def _tab(name: str, value: float = 10.0, res: int = 8) -> SpatialTab:
    sel = np.zeros((res, res), np.float32)
    sel[2:4, 3:5] = 1
    return SpatialTab(name, ["b8.conv0"], sel, {"b8.conv0": np.ones(4, np.float32)}, value=value)


@pytest.fixture
def shipped(tmp_path):
    """A shipped data folder with two tabs, two directions and an average latent (the tests check that its files
    stay untouched: as root, read-only modes would not stop a write)."""
    root = tmp_path / "shipped"
    data = ModelData(root, SHA)
    data.save_tab(_tab("mouth_open", 5.0))
    data.save_tab(_tab("smile", 7.0))
    data.save_directions([Direction("age", np.ones(4, np.float32)), Direction("hair", np.zeros(4, np.float32))])
    data.save_average_latent(np.full(4, 0.5, np.float32), 10)
    return root


def test_user_data_overlays_the_shipped_data_and_never_writes_it(shipped, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in shipped.rglob("*")}
    d = ModelData(tmp_path / "user", SHA, shipped_root=shipped)
    assert d.tab_names() == ["mouth_open", "smile"] and d.average_latent().tolist() == [0.5] * 4
    assert [x.name for x in d.load_directions()] == ["age", "hair"]
    # editing a shipped tab saves a user copy of the same stem, which shadows it
    edited = _tab("mouth_open", 42.0)
    path = d.save_tab(edited)
    assert path == d.tabs_dir / "mouth_open.json"
    assert {t.name: t.value for t in d.load_tabs()} == {"mouth_open": 42.0, "smile": 7.0}
    # a new name that sanitises like a shipped tab's stem never shadows it
    other = d.save_tab(_tab("smile!", 1.0))
    assert other.name == "smile-2.json" and {t.name for t in d.load_tabs()} == {"mouth_open", "smile", "smile!"}
    # a user direction of a shipped name shadows it in place; a new one comes after
    d.add_direction(Direction("hair", np.full(4, 2.0, np.float32)))
    d.add_direction(Direction("smile", np.full(4, 3.0, np.float32)))
    assert [(x.name, float(x.vector[0])) for x in d.load_directions()] == [("age", 1.0), ("hair", 2.0),
                                                                            ("smile", 3.0)]
    # deleting a shipped tab hides it; restoring it shows it again; deleting the user copy shows the shipped one
    gone = d.load_tab(d.tab_path("smile"))
    d.delete_tab("smile")
    assert "smile" not in d.tab_names()
    d.restore_tab(gone)
    assert "smile" in d.tab_names() and not (d.tabs_dir / "smile.json").exists()
    d.delete_tab("mouth_open")
    assert "mouth_open" not in d.tab_names()  # the user copy is removed and the shipped one hidden
    d.log_latent(np.zeros((2, 4), np.float32), 3)
    assert {p: p.stat().st_mtime_ns for p in shipped.rglob("*")} == before
    assert d.errors == []


def test_an_earlier_versions_data_folder_is_picked_up_once(shipped, tmp_path):
    legacy = tmp_path / "old-data"
    old = ModelData(legacy, "cd" * 32)
    old.save_tab(_tab("mine"))
    old.log_latent(np.zeros((1, 4), np.float32), 1)
    d = ModelData(tmp_path / "user", "cd" * 32, shipped_root=shipped, legacy_root=legacy)
    assert d.tab_names() == ["mine"] and len(d.latent_log()) == 1
    (legacy / ("cd" * 32) / "tabs" / "later.json").write_text((d.tabs_dir / "mine.json").read_text())
    again = ModelData(tmp_path / "user", "cd" * 32, shipped_root=shipped, legacy_root=legacy)
    assert again.tab_names() == ["mine"]  # copied once: the user's folder is never overwritten from the old one
    # an old folder that is also the shipped one (a checkout): only what is never shipped comes over
    both = ModelData(tmp_path / "user2", SHA, shipped_root=shipped, legacy_root=shipped)
    assert not both.dir.exists() and both.tab_names() == ["mouth_open", "smile"]


def test_the_data_folder_comes_from_data_the_environment_or_the_platform(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.DATA_ENV, str(tmp_path / "env"))
    assert paths.user_data_root() == tmp_path / "env"
    assert paths.user_data_root(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv(paths.DATA_ENV)
    assert paths.user_data_root() == paths.platform_data_dir() and "ganstudio" in str(paths.platform_data_dir())
    assert paths.shipped("models") / paths.BUNDLED_MODEL_NAME == paths.bundled_model()
    with pytest.raises(ValueError):
        paths.shipped("../etc")


def test_models_are_found_by_hash_and_the_index_survives_broken_files(tmp_path):
    model = save_model(random_generator(seed=3), tmp_path / "elsewhere" / "m.safetensors")
    sha = sha256_file(model)
    index = ModelIndex(tmp_path / "user", (tmp_path / "user" / "models",))
    assert index.find(sha) is None
    assert index.find(sha, hint=str(model)) == model  # the recipe's recorded path
    index.remember(model, sha)
    assert index.find(sha) == model and index.recent()[0]["sha256"] == sha
    (tmp_path / "user" / "recent.json").write_text("{not json")
    (tmp_path / "user" / "model_hashes.json").write_text('{"x": [1, 2, 3, 4]}')
    assert index.recent() == [] and index.find(sha) is None
    moved = tmp_path / "user" / "models" / "renamed.safetensors"
    moved.parent.mkdir(parents=True)
    model.rename(moved)
    assert index.find(sha, hint=str(model)) == moved  # found in the user's model folder by its bytes
    # a recent entry whose file now holds another model is not trusted
    index.remember(moved, "0" * 64)
    assert index.find("0" * 64) is None


def test_render_finds_the_model_of_each_png_without_model(tmp_path):
    data = tmp_path / "data"
    a = save_model(random_generator(seed=1), tmp_path / "a" / "one.safetensors")
    b = save_model(random_generator(seed=2, resolution=16), tmp_path / "b" / "two.safetensors")
    pngs = []
    for i, model in enumerate((a, b)):
        eng = Engine.open(model, data, device="cpu")
        s = EditStack(seed=i)
        pngs.append(eng.save_png(tmp_path / f"img{i}.png", s, eng.render(s)))
        assert json.loads(Image.open(pngs[-1]).text["ganstudio"])["model"]["path"] == str(model.resolve())
    (data / "recent.json").unlink()  # only the paths the recipes recorded are left to find them by
    r = run_cli("render", "--data", str(data), "--check", "--quiet", "--out", str(tmp_path / "re"), *map(str, pngs))
    assert r.returncode == 0 and r.stdout.count("identical to") == 2, r.stderr
    b.rename(tmp_path / "gone.safetensors")  # moved away from everywhere the index looks
    r = run_cli("render", "--data", str(data), "--check", "--quiet", "--out", str(tmp_path / "re2"), *map(str, pngs))
    assert r.returncode == 1 and r.stdout.count("identical to") == 1
    assert "no model file with sha256" in r.stderr and "looked in" in r.stderr and "--model" in r.stderr
    assert str(b.resolve()) in r.stderr and "Traceback" not in r.stderr
