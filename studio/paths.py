"""Where the studio finds things: what ships with it (read-only) and the user's data folder (writable).

    shipped, read-only                              the user's data folder (platformdirs, or --data / GANSTUDIO_DATA)
      models/   the bundled model and its oracle      models/      the user's own checkpoints
      data/<sha256>/  the bundled model's data        <sha256>/    each model's tabs, directions, latent log, ...
      plugins/  detector plugins                      plugins/     the user's own plugins (shadow shipped ones)
                                                      recent.json  models opened lately, with their hashes

The shipped folders are package data of an installed wheel (`studio/bundled/<kind>`, read with importlib.resources;
the build maps the checkout's top-level `models/`, `data/` and `plugins/` there), or in a checkout those top-level
folders themselves.  Nothing the studio does writes into either: every write goes to the user's data folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

APP_NAME = "ganstudio"
DATA_ENV = "GANSTUDIO_DATA"  # the user's data folder
MODELS_ENV = "GANSTUDIO_MODELS"  # more folders of models to look in (os.pathsep-separated)
BUNDLED_MODEL_NAME = "anime-portraits-64.safetensors"
ORACLE_NAME = "oracle.safetensors"
CHECKOUT = Path(__file__).resolve().parent.parent  # the repository root (or site-packages when installed)
SHIPPED_KINDS = ("models", "data", "plugins")


def shipped(kind: str) -> Path:
    """A shipped folder ("models", "data" or "plugins"): the installed package's data, else the checkout's."""
    if kind not in SHIPPED_KINDS:
        raise ValueError(f"no shipped folder {kind!r}")
    packaged = resources.files("studio").joinpath("bundled", kind)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return CHECKOUT / kind


def user_data_root(override: str | Path | None = None) -> Path:
    """The user's data folder: `override` (--data), else $GANSTUDIO_DATA, else the platform's user data directory
    (~/.local/share/ganstudio, ~/Library/Application Support/ganstudio, %LOCALAPPDATA%\\ganstudio)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return platform_data_dir()


def platform_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def legacy_data_root() -> Path:
    """Where versions before 0.2 kept every model's data: `data/` beside the package (the checkout's, or
    site-packages/data for an installed wheel).  Read once per model, never written."""
    return CHECKOUT / "data"


def model_dirs(root: Path) -> list[Path]:
    """Folders whose checkpoints `find_model` looks through: the user's, $GANSTUDIO_MODELS, the shipped one."""
    extra = [Path(p).expanduser() for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    return [root / "models", *extra, shipped("models")]


def plugin_dirs(root: Path) -> list[Path]:
    """Folders of detector plugins, the first shadowing the later: the user's own, then the shipped ones."""
    return [root / "plugins", shipped("plugins")]


class NoModelError(LookupError):
    """No model named and none bundled."""


def model_to_open(arg: str | Path | None) -> Path:
    """The model to open: the one named, else the bundled default."""
    if arg:
        return Path(arg)
    bundled = bundled_model()
    if bundled is None:
        raise NoModelError(f"no bundled model in {shipped('models')}: pass --model PATH (.pkl, .pt, .pth or "
                           ".safetensors)")
    return bundled


def bundled_model() -> Path | None:
    """The bundled default model, if this installation has it."""
    path = shipped("models") / BUNDLED_MODEL_NAME
    return path if path.is_file() else None


def oracle() -> Path:
    """The bundled model's part/attribute oracle (a classifier used to discover its tabs and measure it)."""
    return shipped("models") / ORACLE_NAME
