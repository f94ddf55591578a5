"""Two portrait generators measured side by side in one run, on the same seeds: the oracle figures (valid
portraits, rarest value and TV distance per attribute, at psi 0.7 and 1.0), whether G(z) shows render(z), the
Frechet distance to renders on down-sampled pixels with the renders' own floor, sharpness against the renders,
and (with --directions) the attribute directions' flip rates at 2 sigma beside the class edits' (the step between
the class means, the image's own class read from w).

    python -m studio.portraits.compare --new runs/adv/generator_ema.safetensors [--old MODEL] [--directions]
    python -m studio.portraits.compare --report compare.json   # the verdict on an earlier run's --out

The verdict lists every figure that got worse and marks with '!' those worse by more than NOISE_Z standard errors
of the difference (shares: binomial over the samples each is read from; TV distances: the delta method; FD and
sharpness: no noise model, so any change counts).  Printed beside them as diagnostics, not judged: the R^2 of w
from z (evaluate.w_linearity, the directions' reach); where G(z) draws render(z)'s class as another (z_confusion);
the class read's balanced accuracy and kappa (a plain accuracy rewards a model that draws a class rarely), and the
read the renderer's own labels of the same z allow in the model's w (evaluate.renderer_class_reads).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..engine.loaders import W_AVG_SAMPLES, estimate_w_avg, load_model
from ..engine.network import Generator
from .evaluate import (
    FLIP_SAMPLES,
    QUALITY_SAMPLES,
    TEST_SAMPLES,
    confusion_counts,
    dataset_distribution,
    fidelity_report,
    fit_class_edits,
    fit_directions,
    quality_report,
    renderer_class_reads,
    sample,
    skin_tones,
    w_linearity,
)
from .oracle import Oracle, load_oracle, predict
from .render import ATTRIBUTES, label_arrays, params_from_z

Z_MATCH_SEED = 31337  # the seeds tests/test_bundled.py reads G(z) against render(z) on
Z_MATCH_SAMPLES = 1000
NOISE_Z = 2.0  # a figure is worse beyond noise when it is worse by more than this many standard errors


@torch.no_grad()
def z_reads(G: Generator, oracle: Oracle, n: int = Z_MATCH_SAMPLES,
            seed: int = Z_MATCH_SEED) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per attribute, the oracle's label of G(z) (psi 1) and the renderer's label of z for n fresh z (skin: the tone
    evaluate.skin_tones reads inside the oracle's skin mask), as value indices."""
    imgs, _ = sample(G, n, psi=1.0, seed=seed)  # z = RandomState(seed).randn(n, z_dim)
    pred = predict(oracle, imgs)
    pred["skin"] = skin_tones(imgs, pred["parts"])
    params = [params_from_z(x) for x in np.random.RandomState(seed).randn(n, G.cfg.z_dim)]
    truth = {**label_arrays(params), "skin": np.array([p.skin for p in params])}
    return {k: pred[k] for k in truth}, truth


def z_match(G: Generator, oracle: Oracle, n: int = Z_MATCH_SAMPLES, seed: int = Z_MATCH_SEED) -> dict[str, float]:
    """Per attribute, the share of fresh z whose image G(z) the oracle labels as the renderer labels z."""
    return match_shares(*z_reads(G, oracle, n, seed))


def match_shares(pred: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """Per attribute, the share of samples whose read equals the truth."""
    return {k: round(float(np.mean(pred[k] == truth[k])), 4) for k in truth}


def z_confusion(pred: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, list[list[int]]]:
    """Per class attribute, counts of the renderer's value (rows) against the oracle's read of G(z) (columns), in
    ATTRIBUTES' order: where a model draws one class as another."""
    return {k: confusion_counts(truth[k], pred[k], len(values)).tolist() for k, values in ATTRIBUTES.items()}


def measure(G: Generator, oracle: Oracle, directions: bool) -> dict:
    pred, truth = z_reads(G, oracle)
    report = {"quality": quality_report(G, oracle), "fidelity": fidelity_report(G),
              "z_match": match_shares(pred, truth),
              "z_confusion": z_confusion(pred, truth), "w_linearity": round(w_linearity(G.mapping, G.cfg.z_dim), 4)}
    if directions:
        _, notes = fit_directions(G, oracle)
        report["flip_rate_2sigma"] = {name: n["flip_rate_2sigma"] for name, n in notes.items()}
        report["flip_rate_slider_end"] = {name: n["flip_rate_slider_end"] for name, n in notes.items()}
        _, class_notes = fit_class_edits(G, oracle)
        report["class_edit_flip_rate"] = {name: n["flip_rate"] for name, n in class_notes["per_value"].items()}
        report["class_read_accuracy"] = class_notes["read_accuracy"]
        report["class_read_balanced_accuracy"] = class_notes["read_balanced_accuracy"]  # diagnostics, not judged
        report["class_read_kappa"] = class_notes["read_kappa"]
        report["renderer_class_read"] = renderer_class_reads(G)
    return report


@dataclass(frozen=True)
class Figure:
    """One figure of two reports: old and new, which way is better, and its standard error where it is known."""

    name: str
    old: float
    new: float
    higher_is_better: bool = True
    standard_error: float | None = None  # of new - old; None: no noise model (then any change counts)

    @property
    def worse(self) -> bool:
        return self.new < self.old if self.higher_is_better else self.new > self.old

    @property
    def worse_beyond_noise(self) -> bool:
        if not self.worse:
            return False
        return self.standard_error is None or abs(self.new - self.old) > NOISE_Z * self.standard_error


def share_difference_se(a: float, b: float, n: int) -> float:
    """Standard error of the difference of two shares a and b, each of n independent samples (a floor of one
    sample's worth, so that 0% against 0% is not infinitely certain)."""
    var = a * (1 - a) / n + b * (1 - b) / n
    return math.sqrt(max(var, 1 / n**2))


def tv_standard_error(freq: np.ndarray, data_freq: np.ndarray, n: int) -> float:
    """Delta-method standard error of the total-variation distance 0.5 * sum|freq - data_freq| of a frequency
    vector read from n samples: the variance of 0.5 * sum(sign_i * freq_i) under the multinomial."""
    signs = np.sign(freq - data_freq)
    return 0.5 * math.sqrt(max(float(signs**2 @ freq - (signs @ freq) ** 2), 1 / n) / n)


def figures(old: dict, new: dict, data_dist: dict[str, np.ndarray]) -> list[Figure]:
    """Every figure the two reports share, with its direction and noise (FD and sharpness: none; sharpness is
    better the nearer it is to 1)."""
    out = []
    for psi in ("psi_0.7", "psi_1.0"):
        fo, fn = old["fidelity"][psi], new["fidelity"][psi]
        out.append(Figure(f"{psi} FD / floor", fo["fd_over_floor"], fn["fd_over_floor"], higher_is_better=False))
        out.append(Figure(f"{psi} |1 - sharpness|", abs(1 - fo["sharpness"]), abs(1 - fn["sharpness"]),
                          higher_is_better=False))
        qo, qn = old["quality"][psi], new["quality"][psi]
        out.append(Figure(f"{psi} valid portraits", qo["valid_portraits"], qn["valid_portraits"],
                          standard_error=share_difference_se(qo["valid_portraits"], qn["valid_portraits"],
                                                             QUALITY_SAMPLES)))
        for k, ao in qo["attributes"].items():
            an = qn["attributes"][k]
            out.append(Figure(f"{psi} {k} rarest", ao["min_freq"], an["min_freq"],
                              standard_error=share_difference_se(ao["min_freq"], an["min_freq"], QUALITY_SAMPLES)))
            se = [tv_standard_error(np.array(list(a["freq"].values())), data_dist[k], QUALITY_SAMPLES)
                  for a in (ao, an)]
            out.append(Figure(f"{psi} {k} TV", ao["tv_distance"], an["tv_distance"], higher_is_better=False,
                              standard_error=math.hypot(*se)))
    sections = (("z_match", "G(z) shows render(z)", Z_MATCH_SAMPLES),
                ("flip_rate_2sigma", "2-sigma flip", FLIP_SAMPLES),
                ("flip_rate_slider_end", "slider-end flip", FLIP_SAMPLES),
                ("class_edit_flip_rate", "class edit", FLIP_SAMPLES),
                ("class_read_accuracy", "class read", TEST_SAMPLES))
    for key, label, n in sections:
        for k, a in old.get(key, {}).items():
            b = new.get(key, {}).get(k)
            if b is not None and not (math.isnan(a) or math.isnan(b)):
                out.append(Figure(f"{label} {k}", a, b, standard_error=share_difference_se(a, b, n)))
    return out


def verdict(figs: list[Figure]) -> list[str]:
    """The figures that got worse (marked '!' where beyond noise), then the counts."""
    worse = [f for f in figs if f.worse]
    lines = [f"{'!' if f.worse_beyond_noise else ' '} {f.name}: {f.old:g} -> {f.new:g}" for f in worse]
    beyond = sum(f.worse_beyond_noise for f in figs)
    better = sum((f.new != f.old) and not f.worse for f in figs)
    lines.append(f"worse on {len(worse)} of {len(figs)} figures ({beyond} beyond {NOISE_Z:g} standard errors), "
                 f"better on {better}")
    return lines


def summary(old: dict, new: dict) -> list[str]:
    """One line per figure: old -> new, and whether it got worse."""
    lines = []
    for psi in ("psi_0.7", "psi_1.0"):
        fo, fn = old["fidelity"][psi], new["fidelity"][psi]
        lines.append(f"{psi} FD / floor {fo['fd_over_floor']} -> {fn['fd_over_floor']}; sharpness {fo['sharpness']} "
                     f"-> {fn['sharpness']}")
        qo, qn = old["quality"][psi], new["quality"][psi]
        lines.append(f"{psi} valid portraits {qo['valid_portraits']} -> {qn['valid_portraits']}")
        for k in qo["attributes"]:
            ao, an = qo["attributes"][k], qn["attributes"][k]
            lines.append(f"{psi} {k}: rarest {ao['min_freq']} -> {an['min_freq']}, TV {ao['tv_distance']} -> "
                         f"{an['tv_distance']}")
    for k in old["z_match"]:
        lines.append(f"G(z) shows render(z), {k}: {old['z_match'][k]} -> {new['z_match'][k]}")
    if "w_linearity" in old and "w_linearity" in new:  # a diagnostic, not a figure of the verdict
        lines.append(f"R^2 of w from z (affine): {old['w_linearity']} -> {new['w_linearity']}")
    for k in old.get("flip_rate_2sigma", {}):
        lines.append(f"flip rate {k}: {old['flip_rate_2sigma'][k]} -> {new['flip_rate_2sigma'][k]}")
    for k in old.get("flip_rate_slider_end", {}):
        lines.append(f"flip rate at the slider's end {k}: {old['flip_rate_slider_end'][k]} -> "
                     f"{new['flip_rate_slider_end'][k]}")
    for k in old.get("class_read_accuracy", {}):
        lines.append(f"class read accuracy {k}: {old['class_read_accuracy'][k]} -> {new['class_read_accuracy'][k]}")
    for k in old.get("class_read_balanced_accuracy", {}):  # diagnostics; earlier reports lack them
        if k in new.get("class_read_kappa", {}):
            lines.append(f"class read {k}, balanced accuracy {old['class_read_balanced_accuracy'][k]} -> "
                         f"{new['class_read_balanced_accuracy'][k]}, kappa {old['class_read_kappa'][k]} -> "
                         f"{new['class_read_kappa'][k]}")
    for k in old.get("renderer_class_read", {}):
        if k in new.get("renderer_class_read", {}):
            o, n = old["renderer_class_read"][k], new["renderer_class_read"][k]
            lines.append(f"class read {k} of the renderer's own labels (what w allows): accuracy {o['accuracy']} -> "
                         f"{n['accuracy']}, balanced {o['balanced_accuracy']} -> {n['balanced_accuracy']}")
    for k in old.get("z_confusion", {}):
        if k in new.get("z_confusion", {}):
            lines.append(f"render(z)'s {k} (rows) read in G(z) (columns), {', '.join(ATTRIBUTES[k])}: "
                         f"{old['z_confusion'][k]} -> {new['z_confusion'][k]}")
    for k in old.get("class_edit_flip_rate", {}):
        lines.append(f"class edit flip rate {k}: {old['class_edit_flip_rate'][k]} -> {new['class_edit_flip_rate'][k]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from .. import paths

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=str(paths.bundled_model() or ""))
    ap.add_argument("--new", help="the model to measure against --old")
    ap.add_argument("--report", help="no measuring: the verdict on a JSON an earlier run wrote with --out")
    ap.add_argument("--oracle", default=str(paths.oracle()))
    ap.add_argument("--directions", action="store_true",
                    help="also fit and measure the 25 attribute directions and the class edits")
    ap.add_argument("--out", help="write both reports here (JSON)")
    args = ap.parse_args(argv)
    if args.report:
        reports = json.loads(Path(args.report).read_text())
    elif not args.new:
        ap.error("--new or --report is required")
    else:
        torch.set_num_threads(2)
        oracle = load_oracle(args.oracle)
        reports = {}
        for name, path in (("old", args.old), ("new", args.new)):
            G = load_model(path).generator
            if name == "new":  # as bundling does: the average latent of the model as shipped
                G.mapping.w_avg.copy_(estimate_w_avg(G, W_AVG_SAMPLES, seed=0))
            reports[name] = measure(G, oracle, args.directions)
            print(f"measured {name}: {path}", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(reports, indent=1))
    print("\n".join(summary(reports["old"], reports["new"])))
    print("\n".join(verdict(figures(reports["old"], reports["new"], dataset_distribution()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
