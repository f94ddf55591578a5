"""Where the studio finds models, model data and plugins (overridable by environment variables)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODEL_NAME = "anime-portraits-64.safetensors"


def models_dir() -> Path:
    return Path(os.environ.get("GANSTUDIO_MODELS", PROJECT_ROOT / "models"))


def data_root() -> Path:
    return Path(os.environ.get("GANSTUDIO_DATA", PROJECT_ROOT / "data"))


def plugins_dir() -> Path:
    return Path(os.environ.get("GANSTUDIO_PLUGINS", PROJECT_ROOT / "plugins"))


def bundled_model() -> Path | None:
    """The bundled default model, if this checkout has it."""
    path = models_dir() / BUNDLED_MODEL_NAME
    return path if path.is_file() else None
