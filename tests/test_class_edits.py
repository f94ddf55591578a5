"""Class edits: ws += t * (mean[target] - mean[own]), own read from the image's w; recipes, data files, the CLI."""

import json

import numpy as np
import pytest
import torch

from studio.engine.edits import ClassEdit, EditError, EditStack, lda_reader, nearest_class, untruncate
from studio.engine.engine import Engine
from studio.engine.modeldata import ModelData
from studio.engine.renderer import Renderer
from studio.gui.state import StudioState

from .conftest import random_generator


@pytest.fixture(scope="module")
def R():
    return Renderer(random_generator(resolution=32, seed=1))


def _edit(R, values=("a", "b", "c"), seed=0, target=None, strength=1.0, attribute="colour") -> ClassEdit:
    means = np.random.RandomState(seed).randn(len(values), R.G.cfg.w_dim).astype(np.float32)
    return ClassEdit(attribute, list(values), means, target, strength)


def test_nearest_class_reads_a_truncated_w_against_truncated_means():
    means = np.array([[0.0, 0.0], [4.0, 0.0]], np.float32)
    center = np.array([10.0, 0.0], np.float32)
    w0 = np.array([3.0, 0.0], np.float32)  # nearer class 1 before truncation
    assert nearest_class(w0, means, center, 1.0) == 1
    truncated = center + 0.2 * (w0 - center)  # (8.6, 0): nearest to mean 1 untruncated, still class 1 truncated
    assert nearest_class(truncated, means, center, 0.2) == 1
    assert nearest_class(np.array([0.5, 0.0], np.float32) * 0.2 + 0.8 * center, means, center, 0.2) == 0


def test_the_discriminant_reads_classes_the_nearest_mean_confuses():
    """Two classes 2 apart along x, w spread 10 along y: the nearest mean is fooled by y, the discriminant is not;
    it reads a truncated w as the w it was truncated from."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    ws = np.stack([2 * labels + 0.1 * rng.standard_normal(4000), 10 * rng.standard_normal(4000)], 1).astype(np.float32)
    ws[:, 1] += 3 * labels  # the class means differ along y too, where w varies most
    edit = ClassEdit.fit("x", ["p", "q"], ws[:3000], labels[:3000])
    assert edit.reader.shape == (2, 3)
    test_ws, test_labels = ws[3000:], labels[3000:]
    center = np.zeros(2, np.float32)
    by_reader = np.array([edit.own(w, center, 1.0) for w in test_ws])
    by_mean = np.array([nearest_class(w, edit.means, center, 1.0) for w in test_ws])
    assert (by_reader == test_labels).mean() > 0.99 and (by_mean == test_labels).mean() < 0.8
    center = np.array([0.3, -2.0], np.float32)
    truncated = center + 0.5 * (test_ws - center)
    assert np.array_equal([edit.own(w, center, 0.5) for w in truncated], by_reader)
    np.testing.assert_allclose(untruncate(truncated[0], center, 0.5), test_ws[0], atol=1e-5)
    np.testing.assert_array_equal(lda_reader(ws, labels, edit.means).shape, (2, 3))


def test_the_step_is_between_the_target_and_the_images_own_class_mean(R):
    edit = _edit(R)
    plain = R.ws_for(EditStack(seed=5))
    own = nearest_class(plain[0].numpy(), edit.means, R.G.w_avg.numpy(), 1.0)
    others = [v for i, v in enumerate(edit.values) if i != own]
    for strength in (1.0, 0.5):
        edit.target, edit.strength = others[0], strength
        moved = R.ws_for(EditStack(seed=5, class_edits=[edit]))
        expected = strength * (edit.means[edit.values.index(others[0])] - edit.means[own])
        assert torch.allclose(moved - plain, torch.from_numpy(expected).expand_as(plain), atol=1e-5)
    edit.target = edit.values[own]  # already of the target class: nothing moves
    assert torch.equal(R.ws_for(EditStack(seed=5, class_edits=[edit])), plain)


def test_a_truncated_image_reads_its_class_against_truncated_means(R):
    center = R.G.w_avg.numpy()
    plain = R.ws_for(EditStack(seed=8, psi=0.5))[0].numpy()
    edit = _edit(R, seed=3)
    own = nearest_class(plain, edit.means, center, 0.5)
    edit.target = edit.values[(own + 1) % 3]
    moved = R.ws_for(EditStack(seed=8, psi=0.5, class_edits=[edit]))[0].numpy()
    np.testing.assert_allclose(moved - plain, edit.means[(own + 1) % 3] - edit.means[own], atol=1e-5)
    # cutoff 0 truncates nothing: the first row is read at psi 1
    untruncated = R.ws_for(EditStack(seed=8, psi=0.5, cutoff=0))[0].numpy()
    own1 = nearest_class(untruncated, edit.means, center, 1.0)
    edit.target = edit.values[(own1 + 1) % 3]
    moved = R.ws_for(EditStack(seed=8, psi=0.5, cutoff=0, class_edits=[edit]))[0].numpy()
    np.testing.assert_allclose(moved - untruncated, edit.means[(own1 + 1) % 3] - edit.means[own1], atol=1e-5)


def test_own_classes_reads_every_attribute_before_its_edits(R):
    a, b = _edit(R, seed=1, target="b", attribute="x"), _edit(R, seed=2, attribute="y")
    stack = EditStack(seed=9, psi=0.6, class_edits=[a, b])
    w0 = R.ws_for(EditStack(seed=9, psi=0.6))[0].numpy()
    center = R.G.w_avg.numpy()
    assert R.own_classes(stack) == {"x": a.values[nearest_class(w0, a.means, center, 0.6)],
                                    "y": b.values[nearest_class(w0, b.means, center, 0.6)]}
    assert R.own_classes(EditStack(seed=9)) == {}


def test_every_edit_reads_the_same_unedited_w_so_order_does_not_matter(R):
    a, b = _edit(R, seed=1, target="b", attribute="x"), _edit(R, seed=2, target="c", attribute="y")
    one = R.ws_for(EditStack(seed=9, class_edits=[a, b]))
    two = R.ws_for(EditStack(seed=9, class_edits=[b, a]))
    assert torch.allclose(one, two, atol=1e-6)


def test_the_renderer_refuses_means_of_another_w_size(R):
    edit = ClassEdit("x", ["a", "b"], np.zeros((2, R.G.cfg.w_dim + 1), np.float32), "a")
    with pytest.raises(EditError, match="means of 33 values"):
        R.render(EditStack(seed=0, class_edits=[edit]))


def test_stack_json_round_trips_and_is_version_3_only_when_used(R):
    with_reader = _edit(R, target="c")
    with_reader.reader = np.random.RandomState(5).randn(3, R.G.cfg.w_dim + 1).astype(np.float32)
    back = EditStack.from_json(json.loads(json.dumps(EditStack(seed=2, class_edits=[with_reader]).to_json())))
    assert np.array_equal(back.class_edits[0].reader, with_reader.reader)
    assert torch.equal(R.ws_for(back), R.ws_for(EditStack(seed=2, class_edits=[with_reader])))
    off = EditStack(seed=1, class_edits=[_edit(R)])
    assert off.to_json()["version"] == 1 and "class_edits" not in off.to_json()
    on = EditStack(seed=1, class_edits=[_edit(R, target="b", strength=1.5)])
    doc = json.loads(json.dumps(on.to_json()))
    assert doc["version"] == 3
    back = EditStack.from_json(doc)
    (e,) = back.class_edits
    assert (e.attribute, e.values, e.target, e.strength) == ("colour", ["a", "b", "c"], "b", 1.5)
    assert np.array_equal(e.means, on.class_edits[0].means)
    assert torch.equal(R.ws_for(back), R.ws_for(on))


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(values=["a", "a", "c"]), "distinct"),
    (lambda d: d.update(values=["a"]), "2 to"),
    (lambda d: d.update(values="abc"), "an object"),
    (lambda d: d.update(target="z"), "not one of its values"),
    (lambda d: d.update(strength=float("nan")), "strength"),
    (lambda d: d.update(strength=True), "strength"),
    (lambda d: d.update(means={"shape": [2, 32], "f32": "AAAA"}), "base64|means"),
    (lambda d: d.pop("means"), "missing"),
    (lambda d: d.update(reader={"shape": [3, 32], "f32": "A" * 512}), "reader must be"),
    (lambda d: d.update(values=[str(i) for i in range(300)]), "2 to"),
])
def test_hostile_class_edits_in_a_recipe_are_refused_by_name(R, change, match):
    doc = EditStack(seed=1, class_edits=[_edit(R, target="b")]).to_json()
    change(doc["class_edits"][0])
    with pytest.raises(EditError, match=match):
        EditStack.from_json(doc)


def test_nan_means_or_reader_are_refused():
    with pytest.raises(EditError, match="NaN"):
        ClassEdit("x", ["a", "b"], np.array([[np.nan], [0.0]], np.float32)).validate()
    with pytest.raises(EditError, match="NaN"):
        ClassEdit("x", ["a", "b"], np.zeros((2, 1), np.float32), reader=np.full((2, 2), np.inf, np.float32)).validate()


def test_fit_takes_the_mean_w_of_each_label_and_needs_every_value():
    ws = np.array([[0.0, 2], [2, 2], [5, 5]], np.float32)
    edit = ClassEdit.fit("x", ["p", "q"], ws, np.array([0, 0, 1]))
    np.testing.assert_array_equal(edit.means, [[1, 2], [5, 5]])
    with pytest.raises(EditError, match="no samples of r"):
        ClassEdit.fit("x", ["p", "q", "r"], ws, np.array([0, 0, 1]))


def test_a_png_with_a_class_edit_recreates_its_pixels(small_model, tmp_path):
    engine = Engine(small_model, tmp_path / "data")
    means = np.random.RandomState(4).randn(2, engine.config.w_dim).astype(np.float32) * 2
    stack = EditStack(seed=3, psi=0.7)
    own = nearest_class(engine.renderer.ws_for(stack)[0].numpy(), means, engine.renderer.G.w_avg.numpy(), 0.7)
    stack.class_edits = [ClassEdit("x", ["p", "q"], means, ["p", "q"][1 - own], 1.0)]
    result = engine.render(stack)
    assert not np.array_equal(result.uint8(), engine.render(EditStack(seed=3, psi=0.7)).uint8())
    recipe = engine.read_png(engine.save_png(tmp_path / "a.png", stack, result))
    assert recipe.stack.class_edits[0].target == ["p", "q"][1 - own]
    assert np.array_equal(engine.render(recipe.stack, use_cache=False).uint8(), result.uint8())


def test_classes_file_round_trips_user_shadows_shipped_and_broken_entries_are_reported(tmp_path):
    shipped = ModelData(tmp_path / "shipped", "abc")
    means = np.arange(6, dtype=np.float32).reshape(3, 2)
    reader = np.arange(9, dtype=np.float32).reshape(3, 3)
    shipped.save_class_edits([ClassEdit("hair", ["x", "y", "z"], means, reader=reader),
                              ClassEdit("eyes", ["u", "v"], means[:2])])
    mine = ModelData(tmp_path / "user", "abc", shipped_root=tmp_path / "shipped")
    mine.save_class_edits([ClassEdit("eyes", ["u", "w"], means[1:])])
    edits = mine.load_class_edits()
    assert [(e.attribute, e.values) for e in edits] == [("hair", ["x", "y", "z"]), ("eyes", ["u", "w"])]
    assert all(e.target is None for e in edits) and np.array_equal(edits[0].means, means)
    assert np.array_equal(edits[0].reader, reader) and edits[1].reader is None
    (mine.dir / "classes.json").write_text(json.dumps({"format": "ganstudio-classes", "attributes": [
        {"attribute": "ok", "values": ["a", "b"], "means": [[1, 2], [3, 4]]},
        {"attribute": "ragged", "values": ["a", "b"], "means": [[1], [2, 3]]},
        {"attribute": "one", "values": ["a"], "means": [[1, 2]]},
        {"attribute": "string", "values": "ab", "means": [[1, 2], [3, 4]]},
        {"attribute": "reader", "values": ["a", "b"], "means": [[1, 2], [3, 4]], "reader": [[1, 2], [3, 4]]},
        {"values": ["a", "b"], "means": [[1, 2], [3, 4]]}]}))
    mine.errors.clear()
    assert [e.attribute for e in mine.load_class_edits()] == ["hair", "eyes", "ok"]
    assert len(mine.errors) == 5 and "entry 1" in mine.errors[0]
    (mine.dir / "classes.json").write_text("{not json")
    mine.errors.clear()
    assert [e.attribute for e in mine.load_class_edits()] == ["hair", "eyes"]
    assert "classes.json is unreadable" in mine.errors[0]


def test_state_keeps_an_imported_edit_with_its_own_means(R):
    state = StudioState(EditStack(seed=0), {})
    model = [_edit(R, seed=1), _edit(R, seed=2, attribute="eyes")]
    imported = _edit(R, seed=9, target="c")  # a recipe's edit, made with other means
    state.stack.class_edits = [imported]
    state.set_class_edits(model)
    assert [e.attribute for e in state.stack.class_edits] == ["colour", "eyes"]
    assert state.stack.class_edits[0] is imported and state.stack.class_edits[1].target is None
    state.set_class_target("eyes", "b", 0.5)
    assert (state.stack.class_edits[1].target, state.stack.class_edits[1].strength) == ("b", 0.5)
    with pytest.raises(EditError, match="no value 'q'"):
        state.set_class_target("eyes", "q")
