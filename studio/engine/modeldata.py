"""A model's data folder `data/<sha256 of the model file>/`: tabs, attribute directions, average latent, latent log.

    tabs/<name>.json        spatial tabs (JSON, versioned)
    directions.json         attribute directions in w-space (unit vectors with names)
    average_latent.json     an average latent (optional; the model's own w_avg is used otherwise)
    latents.jsonl           append-only log of generated latents
    favourites/             favourite PNGs (each with its recipe)

Every write is atomic; a broken file is reported by name and never overwritten silently.  The original tool's
CSV files (`name,hash|tag,v1:v2:...`) can be imported.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .edits import Direction, EditError, SpatialTab, encode_array
from .files import append_line, write_text_atomic

TAB_FORMAT = "ganstudio-tab"
DIRECTIONS_FORMAT = "ganstudio-directions"
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class DataError(ValueError):
    """A file in the data folder is missing or broken; the message names it."""


def safe_filename(name: str) -> str:
    cleaned = SAFE_NAME.sub("_", name).strip("._")
    return cleaned or "unnamed"


@dataclass
class CsvRow:
    name: str
    tag: str
    values: np.ndarray


def read_original_csv(path: str | Path) -> list[CsvRow]:
    """Rows of the original tool's CSVs: `name,hash|tag,v1:v2:...:vN` (no header)."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) < 3:
            raise DataError(f"{Path(path).name} line {lineno}: expected name,tag,v1:v2:...")
        try:
            values = np.array([float(v) for v in parts[-1].split(":")], dtype=np.float32)
        except ValueError:
            raise DataError(f"{Path(path).name} line {lineno}: the values are not numbers joined by ':'") from None
        rows.append(CsvRow(parts[0], ",".join(parts[1:-1]), values))
    return rows


@dataclass
class ModelData:
    """The data folder of one model."""

    root: Path  # the data/ folder
    sha256: str
    errors: list[str] = field(default_factory=list)  # problems met while reading, for the status bar

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.sha256

    @property
    def tabs_dir(self) -> Path:
        return self.dir / "tabs"

    # -------------------------------------------------------------------------------------------- tabs

    def _stored_name(self, path: Path) -> str | None:
        """The tab name a file holds (None if unreadable), read without checking the rest."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return doc.get("name") if isinstance(doc, dict) and isinstance(doc.get("name"), str) else None
        except (OSError, UnicodeDecodeError, ValueError):
            return None

    def _named(self, name: str) -> Path | None:
        stem = safe_filename(name)
        for p in sorted(self.tabs_dir.glob(f"{stem}*.json")) if self.tabs_dir.is_dir() else []:
            if self._stored_name(p) == name:
                return p
        return None

    def tab_path(self, name: str) -> Path:
        """The file of the tab called `name`, or else the file whose stem is `name` (as tab_names lists them)."""
        return self._named(name) or self.tabs_dir / f"{safe_filename(name)}.json"

    def new_tab_path(self, name: str) -> Path:
        """Where the tab called `name` is saved: its own file, or for a new name a free one.  Names that
        sanitise alike ("mouth open", "mouth/open", "mouth_open") get -2, -3, ... and never overwrite another."""
        found = self._named(name)
        if found is not None:
            return found
        stem = safe_filename(name)
        for k in range(1, 10_000):
            p = self.tabs_dir / (f"{stem}.json" if k == 1 else f"{stem}-{k}.json")
            if not p.exists():
                return p
        raise DataError(f"too many tabs named like {name!r}")

    def save_tab(self, tab: SpatialTab) -> Path:
        """Write the tab to its own file (a new one if its name is new), atomically."""
        doc = {"format": TAB_FORMAT, "version": 1, **tab.to_json()}
        return write_text_atomic(self.new_tab_path(tab.name), json.dumps(doc, indent=1))

    def load_tab(self, path: str | Path) -> SpatialTab:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"tab file {path.name} is unreadable ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != TAB_FORMAT:
            raise DataError(f"{path.name} is not a GAN Studio tab file")
        try:
            return SpatialTab.from_json(doc)
        except EditError as e:
            raise DataError(f"tab file {path.name}: {e}") from None

    def tab_names(self) -> list[str]:
        return sorted(p.stem for p in self.tabs_dir.glob("*.json")) if self.tabs_dir.is_dir() else []

    def load_tabs(self, check: Callable[[SpatialTab], None] | None = None) -> list[SpatialTab]:
        """Every readable tab; unreadable ones are listed in `errors` and left untouched on disk, and so is a tab
        that `check` refuses (e.g. a layer this model lacks): it is not loaded, so nothing can render or draw it."""
        tabs = []
        for name in self.tab_names():
            try:
                tab = self.load_tab(self.tabs_dir / f"{name}.json")
            except DataError as e:
                self.errors.append(str(e))
                continue
            if check is not None:
                try:
                    check(tab)
                except EditError as e:
                    self.errors.append(f"tab file {name}.json is not loaded: {e}")
                    continue
            tabs.append(tab)
        return tabs

    def delete_tab(self, name: str) -> None:
        path = self._named(name)
        if path is not None:
            path.unlink(missing_ok=True)

    # -------------------------------------------------------------------------------------------- directions

    def load_directions(self) -> list[Direction]:
        path = self.dir / "directions.json"
        if not path.exists():
            return []
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != DIRECTIONS_FORMAT \
                    or not isinstance(doc.get("directions"), list):
                raise DataError("not a GAN Studio directions file")
        except (OSError, ValueError, RecursionError) as e:
            self.errors.append(f"directions.json is unreadable ({type(e).__name__}: {str(e)[:120]})")
            return []
        out = []
        for i, d in enumerate(doc["directions"]):  # a broken direction is reported; the others still load
            try:
                vector = np.asarray(d["vector"], dtype=np.float32)
                if vector.ndim not in (1, 2) or vector.size > 1 << 20 or not np.isfinite(vector).all():
                    raise ValueError("the vector is not a finite 1-D or 2-D array")
                out.append(Direction(str(d["name"])[:200], vector, 0.0))
            except (KeyError, TypeError, ValueError) as e:
                self.errors.append(f"directions.json entry {i}: {type(e).__name__}: {str(e)[:120]}")
        return out

    def save_directions(self, directions: list[Direction], notes: dict | None = None) -> Path:
        doc = {"format": DIRECTIONS_FORMAT, "version": 1, "notes": notes or {},
               "directions": [{"name": d.name, "vector": [float(v) for v in d.vector.ravel()]} for d in directions]}
        return write_text_atomic(self.dir / "directions.json", json.dumps(doc))

    def add_direction(self, direction: Direction) -> Path:
        """Add or replace one direction by name (e.g. a combination of sliders)."""
        existing = [d for d in self.load_directions() if d.name != direction.name]
        return self.save_directions(existing + [direction])

    # -------------------------------------------------------------------------------------------- latents

    def average_latent(self) -> np.ndarray | None:
        path = self.dir / "average_latent.json"
        if not path.exists():
            return None
        try:
            w = np.asarray(json.loads(path.read_text(encoding="utf-8"))["w_avg"], dtype=np.float32)
            if w.ndim not in (1, 2) or not np.isfinite(w).all():
                raise ValueError("w_avg is not a finite 1-D or 2-D array")
            return w
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
            self.errors.append(f"average_latent.json is unreadable ({type(e).__name__}: {str(e)[:120]})")
            return None

    def save_average_latent(self, w_avg: np.ndarray, samples: int) -> Path:
        doc = {"w_avg": [float(v) for v in np.asarray(w_avg).ravel()], "samples": samples}
        return write_text_atomic(self.dir / "average_latent.json", json.dumps(doc))

    def log_latent(self, ws: np.ndarray, seed: int | None, file: str | None = None, tag: str = "") -> None:
        """Append one generated latent to latents.jsonl (never rewrites earlier lines)."""
        entry = {"time": time.time(), "seed": seed, "file": file, "tag": tag, "ws": encode_array(ws)}
        append_line(self.dir / "latents.jsonl", json.dumps(entry, separators=(",", ":")))

    def latent_log(self) -> list[dict]:
        path = self.dir / "latents.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash: skip it, keep the rest
        return out

    # -------------------------------------------------------------------------------------------- imports

    def import_original(self, kind: str, csv_path: str | Path, w_dim: int) -> int:
        """Import the original tool's attributes.csv / average_latent.csv / latents.csv; returns rows taken."""
        rows = read_original_csv(csv_path)
        for r in rows:
            if r.values.size != w_dim:
                raise DataError(f"{Path(csv_path).name}: {r.name!r} has {r.values.size} values, "
                                f"the model's w has {w_dim}")
        if kind == "attributes":
            for r in rows:
                self.add_direction(Direction(r.name, r.values))
        elif kind == "average_latent":
            self.save_average_latent(rows[0].values, samples=0)
        elif kind == "latents":
            for r in rows:
                self.log_latent(r.values[None], None, tag=f"imported {r.name} {r.tag}")
        else:
            raise DataError(f"unknown CSV kind {kind!r} (attributes, average_latent or latents)")
        return len(rows)
