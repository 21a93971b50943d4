"""Configs D and E: the R3GAN ResNet generator and discriminator (paper Sec. 3.3-3.4, Fig. 3).

A generator stage is a transition (1x1 conv when the width changes, then 2x upsampling) followed by
residual blocks; a discriminator stage mirrors it (blocks, then 2x downsampling and a 1x1 conv). The first
G stage replaces the transition by the generative basis (a learned 4x4 basis scaled per channel by a
linear map of z); the last D stage ends in the discriminative basis (depthwise 4x4 conv, then linear).

Config D: dense 3x3 in a 1-3-1 bottleneck block. Config E: the 3x3 is grouped (16 channels per group) and
the block is an inverted bottleneck (1x1 widens C -> 2C, 1x1 narrows back). No normalisation anywhere;
biases live in the activations; fix-up initialisation with the last conv of every block at zero.

Resampling uses the [1,3,3,1] FIR filter, as the paper describes it ("bilinear, as StyleGAN") and as the official
code computes it: its networks declare [1,2,1], but its resampler convolves that kernel with [1,1] before use, and
[1,2,1] * [1,1] = [1,3,3,1]. Other taps (e.g. `fir_taps=(1, 2, 1)` used as is) are an experiment away from both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .presets import check_resolution, num_stages
from .layers import (FIR_TAPS, BiasedLeakyReLU, Conv2d, Downsample2x, Upsample2x, conv2d, fixup_gain, init_weight_,
                     linear, set_image_attributes)


def _width_step(channels_per_group: int, expansion: float) -> int:
    """Smallest width step whose expansion is a multiple of channels_per_group."""
    step = 1
    while (step * expansion) % channels_per_group != 0 or step * expansion != int(step * expansion):
        step += 1
        if step > 10_000:
            break
    return step


@dataclass(frozen=True)
class ResNetConfig:
    """Everything that fixes a D/E network. Widths are listed in G order (4x4 stage first)."""

    resolution: int = 16
    channels: int = 1                       # image channels (3 for RGB)
    widths: tuple[int, ...] = (64, 64, 64)  # one per stage: 4x4, 8x8, ... resolution
    blocks_per_stage: int = 2
    expansion: float = 2.0                  # hidden width = expansion * width; < 1 is a classic bottleneck
    channels_per_group: int | None = 16     # None = dense 3x3 (config D)
    z_dim: int = 64
    num_classes: int = 0                    # 0 = unconditional
    g_embed_dim: int | None = None          # None = z_dim (paper: the label embedding has z's size)
    d_embed_dim: int | None = None          # None = D's last width (official code: WidthPerStage[0])
    output_skips: bool = False              # G sums a to-image 1x1 conv per stage (the 10.17 variant of D)
    fir_taps: tuple[int, ...] = FIR_TAPS

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        stages = num_stages(self.resolution)
        if len(self.widths) != stages:
            raise ValueError(f"resolution {self.resolution} needs {stages} stage widths (4x4 .. {self.resolution}), "
                             f"got {len(self.widths)}: {self.widths}")
        if self.blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {self.blocks_per_stage}")
        for w in self.widths:
            h = self.hidden(w)
            if w < 1 or h < 1:
                raise ValueError(f"widths and hidden widths must be positive; width {w} gives hidden {h}")
            if self.channels_per_group is not None and h % self.channels_per_group != 0:
                raise ValueError(
                    f"width {w} expands to {h} channels, not divisible by channels_per_group="
                    f"{self.channels_per_group}; valid widths are multiples of "
                    f"{_width_step(self.channels_per_group, self.expansion)} (or pass channels_per_group=None)")

    @property
    def num_stages(self) -> int:
        return len(self.widths)

    def hidden(self, width: int) -> int:
        return int(round(width * self.expansion))

    def groups(self, width: int) -> int:
        """Groups of the 3x3 conv in a block of this width (1 = dense)."""
        return 1 if self.channels_per_group is None else self.hidden(width) // self.channels_per_group


class ResidualBlock(nn.Module):
    """x + conv1x1(act(conv3x3(act(conv1x1(x))))), the last conv zero-initialised (identity at start).

    The first two convs use g = sqrt(2 / (1 + 0.2^2)) * L^(-1/4) (`fixup_gain`), L = blocks in the network.
    """

    def __init__(self, width: int, hidden: int, groups: int, num_blocks_total: int):
        super().__init__()
        gain = fixup_gain(num_blocks_total)
        self.conv1 = conv2d(width, hidden, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(hidden)
        self.conv2 = conv2d(hidden, hidden, 3, groups=groups, gain=gain)
        self.act2 = BiasedLeakyReLU(hidden)
        self.conv3 = conv2d(hidden, width, 1, gain=0.0)

    def branch(self, x: Tensor) -> Tensor:
        """The residual branch alone (zero at initialisation)."""
        return self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class UpTransition(nn.Module):
    """G's transition: 1x1 conv when the width changes, then [1,3,3,1] FIR upsampling."""

    def __init__(self, c_in: int, c_out: int, taps: tuple[int, ...] = FIR_TAPS):
        super().__init__()
        self.proj = conv2d(c_in, c_out, 1) if c_in != c_out else None
        self.up = Upsample2x(taps)

    def forward(self, x: Tensor) -> Tensor:
        if self.proj is not None:
            x = self.proj(x)
        return self.up(x)


class DownTransition(nn.Module):
    """D's transition: [1,3,3,1] FIR downsampling, then a 1x1 conv when the width changes."""

    def __init__(self, c_in: int, c_out: int, taps: tuple[int, ...] = FIR_TAPS):
        super().__init__()
        self.down = Downsample2x(taps)
        self.proj = conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.down(x)
        return self.proj(x) if self.proj is not None else x


class GenerativeBasis(nn.Module):
    """G's input: a learned 4x4 basis per channel, scaled by a linear map of the (z, label) vector."""

    def __init__(self, d_in: int, width: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(width, 4, 4))
        self.scale = linear(d_in, width)

    def forward(self, z: Tensor) -> Tensor:
        # [1, C, 4, 4] * [N, C, 1, 1] -> [N, C, 4, 4]
        return self.basis.to(z.dtype)[None] * self.scale(z)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """D's output: a depthwise 4x4 conv collapses each channel to one number, then a linear layer."""

    def __init__(self, width: int, d_out: int):
        super().__init__()
        self.basis = Conv2d(width, width, 4, groups=width, bias=False)
        init_weight_(self.basis.weight)
        self.out = linear(width, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.basis(x).flatten(1))


class GeneratorStage(nn.Module):
    """transition -> blocks (G mirrors D: its stages are D's read backwards)."""

    def __init__(self, transition: nn.Module, blocks: list[ResidualBlock]):
        super().__init__()
        self.transition = transition
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.transition(x))


class DiscriminatorStage(nn.Module):
    """blocks -> transition."""

    def __init__(self, blocks: list[ResidualBlock], transition: nn.Module):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.transition = transition

    def forward(self, x: Tensor) -> Tensor:
        return self.transition(self.blocks(x))


def _one_hot(c: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    if c.dtype.is_floating_point:  # already one-hot (or soft) labels
        return c.to(dtype)
    return F.one_hot(c.long(), num_classes).to(dtype)


def check_labels(c: Tensor | None, num_classes: int, batch: int, who: str) -> None:
    """A conditional model needs c; an unconditional one must not silently ignore it."""
    if num_classes > 0 and c is None:
        raise ValueError(f"{who} is conditional ({num_classes} classes): pass c, a LongTensor of class indices [N]")
    if num_classes == 0 and c is not None:
        raise ValueError(f"{who} is unconditional (num_classes=0) but was given labels c")
    if c is not None and c.shape[0] != batch:
        raise ValueError(f"{who}: labels have batch {c.shape[0]}, inputs have batch {batch}")


class ResNetGenerator(nn.Module):
    """G(z, c=None) -> N x C x H x W, no output nonlinearity (configs D and E)."""

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        set_image_attributes(self, cfg)
        self.z_dim = cfg.z_dim
        embed_dim = (cfg.g_embed_dim or cfg.z_dim) if cfg.num_classes else 0
        # Label -> linear embedding of the one-hot vector, concatenated to z (paper Sec. 3.4).
        self.embed = linear(cfg.num_classes, embed_dim) if cfg.num_classes else None
        total = cfg.blocks_per_stage * cfg.num_stages
        stages = []
        for i, w in enumerate(cfg.widths):
            if i == 0:
                transition = GenerativeBasis(cfg.z_dim + embed_dim, w)
            else:
                transition = UpTransition(cfg.widths[i - 1], w, cfg.fir_taps)
            blocks = [ResidualBlock(w, cfg.hidden(w), cfg.groups(w), total) for _ in range(cfg.blocks_per_stage)]
            stages.append(GeneratorStage(transition, blocks))
        self.stages = nn.ModuleList(stages)
        if cfg.output_skips:
            self.to_image = nn.ModuleList([conv2d(w, cfg.channels, 1) for w in cfg.widths])
            self.up = Upsample2x(cfg.fir_taps)
        else:
            self.to_image = nn.ModuleList([conv2d(cfg.widths[-1], cfg.channels, 1)])
            self.up = None

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        check_labels(c, self.num_classes, z.shape[0], "G")
        x = z
        if self.embed is not None:
            x = torch.cat([z, self.embed(_one_hot(c, self.num_classes, z.dtype))], dim=1)
        if self.up is None:
            for stage in self.stages:
                x = stage(x)
            return self.to_image[0](x)
        img = None
        for stage, to_image in zip(self.stages, self.to_image):
            x = stage(x)
            y = to_image(x)
            img = y if img is None else self.up(img) + y
        return img


class ResNetDiscriminator(nn.Module):
    """D(x, c=None) -> N logits; a projection discriminator when conditional (Miyato & Koyama 2018)."""

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        set_image_attributes(self, cfg)
        widths = tuple(reversed(cfg.widths))  # D order: full resolution first
        total = cfg.blocks_per_stage * cfg.num_stages
        self.from_image = conv2d(cfg.channels, widths[0], 1)
        out_dim = (cfg.d_embed_dim or widths[-1]) if cfg.num_classes else 1
        stages = []
        for i, w in enumerate(widths):
            blocks = [ResidualBlock(w, cfg.hidden(w), cfg.groups(w), total) for _ in range(cfg.blocks_per_stage)]
            last = i == len(widths) - 1
            transition = DiscriminativeBasis(w, out_dim) if last else DownTransition(w, widths[i + 1], cfg.fir_taps)
            stages.append(DiscriminatorStage(blocks, transition))
        self.stages = nn.ModuleList(stages)
        # Projection: logit = <features, embed(c)>; gain 1/sqrt(dim) keeps the logit's scale near 1 at start.
        self.embed = linear(cfg.num_classes, out_dim, gain=out_dim**-0.5) if cfg.num_classes else None

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        check_labels(c, self.num_classes, x.shape[0], "D")
        h = self.from_image(x)
        for stage in self.stages:
            h = stage(h)
        if self.embed is not None:
            h = (h * self.embed(_one_hot(c, self.num_classes, h.dtype))).sum(dim=1, keepdim=True)
        return h.reshape(x.shape[0])
