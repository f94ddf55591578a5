"""`ganstudio`: the studio (default) and every engine job headless.

    ganstudio [gui] [--model M]            open the studio
    ganstudio info MODEL                   format, hash, config and the editable layers
    ganstudio generate --seeds 0-7 ...     PNGs (each with its recipe) from seeds
    ganstudio render PNG...                re-create PNGs from their recipes
    ganstudio convert IN OUT               any supported checkpoint -> GAN Studio's own format
    ganstudio batch JOB ... / animate      batch jobs and GIF/MP4 (see --help)
    ganstudio rank / detect / discover / edit   feature-map analysis and detectors (studio/cli_analysis.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__, paths
from .cli_common import CliError, RecipeEngines, model_path, open_engine, plugins_for, progress

# ------------------------------------------------------------------------------------------------ commands


def cmd_info(args: argparse.Namespace) -> int:
    from .engine.loaders import load_model

    m = load_model(args.model_pos or model_path(args.model))
    cfg = m.config
    print(f"model     {m.path}")
    print(f"format    {m.source_format}")
    print(f"sha256    {m.sha256}")
    family = "StyleGAN3-" if cfg.family == "stylegan3" else "StyleGAN2 "
    print(f"config    {cfg.resolution}px {family}{cfg.architecture}, z {cfg.z_dim}, w {cfg.w_dim}, classes "
          f"{cfg.c_dim}, mapping {cfg.mapping_layers} layers, channels base {cfg.channel_base} max "
          f"{cfg.channel_max}, conv_clamp {cfg.conv_clamp}, num_ws {cfg.num_ws}")
    params = sum(p.numel() for p in m.generator.parameters())
    print(f"params    {params:,}")
    from .engine.precision import DTYPE_NAMES, preview_dtype

    dtype = preview_dtype(m.generator)
    print(f"preview   {'live preview in ' + DTYPE_NAMES[dtype] + ' while dragging' if dtype else 'none'} "
          f"(the studio on this machine; saved files are always exact)")
    for note in m.notes:
        print(f"note      {note}")
    print("\nlayer            image area   map size  channels  w")
    for s in m.generator.synthesis.stages:
        if s.kind != "torgb":
            print(f"{s.name:<16} {s.resolution:>5}x{s.resolution:<5} {s.size:>5}x{s.size:<5} {s.channels:>6}  "
                  f"{s.w_index:>2}")
    if cfg.family == "stylegan3":
        print("(a StyleGAN3 layer's map is its image area plus a margin on each side; tabs edit the image area)")
    return 0


def parse_move(args: argparse.Namespace) -> tuple[tuple[float, float], float]:
    """--translate X,Y (image widths) and --rotate DEG as gen_images.py takes them."""
    from .engine.edits import EditError

    try:
        x, y = (float(v) for v in (args.translate or "0,0").split(","))
    except ValueError:
        raise EditError(f"--translate {args.translate!r}: give two numbers, e.g. 0.3,-0.2") from None
    return (x, y), float(args.rotate or 0.0)


def cmd_generate(args: argparse.Namespace) -> int:
    from .engine.edits import EditStack, parse_seeds

    eng = open_engine(args)
    seeds = parse_seeds(args.seeds)
    move = parse_move(args)
    out = Path(args.out)
    for seed in progress(seeds, len(seeds), "generate", args.quiet):
        stack = EditStack(seed=seed, psi=args.psi, cutoff=args.cutoff, class_index=args.class_index,
                          noise_mode=args.noise, noise_seed=seed, translate=move[0], rotate=move[1])
        result = eng.render(stack, use_cache=False)
        path = eng.save_png(out / f"seed{seed:04d}.png", stack, result)
        eng.data.log_latent(result.ws[0].cpu().numpy(), seed, str(path))
        if args.quiet is False and len(seeds) < 2:
            print(path)
    print(f"wrote {len(seeds)} image(s) to {out}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Re-render each PNG from its recipe; one failure never stops the others. Exit code: how many failed
    (capped at 125)."""
    import numpy as np

    from .engine.edits import EditError
    from .engine.loaders import ModelLoadError
    from .engine.recipe import RecipeError, read_image, read_recipe

    engines = RecipeEngines(args)
    out = Path(args.out)
    failures = 0
    for src in progress(args.pngs, len(args.pngs), "render", args.quiet):
        src = Path(src)
        try:
            recipe = read_recipe(src)  # read once: it names the model, which then checks it
            eng = engines.for_recipe(recipe)
            recipe = eng.fit_recipe(recipe)
            result = eng.render_recipe(recipe)
            dest = eng.save_png(out / src.name, recipe.stack, result)
            if args.check:
                same = np.array_equal(read_image(src), result.uint8()[0])
                mine = "fp16" if eng.renderer.half else "fp32"
                why = "" if same or recipe.precision == mine else f" (made in {recipe.precision}: re-render " \
                    f"{'with' if recipe.precision == 'fp16' else 'without'} --half)"
                print(f"{dest}: {'identical to' if same else 'DIFFERS from'} {src}{why}")
                failures += 0 if same else 1
            else:
                print(dest)
        except (RecipeError, EditError, ModelLoadError, OSError) as e:
            print(f"error: {src.name}: {e}" if src.name not in str(e) else f"error: {e}", file=sys.stderr)
            failures += 1
    if failures:
        print(f"{failures} of {len(args.pngs)} failed", file=sys.stderr)
    return min(failures, 125)


def cmd_convert(args: argparse.Namespace) -> int:
    from .engine.loaders import load_model, save_model

    m = load_model(args.src)
    out = save_model(m.generator, args.dst, half=args.half, notes=f"converted from {m.path.name} ({m.source_format}); "
                     + "; ".join(m.notes))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def stack_from_args(eng, args: argparse.Namespace):
    """The "current sliders and tabs" of a headless job: a PNG's recipe, or a seed, plus --attr, --set and --tab."""
    from .engine.edits import DEFAULT_PSI, EditError, EditStack

    stack = eng.read_png(args.start_from).stack if args.start_from else EditStack(seed=args.seed, psi=DEFAULT_PSI)
    if args.psi is not None:
        stack.psi = args.psi
    if args.noise:
        stack.noise_mode = args.noise
    if args.translate is not None or args.rotate is not None:
        stack.translate, stack.rotate = parse_move(args)
    known = {d.name: d for d in eng.data.load_directions()}
    for spec in args.attr or []:
        name, _, value = spec.partition("=")
        if name not in known:
            raise EditError(f"no attribute {name!r} in the model's data folder (have: {', '.join(known) or 'none'})")
        d = known[name]
        d.strength = float(value or 1)
        stack.directions = [x for x in stack.directions if x.name != name] + [d]
    classes = {e.attribute: e for e in eng.data.load_class_edits()}
    for spec in getattr(args, "set", None) or []:
        attribute, _, rest = spec.partition("=")
        value, _, strength = rest.partition(":")
        if attribute not in classes:
            raise EditError(f"no categorical attribute {attribute!r} in the model's data folder (have: "
                            f"{', '.join(classes) or 'none'})")
        edit = classes[attribute]
        edit.aim(value, float(strength or 1))
        stack.class_edits = [e for e in stack.class_edits if e.attribute != attribute] + [edit]
    for spec in args.tab or []:
        name, _, value = spec.partition("=")
        tab = eng.data.load_tab(eng.data.tab_path(name))
        tab.active, tab.value = True, float(value) if value else tab.value
        stack.tabs = [t for t in stack.tabs if t.name != tab.name] + [tab]
    return stack


def plan_job(eng, args: argparse.Namespace):
    """The job named on the command line, from the registry the studio's Batch panel uses too."""
    from .engine.edits import EditStack
    from .engine.jobspecs import JobArgs, plan

    stack = EditStack(seed=0) if args.job == "interpolate" else stack_from_args(eng, args)
    job_args = JobArgs(n=args.n, k=args.k, start=args.start, past_zero=args.past_zero, channels=args.channels or "",
                       folder=args.folder or "", inputs=list(args.inputs), method=args.method,
                       rng_seed=args.rng_seed)
    return plan(eng, args.job, stack, job_args)


class _Interrupts:
    """SIGINT and SIGTERM as KeyboardInterrupt, remembered: a KeyboardInterrupt raised while Python runs a
    finaliser (__del__, a weakref callback) is printed and dropped, so the batch loop also checks `seen`."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, signum, frame) -> None:
        self.seen = True
        raise KeyboardInterrupt


def cmd_batch(args: argparse.Namespace) -> int:
    """Plan and run a batch job (or finish one with --resume DIR). Exit code 0 when every planned image was
    written, 1 when some inputs or items failed (listed in the manifest), 130 when interrupted."""
    import contextlib
    import signal
    import threading

    from .engine import jobs

    eng = open_engine(args)
    folder = None
    if args.resume:
        folder = Path(args.resume)
        manifest, job = jobs.read_plan(folder)
        sha = (manifest.get("model") or {}).get("sha256")
        if sha != eng.model.sha256:
            raise CliError(f"{folder} was made with model {str(sha)[:12]}..., not {eng.model.name} "
                           f"({eng.model.sha256[:12]}...): pass its --model")
        if len(manifest["files"]) == len(job.items):
            print(f"nothing left to do: {len(job.items)} images in {folder}")
            return 0
    elif args.job is None:
        raise CliError("name a job (e.g. new-latents) or --resume FOLDER")
    else:
        job = plan_job(eng, args)
    for problem in job.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not job.items:
        print("nothing to render", file=sys.stderr)
        return 1
    cancel = threading.Event()
    plugins = plugins_for(args)
    with contextlib.ExitStack() as on_exit:  # a local Ray cluster started here stops at the end
        backend = None
        if args.ray:
            from .engine import distributed

            seconds, started = on_exit.enter_context(distributed.cluster(args.ray, args.ray_workers))
            backend = distributed.ray_backend(eng, args.ray_workers, plugins, threads=args.ray_threads)
            if not args.quiet:
                print(f"ray: {'started a local cluster' if started else 'joined ' + args.ray} in {seconds:.1f} s",
                      file=sys.stderr)
        bar = progress(None, len(job.items), job.kind, args.quiet)
        interrupts = _Interrupts()
        previous = {sig: signal.signal(sig, interrupts) for sig in (signal.SIGINT, signal.SIGTERM)}
        run = job.run(eng, args.out, cancel, plugins=plugins, folder=folder, backend=backend)
        try:
            for p in run:
                bar.update(p.done - bar.n)
                folder = p.folder
                if interrupts.seen:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            cancel.set()
            run.close()  # the job records "interrupted" in its manifest now, not whenever it is collected
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            bar.close()
    manifest = json.loads((folder / "manifest.json").read_text()) if folder else {}
    failed = manifest.get("failed") or {}
    for name, why in failed.items():
        print(f"failed: {name}: {why}", file=sys.stderr)
    print(f"{manifest.get('status', '?')}: {len(manifest.get('files', []))} of {len(job.items)} images in {folder} "
          f"({manifest.get('images_per_second', 0)} images/s)")
    return 1 if failed or job.problems else 0


def cmd_animate(args: argparse.Namespace) -> int:
    from .engine.animate import collect_frames, write_animation

    frames, problems = collect_frames(args.inputs)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    out = write_animation(frames, args.out, fps=args.fps, loop=args.loop, use_pingpong=args.pingpong,
                          upscale=args.upscale)
    n = len(frames) if not args.pingpong or len(frames) < 3 else 2 * len(frames) - 2
    print(f"wrote {out} ({n} frames at {args.fps:g} fps)")
    return 0


def cmd_import_csv(args: argparse.Namespace) -> int:
    eng = open_engine(args)
    n = eng.data.import_original(args.kind.replace("-", "_"), args.csv, eng.config.w_dim)
    print(f"imported {n} row(s) of {args.csv} into {eng.data.dir}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from .gui.app import run_app

    return run_app(args)


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    from .engine.edits import DEFAULT_PSI  # numpy only: the parser stays quick to build
    from .engine.jobspecs import JOB_SPECS, PARAM_HELP, JobArgs

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="checkpoint (.pkl, .pt, .safetensors); default: the bundled model")
    common.add_argument("--data", help=f"the user's data folder: one folder per model hash, models/, plugins/ "
                        f"(default: ${paths.DATA_ENV}, else {paths.platform_data_dir()})")
    common.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:1, mps")
    common.add_argument("--half", action="store_true", help="fp16 on a CUDA GPU (never on the CPU)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    common.add_argument("--memory-budget", type=float, metavar="GB",
                        help="largest model (weights + one render) to load; default: half this machine's RAM")
    common.add_argument("--inline-plugins", action="store_true",
                        help="run detector plugins in this process (debugging; no memory or crash isolation)")

    p = argparse.ArgumentParser(prog="ganstudio", description="GAN Studio: explore and edit StyleGAN2 generators.")
    p.add_argument("--version", action="version", version=f"ganstudio {__version__}")
    sub = p.add_subparsers(dest="command")

    g = sub.add_parser("gui", parents=[common], help="open the studio (the default command)")
    g.add_argument("--screenshot", help="render --frames frames, write a screenshot to this file and exit")
    g.add_argument("--frames", type=int, default=30)
    g.add_argument("--tab", action="append", metavar="NAME", help="switch on this saved tab at start (repeatable)")
    g.set_defaults(func=cmd_gui)

    i = sub.add_parser("info", parents=[common], help="describe a model and list its layers")
    i.add_argument("model_pos", nargs="?", metavar="MODEL")
    i.set_defaults(func=cmd_info)

    gen = sub.add_parser("generate", parents=[common], help="images from seeds, each PNG with its recipe")
    gen.add_argument("--seeds", required=True, help="e.g. 0-7,12")
    gen.add_argument("--psi", type=float, default=DEFAULT_PSI,
                     help=f"truncation psi (default {DEFAULT_PSI}, as the studio; 1 = none, NVlabs generate.py's)")
    gen.add_argument("--cutoff", type=int, help="truncate only the first N ws")
    gen.add_argument("--class", dest="class_index", type=int, help="class index of a conditional model")
    gen.add_argument("--noise", choices=("const", "random", "none"), default="const")
    _move_arguments(gen)
    gen.add_argument("--out", default="out")
    gen.set_defaults(func=cmd_generate)

    r = sub.add_parser("render", parents=[common], help="re-create PNGs from their recipes")
    r.add_argument("pngs", nargs="+")
    r.add_argument("--out", default="out/render")
    r.add_argument("--check", action="store_true", help="compare with the input pixels")
    r.set_defaults(func=cmd_render)

    jobs_help = "\n".join(f"  {spec.name:26s}{spec.help} ({', '.join(spec.params)})" for spec in JOB_SPECS)
    b = sub.add_parser("batch", parents=[common], help="batch jobs of the original's Batch and Misc menus",
                       epilog=f"jobs:\n{jobs_help}", formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("job", nargs="?", choices=[spec.name for spec in JOB_SPECS])
    b.add_argument("--resume", metavar="FOLDER", help="finish an interrupted or killed run in its folder")
    b.add_argument("inputs", nargs="*", help="PNGs (interpolate)")
    b.add_argument("--from", dest="start_from", help="start from this PNG's recipe (latent, sliders, tabs)")
    b.add_argument("--seed", type=int, default=0, help="latent seed when no --from")
    b.add_argument("--psi", type=float, help=f"truncation psi (default: the --from PNG's, else {DEFAULT_PSI})")
    b.add_argument("--noise", choices=("const", "random", "none"))
    _move_arguments(b)
    b.add_argument("--attr", action="append", metavar="NAME=STRENGTH", help="attribute slider (repeatable)")
    b.add_argument("--set", action="append", metavar="ATTRIBUTE=VALUE[:STRENGTH]",
                   help="class edit: move the image into this value of a categorical attribute (repeatable; strength "
                        "1 = the step between the class means)")
    b.add_argument("--tab", action="append", metavar="NAME=VALUE", help="saved tab, active, slider value")
    defaults = JobArgs()
    b.add_argument("--n", type=int, default=defaults.n, help=PARAM_HELP["n"])
    b.add_argument("--k", type=int, default=defaults.k, help=PARAM_HELP["k"])
    b.add_argument("--start", type=float, default=defaults.start, help=PARAM_HELP["start"])
    b.add_argument("--past-zero", action="store_true", help=PARAM_HELP["past_zero"])
    b.add_argument("--channels", help=PARAM_HELP["channels"])
    b.add_argument("--folder", help=PARAM_HELP["folder"])
    b.add_argument("--method", choices=("lerp", "slerp"), default=defaults.method, help=PARAM_HELP["method"])
    b.add_argument("--rng-seed", type=int, help=PARAM_HELP["rng_seed"])
    b.add_argument("--out", default="out/batch", help="each run writes a new folder in here")
    b.add_argument("--ray", metavar="ADDRESS", help="render on a Ray cluster: 'local' starts one on this machine, an "
                   "address (host:6379, or 'auto') joins a running one; the files are the same as in-process")
    b.add_argument("--ray-workers", type=int, metavar="N",
                   help="actors (default: one per GPU of the cluster, else one per CPU)")
    b.add_argument("--ray-threads", type=int, metavar="N", help="torch threads per CPU actor (default: this "
                   "process's, which gives bit-identical files; fewer threads round differently by an 8-bit step)")
    b.set_defaults(func=cmd_batch)

    a = sub.add_parser("animate", help="frames (PNGs or folders) -> GIF or MP4")
    a.add_argument("inputs", nargs="+")
    a.add_argument("--out", required=True, help="anim.gif or anim.mp4")
    a.add_argument("--fps", type=float, default=12)
    a.add_argument("--loop", type=int, default=0, help="GIF loop count (0 = forever)")
    a.add_argument("--pingpong", action="store_true", help="0..n-1..1 order")
    a.add_argument("--upscale", type=int, default=1, help="integer nearest-neighbour zoom")
    a.set_defaults(func=cmd_animate)

    from .cli_analysis import add_parsers

    add_parsers(sub, common)

    ic = sub.add_parser("import-csv", parents=[common], help="import the original tool's CSVs into the data folder")
    ic.add_argument("kind", choices=("attributes", "average-latent", "latents"))
    ic.add_argument("csv")
    ic.set_defaults(func=cmd_import_csv)

    c = sub.add_parser("convert", parents=[common], help="write GAN Studio's own format (.safetensors)")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=cmd_convert)
    return p


def _move_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--translate", metavar="X,Y", help="StyleGAN3: move the image by X,Y image widths")
    p.add_argument("--rotate", type=float, metavar="DEG", help="StyleGAN3: rotate the image (degrees)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    from .engine.loaders import MEMORY_BUDGET_ENV
    from .engine.plugins import INLINE_ENV

    if getattr(args, "memory_budget", None) is not None:
        os.environ[MEMORY_BUDGET_ENV] = str(args.memory_budget)  # read by every load in this process
    if getattr(args, "inline_plugins", False):
        os.environ[INLINE_ENV] = "1"
    from .engine.edits import EditError
    from .engine.loaders import ModelLoadError
    from .engine.modeldata import DataError
    from .engine.plugins import PluginError
    from .engine.recipe import RecipeError

    try:
        return args.func(args)
    except (CliError, ModelLoadError, RecipeError, EditError, DataError, PluginError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
