"""StyleGAN2 generator in plain PyTorch: mapping network + synthesis network.

A faithful fp32 re-implementation of NVlabs stylegan2-ada-pytorch (`training/networks.py`), with the
same parameter names, so that an NVlabs state dict loads as is and the outputs match the reference code.

    z --normalize--> fc0..fcN (lrelu) --> w --broadcast--> ws [num_ws, w_dim]
    ws --> b4 (const, conv1, torgb) --> b8 (conv0 up, conv1, torgb) --> ... --> b{res} --> img

The synthesis network is exposed as an ordered list of *stages* (`b16.conv0`, `b16.conv1`, `b16.torgb`, ...)
that each transform a small `SynthesisState`.  The renderer runs them one by one, which is what lets it edit
and capture feature maps between stages and resume a render from a cached stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # default gain of the lrelu activation
NORM_EPS = 1e-8  # z normalisation and weight demodulation epsilon
RESNET_GAIN = math.sqrt(0.5)  # skip and residual branches of the resnet architecture
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)  # binomial low-pass filter used for every 2x upsampling
ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("const", "random", "none")


# ------------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class GeneratorConfig:
    """Hyper-parameters of a StyleGAN2 generator (names as in NVlabs' init kwargs)."""

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    mapping_hidden: int | None = None  # NVlabs layer_features; None = w_dim
    embed_features: int | None = None  # None = w_dim when c_dim > 0
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    conv_clamp: float | None = None
    extra: dict = field(default_factory=dict, compare=False)  # provenance notes, never used by the network
    family = "stylegan2"

    def __post_init__(self) -> None:
        log2 = math.log2(self.resolution)
        if self.resolution < 4 or log2 != int(log2):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def channels(self, res: int) -> int:
        """Feature channels of the block at resolution `res`."""
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.resolution)) - 2

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ------------------------------------------------------------------------------------------------ ops


def normalize_2nd_moment(x: Tensor, dim: int = 1) -> Tensor:
    """x / sqrt(mean(x^2) + eps): the pixel norm applied to z and to class embeddings."""
    return x * (x.square().mean(dim=dim, keepdim=True) + NORM_EPS).rsqrt()


def bias_act(x: Tensor, b: Tensor, lrelu: bool, gain: float = 1.0, clamp: float | None = None) -> Tensor:
    """x + b, then optionally leaky ReLU(0.2) times `gain`, then clamp to +-clamp (NVlabs bias_act, ref path)."""
    x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def fir_filter() -> Tensor:
    """The 4x4 low-pass filter outer([1,3,3,1]) / 64."""
    f = torch.tensor(FIR_TAPS, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: Tensor, f: Tensor, up: int, pad: tuple[int, int, int, int], gain: float,
              kernel: Tensor | None = None) -> Tensor:
    """Zero-insert upsample by `up`, pad (x0, x1, y0, y1), convolve with the 2-D FIR `f` times `gain`."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    return fir_filter2d(F.pad(x, list(pad)), f, padding=0, gain=gain, kernel=kernel)


def fir_filter2d(x: Tensor, f: Tensor, padding: int, gain: float, kernel: Tensor | None = None) -> Tensor:
    """Depthwise convolution with the 2-D FIR `f` times `gain`, the same zero padding on every side (upfirdn2d
    with up=1, padded by the convolution itself).  `kernel`: fir_kernel(f, gain, channels, dtype), prepared."""
    if kernel is None:
        kernel = fir_kernel(f, gain, x.shape[1], x.dtype)
    return F.conv2d(x, kernel, padding=padding, groups=x.shape[1])


def fir_kernel(f: Tensor, gain: float, channels: int, dtype: torch.dtype) -> Tensor:
    """The depthwise kernel [channels, 1, k, k] of fir_filter2d: f * gain, flipped (conv2d correlates)."""
    return (f * gain).to(dtype).flip([0, 1])[None, None].repeat([channels, 1, 1, 1])


def kept_fir_kernel(memo: Memo, f: Tensor, channels: int, dtype: torch.dtype) -> Tensor:
    """fir_kernel(f, 4, channels, dtype) of the 2x upsamplings (gain 4), kept in `memo` while f stays the same."""
    return memo.get((f, channels, dtype), lambda: fir_kernel(f, 4.0, channels, dtype))


class Memo:
    """The last value computed from some inputs, recomputed when any input changes: the inference path keeps a
    layer's modulated weights (one w, many renders: a slider scrubbed after this layer), its bias-and-noise term
    and its FIR kernel.  Tensors are compared by storage address, strides, version counter (bumped by every in-place
    write: a loaded state dict, an optimiser step), shape and dtype; the memo holds them, so no storage address is
    reused while it is the key.  The value is the same computation, so results are bit-identical.  Key, value and
    inputs are one tuple, read once and replaced whole: threads rendering with the same generator (the studio's
    worker, a batch job, a statistics measurement) never see one's key with another's value."""

    def __init__(self) -> None:
        self._entry: tuple[tuple, Any, tuple] | None = None  # (key, value, inputs)

    def __getstate__(self) -> dict:
        return {"_entry": None}  # a copied or pickled generator (a preview copy, a Ray actor's) starts empty

    def get(self, inputs: tuple, compute: Callable[[], Any]) -> Any:
        key = tuple((x.data_ptr(), x.stride(), x._version, x.shape, x.dtype) if isinstance(x, Tensor) else x
                    for x in inputs)
        entry = self._entry
        if entry is not None and entry[0] == key:
            return entry[1]
        value = compute()
        self._entry = (key, value, inputs)
        return value


def upsample2d(img: Tensor, f: Tensor, kernel: Tensor | None = None) -> Tensor:
    """2x FIR upsampling of the RGB skip path (pad 2,1,2,1, gain 4; `kernel` prepared by fir_kernel)."""
    return upfirdn2d(img, f, up=2, pad=(2, 1, 2, 1), gain=4.0, kernel=kernel)


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    demodulate: bool = True,
    up: bool = False,
    resample_filter: Tensor | None = None,
    fused: bool = True,
    gain: float = 1.0,
) -> Tensor:
    """Convolve `x` [N,I,H,W] with `weight` [O,I,k,k] scaled per input channel by `styles` [N or 1, I].

    W' = W * s;  with demodulation W'' = W' / sqrt(sum_{i,kh,kw} W'^2 + eps).
    Per-sample styles run one sample at a time through the one-row path (NVlabs groups them into one convolution,
    whose rounding differs from the plain one: a sample of a batch must come out bit-identical to the same sample
    rendered alone, so a batch job's PNG re-renders exactly).  When all samples share one style row (styles has one
    row and N > 1), the weights are modulated once and an ordinary batched conv is used.
    `up` = transposed conv with stride 2, then the 4x4 FIR (pad 1,1,1,1, gain 4).
    `fused=False` scales the activations instead of the weights (x*s, conv, *d): the fast path for training.
    `gain` scales the output, folded into the (small) weights instead of a pass over the (large) result.
    """
    n = x.shape[0]
    rows = styles.shape[0]
    if rows > 1 and not fused:
        x = _modulated_conv2d_unfused(x, weight, styles, demodulate, up, resample_filter)
        return x * gain if gain != 1 else x
    if rows > 1:
        return torch.cat([modulated_conv2d(x[i:i + 1], weight, styles[i:i + 1], demodulate, up, resample_filter,
                                           fused, gain) for i in range(n)])
    return conv_or_up(x, modulate_weight(weight, styles, demodulate, gain), up, resample_filter)


def modulate_weight(weight: Tensor, styles: Tensor, demodulate: bool = True, gain: float = 1.0) -> Tensor:
    """W' = W * s (one style row), demodulated W'' = W' / sqrt(sum_{i,kh,kw} W'^2 + eps), times `gain`."""
    w = weight * styles.reshape(1, -1, 1, 1)  # [O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[1, 2, 3]) + NORM_EPS).rsqrt()  # [O]
        w = w * (dcoefs * gain).reshape(-1, 1, 1, 1)
    elif gain != 1:
        w = w * gain
    return w


def conv_or_up(x: Tensor, w: Tensor, up: bool, resample_filter: Tensor | None, fir: Tensor | None = None) -> Tensor:
    """Conv with 'same' padding, or the 2x upsampling conv: transposed conv, stride 2, then the 4x4 FIR (pad 1,
    gain 4; `fir` its prepared depthwise kernel)."""
    if up:
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        return fir_filter2d(x, resample_filter, padding=1, gain=4.0, kernel=fir)
    return F.conv2d(x, w, padding=w.shape[-1] // 2)


def _modulated_conv2d_unfused(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool, up: bool,
                              resample_filter: Tensor | None) -> Tensor:
    """Same maths as the fused path with shared weights: conv(x * s, W) * d, d = rsqrt(sum_i s_i^2 sum_k W^2)."""
    x = x * styles[:, :, None, None]
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        x = fir_filter2d(x, resample_filter, padding=1, gain=4.0)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + NORM_EPS).rsqrt()  # [N, O]
        x = x * dcoefs[:, :, None, None]
    return x


# ------------------------------------------------------------------------------------------------ layers


class FullyConnected(nn.Module):
    """Equalised-learning-rate linear layer: y = x W^T * (lr_mul / sqrt(fan_in)) + b * lr_mul."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias_gain != 1 else self.bias
        if not self.lrelu:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, lrelu=True, gain=LRELU_GAIN)


def per_sample(fc: FullyConnected, w: Tensor) -> Tensor:
    """fc(w) one row at a time at inference: a matrix product's rounding depends on the batch size, and a sample
    of a batch must come out bit-identical to the same sample alone."""
    if w.shape[0] == 1 or torch.is_grad_enabled():  # training wants the one batched product
        return fc(w)
    return torch.cat([fc(w[i:i + 1]) for i in range(w.shape[0])])


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise + bias + lrelu*sqrt(2) + clamp."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool, conv_clamp: float | None):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_ch, lrelu=False, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", fir_filter())
        self.fused = True  # training switches this off (see modulated_conv2d)
        self.reduced: ReducedWeights | None = None  # set on a live-preview copy (precision.py)
        self._weights, self._offset, self._fir = Memo(), Memo(), Memo()  # inference only

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None, gain: float = 1.0) -> Tensor:
        """`noise` is the unit-variance noise image [N or 1, 1, r, r] (or None); it is scaled by noise_strength."""
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if torch.is_grad_enabled():
            x = modulated_conv2d(x, self.weight, per_sample(self.affine, w), up=self.up,
                                 resample_filter=self.resample_filter, fused=self.fused)
            if noise is not None:
                x = x.add_(noise * self.noise_strength)
            return bias_act(x, self.bias, lrelu=True, gain=LRELU_GAIN * gain, clamp=clamp)
        # Inference: lrelu(y) * g = lrelu(g * y) for g > 0, so the gain goes into the weights and the bias and
        # noise into one small [1, C, r, r] term: two in-place passes over the feature map instead of four.
        g = LRELU_GAIN * gain
        if self.reduced is not None:
            return self._forward_reduced(x, w, noise, g, clamp)
        if w.shape[0] == 1:  # one style row: its modulated weights are kept while w stays the same
            weight = self._weights.get((w, g, self.weight, self.affine.weight, self.affine.bias),
                                       lambda: modulate_weight(self.weight, self.affine(w), gain=g))
            x = conv_or_up(x, weight, self.up, self.resample_filter, self._fir_kernel(x.dtype))
        else:
            x = modulated_conv2d(x, self.weight, per_sample(self.affine, w), up=self.up,
                                 resample_filter=self.resample_filter, gain=g)
        x = F.leaky_relu_(x.add_(self._bias_and_noise(noise, g)), LRELU_SLOPE)
        return x.clamp_(-clamp, clamp) if clamp is not None and clamp >= 0 else x

    def _bias_and_noise(self, noise: Tensor | None, g: float) -> Tensor:
        """bias * g + noise * noise_strength * g: [1 or N, C, r, r] (kept while the noise image is the same)."""
        def compute() -> Tensor:
            offset = self.bias.reshape(1, -1, 1, 1) * g
            return offset + noise * (self.noise_strength * g) if noise is not None else offset

        return self._offset.get((noise, g, self.bias, self.noise_strength), compute)

    def _fir_kernel(self, dtype: torch.dtype) -> Tensor | None:
        return kept_fir_kernel(self._fir, self.resample_filter, self.weight.shape[0], dtype) if self.up else None

    def _forward_reduced(self, x: Tensor, w: Tensor, noise: Tensor | None, g: float, clamp: float | None
                         ) -> Tensor:
        """The live preview: feature maps in the reduced dtype, styles and demodulation in fp32.
        d_o = rsqrt(sum_i s_i^2 sum_k W_oik^2) from the cached sums of squares; the modulation scales whichever
        is smaller, the weights (W * s * d, cast once) or the input and output (conv(x * s, W) * d)."""
        if w.shape[0] > 1:  # one sample at a time, as the exact path does
            return torch.cat([self._forward_reduced(x[i:i + 1] if x.shape[0] > 1 else x, w[i:i + 1],
                                                    noise[i:i + 1] if noise is not None and noise.shape[0] > 1
                                                    else noise, g, clamp) for i in range(w.shape[0])])
        r = self.reduced
        x = x.to(r.weight.dtype)
        scale_weights = r.weight.numel() <= x[0].numel()

        def modulation() -> tuple[Tensor, Tensor, Tensor | None]:
            styles = self.affine(w)
            d = (styles.square() @ r.weight_sq.t() + NORM_EPS).rsqrt() * g  # [1, O]
            if scale_weights:
                return styles, d, (self.weight * (d.t() * styles)[:, :, None, None]).to(r.weight.dtype)
            return styles.to(x.dtype)[:, :, None, None], d.to(x.dtype)[:, :, None, None], None

        styles, d, weight = self._weights.get((w, g, scale_weights, self.weight, self.affine.weight,
                                               self.affine.bias), modulation)
        fir = self._fir_kernel(x.dtype)
        if weight is not None:
            y = conv_or_up(x, weight, self.up, self.resample_filter, fir)
        else:
            y = conv_or_up(x * styles, r.weight, self.up, self.resample_filter, fir).mul_(d)
        y = F.leaky_relu_(y.add_(self._bias_and_noise(noise, g).to(y.dtype)), LRELU_SLOPE)
        return y.clamp_(-clamp, clamp) if clamp is not None and clamp >= 0 else y


@dataclass
class ReducedWeights:
    """A layer's weights for the reduced-precision live preview: the kernel cast once, and the fp32 sums of its
    squares over the kernel taps [O, I] that the demodulation needs."""

    weight: Tensor
    weight_sq: Tensor

    @classmethod
    def of(cls, weight: Tensor, dtype: torch.dtype) -> ReducedWeights:
        return cls(weight.detach().to(dtype), weight.detach().square().sum(dim=[2, 3]))


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, styles scaled by 1/sqrt(C), no demodulation, + bias, clamp."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, conv_clamp: float | None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnected(w_dim, in_ch, lrelu=False, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch)
        self.fused = True
        self._weights = Memo()  # inference only

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if torch.is_grad_enabled() or w.shape[0] > 1:
            styles = per_sample(self.affine, w) * self.weight_gain
            x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=self.fused)
        else:  # one style row: its modulated weights [O, I] are kept while w stays the same (in x's dtype: a
            weight = self._weights.get(  # preview's feature maps may be bf16; the image path stays fp32)
                (w, x.dtype, self.weight, self.affine.weight, self.affine.bias),
                lambda: modulate_weight(self.weight, self.affine(w) * self.weight_gain, demodulate=False)
                .to(x.dtype).flatten(1))
            n, _, h, wd = x.shape  # a 1x1 conv to 3 channels as one matrix product (4-6x faster than conv2d's
            x = (weight @ x.flatten(2)).view(n, -1, h, wd).float()  # path for it on the CPU)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SkipConv(nn.Module):
    """Resnet shortcut: 1x1 conv without bias, then 2x FIR upsampling (pad 2,1,2,1)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.register_buffer("resample_filter", fir_filter())
        self.weight_gain = 1.0 / math.sqrt(in_ch)

    def forward(self, x: Tensor, gain: float) -> Tensor:
        x = F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype))  # (a preview's x may be bf16)
        x = upfirdn2d(x, self.resample_filter, up=2, pad=(2, 1, 2, 1), gain=4.0)
        return x * gain


# ------------------------------------------------------------------------------------------------ synthesis


@dataclass
class SynthesisState:
    """What flows between synthesis stages: the feature map, the RGB image so far, the resnet shortcut."""

    batch: int
    x: Tensor | None = None
    img: Tensor | None = None
    shortcut: Tensor | None = None


@dataclass(frozen=True)
class Stage:
    """One step of the synthesis network. Conv stages' outputs are the editable/capturable layers."""

    name: str  # e.g. "b16.conv0"
    kind: str  # "conv0" | "conv1" | "torgb"
    resolution: int
    channels: int  # channels of the feature map this stage outputs (3 for torgb)
    w_index: int  # which row of ws this stage reads
    margin: int = 0  # pixels of map around the image area on each side (StyleGAN3 layers; 0 for StyleGAN2)

    @property
    def size(self) -> int:
        """Side of the feature map: the image area (`resolution` pixels) plus the margins."""
        return self.resolution + 2 * self.margin

    @property
    def block(self) -> str:
        return self.name.split(".")[0]


class SynthesisBlock(nn.Module):
    def __init__(self, cfg: GeneratorConfig, res: int):
        super().__init__()
        self.resolution = res
        self.architecture = cfg.architecture
        self.is_last = res == cfg.resolution
        out_ch = cfg.channels(res)
        if res == 4:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
        else:
            in_ch = cfg.channels(res // 2)
            self.conv0 = SynthesisLayer(in_ch, out_ch, cfg.w_dim, res, up=True, conv_clamp=cfg.conv_clamp)
            if cfg.architecture == "resnet":
                self.skip = SkipConv(in_ch, out_ch)
        self.conv1 = SynthesisLayer(out_ch, out_ch, cfg.w_dim, res, up=False, conv_clamp=cfg.conv_clamp)
        if self.has_torgb:
            self.torgb = ToRGB(out_ch, cfg.img_channels, cfg.w_dim, cfg.conv_clamp)
        self.register_buffer("resample_filter", fir_filter())
        self._img_fir = Memo()  # the RGB skip path's upsampling kernel (inference)

    @property
    def has_torgb(self) -> bool:
        return self.is_last or self.architecture == "skip"

    def run_conv0(self, s: SynthesisState, w: Tensor, noise: Tensor | None) -> SynthesisState:
        shortcut = self.skip(s.x, gain=RESNET_GAIN) if self.architecture == "resnet" else None
        return SynthesisState(s.batch, self.conv0(s.x, w, noise), s.img, shortcut)

    def run_conv1(self, s: SynthesisState, w: Tensor, noise: Tensor | None) -> SynthesisState:
        if self.resolution == 4:
            x = self.const.unsqueeze(0).repeat([s.batch, 1, 1, 1])
        else:
            x = s.x
        if s.shortcut is not None:  # resnet: x = shortcut + conv1(x) * sqrt(0.5)
            x = s.shortcut.add(self.conv1(x, w, noise, gain=RESNET_GAIN))
        else:
            x = self.conv1(x, w, noise)
        return SynthesisState(s.batch, x, s.img, None)

    def run_torgb(self, s: SynthesisState, w: Tensor) -> SynthesisState:
        img = None
        if s.img is not None:
            kernel = kept_fir_kernel(self._img_fir, self.resample_filter, s.img.shape[1], s.img.dtype)
            img = upsample2d(s.img, self.resample_filter, kernel)
        y = self.torgb(s.x, w)
        img = img.add_(y) if img is not None else y
        return SynthesisState(s.batch, s.x, img, None)


class SynthesisNetwork(nn.Module):
    supports_windows = True  # windowed.py knows every stage's reach
    has_noise = True

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        for res in cfg.block_resolutions:
            setattr(self, f"b{res}", SynthesisBlock(cfg, res))
        self.stages = self._build_stages()

    def _build_stages(self) -> list[Stage]:
        stages = []
        for res in self.cfg.block_resolutions:
            k = int(math.log2(res))
            ch = self.cfg.channels(res)
            block: SynthesisBlock = getattr(self, f"b{res}")
            if res == 4:
                stages.append(Stage("b4.conv1", "conv1", 4, ch, 0))
                torgb_w = 1
            else:
                stages.append(Stage(f"b{res}.conv0", "conv0", res, ch, 2 * k - 5))
                stages.append(Stage(f"b{res}.conv1", "conv1", res, ch, 2 * k - 4))
                torgb_w = 2 * k - 3
            if block.has_torgb:
                stages.append(Stage(f"b{res}.torgb", "torgb", res, self.cfg.img_channels, torgb_w))
        return stages

    def layer(self, stage: Stage) -> SynthesisLayer | None:
        """The modulated conv layer of a conv stage (None for torgb)."""
        block = getattr(self, stage.block)
        return getattr(block, stage.kind) if stage.kind != "torgb" else None

    def run_stage(self, stage: Stage, s: SynthesisState, ws: Tensor, noise: Tensor | None,
                  transform: Tensor | None = None) -> SynthesisState:
        """Apply one stage. `ws` is [N or 1, num_ws, w_dim]; `noise` as for SynthesisLayer.  StyleGAN2 has no
        input transform (`transform` is accepted for a common signature with StyleGAN3 and must be None)."""
        block: SynthesisBlock = getattr(self, stage.block)
        w = ws[:, stage.w_index]
        if stage.kind == "conv0":
            return block.run_conv0(s, w, noise)
        if stage.kind == "conv1":
            return block.run_conv1(s, w, noise)
        return block.run_torgb(s, w)

    def const_noise(self, stage: Stage) -> Tensor | None:
        layer = self.layer(stage)
        return None if layer is None else layer.noise_const[None, None]

    def forward(self, ws: Tensor, noise_mode: str = "const", generator: torch.Generator | None = None) -> Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, res, res] in about [-1, 1]."""
        s = SynthesisState(batch=ws.shape[0])
        for stage in self.stages:
            s = self.run_stage(stage, s, ws, self.stage_noise(stage, noise_mode, ws.shape[0], generator))
        return s.img

    def stage_noise(self, stage: Stage, mode: str, batch: int, generator: torch.Generator | None) -> Tensor | None:
        """The unit noise image a stage adds: the stored constant, fresh N(0,1) per sample, or none."""
        if stage.kind == "torgb" or mode == "none":
            return None
        if mode == "const":
            return self.const_noise(stage)
        if mode == "random":
            r = stage.resolution
            device = self.b4.const.device
            return torch.randn([batch, 1, r, r], generator=generator, device=device)
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")


# ------------------------------------------------------------------------------------------------ mapping


class MappingNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        hidden = cfg.mapping_hidden or cfg.w_dim
        embed = 0
        if cfg.c_dim > 0:
            embed = cfg.embed_features or cfg.w_dim
            self.embed = FullyConnected(cfg.c_dim, embed, lrelu=False)
        features = [cfg.z_dim + embed] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        for i in range(cfg.mapping_layers):
            fc = FullyConnected(features[i], features[i + 1], lrelu=True, lr_mul=cfg.mapping_lr_mul)
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """z [N, z_dim] (and one-hot c [N, c_dim]) -> w [N, w_dim] (not broadcast, not truncated)."""
        x = normalize_2nd_moment(z.to(torch.float32)) if self.cfg.z_dim > 0 else None
        if self.cfg.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.cfg.mapping_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


def truncate(ws: Tensor, center: Tensor, psi: float, cutoff: int | None = None) -> Tensor:
    """w' = center.lerp(w, psi) on the first `cutoff` ws (all when None); center is w_avg or a base latent."""
    if psi == 1:
        return ws
    if cutoff is None:
        return center.lerp(ws, psi)
    if center.ndim >= 2:  # a per-layer base latent [num_ws, w_dim]
        center = center[..., :cutoff, :]
    ws = ws.clone()
    ws[:, :cutoff] = center.lerp(ws[:, :cutoff], psi)
    return ws


class Generator(nn.Module):
    """z (+ class) -> mapping -> ws -> synthesis -> image.  network_sg3.Generator swaps in its synthesis."""

    synthesis_network = SynthesisNetwork

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg)
        self.synthesis = self.synthesis_network(cfg)

    @property
    def w_avg(self) -> Tensor:
        return self.mapping.w_avg

    def map(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None) -> Tensor:
        """z -> ws [N, num_ws, w_dim], truncated toward w_avg."""
        w = self.mapping(z, c)
        ws = w.unsqueeze(1).repeat([1, self.cfg.num_ws, 1])
        return truncate(ws, self.w_avg, psi, cutoff)

    def forward(self, z: Tensor, c: Tensor | None = None, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: str = "const") -> Tensor:
        return self.synthesis(self.map(z, c, psi, cutoff), noise_mode=noise_mode)
