"""Edit stack -> image, with spatial edits between synthesis stages, feature capture and a render cache.

The synthesis network runs stage by stage (`b4.conv1`, `b4.torgb`, `b8.conv0`, ...).  After each conv stage the
active tabs' deltas are added to its output, and requested feature maps are captured.  Every stage has a key
(the ws row it reads, its noise, the edits at its output); the renderer keeps the states of its last batch-1
render, and a new render resumes after the longest prefix of unchanged keys.  Moving a tab's slider at 16x16
therefore recomputes only the stages from 16x16 on, with a result identical to a full render.

Batches: every sample is computed at batch 1, so it comes out bit-identical to its single render (a batch job's
PNG re-renders exactly; batched and grouped convolutions round differently).  The stages before the first one where
the samples differ run once for all of them; samples of one w that differ only inside a small box are windowed
(windowed.py), and each records its window so that its re-render crops alike.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .edits import EditError, EditStack, SpatialTab, array_digest, resample_grid, seed_z, slerp
from .loaders import memory_budget_bytes, render_bytes
from .network import Generator, Stage, SynthesisState, truncate
from .network_sg3 import input_transform
from .windowed import Box, Delta, Window, box_area, support, windowed_tail

NOISE_SEED_STRIDE = 1000  # random noise of stage i for noise seed s uses torch seed s * stride + i
UNIT_DELTA_CACHE = 64  # unit deltas (a x S) kept for fast slider scrubbing
WINDOW_MAX_AREA = 0.25  # batches whose samples differ over more of a layer than this run densely
Move = tuple[tuple[float, float], float]  # a StyleGAN3 input move: (translate x, y), rotate degrees
NO_MOVE: Move = ((0.0, 0.0), 0.0)
MAX_BATCH = 64  # at most this many samples in one batch, memory permitting


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA, else Apple MPS, else CPU; or exactly the device named."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("--device mps was asked for, but Apple MPS is not available here")
    return dev


class NonFiniteRender(EditError):
    """The render came out with NaN or infinite pixels: reported, never written as a black PNG."""


def check_finite(images: Tensor) -> None:
    """Raise NonFiniteRender if any pixel is NaN or infinite (a clamp to uint8 would silently turn it black)."""
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = (~finite).flatten(1).any(1).nonzero().flatten().tolist()
        raise NonFiniteRender(f"the render came out with NaN or infinite pixels (sample {bad[:8]}); nothing "
                              "was written: lower the edit strengths or check the model")


def to_uint8(images: Tensor) -> np.ndarray:
    """[N,C,H,W] floats in about [-1,1] -> uint8 [N,H,W,C] as NVlabs: (img*127.5 + 128).clamp(0, 255).

    Raises NonFiniteRender for NaN or infinite pixels (check_finite)."""
    images = images.detach().float()
    check_finite(images)
    x = (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.cpu().numpy()


@dataclass
class RenderResult:
    images: Tensor | None  # [N, C, H, W] float, about [-1, 1] (None when stopped early)
    ws: Tensor  # [N or 1, num_ws, w_dim]
    features: dict[str, Tensor] = field(default_factory=dict)  # layer -> [N, C, r, r]
    first_stage: int = 0  # index of the first stage recomputed (len(stages) = everything from cache)
    ms: float = 0.0
    windows: list[Window | None] | None = None  # per sample: the window it was rendered in (its recipe records it)
    preview: bool = False  # rendered by a reduced-precision preview generator (precision.py): for the screen only

    def window(self, index: int) -> Window | None:
        return self.windows[index] if self.windows else None

    def uint8(self) -> np.ndarray:
        return to_uint8(self.images)


@dataclass
class _Cache:
    context: tuple
    keys: list[str]
    states: list[SynthesisState]


def _digest(*parts: object) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
    return h.hexdigest()


def _class_reading(stack: EditStack, center: np.ndarray) -> tuple[np.ndarray, float]:
    """The truncation centre and psi the class means are compared at: those of the first w (truncated unless the
    cutoff is 0)."""
    psi = stack.psi if stack.cutoff is None or stack.cutoff > 0 else 1.0
    return center.reshape(-1, center.shape[-1])[0], psi


def class_offset(stack: EditStack, w0: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The sum of the stack's class edits for an image whose first w is w0 (after truncation and mixing): every
    edit reads the image's own class from that same w, so the order of the edits does not matter."""
    first_center, psi = _class_reading(stack, center)
    return sum((e.step(w0, first_center, psi) for e in stack.class_edits if e.effective),
               np.zeros_like(w0, dtype=np.float32))


def read_classes(stack: EditStack, w0: np.ndarray, center: np.ndarray) -> dict[str, str]:
    """Per class edit of the stack (on or off), the value its attribute's means read in w0."""
    first_center, psi = _class_reading(stack, center)
    return {e.attribute: e.values[e.own(w0, first_center, psi)] for e in stack.class_edits}


class Renderer:
    """Turns edit stacks into images with one generator on one device. Not thread-safe: one caller at a time."""

    def __init__(self, G: Generator, half: bool = False):
        self.G = G
        self.device = G.w_avg.device
        if half and self.device.type != "cuda":
            raise RuntimeError("reduced precision is only used on a CUDA GPU; the CPU always renders in fp32")
        self.half = half
        self.stages: list[Stage] = G.synthesis.stages
        self.layers: dict[str, Stage] = {s.name: s for s in self.stages if s.kind != "torgb"}
        self._stage_index: dict[str, int] = {s.name: i for i, s in enumerate(self.stages)}
        self._cache: _Cache | None = None
        self._ws_memo: tuple | None = None  # (latent key, ws, class reading) of the last stack resolved
        self._class_read: tuple[np.ndarray, np.ndarray] | None = None  # (first w before class edits, centre)
        self._unit_deltas: dict[tuple, Tensor] = {}
        self._base_memo: tuple | None = None  # (key, states) of the last shared base of a windowed batch
        self.windowed = True  # False: batches that part late run densely (the baseline in tests and benchmarks)
        self.batch_limit = batch_limit(G)

    # -------------------------------------------------------------------------------------------- checks

    def check_stack(self, stack: EditStack) -> None:
        """Refuse a stack this model cannot render: non-finite numbers, latents of the wrong shape, tabs at
        unknown layers or with the wrong channel count (EditError naming the field).  A switched-off tab adds
        nothing, so it is not checked against the model and cannot break a render."""
        for tab in stack.tabs:
            if tab.active:
                self.check_tab(tab)
        stack.validate()
        if stack.transformed and not self.has_input_transform:
            raise EditError("translate and rotate move the input of StyleGAN3 models; this StyleGAN2 model has none")
        cfg = self.G.cfg
        latent_shapes = ((cfg.w_dim,), (1, cfg.w_dim), (cfg.num_ws, cfg.w_dim))
        if stack.z is not None and np.shape(stack.z) not in ((cfg.z_dim,), (1, cfg.z_dim)):
            raise EditError(f"z has shape {list(np.shape(stack.z))}; this model's z has {cfg.z_dim} values")
        for name, a in (("w", stack.w), ("base", stack.base), ("interpolation w", stack.mix and stack.mix.w)):
            if a is not None and np.shape(a) not in latent_shapes:
                raise EditError(f"{name} has shape {list(np.shape(a))}; this model's ws are "
                                f"[{cfg.num_ws}, {cfg.w_dim}]")
        for e in stack.class_edits:
            if e.effective and e.means.shape[1] != cfg.w_dim:
                raise EditError(f"class edit {e.attribute!r} has means of {e.means.shape[1]} values; this model's w "
                                f"has {cfg.w_dim}")
        for d in stack.directions:
            if np.shape(d.vector) not in latent_shapes[::2]:
                raise EditError(f"direction {d.name!r} has shape {list(np.shape(d.vector))}; this model's w has "
                                f"{cfg.w_dim} values")

    # -------------------------------------------------------------------------------------------- latents

    @property
    def has_input_transform(self) -> bool:
        return hasattr(self.G.synthesis, "input")

    def default_layer(self, resolution: int) -> str:
        """The layer a tab at `resolution` edits by default: the first feature map (in network order; StyleGAN3's
        Fourier-feature input only if no layer has it) whose image area has that resolution, else the next above."""
        ordered = sorted(self.layers.items(), key=lambda item: item[1].kind == "input")  # StyleGAN3: layers first
        for name, stage in ordered:
            if stage.resolution == resolution:
                return name
        for name, stage in ordered:
            if stage.resolution > resolution:
                return name
        raise EditError(f"this model has no layer at {resolution}x{resolution}")

    @torch.no_grad()
    def ws_for(self, stack: EditStack) -> Tensor:
        """The latent part of the stack -> ws [num_ws, w_dim] on the device (the last one is memoised)."""
        key = (stack.seed, stack.class_index, stack.psi, stack.cutoff,
               *(array_digest(a) for a in (stack.z, stack.w, stack.base)),
               None if stack.mix is None else (array_digest(stack.mix.w), stack.mix.t, stack.mix.method),
               bool(stack.class_edits), tuple(e.digest() for e in stack.class_edits if e.effective),
               tuple((array_digest(d.vector), d.strength) for d in stack.directions if d.strength))
        if self._ws_memo is not None and self._ws_memo[0] == key:
            return self._ws_memo[1]
        ws = self._resolve_ws(stack)
        self._ws_memo = (key, ws, self._class_read)
        return ws

    def _resolve_ws(self, stack: EditStack) -> Tensor:
        cfg = self.G.cfg
        if stack.w is not None:
            ws = torch.as_tensor(np.broadcast_to(stack.w, (cfg.num_ws, cfg.w_dim)).copy(), device=self.device)
        else:
            z = stack.z if stack.z is not None else seed_z(stack.seed, cfg.z_dim)
            z = torch.as_tensor(np.asarray(z).reshape(1, cfg.z_dim), device=self.device)
            c = None
            if cfg.c_dim:
                if stack.class_index is None or not 0 <= stack.class_index < cfg.c_dim:
                    raise EditError(f"this model is conditional: choose a class 0..{cfg.c_dim - 1}")
                c = torch.zeros([1, cfg.c_dim], device=self.device)
                c[0, stack.class_index] = 1
            ws = self.G.mapping(z, c).unsqueeze(1).repeat([1, cfg.num_ws, 1])[0]
        ws = ws.float()
        center = self.G.w_avg if stack.base is None else torch.as_tensor(stack.base, device=self.device)
        if stack.psi != 1:
            ws = truncate(ws[None], center, stack.psi, stack.cutoff)[0]
        if stack.mix is not None:
            other = np.broadcast_to(stack.mix.w, ws.shape)
            if stack.mix.method == "slerp":
                ws = torch.as_tensor(slerp(ws.cpu().numpy(), other, stack.mix.t), device=self.device)
            else:
                ws = ws.lerp(torch.as_tensor(other.copy(), device=self.device), stack.mix.t)
        self._class_read = None
        if stack.class_edits:  # what the edits read (kept for own_classes: no second mapping pass)
            self._class_read = (ws[0].cpu().numpy(), center.cpu().numpy())
        if any(e.effective for e in stack.class_edits):
            ws = ws + torch.as_tensor(class_offset(stack, *self._class_read), device=self.device)
        for d in stack.directions:
            if d.strength:
                ws = ws + d.strength * torch.as_tensor(d.vector, device=self.device, dtype=torch.float32)
        return ws

    @torch.no_grad()
    def own_classes(self, stack: EditStack) -> dict[str, str]:
        """The value each of the stack's categorical attributes reads in the image before its class edits (what an
        edit steps from)."""
        if not stack.class_edits:
            return {}
        self.ws_for(stack)  # the last stack rendered: memoised, with the w its class edits read
        return read_classes(stack, *self._ws_memo[2])

    # -------------------------------------------------------------------------------------------- rendering

    def render(self, stack: EditStack, capture: tuple[str, ...] = (), use_cache: bool = True,
               until: str | None = None) -> RenderResult:
        """One image (batch 1), resuming from the cache where the stack only changed late layers.  Stopped early
        (`until`) at a skip-architecture torgb stage, the result's images are the RGB image so far, at that block's
        resolution; at any other stage they are None."""
        self.check_stack(stack)
        ws = self.ws_for(stack)[None]
        return self.synthesize(ws, [stack.tabs], [stack.noise_seed], stack.noise_mode, capture, use_cache, until,
                               moves=[(stack.translate, stack.rotate)])

    def render_many(self, stacks: list[EditStack], capture: tuple[str, ...] = (), until: str | None = None
                    ) -> RenderResult:
        """Several images, each bit-identical to its single render; what they share is computed once.  A batch
        larger than memory allows (`batch_limit`) is rendered in parts, with the same result."""
        if len({s.noise_mode for s in stacks}) != 1:
            raise EditError("a batch must use one noise mode")
        if len(stacks) > self.batch_limit:
            k = self.batch_limit
            parts = [stacks[i:i + k] for i in range(0, len(stacks), k)]
            return _concat([self.render_many(p, capture, until) for p in parts], [len(p) for p in parts])
        for s in stacks:
            self.check_stack(s)
        ws_list = [self.ws_for(s) for s in stacks]
        shared = all(torch.equal(ws_list[0], w) for w in ws_list[1:])
        ws = ws_list[0][None] if shared else torch.stack(ws_list)
        return self.synthesize(ws, [s.tabs for s in stacks], [s.noise_seed for s in stacks], stacks[0].noise_mode,
                               capture, use_cache=False, until=until, moves=[(s.translate, s.rotate) for s in stacks])

    @torch.no_grad()
    def synthesize(self, ws: Tensor, tabs: list[list[SpatialTab]], noise_seeds: list[int], noise_mode: str,
                   capture: tuple[str, ...] = (), use_cache: bool = True, until: str | None = None,
                   moves: list[Move] | None = None, window: Window | None = None) -> RenderResult:
        """The core loop. ws [N or 1, num_ws, w_dim]; one tab list, noise seed and input move (translate, rotate:
        StyleGAN3) per sample.  Every sample is computed at batch 1, exactly as it is computed alone: a batch's
        samples share the stages before the first one where they differ, and from there each runs on its own (or
        windowed, see `_windowed`).  `window` replays a windowed sample from its recipe.  The caller checks the
        stacks first (`check_stack`: render, render_many and Engine.render_recipe do)."""
        t0 = time.perf_counter()
        n = len(tabs)
        moves = moves or [NO_MOVE] * n
        for name in (*capture, *([until] if until else [])):
            if name not in self._stage_index:
                raise EditError(f"no layer named {name!r}; see `ganstudio info` for the list")
        edit_keys = self._edit_keys(tabs)  # [stage][sample] -> what the sample's tabs add at that stage
        stop = len(self.stages) if until is None else self.stage_index(until) + 1
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
            if n == 1:
                result = self._single(ws, tabs[0], noise_seeds[0], noise_mode, moves[0], edit_keys, capture,
                                      use_cache and window is None, stop, window)
            else:
                result = self._batch(ws, tabs, noise_seeds, noise_mode, moves, edit_keys, capture, stop)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        result.ms = (time.perf_counter() - t0) * 1000
        return result

    def _single(self, ws: Tensor, tabs: list[SpatialTab], seed: int, mode: str, move: Move,
                edit_keys: list[list[str]], capture: tuple[str, ...], use_cache: bool, stop: int,
                window: Window | None) -> RenderResult:
        """One sample, resuming from the cache after the longest prefix of unchanged stage keys."""
        keys = self._stage_keys(ws, edit_keys, [seed], mode, [move])
        context = (mode, self.half)
        cache = self._cache if use_cache and self._cache is not None and self._cache.context == context else None
        start = 0
        while cache is not None and start < min(len(keys), len(cache.keys)) and keys[start] == cache.keys[start]:
            start += 1
        states: list[SynthesisState] = list(cache.states[:start]) if start and cache else []
        s = states[-1] if states else SynthesisState(batch=1)
        column = [k[0] for k in edit_keys]
        if window is not None:  # a windowed sample of a batch job: the same crops, so the same bits
            split = self.stage_index(window.split)
            s = self._run(0, split, s, states, ws, tabs, seed, mode, move, column)
            s = self.G.synthesis.run_stage(self.stages[split], s, ws, self._noise(self.stages[split], mode, [seed]))
            images = self._window_batch(window, s, ws, [tabs] * window.batch, column, seed, mode)
            return RenderResult(images[window.slot:window.slot + 1], ws, {}, 0, windows=[window])
        s = self._run(start, stop, s, states, ws, tabs, seed, mode, move, column)
        if use_cache:  # (a render stopped early keeps the stages it ran)
            self._cache = _Cache(context, keys[:len(states)], states)
        partial = self.stages[stop - 1].kind == "torgb" and s.img is not None
        images = s.img.float() if stop == len(self.stages) or partial else None
        return RenderResult(images, ws, self._captured(states, capture), start)

    def _batch(self, ws: Tensor, tabs: list[list[SpatialTab]], seeds: list[int], mode: str, moves: list[Move],
               edit_keys: list[list[str]], capture: tuple[str, ...], stop: int) -> RenderResult:
        """Several samples: the stages before they part once, then each sample alone (never from the cache)."""
        n = len(tabs)
        part, shares_conv = self._parting(ws, edit_keys, seeds, mode, moves, stop)
        shared: list[SynthesisState] = []
        s = self._run(0, part, SynthesisState(batch=1), shared, ws, tabs[0], seeds[0], mode, moves[0],
                      [k[0] for k in edit_keys])
        if part == stop:  # the samples never differ
            images = s.img.float().expand(n, -1, -1, -1) if stop == len(self.stages) else None
            feats = {k: v.expand(n, -1, -1, -1) for k, v in self._captured(shared, capture).items()}
            return RenderResult(images, ws, feats, 0)
        if shares_conv:  # they differ only in what their tabs add to this stage's output
            stage = self.stages[part]
            s = self.G.synthesis.run_stage(stage, s, ws, self._noise(stage, mode, seeds[:1]),
                                           self._transform(moves[:1]) if stage.kind == "input" else None)
            if self.windowed and self.G.synthesis.supports_windows and not capture and stop == len(self.stages):
                windowed = self._windowed(part, s, ws, tabs, edit_keys, seeds[0], mode)
                if windowed is not None:
                    return windowed
        images, feats = [], {name: [] for name in capture}
        for k in range(n):
            states = list(shared) if capture else None
            sk = self._run(part, stop, s, states, ws[k:k + 1] if ws.shape[0] > 1 else ws, tabs[k], seeds[k],
                           mode, moves[k], [keys[k] for keys in edit_keys], skip_conv=shares_conv)
            if stop == len(self.stages):
                images.append(sk.img.float())
            for name, x in self._captured(states or [], capture).items():
                feats[name].append(x)
        return RenderResult(torch.cat(images) if images else None, ws,
                            {name: torch.cat(xs) for name, xs in feats.items()}, 0)

    def _run(self, first: int, stop: int, s: SynthesisState, states: list[SynthesisState] | None, ws: Tensor,
             tabs: list[SpatialTab], seed: int, mode: str, move: Move, edits: list[str],
             skip_conv: bool = False) -> SynthesisState:
        """Stages first..stop-1 of one sample (batch 1), each followed by its tabs' delta; the states are appended
        to `states`.  `skip_conv`: `s` is already stage `first`'s output, only its delta is still to add."""
        for i in range(first, stop):
            stage = self.stages[i]
            if not (skip_conv and i == first):
                transform = self._transform([move]) if stage.kind == "input" else None
                s = self.G.synthesis.run_stage(stage, s, ws, self._noise(stage, mode, [seed]), transform)
            if edits[i]:
                delta = self._delta([tabs], stage)
                if delta is not None:  # a new state: `s` may be shared with the other samples of a batch
                    s = SynthesisState(1, s.x + delta.to(s.x.dtype), s.img, s.shortcut)
            if states is not None:
                states.append(s)
        return s

    def _parting(self, ws: Tensor, edit_keys: list[list[str]], seeds: list[int], mode: str, moves: list[Move],
                 stop: int) -> tuple[int, bool]:
        """The first stage at which a batch's samples differ, and whether they still share its convolution (they
        differ only in what their tabs add to its output); (stop, False) when they never differ."""
        if ws.shape[0] > 1:
            return 0, False
        noise_differs = mode == "random" and len(set(seeds)) > 1 and self.G.synthesis.has_noise
        for i in range(stop):
            stage = self.stages[i]
            if (noise_differs and stage.kind != "torgb") or (stage.kind == "input" and len(set(moves)) > 1):
                return i, False
            if len(set(edit_keys[i])) > 1:
                return i, True
        return stop, False

    def _captured(self, states: list[SynthesisState], capture: tuple[str, ...]) -> dict[str, Tensor]:
        at = {name: self.stage_index(name) for name in capture}
        return {name: image_area(states[i].x.float(), self.stages[i]) for name, i in at.items()}

    def stage_index(self, name: str) -> int:
        return self._stage_index[name]

    def clear_cache(self) -> None:
        self._cache = None
        self._ws_memo = None
        self._base_memo = None

    # -------------------------------------------------------------------------------------------- windows

    def _windowed(self, split: int, s: SynthesisState, ws: Tensor, tabs: list[list[SpatialTab]],
                  edit_keys: list[list[str]], seed: int, mode: str) -> RenderResult | None:
        """Samples of one w that part at stage `split` (`s` is its shared output before the deltas), computed
        only inside boxes around where they can differ from a shared base (windowed.py), as one batch of crops.
        The boxes cover every sample's deltas, and each sample's PNG records them with the batch size and its place
        in the batch (`Window`), so its re-render crops and batches alike.  None when the samples differ over too
        much of a layer for windows to pay off."""
        boxes: dict[str, Box] = {}
        for j in range(split, len(self.stages)):
            if len(set(edit_keys[j])) > 1:
                delta = self._delta(tabs, self.stages[j])
                box = support(delta) if delta is not None else None
                if box is None:
                    continue
                if box_area(box) > WINDOW_MAX_AREA * delta[0, 0].numel():
                    return None
                boxes[self.stages[j].name] = box
        n = len(tabs)
        window = Window(self.stages[split].name, boxes, batch=n)
        images = self._window_batch(window, s, ws, tabs, [keys[0] for keys in edit_keys], seed, mode)
        return RenderResult(images, ws, {}, 0, windows=[window.at(k) for k in range(n)])

    def _window_batch(self, window: Window, s: SynthesisState, ws: Tensor, tabs: list[list[SpatialTab]],
                      edits: list[str], seed: int, mode: str) -> Tensor:
        """A windowed batch from its split stage's output `s`: the base (the deltas of the stages without a box,
        alike for all samples: `edits` are sample 0's keys) computed once, then the boxed stages on crops.  A
        convolution computes each sample of a batch from that sample alone, but rounds by the batch's shape: so a
        re-render replays its sample in a batch of the recorded size (copies of itself) and keeps its slot."""
        split = self.stage_index(window.split)
        noises = [self._noise(stage, mode, [seed]) if j > split else None for j, stage in enumerate(self.stages)]
        deltas: list[Delta | None] = [None] * len(self.stages)
        common: list[str] = []
        for j, stage in enumerate(self.stages):
            boxed = stage.name in window.boxes
            common.append("" if boxed or j < split else edits[j])
            if j < split or not edits[j] and not boxed:
                continue
            if boxed:
                delta = self._delta(tabs, stage)
                if delta is None:
                    delta = torch.zeros([len(tabs), stage.channels, stage.size, stage.size], device=self.device)
                deltas[j] = Delta(delta, True, window.boxes[stage.name])
            else:
                delta = self._delta(tabs[:1], stage)
                deltas[j] = Delta(delta, False) if delta is not None else None
        base = self._base_tail(split, s, ws, deltas, common, noises, seed, mode)
        return windowed_tail(self.G.synthesis, self.stages, base, split, ws, noises, deltas, len(tabs))

    def _base_tail(self, split: int, s: SynthesisState, ws: Tensor, deltas: list[Delta | None], common: list[str],
                   noises: list[Tensor | None], seed: int, mode: str) -> list[SynthesisState]:
        """Batch-1 states from stage `split` on with only the deltas of the stages without a box; the last one is
        kept, so the samples of a sweep (and its chunks) compute it once."""
        key = (split, *self._stage_keys(ws, [[c] for c in common], [seed], mode))
        if self._base_memo is not None and self._base_memo[0] == key:
            return self._base_memo[1]
        states: list[SynthesisState] = [s] * (split + 1)  # only states[split:] are read
        for j in range(split + 1, len(self.stages)):
            s = self.G.synthesis.run_stage(self.stages[j], s, ws, noises[j])
            d = deltas[j]
            if d is not None and not d.per_sample:
                s = SynthesisState(1, s.x + d.values.to(s.x.dtype), s.img, s.shortcut)
            states.append(s)
        self._base_memo = (key, states)
        return states

    def check_window(self, window: Window) -> None:
        """Refuse a recorded window this model cannot replay (a recipe from elsewhere, or edited by hand)."""
        if not self.G.synthesis.supports_windows:
            raise EditError("the recipe was rendered in windows, which this model's network does not support")
        if window.split not in self.layers:
            raise EditError(f"the recipe's window starts at {window.split!r}, not an editable layer of this model")
        for name, box in window.boxes.items():
            if name not in self.layers or self.stage_index(name) < self.stage_index(window.split):
                raise EditError(f"the recipe's window has a box at {name!r}, not a layer after {window.split}")
            size = self.layers[name].size
            if not all(0 <= lo <= hi < size for lo, hi in box):
                raise EditError(f"the recipe's window box {box} at {name} is outside the {size}x{size} map")
        if not 1 <= window.batch <= MAX_BATCH or not 0 <= window.slot < window.batch:
            raise EditError(f"the recipe's window has slot {window.slot} of a batch of {window.batch} (at most "
                            f"{MAX_BATCH})")

    # -------------------------------------------------------------------------------------------- helpers

    def check_tab(self, tab: SpatialTab) -> None:
        """Refuse a tab at a layer this model lacks or with the wrong channel count (active or not)."""
        for layer in tab.layers:
            st = self.layers.get(layer)
            if st is None:
                raise EditError(f"tab {tab.name!r}: this model has no layer {layer!r}")
            w = tab.weights.get(layer)
            if w is not None and w.shape != (st.channels,):
                raise EditError(f"tab {tab.name!r}: {layer} has {st.channels} channels, weights have {w.shape}")


    def _edit_keys(self, tabs: list[list[SpatialTab]]) -> list[list[str]]:
        """For each stage, for each sample: a hash of what its tabs add there ("" = nothing)."""
        per_tab = {id(t): {layer: t.digest(layer) for layer in t.layers} for sample in tabs for t in sample}
        return [["".join(per_tab[id(t)].get(stage.name, "") for t in sample) for sample in tabs]
                for stage in self.stages]

    def _stage_keys(self, ws: Tensor, edit_keys: list[list[str]], noise_seeds: list[int], mode: str,
                    moves: list[Move] | None = None) -> list[str]:
        ws_np = ws.detach().cpu().numpy()
        noise = (mode, tuple(noise_seeds)) if mode == "random" else mode
        move = tuple(moves or ())
        return [_digest(ws_np[:, stage.w_index], noise, edit_keys[i], move if stage.kind == "input" else None)
                for i, stage in enumerate(self.stages)]

    def _transform(self, moves: list[Move]) -> Tensor | None:
        """The input transforms [1 or N, 3, 3] of the moves (None when no sample moves: the stored transform)."""
        if not self.has_input_transform or all(m == NO_MOVE for m in moves):
            return None
        mats = np.stack([input_transform(t, r) for t, r in moves])
        return torch.as_tensor(mats, dtype=torch.float32, device=self.device)

    def _delta(self, tabs: list[list[SpatialTab]], stage: Stage) -> Tensor:
        """sum over tabs of S[h,w] * a[c] * mu(v) at this stage, per sample -> [N, C, r, r]."""
        out = None
        for i, sample in enumerate(tabs):
            for tab in sample:
                if tab.effective() and stage.name in tab.weights:
                    term = self._unit_delta(tab, stage) * tab.multiplier
                    if out is None:
                        out = torch.zeros([len(tabs), *term.shape], device=self.device)
                    out[i] += term
        return out

    def _unit_delta(self, tab: SpatialTab, stage: Stage) -> Tensor:
        """a[c] * S[h,w] at the stage's grid, cached: scrubbing a slider only rescales it."""
        key = (stage.name, array_digest(tab.selection, tab.weights[stage.name]))
        unit = self._unit_deltas.get(key)
        if unit is None:
            if len(self._unit_deltas) > UNIT_DELTA_CACHE:
                self._unit_deltas.clear()
            sel = torch.as_tensor(resample_grid(tab.selection, stage.resolution), device=self.device)
            if stage.margin:  # StyleGAN3: the selection covers the image area; the margin receives nothing
                sel = torch.nn.functional.pad(sel, [stage.margin] * 4)
            a = torch.as_tensor(tab.weights[stage.name], device=self.device, dtype=torch.float32)
            unit = self._unit_deltas[key] = a[:, None, None] * sel[None]
        return unit

    def _noise(self, stage: Stage, mode: str, seeds: list[int]) -> Tensor | None:
        if not self.G.synthesis.has_noise:
            return None
        if mode != "random":
            return self.G.synthesis.stage_noise(stage, mode, 1, None)
        if stage.kind == "torgb":
            return None
        index = self.stage_index(stage.name)
        r = stage.resolution
        maps = [torch.randn([1, 1, r, r], generator=torch.Generator().manual_seed(s * NOISE_SEED_STRIDE + index))
                for s in seeds]
        return torch.cat(maps).to(self.device)


def batch_limit(G: Generator, most: int = MAX_BATCH) -> int:
    """How many samples one batch may hold: the memory budget less the weights, over one render's memory (a
    StyleGAN3-T at 256 px needs ~1.4 GB per sample).  Each sample runs alone after the stages they share, so this
    is generous: it bounds what a batch keeps (its images and captured maps) by what the renders would need."""
    weights = 4 * sum(t.numel() for t in G.state_dict().values())
    free = memory_budget_bytes() - weights
    return max(1, min(most, free // max(render_bytes(G.cfg), 1)))


def _concat(parts: list[RenderResult], n: list[int]) -> RenderResult:
    """One result from the results of consecutive parts of a batch (part i holds n[i] samples)."""
    shared = all(p.ws.shape[0] == 1 for p in parts) and all(torch.equal(parts[0].ws, p.ws) for p in parts)
    ws = parts[0].ws if shared else torch.cat([p.ws.expand(k, -1, -1) for p, k in zip(parts, n, strict=True)])
    images = None if parts[0].images is None else torch.cat([p.images for p in parts])
    features = {name: torch.cat([p.features[name] for p in parts]) for name in parts[0].features}
    windows = None
    if any(p.windows for p in parts):
        windows = [w for p, k in zip(parts, n, strict=True) for w in (p.windows or [None] * k)]
    return RenderResult(images, ws, features, min(p.first_stage for p in parts), sum(p.ms for p in parts),
                        windows)


def image_area(x: Tensor, stage: Stage) -> Tensor:
    """The part of a feature map [N, C, size, size] that covers the image: all of it for StyleGAN2, the central
    `resolution` square for a StyleGAN3 layer (whose margins lie outside the picture)."""
    m = stage.margin
    return x[:, :, m:m + stage.resolution, m:m + stage.resolution] if m else x
