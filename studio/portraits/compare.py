"""Two portrait generators measured side by side in one run, on the same seeds: the oracle figures (valid
portraits, rarest value and TV distance per attribute, at psi 0.7 and 1.0), whether G(z) shows render(z), the
Frechet distance to renders on down-sampled pixels with the renders' own floor, sharpness against the renders,
and (with --directions) the attribute directions' flip rates at 2 sigma beside the class edits' (the step between
the class means, the image's own class read from w).

    python -m studio.portraits.compare --new runs/adv/generator_ema.safetensors [--old MODEL] [--directions]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..engine.loaders import W_AVG_SAMPLES, estimate_w_avg, load_model
from ..engine.network import Generator
from .evaluate import fidelity_report, fit_class_edits, fit_directions, quality_report, sample, skin_tones
from .oracle import Oracle, load_oracle, predict
from .render import ATTRIBUTES, params_from_z

Z_MATCH_SEED = 31337  # the seeds tests/test_bundled.py reads G(z) against render(z) on


@torch.no_grad()
def z_match(G: Generator, oracle: Oracle, n: int = 1000, seed: int = Z_MATCH_SEED) -> dict[str, float]:
    """Per attribute, the share of fresh z whose image G(z) (psi 1) the oracle labels as the renderer labels z (skin:
    the tone evaluate.skin_tones reads inside the oracle's skin mask)."""
    imgs, _ = sample(G, n, psi=1.0, seed=seed)  # z = RandomState(seed).randn(n, z_dim)
    pred = predict(oracle, imgs)
    pred["skin"] = skin_tones(imgs, pred["parts"])
    params = [params_from_z(x) for x in np.random.RandomState(seed).randn(n, G.cfg.z_dim)]
    truth = {**{k: np.array([p.labels()[k] for p in params]) for k in ATTRIBUTES},
             "skin": np.array([p.skin for p in params])}
    return {k: round(float(np.mean(pred[k] == truth[k])), 4) for k in truth}


def measure(G: Generator, oracle: Oracle, directions: bool) -> dict:
    report = {"quality": quality_report(G, oracle), "fidelity": fidelity_report(G), "z_match": z_match(G, oracle)}
    if directions:
        _, notes = fit_directions(G, oracle)
        report["flip_rate_2sigma"] = {name: n["flip_rate_2sigma"] for name, n in notes.items()}
        report["flip_rate_slider_end"] = {name: n["flip_rate_slider_end"] for name, n in notes.items()}
        _, class_notes = fit_class_edits(G, oracle)
        report["class_edit_flip_rate"] = {name: n["flip_rate"] for name, n in class_notes["per_value"].items()}
        report["class_read_accuracy"] = class_notes["read_accuracy"]
    return report


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
    for k in old.get("flip_rate_2sigma", {}):
        lines.append(f"flip rate {k}: {old['flip_rate_2sigma'][k]} -> {new['flip_rate_2sigma'][k]}")
    for k in old.get("flip_rate_slider_end", {}):
        lines.append(f"flip rate at the slider's end {k}: {old['flip_rate_slider_end'][k]} -> "
                     f"{new['flip_rate_slider_end'][k]}")
    for k in old.get("class_read_accuracy", {}):
        lines.append(f"class read accuracy {k}: {old['class_read_accuracy'][k]} -> {new['class_read_accuracy'][k]}")
    for k in old.get("class_edit_flip_rate", {}):
        lines.append(f"class edit flip rate {k}: {old['class_edit_flip_rate'][k]} -> {new['class_edit_flip_rate'][k]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from .. import paths

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=str(paths.bundled_model() or ""))
    ap.add_argument("--new", required=True)
    ap.add_argument("--oracle", default=str(paths.oracle()))
    ap.add_argument("--directions", action="store_true",
                    help="also fit and measure the 25 attribute directions and the class edits")
    ap.add_argument("--out", help="write both reports here (JSON)")
    args = ap.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
