"""The procedural portrait renderer: deterministic, varied, with masks that match what is drawn."""

import json

import numpy as np
import torch

from studio.portraits.render import (
    ATTRIBUTES,
    PART_INDEX,
    PARTS,
    Z_LAYOUT,
    PortraitParams,
    draw_portrait,
    params_from_z,
    render_dataset,
)


def test_deterministic_and_varied():
    zs = np.random.RandomState(0).randn(200, 64)
    imgs, labs, params = render_dataset(zs[:4])
    imgs2, labs2, _ = render_dataset(zs[:4])
    assert np.array_equal(imgs, imgs2) and np.array_equal(labs, labs2)
    labels = [params_from_z(z).labels() for z in zs]
    for name, classes in ATTRIBUTES.items():
        counts = np.bincount([lab[name] for lab in labels], minlength=len(classes))
        assert (counts >= 0.02 * len(zs)).all(), (name, counts)  # every value is common


def test_each_class_has_its_own_z_coordinate():
    """Raising one class's coordinate reaches that class from any other, and leaves the other attributes alone."""
    zs = np.random.RandomState(1).randn(300, 64)
    before = [params_from_z(z).labels() for z in zs]
    for name, classes in ATTRIBUTES.items():
        for k in range(len(classes)):
            moved, coords = zs.copy(), Z_LAYOUT[name]
            if coords.stop - coords.start == 1:  # a binary attribute: the sign of its one coordinate
                moved[:, coords.start] += 4.0 if k else -4.0
            else:
                moved[:, coords.start + k] += 4.0
            after = [params_from_z(z).labels() for z in moved]
            assert np.mean([a[name] == k for a in after]) > 0.95, (name, classes[k])
            for other in ATTRIBUTES:
                if other != name:
                    assert all(a[other] == b[other] for a, b in zip(after, before, strict=True)), (name, other)


def test_masks_follow_the_parts():
    p = params_from_z(np.random.RandomState(3).randn(64))
    p.mouth, p.openness, p.blush, p.hairband = 2, 1.0, 1, 1
    img, lab = draw_portrait(p)
    present = set(np.unique(lab))
    for part in PARTS:
        assert PART_INDEX[part] in present, part
    mouth = lab == PART_INDEX["mouth"]
    ys, xs = np.nonzero(mouth)
    assert ys.mean() > 32 and abs(xs.mean() - 32) < 6  # mouth in the lower middle of the face
    left, right = (np.nonzero(lab == PART_INDEX[k])[1].mean() for k in ("left_eye", "right_eye"))
    assert left < 32 < right
    # the mouth is dark red inside: its pixels differ from the skin around it
    skin = img[lab == PART_INDEX["skin"]].mean(0)
    assert np.abs(img[mouth].mean(0) - skin).sum() > 100
    closed = draw_portrait(PortraitParams(**{**p.to_dict(), "mouth": 0}))[1]
    assert (closed == PART_INDEX["mouth"]).sum() < mouth.sum()  # an open mouth is bigger than a closed one


def test_class_mean_direction_follows_where_the_classes_differ_most():
    from studio.portraits.evaluate import balanced_accuracy, fit_direction

    rng = np.random.RandomState(0)
    y = rng.rand(2000) < 0.3
    ws = rng.randn(2000, 4).astype(np.float32) * np.array([0.01, 3.0, 1.0, 1.0], np.float32)
    ws[:, 0] += 0.05 * y  # separates perfectly, but w barely varies along it
    ws[:, 1] += 6.0 * y  # separates well along a direction w really varies in
    d = fit_direction(ws, y)
    assert abs(np.linalg.norm(d) - 1) < 1e-6 and d[1] > 0.99
    assert balanced_accuracy(ws, y, d) > 0.8
    assert balanced_accuracy(ws, y, -d) < 0.2


def test_partial_direction_holds_the_other_labels_fixed():
    from studio.portraits.evaluate import fit_direction, fit_partial_directions

    rng = np.random.RandomState(0)
    b = rng.rand(4000) < 0.5
    a = np.where(b, rng.rand(4000) < 0.8, rng.rand(4000) < 0.2)  # a mostly comes with b
    ws = rng.randn(4000, 3) * 0.1
    ws[:, 0] += 1.0 * a  # a's own change in w
    ws[:, 1] += 3.0 * b  # b's, which a's class mean also picks up
    design = np.stack([a, b], 1).astype(np.float64)
    design -= design.mean(0)
    own = fit_partial_directions(ws, design)[0]
    assert abs(np.linalg.norm(own) - 1) < 1e-6 and own[0] > 0.99
    assert fit_direction(ws, a)[1] > 0.8  # the class mean leans on b


def test_bundle_refuses_a_missing_previous_log(capsys, tmp_path):
    import pytest

    from studio.portraits.bundle import main

    with pytest.raises(SystemExit) as e:
        main(["--recipe", "x", "--run", str(tmp_path), "--previous-log", str(tmp_path / "missing.jsonl")])
    assert e.value.code == 2 and "--previous-log: no file at" in capsys.readouterr().err


def test_argmax_flip_ceiling():
    from studio.portraits.evaluate import argmax_flip_ceiling

    # two classes: argmax of two coordinates is the sign of their difference, whose class-mean direction is exact;
    # a +2 sigma step takes every sample whose difference is above -2 sigma: P(-2 < x < 0) / P(x < 0) = 0.9545
    assert abs(argmax_flip_ceiling(2) - 0.9545) < 0.005
    ceilings = [argmax_flip_ceiling(k) for k in (3, 6, 8)]
    assert ceilings == sorted(ceilings, reverse=True)  # more classes, less room
    assert abs(ceilings[0] - 0.888) < 0.01 and abs(ceilings[2] - 0.714) < 0.01


def test_w_linearity_is_the_share_of_w_an_affine_map_of_z_explains():
    import math

    import torch

    from studio.engine.network import normalize_2nd_moment as normalised
    from studio.portraits.evaluate import w_linearity

    a = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert w_linearity(lambda z: normalised(z) @ a + 3.0, 16, n=2000) > 1 - 1e-9
    assert w_linearity(lambda z: normalised(z).abs(), 16, n=2000) < 0.03  # |x| has no linear part in x
    # x beside |x|: the affine part explains Var(x) = 1 of Var(x) + Var(|x|) = 1 + (1 - 2 / pi)
    both = w_linearity(lambda z: torch.cat([normalised(z), normalised(z).abs()], 1), 16, n=4000)
    assert abs(both - 1 / (2 - 2 / math.pi)) < 0.02


def test_clustered_flip_rate_trades_read_accuracy_for_reach():
    from studio.portraits.evaluate import clustered_flip_rate

    # no spread: the step is 2 / sqrt(k - 1) of the way to the boundary, past it for k = 3 and 4, short for 6 and 8
    assert [clustered_flip_rate(k, 0.0, n=4000)[1] for k in (3, 4, 6, 8)] == [1.0, 1.0, 0.0, 0.0]
    # with eight classes, the better w holds them apart, the fewer a 2-sigma step reaches
    reads, flips = zip(*(clustered_flip_rate(8, s, n=20_000) for s in (0.2, 0.4, 0.6, 0.8)), strict=True)
    assert list(reads) == sorted(reads, reverse=True) and list(flips) == sorted(flips)
    assert reads[0] > 0.99 and flips[0] < 0.35 and reads[-1] < 0.55 and flips[-1] > 0.65


def test_relabelled_z_renders_the_given_labels_and_keeps_the_rest():
    """fd_sources re-renders each z with the labels a generator showed: every attribute must take the given label,
    and the continuous parameters (face position, size, hues) must not move."""
    from studio.portraits.fd_sources import relabel_z

    z = np.random.RandomState(3).randn(300, 64)
    rng = np.random.RandomState(4)
    labels = {name: rng.randint(len(values), size=len(z)) for name, values in ATTRIBUTES.items()}
    moved = relabel_z(z, labels, list(ATTRIBUTES))
    for i in range(len(z)):
        before, after = params_from_z(z[i]), params_from_z(moved[i])
        assert after.labels() == {name: int(labels[name][i]) for name in ATTRIBUTES}
        for name in ("face_x", "face_y", "face_w", "face_h", "eye_size", "bg_hue", "clothes_hue", "openness"):
            assert abs(getattr(after, name) - getattr(before, name)) < 1e-12  # |z| kept, up to rounding
    only_bangs = relabel_z(z, labels, ["bangs"])
    assert all(params_from_z(only_bangs[i]).hair_colour == params_from_z(z[i]).hair_colour for i in range(len(z)))


def test_pasting_every_part_of_the_render_gives_the_render_back():
    """fd_sources pastes one part of render(z) into G(z) at a time: the parts tile the image, so pasting all of
    them in turn gives the render exactly, each pixel comes from the render only inside its own part, and the
    per-part error is zero against itself and the mean |difference| (in [-1, 1] units) inside each part."""
    from studio.portraits.fd_sources import part_errors, paste_part
    from studio.portraits.render import PARTS

    renders, part_maps, _ = render_dataset(np.random.RandomState(6).randn(20, 64), 32)
    gen = np.full_like(renders, 128)
    pasted = gen
    for i in range(len(PARTS)):
        one = paste_part(gen, renders, part_maps, i)
        assert np.array_equal(one[part_maps == i], renders[part_maps == i])
        assert np.array_equal(one[part_maps != i], gen[part_maps != i])
        pasted = paste_part(pasted, renders, part_maps, i)
    assert np.array_equal(pasted, renders)
    assert all(v == 0 for v in part_errors(renders, renders, part_maps).values())
    errors = part_errors(gen, renders, part_maps)
    skin = part_maps == PARTS.index("skin")
    expected = np.abs(renders[skin].astype(float) - 128).mean() * 2 / 255
    assert abs(errors["skin"] - expected) < 1e-4


def test_variance_ratio_of_a_shrunk_set_is_the_square_of_its_factor():
    from studio.portraits.fd_sources import variance_ratios

    x = np.random.RandomState(5).randn(500, 12) * np.linspace(0.5, 3.0, 12)
    shrunk = x.mean(0) + 0.8 * (x - x.mean(0))
    ratios = variance_ratios(shrunk, x, ((0, 4), (4, 12)))
    assert all(abs(v - 0.64) < 1e-9 for v in ratios.values()), ratios


def test_skin_tone_is_read_back_from_the_pixels_of_every_render():
    """The oracle has no skin-tone head: evaluate.skin_tones reads the tone from the pixels inside a skin mask.  On
    renders with their own part maps it must give each render's tone; a blend snaps to the nearest tone, and an
    image without skin reads -1 (and relabel_z then keeps that row's own tone)."""
    from studio.portraits.evaluate import skin_tones
    from studio.portraits.fd_sources import relabel_z
    from studio.portraits.render import PART_INDEX, SKIN_TONES

    z = np.random.RandomState(8).randn(200, 64)
    imgs, parts, params = render_dataset(z, 64)
    truth = np.array([p.skin for p in params])
    assert set(truth) == set(range(len(SKIN_TONES)))
    assert np.array_equal(skin_tones(imgs, parts), truth)
    face = np.full((1, 16, 16), PART_INDEX["skin"], np.uint8)
    near_tan = np.full((1, 16, 16, 3), np.array(SKIN_TONES[2]) * 0.8 + np.array(SKIN_TONES[1]) * 0.2, np.uint8)
    assert skin_tones(near_tan, face).tolist() == [2]
    assert skin_tones(near_tan, np.zeros_like(face)).tolist() == [-1]
    wanted = np.where(np.arange(200) % 2 == 0, -1, (truth + 1) % len(SKIN_TONES))
    moved = relabel_z(z, {"skin": wanted}, ["skin"])
    assert [params_from_z(m).skin for m in moved] == np.where(wanted < 0, truth, wanted).tolist()


def test_soft_iou_weights_find_the_channel_difference_a_single_channel_misses():
    import torch

    from studio.portraits.discover import iou, normalised_maps, soft_iou_weights, thresholded

    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:16, 0:16]
    truth = np.zeros((40, 32, 32), bool)
    features = np.zeros((40, 2, 16, 16), np.float32)
    for i in range(40):
        cy, cx = rng.randint(4, 12, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 6
        ramp = rng.uniform(1, 3) * (xx if i % 2 else yy) / 15  # a slope across the image, different per image
        features[i, 0] = disk + ramp + 0.05 * rng.randn(16, 16)
        features[i, 1] = ramp
        truth[i] = np.repeat(np.repeat(disk, 2, 0), 2, 1)

    def best_iou(w):
        maps = normalised_maps(features, w, 0)
        return max(iou(thresholded(maps, t, 32), truth) for t in np.linspace(0.05, 0.95, 37))

    start = np.array([1.0, 0.0], np.float32)
    with torch.no_grad():  # as under a renderer's no_grad: the fit turns gradients back on for itself
        refined = soft_iou_weights(features, truth, start, smooth=0)
    assert best_iou(start) < 0.7  # the slope swamps the disk in some images
    assert best_iou(refined) > 0.9 and refined[1] < -0.5 * refined[0]


def test_tv_standard_error_matches_the_spread_of_tv_over_repeated_draws():
    from studio.portraits.compare import tv_standard_error

    rng = np.random.default_rng(0)
    data = np.array([0.3, 0.3, 0.2, 0.2])
    model = np.array([0.4, 0.24, 0.26, 0.1])  # every value away from the data, where the delta method holds
    n = 1000
    tvs = [0.5 * np.abs(rng.multinomial(n, model) / n - data).sum() for _ in range(4000)]
    predicted = tv_standard_error(model, data, n)
    assert abs(np.std(tvs) / predicted - 1) < 0.06
    assert abs(0.5 * np.abs(model - data).sum() - np.mean(tvs)) < 0.2 * predicted  # the estimate is unbiased there


def test_verdict_marks_only_the_drops_larger_than_the_noise():
    from studio.portraits.compare import FLIP_SAMPLES, NOISE_Z, Figure, figures, share_difference_se, verdict

    se = share_difference_se(0.8, 0.8, FLIP_SAMPLES)
    assert abs(se - np.sqrt(2 * 0.8 * 0.2 / FLIP_SAMPLES)) < 1e-12
    small = Figure("a", 0.8, 0.8 - 0.5 * NOISE_Z * se, standard_error=se)
    large = Figure("b", 0.8, 0.6, standard_error=se)
    assert small.worse and not small.worse_beyond_noise and large.worse_beyond_noise
    assert Figure("fd", 1.2, 1.3, higher_is_better=False).worse_beyond_noise  # no noise model: any rise counts
    assert not Figure("fd", 1.3, 1.2, higher_is_better=False).worse

    def report(flip: float, fd: float, sharp: float) -> dict:
        quality = {"valid_portraits": 1.0, "attributes": {
            "bangs": {"freq": {"full": 0.3, "parted": 0.3, "none": 0.4}, "min_freq": 0.3, "tv_distance": 0.0333}}}
        return {"fidelity": {p: {"fd_over_floor": fd, "sharpness": sharp} for p in ("psi_0.7", "psi_1.0")},
                "quality": {p: quality for p in ("psi_0.7", "psi_1.0")}, "z_match": {"bangs": 0.9},
                "flip_rate_2sigma": {"bangs_full": flip, "eyes_red": float("nan")}}

    figs = figures(report(0.9, 2.0, 0.7), report(0.6, 1.2, 1.05), {"bangs": np.array([1, 1, 1]) / 3})
    names = {f.name: f for f in figs}
    assert "2-sigma flip eyes_red" not in names  # not measured (nan): no figure
    assert names["2-sigma flip bangs_full"].worse_beyond_noise
    assert not names["psi_1.0 |1 - sharpness|"].worse  # 0.05 from the renders' sharpness beats 0.3
    assert not names["psi_1.0 bangs TV"].worse and not names["psi_1.0 FD / floor"].worse
    lines = verdict(figs)
    assert lines[:-1] == ["! 2-sigma flip bangs_full: 0.9 -> 0.6"]
    assert lines[-1].startswith(f"worse on 1 of {len(figs)} figures (1 beyond")


def test_read_scores_do_not_reward_a_read_that_never_says_a_class():
    from studio.portraits.evaluate import read_scores

    truth = np.repeat([0, 1, 2], 100)
    assert read_scores(truth, truth, 3) == {"accuracy": 1.0, "balanced_accuracy": 1.0, "kappa": 1.0}
    merged = np.where(truth == 0, 1, truth)  # class 0 always read as 1: confusion [[0,100,0],[0,100,0],[0,0,100]]
    assert read_scores(merged, truth, 3) == {"accuracy": 0.667, "balanced_accuracy": 0.667, "kappa": 0.5}
    skewed = np.repeat([0, 1, 2], [10, 10, 80])  # a constant read of the common class: high accuracy, nothing else
    assert read_scores(np.full(100, 2), skewed, 3) == {"accuracy": 0.8, "balanced_accuracy": 0.333, "kappa": 0.0}


class _IdentityMapping:
    """A stand-in generator whose w is its z (or pure noise): what renderer_class_reads reads of a model."""

    def __init__(self, z_dim: int, noise: bool = False):
        self.cfg = type("Cfg", (), {"z_dim": z_dim})()
        self.w_avg = torch.zeros(z_dim)
        self.noise = noise

    def map(self, z, psi: float = 1.0):
        w = torch.from_numpy(np.random.RandomState(7).randn(*z.shape).astype(np.float32)) if self.noise else z
        return w[:, None]


def test_renderer_class_reads_read_the_renderer_labels_from_w():
    from studio.portraits.evaluate import renderer_class_reads

    reads = renderer_class_reads(_IdentityMapping(64), n_test=1000)
    for binary in ("blush", "hairband", "background"):  # the sign of one z coordinate: linear in w = z
        assert reads[binary]["accuracy"] >= 0.95, (binary, reads[binary])
    assert reads["mouth"]["balanced_accuracy"] >= 0.9  # the argmax of three coordinates, nearly linear
    blind = renderer_class_reads(_IdentityMapping(64, noise=True), n_test=1000)
    assert all(abs(r["kappa"]) < 0.1 for r in blind.values()), blind  # w says nothing of z: chance


def test_z_confusion_counts_the_renderer_value_against_the_read():
    from studio.portraits.compare import z_confusion

    truth = {k: np.zeros(4, int) for k in ATTRIBUTES}
    pred = {k: np.zeros(4, int) for k in ATTRIBUTES}
    truth["mouth"], pred["mouth"] = np.array([0, 0, 1, 2]), np.array([1, 0, 1, 2])
    counts = z_confusion(pred, truth)
    assert counts["mouth"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert counts["blush"] == [[4, 0], [0, 0]] and set(counts) == set(ATTRIBUTES)


def test_summary_prints_the_class_read_diagnostics_where_both_reports_have_them(tmp_path, capsys):
    from studio.portraits.compare import main

    def report(kappa: float, diagnostics: bool) -> dict:
        quality = {"valid_portraits": 1.0, "attributes": {
            "mouth": {"freq": {"closed": 0.3, "smile": 0.3, "open": 0.4}, "min_freq": 0.3, "tv_distance": 0.0333}}}
        out = {"fidelity": {p: {"fd_over_floor": 1.4, "sharpness": 0.9} for p in ("psi_0.7", "psi_1.0")},
               "quality": {p: quality for p in ("psi_0.7", "psi_1.0")}, "z_match": {"mouth": 0.7},
               "class_read_accuracy": {"mouth": 0.9}}
        if diagnostics:
            out |= {"class_read_balanced_accuracy": {"mouth": 0.8}, "class_read_kappa": {"mouth": kappa},
                    "renderer_class_read": {"mouth": {"accuracy": 0.91, "balanced_accuracy": 0.91, "kappa": 0.87}},
                    "z_confusion": {"mouth": [[1, 2, 0], [0, 3, 0], [0, 0, 3]]}}
        return out

    path = tmp_path / "compare.json"
    path.write_text(json.dumps({"old": report(0.8, True), "new": report(0.7, True)}))
    assert main(["--report", str(path)]) == 0
    text = capsys.readouterr().out
    assert "class read mouth, balanced accuracy 0.8 -> 0.8, kappa 0.8 -> 0.7" in text
    assert "renderer's own labels" in text and "[[1, 2, 0], [0, 3, 0], [0, 0, 3]] -> [[1, 2, 0]" in text
    assert "worse on 0 of" in text  # diagnostics are not judged: the lower kappa is no worse figure
    path.write_text(json.dumps({"old": report(0.8, False), "new": report(0.7, True)}))  # an earlier report
    assert main(["--report", str(path)]) == 0
    assert "kappa" not in capsys.readouterr().out
