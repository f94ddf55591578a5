"""Frames -> GIF or MP4 (imageio), with ping-pong order, fps, loop and integer upscaling."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .edits import EditError
from .files import write_atomic
from .recipe import RecipeError, read_image

FORMATS = (".gif", ".mp4")


def pingpong(frames: list) -> list:
    """0..n-1..1: the original's GIF order, so a loop has no jump."""
    return list(frames) + list(frames[-2:0:-1])


def collect_frames(sources: list[str | Path]) -> tuple[list[np.ndarray], list[str]]:
    """Frames from PNG files and folders of PNGs (sorted by name); unreadable files are reported, not fatal."""
    paths: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            pngs = (p for p in src.iterdir() if p.suffix.lower() == ".png" and p.name != "contact_sheet.png")
            paths.extend(sorted(pngs))
        else:
            paths.append(src)
    frames, problems = [], []
    for p in paths:
        try:
            frames.append(read_image(p))
        except RecipeError as e:
            problems.append(str(e))
    if frames and len({f.shape for f in frames}) > 1:
        raise EditError(f"frames have different sizes: {sorted({f.shape for f in frames})}")
    return frames, problems


def write_animation(frames: list[np.ndarray], out: str | Path, fps: float = 12.0, loop: int = 0,
                    use_pingpong: bool = False, upscale: int = 1) -> Path:
    """Write frames as .gif or .mp4 (atomically: a failed write leaves no half file)."""
    import imageio.v3 as iio

    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise EditError(f"animation must end in {' or '.join(FORMATS)}, got {out.name}")
    if not frames:
        raise EditError("no frames to animate")
    if fps <= 0:
        raise EditError("fps must be positive")
    seq = pingpong(frames) if use_pingpong and len(frames) > 2 else list(frames)
    if upscale > 1:
        seq = [np.repeat(np.repeat(f, upscale, 0), upscale, 1) for f in seq]
    arr = np.stack(seq)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / f"anim{out.suffix}"
        if out.suffix.lower() == ".gif":
            iio.imwrite(tmp_path, arr, duration=1000.0 / fps, loop=loop)
        else:
            if arr.shape[1] % 2 or arr.shape[2] % 2:  # H.264 wants even sizes
                arr = np.pad(arr, ((0, 0), (0, arr.shape[1] % 2), (0, arr.shape[2] % 2), (0, 0)), mode="edge")
            iio.imwrite(tmp_path, arr, fps=fps, codec="libx264")
        return write_atomic(out, tmp_path.read_bytes())
