"""The studio's state object and render worker, headless (no Dear PyGui)."""

import threading
import time

import numpy as np
import pytest

from studio.engine.edits import EditError, EditStack
from studio.gui.state import StudioState
from studio.gui.worker import RenderWorker


@pytest.fixture
def state():
    return StudioState(EditStack(seed=1), {"b16.conv0": (16, 32), "b8.conv1": (8, 64)})


def test_painting_accumulates_caps_erases_and_undoes(state):
    state.add_tab("mouth", "b16.conv0")
    v0 = state.version
    state.paint((2, 3), (4, 5), "+")
    state.paint((3, 4), (3, 4), "+")
    assert state.tab.selection[3, 4] == 2 and state.tab.selection[2:5, 3:6].sum() == 10
    assert state.version > v0
    state.overlap = False
    state.paint((3, 4), (3, 4), "+")
    assert state.tab.selection[3, 4] == 1  # "no overlap" caps at +-1
    state.paint((0, 0), (0, 1), "-")
    assert list(state.tab.selection[0, :2]) == [-1, -1]
    state.paint((0, 0), (15, 15), "0")
    assert not state.tab.selection.any()
    for _ in range(3):  # undo erase, the -1 row, the capped stroke
        state.undo()
    assert state.tab.selection[3, 4] == 2
    state.redo()
    assert state.tab.selection[3, 4] == 1


def test_tabs_names_weights_and_stack(state):
    a = state.add_tab("t", "b16.conv0")
    b = state.add_tab("t", "b8.conv1")
    assert (a.name, b.name) == ("t", "t_2") and b.selection.shape == (8, 8)
    state.set_weights_text("1,3-4,-2x10")
    assert list(np.flatnonzero(b.weights["b8.conv1"])) == [1, 3, 4, 10]
    with pytest.raises(EditError):
        state.set_weights_text("99")
    state.delete_tab()
    assert [t.name for t in state.stack.tabs] == ["t"] and state.tab.name == "t"


def test_add_top_channels_skips_those_set_and_rename_keeps_strokes(state):
    tab = state.add_tab("mouth", "b16.conv0")
    state.set_weights_text("5")
    state.ranked = [(5, 0.9), (9, 0.8), (12, 0.7), (3, 0.6)]
    assert state.add_top_channels(3) == [9, 12, 3]  # channel 5 is not weighted twice
    assert list(np.flatnonzero(tab.weights["b16.conv0"])) == [3, 5, 9, 12] and tab.weights["b16.conv0"].max() == 1
    state.paint((1, 1), (2, 2), "+")
    state.add_tab("other", "b8.conv1")
    with pytest.raises(EditError, match="exists already"):
        state.rename_tab("mouth")
    state.active_tab = 0
    state.rename_tab("mouth_open")
    state.undo()  # the stroke made before the rename is still undone on the renamed tab
    assert tab.name == "mouth_open" and not tab.selection.any()


def test_combined_direction(state):
    from studio.engine.edits import Direction

    state.set_directions([Direction("a", np.ones(4, np.float32)), Direction("b", np.arange(4, dtype=np.float32))])
    with pytest.raises(ValueError):
        state.combined_direction("c")
    state.set_direction_strength("a", 2.0)
    state.set_direction_strength("b", -1.0)
    assert np.allclose(state.combined_direction("c").vector, [2, 1, 0, -1])


def test_worker_latest_request_wins_and_errors_are_returned():
    started = threading.Event()
    release = threading.Event()
    seen = []

    def render(payload):
        seen.append(payload)
        if payload == "slow":
            started.set()
            release.wait(5)
        if payload == "boom":
            raise ValueError("bad stack")
        return payload.upper()

    w = RenderWorker(render)
    try:
        w.submit(1, "slow")
        assert started.wait(5)
        for v in range(2, 6):
            w.submit(v, f"r{v}")  # arrive while "slow" renders: only the newest survives
        release.set()
        assert w.wait_idle(5)
        done = w.poll()
        assert done.version == 5 and done.result == "R5"
        assert seen == ["slow", "r5"] and w.dropped >= 3
        w.submit(6, "boom")
        assert w.wait_idle(5)
        time.sleep(0.01)
        done = w.poll()
        assert isinstance(done.error, ValueError)
    finally:
        w.stop()


def test_the_frame_pacer_runs_full_speed_while_active_and_slows_at_rest():
    from studio.gui.pacing import ACTIVE_HOLD_S, IDLE_FRAME_S, FramePacer

    p = FramePacer()
    p.see_mouse(10.0, (5.0, 5.0), False)  # the mouse moved: active
    assert p.pause(10.0 + ACTIVE_HOLD_S / 2, 0.01) == 0.0
    p.see_mouse(11.0, (5.0, 5.0), False)  # still: no new activity
    assert p.pause(11.0, 0.01) == pytest.approx(IDLE_FRAME_S - 0.01)
    assert p.pause(11.0, 1.0) == 0.0  # a slow frame is not slowed further
    p.see_mouse(12.0, (5.0, 5.0), True)  # a button held down counts, without moving
    assert p.pause(12.1, 0.01) == 0.0
    p.active(20.0)
    assert not p.idle(20.0 + ACTIVE_HOLD_S) and p.idle(20.0 + ACTIVE_HOLD_S + 0.01)


def test_deleting_a_tab_is_undone_in_place_and_redone(state):
    s = state
    s.add_tab("a", "b16.conv0")
    s.add_tab("b", "b16.conv0")
    s.add_tab("c", "b16.conv0")
    s.active_tab = 1
    deletion = s.delete_tab(had_file=True)
    assert [t.name for t in s.stack.tabs] == ["a", "c"] and deletion.had_file and deletion.tab.name == "b"
    assert s.undo() is deletion and [t.name for t in s.stack.tabs] == ["a", "b", "c"] and s.tab.name == "b"
    assert s.redo() is deletion and [t.name for t in s.stack.tabs] == ["a", "c"]
    assert s.undo() is deletion and s.undo() is None


def test_messages_are_logged_whole_and_bounded(state):
    from studio.gui.state import LOG_SIZE

    long = "x" * 500
    state.say(long, error=True)
    assert state.message == long and state.log[-1][1:] == (long, True)
    for i in range(LOG_SIZE + 5):
        state.say(f"m{i}")
    assert len(state.log) == LOG_SIZE and state.log[-1][1] == f"m{LOG_SIZE + 4}" and not state.message_is_error


def test_a_detector_over_a_painted_selection_is_undone_with_the_painting(state):
    state.add_tab("mouth", "b16.conv0")
    state.paint((2, 3), (4, 5), "+")
    painted = state.tab.selection.copy()
    layout = state.layout
    assert state.set_detector({"plugin": "spatial_map", "mode": "run and modify", "params": {}})
    assert state.layout > layout  # every panel shows the new detector
    state.tab.selection = np.zeros_like(painted)  # what the detector found replaces the painting
    assert not state.set_detector({"plugin": "spatial_map", "mode": "run", "params": {"k": "2"}})  # no new step
    state.undo()
    assert state.tab.detector is None and np.array_equal(state.tab.selection, painted)
    state.redo()
    assert state.tab.detector["mode"] == "run and modify"
    state.add_tab("empty", "b16.conv0")  # nothing painted: nothing to keep, no undo step
    n = len(state.undo_stack)
    assert not state.set_detector({"plugin": "spatial_map", "mode": "run", "params": {}})
    assert len(state.undo_stack) == n


def test_a_sweep_tile_sets_its_channel_and_sign(state):
    with pytest.raises(EditError, match="add a tab"):
        state.set_channel(3, 1.0)
    state.add_tab("t", "b16.conv0")
    state.set_channel(7, -1.0)
    state.set_channel(9, 1.0)
    w = state.tab.weights["b16.conv0"]
    assert w[7] == -1 and w[9] == 1 and np.count_nonzero(w) == 2
    with pytest.raises(EditError, match="does not exist"):
        state.set_channel(32, 1.0)


def test_a_sweep_tile_goes_into_the_sweep_s_tab_or_a_new_one(state):
    from studio.engine.edits import SpatialTab

    state.add_tab("other", "b8.conv1")  # active, at another layer than the sweep's
    sel = np.zeros((16, 16), np.float32)
    sel[4:6, 4:8] = 1
    probe = SpatialTab("mouth", ["b16.conv0"], sel, {"b16.conv0": np.eye(32, dtype=np.float32)[3]}, value=40.0)
    state.take_sweep_tab(probe, 3, -1.0)
    tab = state.tab
    assert tab.name == "mouth" and tab.layers == ["b16.conv0"] and tab.value == 40.0 and tab.active
    assert np.array_equal(tab.selection, sel) and tab.weights["b16.conv0"][3] == -1
    state.active_tab = 0
    state.take_sweep_tab(probe, 5, 1.0)  # the sweep's tab exists now: it gets the channel, no new tab
    assert [t.name for t in state.stack.tabs] == ["other", "mouth"] and state.tab.name == "mouth"
    assert np.count_nonzero(state.tab.weights["b16.conv0"]) == 2
    with pytest.raises(EditError, match="not a layer"):
        state.take_sweep_tab(SpatialTab("x", ["b4.conv1"], sel, {"b4.conv1": np.zeros(8, np.float32)}), 0, 1.0)


def test_the_canvas_view_zooms_about_the_cursor_and_stays_inside_the_image():
    from studio.gui.canvas import MIN_SPAN, View

    v = View().zoomed(2.0, 128, 384, 512)  # the image point under (128, 384) stays under it
    assert v.span == 0.5 and v.to_image(128, 384, 512) == pytest.approx((0.25, 0.75))
    assert v.to_canvas(*v.to_image(300, 20, 512), 512) == pytest.approx((300, 20))
    assert View().zoomed(0.5, 10, 10, 512) == View()  # never smaller than the whole image
    deep = View()
    for _ in range(50):
        deep = deep.zoomed(1.25, 511, 511, 512)
    assert deep.span == pytest.approx(MIN_SPAN) and deep.u0 + deep.span <= 1.0 + 1e-12
    moved = v.panned(-10_000, 0, 512)  # dragged far: the view stops at the image's edge
    assert moved.u0 == pytest.approx(0.5) and moved.v0 == v.v0
