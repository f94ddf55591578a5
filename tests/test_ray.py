"""Batch jobs on a local Ray cluster of two workers write the same files as in-process (skipped without Ray)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from studio.engine import jobs
from studio.engine.edits import EditStack, SpatialTab
from studio.engine.engine import Engine

from .conftest import run_cli, run_job

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ganstudio[ray]')")


@pytest.fixture(scope="module")
def cluster():
    from studio.engine import distributed

    seconds, started = distributed.connect(distributed.LOCAL, 2)
    yield seconds
    if started:
        distributed.shutdown()


@pytest.fixture
def engine(ref_paths, tmp_path):
    return Engine.open(ref_paths[0], tmp_path / "data")


def _files(folder):
    """name -> (pixels, recipe without its creation time) of every PNG in a folder."""
    out = {}
    for p in sorted(folder.glob("*.png")):
        if p.name == "contact_sheet.png":
            continue
        with Image.open(p) as im:
            recipe = json.loads(im.text["ganstudio"])
            recipe.pop("created", None)
            out[p.name] = (np.asarray(im).copy(), recipe)
    return out


def _sweep_stack(engine):
    st = engine.renderer.layers["b16.conv0"]
    sel = np.zeros((16, 16), np.float32)
    sel[8:12, 4:12] = 1
    tab = SpatialTab("mouth", ["b16.conv0"], sel, {"b16.conv0": np.zeros(st.channels, np.float32)}, value=60.0)
    return EditStack(seed=3, psi=0.7, tabs=[tab])


def test_a_job_on_two_ray_workers_writes_the_same_files(cluster, engine, tmp_path):
    from studio.engine.distributed import ray_backend

    # 40 images: two chunks, one per worker (the in-process chunks, so windowed recipes match too)
    for job in (jobs.new_latents(EditStack(seed=0, psi=0.7), 40, seed=5),
                jobs.axis_aligned_sweep(_sweep_stack(engine), 0, list(range(20)))):
        here, m_here, _ = run_job(job, engine, tmp_path / "here")
        there, m_there, progress = run_job(job, engine, tmp_path / "there", backend=ray_backend(engine, 2))
        a, b = _files(here), _files(there)
        assert list(a) == list(b) == sorted(it.name for it in job.items)
        for name in a:
            assert np.array_equal(a[name][0], b[name][0]), name  # bit-identical pixels
            assert a[name][1] == b[name][1], name  # and recipes (model path, ws, tabs, device)
        assert m_there["files"] == m_here["files"] and m_there["status"] == "complete"
        assert progress[-1].done == len(job.items) and len(progress) >= 2  # one bar, shard by shard
        if job.contact_sheet:
            assert np.array_equal(np.asarray(Image.open(here / "contact_sheet.png")),
                                  np.asarray(Image.open(there / "contact_sheet.png")))


def test_a_cancelled_ray_job_resumes_and_completes(cluster, engine, tmp_path):
    from studio.engine.distributed import ray_backend

    job = jobs.new_latents(EditStack(seed=0, psi=0.7), 9, seed=2)
    cancel = threading.Event()
    it = job.run(engine, tmp_path / "out", cancel, backend=ray_backend(engine, 2, chunk_size=2))
    first = next(it)
    cancel.set()
    rest = list(it)
    folder = first.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "cancelled" and 0 < len(manifest["files"]) < 9 and not rest
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(manifest["files"])  # only complete files
    _, resumed = jobs.read_plan(folder)
    list(resumed.run(engine, tmp_path / "out", folder=folder, backend=ray_backend(engine, 2)))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["files"] == [i.name for i in job.items]
    assert _files(folder).keys() == {i.name for i in job.items}


def test_a_worker_refuses_model_bytes_of_another_hash(cluster, engine):
    from studio.engine.distributed import RayError, RenderWorker

    with pytest.raises(RayError, match="sha256"):
        RenderWorker(b"not the model", "x.pkl", engine.model.sha256, engine.model_file, {}, None)


def test_cli_batch_with_ray_local(ref_paths, tmp_path):
    r = run_cli("batch", "new-latents", "--model", str(ref_paths[0]), "--data", str(tmp_path / "data"), "--n", "4",
                "--rng-seed", "1", "--out", str(tmp_path / "ray"), "--ray", "local", "--ray-workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    here = run_cli("batch", "new-latents", "--model", str(ref_paths[0]), "--data", str(tmp_path / "data"), "--n",
                   "4", "--rng-seed", "1", "--out", str(tmp_path / "here"), "--quiet")
    assert here.returncode == 0, here.stderr
    a, b = _files(next((tmp_path / "here").iterdir())), _files(next((tmp_path / "ray").iterdir()))
    assert list(a) == list(b) and all(np.array_equal(a[k][0], b[k][0]) and a[k][1] == b[k][1] for k in a)
    bad = run_cli("batch", "new-latents", "--model", str(ref_paths[0]), "--data", str(tmp_path / "data"),
                  "--ray", "127.0.0.1:1", "--out", str(tmp_path / "x"), "--quiet")
    assert bad.returncode != 0 and "could not reach a Ray cluster" in bad.stderr


@pytest.mark.gui
def test_the_studio_sends_a_batch_job_to_ray_and_shows_its_progress(ref_paths, tmp_path):
    from .gui_harness import Studio

    with Studio(tmp_path, ref_paths[0], tmp_path / "data") as app:
        app.settled()
        app.click(*app.centre("tab_batch"))
        app.type_into("bj_out", str(tmp_path / "out"))
        app.type_into("bj_n", "6")
        app.type_into("bj_ray", "local")
        app.click(*app.centre("bj_start_btn"))
        p = app.wait(lambda p: "on Ray (local)" in p["message"] or p["batch"], 30, "job started on Ray")
        p = app.wait(lambda p: p["batch"] and p["batch"]["done"] == 6 and not p["batch"]["running"], 120, "done")
        assert "done: 6 of 6" in p["message"]
    manifest = json.loads((next((tmp_path / "out").iterdir()) / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["files"]) == 6


def test_rank_over_many_seeds_on_ray_matches_in_process(cluster, engine):
    from studio.engine.analysis import rank_channels
    from studio.engine.distributed import rank_on_ray

    stacks = [EditStack(seed=s, psi=0.7, noise_seed=s) for s in range(12)]
    sel = np.zeros((16, 16), np.float32)
    sel[9:12, 5:11] = 1
    r = engine.renderer.render_many(stacks, capture=("b16.conv0",), until="b16.conv0")
    here = rank_channels(r.features["b16.conv0"].cpu().numpy(), sel, "cosine")
    there = rank_on_ray(engine, stacks, "b16.conv0", sel, "cosine", workers=2, shard=5)  # 3 shards on 2 actors
    np.testing.assert_allclose(there, here, rtol=1e-9, atol=1e-12)
