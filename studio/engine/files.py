"""Small file helpers: atomic writes and content hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file honours the umask
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process's umask (read without changing it, where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


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
