"""Batches never lose or misreport work: bad items, Ctrl-C / SIGTERM, SIGKILL and --resume, a full disk."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studio.engine import jobs
from studio.engine.edits import EditStack, SpatialTab
from studio.engine.engine import Engine
from studio.engine.recipe import read_image

from .conftest import REPO, run_cli


@pytest.fixture
def engine(small_model, tmp_path):
    return Engine(small_model, tmp_path / "data")


def _batch_cmd(model: Path, out: Path, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "studio.cli", "batch", "new-latents", "--model", str(model), "--data",
            str(out.parent / "data"), "--n", str(n), "--rng-seed", "3", "--out", str(out), "--quiet", *extra]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _wait_for_files(out: Path, at_least: int, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in out.glob("*/manifest.json"):
            try:
                if len(json.loads(m.read_text())["files"]) >= at_least:
                    return m.parent
            except (ValueError, OSError):
                pass
        time.sleep(0.05)
    raise AssertionError("the batch wrote nothing in time")


def test_one_bad_item_does_not_spoil_its_chunk(engine, tmp_path):
    good = [jobs.Item(f"{i}.png", EditStack(seed=i)) for i in range(3)]
    st = engine.renderer.layers["b8.conv0"]
    huge = SpatialTab("boom", ["b8.conv0"], np.ones((8, 8), np.float32),
                      {"b8.conv0": np.full(st.channels, 3e38, np.float32)}, value=900.0)
    bad = jobs.Item("bad.png", EditStack(seed=9, tabs=[huge]))  # renders to infinity: refused, not black
    job = jobs.Job("test", [good[0], bad, *good[1:]], {})
    progress = list(job.run(engine, tmp_path / "out"))
    m = _manifest(progress[-1].folder)
    assert m["status"] == "complete" and m["files"] == ["0.png", "1.png", "2.png"]
    assert "NaN or infinite" in m["failed"]["bad.png"] and not (progress[-1].folder / "bad.png").exists()


def test_a_bad_item_alone_in_the_last_chunk_is_recorded_not_fatal(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK", 2)
    st = engine.renderer.layers["b8.conv0"]
    huge = SpatialTab("boom", ["b8.conv0"], np.ones((8, 8), np.float32),
                      {"b8.conv0": np.full(st.channels, 3e38, np.float32)}, value=900.0)
    items = [jobs.Item(f"{i}.png", EditStack(seed=i)) for i in range(2)] + [
        jobs.Item("bad.png", EditStack(seed=9, tabs=[huge]))]
    progress = list(jobs.Job("test", items, {}).run(engine, tmp_path / "out"))
    m = _manifest(progress[-1].folder)
    assert m["status"] == "complete" and m["files"] == ["0.png", "1.png"] and list(m["failed"]) == ["bad.png"]


def test_render_goes_on_after_errors_and_counts_them(engine, tmp_path):
    eng = engine
    a = eng.save_png(tmp_path / "a.png", EditStack(seed=1), eng.render(EditStack(seed=1)))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    b = eng.save_png(tmp_path / "b.png", EditStack(seed=2), eng.render(EditStack(seed=2)))
    r = run_cli("render", str(a), str(tmp_path / "junk.png"), str(tmp_path / "missing.png"), str(b), "--check",
                "--model", str(eng.model.path), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"),
                "--quiet")
    assert r.returncode == 2, r.stderr  # two of four failed
    assert "junk.png" in r.stderr and "missing.png" in r.stderr and "2 of 4 failed" in r.stderr
    assert r.stdout.count("identical to") == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_a_true_manifest(small_model, tmp_path, sig):
    out = tmp_path / "out"
    proc = subprocess.Popen(_batch_cmd(small_model.path, out, 4000), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    folder = _wait_for_files(out, 32)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    m = _manifest(folder)
    assert m["status"] == "interrupted" and 32 <= len(m["files"]) < 4000
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(m["files"])
    assert not list(folder.glob(".*.tmp"))


class _SignalsFromAFinaliser:
    """Sends SIGTERM to this process from inside __del__: Python raises the handler's KeyboardInterrupt there,
    prints "Exception ignored" and drops it (the rare way a real Ctrl-C used to be lost and a batch ran on)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupt_dropped_inside_a_finaliser_still_stops_the_batch(small_model, tmp_path, monkeypatch):
    from studio import cli

    render = jobs.render_chunk
    calls = []

    def render_and_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            _SignalsFromAFinaliser()  # collected at once: the signal arrives inside its __del__
        return render(*args, **kwargs)

    monkeypatch.setattr(jobs, "render_chunk", render_and_signal)
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    handlers = [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)]
    out = tmp_path / "out"
    assert cli.main(_batch_cmd(small_model.path, out, 320)[3:]) == 130
    assert dropped == [KeyboardInterrupt]  # the handler's exception really was dropped in __del__
    folder = next(out.iterdir())
    m = _manifest(folder)
    assert m["status"] == "interrupted" and len(calls) == 2 and len(m["files"]) == 2 * jobs.CHUNK
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(m["files"])
    assert [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)] == handlers  # the CLI's are gone


def test_sigkill_then_resume_finishes_without_redoing_or_duplicating(small_model, tmp_path):
    n = 300
    straight = subprocess.run(_batch_cmd(small_model.path, tmp_path / "straight", n), cwd=REPO, capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    ref = next((tmp_path / "straight").iterdir())
    out = tmp_path / "out"
    proc = subprocess.Popen(_batch_cmd(small_model.path, out, n), cwd=REPO)
    folder = _wait_for_files(out, 64)
    proc.kill()
    proc.wait(timeout=30)
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}
    assert 64 <= len(before) < n and _manifest(folder)["status"] == "running"
    r = run_cli("batch", "--resume", str(folder), "--model", str(small_model.path), "--data",
                str(tmp_path / "data"), "--quiet")
    assert r.returncode == 0, r.stderr
    m = _manifest(folder)
    assert m["status"] == "complete" and len(m["files"]) == len(set(m["files"])) == n and m["resumed"] == 1
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(p.name for p in ref.glob("*.png")) == sorted(m["files"])
    for name, mtime in before.items():  # what the killed run wrote was kept, not redone
        assert (folder / name).stat().st_mtime_ns == mtime
    for name in names[::25]:
        assert np.array_equal(read_image(folder / name), read_image(ref / name))
    again = run_cli("batch", "--resume", str(folder), "--model", str(small_model.path), "--quiet")
    assert again.returncode == 0 and "nothing left to do" in again.stdout


def _fsize_limit(limit: int):
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return pre


def test_disk_full_is_a_clear_error_with_no_partial_file(small_model, tmp_path):
    out = tmp_path / "out"
    # small enough for the plan and the manifest, too small for one PNG with its recipe
    r = subprocess.run(_batch_cmd(small_model.path, out, 4), cwd=REPO, capture_output=True, text=True,
                       timeout=300, preexec_fn=_fsize_limit(2500), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 2 and "disk full while writing" in r.stderr and "Traceback" not in r.stderr, r.stderr
    folder = next(out.iterdir())
    m = _manifest(folder)
    assert m["status"] == "failed" and "disk full" in m["error"] and len(m["files"]) < 4
    on_disk = sorted(p.name for p in folder.iterdir())
    assert on_disk == sorted(["manifest.json", "plan.jsonl", *m["files"]])  # no partial file, no temp file
    for name in m["files"]:
        read_image(folder / name)
