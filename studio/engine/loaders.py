"""Load the generators users have: NVlabs pickles, rosinality checkpoints, and GAN Studio's own format.

Every loader ends in the same place: a `GeneratorConfig` plus an NVlabs-named state dict for our `Generator`.
No loader imports or runs code from a file.  The own format is one safetensors file whose metadata holds the
config as JSON, so that the file alone (and its hash) identifies the model.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .checkpoint import ModelLoadError, attr, channel_layout, flatten, number
from .configs import AnyConfig, config_from_dict
from .files import sha256_bytes, write_atomic
from .loader_sg3 import read_sg3, sg3_render_bytes
from .loader_tf import read_tf
from .network import Generator, GeneratorConfig, fir_filter
from .network_sg3 import Generator as SG3Generator
from .network_sg3 import SG3Config
from .safe_pickle import (
    PersistentRecord,
    TFNetworkRecord,
    UnsafePickleError,
    decode_little_endian,
    load_torch_zip,
    safe_load,
    stored_itemsize,
)

OWN_FORMAT = "ganstudio-generator"
OWN_FORMAT_VERSION = 1
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0
MEMORY_BUDGET_ENV = "GANSTUDIO_MEMORY_BUDGET_GB"
SAFETENSORS_HEADER_MAX = 16 << 20
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": "bfloat16",
                      "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                      "BOOL": np.bool_}


@dataclass
class LoadedModel:
    generator: Generator  # network.Generator, or network_sg3.Generator (a subclass)
    path: Path
    sha256: str
    source_format: str  # "nvlabs-pickle" | "tensorflow-pickle" | "rosinality" | "ganstudio"
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def config(self) -> AnyConfig:
        return self.generator.cfg


# ------------------------------------------------------------------------------------------------ entry point


def memory_budget_bytes() -> int:
    """The most memory one model may take (weights + one render): half this machine's RAM, or the
    GANSTUDIO_MEMORY_BUDGET_GB environment variable (the CLI's --memory-budget sets it)."""
    given = os.environ.get(MEMORY_BUDGET_ENV)
    if given:
        try:
            gb = float(given)
        except ValueError:
            raise ModelLoadError(f"{MEMORY_BUDGET_ENV}={given!r} is not a number of GB") from None
        if not math.isfinite(gb) or gb <= 0:
            raise ModelLoadError(f"{MEMORY_BUDGET_ENV}={given!r} must be a positive number of GB")
        return int(gb * 2**30)
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        ram = 16 << 30
    return ram // 2


def load_model(path: str | Path, device: str | torch.device = "cpu", budget: int | None = None) -> LoadedModel:
    """Load any supported checkpoint; raise ModelLoadError with a clear message otherwise.

    Nothing from the file runs, and nothing large is allocated before it is checked against `budget` bytes
    (default `memory_budget_bytes()`): the file's size first, then the config's parameters and one render."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    try:
        budget = memory_budget_bytes() if budget is None else budget
        size = path.stat().st_size
        if size > budget:
            raise ModelLoadError(f"the file is {_size(size)}, over the memory budget of {_size(budget)} "
                                 "(raise it with --memory-budget)")
        data = path.read_bytes()
        if path.suffix == ".safetensors":
            G, fmt, notes = _load_own(data, budget)
        elif data[:1] == b"\x80" and path.suffix in (".pt", ".pth"):
            raise ModelLoadError("a torch.save file in the legacy (torch < 1.6) format: re-save it with a current "
                                 "torch (torch.save writes zip archives), then open it again")
        elif data[:1] == b"\x80" or path.suffix == ".pkl":
            G, fmt, notes = _load_nvlabs(data, budget)
        elif data[:2] == b"PK" or path.suffix in (".pt", ".pth"):
            G, fmt, notes = _load_rosinality(data, budget)
        else:
            raise ModelLoadError("unknown checkpoint format (expected .pkl, .pt or .safetensors)")
    except (ModelLoadError, UnsafePickleError) as e:
        raise ModelLoadError(f"{path.name}: {e}") from None
    except Exception as e:  # corrupt or truncated files raise all sorts of errors deep inside
        raise ModelLoadError(f"{path.name}: could not read the checkpoint ({type(e).__name__}: {e})") from None
    G = G.eval().requires_grad_(False).to(device)
    return LoadedModel(G, path, sha256_bytes(data), fmt, notes)


def render_bytes(cfg: AnyConfig) -> int:
    """Bytes of one batch-1 render with its stage cache, from the config alone."""
    if isinstance(cfg, SG3Config):
        return sg3_render_bytes(cfg)
    act = 0
    biggest_weight = 0
    for res in cfg.block_resolutions:
        ch = cfg.channels(res)
        act += 3 * ch * res * res + 2 * cfg.img_channels * res * res  # conv0, conv1, rgb (+ cached copies)
        biggest_weight = max(biggest_weight, ch * ch * 9)
    return 4 * (2 * act + 2 * biggest_weight)


def check_budget(cfg: AnyConfig, params: int, budget: int) -> None:
    """Refuse a model whose `params` weights and one render would not fit in `budget` bytes, naming the figures."""
    render = render_bytes(cfg)
    need = 4 * params + render
    if need > budget:
        raise ModelLoadError(
            f"the model needs {_size(need)} ({params:,} parameters, {_size(render)} for one render at "
            f"{cfg.resolution}px) and the memory budget is {_size(budget)} (raise it with --memory-budget)")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def build_generator(cfg: AnyConfig, state: dict[str, Tensor], budget: int | None = None) -> Generator:
    """A Generator with exactly the given NVlabs-named tensors (float32); complains about missing or extra keys.

    The generator is made on the meta device (no memory); names and shapes are checked against it, then the
    memory budget, and only then does it take the given tensors themselves as its weights."""
    with torch.device("meta"):
        G = SG3Generator(cfg) if isinstance(cfg, SG3Config) else Generator(cfg)
    expected = G.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(f"weights do not fit the generator: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in state.items():
        if not isinstance(v, Tensor):
            raise ModelLoadError(f"{k} is a {type(v).__name__}, not a tensor")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ModelLoadError(f"{k}: shape {tuple(v.shape)} where {tuple(expected[k].shape)} was expected")
        if not v.is_floating_point() or not bool(torch.isfinite(v).all()):
            raise ModelLoadError(f"{k} is not a finite floating-point tensor")
    check_budget(cfg, sum(t.numel() for t in expected.values()), memory_budget_bytes() if budget is None else budget)
    G.load_state_dict({k: v.to(torch.float32).contiguous() for k, v in state.items()}, assign=True)
    return G


# ------------------------------------------------------------------------------------------------ NVlabs


def _load_nvlabs(raw: bytes, budget: int) -> tuple[Generator, str, list[str]]:
    data = safe_load(raw)
    if isinstance(data, TFNetworkRecord) or (isinstance(data, tuple) and any(
            isinstance(x, TFNetworkRecord) for x in data)):
        cfg, state, notes = read_tf(data)
        return build_generator(cfg, state, budget), "tensorflow-pickle", notes
    if not isinstance(data, dict) or not any(k in data for k in ("G_ema", "G")):
        raise ModelLoadError("not an NVlabs network pickle (no G_ema or G inside)")
    key = "G_ema" if "G_ema" in data else "G"
    rec = data[key]
    if not isinstance(rec, PersistentRecord):
        raise ModelLoadError(f"{key} is not a network object")
    mods = rec.modules
    synth, mapping = mods.get("synthesis"), mods.get("mapping")
    if not isinstance(synth, PersistentRecord) or not isinstance(mapping, PersistentRecord):
        raise ModelLoadError(f"{key} ({rec.class_name}) has no mapping/synthesis networks")
    names = list(synth.modules)
    if "input" in names or any(re.fullmatch(r"L\d+_\d+_\d+", n) for n in names):
        cfg3, state3 = read_sg3(rec, mapping, synth)
        notes = [f"{key} from an NVlabs stylegan3 pickle; config {cfg3.architecture}, {cfg3.resolution}px, "
                 f"{cfg3.num_layers} layers, conv_clamp {cfg3.conv_clamp}"]
        return build_generator(cfg3, state3, budget), "nvlabs-pickle", notes
    state = flatten(rec)
    cfg = _nvlabs_config(rec, mapping, synth, state)
    notes = [f"{key} from an NVlabs pickle; {cfg.architecture}, {cfg.resolution}px, conv_clamp {cfg.conv_clamp}"]
    return build_generator(cfg, state, budget), "nvlabs-pickle", notes


def _nvlabs_config(rec: PersistentRecord, mapping: PersistentRecord, synth: PersistentRecord,
                   state: dict[str, Tensor]) -> GeneratorConfig:
    """Hyper-parameters from the tensors and the per-layer state (robust to nested or flat init kwargs)."""
    kw = rec.init_kwargs
    syn_kw = kw.get("synthesis_kwargs", kw)
    blocks = sorted(int(n[1:]) for n in synth.modules if re.fullmatch(r"b\d+", n))
    if not blocks:
        raise ModelLoadError("synthesis network has no b{res} blocks")
    resolution = blocks[-1]
    channels = {r: state[f"synthesis.b{r}.conv1.weight"].shape[0] for r in blocks}
    base, cmax = channel_layout(channels, resolution)
    fcs = sorted(int(n[2:]) for n in mapping.modules if re.fullmatch(r"fc\d+", n))
    c_dim = kw.get("c_dim", 0)
    if isinstance(c_dim, bool) or not isinstance(c_dim, int) or not 0 <= c_dim <= 1_000_000:
        raise ModelLoadError(f"c_dim {c_dim!r} is not a class count")
    if not all(f"synthesis.b{r}.conv1.weight" in state for r in blocks) or "mapping.fc0.weight" not in state:
        raise ModelLoadError("the network lacks the StyleGAN2 layer weights (synthesis.b*.conv1, mapping.fc0)")
    embed = state["mapping.embed.weight"].shape[0] if c_dim else 0
    z_dim = state["mapping.fc0.weight"].shape[1] - embed
    fc0 = mapping.modules.get("fc0")
    if not isinstance(fc0, PersistentRecord):
        raise ModelLoadError("the mapping network has no fc0 layer")
    lr_mul = number(attr(fc0, "bias_gain", attr(fc0, "lr_multiplier", 0.01)), "mapping lr multiplier")
    if any(f"synthesis.b{r}.skip.weight" in state for r in blocks):
        arch = "resnet"
    elif all(f"synthesis.b{r}.torgb.weight" in state for r in blocks):
        arch = "skip"
    else:
        arch = "orig"
    b4 = synth.modules.get("b4")
    b4_conv1 = b4.modules.get("conv1") if isinstance(b4, PersistentRecord) else None
    if not isinstance(b4_conv1, PersistentRecord):
        raise ModelLoadError("the synthesis network has no b4.conv1 layer")
    clamp = attr(b4_conv1, "conv_clamp", syn_kw.get("conv_clamp") if isinstance(syn_kw, dict) else None)
    return config_from_dict(dict(
        z_dim=z_dim, w_dim=state[f"mapping.fc{fcs[-1]}.weight"].shape[0],
        c_dim=c_dim, resolution=resolution, img_channels=state[f"synthesis.b{resolution}.torgb.weight"].shape[0],
        mapping_layers=len(fcs), mapping_lr_mul=lr_mul,
        mapping_hidden=state["mapping.fc0.weight"].shape[0] if len(fcs) > 1 else None,
        embed_features=embed or None, channel_base=base, channel_max=cmax, architecture=arch,
        conv_clamp=number(clamp, "conv_clamp") if clamp is not None else None,
    ))


# ------------------------------------------------------------------------------------------------ rosinality


def _load_rosinality(raw: bytes, budget: int) -> tuple[Generator, str, list[str]]:
    if raw[:2] != b"PK":
        raise ModelLoadError("not a torch zip checkpoint (files from torch < 1.6 are not read: re-save them)")
    ckpt = load_torch_zip(raw)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        raise ModelLoadError("a torch checkpoint without 'g_ema' (expected rosinality/stylegan2-pytorch)")
    src = ckpt["g_ema"]
    try:
        state, cfg = _rosinality_to_nvlabs(src)
    except KeyError as e:
        raise ModelLoadError(f"g_ema lacks {e} (not a rosinality/stylegan2-pytorch generator)") from None
    notes = ["rosinality/stylegan2-pytorch g_ema"]
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, Tensor):
        if latent_avg.numel() != cfg.w_dim:
            raise ModelLoadError(f"latent_avg has {latent_avg.numel()} values, w_dim is {cfg.w_dim}")
        state["mapping.w_avg"] = latent_avg.reshape(-1).float()
        G = build_generator(cfg, state, budget)
    else:
        state["mapping.w_avg"] = torch.zeros(cfg.w_dim)
        G = build_generator(cfg, state, budget)
        G.mapping.w_avg.copy_(estimate_w_avg(G))
        notes.append(f"no latent_avg in the checkpoint: w_avg estimated from {W_AVG_SAMPLES:,} samples "
                     f"(seed {W_AVG_SEED})")
    return G, "rosinality", notes


def _rosinality_to_nvlabs(src: dict[str, Tensor]) -> tuple[dict[str, Tensor], GeneratorConfig]:
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in src.items()):
        raise ModelLoadError("g_ema holds something other than named tensors")
    n_mlp = len([k for k in src if re.fullmatch(r"style\.\d+\.weight", k)])
    w_dim = src["style.1.weight"].shape[1]
    n_rgbs = len([k for k in src if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    resolution = 4 * 2**n_rgbs
    out: dict[str, Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = src[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = src[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = src["input.input"][0]

    def styled(dst: str, s: str, noise: str) -> None:
        out[f"{dst}.weight"] = src[f"{s}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = src[f"{s}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = src[f"{s}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = src[f"{s}.noise.weight"].reshape([])
        out[f"{dst}.bias"] = src[f"{s}.activate.bias"]
        out[f"{dst}.noise_const"] = src[f"noises.{noise}"][0, 0]
        out[f"{dst}.resample_filter"] = fir_filter()

    def torgb(dst: str, s: str) -> None:
        out[f"{dst}.weight"] = src[f"{s}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = src[f"{s}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = src[f"{s}.conv.modulation.bias"]
        out[f"{dst}.bias"] = src[f"{s}.bias"].reshape(-1)

    styled("synthesis.b4.conv1", "conv1", "noise_0")
    torgb("synthesis.b4.torgb", "to_rgb1")
    out["synthesis.b4.resample_filter"] = fir_filter()
    channels = {4: src["conv1.conv.weight"].shape[1]}
    for k in range(n_rgbs):
        res = 2 ** (k + 3)
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}", f"noise_{2 * k + 1}")
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", f"noise_{2 * k + 2}")
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
        out[f"synthesis.b{res}.resample_filter"] = fir_filter()
        channels[res] = src[f"convs.{2 * k + 1}.conv.weight"].shape[1]
    base, cmax = channel_layout(channels, resolution)
    cfg = config_from_dict(dict(z_dim=w_dim, w_dim=w_dim, resolution=resolution, mapping_layers=n_mlp,
                                mapping_lr_mul=0.01, channel_base=base, channel_max=cmax, architecture="skip"))
    return out, cfg


@torch.no_grad()
def estimate_w_avg(G: Generator, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED) -> Tensor:
    """Mean mapping output over `samples` z ~ N(0, I) drawn with a fixed seed (and uniform random classes)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([samples, G.cfg.z_dim], generator=gen)
    c = None
    if G.cfg.c_dim:
        c = torch.nn.functional.one_hot(torch.randint(G.cfg.c_dim, [samples], generator=gen), G.cfg.c_dim).float()
    dev = G.w_avg.device
    total = torch.zeros(G.cfg.w_dim, dtype=torch.float64, device=dev)
    for i in range(0, samples, 1000):
        cc = None if c is None else c[i:i + 1000].to(dev)
        total += G.mapping(z[i:i + 1000].to(dev), cc).double().sum(0)
    return (total / samples).float()


# ------------------------------------------------------------------------------------------------ own format


def read_safetensors(data: bytes) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(metadata, tensors) of a safetensors file, every header field checked against the bytes present."""
    if len(data) < 8:
        raise ModelLoadError("truncated safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n > min(SAFETENSORS_HEADER_MAX, len(data) - 8):
        raise ModelLoadError(f"safetensors header of {n} bytes in a file of {len(data)}")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError("the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ModelLoadError("the safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelLoadError("safetensors metadata must map names to strings")
    body = memoryview(data)[8 + n:]
    spans = []
    tensors: dict[str, Tensor] = {}
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelLoadError(f"tensor {name!r}: malformed header entry")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise ModelLoadError(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
            raise ModelLoadError(f"tensor {name!r}: bad shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ModelLoadError(f"tensor {name!r}: bad data offsets")
        begin, end = offsets
        itemsize = stored_itemsize(SAFETENSORS_DTYPES[dtype])
        if not 0 <= begin <= end <= len(body) or end - begin != math.prod(shape) * itemsize:
            raise ModelLoadError(f"tensor {name!r} of shape {shape} {dtype} claims bytes {begin}..{end} of a "
                                 f"data section of {len(body)}")
        spans.append((begin, end, name))
        values = decode_little_endian(body[begin:end], SAFETENSORS_DTYPES[dtype])
        tensors[name] = torch.from_numpy(values.reshape(shape))
    spans.sort()
    for (_b0, e0, n0), (b1, _e1, n1) in zip(spans, spans[1:], strict=False):
        if b1 < e0:
            raise ModelLoadError(f"tensors {n0!r} and {n1!r} overlap in the file")
    return meta, tensors


def _load_own(raw: bytes, budget: int) -> tuple[Generator, str, list[str]]:
    meta, state = read_safetensors(raw)
    if meta.get("format") != OWN_FORMAT:
        raise ModelLoadError("a safetensors file that is not a GAN Studio generator (no config in its metadata)")
    try:
        cfg_json = json.loads(meta.get("config", ""))
    except ValueError:
        raise ModelLoadError("the model config in the metadata is not valid JSON") from None
    cfg = config_from_dict(cfg_json)
    notes = [meta["notes"][:2000]] if meta.get("notes") else []
    return build_generator(cfg, state, budget), "ganstudio", notes


def save_model(G: Generator, path: str | Path, half: bool = False, notes: str = "") -> Path:
    """Write the own format (safetensors + JSON config in its metadata) atomically; fp16 weights if `half`."""
    from safetensors.torch import save

    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in G.state_dict().items()}
    meta = {"format": OWN_FORMAT, "version": str(OWN_FORMAT_VERSION),
            "config": json.dumps(G.cfg.to_dict()), "notes": notes}
    return write_atomic(path, save(state, metadata=meta))
