"""The configs table (roadmap A-E, paper Table 2) and the presets table (datasets and their widths).

Where the widths come from:

* Config E, paper presets: the official R3GAN presets (PAPER_FACTS Sec. 5): widths 768 (x4, 384, 192, 96 at
  FFHQ-256), 16 channels per group of the expanded 3x3. ImageNet uses 1536 wide stages with 96 groups, i.e.
  32 channels per group (official `train.py`: cardinality 3 * 32 per stage); with 16 per group the counts
  come out 79.4 M / 83.0 M instead of the paper's 82.9 M / 86.6 M, with 32 they match.
* Config D: derived here from Table 2. Twice E's widths with a classic 4x bottleneck (hidden = width / 4,
  dense 3x3) gives D = 23.2815 M (paper 23.282 M) and G = 23.378 M without output skips, 23.400 M with them
  (paper 23.400 M): Table 2's G count was evidently taken with the per-stage to-image layers present.
* Configs A/B: StyleGAN2 widths min(channel_base / resolution, channel_max) with channel_base 16384 and
  channel_max 512 (StyleGAN2-ADA's `paper256`), which reproduce Table 2's A and B counts to the parameter.
* Small presets (digits*, stacked*) and `stackedmnist` are ours, chosen for a CPU; the paper does not
  list StackedMNIST widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..choices import require_choice


@dataclass(frozen=True)
class ConfigInfo:
    """One row of the roadmap (paper Table 2)."""

    name: str
    family: str          # "stylegan2" | "stripped" | "resnet"
    summary: str
    paper_fid: float     # FFHQ-256, 5 M images (Table 2)
    paper_g_params: float  # millions, FFHQ-256
    paper_d_params: float


CONFIGS: dict[str, ConfigInfo] = {
    "A": ConfigInfo("A", "stylegan2", "StyleGAN2: mapping network, styles, (de)modulation, noise, mbstd, equalised lr",
                    7.516, 24.767, 24.001),
    "B": ConfigInfo("B", "stripped", "StyleGAN2 stripped bare: constant input, plain convs, output skips, ResNet D",
                    12.46, 18.890, 23.996),
    "C": ConfigInfo("C", "stripped", "B's networks; the loss becomes RpGAN + R1 + R2 (the networks do not change)",
                    11.65, 18.890, 23.996),
    "D": ConfigInfo("D", "resnet", "ResNet-ify: 1-3-1 bottleneck blocks in G and D, FIR resampling, fix-up init",
                    9.95, 23.400, 23.282),
    "E": ConfigInfo("E", "resnet", "ResNeXt-ify: grouped 3x3 (16 channels/group) in an inverted bottleneck (x2)",
                    7.045, 23.058, 23.010),
}


@dataclass(frozen=True)
class Preset:
    """A dataset's image format and the network widths every config uses on it."""

    name: str
    resolution: int
    channels: int
    num_classes: int                       # classes available to conditional=True (0: no labels)
    e_widths: tuple[int, ...]              # config E widths in G order (4x4 stage first)
    e_channels_per_group: int = 16
    d_width_factor: int = 2                # config D: widths = factor * E widths, bottleneck 1/4
    d_expansion: float = 0.25
    sg_channel_base: int = 16384           # configs A/B: width at resolution r = min(base / r, max)
    sg_channel_max: int = 512
    a_z_dim: int = 512
    a_w_dim: int = 512
    a_mapping_layers: int = 8
    b_z_dim: int = 64
    e_z_dim: int = 64
    note: str = ""
    paper_e_params: tuple[float, float] | None = field(default=None)  # (G, D) millions, PAPER_FACTS Sec. 5


def _small(name: str, resolution: int, channels: int, num_classes: int, note: str) -> Preset:
    # CPU-sized: 64 wide stages for E, 128 for D, 64 for A/B; 8-layer mapping kept but 64-dimensional.
    stages = resolution.bit_length() - 2  # 4x4 .. resolution
    return Preset(name, resolution, channels, num_classes, (64,) * stages, sg_channel_base=64 * resolution,
                  sg_channel_max=64, a_z_dim=64, a_w_dim=64, note=note)


PRESETS: dict[str, Preset] = {
    "ffhq256": Preset("ffhq256", 256, 3, 0, (768, 768, 768, 768, 384, 192, 96),
                      note="Table 2 roadmap; official FFHQ-256", paper_e_params=(23.06, 23.01)),
    "ffhq64": Preset("ffhq64", 64, 3, 0, (768, 768, 768, 768, 384), note="official FFHQ-64",
                     paper_e_params=(22.43, 22.38)),
    "cifar10": Preset("cifar10", 32, 3, 10, (768,) * 4, a_mapping_layers=2,
                      note="official CIFAR-10 (conditional in the paper); A uses StyleGAN2-ADA's 2-layer cifar mapping",
                      paper_e_params=(20.78, 21.28)),
    "imagenet32": Preset("imagenet32", 32, 3, 1000, (1536,) * 4, e_channels_per_group=32,
                         note="official ImageNet-32 (conditional)",
                         paper_e_params=(82.9, 86.6)),
    "imagenet64": Preset("imagenet64", 64, 3, 1000, (1536,) * 5, e_channels_per_group=32,
                         note="official ImageNet-64 (conditional)",
                         paper_e_params=(103.6, 107.2)),
    "stackedmnist": Preset("stackedmnist", 32, 3, 1000, (256,) * 4,
                           note="32x32 stacked MNIST; widths are ours (not in the paper)"),
    "digits8": _small("digits8", 8, 1, 10, "8x8 sklearn digits, CPU"),
    "digits16": _small("digits16", 16, 1, 10, "16x16 digits, CPU"),
    "stacked8": _small("stacked8", 8, 3, 1000, "8x8 stacked digits (1000 modes), CPU"),
    "stacked16": _small("stacked16", 16, 3, 1000, "16x16 stacked digits (1000 modes), CPU"),
}


def available_configs() -> tuple[str, ...]:
    return tuple(CONFIGS)


def available_presets() -> tuple[str, ...]:
    return tuple(PRESETS)


def get_config(config: str) -> ConfigInfo:
    require_choice("config", config, CONFIGS)
    return CONFIGS[config]


def get_preset(preset: str) -> Preset:
    require_choice("preset", preset, PRESETS)
    return PRESETS[preset]


def check_resolution(resolution: int) -> None:
    """Resolutions must be powers of two >= 4 (the networks start from a 4x4 stage and double)."""
    ok = isinstance(resolution, int) and resolution >= 4 and resolution & (resolution - 1) == 0
    if not ok:
        raise ValueError(f"resolution must be a power of two >= 4; got {resolution!r} "
                         f"(valid choices: 4, 8, 16, 32, 64, 128, 256, 512, 1024, ...)")


def num_stages(resolution: int) -> int:
    """Stages 4x4, 8x8, ..., resolution."""
    check_resolution(resolution)
    return resolution.bit_length() - 2


def check_stage_widths(resolution: int, widths: tuple[int, ...]) -> None:
    """One positive width per stage 4x4 .. resolution (configs A-C; D/E also check their hidden widths)."""
    stages = num_stages(resolution)
    if len(widths) != stages or min(widths) < 1:
        raise ValueError(f"resolution {resolution} needs {stages} positive stage widths, got {widths}")


def fit_widths(widths: tuple[int, ...], stages: int) -> tuple[int, ...]:
    """Preset widths for another resolution: cut from the high-resolution end or repeat the last width."""
    widths = tuple(widths)
    if len(widths) >= stages:
        return widths[:stages]
    return widths + (widths[-1],) * (stages - len(widths))


def stylegan_widths(resolution: int, channel_base: int, channel_max: int) -> tuple[int, ...]:
    """StyleGAN2's widths min(channel_base // r, channel_max) for r = 4, 8, ..., resolution."""
    return tuple(min(channel_base // (2**i), channel_max) for i in range(2, num_stages(resolution) + 2))
