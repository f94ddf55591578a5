"""Alias-free StyleGAN3 generator (configs T and R) in plain PyTorch, fp32 on every device, no compiled ops.

Re-implements NVlabs stylegan3 `training/networks_stylegan3.py` with the same parameter and buffer names, so an
NVlabs state dict loads as is and the outputs match the reference code (its `impl='ref'` path).

    z --normalize--> fc0..fcN (lrelu) --> w --broadcast--> ws [num_ws = num_layers + 2, w_dim]
    ws[0]  --> input: Fourier features sin(2 pi (x . f + phase)) on a grid with margin, rotated and
               translated by affine(ws[0]) and the user's input transform, then a learned channel mixing
    ws[i]  --> L{i-1}: modulated conv (3x3 for T, 1x1 for R), then the filtered leaky ReLU:
               + bias, up-sample (zero insert, low-pass), lrelu(0.2) * sqrt(2), clamp, low-pass, down-sample
    ws[-1] --> L{n}: the ToRGB layer (1x1 modulated conv, no demodulation), times output_scale

Every layer's map is a square of `size` pixels at `sampling_rate` pixels per image width: the image itself is the
central `sampling_rate` x `sampling_rate` area, the rest (`margin` pixels on each side) is room for the filters.
The last two layers are critically sampled at the image resolution and have no margin.

The layer plan (sizes, rates, cutoffs, filter taps, paddings) follows from a few hyper-parameters
(`SG3Config.layer_plan`); the low-pass filters themselves are buffers read from the checkpoint, and designed here
(Kaiser-windowed sinc, or jinc for R's radial filters) only for freshly initialised networks.
Like network.py, the synthesis network is a list of stages that the renderer runs one by one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import network
from .network import LRELU_GAIN, LRELU_SLOPE, NORM_EPS, FullyConnected, Stage, SynthesisState, per_sample

CONFIGS = {"T": dict(conv_kernel=3, use_radial_filters=False), "R": dict(conv_kernel=1, use_radial_filters=True)}


# ------------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class SG3Config:
    """Hyper-parameters of a StyleGAN3 generator (names as in NVlabs' init kwargs)."""

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14  # layers between the input and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    conv_kernel: int = 3  # 3 = config T, 1 = config R
    use_radial_filters: bool = False  # R: radially symmetric down-sampling filters
    filter_size: int = 6
    lrelu_upsampling: int = 2
    conv_clamp: float | None = 256
    extra: dict = field(default_factory=dict, compare=False)
    family = "stylegan3"
    mapping_hidden = None  # the mapping network's hidden and embedding widths are w_dim (network.MappingNetwork)
    embed_features = None

    def __post_init__(self) -> None:
        log2 = math.log2(self.resolution)
        if self.resolution < 4 or log2 != int(log2):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if not 1 <= self.num_critical < self.num_layers:
            raise ValueError(f"num_critical must be in [1, num_layers), got {self.num_critical}")
        if self.conv_kernel not in (1, 3, 5):
            raise ValueError(f"conv_kernel must be 1, 3 or 5, got {self.conv_kernel}")

    @property
    def num_ws(self) -> int:
        return self.num_layers + 2

    @property
    def architecture(self) -> str:
        """'T' or 'R' (NVlabs' stylegan3-t / stylegan3-r), or 'custom'."""
        for name, kw in CONFIGS.items():
            if self.conv_kernel == kw["conv_kernel"] and self.use_radial_filters == kw["use_radial_filters"]:
                return name
        return "custom"

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> SG3Config:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def layer_plan(self) -> list[LayerPlan]:
        """Every synthesis layer's sizes, rates, cutoffs, filters and padding (NVlabs' SynthesisNetwork.__init__):
        cutoffs and stopbands grow geometrically from the first layer to the last critically sampled one;
        sampling rate = the power of two above 2 x stopband (at most the resolution); half width =
        max(stopband, rate / 2) - cutoff; channels = min(channel_base / 2 / cutoff, channel_max)."""
        n, res = self.num_layers, self.resolution
        last_cutoff = res / 2
        last_stopband = last_cutoff * self.last_stopband_rel
        exponents = np.minimum(np.arange(n + 1) / (n - self.num_critical), 1)
        cutoffs = self.first_cutoff * (last_cutoff / self.first_cutoff) ** exponents
        stopbands = self.first_stopband * (last_stopband / self.first_stopband) ** exponents
        rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
        half_widths = np.maximum(stopbands, rates / 2) - cutoffs
        sizes = rates + self.margin_size * 2
        sizes[-2:] = res
        channels = np.rint(np.minimum((self.channel_base / 2) / cutoffs, self.channel_max))
        channels[-1] = self.img_channels
        plan = []
        for i in range(n + 1):
            p = max(i - 1, 0)
            plan.append(LayerPlan.design(
                index=i, is_torgb=i == n, critically_sampled=i >= n - self.num_critical,
                in_channels=int(channels[p]), out_channels=int(channels[i]), in_size=int(sizes[p]),
                out_size=int(sizes[i]), in_rate=int(rates[p]), out_rate=int(rates[i]),
                in_cutoff=float(cutoffs[p]), out_cutoff=float(cutoffs[i]), in_half_width=float(half_widths[p]),
                out_half_width=float(half_widths[i]), cfg=self))
        return plan


@dataclass(frozen=True)
class LayerPlan:
    """One synthesis layer's geometry. Sizes and rates in pixels of the layer's own map."""

    index: int
    is_torgb: bool
    critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_rate: int
    out_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1 of the up-sampled map (negative = crop)

    @property
    def name(self) -> str:
        return f"L{self.index}_{self.out_size}_{self.out_channels}"

    @property
    def tmp_rate(self) -> int:
        return self.in_rate * self.up_factor

    @classmethod
    def design(cls, index: int, is_torgb: bool, critically_sampled: bool, in_channels: int, out_channels: int,
               in_size: int, out_size: int, in_rate: int, out_rate: int, in_cutoff: float, out_cutoff: float,
               in_half_width: float, out_half_width: float, cfg: SG3Config) -> LayerPlan:
        """The layer's filters and padding: the leaky ReLU runs at `lrelu_upsampling` x the higher rate;
        filters have `filter_size` taps per factor; padding centres the samples (NVlabs appendix C.3)."""
        kernel = 1 if is_torgb else cfg.conv_kernel
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else cfg.lrelu_upsampling)
        up, down = tmp_rate // in_rate, tmp_rate // out_rate
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError(f"layer {index}: rates {in_rate} -> {out_rate} do not divide {tmp_rate}")
        up_taps = cfg.filter_size * up if up > 1 and not is_torgb else 1
        down_taps = cfg.filter_size * down if down > 1 and not is_torgb else 1
        pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        return cls(index, is_torgb, critically_sampled, in_channels, out_channels, in_size, out_size, in_rate,
                   out_rate, in_cutoff, out_cutoff, in_half_width, out_half_width, kernel, up, down, up_taps,
                   down_taps, cfg.use_radial_filters and not critically_sampled, (pad_lo, pad_hi, pad_lo, pad_hi))

    def up_filter_shape(self) -> tuple[int, ...] | None:
        return (self.up_taps,) if self.up_taps > 1 else None

    def down_filter_shape(self) -> tuple[int, ...] | None:
        if self.down_taps == 1:
            return None
        return (self.down_taps, self.down_taps) if self.down_radial else (self.down_taps,)


# ------------------------------------------------------------------------------------------------ filters


def kaiser_beta(ripple_db: float) -> float:
    """Kaiser window shape for a stopband attenuation in dB (Kaiser's empirical formula)."""
    if ripple_db > 50:
        return 0.1102 * (ripple_db - 8.7)
    if ripple_db > 21:
        return 0.5842 * (ripple_db - 21) ** 0.4 + 0.07886 * (ripple_db - 21)
    return 0.0


def kaiser_attenuation(taps: int, width: float) -> float:
    """Attenuation (dB) of a Kaiser FIR with `taps` taps and transition width `width` (fraction of Nyquist)."""
    return 2.285 * (taps - 1) * math.pi * width + 7.95


def design_lowpass(taps: int, cutoff: float, width: float, rate: float, radial: bool = False) -> Tensor | None:
    """A low-pass FIR at sampling rate `rate`: Kaiser-windowed sinc (separable, [taps]) or jinc ([taps, taps]),
    normalised to unit DC gain. None for a single tap (identity)."""
    if taps == 1:
        return None
    nyquist = rate / 2
    beta = kaiser_beta(kaiser_attenuation(taps, width / nyquist))
    window = np.kaiser(taps, beta)
    m = np.arange(taps) - (taps - 1) / 2
    if not radial:
        f = (cutoff / nyquist) * np.sinc((cutoff / nyquist) * m) * window
        return torch.as_tensor(f / f.sum(), dtype=torch.float32)
    x = m / rate
    r = np.hypot(*np.meshgrid(x, x))
    j1 = torch.special.bessel_j1(torch.as_tensor(2 * math.pi * cutoff * r, dtype=torch.float64)).numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(r > 0, j1 / (math.pi * r), cutoff)  # jinc: J1(2 pi c r) / (pi r) -> c at r = 0
    f = f * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def upfirdn2d(x: Tensor, f: Tensor | None, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0,) * 4,
              gain: float = 1.0) -> Tensor:
    """Zero-insert up-sampling by `up`, padding (x0, x1, y0, y1; negative crops), convolution with the FIR `f`
    ([k] separable, or [k, k]) times `gain`, then keeping every `down`-th sample (NVlabs upfirdn2d).

    Computed without the zeros: up-sampling is a transposed convolution with stride `up` (the inserted zeros are
    never multiplied), down-sampling a convolution with stride `down` (the dropped samples are never computed),
    both depthwise in channels-last layout, where oneDNN runs them ~20x faster than in NCHW."""
    if f is None:
        if up > 1:
            n, c, h, w = x.shape
            x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
        x = F.pad(x, list(padding))[:, :, ::down, ::down]
        return x * gain if gain != 1 else x
    c = x.shape[1]
    x = x.contiguous(memory_format=torch.channels_last)
    f = (f * gain ** (f.ndim / 2)).to(x.dtype)
    taps = f.shape[-1]
    if up > 1:
        if f.ndim == 2:
            x = F.conv_transpose2d(x, f[None, None].expand(c, 1, -1, -1), stride=up, groups=c)
        else:
            x = F.conv_transpose2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, up), groups=c)
            x = F.conv_transpose2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(up, 1), groups=c)
        x0, x1, y0, y1 = padding  # the transposed conv's output, cropped / padded to the padded up-sampled frame
        x = F.pad(x, [x0 - taps + 1, x1 + up - taps, y0 - taps + 1, y1 + up - taps])
        return x[:, :, ::down, ::down] if down > 1 else x
    x = F.pad(x, list(padding)) if any(padding) else x
    f = f.flip(list(range(f.ndim)))  # a convolution, as NVlabs' (flip_filter=False)
    if f.ndim == 2:
        return F.conv2d(x, f[None, None].expand(c, 1, -1, -1), stride=down, groups=c)
    x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, down), groups=c)
    return F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(down, 1), groups=c)


def filtered_lrelu(x: Tensor, up_filter: Tensor | None, down_filter: Tensor | None, bias: Tensor, up: int,
                   down: int, padding: tuple[int, int, int, int], gain: float, slope: float,
                   clamp: float | None) -> Tensor:
    """x + b; up-sample by `up` through `up_filter` (gain up^2); leaky ReLU(slope) x gain; clamp; low-pass
    through `down_filter` and keep every `down`-th sample (NVlabs filtered_lrelu, reference path)."""
    x = x + bias.reshape(1, -1, 1, 1)
    x = upfirdn2d(x, up_filter, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope) if slope != 1 else x
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, down_filter, down=down)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, padding: int,
                     input_gain: Tensor) -> Tensor:
    """StyleGAN3's modulated convolution of x [N,I,H,W] with weight [O,I,k,k] and styles [N or 1, I].

    With demodulation, W and s are first normalised to unit RMS (W per output channel, s per sample: NVlabs
    takes s's RMS over the whole batch, a scale that demodulation cancels), then W' = W s and
    W'' = W' / sqrt(sum W'^2 + 1e-8).  Finally the weights are scaled by the layer's input gain
    (1 / sqrt(magnitude EMA)).  One style row for N samples = shared weights and an ordinary batched conv."""
    n = x.shape[0]
    rows = styles.shape[0]
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    w = weight.unsqueeze(0) * styles.reshape(rows, 1, -1, 1, 1)  # [rows, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + NORM_EPS).rsqrt().reshape(rows, -1, 1, 1, 1)
    w = w * input_gain
    if rows == 1:
        return F.conv2d(x, w[0], padding=padding)
    # One plain convolution per sample rather than NVlabs' grouped one: on the CPU it is as fast, and a sample of a
    # batch comes out bit-identical to the same sample rendered alone (a batch job's PNG re-renders exactly).
    return torch.cat([F.conv2d(x[i:i + 1], w[i], padding=padding) for i in range(n)])


# ------------------------------------------------------------------------------------------------ layers


def rotation_translation(t: Tensor) -> Tensor:
    """The input's learned inverse transform from affine(w) = (r_cos, r_sin, t_x, t_y), per sample [N, 3, 3]:
    rotate by the normalised (r_cos, r_sin), after translating by -(t_x, t_y)."""
    t = t / t[:, :2].norm(dim=1, keepdim=True)
    eye = torch.eye(3, device=t.device).unsqueeze(0).repeat([t.shape[0], 1, 1])
    m_r, m_t = eye.clone(), eye.clone()
    m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
    m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
    return m_r @ m_t


class SynthesisInput(nn.Module):
    """Fourier features: channels x sin(2 pi (f . (x, y) + phase)) on the layer's grid, then a channel mixing."""

    def __init__(self, w_dim: int, channels: int, size: int, rate: int, bandwidth: float):
        super().__init__()
        self.channels, self.size, self.rate, self.bandwidth = channels, size, rate, bandwidth
        freqs = torch.randn([channels, 2])  # random frequencies in a disc of radius `bandwidth`
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnected(w_dim, 4, lrelu=False)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0, 0, 0]))
        self.register_buffer("transform", torch.eye(3, 3))  # the stored user transform (identity in NVlabs files)
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)

    def forward(self, w: Tensor, transform: Tensor | None = None) -> Tensor:
        """w [N or 1, w_dim] -> features [N', C, size, size]; `transform` [1 or N, 3, 3] is the user's inverse
        transform of the image (gen_images.py: inv(make_transform(translate, rotate))), default the stored one."""
        user = (self.transform if transform is None else transform).to(w.dtype)
        transforms = rotation_translation(per_sample(self.affine, w)) @ user  # [N', 3, 3]
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N', C, 2]
        # Frequencies the user's transform pushes past the band fade out before they alias.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.rate  # the image spans [-0.5, 0.5]; the margin beyond
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)  # [1,H,W,2]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N', H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * math.pi)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv, then the filtered leaky ReLU; the last layer is ToRGB (1x1, linear, no demodulation)."""

    def __init__(self, plan: LayerPlan, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.plan = plan
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, plan.in_channels, lrelu=False, bias_init=1.0)
        k = plan.conv_kernel
        self.weight = nn.Parameter(torch.randn([plan.out_channels, plan.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([plan.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.register_buffer("up_filter", None)
        self.register_buffer("down_filter", None)
        if plan.up_taps > 1:
            self.up_filter = torch.zeros(plan.up_filter_shape())
        if plan.down_taps > 1:
            self.down_filter = torch.zeros(plan.down_filter_shape())
        self.torgb_gain = 1 / math.sqrt(plan.in_channels * k * k)

    def design_filters(self) -> None:
        """Fill the low-pass filters from the plan (for a fresh network; checkpoints bring their own)."""
        p = self.plan
        if self.up_filter is not None:
            self.up_filter.copy_(design_lowpass(p.up_taps, p.in_cutoff, p.in_half_width * 2, p.tmp_rate))
        if self.down_filter is not None:
            self.down_filter.copy_(design_lowpass(p.down_taps, p.out_cutoff, p.out_half_width * 2, p.tmp_rate,
                                                  radial=p.down_radial))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        p = self.plan
        styles = per_sample(self.affine, w)
        if p.is_torgb:
            styles = styles * self.torgb_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=not p.is_torgb, padding=p.conv_kernel - 1,
                             input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, p.up_factor, p.down_factor,
                              p.padding, gain=1.0 if p.is_torgb else LRELU_GAIN,
                              slope=1.0 if p.is_torgb else LRELU_SLOPE, clamp=self.conv_clamp)


class SynthesisNetwork(nn.Module):
    """input, L0 .. L{n-1}, ToRGB L{n}, as stages: `input` (ws[0]), each layer (ws[i + 1]), `torgb` kind last."""

    supports_windows = False  # the renderer runs parting batches densely (no receptive-field windows here)
    has_noise = False

    def __init__(self, cfg: SG3Config):
        super().__init__()
        self.cfg = cfg
        self.plan = cfg.layer_plan()
        first = self.plan[0]  # the Fourier-feature input is the first layer's input
        channels, size, rate = first.in_channels, first.in_size, first.in_rate
        self.input = SynthesisInput(cfg.w_dim, channels, size, rate, bandwidth=first.in_cutoff)
        self.layer_names = [p.name for p in self.plan]
        for p in self.plan:
            setattr(self, p.name, SynthesisLayer(p, cfg.w_dim, cfg.conv_clamp))
        self.stages = [Stage("input", "input", rate, channels, 0, (size - rate) // 2)]
        for p in self.plan:
            kind = "torgb" if p.is_torgb else "layer"
            margin = (p.out_size - p.out_rate) // 2
            self.stages.append(Stage(p.name, kind, p.out_rate, p.out_channels, p.index + 1, margin))
        self.w_dtype: torch.dtype | None = None  # a preview copy's layer dtype (precision.py): ws are cast to it

    def design_filters(self) -> None:
        for name in self.layer_names:
            getattr(self, name).design_filters()

    def run_stage(self, stage: Stage, s: SynthesisState, ws: Tensor, noise: Tensor | None = None,
                  transform: Tensor | None = None) -> SynthesisState:
        """Apply one stage. StyleGAN3 has no noise inputs; `transform` is read by the input stage only."""
        w = ws[:, stage.w_index]
        if stage.kind == "input":  # fp32 on a preview copy too: its output is cast to the layers' dtype
            x = self.input(w, transform)
            if self.w_dtype is not None:
                x = x.to(self.w_dtype)
            if x.shape[0] != s.batch:
                x = x.expand(s.batch, -1, -1, -1)
            return SynthesisState(s.batch, x)
        x = getattr(self, stage.name)(s.x, w if self.w_dtype is None else w.to(self.w_dtype))
        if stage.kind == "torgb":
            return SynthesisState(s.batch, None, x * self.cfg.output_scale if self.cfg.output_scale != 1 else x)
        return SynthesisState(s.batch, x)

    def stage_noise(self, stage: Stage, mode: str, batch: int, generator: torch.Generator | None) -> None:
        return None  # no noise inputs in StyleGAN3

    def forward(self, ws: Tensor, transform: Tensor | None = None, **_ignored) -> Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, res, res] in about [-1, 1]."""
        s = SynthesisState(batch=ws.shape[0])
        for stage in self.stages:
            s = self.run_stage(stage, s, ws, transform=transform)
        return s.img


class Generator(network.Generator):
    """z (+ class) -> mapping (as StyleGAN2's) -> ws -> alias-free synthesis -> image."""

    synthesis_network = SynthesisNetwork

    def forward(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                transform: Tensor | None = None, **_ignored) -> Tensor:
        return self.synthesis(self.map(z, c, psi, cutoff), transform=transform)


def input_transform(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The input transform for `gen_images.py --translate X,Y --rotate DEG`: the inverse of the image's
    rotation (degrees) and translation (image widths), float64 [3, 3]."""
    angle = math.radians(rotate)
    s, c = math.sin(angle), math.cos(angle)
    m = np.array([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)
