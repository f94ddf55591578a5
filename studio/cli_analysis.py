"""Analysis commands: rank channels, run detectors, discover part detectors and edits, auto-edit images.

    ganstudio rank --layer b16.conv0 --box 9:12,5:11 --seeds 0-15 [--method cosine] [--top 20]
    ganstudio detect --plugin spatial_map --param layer=b16.conv0 --param channels=3,7 --seeds 0-3 --out DIR
    ganstudio discover --part mouth [--n 200] [--write]
    ganstudio edit --tab mouth_open --auto --seeds 0-7 --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _seeds_stacks(args: argparse.Namespace):
    from .engine.edits import EditStack, parse_seeds

    return [EditStack(seed=s, psi=args.psi, noise_seed=s) for s in parse_seeds(args.seeds)]


def _selection(eng, args: argparse.Namespace, layer: str) -> np.ndarray:
    from .engine.edits import EditError, resample_grid

    res = eng.renderer.layers[layer].resolution
    if args.tab:
        return resample_grid(eng.data.load_tab(eng.data.tab_path(args.tab)).selection, res)
    if args.box:
        try:
            (y0, y1), (x0, x1) = (map(int, p.split(":")) for p in args.box.split(","))
        except ValueError:
            raise EditError("--box is rows:rows,cols:cols at the layer's grid, e.g. 9:12,5:11") from None
        sel = np.zeros((res, res), np.float32)
        sel[y0:y1, x0:x1] = 1
        return sel
    raise EditError("give a selection: --tab NAME (a saved tab) or --box y0:y1,x0:x1")


def cmd_rank(args: argparse.Namespace) -> int:
    from .cli_common import open_engine
    from .engine.analysis import rank_channels, top_channels

    eng = open_engine(args)
    stacks = _seeds_stacks(args)
    sel = _selection(eng, args, args.layer)
    if args.ray:
        from .engine import distributed

        with distributed.cluster(args.ray, args.ray_workers):
            scores = distributed.rank_on_ray(eng, stacks, args.layer, sel, args.method, args.ray_workers)
    else:
        r = eng.renderer.render_many(stacks, capture=(args.layer,), until=args.layer)
        scores = rank_channels(r.features[args.layer].cpu().numpy(), sel, args.method)
    print(f"{args.layer}: channels ranked by {args.method} similarity to the selection over {len(stacks)} images")
    for c in top_channels(scores, args.top):
        print(f"{c:5d}  {scores[c]:+.4f}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from PIL import Image

    from .cli_common import open_engine, plugins_for
    from .engine.plugins import coerce_params, run_plugin

    eng = open_engine(args)
    plugin = plugins_for(args).get(args.plugin)
    params = coerce_params(plugin, dict(p.split("=", 1) for p in args.param or []))
    layers = tuple(plugin.needed_layers(params))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stack in _seeds_stacks(args):
        r = eng.render(stack, capture=layers, use_cache=False)
        image = r.uint8()[0]
        feats = {k: v[0].cpu().numpy() for k, v in r.features.items()}
        mask = run_plugin(plugin, feats, image, params, image.shape[0])
        tint = image.astype(np.float32)
        tint[mask > 0] = 0.5 * tint[mask > 0] + 0.5 * np.array([60, 255, 60])
        tint[mask < 0] = 0.5 * tint[mask < 0] + 0.5 * np.array([255, 60, 60])
        Image.fromarray(np.concatenate([image, tint.astype(np.uint8)], 1)).save(out / f"seed{stack.seed:04d}.png")
        print(f"seed {stack.seed}: mask covers {float((mask > 0).mean()):.1%} of the image")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from . import paths
    from .cli_common import CliError, open_engine
    from .portraits import discover as D
    from .portraits.oracle import load_oracle

    eng = open_engine(args)
    oracle_path = Path(args.oracle) if args.oracle else paths.oracle()
    if not oracle_path.exists():
        raise CliError(f"discover needs the part oracle ({oracle_path}); it belongs to the bundled model")
    if args.part not in D.PART_GROUPS:
        raise CliError(f"part must be one of {', '.join(D.PART_GROUPS)}")
    oracle = load_oracle(oracle_path)
    layers = tuple(eng.renderer.layers)
    s = D.sample(eng.renderer, oracle, list(range(D.DISCOVERY_SEED, D.DISCOVERY_SEED + args.n)), layers=layers)
    config = D.discover_detector(s, args.part)
    print(json.dumps(config, indent=1))
    if args.write:
        from .engine.files import write_text_atomic

        known = eng.data.read_path("detectors.json")  # the user's, else the shipped ones: a user copy is written
        doc = json.loads(known.read_text()) if known.exists() else {}
        doc[args.part] = config
        path = write_text_atomic(eng.data.dir / "detectors.json", json.dumps(doc, indent=1))
        print(f"saved to {path}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from .cli_common import CliError, open_engine, plugins_for
    from .engine.plugins import apply_detectors

    eng = open_engine(args)
    tab = eng.data.load_tab(eng.data.tab_path(args.tab))
    tab.active = True
    if args.value is not None:
        tab.value = args.value
    if args.auto:
        if not tab.detector:
            raise CliError(f"tab {tab.name!r} has no detector: --auto needs one")
        tab.detector = {**tab.detector, "mode": "run_and_modify"}
    elif tab.detector:
        tab.detector = {**tab.detector, "mode": "off"}
    manager = plugins_for(args)
    out = Path(args.out)
    failures = 0
    for stack in _seeds_stacks(args):
        result, final, messages = apply_detectors(eng.render, stack.copy(tabs=[tab]), manager)
        for m in messages:
            print(f"seed {stack.seed}: {m}", file=sys.stderr)
            failures += 1
        final.tabs[0].detector = None  # the recipe holds the detected selection itself
        path = eng.save_png(out / f"seed{stack.seed:04d}_{tab.name}.png", final, result)
        print(path)
    return 1 if failures else 0


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    seeds = argparse.ArgumentParser(add_help=False)
    seeds.add_argument("--seeds", default="0-7")
    seeds.add_argument("--psi", type=float, default=0.7)

    r = sub.add_parser("rank", parents=[common, seeds], help="rank a layer's channels by a selection over seeds")
    r.add_argument("--layer", required=True)
    r.add_argument("--tab", help="use a saved tab's selection")
    r.add_argument("--box", help="or a box at the layer's grid: rows y0:y1,cols x0:x1")
    r.add_argument("--method", choices=("dot", "cosine", "iou", "magnitude"), default="cosine")
    r.add_argument("--top", type=int, default=20)
    r.add_argument("--ray", metavar="ADDRESS", help="over many seeds on a Ray cluster: 'local' or host:port")
    r.add_argument("--ray-workers", type=int, metavar="N", help="actors (default: one per GPU, else per CPU)")
    r.set_defaults(func=cmd_rank)

    d = sub.add_parser("detect", parents=[common, seeds], help="run a detector plugin, write image + mask overlays")
    d.add_argument("--plugin", required=True)
    d.add_argument("--param", action="append", metavar="KEY=VALUE")
    d.add_argument("--plugins", help="a plugin folder looked in first (then the user's plugins/ and the shipped)")
    d.add_argument("--out", default="out/detect")
    d.set_defaults(func=cmd_detect)

    v = sub.add_parser("discover", parents=[common], help="find a part's detector for the bundled model")
    v.add_argument("--part", required=True)
    v.add_argument("--n", type=int, default=200, help="discovery images")
    v.add_argument("--oracle", help="part oracle (default: models/oracle.safetensors)")
    v.add_argument("--write", action="store_true", help="save into the model's detectors.json")
    v.set_defaults(func=cmd_discover)

    e = sub.add_parser("edit", parents=[common, seeds], help="apply a saved tab to seeds (--auto: its detector)")
    e.add_argument("--tab", required=True)
    e.add_argument("--auto", action="store_true", help="run and modify: detect the region, then edit it")
    e.add_argument("--value", type=float, help="slider value (default: the tab's)")
    e.add_argument("--out", default="out/edit")
    e.set_defaults(func=cmd_edit)
