"""A model's data folder `<user data>/<sha256 of the model file>/`: tabs, directions, average latent, latent log.

    tabs/<name>.json        spatial tabs (JSON, versioned)
    directions.json         attribute directions in w-space with names (w += strength * vector; ours are scaled
                            to one std of the model's w along them, the original's attributes.csv rows as they are)
    classes.json            categorical attributes: their values and the class means of w (class edits)
    average_latent.json     an average latent (optional; the model's own w_avg is used otherwise)
    latents.jsonl           append-only log of generated latents
    favourites/             favourite PNGs (each with its recipe)

Every write is atomic and goes to the user's folder; a broken file is reported by name and never overwritten
silently.  A bundled model also has a shipped folder (read-only, inside the installation), overlaid beneath the
user's: a user's tab of the same name shadows the shipped one, editing a shipped tab saves a user copy, deleting
it hides it (`hidden_tabs.json`); the user's directions add to (or shadow by name) the shipped ones.  The first
time a model's user folder is needed, what an older version kept in `data/<sha256>/` beside the package is copied
in.  The original tool's CSV files (`name,hash|tag,v1:v2:...`) can be imported.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from .edits import ClassEdit, Direction, EditError, SpatialTab, encode_array
from .files import append_line, write_text_atomic

TAB_FORMAT = "ganstudio-tab"
DIRECTIONS_FORMAT = "ganstudio-directions"
CLASSES_FORMAT = "ganstudio-classes"
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
HIDDEN_FILE = "hidden_tabs.json"
USER_KINDS = ("latents.jsonl", "favourites", "history", HIDDEN_FILE)  # never shipped: always the user's


class DataError(ValueError):
    """A file in the data folder is missing or broken; the message names it."""


def safe_filename(name: str) -> str:
    cleaned = SAFE_NAME.sub("_", name).strip("._")
    return cleaned or "unnamed"


T = TypeVar("T")


def parse_direction(d: dict) -> Direction:
    """One entry of directions.json (switched off)."""
    vector = np.asarray(d["vector"], dtype=np.float32)
    if vector.ndim not in (1, 2) or vector.size > 1 << 20 or not np.isfinite(vector).all():
        raise ValueError("the vector is not a finite 1-D or 2-D array")
    return Direction(str(d["name"])[:200], vector, 0.0)


def parse_class_edit(a: dict) -> ClassEdit:
    """One entry of classes.json (switched off), checked."""
    if not isinstance(a["values"], list):
        raise TypeError("values must be a list of names")
    means = np.asarray(a["means"], dtype=np.float32)
    if means.ndim != 2 or means.size > 1 << 20:
        raise ValueError("means must be a [values, w_dim] array")
    reader = None if a.get("reader") is None else np.asarray(a["reader"], dtype=np.float32)
    if reader is not None and reader.ndim != 2:
        raise ValueError("reader must be a [values, w_dim + 1] array")
    edit = ClassEdit(str(a["attribute"])[:200], [str(v)[:200] for v in a["values"]], means, reader=reader)
    edit.validate()
    return edit


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
    """The data of one model: the user's folder, over the shipped one (if the model is bundled)."""

    root: Path  # the user's data folder (writes go to root/<sha256>)
    sha256: str
    errors: list[str] = field(default_factory=list)  # problems met while reading, for the status bar
    shipped_root: Path | None = None  # the installation's data/ folder (read-only)
    legacy_root: Path | None = None  # an older version's data/ folder, copied in once

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.legacy_root is not None:
            self._pick_up_legacy()

    @property
    def dir(self) -> Path:
        return self.root / self.sha256

    @property
    def shipped_dir(self) -> Path | None:
        d = Path(self.shipped_root) / self.sha256 if self.shipped_root else None
        return d if d is not None and d.is_dir() and d.resolve() != self.dir.resolve() else None

    @property
    def tabs_dir(self) -> Path:
        return self.dir / "tabs"

    def _pick_up_legacy(self) -> None:
        """Copy an older version's folder for this model into the user's, once (when the user's does not exist
        yet).  From a folder that is also the shipped one (a checkout), only the kinds never shipped."""
        old = Path(self.legacy_root) / self.sha256
        if self.dir.exists() or not old.is_dir() or old.resolve() == self.dir.resolve():
            return
        shipped = self.shipped_dir is not None and old.resolve() == self.shipped_dir.resolve()
        entries = [old / k for k in USER_KINDS] if shipped else list(old.iterdir())
        try:
            for src in entries:
                if src.is_dir() and not src.is_symlink():
                    shutil.copytree(src, self.dir / src.name, symlinks=True)
                elif src.is_file():
                    self.dir.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, self.dir / src.name)
        except OSError as e:
            self.errors.append(f"could not copy the earlier data folder {old}: {e}")

    def read_path(self, name: str) -> Path:
        """A file of the folder as read: the user's if it exists, else the shipped one, else the user's (absent)."""
        mine = self.dir / name
        if not mine.exists() and self.shipped_dir is not None and (self.shipped_dir / name).exists():
            return self.shipped_dir / name
        return mine

    # -------------------------------------------------------------------------------------------- tabs

    def _stored_name(self, path: Path) -> str | None:
        """The tab name a file holds (None if unreadable), read without checking the rest."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            return doc.get("name") if isinstance(doc, dict) and isinstance(doc.get("name"), str) else None
        except (OSError, UnicodeDecodeError, ValueError):
            return None

    def hidden_tabs(self) -> set[str]:
        """Stems of shipped tab files the user deleted."""
        try:
            doc = json.loads((self.dir / HIDDEN_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return set()
        return {h for h in doc if isinstance(h, str)} if isinstance(doc, list) else set()

    def _set_hidden(self, hidden: set[str]) -> None:
        write_text_atomic(self.dir / HIDDEN_FILE, json.dumps(sorted(hidden)))

    def _shipped_tabs(self) -> dict[str, Path]:
        """Every shipped tab file by stem, hidden ones included."""
        folder = self.shipped_dir / "tabs" if self.shipped_dir is not None else None
        return {p.stem: p for p in sorted(folder.glob("*.json"))} if folder is not None and folder.is_dir() else {}

    def tab_files(self) -> dict[str, Path]:
        """Tab files by stem: the shipped ones (less those hidden), shadowed by the user's of the same stem."""
        shipped = self._shipped_tabs()
        hidden = self.hidden_tabs() if shipped else set()
        files = {stem: p for stem, p in shipped.items() if stem not in hidden}
        if self.tabs_dir.is_dir():
            files.update({p.stem: p for p in sorted(self.tabs_dir.glob("*.json"))})
        return dict(sorted(files.items()))

    def _named(self, name: str, files: dict[str, Path] | None = None) -> Path | None:
        stem = safe_filename(name)
        for file_stem, p in (self.tab_files() if files is None else files).items():
            if file_stem.startswith(stem) and self._stored_name(p) == name:
                return p
        return None

    def tab_path(self, name: str) -> Path:
        """The file of the tab called `name`, or else the file whose stem is `name` (as tab_names lists them)."""
        files = self.tab_files()
        return self._named(name, files) or files.get(name) or self.tabs_dir / f"{safe_filename(name)}.json"

    def new_tab_path(self, name: str) -> Path:
        """Where the tab called `name` is saved, always in the user's folder: its own file (a shipped tab gets a
        user copy of the same stem, which shadows it), or for a new name a free one.  Names that sanitise alike
        ("mouth open", "mouth/open", "mouth_open") get -2, -3, ... and never overwrite or shadow another."""
        files = self.tab_files()
        found = self._named(name, files)
        if found is not None:
            return self.tabs_dir / found.name
        stem = safe_filename(name)
        taken = set(files) | set(self._shipped_tabs())
        for k in range(1, 10_000):
            candidate = stem if k == 1 else f"{stem}-{k}"
            if candidate not in taken and not (self.tabs_dir / f"{candidate}.json").exists():
                return self.tabs_dir / f"{candidate}.json"
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
        return list(self.tab_files())

    def load_tabs(self, check: Callable[[SpatialTab], None] | None = None) -> list[SpatialTab]:
        """Every readable tab; unreadable ones are listed in `errors` and left untouched on disk, and so is a tab
        that `check` refuses (e.g. a layer this model lacks): it is not loaded, so nothing can render or draw it."""
        tabs = []
        for name, path in self.tab_files().items():
            try:
                tab = self.load_tab(path)
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

    def delete_tab(self, name: str) -> Path | None:
        """Remove the tab's user file, and hide a shipped one of that stem; returns the file that was read (to
        restore it: `restore_tab`), None when there was none."""
        path = self._named(name)
        if path is None:
            return None
        shipped = self._shipped_tabs()
        if shipped.get(path.stem) != path:  # the user's own file (a shipped one is only hidden)
            path.unlink(missing_ok=True)
        if path.stem in shipped:
            self._set_hidden(self.hidden_tabs() | {path.stem})
        return path

    def restore_tab(self, tab: SpatialTab) -> Path:
        """Undo a delete: save the tab again (a hidden shipped tab of its stem shows again if it is unchanged)."""
        stem = safe_filename(tab.name)
        hidden = self.hidden_tabs()
        if stem in hidden:
            self._set_hidden(hidden - {stem})
            shown = self._named(tab.name)
            if shown is not None and self.load_tab(shown).to_json() == tab.to_json():
                return shown
        return self.save_tab(tab)

    # -------------------------------------------------------------------------------------------- directions

    def load_directions(self) -> list[Direction]:
        """The shipped directions, then the user's (one of the same name shadows the shipped one in place)."""
        shipped = self._read_directions(self.shipped_dir / "directions.json") if self.shipped_dir else []
        mine = self._read_directions(self.dir / "directions.json")
        mine_by_name = {d.name: d for d in mine}
        shipped_names = {d.name for d in shipped}
        return [mine_by_name.get(d.name, d) for d in shipped] + [d for d in mine if d.name not in shipped_names]

    def _read_list(self, path: Path, fmt: str, key: str, parse: Callable[[dict], T]) -> list[T]:
        """The entries under `key` of a versioned JSON data file, each through `parse`: an unreadable file or a
        broken entry is reported in `errors` (the other entries still load)."""
        if not path.exists():
            return []
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != fmt or not isinstance(doc.get(key), list):
                raise DataError(f"not a GAN Studio {path.stem} file")
        except (OSError, ValueError, RecursionError) as e:
            self.errors.append(f"{path.name} is unreadable ({type(e).__name__}: {str(e)[:120]})")
            return []
        out = []
        for i, entry in enumerate(doc[key]):
            try:
                out.append(parse(entry))
            except (KeyError, TypeError, ValueError) as e:
                self.errors.append(f"{path.name} entry {i}: {type(e).__name__}: {str(e)[:120]}")
        return out

    def _read_directions(self, path: Path) -> list[Direction]:
        return self._read_list(path, DIRECTIONS_FORMAT, "directions", parse_direction)

    def save_directions(self, directions: list[Direction], notes: dict | None = None) -> Path:
        """Write the user's directions (shipped ones of other names still show beneath them)."""
        doc = {"format": DIRECTIONS_FORMAT, "version": 1, "notes": notes or {},
               "directions": [{"name": d.name, "vector": [float(v) for v in d.vector.ravel()]} for d in directions]}
        return write_text_atomic(self.dir / "directions.json", json.dumps(doc))

    def add_direction(self, direction: Direction) -> Path:
        """Add or replace one direction by name (e.g. a combination of sliders)."""
        existing = [d for d in self._read_directions(self.dir / "directions.json") if d.name != direction.name]
        return self.save_directions(existing + [direction])

    # -------------------------------------------------------------------------------------------- class edits

    def load_class_edits(self) -> list[ClassEdit]:
        """The shipped categorical attributes, then the user's (one of the same name shadows the shipped one), all
        switched off (no target)."""
        shipped = {e.attribute: e for e in self._read_classes(self.shipped_dir / "classes.json")} \
            if self.shipped_dir else {}
        mine = {e.attribute: e for e in self._read_classes(self.dir / "classes.json")}  # (one per name: the last)
        return [mine.get(a, e) for a, e in shipped.items()] + [e for a, e in mine.items() if a not in shipped]

    def _read_classes(self, path: Path) -> list[ClassEdit]:
        return self._read_list(path, CLASSES_FORMAT, "attributes", parse_class_edit)

    def save_class_edits(self, edits: list[ClassEdit], notes: dict | None = None) -> Path:
        """Write the user's categorical attributes (their values and class means)."""
        rows = lambda a: [[float(v) for v in row] for row in a]  # noqa: E731
        doc = {"format": CLASSES_FORMAT, "version": 1, "notes": notes or {},
               "attributes": [{"attribute": e.attribute, "values": list(e.values), "means": rows(e.means),
                               **({} if e.reader is None else {"reader": rows(e.reader)})} for e in edits]}
        return write_text_atomic(self.dir / "classes.json", json.dumps(doc))

    # -------------------------------------------------------------------------------------------- statistics

    def channel_std(self, layer: str, channels: int) -> np.ndarray | None:
        """A layer's per-channel activation std measured earlier (stats/<layer>.json), checked as data."""
        path = self.read_path(f"stats/{safe_filename(layer)}.json")
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            std = np.asarray(doc["std"], dtype=np.float32)
            if std.shape != (channels,) or not np.isfinite(std).all() or (std < 0).any():
                raise ValueError(f"std is not {channels} finite non-negative numbers")
            return std
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
            self.errors.append(f"{path.name} is unreadable ({type(e).__name__}: {str(e)[:120]}); measured again")
            return None

    def save_channel_std(self, layer: str, std: np.ndarray, samples: int) -> Path:
        doc = {"layer": layer, "samples": samples, "std": [round(float(v), 6) for v in std]}
        return write_text_atomic(self.dir / "stats" / f"{safe_filename(layer)}.json", json.dumps(doc))

    # -------------------------------------------------------------------------------------------- latents

    def average_latent(self) -> np.ndarray | None:
        path = self.read_path("average_latent.json")
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
