"""Generator configs from untrusted JSON (a checkpoint's kwargs, the own format's metadata): every field checked."""

from __future__ import annotations

from .checkpoint import ModelLoadError, check_fields, check_positive
from .network import ARCHITECTURES, GeneratorConfig
from .network_sg3 import SG3Config

AnyConfig = GeneratorConfig | SG3Config

CONFIG_RANGES: dict[str, tuple[int, int]] = {
    "z_dim": (1, 16384), "w_dim": (1, 16384), "c_dim": (0, 1_000_000), "resolution": (4, 8192),
    "img_channels": (1, 4), "mapping_layers": (1, 64), "mapping_hidden": (1, 16384),
    "embed_features": (1, 16384), "channel_base": (1, 1 << 24), "channel_max": (1, 16384),
}
SG3_INT_RANGES: dict[str, tuple[int, int]] = {
    "z_dim": (1, 16384), "w_dim": (1, 16384), "c_dim": (0, 1_000_000), "resolution": (4, 8192),
    "img_channels": (1, 4), "mapping_layers": (1, 64), "channel_base": (1, 1 << 24), "channel_max": (1, 16384),
    "num_layers": (2, 64), "num_critical": (1, 63), "margin_size": (0, 256), "conv_kernel": (1, 5),
    "filter_size": (1, 64), "lrelu_upsampling": (1, 8),
}
SG3_FLOAT_FIELDS = ("mapping_lr_mul", "first_cutoff", "first_stopband", "last_stopband_rel", "output_scale",
                    "conv_clamp")


def config_from_dict(d: object) -> AnyConfig:
    """A generator config from untrusted JSON (StyleGAN2 unless its "family" says stylegan3): every field's type
    and range checked, unknown keys ignored."""
    if not isinstance(d, dict):
        raise ModelLoadError("the model config is not a JSON object")
    family = d.get("family", "stylegan2")
    if family == "stylegan3":
        return sg3_config_from_dict(d)
    if family != "stylegan2":
        raise ModelLoadError(f"config family {family!r} is not stylegan2 or stylegan3")
    known = {k: v for k, v in d.items() if k in GeneratorConfig.__dataclass_fields__}
    check_fields(known, CONFIG_RANGES, optional=("mapping_hidden", "embed_features"))
    check_positive(known, ("mapping_lr_mul", "conv_clamp"), optional=("conv_clamp",))
    if "architecture" in known and known["architecture"] not in ARCHITECTURES:
        raise ModelLoadError(f"config architecture={known['architecture']!r} is not one of {ARCHITECTURES}")
    if "extra" in known and not isinstance(known["extra"], dict):
        raise ModelLoadError("config extra is not an object")
    try:
        return GeneratorConfig(**known)
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"invalid model config ({e})") from None


def sg3_config_from_dict(d: dict) -> SG3Config:
    """An SG3Config from untrusted JSON: every field's type and range checked, unknown keys ignored."""
    known = {k: v for k, v in d.items() if k in SG3Config.__dataclass_fields__}
    check_fields(known, SG3_INT_RANGES)
    check_positive(known, SG3_FLOAT_FIELDS, optional=("conv_clamp",))
    if "use_radial_filters" in known and not isinstance(known["use_radial_filters"], bool):
        raise ModelLoadError("config use_radial_filters is not true or false")
    if "extra" in known and not isinstance(known["extra"], dict):
        raise ModelLoadError("config extra is not an object")
    try:
        cfg = SG3Config(**known)
        cfg.layer_plan()
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelLoadError(f"invalid StyleGAN3 config ({e})") from None
    return cfg
