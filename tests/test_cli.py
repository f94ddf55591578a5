"""The headless CLI end to end on the NVlabs reference snapshot."""

import numpy as np
from PIL import Image

from .conftest import run_cli


def test_info_lists_layers(ref_paths):
    r = run_cli("info", str(ref_paths[0]))
    assert r.returncode == 0, r.stderr
    assert "nvlabs-pickle" in r.stdout and "b16.conv0" in r.stdout and "16x16" in r.stdout


def test_generate_writes_generate_py_pixels_and_render_recreates_them(ref_paths, tmp_path):
    pkl, ref = ref_paths
    out = tmp_path / "gen"
    r = run_cli("generate", "--model", str(pkl), "--seeds", "0-2", "--psi", "0.7", "--out", str(out),
                "--data", str(tmp_path / "data"), "--quiet")
    assert r.returncode == 0, r.stderr
    for seed in range(3):
        img = np.asarray(Image.open(out / f"seed{seed:04d}.png"))
        assert (img != ref[f"seed{seed}_uint8"]).sum() <= 2  # rounding ties at most (see test_network)
    log = list((tmp_path / "data").glob("*/latents.jsonl"))
    assert len(log) == 1 and len(log[0].read_text().splitlines()) == 3
    r = run_cli("render", "--model", str(pkl), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "re"),
                "--check", "--quiet", *sorted(str(p) for p in out.glob("*.png")))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("identical to") == 3


def test_errors_are_messages_not_tracebacks(tmp_path):
    r = run_cli("info", str(tmp_path / "nope.pkl"))
    assert r.returncode == 2 and "error: no model file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("generate", "--model", str(tmp_path / "nope.pkl"), "--seeds", "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_batch_pngs_of_every_kind_re_render_bit_for_bit(tmp_path):
    """The bundled model: 32 new latents (per-sample ws), an axis sweep and an fmap combinatoric of a painted tab
    (shared w, windowed) and a combinatoric of the shipped detector tab (each image detected, then
    edited); `render --check` finds every PNG identical (array_equal of the pixels)."""
    from studio import paths
    from studio.engine.edits import SpatialTab
    from studio.engine.files import sha256_file
    from studio.engine.modeldata import ModelData

    data = str(tmp_path / "data")
    selection = np.zeros((16, 16), np.float32)
    selection[9:12, 5:11] = 1
    weights = np.zeros(128, np.float32)
    weights[[89, 3]] = 1
    ModelData(tmp_path / "data", sha256_file(paths.bundled_model())).save_tab(
        SpatialTab("mouth_box", ["b16.conv0"], selection, {"b16.conv0": weights}))
    runs = [("new-latents", "--n", "32", "--psi", "0.7", "--rng-seed", "3"),
            ("axis-sweep", "--seed", "20077", "--tab", "mouth_box=60", "--channels", "0-15"),
            ("fmap-combinatoric", "--seed", "5", "--tab", "mouth_box=40", "--k", "6"),
            ("fmap-combinatoric", "--seed", "7", "--tab", "mouth_open=40", "--k", "3")]
    pngs = []
    for i, run in enumerate(runs):
        out = tmp_path / f"run{i}"
        r = run_cli("batch", *run, "--out", str(out), "--data", data, "--quiet")
        assert r.returncode == 0, r.stderr
        pngs += sorted(p for p in out.glob("*/*.png") if p.name != "contact_sheet.png")
    assert len(pngs) == 32 + 2 * 16 + 6 + 3  # the sweep moves each channel both ways
    r = run_cli("render", "--data", data, "--out", str(tmp_path / "re"), "--check", "--quiet", *map(str, pngs))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert r.stdout.count("identical to") == len(pngs) and "DIFFERS" not in r.stdout
    windowed = {p.parent.parent.name for p in pngs if '"window"' in Image.open(p).text.get("ganstudio", "")}
    assert windowed == {"run1", "run2"}  # the painted sweeps record their windows; latents, detected tabs do not


def test_batch_set_moves_images_into_a_class_and_refuses_unknown_attributes_and_values(tmp_path):
    """`--set ATTRIBUTE=VALUE[:STRENGTH]` puts the bundled model's class edit into every image's recipe, which
    re-renders bit for bit; an unknown attribute or value is a message naming what there is."""
    import json

    data, out = str(tmp_path / "data"), tmp_path / "out"
    r = run_cli("batch", "new-latents", "--n", "2", "--set", "eye_colour=green:1.5", "--out", str(out), "--data", data,
                "--quiet")
    assert r.returncode == 0, r.stderr
    pngs = sorted(p for p in out.glob("*/*.png") if p.name != "contact_sheet.png")
    assert len(pngs) == 2
    stack = json.loads(Image.open(pngs[0]).text["ganstudio"])["stack"]
    edits = [(e["attribute"], e["target"], e["strength"]) for e in stack["class_edits"]]
    assert edits == [("eye_colour", "green", 1.5)]
    r = run_cli("render", "--data", data, "--out", str(tmp_path / "re"), "--check", "--quiet", *map(str, pngs))
    assert r.returncode == 0 and r.stdout.count("identical to") == 2, r.stdout + r.stderr
    for spec, message in (("eye_colour=plaid", "eye_colour has no value 'plaid'"),
                          ("wings=on", "no categorical attribute 'wings'")):
        r = run_cli("batch", "new-latents", "--n", "1", "--set", spec, "--out", str(tmp_path / "x"), "--data", data)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
