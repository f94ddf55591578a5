"""The wheel as a user gets it: built from the checkout's sdist, installed with its dependencies into a fresh venv
outside the checkout, and run from another folder: generate, detect, batch and `render --check` on the bundled
model, with the user's data in its own folder and nothing written into the installation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
TORCH_VERSION = os.environ.get("TORCH_VERSION", "2.13.0")  # the pinned build scripts/setup.sh installs


def _run(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _source_copy(dest: Path) -> Path:
    """The checkout's files that git would commit (tracked, and new ones not ignored), copied: the build runs
    there, so it neither writes into the checkout nor picks up anything git ignores."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the install test builds from the files git lists")
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's ganstudio, the installed package folder, a clean environment) of a fresh install of the wheel."""
    tmp = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GANSTUDIO"))}
    source = _source_copy(tmp / "checkout")
    # the sdist (PEP 517 hook of the build backend), then the wheel built from the unpacked sdist, as pip would
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(tmp / 'dist')!r})"],
         source, env)
    sdist = next((tmp / "dist").glob("ganstudio-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
        assert any(m.endswith("/models/anime-portraits-64.safetensors") for m in members)
        assert any(m.endswith("/plugins/spatial_map.py") for m in members)
        assert any(m.endswith("/tabs/mouth_open.json") for m in members)
        tar.extractall(tmp / "sdist", filter="data")
    unpacked = next((tmp / "sdist").iterdir())
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(unpacked)], tmp, env)
    wheel = next((tmp / "dist").glob("ganstudio-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"studio/bundled/models/anime-portraits-64.safetensors", "studio/bundled/models/oracle.safetensors",
            "studio/bundled/plugins/spatial_map.py", "studio/bundled/data/README.md"} <= names
    assert any(n.startswith("studio/bundled/data/") and n.endswith("/tabs/mouth_open.json") for n in names)
    assert not any(n.startswith(("tests/", "models/", "data/", "plugins/")) for n in names)
    _run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp, env)
    pip = [str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, f"torch=={TORCH_VERSION}"], tmp, env)  # pinned: an open range could pull a CUDA build
    _run([*pip, str(wheel)], tmp, env)
    python = tmp / "venv" / "bin" / "python"
    where = _run([str(python), "-c", "import studio, os; print(os.path.dirname(studio.__file__))"], tmp, env)
    package = Path(where.stdout.strip())
    assert REPO not in package.parents and package.is_relative_to(tmp / "venv")
    env["GANSTUDIO_DATA"] = str(tmp / "user-data")
    env["MPLBACKEND"] = "Agg"
    return tmp / "venv" / "bin" / "ganstudio", package, env


def test_the_installed_wheel_generates_detects_batches_and_re_renders_exactly(installed, tmp_path):
    ganstudio, package, env = installed
    before = _files(package)
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = _run([str(ganstudio), "generate", "--seeds", "0-3", "--out", "gen", "--quiet"], work, env)
    assert "wrote 4 image(s)" in r.stdout
    _run([str(ganstudio), "detect", "--plugin", "spatial_map", "--seeds", "1", "--param", "layer=b32.conv1",
          "--param", "channels=1-4", "--out", "masks"], work, env)
    assert list((work / "masks").glob("*.png"))
    _run([str(ganstudio), "batch", "new-latents", "--n", "6", "--rng-seed", "2", "--out", "batch", "--quiet"],
         work, env)
    _run([str(ganstudio), "batch", "fmap-combinatoric", "--seed", "4", "--tab", "mouth_open=40", "--k", "3",
          "--out", "batch", "--quiet"], work, env)
    pngs = sorted(str(p) for p in work.glob("gen/*.png")) + sorted(
        str(p) for p in work.glob("batch/*/*.png") if not p.name.startswith("contact"))
    assert len(pngs) == 4 + 6 + 3
    r = _run([str(ganstudio), "render", "--check", "--out", "re", "--quiet", *pngs], work, env)
    assert r.stdout.count("identical to") == len(pngs), r.stdout
    # the user's data went to GANSTUDIO_DATA, nothing into the installation (its files and their times unchanged)
    data = Path(env["GANSTUDIO_DATA"])
    assert list(data.glob("*/latents.jsonl")) and (data / "recent.json").is_file()
    assert _files(package) == before
