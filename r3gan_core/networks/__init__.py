"""Generators and discriminators of the roadmap configurations A-E (paper Sec. 3, Table 2).

    G, D = build("E", "digits16")                  # unconditional
    G, D = build("E", "cifar10", conditional=True) # class-conditional (projection D)
    x = G(z, c)        # N x C x H x W, no tanh for B-E
    logits = D(x, c)   # [N]

Modules: `layers` (init helper, FIR resampling, equalised-lr layers), `conv` (the convolution every network uses:
F.conv2d with a backward that R1/R2 can differentiate cheaply on a GPU), `stylegan2` (config A), `stripped`
(B and C), `resnet` (D and E), `presets` (the configs and presets tables), `anatomy` (layer tables,
parameter counts and activation statistics for the book).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .anatomy import activation_variance_through_depth, count_parameters, describe, layer_table, residual_blocks
from .presets import (CONFIGS, PRESETS, ConfigInfo, Preset, available_configs, available_presets, check_resolution,
                      fit_widths, get_config, get_preset, num_stages, stylegan_widths)
from .resnet import ResNetConfig, ResNetDiscriminator, ResNetGenerator
from .stripped import StrippedConfig, StrippedDiscriminator, StrippedGenerator
from .stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator

__all__ = [
    "CONFIGS", "PRESETS", "ConfigInfo", "Preset", "available_configs", "available_presets", "build", "network_config",
    "ResNetConfig", "ResNetGenerator", "ResNetDiscriminator", "StrippedConfig", "StrippedGenerator",
    "StrippedDiscriminator", "StyleGAN2Config", "StyleGAN2Generator", "StyleGAN2Discriminator",
    "describe", "layer_table", "count_parameters", "activation_variance_through_depth", "residual_blocks",
]

# Overrides each family accepts (besides the common resolution / channels / num_classes / z_dim / widths).
_COMMON = ("resolution", "channels", "num_classes", "z_dim", "widths")
OVERRIDES: dict[str, tuple[str, ...]] = {
    "resnet": _COMMON + ("blocks_per_stage", "expansion", "channels_per_group", "output_skips", "g_embed_dim",
                         "d_embed_dim", "fir_taps"),
    "stripped": _COMMON + ("channel_base", "channel_max", "fir_taps"),
    "stylegan2": _COMMON + ("channel_base", "channel_max", "w_dim", "mapping_layers", "mapping_lr_multiplier",
                            "mbstd_group_size"),
}


# What each override's value must be (checked before any network is built, so a typo names its key).
_POSITIVE_INTS = ("channels", "z_dim", "w_dim", "mapping_layers", "blocks_per_stage",
                  "channels_per_group", "g_embed_dim", "d_embed_dim", "channel_base", "channel_max",
                  "mbstd_group_size")
_POSITIVE_NUMBERS = ("expansion", "mapping_lr_multiplier")


def check_override_values(overrides: dict[str, Any]) -> None:
    """ValueError naming the override and what it must be: positive whole numbers for sizes, a list of positive
    whole numbers for `widths`, a list of numbers for `fir_taps`, a bool for `output_skips`."""
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    for key, value in overrides.items():
        if key == "resolution" and not (whole(value) and value >= 4 and value & (value - 1) == 0):
            raise ValueError(f"network override resolution={value!r}: must be a power of two >= 4")
        if key in _POSITIVE_INTS and not whole(value):
            raise ValueError(f"network override {key}={value!r}: must be a positive whole number")
        if key == "num_classes" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise ValueError(f"network override num_classes={value!r}: must be a whole number >= 0")
        if key in _POSITIVE_NUMBERS and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                             and value > 0):
            raise ValueError(f"network override {key}={value!r}: must be a positive number")
        if key == "widths" and not (isinstance(value, (list, tuple)) and value and all(map(whole, value))):
            raise ValueError(f"network override widths={value!r}: must be a comma list of positive whole numbers, "
                             "one per stage from 4x4 up to the resolution (e.g. widths=64,64,32)")
        if key == "fir_taps" and not (isinstance(value, (list, tuple)) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and sum(value) != 0):
            raise ValueError(f"network override fir_taps={value!r}: must be a comma list of numbers with a non-zero "
                             "sum (e.g. fir_taps=1,3,3,1)")
        if key == "output_skips" and not isinstance(value, bool):
            raise ValueError(f"network override output_skips={value!r}: must be true or false")


def _labels(preset: Preset, conditional: bool, overrides: dict[str, Any]) -> int:
    """Number of classes: the preset's (or the override's) when conditional, else 0."""
    n = overrides.pop("num_classes", None)
    if not conditional:
        if n:
            raise ValueError(f"num_classes={n} given with conditional=False; pass conditional=True")
        return 0
    n = preset.num_classes if n is None else int(n)
    if n <= 0:
        raise ValueError(f"preset {preset.name!r} has no class labels; pass num_classes=K (> 0) to build a "
                         f"conditional model, or conditional=False")
    return n


def network_config(config: str, preset: str, conditional: bool = False, **overrides: Any):
    """The typed network config (ResNetConfig / StrippedConfig / StyleGAN2Config) `build` would use."""
    info = get_config(config)
    p = get_preset(preset)
    unknown = sorted(set(overrides) - set(OVERRIDES[info.family]))
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for config {config!r}; valid choices: "
                         f"{', '.join(OVERRIDES[info.family])}")
    check_override_values(overrides)
    overrides = dict(overrides)
    resolution = overrides.pop("resolution", p.resolution)
    stages = num_stages(resolution)
    channels = overrides.pop("channels", p.channels)
    num_classes = _labels(p, conditional, overrides)
    common = dict(resolution=resolution, channels=channels, num_classes=num_classes)
    widths = overrides.pop("widths", None)
    if widths is not None:
        widths = tuple(int(w) for w in widths)

    if info.family == "resnet":
        if config == "E":
            base = dict(widths=fit_widths(p.e_widths, stages), expansion=2.0, channels_per_group=p.e_channels_per_group)
        else:  # D: dense 3x3, classic 4x bottleneck, twice E's widths (see presets.py)
            base = dict(widths=fit_widths(tuple(p.d_width_factor * w for w in p.e_widths), stages),
                        expansion=p.d_expansion, channels_per_group=None)
        base["z_dim"] = p.e_z_dim
        if widths is not None:
            base["widths"] = widths
        base.update(overrides)
        return ResNetConfig(**common, **base)

    channel_base = overrides.pop("channel_base", p.sg_channel_base)
    channel_max = overrides.pop("channel_max", p.sg_channel_max)
    if widths is None:
        widths = stylegan_widths(resolution, channel_base, channel_max)
    if info.family == "stripped":
        return StrippedConfig(**common, widths=widths, **{"z_dim": p.b_z_dim, **overrides})
    base = {"z_dim": p.a_z_dim, "w_dim": p.a_w_dim, "mapping_layers": p.a_mapping_layers}
    return StyleGAN2Config(**common, widths=widths, **{**base, **overrides})


_FAMILIES: dict[type, tuple[type[nn.Module], type[nn.Module]]] = {
    ResNetConfig: (ResNetGenerator, ResNetDiscriminator),
    StrippedConfig: (StrippedGenerator, StrippedDiscriminator),
    StyleGAN2Config: (StyleGAN2Generator, StyleGAN2Discriminator),
}


def build(config: str, preset: str, conditional: bool = False, **overrides: Any) -> tuple[nn.Module, nn.Module]:
    """(G, D) of roadmap `config` ("A".."E") on `preset` (see `available_presets()`).

    Overrides (keyword) replace preset values: resolution, channels, num_classes, z_dim, widths (G order,
    one per stage 4x4 .. resolution) for every config; blocks_per_stage, expansion, channels_per_group,
    output_skips (G's per-stage to-image sums; D's 10.17 variant), g_embed_dim, d_embed_dim for D/E;
    fir_taps for B-E (default [1,3,3,1], as the paper and the official code: its declared [1,2,1] convolved with
    [1,1]); channel_base, channel_max for A/B/C; w_dim, mapping_layers, mapping_lr_multiplier, mbstd_group_size for A. Bad names or values raise
    ValueError naming the valid choices. Build on the meta device (`with torch.device("meta"):`) to count
    parameters of large presets without allocating them.
    """
    cfg = network_config(config, preset, conditional, **overrides)
    g_cls, d_cls = _FAMILIES[type(cfg)]
    G, D = g_cls(cfg), d_cls(cfg)
    return G, D
