"""Measure a portrait generator with the oracle: valid portraits, attribute spread, attribute directions.

    python -m studio.portraits.evaluate --model M --oracle O [--directions]   # writes a JSON report

Valid portrait: one face (the largest skin component covers >= 8% of the image and it is near the middle),
two eyes (each >= 6 pixels, left of centre / right of centre, above the mouth), one mouth (>= 4 pixels, below the
eyes, between them horizontally).  Attribute spread: every value of every attribute in >= 2% of samples, and the
total variation distance between the oracle's attribute distribution on generated images and the dataset's.  The
oracle has no skin-tone head; skin tone is read from the pixels (`skin_tones`: the nearest of the renderer's tones to
the median colour inside the oracle's skin mask) and reported beside the attributes.
Fidelity: the Frechet distance between generated images and fresh renders on down-sampled pixels (16x16x3), beside
the renders' own floor (two independent sets of renders), and sharpness as the ratio of mean |Laplacian| to the
renders'.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..engine.analysis import affine_fit
from ..engine.edits import DIRECTION_LIMIT, ClassEdit, Direction
from ..engine.network import Generator
from ..engine.renderer import to_uint8
from .oracle import Oracle, load_oracle, predict
from .render import ATTRIBUTES, PART_INDEX, SKIN_TONES, label_arrays, params_from_z, render_dataset

MIN_FACE = 0.08
MIN_EYE = 6
MIN_MOUTH = 4
SKIN_TONE_NAMES = ("light", "warm", "tan", "pale")  # the renderer's SKIN_TONES, in order
SKIN_ERODE = 2  # pixels of the skin mask left out at its edge (outlines, shading, blush and neck shadow)


def skin_tones(imgs: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """[n] index into SKIN_TONES nearest (RGB) to each image's median colour over its eroded skin mask (-1: none)."""
    tones = np.asarray(SKIN_TONES, np.float64)
    out = np.full(len(imgs), -1, np.int64)
    for i, (img, part) in enumerate(zip(imgs, parts, strict=True)):
        core = part == PART_INDEX["skin"]
        for _ in range(SKIN_ERODE):  # 4-neighbour erosion; the image border counts as outside
            padded = np.pad(core, 1)
            core = core & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        if core.any():
            colour = np.median(img[core].astype(np.float64), axis=0)
            out[i] = int(np.argmin(((tones - colour) ** 2).sum(1)))
    return out


@torch.no_grad()
def sample(G: Generator, n: int, psi: float, seed: int, batch: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8) and their ws [n, w_dim] for z = RandomState(seed).randn(n, z_dim)."""
    z = np.random.RandomState(seed).randn(n, G.cfg.z_dim).astype(np.float32)
    imgs, ws = [], []
    for i in range(0, n, batch):
        w = G.map(torch.from_numpy(z[i:i + batch]), psi=psi)
        imgs.append(to_uint8(G.synthesis(w)))
        ws.append(w[:, 0].numpy())
    return np.concatenate(imgs), np.concatenate(ws)


def component_sizes(mask: np.ndarray) -> list[int]:
    """Sizes of the 4-connected components of a boolean mask, largest first."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    sizes = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, size = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        sizes.append(size)
    return sorted(sizes, reverse=True)


def valid_portrait(parts: np.ndarray) -> bool:
    """One face, two eyes and one mouth at plausible places (see the module doc)."""
    h, w = parts.shape
    skin = parts == PART_INDEX["skin"]
    sizes = component_sizes(skin)
    if not sizes or sizes[0] < MIN_FACE * h * w or (len(sizes) > 1 and sizes[1] > 0.25 * sizes[0]):
        return False  # no face, or a second face-sized region
    ys, xs = np.nonzero(skin)
    if not (0.25 * w < xs.mean() < 0.75 * w and 0.2 * h < ys.mean() < 0.8 * h):
        return False
    centres = {}
    for name, minimum in (("left_eye", MIN_EYE), ("right_eye", MIN_EYE), ("mouth", MIN_MOUTH)):
        m = parts == PART_INDEX[name]
        if m.sum() < minimum:
            return False
        yy, xx = np.nonzero(m)
        centres[name] = (yy.mean(), xx.mean())
    (ly, lx), (ry, rx), (my, mx) = centres["left_eye"], centres["right_eye"], centres["mouth"]
    return lx < mx < rx and max(ly, ry) < my and abs(ly - ry) < 0.15 * h


def dataset_distribution(n: int = 20_000, z_dim: int = 64, seed: int = 5) -> dict[str, np.ndarray]:
    z = np.random.RandomState(seed).randn(n, z_dim)
    params = [params_from_z(x) for x in z]
    labels = [p.labels() for p in params]
    dist = {k: np.bincount([lab[k] for lab in labels], minlength=len(v)) / n for k, v in ATTRIBUTES.items()}
    dist["skin"] = np.bincount([p.skin for p in params], minlength=len(SKIN_TONES)) / n
    return dist


QUALITY_SAMPLES = 1000  # samples per psi that quality_report reads its shares from
FLIP_SAMPLES = 200  # at most this many held-out samples per flip rate (fewer where fewer lack the value)
TEST_SAMPLES = 2000  # the held-out samples the directions and class edits are measured on
LINEARITY_SAMPLES = 5000  # z samples w_linearity fits its affine map on (z_dim + 1 coefficients per w coordinate)


def quality_report(G: Generator, oracle: Oracle, n: int = QUALITY_SAMPLES,
                   psis: tuple[float, ...] = (0.7, 1.0)) -> dict:
    data_dist = dataset_distribution(z_dim=G.cfg.z_dim)
    report = {}
    for psi in psis:
        imgs, _ = sample(G, n, psi, seed=123)
        pred = predict(oracle, imgs)
        valid = float(np.mean([valid_portrait(p) for p in pred["parts"]]))
        attrs = {}
        read = {**{k: pred[k] for k in ATTRIBUTES}, "skin": skin_tones(imgs, pred["parts"])}
        for k, classes in {**ATTRIBUTES, "skin": SKIN_TONE_NAMES}.items():
            freq = np.bincount(read[k][read[k] >= 0], minlength=len(classes)) / n
            attrs[k] = {"freq": {c: round(float(f), 4) for c, f in zip(classes, freq, strict=True)},
                        "min_freq": round(float(freq.min()), 4),
                        "tv_distance": round(float(0.5 * np.abs(freq - data_dist[k]).sum()), 4)}
        report[f"psi_{psi}"] = {"valid_portraits": valid, "attributes": attrs,
                                "all_values_over_2pct": all(a["min_freq"] >= 0.02 for a in attrs.values())}
    return report


# ------------------------------------------------------------------------------------------------ fidelity

FD_SIZE = 16  # Frechet distance on area-averaged FD_SIZE x FD_SIZE x 3 pixels


def pooled_pixels(imgs: np.ndarray, size: int = FD_SIZE) -> np.ndarray:
    """[n, size*size*3] float64 in [0, 1]: each image area-averaged to size x size."""
    n, r = imgs.shape[0], imgs.shape[1]
    f = r // size
    x = imgs.astype(np.float64).reshape(n, size, f, size, f, 3).mean(axis=(2, 4)) / 255
    return x.reshape(n, -1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2) between two sets of feature rows."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(ca)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root_a @ cb @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


def mean_abs_laplacian(imgs: np.ndarray) -> float:
    """Mean |4-neighbour Laplacian| over the interior pixels and channels (levels 0..255): a sharpness measure."""
    x = imgs.astype(np.float64)
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.abs(lap).mean())


def render_samples(n: int, z_dim: int, seed: int, size: int) -> np.ndarray:
    """n fresh renders of z = RandomState(seed).randn(n, z_dim)."""
    z = np.random.RandomState(seed).randn(n, z_dim)
    return render_dataset(z, size)[0]


def reference_renders(n: int, z_dim: int, size: int) -> tuple[np.ndarray, float]:
    """The n renders every FD is measured against, and the floor: their FD to n other renders."""
    renders = render_samples(n, z_dim, 7001, size)
    floor = frechet_distance(pooled_pixels(render_samples(n, z_dim, 7002, size)), pooled_pixels(renders))
    return renders, floor


def fidelity_report(G: Generator, n: int = 1000, psis: tuple[float, ...] = (0.7, 1.0)) -> dict:
    """Frechet distance to renders with the renders-vs-renders floor, and sharpness relative to renders."""
    renders_a, floor = reference_renders(n, G.cfg.z_dim, G.cfg.resolution)
    feats_a = pooled_pixels(renders_a)
    sharp_renders = mean_abs_laplacian(renders_a)
    report = {"n": n, "fd_pixels": f"{FD_SIZE}x{FD_SIZE}x3 area-averaged, levels / 255", "fd_floor": round(floor, 4),
              "renders_mean_abs_laplacian": round(sharp_renders, 3)}
    for psi in psis:
        imgs, _ = sample(G, n, psi, seed=123)
        fd = frechet_distance(pooled_pixels(imgs), feats_a)
        report[f"psi_{psi}"] = {"fd": round(fd, 4), "fd_over_floor": round(fd / floor, 3),
                                "sharpness": round(mean_abs_laplacian(imgs) / sharp_renders, 3)}
    return report


# ------------------------------------------------------------------------------------------------ directions


def value_name(attribute: str, value: str) -> str:
    """One attribute value's name, as the original's attributes.csv names its directions (hair_black, smile)."""
    if ATTRIBUTES[attribute] == ("off", "on"):
        return attribute if value == "on" else f"no_{attribute}"
    if attribute == "mouth":
        return {"open": "mouth_open", "smile": "smile"}.get(value, f"mouth_{value}")
    prefix = {"hair_colour": "hair", "eye_colour": "eyes", "hair_length": "hair"}.get(attribute, attribute)
    return f"{prefix}_{value}"


def value_indicators(pred: dict) -> dict[str, np.ndarray]:
    """Whether each sample has each labelled attribute value, by value_name (the binaries' "on" value only)."""
    return {value_name(k, c): pred[k] == i for k, classes in ATTRIBUTES.items() for i, c in enumerate(classes)
            if not (classes == ("off", "on") and c == "off")}


def direction_targets(pred: dict) -> dict[str, np.ndarray]:
    """Binary targets for every labelled attribute value that has a direction (not the binaries' off values, the
    dark background or the closed mouth)."""
    no_direction = (value_name("background", "dark"), value_name("mouth", "closed"))
    return {name: y for name, y in value_indicators(pred).items() if name not in no_direction}


def fit_direction(ws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unit normal of the nearest-class-mean classifier in w-space: mean(w | y) - mean(w | not y), normalised.

    Usually better than a logistic-regression normal: with 128 correlated w coordinates the best-separating normal
    leans on directions in which w barely varies, so a step of 2 std along it hardly moves an image (measured on the
    bundled model: hair_long flips 43% along the logistic normal, 97% along the class-mean difference)."""
    d = ws[y].mean(0) - ws[~y].mean(0)
    return (d / np.linalg.norm(d)).astype(np.float32)


def fit_logistic_direction(ws: np.ndarray, y: np.ndarray, steps: int = 300) -> np.ndarray:
    """Unit normal of a logistic-regression boundary in w-space (balanced classes, standardised inputs)."""
    x = torch.from_numpy(ws).float()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    t = torch.from_numpy(y.astype(np.float32))
    pos = t.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(t > 0, 0.5 / pos, 0.5 / (1 - pos))
    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(xs)[:, 0], t, weight=weight)
        loss = loss + 1e-3 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    normal = (lin.weight[0] / sd).detach().numpy()  # back to w coordinates
    return (normal / np.linalg.norm(normal)).astype(np.float32)


def label_design(pred: dict) -> tuple[np.ndarray, list[str]]:
    """Every oracle label of a sample as centred indicator columns (value_indicators) and their names."""
    indicators = value_indicators(pred)
    x = np.stack([y.astype(np.float64) for y in indicators.values()], 1)
    return x - x.mean(0), list(indicators)


def fit_partial_directions(ws: np.ndarray, design: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Unit directions [columns, w_dim], each a label column's coefficient in one ridge regression of w on every
    label (label_design):
    the change in w that goes with the value when the other attributes' labels are held fixed, where the class-mean
    difference also carries whatever tends to come with it. On a w that holds classes apart non-linearly (measured
    on a paired fine-tune of the probe run: the hairband's class-mean direction flips 71% at 2 sigma, this one 92%,
    the shipped model's best 92%) it finds the narrow direction along which the value alone changes."""
    gram = design.T @ design / len(design)
    rhs = design.T @ (ws - ws.mean(0)) / len(design)
    coef = np.linalg.solve(gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram)), rhs)
    return (coef / np.linalg.norm(coef, axis=1, keepdims=True)).astype(np.float32)


def balanced_accuracy(ws: np.ndarray, y: np.ndarray, d: np.ndarray) -> float:
    """Balanced accuracy of thresholding w . d at the midpoint of the two classes' mean projections."""
    proj = ws @ d
    cut = 0.5 * (proj[y].mean() + proj[~y].mean())
    return float(0.5 * ((proj[y] > cut).mean() + (proj[~y] <= cut).mean()))


def confusion_counts(truth: np.ndarray, read: np.ndarray, k: int) -> np.ndarray:
    """[k, k] counts of each true value (rows) read as each value (columns)."""
    counts = np.zeros((k, k), int)
    np.add.at(counts, (truth, read), 1)
    return counts


def read_scores(read: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    """How well a class read (value indices) matches the truth over k classes: plain accuracy, balanced accuracy
    (the mean of the per-class recalls, over the classes the truth holds) and Cohen's kappa (the accuracy's excess over
    chance agreement of the two marginals, over its largest possible excess).

    Plain accuracy rewards a model that draws a class rarely (a read that never says it loses little); the other two
    do not: a constant read scores 1/k balanced and 0 kappa whatever the class balance."""
    confusion = confusion_counts(truth, read, k)
    n = confusion.sum()
    per_class = confusion.sum(1)
    accuracy = np.trace(confusion) / n
    balanced = float(np.mean(np.diag(confusion)[per_class > 0] / per_class[per_class > 0]))
    chance = float(per_class @ confusion.sum(0)) / n**2
    kappa = 1.0 if chance == 1 else (accuracy - chance) / (1 - chance)
    return {"accuracy": round(float(accuracy), 3), "balanced_accuracy": round(balanced, 3),
            "kappa": round(float(kappa), 3)}


def renderer_class_reads(G: Generator, n: int = 5000, seed: int = 321, n_test: int = TEST_SAMPLES,
                         test_seed: int = 654) -> dict[str, dict[str, float]]:
    """Per attribute, the read_scores of fit_class_edits' discriminant fitted and read on the renderer's own labels
    of the same z (no images, no oracle): how well this model's w can tell the data's classes apart.  A class read
    of the oracle's labels of G's images above this reads a model that draws some class less than the data does."""
    def latents_and_labels(count: int, at: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        z = np.random.RandomState(at).randn(count, G.cfg.z_dim).astype(np.float32)
        with torch.no_grad():
            ws = G.map(torch.from_numpy(z), psi=1.0)[:, 0].numpy()
        return ws, label_arrays([params_from_z(x) for x in z])

    ws, labels = latents_and_labels(n, seed)
    test_ws, test_labels = latents_and_labels(n_test, test_seed)
    center = G.w_avg.cpu().numpy()
    out = {}
    for attribute, values in ATTRIBUTES.items():
        edit = ClassEdit.fit(attribute, list(values), ws, labels[attribute])
        read = np.array([edit.own(w, center, 1.0) for w in test_ws])
        out[attribute] = read_scores(read, test_labels[attribute], len(values))
    return out


def w_linearity(mapping: Callable[[torch.Tensor], torch.Tensor], z_dim: int, n: int = LINEARITY_SAMPLES,
                seed: int = 321) -> float:
    """R^2 of the least-squares affine map from z (2nd-moment normalised, as the renderer reads it) to mapping(z).

    1: w is an affine function of z, so a direction fitted in w moves every z coordinate the renderer reads in the
    same way wherever a sample starts; the attribute directions lose reach as this falls (README, "bundled model").
    """
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim).astype(np.float32))
    with torch.no_grad():
        w = mapping(z).double()
    return affine_fit(z.double(), w)[1]


def argmax_flip_ceiling(k: int, sigmas: float = 2.0, n: int = 200_000, seed: int = 0) -> float:
    """The flip rate the renderer itself gets in its own z for a class picked as the argmax of k i.i.d. coordinates:
    the share of samples of other classes that the step sigmas * std(z . d) * d, d the class-mean difference, puts
    into the class. A model whose w is linear in z cannot do better along its class-mean direction."""
    z = np.random.default_rng(seed).standard_normal((n, k))
    y = z.argmax(1) == 0
    d = z[y].mean(0) - z[~y].mean(0)
    d /= np.linalg.norm(d)
    moved = z[~y] + sigmas * (z @ d).std() * d
    return float((moved.argmax(1) == 0).mean())


def clustered_flip_rate(k: int, spread: float, sigmas: float = 2.0, n: int = 40_000,
                        seed: int = 0) -> tuple[float, float]:
    """(read accuracy, flip rate) for k equally likely classes held apart in w: class means on a regular simplex of
    radius 1, isotropic within-class spread `spread`, an image's class the nearest mean.  The flip rate is the
    share of other classes' samples that a step of sigmas * std(w . d) along the class-mean direction d of one
    class puts into it.  With no spread the step is sigmas / sqrt(k - 1) of the distance to the class boundary, so
    at 2 sigma it flips nothing for k > 5: the better w holds many classes apart, the less a 2-sigma step reaches."""
    rng = np.random.default_rng(seed)
    means = np.eye(k) - 1.0 / k
    means /= np.linalg.norm(means[0])
    y = rng.integers(0, k, n)
    w = means[y] + spread * rng.standard_normal((n, k))

    def nearest(x: np.ndarray) -> np.ndarray:
        return np.argmin(np.square(x[:, None] - means[None]).sum(-1), 1)

    d = means[0] - means[1:].mean(0)
    d /= np.linalg.norm(d)
    moved = w[y != 0] + sigmas * (w @ d).std() * d
    return float((nearest(w) == y).mean()), float((nearest(moved) == 0).mean())


@torch.no_grad()
def flip_rate(G: Generator, oracle: Oracle, ws: np.ndarray, had: np.ndarray, target: str, d: np.ndarray,
              step: float, n: int = FLIP_SAMPLES) -> float:
    """Among samples without the attribute (`had` False), the share the oracle labels with it after w += step * d."""
    idx = np.flatnonzero(~had)[:n]
    if len(idx) == 0:
        return float("nan")
    moved = ws[idx] + step * d[None]
    return float(direction_targets(predict(oracle, _render_w(G, moved)))[target].mean())


def _render_w(G: Generator, w: np.ndarray, batch: int = 250) -> np.ndarray:
    out = []
    for i in range(0, len(w), batch):
        ws = torch.from_numpy(w[i:i + batch]).float().unsqueeze(1).repeat(1, G.cfg.num_ws, 1)
        out.append(to_uint8(G.synthesis(ws)))
    return np.concatenate(out)


def fit_directions(G: Generator, oracle: Oracle, n: int = 5000, seed: int = 321, n_test: int = TEST_SAMPLES,
                   test_seed: int = 654, sigmas: float = 2.0) -> tuple[list[Direction], dict]:
    """Directions for every labelled attribute value from n samples at psi 1.

    Three candidates per attribute: the class-mean difference, the logistic normal and the value's coefficient
    in a regression of w on all labels (fit_partial_directions); the one whose 2-sigma step flips more of the
    fitting samples is kept.  The kept direction is then measured on n_test
    held-out samples: the share of those without the attribute that have it after w += sigmas * std(w . d) * d
    (std over the fitting samples), and at the studio slider's end, w += DIRECTION_LIMIT * std * d.  Each direction
    is returned scaled to that std (strength 1 moves w by one std of this model's w along it), so a slider's end
    means the same push on any model, as the tabs' sigma does: a unit vector's reach depended on the model's w scale
    (3 units were 1.3 std of the shipped model's background_light and ten of a candidate's hairband)."""
    imgs, ws = sample(G, n, psi=1.0, seed=seed)
    labels = predict(oracle, imgs)
    targets = direction_targets(labels)
    design, columns = label_design(labels)
    partial = fit_partial_directions(ws, design)  # one regression serves every value
    test_imgs, test_ws = sample(G, n_test, psi=1.0, seed=test_seed)
    test_targets = direction_targets(predict(oracle, test_imgs))
    directions, notes = [], {}
    for name, y in targets.items():
        if y.sum() < 20 or (~y).sum() < 20:
            notes[name] = {"skipped": f"only {int(y.sum())} positive samples"}
            continue
        candidates = {"class_mean": fit_direction(ws, y), "logistic": fit_logistic_direction(ws, y),
                      "partial": partial[columns.index(name)]}
        stds = {k: float((ws @ d).std()) for k, d in candidates.items()}
        steps = {k: sigmas * std for k, std in stds.items()}
        fit_rates = {k: flip_rate(G, oracle, ws, y, name, d, steps[k]) for k, d in candidates.items()}
        method = max(fit_rates, key=fit_rates.get)
        d = candidates[method]
        directions.append(Direction(name, (d * stds[method]).astype(np.float32)))
        rate = flip_rate(G, oracle, test_ws, test_targets[name], name, d, steps[method])
        slider_end = flip_rate(G, oracle, test_ws, test_targets[name], name, d, DIRECTION_LIMIT * stds[method])
        notes[name] = {"positives": int(y.sum()), "method": method, "flip_rate_2sigma": round(rate, 3),
                       "sigma": round(stds[method], 3), "flip_rate_slider_end": round(slider_end, 3),
                       "balanced_accuracy": round(balanced_accuracy(test_ws, test_targets[name], d), 3),
                       "fitting_flip_rates": {k: round(v, 3) for k, v in fit_rates.items()}}
    return directions, notes


def fit_class_edits(G: Generator, oracle: Oracle, n: int = 5000, seed: int = 321, n_test: int = TEST_SAMPLES,
                    test_seed: int = 654, per_value: int = FLIP_SAMPLES) -> tuple[list[ClassEdit], dict]:
    """A class edit (class means of w) for every attribute the oracle labels, from n samples at psi 1, measured on
    the held-out samples fit_directions measures its directions on: per value, of the first `per_value` samples the
    oracle does not label with it, the share it does label with it after the edit (own class read from w by the
    edit's discriminant: no oracle); per attribute, the share of those samples whose label the discriminant reads
    (read_accuracy, the figure compare judges) and its balanced accuracy and kappa (read_scores)."""
    imgs, ws = sample(G, n, psi=1.0, seed=seed)
    labels = predict(oracle, imgs)
    test_imgs, test_ws = sample(G, n_test, psi=1.0, seed=test_seed)
    test_labels = predict(oracle, test_imgs)
    center = G.w_avg.cpu().numpy()
    edits, notes = [], {"per_value": {}, "read_accuracy": {}, "read_balanced_accuracy": {}, "read_kappa": {}}
    for attribute, values in ATTRIBUTES.items():
        edit = ClassEdit.fit(attribute, list(values), ws, labels[attribute])
        edits.append(edit)
        read = np.array([edit.own(w, center, 1.0) for w in test_ws])
        scores = read_scores(read, test_labels[attribute], len(values))
        notes["read_accuracy"][attribute] = scores["accuracy"]
        notes["read_balanced_accuracy"][attribute] = scores["balanced_accuracy"]
        notes["read_kappa"][attribute] = scores["kappa"]
        for i, value in enumerate(values):
            idx = np.flatnonzero(test_labels[attribute] != i)[:per_value]
            edit.target = value
            moved = np.stack([w + edit.step(w, center, 1.0) for w in test_ws[idx]])
            rate = float((predict(oracle, _render_w(G, moved))[attribute] == i).mean())
            notes["per_value"][value_name(attribute, value)] = {
                "samples": int((labels[attribute] == i).sum()), "flip_rate": round(rate, 3)}
        edit.target = None
    return edits, notes


def main(argv: list[str] | None = None) -> int:
    from ..engine.loaders import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--out", help="write the report here (JSON)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    G = load_model(args.model).generator
    report = quality_report(G, load_oracle(args.oracle), args.n)
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
