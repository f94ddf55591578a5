"""What the command-line modules share (cli.py and cli_analysis.py both import it; neither imports the other's
helpers): the user-facing error, the model, engine and plugins a command opens, the engines of recipes, progress."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import paths


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 2."""


def model_path(arg: str | None) -> Path:
    try:
        return paths.model_to_open(arg)
    except paths.NoModelError as e:
        raise CliError(str(e)) from None


def open_engine(args: argparse.Namespace):
    from .engine.engine import Engine

    return Engine.open(model_path(args.model), args.data, device=args.device, half=args.half)


def plugins_for(args: argparse.Namespace):
    from .engine.plugins import PluginManager

    extra = [Path(args.plugins)] if getattr(args, "plugins", None) else []
    return PluginManager([*extra, *paths.plugin_dirs(paths.user_data_root(args.data))])


class RecipeEngines:
    """The engine for each PNG's recipe: --model if given, else the model the recipe names, found by its hash
    (ModelIndex: the recorded path, recent models, the user's and shipped model folders).  A few stay open."""

    KEEP = 3

    def __init__(self, args: argparse.Namespace):
        from .engine.modelindex import ModelIndex

        self.args = args
        root = paths.user_data_root(args.data)
        self.index = ModelIndex(root, tuple(paths.model_dirs(root)))
        self.open: dict[str, object] = {}

    def for_recipe(self, recipe):
        from .engine.engine import Engine
        from .engine.recipe import RecipeError

        if self.args.model or recipe.model_sha256 is None:  # a legacy latent names no model: the bundled one
            path = model_path(self.args.model)
        else:
            path = self.index.find(recipe.model_sha256, recipe.model_path)
            if path is None:
                raise RecipeError(f"{recipe.source}: no model file with sha256 {recipe.model_sha256[:12]}... "
                                  f"({recipe.model_name or 'unnamed'}) found; looked in "
                                  f"{self.index.where(recipe.model_path)}. Pass --model PATH")
        key = str(path.resolve())
        if key not in self.open:
            if len(self.open) >= self.KEEP:
                self.open.pop(next(iter(self.open)))
            self.open[key] = Engine.open(path, self.args.data, device=self.args.device, half=self.args.half)
        return self.open[key]


def progress(iterable, total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=quiet or total < 2, file=sys.stderr)
