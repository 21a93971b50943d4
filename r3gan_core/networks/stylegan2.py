"""Config A: a compact, faithful StyleGAN2 (Karras et al. 2020) in plain PyTorch.

Generator: z normalisation -> 8-layer mapping MLP (lr multiplier 0.01) -> ws [N, num_ws, w_dim]; the
synthesis network starts from a learned 4x4 constant and applies, per resolution, two modulated /
demodulated 3x3 convs with per-pixel noise and a to-RGB 1x1 conv whose outputs are summed over resolutions
(skip generator). Discriminator: residual blocks (skip gain sqrt(0.5)), minibatch stddev (group 4), then a
3x3 conv and two linear layers. Every weight uses the equalised learning rate; resampling is the [1,3,3,1]
FIR (upsampling convs are transposed convs followed by the FIR blur, as StyleGAN2's conv2d_resample).

Parameter count at FFHQ-256 (channel_base 16384, channel_max 512): G 24,767,458, D 24,001,089, Table 2's
24.767 M / 24.001 M. Class conditioning (not used in Table 2): G concatenates a normalised linear embedding
of the label (size z_dim) to the normalised z, as StyleGAN2-ADA does; D is a projection discriminator
(StyleGAN2-ADA maps the label through its own MLP first; a single equalised linear layer here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import conv
from .layers import (FIR_TAPS, LRELU_SLOPE, STYLEGAN_LRELU_GAIN, EqualizedConv2d, EqualizedLinear, blur, fir_kernel,
                     set_image_attributes, upsample_2x)
from .presets import check_stage_widths
from .resnet import _one_hot, check_labels

NOISE_MODES = ("random", "none")


@dataclass(frozen=True)
class StyleGAN2Config:
    """Config A. Widths in G order (4x4 first); D uses them reversed."""

    resolution: int = 16
    channels: int = 1
    widths: tuple[int, ...] = (64, 64, 64)
    z_dim: int = 64
    w_dim: int = 64
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995          # decay of the tracked mean w (for truncation)
    mbstd_group_size: int = 4
    num_classes: int = 0
    fir_taps: tuple[int, ...] = FIR_TAPS

    def __post_init__(self) -> None:
        check_stage_widths(self.resolution, self.widths)
        if self.mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {self.mapping_layers}")


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the feature dimension (StyleGAN's pixel norm of z)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# StyleGAN2 Eq. 1-3: w'_ijk = s_i w_ijk;  w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps).
def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False,
                     fir: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Per-sample modulated conv as one grouped conv over the batch.

    x [N, I, H, W], weight [O, I, k, k], styles [N, I]. With `up`, a stride-2 transposed conv followed by
    the FIR blur (gain 4), giving [N, O, 2H, 2W] like StyleGAN2's conv2d_resample.
    """
    n, c_in, h, w_ = x.shape
    c_out, _, k, _ = weight.shape
    wts = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        d = (wts.square().sum(dim=[2, 3, 4]) + eps).rsqrt()  # [N, O]
        wts = wts * d[:, :, None, None, None]
    x = x.reshape(1, n * c_in, h, w_)
    if not up:
        out = conv.conv2d(x, wts.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)  # networks.conv: path
        # length differentiates this twice, and PyTorch's own double backward would loop over the N groups
        return out.reshape(n, c_out, h, w_)
    # conv_transpose2d wants [groups * I, O, k, k]
    wts = wts.transpose(1, 2).reshape(n * c_in, c_out, k, k)
    out = F.conv_transpose2d(x, wts, stride=2, groups=n)  # [1, N*O, 2H + k - 2, ...]
    pad = (fir.shape[-1] - k + 1) // 2  # 2H + k - 2 + 2 pad - (taps - 1) = 2H; 1 for k = 3 and 4 taps
    out = blur(out, fir * 4, padding=pad)
    return out.reshape(n, c_out, 2 * h, 2 * w_)


class MappingNetwork(nn.Module):
    """z (and label) -> w: normalise, then `num_layers` equalised linear layers with leaky ReLU."""

    def __init__(self, cfg: StyleGAN2Config, num_ws: int):
        super().__init__()
        self.num_ws = num_ws
        self.w_avg_beta = cfg.w_avg_beta
        self.num_classes = cfg.num_classes
        self.embed = EqualizedLinear(cfg.num_classes, cfg.z_dim) if cfg.num_classes else None
        d_in = cfg.z_dim * (2 if cfg.num_classes else 1)
        dims = [d_in] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.Sequential(*[EqualizedLinear(a, b, lr_multiplier=cfg.mapping_lr_multiplier, activation="lrelu")
                                      for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            x = torch.cat([x, normalize_2nd_moment(self.embed(_one_hot(c, self.num_classes, z.dtype)))], dim=1)
        w = self.layers(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w[:, None].expand(-1, self.num_ws, -1)  # [N, num_ws, w_dim]: one w per synthesis layer
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = ws.clone()
            ws[:, :cutoff] = self.w_avg.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling) + noise + bias + leaky ReLU * sqrt(2)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, up: bool, taps: tuple[int, ...]):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.up = up
        self.register_buffer("fir", fir_kernel(taps), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=True, up=self.up, fir=self.fir)
        if noise_mode == "random":
            n, _, h, w_ = x.shape
            x = x + torch.randn(n, 1, h, w_, device=x.device, dtype=x.dtype) * self.noise_strength.to(x.dtype)
        x = x + self.bias.to(x.dtype).view(1, -1, 1, 1)
        return F.leaky_relu(x, LRELU_SLOPE) * STYLEGAN_LRELU_GAIN


class ToImage(nn.Module):
    """Modulated 1x1 conv without demodulation (StyleGAN2's ToRGBLayer)."""

    def __init__(self, c_in: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, c_in, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1.0 / math.sqrt(c_in)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=False)
        return x + self.bias.to(x.dtype).view(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution: (const | upsampling conv0), conv1, to-image; the image skip is upsampled and summed."""

    def __init__(self, c_in: int, c_out: int, cfg: StyleGAN2Config, first: bool):
        super().__init__()
        self.const = nn.Parameter(torch.randn(c_out, 4, 4)) if first else None
        self.conv0 = None if first else SynthesisLayer(c_in, c_out, cfg.w_dim, up=True, taps=cfg.fir_taps)
        self.conv1 = SynthesisLayer(c_out, c_out, cfg.w_dim, up=False, taps=cfg.fir_taps)
        self.to_image = ToImage(c_out, cfg.channels, cfg.w_dim)
        self.num_conv = 1 if first else 2
        self.register_buffer("fir", fir_kernel(cfg.fir_taps), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        # ws [N, num_conv + 1, w_dim]: the to-image layer shares its w with the next block's first conv.
        i = 0
        if self.const is not None:
            x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, ws[:, i], noise_mode)
            i += 1
        x = self.conv1(x, ws[:, i], noise_mode)
        y = self.to_image(x, ws[:, i + 1])
        img = y if img is None else upsample_2x(img, self.fir) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, C, H, W]."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.blocks = nn.ModuleList(SynthesisBlock(cfg.widths[max(i - 1, 0)], w, cfg, first=i == 0)
                                    for i, w in enumerate(cfg.widths))
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1  # + the last to-image layer

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; valid choices: {', '.join(NOISE_MODES)}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"synthesis expects ws of shape [N, {self.num_ws}, w_dim], got {tuple(ws.shape)}")
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1], noise_mode)
            i += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """G(z, c=None) = synthesis(mapping(z, c)); also exposes mapping, synthesis, num_ws and w_avg.

    In training mode a forward updates the tracked mean w (`w_avg`, for truncation) unless told otherwise.
    `lr_multipliers` documents the equalised-lr multipliers: they act through run-time weight scaling, so
    one Adam learning rate serves every parameter.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        set_image_attributes(self, cfg)
        self.z_dim = cfg.z_dim
        self.w_dim = cfg.w_dim
        self.num_ws = 2 * len(cfg.widths)  # 1 conv at 4x4, 2 per later block, + the last to-image layer
        self.mapping = MappingNetwork(cfg, self.num_ws)
        self.synthesis = SynthesisNetwork(cfg)
        assert self.synthesis.num_ws == self.num_ws
        self.lr_multipliers = {"mapping": cfg.mapping_lr_multiplier, "synthesis": 1.0}

    @property
    def w_avg(self) -> Tensor:
        return self.mapping.w_avg

    def forward(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                update_w_avg: bool | None = None) -> Tensor:
        check_labels(c, self.num_classes, z.shape[0], "G")
        update = self.training if update_w_avg is None else update_w_avg
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg=update)
        return self.synthesis(ws, noise_mode=noise_mode)


class DiscriminatorBlock(nn.Module):
    """StyleGAN2 residual D block: (conv3x3 -> conv3x3 stride-2 + FIR-down 1x1 skip) * sqrt(0.5)."""

    def __init__(self, c_in: int, c_out: int, taps: tuple[int, ...]):
        super().__init__()
        self.conv0 = EqualizedConv2d(c_in, c_in, 3, activation="lrelu")
        self.conv1 = EqualizedConv2d(c_in, c_out, 3, down=2, activation="lrelu", taps=taps)
        self.skip = EqualizedConv2d(c_in, c_out, 1, bias=False, down=2, taps=taps)

    def branch(self, x: Tensor) -> Tensor:
        return self.conv1(self.conv0(x))

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.branch(x)) * math.sqrt(0.5)


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-group standard deviation as one more channel (ProGAN Sec. 3).

    Groups take every n-th sample (StyleGAN2's reshape(G, -1, ...)); the group size is the largest divisor
    of the batch not above `group_size`, so any batch size works.
    """

    mixes_samples = True  # an operation across the batch: losses.mixes_samples keeps reals and fakes apart

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = x.reshape(g, -1, c, h, w)                  # [G, n/G, C, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)   # variance within each group
        y = (y + 1e-8).sqrt().mean(dim=[1, 2, 3])      # [n/G]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N, 1, H, W]
        return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """D(x, c=None) -> N logits (StyleGAN2's residual D; projection on a label embedding when conditional)."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        set_image_attributes(self, cfg)
        widths = tuple(reversed(cfg.widths))
        self.from_image = EqualizedConv2d(cfg.channels, widths[0], 1, activation="lrelu")
        self.blocks = nn.ModuleList(DiscriminatorBlock(widths[i], widths[i + 1], cfg.fir_taps)
                                    for i in range(len(widths) - 1))
        c = widths[-1]
        self.mbstd = MinibatchStd(cfg.mbstd_group_size)
        self.conv = EqualizedConv2d(c + 1, c, 3, activation="lrelu")
        self.fc = EqualizedLinear(c * 16, c, activation="lrelu")
        out_dim = c if cfg.num_classes else 1
        self.out = EqualizedLinear(c, out_dim)
        self.embed = EqualizedLinear(cfg.num_classes, out_dim) if cfg.num_classes else None

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        check_labels(c, self.num_classes, x.shape[0], "D")
        h = self.from_image(x)
        for block in self.blocks:
            h = block(h)
        h = self.out(self.fc(self.conv(self.mbstd(h)).flatten(1)))
        if self.embed is not None:
            cmap = self.embed(_one_hot(c, self.num_classes, h.dtype))
            h = (h * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
        return h.reshape(x.shape[0])
