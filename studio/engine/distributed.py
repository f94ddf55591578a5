"""Batch jobs on a Ray cluster (`pip install ganstudio[ray]`): the same files as in this process.

The driver (the CLI or the studio) plans the job and keeps everything that is written: the folder, the manifest,
one progress bar, cancelling and `--resume` all stay in `Job.run`.  Only the rendering moves: `ray_backend` is a
`jobs.Backend` that sends chunks of items to actors and yields each finished chunk's PNG bytes.

- **The model travels by value**: the driver puts the checkpoint's bytes into Ray's object store once; each actor
  checks their sha256 against the driver's model before loading them with the same checked loader (a worker never
  needs the driver's filesystem, and never opens a different file of the same name).
- **Workers return bytes, the driver writes** (atomically, as in-process): no shared filesystem is needed, and a
  crashed worker can leave no half-written file.  At scale the driver's disk and its PNG writes become the limit;
  see `bench/jobs.py --ray`.
- Each actor renders with the engine's own code on the device Ray gives it (a GPU actor where the cluster has GPUs,
  else one CPU each) and encodes each PNG with its recipe, naming the driver's model file: bit-identical files to
  an in-process run on the same kind of device.  On the CPU the number of torch threads changes how convolutions
  round (one 8-bit step here and there), so a CPU actor uses the driver's thread count (`threads`).
- Detector plugins travel as their source text and run in the actor's own isolated plugin workers.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .edits import EditError, EditStack
from .jobs import CHUNK, Backend, ChunkOutput, Item

IN_FLIGHT = 2  # chunks queued per actor: one rendering, one waiting, so an actor never idles between chunks
LOCAL = "local"


class RayError(EditError):
    """Ray is missing, the cluster cannot be reached, or a worker failed."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayError("Ray is not installed: pip install 'ganstudio[ray]'") from None
    return ray


def connect(address: str, workers: int | None = None) -> tuple[float, bool]:
    """Start a local cluster (`local`, `workers` CPUs) or join one at `address` (e.g. one started with
    `ray start --head`); returns (seconds it took, whether we started it: then `shutdown` stops it)."""
    ray = _ray()
    if ray.is_initialized():
        return 0.0, False
    t0 = time.perf_counter()
    _reachable(address)
    try:
        if address == LOCAL:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as e:  # ConnectionError, RuntimeError, ...: the message names the address
        raise RayError(f"could not reach a Ray cluster at {address!r}: {type(e).__name__}: {e}") from None
    return time.perf_counter() - t0, True


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """A host:port address must answer within a few seconds (Ray itself would retry for minutes)."""
    import socket

    if address in (LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayError(f"a Ray address is 'local', 'auto' or host:port (e.g. 10.0.0.5:6379), not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RayError(f"could not reach a Ray cluster at {address!r}: {e}") from None


def shutdown() -> None:
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


@contextmanager
def cluster(address: str, workers: int | None = None) -> Iterator[tuple[float, bool]]:
    """`connect` for the length of a block: a cluster started here is stopped after it (a joined one is left)."""
    seconds, started = connect(address, workers)
    try:
        yield seconds, started
    finally:
        if started:
            shutdown()


class RenderWorker:
    """The actor: one model, loaded once, renders chunks into PNG bytes."""

    def __init__(self, model_bytes: bytes, file_name: str, sha256: str, model_file: str,
                 plugin_sources: dict[str, str], capture: str | None, threads: int | None = None):
        import torch

        from .engine import Engine
        from .loaders import load_model
        from .plugins import PluginManager
        from .renderer import Renderer, pick_device

        if threads:
            torch.set_num_threads(threads)  # the driver's: the same rounding, the same files
        got = hashlib.sha256(model_bytes).hexdigest()
        if got != sha256:
            raise RayError(f"the model bytes arrived with sha256 {got[:12]}..., not {sha256[:12]}...")
        self.tmp = tempfile.TemporaryDirectory(prefix="ganstudio-ray-")
        root = Path(self.tmp.name)
        path = root / Path(file_name).name  # the same name: the recipe names the model as the driver's does
        path.write_bytes(model_bytes)
        self.engine = Engine(load_model(path, pick_device("auto")), root / "data")
        self.engine.model_file = model_file  # recorded in every recipe: the driver's file, as in-process
        self.renderer = Renderer(self.engine.renderer.G)
        self.plugins = None
        if plugin_sources:
            folder = root / "plugins"
            folder.mkdir()
            for name, source in plugin_sources.items():
                (folder / f"{Path(name).name}.py").write_text(source)
            self.plugins = PluginManager(folder)
        self.capture = capture

    def rank(self, stacks: list[dict], layer: str, selection, method: str):
        """Per-image rank scores of these images, summed (the driver divides by the count): `ganstudio rank`."""
        from .analysis import rank_channels

        r = self.renderer.render_many([EditStack.from_json(d) for d in stacks], capture=(layer,), until=layer)
        return rank_channels(r.features[layer].cpu().numpy(), selection, method) * len(stacks), len(stacks)

    def render(self, chunk: list[dict], keep_images: bool) -> ChunkOutput:
        from .jobs import render_chunk

        items = [Item.from_json(d) for d in chunk]
        return render_chunk(self.engine, self.renderer, items, self.plugins, self.capture, keep_images)


def ray_backend(engine, workers: int | None = None, plugins=None, capture: str | None = None,
                chunk_size: int = CHUNK, threads: int | None = None) -> Backend:
    """A `jobs.Backend` on the connected cluster: `workers` actors (default: one per GPU if it has GPUs, else one
    per CPU), each loaded once with the driver's model and using `threads` torch threads (default: the driver's).
    A `chunk_size` other than jobs.CHUNK gives the same pixels but other recorded windows (a windowed batch's size
    and slot) than an in-process run."""
    import torch

    ray = _ray()
    if not ray.is_initialized():
        raise RayError("connect to a cluster first (distributed.connect)")
    threads = threads or torch.get_num_threads()

    def chunks(todo: list[Item], keep_images: bool) -> Iterator[tuple[list[Item], ChunkOutput]]:
        if not todo:
            return
        sources = {} if plugins is None else {p.name: p.path.read_text() for p in plugins.plugins.values()
                                              if not p.error and p.path.is_file()}
        actors = _start_actors(ray, engine, workers, -(-len(todo) // chunk_size), threads, sources, capture)
        # the in-process chunks: a windowed batch records its batch and slot in each recipe, so the same chunks
        # make the same files (a job smaller than a chunk runs on one actor)
        queue = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
        pending: dict = {}  # object ref -> (actor index, chunk)

        def submit(k: int) -> None:
            chunk = queue.pop(0)
            payload = [it.to_json() for it in chunk]
            pending[actors[k].render.remote(payload, keep_images)] = (k, chunk)

        try:
            for _ in range(IN_FLIGHT):
                for k in range(len(actors)):
                    if queue:
                        submit(k)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                k, chunk = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as e:  # the worker died or raised: the job fails with the cause
                    raise RayError(f"a Ray worker failed on {chunk[0].name}...: {type(e).__name__}: {e}") from None
                if queue:
                    submit(k)
                yield chunk, out
        finally:  # done, cancelled, interrupted or failed: nothing keeps running on the cluster (killing an
            for actor in actors:  # actor drops its queued and running chunks)
                ray.kill(actor)

    return chunks


def _start_actors(ray, engine, workers: int | None, shards: int, threads: int, plugin_sources: dict[str, str],
                  capture: str | None) -> list:
    """`workers` actors (default: one per GPU where the cluster has GPUs, else one per CPU; never more than there
    are shards), each given the model's bytes from the object store (put there once)."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    n = min(workers or max(1, gpus or int(ray.cluster_resources().get("CPU", 1))), shards)
    actor_class = ray.remote(**({"num_gpus": 1} if gpus else {"num_cpus": 1}))(RenderWorker)
    model_ref = ray.put(Path(engine.model.path).read_bytes())
    return [actor_class.remote(model_ref, Path(engine.model.path).name, engine.model.sha256, engine.model_file,
                               plugin_sources, capture, threads) for _ in range(n)]


def rank_on_ray(engine, stacks: list[EditStack], layer: str, selection, method: str, workers: int | None = None,
                threads: int | None = None, shard: int = CHUNK):
    """`ganstudio rank` over many seeds on the cluster: shards of `shard` images, per-image scores summed on the
    actors and averaged here (the in-process mean, up to float64 rounding of the sum's order)."""
    import numpy as np
    import torch
    from ray.util import ActorPool

    ray = _ray()
    actors = _start_actors(ray, engine, workers, -(-len(stacks) // shard), threads or torch.get_num_threads(), {},
                           None)
    try:
        pool = ActorPool(actors)
        shards = [[s.to_json() for s in stacks[i:i + shard]] for i in range(0, len(stacks), shard)]
        total, count = None, 0
        for scores, k in pool.map_unordered(lambda a, v: a.rank.remote(v, layer, selection, method), shards):
            total = scores if total is None else total + scores
            count += k
        return np.asarray(total) / max(count, 1)
    finally:
        for actor in actors:
            ray.kill(actor)
