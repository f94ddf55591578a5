"""Models found by their hash, so a PNG's recipe finds the model that made it.

A recipe names its model by the sha256 of the file (and the path it was opened from).  `ModelIndex.find` looks at
that path, the models opened lately (`recent.json` in the user's data folder), the user's model folders and the
shipped models, hashing each candidate once: hashes are kept in `model_hashes.json` by path, size and mtime.
Both files are the studio's own but still read as untrusted: a broken one is ignored and rewritten.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .files import sha256_file, write_text_atomic

MODEL_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")
RECENT_FILE = "recent.json"
HASHES_FILE = "model_hashes.json"
MAX_RECENT = 20
MAX_HASHES = 500  # remembered hashes (the oldest are dropped)
MAX_FOLDER_FILES = 200  # checkpoints looked at per folder


@dataclass
class ModelIndex:
    root: Path  # the user's data folder
    folders: tuple[Path, ...] = ()  # where to look besides the recent models (paths.model_dirs)

    # -------------------------------------------------------------------------------------------- recent models

    def recent(self) -> list[dict]:
        """Models opened lately, newest first: {"path", "sha256", "opened"} (entries that do not parse are left out)."""
        doc = _read_json(self.root / RECENT_FILE)
        entries = doc.get("models") if isinstance(doc, dict) else None
        return [e for e in entries if _is_entry(e)][:MAX_RECENT] if isinstance(entries, list) else []

    def remember(self, path: str | Path, sha256: str) -> None:
        """Put a model at the top of the recent list (best effort: a read-only data folder only loses the list)."""
        path = str(Path(path).resolve())
        entries = [{"path": path, "sha256": sha256, "opened": round(time.time())}]
        entries += [e for e in self.recent() if e["path"] != path]
        try:
            write_text_atomic(self.root / RECENT_FILE, json.dumps({"models": entries[:MAX_RECENT]}, indent=1))
        except OSError:
            pass

    # -------------------------------------------------------------------------------------------- lookup

    def sha256_of(self, path: Path) -> str:
        """The file's sha256, from the cache when its size and mtime are unchanged."""
        st = path.stat()
        key = str(path.resolve())
        cache = _read_json(self.root / HASHES_FILE)
        cache = cache if isinstance(cache, dict) else {}
        hit = cache.get(key)
        if isinstance(hit, list) and len(hit) == 3 and hit[:2] == [st.st_size, st.st_mtime_ns] \
                and isinstance(hit[2], str):
            return hit[2]
        sha = sha256_file(path)
        cache.pop(key, None)
        cache[key] = [st.st_size, st.st_mtime_ns, sha]
        try:
            write_text_atomic(self.root / HASHES_FILE, json.dumps(dict(list(cache.items())[-MAX_HASHES:])))
        except OSError:
            pass
        return sha

    def candidates(self, hint: str | None = None) -> list[Path]:
        """Files that may be the model, most likely first: the recorded path, the recent models, the folders."""
        seen: dict[str, Path] = {}
        paths = [Path(hint)] if hint else []
        paths += [Path(e["path"]) for e in self.recent()]
        for folder in self.folders:
            if folder.is_dir():
                files = sorted(p for p in folder.iterdir() if p.suffix.lower() in MODEL_SUFFIXES)
                paths += files[:MAX_FOLDER_FILES]
        for p in paths:
            try:
                if p.is_file():
                    seen.setdefault(str(p.resolve()), p)
            except OSError:
                continue
        return list(seen.values())

    def find(self, sha256: str, hint: str | None = None) -> Path | None:
        """The first candidate whose bytes hash to `sha256` (a recent entry's hash is re-checked, never trusted)."""
        for path in self.candidates(hint):
            try:
                if self.sha256_of(path) == sha256:
                    return path
            except OSError:
                continue
        return None

    def where(self, hint: str | None = None) -> str:
        """Where `find` looks, for an error message."""
        parts = [f"the recipe's path {hint}"] if hint else []
        parts.append(f"{len(self.recent())} recent model(s) ({self.root / RECENT_FILE})")
        parts += [str(f) for f in self.folders]
        return "; ".join(parts)


def _read_json(path: Path) -> object:
    try:
        if path.stat().st_size > 16 << 20:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


def _is_entry(e: object) -> bool:
    return isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str) \
        and len(e["path"]) <= 4096
