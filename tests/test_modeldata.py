"""The per-model data folder: tabs, directions, latent log, the original's CSVs; broken files are reported."""

import json

import numpy as np
import pytest

from studio.engine.edits import Direction, EditError, SpatialTab, format_channel_list, parse_channel_list, parse_seeds
from studio.engine.modeldata import DataError, ModelData


def _tab(name="mouth open"):
    sel = np.zeros((16, 16), np.float32)
    sel[9:12, 6:10] = 1
    w = np.zeros(64, np.float32)
    w[33] = -1
    return SpatialTab(name, ["b16.conv0"], sel, {"b16.conv0": w}, value=92)


def test_tabs_roundtrip_and_broken_tab_files(tmp_path):
    data = ModelData(tmp_path, "abc")
    path = data.save_tab(_tab())
    assert path.name == "mouth_open.json"
    (data.tabs_dir / "broken.json").write_text("{not json")
    (data.tabs_dir / "foreign.json").write_text(json.dumps({"format": "other"}))
    tabs = data.load_tabs()
    assert [t.name for t in tabs] == ["mouth open"]
    assert np.array_equal(tabs[0].selection, _tab().selection) and tabs[0].value == 92
    assert len(data.errors) == 2 and "broken.json" in data.errors[0]
    assert (data.tabs_dir / "broken.json").read_text() == "{not json"  # left as it was


def test_directions_latent_log_and_original_csvs(tmp_path):
    data = ModelData(tmp_path, "abc")
    v = np.random.RandomState(0).randn(8).astype(np.float32)
    data.add_direction(Direction("smile", v))
    data.add_direction(Direction("smile", -v))
    data.add_direction(Direction("hair", v))
    dirs = data.load_directions()
    assert [d.name for d in dirs] == ["smile", "hair"] and np.array_equal(dirs[0].vector, -v)

    data.log_latent(np.ones((2, 8), np.float32), seed=4, file="x.png")
    with open(data.dir / "latents.jsonl", "a") as f:
        f.write('{"torn')
    data.log_latent(np.zeros((2, 8), np.float32), seed=5)
    assert [e["seed"] for e in data.latent_log()] == [4, 5]

    csv = tmp_path / "attributes.csv"
    csv.write_text("open_mouth,d41d8cd98f00b204|attr," + ":".join(str(x) for x in v) + "\n")
    assert data.import_original("attributes", csv, w_dim=8) == 1
    assert "open_mouth" in [d.name for d in data.load_directions()]
    avg = tmp_path / "average_latent.csv"
    avg.write_text("avg,h," + ":".join("0.5" for _ in range(8)))
    data.import_original("average_latent", avg, w_dim=8)
    assert np.allclose(data.average_latent(), 0.5)
    with pytest.raises(DataError, match="has 8 values"):
        data.import_original("attributes", csv, w_dim=16)


def test_channel_list_syntax():
    assert parse_channel_list("1,3-5,2x7,-0.5x9") == {1: 1, 3: 1, 4: 1, 5: 1, 7: 2, 9: -0.5}
    assert parse_channel_list("3,3") == {3: 2}
    with pytest.raises(EditError, match="cannot read"):
        parse_channel_list("1,a")
    with pytest.raises(EditError, match="does not exist"):
        parse_channel_list("70", num_channels=64)
    w = np.zeros(10, np.float32)
    w[[2, 5]] = [1, -2]
    assert format_channel_list(w) == "2,-2x5"
    assert parse_seeds("0-3,9") == [0, 1, 2, 3, 9]


def test_tab_names_that_sanitise_alike_never_overwrite(tmp_path):
    data = ModelData(tmp_path, "abc")

    def tab(name, v):
        return SpatialTab(name, ["b8.conv0"], np.ones((8, 8), np.float32), {"b8.conv0": np.full(4, v, np.float32)})
    paths = [data.save_tab(tab(n, i + 1)) for i, n in enumerate(["mouth_open", "mouth open", "mouth/open"])]
    assert len(set(paths)) == 3 and paths[0].name == "mouth_open.json"
    for i, n in enumerate(["mouth_open", "mouth open", "mouth/open"]):
        assert data.load_tab(data.tab_path(n)).weights["b8.conv0"][0] == i + 1
    assert data.save_tab(tab("mouth open", 9)) == paths[1]  # the same tab saved again: its own file
    assert sorted(t.name for t in data.load_tabs()) == ["mouth open", "mouth/open", "mouth_open"]


def test_a_tab_at_an_unknown_layer_is_not_loaded_and_does_not_break_renders(tmp_path, small_model):
    from studio.engine.edits import EditStack
    from studio.engine.engine import Engine

    eng = Engine(small_model, tmp_path / "data")
    bad = SpatialTab("elsewhere", ["b256.conv0"], np.ones((8, 8), np.float32), {"b256.conv0": np.ones(4, np.float32)},
                     value=20.0)
    eng.data.save_tab(bad)
    good = SpatialTab("here", ["b8.conv0"], np.ones((8, 8), np.float32), {"b8.conv0": np.ones(64, np.float32)},
                      value=20.0)
    eng.data.save_tab(good)
    tabs = eng.data.load_tabs(check=eng.renderer.check_tab)
    assert [t.name for t in tabs] == ["here"] and "no layer 'b256.conv0'" in eng.data.errors[0]
    assert (eng.data.tabs_dir / "elsewhere.json").exists()  # left on disk as it was
    assert eng.render(EditStack(seed=0, tabs=tabs)).images is not None
    bad.active = False  # a switched-off tab that does not fit the model adds nothing and is not checked
    assert eng.render(EditStack(seed=0, tabs=[bad])).images is not None


def test_written_files_honour_the_umask(tmp_path):
    import os

    from studio.engine.files import write_atomic

    old = os.umask(0o022)
    try:
        assert (write_atomic(tmp_path / "a.txt", b"x").stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        assert (write_atomic(tmp_path / "b.txt", b"x").stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


def test_broken_directions_are_reported_one_by_one(tmp_path):
    data = ModelData(tmp_path, "abc")
    data.dir.mkdir(parents=True)
    (data.dir / "directions.json").write_text(
        '{"format": "ganstudio-directions", "directions": [{"name": "ok", "vector": [1, 2]},'
        ' {"name": "nan", "vector": [NaN, 1]}, {"name": "ragged", "vector": [[1], [2, 3]]}, {"vector": [1, 1]}]}')
    assert [d.name for d in data.load_directions()] == ["ok"]
    assert len(data.errors) == 3 and "entry 1" in data.errors[0]


def test_free_path_never_names_an_existing_file(tmp_path):
    from studio.engine.files import free_path

    p = tmp_path / "image.png"
    assert free_path(p) == p
    p.write_bytes(b"mine")
    assert free_path(p) == tmp_path / "image-2.png"
    (tmp_path / "image-2.png").write_bytes(b"also mine")
    assert free_path(p) == tmp_path / "image-3.png" and p.read_bytes() == b"mine"
