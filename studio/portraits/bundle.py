"""Turn a training run into the bundled model: weights, average latent, attribute directions, grid, report.

    python -m studio.portraits.bundle --run runs/classes --oracle runs/oracle.safetensors --recipe "..."

Writes models/<name>.safetensors, data/<sha256>/ (average_latent.json, directions.json, classes.json, quality.json),
docs/sample-grid.png (8x8 at psi 0.7) and docs/training-log.jsonl (the run's log, after --previous-log's lines for a run
started with --init from an earlier model).  `--only-classes` / `--only-directions` (re)write the shipped model's
classes.json / directions.json alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import paths
from ..engine.edits import DIRECTION_LIMIT
from ..engine.files import sha256_file, write_text_atomic
from ..engine.loaders import W_AVG_SAMPLES, estimate_w_avg, load_model, save_model
from ..engine.modeldata import ModelData
from ..engine.network import Generator
from .evaluate import fit_class_edits, fit_directions, quality_report, sample
from .oracle import Oracle, load_oracle


def grid_image(images: np.ndarray, side: int = 8, zoom: int = 2) -> np.ndarray:
    r = images.shape[1]
    g = images[: side * side].reshape(side, side, r, r, 3).transpose(0, 2, 1, 3, 4).reshape(side * r, side * r, 3)
    return np.repeat(np.repeat(g, zoom, 0), zoom, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/bundled")
    ap.add_argument("--oracle", default="runs/oracle.safetensors")
    ap.add_argument("--name", default=paths.BUNDLED_MODEL_NAME)
    ap.add_argument("--docs", default=str(paths.CHECKOUT / "docs"))
    ap.add_argument("--shipped", default=str(paths.CHECKOUT), type=Path,
                    help="the checkout whose models/ and data/ receive the bundle")
    ap.add_argument("--previous-log", type=Path,
                    help="training log of the model this run was --init from, written before the run's own")
    ap.add_argument("--recipe", required=True,
                    help="how the run was trained, with its kimg, for the model's notes (a run started with --init "
                         "logs only its own kimg)")
    ap.add_argument("--only-classes", action="store_true",
                    help="fit and write the class edits (classes.json) of the model already in models/, nothing else")
    ap.add_argument("--only-directions", action="store_true",
                    help="fit and write the attribute directions (directions.json) of the model already in models/, "
                         "nothing else")
    args = ap.parse_args(argv)
    if args.only_classes or args.only_directions:
        model = args.shipped / "models" / args.name
        torch.set_num_threads(2)
        write = write_classes if args.only_classes else write_directions
        notes = write(load_model(model).generator, load_oracle(args.oracle),
                      ModelData(args.shipped / "data", sha256_file(model)))
        print(json.dumps(notes, indent=1))
        return 0
    if args.previous_log is not None and not args.previous_log.is_file():
        ap.error(f"--previous-log: no file at {args.previous_log}")
    torch.set_num_threads(2)
    run, docs = Path(args.run), Path(args.docs)

    G = load_model(run / "generator_ema.safetensors").generator
    G.mapping.w_avg.copy_(estimate_w_avg(G, W_AVG_SAMPLES, seed=0))
    out = save_model(G, args.shipped / "models" / args.name,
                     notes=f"bundled anime portraits, 64 px, trained on the CPU by studio.train.gan: {args.recipe}; "
                           f"w_avg from {W_AVG_SAMPLES} mapping outputs")
    shutil.copy(args.oracle, args.shipped / "models" / paths.ORACLE_NAME)
    sha = sha256_file(out)
    data = ModelData(args.shipped / "data", sha)
    data.save_average_latent(G.w_avg.numpy(), W_AVG_SAMPLES)
    print(f"model {out} sha256 {sha}", flush=True)

    imgs, _ = sample(G, 64, psi=0.7, seed=2024)
    docs.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_image(imgs)).save(docs / "sample-grid.png")
    earlier = args.previous_log.read_text() if args.previous_log else ""
    write_text_atomic(docs / "training-log.jsonl", earlier + (run / "log.jsonl").read_text())

    oracle = load_oracle(args.oracle)
    notes = write_directions(G, oracle, data)
    print(json.dumps(notes, indent=1), flush=True)
    print(json.dumps(write_classes(G, oracle, data), indent=1), flush=True)
    report = quality_report(G, oracle)
    report["oracle"] = json.loads(_oracle_metrics(args.oracle))
    write_text_atomic(data.dir / "quality.json", json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


def write_directions(G: Generator, oracle: Oracle, data: ModelData) -> dict:
    """Fit, measure and save the attribute directions (directions.json); returns the per-direction notes."""
    directions, notes = fit_directions(G, oracle)
    data.save_directions(directions, notes={
        "method": "per attribute value, a linear direction from oracle labels of 5,000 samples at psi 1: the unit "
                  "class-mean difference of w, the logistic-regression normal or the value's coefficient in a "
                  "ridge regression of w on all labels (partial), whichever flips more of those samples at 2 std "
                  "(fitting_flip_rates), saved scaled to that std (strength 1 = 1 std of w along it); "
                  "flip_rate_2sigma = share of 2,000 held-out samples without the attribute that the oracle labels "
                  "with it after w += 2 std * d (d the unit direction, sigma: that std); flip_rate_slider_end: the "
                  f"same after w += {DIRECTION_LIMIT:g} std * d, the studio slider's end",
        "per_direction": notes})
    return notes


def write_classes(G: Generator, oracle: Oracle, data: ModelData) -> dict:
    """Fit, measure and save the class edits (classes.json); returns the per-value notes."""
    edits, notes = fit_class_edits(G, oracle)
    data.save_class_edits(edits, notes={
        "method": "per attribute the oracle labels, the mean w of each value's samples among 5,000 at psi 1 and a "
                  "linear discriminant (shared covariance, ridge 1e-3 of its mean variance, class frequencies as "
                  "priors); an edit to value v adds mean(v) - mean(own), own = the value the discriminant reads in "
                  "the image's untruncated w; flip_rate = share of the first 200 held-out samples (of 2,000, the "
                  "directions' test set) not labelled v that the oracle labels v after the edit at strength 1; "
                  "read_accuracy = share of the 2,000 whose oracle label the discriminant reads; "
                  "read_balanced_accuracy = the mean over values of that share among each value's samples, "
                  "read_kappa = Cohen's kappa of the read against the labels",
        **notes})
    return notes


def _oracle_metrics(path: str) -> str:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return (f.metadata() or {}).get("metrics", "{}")


if __name__ == "__main__":
    raise SystemExit(main())
