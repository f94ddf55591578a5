"""Load the generators users have: NVlabs pickles, rosinality checkpoints, and GAN Studio's own format.

Every loader ends in the same place: a `GeneratorConfig` plus an NVlabs-named state dict for our `Generator`.
No loader imports or runs code from a file.  The own format is one safetensors file whose metadata holds the
config as JSON, so that the file alone (and its hash) identifies the model.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .files import sha256_file, write_atomic
from .network import Generator, GeneratorConfig, fir_filter
from .safe_pickle import PersistentRecord, UnsafePickleError, safe_load

OWN_FORMAT = "ganstudio-generator"
OWN_FORMAT_VERSION = 1
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


class ModelLoadError(Exception):
    """A checkpoint could not be loaded; the message says why and what was found."""


@dataclass
class LoadedModel:
    generator: Generator
    path: Path
    sha256: str
    source_format: str  # "nvlabs-pickle" | "rosinality" | "ganstudio"
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def config(self) -> GeneratorConfig:
        return self.generator.cfg


# ------------------------------------------------------------------------------------------------ entry point


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load any supported checkpoint; raise ModelLoadError with a clear message otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no model file at {path}")
    head = path.read_bytes()[:8] if path.stat().st_size >= 8 else b""
    try:
        if path.suffix == ".safetensors":
            G, fmt, notes = _load_own(path)
        elif head[:1] == b"\x80" or path.suffix == ".pkl":
            G, fmt, notes = _load_nvlabs(path)
        elif head[:2] == b"PK" or path.suffix in (".pt", ".pth"):
            G, fmt, notes = _load_rosinality(path)
        else:
            raise ModelLoadError(f"{path.name}: unknown checkpoint format (expected .pkl, .pt or .safetensors)")
    except (ModelLoadError, UnsafePickleError) as e:
        raise ModelLoadError(f"{path.name}: {e}") from None
    except Exception as e:  # corrupt or truncated files raise all sorts of errors deep inside
        raise ModelLoadError(f"{path.name}: could not read the checkpoint ({type(e).__name__}: {e})") from None
    G = G.eval().requires_grad_(False).to(device)
    return LoadedModel(G, path, sha256_file(path), fmt, notes)


def build_generator(cfg: GeneratorConfig, state: dict[str, Tensor]) -> Generator:
    """A Generator with exactly the given NVlabs-named tensors (float32); complains about missing or extra keys."""
    G = Generator(cfg)
    expected = G.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(f"weights do not fit the generator: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ModelLoadError(f"{k}: shape {tuple(v.shape)} where {tuple(expected[k].shape)} was expected")
    G.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return G


def channel_layout(channels: dict[int, int], resolution: int) -> tuple[int, int]:
    """(channel_base, channel_max) that reproduce channels[res] = min(base // res, max) for every block."""
    cmax = max(channels.values())
    below = [(res, ch) for res, ch in channels.items() if ch < cmax]
    base = below[0][0] * below[0][1] if below else cmax * resolution
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise ModelLoadError(f"non-standard channel layout {channels}")
    return base, cmax


# ------------------------------------------------------------------------------------------------ NVlabs


def _flatten(record: PersistentRecord, prefix: str = "") -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for name, t in {**record.params, **record.buffers}.items():
        if t is not None:
            out[prefix + name] = t.detach()
    for name, sub in record.modules.items():
        if isinstance(sub, PersistentRecord):
            out.update(_flatten(sub, f"{prefix}{name}."))
    return out


def _attr(record: PersistentRecord, name: str, default=None):
    return record.state.get(name, default)


def _load_nvlabs(path: Path) -> tuple[Generator, str, list[str]]:
    data = safe_load(path.read_bytes())
    if not isinstance(data, dict) or not any(k in data for k in ("G_ema", "G")):
        raise ModelLoadError("not an NVlabs network pickle (no G_ema or G inside)")
    key = "G_ema" if "G_ema" in data else "G"
    rec = data[key]
    if not isinstance(rec, PersistentRecord):
        raise ModelLoadError(f"{key} is not a network object")
    mods = rec.modules
    synth, mapping = mods.get("synthesis"), mods.get("mapping")
    if synth is None or mapping is None:
        raise ModelLoadError(f"{key} ({rec.class_name}) has no mapping/synthesis networks")
    names = list(synth.modules)
    if "input" in names or any(re.fullmatch(r"L\d+_\d+_\d+", n) for n in names):
        raise ModelLoadError("this is an alias-free StyleGAN3 generator (StyleGAN3-T/R): not supported yet; "
                             "GAN Studio loads StyleGAN2 generators")
    state = _flatten(rec)
    cfg = _nvlabs_config(rec, mapping, synth, state)
    notes = [f"{key} from an NVlabs pickle; {cfg.architecture}, {cfg.resolution}px, conv_clamp {cfg.conv_clamp}"]
    return build_generator(cfg, state), "nvlabs-pickle", notes


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
    c_dim = int(kw.get("c_dim", 0))
    embed = state["mapping.embed.weight"].shape[0] if c_dim else 0
    z_dim = state["mapping.fc0.weight"].shape[1] - embed
    fc0 = mapping.modules["fc0"]
    lr_mul = float(_attr(fc0, "bias_gain", _attr(fc0, "lr_multiplier", 0.01)))
    if any(f"synthesis.b{r}.skip.weight" in state for r in blocks):
        arch = "resnet"
    elif all(f"synthesis.b{r}.torgb.weight" in state for r in blocks):
        arch = "skip"
    else:
        arch = "orig"
    b4_conv1 = synth.modules["b4"].modules["conv1"]
    clamp = _attr(b4_conv1, "conv_clamp", syn_kw.get("conv_clamp"))
    return GeneratorConfig(
        z_dim=z_dim, w_dim=state[f"mapping.fc{fcs[-1]}.weight"].shape[0],
        c_dim=c_dim, resolution=resolution, img_channels=state[f"synthesis.b{resolution}.torgb.weight"].shape[0],
        mapping_layers=len(fcs), mapping_lr_mul=lr_mul,
        mapping_hidden=state["mapping.fc0.weight"].shape[0] if len(fcs) > 1 else None,
        embed_features=embed or None, channel_base=base, channel_max=cmax, architecture=arch,
        conv_clamp=float(clamp) if clamp is not None else None,
    )


# ------------------------------------------------------------------------------------------------ rosinality


def _load_rosinality(path: Path) -> tuple[Generator, str, list[str]]:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"not a weights-only torch checkpoint ({e.__class__.__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        raise ModelLoadError("a torch checkpoint without 'g_ema' (expected rosinality/stylegan2-pytorch)")
    src = ckpt["g_ema"]
    state, cfg = _rosinality_to_nvlabs(src)
    notes = ["rosinality/stylegan2-pytorch g_ema"]
    if "latent_avg" in ckpt and ckpt["latent_avg"] is not None:
        state["mapping.w_avg"] = ckpt["latent_avg"].reshape(-1).float()
        G = build_generator(cfg, state)
    else:
        state["mapping.w_avg"] = torch.zeros(cfg.w_dim)
        G = build_generator(cfg, state)
        G.mapping.w_avg.copy_(estimate_w_avg(G))
        notes.append(f"no latent_avg in the checkpoint: w_avg estimated from {W_AVG_SAMPLES:,} samples "
                     f"(seed {W_AVG_SEED})")
    return G, "rosinality", notes


def _rosinality_to_nvlabs(src: dict[str, Tensor]) -> tuple[dict[str, Tensor], GeneratorConfig]:
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
    cfg = GeneratorConfig(z_dim=w_dim, w_dim=w_dim, resolution=resolution, mapping_layers=n_mlp,
                          mapping_lr_mul=0.01, channel_base=base, channel_max=cmax, architecture="skip")
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


def _load_own(path: Path) -> tuple[Generator, str, list[str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != OWN_FORMAT:
            raise ModelLoadError("a safetensors file that is not a GAN Studio generator (no config in its metadata)")
        state = {k: f.get_tensor(k) for k in f.keys()}
    cfg = GeneratorConfig.from_dict(json.loads(meta["config"]))
    notes = [meta["notes"]] if meta.get("notes") else []
    return build_generator(cfg, state), "ganstudio", notes


def save_model(G: Generator, path: str | Path, half: bool = False, notes: str = "") -> Path:
    """Write the own format (safetensors + JSON config in its metadata) atomically; fp16 weights if `half`."""
    from safetensors.torch import save

    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in G.state_dict().items()}
    meta = {"format": OWN_FORMAT, "version": str(OWN_FORMAT_VERSION),
            "config": json.dumps(G.cfg.to_dict()), "notes": notes}
    return write_atomic(path, save(state, metadata=meta))
