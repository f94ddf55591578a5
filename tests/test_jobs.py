"""Batch jobs: outputs, manifests, cancellation, bad inputs; animation."""

import json
import threading

import numpy as np
import pytest
from PIL import Image

from studio.engine import jobs
from studio.engine.animate import collect_frames, pingpong, write_animation
from studio.engine.edits import Direction, EditError, EditStack, SpatialTab
from studio.engine.engine import Engine

from .conftest import run_cli, run_job


@pytest.fixture
def engine(small_model, tmp_path):
    return Engine(small_model, tmp_path / "data")


def _tab(engine, value=60.0):
    st = engine.renderer.layers["b16.conv0"]
    sel = np.zeros((16, 16), np.float32)
    sel[8:12, 4:12] = 1
    w = np.zeros(st.channels, np.float32)
    w[[2, 5]] = 1
    return SpatialTab("mouth", ["b16.conv0"], sel, {"b16.conv0": w}, value=value)


def _run(job, engine, out, cancel=None):
    return run_job(job, engine, out, cancel)[:2]


def test_new_latents_write_recipes_that_recreate_them(engine, tmp_path):
    stack = EditStack(seed=0, psi=0.7, tabs=[_tab(engine)])
    folder, manifest = _run(jobs.new_latents(stack, 5, seed=1), engine, tmp_path / "out")
    assert manifest["status"] == "complete" and len(manifest["files"]) == 5
    for name in manifest["files"]:
        recipe = engine.read_png(folder / name)
        assert recipe.stack.tabs[0].name == "mouth"
        again = engine.render_recipe(recipe).uint8()[0].astype(int)
        written = np.asarray(Image.open(folder / name)).astype(int)
        assert np.abs(again - written).max() <= 1 and (again == written).mean() > 0.999


def test_axis_sweep_files_contact_sheet_and_untouched_tab(engine, tmp_path):
    tab = _tab(engine)
    before = tab.weights["b16.conv0"].copy()
    stack = EditStack(seed=3, tabs=[tab])
    job = jobs.axis_aligned_sweep(stack, 0, channels=[0, 1, 2, 7])
    folder, manifest = _run(job, engine, tmp_path / "out")
    assert manifest["files"][:4] == ["0_p_mouth.png", "0_n_mouth.png", "1_p_mouth.png", "1_n_mouth.png"]
    assert len(manifest["files"]) == 8 and (folder / "contact_sheet.png").exists()
    assert np.array_equal(tab.weights["b16.conv0"], before)
    # each image is the single-channel edit: the same as rendering that stack alone
    recipe = engine.read_png(folder / "7_n_mouth.png")
    w = recipe.stack.tabs[-1].weights["b16.conv0"]
    assert w[7] == -1 and np.count_nonzero(w) == 1
    written = np.asarray(Image.open(folder / "7_n_mouth.png"))
    single = engine.render(recipe.stack, use_cache=False).uint8()[0].astype(int)
    assert np.abs(single - written.astype(int)).max() <= 1  # rendered whole, not in the job's window: rounding
    assert recipe.window is not None and np.array_equal(engine.render_recipe(recipe).uint8()[0], written)
    # the contact sheet: every tile with its channel and sign printed under it, in plan order
    assert [json.loads(line)["label"] for line in (folder / "plan.jsonl").read_text().splitlines()][:4] == \
        ["0+", "0-", "1+", "1-"]
    sheet = np.asarray(Image.open(folder / "contact_sheet.png"))
    h = written.shape[0]
    assert sheet.shape == (h + jobs.LABEL_H + 2, 16 * (h + 2), 3)
    bands = [sheet[h:h + jobs.LABEL_H, c * (h + 2):c * (h + 2) + h].max(axis=2) for c in range(8)]
    assert all((b > 150).sum() > 5 for b in bands)  # text in every label band
    assert not np.array_equal(bands[0], bands[7])  # "0+" and "7-" read differently


def test_cancel_leaves_complete_files_and_a_manifest(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "CHUNK", 2)
    cancel = threading.Event()
    job = jobs.new_latents(EditStack(seed=0), 10, seed=2)
    it = job.run(engine, tmp_path / "out", cancel)
    first = next(it)
    cancel.set()
    rest = list(it)
    assert first.done == 2 and rest == []
    manifest = json.loads((first.folder / "manifest.json").read_text())
    assert manifest["status"] == "cancelled" and len(manifest["files"]) == 2
    assert sorted(p.name for p in first.folder.iterdir()) == sorted(manifest["files"] + ["manifest.json", "plan.jsonl"])


def test_combinatorics_and_spectrum(engine, tmp_path):
    rng = np.random.default_rng(0)
    dirs = [Direction(n, rng.normal(size=engine.config.w_dim).astype(np.float32), s)
            for n, s in (("smile", 2.0), ("hair", -1.0), ("off", 0.0))]
    stack = EditStack(seed=1, directions=dirs)
    assert len(jobs.attribute_combinatoric(stack, 3).items) == 9
    seq = jobs.attribute_combinatoric(stack, 2, sequential=True)
    assert len(seq.items) == 4 and [d.strength for d in seq.items[0].stack.directions] == [1.0, 0.0, 0.0]
    assert len(jobs.attribute_combinatoric(stack, 1).items) == 1  # k = 1 works (the original divided by zero)
    spec = jobs.attribute_spectrum(stack, 5, slide_past_zero=True)
    assert [it.stack.directions[0].strength for it in spec.items] == [2.0, 1.0, 0.0, -1.0, -2.0]
    t1, t2 = _tab(engine, 40), _tab(engine, -80)
    t2.name = "other"
    combo = jobs.fmap_combinatoric([EditStack(seed=1, tabs=[t1, t2])], k=2)
    assert sorted((it.stack.tabs[0].value, it.stack.tabs[1].value) for it in combo.items) == [
        (0, -80), (0, 0), (40, -80), (40, 0)]  # from the start value (0) to each tab's value, both included
    five = jobs.fmap_combinatoric([EditStack(seed=1, tabs=[_tab(engine, 20)])], k=5)
    assert [it.stack.tabs[0].value for it in five.items] == [0, 5, 10, 15, 20]
    with pytest.raises(EditError, match="slider"):
        jobs.attribute_spectrum(EditStack(seed=1), 3)
    folder, manifest = _run(combo, engine, tmp_path / "out")
    assert manifest["status"] == "complete" and len(manifest["files"]) == 4


def test_apply_to_folder_reports_bad_files_and_does_the_rest(engine, tmp_path, ref_model):
    src = tmp_path / "src"
    src.mkdir()
    for seed in (1, 2):
        s = EditStack(seed=seed)
        engine.save_png(src / f"good{seed}.png", s, engine.render(s))
    (src / "notes.txt").write_text("hello")
    Image.new("RGB", (8, 8)).save(src / "plain.png")
    other = Engine(ref_model, tmp_path / "data")
    other.save_png(src / "other_model.png", EditStack(seed=1), other.render(EditStack(seed=1)))
    job = jobs.apply_to_folder(engine, EditStack(seed=0, tabs=[_tab(engine)]), src)
    assert [it.name for it in job.items] == ["good1.png", "good2.png"]
    assert len(job.problems) == 3
    assert any("notes.txt" in p for p in job.problems) and any("not the loaded" in p for p in job.problems)
    folder, manifest = _run(job, engine, tmp_path / "out")
    assert len(manifest["problems"]) == 3 and len(manifest["files"]) == 2
    assert engine.read_png(folder / "good2.png").stack.seed == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty" in jobs.apply_to_folder(engine, EditStack(seed=0), empty).problems[0]


def test_interpolation_ends_at_the_inputs(engine, tmp_path):
    paths = []
    for seed in (1, 2, 3):
        s = EditStack(seed=seed, psi=0.8)
        paths.append(engine.save_png(tmp_path / f"{seed}.png", s, engine.render(s)))
    job = jobs.interpolate(engine, paths, 4, "slerp")
    assert len(job.items) == 8  # 4 per segment; the shared middle image is not repeated
    folder, manifest = _run(job, engine, tmp_path / "out")
    first = np.asarray(Image.open(folder / manifest["files"][0])).astype(int)
    last = np.asarray(Image.open(folder / manifest["files"][-1])).astype(int)
    assert np.abs(first - np.asarray(Image.open(paths[0])).astype(int)).max() <= 1
    assert np.abs(last - np.asarray(Image.open(paths[-1])).astype(int)).max() <= 1


def test_animation_gif_mp4_and_errors(tmp_path):
    import imageio.v3 as iio

    frames = [np.full((16, 16, 3), 30 * i, np.uint8) for i in range(5)]
    assert [f[0, 0, 0] for f in pingpong(frames)] == [0, 30, 60, 90, 120, 90, 60, 30]
    gif = write_animation(frames, tmp_path / "a.gif", fps=10, use_pingpong=True, upscale=2)
    data = iio.imread(gif)
    assert data.shape == (8, 32, 32, 3) and iio.immeta(gif)["duration"] == 100
    mp4 = write_animation(frames, tmp_path / "a.mp4", fps=5)
    assert iio.imread(mp4).shape[0] == 5
    with pytest.raises(EditError, match="gif or .mp4"):
        write_animation(frames, tmp_path / "a.avi")
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"f{i}.png")
    (tmp_path / "junk.png").write_bytes(b"nope")
    got, problems = collect_frames([tmp_path])
    assert len(got) == 5 and "junk.png" in problems[0]


def test_cli_batch_and_animate(engine, tmp_path):
    engine.data.save_tab(_tab(engine))
    model = str(engine.model.path)
    r = run_cli("batch", "axis-sweep", "--model", model, "--data", str(tmp_path / "data"), "--tab", "mouth=70",
                "--channels", "0-3", "--out", str(tmp_path / "b"), "--quiet")
    assert r.returncode == 0, r.stderr
    folder = next((tmp_path / "b").iterdir())
    assert len(list(folder.glob("*_p_*.png"))) == 4 and "complete: 8 of 8 images" in r.stdout
    r = run_cli("animate", str(folder), "--out", str(tmp_path / "s.gif"), "--pingpong", "--fps", "8")
    assert r.returncode == 0, r.stderr
    assert "14 frames" in r.stdout  # 8 frames ping-ponged (the contact sheet is not a frame)
    r = run_cli("batch", "apply-folder", "--model", model, "--data", str(tmp_path / "data"), "--folder",
                str(tmp_path / "nope"), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_jobs_share_w_and_batch(engine):
    """A sweep's items resolve to one w, so they render as one shared-weight batch."""
    job = jobs.axis_aligned_sweep(EditStack(seed=3, tabs=[_tab(engine)]), 0, channels=[0, 1, 2])
    result = engine.renderer.render_many([it.stack for it in job.items])
    assert result.ws.shape[0] == 1 and result.images.shape[0] == 6


def test_jobs_run_detectors_and_recipes_keep_the_detected_selection(engine, tmp_path):
    from studio import paths
    from studio.engine.plugins import PluginManager

    tab = _tab(engine)
    tab.selection = np.zeros((16, 16), np.float32)
    tab.detector = {"plugin": "spatial_map", "mode": "run_and_modify",
                    "params": {"layer": "b16.conv0", "channels": "1-4", "threshold": 0.6}}
    job = jobs.new_latents(EditStack(seed=0, tabs=[tab]), 3, seed=4)
    folder, manifest, _ = run_job(job, engine, tmp_path / "out", plugins=PluginManager(paths.shipped("plugins")))
    assert manifest["status"] == "complete" and manifest["problems"] == []
    for name in manifest["files"]:
        recipe = engine.read_png(folder / name)
        t = recipe.stack.tabs[0]
        assert t.selection.any() and t.detector is None
        again = engine.render_recipe(recipe).uint8()[0]
        assert np.array_equal(again, np.asarray(Image.open(folder / name)))


def test_folder_and_new_latent_combinatorics(engine, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    s = EditStack(seed=5, noise_mode="random", noise_seed=9)
    engine.save_png(src / "a.png", s, engine.render(s))
    (src / "junk.txt").write_text("x")
    tab = _tab(engine, 60)
    job = jobs.folder_combinatoric(engine, EditStack(seed=0, noise_mode="random", tabs=[tab]), src, k=2)
    assert [it.name for it in job.items] == ["a_0000_mouth+0.png", "a_0001_mouth+60.png"]
    assert all(it.stack.seed == 5 and it.stack.noise_seed == 9 for it in job.items)
    assert len(job.problems) == 1 and "junk.txt" in job.problems[0]
    nl = jobs.new_latent_combinatoric(EditStack(seed=0, tabs=[tab]), n=3, k=2, seed=1)
    assert nl.kind == "new_latent_combinatoric" and len(nl.items) == 6
    assert len({it.stack.seed for it in nl.items}) == 3


def test_one_registry_plans_the_cli_and_the_studio_jobs(engine, tmp_path):
    from studio.engine.jobspecs import JOB_SPECS, PARAM_HELP, JobArgs, job_spec, plan

    assert len({s.name for s in JOB_SPECS}) == len({s.label for s in JOB_SPECS}) == len(JOB_SPECS)
    for spec in JOB_SPECS:
        assert set(spec.params) <= set(PARAM_HELP), spec.name
        assert job_spec(spec.label) is job_spec(spec.name) is spec
    with pytest.raises(EditError, match="unknown job"):
        job_spec("nope")
    stack = EditStack(seed=0, psi=0.7, tabs=[_tab(engine, value=20.0)])
    # the combinatoric's first frame is its start value: the unedited image when start is 0
    job = plan(engine, "Fmap combinatoric", stack, JobArgs(k=5, start=0.0))
    assert [it.stack.tabs[0].value for it in job.items] == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert [it.stack.tabs[0].value for it in plan(engine, "fmap-combinatoric", stack, JobArgs(k=1)).items] == [20.0]
    sweep = plan(engine, "axis-sweep", stack, JobArgs(channels="3,7", tab_index=0))
    assert [it.label for it in sweep.items] == ["3+", "3-", "7+", "7-"]
    with pytest.raises(EditError, match="folder"):
        plan(engine, "apply-folder", stack, JobArgs(folder=" "))
    # the CLI goes through the same plan
    r = run_cli("batch", "--help")
    assert all(spec.name in r.stdout for spec in JOB_SPECS) and PARAM_HELP["k"] in r.stdout


def test_a_job_hands_each_image_s_feature_maps_to_the_history(engine, tmp_path):
    from studio.engine.analysis import FeatureHistory

    stack = EditStack(seed=0, psi=0.7, tabs=[_tab(engine)])
    job = jobs.new_latents(stack, 3, seed=4)
    st = engine.renderer.layers["b16.conv0"]
    hist = FeatureHistory(tmp_path / "hist", "b16.conv0", (st.channels, 16, 16))
    progress = list(job.run(engine, tmp_path / "out", capture="b16.conv0",
                            on_features=lambda name, maps: hist.append(maps, label=name)))
    assert len(hist) == 3 and [e["label"] for e in hist.entries] == [it.name for it in job.items]
    for k, item in enumerate(job.items):  # the maps are those of the image written, edit included
        alone = engine.render(item.stack, capture=("b16.conv0",)).features["b16.conv0"][0].numpy()
        np.testing.assert_allclose(hist.channel(5)[k], alone[5], atol=2e-3 * np.abs(alone).max())
    assert progress[-1].done == 3


def test_a_plan_s_items_are_read_back_as_data(engine, tmp_path):
    stack = EditStack(seed=0, psi=0.7, tabs=[_tab(engine)])
    job = jobs.axis_aligned_sweep(stack, 0, [2, 5])
    folder, _ = _run(job, engine, tmp_path / "out")
    items = jobs.read_items(folder)  # the sweep browser's reader: the plan as written, nothing touched
    assert [(i.name, i.label) for i in items] == [(i.name, i.label) for i in job.items]
    assert items[1].stack.to_json() == job.items[1].stack.to_json()
    line = json.dumps({**job.items[0].to_json(), "name": "../outside.png"})
    (folder / jobs.PLAN_FILE).write_text(line + "\n")
    with pytest.raises(EditError, match="line 1: bad file name"):
        jobs.read_items(folder)
    with pytest.raises(EditError, match="not a batch folder"):
        jobs.read_items(tmp_path)
