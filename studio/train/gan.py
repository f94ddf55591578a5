"""Train the bundled StyleGAN2 on procedural portraits; resumable, in time-boxed chunks.

Two terms, weighted by the preset:
  reconstruction  every z has a target portrait render(params_from_z(z)); L1 + L2 between G(z) and it,
                  optionally weighted per part of the target (the preset's part_weights) and, with
                  region_prior, per part of where that part can be (its frequency over the dataset).
                  This is the "parameter encoder" route of training-notes.md with the mapping network itself as
                  the encoder: the result is an ordinary unconditional StyleGAN2 (z -> mapping -> w -> synthesis).
  adversarial     non-saturating logistic loss against a residual discriminator with minibatch std,
                  lazy R1 (gamma = 0.0002 res^2 / batch by default), style mixing for the adversarial samples.
  z probe         (probe_weight) a linear head on w, trained with the generator, must recover the z coordinates
                  the renderer reads (MSE): the mapping network then keeps every parameter linearly in w.  Without
                  it the mapping dropped what only a few pixels show (a linear probe on w of a 917-kimg model
                  told blush, a sign of one z coordinate, in 67% of samples), so the generator painted a guess.
Plus: EMA generator (half-life in kimg with ramp-up), w_avg tracked during training, Adam(0, 0.99),
mapping lr multiplier 0.01 (in the network), bf16 autocast on a GPU.

    python -m studio.train.gan --preset cpu64 --out runs/bundled --minutes 50
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.analysis import affine_fit
from ..engine.files import sha256_file, write_atomic
from ..engine.loaders import load_model, save_model
from ..engine.network import Generator, GeneratorConfig, normalize_2nd_moment
from ..portraits.render import PART_INDEX, PARTS, Z_KINDS, Z_LAYOUT, Z_LAYOUT_VERSION, Z_USED, render_dataset


@dataclass
class TrainConfig:
    generator: dict = field(default_factory=lambda: dict(
        z_dim=64, w_dim=128, resolution=64, mapping_layers=4, mapping_lr_mul=1.0, channel_base=2048,
        channel_max=128, architecture="skip", conv_clamp=None))
    dataset_size: int = 50_000
    dataset_seed: int = 1234
    batch: int = 16
    lr: float = 0.002
    recon_weight: float = 1.0
    adv_weight: float = 0.0
    r1_gamma: float | None = None  # None: 0.0002 * res^2 / batch
    r1_interval: int = 16
    style_mixing: float = 0.9  # applied to adversarial samples only (reconstruction needs the paired target)
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    w_avg_beta: float = 0.995
    lr_decay_kimg: float = 0.0  # cosine decay of the learning rate to 10% over this many kimg (0 = constant)
    # reconstruction weight per part of the target render (others 1): small parts (irises, blush, hairband) are a
    # few pixels at 64 px, and an unweighted loss lets the generator paint them the average colour
    part_weights: dict = field(default_factory=dict)
    # also weight where each part *can* be (its frequency over the dataset), so that an image without blush or
    # with a closed mouth weighs its cheeks or mouth region as much as one with them: weighting only the target's
    # own part pixels rewards painting blush and open mouths everywhere
    region_prior: bool = False
    # weight of the z probe's MSE (0 = no probe); the probe is discarded after training
    probe_weight: float = 0.0
    # what the probe recovers from w: "z", the coordinates the renderer reads, or "params", the values it draws
    # (one-hot classes, 0/1 binaries, Phi of the continuous ones): a linear read-out of the coordinates still
    # leaves their argmax to the synthesis network, which paints the posterior mean when unsure (the 238-kimg
    # reconstruction's w told the skin tone linearly in 93% of fresh samples, its images showed it in 45%, each
    # tone pulled toward the average colour)
    probe_target: str = "z"
    # weight of the share of w a linear function of z does not explain (1 - R^2 of a linear head z -> w, trained
    # with the generator, discarded after): a w that holds the classes apart as tight clusters (the param probe's
    # doing: a linear fit of the probe run's fine-tune's w from z leaves 15% of its variance, the shipped model's
    # 3%) has little spread along a class direction, so a 2-sigma step stops short of the class
    linear_w_weight: float = 0.0
    # the mapping network's (and the probe head's) learning rate relative to the synthesis': its layers are
    # equalised-lr FCs, so at lr 0.0002 a trained mapping barely moves (trained alone toward the one-hot parameters
    # for 768k samples, the 238-kimg model's mapping went from MSE 0.071 to 0.067; a plain 4x128 MLP from scratch
    # reaches 0.016 in the same steps)
    mapping_lr_scale: float = 1.0
    # the discriminator sees only each image's detail (the image minus its 5x5 binomial blur): the adversarial term
    # then sharpens edges and leaves colours and layout, which the reconstruction already fits, alone
    adv_highpass: bool = False
    # the adversarial term trains the synthesis network only (its samples' w detached): the mapping network, the
    # parameter encoder, stays what the reconstruction makes it, so the attribute distribution cannot drift
    adv_synthesis_only: bool = False
    # pix2pix-style: the adversarial term judges each reconstruction itself (the same z, no style mixing), and the
    # discriminator also sees that sample's target blurred (real: the target's detail on its own blur; fake: the
    # generated detail on the target's blur), so the adversarial gradient sharpens toward the target and can only
    # reward an image that agrees with it: drifting an attribute (hair length, colour) makes a sample *more* fake
    adv_paired: bool = False
    # keep every layer's noise strength where the init left it: with constant noise an adversarial fine-tune grows
    # them into a fixed texture (cpu64_paired on the shipped model: b64's strength 0 -> 0.017 in 19 kimg, streaks)
    freeze_noise: bool = False


_CPU64_SHARP = TrainConfig(part_weights={"left_eye": 16.0, "right_eye": 16.0, "cheeks": 6.0, "hairband": 4.0,
                                         "mouth": 4.0}, region_prior=True, adv_weight=0.05, lr=0.0005,
                           adv_highpass=True, adv_synthesis_only=True, ema_kimg=5.0, ema_rampup=0.0)

PRESETS = {
    # The bundled model on a 2-core CPU: pure reconstruction, 64 px.  The mapping network is the parameter
    # encoder here and must learn every attribute from z in a few thousand steps, so its lr multiplier is 1
    # (0.01, the GAN recipe, moves its weights ~2e-5 relative per Adam step: it would barely leave its init).
    "cpu64": TrainConfig(),
    # its second phase: the same, with the small parts weighted up
    "cpu64_parts": TrainConfig(part_weights={"left_eye": 8.0, "right_eye": 8.0, "cheeks": 4.0, "hairband": 4.0,
                                             "mouth": 2.0}),
    # its third phase: the part weights applied symmetrically (region_prior), the mouth weighted up
    "cpu64_regions": TrainConfig(part_weights={"left_eye": 8.0, "right_eye": 8.0, "cheeks": 6.0, "hairband": 4.0,
                                               "mouth": 4.0}, region_prior=True),
    # its fifth phase: the irises weighted up further, and the z probe on w
    "cpu64_probe": TrainConfig(part_weights={"left_eye": 16.0, "right_eye": 16.0, "cheeks": 6.0, "hairband": 4.0,
                                             "mouth": 4.0}, region_prior=True, probe_weight=1.0),
    # the sixth phase, on the CPU: the fifth's reconstruction (which keeps every label) plus an adversarial term
    # that sharpens what the L1+L2 mean blurs; started with --init from the shipped model.  (adv_weight 0.25 at
    # lr 0.001 sharpened it to 0.97 of the renders' |Laplacian| in 15 kimg but the discriminator won (loss 0.5),
    # the reconstruction L1 rose 0.18 -> 0.24 and hair colours collapsed: FD 2.0x -> 9.9x its floor).  No z probe:
    # the shipped model's w already keeps every parameter linearly, and a probe head started afresh pulls on w
    "cpu64_adv": TrainConfig(part_weights={"left_eye": 16.0, "right_eye": 16.0, "cheeks": 6.0, "hairband": 4.0,
                                           "mouth": 4.0}, region_prior=True, adv_weight=0.05, lr=0.0005),
    # the same with the discriminator on the images' detail only (cpu64_adv at 0.05 sharpened to 0.89 in 11 kimg
    # and 0.96 in 38, but the FD to renders rose 2.0x -> 2.4x -> 3.9x its floor as colours drifted)
    # (the detail-only discriminator alone: FD 4.1x its floor after 7 kimg, sharpness 0.94), with the adversarial
    # gradient kept out of the mapping network (3.4x, 0.95 after 5 kimg) and an EMA that starts at the shipped
    # weights without ramp-up (a fine-tune's EMA should not follow the noisy generator from its first step)
    "cpu64_sharp": _CPU64_SHARP,
    # cpu64_sharp with the adversarial term paired with the reconstruction (adv_paired): D judges each
    # reconstruction's detail on its own target's blur, so the adversarial gradient can only pull toward the target
    "cpu64_paired": replace(_CPU64_SHARP, adv_synthesis_only=False, adv_paired=True),
    # the same with an adversarial term for sharpness, for a GPU
    "gpu64": TrainConfig(batch=64, adv_weight=0.1),
    # the GAN recipe of training-notes.md (mapping lr multiplier 0.01), adversarial only
    "gan64": TrainConfig(batch=64, recon_weight=0.0, adv_weight=1.0, generator=dict(
        z_dim=64, w_dim=128, resolution=64, mapping_layers=4, mapping_lr_mul=0.01, channel_base=2048,
        channel_max=128, architecture="skip", conv_clamp=256.0)),
}


# ------------------------------------------------------------------------------------------------ discriminator


class EqConv(nn.Module):
    """Conv with equalised learning rate (weight * 1/sqrt(fan_in) at run time)."""

    def __init__(self, cin: int, cout: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain = 1 / math.sqrt(cin * k * k)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.weight.shape[-1] // 2)


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0, self.conv1, self.skip = EqConv(cin, cin, 3), EqConv(cin, cout, 3), EqConv(cin, cout, 1, False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)
        return (x + y) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """Residual discriminator: fromRGB, blocks down to 4x4, minibatch std, conv, fc, fc."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int, mbstd_group: int = 4,
                 in_channels: int = 3):
        super().__init__()
        ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
        self.fromrgb = EqConv(in_channels, ch(resolution), 1)
        self.blocks = nn.ModuleList(DBlock(ch(r), ch(r // 2)) for r in (2**i for i in range(
            int(math.log2(resolution)), 2, -1)))
        self.group = mbstd_group
        self.conv = EqConv(ch(4) + 1, ch(4), 3)
        self.fc = nn.Linear(ch(4) * 16, ch(4))
        self.out = nn.Linear(ch(4), 1)

    def forward(self, img: Tensor) -> Tensor:
        x = lrelu(self.fromrgb(img))
        for b in self.blocks:
            x = b(x)
        n, c, h, w = x.shape
        g = min(self.group, n)
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[1, 2, 3])  # [n/g]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = lrelu(self.conv(torch.cat([x, y], 1)))
        return self.out(lrelu(self.fc(x.flatten(1))))


# ------------------------------------------------------------------------------------------------ data


def _render_chunk(args: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    zs, size = args
    return render_dataset(zs, size)[:2]


def make_dataset(n: int, z_dim: int, size: int, seed: int, cache: Path, procs: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z [n, z_dim] float32, images uint8 [n, size, size, 3], part maps uint8 [n, size, size]) rendered in
    parallel, cached as .npy files."""
    tag = f"{n}_{seed}_{size}_z{Z_LAYOUT_VERSION}"  # the renders depend on how z sets the parameters
    zpath, ipath, lpath = cache / f"z_{n}_{seed}.npy", cache / f"img_{tag}.npy", cache / f"parts_{tag}.npy"
    zs = np.random.RandomState(seed).randn(n, z_dim).astype(np.float32)
    if ipath.exists() and lpath.exists():
        return zs, np.load(ipath), np.load(lpath)
    cache.mkdir(parents=True, exist_ok=True)
    chunks = [(zs[i:i + 1000], size) for i in range(0, n, 1000)]
    t0 = time.time()
    with Pool(procs) as pool:
        done = pool.map(_render_chunk, chunks)
    imgs, parts = np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])
    print(f"rendered {n} portraits in {time.time() - t0:.0f}s", flush=True)
    np.save(zpath, zs)
    np.save(ipath, imgs)
    np.save(lpath, parts)
    return zs, imgs, parts


def part_weight_table(part_weights: dict) -> np.ndarray:
    """Reconstruction weight per part index (1 for parts not named)."""
    table = np.ones(len(PARTS), np.float32)
    for name, weight in part_weights.items():
        table[PART_INDEX[name]] = weight
    return table


def part_region_prior(parts: np.ndarray, n: int = 5000) -> np.ndarray:
    """[P, H, W]: how often each pixel belongs to each part over the first n part maps, scaled to a maximum of 1."""
    sample = parts[:n]
    freq = np.stack([(sample == i).mean(0) for i in range(len(PARTS))]).astype(np.float32)
    return freq / np.maximum(freq.max(axis=(1, 2), keepdims=True), 1e-8)


def region_weight_map(prior: np.ndarray, table: np.ndarray) -> np.ndarray:
    """[H, W]: max over parts of 1 + (weight - 1) * prior, the weight of where a part can be."""
    return (1 + (table[:, None, None] - 1) * prior).max(axis=0).astype(np.float32)


def pixel_weights(part_maps: Tensor, table: Tensor, region: Tensor | None) -> Tensor:
    """[N, 1, H, W] reconstruction weights: the target's own part weights, raised to the region map's."""
    w = table[part_maps.long()]
    if region is not None:
        w = torch.maximum(w, region)
    return w[:, None]


# ------------------------------------------------------------------------------------------------ training


def binomial_blur(img: Tensor) -> Tensor:
    """The image's 5x5 binomial blur (reflect-padded): colour and layout."""
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=img.device, dtype=img.dtype)
    k = torch.outer(taps, taps) / 256
    k = k[None, None].repeat(img.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(img, [2, 2, 2, 2], mode="reflect"), k, groups=img.shape[1])


def high_pass(img: Tensor) -> Tensor:
    """The image minus its 5x5 binomial blur: edges and texture, no colour or layout."""
    return img - binomial_blur(img)


def set_fused(G: Generator, fused: bool) -> None:
    for m in G.modules():
        if hasattr(m, "fused"):
            m.fused = fused


def probe_target(z: Tensor) -> Tensor:
    """The z coordinates the renderer reads, after the mapping network's (and renderer's) 2nd-moment normalisation."""
    return normalize_2nd_moment(z)[:, :Z_USED]


def param_target(z: Tensor) -> Tensor:
    """The values the renderer draws for each z, as `params_from_z` reads them: one-hot over each class
    attribute's coordinates, 1 where a binary one is > 0, Phi of a continuous one [N, Z_USED] (one value per
    coordinate read, in the layout's order)."""
    zn = normalize_2nd_moment(z)
    cols = []
    for name, kind in Z_KINDS.items():
        x = zn[:, Z_LAYOUT[name]]
        if kind >= 2:
            cols.append(F.one_hot(x.argmax(1), kind).to(zn.dtype))
        elif kind == 1:
            cols.append((x > 0).to(zn.dtype))
        else:
            cols.append(0.5 * (1 + torch.erf(x / math.sqrt(2.0))))
    return torch.cat(cols, 1)


PROBE_TARGETS = {"z": probe_target, "params": param_target}


def to_float(imgs: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(imgs).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, device: torch.device):
        self.cfg, self.out, self.device = cfg, out, device
        gcfg = GeneratorConfig(**cfg.generator)
        self.G = Generator(gcfg).to(device).train()
        set_fused(self.G, False)
        if cfg.freeze_noise:
            for name, p in self.G.named_parameters():
                if name.endswith("noise_strength"):
                    p.requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.D = Discriminator(gcfg.resolution, gcfg.channel_base, gcfg.channel_max,
                               in_channels=6 if cfg.adv_paired else 3).to(device)
        if cfg.mapping_lr_scale == 1:
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
        else:  # two groups only when asked: a checkpoint's optimiser state keeps the group count it was made with
            groups = [{"params": list(self.G.synthesis.parameters())},
                      {"params": list(self.G.mapping.parameters()), "lr_scale": cfg.mapping_lr_scale}]
            self.opt_g = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
        self.probe_fn = PROBE_TARGETS[cfg.probe_target]
        self.probe = nn.Linear(gcfg.w_dim, min(gcfg.z_dim, Z_USED)).to(device)
        self.opt_p = torch.optim.Adam([{"params": list(self.probe.parameters()), "lr_scale": cfg.mapping_lr_scale}],
                                      lr=cfg.lr, betas=(0.0, 0.99))
        self.linear = nn.Linear(gcfg.z_dim, gcfg.w_dim).to(device)
        self.opt_l = torch.optim.Adam([{"params": list(self.linear.parameters()),
                                        "lr_scale": cfg.mapping_lr_scale}], lr=cfg.lr, betas=(0.0, 0.99))
        self.step, self.images_seen = 0, 0
        self.ckpt = out / "checkpoint.pt"
        if self.ckpt.exists():
            self._load()

    # -------------------------------------------------------------------------------------------- state

    def _load(self) -> None:
        s = torch.load(self.ckpt, map_location=self.device, weights_only=True)
        self.G.load_state_dict(s["G"])
        self.G_ema.load_state_dict(s["G_ema"])
        self.D.load_state_dict(s["D"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        if "probe" in s:  # checkpoints from before the probe start it afresh
            self.probe.load_state_dict(s["probe"])
            self.opt_p.load_state_dict(s["opt_p"])
        if "linear" in s:  # checkpoints from before the linear head start it afresh
            self.linear.load_state_dict(s["linear"])
            self.opt_l.load_state_dict(s["opt_l"])
        self.step, self.images_seen = int(s["step"]), int(s["images_seen"])
        print(f"resumed from {self.ckpt} at step {self.step} ({self.images_seen / 1000:.0f} kimg)", flush=True)

    def init_from(self, model: Path) -> None:
        """Start G and G_ema from a trained generator's weights (a new run: step, optimisers and D start afresh)."""
        G = load_model(model).generator
        if G.cfg != self.G.cfg:
            raise SystemExit(f"--init: {model} has a different architecture from the preset's generator")
        self.G.load_state_dict(G.state_dict())
        self.G_ema.load_state_dict(G.state_dict())
        print(f"initialised from {model}", flush=True)
        if self.cfg.probe_weight:
            self.fit_probe()
        if self.cfg.linear_w_weight:
            self.fit_linear()

    @torch.no_grad()
    def fit_linear(self, n: int = 8192, seed: int = 0) -> float:
        """Start the linear head z -> w at the least-squares fit on n fresh z; returns the share of w's variance it
        leaves (1 - R^2)."""
        z = torch.randn(n, self.G.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        sol, r2 = affine_fit(z, self.G.mapping(z).float())
        self.linear.weight.copy_(sol[:-1].T)
        self.linear.bias.copy_(sol[-1])
        return 1.0 - r2

    @torch.no_grad()
    def fit_probe(self, n: int = 8192, ridge: float = 1e-3, seed: int = 0) -> float:
        """Start the probe head at the least-squares read-out of the current w (ridge regression on n fresh z), so
        that a head started afresh does not pull w about while it learns; returns that fit's MSE."""
        z = torch.randn(n, self.G.cfg.z_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        w = self.G.mapping(z).float()
        y = self.probe_fn(z)
        x = torch.cat([w, torch.ones(n, 1, device=self.device)], 1)
        reg = ridge * n * torch.eye(x.shape[1], device=self.device)
        reg[-1, -1] = 0  # the bias is not shrunk
        sol = torch.linalg.solve(x.T @ x + reg, x.T @ y)
        self.probe.weight.copy_(sol[:-1].T)
        self.probe.bias.copy_(sol[-1])
        return float((x @ sol - y).square().mean())

    def save(self) -> None:
        import io

        buf = io.BytesIO()
        torch.save({"G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
                    "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                    "probe": self.probe.state_dict(), "opt_p": self.opt_p.state_dict(),
                    "linear": self.linear.state_dict(), "opt_l": self.opt_l.state_dict(), "step": self.step,
                    "images_seen": self.images_seen, "config": json.dumps(asdict(self.cfg))}, buf)
        write_atomic(self.ckpt, buf.getvalue())
        ema = copy.deepcopy(self.G_ema).cpu()
        set_fused(ema, True)
        save_model(ema, self.out / "generator_ema.safetensors",
                   notes=f"EMA generator after {self.images_seen / 1000:.0f} kimg")

    def log(self, **row) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # -------------------------------------------------------------------------------------------- steps

    def _lr(self) -> float:
        c = self.cfg
        if not c.lr_decay_kimg:
            return c.lr
        t = min(self.images_seen / 1000 / c.lr_decay_kimg, 1.0)
        return c.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    def _generate(self, z: Tensor, mix: bool, detach_w: bool = False) -> tuple[Tensor, Tensor]:
        """(images, w of z) with the training generator; `detach_w`: no gradient into the mapping network."""
        G = self.G
        w = G.mapping(z)
        if detach_w:
            w = w.detach()
        ws = w.unsqueeze(1).repeat(1, G.cfg.num_ws, 1)
        if mix and self.cfg.style_mixing > 0 and torch.rand([]) < self.cfg.style_mixing:
            w2 = G.mapping(torch.randn_like(z))
            if detach_w:
                w2 = w2.detach()
            cut = int(torch.randint(1, G.cfg.num_ws, []))
            ws[:, cut:] = w2.unsqueeze(1)
        with torch.no_grad():
            G.mapping.w_avg.copy_(w.detach().mean(0).lerp(G.mapping.w_avg, self.cfg.w_avg_beta))
        return G.synthesis(ws, noise_mode="const"), w

    def _discriminate(self, img: Tensor, target: Tensor | None = None) -> Tensor:
        """D's logits; with `adv_paired`, `target` is each image's reconstruction target (its condition)."""
        x = high_pass(img) if self.cfg.adv_highpass else img
        if self.cfg.adv_paired:
            x = torch.cat([x, binomial_blur(target)], 1)
        return self.D(x)

    def train_step(self, z: Tensor, target: Tensor, reals: Tensor, weights: Tensor | None = None) -> dict:
        """One G (and D) step; `weights` [N, 1, H, W] weight the reconstruction per pixel (mean 1 when None);
        `reals` are unused with `adv_paired` (each target is its own real)."""
        c = self.cfg
        for opt in (self.opt_g, self.opt_d, self.opt_p, self.opt_l):
            for g in opt.param_groups:
                g["lr"] = self._lr() * g.get("lr_scale", 1.0)
        stats = {}
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        # generator
        with autocast:
            fake, w = self._generate(z, mix=False)
            loss = torch.zeros([], device=self.device)
            if c.probe_weight:
                probe = (self.probe(w.float()) - self.probe_fn(z)).square().mean()
                loss = loss + c.probe_weight * probe
                stats["probe"] = probe.item()
            if c.linear_w_weight:  # 1 - R^2 of the linear head on this batch (scale-free: shrinking w gains nothing)
                wf = w.float()
                unexplained = ((wf - self.linear(normalize_2nd_moment(z))).square().sum()
                               / (wf - wf.mean(0)).square().sum())
                loss = loss + c.linear_w_weight * unexplained
                stats["lin"] = unexplained.item()
            if c.recon_weight:
                diff = fake.float() - target
                if weights is None:
                    l1, l2 = diff.abs().mean(), diff.square().mean()
                else:  # weighted means: sum(w * e) / sum(w) over pixels and channels
                    norm = weights.sum() * diff.shape[1]
                    l1, l2 = (diff.abs() * weights).sum() / norm, (diff.square() * weights).sum() / norm
                loss = loss + c.recon_weight * (l1 + l2)
                stats["l1"] = l1.item()
            if c.adv_weight:
                if c.adv_paired:  # the reconstruction itself, judged against its own target
                    g_adv = F.softplus(-self._discriminate(fake, target)).mean()
                else:
                    fake_adv, _ = self._generate(torch.randn_like(z), mix=True, detach_w=c.adv_synthesis_only)
                    g_adv = F.softplus(-self._discriminate(fake_adv)).mean()
                loss = loss + c.adv_weight * g_adv
                stats["g_adv"] = g_adv.item()
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_p.zero_grad(set_to_none=True)
        self.opt_l.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if c.probe_weight:
            self.opt_p.step()
        if c.linear_w_weight:
            self.opt_l.step()
        # discriminator
        if c.adv_weight:
            cond = target if c.adv_paired else None
            with autocast:
                if c.adv_paired:  # each real is its own target; the fake, the reconstruction made above
                    reals, fake_d = target, fake.detach()
                else:
                    with torch.no_grad():
                        fake_d, _ = self._generate(torch.randn_like(z), mix=True)
                d_loss = (F.softplus(self._discriminate(fake_d, cond)).mean()
                          + F.softplus(-self._discriminate(reals, cond)).mean())
            if self.step % c.r1_interval == 0:
                gamma = c.r1_gamma if c.r1_gamma is not None else 0.0002 * reals.shape[-1] ** 2 / reals.shape[0]
                half = max(reals.shape[0] // 2, 1)
                sub = reals[:half].detach().requires_grad_(True)
                sub_cond = None if cond is None else cond[:half]
                (grad,) = torch.autograd.grad(self._discriminate(sub, sub_cond).sum(), sub, create_graph=True)
                r1 = grad.square().sum(dim=[1, 2, 3]).mean()
                d_loss = d_loss + r1 * (gamma / 2) * c.r1_interval
                stats["r1"] = r1.item()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            stats["d"] = d_loss.item()
        # EMA
        self.images_seen += z.shape[0]
        half_life = c.ema_kimg * 1000
        if c.ema_rampup:
            half_life = min(half_life, self.images_seen * c.ema_rampup)
        beta = 0.5 ** (z.shape[0] / max(half_life, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                pe.copy_(p.detach().lerp(pe, beta))
            for be, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                be.copy_(b)
        self.step += 1
        return stats


def sample_grid(G: Generator, zs: np.ndarray, path: Path, psi: float = 1.0) -> None:
    from PIL import Image

    from ..engine.renderer import to_uint8

    G = copy.deepcopy(G).cpu().eval()
    set_fused(G, True)
    with torch.no_grad():
        imgs = to_uint8(G(torch.from_numpy(zs[:64]), psi=psi))
    n = int(math.sqrt(len(imgs)))
    r = imgs.shape[1]
    grid = imgs[: n * n].reshape(n, n, r, r, 3).transpose(0, 2, 1, 3, 4).reshape(n * r, n * r, 3)
    Image.fromarray(grid).save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu64")
    ap.add_argument("--out", default="runs/bundled")
    ap.add_argument("--minutes", type=float, default=9.0, help="train this long, then save and exit (resumable)")
    ap.add_argument("--kimg", type=float, help="stop earlier, once the run has seen this many thousand images")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="processes rendering the dataset")
    ap.add_argument("--dataset-size", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--lr", type=float, help="learning rate of G and D (a fine-tune of a converged model: lower)")
    ap.add_argument("--lr-decay-kimg", type=float)
    ap.add_argument("--probe-weight", type=float, help="weight of the z probe on w (0: none)")
    ap.add_argument("--mapping-lr-scale", type=float, help="the mapping network's lr relative to the synthesis'")
    ap.add_argument("--probe-target", choices=sorted(PROBE_TARGETS),
                    help="what the probe reads from w: the z coordinates or the parameters the renderer draws")
    ap.add_argument("--adv-weight", type=float, help="weight of the adversarial term (0: none)")
    ap.add_argument("--linear-w-weight", type=float,
                    help="weight of the share of w that a linear function of z does not explain (0: none)")
    ap.add_argument("--part-weight", action="append", default=[], metavar="PART=W",
                    help="override one of the preset's part weights (repeatable), e.g. cheeks=24")
    ap.add_argument("--adv-whole", action="store_true",
                    help="the discriminator sees the whole image, not only its detail (adv_highpass off)")
    ap.add_argument("--freeze-noise", action="store_true", help="keep the layers' noise strengths fixed")
    ap.add_argument("--init", type=Path, help="start a new run from this generator's weights (ignored on resume)")
    ap.add_argument("--save-every", type=float, default=3.0, help="minutes between checkpoints")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = copy.deepcopy(PRESETS[args.preset])
    for k in ("dataset_size", "batch", "lr", "lr_decay_kimg", "probe_weight", "probe_target", "mapping_lr_scale",
              "adv_weight", "linear_w_weight"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    if args.adv_whole:
        cfg.adv_highpass = False
    if args.freeze_noise:
        cfg.freeze_noise = True
    for item in args.part_weight:
        part, _, weight = item.partition("=")
        if part not in PART_INDEX:
            ap.error(f"--part-weight: unknown part {part!r} (parts: {', '.join(PARTS)})")
        try:
            cfg.part_weights = {**cfg.part_weights, part: float(weight)}
        except ValueError:
            ap.error(f"--part-weight: {item!r} is not PART=NUMBER")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = cfg.generator
    zs, imgs, parts = make_dataset(cfg.dataset_size, g["z_dim"], g["resolution"], cfg.dataset_seed,
                                   out / "dataset", args.procs)
    table = part_weight_table(cfg.part_weights)
    weight_table = torch.from_numpy(table).to(device) if cfg.part_weights else None
    region = None
    if cfg.part_weights and cfg.region_prior:
        region = torch.from_numpy(region_weight_map(part_region_prior(parts), table)).to(device)
    trainer = Trainer(cfg, out, device)
    if args.init is not None and trainer.step == 0:
        trainer.init_from(args.init)
        trainer.log(init=str(args.init), sha256=sha256_file(args.init))
    rng = np.random.default_rng(trainer.step)
    t_end = time.time() + args.minutes * 60
    t_save = time.time() + args.save_every * 60
    t_log, seen_log = time.time(), trainer.images_seen
    fixed = np.random.RandomState(99).randn(64, g["z_dim"]).astype(np.float32)
    while time.time() < t_end and (args.kimg is None or trainer.images_seen < args.kimg * 1000):
        idx = rng.integers(0, len(zs), cfg.batch)
        z = torch.from_numpy(zs[idx]).to(device)
        target = to_float(imgs[idx], device)
        unpaired_adv = cfg.adv_weight and not cfg.adv_paired
        reals = to_float(imgs[rng.integers(0, len(zs), cfg.batch)], device) if unpaired_adv else target
        weights = None
        if weight_table is not None:
            weights = pixel_weights(torch.from_numpy(parts[idx]).to(device), weight_table, region)
        stats = trainer.train_step(z, target, reals, weights)
        if trainer.step % 50 == 0:
            now = time.time()
            rate = (trainer.images_seen - seen_log) / (now - t_log)
            t_log, seen_log = now, trainer.images_seen
            row = {"step": trainer.step, "kimg": trainer.images_seen / 1000, "img_s": round(rate, 1),
                   "lr": trainer._lr(), **{k: round(v, 5) for k, v in stats.items()}}
            trainer.log(**row)
            print(json.dumps(row), flush=True)
        if time.time() > t_save:
            trainer.save()
            sample_grid(trainer.G_ema, fixed, out / "samples.png")
            t_save = time.time() + args.save_every * 60
    trainer.save()
    sample_grid(trainer.G_ema, fixed, out / "samples.png")
    print(f"saved at step {trainer.step} ({trainer.images_seen / 1000:.0f} kimg)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
