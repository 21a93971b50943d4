"""Building blocks shared by every roadmap configuration: initialisation, FIR resampling, activations and
StyleGAN2's equalised-learning-rate layers. Plain PyTorch throughout (no compiled ops).

Sources: fix-up / MSR initialisation and biased leaky ReLU (R3GAN paper Sec. 3.4, official `Networks.py`);
[1, 3, 3, 1] FIR resampling and equalised learning rate (StyleGAN2, Karras et al. 2020, Sec. 2 and App. B;
equalised lr from ProGAN, Karras et al. 2018, Sec. 4.1).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import conv

LRELU_SLOPE = 0.2
# Gain that keeps the second moment through a leaky ReLU of slope a: sqrt(2 / (1 + a^2)) (He et al. 2015).
LRELU_GAIN = math.sqrt(2.0 / (1.0 + LRELU_SLOPE**2))
# StyleGAN2's bias_act multiplies leaky ReLU outputs by sqrt(2) at run time (its `def_gain`).
STYLEGAN_LRELU_GAIN = math.sqrt(2.0)
FIR_TAPS = (1, 3, 3, 1)


# ---------------------------------------------------------------------------------------------------------
# Initialisation: the one helper every layer uses.
# ---------------------------------------------------------------------------------------------------------
def fan_in(weight: Tensor) -> int:
    """Inputs feeding one output unit: in_features for a linear weight, (C_in / groups) * k * k for a conv."""
    return weight[0].numel()


@torch.no_grad()
def init_weight_(weight: Tensor, gain: float = 1.0) -> Tensor:
    """w ~ N(0, gain / sqrt(fan_in)) in place; gain 0 zero-initialises (the last conv of a residual branch)."""
    if gain == 0:
        return weight.zero_()
    return weight.normal_(0.0, gain / math.sqrt(fan_in(weight)))


def fixup_gain(num_blocks: int, layers_per_block: int = 3) -> float:
    """Gain of the first two convs of a residual branch (R3GAN Sec. 3.4, after Fixup, Zhang et al. 2019).

    g = LRELU_GAIN * L^(-1 / (2m - 2)) with L the total number of residual blocks and m = 3 layers per
    branch, so g = sqrt(2 / (1 + 0.2^2)) * L^(-1/4): the branch's variance grows by at most a factor that
    shrinks as the network deepens, and the zero last conv makes every block the identity at start.
    """
    return LRELU_GAIN * num_blocks ** (-1.0 / (2 * layers_per_block - 2))


# ---------------------------------------------------------------------------------------------------------
# FIR resampling (StyleGAN2's upfirdn2d, written as depthwise convolutions).
# ---------------------------------------------------------------------------------------------------------
def fir_kernel(taps: tuple[float, ...] = FIR_TAPS) -> Tensor:
    """The separable 2D low-pass filter outer(t, t) / sum(t)^2 (sums to 1)."""
    t = torch.as_tensor(taps, dtype=torch.float32)
    k = torch.outer(t, t)
    return k / k.sum()


def _depthwise(kernel: Tensor, channels: int, dtype: torch.dtype) -> Tensor:
    return kernel.to(dtype)[None, None].expand(channels, 1, *kernel.shape)


def upsample_2x(x: Tensor, kernel: Tensor) -> Tensor:
    """Zero-insertion upsampling by 2 followed by the FIR filter, gain 4 so a constant image stays constant.

    A transposed depthwise conv of stride 2 does both at once. With the 4-tap [1,3,3,1] filter, padding 1
    keeps the pixel-centre alignment of bilinear interpolation (align_corners=False): away from the border
    the result equals F.interpolate(x, scale_factor=2, mode='bilinear'). An odd filter such as [1,2,1]
    keeps the input pixels at even positions and interpolates between them (align_corners-style).
    """
    c = x.shape[1]
    k = kernel.shape[-1]
    weight = _depthwise(kernel * 4, c, x.dtype)
    if k % 2 == 0:
        return F.conv_transpose2d(x, weight, stride=2, padding=(k - 2) // 2, groups=c)
    return F.conv_transpose2d(x, weight, stride=2, padding=(k - 1) // 2, output_padding=1, groups=c)


def blur(x: Tensor, kernel: Tensor, padding: int) -> Tensor:
    """Filter every channel with the FIR kernel at stride 1 (zero padding on every side)."""
    c = x.shape[1]
    return conv.conv2d(x, _depthwise(kernel, c, x.dtype), padding=padding, groups=c)


def downsample_2x(x: Tensor, kernel: Tensor) -> Tensor:
    """FIR low-pass then keep every second pixel (a stride-2 depthwise conv); a constant image stays constant."""
    c = x.shape[1]
    k = kernel.shape[-1]
    pad = (k - 2) // 2 if k % 2 == 0 else (k - 1) // 2
    return conv.conv2d(x, _depthwise(kernel, c, x.dtype), stride=2, padding=pad, groups=c)


class FIRResample(nn.Module):
    """Holds the fixed FIR kernel of a 2x resampler (a buffer, not a parameter: checkpoints do not carry it)."""

    def __init__(self, taps: tuple[float, ...] = FIR_TAPS):
        super().__init__()
        self.register_buffer("kernel", fir_kernel(taps), persistent=False)


class Upsample2x(FIRResample):
    """Bilinear-style 2x upsampling with a fixed FIR filter."""

    def forward(self, x: Tensor) -> Tensor:
        return upsample_2x(x, self.kernel)


class Downsample2x(FIRResample):
    """Anti-aliased 2x downsampling with a fixed FIR filter."""

    def forward(self, x: Tensor) -> Tensor:
        return downsample_2x(x, self.kernel)


# ---------------------------------------------------------------------------------------------------------
# What every G and D exposes.
# ---------------------------------------------------------------------------------------------------------
def set_image_attributes(module: nn.Module, cfg: Any) -> None:
    """Keep the (frozen) config on `module` and copy out the fields callers read: num_classes, resolution, channels.

    Every generator and discriminator calls this first; generators then add z_dim (config A also w_dim).
    """
    module.cfg = cfg
    module.num_classes = cfg.num_classes
    module.resolution = cfg.resolution
    module.channels = cfg.channels


# ---------------------------------------------------------------------------------------------------------
# Activations and plain (non-equalised) layers of configs B-E.
# ---------------------------------------------------------------------------------------------------------
class BiasedLeakyReLU(nn.Module):
    """y = leaky_relu(x + b, 0.2): configs D/E keep their biases here, not in the convs (R3GAN Sec. 3.4)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return F.leaky_relu(x + self.bias.to(x.dtype).view(shape), LRELU_SLOPE)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters, same state dict) computed by `conv.conv2d`: R1/R2's second derivative through
    it is made of first-order convolutions (see networks.conv). Zero padding, no dilation."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return conv.conv2d(x, weight, bias, self.stride, self.padding, self.groups)


def conv2d(c_in: int, c_out: int, kernel_size: int, groups: int = 1, gain: float = 1.0,
           bias: bool = False) -> Conv2d:
    """A 'same'-padded conv initialised by `init_weight_` (bias, if any, zero)."""
    layer = Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, groups=groups, bias=bias)
    init_weight_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def linear(d_in: int, d_out: int, gain: float = 1.0, bias: bool = False) -> nn.Linear:
    """A linear layer initialised by `init_weight_` (bias, if any, zero)."""
    layer = nn.Linear(d_in, d_out, bias=bias)
    init_weight_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


# ---------------------------------------------------------------------------------------------------------
# Equalised learning rate (config A): weights stored ~ N(0, 1 / lr_mul), scaled at every forward.
# ---------------------------------------------------------------------------------------------------------
class EqualizedLinear(nn.Module):
    """y = x (w * lr_mul / sqrt(fan_in))^T + b * lr_mul (ProGAN Sec. 4.1; StyleGAN's lr multiplier).

    Storing w ~ N(0, 1 / lr_mul) and scaling at run time makes Adam's per-parameter step act like a step of
    size lr * lr_mul on the effective weight: the mapping network uses lr_mul = 0.01 without a separate
    optimiser group. `activation` 'lrelu' applies leaky ReLU times sqrt(2) (StyleGAN2's bias_act).
    """

    def __init__(self, d_in: int, d_out: int, bias: bool = True, bias_init: float = 0.0, lr_multiplier: float = 1.0,
                 activation: str = "linear"):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unknown activation {activation!r}; valid choices: 'linear', 'lrelu'")
        self.weight = nn.Parameter(torch.randn(d_out, d_in) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((d_out,), float(bias_init) / lr_multiplier)) if bias else None
        self.lr_multiplier = lr_multiplier
        self.weight_gain = lr_multiplier / math.sqrt(d_in)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.lr_multiplier
        y = F.linear(x, w, b)
        if self.activation == "lrelu":
            y = F.leaky_relu(y, LRELU_SLOPE) * STYLEGAN_LRELU_GAIN
        return y

    def extra_repr(self) -> str:
        d_out, d_in = self.weight.shape
        return f"{d_in} -> {d_out}, lr_multiplier={self.lr_multiplier}, act={self.activation}"


class EqualizedConv2d(nn.Module):
    """Equalised-lr conv with optional FIR down/up-sampling (StyleGAN2's Conv2dLayer, config A's D).

    Weight stored ~ N(0, 1), effective weight w / sqrt(fan_in). With `down=2` a 1x1 conv runs after an
    FIR downsample; a k x k conv (k > 1) runs with stride 2 on the blurred full-resolution input, padded as
    StyleGAN2's conv2d_resample pads it ((4 - 2) + (k - 1) pixels in all, split evenly). `activation`
    'lrelu' applies leaky ReLU times sqrt(2) after the bias.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, bias: bool = True, down: int = 1,
                 activation: str = "linear", taps: tuple[float, ...] = FIR_TAPS):
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unknown activation {activation!r}; valid choices: 'linear', 'lrelu'")
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(c_in * kernel_size * kernel_size)
        self.down = down
        self.activation = activation
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down!r}")
        self.register_buffer("kernel", fir_kernel(taps), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        k = w.shape[-1]
        if self.down == 1:
            x = conv.conv2d(x, w, padding=k // 2)
        elif k == 1:
            x = conv.conv2d(downsample_2x(x, self.kernel), w)
        else:
            pad = (self.kernel.shape[-1] - 2 + k - 1) // 2
            x = conv.conv2d(blur(x, self.kernel, pad), w, stride=2)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).view(1, -1, 1, 1)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, LRELU_SLOPE) * STYLEGAN_LRELU_GAIN
        return x

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in} -> {c_out}, k={k}, down={self.down}, act={self.activation}"
