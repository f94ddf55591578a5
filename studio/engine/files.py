"""Small file helpers: atomic writes and content hashes."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def free_path(path: str | Path) -> Path:
    """`path` if nothing is there, else the first free `stem-2.ext`, `stem-3.ext`, ...: the studio never overwrites
    a file the user already has."""
    path = Path(path)
    if not path.exists():
        return path
    for k in range(2, 100_000):
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free name like {path}")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes in memory (the same as sha256_file of a file holding them)."""
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Write `data` to a temp file beside `path`, then rename over it: readers see old or new, never half.

    `durable` also fsyncs before the rename (survives a power cut); batch jobs writing hundreds of small PNGs
    skip it: a crashed or cancelled job still leaves only complete files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = _create_temp(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new hidden temp file beside `path`, created exclusively with mode 0666 minus the umask (mkstemp's
    0600 would make every written file private)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name beside {path}")


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, text.encode("utf-8"))


def append_line(path: str | Path, line: str) -> None:
    """Append one line with a single write; a torn last line (crash mid-write) is closed off first, not joined."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        torn = False
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((("\n" if torn else "") + line.rstrip("\n") + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
