"""Configs B and C: StyleGAN2 stripped bare (paper Sec. 3.1; C differs from B only in its loss).

Removed from config A: z normalisation, the mapping network, styles, weight (de)modulation, noise inputs,
minibatch stddev and equalised learning rate (so plain He-style initialisation instead). Kept: a learned 4x4
constant input, output skips in G (a to-image 1x1 conv per resolution, summed with upsampling), StyleGAN2's
residual D (skip gain sqrt(0.5)), leaky ReLU, no normalisation, no tanh. Strided / transposed convolutions
are replaced by [1,3,3,1] FIR (bilinear) resampling beside stride-1 convs.

How z enters: the paper keeps the learned constant; its Table 2 count for B (18.890 M) is StyleGAN2's
synthesis convs, biases and to-RGB layers plus 64 x 512 = 32,768 more parameters, exactly a bias-free
linear map z -> 512. We read that as the constant scaled per channel by a linear map of z (the input
stage D/E also use), which gives 18.890453 M.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .layers import (FIR_TAPS, LRELU_GAIN, LRELU_SLOPE, Downsample2x, Upsample2x, conv2d, linear,
                     set_image_attributes)
from .presets import check_stage_widths
from .resnet import GenerativeBasis, _one_hot, check_labels


@dataclass(frozen=True)
class StrippedConfig:
    """Configs B/C. Widths in G order (4x4 first); D uses them reversed."""

    resolution: int = 16
    channels: int = 1
    widths: tuple[int, ...] = (64, 64, 64)
    z_dim: int = 64
    num_classes: int = 0
    fir_taps: tuple[int, ...] = FIR_TAPS

    def __post_init__(self) -> None:
        check_stage_widths(self.resolution, self.widths)


class ConvAct(nn.Module):
    """conv (with bias) -> leaky ReLU 0.2, He-initialised (gain sqrt(2 / (1 + 0.2^2)))."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        super().__init__()
        self.conv = conv2d(c_in, c_out, kernel_size, gain=LRELU_GAIN, bias=True)
        self.act = nn.LeakyReLU(LRELU_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


class StrippedGeneratorBlock(nn.Module):
    """(upsample) -> conv3x3 -> lrelu -> conv3x3 -> lrelu; plus this resolution's to-image 1x1 conv."""

    def __init__(self, c_in: int, c_out: int, channels: int, up: bool, taps: tuple[int, ...]):
        super().__init__()
        self.up = Upsample2x(taps) if up else None
        self.conv0 = ConvAct(c_in, c_out, 3) if up else None  # the 4x4 block has one conv (StyleGAN2's b4)
        self.conv1 = ConvAct(c_out, c_out, 3)
        self.to_image = conv2d(c_out, channels, 1, bias=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.up is not None:
            x = self.conv0(self.up(x))
        x = self.conv1(x)
        return x, self.to_image(x)


class StrippedGenerator(nn.Module):
    """G(z, c=None) -> N x C x H x W: constant input, plain convs, output skips, no tanh."""

    def __init__(self, cfg: StrippedConfig):
        super().__init__()
        set_image_attributes(self, cfg)
        self.z_dim = cfg.z_dim
        embed_dim = cfg.z_dim if cfg.num_classes else 0
        self.embed = linear(cfg.num_classes, embed_dim) if cfg.num_classes else None
        self.input = GenerativeBasis(cfg.z_dim + embed_dim, cfg.widths[0])
        self.blocks = nn.ModuleList(
            StrippedGeneratorBlock(cfg.widths[max(i - 1, 0)], w, cfg.channels, up=i > 0, taps=cfg.fir_taps)
            for i, w in enumerate(cfg.widths))
        self.up = Upsample2x(cfg.fir_taps)

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        check_labels(c, self.num_classes, z.shape[0], "G")
        if self.embed is not None:
            z = torch.cat([z, self.embed(_one_hot(c, self.num_classes, z.dtype))], dim=1)
        x = self.input(z)
        img = None
        for block in self.blocks:
            x, y = block(x)
            img = y if img is None else self.up(img) + y
        return img


class StrippedDiscriminatorBlock(nn.Module):
    """StyleGAN2's residual D block: (conv3x3 -> lrelu -> down -> conv3x3 -> lrelu + down -> 1x1) * sqrt(1/2)."""

    def __init__(self, c_in: int, c_out: int, taps: tuple[int, ...]):
        super().__init__()
        self.conv0 = ConvAct(c_in, c_in, 3)
        self.down = Downsample2x(taps)
        self.conv1 = ConvAct(c_in, c_out, 3)
        self.skip = conv2d(c_in, c_out, 1)

    def branch(self, x: Tensor) -> Tensor:
        return self.conv1(self.down(self.conv0(x)))

    def forward(self, x: Tensor) -> Tensor:
        # sqrt(0.5) keeps the variance of the sum of two roughly independent unit-variance paths at one.
        return (self.skip(self.down(x)) + self.branch(x)) * math.sqrt(0.5)


class StrippedDiscriminator(nn.Module):
    """D(x, c=None) -> N logits: from-image 1x1, residual blocks down to 4x4, conv + two linear layers."""

    def __init__(self, cfg: StrippedConfig):
        super().__init__()
        set_image_attributes(self, cfg)
        widths = tuple(reversed(cfg.widths))
        self.from_image = ConvAct(cfg.channels, widths[0], 1)
        self.blocks = nn.ModuleList(StrippedDiscriminatorBlock(widths[i], widths[i + 1], cfg.fir_taps)
                                    for i in range(len(widths) - 1))
        c = widths[-1]
        self.conv = ConvAct(c, c, 3)
        self.fc = linear(c * 16, c, gain=LRELU_GAIN, bias=True)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        out_dim = c if cfg.num_classes else 1
        self.out = linear(c, out_dim, bias=True)
        self.embed = linear(cfg.num_classes, out_dim, gain=out_dim**-0.5) if cfg.num_classes else None

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        check_labels(c, self.num_classes, x.shape[0], "D")
        h = self.from_image(x)
        for block in self.blocks:
            h = block(h)
        h = self.out(self.act(self.fc(self.conv(h).flatten(1))))
        if self.embed is not None:
            h = (h * self.embed(_one_hot(c, self.num_classes, h.dtype))).sum(dim=1, keepdim=True)
        return h.reshape(x.shape[0])
