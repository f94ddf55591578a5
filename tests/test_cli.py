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
